"""MPII Human Pose, every annotated training person with a detector box ("MPII-yolo") -> Pose2DDataset.

Reads the same raw files as the mpii recipe ($DATA_ROOT/mpii/mpii_human_pose_v1_u12_1.mat and images/*.jpg)
with its reader (posepile.ds.mpii.main.load_people), but keeps all annotated people of an image, not one box
per person from objpos/scale. Per image, as the original PosePile's make_mpii_yolo:
- GT box: box of the 16 labelled joints expanded 1.25x (px);
- detections with score > 0.5 are matched to the GT people by the Hungarian method on IoU (pairs need
  IoU >= 0.1; the original required > 0.1); a matched person gets the DETECTION box, unmatched people are dropped.
Two registered datasets share the crops (one per matched person with more than 6 of the 16 joints labelled):
- `mpii_yolo` (the original's filter_joints=True): the 10 limb joints (no pelvis, thorax, neck, head top,
  shoulders); a person needs more than 6 of these 10 valid;
- `mpii_yolo_alljoints` (the original's filter_joints=False, the variant its 2D mix huge2d takes): all 16
  joints; a person needs more than 6 of the 16 valid.
Detections come from the `detect` stage ($DATA_ROOT/mpii/posepile_work/person_detections.pkl, {'images/<name>':
float32 (N, 5) [x, y, w, h, score] px}); crops go to mpii_downscaled_yolo/images/<stem>_<i:02d>.jpg.
"""
import logging
from pathlib import Path

import numpy as np

from posepile.ds.mpii import main as mpii
from posepile.joint_info import JointInfo
from posepile.preproc import pipeline

logger = logging.getLogger(__name__)
NAME = 'mpii_yolo'
ALLJOINTS_NAME = 'mpii_yolo_alljoints'
RAW_NAME = 'mpii'
CROPS_SUBDIR = 'crops_yolo'
DETECTIONS_FILE = 'person_detections.pkl'

JOINT_NAMES = 'rank,rkne,rhip,lhip,lkne,lank,rwri,relb,lelb,lwri'
JOINT_EDGES = 'lelb-lwri,relb-rwri,lhip-lkne-lank,rhip-rkne-rank'
GT_BOX_EXPANSION = 1.25
MIN_DETECTION_SCORE = 0.5  # exclusive
MIN_IOU = 0.1
MIN_VALID_JOINTS = 7  # "more than 6" (of the 10 joints for mpii_yolo, of the 16 for mpii_yolo_alljoints)
ALL_JOINTS = list(range(16))  # indices of all MPII joints
# registry.joint_info: the skeleton of each builder
JOINT_INFOS = {'make_dataset': JointInfo(JOINT_NAMES, JOINT_EDGES),
               'make_alljoints': JointInfo(mpii.JOINT_NAMES, mpii.JOINT_EDGES)}


class MPIIYoloFormatError(mpii.MPIIFormatError):
    """A malformed MPII annotation file that the mpii reader itself did not diagnose."""


def selected_joint_indices():
    """Indices of JOINT_NAMES in the 16-joint MPII order of posepile.ds.mpii."""
    all_names = mpii.JOINT_NAMES.split(',')
    return [all_names.index(name) for name in JOINT_NAMES.split(',')]


def joint_info():
    """The 10-joint skeleton of mpii_yolo."""
    return JOINT_INFOS['make_dataset']


def detections_path(data_root=None):
    return mpii.work_dir(data_root) / DETECTIONS_FILE


def image_key(person):
    """Key of the person's image in the detections file (relative to $DATA_ROOT/mpii)."""
    return f'images/{person["image"]}'


def people_by_image(data_root=None):
    """{image key: [people of mpii.load_people]} in file order."""
    path = mpii.raw_root(data_root) / mpii.ANNOTATION_FILE
    if not path.exists():
        raise FileNotFoundError(f'{path} not found: download mpii_human_pose_v1_u12_2.zip and extract it')
    try:
        people = mpii.load_people(path)
    except mpii.MPIIFormatError:
        raise
    except (IndexError, TypeError, AttributeError, ValueError, OSError) as e:  # gaps of the shared reader
        raise MPIIYoloFormatError(f'{path}: not a readable MPII annotation ({type(e).__name__}: {e})') from e
    grouped = {}
    for person in people:
        grouped.setdefault(image_key(person), []).append(person)
    return grouped


def gt_box(coords):
    """Box of the labelled joints expanded 1.25x ([x, y, w, h] px; NaN without labelled joints)."""
    from posepile.util import boxes
    return boxes.expand(boxes.bb_of_points(coords), GT_BOX_EXPANSION)


def _gt_detections(grouped, out_path):
    from posepile.util import fileio
    results = {key: np.array([[*gt_box(p['coords']), 1.0] for p in people
                              if np.isfinite(gt_box(p['coords'])).all()], np.float32).reshape(-1, 5)
               for key, people in grouped.items()}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fileio.save_pickle(results, out_path)


