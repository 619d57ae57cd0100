"""A tiny DFAUST release: registrations_f.hdf5 / registrations_m.hdf5 (datasets '<subject>_<sequence>' of shape
(V, 3, T) float32 plus the shared 'faces' (F, 3)), the user-provided texture set textures/{female,male}/*.png and
the SMPL UV mesh smpl_uv.obj (v / vt / f v/vt), with toy gendered SMPL models whose registrations they are.

Layout evidence: DFAUST's official write_sequence_to_obj.py (read through the search tool: `f[sidseq]` with
sidseq = '<sid>_<seq>', `.transpose([2, 0, 1])` to (T, V, 3), `f['faces']` shared) and the original's render
recipe (nlf-era-facts §1.3: SMPLitex textures by gender, a UV-split SMPL mesh `smpl_uv.obj`). No real DFAUST
file is public here.

The toy SMPL ("toy body") has the real 24-joint tree and a person-shaped surface: one ellipsoid per joint along
its bone (the joint at its lower pole, which the joint regressor averages), the vertices near a joint blended
0.6 / 0.4 with the parent, shape blend shapes that map the whole body linearly plus a per-part thickness (later
betas weaker, as in a PCA space), small pose blend shapes, egg-shaped parts (no symmetry), one
texture strip per part. Its registrations are the toy model's own vertices, so a fit can be exact.
"""
from pathlib import Path

import numpy as np

from tests.toy_bodymodels import PARENTS

JOINTS_M = np.array([
    (0, 0, 0), (0.07, -0.09, 0), (-0.07, -0.09, 0), (0, 0.11, 0), (0.1, -0.47, 0), (-0.1, -0.47, 0),
    (0, 0.24, 0), (0.09, -0.87, -0.03), (-0.09, -0.87, -0.03), (0, 0.3, 0.02), (0.11, -0.94, 0.08),
    (-0.11, -0.94, 0.08), (0, 0.5, 0), (0.08, 0.42, 0), (-0.08, 0.42, 0), (0, 0.58, 0.02), (0.18, 0.45, 0),
    (-0.18, 0.45, 0), (0.43, 0.43, 0), (-0.43, 0.43, 0), (0.67, 0.44, 0), (-0.67, 0.44, 0), (0.75, 0.44, 0),
    (-0.75, 0.44, 0)], np.float64)
BONE_ENDS = {0: 3, 1: 4, 2: 5, 3: 6, 4: 7, 5: 8, 6: 9, 7: 10, 8: 11, 9: 12, 12: 15, 13: 16, 14: 17, 16: 18,
             17: 19, 18: 20, 19: 21, 20: 22, 21: 23}
LEAF_ENDS = {10: (0, -0.02, 0.1), 11: (0, -0.02, 0.1), 15: (0, 0.2, 0), 22: (0.08, 0, 0), 23: (-0.08, 0, 0)}
RADII_M = (0.13, 0.075, 0.075, 0.12, 0.055, 0.055, 0.12, 0.045, 0.045, 0.13, 0.04, 0.04, 0.05, 0.05, 0.05,
           0.09, 0.05, 0.05, 0.04, 0.04, 0.035, 0.035, 0.035, 0.035)
N_LAT, N_LON = 8, 10
N_SHAPE = 16

SEQUENCES = {'female': {'50004_hips': 3, '50020_one_leg_jump': 2}, 'male': {'50002_chicken_wings': 3}}
TEXTURES = {'female': ('smplitex_f0.png', 'smplitex_f1.png'), 'male': ('smplitex_m0.png',)}


def toy_body(seed=0, n_shape=N_SHAPE, n_lat=N_LAT, n_lon=N_LON):
    """(arrays in the official SMPL layout, uvs (V, 2), faces (F, 3)) of the toy body (module docstring)."""
    from posepile.render.primitives import uv_sphere
    rng = np.random.default_rng(seed)
    parents = PARENTS['smpl']
    n_joints = len(parents)
    joints = JOINTS_M * rng.uniform(0.97, 1.03)
    global_shape = rng.normal(0, 0.015, (n_shape, 3, 3))  # smooth shape space: a symmetric linear map per beta
    global_shape = global_shape + global_shape.transpose(0, 2, 1)  # (no rotation in the shape space, as SMPL)
    decay = 1 / np.sqrt(1 + np.arange(n_shape) / 2)  # later betas matter less, as in a PCA shape space
    global_shape *= decay[:, None, None]
    parts_vertices, parts_faces, parts_uvs, offsets, weights_rows, regressor_rows, dirs = [], [], [], 0, [], [], []
    for j in range(n_joints):
        end = joints[BONE_ENDS[j]] if j in BONE_ENDS else joints[j] + np.asarray(LEAF_ENDS[j])
        axis = end - joints[j]
        length = np.linalg.norm(axis)
        d = axis / length
        helper = np.array([0, 0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0, 0])
        a = np.cross(d, helper)
        a /= np.linalg.norm(a)
        c = np.cross(a, d)
        radius = RADII_M[j]
        half = max(length / 2, radius * 0.8)
        sphere = uv_sphere((0, 0, 0), (radius, half, radius * 0.7), n_lat, n_lon,
                           (j / n_joints, 0, (j + 1) / n_joints, 1))
        local = sphere.vertices.copy()
        local[:, 0] *= np.where(local[:, 0] > 0, 1.3, 1.0)  # egg-shaped, so that no rotation maps a part onto
        local[:, 1] *= np.where(local[:, 1] > 0, 1.15, 1.0)  # itself (real body parts have no symmetry either)
        centre = joints[j] + d * half
        vertices = centre + local[:, :1] * a + local[:, 1:2] * d + local[:, 2:3] * c
        n = len(vertices)
        lat_row = np.arange(n) // (n_lon + 1)
        w = np.zeros((n, n_joints))
        w[:, j] = 1
        if parents[j] >= 0:
            near = lat_row >= n_lat - 1
            w[near, j], w[near, parents[j]] = 0.6, 0.4
        regressor = np.zeros((n_joints, n))
        regressor[j, lat_row == n_lat] = 1 / np.sum(lat_row == n_lat)  # the lower pole, at the joint
        radial = (vertices - centre) - np.outer((vertices - centre) @ d, d)
        shape = (np.einsum('kac,vc->vak', global_shape, vertices)
                 + rng.normal(0, 0.08, n_shape) * decay * radial[:, :, None])
        dirs.append(shape)
        parts_vertices.append(vertices)
        parts_faces.append(sphere.faces + offsets)
        parts_uvs.append(sphere.uvs)
        weights_rows.append(w)
        regressor_rows.append(regressor)
        offsets += n
    v_template = np.concatenate(parts_vertices)
    faces = np.concatenate(parts_faces)
    n_vertices = len(v_template)
    part_of_vertex = np.repeat(np.arange(n_joints), [len(v) for v in parts_vertices])
    pose_dirs_per_part = rng.normal(0, 0.002, (n_joints, 3, (n_joints - 1) * 9))
    arrays = {'v_template': v_template, 'shapedirs': np.concatenate(dirs),
              'posedirs': pose_dirs_per_part[part_of_vertex], 'J_regressor': np.concatenate(regressor_rows, axis=1),
              'weights': np.concatenate(weights_rows), 'f': faces.astype(np.uint32),
              'kintree_table': np.array([[4294967295] + parents[1:], range(n_joints)], np.int64)}
    assert arrays['J_regressor'].shape == (n_joints, n_vertices)
    return arrays, np.concatenate(parts_uvs), faces


