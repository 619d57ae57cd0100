"""A tiny SURREAL release: cmu/<split>/run0/<seq>/<seq>_c0001.mp4 (320x240, mirrored as released, dots at
the joints), <seq>_c0001_info.mat (joints2D (2,24,N), joints3D (3,24,N) metres, camLoc (3,1), zrot, pose,
shape, gender, ...) and <seq>_c0001_segm.mat (segm_1 ... segm_N part labels)."""
from pathlib import Path

import numpy as np

CLIPS = {'train': '01_01', 'test': '02_02'}


def write_fake_release(root, seed=0, n_frames=20):
    import cv2
    import scipy.io
    from posepile.ds.surreal import main as surreal
    from posepile.util.video import write_video
    rng = np.random.default_rng(seed)
    written = {}
    for split, seq in CLIPS.items():
        folder = Path(root) / 'cmu' / split / 'run0' / seq
        folder.mkdir(parents=True, exist_ok=True)
        cam_loc = np.array([[6.5 + rng.uniform(-0.5, 0.5)], [rng.uniform(-0.3, 0.3)], [1.0]])
        camera = surreal.camera_from_location(cam_loc)  # the released (mirrored) render camera
        template = np.stack([rng.normal(0, 0.12, 24), rng.normal(0, 0.25, 24), rng.uniform(0.05, 1.7, 24)], 1)
        walk = np.cumsum(rng.normal(0, 0.03, (n_frames, 1, 3)), axis=0) * [1, 1, 0]
        joints3d = template + walk  # metres, z up
        pixels = camera.world_to_image(joints3d * 1000)
        frames, segm = [], {}
        for f in range(n_frames):
            canvas = np.full((240, 320), 45.0, np.float32)
            labels = np.zeros((240, 320), np.uint8)
            ys, xs = np.mgrid[:240, :320]
            for j, (u, v) in enumerate(pixels[f]):
                canvas += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * 1.3 ** 2))
                cv2.circle(labels, (int(round(u)), int(round(v))), 5, j + 1, -1)
            frames.append(np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
            segm[f'segm_{f + 1}'] = labels
        write_video(folder / f'{seq}_c0001.mp4', frames, fps=30, quality=10)
        scipy.io.savemat(str(folder / f'{seq}_c0001_info.mat'), {
            'joints2D': np.round(pixels).transpose(2, 1, 0), 'joints3D': joints3d.transpose(2, 1, 0),
            'camLoc': cam_loc, 'camDist': np.array([[6.5]]), 'zrot': rng.uniform(-np.pi, np.pi, (n_frames, 1)),
            'pose': rng.normal(0, 0.2, (72, n_frames)), 'shape': rng.normal(0, 1, (10, n_frames)),
            'gender': np.zeros((n_frames, 1)), 'sequence': seq, 'clipNo': np.array([[1]]), 'stride': np.array([[50]])})
        scipy.io.savemat(str(folder / f'{seq}_c0001_segm.mat'), segm)
        written[split] = joints3d * 1000
    return written
