"""A tiny MOYO release in the raw layout (posepile/ds/moyo/main.py), with a toy female SMPL-X model whose shape
space has the official 300 + 100 columns (so 128 betas exist).

Evidence for the layout: the original recipe's reader (facts: nlf-era-facts.md §1.1 moyo; cameras_param.json
keys focal, princpt, position (mm), rotation; mosh/<phase>/<sequence>_stageii.pkl with fullpose and trans at 60
fps; image zips under images/<phase>/ whose members are <sequence>/<..._<camera>>/<..._<frame>>.jpg, the
sequence name starting with the session id; the rest mesh under the toolkit's data/v_templates/) and the
toolkit README (github.com/sha2nkt/moyo_toolkit). No real MOYO file is public.

Two sequences: train 220923_yogi_..._Boat_Pose (zip in 20220923_20220926_with_hands/images/train/) and val
221004_yogi_..._Warrior_I (20221004_with_com/images/val/); 212 fits each (106 image frames), the zips hold image
frames 48..57 of cameras 1 and 2 (1024x750, half the calibrated 2048x1500 sensor); frames 50..55 are outside the
T-pose margins. Image poses: 50 P0, 51 P0 + 0.5 mm, 52 P1, 53 P2, 54 P3, 55 P3 + 0.5 mm.
"""
import pickle
import struct
import zipfile
from pathlib import Path

import cv2
import numpy as np

from tests.fakes.intercap import camera_for_yaw, forward_kinematics, project, render_dots
from tests.toy_bodymodels import PARENTS, write_toy_model

WIDTH, HEIGHT = 1024, 750
FULL_FOCAL_PX = 1800.0
FOCAL_PX = FULL_FOCAL_PX / 2
MODEL_SCALE = 0.6
N_FITS = 212
ZIP_FRAMES = range(48, 58)
FRAME_KEYS = {50: 0, 51: 0.0005, 52: 1, 53: 2, 54: 3, 55: 3.0005}
CAMERA_YAWS = {1: 0.0, 2: 80.0, 3: 200.0}  # cam_3 is calibrated but has no images
SEQUENCES = {
    'train': ('220923_yogi_body_hands_03596_Boat_Pose_or_Paripurna_Navasana_-a', '220923',
              '20220923_20220926_with_hands', '20220923'),
    'val': ('221004_yogi_nexus_body_hands_03596_Warrior_I_-a', '221004', '20221004_with_com', '20221004'),
}
Y_DOWN_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # the capture world is z-up (Vicon)
PERSON_CENTRE_M = Y_DOWN_TO_Z_UP @ [0, 0, 3.0]
TEMPLATE = 'moyo_toolkit/data/v_templates/220923_yogi_03596_minimal_simple_female/mesh.ply'


def half_size_intrinsics(K):
    """K of the half-size images: u' = (u + 0.5) / 2 - 0.5 (pixel centres at integers)."""
    K = np.array(K, np.float64)
    K[:2] *= 0.5
    K[:2, 2] -= 0.25
    return K


def write_ply(path, vertices, faces):
    """A binary little-endian PLY (float vertices, uchar-count int faces), as mesh exporters write."""
    header = (f'ply\nformat binary_little_endian 1.0\ncomment fake\nelement vertex {len(vertices)}\n'
              'property float x\nproperty float y\nproperty float z\n'
              f'element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n')
    body = np.asarray(vertices, '<f4').tobytes() + b''.join(struct.pack('<B3i', 3, *map(int, f)) for f in faces)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.encode() + body)


def write_fake_release(data_root, seed=0):
    """Write the release under data_root/moyo and a toy SMPL-X female model under data_root/body_models.

    Returns dict(betas (128,), images=[dict(phase, zip (relative to data_root), member, camera, frame, pixels
    (55, 2), joints_m (55, 3) world, pose (165,), trans (3,), centre_m, R)]).
    """
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    root = data_root / 'moyo'
    arrays, _ = write_toy_model(data_root / 'body_models', 'smplx', 'female', n_shape=400, seed=60,
                                scale=MODEL_SCALE)
    betas = rng.normal(0, 0.5, 128)
    rest = arrays['v_template'] + arrays['shapedirs'][..., :128] @ betas
    write_ply(root / TEMPLATE, rest, arrays['f'])
    rest_pelvis = arrays['J_regressor'][0] @ rest
    K_full = np.array([[FULL_FOCAL_PX, 0, 1023.7], [0, FULL_FOCAL_PX, 749.2], [0, 0, 1]])
    result = {'betas': betas, 'images': []}
    for phase, (sequence, session, session_dir, date) in SEQUENCES.items():
        cameras = {k: (Y_DOWN_TO_Z_UP @ c, R @ Y_DOWN_TO_Z_UP.T)
                   for k, (c, R) in ((k, camera_for_yaw(yaw)) for k, yaw in CAMERA_YAWS.items())}
        json_path = root / 'MOYO' / session_dir / 'cameras' / date / 'calib_0' / 'cameras_param.json'
        json_path.parent.mkdir(parents=True, exist_ok=True)
        import json
        json_path.write_text(json.dumps({f'cam_{k}': {'focal': FULL_FOCAL_PX, 'princpt': K_full[:2, 2].tolist(),
                                                      'position': (centre * 1000).tolist(), 'rotation': R.tolist()}
                                         for k, (centre, R) in cameras.items()}))
        keys = [dict(pose=rng.normal(0, 0.2, 165), trans=rng.uniform(-0.1, 0.1, 3) - rest_pelvis + PERSON_CENTRE_M)
                for _ in range(4)]
        fullpose = rng.normal(0, 0.2, (N_FITS, 165))
        trans = keys[0]['trans'] + rng.normal(0, 0.05, (N_FITS, 3))
        for frame, key in FRAME_KEYS.items():
            fullpose[2 * frame] = keys[int(key)]['pose'] + key % 1
            trans[2 * frame] = keys[int(key)]['trans'] + key % 1
        mosh = root / 'MOYO' / session_dir / 'mosh' / phase / f'{sequence}_stageii.pkl'
        mosh.parent.mkdir(parents=True, exist_ok=True)
        with open(mosh, 'wb') as f:
            pickle.dump({'fullpose': fullpose, 'trans': trans, 'gender': 'female', 'mocap_frame_rate': 60.0,
                         'betas': np.zeros(16), 'num_betas': 16}, f, protocol=2)
        zip_path = root / 'MOYO' / session_dir / 'images' / phase / f'{session}_part0.zip'
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(zip_path, 'w') as archive:
            for camera_number in (1, 2):
                centre, R = cameras[camera_number]
                for frame in ZIP_FRAMES:
                    pose, tr = fullpose[2 * frame], trans[2 * frame]
                    joints = forward_kinematics(arrays, PARENTS['smplx'], pose, betas, tr)
                    pixels = project(joints * 1000, centre, R, half_size_intrinsics(K_full))
                    folder = f'YOGI_Cam_{camera_number:02d}'
                    member = f'{sequence}/{folder}/{sequence}_{folder}_{frame:04d}.jpg'
                    image = render_dots(pixels, WIDTH, HEIGHT)
                    archive.writestr(member, cv2.imencode('.jpg', image[..., ::-1],
                                                          [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())
                    result['images'].append(dict(phase=phase, zip=str(zip_path.relative_to(data_root)),
                                                 member=member, camera=camera_number, frame=frame, pixels=pixels,
                                                 joints_m=joints, pose=pose, trans=tr, centre_m=centre, R=R))
            archive.writestr(f'{sequence}/notes.txt', 'not an image')
    return result
