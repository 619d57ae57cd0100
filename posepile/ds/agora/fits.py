"""AGORA's per-person SMPL-X fits (the `gt_path_smplx` files of the SMPL-X tables) as `Pose3DExample.parameters`.

A fit file (<root>/<gt_path_smplx with the extension .pkl>, e.g. smplx_gt/<group>/<scan>/<scan>.pkl) is a pickled
dict of (1, n) numpy arrays: global_orient 3, body_pose 63, jaw_pose 3, leye_pose 3, reye_pose 3, left_hand_pose 45,
right_hand_pose 45 (full axis-angle, WITHOUT the SMPL-X hand mean: AGORA's code builds the models with
flat_hand_mean=False), betas 10 (kids: 11, the last one the weight of the kid template, `kid_factor`),
expression 10, transl 3, plus entries unused here (keypoints_3d, v, pose_embedding, ...; some may be torch
objects). It is read by `_FitUnpickler`: numpy's array/dtype/scalar reconstruction and builtin containers are
resolved, every `torch.*` global is replaced by an inert stand-in that stores nothing (so such entries load as
placeholders and are never used), anything else is refused. No code from the file runs; what remains trusted is
numpy's reconstruction of arrays from the pickled bytes.

Frames (AGORA's projection code, as validated against the tables' gt_joints_3d; the original's adjust_body is the
same transform written as euler2mat(-(yaw + 90) deg, 0, pi, 'syxz')): a fit's points X_fit go to the scene
(the posepile world frame of main.get_camera: OpenCV axes, metres) by
    X_world = A X_fit + p,   A = Ry(Yaw - 90 deg) diag(1, -1, -1),   p = unreal_to_opencv([X, Y, Z] cm / 100),
with Ry(a) the rotation about y by a (cv2.Rodrigues([0, a, 0])), Yaw, X, Y, Z the table's per-person columns.

Parameters (posepile/bodymodels/transform.py convention): type 'smplx'; gender from the table, female kids as
'neutral' (AGORA's evaluation code uses the neutral kid model for them, as the original); pose (165,) with the hand
means added; shape = the first 10 (adult: all) betas; expression; kid_factor for kids (the original's key; the
kid template, AGORA's smplx_kid_template.npy, is not part of posepile.bodymodels); trans in metres.
Rototranslations use the posed pelvis instead of a body model: the root joint of SMPL-X does not move with the
pose, so pelvis = J0 + trans exactly, where J0 is the rest pelvis (of betas, expression and kid_factor). The tables'
SMPL-X joint 0 (gt_joints_3d, camera frame) is that pelvis, hence J0 = A^T (pelvis_world - p) - transl exactly, for
kids too, and any later rigid move X -> M X + m gives root' = M root, trans' = M pelvis + m - J0. The stored
parameters are in the world frame (posepile/bodymodels/transform.py); for adults,
posepile.bodymodels.rototranslate moves them into a camera, for kids (kid_factor: the kid template is not part of
posepile.bodymodels) smplfitter's rototranslate with the kid template, or move_parameters with the posed pelvis.
"""
import functools
import io
import pickle
from pathlib import Path

import numpy as np

POSE_PARTS = (('global_orient', 3), ('body_pose', 63), ('jaw_pose', 3), ('leye_pose', 3), ('reye_pose', 3),
              ('left_hand_pose', 45), ('right_hand_pose', 45))
N_SHAPE = 10
SMPLX_SKELETON = (*range(25), 28, 43)  # SMPL-X joints among the 66 that are skeleton joints (not vertex-based)
DATASET_SKELETON = tuple(range(24, 24 + len(SMPLX_SKELETON)))  # their places among the dataset's 66 joints
PELVIS_INDEX = 24  # pelv_smplx among the dataset's 66 joints
UNREAL_TO_OPENCV = np.array([[0, 1, 0], [0, 0, -1], [1, 0, 0]], np.float64)


def _error(message):
    from posepile.ds.agora.main import AgoraFormatError
    return AgoraFormatError(message)


