"""A tiny ARCTIC release in the raw layout (posepile/ds/arctic/main.py), with toy SMPL-X models whose shape space
has 300 columns (16 betas exist).

Evidence for the layout: the official toolkit (github.com/zc-alexfan/arctic: docs/data, common/body_models.py
build_smplx with use_pca=False, flat_hand_mean=True; the dataset loader's `vidx = image index - ioi_offset[sid]`;
meta/misc.json with gender, intris_mat, world2cam, ioi_offset, image_size; meta/subject_vtemplates/<sid>.obj;
splits_json/protocol_p1.json; raw_seqs/<sid>/<seq>.smplx.npy) and the original recipe's reader (images_zips/<sid>/
<seq>.zip with members <view>/<image index:05d>.jpg). No real ARCTIC file is public.

Subject s01 (male, ioi_offset 2), train sequence s01/box_grab_01 and val sequence s01/phone_use_02 (3 mocap frames
each: P0, P0 + 0.5 mm, P1), a test sequence listed but absent; 8 allocentric views on a circle (z-up world) plus
an ego view 0 in the zips (ignored); the val zip lacks view 8's image of mocap frame 0. Images 1400x1000.
"""
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np

from tests.fakes.intercap import camera_for_yaw, forward_kinematics, project, render_dots
from tests.fakes.moyo import PERSON_CENTRE_M, Y_DOWN_TO_Z_UP
from tests.toy_bodymodels import PARENTS, write_toy_model

WIDTH, HEIGHT = 1400, 1000
FOCAL_PX = 1500.0
MODEL_SCALE = 0.6
IOI_OFFSET = 2
FRAME_KEYS = (0, 0.0005, 1)
SEQUENCES = {'s01/box_grab_01': 'train', 's01/phone_use_02': 'val'}
MISSING = (('s01/phone_use_02', 8, 0),)  # (sequence, view, mocap frame)


def write_obj(path, vertices, faces):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f'v {x:.9f} {y:.9f} {z:.9f}' for x, y, z in vertices] + [f'f {a + 1} {b + 1} {c + 1}' for a, b, c in faces]
    path.write_text('# fake subject template\n' + '\n'.join(lines) + '\n')


def write_fake_release(data_root, seed=0):
    """Write the release under data_root/arctic and toy SMPL-X models under data_root/body_models.

    Returns dict(betas (16,), images=[dict(sequence, split, view, frame (mocap), member, pixels (55, 2),
    joints_m (55, 3), pose (165,), transl (3,))]).
    """
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    root = data_root / 'arctic'
    arrays, _ = write_toy_model(data_root / 'body_models', 'smplx', 'male', n_shape=400, seed=70, scale=MODEL_SCALE)
    betas = rng.normal(0, 0.5, 16)
    rest = arrays['v_template'] + arrays['shapedirs'][..., :16] @ betas
    write_obj(root / 'meta' / 'subject_vtemplates' / 's01.obj', rest, arrays['f'])
    rest_pelvis = arrays['J_regressor'][0] @ rest
    cameras = [(Y_DOWN_TO_Z_UP @ c, R @ Y_DOWN_TO_Z_UP.T)
               for c, R in (camera_for_yaw(yaw) for yaw in np.linspace(0, 360, 8, endpoint=False))]
    K = np.array([[FOCAL_PX, 0, 699.6], [0, FOCAL_PX, 500.2], [0, 0, 1]])
    misc = {'s01': {'gender': 'male', 'ioi_offset': IOI_OFFSET, 'image_size': [[WIDTH, HEIGHT]] * 9,
                    'intris_mat': [K.tolist()] * 8,
                    'world2cam': [np.block([[R, (-R @ c)[:, None]], [np.zeros((1, 3)), np.ones((1, 1))]]).tolist()
                                  for c, R in cameras]}}
    (root / 'meta').mkdir(parents=True, exist_ok=True)
    (root / 'meta' / 'misc.json').write_text(json.dumps(misc))
    (root / 'splits_json').mkdir(parents=True, exist_ok=True)
    (root / 'splits_json' / 'protocol_p1.json').write_text(json.dumps(
        {'train': [s for s, v in SEQUENCES.items() if v == 'train'],
         'val': [s for s, v in SEQUENCES.items() if v == 'val'], 'test': ['s01/ketchup_use_01']}))
    result = {'betas': betas, 'images': []}
    for sequence, split in SEQUENCES.items():
        keys = [dict(pose=rng.normal(0, 0.2, 165), transl=rng.uniform(-0.1, 0.1, 3) - rest_pelvis + PERSON_CENTRE_M)
                for _ in range(2)]
        poses = np.stack([keys[int(k)]['pose'] + k % 1 for k in FRAME_KEYS])
        transl = np.stack([keys[int(k)]['transl'] + k % 1 for k in FRAME_KEYS])
        parts, start = {}, 0
        for key, size in (('global_orient', 3), ('body_pose', 63), ('jaw_pose', 3), ('leye_pose', 3),
                          ('reye_pose', 3), ('left_hand_pose', 45), ('right_hand_pose', 45)):
            parts[key] = poses[:, start:start + size].astype(np.float32)
            start += size
        npy = root / 'raw_seqs' / f'{sequence}.smplx.npy'
        npy.parent.mkdir(parents=True, exist_ok=True)
        np.save(npy, dict(parts, transl=transl.astype(np.float32)), allow_pickle=True)
        poses, transl = poses.astype(np.float32).astype(np.float64), transl.astype(np.float32).astype(np.float64)
        zip_path = root / 'images_zips' / f'{sequence}.zip'
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(zip_path, 'w') as archive:
            for frame in range(len(FRAME_KEYS)):
                joints = forward_kinematics(arrays, PARENTS['smplx'], poses[frame], betas, transl[frame])
                for view in range(0, 9):
                    if (sequence, view, frame) in MISSING:
                        continue
                    member = f'{sequence.split("/")[1]}/{view}/{frame + IOI_OFFSET:05d}.jpg'
                    pixels = project(joints * 1000, *cameras[view - 1], K) if view else np.zeros((0, 2))
                    image = render_dots(pixels, WIDTH, HEIGHT)
                    archive.writestr(member, cv2.imencode('.jpg', image[..., ::-1],
                                                          [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())
                    if view:
                        result['images'].append(dict(sequence=sequence, split=split, view=view, frame=frame,
                                                     member=member, pixels=pixels, joints_m=joints,
                                                     pose=poses[frame], transl=transl[frame]))
    return result
