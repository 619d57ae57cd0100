"""A tiny COCO keypoints release: annotations/person_keypoints_{train,val}2017.json in the official format
(images, annotations with keypoints [x, y, v] * 17, num_keypoints, bbox, iscrowd, segmentation polygons or
crowd RLE, categories with the keypoint names and skeleton) and JPEG images whose labelled keypoints are
drawn as bright dots. With `realdata`, val2017 is the real COCO subset instead."""
import json
import shutil
from pathlib import Path

import numpy as np

from posepile.util import improc

KEYPOINT_NAMES = ['nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
                  'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
                  'left_knee', 'right_knee', 'left_ankle', 'right_ankle']
SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
            [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]


def _person(rng, x0, y0, height):
    """17 keypoints of a standing person in a box starting at (x0, y0); about a third unlabelled."""
    xs = x0 + height * np.array([.25, .22, .28, .18, .32, .12, .38, .06, .44, .04, .46, .16, .34, .15, .35,
                                 .15, .35])
    ys = y0 + height * np.array([.08, .06, .06, .08, .08, .22, .22, .38, .38, .52, .52, .52, .52, .75, .75,
                                 .97, .97])
    v = rng.choice([0, 1, 2], 17, p=[0.3, 0.2, 0.5])
    keypoints = np.stack([np.where(v > 0, xs, 0), np.where(v > 0, ys, 0), v], 1)
    return keypoints, [float(x0), float(y0), float(0.5 * height), float(height)]


def write_fake_release(root, seed=0, realdata=None):
    """Returns {split: (images list, annotations list)} as written."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    categories = [{'supercategory': 'person', 'id': 1, 'name': 'person', 'keypoints': KEYPOINT_NAMES,
                   'skeleton': SKELETON}]
    written = {}
    layouts = {  # per image: list of (x0, y0, height) persons
        'train2017': [[(20, 20, 180)], [(20, 30, 170), (150, 20, 180)], [(40, 20, 190), (60, 30, 180)]],
        'val2017': [[(100, 30, 160)], [(30, 20, 200), (170, 40, 150)]],
    }
    ann_id = 1
    for split, images_layout in layouts.items():
        if split == 'val2017' and realdata is not None and (Path(realdata) / 'coco' / 'test_coco.json').exists():
            real = json.loads((Path(realdata) / 'coco' / 'test_coco.json').read_text())
            (root / split).mkdir(parents=True, exist_ok=True)
            for image in real['images']:
                shutil.copy(Path(realdata) / 'coco' / image['file_name'], root / split / image['file_name'])
            (root / 'annotations' / f'person_keypoints_{split}.json').write_text(json.dumps(real))
            written[split] = (real['images'], real['annotations'])
            continue
        images, annotations = [], []
        for i, persons in enumerate(images_layout):
            image_id = 1000 * (1 + list(layouts).index(split)) + i
            canvas = np.full((240, 320, 3), 40, np.uint8)
            ys, xs = np.mgrid[:240, :320]
            for x0, y0, height in persons:
                keypoints, bbox = _person(rng, x0, y0, height)
                for x, y, v in keypoints:
                    if v > 0:
                        blob = 200 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5 ** 2))
                        canvas = np.clip(canvas + blob[..., None], 0, 255).astype(np.uint8)
                x, y, w, h = bbox
                annotations.append({'id': ann_id, 'image_id': image_id, 'category_id': 1, 'iscrowd': 0,
                                    'keypoints': keypoints.ravel().tolist(),
                                    'num_keypoints': int(np.sum(keypoints[:, 2] > 0)), 'bbox': bbox,
                                    'area': w * h, 'segmentation': [[x, y, x + w, y, x + w, y + h, x, y + h]]})
                ann_id += 1
            if i == 0:  # a crowd region and a person without keypoints in the first image
                annotations.append({'id': ann_id, 'image_id': image_id, 'category_id': 1, 'iscrowd': 1,
                                    'keypoints': [0] * 51, 'num_keypoints': 0, 'bbox': [250, 150, 60, 80],
                                    'area': 4800, 'segmentation': {'counts': [240 * 250 + 150, 80],
                                                                   'size': [240, 320]}})
                annotations.append({'id': ann_id + 1, 'image_id': image_id, 'category_id': 1, 'iscrowd': 0,
                                    'keypoints': [0] * 51, 'num_keypoints': 0, 'bbox': [200, 10, 30, 60],
                                    'area': 1800, 'segmentation': [[200, 10, 230, 10, 230, 70, 200, 70]]})
                ann_id += 2
            file_name = f'{image_id:012d}.jpg'
            improc.write_jpeg_atomic(root / split / file_name, canvas, 98)
            images.append({'id': image_id, 'file_name': file_name, 'height': 240, 'width': 320})
        data = {'info': {}, 'licenses': [], 'categories': categories, 'images': images, 'annotations': annotations}
        (root / 'annotations' / f'person_keypoints_{split}.json').write_text(json.dumps(data))
        written[split] = (images, annotations)
    return written
