"""A tiny SURREAL release: cmu/<split>/run0/<seq>/<seq>_c0001.mp4 (320x240, mirrored as released, dots at
the joints), <seq>_c0001_info.mat (joints2D (2,24,N), joints3D (3,24,N) metres, camLoc (3,1), zrot (N,1), pose
(72,N), shape (10,N), gender (N,1) 0 female / 1 male, ...) and <seq>_c0001_segm.mat (segm_1 ... segm_N part labels);
and toy gendered SMPL models (official .pkl layout) under <root>/../body_models/smpl.

joints3D are the toy model's SMPL joints of the released fit, computed here independently of posepile.bodymodels as
SURREAL's are (checked on the real clip, see posepile/ds/surreal/main.py): the root orientation Rx(90 deg) Rz(zrot)
R(pose[:3]), the other joints' pose as released, the rest skeleton J_regressor (v_template + shapedirs betas), the
pelvis placed at a walking position."""
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

CLIPS = {'train': '01_01', 'test': '02_02'}
GENDER_OF_CLIP = {'train': 0, 'test': 1}  # 0 female, 1 male (as in _info.mat)
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
N_EXTRA_VERTICES = 6


def write_toy_smpl(model_dir, gender, rng):
    """A toy SMPL of `gender` at model_dir/smpl/SMPL_<GENDER>.pkl: the first 24 vertices are the rest joints
    (J_regressor = identity on them), a human-like layout in SMPL's y-up frame (metres); returns the arrays."""
    from tests.toy_bodymodels import write_official_pickle
    n_vertices = 24 + N_EXTRA_VERTICES
    rest = np.stack([rng.normal(0, 0.12, 24), rng.uniform(-0.85, 0.8, 24), rng.normal(0, 0.1, 24)], axis=1)
    weights = np.zeros((n_vertices, 24))
    weights[np.arange(n_vertices), np.arange(n_vertices) % 24] = 1
    arrays = {'v_template': np.concatenate([rest, rng.normal(0, 0.3, (N_EXTRA_VERTICES, 3))]),
              'shapedirs': rng.normal(0, 0.01, (n_vertices, 3, 10)),
              'posedirs': rng.normal(0, 0.005, (n_vertices, 3, 207)), 'J_regressor': np.eye(24, n_vertices),
              'weights': weights,
              'kintree_table': np.array([[4294967295] + SMPL_PARENTS[1:], list(range(24))], np.int64),
              'f': np.array([[0, 1, 2], [3, 4, 5]], np.uint32)}
    write_official_pickle(Path(model_dir) / 'smpl' / f'SMPL_{gender.upper()}.pkl', arrays)
    return arrays


def surreal_joints_m(arrays, pose, betas, zrot, pelvis_m):
    """(24, 3) world metres of one frame: forward kinematics with the root Rx(90) Rz(zrot) R(pose[:3])."""
    rest = arrays['J_regressor'] @ (arrays['v_template'] + arrays['shapedirs'] @ betas)
    local = Rotation.from_rotvec(pose.reshape(24, 3)).as_matrix()
    root = Rotation.from_euler('x', 90, degrees=True) * Rotation.from_euler('z', zrot) * Rotation.from_matrix(local[0])
    rotations, joints = [root.as_matrix()], [rest[0]]
    for j in range(1, 24):
        parent = SMPL_PARENTS[j]
        rotations.append(rotations[parent] @ local[j])
        joints.append(joints[parent] + rotations[parent] @ (rest[j] - rest[parent]))
    return np.array(joints) - rest[0] + pelvis_m


def write_fake_release(root, seed=0, n_frames=20):
    """Returns {split: joints3D (N, 24, 3) mm} and under 'fits' {split: dict(gender (0/1), pose (N, 72) as
    released, shape (N, 10), zrot)}; the toy models go to <root>/../body_models."""
    import cv2
    import scipy.io
    from posepile.ds.surreal import main as surreal
    from posepile.util.video import write_video
    rng = np.random.default_rng(seed)
    models = {g: write_toy_smpl(Path(root).parent / 'body_models', name, rng)
              for g, name in ((0, 'female'), (1, 'male'))}
    written = {'fits': {}}
    for split, seq in CLIPS.items():
        folder = Path(root) / 'cmu' / split / 'run0' / seq
        folder.mkdir(parents=True, exist_ok=True)
        cam_loc = np.array([[6.5 + rng.uniform(-0.5, 0.5)], [rng.uniform(-0.3, 0.3)], [1.0]])
        camera = surreal.camera_from_location(cam_loc)  # the released (mirrored) render camera
        gender = GENDER_OF_CLIP[split]
        betas = rng.normal(0, 1, 10)
        zrot = rng.uniform(-np.pi, np.pi)
        poses = rng.normal(0, 0.15, 72) + np.cumsum(rng.normal(0, 0.03, (n_frames, 72)), axis=0)
        pelvis = np.cumsum(rng.normal(0, 0.03, (n_frames, 3)), axis=0) * [1, 1, 0] + [0, 0, 0.9]
        joints3d = np.stack([surreal_joints_m(models[gender], poses[f], betas, zrot, pelvis[f])
                             for f in range(n_frames)])
        pixels = camera.world_to_image(joints3d * 1000)
        frames, segm = [], {}
        for f in range(n_frames):
            canvas = np.full((240, 320), 45.0, np.float32)
            labels = np.zeros((240, 320), np.uint8)
            ys, xs = np.mgrid[:240, :320]
            for j, (u, v) in enumerate(pixels[f]):
                canvas += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * 1.3 ** 2))
                cv2.circle(labels, (int(round(u)), int(round(v))), 5, j + 1, -1)
            frames.append(np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
            segm[f'segm_{f + 1}'] = labels
        write_video(folder / f'{seq}_c0001.mp4', frames, fps=30, quality=10)
        scipy.io.savemat(str(folder / f'{seq}_c0001_info.mat'), {
            'joints2D': np.round(pixels).transpose(2, 1, 0), 'joints3D': joints3d.transpose(2, 1, 0),
            'camLoc': cam_loc, 'camDist': np.array([[6.5]]), 'zrot': np.full((n_frames, 1), zrot),
            'pose': poses.T, 'shape': np.tile(betas[:, np.newaxis], (1, n_frames)),
            'gender': np.full((n_frames, 1), gender, np.uint8), 'sequence': seq, 'clipNo': np.array([[1]]),
            'stride': np.array([[50]])})
        scipy.io.savemat(str(folder / f'{seq}_c0001_segm.mat'), segm)
        written[split] = joints3d * 1000
        written['fits'][split] = dict(gender=gender, pose=poses, shape=np.tile(betas, (n_frames, 1)), zrot=zrot)
    return written
