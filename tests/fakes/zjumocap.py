"""A tiny ZJU-MoCap release in the raw layout (see posepile/ds/zjumocap/main.py) with a toy neutral SMPL model.

Layout evidence: Neural Body's zju_mocap loader and INSTALL.md (annots.npy {'cams': {K, D, R, T (mm)}, 'ims':
[{'ims': [...]}]}, Camera_B<k>/<frame:06d>.jpg, mask/ and mask_cihp/, new_params/<i>.npy; 313/315's 'Camera (k)'
naming with 1-based frame numbers) and the authors' real fits of sequence 377 (/work/shared/realdata/zju_mocap:
poses (N,72) with poses[:, :3] == 0, shapes (10,), Rh, Th in metres; X_world = Rodrigues(Rh) SMPL(poses, shapes) + Th).

CoreView_377: 3 cameras, frames P0, P0 + 0.0005 rad, P1, P2, masks in mask/ (camera 3's mask of frame 3 empty);
CoreView_313: 2 cameras with the old naming, frames P0, P1 (new_params 1 and 2), masks in mask_cihp/ only.
"""
from pathlib import Path

import cv2
import numpy as np

from tests.fakes.genebody import camera_for_yaw, forward_kinematics, intrinsics, project, render
from tests.toy_bodymodels import PARENTS, write_toy_model

WIDTH, HEIGHT = 1024, 1024
FOCAL_PX = 1000.0
N_DOTS = 24
DISTORTION = np.array([-0.2, 0.1, 0.0005, -0.0003, 0.0])
SEQUENCES = {
    'CoreView_377': dict(yaws=(-50.0, 0.0, 45.0), frames=(0, 0.0005, 1, 2), old_naming=False, empty=(2, 3),
                         masks=('mask',)),
    'CoreView_313': dict(yaws=(-20.0, 30.0), frames=(0, 1), old_naming=True, empty=None, masks=('mask_cihp',)),
}


def image_name(seq, camera, frame_index, old_naming):
    if old_naming:
        return f'Camera ({camera + 1})/{seq}_Camera_({camera + 1})_{frame_index + 1:04d}_2019-08-23_16-08-50.592.jpg'
    return f'Camera_B{camera + 1}/{frame_index:06d}.jpg'


def write_fake_release(data_root, seed=0):
    """Write the release under data_root/zjumocap and a toy SMPL under data_root/body_models. Returns
    dict(frames=[dict(seq, index, joints_m (24, 3) world, fit)], images=[dict(relpath, seq, index, camera, pixels,
    empty_mask)])."""
    from posepile.util import improc
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    root = data_root / 'zjumocap'
    arrays, _ = write_toy_model(data_root / 'body_models', 'smpl', 'neutral', seed=3)
    result = {'frames': [], 'images': []}
    for seq, spec in SEQUENCES.items():
        seq_dir = root / seq
        K = intrinsics(WIDTH, HEIGHT, FOCAL_PX)
        cams = [camera_for_yaw(yaw) for yaw in spec['yaws']]
        keys = []
        for _ in range(3):
            rh = cv2.Rodrigues(cv2.Rodrigues(np.array([np.pi, 0, 0]))[0] @
                               cv2.Rodrigues(np.array([0, rng.uniform(-0.6, 0.6), 0]))[0])[0].ravel()
            keys.append(dict(poses=np.concatenate([np.zeros(3), rng.normal(0, 0.2, 69)]),
                             shapes=rng.normal(0, 1, 10), Rh=rh, Th=rng.uniform(-0.1, 0.1, 3) + [0, 0, 0.2]))
        ims = []
        for index, key in enumerate(spec['frames']):
            base = keys[int(key)]
            fit = {k: (v + np.r_[np.zeros(3), np.full(69, key % 1)] if k == 'poses' else v) for k, v in base.items()}
            fit = {k: v.astype(np.float32).astype(np.float64) for k, v in fit.items()}
            local = forward_kinematics(arrays, PARENTS['smpl'], fit['poses'], fit['shapes'], np.zeros(3))
            joints = local @ cv2.Rodrigues(fit['Rh'])[0].T + fit['Th']  # EasyMocap: R_h X + T_h
            number = index + 1 if spec['old_naming'] else index
            (seq_dir / 'new_params').mkdir(parents=True, exist_ok=True)
            np.save(seq_dir / 'new_params' / f'{number}.npy',
                    {k: v[None].astype(np.float32) for k, v in fit.items()}, allow_pickle=True)
            result['frames'].append(dict(seq=seq, index=index, joints_m=joints, fit=fit))
            row = []
            for c, (centre, rotation) in enumerate(cams):
                name = image_name(seq, c, index, spec['old_naming'])
                row.append(name)
                pixels = project(joints, centre, rotation, K, DISTORTION)
                empty = spec['empty'] == (c, index)
                box = None if empty else np.concatenate([pixels.min(0) - 4, pixels.max(0) + 4])
                image, mask = render(pixels[:N_DOTS], WIDTH, HEIGHT, box)
                path = seq_dir / name
                path.parent.mkdir(parents=True, exist_ok=True)
                improc.write_jpeg_atomic(path, image, 95)
                for folder in spec['masks']:
                    mask_path = (seq_dir / folder / name).with_suffix('.png')
                    mask_path.parent.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(mask_path), mask // 255)  # 0/1 PNG as released
                result['images'].append(dict(relpath=str(path.relative_to(data_root)), seq=seq, index=index,
                                             camera=c, pixels=pixels, empty_mask=empty, centre=centre,
                                             rotation=rotation, K=K))
            ims.append({'ims': row})
        np.save(seq_dir / 'annots.npy', {'cams': {
            'K': [K for _ in cams], 'D': [DISTORTION[:, None] for _ in cams], 'R': [r for _, r in cams],
            'T': [(-r @ c * 1000)[:, None] for c, r in cams]}, 'ims': ims}, allow_pickle=True)
    return result
