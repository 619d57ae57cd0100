"""TotalCapture: readers of the calibration file and the Vicon joint files, and the recipe's stages.

Raw layout under $DATA_ROOT/totalcapture (as the release's archives extract):
    calibration.cal                         8 cameras; line 1 'n_cameras distortion_order', then 7 lines per
                                            camera: 'min_row max_row min_col max_col', 'fx fy cx cy' (px),
                                            the distortion value(s) (k1), the 3 rows of R (world -> camera),
                                            't' in metres, such that X_cam = R X_world + t
    video/s<s>/**/TC_S<s>_<action><rep>_cam<c>.mp4     60 fps
    mattes/s<s>/**/TC_S<s>_<action><rep>_cam<c>.mp4    the person mattes (same path with mattes/ for video/)
    vicon/S<s>/<action><rep>/gt_skel_gbl_pos.txt       header = 21 tab-separated joint names, then one row per
                                            frame: 21 'x y z' groups (tab between joints), inches, world y up,
                                            60 Hz; row i belongs to video frame i
Split (the official protocol): training = subjects 1-3 without the test takes walking2, freestyle3, acting3.
Only the training part is built, like the original (its test check compared digits to 's4', and subjects 4-5
were removed when assembling).
"""
import logging
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

JOINT_NAMES = ('pelv,spin,spin1,spin2,spin3,neck,head,rcla,rsho,relb,rwri,lcla,lsho,lelb,lwri,rhip,rkne,'
               'rank,lhip,lkne,lank')
# the original's edge string ended the arm in a joint that does not exist ('rhan'); the mirror side is implied
JOINT_EDGES = 'pelv-spin-spin1-spin2-spin3-neck-head,neck-rcla-rsho-relb-rwri,pelv-rhip-rkne-rank'
VICON_JOINT_NAMES = ('Hips', 'Spine', 'Spine1', 'Spine2', 'Spine3', 'Neck', 'Head', 'RightShoulder', 'RightArm',
                     'RightForeArm', 'RightHand', 'LeftShoulder', 'LeftArm', 'LeftForeArm', 'LeftHand',
                     'RightUpLeg', 'RightLeg', 'RightFoot', 'LeftUpLeg', 'LeftLeg', 'LeftFoot')
N_JOINTS = 21
MM_PER_INCH = 25.4
NAME = 'totalcapture'
CALIBRATION_FILE = 'calibration.cal'
TEST_TAKES = ('walking2', 'freestyle3', 'acting3')
TRAIN_SUBJECTS = (1, 2, 3)
MIN_VISIBLE_JOINTS = 6
SELECTION_THRESHOLD_MM = 100
BOX_EXPANSION = 1.25  # the joint box is the projected joints' box scaled by this (then cut by matte and image)
RESULT_VERSION = 1  # of the per-video matte results
MATTE_THRESHOLD = 127  # a matte pixel is person where channel 0 > this (0-255; the videos are lossy)
VIDEO_PATTERN = re.compile(r'TC_S(?P<subject>\d+)_(?P<action>[a-z]+)(?P<rep>\d)_cam(?P<camera>\d+)\.mp4')

logger = logging.getLogger(__name__)


class TotalCaptureFormatError(InputError):
    pass


# ------------------------------------------------------------------------------------------------
# Readers
def _numbers(path, line_number, line, count):
    try:
        values = [float(x) for x in line.split()]
    except ValueError:
        values = []
    if len(values) != count or not np.all(np.isfinite(values)):
        raise TotalCaptureFormatError(f'{path}: line {line_number} should hold {count} finite numbers, got '
                                      f'{line.strip()[:60]!r}')
    return values


