"""PoseTrack 2018 -> Pose2DDataset: 17 joints (nose, head bottom, head top, ears, limbs), a keypoint is valid
iff its visibility flag == 1 (all others NaN), motion-adaptive frame selection per track, crops via the pipeline.

Raw layout: one PoseTrack 2018 JSON per video, either as the label archive extracts,
$DATA_ROOT/posetrack/posetrack_data/annotations/{train,val}/<sequence>.json, or moved up to
$DATA_ROOT/posetrack/annotations/{train,val}/<sequence>.json; the frames under $DATA_ROOT/posetrack/<file_name
of the image> (images/{train,val}/<sequence>/<frame>.jpg). train becomes TRAIN, val VALID; test sequences and
prediction files ('preds_val') are not read.

People, as the original PosePile:
- annotations without `bbox` are dropped (box-only annotations without `keypoints` too);
- with a detector ($POSEPILE_DETECTOR / --detector, the `detect` stage; the original used YOLOv4), the people of
  a frame are matched to its detections by the Hungarian method on IoU with the annotation box (pairs need
  IoU >= 0.1), unmatched people are dropped and the example box is the DETECTION box; without a detector the
  box is the annotation `bbox`;
- frame selection along each track (`select_track_frames`, on the people left): a frame is kept when, compared
  with the last kept frame of the track, some joint became valid or the joints valid in both moved at least
  0.5 x the head-box diagonal (px). SELECTION_RULES: 'frobenius' (default, the original's rule, which the
  paper's data used: ONE norm over the displacements of all those joints together, flagged as a bug there: it
  keeps frames where every joint jitters a little) or 'per_joint' (some single joint moved that far).
"""
import logging
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'posetrack'

JOINT_NAMES = 'nose,head,htop,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank'
# the joint names and edges of the original PosePile (the paper's mixes match joints by name); 'reye' is not a
# PoseTrack joint, so its path adds no edge (as in the original)
JOINT_EDGES = 'rsho-relb-rwri,rhip-rkne-rank,nose-reye-rear,head-htop'
N_JOINTS = 17
SPLITS = {'train': 0, 'val': 1}
HEAD_DIAGONAL_FACTOR = 0.5
SELECTION_RULES = ('frobenius', 'per_joint')
DEFAULT_SELECTION = 'frobenius'
MIN_IOU = 0.1
DETECTIONS_FILE = 'person_detections.pkl'
# where the sequence files may be, relative to $DATA_ROOT/posetrack: as moved up, as the label archive extracts
ANNOTATION_DIRS = ('annotations', 'posetrack_data/annotations')


class PoseTrackFormatError(InputError):
    pass


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def joint_info():
    from posepile.joint_info import JointInfo
    return JointInfo(JOINT_NAMES, JOINT_EDGES)


def keypoints_to_coords(keypoints):
    """PoseTrack [x, y, v] * 17 -> (17, 2) px; NaN unless v == 1."""
    k = np.asarray(keypoints, np.float32).reshape(N_JOINTS, 3)
    coords = k[:, :2].copy()
    coords[k[:, 2] != 1] = np.nan
    return coords


def _box_or_none(path, annotation, field):
    """annotation[field] as [x, y, w, h] px float32; None when absent or empty (w or h <= 0)."""
    value = annotation.get(field)
    if value is None:
        return None
    box = np.asarray(value, np.float32).reshape(-1)
    if box.size != 4:
        raise PoseTrackFormatError(f'{path}: annotation {annotation.get("id")} has a {field} of {box.size} values, '
                                   'expected 4 ([x, y, w, h])')
    return box if np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0 else None


def _read_json(path, error_class):
    from posepile.util import fileio
    return fileio.load_json(path, error_class)


def _parse_person(path, annotation, image):
    keypoints = annotation['keypoints']
    if not isinstance(keypoints, list) or len(keypoints) != 3 * N_JOINTS:
        n = len(keypoints) if isinstance(keypoints, list) else type(keypoints).__name__
        raise PoseTrackFormatError(f'{path}: annotation {annotation.get("id")} has {n} keypoint values, '
                                   f'expected {3 * N_JOINTS} (17 x [x, y, v])')
    head_box = _box_or_none(path, annotation, 'bbox_head')
    return {'id': annotation['id'], 'track_id': int(annotation['track_id']), 'frame_id': int(image['frame_id']),
            'file_name': image['file_name'], 'coords': keypoints_to_coords(keypoints),
            'bbox': _box_or_none(path, annotation, 'bbox'),
            'head_diagonal': float(np.hypot(head_box[2], head_box[3])) if head_box is not None else np.nan}


