"""MPI-INF-3DHP: readers (test-set .calib, training camera.calibration, annot.mat, annot_data.mat, each checked:
one-line errors naming a corrupt file) and the recipe's stages.

tdhp follows the original's 3dhp.pkl: 17 joints (TRAIN_JOINT_NAMES), S1-S7 TRAIN and S8 VALID from cameras
0-2 and 4-8 (every 5th frame, all 17 joints in view, adaptive 100 mm sampler per camera), TS1-TS6 as TEST.
tdhp_full follows the original's 3DHP-full: all 14 cameras, 28 joints in MuCo's order, >= 9 joints in view,
the box of all 28 joints x 1.05 even for partly visible people. Every training crop of both gets the
original's colour correction (improc.white_balance_3dhp); test crops stay uncorrected.
"""
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
    except (OSError, UnicodeDecodeError) as e:
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
    except (OSError, UnicodeDecodeError) as e:
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
# Plausibility of what the annotation files hold: camera-frame joints of a studio or outdoor capture lie well
# within 100 m of the camera, image coordinates well within 100 000 px. Larger values mean corruption.
MAX_ABS_CAMERA_COORD_MM = 1e5
MAX_ABS_PIXEL = 1e5
MIN_MEDIAN_DISTANCE_MM = 100  # median joint distance from the camera: metres (about 4) instead of mm fail


def check_camera_coords_mm(coords, path, what):
    """InputError naming `path` unless camera-frame joints (mm, NaN allowed) are finite, within 100 m of the
    camera and, by their median distance from it, in mm rather than metres."""
    from posepile.util.validation import check_coords_mm
    check_coords_mm(coords, path, f'{what} joint coordinates (camera frame)', MAX_ABS_CAMERA_COORD_MM)
    distances = np.linalg.norm(coords, axis=-1)
    distances = distances[np.isfinite(distances)]
    if distances.size and np.median(distances) < MIN_MEDIAN_DISTANCE_MM:
        raise TDHPFormatError(f'{path}: {what} joints lie a median {np.median(distances):.3g} from the camera: '
                              'expected mm (metres or a corrupt file?)')


