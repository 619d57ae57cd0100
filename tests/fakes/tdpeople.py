"""A tiny 3DPeople release in the layout of the real one:
    rgb/<person>/<action>/<camera>/<outfit-and-background>/<frame>.jpg
    skeleton/<person>/<action>/<camera>/<frame>.txt
    segmentation_clothes/<person>/<action>/<camera>/<frame>.png

Skeleton txt: 67 rows "u v x y z" (u, v px; x, y, z in the release unit, ×100 -> mm). The rows of the 29 named
joints ([0..13, 33..36, 53, 57..66]) hold a walking person; the other rows are hand points near the hands. RGB
frames are 640×480 JPEGs with bright dots at the 29 projected joints; the clothes segmentation is a PNG, grey
153 where there is no person (with faint texture within the tolerance) and coloured limbs elsewhere.
"""
from pathlib import Path

import cv2
import numpy as np

from posepile.util.camera import Camera

WIDTH, HEIGHT = 640, 480
INTRINSICS = [[700.0, 0, 320], [0, 700.0, 240], [0, 0, 1]]
N_RAW_ROWS = 67
NAMED_ROWS = [*range(14), *range(33, 37), 53, *range(57, 67)]
# (person, action, {camera: outfit folder}): the cameras of one action see the same motion
VIDEOS = (('woman01', '02_01_walk', {'camera01': 'wpskin08_bottom70_top12_shoes03_hair05_background1928',
                                     'camera02': 'wpskin08_bottom70_top12_shoes03_hair05_background0311'}),
          ('man03', '13_05_jump', {'camera03': 'mpskin02_bottom11_top40_shoes01_hair02_background0007'}))
# a standing person, y up, mm, in the joint order of the recipe (pelv, spin, spi1, spi2, neck, head, reye, leye,
# htop, left arm cla..han, right arm, left leg hip..toe, right leg)
TEMPLATE_MM = {
    'pelv': [0, 950, 0], 'spin': [0, 1050, 0], 'spi1': [0, 1170, 10], 'spi2': [0, 1300, 0], 'neck': [0, 1450, 0],
    'head': [0, 1560, 30], 'reye': [-45, 1600, 110], 'leye': [45, 1600, 110], 'htop': [0, 1720, 0],
    'lcla': [60, 1400, 0], 'lsho': [190, 1400, 0], 'lelb': [230, 1120, 0], 'lwri': [250, 870, 40],
    'lhan': [290, 780, 60], 'rcla': [-60, 1400, 0], 'rsho': [-190, 1400, 0], 'relb': [-230, 1120, 0],
    'rwri': [-250, 870, 40], 'rhan': [-290, 780, 60], 'lhip': [100, 900, 0], 'lkne': [110, 500, 30],
    'lank': [110, 90, 0], 'lfoo': [115, 30, 110], 'ltoe': [115, 20, 200], 'rhip': [-100, 900, 0],
    'rkne': [-110, 500, 30], 'rank': [-110, 90, 0], 'rfoo': [-115, 30, 110], 'rtoe': [-115, 20, 200]}
NAMES = list(TEMPLATE_MM)
LIMB_PATHS = ('pelv-spin-spi1-spi2-neck-head-htop', 'spi2-lcla-lsho-lelb-lwri-lhan', 'spi2-rcla-rsho-relb-rwri-rhan',
              'pelv-lhip-lkne-lank-lfoo-ltoe', 'pelv-rhip-rkne-rank-rfoo-rtoe', 'head-reye', 'head-leye')
EDGES = [(NAMES.index(a), NAMES.index(b)) for path in LIMB_PATHS for a, b in zip(path.split('-'), path.split('-')[1:])]
LIMB_RADIUS_PX = 9


def make_motion(rng, n_frames):
    """(n_frames, 29, 3) mm: a person walking with a variable speed, swaying limbs and turning slowly."""
    template = np.array(list(TEMPLATE_MM.values()), np.float64)
    steps = rng.uniform(0, 70, n_frames) * (rng.uniform(size=n_frames) < 0.8)
    position = np.cumsum(steps)[:, None] * [1, 0, 0.3]
    phases = rng.uniform(0, 2 * np.pi, (29, 3))
    swaying = (np.arange(29) >= 9)[:, None]  # arms and legs
    frames = []
    for t in range(n_frames):
        yaw = 0.03 * t
        rotation = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        sway = 40 * np.sin(0.5 * t + phases) * swaying
        frames.append((template + sway) @ rotation.T + position[t])
    return np.stack(frames)


def make_raw_motion(rng, motion):
    """(n_frames, 67, 3) mm: the 29 joints in their raw rows, the other rows points near the hands."""
    raw = np.empty((len(motion), N_RAW_ROWS, 3))
    raw[:, NAMED_ROWS] = motion
    others = [row for row in range(N_RAW_ROWS) if row not in NAMED_ROWS]
    for row in others:
        hand = NAMES.index('lhan') if row < 33 else NAMES.index('rhan')
        raw[:, row] = motion[:, hand] + rng.uniform(-60, 60, 3)
    return raw


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
    """Writes the release under `root` ($DATA_ROOT/tdpeople); returns {image relpath 'rgb/.../<frame>.jpg':
    dict(joints3d_mm (29, 3), raw3d_mm (67, 3), joints2d (29, 2) px, camera, mask (H, W) bool)}."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    written = {}
    for person, action, outfits in VIDEOS:
        motion = make_motion(rng, n_frames)
        raw_motion = make_raw_motion(rng, motion)
        for camera_name, outfit in outfits.items():
            camera = make_camera(rng, motion[:, 0].mean(axis=0))
            video = f'{person}/{action}/{camera_name}'
            for i_frame, (joints, raw_joints) in enumerate(zip(motion, raw_motion)):
                frame = f'{i_frame + 1:04d}'
                pixels = camera.world_to_image(joints)
                assert np.all((pixels > 20) & (pixels < [WIDTH - 20, HEIGHT - 20])), 'fake person leaves image'
                mask = write_frame(root, f'{video}/{outfit}/{frame}.jpg', f'{video}/{frame}',
                                   camera.world_to_image(raw_joints), raw_joints, rng)
                written[f'rgb/{video}/{outfit}/{frame}.jpg'] = dict(
                    joints3d_mm=joints, raw3d_mm=raw_joints, joints2d=pixels, camera=camera, mask=mask)
    return written


def write_frame(root, image_subpath, frame_subpath, raw_pixels, raw_joints_mm, rng):
    """Writes the image, skeleton and segmentation of one frame; returns the true person mask."""
    lines = [f'{u:.6f} {v:.6f} {x:.8f} {y:.8f} {z:.8f}' for (u, v), (x, y, z) in zip(raw_pixels, raw_joints_mm / 100)]
    paths = {modality: root / modality / f'{frame_subpath}{extension}'
             for modality, extension in (('skeleton', '.txt'), ('segmentation_clothes', '.png'))}
    paths['rgb'] = root / 'rgb' / image_subpath
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    paths['skeleton'].write_text('\n'.join(lines) + '\n')
    pixels = raw_pixels[NAMED_ROWS]
    cv2.imwrite(str(paths['rgb']), render_dots(pixels)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    segmentation, mask = render_segmentation(rng, pixels)
    cv2.imwrite(str(paths['segmentation_clothes']), segmentation[..., ::-1])
    return mask
