"""Drawing skeletons, masks and 3D side views onto RGB uint8 images (OpenCV, antialiased)."""
import cv2
import numpy as np

LEFT_COLOR = (255, 80, 80)     # RGB: left side red
RIGHT_COLOR = (80, 160, 255)   # right side blue
CENTER_COLOR = (80, 230, 80)   # torso/head green
MASK_COLOR = (255, 220, 0)


def side_of(name):
    if name.startswith('l'):
        return 'left'
    if name.startswith('r'):
        return 'right'
    return 'center'


def edge_color(joint_info, i, j):
    sides = {side_of(joint_info.names[i]), side_of(joint_info.names[j])}
    if 'left' in sides and 'right' not in sides:
        return LEFT_COLOR
    if 'right' in sides and 'left' not in sides:
        return RIGHT_COLOR
    return CENTER_COLOR


def draw_skeleton(image, coords2d, joint_info, thickness=2, radius=3):
    """Draw edges (left red, right blue, centre green) and joints; NaN joints are skipped. In place."""
    coords2d = np.asarray(coords2d, np.float64)
    shift = 4
    scaled = np.nan_to_num(coords2d * (1 << shift), nan=-1e9).astype(np.int64)
    valid = np.all(np.isfinite(coords2d), axis=-1)
    for i, j in joint_info.stick_figure_edges:
        if valid[i] and valid[j]:
            cv2.line(image, tuple(map(int, scaled[i])), tuple(map(int, scaled[j])),
                     edge_color(joint_info, i, j), thickness, cv2.LINE_AA, shift)
    for k in np.nonzero(valid)[0]:
        color = {'left': LEFT_COLOR, 'right': RIGHT_COLOR}.get(side_of(joint_info.names[k]), CENTER_COLOR)
        cv2.circle(image, tuple(map(int, scaled[k])), radius << shift, color, -1, cv2.LINE_AA, shift)
    return image


def tint_mask(image, mask, color=MASK_COLOR, alpha=0.4):
    """Blend `color` into the pixels of a boolean mask. In place."""
    if mask.shape != image.shape[:2]:
        mask = cv2.resize(mask.astype(np.uint8), (image.shape[1], image.shape[0]),
                          interpolation=cv2.INTER_NEAREST).astype(bool)
    region = image[mask].astype(np.float32)
    image[mask] = (region * (1 - alpha) + np.asarray(color, np.float32) * alpha).astype(np.uint8)
    return image


def draw_box(image, box, color=(255, 255, 255), thickness=1):
    x, y, w, h = [int(round(v)) for v in box]
    cv2.rectangle(image, (x, y), (x + w, y + h), color, thickness, cv2.LINE_AA)
    return image


def draw_3d_side_view(coords3d, joint_info, size=192, world_up=(0, 0, 1)):
    """The pose seen from the side (orthographic, up is up), centred and scaled to fit `size` px."""
    coords3d = np.asarray(coords3d, np.float64)
    canvas = np.full((size, size, 3), 30, np.uint8)
    valid = np.all(np.isfinite(coords3d), axis=-1)
    if not np.any(valid):
        return canvas
    up = np.asarray(world_up, np.float64)
    up /= np.linalg.norm(up)
    # A horizontal viewing axis: any unit vector orthogonal to up.
    helper = np.array([1.0, 0, 0]) if abs(up[0]) < 0.9 else np.array([0, 1.0, 0])
    horizontal = np.cross(up, helper)
    horizontal /= np.linalg.norm(horizontal)
    centered = coords3d - np.nanmean(coords3d[valid], axis=0)
    u = centered @ horizontal
    v = -(centered @ up)
    extent = max(np.nanmax(np.abs(u[valid])), np.nanmax(np.abs(v[valid])), 1.0)
    scale = (size * 0.45) / extent
    points = np.stack([u * scale + size / 2, v * scale + size / 2], axis=-1)
    points[~valid] = np.nan
    cv2.line(canvas, (0, int(size / 2 + np.nanmax(v[valid]) * scale)),
             (size, int(size / 2 + np.nanmax(v[valid]) * scale)), (90, 90, 90), 1)
    return draw_skeleton(canvas, points, joint_info, thickness=2, radius=2)


def put_label(image, text, origin=(3, 12)):
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return image