def load_test_annotations(annot_data_mat_path):
    """Dict of arrays from a test sequence's annot_data.mat (MATLAB v7.3 = HDF5): annot3 and univ_annot3
    (N, 17, 3) mm camera frame, annot2 (N, 17, 2) px, valid_frame (N,) bool, activity (N,) int 1..7."""
    import h5py
    path = str(annot_data_mat_path)
    try:
        with h5py.File(path, 'r') as f:
            raw = {key: np.asarray(f[key]) for key in ('annot3', 'univ_annot3', 'annot2', 'valid_frame',
                                                       'activity_annotation')}
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise TDHPFormatError(f'{path}: not a readable MPI-INF-3DHP annot_data.mat ({e})') from e
    result = {}
    for key, n_dims in (('annot3', 3), ('univ_annot3', 3), ('annot2', 2)):
        values = raw[key]
        # (N, 1, 17, n_dims) as shipped
        if values.ndim < 2 or values.shape[-1] != n_dims or values.shape[-2] != len(TEST_JOINT_NAMES.split(',')) \
                or int(np.prod(values.shape[1:-2], dtype=np.int64)) != 1:
            raise TDHPFormatError(f'{path}: {key} has shape {values.shape}, expected (frames, 1, 17, {n_dims})')
        result[key] = values.astype(np.float64).reshape(len(values), 17, n_dims)
    for key, name in (('valid_frame', 'valid_frame'), ('activity_annotation', 'activity')):
        values = raw[key].reshape(-1).astype(np.float64)
        if not np.isfinite(values).all():
            raise TDHPFormatError(f'{path}: {key} holds non-finite values')
        result[name] = values
    n = len(result['valid_frame'])
    for key in ('annot3', 'univ_annot3', 'annot2', 'activity'):
        if len(result[key]) != n:
            raise TDHPFormatError(f'{path}: {key} has {len(result[key])} frames, valid_frame has {n}')
    valid = result['valid_frame'] = result['valid_frame'] != 0
    # the frames the recipe and the evaluation use (the valid ones) must be complete and plausible
    for key in ('annot3', 'univ_annot3'):
        check_camera_coords_mm(result[key][valid], path, key)
        if not np.isfinite(result[key][valid]).all():
            raise TDHPFormatError(f'{path}: {key} holds NaN coordinates in valid frames')
    if not np.isfinite(result['annot2'][valid]).all() or np.abs(result['annot2'][valid]).max(initial=0) > MAX_ABS_PIXEL:
        raise TDHPFormatError(f'{path}: annot2 holds non-finite or implausible pixel coordinates '
                              f'(|value| > {MAX_ABS_PIXEL:.0e} px; corrupt file?)')
    activity = result['activity'][valid]
    if len(activity) and (activity.min() < 1 or activity.max() > len(ACTIVITY_NAMES) or np.any(activity % 1)):
        raise TDHPFormatError(f'{path}: activity_annotation outside 1..{len(ACTIVITY_NAMES)} in valid frames')
    result['activity'] = np.where(valid, result['activity'], 0).astype(np.int64)
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
# tdhp (the original's 3dhp.pkl): S1-S7 TRAIN, S8 VALID (the original's own split), cameras 0-2 and 4-8, every
# 5th frame, all 17 joints in view, then the adaptive sampler per camera; 17 joints in the loaders' order.
TRAIN_SUBJECTS = tuple(f'S{i}' for i in range(1, 8))
VALID_SUBJECTS = ('S8',)
SUBJECTS = TRAIN_SUBJECTS + VALID_SUBJECTS
N_TRAIN_CAMERAS = 14  # cameras of every training sequence (annot.mat cells, camera.calibration entries)
TRAIN_CAMERAS = (0, 1, 2, 4, 5, 6, 7, 8)  # the chest-height and overhead-free views used for training
TRAIN_FRAME_STEP = 5
SELECTION_THRESHOLD_MM = 100
BOX_EXPANSION = 1.05
TRAIN_JOINT_NAMES = 'htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,spin,head,pelv'
TRAIN_JOINTS_OF_28 = [ALL_JOINT_NAMES.split(',').index(name) for name in TRAIN_JOINT_NAMES.split(',')]
# the test files' 17 joints (order TEST_JOINT_NAMES) -> TRAIN_JOINT_NAMES order
TEST_TO_TRAIN_ORDER = [TEST_JOINT_NAMES.split(',').index(name) for name in TRAIN_JOINT_NAMES.split(',')]
SELECTION_VERSION = 2  # selection*.json written by an older rule are recomputed
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
JOINT_INFOS = {'make_dataset': JointInfo(TRAIN_JOINT_NAMES, TEST_JOINT_EDGES),
               'make_full_dataset': JointInfo(FULL_JOINT_NAMES, FULL_JOINT_EDGES)}


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def load_train_annotations(annot_mat_path, key='annot3'):
    """annot3 (or key='univ_annot3') per camera (list of (N, 28, 3) mm, camera frame) from a training
    sequence's annot.mat (v5)."""
    import struct
    import zlib

    import scipy.io
    path = Path(annot_mat_path)
    try:
        cells = scipy.io.loadmat(str(path), variable_names=[key])[key]
    except (OSError, ValueError, KeyError, NotImplementedError, TypeError, IndexError, struct.error,
            zlib.error, scipy.io.matlab.MatReadError) as e:
        raise TDHPFormatError(f'{path}: cannot read {key} ({e})') from e
    if cells.dtype != object or cells.size != N_TRAIN_CAMERAS:
        raise TDHPFormatError(f'{path}: {key} is not a cell array of {N_TRAIN_CAMERAS} cameras '
                              f'(dtype {cells.dtype}, {cells.size} entries)')
    result = []
    for c in range(cells.size):
        try:
            values = np.asarray(cells.reshape(-1)[c], np.float64)
        except (TypeError, ValueError) as e:
            raise TDHPFormatError(f'{path}: {key} of camera {c} is not numeric ({e})') from None
        if values.ndim != 2 or values.shape[1] != 84:
            raise TDHPFormatError(f'{path}: {key} of camera {c} has shape {values.shape}, expected (frames, 84) = '
                                  '28 joints x 3')
        values = values.reshape(-1, 28, 3)
        check_camera_coords_mm(values, path, f'{key} of camera {c}')
        result.append(values)
    if len({len(v) for v in result}) != 1:
        raise TDHPFormatError(f'{path}: {key} has different frame counts per camera: {[len(v) for v in result]}')
    return result


