"""A tiny TotalCapture release in the extracted layout:

    calibration.cal                               '2 1', then per camera 7 lines (image bounds, fx fy cx cy, k1,
                                                  R rows, t in metres; X_cam = R X + t), 640x360 images
    video/s<s>/<take>/TC_S<s>_<take>_cam<c>.mp4   H.264, dots at the projected joints
    mattes/s<s>/<take>/TC_S<s>_<take>_cam<c>.mp4  white rectangle (projected joints' box x1.1) on black;
                                                  frame EMPTY_MATTE_FRAME of every matte is all black
    vicon/S<s>/<take>/gt_skel_gbl_pos.txt         header of 21 names, rows of 21 'x y z' (inches, y up), 3 rows
                                                  more than the videos have frames
"""
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 640, 360
N_FRAMES = 26
EXTRA_VICON_ROWS = 3
EMPTY_MATTE_FRAME = 7
TAKES = [(1, 'acting1'), (1, 'walking2'), (2, 'rom1'), (4, 'acting3')]
TRAIN_TAKES = [(1, 'acting1'), (2, 'rom1')]
NAMES = ('Hips Spine Spine1 Spine2 Spine3 Neck Head RightShoulder RightArm RightForeArm RightHand LeftShoulder '
         'LeftArm LeftForeArm LeftHand RightUpLeg RightLeg RightFoot LeftUpLeg LeftLeg LeftFoot').split()
# standing person, inches, y up, facing +z, relative to the hips
_SPINE = [[0, 0, 0], [0, 3, 0], [0, 6, 0], [0, 9, 0], [0, 12, 0], [0, 20, 0], [0, 26, 0]]
_RIGHT_ARM = [[-3, 19, 0], [-7, 18, 0], [-8, 8, 2], [-9, -1, 4]]
_RIGHT_LEG = [[-4, -2, 0], [-4, -18, 1], [-4, -34, 0]]
TEMPLATE_IN = np.array(_SPINE + _RIGHT_ARM + [[-x, y, z] for x, y, z in _RIGHT_ARM] + _RIGHT_LEG
                       + [[-x, y, z] for x, y, z in _RIGHT_LEG], np.float64)
# camera centres (m) looking at (0, 0.9 m, 0), and their k1
CAMERAS = [((0.3, 1.5, 4.0), 0.0), ((-3.5, 1.2, 2.2), 1.5e-5)]
FOCAL = (560.0, 565.0)
PRINCIPAL = (319.5, 179.5)


def look_at(centre, target=(0, 0.9, 0)):
    """R (world -> camera: x right, y down, z forward) for a y-up world."""
    forward = np.subtract(target, centre)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0, 1, 0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def camera_params():
    """[(R, t metres, K, k1)] with X_cam = R X + t."""
    result = []
    for centre, k1 in CAMERAS:
        rotation = look_at(centre)
        intrinsics = np.array([[FOCAL[0], 0, PRINCIPAL[0]], [0, FOCAL[1], PRINCIPAL[1]], [0, 0, 1]])
        result.append((rotation, -rotation @ np.array(centre), intrinsics, k1))
    return result


def project(points_mm, params):
    """Pixels and depth (mm) of world points under (R, t, K, k1) with OpenCV's model."""
    import cv2
    rotation, translation_m, intrinsics, k1 = params
    cam = points_mm @ rotation.T + translation_m * 1000
    pixels, _ = cv2.projectPoints(points_mm.reshape(-1, 1, 3), cv2.Rodrigues(rotation)[0], translation_m * 1000,
                                  intrinsics, np.array([k1, 0, 0, 0, 0], np.float64))
    return pixels.reshape(-1, 2), cam[:, 2]


