"""A tiny 3DPeople release: rgb/, segmentation_clothes/ and skeleton/ <person>/<sequence>/camera<NN>/<frame>.

Skeleton txt: 29 rows "u v x y z" (u, v px; x, y, z in the release unit, ×100 → mm). RGB frames are 640×480
JPEGs with bright dots at the projected joints; the clothes segmentation is a PNG, grey 153 where there is no
person (with faint texture within the tolerance) and coloured limbs (thick lines along the skeleton) elsewhere.
"""
from pathlib import Path

import cv2
import numpy as np

from posepile.util.camera import Camera

WIDTH, HEIGHT = 640, 480
INTRINSICS = [[700.0, 0, 320], [0, 700.0, 240], [0, 0, 1]]
# (person, sequence, cameras): cameras of one sequence see the same motion
VIDEOS = (('woman01', '02_01_walk', ('camera01', 'camera02')), ('man03', '13_05_jump', ('camera03',)))
# a standing person, y up, mm: pelv, spine, neck, head, htop, left arm (cla, sho, elb, wri, thu, fin),
# right arm, left leg (hip, kne, ank, foo, toe), right leg
TEMPLATE_MM = np.array([
    [0, 950, 0], [0, 1050, 0], [0, 1170, 10], [0, 1300, 0], [0, 1450, 0], [0, 1560, 30], [0, 1700, 0],
    [60, 1400, 0], [190, 1400, 0], [230, 1120, 0], [250, 870, 40], [300, 840, 70], [260, 770, 30],
    [-60, 1400, 0], [-190, 1400, 0], [-230, 1120, 0], [-250, 870, 40], [-300, 840, 70], [-260, 770, 30],
    [100, 900, 0], [110, 500, 30], [110, 90, 0], [115, 30, 110], [115, 20, 200],
    [-100, 900, 0], [-110, 500, 30], [-110, 90, 0], [-115, 30, 110], [-115, 20, 200]], np.float64)
EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (3, 7), (7, 8), (8, 9), (9, 10), (10, 11), (10, 12),
         (3, 13), (13, 14), (14, 15), (15, 16), (16, 17), (16, 18), (0, 19), (19, 20), (20, 21), (21, 22),
         (22, 23), (0, 24), (24, 25), (25, 26), (26, 27), (27, 28)]
LIMB_RADIUS_PX = 9


def make_motion(rng, n_frames):
    """(n_frames, 29, 3) mm: a person walking with a variable speed, swaying limbs and turning slowly."""
    steps = rng.uniform(0, 70, n_frames) * (rng.uniform(size=n_frames) < 0.8)
    position = np.cumsum(steps)[:, None] * [1, 0, 0.3]
    phases = rng.uniform(0, 2 * np.pi, (29, 3))
    frames = []
    for t in range(n_frames):
        yaw = 0.03 * t
        rotation = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        sway = 40 * np.sin(0.5 * t + phases) * (np.arange(29) >= 7)[:, None]
        frames.append((TEMPLATE_MM + sway) @ rotation.T + position[t])
    return np.stack(frames)


def make_camera(rng, target_mm):
    azimuth = rng.uniform(0, 2 * np.pi)
    distance = rng.uniform(4500, 5500)
    center = target_mm + [distance * np.sin(azimuth), rng.uniform(200, 600), distance * np.cos(azimuth)]
    camera = Camera(center, None, INTRINSICS, world_up=(0, 1, 0))
    return camera.turn_towards(target_world_point=target_mm)


def render_dots(pixels):
    canvas = np.full((HEIGHT, WIDTH), 45.0, np.float32)
    ys, xs = np.mgrid[:HEIGHT, :WIDTH]
    for u, v in pixels:
        x0, x1, y0, y1 = int(u) - 12, int(u) + 13, int(v) - 12, int(v) + 13
        canvas[y0:y1, x0:x1] += 200 * np.exp(-((xs[y0:y1, x0:x1] - u) ** 2 + (ys[y0:y1, x0:x1] - v) ** 2) / 8)
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def render_segmentation(rng, pixels):
    """(segmentation RGB, true person mask): thick coloured lines along the edges on a grey 153 background."""
    segmentation = np.full((HEIGHT, WIDTH, 3), 153, np.uint8)
    texture = rng.uniform(size=(HEIGHT, WIDTH)) < 0.05
    segmentation[texture] = (160, 147, 153)  # within the tolerance of 10: still background
    limbs = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    shift = 4  # cv2 draws at 1/16 px with shift=4
    for k, (i, j) in enumerate(EDGES):
        color = [(200, 40, 40), (40, 180, 60), (30, 60, 220), (230, 200, 40)][k % 4]
        p, q = (np.round(pixels[[i, j]] * 16)).astype(np.int64)
        cv2.line(limbs, tuple(int(c) for c in p), tuple(int(c) for c in q), color, 2 * LIMB_RADIUS_PX,
                 cv2.LINE_8, shift)
    mask = limbs.any(axis=2)
    segmentation[mask] = limbs[mask]
    return segmentation, mask


def write_fake_release(root, seed=0, n_frames=12):
    """Writes the release under `root` ($DATA_ROOT/tdpeople); returns {video: dict(frames, joints3d_mm,
    joints2d, camera, masks)} for the camera folders '<person>/<sequence>/camera<NN>'."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    written = {}
    for person, sequence, camera_names in VIDEOS:
        motion = make_motion(rng, n_frames)
        for camera_name in camera_names:
            video = f'{person}/{sequence}/{camera_name}'
            camera = make_camera(rng, motion[:, 0].mean(axis=0))
            frames, all_pixels, all_masks = [f'{i + 1:04d}' for i in range(n_frames)], [], []
            for frame, joints in zip(frames, motion):
                pixels = camera.world_to_image(joints)
                assert np.all((pixels > 20) & (pixels < [WIDTH - 20, HEIGHT - 20])), 'fake person leaves image'
                write_frame(root, video, frame, pixels, joints, rng, all_masks)
                all_pixels.append(pixels)
            written[video] = dict(frames=frames, joints3d_mm=motion, joints2d=np.stack(all_pixels), camera=camera,
                                  masks=np.stack(all_masks))
    return written


def write_frame(root, video, frame, pixels, joints_mm, rng, all_masks):
    lines = [f'{u:.6f} {v:.6f} {x:.8f} {y:.8f} {z:.8f}' for (u, v), (x, y, z) in zip(pixels, joints_mm / 100)]
    skeleton_path = root / 'skeleton' / video / f'{frame}.txt'
    skeleton_path.parent.mkdir(parents=True, exist_ok=True)
    skeleton_path.write_text('\n'.join(lines) + '\n')
    for modality in ('rgb', 'segmentation_clothes'):
        (root / modality / video).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / 'rgb' / video / f'{frame}.jpg'), render_dots(pixels)[..., ::-1],
                [cv2.IMWRITE_JPEG_QUALITY, 95])
    segmentation, mask = render_segmentation(rng, pixels)
    cv2.imwrite(str(root / 'segmentation_clothes' / video / f'{frame}.png'), segmentation[..., ::-1])
    all_masks.append(mask)
