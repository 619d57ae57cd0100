"""MPI-INF-3DHP: camera calibration readers (test-set .calib and training camera.calibration)."""
import re

import numpy as np

from posepile.util.camera import Camera

# Image sizes (width, height) by sensor aspect ratio: the studio test camera and the outdoor GoPro.
TEST_IMAGE_SIZES = {'square': (2048, 2048), 'wide': (1920, 1080)}


class TDHPFormatError(ValueError):
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
