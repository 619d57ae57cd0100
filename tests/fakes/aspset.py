"""A tiny ASPset-510 release: splits.csv, {trainval,test}/joints_3d/<subj>/<subj>-<clip>.c3d (ezc3d, 17
points, 50 fps, mm, world y-down) and {trainval,test}/cameras/<subj>/<subj>-<cam>.json (intrinsic 3x4,
extrinsic 4x4 world->camera, mm)."""
import json
from pathlib import Path

import numpy as np

CLIPS = [('04ac', '0026', 'test', 'all'), ('04ac', '0031', 'test', 'mid'), ('1b2e', '0002', 'train', 'all')]


def _camera_json(rng, position, image_scale=1.0):
    # look at the capture volume centre (world y-down, so "down" in the image is +y) with a small random roll
    forward = np.array([0.0, -900.0, 8000.0]) - position
    forward /= np.linalg.norm(forward)
    right = np.cross([0.0, 1.0, 0.0], forward)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    roll = rng.uniform(-0.05, 0.05)
    right, down = np.cos(roll) * right + np.sin(roll) * down, -np.sin(roll) * right + np.cos(roll) * down
    rotation = np.stack([right, down, forward])
    extrinsic = np.eye(4)
    extrinsic[:3, :3] = rotation
    extrinsic[:3, 3] = -rotation @ position
    s = image_scale  # the real 3840x2160 intrinsics, scaled for smaller fake frames
    intrinsic = [[3908.2 * s, 0, (1907.1 + 0.5) * s - 0.5, 0], [0, 3904.4 * s, (1082.7 + 0.5) * s - 0.5, 0],
                 [0, 0, 1, 0]]
    return {'intrinsic_matrix': intrinsic, 'extrinsic_matrix': extrinsic.tolist()}


def write_fake_release(root, seed=0, n_frames=23, image_scale=1.0, videos=False, splits_header=False):
    """splits.csv as the release has it (no header row; `splits_header` adds one), c3d mocap, cameras."""
    import ezc3d
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    lines = ['subject_id,clip_id,split,camera_id'] if splits_header else []
    written = {}
    for subject, clip, split, camera in CLIPS:
        lines.append(f'{subject},{clip},{split},{camera}')
        folder = 'test' if split == 'test' else 'trainval'
        mocap = rng.normal(0, 300, (n_frames, 17, 3)) + [0, -900, 8000]
        c3d = ezc3d.c3d()
        c3d['parameters']['POINT']['RATE']['value'] = [50]
        c3d['parameters']['POINT']['LABELS']['value'] = [f'joint{i}' for i in range(17)]
        points = np.ones((4, 17, n_frames))
        points[:3] = np.transpose(mocap, (2, 1, 0))
        c3d['data']['points'] = points
        path = root / folder / 'joints_3d' / subject / f'{subject}-{clip}.c3d'
        path.parent.mkdir(parents=True, exist_ok=True)
        c3d.write(str(path))
        written[(subject, clip)] = mocap
        for cam_name, x in (('left', -4000), ('mid', 0), ('right', 4000)):
            cam_path = root / folder / 'cameras' / subject / f'{subject}-{cam_name}.json'
            if not cam_path.exists():
                cam_path.parent.mkdir(parents=True, exist_ok=True)
                cam_path.write_text(json.dumps(_camera_json(rng, np.array([x, -1500.0, 0.0]), image_scale)))
    (root / 'splits.csv').write_text('\n'.join(lines) + '\n')
    if videos:
        _write_videos_and_boxes(root, written, image_scale)
    return written


def _write_videos_and_boxes(root, written, image_scale):
    """videos/<subj>/<subj>-<clip>-<cam>.mkv with dots at the projected joints, and boxes/*.csv."""
    from posepile.ds.aspset import main as aspset
    from posepile.util import boxes as boxlib
    from posepile.util.video import write_video
    width, height = int(round(3840 * image_scale)), int(round(2160 * image_scale))
    for subject, clip, split, camera in CLIPS:
        folder = root / ('test' if split == 'test' else 'trainval')
        for cam_name in (aspset.CAMERA_NAMES if camera == 'all' else (camera,)):
            cam = aspset.load_camera(folder / 'cameras' / subject / f'{subject}-{cam_name}.json')
            frames, rows = [], ['l,t,r,b']
            for pose in written[(subject, clip)]:
                pixels = cam.world_to_image(pose)
                canvas = np.full((height, width), 45.0, np.float32)
                for u, v in pixels:
                    if 10 <= u < width - 10 and 10 <= v < height - 10:
                        y0, x0 = int(v) - 8, int(u) - 8
                        ys, xs = np.mgrid[y0:y0 + 17, x0:x0 + 17]
                        canvas[y0:y0 + 17, x0:x0 + 17] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / 8)
                frames.append(np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
                x, y, w, h = boxlib.expand(boxlib.bb_of_points(pixels), 1.1)
                rows.append(f'{x:.1f},{y:.1f},{x + w:.1f},{y + h:.1f}')
            write_video(folder / 'videos' / subject / f'{subject}-{clip}-{cam_name}.mkv', frames, fps=50, quality=9)
            box_path = folder / 'boxes' / subject / f'{subject}-{clip}-{cam_name}.csv'
            box_path.parent.mkdir(parents=True, exist_ok=True)
            box_path.write_text('\n'.join(rows) + '\n')
