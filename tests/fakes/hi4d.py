"""A tiny Hi4D release (real-image part) in the raw layout (posepile/ds/hi4d/main.py), with toy SMPL models.

Evidence for the layout: the official toolkit's dataset.md and visualize_hi4d.py (github.com/yifeiyin04/Hi4D):
<pair>/<action>/meta.npz (start, end, num_persons, genders, betas, contact_ids, mono_cam), cameras/rgb_cameras.npz
(ids, intrinsics (8, 3, 3), extrinsics (8, 3, 4) world-to-camera in m, dist_coeffs (8, 5)), images/<cam>/
<frame:06d>.jpg (940 x 1280), seg/img_seg_mask/<cam>/{0,1,all}/<frame:06d>.png, smpl/<frame:06d>.npz (betas,
global_orient, body_pose (69), transl, joints_3d (P, 24, 3), verts, contact). No real Hi4D file is public.

One sequence pair00/hug00, frames 10..12 (poses P0, P0 + 0.5 mm, P1 for each of the 2 people), 8 cameras (ids 4,
16, ..., 88) on a circle, y-up world. Person masks = the person's projected-joint box + 8 px; in camera 88 frame 11
person 1's mask is empty (not assigned), in camera 4 frame 12 person 0's mask is a 12 px patch (< 6 joints in its
box). The `all` mask is an RGB PNG (the original reads any channel).
"""
from pathlib import Path

import cv2
import numpy as np

from tests.fakes.intercap import forward_kinematics, project, render_dots
from tests.toy_bodymodels import PARENTS, write_toy_model

WIDTH, HEIGHT = 940, 1280
FOCAL_PX = 1100.0
DISTORTION = (0.02, -0.01, 0.0005, -0.0003, 0.001)
CAMERA_IDS = (4, 16, 28, 40, 52, 64, 76, 88)
SEQUENCE = 'pair00/hug00'
START, END = 10, 12
FRAME_KEYS = (0, 0.0005, 1)
PERSON_OFFSETS_M = ((-0.35, 0.0, 0.0), (0.35, 0.0, 0.1))
GENDERS = ('female', 'male')
MODEL_SCALE = 0.6
EMPTY_MASKS = ((88, 11, 1),)  # (camera, frame, person)
TINY_MASKS = ((4, 12, 0),)


def camera_looking_at_origin(yaw_deg, distance_m=3.2, height_m=0.3):
    """(optical centre m, R world-to-camera) in a y-up world: camera y points down (-world y), z at the origin."""
    yaw = np.deg2rad(yaw_deg)
    centre = np.array([distance_m * np.sin(yaw), height_m, distance_m * np.cos(yaw)])
    z_axis = -centre / np.linalg.norm(centre)
    y_axis = np.array([0.0, -1.0, 0.0])
    y_axis = y_axis - z_axis * (y_axis @ z_axis)
    y_axis /= np.linalg.norm(y_axis)
    x_axis = np.cross(y_axis, z_axis)
    return centre, np.stack([x_axis, y_axis, z_axis])


def box_mask(pixels, margin):
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    x0, y0 = np.floor(pixels.min(0) - margin).astype(int)
    x1, y1 = np.ceil(pixels.max(0) + margin).astype(int)
    mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 255
    return mask


