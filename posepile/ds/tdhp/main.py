"""MPI-INF-3DHP: camera calibration readers (test-set .calib and training camera.calibration)."""
import re

import numpy as np

from posepile.util.camera import Camera
from posepile.util.errors import InputError

# Image sizes (width, height) by sensor aspect ratio: the studio test camera and the outdoor GoPro.
TEST_IMAGE_SIZES = {'square': (2048, 2048), 'wide': (1920, 1080)}


class TDHPFormatError(InputError):
    pass


def load_calib(path, image_size=None):
    """Camera from a test-set "tc camera calibration v0.3" file (first camera, frame 0).

    sensorSize and focalLength are in mm, centerOffset in mm (+right, +down), origin in mm, `up` and `right`
    are world directions. `image_size` (width, height) defaults to 2048x2048 for a square sensor (TS1-4)
    and 1920x1080 for a 16:9 one (TS5-6).
    """
    try:
        text = open(path, encoding='utf-8').read()
    except OSError as e:
        raise TDHPFormatError(f'{path}: cannot read ({e})') from e
    if not text.startswith('tc camera calibration'):
        raise TDHPFormatError(f'{path}: not a "tc camera calibration" file (first line: {text[:40]!r})')

    def field(name, n):
        match = re.search(rf'^\s*{name}\s+([^#\n]+)', text, re.MULTILINE)
        if match is None:
            raise TDHPFormatError(f'{path}: field {name} is missing')
        try:
            values = [float(x) for x in match.group(1).split()]
        except ValueError:
            raise TDHPFormatError(f'{path}: field {name} is not numeric: {match.group(1)!r}') from None
        if len(values) != n:
            raise TDHPFormatError(f'{path}: field {name} has {len(values)} values, expected {n}')
        return np.array(values)

    sensor_w, sensor_h = field('sensorSize', 2)
    focal_mm, = field('focalLength', 1)
    pixel_aspect, = field('pixelAspect', 1)
    offset_x, offset_y = field('centerOffset', 2)
    distortion = field('distortion', 5)
    origin = field('origin', 3)
    up = field('up', 3)
    right = field('right', 3)
    if image_size is None:
        image_size = TEST_IMAGE_SIZES['square' if abs(sensor_w - sensor_h) < 1e-6 else 'wide']
    width, height = image_size
    fx = focal_mm / sensor_w * width
    fy = focal_mm / sensor_h * height * pixel_aspect
    cx = (sensor_w / 2 + offset_x) * width / sensor_w
    cy = (sensor_h / 2 + offset_y) * height / sensor_h
    rot = np.stack([right, -up, np.cross(up, right)])
    return Camera(origin, rot, [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], distortion, world_up=up)


def load_train_cameras(path):
    """Cameras of a training sequence from `camera.calibration` ("Skeletool Camera Calibration File V1.0").

    Per camera: `intrinsic` and `extrinsic` are 4x4 row-major; the extrinsic maps world to camera with the
    translation in mm. World is y-up. Returns a list of Camera in file order.
    """
    try:
        lines = open(path, encoding='utf-8').read().splitlines()
    except OSError as e:
        raise TDHPFormatError(f'{path}: cannot read ({e})') from e
    if not lines or not lines[0].startswith('Skeletool Camera Calibration File'):
        raise TDHPFormatError(f'{path}: not a Skeletool camera calibration file')
    cameras = []
    current = {}

    def finish():
        if not current:
            return
        for key in ('intrinsic', 'extrinsic'):
            if key not in current:
                raise TDHPFormatError(f'{path}: camera {len(cameras)} has no {key} line')
        intrinsic = current['intrinsic'][:3, :3]
        cameras.append(Camera(extrinsic_matrix=current['extrinsic'], intrinsic_matrix=intrinsic,
                              world_up=(0, 1, 0)))

    for line_number, line in enumerate(lines[1:], start=2):
        parts = line.split()
        if not parts:
            continue
        key = parts[0]
        if key == 'name':
            finish()
            current = {}
        elif key in ('intrinsic', 'extrinsic'):
            try:
                values = np.array([float(x) for x in parts[1:]])
            except ValueError:
                raise TDHPFormatError(f'{path}:{line_number}: {key} is not numeric') from None
            if len(values) != 16:
                raise TDHPFormatError(f'{path}:{line_number}: {key} has {len(values)} values, expected 16')
            current[key] = values.reshape(4, 4)
    finish()
    if not cameras:
        raise TDHPFormatError(f'{path}: no cameras found')
    return cameras


