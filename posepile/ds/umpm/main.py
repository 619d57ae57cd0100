"""UMPM (Utrecht Multi-Person Motion): readers of the sequence, calibration and C3D files, and the recipe's stages.

Raw layout under $DATA_ROOT/umpm (the sequence zips and umpm_camcalib1.zip all extract into it):
    <sequence>.json        {"id": sequence, "calib": "calib_<c>", "bg": ..., "video_dir": "Video", ...};
                           many have a trailing comma before the closing brace (not JSON): read tolerantly
    Video/<sequence>_<f|s|r|l>.avi[.xz]   one video per camera (front, side, right, left), 644x486, 50 fps;
                           shipped xz-compressed (the decompress stage unpacks them)
    Groundtruth/<sequence>_vm.c3d         virtual markers at 100 Hz (twice the video rate): 15 joints per
                           person, 30 points when two people are recorded (first 15 = person 0); mm, z up.
                           Video frame i = mocap sample 2i (as the original: every 2nd sample).
    Calib/<calib>_<f|s|r|l>.ini           6 lines: the 3 rows of K (px), 4 distortion coefficients
                           (k1 k2 p1 p2, OpenCV), the rotation vector (Rodrigues) and the translation (mm),
                           X_cam = R X_world + t
Sequence files that the original replaced by hand: p2_free_1 and p3_circle_2 (their id/calib/background are
taken from the original's replacement when the file disagrees or cannot be read even tolerantly); p2_free_2 was
set aside without a replacement and is left out here too (logged).

Selection (the original's settings): per camera and person, adaptive selection v2 (100 mm, check_validity,
NaN unchanged, buffer 300) on the mean-subtracted pose, over the video frames where the person has a valid
joint. Box: the projected joints' box x1.15; with a detector (POSEPILE_DETECTOR / --detector) the people
of a frame are matched one-to-one to detections (Hungarian, IoU >= 0.5) and unmatched people are dropped, as
the original. (The original fed the sampler only the frames that had a matched detection; here selection
precedes detection, so a selected frame later dropped for lack of a detection still updated the buffer.)
Each person is its own example. Plausibility (the original's settings): bone length ratio to the mean
outside [0.5, 1.25] and more than 80 mm off -> both joints of the bone set to NaN; examples with fewer than
4 joints inside the box dropped. Everything is training data.
"""
import json
import logging
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

NAME = 'umpm'
JOINT_NAMES = 'pelv,neck,head,rsho,relb,rwri,lsho,lelb,lwri,rhip,lhip,rkne,lkne,rank,lank'
JOINT_EDGES = 'rank-rkne-rhip-pelv-neck-head,rwri-relb-rsho-neck'  # the left side is mirrored
N_JOINTS = 15
CAMERA_NAMES = 'fsrl'
MOCAP_SAMPLES_PER_VIDEO_FRAME = 2  # 100 Hz mocap, 50 fps video
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 300
BOX_EXPANSION = 1.15
MIN_DETECTION_IOU = 0.5
PLAUSIBILITY = dict(relsmall=0.5, relbig=1.25, absbig_mm=80.0, min_joints_in_box=4)
WORLD_UP = (0, 0, 1)
# The original's hand-written replacements of broken sequence files (its main.sh), and the one it set aside
KNOWN_SEQUENCE_FILES = {
    'p2_free_1': {'id': 'p2_free_1', 'bg': 'backgr_n27_1', 'calib': 'calib_n27'},
    'p3_circle_2': {'id': 'p3_circle_2', 'bg': 'backgr_l06_7', 'calib': 'calib_l06'},
}
LEFT_OUT_SEQUENCES = {'p2_free_2': 'set aside by the original (broken sequence file, no replacement)'}
UNIT_TO_MM = {'mm': 1.0, 'cm': 10.0, 'm': 1000.0}
MIN_CAMERA_DISTANCE_MM = 100  # a camera centre closer to the world origin means the file is not in mm

logger = logging.getLogger(__name__)


class UmpmFormatError(InputError):
    """A raw UMPM file is malformed (the message names the file)."""


