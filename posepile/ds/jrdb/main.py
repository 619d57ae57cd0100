"""JRDB-Pose (2D) -> Pose2DDataset: 17 joints (head top, eyes, shoulders, neck, elbows, pelvis, wrists, hips,
knees, ankles) in px; a keypoint is valid iff its visibility flag > 0 (0 -> NaN).

Raw layout under $DATA_ROOT/jrdb/train_dataset/: calibration/cameras.yaml, images/<image dir>/<sequence>/
<frame:06d>.jpg and COCO-style labels in labels/labels_2d_pose_coco/*.json (per camera image_0, 2, 4, 6, 8) or
labels/labels_2d_pose_stitched_coco/*.json (image_stitched panoramas, 3760 px wide; their `width`/`height`
fields say 752 x 480 and are ignored). Everything becomes TRAIN (the test labels are not public).

Facts kept from the original PosePile:
- the labels are two frames behind the released images: label frame f is image file f + 2;
- a per-camera image image_N is taken by the DISTORTED sensor N // 2 of cameras.yaml (K, D = OpenCV
  k1, k2, p1, p2, k3, R world-to-camera, T; optical centre -R^T T); crops undistort it (extreme perspective);
  the stitched panorama is cylindrical: no camera, plain image-plane crops;
- per-track frame selection: along a track (frame order) a person is kept when some joint became valid since
  the last kept frame, or some joint moved >= 10 % of the larger side of the current box (px);
- box: the keypoint box expanded 1.15x; with detections (`detect` stage) people are matched to them by the
  Hungarian method (IoU >= 0.1), unmatched people are dropped and the detection box is used.
Tracks are told apart by (image dir, sequence, track_id); the original keyed them by track_id alone per label
file, so one camera's pose could suppress another camera's view of the same person.
"""
import logging
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'jrdb'

JOINT_NAMES = 'htop,reye,leye,rsho,neck,lsho,relb,lelb,pelv,rwri,rhip,lhip,lwri,rkne,lkne,rank,lank'
JOINT_EDGES = 'neck-rsho-relb-rwri,htop-neck-pelv-rhip-rkne-rank,htop-reye'
N_JOINTS = 17
FRAME_OFFSET = 2  # image index = label index + 2
LABEL_DIRS = {'camera': 'labels/labels_2d_pose_coco', 'stitched': 'labels/labels_2d_pose_stitched_coco'}
CAMERAS_FILE = 'calibration/cameras.yaml'
KEYPOINT_BOX_EXPANSION = 1.15
MOVEMENT_FRACTION = 0.1
MIN_IOU = 0.1
DETECTIONS_FILE = 'person_detections.pkl'
_FILE_NAME_RE = re.compile(r'^(image_(?:\d+|stitched))/([^/]+)/(\d+)\.jpg$')


class JRDBFormatError(InputError):
    pass


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def train_root(data_root=None):
    return raw_root(data_root) / 'train_dataset'


def joint_info():
    from posepile.joint_info import JointInfo
    return JointInfo(JOINT_NAMES, JOINT_EDGES)


# ------------------------------------------------------------------------------------------------
# Cameras
def _matrix(path, sensor, info, field, n):
    try:
        values = np.array([float(x) for x in str(info[field]).split()], np.float64)
    except KeyError:
        raise JRDBFormatError(f'{path}: {sensor} has no {field}') from None
    except ValueError as e:
        raise JRDBFormatError(f'{path}: {sensor} {field} is not a list of numbers ({e})') from None
    if values.size != n:
        raise JRDBFormatError(f'{path}: {sensor} {field} has {values.size} values, expected {n}')
    return values


def parse_cameras_yaml(text):
    """{'sensor_<i>': {field: value string}} from the YAML subset of JRDB's cameras.yaml: a `cameras:` mapping
    of `sensor_<i>:` mappings whose fields are plain scalars or folded blocks (`K: >` then indented lines,
    joined by spaces). PyYAML is not a dependency. Raises ValueError on lines that do not fit."""
    sensors, sensor, field, folding, in_cameras = {}, None, None, False, False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split('#', 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(' '))
        key, colon, value = line.strip().partition(':')
        value = value.strip()
        if indent == 0:
            in_cameras, sensor, field, folding = key == 'cameras' and bool(colon), None, None, False
        elif not in_cameras:
            continue
        elif folding and indent > 4:
            sensors[sensor][field] = f'{sensors[sensor][field]} {line.strip()}'.strip()
        elif indent == 2 and colon and not value:
            sensor, field, folding = key, None, False
            sensors[sensor] = {}
        elif indent == 4 and colon and sensor is not None:
            field, folding = key, value in ('>', '|')
            sensors[sensor][field] = '' if folding else value
        else:
            raise ValueError(f'line {number} does not fit the cameras.yaml structure: {raw.strip()!r}')
    return sensors


