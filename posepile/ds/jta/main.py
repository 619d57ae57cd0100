"""JTA (Joint Track Auto): reader of the per-sequence joint JSON, the fixed camera, and the video stage.

Raw layout under $DATA_ROOT/jta (as the official JTA-Dataset download unpacks):
    videos/{train,val,test}/seq_<n>.mp4         1920x1080, 30 fps; video frame i (0-based) = annotation frame i+1
    annotations/{train,val,test}/seq_<n>.json   a list of rows [frame (1-based), person id, joint id (0-21),
                                                x2d, y2d (px), x3d, y3d, z3d (m, camera frame), occluded,
                                                self-occluded] (flags 0/1)
The world frame is the camera frame (the original's choice): intrinsics f = 1167 px, c = (960, 540), no
distortion; the world up of each frame is the geometric median of the people's ankle-midpoint -> neck
directions. Joints without a row are NaN (the original left them as uninitialised memory).

Selection. A joint is valid when annotated, not occluded and projecting into the 1920x1080 frame; a person's
visible box is the box of its valid joints.
- With a detector (the original's rule; the `detect` stage writes posepile_work/detections/<split>/<seq>.pkl):
  per frame, the people whose visible box has a positive width are Hungarian-assigned to the frame's detections
  on IoU; a pair counts when IoU > 0.1, the detection's area < 2x the visible box's and its longer side > 100 px.
  Only for those matched people with >= 5 valid joints does the person's adaptive sampler (100 mm, buffer 1)
  run; the detection is the example's box. A frame a person is not matched in never becomes its reference.
- Without a detector (ours; the original always had detections): the people with >= 5 valid joints and a
  visible box whose longer side exceeds 100 px (the detection-side rule moved to the visible box), then the
  sampler per person; the visible box is the example's box.
"""
import logging
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)

NAME = 'jta'
JOINT_NAMES = ('htop,head,neck,rcla,rsho,relb,rwri,lcla,lsho,lelb,lwri,spin0,spin1,spin2,spin3,pelv,rhip,rkne,'
               'rank,lhip,lkne,lank')
JOINT_EDGES = ('rank-rkne-rhip-pelv-spin3-spin2-spin1-spin0-neck-head-htop,neck-rcla-rsho-relb-rwri,'
               'neck-lcla-lsho-lelb-lwri,pelv-lhip-lkne-lank')
N_JOINTS = 22
IMAGE_SIZE = (1920, 1080)  # width, height
INTRINSICS = ((1167.0, 0.0, 960.0), (0.0, 1167.0, 540.0), (0.0, 0.0, 1.0))
SPLITS = {'train': 0, 'val': 1, 'test': 2}
SELECTION_THRESHOLD_MM = 100
MIN_VALID_JOINTS = 5
MIN_BOX_MAX_SIDE_PX = 100  # the original's "detection max side > 100" (on the visible box without a detector)
MIN_DETECTION_IOU = 0.1  # a pair counts when IoU > 0.1 (strictly), ...
MAX_DETECTION_AREA_RATIO = 2.0  # ... the detection's area < 2x the visible box's, ...
MIN_DETECTION_MAX_SIDE_PX = 100  # ... and the detection's longer side > 100 px
_NECK, _RANK, _LANK = 2, 18, 21