def detect_stage(detector='hog', shard=None, data_root=None):
    """Person detections in the training images with annotated people (skipped when the file exists)."""
    from posepile.preproc.detection import run_detection_stage
    out_path = detections_path(data_root)
    if out_path.exists():
        logger.info('%s exists: detections done', out_path)
        return
    grouped = people_by_image(data_root)
    if detector.split(':')[0] == 'gt':
        _gt_detections(grouped, out_path)
        return
    run_detection_stage(mpii.raw_root(data_root), sorted(grouped), out_path, detector, shard)


detect_stage.cli_options = [('--detector', dict(default='hog', help="hog, gt[:EXPANSION], darknet:CFG,WEIGHTS, "
                                                                      "onnx:MODEL or tf:DIR"))]


def n_valid(coords):
    """Number of joints with finite coordinates ((J, 2) px)."""
    return int(np.count_nonzero(np.isfinite(coords).all(axis=1)))


def match_people(people, detections, joint_indices=None):
    """[(index in people, detection [x, y, w, h, score])] of the people kept: matched to a detection of score
    > 0.5 (Hungarian on the GT boxes of all 16 joints, IoU >= 0.1) and more than 6 valid joints among
    `joint_indices` (default: the 10 limb joints of mpii_yolo; all 16 for mpii_yolo_alljoints)."""
    from posepile.preproc.association import associate_boxes
    detections = np.asarray(detections, np.float64).reshape(-1, 5)
    detections = detections[detections[:, 4] > MIN_DETECTION_SCORE]
    boxes = np.stack([gt_box(p['coords']) for p in people])
    matches = associate_boxes(boxes, detections, min_iou=MIN_IOU)
    selected = selected_joint_indices() if joint_indices is None else joint_indices
    return [(i, detections[i_det]) for i, (person, i_det) in enumerate(zip(people, matches))
            if i_det >= 0 and n_valid(person['coords'][selected]) >= MIN_VALID_JOINTS]


def _image_tasks(key, people, detections):
    """Crops of the people kept by either variant (> 6 of the 16 joints valid, a superset of > 6 of the 10);
    the examples carry all 16 joints, the builders select."""
    from posepile.datasets2d import Pose2DExample
    tasks = []
    for i, detection in match_people(people, detections, joint_indices=ALL_JOINTS):
        person = people[i]
        example = Pose2DExample(f'{RAW_NAME}/{key}', person['coords'], detection[:4].astype(np.float32),
                                extra={'detection_score': float(detection[4]), 'person_index': i,
                                       'image_index': int(person['image_index'])})
        crop = f'mpii_downscaled_yolo/images/{Path(person["image"]).stem}_{i:02d}.jpg'
        tasks.append((f'0/{person["image_index"]:06d}/{i:02d}', example, crop))
    return tasks


def make_crop_tasks(data_root=None):
    from posepile.util import fileio
    path = detections_path(data_root)
    if not path.exists():
        raise FileNotFoundError(f'{path} not found: run the detect stage first')
    all_detections = fileio.load_pickle(path)
    grouped = people_by_image(data_root)
    missing = sorted(set(grouped) - set(all_detections))
    if missing:
        raise FileNotFoundError(f'{path} has no detections for {len(missing)} images (e.g. {missing[0]}): '
                                'delete it and rerun the detect stage')
    tasks = []
    for key, people in grouped.items():
        tasks.extend(_image_tasks(key, people, all_detections[key]))
    logger.info('%d of %d people matched to a detection with > 6 of 16 valid joints', len(tasks),
                sum(map(len, grouped.values())))
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of the people matched to a detection (box = the detection)."""
    pipeline.dataset_crop_stage(RAW_NAME, make_crop_tasks(data_root), shard, n_workers, data_root,
                                subdir=CROPS_SUBDIR)


def _matched_examples(data_root=None):
    return pipeline.examples_by_split(RAW_NAME, data_root, subdir=CROPS_SUBDIR)[0]


def _with_joints(example, indices):
    import copy
    new = copy.copy(example)
    new.coords = example.coords[indices]
    return new


def make_dataset(data_root=None):
    """mpii_yolo: MPII people with detector boxes, the 10 limb joints, > 6 of them valid."""
    from posepile.datasets2d import Pose2DDataset
    selected = selected_joint_indices()
    examples = [_with_joints(e, selected) for e in _matched_examples(data_root)]
    return Pose2DDataset(JOINT_INFOS['make_dataset'], [e for e in examples if n_valid(e.coords) >= MIN_VALID_JOINTS])


def make_alljoints(data_root=None):
    """mpii_yolo_alljoints: MPII people with detector boxes, all 16 joints, > 6 of them valid (the variant the
    original's 2D mix takes)."""
    from posepile.datasets2d import Pose2DDataset
    return Pose2DDataset(JOINT_INFOS['make_alljoints'], _matched_examples(data_root))


def assemble_stage(data_root=None):
    """The datasets mpii_yolo (10 joints) and mpii_yolo_alljoints (16 joints) for get_dataset()."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root), ALLJOINTS_NAME: lambda: make_alljoints(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.mpii_yolo.main', 'MPII-yolo stages', {
        'detect': detect_stage,
        'crop': crop_stage,
        'assemble': assemble_stage,
    })


if __name__ == '__main__':
    main()
