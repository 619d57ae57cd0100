"""COCO-WholeBody (v1.0) -> Pose2DDataset: 133 keypoints (17 COCO body, 6 foot, 68 face, 21 left hand, 21 right
hand), crowd annotations skipped, person masks from the polygons/RLE, crops via the pipeline.

Raw layout: $DATA_ROOT/coco_wb/coco_wholebody_{train,val}_v1.0.json (also accepted in $DATA_ROOT/coco/annotations/);
the images are COCO 2017's, read from the coco recipe's folder $DATA_ROOT/coco/{train,val}2017/.
train becomes TRAIN, val VALID.

Each annotation stores the parts in separate fields (`keypoints`, `foot_kpts`, `face_kpts`, `lefthand_kpts`,
`righthand_kpts`, each [x, y, v] * n). Body points with v == 0 are NaN; a part whose `<part>_valid` flag is false
is NaN altogether, and within a valid part points with confidence v <= 0 are NaN (hand and face points carry
fractional confidences in the release). A person is kept (as in the original PosePile) when it is not a crowd
region, at least 17 / 3 of its body keypoints are visible (v == 2) and at least 17 / 2 labelled (v == 1 or 2), and
the box of all its valid keypoints, expanded 1.25x about its centre, has a longer side of at least 200 px.
Example box: the COCO annotation box.
"""
import logging
from pathlib import Path

import numpy as np

from posepile.ds.halpe.main import FACE_NAMES, HAND_NAMES
from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'coco_wb'
IMAGE_DATASET = 'coco'  # the images live in the coco recipe's raw folder
SPLITS = {'train': 0, 'val': 1}

# The joint names and edges of the original PosePile's COCO-WholeBody (the paper's mixes match joints by name):
# COCO-17, then the foot points (big toe 'toe', small toe 'toe2', heel per side), and the 68 face and 2 x 21 hand
# points named as in its Halpe.
BODY_NAMES = 'nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank'
FOOT_NAMES = 'ltoe,ltoe2,lhee,rtoe,rtoe2,rhee'
JOINT_NAMES = ','.join([BODY_NAMES, FOOT_NAMES, FACE_NAMES, HAND_NAMES])
JOINT_EDGES = 'rsho-relb-rwri,rhip-rkne-rank,nose-reye-rear'
# (keypoint field, number of points, validity flag field or None) in the order of JOINT_NAMES
PARTS = [('keypoints', 17, None), ('foot_kpts', 6, 'foot_valid'), ('face_kpts', 68, 'face_valid'),
         ('lefthand_kpts', 21, 'lefthand_valid'), ('righthand_kpts', 21, 'righthand_valid')]
N_JOINTS = 133
N_BODY = 17
MIN_VISIBLE_BODY = N_BODY / 3
MIN_LABELLED_BODY = N_BODY / 2
KEYPOINT_BOX_EXPANSION = 1.25
MIN_KEYPOINT_BOX_SIDE = 200  # px, the longer side of the expanded keypoint box


class COCOWholeBodyFormatError(InputError):
    pass


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def joint_info():
    from posepile.joint_info import JointInfo
    return JointInfo(JOINT_NAMES, JOINT_EDGES)


def annotation_path(split_name, data_root=None):
    """The annotation file of a split (train/val): in $DATA_ROOT/coco_wb/, else $DATA_ROOT/coco/annotations/."""
    file_name = f'coco_wholebody_{split_name}_v1.0.json'
    candidates = [raw_root(data_root) / file_name,
                  pipeline.raw_root(IMAGE_DATASET, data_root) / 'annotations' / file_name]
    return next((path for path in candidates if path.exists()), candidates[0])


def load_annotation_file(path):
    """(images by id, annotations) of a COCO-WholeBody JSON, checked: every part field present with 3 values per
    point, a known image. Raises COCOWholeBodyFormatError naming the file and the problem."""
    path = Path(path)
    from posepile.util import fileio
    data = fileio.load_json(path, COCOWholeBodyFormatError, required_lists=('images', 'annotations'))
    try:
        images = {image['id']: image for image in data['images']}
        for annotation in data['annotations']:
            _check_annotation(path, annotation, images)
    except (KeyError, TypeError) as e:
        raise COCOWholeBodyFormatError(f'{path}: malformed annotation ({type(e).__name__}: {e})') from e
    return images, data['annotations']


