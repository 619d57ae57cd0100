"""A tiny multi-person MPII release for the mpii_yolo recipe: mpii_human_pose_v1_u12_1.mat with the official
struct RELEASE (as tests/fakes/mpii.py: annolist with image.name and annorect entries with head box x1, y1, x2,
y2, scale, objpos, annopoints.point {x, y, id, is_visible}; img_train; single_person; act; version), several
people per image, one rect without annopoints (MPII has those; no joints), one test image, and images/*.jpg with
bright dots at the labelled joints. Person 2 of image 1 has 11 of 16 joints labelled but only 5 of the 10 limb
joints: mpii_yolo (> 6 of 10) drops it, mpii_yolo_alljoints (> 6 of 16, the original's filter_joints=False)
keeps it. `write_detections` writes the detection file of the recipe's detect stage
(not part of the release) with a chosen detection per person."""
from pathlib import Path

import numpy as np

from posepile.util import boxes as boxlib
from posepile.util import improc
from tests.fakes.mpii import _rect

WIDTH, HEIGHT = 640, 480
BACKGROUND = 45
# MPII order: rank,rkne,rhip,lhip,lkne,lank,pelv,thor,neck,htop,rwri,relb,rsho,lsho,lelb,lwri
_TEMPLATE = np.array([[.30, .98], [.30, .76], [.35, .54], [.65, .54], [.70, .76], [.70, .98], [.50, .54],
                      [.50, .30], [.50, .17], [.50, .00], [.05, .56], [.12, .38], [.25, .20], [.75, .20],
                      [.88, .38], [.95, .56]])
LIMB_JOINTS = [0, 1, 2, 3, 4, 5, 10, 11, 14, 15]  # the 10 joints mpii_yolo keeps
# per image: people as (box x0 px, detection kind, indices of unlabelled joints)
#   kinds: 'good' (a detection close to the GT box, score 0.9), 'low_score' (same box, score 0.4), 'none'
IMAGES = [
    [(40, 'good', [9]), (250, 'low_score', []), (460, 'good', [0, 1, 4, 5, 15])],  # last: 5 of 10 limb joints
    [(40, 'good', []), (250, 'none', [6, 7]), (460, 'good', [0, 1, 4])],  # last: exactly 7 limb joints
]
PERSON_W, PERSON_H, TOP = 140.0, 300.0, 80.0


def _draw(all_coords):
    canvas = np.full((HEIGHT, WIDTH), float(BACKGROUND), np.float32)
    ys, xs = np.mgrid[:HEIGHT, :WIDTH]
    for coords in all_coords:
        for x, y in coords:
            if np.isfinite(x):
                canvas += 200 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5 ** 2))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _person(x0, unlabelled):
    coords = np.round(_TEMPLATE * [PERSON_W, PERSON_H] + [x0, TOP], 1)
    coords[unlabelled] = np.nan
    center = [x0 + PERSON_W / 2, TOP + PERSON_H / 2]
    head = [center[0] - 15, TOP - 10, center[0] + 15, TOP + 30]
    return coords, center, head


def write_fake_release(root):
    """Returns the people written: dicts with image, person_index, coords (16, 2) px, kind, n_limb_valid,
    n_valid (of all 16 joints)."""
    import scipy.io
    root = Path(root)
    (root / 'images').mkdir(parents=True, exist_ok=True)
    annolist = np.empty(len(IMAGES) + 1, dtype=object)
    written = []
    for i_image, people in enumerate(IMAGES):
        name = f'{i_image + 1:09d}.jpg'
        rects, all_coords = [], []
        for i_person, (x0, kind, unlabelled) in enumerate(people):
            coords, center, head = _person(x0, unlabelled)
            rects.append(_rect(coords, np.isfinite(coords[:, 0]).astype(int), center, PERSON_H / 200, head))
            all_coords.append(coords)
            written.append({'image': name, 'person_index': i_person, 'coords': coords, 'kind': kind,
                            'n_limb_valid': int(np.isfinite(coords[LIMB_JOINTS, 0]).sum()),
                            'n_valid': int(np.isfinite(coords[:, 0]).sum())})
        if i_image == 1:  # a person with only head box, objpos and scale: no joints
            rects.append({'x1': 600.0, 'y1': 10.0, 'x2': 630.0, 'y2': 40.0, 'scale': 0.5,
                          'objpos': {'x': 615.0, 'y': 60.0}})
        rect_array = np.empty(len(rects), dtype=object)
        rect_array[:] = rects
        annolist[i_image] = {'image': {'name': name}, 'annorect': rect_array, 'frame_sec': 0, 'vididx': 1}
        improc.write_jpeg_atomic(root / 'images' / name, _draw(all_coords), 98)
    annolist[-1] = {'image': {'name': 'test_only.jpg'}, 'annorect': np.zeros((0, 0)), 'frame_sec': 0,
                    'vididx': 1}
    n = len(IMAGES) + 1
    single_person, act = np.empty(n, dtype=object), np.empty(n, dtype=object)
    for i in range(n):
        single_person[i] = np.array([1.0])
        act[i] = {'cat_name': 'sports', 'act_name': 'running', 'act_id': 1}
    scipy.io.savemat(str(root / 'mpii_human_pose_v1_u12_1.mat'), {'RELEASE': {
        'annolist': annolist, 'img_train': np.array([1] * len(IMAGES) + [0], np.uint8), 'version': '12',
        'single_person': single_person, 'act': act}})
    return written


def write_detections(path, written):
    """{'images/<name>': float32 (N, 5)}: per person its detection kind, plus a spurious box far from everyone."""
    from posepile.util import fileio
    detections = {}
    for person in written:
        box = boxlib.expand(boxlib.bb_of_points(person['coords']), 1.2) + np.array([4, -3, 0, 0], np.float32)
        rows = detections.setdefault(f'images/{person["image"]}', [[0, 0, 30, 30, 0.95]])
        if person['kind'] != 'none':
            rows.append([*box, 0.9 if person['kind'] == 'good' else 0.4])
    fileio.save_pickle({k: np.array(v, np.float32) for k, v in detections.items()}, path)
