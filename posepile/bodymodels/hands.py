"""SMPL-X / SMPL+H hand poses: PCA coefficients expanded to full 15-joint axis-angle rotations, and full poses
assembled from the parts released fits store.

The official model files carry, per hand, `hands_components{l,r}` (45 x 45 or n x 45 rows: PCA basis vectors of the
45-D hand pose) and `hands_mean{l,r}` (45,), the mean hand pose. The smplx library's rule (SMPLX/SMPLH with
use_pca=True, flat_hand_mean=False), which the datasets' fits were made with:
    full_hand_pose (45,) = coefficients (n,) @ hands_components[:n] + hands_mean
and with use_pca=False (full rotations given), flat_hand_mean=False:
    full_hand_pose = given + hands_mean.
With flat_hand_mean=True the mean is not added. The result is what posepile.bodymodels' models and
`Pose3DExample.parameters['pose']` take (full rotations, mean included; posepile/bodymodels/transform.py).

Full pose layouts (root first, the model's joint order):
- SMPL-X (165 = 55 x 3): global_orient, body_pose (21), jaw, left eye, right eye, left hand (15), right hand (15);
- SMPL+H (156 = 52 x 3): global_orient, body_pose (21), left hand (15), right hand (15).

    pca = hand_pca(model.path)                      # read once per model file (cached)
    pose = smplx_full_pose(global_orient=g, body_pose=b, jaw_pose=j, leye_pose=l, reye_pose=r,
                           left_hand_pose=lh, right_hand_pose=rh, hand_pca=pca)   # lh/rh: n PCA coefficients
"""
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posepile.bodymodels.loading import BodyModelFormatError

HAND_POSE_DIM = 45  # 15 joints x 3
HAND_KEYS = ('hands_componentsl', 'hands_componentsr', 'hands_meanl', 'hands_meanr')


@dataclass(frozen=True)
class HandPCA:
    """The hand pose space of one model file: components (n, 45) per side, means (45,) per side."""
    components_left: np.ndarray
    components_right: np.ndarray
    mean_left: np.ndarray
    mean_right: np.ndarray

    def components(self, side):
        return self.components_left if _side(side) == 'left' else self.components_right

    def mean(self, side):
        return self.mean_left if _side(side) == 'left' else self.mean_right


def _side(side):
    side = str(side).lower()
    if side in ('l', 'left'):
        return 'left'
    if side in ('r', 'right'):
        return 'right'
    raise ValueError(f'unknown hand side {side!r}: use left or right')


def read_model_extras(path, keys):
    """{key: float64 array} of arrays of an official model file beyond the body model's own (hands_components*,
    hands_mean*, lmk_faces_idx, ...): plain arrays from an .npz, or the restricted unpickler for a .pkl (no code in
    the file is run). BodyModelFormatError (one line naming the file) when unreadable or a key is absent."""
    path = Path(path)
    try:
        if path.suffix.lower() == '.npz':
            with np.load(path, allow_pickle=False) as archive:
                return {k: np.asarray(archive[k], np.float64) for k in keys}
        from posepile.bodymodels.loading import restricted_load, to_dense
        with open(path, 'rb') as f:
            data = restricted_load(f)
        return {k: np.asarray(to_dense(data[k], k), np.float64) for k in keys}
    except KeyError as e:
        raise BodyModelFormatError(f'{path}: the model file lacks {e.args[0]}') from None
    except (OSError, ValueError, TypeError, EOFError) as e:
        raise BodyModelFormatError(f'{path}: cannot read {", ".join(keys)} ({type(e).__name__}: {e})') from None


def hand_pca(model_path):
    """HandPCA of an SMPL-X or SMPL+H model file (cached per path and modification time)."""
    path = Path(model_path)
    return _hand_pca_cached(str(path), path.stat().st_mtime_ns if path.exists() else 0)


@functools.lru_cache(maxsize=8)
def _hand_pca_cached(path, _mtime_ns):
    extras = read_model_extras(path, HAND_KEYS)
    components = [extras[k].reshape(-1, HAND_POSE_DIM) if extras[k].size % HAND_POSE_DIM == 0 else None
                  for k in HAND_KEYS[:2]]
    means = [extras[k].reshape(-1) for k in HAND_KEYS[2:]]
    if any(c is None or not len(c) or not np.all(np.isfinite(c)) for c in components):
        raise BodyModelFormatError(f'{path}: hands_components of shapes '
                                   f'{[extras[k].shape for k in HAND_KEYS[:2]]}, expected (n, 45) finite')
    if any(m.size != HAND_POSE_DIM or not np.all(np.isfinite(m)) for m in means):
        raise BodyModelFormatError(f'{path}: hands_mean of sizes {[m.size for m in means]}, expected 45 finite')
    return HandPCA(components[0], components[1], means[0], means[1])


