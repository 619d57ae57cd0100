"""A tiny CMU Panoptic sequence: calibration_<seq>.json (hd and vga cameras, t in cm, OpenCV distortion),
hdPose3d_stage1_coco19/body3DScene_%08d.json (bodies with joints19 = 19 x (x, y, z cm, confidence), world
y-down) and hdVideos/hd_00_XX.mp4 (1920x1080, dots at the projected joints)."""
import json
from pathlib import Path

import numpy as np

SEQUENCE = '160906_band1'


def write_fake_release(root, seed=0, n_frames=12, sequence=SEQUENCE, n_hd=3):
    from posepile.ds.panoptic import main as panoptic
    from posepile.util.camera import Camera
    from posepile.util.video import write_video
    rng = np.random.default_rng(seed)
    folder = Path(root) / sequence
    (folder / 'hdPose3d_stage1_coco19').mkdir(parents=True, exist_ok=True)
    cameras = []
    for i in range(n_hd + 1):
        azimuth = 2 * np.pi * i / (n_hd + 1)
        centre_cm = np.array([280 * np.sin(azimuth), -170.0, 280 * np.cos(azimuth)])
        camera = Camera(optical_center=centre_cm * 10, world_up=(0, -1, 0))
        camera.turn_towards(target_world_point=[0, -1000, 0])
        hd = i < n_hd
        K = [[1400.0 + 10 * i, 0, 955.0], [0, 1400.0 + 10 * i, 545.0], [0, 0, 1]] if hd else \
            [[620.0, 0, 320], [0, 620.0, 240], [0, 0, 1]]
        cameras.append({'name': f'00_{i:02d}' if hd else '01_01', 'type': 'hd' if hd else 'vga',
                         'resolution': [1920, 1080] if hd else [640, 480], 'panel': 0 if hd else 1,
                         'node': i, 'K': K, 'distCoef': [-0.22, 0.18, 0.0003, -0.0002, -0.04],
                         'R': camera.R.tolist(), 't': (-camera.R @ centre_cm).reshape(3, 1).tolist()})
    (folder / f'calibration_{sequence}.json').write_text(json.dumps({'calibDataSource': sequence, 'cameras': cameras}))
    bodies = {}
    for body_id, x0 in ((0, -400.0), (3, 400.0)):
        template = np.stack([rng.normal(0, 150, 19), rng.uniform(-1700, -100, 19), rng.normal(0, 100, 19)], 1)
        walk = np.cumsum(rng.normal(0, 40, (n_frames, 1, 3)), axis=0) * [1, 0, 1]
        bodies[body_id] = template + walk + [x0, 0, 0]  # mm, y down
    for f in range(n_frames):
        entries = []
        for body_id, track in bodies.items():
            joints = np.concatenate([track[f] / 10, np.full((19, 1), 0.8)], axis=1)
            joints[17, 3] = -1.0  # an unreliable joint
            entries.append({'id': body_id, 'joints19': joints.ravel().tolist()})
        (folder / 'hdPose3d_stage1_coco19' / f'body3DScene_{f:08d}.json').write_text(
            json.dumps({'version': 0.7, 'univTime': 1000.0 + f, 'fpsType': 'hd_29_97', 'bodies': entries}))
    loaded = panoptic.load_cameras(folder / f'calibration_{sequence}.json', camera_type='hd')
    for name, camera in loaded.items():
        frames = []
        for f in range(n_frames):
            canvas = np.full((1080, 1920), 45.0, np.float32)
            for track in bodies.values():
                for u, v in camera.world_to_image(track[f]):
                    if 10 <= u < 1910 and 10 <= v < 1070:
                        y0, x0 = int(v) - 8, int(u) - 8
                        ys, xs = np.mgrid[y0:y0 + 17, x0:x0 + 17]
                        canvas[y0:y0 + 17, x0:x0 + 17] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / 8)
            frames.append(np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
        write_video(folder / 'hdVideos' / f'hd_{name}.mp4', frames, fps=30, quality=9)
    return bodies