def write_toy_body(model_dir, gender, seed=0, n_shape=N_SHAPE, n_lat=N_LAT, n_lon=N_LON):
    """Write the toy body as $model_dir/smpl/SMPL_<GENDER>.pkl (official .pkl layout); returns (arrays, uvs).
    n_lat=16, n_lon=17: 7344 vertices, about SMPL's 6890 (for timing)."""
    from tests.toy_bodymodels import model_filename, write_official_pickle
    arrays, uvs, _ = toy_body(seed, n_shape, n_lat, n_lon)
    write_official_pickle(Path(model_dir) / 'smpl' / model_filename('smpl', gender), arrays)
    return arrays, uvs


def random_parameters(rng, n_frames, n_shape=N_SHAPE):
    """(pose (T, 72), betas (n_shape,), trans (T, 3)) of one subject's sequence: an upright body (root about y)
    with moderate joint rotations."""
    pose = rng.normal(0, 0.25, (n_frames, 72))
    pose[:, :3] = 0
    pose[:, 1] = rng.uniform(-np.pi, np.pi, n_frames)
    betas = rng.normal(0, 1, n_shape)
    trans = rng.normal(0, 0.2, (n_frames, 3)) + [0, 0.9, 0]
    return pose, betas, trans


def texture_image(seed, size=128):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size]
    base = rng.integers(40, 220, 3)
    return np.clip(base + 30 * np.sin(x[..., None] / 7 + rng.uniform(0, 6, 3)) + 20 * ((y // 16) % 2)[..., None],
                   0, 255).astype(np.uint8)


def write_fake_release(data_root, seed=0):
    """Writes the release and the toy models; returns {'sequences': {key: dict(gender, pose, betas, trans,
    vertices (T, V, 3))}, 'models': {gender: arrays}, 'faces', 'uvs'}."""
    import cv2
    import h5py
    data_root = Path(data_root)
    root = data_root / 'dfaust'
    root.mkdir(parents=True, exist_ok=True)
    from posepile.bodymodels import load
    rng = np.random.default_rng(seed)
    models, truth = {}, {}
    uvs = faces = None
    for i, gender in enumerate(('female', 'male')):
        arrays, uvs = write_toy_body(data_root / 'body_models', gender, seed=10 + i)
        models[gender] = arrays
        faces = arrays['f'].astype(np.int64)
        model = load('smpl', gender, data_root / 'body_models')
        with h5py.File(root / f'registrations_{gender[0]}.hdf5', 'w') as f:
            f.create_dataset('faces', data=faces.astype(np.int32))
            for key, n_frames in SEQUENCES[gender].items():
                pose, betas, trans = random_parameters(rng, n_frames)
                vertices = model(pose, betas, trans)['vertices'].astype(np.float32)
                f.create_dataset(key, data=vertices.transpose(1, 2, 0))  # (V, 3, T)
                truth[key] = dict(gender=gender, pose=pose, betas=betas, trans=trans, vertices=vertices)
        for k, name in enumerate(TEXTURES[gender]):
            path = root / 'textures' / gender / name
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), texture_image(seed * 10 + i * 3 + k)[..., ::-1])
    # the SMPL UV mesh: the template's vertices with the UV coordinates, faces 'f v/vt' (the SMPL website's file)
    template = models['female']['v_template']
    lines = [f'v {x:.6f} {y:.6f} {z:.6f}' for x, y, z in template]
    lines += [f'vt {u:.6f} {v:.6f}' for u, v in uvs]
    lines += [f'f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{c + 1}' for a, b, c in faces]
    (root / 'smpl_uv.obj').write_text('\n'.join(lines) + '\n')
    return {'sequences': truth, 'models': models, 'faces': faces, 'uvs': uvs}