def train_sequences(root):
    """(subject, sequence) of the training release (S1-S8, both splits) whose annot.mat is present."""
    return [(s, q) for s in SUBJECTS for q in ('Seq1', 'Seq2') if (Path(root) / s / q / 'annot.mat').exists()]


def _selection_inputs(root):
    """The files a frame selection depends on (their size and mtime go into its fingerprint)."""
    return [Path(root) / s / q / name for s, q in train_sequences(root) for name in ('annot.mat', 'camera.calibration')]


def _in_view(camera, camera_coords, width, height):
    """(..., J) bool: joints in front of the camera that project into the width x height image."""
    pixels = camera.camera_to_image(camera_coords.reshape(-1, 3)).reshape(camera_coords.shape[:-1] + (2,))
    return ((camera_coords[..., 2] > 0) & (pixels[..., 0] >= 0) & (pixels[..., 0] < width)
            & (pixels[..., 1] >= 0) & (pixels[..., 1] < height))


def train_frame_relpath(subject, sequence, camera_index, frame):
    return f'tdhp/{subject}/{sequence}/Images/video_{camera_index}/frame_{frame:06d}.jpg'


def n_usable_frames(subject, sequence, camera_index, n_annotated):
    """Frames of a training video that have both annotations and pixels: the original's per-sequence
    counts (the annot.mat of some sequences has more rows than the videos) and S6/Seq2 camera 2, which is
    shorter (3 911 frames)."""
    limit = SHORT_VIDEOS.get((subject, sequence, camera_index), N_FRAMES.get((subject, sequence), n_annotated))
    return min(n_annotated, limit)


def select_frames_stage(data_root=None):
    """tdhp: {'S/Seq/camera': [frames]} for each training camera (0-2, 4-8): every 5th frame of the video,
    those with all 17 joints in front of the camera and inside the image, then the adaptive sampler (a joint
    moved >= 100 mm since the last kept frame) on those, per camera, as the original. Also the 3DHP-full
    selection (see full_selection). Both are stored with a fingerprint of annot.mat and camera.calibration:
    a repaired or changed input is selected again."""
    from posepile.util.sampling import select_frames
    root = raw_root(data_root)
    out_path = work_dir(data_root) / 'selection.json'
    options = dict(version=SELECTION_VERSION, cameras=TRAIN_CAMERAS, step=TRAIN_FRAME_STEP,
                   threshold=SELECTION_THRESHOLD_MM)
    selection = pipeline.load_stage_json(out_path, _selection_inputs(root), options)
    if selection is None:
        selection = {}
        for subject, sequence in train_sequences(root):
            folder = root / subject / sequence
            cameras = _checked_cameras(folder)
            sizes = _train_image_sizes(folder / 'camera.calibration')
            annot3 = load_train_annotations(folder / 'annot.mat')
            for camera_index in TRAIN_CAMERAS:
                n = n_usable_frames(subject, sequence, camera_index, len(annot3[camera_index]))
                candidates = np.arange(0, n, TRAIN_FRAME_STEP)
                coords = annot3[camera_index][candidates][:, TRAIN_JOINTS_OF_28]
                candidates = candidates[_in_view(cameras[camera_index], coords, *sizes[camera_index]).all(axis=1)]
                kept = select_frames(annot3[camera_index][candidates][:, TRAIN_JOINTS_OF_28], SELECTION_THRESHOLD_MM)
                selection[f'{subject}/{sequence}/{camera_index}'] = candidates[kept].tolist()
        pipeline.save_stage_json(selection, out_path, _selection_inputs(root), options)
    full_selection(data_root)
    return selection