class JTAFormatError(InputError):
    pass


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def load_poses(path):
    """The annotation of one sequence: (n_frames, n_people, 22, 3) camera-frame joints in mm (NaN where a
    joint has no row), (n_frames, n_people, 22) bool occluded, and the person ids (n_people,). Frame index
    0 = annotation frame 1 = the first video frame; n_frames = the largest frame number."""
    path = Path(path)
    from posepile.util import fileio
    rows = fileio.load_json(path, JTAFormatError)
    try:
        rows = np.asarray(rows, np.float64)
    except (ValueError, TypeError) as e:
        raise JTAFormatError(f'{path}: rows are not all lists of 10 numbers ({e})') from e
    if rows.ndim != 2 or rows.shape[1] != 10 or len(rows) == 0:
        raise JTAFormatError(f'{path}: expected a non-empty list of rows of 10 numbers, got shape {rows.shape}')
    if not np.all(np.isfinite(rows)):
        raise JTAFormatError(f'{path}: non-finite values in {int(np.sum(~np.all(np.isfinite(rows), 1)))} rows')
    frames, people, joints = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64), rows[:, 2].astype(np.int64)
    if frames.min() < 1 or np.any(rows[:, :3] != np.round(rows[:, :3])):
        raise JTAFormatError(f'{path}: frame numbers must be integers >= 1 and ids integers')
    if joints.min() < 0 or joints.max() >= N_JOINTS:
        raise JTAFormatError(f'{path}: joint ids must be in 0..{N_JOINTS - 1}, found {joints.min()}..{joints.max()}')
    if not np.all(np.isin(rows[:, 8:10], (0, 1))):
        raise JTAFormatError(f'{path}: the occlusion flags (columns 9, 10) must be 0 or 1')
    if np.abs(rows[:, 5:8]).max() > 10000:
        raise JTAFormatError(f'{path}: 3D coordinates up to {np.abs(rows[:, 5:8]).max():.0f}: not metres')
    person_ids, person_index = np.unique(people, return_inverse=True)
    n_frames = int(frames.max())
    coords = np.full((n_frames, len(person_ids), N_JOINTS, 3), np.nan, np.float64)
    occluded = np.zeros((n_frames, len(person_ids), N_JOINTS), bool)
    coords[frames - 1, person_index, joints] = rows[:, 5:8] * 1000
    occluded[frames - 1, person_index, joints] = rows[:, 8] == 1
    return coords, occluded, person_ids


def make_camera(world_up=(0, -1, 0)):
    from posepile.util.camera import Camera
    return Camera(intrinsic_matrix=INTRINSICS, world_up=world_up)


def geometric_median(points, eps=1e-6, max_iter=200):
    """Weiszfeld's geometric median of (N, D) points (NaN rows ignored); None without valid points."""
    points = np.asarray(points, np.float64)
    points = points[np.all(np.isfinite(points), axis=1)]
    if len(points) == 0:
        return None
    median = points.mean(axis=0)
    for _ in range(max_iter):
        distances = np.linalg.norm(points - median, axis=1)
        if np.any(distances < 1e-12):
            return points[np.argmin(distances)]
        weights = 1 / distances
        new = (points * weights[:, None]).sum(axis=0) / weights.sum()
        if np.linalg.norm(new - median) < eps:
            return new
        median = new
    return median


def frame_world_up(poses_of_frame):
    """Unit world-up vector of a frame (camera coordinates): the geometric median of the people's unit
    vectors from the ankle midpoint to the neck; (0, -1, 0) when no person has those joints."""
    poses = np.asarray(poses_of_frame, np.float64).reshape(-1, N_JOINTS, 3)
    vectors = poses[:, _NECK] - (poses[:, _RANK] + poses[:, _LANK]) / 2
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    with np.errstate(invalid='ignore', divide='ignore'):
        median = geometric_median(vectors / norms)
    if median is None or np.linalg.norm(median) < 1e-9:
        return np.array([0.0, -1.0, 0.0])
    return median / np.linalg.norm(median)


def visible_joints(camera_coords, occluded, camera):
    """(valid bool (..., 22), pixels (..., 22, 2)): a joint is valid when annotated, not occluded, in front
    of the camera and projecting into the 1920x1080 image."""
    pixels = camera.camera_to_image(camera_coords.reshape(-1, 3)).reshape(camera_coords.shape[:-1] + (2,))
    width, height = IMAGE_SIZE
    with np.errstate(invalid='ignore'):
        in_frame = ((camera_coords[..., 2] > 0) & (pixels[..., 0] >= 0) & (pixels[..., 0] < width)
                    & (pixels[..., 1] >= 0) & (pixels[..., 1] < height))
    return in_frame & ~occluded & np.all(np.isfinite(camera_coords), axis=-1), pixels


