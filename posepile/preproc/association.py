"""Matching person detections to ground-truth people.

The detection box (not the joint box) becomes the example's box in most datasets, so that training crops
have the statistics of test-time detector boxes.
"""
import numpy as np
from scipy.optimize import linear_sum_assignment

from posepile.util import boxes as boxlib


def associate_boxes(gt_boxes, det_boxes, min_iou=0.1, max_area_ratio=None, min_score=None, joints2d=None,
                    min_joints_inside=None):
    """Optimal one-to-one assignment of detections to GT people (Hungarian, maximising the summed IoU).

    gt_boxes (G, 4), det_boxes (D, 4|5) [x, y, w, h(, score)]. Pairs with IoU < min_iou (or a detection
    at least `max_area_ratio` times larger than the GT box, or scoring at most `min_score`) are not allowed
    (the original's "IoU > 0.1, det area < 2x GT, conf > 0.1" filters).
    With `min_joints_inside`, a match is then kept only if at least that many of the person's projected joints
    (`joints2d`: per GT person (J, 2) px, NaN = not counted) lie inside the matched detection box, else the
    person is unmatched (the original's ego-dataset rule "Hungarian IoU >= 0.2 and >= 6 projected joints in the
    detection": EgoBody, EgoHumans, Ego-Exo4D). The check follows the assignment, as the original's does; the
    rejected detection is not offered to anyone else.
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
    # Disallowed pairs gain nothing (cost 0, like leaving both unmatched), so the assignment maximises
    # the summed IoU of allowed pairs rather than the number of matches.
    cost = np.where(allowed, -np.nan_to_num(ious), 0.0)
    rows, cols = linear_sum_assignment(cost)
    good = allowed[rows, cols]
    result[rows[good]] = cols[good]
    if min_joints_inside is not None:
        if joints2d is None or len(joints2d) != len(gt_boxes):
            raise ValueError('min_joints_inside needs the projected joints (J, 2) of every GT person')
        for row in np.flatnonzero(result >= 0):
            if n_joints_inside(det_boxes[result[row], :4], joints2d[row]) < min_joints_inside:
                result[row] = -1
    return result


def n_joints_inside(box, joints2d):
    """How many of the points (J, 2) px lie inside box [x, y, w, h] (NaN points never do)."""
    return int(np.count_nonzero(boxlib.contains(box, np.asarray(joints2d, np.float64).reshape(-1, 2))))


def box_union_rule_3dhp(joint_box, det_boxes, min_hull_iou=0.5, fallback='joint_box'):
    """MPI-INF-3DHP's rule: take the most confident detection; if the hull of it and the joint box still
    overlaps the joint box with IoU > 0.5, use that hull (the detection may cut off limbs the joints
    reach), else fall back to the joint box (or return `fallback` itself if it is not 'joint_box', e.g.
    None). det_boxes (D, 5) [x, y, w, h, score]; returns float32 (4,)."""
    joint_box = np.asarray(joint_box, np.float64)[:4]
    det_boxes = np.asarray(det_boxes, np.float64).reshape(-1, 5)
    use_joint_box = isinstance(fallback, str) and fallback == 'joint_box'
    fallback_box = joint_box.astype(np.float32) if use_joint_box else fallback
    if len(det_boxes) == 0:
        return fallback_box
    best = det_boxes[np.argmax(det_boxes[:, 4]), :4]
    hull = boxlib.hull(best, joint_box)
    return hull.astype(np.float32) if boxlib.iou(hull, joint_box) > min_hull_iou else fallback_box


def best_iou_box(gt_box, det_boxes, min_iou=0.5, use_hull=False, fallback='gt_box'):
    """Single-person rule: the detection of highest IoU with the GT box if IoU >= min_iou (optionally its
    hull with the GT box), else the GT box itself (or `fallback` if it is not 'gt_box', e.g. None).
    Returns float32 (4,)."""
    gt_box = np.asarray(gt_box, np.float64)[:4]
    det_boxes = np.asarray(det_boxes, np.float64).reshape(-1, 5)
    use_gt = isinstance(fallback, str) and fallback == 'gt_box'
    fallback_box = gt_box.astype(np.float32) if use_gt else fallback
    if len(det_boxes) == 0:
        return fallback_box
    ious = boxlib.iou_matrix(gt_box[np.newaxis], det_boxes[:, :4])[0]
    best = int(np.argmax(ious))
    if not ious[best] >= min_iou:
        return fallback_box
    box = boxlib.hull(det_boxes[best, :4], gt_box) if use_hull else det_boxes[best, :4]
    return np.asarray(box, np.float32)


def clip_box_to_image(box, imshape):
    """The part of box [x, y, w, h] inside an image of shape (H, W, ...)."""
    return boxlib.intersection(np.asarray(box, np.float64)[:4], boxlib.full_box(imshape))


def choose_box(gt_box, det_boxes, rule='best_iou', min_iou=0.5, fallback_to_gt=True, imshape=None):
    """The box to store for one person, given the GT box (e.g. expanded joint box) and the frame's detections.

    Rules (see the per-dataset table in the docs):
    - 'best_iou': the detection of highest IoU with the GT box if that IoU >= min_iou (BEHAVE, RICH,
      GPA, ...);
    - 'best_iou_hull': the hull of that detection and the GT box (HUMBI);
    - '3dhp': box_union_rule_3dhp (most confident detection; `min_iou` is the hull-IoU threshold);
    - 'gt': the GT box.
    Without a qualifying detection the GT box is returned, or None if not `fallback_to_gt` (datasets that
    drop undetected people). `imshape` (H, W, ...) clips the result to the image. Returns float32 (4,).
    """
    gt_box = np.asarray(gt_box, np.float64)[:4]
    det_boxes = np.asarray(det_boxes, np.float64).reshape(-1, 5)
    if rule == 'gt':
        box = gt_box
    elif rule in ('best_iou', 'best_iou_hull'):
        box = best_iou_box(gt_box, det_boxes, min_iou, use_hull=rule == 'best_iou_hull', fallback=None)
    elif rule == '3dhp':
        box = box_union_rule_3dhp(gt_box, det_boxes, min_hull_iou=min_iou, fallback=None)
    else:
        raise ValueError(f"unknown box rule {rule!r}; use 'best_iou', 'best_iou_hull', '3dhp' or 'gt'")
    if box is None:
        if not fallback_to_gt:
            return None
        box = gt_box
    if imshape is not None:
        box = clip_box_to_image(box, imshape)
    return np.asarray(box, np.float32)
