"""A tiny DNA-Rendering release: SMC (HDF5) files written with h5py in the layout the official SMCReader reads
(posepile/ds/dna_rendering/main.py), with toy SMPL-X models (10 shape + 10 expression columns).

Evidence for the layout: the official sample code's SMCReader (dna_rendering_sample_code: main file attrs
actor_id/gender/...; Camera_5mp (ids 0-47) and Camera_12mp (48-59) groups with attrs num_device, num_frame,
resolution and <id>/color/<frame> JPEG bytes; annotation file Camera_Parameter/<id:02d>/{K, D, RT,
Color_Calibration}, Mask/<id>/mask/<frame> encoded images, Keypoints_3D/keypoints3d, SMPLx/{betas, expression,
fullpose, transl, scale}) and the original recipe (RT camera-to-world in m, 144 keypoints = the SMPL-X joint set).
No real SMC file is public.

Two sequences: dna_rendering_part1_main/0012_01.smc (female) and dna_rendering_part2_main/0019_10.smc (male), 3
frames each (P0, P0 + 0.5 mm, P1), cameras 0 and 1 (5 MP, 1224x1024 here) and 48, 49 (12 MP, 2048x1500 here) on
a circle; keypoints 0..54 = the SMPL-X joints of the fit (with its expression), 55..143 = points at fixed offsets
from the pelvis (plausible bone lengths); keypoint 130 lies 0.3 mm from 129 (both become NaN); camera 49's mask
of frame 2 of 0019_10 is empty.
The SMC `scale` is 1.1 (not to be applied).
"""
from pathlib import Path

import cv2
import numpy as np

from tests.fakes.intercap import camera_for_yaw, forward_kinematics, project, render_dots
from tests.toy_bodymodels import PARENTS, write_toy_model

SIZES = {'Camera_5mp': (1224, 1024), 'Camera_12mp': (2048, 1500)}
FOCAL_PX = {'Camera_5mp': 1300.0, 'Camera_12mp': 2100.0}
CAMERAS = {0: 0.0, 1: 90.0, 48: 180.0, 49: 270.0}
DISTORTION = (0.03, -0.02, 0.0004, -0.0002, 0.001)
SEQUENCES = {(1, '0012_01'): 'female', (2, '0019_10'): 'male'}
FRAME_KEYS = (0, 0.0005, 1)
EMPTY_MASKS = (((2, '0019_10'), 49, 2),)
MODEL_SCALE = 0.6


def group_of(camera_id):
    return 'Camera_5mp' if camera_id < 48 else 'Camera_12mp'