# ------------------------------------------------------------------------------------------------
# Reading
class _TorchStandIn:
    """Replaces any torch class or function of a pickle: takes anything, stores nothing, runs nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


def _numpy_globals():
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric
    allowed = {('numpy', 'ndarray'): np.ndarray, ('numpy', 'dtype'): np.dtype}
    for prefix in ('numpy.core', 'numpy._core'):
        allowed[(f'{prefix}.multiarray', '_reconstruct')] = multiarray._reconstruct
        allowed[(f'{prefix}.multiarray', 'scalar')] = multiarray.scalar
        allowed[(f'{prefix}.numeric', '_frombuffer')] = numeric._frombuffer
    return allowed


_BUILTINS = {'list': list, 'dict': dict, 'tuple': tuple, 'set': set, 'frozenset': frozenset, 'int': int,
             'float': float, 'str': str, 'bytes': bytes, 'bool': bool, 'complex': complex, 'slice': slice,
             'bytearray': bytearray, 'object': object}


class _FitUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == 'torch' or module.startswith('torch.'):
            return type(f'{module}.{name}', (_TorchStandIn,), {})
        allowed = _numpy_globals()
        if (module, name) in allowed:
            return allowed[(module, name)]
        if module == 'numpy.dtypes' and name.endswith('DType') and hasattr(np.dtypes, name):
            return getattr(np.dtypes, name)
        if module in ('builtins', '__builtin__') and name in _BUILTINS:
            return _BUILTINS[name]
        if module == 'collections' and name == 'OrderedDict':
            from collections import OrderedDict
            return OrderedDict
        if module == '_codecs' and name == 'encode':
            import codecs
            return codecs.encode
        raise pickle.UnpicklingError(f'refusing the global {module}.{name} (not part of a fit of numpy arrays)')


def fit_path(root, gt_path):
    """The fit file of a table's gt_path_smplx entry: the same path under `root` with the extension .pkl."""
    return Path(root) / Path(str(gt_path)).with_suffix('.pkl')


def _vector(data, key, path, size=None):
    value = data.get(key)
    if value is None:
        raise _error(f'{path}: the fit has no {key!r}')
    if isinstance(value, _TorchStandIn):
        raise _error(f'{path}: {key} is a torch object, expected a numpy array')
    try:
        value = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise _error(f'{path}: {key} is not numeric ({type(value).__name__})') from None
    if value.ndim == 2 and len(value) != 1:
        raise _error(f'{path}: {key} has shape {value.shape}, expected one parameter set')
    value = value.reshape(-1)
    if size is not None and value.size != size:
        raise _error(f'{path}: {key} has {value.size} values, expected {size}')
    if not np.all(np.isfinite(value)):
        raise _error(f'{path}: {key} has non-finite values')
    return value


def load_smplx_fit(path, is_kid):
    """dict(pose (165,) without hand means, betas, kid_factor, expression, transl) of a fit file, validated."""
    path = Path(path)
    try:
        with open(path, 'rb') as f:
            data = _FitUnpickler(io.BytesIO(f.read()), encoding='latin1').load()
    except FileNotFoundError:
        raise _error(f'{path}: fit file missing (extract the SMPL-X fits archive, see main.sh)') from None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError) as e:
        raise _error(f'{path}: not a readable fit pickle ({type(e).__name__}: {e})') from None
    if not isinstance(data, dict):
        raise _error(f'{path}: expected a dict of parameters, found {type(data).__name__}')
    pose = np.concatenate([_vector(data, key, path, size) for key, size in POSE_PARTS])
    betas = _vector(data, 'betas', path)
    if betas.size < 1 + is_kid:
        raise _error(f'{path}: {betas.size} betas, too few for a{" kid" if is_kid else "n adult"}')
    kid_factor = float(betas[-1]) if is_kid else 0.0
    betas = betas[:-1] if is_kid else betas
    expression = _vector(data, 'expression', path) if 'expression' in data else np.zeros(0)
    return dict(pose=pose, betas=betas, kid_factor=kid_factor, expression=expression,
                transl=_vector(data, 'transl', path, 3))


@functools.lru_cache(maxsize=8)
def hand_means(model_path):
    """(hands_meanl (45,), hands_meanr (45,)) of an SMPL-X model file (.npz or .pkl)."""
    model_path = Path(model_path)
    try:
        if model_path.suffix.lower() == '.npz':
            with np.load(model_path, allow_pickle=False) as npz:
                means = [np.asarray(npz[k], np.float64).reshape(-1) for k in ('hands_meanl', 'hands_meanr')]
        else:
            from posepile.bodymodels.loading import restricted_load, to_dense
            with open(model_path, 'rb') as f:
                data = restricted_load(f)
            means = [to_dense(data[k], k).astype(np.float64).reshape(-1) for k in ('hands_meanl', 'hands_meanr')]
    except KeyError as e:
        raise _error(f'{model_path}: the SMPL-X model has no {e.args[0]} (the hand mean pose)') from None
    except (OSError, ValueError, pickle.UnpicklingError) as e:
        raise _error(f'{model_path}: cannot read the hand means ({type(e).__name__}: {e})') from None
    if any(m.size != 45 or not np.all(np.isfinite(m)) for m in means):
        raise _error(f'{model_path}: hand means of sizes {[m.size for m in means]}, expected 45 finite values')
    return tuple(means)