def write_fake_release(data_root, seed=0):
    """Write the release under data_root/hi4d and toy SMPL models under data_root/body_models.

    Returns dict(frames={frame: dict(pose (2, 72), betas (2, 10), transl (2, 3), joints_m (2, 24, 3))},
    images=[dict(relpath, camera, frame, pixels (2, 24, 2), mask_boxes {person: [x0, y0, x1, y1] inclusive px or
    None})], genders).
    """
    from posepile.util import improc
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    seq_dir = data_root / 'hi4d' / SEQUENCE
    models = {g: write_toy_model(data_root / 'body_models', 'smpl', g, seed=40 + i, scale=MODEL_SCALE)[0]
              for i, g in enumerate(('female', 'male'))}
    bases = [[dict(pose=rng.normal(0, 0.2, 72), betas=rng.normal(0, 1, 10),
                   transl=np.array(offset) - models[GENDERS[p]]['J_regressor'][0] @ models[GENDERS[p]]['v_template']
                   + rng.normal(0, 0.03, 3)) for p, offset in enumerate(PERSON_OFFSETS_M)] for _ in range(2)]
    seq_dir.mkdir(parents=True, exist_ok=True)
    np.savez(seq_dir / 'meta.npz', start=START, end=END, num_persons=2, genders=np.array(GENDERS),
             betas=np.stack([b['betas'] for b in bases[0]]),
             contact_ids=np.array([11]), mono_cam=4)
    cameras = [camera_looking_at_origin(yaw) for yaw in np.linspace(0, 360, len(CAMERA_IDS), endpoint=False)]
    K = np.array([[FOCAL_PX, 0, 470.3], [0, FOCAL_PX * 1.001, 640.6], [0, 0, 1]])
    (seq_dir / 'cameras').mkdir(parents=True, exist_ok=True)
    np.savez(seq_dir / 'cameras' / 'rgb_cameras.npz', ids=np.array(CAMERA_IDS),
             intrinsics=np.stack([K] * len(CAMERA_IDS)).astype(np.float32),
             extrinsics=np.stack([np.concatenate([R, (-R @ c)[:, None]], 1) for c, R in cameras]).astype(np.float32),
             dist_coeffs=np.stack([DISTORTION] * len(CAMERA_IDS)).astype(np.float32))
    # the stored (float32) calibration, as the recipe reads it
    stored = np.load(seq_dir / 'cameras' / 'rgb_cameras.npz')
    result = {'frames': {}, 'images': [], 'genders': GENDERS}
    for frame, key in zip(range(START, END + 1), FRAME_KEYS):
        people = []
        for p in range(2):
            base = bases[int(key)][p]
            pose = base['pose'] + key % 1
            transl = base['transl'] + key % 1
            joints = forward_kinematics(models[GENDERS[p]], PARENTS['smpl'], pose, base['betas'], transl)
            people.append(dict(pose=pose, betas=base['betas'], transl=transl, joints=joints))
        data = {'global_orient': np.stack([q['pose'][:3] for q in people]),
                'body_pose': np.stack([q['pose'][3:] for q in people]),
                'betas': np.stack([q['betas'] for q in people]), 'transl': np.stack([q['transl'] for q in people]),
                'joints_3d': np.stack([q['joints'] for q in people]),
                'verts': np.zeros((2, 10, 3), np.float32), 'contact': np.zeros((2, 10), np.float32)}
        data = {k: v.astype(np.float32) for k, v in data.items()}
        (seq_dir / 'smpl').mkdir(exist_ok=True)
        np.savez(seq_dir / 'smpl' / f'{frame:06d}.npz', **data)
        result['frames'][frame] = dict(pose=np.concatenate([data['global_orient'], data['body_pose']], 1)
                                       .astype(np.float64), betas=data['betas'].astype(np.float64),
                                       transl=data['transl'].astype(np.float64),
                                       joints_m=data['joints_3d'].astype(np.float64))
        for i, camera_id in enumerate(CAMERA_IDS):
            R, t = stored['extrinsics'][i][:, :3].astype(np.float64), stored['extrinsics'][i][:, 3].astype(np.float64)
            pixels = np.stack([project(data['joints_3d'][p].astype(np.float64) * 1000, -R.T @ t, R,
                                       stored['intrinsics'][i], stored['dist_coeffs'][i]) for p in range(2)])
            image = render_dots(pixels.reshape(-1, 2), WIDTH, HEIGHT)
            image_path = seq_dir / 'images' / str(camera_id) / f'{frame:06d}.jpg'
            image_path.parent.mkdir(parents=True, exist_ok=True)
            improc.write_jpeg_atomic(image_path, image, 95)
            mask_dir = seq_dir / 'seg' / 'img_seg_mask' / str(camera_id)
            union = np.zeros((HEIGHT, WIDTH), np.uint8)
            mask_boxes = {}
            for p in range(2):
                if (camera_id, frame, p) in EMPTY_MASKS:
                    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
                elif (camera_id, frame, p) in TINY_MASKS:
                    mask = box_mask(pixels[p].mean(0, keepdims=True), 6)
                else:
                    mask = box_mask(pixels[p], 8)
                ys, xs = np.nonzero(mask)
                mask_boxes[p] = (xs.min(), ys.min(), xs.max(), ys.max()) if len(xs) else None
                union |= mask
                (mask_dir / str(p)).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(mask_dir / str(p) / f'{frame:06d}.png'), mask)
            (mask_dir / 'all').mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(mask_dir / 'all' / f'{frame:06d}.png'), np.repeat(union[..., None], 3, axis=2))
            result['images'].append(dict(relpath=f'hi4d/{SEQUENCE}/images/{camera_id}/{frame:06d}.jpg',
                                         camera=camera_id, frame=frame, pixels=pixels, mask_boxes=mask_boxes,
                                         union=union > 0))
    return result