def visible_boxes(valid, pixels):
    """(..., 4) [x, y, w, h] px of the valid joints of each person (NaN without a valid joint)."""
    any_valid = valid.any(axis=-1)[..., None]
    low = np.where(any_valid, np.min(np.where(valid[..., None], pixels, np.inf), axis=-2), np.nan)
    high = np.where(any_valid, np.max(np.where(valid[..., None], pixels, -np.inf), axis=-2), np.nan)
    return np.concatenate([low, high - low], axis=-1)


def candidate_frames(coords, occluded):
    """Frames with at least one person whose visible box has a positive width (the frames the original matched
    detections in; the detect stage detects only there)."""
    valid, pixels = visible_joints(coords, occluded, make_camera())
    widths = visible_boxes(valid, pixels)[..., 2]
    with np.errstate(invalid='ignore'):
        return np.flatnonzero(np.any(widths > 0, axis=1))


def match_detections(gt_boxes, detections):
    """[(index into gt_boxes, detection (4,))] of the original's JTA rule: one Hungarian assignment on IoU over
    all the frame's people (gt_boxes (G, 4), visible boxes of positive width) and detections (D, 4|5); a pair is
    kept when IoU > 0.1, the detection's area < 2x the person's box and its longer side > 100 px (the filters
    apply after the assignment, as the original)."""
    from scipy.optimize import linear_sum_assignment

    from posepile.util import boxes
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    detections = np.asarray(detections, np.float64)
    detections = detections.reshape(-1, detections.shape[-1] if detections.size else 5)[:, :4]
    if len(gt_boxes) == 0 or len(detections) == 0:
        return []
    ious = np.nan_to_num(boxes.iou_matrix(gt_boxes, detections))
    result = []
    for i, j in zip(*linear_sum_assignment(-ious)):
        detection, gt = detections[j], gt_boxes[i]
        if (ious[i, j] > MIN_DETECTION_IOU and detection[2] * detection[3] < MAX_DETECTION_AREA_RATIO * gt[2] * gt[3]
                and max(detection[2], detection[3]) > MIN_DETECTION_MAX_SIDE_PX):
            result.append((int(i), detection.astype(np.float32)))
    return result


def select_people_with_detections(coords, occluded, detections):
    """{frame: [(person index, detection box)]} of one sequence, the original's order: per frame, match the
    people with a visible box to the detections ({frame: (N, 5)}), then, for the matched people with >= 5
    valid joints, the adaptive sampler (100 mm, buffer 1) per person over those frames only."""
    from posepile.util.sampling import select_frames
    valid, pixels = visible_joints(coords, occluded, make_camera())
    gt_boxes = visible_boxes(valid, pixels)
    n_valid = valid.sum(axis=-1)
    eligible = {person: [] for person in range(coords.shape[1])}
    for frame in range(coords.shape[0]):
        with np.errstate(invalid='ignore'):
            people = np.flatnonzero(gt_boxes[frame, :, 2] > 0)
        frame_detections = detections.get(frame)
        if len(people) == 0 or frame_detections is None or len(frame_detections) == 0:
            continue
        for i, box in match_detections(gt_boxes[frame, people], frame_detections):
            if n_valid[frame, people[i]] >= MIN_VALID_JOINTS:
                eligible[int(people[i])].append((frame, box))
    selected = {}
    for person, frames_and_boxes in eligible.items():
        if not frames_and_boxes:
            continue
        frames = np.array([f for f, _ in frames_and_boxes])
        for i in select_frames(coords[frames, person], SELECTION_THRESHOLD_MM):
            selected.setdefault(int(frames[i]), []).append((person, frames_and_boxes[i][1]))
    return selected