# ------------------------------------------------------------------------------------------------
# Readers
def _read_text(path):
    path = Path(path)
    try:
        return path.read_text(encoding='utf-8', errors='strict')
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise UmpmFormatError(f'{path}: cannot read ({e})') from None


def _remove_trailing_commas(text):
    """JSON text without commas directly before a closing brace or bracket (outside strings)."""
    return re.sub(r'("(?:[^"\\]|\\.)*")|,(\s*[}\]])', lambda m: m.group(1) or m.group(2), text)


def load_sequence_info(json_path):
    """{'id', 'calib', ...} of a <sequence>.json, read tolerantly (trailing commas). For the files the original
    replaced by hand, its replacement's values are used where the file disagrees or cannot be read."""
    path = Path(json_path)
    text = _read_text(path)
    known = KNOWN_SEQUENCE_FILES.get(path.stem)
    try:
        try:
            info = json.loads(text)
        except json.JSONDecodeError:
            info = json.loads(_remove_trailing_commas(text))
        if not isinstance(info, dict):
            raise UmpmFormatError(f'{path}: expected a JSON object, got {type(info).__name__}')
    except (json.JSONDecodeError, UmpmFormatError) as e:
        if known is None:
            raise UmpmFormatError(f'{path}: not readable even with trailing commas removed ({e})') from None
        logger.warning('%s: unreadable (%s): using the original\'s replacement %s', path, e, known)
        return dict(known)
    if known is not None:
        differing = {k: v for k, v in known.items() if info.get(k) != v}
        if differing:
            logger.warning('%s: using the original\'s replacement values %s (file: %s)', path, differing,
                           {k: info.get(k) for k in differing})
            info.update(differing)
    for key in ('id', 'calib'):
        if not isinstance(info.get(key), str) or not info[key]:
            raise UmpmFormatError(f'{path}: field {key!r} is missing or not a string')
    if info['id'] != path.stem:
        logger.warning('%s: its id is %r, not the file name', path, info['id'])
    return info


def _numbers(path, line_number, line, counts):
    try:
        values = [float(x) for x in line.split()]
    except ValueError:
        values = None
    if values is None or len(values) not in counts or not np.all(np.isfinite(values)):
        expected = ' or '.join(str(c) for c in counts)
        raise UmpmFormatError(f'{path}: line {line_number} should hold {expected} finite numbers, got '
                              f'{line.strip()[:60]!r}')
    return values


def load_camera(ini_path):
    """The Camera (mm, world z up) of a Calib/<calib>_<cam>.ini: K (3 lines), distortion k1 k2 p1 p2,
    Rodrigues rotation vector, translation (mm) with X_cam = R X_world + t."""
    import cv2

    from posepile.util.camera import Camera
    path = Path(ini_path)
    lines = [(i + 1, line) for i, line in enumerate(_read_text(path).splitlines()) if line.strip()]
    if len(lines) < 6:
        raise UmpmFormatError(f'{path}: expected 6 lines (K rows, distortion, rotation vector, translation), '
                              f'got {len(lines)}')
    intrinsics = np.array([_numbers(path, *lines[i], (3,)) for i in range(3)])
    distortion = _numbers(path, *lines[3], (4, 5))
    rotation_vector = np.array(_numbers(path, *lines[4], (3,)))
    translation = np.array(_numbers(path, *lines[5], (3,)))
    if intrinsics[0, 0] <= 0 or intrinsics[1, 1] <= 0 or not np.allclose(intrinsics[2], [0, 0, 1]):
        raise UmpmFormatError(f'{path}: the first 3 lines are not an intrinsic matrix ({intrinsics.tolist()})')
    rotation = cv2.Rodrigues(rotation_vector)[0]
    optical_center = -rotation.T @ translation
    if np.linalg.norm(optical_center) < MIN_CAMERA_DISTANCE_MM:
        raise UmpmFormatError(f'{path}: the camera centre is {np.linalg.norm(optical_center):.3g} from the origin: '
                              'the translation is not in millimetres')
    return Camera(optical_center=optical_center, rot_world_to_cam=rotation, intrinsic_matrix=intrinsics,
                  distortion_coeffs=distortion, world_up=WORLD_UP)