# ------------------------------------------------------------------------------------------------
# Test set ground truth (TS1-TS6)
TEST_SEQUENCES = ('TS1', 'TS2', 'TS3', 'TS4', 'TS5', 'TS6')
TEST_JOINT_NAMES = 'htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,pelv,spin,head'
TEST_ROOT_INDEX = 14
VALID_FRAMES_PER_SEQUENCE = {'TS1': 603, 'TS2': 540, 'TS3': 505, 'TS4': 553, 'TS5': 276, 'TS6': 452}
SCENES = {'GS': ('TS1', 'TS2'), 'noGS': ('TS3', 'TS4'), 'Outdoor': ('TS5', 'TS6')}
ACTIVITY_NAMES = ('Standing/Walking', 'Exercising', 'Sitting', 'Reaching/Crouching', 'On The Floor', 'Sports',
                  'Miscellaneous')


def load_test_annotations(annot_data_mat_path):
    """Dict of arrays from a test sequence's annot_data.mat (MATLAB v7.3 = HDF5): annot3 and univ_annot3
    (N, 17, 3) mm camera frame, annot2 (N, 17, 2) px, valid_frame (N,) bool, activity (N,) int 1..7."""
    import h5py
    path = str(annot_data_mat_path)
    try:
        with h5py.File(path, 'r') as f:
            result = {
                'annot3': np.asarray(f['annot3'], np.float64).reshape(-1, 17, 3),
                'univ_annot3': np.asarray(f['univ_annot3'], np.float64).reshape(-1, 17, 3),
                'annot2': np.asarray(f['annot2'], np.float64).reshape(-1, 17, 2),
                'valid_frame': np.asarray(f['valid_frame']).reshape(-1).astype(bool),
                'activity': np.asarray(f['activity_annotation']).reshape(-1).astype(np.int64),
            }
    except (OSError, KeyError) as e:
        raise TDHPFormatError(f'{path}: not a readable MPI-INF-3DHP annot_data.mat ({e})') from e
    n = len(result['valid_frame'])
    for key in ('annot3', 'univ_annot3', 'annot2', 'activity'):
        if len(result[key]) != n:
            raise TDHPFormatError(f'{path}: {key} has {len(result[key])} frames, valid_frame has {n}')
    return result


def test_image_relpath(sequence, frame_index):
    """Path relative to DATA_ROOT of a test frame; frame_index is 0-based, file names are 1-based."""
    return f'tdhp/{sequence}/imageSequence/img_{frame_index + 1:06d}.jpg'


def test_camera(root, sequence):
    """The calibrated test camera of a sequence (from test_util/camera_calibration/*.calib)."""
    from pathlib import Path
    name = 'ts1-4cameras.calib' if sequence in ('TS1', 'TS2', 'TS3', 'TS4') else 'ts5-6cameras.calib'
    path = Path(root) / 'test_util' / 'camera_calibration' / name
    if not path.exists():
        raise FileNotFoundError(f'{path} not found: extract test_util from the 3DHP test set archive')
    return load_calib(path)


# ------------------------------------------------------------------------------------------------
# The recipe's stages (see main.sh)
import logging  # noqa: E402
from pathlib import Path  # noqa: E402

from posepile.joint_info import JointInfo  # noqa: E402
from posepile.preproc import pipeline  # noqa: E402

