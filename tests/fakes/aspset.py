"""A tiny ASPset-510 release: splits.csv, {trainval,test}/joints_3d/<subj>/<subj>-<clip>.c3d (ezc3d, 17
points, 50 fps, mm, world y-down) and {trainval,test}/cameras/<subj>/<subj>-<cam>.json (intrinsic 3x4,
extrinsic 4x4 world->camera, mm)."""
import json
from pathlib import Path

import numpy as np

CLIPS = [('04ac', '0026', 'test', 'all'), ('04ac', '0031', 'test', 'mid'), ('1b2e', '0002', 'train', 'all')]


def _camera_json(rng, position):
    angle = rng.uniform(-0.6, 0.6)
    rotation = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    extrinsic = np.eye(4)
    extrinsic[:3, :3] = rotation
    extrinsic[:3, 3] = -rotation @ position
    intrinsic = [[3908.2, 0, 1907.1, 0], [0, 3904.4, 1082.7, 0], [0, 0, 1, 0]]
    return {'intrinsic_matrix': intrinsic, 'extrinsic_matrix': extrinsic.tolist()}


def write_fake_release(root, seed=0, n_frames=23):
    import ezc3d
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    lines = ['subject_id,clip_id,split,camera_id']
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
                cam_path.write_text(json.dumps(_camera_json(rng, np.array([x, -1500.0, 0.0]))))
    (root / 'splits.csv').write_text('\n'.join(lines) + '\n')
    return written
