"""A tiny COCO-WholeBody release: coco_wb/coco_wholebody_{train,val}_v1.0.json in the format of the real sample
(info, licenses, categories with the 17 body keypoint names and skeleton, images as in COCO, annotations with
keypoints, foot_kpts, face_kpts, lefthand_kpts, righthand_kpts ([x, y, v] each), foot/face/lefthand/righthand
_valid, face/lefthand/righthand _box, segmentation, area, bbox, iscrowd, num_keypoints) and the COCO 2017 images
under coco/{train,val}2017/, JPEGs with bright dots at the valid keypoints.

Per person kind: 'full' (all parts valid, hands with fractional confidences as in the sample), 'nohands'
(hands and face not annotated: zeros, _valid false), both kept; 'empty' (no keypoint at all), 'occluded' (too few
visible body keypoints), 'small' (expanded keypoint box under 200 px), plus one crowd region: all three dropped."""
import json
from pathlib import Path

import numpy as np

from posepile.util import improc
from tests.fakes.halpe import _face, _hand

WIDTH, HEIGHT = 480, 360
BACKGROUND = 45
KEYPOINT_NAMES = ['nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
                  'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
                  'left_knee', 'right_knee', 'left_ankle', 'right_ankle']
SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
            [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
# unit body pose (x / width, y / height): COCO-17, then left big toe, small toe, heel, right big toe, small toe, heel
_BODY = np.array([[.50, .08], [.46, .06], [.54, .06], [.40, .07], [.60, .07], [.25, .20], [.75, .20],
                  [.15, .38], [.85, .38], [.10, .54], [.90, .54], [.32, .54], [.68, .54], [.30, .76],
                  [.70, .76], [.30, .93], [.70, .93], [.22, .99], [.36, .99], [.30, .97], [.78, .99],
                  [.64, .99], [.70, .97]])
LAYOUT = {  # per image: (kind, x0, y0, height) px
    'train': [[('full', 30, 30, 280), ('nohands', 260, 40, 260)], [('full', 120, 20, 300), ('empty', 400, 30, 60)],
              [('occluded', 40, 30, 280), ('small', 300, 40, 120)]],
    'val': [[('nohands', 40, 50, 250), ('full', 250, 30, 290)]],
}
PARTS = ['keypoints', 'foot_kpts', 'face_kpts', 'lefthand_kpts', 'righthand_kpts']


def _person(kind, x0, y0, height, rng):
    """{field: (n, 3) [x, y, v]} and the annotation box [x, y, w, h] px."""
    body = _BODY * [0.55 * height, height] + [x0, y0]
    points = {'keypoints': body[:17], 'foot_kpts': body[17:],
              'face_kpts': _face(body[0] + [0, 0.01 * height], 0.035 * height),
              'lefthand_kpts': _hand(body[9], np.array([-.2, 1.0]), 0.07 * height),
              'righthand_kpts': _hand(body[10], np.array([.2, 1.0]), 0.07 * height)}
    body_flags = rng.choice([0, 1, 2], 17, p=[.2, .2, .6])
    body_flags[rng.choice(17, 10, replace=False)] = 2  # >= 17/3 visible and >= 17/2 labelled
    if kind == 'occluded':  # 4 visible, 10 occluded: too few visible
        body_flags = np.array([2] * 4 + [1] * 10 + [0] * 3)[rng.permutation(17)]
    flags = {'keypoints': body_flags, 'foot_kpts': rng.choice([0, 2], 6, p=[.3, .7]),
             'face_kpts': np.ones(68), 'lefthand_kpts': np.ones(21),
             'righthand_kpts': rng.uniform(0.04, 0.9, 21)}
    if kind == 'nohands':
        for field in ('face_kpts', 'lefthand_kpts', 'righthand_kpts'):
            flags[field] = np.zeros(len(points[field]))
    if kind == 'empty':
        flags = {field: np.zeros(len(points[field])) for field in PARTS}
    parts = {field: np.concatenate([np.where(flags[field][:, None] > 0, points[field], 0), flags[field][:, None]], 1)
             for field in PARTS}
    labelled = np.concatenate([p[p[:, 2] > 0, :2] for p in parts.values()] + [body[:1]])
    (x1, y1), (x2, y2) = labelled.min(0) - 6, labelled.max(0) + 6
    return parts, [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


def _part_box(part):
    valid = part[part[:, 2] > 0, :2]
    if not len(valid):
        return [0.0, 0.0, 0.0, 0.0]
    (x1, y1), (x2, y2) = valid.min(0), valid.max(0)
    return [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


def _annotation(annotation_id, image_id, parts, bbox):
    x, y, w, h = bbox
    annotation = {'segmentation': [[x, y, x + w, y, x + w, y + h, x, y + h]], 'num_keypoints':
                  int(np.sum(parts['keypoints'][:, 2] > 0)), 'area': w * h, 'iscrowd': 0,
                  'keypoints': parts['keypoints'].ravel().tolist(), 'image_id': image_id, 'bbox': bbox,
                  'category_id': 1, 'id': annotation_id}
    for field in PARTS[1:]:
        annotation[field] = parts[field].ravel().tolist()
    for name in ('face', 'lefthand', 'righthand'):
        annotation[f'{name}_box'] = _part_box(parts[f'{name}_kpts'])
    for name in ('face', 'lefthand', 'righthand', 'foot'):
        annotation[f'{name}_valid'] = bool(np.any(parts[f'{name}_kpts'][:, 2] > 0))
    return annotation


def _crowd(annotation_id, image_id):
    annotation = {'segmentation': {'counts': [HEIGHT * 420 + 280, 60], 'size': [HEIGHT, WIDTH]},
                  'num_keypoints': 0, 'area': 3600.0, 'iscrowd': 1, 'keypoints': [0] * 51, 'image_id': image_id,
                  'bbox': [420.0, 280.0, 60.0, 60.0], 'category_id': 1, 'id': annotation_id}
    for field, n in zip(PARTS[1:], (6, 68, 21, 21)):
        annotation[field] = [0] * (3 * n)
    for name in ('face', 'lefthand', 'righthand'):
        annotation[f'{name}_box'] = [0.0, 0.0, 0.0, 0.0]
    for name in ('face', 'lefthand', 'righthand', 'foot'):
        annotation[f'{name}_valid'] = False
    return annotation


def _draw(person_parts):
    canvas = np.full((HEIGHT, WIDTH), float(BACKGROUND), np.float32)
    ys, xs = np.mgrid[:HEIGHT, :WIDTH]
    for parts in person_parts:
        for part in parts.values():
            for x, y, v in part:
                if v > 0:
                    canvas += 200 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5 ** 2))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def write_fake_release(data_root, seed=0):
    """Writes $DATA_ROOT/coco_wb/*.json and $DATA_ROOT/coco/{train,val}2017/*.jpg.
    Returns {split: (images, annotations, {annotation id: kind})} as written."""
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    categories = [{'supercategory': 'person', 'id': 1, 'name': 'person', 'keypoints': KEYPOINT_NAMES,
                   'skeleton': SKELETON}]
    written = {}
    annotation_id = 1
    for s, (split, layout) in enumerate(LAYOUT.items()):
        images, annotations, kinds = [], [], {}
        for i, persons in enumerate(layout):
            image_id = 1000 * (s + 1) + i
            image = {'license': 1, 'file_name': f'{image_id:012d}.jpg', 'coco_url': '', 'height': HEIGHT,
                     'width': WIDTH, 'date_captured': '', 'flickr_url': '', 'id': image_id}
            images.append(image)
            drawn = []
            for kind, x0, y0, height in persons:
                parts, bbox = _person(kind, x0, y0, height, rng)
                annotations.append(_annotation(annotation_id, image_id, parts, bbox))
                kinds[annotation_id] = kind
                drawn.append(parts)
                annotation_id += 1
            if i == 0:
                annotations.append(_crowd(annotation_id, image_id))
                kinds[annotation_id] = 'crowd'
                annotation_id += 1
            improc.write_jpeg_atomic(data_root / 'coco' / f'{split}2017' / image['file_name'], _draw(drawn), 98)
        info = {'description': 'fake COCO-WholeBody', 'url': '', 'version': '1.0', 'year': '2020',
                'date_created': '2020/09/18'}
        path = data_root / 'coco_wb' / f'coco_wholebody_{split}_v1.0.json'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({'info': info, 'licenses': [{'url': '', 'id': 1, 'name': 'fake'}],
                                    'categories': categories, 'images': images, 'annotations': annotations}))
        written[split] = (images, annotations, kinds)
    return written
