"""Matching person detections to ground-truth people.

The detection box (not the joint box) becomes the example's box in most datasets, so that training crops
have the statistics of test-time detector boxes.
"""
import numpy as np
from scipy.optimize import linear_sum_assignment

from posepile.util import boxes as boxlib


def associate_boxes(gt_boxes, det_boxes, min_iou=0.1, max_area_ratio=None, min_score=None):
    """Optimal one-to-one assignment (Hungarian, maximising the total IoU).

    gt_boxes (G, 4), det_boxes (D, 4|5) [x, y, w, h(, score)]. Pairs with IoU < min_iou (or a detection
    more than `max_area_ratio` times larger than the GT box, or scoring below `min_score`) are not allowed.
    Returns (G,) int64: index of the matched detection, or -1.
    """
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    det_boxes = np.asarray(det_boxes, np.float64)
    det_boxes = det_boxes.reshape(-1, det_boxes.shape[-1] if det_boxes.size else 5)
    result = np.full(len(gt_boxes), -1, np.int64)
    if len(gt_boxes) == 0 or len(det_boxes) == 0:
        return result
    ious = boxlib.iou_matrix(gt_boxes, det_boxes[:, :4])
    allowed = ious >= min_iou
    if max_area_ratio is not None:
        ratio = (det_boxes[:, 2] * det_boxes[:, 3])[np.newaxis] / np.maximum(
            gt_boxes[:, 2] * gt_boxes[:, 3], 1e-9)[:, np.newaxis]
        allowed &= ratio < max_area_ratio
    if min_score is not None and det_boxes.shape[1] > 4:
        allowed &= det_boxes[np.newaxis, :, 4] > min_score
    allowed &= np.isfinite(ious)
    cost = np.where(allowed, -np.nan_to_num(ious), 1.0)
    rows, cols = linear_sum_assignment(cost)
    good = allowed[rows, cols]
    result[rows[good]] = cols[good]
    return result


def box_union_rule_3dhp(joint_box, det_boxes, min_hull_iou=0.5):
    """MPI-INF-3DHP's rule: take the most confident detection; if the hull of it and the joint box still
    overlaps the joint box with IoU > 0.5, use that hull (the detection may cut off limbs the joints
    reach), else fall back to the joint box."""
    joint_box = np.asarray(joint_box, np.float64)
    det_boxes = np.asarray(det_boxes, np.float64).reshape(-1, 5)
    if len(det_boxes) == 0:
        return joint_box
    best = det_boxes[np.argmax(det_boxes[:, 4]), :4]
    hull = boxlib.hull(best, joint_box)
    return hull if boxlib.iou(hull, joint_box) > min_hull_iou else joint_box


def best_iou_box(gt_box, det_boxes, min_iou=0.5, use_hull=False):
    """Single-person rule: the detection of highest IoU with the GT box if IoU >= min_iou (optionally its
    hull with the GT box), else the GT box itself."""
    gt_box = np.asarray(gt_box, np.float64)
    det_boxes = np.asarray(det_boxes, np.float64).reshape(-1, 5)
    if len(det_boxes) == 0:
        return gt_box
    ious = boxlib.iou_matrix(gt_box[np.newaxis], det_boxes[:, :4])[0]
    best = int(np.argmax(ious))
    if ious[best] < min_iou:
        return gt_box
    return boxlib.hull(det_boxes[best, :4], gt_box) if use_hull else det_boxes[best, :4]