def parameter_gender(gender, is_kid):
    """The table's gender as the model gender: female kids use the neutral (kid) model, as in AGORA's code."""
    gender = str(gender).strip().lower()
    if gender not in ('female', 'male', 'neutral'):
        raise ValueError(f'unknown gender {gender!r}')
    return 'neutral' if is_kid and gender == 'female' else gender


# ------------------------------------------------------------------------------------------------
# Frames
def _rot_y(angle_rad):
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def fit_to_world(yaw_deg, location_cm):
    """(A, p): X_world = A X_fit + p for a person with the table's Yaw (deg) and X, Y, Z (Unreal cm)."""
    rotation = _rot_y(np.deg2rad(yaw_deg - 90)) @ np.diag([1.0, -1.0, -1.0])
    return rotation, UNREAL_TO_OPENCV @ (np.asarray(location_cm, np.float64) / 100)


def move_parameters(params, rotation, translation_m, pelvis_m):
    """`params` of a body whose points X move rigidly to rotation @ X + translation_m (metres): the root turns by
    `rotation`, trans' = rotation @ pelvis + translation - J0 with J0 = pelvis - trans, `pelvis_m` the posed pelvis
    (SMPL-X joint 0) in the frame of `params`."""
    from scipy.spatial.transform import Rotation
    rotation = np.asarray(rotation, np.float64)
    pelvis = np.asarray(pelvis_m, np.float64).reshape(3)
    rest_pelvis = pelvis - np.asarray(params['trans'], np.float64).reshape(3)
    pose = np.array(params['pose'], np.float64)
    pose[:3] = Rotation.from_matrix(rotation @ Rotation.from_rotvec(pose[:3]).as_matrix()).as_rotvec()
    trans = rotation @ pelvis + np.asarray(translation_m, np.float64).reshape(3) - rest_pelvis
    return {**params, 'pose': pose.astype(np.float32), 'trans': trans.astype(np.float32)}


def world_parameters(fit, gender, is_kid, yaw_deg, location_cm, pelvis_world_m, means):
    """The fit as a world-frame parameter dict. `pelvis_world_m`: the table's SMPL-X joint 0 in the world frame
    (metres); `means`: the SMPL-X hand means of the gender's model."""
    pose = np.array(fit['pose'], np.float64)
    pose[75:120] += means[0]
    pose[120:165] += means[1]
    params = dict(type='smplx', gender=parameter_gender(gender, is_kid), pose=pose.astype(np.float32),
                  shape=np.asarray(fit['betas'], np.float32), trans=np.asarray(fit['transl'], np.float32))
    if fit['expression'].size:
        params['expression'] = np.asarray(fit['expression'], np.float32)
    if is_kid:
        params['kid_factor'] = np.float32(fit['kid_factor'])
    rotation, offset = fit_to_world(yaw_deg, location_cm)
    # the fit's pelvis is J0 + transl; in the world it is rotation @ (J0 + transl) + offset = pelvis_world
    pelvis_fit = rotation.T @ (np.asarray(pelvis_world_m, np.float64) - offset)
    params = move_parameters({**params, 'trans': np.asarray(fit['transl'], np.float64)}, rotation, offset,
                             pelvis_fit)
    return params


def check_against_model(params, world_mm, model):
    """Max deviation (mm) of the model's skeleton joints of world-frame `params` (adults) from the dataset's
    SMPL-X skeleton joints: catches frame-convention errors (the pelvis alone always matches)."""
    out = model(np.asarray(params['pose'], np.float64)[None], np.asarray(params['shape'], np.float64)[None],
                np.asarray(params['trans'], np.float64)[None],
                expression=None if 'expression' not in params else np.asarray(params['expression'])[None],
                return_vertices=False)
    joints_mm = out['joints'][0][list(SMPLX_SKELETON)] * 1000
    return float(np.abs(joints_mm - np.asarray(world_mm, np.float64)[list(DATASET_SKELETON)]).max())