logger = logging.getLogger(__name__)
NAME = 'tdhp'
ALL_JOINT_NAMES = ('spi3,spi4,spi2,spin,pelv,neck,head,htop,lcla,lsho,lelb,lwri,lhan,rcla,rsho,relb,rwri,rhan,'
                   'lhip,lkne,lank,lfoo,ltoe,rhip,rkne,rank,rfoo,rtoe')
ALL_JOINT_EDGES = ('htop-head-neck-spi4-spi3-spi2-spin-pelv-lhip-lkne-lank-lfoo-ltoe,pelv-rhip-rkne-rank-rfoo-rtoe,'
                   'neck-lcla-lsho-lelb-lwri-lhan,neck-rcla-rsho-relb-rwri-rhan')
TEST_JOINTS_OF_28 = [7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6]
TEST_JOINT_EDGES = 'htop-head-neck-spin-pelv-lhip-lkne-lank,pelv-rhip-rkne-rank,neck-lsho-lelb-lwri,neck-rsho-relb-rwri'
TRAIN_SUBJECTS = tuple(f'S{i}' for i in range(1, 9))
TRAIN_CAMERAS = (0, 1, 2, 4, 5, 6, 7, 8)  # the chest-height and overhead-free views used for training
TRAIN_FRAME_STEP = 5
SELECTION_THRESHOLD_MM = 100
MIN_FRACTION_IN_IMAGE = 1 / 3
BOX_EXPANSION = 1.05
MASK_THRESHOLD = 32  # chroma key of the FGmasks / ChairMasks videos (first channel, 0-255)
# Frames per training sequence (the original's counts; the videos end there) and the one shorter video.
N_FRAMES = {(f'S{s + 1}', f'Seq{q + 1}'): n for s, pair in enumerate(
    [(6416, 12430), (6502, 6081), (12488, 12283), (6171, 6675), (12820, 12312), (6188, 6145), (6239, 6320),
     (6468, 6054)]) for q, n in enumerate(pair)}
SHORT_VIDEOS = {('S6', 'Seq2', 2): 3911}
# 3DHP-full (and MuCo-3DHP): the 28 joints in MuCo's order and names (the raw skeleton with spi3 called
# `thor`), as the paper's mixes expect them; FULL_JOINT_ORDER indexes the raw annot.mat order.
FULL_JOINT_NAMES = ('thor,spi4,spi2,lcla,lhan,rcla,rhan,lfoo,ltoe,rfoo,rtoe,htop,neck,rsho,relb,rwri,lsho,lelb,'
                    'lwri,rhip,rkne,rank,lhip,lkne,lank,spin,head,pelv')
FULL_JOINT_EDGES = ('htop-head-neck-lcla-lsho-lelb-lwri-lhan,neck-rcla-rsho-relb-rwri-rhan,'
                    'neck-spi4-thor-spi2-spin-pelv-lhip-lkne-lank-lfoo-ltoe,pelv-rhip-rkne-rank-rfoo-rtoe')
FULL_JOINT_ORDER = [0, 1, 2, 8, 12, 13, 17, 21, 22, 26, 27, 7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20,
                    3, 6, 4]
FULL_MIN_VISIBLE_JOINTS = 28 // 3
JOINT_INFOS = {'make_full_dataset': JointInfo(FULL_JOINT_NAMES, FULL_JOINT_EDGES)}


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def load_train_annotations(annot_mat_path, key='annot3'):
    """annot3 (or key='univ_annot3') per camera (list of (N, 28, 3) mm, camera frame) from a training
    sequence's annot.mat (v5)."""
    import scipy.io
    path = Path(annot_mat_path)
    try:
        cells = scipy.io.loadmat(str(path), variable_names=[key])[key]
    except (OSError, ValueError, KeyError, NotImplementedError) as e:
        raise TDHPFormatError(f'{path}: cannot read {key} ({e})') from e
    result = []
    for c in range(cells.size):
        values = np.asarray(cells.reshape(-1)[c], np.float64)
        if values.size % 84:
            raise TDHPFormatError(f'{path}: {key} of camera {c} has {values.size} values, not a multiple of 28 x 3')
        result.append(values.reshape(-1, 28, 3))
    return result


