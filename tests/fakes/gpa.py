"""A tiny GPA release in the layout of the extracted archives (images and masks not yet nested):

    xyz_gpa12_mdp_cntind_crop_cam_c2g.json   {'images': [{'file_name', 'id'}], 'annotations': [{'joint_cams'
                                             (3 x 34, camera frame, mm), 'f', 'c', 'istrains', 'bboxes'}]}
    Sequence_ids/cam_ids_750k.npy            camera id per image, indexed by int(id)
    Gaussian_img_jpg_new/<id>.jpg            960x540 JPEGs with bright dots at the projected joints
    img_jpg_new_resnet101deeplabv3humanmask/<id>_mask.jpg   white person silhouette on black
"""
import json
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 960, 540
FOCAL = 1000.0
# camera id -> (istrains, principal point px)
CAMERAS = {7: (True, (480.0, 270.0)), 12: (True, (470.0, 265.0)), 31: (False, (490.0, 272.0))}
FIRST_ID = 9990  # ids 0000009990, 0000009992, ... cross a nesting boundary (000000/99 -> 000001/00)
# a standing person in the camera frame (x right, y down), mm, relative to the pelvis, in the 34-joint order
_RIGHT_ARM = [[-70, -450, 0], [-180, -450, 0], [-220, -180, 0], [-240, 60, 0], [-250, 130, 0], [-255, 200, 0],
              [-200, 100, 40], [-190, 150, 60]]
_RIGHT_LEG = [[-100, 50, 0], [-110, 450, 0], [-110, 850, 0], [-115, 900, 100], [-115, 910, 180]]
TEMPLATE_MM = np.array(
    [[0, 0, 0], [0, -100, 0], [0, -200, 0], [0, -300, 0], [0, -400, 0], [0, -500, 0], [0, -620, 0], [0, -750, 0]]
    + _RIGHT_ARM + [[-x, y, z] for x, y, z in _RIGHT_ARM]
    + _RIGHT_LEG + [[-x, y, z] for x, y, z in _RIGHT_LEG], np.float64)
EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (4, 8), (8, 9), (9, 10), (10, 11), (11, 12),
         (4, 16), (16, 17), (17, 18), (18, 19), (19, 20), (0, 24), (24, 25), (25, 26), (26, 27), (0, 29), (29, 30),
         (30, 31), (31, 32)]


def make_motion(rng, n_frames):
    """(n_frames, 34, 3) camera-frame mm: a person stepping with variable speed, turning, swaying limbs."""
    steps = rng.uniform(0, 60, n_frames) * (rng.uniform(size=n_frames) < 0.75)
    position = np.cumsum(steps)[:, None] * [0.6, 0, 0.5] + [-150, 0, 5000]
    phases = rng.uniform(0, 2 * np.pi, (34, 3))
    frames = []
    for t in range(n_frames):
        yaw = 0.04 * t
        rotation = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        sway = 30 * np.sin(0.6 * t + phases) * (np.arange(34) >= 8)[:, None]
        frames.append((TEMPLATE_MM + sway) @ rotation.T + position[t])
    return np.stack(frames)


def intrinsics_of(camera_id):
    cx, cy = CAMERAS[camera_id][1]
    return np.array([[FOCAL, 0, cx], [0, FOCAL, cy], [0, 0, 1]])


def project(joints_mm, intrinsics):
    return joints_mm[:, :2] / joints_mm[:, 2:] * np.diag(intrinsics)[:2] + intrinsics[:2, 2]


def render_dots(pixels):
    canvas = np.full((HEIGHT, WIDTH), 45.0, np.float32)
    ys, xs = np.mgrid[:HEIGHT, :WIDTH]
    for u, v in pixels:
        x0, x1, y0, y1 = int(u) - 12, int(u) + 13, int(v) - 12, int(v) + 13
        canvas[y0:y1, x0:x1] += 200 * np.exp(-((xs[y0:y1, x0:x1] - u) ** 2 + (ys[y0:y1, x0:x1] - v) ** 2) / 8)
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def render_silhouette(pixels):
    """Bool (H, W): thick lines along the skeleton edges."""
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    for i, j in EDGES:
        p, q = np.round(pixels[[i, j]] * 16).astype(np.int64)
        cv2.line(mask, tuple(int(c) for c in p), tuple(int(c) for c in q), 255, 24, cv2.LINE_8, 4)
    return mask > 0


def write_fake_release(root, seed=0, frames_per_camera=8, malformed=False):
    """Writes the release under `root` ($DATA_ROOT/gpa); returns {image id: dict(joints_mm (34, 3),
    intrinsics, is_train, camera_id, index (file order), mask (H, W) bool)}."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    motions = {camera_id: make_motion(rng, frames_per_camera) for camera_id in CAMERAS}
    # interleave the cameras in file order (the selection is per camera id, not per consecutive run)
    order = [(camera_id, t) for t in range(frames_per_camera) for camera_id in CAMERAS]
    rng.shuffle(order)
    order.sort(key=lambda item: item[1])  # stable: each camera's frames stay in time order, cameras mixed
    images, annotations, written = [], [], {}
    camera_ids = np.full(FIRST_ID + 2 * len(order) + 5, -1, np.int32)
    for index, (camera_id, t) in enumerate(order):
        image_id = f'{FIRST_ID + 2 * index:010d}'
        joints, intrinsics = motions[camera_id][t], intrinsics_of(camera_id)
        pixels = project(joints, intrinsics)
        assert np.all((pixels > 20) & (pixels < [WIDTH - 20, HEIGHT - 20])), 'fake person leaves the image'
        camera_ids[int(image_id)] = camera_id
        (x1, y1), (x2, y2) = pixels.min(0), pixels.max(0)
        images.append({'file_name': f'img_jpg_new/{image_id}.jpg', 'id': index})
        annotations.append({'joint_cams': joints.T.tolist(), 'f': [FOCAL, FOCAL],
                            'c': list(CAMERAS[camera_id][1]), 'istrains': CAMERAS[camera_id][0],
                            'bboxes': [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], 'image_id': index})
        mask = render_silhouette(pixels)
        _write_jpeg(root / 'Gaussian_img_jpg_new' / f'{image_id}.jpg', render_dots(pixels))
        _write_jpeg(root / 'img_jpg_new_resnet101deeplabv3humanmask' / f'{image_id}_mask.jpg',
                    np.repeat(mask[..., None].astype(np.uint8) * 255, 3, axis=2))
        written[image_id] = dict(joints_mm=joints, intrinsics=intrinsics, is_train=CAMERAS[camera_id][0],
                                 camera_id=camera_id, index=index, mask=mask)
    if malformed:
        annotations[1]['joint_cams'] = annotations[1]['joint_cams'][:2]
    (root / 'Sequence_ids').mkdir(parents=True, exist_ok=True)
    np.save(root / 'Sequence_ids' / 'cam_ids_750k.npy', camera_ids)
    (root / 'xyz_gpa12_mdp_cntind_crop_cam_c2g.json').write_text(
        json.dumps({'images': images, 'annotations': annotations}))
    return written


def _write_jpeg(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