def load_mocap(c3d_path):
    """(P, N, 15, 3) float32 world mm of a <sequence>_vm.c3d at the mocap rate (P = 1 or 2 people; NaN where a
    marker is missing). A file shorter than its header promises is an error, not fewer frames."""
    import ezc3d
    path = Path(c3d_path)
    if not path.exists():
        raise FileNotFoundError(f'{path} not found')
    from posepile.util import c3d as c3d_header
    n_promised = c3d_header.check_complete(path, UmpmFormatError).n_frames
    try:
        c3d = ezc3d.c3d(str(path))
    except Exception as e:  # ezc3d raises plain RuntimeError/IndexError on bad files
        raise UmpmFormatError(f'{path}: cannot read the C3D file ({e})') from None
    points = np.asarray(c3d['data']['points'])
    if points.ndim != 3 or points.shape[0] != 4 or points.shape[1] not in (N_JOINTS, 2 * N_JOINTS):
        raise UmpmFormatError(f'{path}: expected 15 or 30 points, got point data of shape {points.shape}')
    if points.shape[2] != n_promised or n_promised == 0:
        raise UmpmFormatError(f'{path}: the header promises {n_promised} frames, the file holds {points.shape[2]}')
    units = _c3d_units(path, c3d)
    coords = np.transpose(points[:3], (2, 1, 0)) * UNIT_TO_MM[units]  # (N, points, 3)
    if np.any(np.isinf(coords)):
        raise UmpmFormatError(f'{path}: infinite coordinates')
    per_person = coords.reshape(len(coords), -1, N_JOINTS, 3).transpose(1, 0, 2, 3)
    return per_person.astype(np.float32)


def _c3d_units(path, c3d):
    try:
        units = str(c3d['parameters']['POINT']['UNITS']['value'][0]).strip().lower()
    except (KeyError, IndexError):
        return 'mm'
    if units not in UNIT_TO_MM:
        raise UmpmFormatError(f'{path}: unknown POINT:UNITS {units!r} (expected mm, cm or m)')
    return units


def poses_at_video_rate(mocap):
    """(P, N, 15, 3) mocap samples -> the samples of the video frames (every 2nd, video frame i = sample 2i)."""
    return mocap[:, ::MOCAP_SAMPLES_PER_VIDEO_FRAME]


def select_person_frames(poses_mm, n_frames):
    """Video frames kept for one person in one camera: among the first n_frames those where the person has a
    valid joint, adaptive selection v2 (100 mm, check_validity, NaN unchanged, buffer 300) on the pose minus
    its mean (the original's settings)."""
    from posepile.util.sampling import select_frames
    poses = np.asarray(poses_mm[:n_frames], np.float64)
    candidates = np.flatnonzero(np.any(np.all(np.isfinite(poses), axis=-1), axis=-1))
    if len(candidates) == 0:
        return candidates
    relative = poses[candidates] - np.nanmean(poses[candidates], axis=1, keepdims=True)
    kept = select_frames(relative, SELECTION_THRESHOLD_MM, SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)
    return candidates[kept]


def gt_box(camera, world_mm):
    """The projected (valid) joints' box x1.15, [x, y, w, h] px."""
    from posepile.util import boxes
    return boxes.expand(boxes.bb_of_points(camera.world_to_image(world_mm)), BOX_EXPANSION)


def video_frame_count(video_path):
    """Frames the video's header promises (posepile.util.video.header_frame_count)."""
    from posepile.util.video import header_frame_count
    return header_frame_count(video_path)