def select_people(coords, occluded):
    """{frame: [person index]} of one sequence: >= 5 valid joints, visible-joint box with max side > 100 px,
    then the adaptive sampler (100 mm, buffer 1) per person id over its eligible frames."""
    from posepile.util.sampling import select_frames
    camera = make_camera()
    valid, pixels = visible_joints(coords, occluded, camera)
    n_valid = valid.sum(axis=-1)
    big = np.zeros(n_valid.shape, bool)
    for f, p in zip(*np.nonzero(n_valid >= MIN_VALID_JOINTS)):
        box_points = pixels[f, p][valid[f, p]]
        big[f, p] = np.max(box_points.max(axis=0) - box_points.min(axis=0)) > MIN_BOX_MAX_SIDE_PX
    selected = {}
    for person in range(coords.shape[1]):
        frames = np.flatnonzero((n_valid[:, person] >= MIN_VALID_JOINTS) & big[:, person])
        for frame in frames[select_frames(coords[frames, person], SELECTION_THRESHOLD_MM)]:
            selected.setdefault(int(frame), []).append(person)
    return selected


def sequences(root):
    """[(split name, sequence name)] of the videos with annotations, sorted."""
    result = []
    for split in SPLITS:
        for video in sorted((Path(root) / 'videos' / split).glob('*.mp4')):
            if (Path(root) / 'annotations' / split / f'{video.stem}.json').exists():
                result.append((split, video.stem))
            else:
                logger.warning('%s has no annotation file: skipped', video)
    if not result:
        raise JTAFormatError(f'{Path(root)}: no JTA sequences (videos/<split>/*.mp4 with '
                             'annotations/<split>/*.json): extract the release first')
    return result


def detections_path(split, name, data_root=None):
    return work_dir(data_root) / 'detections' / split / f'{name}.pkl'


def ground_truth_detections(coords, frames, detector):
    """{frame: (N, 5)} boxes of the `gt[:EXPANSION]` detector (a GroundTruthDetector): per person, the box of all
    annotated joints in front of the camera (occluded ones too) expanded about its centre, clipped to the image,
    score 1."""
    from posepile.util import boxes
    camera = make_camera()
    result = {}
    for frame in frames:
        points = coords[frame].copy()
        with np.errstate(invalid='ignore'):
            points[~(points[..., 2] > 0)] = np.nan
        pixels = camera.camera_to_image(points.reshape(-1, 3)).reshape(points.shape[:-1] + (2,))
        found = []
        for detection in detector.detect_from_joints(pixels):
            box = boxes.intersection(detection[:4], boxes.full_box((IMAGE_SIZE[1], IMAGE_SIZE[0])))
            if box[2] > 0 and box[3] > 0:
                found.append([*box, detection[4]])
        result[int(frame)] = np.asarray(found, np.float32).reshape(-1, 5)
    return result


@pipeline.cli_options(pipeline.DETECTOR_OPTION)
def detect_stage(detector_spec=None, shard=None, data_root=None):
    """Person detections in the frames with a visible person, one file per sequence (resumable; redone when the
    detector changes). `gt[:EXPANSION]` makes boxes from the annotated joints (tests, no video decoding)."""
    from posepile.preproc.detection import GroundTruthDetector, make_detector
    from posepile.util import fileio
    from posepile.util.parallel import parse_shard, shard_items
    from posepile.util.video import iter_frames
    detector_spec = pipeline.configured_detector(detector_spec)
    if not detector_spec:
        logger.info('no detector configured (--detector or $POSEPILE_DETECTOR): nothing to detect')
        return
    root = raw_root(data_root)
    index, count = parse_shard(shard)
    detector = None
    for split, name in shard_items(sequences(root), index, count):
        out_path = detections_path(split, name, data_root)
        if out_path.exists() and fileio.load_pickle(out_path).get('detector') == detector_spec:
            continue
        coords, occluded, _ = load_poses(root / 'annotations' / split / f'{name}.json')
        frames = candidate_frames(coords, occluded)
        detector = detector or make_detector(detector_spec)
        if isinstance(detector, GroundTruthDetector):
            detections = ground_truth_detections(coords, frames, detector)
        else:
            video = root / 'videos' / split / f'{name}.mp4'
            detections = {int(i): detector.detect(frame) for i, frame in iter_frames(video, frames.tolist())}
        fileio.save_pickle({'detector': detector_spec, 'frames': detections}, out_path)
        logger.info('%s/%s: detections in %d frames', split, name, len(detections))


