"""A tiny Halpe-FullBody release: halpe_train_v1.json in the format of the real sample (top level categories,
images, annotations; images with license, file_name, coco_url, height, width, date_captured, flickr_url, id;
annotations with area, bbox, category_id, id, image_id, iscrowd, keypoints 136 x [x, y, v], num_keypoints;
the category's keypoint names and skeleton are empty lists, as in the sample) and the HICO-DET images under
hico_20160224_det/images/train2015/, JPEGs with bright dots at the valid keypoints.

People (per kind): 'full' passes every check; 'small' fails the 100 px box sides; 'occluded' has too few
visible (v == 2) body points; 'zeros' passes but has points at exactly (0, 0) with v > 0 (the release's
quirk); plus one crowd region."""
import json
from pathlib import Path

import numpy as np

from posepile.util import improc

WIDTH, HEIGHT = 640, 400
BACKGROUND = 45
FILE_NAME = 'halpe_train_v1.json'
IMAGE_DIR = 'hico_20160224_det/images/train2015'
# unit body pose (x / width, y / height): COCO-17, then htop, neck, pelvis, big toes, small toes, heels
_BODY = np.array([[.50, .08], [.46, .06], [.54, .06], [.40, .07], [.60, .07], [.25, .20], [.75, .20],
                  [.15, .38], [.85, .38], [.10, .54], [.90, .54], [.32, .54], [.68, .54], [.30, .76],
                  [.70, .76], [.30, .93], [.70, .93], [.50, .00], [.50, .17], [.50, .54], [.22, .99],
                  [.78, .99], [.36, .99], [.64, .99], [.30, .97], [.70, .97]])
LAYOUT = [  # per image: (kind, x0, y0, height) px
    [('full', 40, 40, 300), ('small', 420, 60, 90)],
    [('zeros', 60, 50, 280), ('occluded', 340, 40, 300)],
    [('full', 250, 30, 320)],
]
QUIRK_JOINTS = [24, 40, 41]  # lhee and two face points of the 'zeros' person: (0, 0) with v > 0


def _face(center, size):
    """68 points on a jaw/brow/nose/eye/mouth-like layout (px); only their spread matters here."""
    angles = np.linspace(0.1 * np.pi, 0.9 * np.pi, 17)
    jaw = np.stack([np.cos(angles[::-1]) * -1, np.sin(angles)], 1) * [1.0, 1.1]
    inner = np.stack([np.linspace(-.7, .7, 51), -0.3 + 0.6 * (np.arange(51) % 6) / 5], 1)
    return center + size * np.concatenate([jaw, inner])


def _hand(wrist, direction, size):
    fingers = [wrist + size * (direction + spread) * k / 4 for spread in np.linspace(-.6, .6, 5)
               for k in range(1, 5)]
    return np.concatenate([[wrist], fingers])


def _person(kind, x0, y0, height, rng):
    """(136, 3) keypoints [x, y, v] and the annotation box [x, y, w, h] px."""
    body = _BODY * [0.55 * height, height] + [x0, y0]
    face = _face(body[0] + [0, 0.01 * height], 0.035 * height)
    lhand = _hand(body[9], np.array([-.2, 1.0]), 0.07 * height)
    rhand = _hand(body[10], np.array([.2, 1.0]), 0.07 * height)
    coords = np.concatenate([body, face, lhand, rhand])
    v = np.full(136, 2.0)
    v[26:94] = 1  # face points are labelled with 1 in the sample
    v[rng.choice(26, 4, replace=False)] = 0
    if kind == 'occluded':
        v[:26] = np.where(np.arange(26) < 20, 1, 0)
    if kind in ('full', 'zeros'):
        v[94:115] = 0  # left hand not annotated
    keypoints = np.concatenate([np.where(v[:, None] > 0, coords, 0), v[:, None]], 1)
    keypoints[v == 0, :2] = 0
    keypoints[60:66, 2] = 0  # labelled position but flag 0 (as some face points in the sample)
    keypoints[60:66, :2] = coords[60:66]
    if kind == 'zeros':
        keypoints[QUIRK_JOINTS] = [0, 0, 2]
    labelled = keypoints[(keypoints[:, 2] > 0)]
    (x1, y1), (x2, y2) = labelled[:, :2].min(0) - 6, labelled[:, :2].max(0) + 6
    return keypoints, [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


def _draw(keypoint_arrays):
    canvas = np.full((HEIGHT, WIDTH), float(BACKGROUND), np.float32)
    ys, xs = np.mgrid[:HEIGHT, :WIDTH]
    for keypoints in keypoint_arrays:
        for x, y, v in keypoints:
            if v > 0 and (x, y) != (0, 0):
                canvas += 200 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5 ** 2))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def write_fake_release(root, seed=0):
    """Returns (images, annotations) as written, plus {annotation id: kind} as a third element."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    images, annotations, kinds = [], [], {}
    for i, persons in enumerate(LAYOUT):
        image = {'license': 1, 'file_name': f'HICO_train2015_{i + 1:08d}.jpg', 'coco_url': '', 'height': HEIGHT,
                 'width': WIDTH, 'date_captured': '', 'flickr_url': '', 'id': i + 1}
        images.append(image)
        drawn = []
        for kind, x0, y0, height in persons:
            keypoints, bbox = _person(kind, x0, y0, height, rng)
            annotation = {'area': bbox[2] * bbox[3], 'bbox': bbox, 'category_id': 1, 'id': 100 * (i + 1) + len(drawn),
                          'image_id': image['id'], 'iscrowd': 0, 'keypoints': keypoints.ravel().tolist(),
                          'num_keypoints': int(np.sum(keypoints[:17, 2] > 0))}
            annotations.append(annotation)
            kinds[annotation['id']] = kind
            drawn.append(keypoints)
        if i == 0:
            annotations.append({'area': 2000.0, 'bbox': [560.0, 300.0, 50.0, 40.0], 'category_id': 1, 'id': 199,
                                'image_id': image['id'], 'iscrowd': 1, 'keypoints': [0] * 408, 'num_keypoints': 0})
            kinds[199] = 'crowd'
        improc.write_jpeg_atomic(root / IMAGE_DIR / image['file_name'], _draw(drawn), 98)
    categories = [{'supercategory': 'person', 'id': 1, 'name': 'person', 'keypoints': [], 'skeleton': []}]
    (root / FILE_NAME).write_text(json.dumps({'categories': categories, 'images': images,
                                              'annotations': annotations}))
    return images, annotations, kinds
