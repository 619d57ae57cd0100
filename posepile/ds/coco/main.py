"""COCO keypoints (2017) -> Pose2DDataset: 17 joints, invisible/unlabelled keypoints (v = 0) as NaN,
crowd annotations skipped, person masks from the polygons/RLE, crops via the pipeline.

Raw layout: $DATA_ROOT/coco/annotations/person_keypoints_{train,val}2017.json and images in
$DATA_ROOT/coco/{train,val}2017/. train2017 becomes TRAIN, val2017 VALID.
Variants: `coco` (multi-person, the one the original's 2D mixes take) keeps every person, however much their
box overlaps another's (the original's multi-person mode computes a 0.5 IoU threshold but never applies it);
`coco_single` (single-person) keeps people whose box overlaps every other box of the image with IoU < 0.1.
Both variants keep only the people the original keeps in both of its modes (original-posepile-facts.md,
coco: the AIC visibility rule and the size rule): at least 17 / 3 keypoints visible (v == 2), at least 17 / 2
labelled (v > 0), and the box of the labelled keypoints, expanded 1.25x about its centre, with a longer side of at
least 200 px.
A malformed annotation (keypoints not 17 x [x, y, v], a box not 4 finite numbers) stops the build with one line
naming the annotation file and the annotation id.
"""
import logging
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'coco'

JOINT_NAMES = 'nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank'
JOINT_EDGES = 'lsho-rsho-rhip-lhip-lsho-lelb-lwri,rsho-relb-rwri,lhip-lkne-lank,rhip-rkne-rank,lear-leye-nose-reye-rear'
SPLITS = {'train2017': 0, 'val2017': 1}
# largest allowed IoU with another person's box, exclusive (None: no limit)
MAX_IOU_WITH_OTHERS = {'coco': None, 'coco_single': 0.1}
N_JOINTS = 17
MIN_VISIBLE = N_JOINTS / 3
MIN_LABELLED = N_JOINTS / 2
KEYPOINT_BOX_EXPANSION = 1.25
MIN_KEYPOINT_BOX_SIDE = 200  # px, the longer side of the expanded box of the labelled keypoints


class COCOFormatError(InputError):
    pass


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def load_annotation_file(path):
    path = Path(path)
    from posepile.util import fileio
    data = fileio.load_json(path, COCOFormatError, required_lists=('images', 'annotations'))
    try:
        images = {im['id']: im for im in data['images']}
    except (KeyError, TypeError) as e:
        raise COCOFormatError(f'{path}: not a COCO keypoints file ({type(e).__name__}: {e})') from e
    return images, data['annotations']


def keypoints_to_coords(keypoints):
    """COCO [x, y, v] * 17 -> (17, 2) px, NaN where v == 0 (not labelled)."""
    k = np.asarray(keypoints, np.float32).reshape(17, 3)
    coords = k[:, :2].copy()
    coords[k[:, 2] == 0] = np.nan
    return coords


def check_annotation(path, annotation):
    """Raises COCOFormatError naming `path` and the annotation id unless the annotation has 17 x [x, y, v]
    finite keypoint values and a box of 4 finite numbers."""
    where = f'{path}: annotation {annotation.get("id")}'
    try:
        keypoints = np.asarray(annotation['keypoints'], np.float64)
        box = np.asarray(annotation['bbox'], np.float64)
    except KeyError as e:
        raise COCOFormatError(f'{where} has no {e.args[0]!r}') from e
    except (TypeError, ValueError) as e:
        raise COCOFormatError(f'{where}: keypoints or bbox not numeric ({e})') from e
    if keypoints.shape != (51,):
        raise COCOFormatError(f'{where} has {keypoints.size} keypoint values, expected 51 (17 x [x, y, v])')
    if not np.isfinite(keypoints).all():
        raise COCOFormatError(f'{where} has non-finite keypoint values')
    if box.shape != (4,) or not np.isfinite(box).all():
        raise COCOFormatError(f'{where} has the bbox {annotation["bbox"]}, expected 4 finite numbers [x, y, w, h]')


def is_usable(keypoints):
    """The original's rule for both COCO modes: enough visible (v == 2) and labelled (v > 0) keypoints, and the
    box of the labelled ones, expanded 1.25x, has a longer side >= 200 px. keypoints: 17 x [x, y, v]."""
    from posepile.util import boxes
    k = np.asarray(keypoints, np.float64).reshape(N_JOINTS, 3)
    n_visible = np.count_nonzero(k[:, 2] == 2)
    n_labelled = np.count_nonzero(k[:, 2] > 0)
    if n_visible < MIN_VISIBLE or n_labelled < MIN_LABELLED:
        return False
    box = boxes.expand(boxes.bb_of_points(keypoints_to_coords(keypoints)), KEYPOINT_BOX_EXPANSION)
    return bool(np.max(box[2:]) >= MIN_KEYPOINT_BOX_SIDE)