def _checked_cameras(folder):
    """The cameras of a training sequence; an error naming the file unless it has all 14 with sizes."""
    path = folder / 'camera.calibration'
    cameras = load_train_cameras(path)
    sizes = _train_image_sizes(path)
    if len(cameras) != N_TRAIN_CAMERAS or len(sizes) != N_TRAIN_CAMERAS:
        raise TDHPFormatError(f'{path}: {len(cameras)} cameras with {len(sizes)} size lines, expected '
                              f'{N_TRAIN_CAMERAS}')
    return cameras


def full_selection(data_root=None):
    """3DHP-full: {'S/Seq/camera': [frames]}: every frame of each of the 14 videos through the adaptive
    sampler (100 mm, buffer 1) on that camera's annot3 (camera coordinates, mm), then the frames where at
    least 28 // 3 = 9 joints project into the image in front of the camera (the original's count).
    Fingerprinted like the tdhp selection."""
    from posepile.util.sampling import select_frames
    root = raw_root(data_root)
    out_path = work_dir(data_root) / 'selection_full.json'
    options = dict(version=SELECTION_VERSION, threshold=SELECTION_THRESHOLD_MM, min_visible=FULL_MIN_VISIBLE_JOINTS)
    selection = pipeline.load_stage_json(out_path, _selection_inputs(root), options)
    if selection is not None:
        return selection
    selection = {}
    for subject, sequence in train_sequences(root):
        folder = root / subject / sequence
        cameras = _checked_cameras(folder)
        sizes = _train_image_sizes(folder / 'camera.calibration')
        for camera_index, annot3 in enumerate(load_train_annotations(folder / 'annot.mat')):
            annot3 = annot3[:n_usable_frames(subject, sequence, camera_index, len(annot3))]
            kept = select_frames(annot3, SELECTION_THRESHOLD_MM)
            visible = _in_view(cameras[camera_index], annot3[kept], *sizes[camera_index])
            enough = visible.sum(axis=1) >= FULL_MIN_VISIBLE_JOINTS
            selection[f'{subject}/{sequence}/{camera_index}'] = kept[enough].tolist()
    pipeline.save_stage_json(selection, out_path, _selection_inputs(root), options)
    return selection


# ------------------------------------------------------------------------------------------------
# Person masks from the shipped chroma-key videos (FGmasks, ChairMasks)
def mask_video_path(root, subject, sequence, camera_index, kind='FGmasks'):
    return Path(root) / subject / sequence / kind / f'video_{camera_index}.avi'


def _frames_needing_masks(data_root=None):
    """{(subject, sequence, camera): sorted frames} over the tdhp and tdhp_full selections."""
    needed = {}
    for selection in (select_frames_stage(data_root), full_selection(data_root)):
        for key, frames in selection.items():
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


def _person_task(key, frame_relpath, crop_relpath, camera, camera_coords, mask, scene_name, joint_order=None,
                 univ_camera_coords=None):
    """PersonTask of one person with the original's box: the box of ALL the (selected) projected joints x 1.05,
    not clipped to the image, so a partly visible person keeps its scale (the crop itself is limited to the
    image by make_efficient_example, as in the original). joint_order: indices into the raw 28 joints."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask
    from posepile.util import boxes
    if joint_order is not None:
        camera_coords = camera_coords[joint_order]
        univ_camera_coords = None if univ_camera_coords is None else univ_camera_coords[joint_order]
    world = camera.camera_to_world(camera_coords)
    box = boxes.expand(boxes.bb_of_points(camera.world_to_image(world)), BOX_EXPANSION)
    univ = None if univ_camera_coords is None else camera.camera_to_world(univ_camera_coords)
    example = Pose3DExample(frame_relpath, world, box, camera, mask=mask, scene_name=scene_name, univ_coords=univ)
    return PersonTask(key, example, crop_relpath)


def split_of_subject(subject):
    """0 (TRAIN) for S1-S7, 1 (VALID) for S8: the original's split of the tdhp training release."""
    return 1 if subject in VALID_SUBJECTS else 0


