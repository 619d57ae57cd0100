"""Pose metrics, as defined in docs protocols.md section 2.1.

Conventions: coordinates are in millimetres, poses are arrays (N, J, 3) (a single pose (J, 3) is accepted
where noted). Per-joint functions return distances in mm, shape (N, J); aggregate functions take such
distances (any shape) and return a scalar.

Two kinds of non-finite distance mean different things:
- NaN: the joint is not scored (its ground truth is not annotated); every aggregate ignores it.
- +inf: the joint is scored and missed (e.g. the prediction is NaN, which the official 3DHP and MuPoTS
  scripts count as a miss): it stays in the denominator of PCK / AUC / CPS, scoring 0 there.
`joint_distances(..., nan_prediction_is_miss=True)` produces that +inf for NaN predictions.
"""
import numpy as np

# MPI-INF-3DHP / MuPoTS official AUC thresholds (mpii_compute_3d_pck.m: 0:5:150, 31 values, strict <)
AUC_3DHP_THRESHOLDS_MM = np.arange(0, 151, 5, dtype=np.float64)
# 3DPW challenge evaluator: PCK (<=) at the integer thresholds 0..199 mm
AUC_3DPW_THRESHOLDS_MM = np.arange(200, dtype=np.float64)


def joint_distances(pred, gt, nan_prediction_is_miss=False):
    """Euclidean distance per joint in mm, shape (..., J) for inputs (..., J, 3). NaN where the GT is NaN;
    where only the prediction is non-finite, NaN too, or +inf (a miss) with `nan_prediction_is_miss`."""
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    diff = pred - gt
    dists = np.sqrt(np.einsum('...i,...i->...', diff, diff))
    if nan_prediction_is_miss:
        missed = ~np.all(np.isfinite(pred), axis=-1) & np.all(np.isfinite(gt), axis=-1)
        dists = np.where(missed, np.inf, dists)
    return dists


def mpjpe(pred, gt):
    """Per-joint position errors (N, J) in mm; the MPJPE is their np.nanmean (NaN GT joints ignored).
    For the usual root-relative protocol pass root-relative poses (see `root_relative`)."""
    return joint_distances(pred, gt)


def root_relative(coords, root_index):
    """Poses (..., J, 3) minus their root joint. root_index: an int, or a sequence of joint indices whose
    mean is the root (e.g. the two hips for a mid-hip root)."""
    coords = np.asarray(coords, np.float64)
    if np.isscalar(root_index):
        root = coords[..., root_index:root_index + 1, :]
    else:
        root = np.mean(coords[..., list(root_index), :], axis=-2, keepdims=True)
    return coords - root