def train_sequences(root):
    return [(s, q) for s in TRAIN_SUBJECTS for q in ('Seq1', 'Seq2') if (Path(root) / s / q / 'annot.mat').exists()]


def train_frame_relpath(subject, sequence, camera_index, frame):
    return f'tdhp/{subject}/{sequence}/Images/video_{camera_index}/frame_{frame:06d}.jpg'


def n_usable_frames(subject, sequence, camera_index, n_annotated):
    """Frames of a training video that have both annotations and pixels: the original's per-sequence
    counts (the annot.mat of some sequences has more rows than the videos) and S6/Seq2 camera 2, which is
    shorter (3 911 frames)."""
    limit = SHORT_VIDEOS.get((subject, sequence, camera_index), N_FRAMES.get((subject, sequence), n_annotated))
    return min(n_annotated, limit)


def select_frames_stage(data_root=None):
    """Per training sequence: every 5th frame, then adaptive selection (a joint moved >= 100 mm; camera 0's
    annot3, distances being the same in every camera's frame); a camera whose video is shorter drops the frames
    past its end (make_video_tasks). Also the 3DHP-full selection (see full_selection)."""
    from posepile.util import fileio
    from posepile.util.sampling import select_frames
    out_path = work_dir(data_root) / 'selection.json'
    if out_path.exists():
        selection = fileio.load_json(out_path)
    else:
        root = raw_root(data_root)
        selection = {}
        for subject, sequence in train_sequences(root):
            annot3 = load_train_annotations(root / subject / sequence / 'annot.mat')[0]
            n = max(n_usable_frames(subject, sequence, c, len(annot3)) for c in TRAIN_CAMERAS)
            candidates = np.arange(0, n, TRAIN_FRAME_STEP)
            kept = select_frames(annot3[candidates], SELECTION_THRESHOLD_MM)
            selection[f'{subject}/{sequence}'] = candidates[kept].tolist()
        fileio.save_json(selection, out_path)
    full_selection(data_root)
    return selection


def full_selection(data_root=None):
    """3DHP-full: {'S/Seq/camera': [frames]}: every frame of each of the 14 videos through the adaptive
    sampler (100 mm, buffer 1) on that camera's annot3 (camera coordinates, mm), then the frames where at
    least 28 // 3 = 9 joints project into the image in front of the camera (the original's count)."""
    from posepile.util import fileio
    from posepile.util.sampling import select_frames
    out_path = work_dir(data_root) / 'selection_full.json'
    if out_path.exists():
        return fileio.load_json(out_path)
    root = raw_root(data_root)
    selection = {}
    for subject, sequence in train_sequences(root):
        folder = root / subject / sequence
        cameras = load_train_cameras(folder / 'camera.calibration')
        sizes = _train_image_sizes(folder / 'camera.calibration')
        for camera_index, annot3 in enumerate(load_train_annotations(folder / 'annot.mat')):
            if camera_index >= len(cameras):
                raise TDHPFormatError(f'{folder / "annot.mat"}: annot3 has camera {camera_index}, '
                                      f'camera.calibration only {len(cameras)}')
            annot3 = annot3[:n_usable_frames(subject, sequence, camera_index, len(annot3))]
            kept = select_frames(annot3, SELECTION_THRESHOLD_MM)
            pixels = cameras[camera_index].camera_to_image(annot3[kept].reshape(-1, 3)).reshape(len(kept), -1, 2)
            width, height = sizes[camera_index]
            visible = ((annot3[kept, :, 2] > 0) & (pixels[..., 0] >= 0) & (pixels[..., 0] < width)
                       & (pixels[..., 1] >= 0) & (pixels[..., 1] < height))
            enough = visible.sum(axis=1) >= FULL_MIN_VISIBLE_JOINTS
            selection[f'{subject}/{sequence}/{camera_index}'] = kept[enough].tolist()
    fileio.save_json(selection, out_path)
    return selection