def make_video_tasks(data_root=None, joint_order=TRAIN_JOINTS_OF_28, crop_root='tdhp_downscaled'):
    """One VideoTask per training sequence and camera of the tdhp selection (imageSequence/video_N.avi,
    frame i = annot row i): the joint box x 1.05 and the FGmasks person mask (when the `masks` stage stored
    it). Keys '<split>/S/Seq/camera/frame' (split 0 TRAIN, 1 VALID). joint_order picks the stored joints from
    the raw 28 (default the 17 of tdhp; None keeps all 28, as MuCo's sources do); crops go under crop_root."""
    from posepile.preproc.video_stage import VideoTask
    root = raw_root(data_root)
    by_sequence = {}
    for key, frames in select_frames_stage(data_root).items():
        subject, sequence, camera_index = key.split('/')
        by_sequence.setdefault((subject, sequence), {})[int(camera_index)] = frames
    tasks = []
    for (subject, sequence), per_camera in sorted(by_sequence.items()):
        folder = root / subject / sequence
        all_cameras = load_train_cameras(folder / 'camera.calibration')
        annot3 = load_train_annotations(folder / 'annot.mat')
        univ3 = load_train_annotations(folder / 'annot.mat', 'univ_annot3')
        for camera_index, frames in sorted(per_camera.items()):
            fg_masks = load_masks(data_root, subject, sequence, camera_index)['fg'] or {}
            people = {}
            for frame in frames:
                relpath = train_frame_relpath(subject, sequence, camera_index, frame)
                people[frame] = [_person_task(
                    f'{split_of_subject(subject)}/{subject}/{sequence}/{camera_index:02d}/{frame:06d}', relpath,
                    relpath.replace('tdhp/', f'{crop_root}/', 1), all_cameras[camera_index],
                    annot3[camera_index][frame], fg_masks.get(frame), f'{subject}/{sequence}', joint_order,
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
    in MuCo's 28-joint order, FGmasks person masks; the box of all 28 joints x 1.05 even when some are out
    of view."""
    from posepile.preproc.video_stage import VideoTask
    root = raw_root(data_root)
    tasks = []
    for key, frames in sorted(full_selection(data_root).items()):
        subject, sequence, camera_index = key.split('/')
        camera_index = int(camera_index)
        folder = root / subject / sequence
        camera = load_train_cameras(folder / 'camera.calibration')[camera_index]
        annot3 = load_train_annotations(folder / 'annot.mat')[camera_index]
        univ3 = load_train_annotations(folder / 'annot.mat', 'univ_annot3')[camera_index]
        fg_masks = load_masks(data_root, subject, sequence, camera_index)['fg'] or {}
        people = {}
        for frame in frames:
            people[frame] = [_person_task(
                f'0/{subject}/{sequence}/{camera_index:02d}/{frame:06d}',
                train_frame_relpath(subject, sequence, camera_index, frame),
                full_frame_relpath(subject, sequence, camera_index, frame), camera, annot3[frame],
                fg_masks.get(frame), f'{subject}/{sequence}', FULL_JOINT_ORDER, univ_camera_coords=univ3[frame])]
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
    """Training and validation crops (S1-S8), one pass per video, with the original's 3DHP colour correction
    (improc.white_balance_3dhp). With a detector (--detector or $POSEPILE_DETECTOR) boxes follow 3DHP's rule:
    the hull of the most confident detection and the joint box, when that hull still overlaps the joint box
    with IoU > 0.5; else the joint box. Masks: the FGmasks person masks (run `masks` first)."""
    detector_spec = pipeline.configured_detector(detector_spec)
    pipeline.dataset_video_stage(NAME, make_video_tasks(data_root), shard, n_workers, data_root,
                                 subdir='crops_train', box_rule=_box_rule(detector_spec), detector_spec=detector_spec,
                                 skip_broken=skip_broken, keep_frames=keep_frames, image_adjustments_3dhp=True)


@pipeline.cli_options(pipeline.DETECTOR_OPTION, pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION)
def full_video_stage(shard=None, n_workers=None, detector_spec=None, skip_broken=None, keep_frames=False,
                     data_root=None):
    """3DHP-full crops (14 cameras, every frame through the sampler), one pass per video; colour correction,
    boxes and masks as in the `video` stage."""
    detector_spec = pipeline.configured_detector(detector_spec)
    pipeline.dataset_video_stage(NAME, make_full_video_tasks(data_root), shard, n_workers, data_root,
                                 subdir='crops_full', box_rule=_box_rule(detector_spec), detector_spec=detector_spec,
                                 skip_broken=skip_broken, keep_frames=keep_frames, image_adjustments_3dhp=True)


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
    try:
        lines = open(path, encoding='utf-8').read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise TDHPFormatError(f'{path}: cannot read ({e})') from e
    for line_number, line in enumerate(lines, start=1):
        parts = line.split()
        if parts and parts[0] == 'size':
            try:
                width, height = (int(float(x)) for x in parts[1:3])
            except ValueError:
                raise TDHPFormatError(f'{path}:{line_number}: size is not two numbers') from None
            if not (0 < width < 100_000 and 0 < height < 100_000):
                raise TDHPFormatError(f'{path}:{line_number}: implausible image size {width} x {height}')
            sizes.append((width, height))
    return sizes


@pipeline.cli_options(('--color-correct-test', dict(
    action='store_true', help="also apply the training crops' 3DHP colour correction to the test crops "
                              "(the original left the test crops uncorrected)")))
def test_crop_stage(shard=None, n_workers=None, color_correct_test=False, data_root=None):
    """Crops of the test set images, uncorrected as in the original; --color-correct-test applies the training
    crops' colour correction (improc.white_balance_3dhp) to them too."""
    tasks = make_test_crop_tasks(data_root)
    if tasks:
        pipeline.dataset_crop_stage(NAME, tasks, shard, n_workers, data_root, subdir='crops_test',
                                    image_adjustments_3dhp=color_correct_test)
    else:
        logger.info('no test set under %s', raw_root(data_root))


def make_dataset(data_root=None):
    """MPI-INF-3DHP as the original's 3dhp.pkl: 17 joints (TRAIN_JOINT_NAMES); TRAIN = S1-S7 and VALID = S8 of
    the training release (cameras 0-2, 4-8, every 5th frame with all 17 joints in view, then the adaptive
    100 mm sampler per camera; colour-corrected crops); TEST = the valid frames of TS1-TS6 (uncorrected)."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.preproc.pipeline import load_crop_results
    splits = {0: [], 1: [], 2: []}
    crops_train = work_dir(data_root) / 'crops_train'
    if crops_train.exists():
        for key, example in load_crop_results(crops_train):
            splits[int(key.split('/')[0])].append(example)
    crops_test = work_dir(data_root) / 'crops_test'
    if crops_test.exists():
        for _, example in load_crop_results(crops_test):
            # the test files' joint order (..., pelv, spin, head) -> the loaders' (..., spin, head, pelv)
            example.world_coords = np.asarray(example.world_coords)[TEST_TO_TRAIN_ORDER]
            if example.univ_coords is not None:
                example.univ_coords = np.asarray(example.univ_coords)[TEST_TO_TRAIN_ORDER]
            splits[2].append(example)
    if not any(splits.values()):
        raise FileNotFoundError(f'{work_dir(data_root)}: no crops; run the video and crop-test stages of '
                                'posepile/ds/tdhp/main.sh')
    return Pose3DDataset(JOINT_INFOS['make_dataset'], splits[0], splits[1], splits[2])


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
