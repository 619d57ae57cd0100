"""A tiny MPII release: mpii_human_pose_v1_u12_1.mat with the official struct RELEASE (annolist with
image.name, annorect with x1, y1, x2, y2 head box, scale, objpos, annopoints.point with x, y, id,
is_visible; img_train; single_person; act; version) written with scipy.io.savemat, and images/*.jpg with
dots at the labelled joints. With `realdata`, the real MPII images and their converted joints are used."""
import json
import shutil
from pathlib import Path

import numpy as np


def _rect(coords, visible, center, scale, head):
    points = [{'x': float(x), 'y': float(y), 'id': j, 'is_visible': int(v)}
              for j, ((x, y), v) in enumerate(zip(coords, visible)) if np.isfinite(x)]
    point_array = np.empty(len(points), dtype=object)
    point_array[:] = points
    return {'x1': head[0], 'y1': head[1], 'x2': head[2], 'y2': head[3], 'scale': scale,
            'objpos': {'x': float(center[0]), 'y': float(center[1])}, 'annopoints': {'point': point_array}}


def write_fake_release(root, seed=0, realdata=None):
    """Returns the list of people written (dicts with image, coords, center, scale)."""
    import scipy.io
    from posepile.util import improc
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / 'images').mkdir(parents=True, exist_ok=True)
    people = []
    real_json = Path(realdata) / 'mpii' / 'test_mpii.json' if realdata else None
    if real_json is not None and real_json.exists():
        for entry in json.loads(real_json.read_text()):
            shutil.copy(real_json.parent / entry['image'], root / 'images' / entry['image'])
            coords = np.array(entry['joints'], np.float64)
            coords[np.array(entry['joints_vis']) == 0] = np.nan
            people.append(dict(image=entry['image'], coords=coords, visible=np.array(entry['joints_vis']),
                               center=entry['center'], scale=entry['scale']))
    else:
        for i in range(3):
            coords = np.stack([rng.uniform(150, 350, 16), rng.uniform(60, 420, 16)], 1)
            coords[rng.random(16) < 0.2] = np.nan
            canvas = np.full((480, 640), 45.0, np.float32)
            ys, xs = np.mgrid[:480, :640]
            for x, y in coords:
                if np.isfinite(x):
                    canvas += 200 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5 ** 2))
            name = f'{i:09d}.jpg'
            improc.write_jpeg_atomic(root / 'images' / name,
                                     np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2), 98)
            people.append(dict(image=name, coords=coords, visible=np.isfinite(coords[:, 0]).astype(int),
                               center=[250.0, 240.0], scale=2.0))
    annolist = np.empty(len(people) + 1, dtype=object)
    for i, p in enumerate(people):
        head = [p['center'][0] - 20, p['center'][1] - 200, p['center'][0] + 20, p['center'][1] - 160]
        annolist[i] = {'image': {'name': p['image']},
                       'annorect': _rect(p['coords'], p['visible'], p['center'], p['scale'], head),
                       'frame_sec': 0, 'vididx': 1}
    annolist[-1] = {'image': {'name': 'test_only.jpg'}, 'annorect': np.zeros((0, 0)), 'frame_sec': 0,
                    'vididx': 1}  # a test image: no joints, img_train = 0
    img_train = np.array([1] * len(people) + [0], np.uint8)
    single_person = np.empty(len(people) + 1, dtype=object)
    act = np.empty(len(people) + 1, dtype=object)
    for i in range(len(people) + 1):
        single_person[i] = np.array([1.0])
        act[i] = {'cat_name': 'sports', 'act_name': 'running', 'act_id': 1}
    scipy.io.savemat(str(root / 'mpii_human_pose_v1_u12_1.mat'), {'RELEASE': {
        'annolist': annolist, 'img_train': img_train, 'version': '12',
        'single_person': single_person, 'act': act}})
    return people
