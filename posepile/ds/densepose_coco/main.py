"""DensePose-COCO (train2014) -> Pose2DDataset: the 17 COCO keypoints plus each person's DensePose points on
SMPL (Pose2DExample.densepose), crops via the pipeline.

Raw layout: $DATA_ROOT/densepose_coco/densepose_coco_2014_train.json (COCO format; person annotations carry
keypoints and, when DensePose-annotated, dp_masks, dp_I, dp_U, dp_V, dp_x, dp_y),
$DATA_ROOT/densepose_coco/UV_data/UV_Processed.mat (DensePose's SMPL charts) and the images
$DATA_ROOT/coco/train2014/<file_name>. train2014 becomes TRAIN (the original reads only that file).

People, as the original PosePile (nlf-era-facts.md 1.4, original-posepile-facts.md densepose_coco):
- non-crowd annotations with DensePose points (`dp_masks` and the dp_* point lists);
- the COCO visibility rule: at least 17 / 3 keypoints visible (v == 2) and 17 / 2 labelled (v > 0);
- more than 6 of the 12 limb joints (shoulders, elbows, wrists, hips, knees, ankles) labelled;
- joints: COCO-17 px, NaN where v == 0; box: the annotation box; mask: the annotation's segmentation.
DensePose points: dp_x, dp_y (0..255 across the person box) -> image px over the box rounded to whole pixels
and clipped to the image (posepile.util.densepose.dp_box_to_image); (dp_I, dp_U, dp_V) -> SMPL vertex triplets
and barycentric coordinates (posepile.util.densepose.IUVConverter on UV_Processed.mat). The points move with
the crop like the joints.
A malformed annotation (keypoints not 17 x [x, y, v], DensePose lists of different lengths, a chart outside
1..24) stops the build with one line naming the annotation file and the annotation id.
"""
import logging
import os
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'densepose_coco'

JOINT_NAMES = 'nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank'
JOINT_EDGES = 'lsho-rsho-rhip-lhip-lsho-lelb-lwri,rsho-relb-rwri,lhip-lkne-lank,rhip-rkne-rank,lear-leye-nose-reye-rear'
ANNOTATION_FILES = {'densepose_coco_2014_train.json': ('train2014', 0)}
N_JOINTS = 17
MIN_VISIBLE = N_JOINTS / 3
MIN_LABELLED = N_JOINTS / 2
LIMB_JOINTS = ('lsho', 'rsho', 'lelb', 'relb', 'lwri', 'rwri', 'lhip', 'rhip', 'lkne', 'rkne', 'lank', 'rank')
MIN_VALID_LIMB_JOINTS = 7  # "> 6"
DP_FIELDS = ('dp_I', 'dp_U', 'dp_V', 'dp_x', 'dp_y')
UV_RELPATH = 'UV_data/UV_Processed.mat'
UV_PATH_VARIABLE = 'DENSEPOSE_UV_PATH'


class DensePoseFormatError(InputError):
    pass


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def uv_data_path(data_root=None):
    """DensePose's UV_Processed.mat: $DENSEPOSE_UV_PATH, else $DATA_ROOT/densepose_coco/UV_data/."""
    return Path(os.environ.get(UV_PATH_VARIABLE) or raw_root(data_root) / UV_RELPATH)


def load_converter(data_root=None):
    from posepile.util.densepose import IUVConverter
    return IUVConverter.from_mat(uv_data_path(data_root))


def has_densepose(annotation):
    return bool(annotation.get('dp_masks')) and all(field in annotation for field in DP_FIELDS)


def limb_joint_indices(joint_names):
    names = joint_names.split(',')
    return [names.index(name) for name in LIMB_JOINTS]


def enough_limb_joints(coords, joint_names=JOINT_NAMES):
    valid = np.all(np.isfinite(coords[limb_joint_indices(joint_names)]), axis=-1)
    return int(np.count_nonzero(valid)) >= MIN_VALID_LIMB_JOINTS


def keypoint_array(path, annotation, n_joints=N_JOINTS):
    """annotation['keypoints'] as (J, 3) [x, y, v]; DensePoseFormatError naming the file and id otherwise."""
    where = f'{path}: annotation {annotation.get("id")}'
    try:
        keypoints = np.asarray(annotation['keypoints'], np.float64)
    except KeyError:
        raise DensePoseFormatError(f'{where} has no keypoints') from None
    except (TypeError, ValueError) as e:
        raise DensePoseFormatError(f'{where}: keypoints not numeric ({e})') from e
    if keypoints.shape != (3 * n_joints,) or not np.all(np.isfinite(keypoints)):
        raise DensePoseFormatError(f'{where} has {keypoints.size} keypoint values, expected {3 * n_joints} finite '
                                   f'numbers ({n_joints} x [x, y, v])')
    return keypoints.reshape(n_joints, 3)


def passes_visibility_rule(keypoints, visible_flags=(2,)):
    """The original's COCO rule: >= J / 3 keypoints visible and >= J / 2 labelled (v > 0)."""
    n_joints = len(keypoints)
    n_visible = np.count_nonzero(np.isin(keypoints[:, 2], visible_flags))
    n_labelled = np.count_nonzero(keypoints[:, 2] > 0)
    return n_visible >= n_joints / 3 and n_labelled >= n_joints / 2