# ------------------------------------------------------------------------------------------------
# Person masks from the shipped chroma-key videos (FGmasks, ChairMasks)
def mask_video_path(root, subject, sequence, camera_index, kind='FGmasks'):
    return Path(root) / subject / sequence / kind / f'video_{camera_index}.avi'


def _frames_needing_masks(data_root=None):
    """{(subject, sequence, camera): sorted frames} over the tdhp and tdhp_full selections."""
    needed = {}
    for key, frames in select_frames_stage(data_root).items():
        subject, sequence = key.split('/')
        for camera_index in TRAIN_CAMERAS:
            needed.setdefault((subject, sequence, camera_index), set()).update(frames)
    for key, frames in full_selection(data_root).items():
        subject, sequence, camera_index = key.split('/')
        needed.setdefault((subject, sequence, int(camera_index)), set()).update(frames)
    return {k: sorted(v) for k, v in sorted(needed.items())}


def chroma_mask(frame_rgb):
    """Person (or chair) mask of a 3DHP mask video frame: first channel > 32 (the original's key)."""
    return frame_rgb[..., 0] > MASK_THRESHOLD


def mask_store_path(data_root, subject, sequence, camera_index):
    return work_dir(data_root) / 'masks' / f'{subject}_{sequence}_video_{camera_index}.pkl'


def _decode_masks(path, frames):
    from posepile.util import masks
    from posepile.util.video import iter_frames
    if not path.exists():
        return None
    return {int(i): masks.encode(chroma_mask(frame)) for i, frame in iter_frames(path, frames)}


def _mask_job(job, data_root):
    """Decode the FGmasks (and ChairMasks, when shipped) video of one camera at the needed frames and store
    {'fg': {frame: RLE}, 'chair': {frame: RLE} or None}. Skipped when done with the same inputs."""
    from posepile.preproc.video_stage import video_fingerprint
    from posepile.util import fileio
    (subject, sequence, camera_index), frames = job
    root = raw_root(data_root)
    paths = {kind: mask_video_path(root, subject, sequence, camera_index, folder)
             for kind, folder in (('fg', 'FGmasks'), ('chair', 'ChairMasks'))}
    fingerprint = {'frames': frames, 'videos': {k: video_fingerprint(p) for k, p in paths.items()}}
    out_path = mask_store_path(data_root, subject, sequence, camera_index)
    if out_path.exists():
        try:
            if fileio.load_pickle(out_path)['fingerprint'] == fingerprint:
                return 0
        except Exception:  # noqa: BLE001 - a damaged store is redone
            pass
    store = {kind: _decode_masks(path, frames) for kind, path in paths.items()}
    if store['fg'] is None:
        logger.warning('%s is missing: the examples of that camera get no person masks', paths['fg'])
    store['fingerprint'] = fingerprint
    fileio.save_pickle(store, out_path)
    return len(frames)


@pipeline.cli_options()
def mask_stage(shard=None, n_workers=None, data_root=None):
    """Per-frame person masks (RLE, full frame) of the selected frames from the shipped FGmasks videos
    (chroma key: first channel > 32), and the chair masks from ChairMasks where shipped. One light pass per
    mask video, sharded and resumable by video."""
    import functools

    from posepile.util.parallel import parallel_map, parse_shard, shard_items
    jobs = list(_frames_needing_masks(data_root).items())
    index, count = parse_shard(shard)
    done = parallel_map(functools.partial(_mask_job, data_root=data_root), shard_items(jobs, index, count),
                        n_workers=n_workers, desc='mask videos')
    logger.info('masks: %d videos, %d frames decoded now', len(done), sum(done))


def load_masks(data_root, subject, sequence, camera_index):
    """{'fg': {frame: RLE} or None, 'chair': {frame: RLE} or None} of one camera (empty when not stored)."""
    from posepile.util import fileio
    path = mask_store_path(data_root, subject, sequence, camera_index)
    if not path.exists():
        return {'fg': None, 'chair': None}
    return fileio.load_pickle(path)