def load_detections(split, name, detector_spec, data_root=None):
    from posepile.util import fileio
    path = detections_path(split, name, data_root)
    stored = fileio.load_pickle(path) if path.exists() else None
    if stored is None or stored.get('detector') != detector_spec:
        raise FileNotFoundError(f'{path}: no detections of {detector_spec!r}: run the detect stage of '
                                'posepile/ds/jta/main.sh with that detector first')
    return stored['frames']


def make_video_tasks(data_root=None, detector_spec=None):
    """One VideoTask per sequence: the selected people with their boxes (the matched detections with a
    detector, else the visible-joint boxes) and per-frame cameras."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    from posepile.util import boxes
    root = raw_root(data_root)
    tasks = []
    for split, name in sequences(root):
        coords, occluded, person_ids = load_poses(root / 'annotations' / split / f'{name}.json')
        valid, pixels = visible_joints(coords, occluded, make_camera())
        if detector_spec:
            selection = select_people_with_detections(coords, occluded,
                                                      load_detections(split, name, detector_spec, data_root))
        else:
            selection = {frame: [(person, boxes.bb_of_points(pixels[frame, person][valid[frame, person]]))
                                 for person in people] for frame, people in select_people(coords, occluded).items()}
        frames = {}
        for frame, people in sorted(selection.items()):
            camera = make_camera(world_up=frame_world_up(coords[frame]))
            frames[frame] = []
            for person, box in people:
                relpath = f'jta/videos/{split}/{name}/{frame:06d}_{person_ids[person]:03d}.jpg'
                example = Pose3DExample(relpath, coords[frame, person], box, camera, scene_name=f'{split}/{name}')
                frames[frame].append(PersonTask(f'{SPLITS[split]}/{name}/{frame:06d}/{person_ids[person]:03d}',
                                                example, f'jta_downscaled/{split}/{name}/{frame:06d}_'
                                                         f'{person_ids[person]:03d}.jpg'))
        tasks.append(VideoTask(f'{split}/{name}', str(root / 'videos' / split / f'{name}.mp4'), frames,
                               frame_relpath_pattern=f'jta/frames/{split}/{name}/{{:06d}}.jpg'))
    return tasks


@pipeline.cli_options(pipeline.DETECTOR_OPTION, pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION)
def video_stage(shard=None, n_workers=None, detector_spec=None, skip_broken=None, keep_frames=False,
                data_root=None):
    """Crops, one pass per video. With a detector (--detector or $POSEPILE_DETECTOR; its detections from the
    detect stage) the people are matched first and selected after, the detection is the box, as the original;
    without one the visible-joint box is used (see the module docstring)."""
    from posepile.preproc.video_stage import BoxRule
    detector_spec = pipeline.configured_detector(detector_spec)
    pipeline.dataset_video_stage(NAME, make_video_tasks(data_root, detector_spec), shard, n_workers, data_root,
                                 box_rule=BoxRule('gt'), skip_broken=skip_broken, keep_frames=keep_frames)


def make_dataset(data_root=None):
    """JTA: train / val / test from the folder names; 22 joints, camera-frame mm; visible-joint boxes (or
    associated detections)."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0], splits[1], splits[2])


def assemble(data_root=None):
    """The dataset for get_dataset('jta')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.jta.main', 'JTA stages', {
        'detect': detect_stage, 'video': video_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
