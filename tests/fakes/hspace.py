"""A tiny HSPACE release: $DATA_ROOT/hspace/2021_01/train/<name>.tfrecord, written with our own TFRecord and
tf.train.Example writer (posepile.util.tfrecord, CRCs included; no TensorFlow).

Each record holds
    'image/rgb'                    PNG whose channels are stored in BGR order: background RGB (60, 45, 30),
                                   grey-green dots (G channel) at the 35 selected joints of each person
    'character_masks'              8-bit PNG label image: person i's rectangle carries mask_id_i in its top half
                                   and mask_id_i - 1 in its bottom half (+ a 1-pixel speck the erosion removes)
    'camera_intrinsics'            fx, fy, cx, cy
    'number_of_rigged_characters'  N
    'RIGGED_<i>/joints_3d'         63 GHUM joints, metres, camera frame (x right, y down)
    'RIGGED_<i>/mask_id'           int64
"""
from pathlib import Path

import cv2
import numpy as np

from posepile.util import tfrecord

WIDTH, HEIGHT = 480, 360
FOCAL = 420.0
INTRINSICS = np.array([[FOCAL, 0, 236.0], [0, FOCAL + 3, 183.0], [0, 0, 1]])
BACKGROUND_RGB = (60, 45, 30)
MASK_MARGIN_PX = 14
N_GHUM = 63


def ghum_template(rng):
    """(63, 3) mm relative to the pelvis, a standing person with spread arms (y down), joints spread out."""
    template = np.zeros((N_GHUM, 3))
    template[:, 0] = rng.uniform(-550, 550, N_GHUM)
    template[:, 1] = rng.uniform(-850, 850, N_GHUM)
    template[:, 2] = rng.uniform(-120, 120, N_GHUM)
    template[0] = 0
    return template


def project(joints_mm):
    return joints_mm[:, :2] / joints_mm[:, 2:] * np.diag(INTRINSICS)[:2] + INTRINSICS[:2, 2]


def render(people_pixels, selected):
    canvas = np.full((HEIGHT, WIDTH), BACKGROUND_RGB[1], np.float32)
    ys, xs = np.mgrid[:HEIGHT, :WIDTH]
    for pixels in people_pixels:
        for u, v in pixels[selected]:
            x0, x1, y0, y1 = max(0, int(u) - 12), int(u) + 13, max(0, int(v) - 12), int(v) + 13
            canvas[y0:y1, x0:x1] += 200 * np.exp(-((xs[y0:y1, x0:x1] - u) ** 2 + (ys[y0:y1, x0:x1] - v) ** 2) / 8)
    green = np.clip(canvas, 0, 255).astype(np.uint8)
    rgb = np.stack([np.full_like(green, BACKGROUND_RGB[0]), green, np.full_like(green, BACKGROUND_RGB[2])], -1)
    return rgb


def mask_rect(pixels):
    """[x0, y0, x1, y1) integer rectangle around the projected joints (plus a margin), clipped."""
    x0, y0 = np.floor(pixels.min(0)).astype(int) - MASK_MARGIN_PX
    x1, y1 = np.ceil(pixels.max(0)).astype(int) + MASK_MARGIN_PX
    return max(0, x0), max(0, y0), min(WIDTH, x1), min(HEIGHT, y1)


def _record(people, selected):
    """people: list of dict(joints_mm (63, 3), mask_id). Returns (record bytes, labels, rgb)."""
    pixels = [project(p['joints_mm']) for p in people]
    rgb = render(pixels, selected)
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    for person, pix in zip(people, pixels):
        x0, y0, x1, y1 = mask_rect(pix)
        labels[y0:(y0 + y1) // 2, x0:x1] = person['mask_id']
        labels[(y0 + y1) // 2:y1, x0:x1] = person['mask_id'] - 1
        labels[2, 2 + 3 * person['mask_id']] = person['mask_id']  # a speck: removed by the erosion
    features = {
        'image/rgb': cv2.imencode('.png', rgb)[1].tobytes(),  # OpenCV writes its input as BGR: stored BGR order
        'character_masks': cv2.imencode('.png', labels)[1].tobytes(),
        'camera_intrinsics': np.array([INTRINSICS[0, 0], INTRINSICS[1, 1], INTRINSICS[0, 2], INTRINSICS[1, 2]],
                                      np.float32),
        'number_of_rigged_characters': np.array([len(people)]),
        'image/timestamp_unused': np.array([7, -1]),
    }
    for i, person in enumerate(people):
        features[f'RIGGED_{i}/joints_3d'] = (person['joints_mm'] / 1000).astype(np.float32)
        features[f'RIGGED_{i}/mask_id'] = np.array([person['mask_id']])
        features[f'RIGGED_{i}/name'] = f'character_{i}'.encode()
    return features, labels, rgb


def _people_plan():
    """Per record a list of (position index, kind): 'fresh' (a selected joint moved 200 mm in depth relative
    to every other pose of that position), 'repeat' (an earlier pose of the position + < 5 mm noise),
    'small' (far away: mask box under 100 px)."""
    plans = [[(0, 'fresh'), (1, 'fresh')], [(0, 'repeat'), (1, 'fresh')], [(0, 'repeat'), (1, 'repeat')],
             [(0, 'fresh')], [(0, 'fresh'), (2, 'small')], [(1, 'repeat'), (0, 'repeat')]]
    return plans


POSITIONS_MM = [np.array([-1100.0, 60, 4300]), np.array([1150.0, 20, 4600]), np.array([0.0, -200, 11000])]


def write_fake_release(root, n_files=2, seed=0, packed=True):
    """Writes the release under `root` ($DATA_ROOT/hspace). Returns {file stem: list per record of list per
    person of dict(joints_mm (63, 3) camera frame, mask_id, rect [x0, y0, x1, y1), selected_mm (35, 3))},
    plus the key 'selected' (the GHUM indices of the 35 joints)."""
    from posepile.ds.hspace.main import selected_joint_indices
    rng = np.random.default_rng(seed)
    selected = selected_joint_indices()
    folder = Path(root) / '2021_01' / 'train'
    folder.mkdir(parents=True, exist_ok=True)
    written = {'selected': selected}
    for i_file in range(n_files):
        templates = [ghum_template(rng) for _ in POSITIONS_MM]
        history = {k: [] for k in range(len(POSITIONS_MM))}
        n_fresh = 0
        records, truth = [], []
        for plan in _people_plan():
            people = []
            for i_person, (position, kind) in enumerate(plan):
                if kind == 'repeat':
                    joints = history[position][int(rng.integers(len(history[position])))] + \
                        rng.uniform(-2.5, 2.5, (N_GHUM, 3))
                else:
                    joints = templates[position] + POSITIONS_MM[position]
                    if kind == 'small':
                        joints = templates[position] * 0.5 + POSITIONS_MM[position]
                    joints = joints.copy()
                    joints[selected[n_fresh % len(selected)], 2] += 200 * (1 + n_fresh // len(selected))
                    n_fresh += 1
                    history[position].append(joints)
                people.append(dict(joints_mm=joints, mask_id=2 * i_person + 3 + (i_file % 2) * 10))
            features, labels, rgb = _record(people, selected)
            for person in people:
                person['rect'] = mask_rect(project(person['joints_mm']))
                person['selected_mm'] = person['joints_mm'][selected]
            records.append(tfrecord.encode_example(features, packed=packed))
            truth.append(people)
        name = f'hspace_fake_{i_file:03d}'
        tfrecord.write_records(folder / f'{name}.tfrecord', records)
        written[name] = truth
    return written