def filter_by_plausibility_nan_mode(dataset, relsmall=0.5, relbig=1.25, absbig_mm=80.0, min_joints_in_box=4):
    """The original's plausibility filter with set_to_nan_instead_of_removal (UMPM's settings), on the TRAIN
    examples in place: drop examples with fewer than min_joints_in_box joints in the box; set both joints of
    each implausible bone (ratio to the mean train bone outside [relsmall, relbig] and more than absbig_mm off)
    to NaN, then drop the example if fewer than min_joints_in_box joints remain in the box. Returns a report."""
    from posepile.datasets3d import TRAIN
    from posepile.preproc.plausibility import implausible_bones, joints_in_box_count
    dataset.update_bones()
    edges = np.asarray(dataset.joint_info.stick_figure_edges)
    reference = dataset.train_bones
    kept = []
    report = {'train_before': len(dataset.examples[TRAIN]), 'dropped_few_joints_in_box': 0,
              'examples_with_joints_set_to_nan': 0, 'joints_set_to_nan': 0}
    for example in dataset.examples[TRAIN]:
        if joints_in_box_count(example) < min_joints_in_box:
            report['dropped_few_joints_in_box'] += 1
            continue
        bad = implausible_bones(example.world_coords, edges, reference, relsmall, relbig, absbig_mm)
        if np.any(bad):
            joints = np.unique(edges[bad].reshape(-1))
            report['examples_with_joints_set_to_nan'] += 1
            report['joints_set_to_nan'] += int(np.sum(np.isfinite(example.world_coords[joints, 0])))
            example.world_coords = example.world_coords.copy()
            example.world_coords[joints] = np.nan
            if joints_in_box_count(example) < min_joints_in_box:
                report['dropped_few_joints_in_box'] += 1
                continue
        kept.append(example)
    dataset.examples[TRAIN] = kept
    dataset.update_bones()
    report['train_after'] = len(kept)
    logger.info('plausibility (NaN mode): %s', report)
    return report


# ------------------------------------------------------------------------------------------------
# Stages
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def decompress_stage(data_root=None):
    """Video/*.avi.xz -> Video/*.avi (streaming, atomically; skipped when the .avi exists). The .xz files are
    kept (delete them yourself to save space)."""
    import lzma
    import shutil

    from tqdm import tqdm
    video_dir = raw_root(data_root) / 'Video'
    pending = [p for p in sorted(video_dir.glob('*.avi.xz')) if not p.with_suffix('').exists()]
    for path in tqdm(pending, desc='decompress'):
        target = path.with_suffix('')
        partial = target.with_name(target.name + '.partial')
        try:
            with lzma.open(path) as src, open(partial, 'wb') as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
        except (lzma.LZMAError, EOFError, OSError) as e:
            partial.unlink(missing_ok=True)
            raise UmpmFormatError(f'{path}: cannot decompress ({e})') from None
        partial.replace(target)
    logger.info('%d videos decompressed', len(pending))


def list_sequences(data_root=None):
    """[(json path, info)] of the sequence files in the raw root (sorted; the set-aside one left out)."""
    root = raw_root(data_root)
    paths = sorted(root.glob('*.json'))
    if not paths:
        raise FileNotFoundError(f'no <sequence>.json in {root}: download and extract the UMPM zips (main.sh step 1)')
    result, ids = [], {}
    for path in paths:
        if path.stem in LEFT_OUT_SEQUENCES:
            logger.info('%s left out: %s', path, LEFT_OUT_SEQUENCES[path.stem])
            continue
        info = load_sequence_info(path)
        if info['id'] in ids:
            raise UmpmFormatError(f'{path}: id {info["id"]!r} is also the id of {ids[info["id"]]}')
        ids[info['id']] = path
        result.append((path, info))
    return result


def _n_video_frames_or_mocap(video_path, n_mocap_frames):
    """The video's frame count; for a missing or unreadable video the mocap's (the video stage then reports
    that video as broken, and --skip-broken builds the rest)."""
    from posepile.util.video import VideoReadError
    try:
        n_video = video_frame_count(video_path)
    except (FileNotFoundError, VideoReadError) as e:
        logger.warning('%s', e)
        return n_mocap_frames
    if n_video != n_mocap_frames:
        logger.info('%s: %d frames, %d mocap frames at the video rate: the first %d are used', video_path, n_video,
                    n_mocap_frames, min(n_video, n_mocap_frames))
    return n_video