def load_sequence(path):
    """The labelled people of one PoseTrack 2018 sequence file, as dicts with id, track_id, frame_id,
    file_name, coords (17, 2) px (NaN unless v == 1), bbox [x, y, w, h] px or None, head_diagonal (px, NaN
    without head box). Annotations without `keypoints` (box-only) are skipped.

    Raises PoseTrackFormatError naming the file and the problem."""
    path = Path(path)
    data = _read_json(path, PoseTrackFormatError)
    if not isinstance(data, dict) or not isinstance(data.get('images'), list) or \
            not isinstance(data.get('annotations'), list):
        raise PoseTrackFormatError(f'{path}: not a PoseTrack 2018 file (needs "images" and "annotations" lists)')
    try:
        images = {image['id']: image for image in data['images']}
        people, seen = [], set()
        for annotation in data['annotations']:
            if annotation['image_id'] not in images:
                raise PoseTrackFormatError(f'{path}: annotation {annotation.get("id")} refers to unknown image '
                                           f'{annotation["image_id"]}')
            if 'keypoints' not in annotation:
                continue
            person = _parse_person(path, annotation, images[annotation['image_id']])
            if (person['frame_id'], person['track_id']) in seen:
                raise PoseTrackFormatError(f'{path}: track {person["track_id"]} appears twice in frame '
                                           f'{person["frame_id"]}')
            seen.add((person['frame_id'], person['track_id']))
            people.append(person)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, PoseTrackFormatError):
            raise
        raise PoseTrackFormatError(f'{path}: malformed PoseTrack annotation ({type(e).__name__}: {e})') from e
    return people


def select_track_frames(coords, head_diagonals, factor=HEAD_DIAGONAL_FACTOR, rule=DEFAULT_SELECTION):
    """Indices of the frames of ONE track (ordered in time) to keep.

    coords: (N, J, 2) px, NaN = invalid; head_diagonals: (N,) px. Frame i is kept when some joint is valid in
    frame i but was invalid in the last kept frame, or when the joints valid in both moved at least
    `factor` x head_diagonals[i]: with rule 'frobenius' (the original's) the norm of all their displacements
    together (sqrt of the sum of squares over joints and x, y), with 'per_joint' some single joint's
    displacement. The first frame with any valid joint is kept; frames without valid joints never. A frame
    without head box uses the median head diagonal of the track (0 if the track has none).
    """
    if rule not in SELECTION_RULES:
        raise ValueError(f'unknown PoseTrack selection rule {rule!r}; use one of {", ".join(SELECTION_RULES)}')
    coords = np.asarray(coords, np.float64)
    diagonals = np.asarray(head_diagonals, np.float64)
    known = diagonals[np.isfinite(diagonals) & (diagonals > 0)]
    diagonals = np.where(np.isfinite(diagonals) & (diagonals > 0), diagonals, np.median(known) if known.size else 0)
    valid = np.all(np.isfinite(coords), axis=-1)
    kept, reference = [], None
    for i in range(len(coords)):
        if not valid[i].any():
            continue
        if reference is not None:
            both = valid[i] & valid[reference]
            step = coords[i, both] - coords[reference, both]
            threshold = factor * diagonals[i]
            if rule == 'frobenius':
                moved = np.sqrt(np.sum(step ** 2)) >= threshold
            else:
                moved = np.any(np.linalg.norm(step, axis=-1) >= threshold)
            if not (moved or np.any(valid[i] & ~valid[reference])):
                continue
        kept.append(i)
        reference = i
    return kept


def select_people(people, rule=DEFAULT_SELECTION):
    """The people (dicts of load_sequence) of one sequence kept by the per-track frame selection."""
    by_track = {}
    for person in people:
        by_track.setdefault(person['track_id'], []).append(person)
    selected = []
    for track_id, track in sorted(by_track.items()):
        track.sort(key=lambda p: p['frame_id'])
        indices = select_track_frames(np.stack([p['coords'] for p in track]), [p['head_diagonal'] for p in track],
                                      rule=rule)
        selected.extend(track[i] for i in indices)
    return selected


def attach_boxes(people, detections=None):
    """The people with an annotation `bbox`, each with `box`: the annotation box, or with detections
    ({image file_name: (N, 5) [x, y, w, h, score] px}) the detection matched to it (Hungarian on IoU with the
    annotation box, IoU >= 0.1; unmatched people dropped) and its `detection_score`."""
    from posepile.preproc.association import associate_boxes
    people = [p for p in people if p['bbox'] is not None]
    if detections is None:
        return [dict(p, box=p['bbox']) for p in people]
    by_image = {}
    for person in people:
        by_image.setdefault(person['file_name'], []).append(person)
    matched = []
    for file_name, persons in by_image.items():
        dets = np.asarray(detections.get(file_name, np.zeros((0, 5))), np.float32).reshape(-1, 5)
        indices = associate_boxes(np.stack([p['bbox'] for p in persons]), dets, min_iou=MIN_IOU)
        matched += [dict(p, box=dets[i, :4], detection_score=float(dets[i, 4]))
                    for p, i in zip(persons, indices) if i >= 0]
    return matched


