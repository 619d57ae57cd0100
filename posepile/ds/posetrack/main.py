"""PoseTrack 2018 -> Pose2DDataset: 17 joints (nose, head bottom, head top, ears, limbs), a keypoint is valid
iff its visibility flag == 1 (all others NaN), motion-adaptive frame selection per track, crops via the pipeline.

Raw layout: $DATA_ROOT/posetrack/annotations/{train,val}/<sequence>.json (one PoseTrack 2018 JSON per video)
and the frames under $DATA_ROOT/posetrack/<file_name of the image> (images/{train,val}/<sequence>/<frame>.jpg).
train becomes TRAIN, val VALID; test sequences and prediction files ('preds_val') are not read.

Frame selection (`select_track_frames`): along each track, a labelled frame is kept when, compared with the
last kept frame of that track, SOME JOINT valid in both moved at least 0.5 x the head-box diagonal (px), or
some joint became valid. The displacement is measured per joint; the original PosePile took one norm over all
joints together (flagged as a bug there), which keeps frames where every joint jitters a little.
Example box: the annotation `bbox` (px) when present, else the box of the valid keypoints expanded 1.15x.
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
KEYPOINT_BOX_EXPANSION = 1.15


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


def select_track_frames(coords, head_diagonals, factor=HEAD_DIAGONAL_FACTOR):
    """Indices of the frames of ONE track (ordered in time) to keep.

    coords: (N, J, 2) px, NaN = invalid; head_diagonals: (N,) px. Frame i is kept when, compared with the
    last kept frame, some joint valid in both frames moved at least `factor` x head_diagonals[i] (each joint's
    displacement taken separately, not one norm over all joints), or some joint is valid in frame i but was
    invalid in the last kept frame. The first frame with any valid joint is kept; frames without valid joints
    never. A frame without head box uses the median head diagonal of the track (0 if the track has none).
    """
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
            displacement = np.linalg.norm(coords[i, both] - coords[reference, both], axis=-1)
            moved = np.any(displacement >= factor * diagonals[i])
            if not (moved or np.any(valid[i] & ~valid[reference])):
                continue
        kept.append(i)
        reference = i
    return kept


def select_people(people):
    """The people (dicts of load_sequence) of one sequence kept by the per-track frame selection."""
    by_track = {}
    for person in people:
        by_track.setdefault(person['track_id'], []).append(person)
    selected = []
    for track_id, track in sorted(by_track.items()):
        track.sort(key=lambda p: p['frame_id'])
        indices = select_track_frames(np.stack([p['coords'] for p in track]), [p['head_diagonal'] for p in track])
        selected.extend(track[i] for i in indices)
    return selected


def person_box(person):
    """Annotation box, else the box of the valid keypoints expanded 1.15x ([x, y, w, h] px)."""
    from posepile.util import boxes
    if person['bbox'] is not None:
        return person['bbox']
    return boxes.expand(boxes.bb_of_points(person['coords']), KEYPOINT_BOX_EXPANSION)


def _sequence_tasks(path, split_name):
    from posepile.datasets2d import Pose2DExample
    sequence = path.stem
    people = load_sequence(path)
    selected = select_people(people)
    logger.info('%s: %d of %d labelled people kept by the frame selection', path.name, len(selected), len(people))
    tasks = []
    for person in selected:
        frame = Path(person['file_name']).stem
        example = Pose2DExample(f'{NAME}/{person["file_name"]}', person['coords'], person_box(person),
                                scene_name=sequence,
                                extra={'annotation_id': person['id'], 'track_id': person['track_id']})
        crop = f'{NAME}_downscaled/{split_name}/{sequence}/{frame}_{person["track_id"]:04d}.jpg'
        tasks.append((f'{SPLITS[split_name]}/{sequence}/{frame}/{person["track_id"]:04d}', example, crop))
    return tasks


def make_crop_tasks(data_root=None):
    """Crop tasks of the selected people of every train and val sequence."""
    root = raw_root(data_root)
    tasks = []
    for split_name in SPLITS:
        paths = sorted((root / 'annotations' / split_name).glob('*.json'))
        if not paths:
            logger.info('no sequence files in %s, skipping that split', root / 'annotations' / split_name)
        for path in paths:
            tasks.extend(_sequence_tasks(path, split_name))
    if not tasks:
        raise FileNotFoundError(f'no PoseTrack annotations under {root / "annotations"}/{{train,val}}')
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of the people in the motion-selected frames of every track."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def make_dataset(data_root=None):
    from posepile.datasets2d import Pose2DDataset
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose2DDataset(joint_info(), splits[0], splits[1])


def assemble_stage(data_root=None):
    """The dataset posetrack for get_dataset()."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.posetrack.main', 'PoseTrack 2018 stages', {
        'crop': crop_stage,
        'assemble': assemble_stage,
    })


if __name__ == '__main__':
    main()
