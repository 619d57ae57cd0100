"""A tiny THuman2.0 release: THuman2.0_Release/<id>/<id>.obj + material0.mtl + material0.jpeg (textured procedural
mannequins, posepile.render.primitives, in the scans' y-up frame) and "THUman2.0 SMPL-X Paras"/<id>/smplx_param.pkl,
plus a toy male SMPL-X model with hand PCA components in $DATA_ROOT/body_models/smplx.

Layout evidence: the real parameter files (/work/shared/realdata/thuman2, SOURCES.md: a dict of (1, n) float32
arrays, 12 PCA hand components, scale () float64, translation (3,) float64 pickled as trimesh.caching.TrackedArray,
written here with a stand-in module so that trimesh is not needed), and the owners' README for the scan folder
(<id>/<id>.obj, material0.mtl, material0.jpeg)."""
import pickle
import sys
import types
from pathlib import Path

import numpy as np

SCANS = {'0000': dict(scale=0.53, translation=(0.0011, 0.1774, 0.0006), height=0.9, rotation=0.3),
         '0001': dict(scale=0.42, translation=(-0.0055, 0.1501, -0.0024), height=0.75, rotation=2.0)}


class _TrackedArray(np.ndarray):
    pass


def _pickle_with_tracked_array(params):
    """The bytes of pickle.dumps(params) with params['translation'] as a trimesh.caching.TrackedArray."""
    trimesh, caching = types.ModuleType('trimesh'), types.ModuleType('trimesh.caching')
    _TrackedArray.__module__, _TrackedArray.__qualname__, _TrackedArray.__name__ = (
        'trimesh.caching', 'TrackedArray', 'TrackedArray')
    caching.TrackedArray = _TrackedArray
    trimesh.caching = caching
    saved = {k: sys.modules.get(k) for k in ('trimesh', 'trimesh.caching')}
    sys.modules.update({'trimesh': trimesh, 'trimesh.caching': caching})
    try:
        params = dict(params, translation=np.asarray(params['translation'], np.float64).view(_TrackedArray))
        return pickle.dumps(params, protocol=2)
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module


def fit_of(scan_id, seed):
    rng = np.random.default_rng(seed)
    spec = SCANS[scan_id]
    f32 = lambda n, s=0.2: rng.normal(0, s, (1, n)).astype(np.float32)  # noqa: E731
    return {'betas': f32(10, 1.0), 'global_orient': f32(3), 'body_pose': f32(63), 'left_hand_pose': f32(12, 0.5),
            'right_hand_pose': f32(12, 0.5), 'jaw_pose': f32(3), 'leye_pose': f32(3), 'reye_pose': f32(3),
            'expression': f32(10), 'scale': np.float64(spec['scale']),
            'translation': np.array(spec['translation'], np.float64)}


def write_toy_smplx_with_hands(data_root):
    """A toy SMPL-X male model with 45 x 45 hand components and hand means (.npz, the official layout)."""
    from tests.toy_bodymodels import toy_arrays, write_npz
    arrays = toy_arrays('smplx', 20, 0)
    rng = np.random.default_rng(5)
    arrays.update(hands_componentsl=np.linalg.qr(rng.normal(0, 1, (45, 45)))[0].T,
                  hands_componentsr=np.linalg.qr(rng.normal(0, 1, (45, 45)))[0].T,
                  hands_meanl=rng.normal(0, 0.1, 45), hands_meanr=rng.normal(0, 0.1, 45))
    path = Path(data_root) / 'body_models' / 'smplx' / 'SMPLX_MALE.npz'
    write_npz(path, arrays)
    return arrays, path


def write_fake_release(data_root):
    """Writes the release; returns {'fits': {id: raw fit dict}, 'meshes': {id: Mesh}, 'model': arrays}."""
    from posepile.render import primitives, write_obj
    root = Path(data_root) / 'thuman2'
    fits, meshes = {}, {}
    for i, (scan_id, spec) in enumerate(SCANS.items()):
        mesh = primitives.mannequin(spec['height'], seed=i, rotation_y_rad=spec['rotation'], offset=(0, -0.4, 0))
        write_obj(root / 'THuman2.0_Release' / scan_id / f'{scan_id}.obj', mesh, texture_name='material0.jpeg',
                  mtl_name='material0.mtl')
        fits[scan_id] = fit_of(scan_id, i)
        path = root / 'THUman2.0 SMPL-X Paras' / scan_id / 'smplx_param.pkl'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_pickle_with_tracked_array(fits[scan_id]))
        meshes[scan_id] = mesh
    arrays, _ = write_toy_smplx_with_hands(data_root)
    return {'fits': fits, 'meshes': meshes, 'model': arrays}