def procrustes_align(pred, gt, scale=True, fit_joints=None, return_rotation=False,
                     scale_before_reflection_fix=False):
    """Align each predicted pose to its GT pose with the least-squares similarity transform
    (scale=True) or rigid transform (scale=False), proper rotations only (reflections are never used).

    pred, gt: (N, J, 3) or (J, 3), mm. The transform of each pose is fitted on `fit_joints` (default: all
    joints) restricted to joints finite in both pred and GT, and applied to all joints. Closed form
    (Umeyama): centre both point sets, SVD of the 3x3 cross-covariance, flip the last singular vector if
    the optimum would be a reflection, scale = trace(Sigma D) / ||pred centred||^2.
    A pose with no variation (e.g. all zeros) maps to the GT centroid.
    scale_before_reflection_fix: take the scale from all singular values as they are, before the
    reflection is removed (sum(Sigma) / ||pred centred||^2), as ASPset's evaluator (posekit's
    point_set_registration) does. Differs from the least-squares scale only for poses whose best
    orthogonal fit is a reflection.

    Returns the aligned predictions, same shape as pred, mm; with return_rotation also the rotations
    (N, 3, 3) (or (3, 3)) in column-vector convention: aligned = s * R @ p + t.
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if pred.shape != gt.shape or pred.shape[-1] != 3 or pred.ndim not in (2, 3):
        raise ValueError(f'procrustes_align needs equal shapes (N, J, 3) or (J, 3), got {pred.shape} '
                         f'and {gt.shape}')
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
        centred_pred = (pred0 - mean_pred) * w  # joints outside the fit contribute nothing
        centred_gt = (gt0 - mean_gt) * w
    covariance = np.matmul(centred_pred.transpose(0, 2, 1), centred_gt)  # X0^T Y0, batched 3x3
    u, sigma, vt = np.linalg.svd(covariance)
    # det(U V^T) is +-1; -1 where the unconstrained optimum would be a reflection
    reflection_fix = np.where(np.linalg.det(np.matmul(u, vt)) < 0, -1.0, 1.0)
    correction = np.ones_like(sigma)
    correction[:, -1] = reflection_fix
    rotation_row = np.matmul(u * correction[:, np.newaxis, :], vt)  # row-vector convention: p @ R
    if scale:
        norm_pred = np.sum(centred_pred ** 2, axis=(1, 2))
        singular_sum = np.sum(sigma if scale_before_reflection_fix else sigma * correction, axis=1)
        s = singular_sum / np.maximum(norm_pred, 1e-12)
    else:
        s = np.ones(len(pred))
    aligned = s[:, np.newaxis, np.newaxis] * np.matmul(pred - mean_pred, rotation_row) + mean_gt
    if return_rotation:
        rotation_col = rotation_row.transpose(0, 2, 1)
        return (aligned[0], rotation_col[0]) if single else (aligned, rotation_col)
    return aligned[0] if single else aligned


def rotation_angle_deg(rot_a, rot_b):
    """Angle in degrees of the relative rotation rot_a @ rot_b^T, for (..., 3, 3) stacks.

    The relative matrix is first projected onto the nearest orthogonal matrix (U V^T of its SVD), as
    cv2.Rodrigues does in the 3DPW evaluator, so inputs that are not exact rotations (averaged or
    float16 predictions) get the angle of their nearest rotation; for true rotations nothing changes."""
    relative = np.matmul(np.asarray(rot_a, np.float64), np.swapaxes(np.asarray(rot_b, np.float64), -1, -2))
    u, _, vt = np.linalg.svd(relative)
    relative = np.matmul(u, vt)
    cos = (np.trace(relative, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def pa_mpjpe(pred, gt, fit_joints=None):
    """Per-joint errors (N, J) in mm after per-pose Procrustes alignment with scale (no reflection),
    fitted on `fit_joints` (default all valid joints). Average with np.nanmean for the PA-MPJPE."""
    return joint_distances(procrustes_align(pred, gt, scale=True, fit_joints=fit_joints), gt)


def n_mpjpe(pred, gt):
    """Per-joint errors (N, J) in mm after the per-pose least-squares scale s = sum<p,g> / sum<p,p>
    (VideoPose3D protocol #3, "N-MPJPE"), sums over the joints valid in both. Give root-relative poses.
    Accepts (N, J, 3) or a single (J, 3)."""
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    valid = np.all(np.isfinite(gt), -1, keepdims=True) & np.all(np.isfinite(pred), -1, keepdims=True)
    p, g = np.where(valid, pred, 0), np.where(valid, gt, 0)
    s = np.sum(p * g, axis=(-2, -1)) / np.maximum(np.sum(p * p, axis=(-2, -1)), 1e-12)
    return joint_distances(s[..., np.newaxis, np.newaxis] * pred, gt)


def _scored(dists_mm):
    """The distances that count: NaN (not annotated) dropped, +inf (a miss) kept."""
    d = np.asarray(dists_mm, np.float64).ravel()
    return d[~np.isnan(d)]


def pck(dists_mm, threshold_mm, inclusive=False):
    """Percentage (0-100) of the scored (non-NaN; +inf = miss) joint distances within the threshold: d < threshold_mm
    (3DHP/MuPoTS/PosePile), or d <= threshold_mm with inclusive=True (3DPW, ASPset). NaN if none valid."""
    d = _scored(dists_mm)
    if d.size == 0:
        return np.nan
    hits = d <= threshold_mm if inclusive else d < threshold_mm
    return 100.0 * np.mean(hits)


def auc_3dhp(dists_mm):
    """MPI-INF-3DHP / MuPoTS official AUC in percent: the mean of PCK (strict <) over the 31 thresholds
    0, 5, ..., 150 mm (threshold 0 included, where PCK is 0). Per distance this equals
    max(0, 1 - (floor(d / 5) + 1) / 31)."""
    d = _scored(dists_mm)
    if d.size == 0:
        return np.nan
    # count of distances below each threshold from one sort, not a (distances x thresholds) comparison
    below = np.searchsorted(np.sort(d), AUC_3DHP_THRESHOLDS_MM, side='left') / d.size
    return 100.0 * np.mean(below)


def auc_continuous(dists_mm, threshold_mm=150.0):
    """The exact integral of PCK(t) over t in [0, threshold_mm], divided by threshold_mm, in percent
    (PosePile's "real" AUC): mean(max(0, 1 - d / threshold_mm))."""
    d = _scored(dists_mm)
    if d.size == 0:
        return np.nan
    return 100.0 * np.mean(np.clip(1 - d / threshold_mm, 0, None))


def auc_3dpw(dists_mm):
    """3DPW challenge AUC as a FRACTION in [0, 1]: PCK (<=, as a fraction) at the integer thresholds
    0..199 mm on x = t / 199, integrated over [0, 1] as a piecewise-linear function (the exact value of the
    evaluator's scipy.integrate.quad of np.interp, up to quad's tolerance)."""
    d = _scored(dists_mm)
    if d.size == 0:
        return np.nan
    pcks = np.searchsorted(np.sort(d), AUC_3DPW_THRESHOLDS_MM, side='right') / d.size
    x = AUC_3DPW_THRESHOLDS_MM / AUC_3DPW_THRESHOLDS_MM[-1]
    return float(np.sum((pcks[1:] + pcks[:-1]) / 2 * np.diff(x)))


def worst_joint_distances(dists_mm):
    """Largest scored joint distance per pose (N,) in mm from (N, J) (+inf if a joint was missed); NaN for a
    pose with no scored joint."""
    d = np.asarray(dists_mm, np.float64)
    scored = ~np.isnan(d)
    worst = np.max(np.where(scored, d, -np.inf), axis=-1)
    return np.where(scored.any(axis=-1), worst, np.nan)


def cps(dists_mm, threshold_mm):
    """Correct Pose Score in percent: share of poses whose worst valid joint error is < threshold_mm.
    dists_mm: (N, J). Poses without any valid joint are left out; NaN if none remain.
    The continuous AUC of worst-joint errors is auc_continuous(worst_joint_distances(d), threshold)."""
    worst = _scored(worst_joint_distances(dists_mm))
    if worst.size == 0:
        return np.nan
    return 100.0 * np.mean(worst < threshold_mm)
