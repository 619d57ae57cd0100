"""A tiny HuMMan-Recon release: the release zips themselves (read in place by the recipe), with a toy neutral SMPL.

Layout evidence: the official toolbox, caizhongang/humman_toolbox humman_recon/README.md (zips
recon_kinect_color_part_{1,2,3}.zip, recon_kinect_mask.zip, recon_smpl_params.zip, recon_cameras.zip; members
<seq>/kinect_color/kinect_00k/<frame:06d>.png, <seq>/kinect_mask/kinect_00k/<frame>.png (uint8, 1 channel),
<seq>/smpl_params/<frame>.npz {betas (10,), body_pose (69,), global_orient (3,), transl (3,)} world frame,
<seq>/cameras.json {"kinect_color_00k": {K, R, T}, "kinect_depth_00k": {...}} world2cam, T in metres). No real
HuMMan file is public. Images are 960x540 PNGs (the real Kinect colour ones are 1920x1080).

p000438_a000040 (colour part 1): 3 Kinects, frames 000000, 000006, 000012, 000018 with poses P0, P0 + 0.0005 rad,
P1, P2; Kinect 002's mask of 000018 is empty. p000455_a000986 (colour part 2): 2 Kinects, frames P0, P1; Kinect
001's mask of the second frame is missing from the mask zip.
"""
import io
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np

from tests.fakes.genebody import camera_for_yaw, forward_kinematics, intrinsics, render
from tests.toy_bodymodels import PARENTS, write_toy_model

WIDTH, HEIGHT = 960, 540
FOCAL_PX = 700.0
N_DOTS = 24
SEQUENCES = {
    'p000438_a000040': dict(part=1, yaws=(0.0, -45.0, 40.0), frames=(0, 0.0005, 1, 2), empty=(2, 3), missing=None),
    'p000455_a000986': dict(part=2, yaws=(0.0, 60.0), frames=(0, 1), empty=None, missing=(1, 1)),
}


def project(points_m, R, T, K):
    camera = points_m @ R.T + T
    return camera[:, :2] / camera[:, 2:] * np.diag(K)[:2] + K[:2, 2]


def write_fake_release(data_root, seed=0):
    """Write the zips under data_root/humman and a toy SMPL under data_root/body_models. Returns
    dict(frames=[dict(seq, frame, joints_m (24, 3) world, fit)],
    images=[dict(seq, kinect, frame, pixels, kept_view)])."""
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    root = data_root / 'humman'
    root.mkdir(parents=True, exist_ok=True)
    arrays, _ = write_toy_model(data_root / 'body_models', 'smpl', 'neutral', seed=4)
    zips = {name: zipfile.ZipFile(root / name, 'w') for name in (
        'recon_kinect_color_part_1.zip', 'recon_kinect_color_part_2.zip', 'recon_kinect_color_part_3.zip',
        'recon_kinect_mask.zip', 'recon_smpl_params.zip', 'recon_cameras.zip')}
    result = {'frames': [], 'images': []}
    rest_pelvis = arrays['J_regressor'][0] @ arrays['v_template']
    for seq, spec in SEQUENCES.items():
        K = intrinsics(WIDTH, HEIGHT, FOCAL_PX)
        # world = Kinect 000's frame: each camera's world2cam (R, T) relative to camera 000 at yaw 0
        centre0, rotation0 = camera_for_yaw(0.0)
        cams = {}
        for k, yaw in enumerate(spec['yaws']):
            centre, rotation = camera_for_yaw(yaw)
            R = rotation @ rotation0.T  # camera-000 coordinates -> this camera
            T = -R @ (rotation0 @ (centre - centre0))
            cams[k] = (R, T)
        zips['recon_cameras.zip'].writestr(f'{seq}/cameras.json', json.dumps({
            **{f'kinect_color_{k:03d}': {'K': K.tolist(), 'R': R.tolist(), 'T': T.tolist()}
               for k, (R, T) in cams.items()},
            **{f'kinect_depth_{k:03d}': {'K': (K / 3).tolist(), 'R': R.tolist(), 'T': (T + 0.03).tolist()}
               for k, (R, T) in cams.items()}}))
        keys = []
        for _ in range(3):
            pose = rng.normal(0, 0.2, 72)
            pose[:3] = [np.pi + rng.normal(0, 0.1), rng.uniform(-0.5, 0.5), rng.normal(0, 0.1)]
            # the person stands ~2.6 m in front of Kinect 000 (whose frame is the world)
            keys.append(dict(pose=pose, betas=rng.normal(0, 1, 10),
                             trans=np.array([0, 0, 2.6]) + rng.uniform(-0.1, 0.1, 3) - rest_pelvis))
        for index, key in enumerate(spec['frames']):
            base = keys[int(key)]
            fit = dict(base, pose=base['pose'] + np.r_[np.zeros(3), np.full(69, key % 1)])
            fit = {k: v.astype(np.float32).astype(np.float64) for k, v in fit.items()}
            frame = f'{index * 6:06d}'
            buffer = io.BytesIO()
            np.savez(buffer, global_orient=fit['pose'][:3].astype(np.float32),
                     body_pose=fit['pose'][3:].astype(np.float32), betas=fit['betas'].astype(np.float32),
                     transl=fit['trans'].astype(np.float32))
            zips['recon_smpl_params.zip'].writestr(f'{seq}/smpl_params/{frame}.npz', buffer.getvalue())
            joints = forward_kinematics(arrays, PARENTS['smpl'], fit['pose'], fit['betas'], fit['trans'])
            result['frames'].append(dict(seq=seq, frame=frame, joints_m=joints, fit=fit, index=index))
            for k, (R, T) in cams.items():
                pixels = project(joints, R, T, K)
                empty, missing = spec['empty'] == (k, index), spec['missing'] == (k, index)
                box = None if empty else np.concatenate([pixels.min(0) - 4, pixels.max(0) + 4])
                image, mask = render(pixels[:N_DOTS], WIDTH, HEIGHT, box)
                zips[f'recon_kinect_color_part_{spec["part"]}.zip'].writestr(
                    f'{seq}/kinect_color/kinect_{k:03d}/{frame}.png',
                    cv2.imencode('.png', cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes())
                if not missing:
                    zips['recon_kinect_mask.zip'].writestr(f'{seq}/kinect_mask/kinect_{k:03d}/{frame}.png',
                                                           cv2.imencode('.png', mask)[1].tobytes())
                result['images'].append(dict(seq=seq, kinect=f'{k:03d}', frame=frame, index=index, pixels=pixels,
                                             kept_view=not (empty or missing)))
    for z in zips.values():
        z.close()
    return result