def annotation_box(path, annotation):
    try:
        box = np.asarray(annotation['bbox'], np.float64).reshape(-1)
    except (KeyError, TypeError, ValueError) as e:
        raise DensePoseFormatError(f'{path}: annotation {annotation.get("id")} has no usable bbox ({e})') from None
    if box.shape != (4,) or not np.all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
        raise DensePoseFormatError(f'{path}: annotation {annotation.get("id")} has the bbox {annotation["bbox"]}, '
                                   'expected [x, y, w, h] with w, h > 0')
    return box


def annotation_densepose(path, annotation, image, converter):
    """The annotation's DensePose points: (imcoords (N, 2) px, SMPL vertex ids (N, 3), barycoords (N, 3))."""
    from posepile.util.densepose import dp_box_to_image
    where = f'{path}: annotation {annotation.get("id")}'
    try:
        values = {field: np.asarray(annotation[field], np.float64).reshape(-1) for field in DP_FIELDS}
    except (TypeError, ValueError) as e:
        raise DensePoseFormatError(f'{where}: DensePose points not numeric ({e})') from e
    lengths = {len(v) for v in values.values()}
    if len(lengths) != 1:
        raise DensePoseFormatError(f'{where}: dp_I, dp_U, dp_V, dp_x, dp_y have different lengths '
                                   f'{[len(values[f]) for f in DP_FIELDS]}')
    imcoords = dp_box_to_image(values['dp_x'], values['dp_y'], annotation['bbox'], (image['width'], image['height']))
    try:
        i_faces, barycoords = converter(values['dp_I'], values['dp_U'], values['dp_V'])
    except ValueError as e:
        raise DensePoseFormatError(f'{where}: {e}') from e
    return imcoords, i_faces, barycoords


def annotation_mask(annotation, height, width):
    from posepile.ds.coco.main import annotation_mask as coco_annotation_mask
    return coco_annotation_mask(annotation, height, width)


def load_annotation_file(path):
    from posepile.util import fileio
    data = fileio.load_json(path, DensePoseFormatError, required_lists=('images', 'annotations'))
    try:
        images = {image['id']: image for image in data['images']}
    except (KeyError, TypeError) as e:
        raise DensePoseFormatError(f'{path}: not a COCO-format file ({type(e).__name__}: {e})') from e
    return images, data['annotations']


def keep_person(path, annotation):
    """Whether the original keeps this annotation (before any DensePose conversion)."""
    if annotation.get('iscrowd', 0) or not has_densepose(annotation):
        return False
    keypoints = keypoint_array(path, annotation)
    coords = keypoints_to_coords(keypoints)
    return passes_visibility_rule(keypoints) and enough_limb_joints(coords)


def keypoints_to_coords(keypoints):
    """(J, 3) [x, y, v] -> (J, 2) px, NaN where v == 0 (not labelled)."""
    coords = np.array(keypoints[:, :2], np.float32)
    coords[keypoints[:, 2] <= 0] = np.nan
    return coords


def make_crop_tasks(data_root=None):
    from posepile.datasets2d import Pose2DExample
    root = raw_root(data_root)
    converter = None
    tasks = []
    for file_name, (image_dir, split) in ANNOTATION_FILES.items():
        path = root / file_name
        if not path.exists():
            raise DensePoseFormatError(f'{path} not found: download it with DensePoseData/get_DensePose_COCO.sh '
                                       '(https://github.com/facebookresearch/DensePose)')
        images, annotations = load_annotation_file(path)
        n_dense = 0
        for annotation in annotations:
            n_dense += has_densepose(annotation) and not annotation.get('iscrowd', 0)
            if not keep_person(path, annotation):
                continue
            image = images.get(annotation.get('image_id'))
            if image is None:
                raise DensePoseFormatError(f'{path}: annotation {annotation.get("id")} refers to unknown image '
                                           f'{annotation.get("image_id")}')
            converter = converter or load_converter(data_root)
            box = annotation_box(path, annotation)
            example = Pose2DExample(
                f'coco/{image_dir}/{image["file_name"]}', keypoints_to_coords(keypoint_array(path, annotation)), box,
                mask=annotation_mask(annotation, image['height'], image['width']),
                densepose=annotation_densepose(path, annotation, image, converter),
                extra={'coco_id': annotation['id']})
            crop = f'{NAME}_downscaled/{image_dir}/{Path(image["file_name"]).stem}_{annotation["id"]}.jpg'
            tasks.append((f'{split}/{annotation["id"]:012d}', example, crop))
        logger.info('%s: %d annotations, %d non-crowd with DensePose points, %d kept', path.name, len(annotations),
                    n_dense, len(tasks))
    if not tasks:
        raise DensePoseFormatError(f'{root}: no DensePose-annotated person passes the keypoint rules')
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of the kept people, with their DensePose points."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def joint_info():
    from posepile.joint_info import JointInfo
    return JointInfo(JOINT_NAMES, JOINT_EDGES)


def make_dataset(data_root=None):
    from posepile.datasets2d import Pose2DDataset
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose2DDataset(joint_info(), splits[0], splits[1])


def assemble_stage(data_root=None):
    """The dataset densepose_coco for get_dataset()."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.densepose_coco.main', 'DensePose-COCO stages', {
        'crop': crop_stage,
        'assemble': assemble_stage,
    })


if __name__ == '__main__':
    main()
