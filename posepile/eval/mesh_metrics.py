"""Mesh and sequence metrics shared by the mesh benchmarks (EMDB, SSP-3D, EHF, HBW; 3DPW's MVE).

Units: positions in mm unless a name says otherwise, angles in degrees. Per-frame functions return arrays
(N,) (the mean over the points of each frame); a benchmark's figure is the mean of those over its frames
unless its module says otherwise.
"""
import numpy as np

from posepile.eval import alignment
from posepile.eval.metrics import joint_distances, rotation_angle_deg

# EMDB's jitter leaves out these SMPL joints (pelvis, ankles, feet, wrists, hands) by zeroing them
EMDB_JITTER_IGNORED_JOINTS = (0, 7, 8, 10, 11, 20, 21, 22, 23)


def per_frame_mean_distance(pred, gt):
    """(N,) mean Euclidean distance over the points of each frame, pred and gt (N, P, 3)."""
    return np.mean(joint_distances(pred, gt), axis=-1)


def root_aligned_errors(pred, gt, pred_root, gt_root):
    """(N,) mean distance per frame after subtracting each set's own root (pred_root, gt_root (N, 3)):
    e.g. MVE with the skeleton's pelvis as root."""
    return per_frame_mean_distance(alignment.subtract_root(pred, pred_root), alignment.subtract_root(gt, gt_root))


def procrustes_errors(pred, gt, scale=True):
    """(N,) mean distance per frame after the per-frame similarity (or rigid) alignment fitted on the same
    points (PA-MPJPE, PA-MPVPE)."""
    return per_frame_mean_distance(alignment.procrustes_align(pred, gt, scale=scale), gt)


def angle_errors_deg(pred_rotations, gt_rotations):
    """(N, K) geodesic angles in degrees between rotation stacks (N, K, 3, 3), after projecting the relative
    rotation onto the nearest rotation (as cv2.Rodrigues does in the 3DPW / EMDB evaluators)."""
    return rotation_angle_deg(pred_rotations, gt_rotations)


def jerk_magnitudes(positions, fps):
    """(N - 3, J) norm of the third finite difference x[t+3] - 3 x[t+2] + 3 x[t+1] - x[t], times fps^3, of a
    sequence (N, J, 3): the jerk in (unit of positions) / s^3. Empty for fewer than 4 frames."""
    x = np.asarray(positions, np.float64)
    third = x[3:] - 3 * x[2:-1] + 3 * x[1:-2] - x[:-3]
    return np.linalg.norm(third * fps ** 3, axis=-1)


def emdb_jitter(joints_m, fps=30, ignored_joints=EMDB_JITTER_IGNORED_JOINTS, scored_joints_only=False):
    """EMDB's Jitter of one sequence, in the official unit 10 m/s^3: the mean over frames and joints of the
    jerk magnitude (joints_m (N, J, 3) in METRES, consecutive rows taken as consecutive frames), divided by 10.

    The official code zeroes the ignored joints and then averages over all J joints, so the ignored ones count
    as zero jerk (a mean over 24 of which 9 are 0). That is the default; `scored_joints_only` averages over
    the other joints only (= the default x J / (J - len(ignored)))."""
    joints = np.array(joints_m, np.float64)
    ignored = list(ignored_joints)
    joints[:, ignored] = 0
    jerk = jerk_magnitudes(joints, fps)
    if scored_joints_only:
        jerk = np.delete(jerk, ignored, axis=1)
    if jerk.size == 0:
        return np.nan
    return float(np.mean(jerk) / 10)


def rasterize_silhouette(vertices_px, faces, height, width):
    """Binary mask (height, width) bool of a mesh projected to pixels: every triangle of `faces` (F, 3) with
    its vertices at vertices_px (V, 2) (x right, y down, pixel centres at integer coordinates) filled with
    cv2.fillConvexPoly (one call per triangle: cv2.fillPoly's even-odd rule would punch holes where triangles
    overlap; 4-bit subpixel precision). Triangles with a non-finite vertex are skipped. A stand-in for a
    renderer's silhouette (which counts a pixel when its centre is covered): the two differ only along the
    outline."""
    import cv2
    vertices_px = np.asarray(vertices_px, np.float64)
    faces = np.asarray(faces, np.int64)
    triangles = vertices_px[faces]  # (F, 3, 2)
    triangles = triangles[np.all(np.isfinite(triangles), axis=(1, 2))]
    # keep coordinates within int32 after the shift: far-off triangles cannot cover the image anyway
    limit = 4 * max(height, width) + 16
    shift = 4
    fixed = np.round(np.clip(triangles, -limit, limit) * (1 << shift)).astype(np.int32)
    # only triangles whose box meets the image
    lo, hi = fixed.min(axis=1), fixed.max(axis=1)
    visible = (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < width << shift) & (lo[:, 1] < height << shift)
    mask = np.zeros((height, width), np.uint8)
    for triangle in fixed[visible]:
        cv2.fillConvexPoly(mask, triangle, 1, lineType=cv2.LINE_8, shift=shift)
    return mask.astype(bool)


def silhouette_counts(pred_mask, gt_mask):
    """(true positives, false positives, false negatives) pixel counts of two boolean masks."""
    pred_mask = np.asarray(pred_mask, bool)
    gt_mask = np.asarray(gt_mask, bool)
    if pred_mask.shape != gt_mask.shape:
        raise ValueError(f'silhouette shapes differ: {pred_mask.shape} and {gt_mask.shape}')
    tp = int(np.count_nonzero(pred_mask & gt_mask))
    fp = int(np.count_nonzero(pred_mask & ~gt_mask))
    fn = int(np.count_nonzero(~pred_mask & gt_mask))
    return tp, fp, fn


def iou_from_counts(tp, fp, fn):
    """tp / (tp + fp + fn) (NaN when both masks are empty); arrays give elementwise IoUs."""
    tp, fp, fn = (np.asarray(v, np.float64) for v in (tp, fp, fn))
    with np.errstate(invalid='ignore', divide='ignore'):
        return tp / (tp + fp + fn)


class SMPLModelCache:
    """Gendered SMPL models from one folder, each loaded once: cache(gender) -> posepile.bodymodels model."""

    def __init__(self, model_dir):
        self.model_dir, self.models = model_dir, {}

    def __call__(self, gender):
        if gender not in self.models:
            from posepile import bodymodels
            self.models[gender] = bodymodels.load('smpl', gender, self.model_dir)
        return self.models[gender]