def make_motion(rng, n_frames):
    """(n_frames, 21, 3) inches: steps of variable speed, a turn, swaying limbs; frames 10-16 are far to the
    left (out of view or partly in view)."""
    steps = rng.uniform(0, 3.5, n_frames) * (rng.uniform(size=n_frames) < 0.7)
    position = np.cumsum(steps)[:, None] * [0.5, 0, 0.2] + [-10, 36, 0]
    position[10:13, 0] -= 130  # far to the left: out of view
    position[13:17, 0] -= [84, 92, 96, 100]  # partly out of view (some joints visible)
    phases = rng.uniform(0, 2 * np.pi, (21, 3))
    frames = []
    for t in range(n_frames):
        yaw = 0.05 * t
        rotation = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        sway = 1.5 * np.sin(0.7 * t + phases) * (np.arange(21) >= 7)[:, None]
        frames.append((TEMPLATE_IN + sway) @ rotation.T + position[t])
    return np.stack(frames)


def _dots(pixels):
    canvas = np.full((HEIGHT, WIDTH), 45.0, np.float32)
    for u, v in pixels:
        if 10 <= u < WIDTH - 10 and 10 <= v < HEIGHT - 10:
            y0, x0 = int(v) - 8, int(u) - 8
            ys, xs = np.mgrid[y0:y0 + 17, x0:x0 + 17]
            canvas[y0:y0 + 17, x0:x0 + 17] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / 8)
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def matte_rectangle(pixels):
    """Integer [x0, y0, x1, y1) of the white matte rectangle (projected joints' box x1.1, in the image)."""
    mins, maxs = pixels.min(axis=0), pixels.max(axis=0)
    centre, half = (mins + maxs) / 2, (maxs - mins) / 2 * 1.1
    x0, y0 = np.clip(np.round(centre - half), 0, [WIDTH, HEIGHT]).astype(int)
    x1, y1 = np.clip(np.round(centre + half), 0, [WIDTH, HEIGHT]).astype(int)
    return x0, y0, x1, y1


def _matte(pixels, empty):
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    if not empty:
        x0, y0, x1, y1 = matte_rectangle(pixels)
        image[y0:y1, x0:x1] = 255
    return image


def write_calibration(path, params=None):
    lines = [f'{len(CAMERAS)} 1']
    for rotation, translation_m, intrinsics, k1 in params or camera_params():
        lines += [f'0 {HEIGHT - 1} 0 {WIDTH - 1}',
                  f'{intrinsics[0, 0]} {intrinsics[1, 1]} {intrinsics[0, 2]} {intrinsics[1, 2]}', f'{k1:g}']
        lines += [' '.join(f'{x:.9g}' for x in row) + ' ' for row in rotation]
        lines.append(' '.join(f'{x:.9g}' for x in translation_m) + ' ')
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text('\n'.join(lines) + '\n')


def write_vicon(path, poses_in):
    rows = ['\t'.join(NAMES) + '\t']
    rows += ['\t'.join(' '.join(f'{c:.6g}' for c in joint) for joint in pose) + '\t' for pose in poses_in]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text('\n'.join(rows) + '\n')


def write_fake_release(root, seed=0):
    """Writes the release; returns {(subject, take): poses (N_FRAMES + EXTRA_VICON_ROWS, 21, 3) in mm}."""
    from posepile.util.video import write_video
    root = Path(root)
    rng = np.random.default_rng(seed)
    params = camera_params()
    write_calibration(root / 'calibration.cal', params)
    written = {}
    for subject, take in TAKES:
        poses_in = make_motion(rng, N_FRAMES + EXTRA_VICON_ROWS)
        write_vicon(root / 'vicon' / f'S{subject}' / take / 'gt_skel_gbl_pos.txt', poses_in)
        poses_mm = poses_in * 25.4
        written[(subject, take)] = poses_mm
        for c, cam in enumerate(params, 1):
            pixels = [project(pose, cam)[0] for pose in poses_mm[:N_FRAMES]]
            name = f'TC_S{subject}_{take}_cam{c}.mp4'
            write_video(root / 'video' / f's{subject}' / take / name, [_dots(p) for p in pixels], fps=60, quality=9)
            write_video(root / 'mattes' / f's{subject}' / take / name,
                        [_matte(p, i == EMPTY_MATTE_FRAME) for i, p in enumerate(pixels)], fps=60, quality=9)
    return written