def _check_annotation(path, annotation, images):
    for field, n_points, _ in PARTS:
        values = annotation.get(field)
        if not isinstance(values, list) or len(values) != 3 * n_points:
            found = 'no field' if values is None else \
                f'{len(values)} values' if isinstance(values, list) else type(values).__name__
            raise COCOWholeBodyFormatError(f'{path}: annotation {annotation.get("id")} has {found} in {field!r}, '
                                           f'expected {3 * n_points} ({n_points} x [x, y, v])')
    if annotation['image_id'] not in images:
        raise COCOWholeBodyFormatError(f'{path}: annotation {annotation.get("id")} refers to unknown image '
                                       f'{annotation["image_id"]}')


def annotation_to_coords(annotation):
    """All parts -> (133, 2) px; NaN for body v == 0, for parts whose `_valid` flag is false, and for points of a
    valid part with confidence <= 0."""
    parts = []
    for field, n_points, valid_field in PARTS:
        k = np.asarray(annotation[field], np.float32).reshape(n_points, 3)
        coords = k[:, :2].copy()
        coords[k[:, 2] <= 0] = np.nan
        if valid_field is not None and not annotation.get(valid_field, True):
            coords[:] = np.nan
        parts.append(coords)
    return np.concatenate(parts)


def is_usable(annotation, coords):
    """Not crowd, enough visible and labelled body keypoints, expanded keypoint box large enough (see module doc).
    `coords`: the (133, 2) px of annotation_to_coords."""
    from posepile.util import boxes
    if annotation.get('iscrowd', 0):
        return False
    body_flags = np.asarray(annotation['keypoints'], np.float64).reshape(N_BODY, 3)[:, 2]
    n_visible = np.count_nonzero(body_flags == 2)
    n_labelled = n_visible + np.count_nonzero(body_flags == 1)
    if n_visible < MIN_VISIBLE_BODY or n_labelled < MIN_LABELLED_BODY:
        return False
    box = boxes.expand(boxes.bb_of_points(coords), KEYPOINT_BOX_EXPANSION)
    return bool(np.max(box[2:]) >= MIN_KEYPOINT_BOX_SIDE)


def _image_tasks(split_name, image, annotations):
    from posepile.datasets2d import Pose2DExample
    from posepile.ds.coco.main import annotation_mask
    tasks = []
    for annotation in annotations:
        coords = annotation_to_coords(annotation)
        if not is_usable(annotation, coords):
            continue
        example = Pose2DExample(f'{IMAGE_DATASET}/{split_name}2017/{image["file_name"]}', coords, annotation['bbox'],
                                mask=annotation_mask(annotation, image['height'], image['width']),
                                extra={'annotation_id': annotation['id']})
        crop = f'{NAME}_downscaled/{split_name}/{Path(image["file_name"]).stem}_{annotation["id"]}.jpg'
        tasks.append((f'{SPLITS[split_name]}/{annotation["id"]:012d}', example, crop))
    return tasks


def make_crop_tasks(data_root=None):
    """Crop tasks for every usable person (see is_usable)."""
    tasks = []
    for split_name in SPLITS:
        path = annotation_path(split_name, data_root)
        if not path.exists():
            logger.info('%s not found, skipping that split', path)
            continue
        images, annotations = load_annotation_file(path)
        by_image = {}
        for annotation in annotations:
            by_image.setdefault(annotation['image_id'], []).append(annotation)
        for image_id, image_annotations in sorted(by_image.items()):
            tasks.extend(_image_tasks(split_name, images[image_id], image_annotations))
    if not tasks:
        raise FileNotFoundError(f'no COCO-WholeBody annotations in {raw_root(data_root)}')
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of every usable person."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def make_dataset(data_root=None):
    from posepile.datasets2d import Pose2DDataset
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose2DDataset(joint_info(), splits[0], splits[1])


def assemble_stage(data_root=None):
    """The dataset coco_wb for get_dataset()."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.coco_wb.main', 'COCO-WholeBody stages', {
        'crop': crop_stage,
        'assemble': assemble_stage,
    })


if __name__ == '__main__':
    main()
