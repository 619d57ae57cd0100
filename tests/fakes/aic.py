"""A tiny AI Challenger keypoint release in the layout the recipe reads: AI_Challenger.tar.gz holding
./train/images/<40-hex sha1 name>.jpg members (plus directory entries and a validation image the recipe must
ignore) and annotations/aic_train.json in the COCO-style conversion (as mmpose's test_aic.json: info, licenses,
categories with the 14 keypoint names and skeleton, images {url, file_name, height, width, id}, annotations
{bbox [x, y, w, h] ints, keypoints 14 x [x, y, v] with v 0/1/2 and unlabelled written as 0, 0, 0,
num_keypoints, image_id, category_id, id}). The images have bright dots at the labelled keypoints."""
import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np

from posepile.util import improc

KEYPOINT_NAMES = ['Right Shoulder', 'Right Elbow', 'Right Wrist', 'Left Shoulder', 'Left Elbow', 'Left Wrist',
                  'Right Hip', 'Right Knee', 'Right Ankle', 'Left Hip', 'Left Knee', 'Left Ankle', 'Head top',
                  'Neck']
SKELETON = [[3, 2], [2, 1], [1, 14], [14, 4], [4, 5], [5, 6], [9, 8], [8, 7], [7, 10], [10, 11], [11, 12],
            [13, 14], [1, 7], [4, 10]]
WIDTH, HEIGHT = 480, 360
BACKGROUND = 45
# unit pose (x relative to the box width, y to the height) of a standing person, AIC joint order
_TEMPLATE = np.array([[.20, .20], [.10, .38], [.05, .56], [.80, .20], [.90, .38], [.95, .56], [.30, .54],
                      [.28, .76], [.28, .98], [.70, .54], [.72, .76], [.72, .98], [.50, .00], [.50, .14]])
# visibility patterns: kept (>= 5 visible, >= 7 labelled) or dropped
PATTERNS = {
    'all_visible': [2] * 14,
    'some_occluded': [2, 2, 1, 2, 2, 0, 2, 1, 1, 2, 0, 0, 2, 2],  # 9 visible, 12 labelled: kept
    'few_visible': [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 1, 1],  # 4 visible: dropped
    'few_labelled': [2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # 5 visible but 5 labelled < 7: dropped
}
# per image: the people (pattern, box x, y, w, h px)
IMAGES = [
    [('all_visible', 20, 30, 120, 300), ('some_occluded', 180, 40, 110, 280), ('few_visible', 330, 30, 120, 300)],
    [('few_labelled', 40, 20, 120, 300), ('all_visible', 250, 50, 130, 290)],
    [('few_visible', 100, 40, 140, 300)],
]


def _name(i):
    return hashlib.sha1(f'fake aic {i}'.encode()).hexdigest() + '.jpg'


def _draw(people):
    canvas = np.full((HEIGHT, WIDTH), float(BACKGROUND), np.float32)
    ys, xs = np.mgrid[:HEIGHT, :WIDTH]
    for keypoints in people:
        for x, y, v in keypoints:
            if v > 0:
                canvas += 200 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5 ** 2))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _keypoints(pattern, x, y, w, h):
    coords = np.round(_TEMPLATE * [w, h] + [x, y], 1)
    v = np.array(PATTERNS[pattern])
    return np.concatenate([np.where(v[:, None] > 0, coords, 0), v[:, None]], axis=1)


def _add_bytes(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar, name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    tar.addfile(info)


def write_fake_release(root):
    """Returns a list of people dicts (file_name, pattern, keypoints (14, 3), annotation id) in file order."""
    root = Path(root)
    images, annotations, written = [], [], []
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    with tarfile.open(root / 'AI_Challenger.tar.gz', 'w:gz') as tar:
        for directory in ['.', './train', './train/images', './validation', './validation/images']:
            _add_dir(tar, directory)
        for i_image, people in enumerate(IMAGES):
            file_name = _name(i_image)
            image = {'url': f'http://www.example.com/{i_image}.jpg', 'file_name': file_name, 'height': HEIGHT,
                     'width': WIDTH, 'id': i_image + 1}
            images.append(image)
            all_keypoints = [_keypoints(pattern, *box) for pattern, *box in people]
            for (pattern, *box), keypoints in zip(people, all_keypoints):
                annotation = {'bbox': box, 'keypoints': [int(k) if float(k).is_integer() else float(k)
                                                         for k in keypoints.ravel()],
                              'num_keypoints': int((keypoints[:, 2] > 0).sum()), 'image_id': image['id'],
                              'category_id': 1, 'id': len(annotations) + 1}
                annotations.append(annotation)
                written.append({'file_name': file_name, 'pattern': pattern, 'keypoints': keypoints,
                                'id': annotation['id']})
            _add_bytes(tar, f'./train/images/{file_name}', improc.encode_jpeg(_draw(all_keypoints), 98))
        _add_bytes(tar, f'./validation/images/{_name(99)}', improc.encode_jpeg(_draw([]), 90))
        _add_bytes(tar, f'./train/images/{_name(98)}', improc.encode_jpeg(_draw([]), 90))  # not annotated
    categories = [{'supercategory': 'person', 'id': 1, 'name': 'person', 'keypoints': KEYPOINT_NAMES,
                   'skeleton': SKELETON}]
    data = {'info': {'description': 'AI Challenger keypoints (fake)', 'version': '1.0', 'year': 2017},
            'licenses': [], 'categories': categories, 'images': images, 'annotations': annotations}
    (root / 'annotations' / 'aic_train.json').write_text(json.dumps(data))
    return written
