"""Pose metrics (protocols.md section 2.1). Coordinates in mm; arrays (N, J, 3); NaN ground-truth joints
are excluded (their distance is NaN and every aggregate ignores NaN)."""
import numpy as np

AUC_3DHP_THRESHOLDS_MM = np.arange(0, 151, 5, dtype=np.float64)  # 0, 5, ..., 150: 31 thresholds


def joint_distances(pred, gt):
    """Per-joint Euclidean distances (N, J) in mm."""
    diff = np.asarray(pred, np.float64) - np.asarray(gt, np.float64)
    return np.sqrt(np.einsum('...i,...i->...', diff, diff))


def mpjpe(pred, gt):
    """Per-joint errors (N, J) mm; average them (np.nanmean) for the MPJPE. Make both root-relative first
    for the usual root-relative protocol (see root_relative)."""
    return joint_distances(pred, gt)


def root_relative(coords, root_index):
    coords = np.asarray(coords, np.float64)
    return coords - coords[..., root_index:root_index + 1, :]


def procrustes_align(pred, gt, scale=True, fit_joints=None, return_rotation=False):
    """Align each predicted pose to its GT by the least-squares similarity (or rigid) transform, proper
    rotations only (no reflections). Fitted on `fit_joints` (default: all joints valid in the GT) and
    applied to all joints. Returns the aligned predictions (N, J, 3), and with return_rotation also the
    rotations (N, 3, 3) in the column-vector convention (aligned = s * R @ p + t)."""
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    single = pred.ndim == 2
    if single:
        pred, gt = pred[np.newaxis], gt[np.newaxis]
    all_valid = fit_joints is None and np.isfinite(gt).all() and np.isfinite(pred).all()
    if all_valid:  # the common case, without masking arithmetic
        mean_pred = pred.mean(axis=1, keepdims=True)
        mean_gt = gt.mean(axis=1, keepdims=True)
        centred_pred = pred - mean_pred
        centred_gt = gt - mean_gt
    else:
        weights = np.all(np.isfinite(gt), axis=-1) & np.all(np.isfinite(pred), axis=-1)
        if fit_joints is not None:
            mask = np.zeros(pred.shape[1], bool)
            mask[fit_joints] = True
            weights &= mask
        w = weights[..., np.newaxis].astype(np.float64)
        n_valid = np.maximum(w.sum(axis=1, keepdims=True), 1)
        pred0 = np.where(w > 0, pred, 0)
        gt0 = np.where(w > 0, gt, 0)
        mean_pred = pred0.sum(axis=1, keepdims=True) / n_valid
        mean_gt = gt0.sum(axis=1, keepdims=True) / n_valid
        centred_pred = (pred0 - mean_pred) * w
        centred_gt = (gt0 - mean_gt) * w
    covariance = np.matmul(centred_pred.transpose(0, 2, 1), centred_gt)  # X0^T Y0, batched 3x3
    u, sigma, vt = np.linalg.svd(covariance)
    d = np.sign(np.linalg.det(np.matmul(u, vt)))  # -1 where a reflection would be optimal
    correction = np.ones_like(sigma)
    correction[:, -1] = d
    rotation = np.matmul(u * correction[:, np.newaxis, :], vt)  # applied as p @ R
    if scale:
        norm_pred = np.sum(centred_pred ** 2, axis=(1, 2))
        s = np.sum(sigma * correction, axis=1) / np.maximum(norm_pred, 1e-12)
    else:
        s = np.ones(len(pred))
    aligned = s[:, np.newaxis, np.newaxis] * np.matmul(pred - mean_pred, rotation) + mean_gt
    if return_rotation:
        rotation_col = rotation.transpose(0, 2, 1)
        return (aligned[0], rotation_col[0]) if single else (aligned, rotation_col)
    return aligned[0] if single else aligned


def rotation_angle_deg(rot_a, rot_b):
    """Angle (degrees) of the relative rotation rot_a @ rot_b^T, for (..., 3, 3) stacks."""
    relative = np.matmul(rot_a, np.swapaxes(rot_b, -1, -2))
    cos = (np.trace(relative, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def pa_mpjpe(pred, gt, fit_joints=None):
    """Per-joint errors (N, J) after Procrustes alignment with scale."""
    return joint_distances(procrustes_align(pred, gt, scale=True, fit_joints=fit_joints), gt)


def n_mpjpe(pred, gt):
    """Per-joint errors (N, J) after the least-squares scale s = sum<p,g> / sum<p,p> per pose
    (VideoPose3D's protocol #3; give root-relative poses)."""
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    valid = np.all(np.isfinite(gt), -1, keepdims=True) & np.all(np.isfinite(pred), -1, keepdims=True)
    p, g = np.where(valid, pred, 0), np.where(valid, gt, 0)
    s = np.sum(p * g, axis=(1, 2)) / np.maximum(np.sum(p * p, axis=(1, 2)), 1e-12)
    return joint_distances(s[:, np.newaxis, np.newaxis] * pred, gt)


def pck(dists_mm, threshold_mm, inclusive=False):
    """Percentage of (valid) joint distances below the threshold (<, or <= with inclusive)."""
    d = np.asarray(dists_mm, np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return np.nan
    hits = d <= threshold_mm if inclusive else d < threshold_mm
    return 100.0 * np.mean(hits)


def auc_3dhp(dists_mm):
    """MPI-INF-3DHP / MuPoTS AUC in %: mean of PCK (strict <) over the thresholds 0, 5, ..., 150 mm."""
    d = np.asarray(dists_mm, np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return np.nan
    # fraction below each threshold from one sort instead of a (distances x thresholds) comparison
    below = np.searchsorted(np.sort(d), AUC_3DHP_THRESHOLDS_MM, side='left') / d.size
    return 100.0 * np.mean(below)


def auc_continuous(dists_mm, threshold_mm=150.0):
    """Exact area under PCK(t) for t in [0, threshold] divided by the threshold, in %:
    mean(max(0, 1 - d / threshold))."""
    d = np.asarray(dists_mm, np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return np.nan
    return 100.0 * np.mean(np.clip(1 - d / threshold_mm, 0, None))


def auc_3dpw(dists_mm):
    """3DPW challenge AUC as a FRACTION: PCK (<=) at integer thresholds 0..199 mm, integrated piecewise
    linearly over x normalised to [0, 1] (what scipy.integrate.quad of np.interp converges to)."""
    d = np.asarray(dists_mm, np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return np.nan
    thresholds = np.arange(200, dtype=np.float64)
    pcks = np.searchsorted(np.sort(d), thresholds, side='right') / d.size
    x = np.linspace(0, 1, len(thresholds))
    return float(np.sum((pcks[1:] + pcks[:-1]) / 2 * np.diff(x)))


def cps(dists_mm, threshold_mm):
    """Correct Pose Score in %: poses whose worst (valid) joint error is below the threshold.
    dists_mm: (N, J)."""
    worst = np.nanmax(np.asarray(dists_mm, np.float64), axis=1)
    return 100.0 * np.mean(worst < threshold_mm)
