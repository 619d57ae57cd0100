"""Halpe-FullBody -> Pose2DDataset: 136 keypoints (26 body incl. head top, neck, pelvis and feet; 68 face;
21 per hand) on the HICO-DET training images, TRAIN only, crops via the pipeline.

Raw layout: $DATA_ROOT/halpe/halpe_train_v1.json (COCO style, keypoints 136 x [x, y, v]) and the images in
$DATA_ROOT/halpe/hico_20160224_det/images/train2015/.

Invalid keypoints (NaN): v == 0, and keypoints at exactly (0, 0) px whatever their flag. The release marks
some missing points only by the (0, 0) position; the original PosePile kept those as valid (flagged in its
code), which put joints in the image corner.
A person is kept when it is not a crowd region and, among the 26 body keypoints (those at (0, 0) not
counted), at least 26 / 3 are visible (v == 2) and at least 13 labelled (v > 0), and both the annotation box
and the box of its valid keypoints have a shorter side > 100 px. Example box: the annotation box.
"""
import logging
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'halpe'
ANNOTATION_FILE = 'halpe_train_v1.json'
IMAGE_DIR = 'hico_20160224_det/images/train2015'

# The joint names and edges of the original PosePile's Halpe (the paper's mixes match joints by name): 26 body
# points (COCO-17, head top, neck, pelvis, big toes 'toe', small toes 'toe2', heels), 68 face points, 2 x 21 hand
# points.
BODY_NAMES = ('nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank,'
              'htop,neck,pelv,ltoe,rtoe,ltoe2,rtoe2,lhee,rhee')
FACE_NAMES = ('rface1,rface2,rface3,rface4,rface5,rface6,rface7,rface8,chin,lface8,lface7,lface6,lface5,lface4,'
              'lface3,lface2,lface1,rface9,rface10,rface11,rface12,rface13,lface13,lface12,lface11,lface10,lface9,'
              'nose1,nose2,nose3,nose4,rface14,rface15,nose5,lface15,lface14,reye1,reye2,reye3,reye4,reye5,reye6,'
              'leye4,leye3,leye2,leye1,leye6,leye5,rmouth1,rmouth2,rmouth3,mouth1,lmouth3,lmouth2,lmouth1,'
              'lmouth4,lmouth5,mouth2,rmouth5,rmouth4,rmouth6,rmouth7,mouth3,lmouth7,lmouth6,lmouth8,mouth4,'
              'rmouth8')
HAND_NAMES = ','.join([f'{side}han{i}' for side in 'lr' for i in range(1, 22)])  # lhan1..lhan21, rhan1..rhan21
JOINT_NAMES = ','.join([BODY_NAMES, FACE_NAMES, HAND_NAMES])
# The original's edges (index pairs), written as index paths: each consecutive pair is an edge
EDGE_PATHS = [
    [3, 1, 0, 2, 4], [9, 7, 5, 18, 6, 8, 10], [17, 18, 19, 11, 13, 15, 24, 20], [19, 12, 14, 16, 25, 21],
    [22, 24], [23, 25],  # body and feet
    list(range(26, 43)), list(range(43, 48)), list(range(48, 53)), list(range(53, 57)), list(range(57, 62)),
    list(range(62, 68)), list(range(68, 74)), list(range(74, 94)),  # face
    *[[94, *range(first, first + 4)] for first in (95, 99, 103, 107, 111)],  # left hand: wrist, 5 fingers
    *[[115, *range(first, first + 4)] for first in (116, 120, 124, 128, 132)],  # right hand
]
JOINT_EDGES = sorted({tuple(sorted(pair)) for path in EDGE_PATHS for pair in zip(path[:-1], path[1:])})
N_JOINTS = 136
N_BODY = 26
MIN_VISIBLE_BODY = N_BODY / 3
MIN_LABELLED_BODY = 13
MIN_BOX_SIDE = 100  # px, for both the annotation box and the valid keypoints' box


class HalpeFormatError(InputError):
    pass


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def joint_info():
    from posepile.joint_info import JointInfo
    return JointInfo(JOINT_NAMES, JOINT_EDGES)