def load_cameras(path):
    """{sensor index: distorted Camera} from JRDB's cameras.yaml (K, D OpenCV 5 coefficients, R, T; centre
    -R^T T in the file's units; world up -y). Raises JRDBFormatError naming the file and the problem."""
    from posepile.util.camera import Camera
    path = Path(path)
    try:
        sensors = parse_cameras_yaml(path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise JRDBFormatError(f'{path}: cannot read the camera file ({type(e).__name__}: {e})') from e
    sensors = {name: info for name, info in sensors.items() if re.fullmatch(r'sensor_\d+', name)}
    if not sensors:
        raise JRDBFormatError(f'{path}: no "cameras" mapping with sensor_<i> entries')
    cameras = {}
    for name, info in sensors.items():
        R = _matrix(path, name, info, 'R', 9).reshape(3, 3)
        K = _matrix(path, name, info, 'K', 9).reshape(3, 3)
        D = _matrix(path, name, info, 'D', 5)
        T = _matrix(path, name, info, 'T', 3)
        cameras[int(name.split('_')[1])] = Camera(-R.T @ T, R, K, distortion_coeffs=D, world_up=(0, -1, 0))
    return cameras


def camera_of_image_dir(cameras, image_dir):
    """The distorted camera of image_N (sensor N // 2); None for image_stitched."""
    if image_dir == 'image_stitched':
        return None
    sensor = int(image_dir.split('_')[1]) // 2
    if sensor not in cameras:
        raise KeyError(f'{image_dir} needs sensor_{sensor}, which cameras.yaml does not have')
    return cameras[sensor]


# ------------------------------------------------------------------------------------------------
# Labels
def image_relpath_of_label(file_name):
    """(image dir, sequence, image frame index) of a label's file_name, the frame index shifted by +2."""
    match = _FILE_NAME_RE.match(str(file_name))
    if match is None:
        raise ValueError(f'file_name {file_name!r} is not image_<N|stitched>/<sequence>/<frame>.jpg')
    return match.group(1), match.group(2), int(match.group(3)) + FRAME_OFFSET


def _parse_person(path, annotation, image):
    keypoints = np.asarray(annotation['keypoints'], np.float64).reshape(-1)
    if keypoints.size != 3 * N_JOINTS:
        raise JRDBFormatError(f'{path}: annotation {annotation.get("id")} has {keypoints.size} keypoint values, '
                              f'expected {3 * N_JOINTS} (17 x [x, y, v])')
    coords = keypoints.reshape(N_JOINTS, 3)[:, :2].astype(np.float32)
    coords[keypoints[2::3] <= 0] = np.nan
    try:
        image_dir, sequence, frame = image_relpath_of_label(image['file_name'])
    except ValueError as e:
        raise JRDBFormatError(f'{path}: image {image.get("id")}: {e}') from None
    return {'id': annotation['id'], 'track_id': int(annotation['track_id']), 'image_dir': image_dir,
            'sequence': sequence, 'frame': frame, 'coords': coords,
            'image_relpath': f'{image_dir}/{sequence}/{frame:06d}.jpg'}


def load_label_file(path):
    """The labelled people of one JRDB-Pose COCO-style file: dicts with id, track_id, image_dir, sequence, frame
    (IMAGE index, already +2), image_relpath (relative to train_dataset/images), coords (17, 2) px (NaN where
    v == 0). Raises JRDBFormatError naming the file and the problem."""
    from posepile.util import fileio
    path = Path(path)
    data = fileio.load_json(path, JRDBFormatError, required_lists=('images', 'annotations'))
    try:
        images = {image['id']: image for image in data['images']}
        people = []
        for annotation in data['annotations']:
            if annotation['image_id'] not in images:
                raise JRDBFormatError(f'{path}: annotation {annotation.get("id")} refers to unknown image '
                                      f'{annotation["image_id"]}')
            people.append(_parse_person(path, annotation, images[annotation['image_id']]))
    except JRDBFormatError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise JRDBFormatError(f'{path}: malformed annotation ({type(e).__name__}: {e})') from e
    return people


def label_paths(kind='auto', data_root=None):
    """(kind actually used, sorted label files). 'auto': per-camera labels when present, else stitched."""
    root = train_root(data_root)
    if kind == 'auto':
        kind = 'camera' if sorted((root / LABEL_DIRS['camera']).glob('*.json')) else 'stitched'
    if kind not in LABEL_DIRS:
        raise ValueError(f'unknown JRDB label kind {kind!r}; use auto, camera or stitched')
    paths = sorted((root / LABEL_DIRS[kind]).glob('*.json'))
    if not paths:
        raise FileNotFoundError(f'no JRDB-Pose labels in {root / LABEL_DIRS[kind]}')
    return kind, paths


# ------------------------------------------------------------------------------------------------
# Boxes, detections, frame selection
def keypoint_box(coords):
    """Box of the valid keypoints expanded 1.15x ([x, y, w, h] px)."""
    from posepile.util import boxes
    return boxes.expand(boxes.bb_of_points(coords), KEYPOINT_BOX_EXPANSION)


def is_moved_enough(coords, reference, box):
    """Keep rule against the last kept pose of the track: some joint valid now but not in `reference`, or some
    joint valid in both moved >= 10 % of the larger side of `box` (px)."""
    valid, was_valid = np.isfinite(coords).all(axis=1), np.isfinite(reference).all(axis=1)
    if np.any(valid & ~was_valid):
        return True
    both = valid & was_valid
    movement = np.linalg.norm(coords[both] - reference[both], axis=1)
    return bool(np.any(movement >= MOVEMENT_FRACTION * np.max(box[2:])))


def select_people(people):
    """The people kept by the per-track selection, each with its box. `people` must carry `box`; they are
    grouped by (image_dir, sequence, track_id) and ordered by frame."""
    tracks = {}
    for person in people:
        tracks.setdefault((person['image_dir'], person['sequence'], person['track_id']), []).append(person)
    selected = []
    for _, track in sorted(tracks.items()):
        reference = None
        for person in sorted(track, key=lambda p: p['frame']):
            if reference is None or is_moved_enough(person['coords'], reference, person['gt_box']):
                selected.append(person)
                reference = person['coords']
    return selected


def attach_boxes(people, detections=None):
    """Adds gt_box (keypoint box x1.15) and box to each person; drops people without valid joints. With
    detections ({image relpath: (N, 5)}), people of an image are matched to its detections (Hungarian,
    IoU >= 0.1), box = the detection, and unmatched people are dropped."""
    from posepile.preproc.association import associate_boxes
    people = [dict(p, gt_box=keypoint_box(p['coords'])) for p in people if np.isfinite(p['coords']).any()]
    if detections is None:
        return [dict(p, box=p['gt_box']) for p in people]
    by_image = {}
    for person in people:
        by_image.setdefault(person['image_relpath'], []).append(person)
    matched = []
    for relpath, persons in by_image.items():
        dets = np.asarray(detections.get(relpath, np.zeros((0, 5))), np.float32).reshape(-1, 5)
        indices = associate_boxes(np.stack([p['gt_box'] for p in persons]), dets, min_iou=MIN_IOU)
        matched += [dict(p, box=dets[i, :4]) for p, i in zip(persons, indices) if i >= 0]
    return matched


def detections_path(data_root=None):
    return work_dir(data_root) / DETECTIONS_FILE


def detect_stage(detector='hog', labels='auto', shard=None, data_root=None):
    """Person detections in the labelled frames (skipped when done; 'gt' needs none: keypoint boxes are used)."""
    from posepile.preproc.detection import run_detection_stage
    if detector.split(':')[0] == 'gt':
        logger.info('gt detector: the keypoint boxes are the boxes, no detection file written')
        return
    _, paths = label_paths(labels, data_root)
    relpaths = sorted({p['image_relpath'] for path in paths for p in load_label_file(path)})
    run_detection_stage(train_root(data_root) / 'images', relpaths, detections_path(data_root), detector, shard)


detect_stage.cli_options = [('--detector', dict(default='hog')),
                            ('--labels', dict(default='auto', choices=['auto', 'camera', 'stitched']))]


# ------------------------------------------------------------------------------------------------
# Crops and the dataset
def _task(person, cameras):
    from posepile.datasets2d import Pose2DExample
    relpath = person['image_relpath']
    example = Pose2DExample(f'{NAME}/train_dataset/images/{relpath}', person['coords'], person['box'],
                            camera=camera_of_image_dir(cameras, person['image_dir']), scene_name=person['sequence'],
                            extra={'annotation_id': person['id'], 'track_id': person['track_id']})
    stem = f'{person["frame"]:06d}_{person["track_id"]:03d}'
    crop = f'{NAME}_downscaled/train_dataset/images/{person["image_dir"]}/{person["sequence"]}/{stem}.jpg'
    key = f'0/{person["image_dir"]}/{person["sequence"]}/{person["frame"]:06d}/{person["track_id"]:04d}'
    return key, example, crop


def make_crop_tasks(labels='auto', data_root=None):
    from posepile.util import fileio
    kind, paths = label_paths(labels, data_root)
    cameras = load_cameras(train_root(data_root) / CAMERAS_FILE) if kind == 'camera' else {}
    detections = fileio.load_pickle(detections_path(data_root)) if detections_path(data_root).exists() else None
    tasks = []
    for path in paths:
        people = load_label_file(path)
        selected = select_people(attach_boxes(people, detections))
        logger.info('%s: %d of %d labelled people kept', path.name, len(selected), len(people))
        tasks += [_task(person, cameras) for person in selected]
    return tasks


def crop_stage(labels='auto', shard=None, n_workers=None, data_root=None):
    """Crops of the people in the motion-selected frames of every track (distorted cameras undistorted)."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(labels, data_root), shard, n_workers, data_root,
                                extreme_perspective=True)


crop_stage.cli_options = [('--labels', dict(default='auto', choices=['auto', 'camera', 'stitched']))]


def make_dataset(data_root=None):
    """JRDB-Pose training people (17 joints)."""
    from posepile.datasets2d import Pose2DDataset
    return Pose2DDataset(joint_info(), pipeline.examples_by_split(NAME, data_root)[0])


def assemble_stage(data_root=None):
    """The dataset jrdb for get_dataset()."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.jrdb.main', 'JRDB-Pose stages', {
        'detect': detect_stage,
        'crop': crop_stage,
        'assemble': assemble_stage,
    })


if __name__ == '__main__':
    main()