def write_fake_release(data_root, seed=0):
    """Write the SMC files under data_root/dna_rendering and toy SMPL-X models under data_root/body_models.

    Returns dict(frames={(part, seq, frame): dict(gender, pose (165,), betas, expression, transl, joints_m (55, 3),
    keypoints_m (144, 3))}, images=[dict(part, seq, frame, camera, pixels (144, 2), mask_box or None)]).
    """
    import h5py
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    root = data_root / 'dna_rendering'
    models = {g: write_toy_model(data_root / 'body_models', 'smplx', g, n_shape=20, seed=80 + i, scale=MODEL_SCALE)[0]
              for i, g in enumerate(('female', 'male'))}
    result = {'frames': {}, 'images': []}
    for (part, seq), gender in SEQUENCES.items():
        arrays = models[gender]
        rest_pelvis = arrays['J_regressor'][0] @ arrays['v_template']
        attach = np.zeros(89, int)  # rigidly with the pelvis (the bone lengths stay plausible)
        offsets = rng.normal(0, 0.03, (89, 3))
        keys = [dict(pose=rng.normal(0, 0.2, 165), transl=rng.uniform(-0.1, 0.1, 3) - rest_pelvis + [0, 0, 3.0],
                     betas=rng.normal(0, 1, 10), expression=rng.normal(0, 0.5, 10)) for _ in range(2)]
        fits, keypoints = [], []
        for frame, key in enumerate(FRAME_KEYS):
            base = keys[int(key)]
            fit = dict(pose=base['pose'] + key % 1, transl=base['transl'] + key % 1, betas=keys[0]['betas'],
                       expression=base['expression'])
            fit = {k: np.asarray(v, np.float32).astype(np.float64) for k, v in fit.items()}
            joints = forward_kinematics(arrays, PARENTS['smplx'], fit['pose'], fit['betas'], fit['transl'],
                                        fit['expression'], n_shape_columns=10)
            points = np.concatenate([joints, joints[attach] + offsets])
            points[130] = points[129] + [0.0003, 0, 0]
            points = points.astype(np.float32).astype(np.float64)
            fits.append(fit)
            keypoints.append(points)
            result['frames'][(part, seq, frame)] = dict(gender=gender, joints_m=joints, keypoints_m=points, **fit)
        main_path = root / f'dna_rendering_part{part}_main' / f'{seq}.smc'
        annots_path = root / f'dna_rendering_part{part}_annotations' / f'{seq}_annots.smc'
        main_path.parent.mkdir(parents=True, exist_ok=True)
        annots_path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(main_path, 'w') as main, h5py.File(annots_path, 'w') as annots:
            main.attrs.update(actor_id=seq.split('_')[0], performance_id=seq.split('_')[1], age=30, gender=gender,
                              height=170, weight=60, ethnicity='unknown')
            for group, (width, height) in SIZES.items():
                ids = [c for c in CAMERAS if group_of(c) == group]
                main.create_group(group).attrs.update(num_device=len(ids), num_frame=len(FRAME_KEYS),
                                                      resolution=[height, width])
            smplx = annots.create_group('SMPLx')
            smplx['fullpose'] = np.stack([f['pose'] for f in fits]).reshape(-1, 55, 3).astype(np.float32)
            smplx['betas'] = np.stack([f['betas'] for f in fits]).astype(np.float32)
            smplx['expression'] = np.stack([f['expression'] for f in fits]).astype(np.float32)
            smplx['transl'] = np.stack([f['transl'] for f in fits]).astype(np.float32)
            smplx['scale'] = np.float32(1.1)
            annots['Keypoints_3D/keypoints3d'] = np.concatenate(
                [np.stack(keypoints), np.ones((len(keypoints), 144, 1))], axis=2).astype(np.float32)
            for camera_id, yaw in CAMERAS.items():
                group = group_of(camera_id)
                width, height = SIZES[group]
                centre, R = camera_for_yaw(yaw)
                K = np.array([[FOCAL_PX[group], 0, width / 2 - 0.3], [0, FOCAL_PX[group], height / 2 + 0.6],
                              [0, 0, 1]])
                RT = np.eye(4)
                RT[:3, :3], RT[:3, 3] = R.T, centre  # camera-to-world, m
                calibration = annots.create_group(f'Camera_Parameter/{camera_id:02d}')
                calibration['K'], calibration['D'], calibration['RT'] = K, np.array(DISTORTION), RT
                calibration['Color_Calibration'] = np.eye(3)
                for frame, points in enumerate(keypoints):
                    pixels = project(points * 1000, centre, R, K, DISTORTION)
                    image = render_dots(pixels, width, height)
                    main[f'{group}/{camera_id}/color/{frame}'] = np.frombuffer(
                        cv2.imencode('.jpg', image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes(), np.uint8)
                    mask = np.zeros((height, width, 3), np.uint8)
                    empty = ((part, seq), camera_id, frame) in EMPTY_MASKS
                    x0, y0 = np.floor(pixels.min(0) - 10).astype(int)
                    x1, y1 = np.ceil(pixels.max(0) + 10).astype(int)
                    if not empty:
                        mask[max(y0, 0):y1, max(x0, 0):x1] = 255
                    annots[f'Mask/{camera_id}/mask/{frame}'] = np.frombuffer(cv2.imencode('.png', mask)[1].tobytes(),
                                                                             np.uint8)
                    result['images'].append(dict(part=part, seq=seq, frame=frame, camera=camera_id, pixels=pixels,
                                                 mask_box=None if empty else (max(x0, 0), max(y0, 0), x1, y1)))
    return result