def _person_task(key, crop_relpath, camera, camera_coords, size, mask, scene_name, joint_order=None,
                 univ_camera_coords=None):
    """PersonTask with the joint box (in-image joints x 1.05, clipped), or None when no joint is in view."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask
    from posepile.util import boxes
    width, height = size
    world = camera.camera_to_world(camera_coords)
    pixels = camera.world_to_image(world)
    inside = (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < height)
    if not inside.any():
        return None
    box = boxes.intersection(boxes.expand(boxes.bb_of_points(pixels[inside]), BOX_EXPANSION),
                             boxes.full_box((height, width)))
    univ = None if univ_camera_coords is None else camera.camera_to_world(univ_camera_coords)
    if joint_order is not None:
        world = world[joint_order]
        univ = None if univ is None else univ[joint_order]
    example = Pose3DExample(crop_relpath.replace('_downscaled/', '/', 1), world, box, camera, mask=mask,
                            scene_name=scene_name, univ_coords=univ)
    return PersonTask(key, example, crop_relpath)


def _fraction_in_view(camera, camera_coords, width, height):
    pixels = camera.camera_to_image(camera_coords)
    inside = (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < height)
    return inside.mean()


def make_video_tasks(data_root=None, cameras=TRAIN_CAMERAS):
    """One VideoTask per training sequence and camera (imageSequence/video_N.avi, frame i = annot row i):
    the selected frames where >= 1/3 of the joints are in view, with the joint box x 1.05 (clipped) and the
    FGmasks person mask (when the `masks` stage stored it)."""
    from posepile.preproc.video_stage import VideoTask
    root = raw_root(data_root)
    tasks = []
    for key, frames in sorted(select_frames_stage(data_root).items()):
        subject, sequence = key.split('/')
        folder = root / subject / sequence
        all_cameras = load_train_cameras(folder / 'camera.calibration')
        sizes = _train_image_sizes(folder / 'camera.calibration')
        annot3 = load_train_annotations(folder / 'annot.mat')
        univ3 = load_train_annotations(folder / 'annot.mat', 'univ_annot3')
        for camera_index in cameras:
            fg_masks = load_masks(data_root, subject, sequence, camera_index)['fg'] or {}
            people = {}
            n_frames = n_usable_frames(subject, sequence, camera_index, len(annot3[camera_index]))
            for frame in frames:
                if frame >= n_frames or _fraction_in_view(all_cameras[camera_index], annot3[camera_index][frame],
                                     *sizes[camera_index]) < MIN_FRACTION_IN_IMAGE:
                    continue
                relpath = train_frame_relpath(subject, sequence, camera_index, frame)
                people[frame] = [_person_task(
                    f'0/{subject}/{sequence}/{camera_index:02d}/{frame:06d}',
                    relpath.replace('tdhp/', 'tdhp_downscaled/', 1), all_cameras[camera_index],
                    annot3[camera_index][frame], sizes[camera_index], fg_masks.get(frame), key,
                    univ_camera_coords=univ3[camera_index][frame])]
            tasks.append(VideoTask(
                f'{subject}/{sequence}/video_{camera_index}',
                str(folder / 'imageSequence' / f'video_{camera_index}.avi'), people,
                frame_relpath_pattern=f'tdhp/{subject}/{sequence}/Images/video_{camera_index}/frame_{{:06d}}.jpg'))
    return tasks


def full_frame_relpath(subject, sequence, camera_index, frame):
    """Crop path of a 3DHP-full example. The camera number is the one of video_{camera}.avi (0-based) both
    here and in the frame pattern (the original wrote camera+1 when extracting and read camera)."""
    return f'tdhp_full_downscaled/{subject}/{sequence}/video_{camera_index}/frame_{frame:06d}.jpg'


def make_full_video_tasks(data_root=None):
    """3DHP-full: one VideoTask per sequence and each of the 14 cameras, the frames of full_selection, joints
    in MuCo's 28-joint order, FGmasks person masks."""
    from posepile.preproc.video_stage import VideoTask
    root = raw_root(data_root)
    tasks = []
    for key, frames in sorted(full_selection(data_root).items()):
        subject, sequence, camera_index = key.split('/')
        camera_index = int(camera_index)
        folder = root / subject / sequence
        camera = load_train_cameras(folder / 'camera.calibration')[camera_index]
        size = _train_image_sizes(folder / 'camera.calibration')[camera_index]
        annot3 = load_train_annotations(folder / 'annot.mat')[camera_index]
        univ3 = load_train_annotations(folder / 'annot.mat', 'univ_annot3')[camera_index]
        fg_masks = load_masks(data_root, subject, sequence, camera_index)['fg'] or {}
        people = {}
        for frame in frames:
            task = _person_task(f'0/{subject}/{sequence}/{camera_index:02d}/{frame:06d}',
                                full_frame_relpath(subject, sequence, camera_index, frame), camera, annot3[frame],
                                size, fg_masks.get(frame), f'{subject}/{sequence}', FULL_JOINT_ORDER,
                                univ_camera_coords=univ3[frame])
            if task is not None:
                people[frame] = [task]
        tasks.append(VideoTask(
            f'{subject}/{sequence}/video_{camera_index}', str(folder / 'imageSequence' / f'video_{camera_index}.avi'),
            people, frame_relpath_pattern=f'tdhp/{subject}/{sequence}/Images/video_{camera_index}/frame_{{:06d}}.jpg'))
    return tasks


