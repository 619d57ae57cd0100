"""A tiny FreeMan release in the layout of the official toolkit (wangjiongw/FreeMan_API, freeman_loader.py: the
30FPS folder, cameras/<session>.json read into aniposelib.Camera(name, size, matrix, rvec=rotation,
tvec=translation, dist=distortions), keypoints3d/<session>.npy item 0 {'keypoints3d_optim': (N, 17, 3)},
videos/<session>/vframes/c0<k>.mp4, train.txt / validation.txt / test.txt). Units as nlf-era-facts §1.2 (the
original multiplies the keypoints and the camera translation by 10: cm). No real FreeMan file is available here.

Each video frame shows a Gaussian dot at each joint projected with OpenCV's projectPoints (with the released
distortion), so the test can find the joints in the crops. Also the shared helpers of the other NLF-era video fakes
(project, render_dots)."""
import json
from pathlib import Path

import cv2
import numpy as np

BACKGROUND = 45.0
WIDTH, HEIGHT = 320, 240
FOCAL_PX = 300.0
VIEWS = [f'c0{k}' for k in range(1, 9)]
SESSIONS = {'train.txt': ['20220618_0ab1c2d3e4_subj01', '20220619_1bc2d3e4f5_subj02'],
            'validation.txt': ['20220620_2cd3e4f5a6_subj03'], 'test.txt': ['20220621_3de4f5a6b7_subj04']}


def project(points, rvec, tvec, K, distortion=None):
    """Pixels by OpenCV's projectPoints (points and tvec in the same unit)."""
    dist = np.zeros(5) if distortion is None else np.asarray(distortion, np.float64)
    return cv2.projectPoints(np.asarray(points, np.float64).reshape(-1, 3), np.asarray(rvec, np.float64),
                             np.asarray(tvec, np.float64), np.asarray(K, np.float64), dist)[0][:, 0]


def render_dots(pixels, width, height, sigma=1.6, image=None):
    """(H, W, 3) uint8 grey image with a Gaussian dot at every pixel position (dots near the border skipped)."""
    canvas = np.full((height, width), BACKGROUND, np.float32) if image is None else image
    for u, v in pixels:
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        x0, y0 = int(round(u)) - 8, int(round(v)) - 8
        if not (0 <= x0 and x0 + 17 <= width and 0 <= y0 and y0 + 17 <= height):
            continue
        ys, xs = np.mgrid[y0:y0 + 17, x0:x0 + 17]
        canvas[y0:y0 + 17, x0:x0 + 17] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * sigma ** 2))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def look_at_rvec_tvec(position, target, up=(0, 0, 1)):
    """(rvec, tvec) of a world-to-camera transform for a camera at `position` looking at `target` (upright)."""
    forward = np.asarray(target, np.float64) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    return cv2.Rodrigues(R)[0].ravel(), -R @ position


def person_track(rng, n_frames, centre, step_sd, height=170.0):
    """(N, 17, 3) a COCO-17-like point cloud in the given unit, z up, random-walking (some frames repeat)."""
    base = np.array([[0, 0, 0.93], [-0.03, 0.02, 0.95], [0.03, 0.02, 0.95], [-0.07, 0, 0.94], [0.07, 0, 0.94],
                     [-0.12, 0, 0.82], [0.12, 0, 0.82], [-0.17, 0, 0.65], [0.17, 0, 0.65], [-0.2, 0.05, 0.5],
                     [0.2, 0.05, 0.5], [-0.08, 0, 0.52], [0.08, 0, 0.52], [-0.09, 0.02, 0.28],
                     [0.09, 0.02, 0.28], [-0.09, 0, 0.04], [0.09, 0, 0.04]]) * height
    steps = rng.normal(0, step_sd, (n_frames, 17, 3))
    steps[0] = 0
    steps[rng.random(n_frames) < 0.3] = 0  # standing still: those frames are dropped by the sampler
    return base + np.asarray(centre, np.float64) + np.cumsum(steps, axis=0)


def write_fake_release(root, seed=0, n_frames=8, videos=True):
    """Write the release under root (= $DATA_ROOT/freeman); returns {session: {'joints_cm', 'cameras': {view:
    (rvec, tvec_cm, K, dist)}}}."""
    from posepile.util.video import write_video
    rng = np.random.default_rng(seed)
    release = Path(root) / '30FPS'
    written = {}
    all_sessions = []
    for filename, sessions in SESSIONS.items():
        (release / filename).parent.mkdir(parents=True, exist_ok=True)
        (release / filename).write_text(''.join(f'{s}\n' for s in sessions))
        all_sessions += sessions
    (release / 'session_list.txt').write_text(''.join(f'{s}\n' for s in all_sessions))
    for session in all_sessions:
        joints_cm = person_track(rng, n_frames, rng.uniform(-30, 30, 3) * [1, 1, 0], 4.0)
        cameras, entries = {}, []
        for k, view in enumerate(VIEWS):
            angle = 2 * np.pi * k / len(VIEWS) + rng.uniform(-0.1, 0.1)
            position = np.array([np.cos(angle) * 450, np.sin(angle) * 450, rng.uniform(80, 160)])  # cm
            rvec, tvec = look_at_rvec_tvec(position, joints_cm[0].mean(0))
            K = np.array([[FOCAL_PX, 0, WIDTH / 2 + rng.uniform(-5, 5)], [0, FOCAL_PX, HEIGHT / 2], [0, 0, 1]])
            dist = np.array([rng.uniform(-0.05, 0.05), 0.01, 0.0, 0.0, 0.0])
            cameras[view] = (rvec, tvec, K, dist)
            entries.append({'name': view, 'size': [WIDTH, HEIGHT], 'matrix': K.tolist(), 'rotation': rvec.tolist(),
                            'translation': tvec.tolist(), 'distortions': dist.tolist()})
        path = release / 'cameras' / f'{session}.json'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entries))
        data = np.empty(1, object)
        data[0] = {'keypoints3d': joints_cm + 0.5, KEYPOINTS_KEY: joints_cm, 'keypoints3d_smoothnet32': joints_cm}
        path = release / 'keypoints3d' / f'{session}.npy'
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, data, allow_pickle=True)
        written[session] = {'joints_cm': joints_cm, 'cameras': cameras}
        if videos and session not in SESSIONS['test.txt']:
            for view, (rvec, tvec, K, dist) in cameras.items():
                frames = [render_dots(project(pose, rvec, tvec, K, dist), WIDTH, HEIGHT) for pose in joints_cm]
                write_video(release / 'videos' / session / 'vframes' / f'{view}.mp4', frames, fps=30, quality=9)
    return written


KEYPOINTS_KEY = 'keypoints3d_optim'
