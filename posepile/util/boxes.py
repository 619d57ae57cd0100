"""Axis-aligned boxes as [x, y, w, h] (top-left corner and size, pixels). Vectorised where it pays off."""
import numpy as np


def center(box):
    box = np.asarray(box, np.float64)
    return box[..., :2] + box[..., 2:4] / 2


def area(box):
    box = np.asarray(box, np.float64)
    return np.maximum(box[..., 2], 0) * np.maximum(box[..., 3], 0)


def expand(box, factor):
    """Scale the box about its centre by `factor` (1 = unchanged)."""
    box = np.asarray(box, np.float32)
    c = center(box)
    size = box[..., 2:4] * factor
    return np.concatenate([c - size / 2, size], axis=-1).astype(np.float32)


def expand_to_aspect_ratio(box, aspect_ratio_w_over_h):
    box = np.asarray(box, np.float32)
    w, h = box[2], box[3]
    if w / h < aspect_ratio_w_over_h:
        w = h * aspect_ratio_w_over_h
    else:
        h = w / aspect_ratio_w_over_h
    c = center(box)
    return np.array([c[0] - w / 2, c[1] - h / 2, w, h], np.float32)


def intersection(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    x1 = np.maximum(a[..., 0], b[..., 0])
    y1 = np.maximum(a[..., 1], b[..., 1])
    x2 = np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2])
    y2 = np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3])
    return np.stack([x1, y1, np.maximum(x2 - x1, 0), np.maximum(y2 - y1, 0)], axis=-1).astype(np.float32)


def hull(a, b):
    """Smallest box containing both boxes."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    x1 = np.minimum(a[..., 0], b[..., 0])
    y1 = np.minimum(a[..., 1], b[..., 1])
    x2 = np.maximum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2])
    y2 = np.maximum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3])
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=-1).astype(np.float32)


def iou(a, b):
    """Intersection over union of two boxes (or broadcastable arrays of boxes)."""
    inter = area(intersection(a, b))
    union = area(a) + area(b) - inter
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(union > 0, inter / union, 0.0)


def iou_matrix(boxes_a, boxes_b):
    """IoU of every pair: (N,4) x (M,4) -> (N,M)."""
    boxes_a = np.asarray(boxes_a, np.float64).reshape(-1, 4)
    boxes_b = np.asarray(boxes_b, np.float64).reshape(-1, 4)
    return iou(boxes_a[:, np.newaxis, :4], boxes_b[np.newaxis, :, :4])


def bb_of_points(points):
    """Bounding box of the non-NaN points (..., 2). All NaN gives a NaN box."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    valid = np.all(np.isfinite(points), axis=1)
    if not np.any(valid):
        return np.full(4, np.nan, np.float32)
    p = points[valid]
    mins = p.min(axis=0)
    maxs = p.max(axis=0)
    return np.array([mins[0], mins[1], maxs[0] - mins[0], maxs[1] - mins[1]], np.float32)


def bb_of_mask(mask):
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return np.zeros(4, np.float32)
    return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], np.float32)


def full_box(imshape):
    """The box of a whole image of shape (height, width, ...)."""
    return np.array([0, 0, imshape[1], imshape[0]], np.float32)


def contains(box, points):
    """Boolean per point (..., 2): inside the box (NaN points are outside)."""
    box = np.asarray(box, np.float64)
    points = np.asarray(points, np.float64)
    x, y = points[..., 0], points[..., 1]
    with np.errstate(invalid='ignore'):
        return (x >= box[0]) & (y >= box[1]) & (x < box[0] + box[2]) & (y < box[1] + box[3])


def corners(box):
    x, y, w, h = np.asarray(box, np.float64)
    return np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]])


def side_midpoints(box):
    x, y, w, h = np.asarray(box, np.float64)
    return np.array([[x + w / 2, y], [x + w, y + h / 2], [x + w / 2, y + h], [x, y + h / 2]])
