"""A tiny 3DPW release: sequenceFiles/{train,validation,test}/<seq>.pkl as protocol-2 pickles with the real
keys (sequence, betas, genders, poses, trans, poses2d, jointPositions, img_frame_ids, cam_poses,
campose_valid, cam_intrinsics), loadable with pickle.load(f, encoding='latin1') like the originals; and tiny
gendered toy SMPL models in the official .pkl layout (read by posepile.bodymodels)."""
import pickle
from pathlib import Path

import numpy as np

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
SEQUENCES = {'train': {'courtyard_a_00': 2}, 'validation': {'downtown_b_01': 1},
             'test': {'office_c_00': 1, 'outdoors_d_02': 2}}


SMPL_FILES = {'f': 'basicModel_f_lbs_10_207_0_v1.0.0.pkl', 'm': 'basicmodel_m_lbs_10_207_0_v1.0.0.pkl'}


def write_smpl_models(folder, seed=0, n_vertices=60, identity_regressor=False):
    """Gendered toy SMPL models in the official .pkl layout (chumpy shapedirs, scipy.sparse J_regressor, posedirs,
    weights, kintree_table, f): random template and shape directions; a J_regressor averaging vertices, or with
    identity_regressor the first 24 vertices are the rest joints (spread out: dots in rendered frames stay apart).
    Returns {'f' | 'm': path}."""
    from tests.toy_bodymodels import write_official_pickle
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    paths = {}
    for gender, name in SMPL_FILES.items():
        if identity_regressor:
            regressor = np.eye(24, n_vertices)
        else:
            regressor = rng.random((24, n_vertices)) ** 4
            regressor /= regressor.sum(1, keepdims=True)
        weights = np.zeros((n_vertices, 24))
        weights[np.arange(n_vertices), np.arange(n_vertices) % 24] = 1
        arrays = {'v_template': rng.normal(0, 0.4 if not identity_regressor else 0.3, (n_vertices, 3)),
                  'shapedirs': rng.normal(0, 0.02, (n_vertices, 3, 10)),
                  'posedirs': rng.normal(0, 0.01, (n_vertices, 3, 207)),
                  'J_regressor': regressor, 'weights': weights,
                  'kintree_table': np.array([[4294967295] + SMPL_PARENTS[1:], list(range(24))], np.int64),
                  'f': rng.integers(0, n_vertices, (8, 3)).astype(np.uint32)}
        paths[gender] = write_official_pickle(folder / name, arrays)
    return paths


def write_fake_release(root, seed=0, n_frames=15, smpl_dir=None):
    """Returns {(split, sequence): data dict}. With smpl_dir, jointPositions are generated from the toy
    SMPL models so that both GT paths agree."""
    rng = np.random.default_rng(seed)
    models = None
    if smpl_dir is not None:
        from posepile.ds.tdpw import main as tdpw
        models = {g: tdpw.load_smpl_model(Path(smpl_dir) / n, tdpw.GENDERS[g]) for g, n in SMPL_FILES.items()}
    written = {}
    for split, sequences in SEQUENCES.items():
        for sequence, n_actors in sequences.items():
            cam_poses = np.tile(np.eye(4), (n_frames, 1, 1))
            angles = rng.uniform(-0.3, 0.3, n_frames)
            for f, a in enumerate(angles):
                cam_poses[f, :3, :3] = [[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
                cam_poses[f, :3, 3] = [0.1 * f, 0, 4]
            data = {'sequence': sequence, 'betas': [], 'genders': [], 'poses': [], 'trans': [], 'poses2d': [],
                    'jointPositions': [], 'campose_valid': [], 'img_frame_ids': np.arange(n_frames),
                    'cam_poses': cam_poses, 'cam_intrinsics': np.array([[1961, 0, 540], [0, 1969, 960], [0, 0, 1.]])}
            for actor in range(n_actors):
                gender = 'mf'[rng.integers(2)]
                betas = rng.normal(0, 1, 10)
                # smooth motion, as 30 fps video: a joint moves millimetres per frame (so adaptive 100 mm
                # thinning, which the recipe must not apply, would drop most frames)
                poses = rng.normal(0, 0.2, 72) + np.cumsum(rng.normal(0, 0.004, (n_frames, 72)), 0)
                trans = np.cumsum(rng.normal(0, 0.005, (n_frames, 3)), 0) + [actor * 0.8, 0, 0]
                if models is not None:
                    from posepile.ds.tdpw import main as tdpw
                    joints = tdpw.smpl_joints(models[gender], poses, betas, trans).reshape(n_frames, 72)
                else:
                    joints = (rng.normal(0, 0.3, (24, 3)) + trans[:, np.newaxis]).reshape(n_frames, 72)
                poses2d = rng.uniform(1, 1000, (n_frames, 3, 18))
                poses2d[2] = 0  # no 2D detection in frame 2: invalid
                valid = np.ones(n_frames, bool)
                valid[5] = False  # camera pose invalid in frame 5
                for key, value in (('betas', betas), ('genders', gender), ('poses', poses), ('trans', trans),
                                   ('poses2d', poses2d), ('jointPositions', joints), ('campose_valid', valid)):
                    data[key].append(value)
            folder = Path(root) / 'sequenceFiles' / split
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / f'{sequence}.pkl', 'wb') as f:
                pickle.dump(data, f, protocol=2)
            written[(split, sequence)] = data
    return written


def write_images(root, written, width=1080, height=1920):
    """imageFiles/<seq>/image_%05d.jpg (portrait 1080x1920 as most 3DPW sequences) with a dot at the
    projection of every joint of every actor."""
    from posepile.ds.tdpw import main as tdpw
    from posepile.util import improc
    for (split, sequence), data in written.items():
        for frame in range(len(data['cam_poses'])):
            camera = tdpw.frame_camera(data, frame)
            canvas = np.full((height, width), 45.0, np.float32)
            for joints in data['jointPositions']:
                for u, v in camera.world_to_image(np.asarray(joints[frame]).reshape(24, 3) * 1000):
                    if 10 <= u < width - 10 and 10 <= v < height - 10:
                        y0, x0 = int(v) - 9, int(u) - 9
                        ys, xs = np.mgrid[y0:y0 + 19, x0:x0 + 19]
                        canvas[y0:y0 + 19, x0:x0 + 19] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / 8)
            image = np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
            improc.write_jpeg_atomic(Path(root) / 'imageFiles' / sequence / f'image_{frame:05d}.jpg', image, 95)
