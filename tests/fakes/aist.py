"""A tiny AIST++ release (annotations = fullset.zip's aist_plusplus_final/, already renamed):

    annotations/keypoints3d/<seq>.pkl      {'keypoints3d', 'keypoints3d_optim'}: (N, 17, 3) float64, cm, y up
    annotations/cameras/setting{1,2}.json  [{'name', 'size' [W, H], 'matrix', 'distortions' (5), 'rotation'
                                           (Rodrigues), 'translation' (cm)}] for cameras c01, c02
    annotations/cameras/mapping.txt        '<seq> setting<k>'
    annotations/ignore_list.txt            one ignored sequence
    annotations/splits/pose_{train,val,test}.txt
    videos/<seq with c01/c02 for cAll>.mp4 60 fps, dots at the projected 17 joints; some videos are missing,
                                           one is shorter than its keypoint rows
"""
import json
import pickle
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 640, 360
N_ROWS = 24
SHORT_VIDEO = ('gBR_sBM_c02_d04_mBR0_ch01', 18)  # this video has only 18 frames
# sequence -> (split or None, setting, cameras with a video)
SEQUENCES = {
    'gBR_sBM_cAll_d04_mBR0_ch01': ('train', 'setting1', ('c01', 'c02')),
    'gBR_sBM_cAll_d04_mBR0_ch02': ('val', 'setting1', ('c01',)),
    'gHO_sFM_cAll_d20_mHO5_ch13': ('test', 'setting2', ('c01', 'c02')),
    'gBR_sBM_cAll_d04_mBR0_ch03': ('train', 'setting1', ('c01',)),  # in ignore_list.txt
}
IGNORED = 'gBR_sBM_cAll_d04_mBR0_ch03'
# setting -> camera -> (centre cm, focal px, k1)
SETTINGS = {
    'setting1': {'c01': ((20.0, 180.0, 450.0), 420.0, -0.06), 'c02': ((-380.0, 150.0, 260.0), 430.0, 0.0)},
    'setting2': {'c01': ((300.0, 170.0, -330.0), 410.0, -0.03), 'c02': ((-60.0, 200.0, -460.0), 425.0, 0.02)},
}
# standing person, cm, y up, facing +z: COCO-17 order
TEMPLATE_CM = np.array([
    [0, 165, 8], [4, 169, 6], [-4, 169, 6], [8, 167, 0], [-8, 167, 0], [18, 145, 0], [-18, 145, 0],
    [24, 118, 4], [-24, 118, 4], [28, 92, 10], [-28, 92, 10], [10, 95, 0], [-10, 95, 0], [11, 50, 3],
    [-11, 50, 3], [11, 8, 0], [-11, 8, 0]], np.float64)


def look_at(centre, target=(0, 90, 0)):
    forward = np.subtract(target, centre)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0, 1, 0])
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(forward, right), forward])


def camera_entries(setting):
    import cv2
    entries = []
    for name, (centre, focal, k1) in SETTINGS[setting].items():
        rotation = look_at(centre)
        entries.append({'name': name, 'size': [WIDTH, HEIGHT],
                        'matrix': [[focal, 0.0, WIDTH / 2], [0.0, focal, HEIGHT / 2], [0.0, 0.0, 1.0]],
                        'distortions': [k1, 0.0, 0.0, 0.0, 0.0],
                        'rotation': cv2.Rodrigues(rotation)[0].ravel().tolist(),
                        'translation': (-rotation @ np.array(centre)).tolist()})
    return entries


def project(points_mm, entry):
    """Pixels and depth (mm) with OpenCV's model, straight from a camera entry of the JSON."""
    import cv2
    rvec, tvec_mm = np.array(entry['rotation']), np.array(entry['translation']) * 10
    depth = (points_mm @ cv2.Rodrigues(rvec)[0].T + tvec_mm)[:, 2]
    pixels, _ = cv2.projectPoints(points_mm.reshape(-1, 1, 3), rvec, tvec_mm, np.array(entry['matrix']),
                                  np.array(entry['distortions']))
    return pixels.reshape(-1, 2), depth


def make_motion(rng, n_frames):
    """(n_frames, 17, 3) cm: a dancer stepping with variable speed, turning, swinging limbs."""
    steps = rng.uniform(0, 14, n_frames) * (rng.uniform(size=n_frames) < 0.7)
    position = np.cumsum(steps)[:, None] * [0.4, 0, 0.3] + [-30, 0, -20]
    phases = rng.uniform(0, 2 * np.pi, (17, 3))
    frames = []
    for t in range(n_frames):
        yaw = 0.07 * t
        rotation = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        sway = 4 * np.sin(0.8 * t + phases) * (np.arange(17) >= 7)[:, None]
        frames.append((TEMPLATE_CM + sway) @ rotation.T + position[t])
    return np.stack(frames)


def _dots(pixels):
    canvas = np.full((HEIGHT, WIDTH), 45.0, np.float32)
    for u, v in pixels:
        if 10 <= u < WIDTH - 10 and 10 <= v < HEIGHT - 10:
            y0, x0 = int(v) - 8, int(u) - 8
            ys, xs = np.mgrid[y0:y0 + 17, x0:x0 + 17]
            canvas[y0:y0 + 17, x0:x0 + 17] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / 8)
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def write_fake_release(root, seed=0):
    """Writes the release; returns {sequence: keypoints3d_optim (N_ROWS, 17, 3) in cm}."""
    from posepile.util.video import write_video
    root = Path(root)
    annotations = root / 'annotations'
    for folder in ('keypoints3d', 'cameras', 'splits'):
        (annotations / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    settings = {name: camera_entries(name) for name in SETTINGS}
    for name, entries in settings.items():
        (annotations / 'cameras' / f'{name}.json').write_text(json.dumps(entries))
    (annotations / 'cameras' / 'mapping.txt').write_text(
        ''.join(f'{seq} {setting}\n' for seq, (_, setting, _) in SEQUENCES.items()))
    (annotations / 'ignore_list.txt').write_text(IGNORED + '\n')
    for split in ('train', 'val', 'test'):
        (annotations / 'splits' / f'pose_{split}.txt').write_text(
            ''.join(f'{seq}\n' for seq, (s, _, _) in SEQUENCES.items() if s == split))
    written = {}
    for sequence, (_, setting, cameras) in SEQUENCES.items():
        optim = make_motion(rng, N_ROWS)
        with open(annotations / 'keypoints3d' / f'{sequence}.pkl', 'wb') as f:
            pickle.dump({'keypoints3d': optim + rng.normal(0, 0.5, optim.shape), 'keypoints3d_optim': optim}, f)
        written[sequence] = optim
        for entry in settings[setting]:
            if entry['name'] not in cameras:
                continue
            video_id = sequence.replace('_cAll_', f'_{entry["name"]}_')
            n = SHORT_VIDEO[1] if video_id == SHORT_VIDEO[0] else N_ROWS
            frames = [_dots(project(pose * 10, entry)[0]) for pose in optim[:n]]
            write_video(root / 'videos' / f'{video_id}.mp4', frames, fps=60, quality=9)
    return written