def _sequence_tasks(root, info):
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    sequence = info['id']
    poses = poses_at_video_rate(load_mocap(root / 'Groundtruth' / f'{sequence}_vm.c3d'))
    tasks = []
    for camera_name in CAMERA_NAMES:
        camera = load_camera(root / 'Calib' / f'{info["calib"]}_{camera_name}.ini')
        video_relpath = f'Video/{sequence}_{camera_name}.avi'
        n_frames = min(poses.shape[1], _n_video_frames_or_mocap(root / video_relpath, poses.shape[1]))
        frames = {}
        for person, person_poses in enumerate(poses):
            for frame in select_person_frames(person_poses, n_frames).tolist():
                world = person_poses[frame]
                others = [poses[q, frame] for q in range(len(poses)) if q != person]
                example = Pose3DExample(f'{NAME}/{video_relpath}#{frame}', world, gt_box(camera, world), camera,
                                        activity_name=sequence.split('_')[1] if '_' in sequence else sequence,
                                        scene_name=info['calib'])
                frames.setdefault(frame, []).append(PersonTask(
                    f'0/{sequence}_{camera_name}/{frame:06d}/{person}', example,
                    f'{NAME}_downscaled/Video/{sequence}_{camera_name}/frame_{frame:06d}_{person}.jpg',
                    others_world=others or None))
        tasks.append(VideoTask(f'{sequence}_{camera_name}', str(root / video_relpath), frames))
    return tasks


def make_video_tasks(data_root=None):
    """One VideoTask per (sequence, camera): {video frame: [PersonTask per selected person]}."""
    root = raw_root(data_root)
    tasks = [task for _, info in list_sequences(data_root) for task in _sequence_tasks(root, info)]
    logger.info('%d videos, %d person crops selected', len(tasks),
                sum(len(people) for t in tasks for people in t.frames.values()))
    return tasks


def box_rule(detector_spec):
    """GT box without a detector; with one, Hungarian matching at IoU >= 0.5, unmatched people dropped."""
    from posepile.preproc.video_stage import BoxRule
    if not detector_spec:
        return BoxRule('gt')
    return BoxRule('hungarian', min_iou=MIN_DETECTION_IOU, fallback_to_gt=False)


@pipeline.cli_options(pipeline.DETECTOR_OPTION, pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION,
                      ('--segmenter', dict(dest='segmenter_spec', default=None,
                                           help='also segment the crops (e.g. grabcut); default: no masks')))
def video_stage(detector_spec=None, shard=None, n_workers=None, skip_broken=None, keep_frames=False,
                segmenter_spec=None, data_root=None):
    """One pass per video: crops of each selected person (box: joints x1.15, or with $POSEPILE_DETECTOR /
    --detector the Hungarian-matched detection, unmatched people dropped), optionally segmented."""
    from posepile.joint_info import JointInfo
    detector_spec = pipeline.configured_detector(detector_spec)
    pipeline.dataset_video_stage(
        NAME, make_video_tasks(data_root), shard, n_workers, data_root, detector_spec=detector_spec,
        box_rule=box_rule(detector_spec), skip_broken=skip_broken, keep_frames=keep_frames,
        segmenter_spec=segmenter_spec, joint_edges=JointInfo(JOINT_NAMES, JOINT_EDGES).stick_figure_edges)


def make_dataset(data_root=None):
    """UMPM (all training): 15 joints, world mm, z up; the original's plausibility filter in NaN mode."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    from posepile.util import fileio
    splits = pipeline.examples_by_split(NAME, data_root)
    dataset = Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0])
    report = filter_by_plausibility_nan_mode(dataset, **PLAUSIBILITY)
    fileio.save_json(report, work_dir(data_root) / 'plausibility_report.json')
    return dataset


def assemble(data_root=None):
    """The dataset for get_dataset('umpm')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.umpm.main', 'UMPM stages', {
        'decompress': decompress_stage,
        'video': video_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