def load_calibration(calibration_path):
    """[(Camera, image shape (height, width))] in the file's camera order (camera c of the videos is item
    c - 1). Translations are metres in the file, mm in the cameras; world up is +y."""
    from posepile.util.camera import Camera
    path = Path(calibration_path)
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise TotalCaptureFormatError(f'{path}: cannot read ({e})') from None
    if not lines:
        raise TotalCaptureFormatError(f'{path}: empty file')
    header = _numbers(path, 1, lines[0], 2)
    n_cameras, n_distortion = int(header[0]), int(header[1])
    per_camera = 7
    if n_cameras < 1 or not 1 <= n_distortion <= 5 or len(lines) - 1 != n_cameras * per_camera:
        raise TotalCaptureFormatError(f'{path}: the header promises {n_cameras} cameras with {n_distortion} '
                                      f'distortion value(s), but {len(lines) - 1} lines follow')
    result = []
    for i in range(n_cameras):
        first = 1 + i * per_camera
        rows = [(first + k + 1, lines[first + k]) for k in range(per_camera)]
        min_row, max_row, min_col, max_col = _numbers(path, *rows[0], 4)
        fx, fy, cx, cy = _numbers(path, *rows[1], 4)
        distortion = _numbers(path, *rows[2], n_distortion)
        rotation = np.array([_numbers(path, *row, 3) for row in rows[3:6]])
        translation_m = np.array(_numbers(path, *rows[6], 3))
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3) or np.linalg.det(rotation) < 0:
            raise TotalCaptureFormatError(f'{path}: camera {i + 1} rotation is not a rotation matrix')
        if fx <= 0 or fy <= 0 or max_row <= min_row or max_col <= min_col:
            raise TotalCaptureFormatError(f'{path}: camera {i + 1} has a non-positive focal length or image size')
        coeffs = np.zeros(5)
        coeffs[:len(distortion)] = distortion
        extrinsics = np.eye(4)
        extrinsics[:3, :3] = rotation
        extrinsics[:3, 3] = translation_m * 1000
        camera = Camera(extrinsic_matrix=extrinsics, intrinsic_matrix=[[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
                        distortion_coeffs=coeffs, world_up=(0, 1, 0))
        result.append((camera, (int(max_row - min_row) + 1, int(max_col - min_col) + 1)))
    return result


def load_cameras(calibration_path):
    """The cameras (posepile Camera, mm) of a TotalCapture calibration file, in file order."""
    return [camera for camera, _ in load_calibration(calibration_path)]


def load_joints(path):
    """(N, 21, 3) float32 world joints in mm (the file holds inches) from gt_skel_gbl_pos.txt."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise TotalCaptureFormatError(f'{path}: cannot read ({e})') from None
    names = tuple(n.strip() for n in (lines[0].split('\t') if lines else []) if n.strip())
    if names != VICON_JOINT_NAMES:
        raise TotalCaptureFormatError(f'{path}: header should name the {N_JOINTS} Vicon joints '
                                      f'{",".join(VICON_JOINT_NAMES[:3])},..., got {",".join(names[:4])}...')
    rows = []
    for line_number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        groups = [g for g in line.split('\t') if g.strip()]
        if len(groups) != N_JOINTS:
            raise TotalCaptureFormatError(f'{path}: line {line_number} has {len(groups)} joints, expected {N_JOINTS}')
        rows.append([_numbers(path, line_number, g, 3) for g in groups])
    if not rows:
        raise TotalCaptureFormatError(f'{path}: no frames after the header')
    return (np.array(rows, np.float64) * MM_PER_INCH).astype(np.float32)


def parse_video_name(path):
    """(subject int, take e.g. 'acting1', camera number 1-based) of TC_S1_acting1_cam1.mp4, or None."""
    m = VIDEO_PATTERN.fullmatch(Path(path).name)
    return None if m is None else (int(m['subject']), f'{m["action"]}{m["rep"]}', int(m['camera']))


def is_train_take(subject, take):
    return subject in TRAIN_SUBJECTS and take not in TEST_TAKES


def visible_joint_counts(camera, imshape, poses_mm):
    """Per frame: joints in front of the camera and projecting inside the image (0 <= x < W, 0 <= y < H)."""
    depth = camera.world_to_camera(poses_mm)[..., 2]
    pixels = camera.world_to_image(poses_mm)
    with np.errstate(invalid='ignore'):
        inside = np.all((pixels >= 0) & (pixels < [imshape[1], imshape[0]]), axis=-1) & (depth > 0)
    return inside.sum(axis=-1)


def select_video_frames(camera, imshape, poses_mm):
    """Frames with >= 6 joints in view, then adaptive selection (100 mm, v1) over those frames."""
    from posepile.util.sampling import select_frames
    candidates = np.flatnonzero(visible_joint_counts(camera, imshape, poses_mm) >= MIN_VISIBLE_JOINTS)
    if len(candidates) == 0:
        return candidates
    return candidates[select_frames(poses_mm[candidates], SELECTION_THRESHOLD_MM)]


def example_box(camera, imshape, joints_mm, matte_box):
    """[x, y, w, h] px: the projected joints' box x1.25, cut by the matte's box and the image."""
    from posepile.util import boxes
    joint_box = boxes.expand(boxes.bb_of_points(camera.world_to_image(joints_mm)), BOX_EXPANSION)
    return boxes.intersection(boxes.full_box(imshape), boxes.intersection(joint_box, matte_box))


def video_header(path):
    """(frame count, (height, width)) of a video from its header (the count by decoding when the header does not
    say)."""
    import av

    from posepile.util.video import VideoReadError, count_frames
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            n, shape = int(stream.frames or 0), (int(stream.height), int(stream.width))
    except (av.error.FFmpegError, OSError, IndexError) as e:
        raise VideoReadError(path, -1, e) from e
    return (n if n > 0 else count_frames(path)), shape


# ------------------------------------------------------------------------------------------------
# Stages
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def list_videos(data_root=None):
    """Relative paths (to the raw root, sorted) of the training videos: subjects 1-3, not the test takes."""
    root = raw_root(data_root)
    if not (root / 'video').is_dir():
        raise FileNotFoundError(f'{root / "video"} not found: download and extract TotalCapture (main.sh step 1)')
    result = []
    for path in sorted((root / 'video').rglob('*.mp4')):
        parsed = parse_video_name(path)
        if parsed is None:
            logger.warning('%s: not named TC_S<s>_<take>_cam<c>.mp4, ignored', path)
        elif is_train_take(parsed[0], parsed[1]):
            result.append(path.relative_to(root).as_posix())
    return result


def matte_relpath(video_relpath):
    return 'mattes/' + video_relpath[len('video/'):]


def _matte_result_path(data_root, video_relpath):
    return work_dir(data_root) / 'mattes' / (video_relpath[:-len('.mp4')].replace('/', '_') + '.pkl')


def _frame_count(path, imshape):
    n_frames, shape = video_header(path)
    if shape != tuple(imshape):
        raise TotalCaptureFormatError(f'{path}: frames are {shape[0]}x{shape[1]}, the calibration says '
                                      f'{imshape[0]}x{imshape[1]}')
    return n_frames


def _matte_one(video_relpath, data_root):
    """Selection of one video's frames and, per selected frame, the matte's box and full-frame RLE. Redone when
    the video, matte, Vicon file or calibration changed."""
    from posepile.preproc.video_stage import video_fingerprint
    from posepile.util import boxes, fileio, masks
    from posepile.util.video import iter_frames
    root = raw_root(data_root)
    subject, take, camera_number = parse_video_name(video_relpath)
    vicon_path = root / 'vicon' / f'S{subject}' / take / 'gt_skel_gbl_pos.txt'
    inputs = [root / video_relpath, root / matte_relpath(video_relpath), vicon_path, root / CALIBRATION_FILE]
    fingerprint = [RESULT_VERSION] + [video_fingerprint(p) for p in inputs]
    out_path = _matte_result_path(data_root, video_relpath)
    if out_path.exists() and fileio.load_pickle(out_path).get('fingerprint') == fingerprint:
        return out_path
    calibration = load_calibration(root / CALIBRATION_FILE)
    if not 1 <= camera_number <= len(calibration):
        raise TotalCaptureFormatError(f'{root / CALIBRATION_FILE}: has no camera {camera_number} '
                                      f'(needed by {video_relpath})')
    camera, imshape = calibration[camera_number - 1]
    poses = load_joints(vicon_path)
    n_frames = min([len(poses)] + [_frame_count(p, imshape) for p in inputs[:2]])
    if n_frames < len(poses):
        logger.info('%s: %d Vicon rows but %d video frames: the rest is unused', video_relpath, len(poses), n_frames)
    selected = select_video_frames(camera, imshape, poses[:n_frames])
    frames = {}
    for index, matte in iter_frames(inputs[1], selected.tolist()):
        person = matte[..., 0] > MATTE_THRESHOLD
        frames[int(index)] = (boxes.bb_of_mask(person), masks.encode(person))
    fileio.save_pickle({'fingerprint': fingerprint, 'imshape': imshape, 'frames': frames}, out_path)
    return out_path


def mattes_stage(shard=None, n_workers=None, data_root=None):
    """Per training video: frames with >= 6 joints in view, adaptive selection (100 mm), and for the selected
    frames the matte's box and RLE mask (one light pass over the matte video; one result file per video)."""
    import functools

    from posepile.util.parallel import parallel_map, parse_shard, shard_items
    index, count = parse_shard(shard)
    videos = shard_items(list_videos(data_root), index, count)
    worker = functools.partial(_matte_one, data_root=data_root)
    parallel_map(worker, videos, n_workers=n_workers, desc=f'mattes {index + 1}/{count}')


def make_video_tasks(data_root=None):
    """One VideoTask per training video: per selected frame the person with box = joints x1.25 cut by the
    matte box and the image, and the matte as mask (frames whose box is empty are left out)."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    from posepile.util import boxes, fileio
    root = raw_root(data_root)
    cameras = load_cameras(root / CALIBRATION_FILE)
    tasks, n_empty = [], 0
    for video_relpath in list_videos(data_root):
        result_path = _matte_result_path(data_root, video_relpath)
        if not result_path.exists():
            raise FileNotFoundError(f'{result_path} not found: run the "mattes" stage (all shards) first')
        mattes = fileio.load_pickle(result_path)
        subject, take, camera_number = parse_video_name(video_relpath)
        camera = cameras[camera_number - 1]
        poses = load_joints(root / 'vicon' / f'S{subject}' / take / 'gt_skel_gbl_pos.txt')
        stem = video_relpath[:-len('.mp4')]
        people = {}
        for frame, (matte_box, rle) in sorted(mattes['frames'].items()):
            box = example_box(camera, mattes['imshape'], poses[frame], matte_box)
            if boxes.area(box) <= 0:
                n_empty += 1
                continue
            example = Pose3DExample(f'{NAME}/{video_relpath}/{frame:06d}', poses[frame], box, camera,
                                    activity_name=take, scene_name=f'S{subject}', mask=rle)
            people[frame] = [PersonTask(f'0/{stem}/{frame:06d}', example,
                                        f'{NAME}_downscaled/{stem}/{frame:06d}.jpg')]
        tasks.append(VideoTask(stem, str(root / video_relpath), people))
    if n_empty:
        logger.info('%d selected frames left out: empty matte or matte outside the joint box', n_empty)
    return tasks


@pipeline.cli_options(pipeline.SKIP_BROKEN_OPTION)
def video_stage(shard=None, n_workers=None, skip_broken=None, data_root=None):
    """One pass per video: crops of the selected frames (box = joints x1.25 cut by the matte box and the image),
    the matte reprojected into each crop as its mask."""
    pipeline.dataset_video_stage(NAME, make_video_tasks(data_root), shard, n_workers, data_root,
                                 skip_broken=skip_broken)


def make_dataset(data_root=None):
    """TotalCapture training set (subjects 1-3 without walking2, freestyle3, acting3): 21 joints, mm."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0])


def assemble(data_root=None):
    """The dataset for get_dataset('totalcapture')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.totalcapture.main', 'TotalCapture stages', {
        'mattes': mattes_stage,
        'video': video_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
