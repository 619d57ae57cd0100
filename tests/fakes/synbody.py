"""A tiny SynBody HumanNeRF-subset release: the release zips themselves (read in place by the recipe), with toy
gendered SMPL models.

Layout evidence (no SynBody file is public here, /work/shared/realdata has none): the Hugging Face listing of
caizhongang/SynBody HumanNeRF-subset/ (camera_params.zip, img.zip, mask.zip, smpl.zip, smplx.zip); the original's
rules (../shared/docs/nlf-era-facts.md §1.1 and original-posepile-facts.md: 100 sequences x 8 cameras, K, R, T with
T x 1000, gendered SMPL refits, masks -> box, images from img.zip) with the member names and keys of its
humannerf_subset.py read as facts through the code search (<seq>/smpl_refit.npz {'smpl': {global_orient,
body_pose, betas, transl}, 'meta': {'gender'}}, <seq>/mask/<cc>/<ffff>.png, JPEGs <seq>/img/<cc>/<ffff>.jpg inside
img.zip, cameras 'camera00'.. in <seq>/camera.json); an independent user of the real release (github
foalengtoussaint/cup-task, cup_task/mv3d/dataset_synbody.py and its SynBody ground-truth cache script: camera.json
{"cameraNN": {K, R, T}} with P = K [R | T] in the fits' world frame, image folder NN of cameraNN, frames <ffff> =
the index in the fit arrays, principal point at the image centre, the cameras on a ring). Inferred, not seen: the
members sit at the zip roots (no top folder; the recipe accepts one), betas per frame (F, 10) (sequence 001 uses
one row (1, 10)), one-channel 0/255 masks, the image size (here 640 x 640, square as that user's loader assumes).

Sequence 000 (female): cameras camera00..camera02, frames P0, P0 + 0.0005 rad, P1, P2 (betas (4, 10), each row a
little different); camera01's mask of frame 0003 is absent from mask.zip, camera02's mask of frame 0002 is empty.
Sequence 001 (male): cameras camera00, camera01, frames P0, P1, betas (1, 10).
"""
import io
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np

from tests.fakes.genebody import camera_for_yaw, forward_kinematics, render
from tests.toy_bodymodels import PARENTS, write_toy_model

WIDTH, HEIGHT = 640, 640
FOCAL_PX = 700.0
N_DOTS = 24
RELEASE = 'synbody/HumanNeRF-subset'
SEQUENCES = {
    '000': dict(gender='female', yaws=(0.0, -45.0, 40.0), frames=(0, 0.0005, 1, 2), betas_rows='per frame',
                missing=(1, 3), empty=(2, 2)),
    '001': dict(gender='male', yaws=(10.0, 70.0), frames=(0, 1), betas_rows='one', missing=None, empty=None),
}


def intrinsics():
    return np.array([[FOCAL_PX, 0, WIDTH / 2], [0, FOCAL_PX, HEIGHT / 2], [0, 0, 1]])


def project(points_m, R, T, K):
    camera = points_m @ R.T + T
    return camera[:, :2] / camera[:, 2:] * np.diag(K)[:2] + K[:2, 2]


def write_fake_release(data_root, seed=0):
    """Write the zips under data_root/synbody/HumanNeRF-subset and toy SMPL models under data_root/body_models.
    Returns dict(frames=[dict(seq, index, gender, joints_m (24, 3) world, fit)], images=[dict(seq, camera, index,
    pixels (24, 2), kept_view)], cameras={(seq, camera): (R, T m, K)}, models={gender: toy arrays})."""
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    release = data_root / RELEASE
    release.mkdir(parents=True, exist_ok=True)
    models = {g: write_toy_model(data_root / 'body_models', 'smpl', g, seed=11 + i)[0]
              for i, g in enumerate(('female', 'male'))}
    zips = {name: zipfile.ZipFile(release / name, 'w') for name in (
        'camera_params.zip', 'smpl.zip', 'mask.zip', 'img.zip', 'smplx.zip')}
    result = {'frames': [], 'images': [], 'cameras': {}, 'models': models}
    K = intrinsics()
    for seq, spec in SEQUENCES.items():
        arrays = models[spec['gender']]
        cameras = {}
        for c, yaw in enumerate(spec['yaws']):
            centre, R = camera_for_yaw(yaw)
            cameras[c] = (R, -R @ centre, K)
            result['cameras'][(seq, c)] = cameras[c]
        zips['camera_params.zip'].writestr(f'{seq}/camera.json', json.dumps(
            {f'camera{c:02d}': {'K': K.tolist(), 'R': R.tolist(), 'T': T.tolist()}
             for c, (R, T, _) in cameras.items()}))
        rest_pelvis = arrays['J_regressor'][0] @ arrays['v_template']
        keys = []
        for _ in range(3):
            pose = rng.normal(0, 0.2, 72)
            pose[:3] = [np.pi + rng.normal(0, 0.1), rng.uniform(-0.5, 0.5), rng.normal(0, 0.1)]
            keys.append(dict(pose=pose, trans=rng.uniform(-0.1, 0.1, 3) - rest_pelvis))
        betas = rng.normal(0, 1, 10)
        n_frames = len(spec['frames'])
        betas_rows = betas + 0.002 * np.arange(n_frames)[:, None] if spec['betas_rows'] == 'per frame' else \
            betas[None]
        fits = []
        for index, key in enumerate(spec['frames']):
            base = keys[int(key)]
            fit = dict(pose=base['pose'] + np.r_[np.zeros(3), np.full(69, key % 1)], trans=base['trans'],
                       betas=betas_rows[min(index, len(betas_rows) - 1)])
            fits.append({k: v.astype(np.float32).astype(np.float64) for k, v in fit.items()})
        buffer = io.BytesIO()
        np.savez(buffer, smpl={'global_orient': np.stack([f['pose'][:3] for f in fits]).astype(np.float32),
                               'body_pose': np.stack([f['pose'][3:] for f in fits]).astype(np.float32),
                               'betas': betas_rows.astype(np.float32),
                               'transl': np.stack([f['trans'] for f in fits]).astype(np.float32)},
                 meta={'gender': spec['gender']})
        zips['smpl.zip'].writestr(f'{seq}/smpl_refit.npz', buffer.getvalue())
        zips['smplx.zip'].writestr(f'{seq}/smplx.npz', b'not used by the recipe')
        for index, fit in enumerate(fits):
            joints = forward_kinematics(arrays, PARENTS['smpl'], fit['pose'], fit['betas'], fit['trans'])
            result['frames'].append(dict(seq=seq, index=index, gender=spec['gender'], joints_m=joints, fit=fit))
            for c, (R, T, _) in cameras.items():
                pixels = project(joints, R, T, K)
                empty, missing = spec['empty'] == (c, index), spec['missing'] == (c, index)
                box = None if empty else np.concatenate([pixels.min(0) - 4, pixels.max(0) + 4])
                image, mask = render(pixels[:N_DOTS], WIDTH, HEIGHT, box)
                zips['img.zip'].writestr(f'{seq}/img/{c:02d}/{index:04d}.jpg', cv2.imencode(
                    '.jpg', cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())
                if not missing:
                    zips['mask.zip'].writestr(f'{seq}/mask/{c:02d}/{index:04d}.png',
                                              cv2.imencode('.png', mask)[1].tobytes())
                result['images'].append(dict(seq=seq, camera=c, index=index, pixels=pixels,
                                             kept_view=not (empty or missing)))
    for z in zips.values():
        z.close()
    return result