def expand_hand_pose(hand_pose, hand_pca_or_components, side=None, mean=None, *, flat_hand_mean=False):
    """(..., 45) full hand pose of (..., n) PCA coefficients as the smplx library does:
    coefficients @ components[:n] + mean (mean omitted with flat_hand_mean). `hand_pca_or_components`: a HandPCA (then `side` 'left'/'right') or an (m, 45) basis (then
    `mean` (45,)). Coefficient counts above the basis size raise ValueError."""
    if isinstance(hand_pca_or_components, HandPCA):
        components, mean = hand_pca_or_components.components(side), hand_pca_or_components.mean(side)
    else:
        components = np.asarray(hand_pca_or_components, np.float64).reshape(-1, HAND_POSE_DIM)
        mean = np.zeros(HAND_POSE_DIM) if mean is None else np.asarray(mean, np.float64).reshape(HAND_POSE_DIM)
    coefficients = np.asarray(hand_pose, np.float64)
    n = coefficients.shape[-1]
    if n > len(components):
        raise ValueError(f'{n} hand PCA coefficients given, but the model has {len(components)} components')
    full = coefficients @ components[:n]
    return full if flat_hand_mean else full + mean


def full_hand_pose(hand_pose, hand_pca=None, side=None, *, use_pca=None, flat_hand_mean=False):
    """(..., 45) full rotations of a released hand pose: PCA coefficients are expanded; full rotations get the mean
    added unless flat_hand_mean (the smplx rule for use_pca=False). use_pca None: a (..., 15, 3) array is full
    rotations, otherwise PCA unless the last axis has 45 values (pass use_pca=True for 45 PCA coefficients)."""
    values = np.asarray(hand_pose, np.float64)
    if values.ndim >= 2 and values.shape[-2:] == (15, 3):
        values = values.reshape(values.shape[:-2] + (HAND_POSE_DIM,))
        use_pca = False if use_pca is None else use_pca
    if use_pca is None:
        use_pca = values.shape[-1] != HAND_POSE_DIM
    if use_pca:
        if hand_pca is None:
            raise ValueError('PCA hand coefficients need the model\'s hand_pca')
        return expand_hand_pose(values, hand_pca, side, flat_hand_mean=flat_hand_mean)
    if values.shape[-1] != HAND_POSE_DIM:
        raise ValueError(f'full hand pose of size {values.shape[-1]}, expected 45 (15 joints x 3)')
    if flat_hand_mean:
        return values
    if hand_pca is None:
        raise ValueError('adding the hand mean needs the model\'s hand_pca (or pass flat_hand_mean=True)')
    return values + hand_pca.mean(side)


def _flat(value, size, what):
    value = np.asarray(value, np.float64)
    flat = value.reshape(value.shape[:-2] + (-1,)) if value.ndim >= 2 and value.shape[-1] == 3 and \
        value.shape[-2] * 3 == size else value
    if flat.shape[-1] != size:
        raise ValueError(f'{what} has shape {value.shape}, expected {size} values (or {size // 3} x 3)')
    return flat


def smplx_full_pose(global_orient, body_pose, jaw_pose=None, leye_pose=None, reye_pose=None, left_hand_pose=None,
                    right_hand_pose=None, *, hand_pca=None, use_pca=None, flat_hand_mean=False):
    """(..., 165) SMPL-X full pose from the released parts (each (..., k) or (..., k/3, 3); a leading batch axis
    of 1 is fine). Missing face parts are zero; hands go through `full_hand_pose` (absent hands: the mean pose,
    as the smplx library's default zero coefficients give, unless flat_hand_mean)."""
    batch = np.asarray(global_orient, np.float64).reshape(-1, 3).shape[:-1]
    parts = [_flat(global_orient, 3, 'global_orient').reshape(batch + (3,)),
             _flat(body_pose, 63, 'body_pose').reshape(batch + (63,))]
    for value, what in ((jaw_pose, 'jaw_pose'), (leye_pose, 'leye_pose'), (reye_pose, 'reye_pose')):
        parts.append(np.zeros(batch + (3,)) if value is None else _flat(value, 3, what).reshape(batch + (3,)))
    parts.extend(_hands(left_hand_pose, right_hand_pose, batch, hand_pca, use_pca, flat_hand_mean))
    pose = np.concatenate(parts, axis=-1)
    return pose[0] if np.ndim(global_orient) == 1 else pose


def smplh_full_pose(global_orient, body_pose, left_hand_pose=None, right_hand_pose=None, *, hand_pca=None,
                    use_pca=None, flat_hand_mean=False):
    """(..., 156) SMPL+H full pose (global, body 21, left hand 15, right hand 15) from the released parts."""
    batch = np.asarray(global_orient, np.float64).reshape(-1, 3).shape[:-1]
    parts = [_flat(global_orient, 3, 'global_orient').reshape(batch + (3,)),
             _flat(body_pose, 63, 'body_pose').reshape(batch + (63,))]
    parts.extend(_hands(left_hand_pose, right_hand_pose, batch, hand_pca, use_pca, flat_hand_mean))
    pose = np.concatenate(parts, axis=-1)
    return pose[0] if np.ndim(global_orient) == 1 else pose


def _hands(left, right, batch, hand_pca, use_pca, flat_hand_mean):
    result = []
    for value, side in ((left, 'left'), (right, 'right')):
        if value is None:
            full = full_hand_pose(np.zeros(batch + (HAND_POSE_DIM,)), hand_pca, side, use_pca=False,
                                  flat_hand_mean=flat_hand_mean)
        else:
            full = full_hand_pose(np.asarray(value, np.float64), hand_pca, side, use_pca=use_pca,
                                  flat_hand_mean=flat_hand_mean)
        result.append(full.reshape(batch + (HAND_POSE_DIM,)))
    return result