def load_annotation_file(path):
    """(images by id, annotations) of a Halpe-FullBody JSON, checked: 136 x 3 keypoint values per annotation
    and a known image for each. Raises HalpeFormatError naming the file and the problem."""
    path = Path(path)
    from posepile.util import fileio
    data = fileio.load_json(path, HalpeFormatError, required_lists=('images', 'annotations'))
    try:
        images = {image['id']: image for image in data['images']}
        for annotation in data['annotations']:
            _check_annotation(path, annotation, images)
    except (KeyError, TypeError) as e:
        raise HalpeFormatError(f'{path}: malformed annotation ({type(e).__name__}: {e})') from e
    return images, data['annotations']


def _check_annotation(path, annotation, images):
    keypoints = annotation['keypoints']
    if not isinstance(keypoints, list) or len(keypoints) != 3 * N_JOINTS:
        n = len(keypoints) if isinstance(keypoints, list) else type(keypoints).__name__
        raise HalpeFormatError(f'{path}: annotation {annotation.get("id")} has {n} keypoint values, '
                               f'expected {3 * N_JOINTS} (136 x [x, y, v])')
    if annotation['image_id'] not in images:
        raise HalpeFormatError(f'{path}: annotation {annotation.get("id")} refers to unknown image '
                               f'{annotation["image_id"]}')
    if len(annotation['bbox']) != 4:
        raise HalpeFormatError(f'{path}: annotation {annotation.get("id")} has a bbox of '
                               f'{len(annotation["bbox"])} values, expected 4')


def keypoint_array(keypoints):
    """[x, y, v] * 136 -> (136, 3) float32 with v set to 0 where the point is at exactly (0, 0) px."""
    k = np.asarray(keypoints, np.float32).reshape(N_JOINTS, 3).copy()
    k[(k[:, 0] == 0) & (k[:, 1] == 0), 2] = 0
    return k


def keypoints_to_coords(keypoints):
    """[x, y, v] * 136 -> (136, 2) px; NaN where v == 0 or the point is at (0, 0)."""
    k = keypoint_array(keypoints)
    coords = k[:, :2].copy()
    coords[k[:, 2] <= 0] = np.nan
    return coords


def is_usable(annotation):
    """Not crowd, enough visible/labelled body keypoints, annotation and keypoint boxes large enough (px)."""
    if annotation.get('iscrowd', 0):
        return False
    from posepile.util import boxes
    k = keypoint_array(annotation['keypoints'])
    body_flags = k[:N_BODY, 2]
    if np.sum(body_flags == 2) < MIN_VISIBLE_BODY or np.sum(body_flags > 0) < MIN_LABELLED_BODY:
        return False
    keypoint_box = boxes.bb_of_points(keypoints_to_coords(annotation['keypoints']))
    return bool(min(annotation['bbox'][2:]) > MIN_BOX_SIDE and np.nanmin(keypoint_box[2:]) > MIN_BOX_SIDE)


def make_crop_tasks(data_root=None):
    """Crop tasks of the usable people (see is_usable), all TRAIN."""
    from posepile.datasets2d import Pose2DExample
    root = raw_root(data_root)
    path = root / ANNOTATION_FILE
    if not path.exists():
        raise FileNotFoundError(f'{path} not found: download it from https://github.com/Fang-Haoshu/Halpe-FullBody')
    images, annotations = load_annotation_file(path)
    tasks = []
    for annotation in annotations:
        if not is_usable(annotation):
            continue
        file_name = images[annotation['image_id']]['file_name']
        example = Pose2DExample(f'{NAME}/{IMAGE_DIR}/{file_name}', keypoints_to_coords(annotation['keypoints']),
                                annotation['bbox'], extra={'annotation_id': annotation['id']})
        crop = f'{NAME}_downscaled/{Path(file_name).stem}_{annotation["id"]}.jpg'
        tasks.append((f'0/{annotation["id"]:012d}', example, crop))
    logger.info('%s: %d of %d annotations usable', path.name, len(tasks), len(annotations))
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of every usable training person."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def make_dataset(data_root=None):
    from posepile.datasets2d import Pose2DDataset
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose2DDataset(joint_info(), splits[0])


def assemble_stage(data_root=None):
    """The dataset halpe for get_dataset()."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.halpe.main', 'Halpe-FullBody stages', {
        'crop': crop_stage,
        'assemble': assemble_stage,
    })


if __name__ == '__main__':
    main()
