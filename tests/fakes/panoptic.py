"""Tiny CMU Panoptic sequences in the release's layout: calibration_<seq>.json (hd and vga cameras, t in cm,
OpenCV distortion), hdPose3d_stage1_coco19/body3DScene_%08d.json (bodies with joints19 = 19 x (x, y, z cm,
confidence), world y-down, joints in the file's COCO19 order: neck, nose, pelv (bodycenter), ...) and
hdVideos/hd_00_XX.mp4 (1920x1080, dots at the projected joints).

Evidence for the layout: the real calibration_160906_band1.json and body3DScene_00000168..187.json (mmpose's
test data, /work/shared/realdata/cmu_panoptic: same keys, cm, confidence -1 for missing joints), the toolbox
(hdVideos/hd_00_XX.mp4, frame index = body3DScene index) and the original's reader, which also globs
hdPose3d_stage1_coco19/hd/body3DScene_*.json (pose_subfolder='hd': some archives keep them there).

The people exercise the selection rule: two walkers (ids 0 and 3; id 0 has a flickering joint, valid every
other frame), a person entering at frame 4 (id 5) and a person with only 5 valid joints (id 7, never used).
"""
import json
from pathlib import Path

import numpy as np

SEQUENCE = '160906_band1'
FLICKERING_JOINT = 17  # file order (reye): confidence alternates 0.8 / -1 for body 0
ALWAYS_MISSING_JOINT = 16  # file order (lear): confidence -1 throughout for every body
ENTERING_BODY, ENTERING_FRAME = 5, 4
SPARSE_BODY, SPARSE_VALID_JOINTS = 7, 5


def make_people(rng, n_frames):
    """{body id: ((n_frames, 19, 3) mm, (n_frames, 19) confidence)} in the file's joint order; bodies absent
    in a frame have NaN coordinates there."""
    people = {}
    for body_id, x0, z0, step_mm in ((0, -500.0, 0.0, 45.0), (3, 500.0, 0.0, 45.0),
                                     (ENTERING_BODY, 0.0, 600.0, 30.0), (SPARSE_BODY, 0.0, -700.0, 30.0)):
        template = np.stack([rng.normal(0, 150, 19), rng.uniform(-1700, -100, 19), rng.normal(0, 100, 19)], 1)
        walk = np.cumsum(rng.normal(0, step_mm, (n_frames, 1, 3)), axis=0) * [1, 0, 1]
        coords = template + walk + [x0, 0, z0]  # mm, y down
        confidence = np.full((n_frames, 19), 0.8)
        confidence[:, ALWAYS_MISSING_JOINT] = -1.0
        if body_id == 0:
            confidence[1::2, FLICKERING_JOINT] = -1.0
        if body_id == ENTERING_BODY:
            coords[:ENTERING_FRAME] = np.nan
        if body_id == SPARSE_BODY:
            confidence[:, SPARSE_VALID_JOINTS:] = 0.05  # <= 0.1: invalid
        people[body_id] = (coords, confidence)
    return people


def write_calibration(path, sequence, n_hd):
    from posepile.util.camera import Camera
    cameras = []
    for i in range(n_hd + 1):
        azimuth = 2 * np.pi * i / (n_hd + 1)
        centre_cm = np.array([300 * np.sin(azimuth), -170.0, 300 * np.cos(azimuth)])
        camera = Camera(optical_center=centre_cm * 10, world_up=(0, -1, 0))
        camera.turn_towards(target_world_point=[0, -1000, 0])
        hd = i < n_hd
        K = [[1300.0 + 10 * i, 0, 955.0], [0, 1300.0 + 10 * i, 545.0], [0, 0, 1]] if hd else \
            [[620.0, 0, 320], [0, 620.0, 240], [0, 0, 1]]
        cameras.append({'name': f'00_{i:02d}' if hd else '01_01', 'type': 'hd' if hd else 'vga',
                        'resolution': [1920, 1080] if hd else [640, 480], 'panel': 0 if hd else 1,
                        'node': i, 'K': K, 'distCoef': [-0.22, 0.18, 0.0003, -0.0002, -0.04],
                        'R': camera.R.tolist(), 't': (-camera.R @ centre_cm).reshape(3, 1).tolist()})
    Path(path).write_text(json.dumps({'calibDataSource': sequence, 'cameras': cameras}))


def write_fake_release(root, seed=0, n_frames=10, sequence=SEQUENCE, n_hd=3, pose_subfolder='', videos=True):
    """One sequence under root/<sequence>/. Returns {body id: ((n_frames, 19, 3) mm with NaN where the
    confidence is <= 0.1 or the body is absent, file joint order)}."""
    from posepile.ds.panoptic import main as panoptic
    from posepile.util.video import write_video
    rng = np.random.default_rng(seed)
    folder = Path(root) / sequence
    pose_folder = folder / 'hdPose3d_stage1_coco19' / pose_subfolder
    pose_folder.mkdir(parents=True, exist_ok=True)
    write_calibration(folder / f'calibration_{sequence}.json', sequence, n_hd)
    people = make_people(rng, n_frames)
    for f in range(n_frames):
        entries = []
        for body_id, (coords, confidence) in people.items():
            if np.isnan(coords[f]).all():
                continue
            joints = np.concatenate([coords[f] / 10, confidence[f, :, np.newaxis]], axis=1)
            entries.append({'id': body_id, 'joints19': joints.ravel().tolist()})
        (pose_folder / f'body3DScene_{f:08d}.json').write_text(
            json.dumps({'version': 0.7, 'univTime': 1000.0 + f, 'fpsType': 'hd_29_97', 'bodies': entries}))
    valid = {body_id: np.where((confidence > panoptic.MIN_CONFIDENCE)[..., np.newaxis], coords, np.nan)
             for body_id, (coords, confidence) in people.items()}
    if not videos:
        return valid
    loaded = panoptic.load_cameras(folder / f'calibration_{sequence}.json', camera_type='hd')
    for name, camera in loaded.items():
        frames = []
        for f in range(n_frames):
            canvas = np.full((1080, 1920), 45.0, np.float32)
            for coords in valid.values():
                for u, v in camera.world_to_image(coords[f]):
                    if 10 <= u < 1910 and 10 <= v < 1070:
                        y0, x0 = int(v) - 8, int(u) - 8
                        ys, xs = np.mgrid[y0:y0 + 17, x0:x0 + 17]
                        canvas[y0:y0 + 17, x0:x0 + 17] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / 8)
            frames.append(np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
        write_video(folder / 'hdVideos' / f'hd_{name}.mp4', frames, fps=30, quality=9)
    return valid