def max_iou_with_others(boxes_xywh):
    """For each box, the largest IoU with any other box of the same image."""
    from posepile.util import boxes as boxlib
    boxes_xywh = np.asarray(boxes_xywh, np.float64).reshape(-1, 4)
    if len(boxes_xywh) < 2:
        return np.zeros(len(boxes_xywh))
    ious = boxlib.iou_matrix(boxes_xywh, boxes_xywh)
    np.fill_diagonal(ious, 0)
    return ious.max(axis=1)


def annotation_mask(annotation, height, width):
    from posepile.util import masks
    segmentation = annotation.get('segmentation')
    if not segmentation:
        return None
    if isinstance(segmentation, list):
        return masks.from_polygons(segmentation, (height, width))
    return masks.union([dict(segmentation, size=[height, width])]) if 'counts' in segmentation else None


def make_crop_tasks(data_root=None):
    """Crop tasks for every non-crowd person that passes `is_usable`; the IoU with others is stored so that the
    variants can filter without re-cropping."""
    from posepile.datasets2d import Pose2DExample
    root = raw_root(data_root)
    tasks = []
    for split_name in SPLITS:
        path = root / 'annotations' / f'person_keypoints_{split_name}.json'
        if not path.exists():
            if not pipeline.skip_broken_default():  # never a silently missing split
                raise COCOFormatError(f'{path} not found: extract annotations_trainval2017.zip (or set '
                                      'SKIP_BROKEN=1 to build without that split)')
            logger.warning('%s not found: building without that split (SKIP_BROKEN=1)', path)
            continue
        images, annotations = load_annotation_file(path)
        by_image = {}
        for annotation in annotations:
            by_image.setdefault(annotation['image_id'], []).append(annotation)
        for image_id, image_annotations in sorted(by_image.items()):
            image = images.get(image_id)
            if image is None:
                raise COCOFormatError(f'{path}: annotation {image_annotations[0].get("id")} refers to unknown '
                                      f'image {image_id}')
            for annotation in image_annotations:
                check_annotation(path, annotation)
            all_boxes = [a['bbox'] for a in image_annotations]  # crowd regions count as other people too
            overlaps = max_iou_with_others(all_boxes)
            for annotation, overlap in zip(image_annotations, overlaps):
                if annotation.get('iscrowd', 0) or not is_usable(annotation['keypoints']):
                    continue
                relpath = f'coco/{split_name}/{image["file_name"]}'
                example = Pose2DExample(relpath, keypoints_to_coords(annotation['keypoints']), annotation['bbox'],
                                        mask=annotation_mask(annotation, image['height'], image['width']),
                                        extra={'max_iou_with_others': float(overlap), 'coco_id': annotation['id']})
                crop = f'coco_downscaled/{split_name}/{Path(image["file_name"]).stem}_{annotation["id"]}.jpg'
                tasks.append((f'{SPLITS[split_name]}/{annotation["id"]:012d}', example, crop))
    if not tasks:
        raise FileNotFoundError(f'no COCO keypoint annotations under {root / "annotations"}')
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of every non-crowd person with labelled keypoints."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def _make(variant, data_root=None):
    from posepile.datasets2d import Pose2DDataset
    from posepile.joint_info import JointInfo
    limit = MAX_IOU_WITH_OTHERS[variant]
    splits = pipeline.examples_by_split(NAME, data_root)
    kept = {s: [e for e in examples if limit is None or e.extra['max_iou_with_others'] < limit]
            for s, examples in splits.items()}
    return Pose2DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), kept[0], kept[1])


def make_dataset(data_root=None):
    """coco: every non-crowd person with labelled keypoints, however much they overlap others (the original's
    multi-person COCO has no overlap filter either)."""
    return _make('coco', data_root)


def make_single_person(data_root=None):
    """coco_single: people whose box has IoU < 0.1 with every other box of the image."""
    return _make('coco_single', data_root)


def assemble_stage(data_root=None):
    """The datasets coco and coco_single for get_dataset()."""
    pipeline.save_datasets({name: (lambda n=name: _make(n, data_root)) for name in MAX_IOU_WITH_OTHERS})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.coco.main', 'COCO keypoint stages', {
        'crop': crop_stage,
        'assemble': assemble_stage,
    })


if __name__ == '__main__':
    main()