def _box_rule(detector_spec):
    from posepile.preproc.video_stage import BoxRule
    return BoxRule('3dhp', min_iou=0.5) if detector_spec else BoxRule('gt')


@pipeline.cli_options(pipeline.DETECTOR_OPTION, pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION)
def video_stage(shard=None, n_workers=None, detector_spec=None, skip_broken=None, keep_frames=False,
                data_root=None):
    """Training crops, one pass per video. With a detector (--detector or $POSEPILE_DETECTOR) boxes follow
    3DHP's rule: the hull of the most confident detection and the joint box, when that hull still overlaps
    the joint box with IoU > 0.5; else the joint box. Masks: the FGmasks person masks (run `masks` first)."""
    detector_spec = pipeline.configured_detector(detector_spec)
    pipeline.dataset_video_stage(NAME, make_video_tasks(data_root), shard, n_workers, data_root,
                                 subdir='crops_train', box_rule=_box_rule(detector_spec), detector_spec=detector_spec,
                                 skip_broken=skip_broken, keep_frames=keep_frames)


@pipeline.cli_options(pipeline.DETECTOR_OPTION, pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION)
def full_video_stage(shard=None, n_workers=None, detector_spec=None, skip_broken=None, keep_frames=False,
                     data_root=None):
    """3DHP-full crops (14 cameras, every frame through the sampler), one pass per video; boxes and masks as
    in the `video` stage."""
    detector_spec = pipeline.configured_detector(detector_spec)
    pipeline.dataset_video_stage(NAME, make_full_video_tasks(data_root), shard, n_workers, data_root,
                                 subdir='crops_full', box_rule=_box_rule(detector_spec), detector_spec=detector_spec,
                                 skip_broken=skip_broken, keep_frames=keep_frames)


def make_test_crop_tasks(data_root=None):
    """The test set as the TEST split (valid frames of TS1-TS6 images; univ_annot3 kept as univ_coords)."""
    from posepile.datasets3d import Pose3DExample
    from posepile.util import boxes
    root = raw_root(data_root)
    tasks = []
    for sequence in TEST_SEQUENCES:
        path = root / sequence / 'annot_data.mat'
        if not path.exists():
            continue
        annotations = load_test_annotations(path)
        camera = test_camera(root, sequence)
        for i in np.flatnonzero(annotations['valid_frame']):
            world = camera.camera_to_world(annotations['annot3'][i])
            box = boxes.expand(boxes.bb_of_points(camera.world_to_image(world)), BOX_EXPANSION)
            relpath = test_image_relpath(sequence, int(i))
            example = Pose3DExample(relpath, world, box, camera, scene_name=sequence,
                                    univ_coords=camera.camera_to_world(annotations['univ_annot3'][i]),
                                    activity_name=ACTIVITY_NAMES[annotations['activity'][i] - 1])
            crop = relpath.replace('tdhp/', 'tdhp_downscaled/', 1)
            tasks.append((f'2/{sequence}/{int(i):06d}', example, crop))
    return tasks


