"""Alignments used by the mesh benchmarks (EMDB, SSP-3D, EHF, H3WB, HBW), on batches of point sets.

Conventions: points are arrays (N, P, 3) (a single set (P, 3) is accepted where noted), in any unit (the
result is in the same unit). Rotations are returned in the column-vector convention: aligned = s R p + t.
No function here ignores NaN: the mesh protocols score complete meshes and skeletons (use
posepile.eval.metrics.procrustes_align for skeletons with missing joints).
"""
import numpy as np


def _batched(points):
    points = np.asarray(points, np.float64)
    if points.ndim == 2:
        return points[np.newaxis], True
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f'expected points (N, P, 3) or (P, 3), got {points.shape}')
    return points, False


def fit_similarity(source, target, scale=True):
    """The least-squares similarity (scale=True) or rigid (scale=False) transform mapping each source set onto
    its target set, proper rotations only (Umeyama: the last singular vector flipped where the unconstrained
    optimum is a reflection; scale = trace(Sigma D) / ||source centred||^2).

    source, target: (N, P, 3) or (P, 3). Returns (s (N,), R (N, 3, 3), t (N, 3)) with target ~ s R source + t
    (unbatched for unbatched input). This is the transform of the EMDB / 3DPW evaluators'
    compute_similarity_transform and of Hand4Whole's rigid_align (same optimum, same reflection rule)."""
    source, single = _batched(source)
    target, _ = _batched(target)
    if source.shape != target.shape:
        raise ValueError(f'fit_similarity needs equal shapes, got {source.shape} and {target.shape}')
    mean_source = source.mean(axis=1, keepdims=True)
    mean_target = target.mean(axis=1, keepdims=True)
    centred_source = source - mean_source
    centred_target = target - mean_target
    covariance = np.matmul(centred_source.transpose(0, 2, 1), centred_target)  # sum_p s_p t_p^T
    u, sigma, vt = np.linalg.svd(covariance)
    reflection_fix = np.where(np.linalg.det(np.matmul(u, vt)) < 0, -1.0, 1.0)
    correction = np.ones_like(sigma)
    correction[:, -1] = reflection_fix
    rotation = np.matmul(vt.transpose(0, 2, 1) * correction[:, np.newaxis, :], u.transpose(0, 2, 1))
    if scale:
        s = np.sum(sigma * correction, axis=1) / np.maximum(np.sum(centred_source ** 2, axis=(1, 2)), 1e-300)
    else:
        s = np.ones(len(source))
    t = mean_target[:, 0] - s[:, np.newaxis] * np.einsum('nij,nj->ni', rotation, mean_source[:, 0])
    if single:
        return s[0], rotation[0], t[0]
    return s, rotation, t


def apply_similarity(points, s, R, t):
    """s R p + t for every point of each set: points (N, P, 3) with s (N,), R (N, 3, 3), t (N, 3), or the
    unbatched forms."""
    points = np.asarray(points, np.float64)
    s, R, t = np.asarray(s, np.float64), np.asarray(R, np.float64), np.asarray(t, np.float64)
    return s[..., np.newaxis, np.newaxis] * np.matmul(points, np.swapaxes(R, -1, -2)) + t[..., np.newaxis, :]


def procrustes_align(source, target, scale=True, also=None):
    """source aligned to target by fit_similarity; with `also` (points of the same sets, e.g. the mesh whose
    skeleton is `source`) also those moved by the same transform: returns (aligned_source, aligned_also)."""
    s, R, t = fit_similarity(source, target, scale=scale)
    aligned = apply_similarity(source, s, R, t)
    if also is None:
        return aligned
    return aligned, apply_similarity(also, s, R, t)


def subtract_root(points, root):
    """points (..., P, 3) minus root (..., 3): e.g. a mesh made relative to its skeleton's pelvis."""
    return np.asarray(points, np.float64) - np.asarray(root, np.float64)[..., np.newaxis, :]


def mid_hip(joints, left_hip, right_hip):
    """(..., 3) the mean of the two hip joints of joints (..., J, 3) (EMDB's and H3WB's pelvis)."""
    joints = np.asarray(joints, np.float64)
    return (joints[..., left_hip, :] + joints[..., right_hip, :]) / 2


def rms_scale_translation_align(source, target):
    """SSP-3D's scale correction: each source set moved to the target's centroid and scaled so that its RMS
    distance from the centroid equals the target's (no rotation). source, target: (N, P, 3) or (P, 3)."""
    source, single = _batched(source)
    target, _ = _batched(target)
    centred_source = source - source.mean(axis=1, keepdims=True)
    target_mean = target.mean(axis=1, keepdims=True)
    source_rms = np.sqrt(np.mean(np.sum(centred_source ** 2, axis=-1), axis=1, keepdims=True))[..., np.newaxis]
    target_rms = np.sqrt(np.mean(np.sum((target - target_mean) ** 2, axis=-1), axis=1, keepdims=True))[..., np.newaxis]
    result = centred_source / source_rms * target_rms + target_mean
    return result[0] if single else result


def centroid_align(source, target):
    """source translated so that its centroid is the target's (HBW's point_error alignment). (N, P, 3) or
    (P, 3); source and target may have different point counts."""
    source = np.asarray(source, np.float64)
    target = np.asarray(target, np.float64)
    return source - source.mean(axis=-2, keepdims=True) + target.mean(axis=-2, keepdims=True)
