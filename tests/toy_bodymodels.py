"""Toy SMPL / SMPL+H / SMPL-X model files for tests and fakes, in the official layouts, built by the toy-model
writer of tests/test_bodymodels.py (imported, not copied): a few vertices, the real 24 / 52 / 55-joint trees.

`write_toy_model(model_dir, model_type, gender)` writes the file posepile.bodymodels.load finds;
`write_toy_smplx_full(model_dir, gender, dense_vertices)` writes an SMPL-X file with the official vertex count
(10475) so that the smplx library's vertex ids (nose, toes, finger tips) and landmark faces exist: the extra
vertices are skinned like the toy's, pose blend shapes are non-zero only on `dense_vertices` (float32,
uncompressed: fast to write and read), with hand PCA components/means and 51 landmark faces as in SMPLX_*.npz.
"""
from pathlib import Path

import numpy as np

from tests.test_bodymodels import N_EXTRA_VERTICES, PARENTS, toy_arrays, write_npz, write_official_pickle

SMPLX_N_VERTICES = 10475
SMPLX_N_LANDMARKS = 51
__all__ = ['PARENTS', 'N_EXTRA_VERTICES', 'toy_arrays', 'write_npz', 'write_official_pickle', 'write_toy_model',
           'write_toy_smplx_full', 'SMPLX_N_VERTICES']


def model_filename(model_type, gender):
    if model_type == 'smpl':
        return f'SMPL_{gender.upper()}.pkl'
    if model_type == 'smplh':
        return f'SMPLH_{gender}.pkl'
    return f'SMPLX_{gender.upper()}.npz'


def write_toy_model(model_dir, model_type, gender, n_shape=10, seed=0, scale=1.0):
    """(arrays, path): a toy model of `model_type` and `gender` under model_dir/<model_type>/ in the official
    file layout (.pkl with chumpy/scipy objects for SMPL and SMPL+H, .npz for SMPL-X); `scale` multiplies the
    template and the blend shapes (a body of human size for rendering fakes)."""
    arrays = toy_arrays(model_type, n_shape, seed)
    for key in ('v_template', 'shapedirs', 'posedirs'):
        arrays[key] = arrays[key] * scale
    path = Path(model_dir) / model_type / model_filename(model_type, gender)
    if model_type == 'smplx':
        write_npz(path, arrays)
    else:
        write_official_pickle(path, arrays)
    return arrays, path


def write_toy_smplx_full(model_dir, gender, dense_vertices=(), seed=0, n_shape=20, scale=1.0):
    """(arrays incl. hands_components{l,r}, hands_mean{l,r}, lmk_faces_idx, lmk_bary_coords; path) of a toy
    SMPL-X .npz with 10475 vertices at model_dir/smplx/SMPLX_<GENDER>.npz. n_shape=20: the SMPL-X v1.0 layout
    (10 shape, then 10 expression columns); `scale` multiplies the template and the blend shapes."""
    base = toy_arrays('smplx', n_shape, seed)
    rng = np.random.default_rng(seed + 100)
    n_joints, n_base = len(PARENTS['smplx']), len(base['v_template'])
    n_extra = SMPLX_N_VERTICES - n_base
    v_template = np.concatenate([base['v_template'], rng.normal(0, 0.3, (n_extra, 3))])
    shapedirs = np.concatenate([base['shapedirs'], rng.normal(0, 0.05, (n_extra, 3, n_shape))])
    posedirs = np.zeros((SMPLX_N_VERTICES, 3, (n_joints - 1) * 9))
    posedirs[:n_base] = base['posedirs']
    faces = rng.integers(0, SMPLX_N_VERTICES, (200, 3)).astype(np.uint32)
    lmk_faces_idx = rng.choice(len(faces), SMPLX_N_LANDMARKS, replace=False).astype(np.uint32)
    dense = sorted(set(int(v) for v in dense_vertices) | set(faces[lmk_faces_idx].ravel().tolist()))
    posedirs[dense] = rng.normal(0, 0.02, (len(dense), 3, (n_joints - 1) * 9))
    weights = np.zeros((SMPLX_N_VERTICES, n_joints))
    weights[:n_base] = base['weights']
    extra = np.arange(n_extra)
    weights[n_base + extra, (extra * 7) % n_joints] = 0.7
    weights[n_base + extra, (extra * 7 + 3) % n_joints] += 0.3
    regressor = np.zeros((n_joints, SMPLX_N_VERTICES))
    regressor[:, :n_base] = base['J_regressor']
    bary = rng.uniform(0.1, 1, (SMPLX_N_LANDMARKS, 3))
    arrays = dict(base, v_template=v_template, shapedirs=shapedirs, posedirs=posedirs, weights=weights,
                  J_regressor=regressor, f=faces,
                  hands_componentsl=np.linalg.qr(rng.normal(0, 1, (45, 45)))[0].T,
                  hands_componentsr=np.linalg.qr(rng.normal(0, 1, (45, 45)))[0].T,
                  hands_meanl=rng.normal(0, 0.1, 45), hands_meanr=rng.normal(0, 0.1, 45),
                  lmk_faces_idx=lmk_faces_idx, lmk_bary_coords=bary / bary.sum(1, keepdims=True))
    for key in ('v_template', 'shapedirs', 'posedirs'):
        arrays[key] = arrays[key] * scale
    path = Path(model_dir) / 'smplx' / model_filename('smplx', gender)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v.astype(np.float32) if k == 'posedirs' else v for k, v in arrays.items()})  # ~60 MB
    return arrays, path


def roundtrip_errors_mm(parameters, world_mm, cameras, model):
    """Max joint error (mm) per camera of world-frame `parameters` rototranslated into each posepile Camera
    (posepile.bodymodels.rototranslate with camera.t / 1000) and run through `model`, against
    camera.world_to_camera(world_mm) ((n_joints, 3) world joints in the model's joint order)."""
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    errors = []
    for camera in cameras:
        in_camera = bodymodels.rototranslate(parameters, camera.R, np.asarray(camera.t) / 1000, model=model)
        errors.append(float(np.linalg.norm(parameter_joints_mm(in_camera, model)
                                           - camera.world_to_camera(np.asarray(world_mm, np.float64)),
                                           axis=-1).max()))
    return errors


def other_camera(seed):
    """A random proper camera (any orientation, optical centre within 4 m of the origin), for round trips."""
    from scipy.spatial.transform import Rotation

    from posepile.util.camera import Camera
    rng = np.random.default_rng(seed)
    return Camera(optical_center=rng.uniform(-4000, 4000, 3), rot_world_to_cam=Rotation.random(random_state=seed)
                  .as_matrix(), intrinsic_matrix=[[1000, 0, 500], [0, 1000, 500], [0, 0, 1]])