def _train_image_sizes(path):
    """(width, height) per camera from the `size` lines of camera.calibration."""
    sizes = []
    for line in open(path, encoding='utf-8'):
        parts = line.split()
        if parts and parts[0] == 'size':
            sizes.append((int(float(parts[1])), int(float(parts[2]))))
    return sizes


@pipeline.cli_options(('--color-correct-test', dict(
    action='store_true', help="the original's gamma + white balance fix of the green-tinted test images")))
def test_crop_stage(shard=None, n_workers=None, color_correct_test=False, data_root=None):
    """Crops of the test set images; with --color-correct-test the original's gamma + white-balance fix."""
    tasks = make_test_crop_tasks(data_root)
    if tasks:
        pipeline.dataset_crop_stage(NAME, tasks, shard, n_workers, data_root, subdir='crops_test',
                                    image_adjustments_3dhp=color_correct_test)
    else:
        logger.info('no test set under %s', raw_root(data_root))


def make_dataset(data_root=None):
    """MPI-INF-3DHP: training sequences (8 cameras, every 5th frame + adaptive 100 mm, >= 1/3 of the joints
    in view; 28 joints) and the test set as TEST (valid frames; the 17 test joints placed into the 28)."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    from posepile.preproc.pipeline import load_crop_results
    splits = {0: [], 2: []}
    for subset, split in (('train', 0), ('test', 2)):
        crops = work_dir(data_root) / f'crops_{subset}'
        if crops.exists():
            for _, example in load_crop_results(crops):
                if split == 2:  # test annotations have the 17 test joints: place them among the 28
                    for attr in ('world_coords', 'univ_coords'):
                        full = np.full((28, 3), np.nan, np.float32)
                        full[TEST_JOINTS_OF_28] = getattr(example, attr)
                        setattr(example, attr, full)
                splits[split].append(example)
    if not splits[0] and not splits[2]:
        raise FileNotFoundError(f'{work_dir(data_root)}: no crops; run the video and crop-test stages of '
                                'posepile/ds/tdhp/main.sh')
    return Pose3DDataset(JointInfo(ALL_JOINT_NAMES, ALL_JOINT_EDGES), splits[0], None, splits[2])


def make_full_dataset(data_root=None):
    """MPI-INF-3DHP-full: all 14 cameras of S1-S8, every frame through the adaptive sampler (100 mm, camera
    coordinates), >= 9 of 28 joints in view, FGmasks person masks; 28 joints in MuCo's order and names."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.preproc.pipeline import load_crop_results
    crops = work_dir(data_root) / 'crops_full'
    if not crops.exists():
        raise FileNotFoundError(f'{crops}: no crops; run the full-video stage of posepile/ds/tdhp/main.sh')
    examples = [example for _, example in load_crop_results(crops)]
    return Pose3DDataset(JOINT_INFOS['make_full_dataset'], examples, None, None)


def assemble(data_root=None):
    """The datasets for get_dataset('tdhp') and, when its crops exist, get_dataset('tdhp_full')."""
    builders = {NAME: lambda: make_dataset(data_root)}
    if (work_dir(data_root) / 'crops_full').exists():
        builders['tdhp_full'] = lambda: make_full_dataset(data_root)
    pipeline.save_datasets(builders)


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.tdhp.main', 'MPI-INF-3DHP stages', {
        'select-frames': select_frames_stage, 'masks': mask_stage, 'video': video_stage,
        'full-video': full_video_stage, 'crop-test': test_crop_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