def _sequence_tasks(path, split_name, detections=None, rule=DEFAULT_SELECTION, data_root=None):
    from posepile.datasets2d import Pose2DExample
    sequence = path.stem
    people = load_sequence(path)
    if detections is not None:
        missing = sorted({p['file_name'] for p in people if p['bbox'] is not None} - set(detections))
        if missing:
            raise FileNotFoundError(f'{detections_path(data_root)} has no detections for {len(missing)} frames of '
                                    f'{path} (e.g. {missing[0]}): delete it and rerun the detect stage')
    boxed = attach_boxes(people, detections)
    selected = select_people(boxed, rule)
    logger.info('%s: %d labelled people, %d with a box%s, %d kept by the frame selection (%s)', path.name,
                len(people), len(boxed), '' if detections is None else ' matched to a detection', len(selected),
                rule)
    tasks = []
    for person in selected:
        frame = Path(person['file_name']).stem
        extra = {'annotation_id': person['id'], 'track_id': person['track_id']}
        if 'detection_score' in person:
            extra['detection_score'] = person['detection_score']
        example = Pose2DExample(f'{NAME}/{person["file_name"]}', person['coords'], person['box'],
                                scene_name=sequence, extra=extra)
        crop = f'{NAME}_downscaled/{split_name}/{sequence}/{frame}_{person["track_id"]:04d}.jpg'
        tasks.append((f'{SPLITS[split_name]}/{sequence}/{frame}/{person["track_id"]:04d}', example, crop))
    return tasks


def sequence_paths(split_name, data_root=None):
    """The sequence files of a split, from whichever of ANNOTATION_DIRS holds them (an error if both do)."""
    root = raw_root(data_root)
    found = {d: sorted((root / d / split_name).glob('*.json')) for d in ANNOTATION_DIRS}
    holding = [d for d, paths in found.items() if paths]
    if len(holding) > 1:
        raise PoseTrackFormatError(f'{root / holding[0] / split_name} and {root / holding[1] / split_name} both hold '
                                   'sequence files: keep one of them')
    if not holding:
        logger.info('no sequence files in %s, skipping that split',
                    ' or '.join(str(root / d / split_name) for d in ANNOTATION_DIRS))
        return []
    return found[holding[0]]


def detections_path(data_root=None):
    return work_dir(data_root) / DETECTIONS_FILE


def _uses_detections(detector_spec):
    return detector_spec is not None and detector_spec.split(':')[0] != 'gt'


def detect_stage(detector_spec=None, shard=None, data_root=None):
    """Person detections in the frames with annotated people (skipped when done; without a detector, or with
    'gt', none: the annotation boxes are the boxes)."""
    from posepile.preproc.detection import run_detection_stage
    detector_spec = pipeline.configured_detector(detector_spec)
    if not _uses_detections(detector_spec):
        logger.info('detector %s: the annotation boxes are the boxes, no detection file written', detector_spec)
        return
    relpaths = sorted({p['file_name'] for split_name in SPLITS for path in sequence_paths(split_name, data_root)
                       for p in load_sequence(path) if p['bbox'] is not None})
    run_detection_stage(raw_root(data_root), relpaths, detections_path(data_root), detector_spec, shard)


detect_stage.cli_options = [pipeline.DETECTOR_OPTION]


def make_crop_tasks(data_root=None, detector_spec=None, selection=DEFAULT_SELECTION):
    """Crop tasks of the selected people of every train and val sequence (detections used when a detector is
    configured: `detector_spec` or $POSEPILE_DETECTOR, other than 'gt')."""
    from posepile.util import fileio
    detections = None
    if _uses_detections(pipeline.configured_detector(detector_spec)):
        path = detections_path(data_root)
        if not path.exists():
            raise FileNotFoundError(f'{path} not found: run the detect stage first (a detector is configured)')
        detections = fileio.load_pickle(path)
    tasks = []
    for split_name in SPLITS:
        for path in sequence_paths(split_name, data_root):
            tasks.extend(_sequence_tasks(path, split_name, detections, selection, data_root))
    if not tasks:
        root = raw_root(data_root)
        raise FileNotFoundError(f'no PoseTrack annotations under {root / ANNOTATION_DIRS[0]}/{{train,val}} or '
                                f'{root / ANNOTATION_DIRS[1]}/{{train,val}}')
    return tasks


def crop_stage(detector_spec=None, selection=DEFAULT_SELECTION, shard=None, n_workers=None, data_root=None):
    """Crops of the people in the motion-selected frames of every track."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root, detector_spec, selection), shard, n_workers,
                                data_root)


crop_stage.cli_options = [pipeline.DETECTOR_OPTION,
                          ('--selection', dict(default=DEFAULT_SELECTION, choices=SELECTION_RULES,
                                               help="frame selection: 'frobenius' (the original's, default) or "
                                                    "'per_joint'"))]


def make_dataset(data_root=None):
    from posepile.datasets2d import Pose2DDataset
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose2DDataset(joint_info(), splits[0], splits[1])


def assemble_stage(data_root=None):
    """The dataset posetrack for get_dataset()."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.posetrack.main', 'PoseTrack 2018 stages', {
        'detect': detect_stage,
        'crop': crop_stage,
        'assemble': assemble_stage,
    })


if __name__ == '__main__':
    main()
