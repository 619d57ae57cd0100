"""HUMAN4D: readers of the colour frames, global 3D poses, offsets and RealSense calibration.

Raw layout under $DATA_ROOT/human4d:
    S<k>/device_repository.json   [{'Device': <camera name>, 'Type', 'Serial', 'Firmware', 'Date',
                                  'Color Intrinsics': [{'1280x720': 9 numbers (3x3 row-major, px)},
                                  {'1920x1080': ...}, {'640x480': ...}], 'Depth Intrinsics': [{'1280x720': ...},
                                  {'640x480': ...}], 'Color Depth Rotation': 9 numbers (3x3 row-major),
                                  'Color Depth Translation': 3 numbers (metres)}, ...]
    S<k>/pose/<camera>.extrinsics text, 4 rows x 3 numbers: the pose of the camera's DEPTH sensor in the world,
                                  X_world = A X_depth + c with A = rows 1-3 and c = row 4 (mm). Cameras
                                  without this file are not used.
    S<k>/offsets.txt              lines '<sequence timestamp>\\t<offset1>\\t<offset2>': colour frame i of a
                                  sequence has the pose gposes3d/<i - offset1>.npy
    S<k>/<timestamp>/Dump/color/<i>_<camera>_color_<t>.png   colour frames, 1280x720 as stored
    S<k>/<timestamp>/Dump/gposes3d/<n>.npy                   (1, 33, 3) world joints, mm

The colour camera, as the official toolkit (tofis/human4d_dataset, h4d_rgbd_visualization_from_3d.py) projects
the poses: X_depth = A^-1 (X_world - c); X_color = R^-1 (X_depth - t) with R = 'Color Depth Rotation' and
t = 'Color Depth Translation' x 1000 (mm); then the 1280x720 'Color Intrinsics'. (The original PosePile took the
depth sensor's pose as the colour camera's, and the pose gposes3d/<i - offset1 + 1>.npy.)

The frames are stored ROTATED: the people lie on their side, and the upright view is the stored frame turned
90 deg clockwise (the original detects people after `--rot=270`, i.e. a 270 deg counter-clockwise turn). The
calibrated Camera describes the stored frame (projected joints land on the stored pixels). Detection runs
on the upright view and its boxes are mapped back to stored-frame pixels. Each camera's `world_up` is the
world direction of the stored frame's -x axis (up in the upright view), so the perspective crops, which
are made upright with respect to world_up, come out upright.
"""
import logging
import re
from pathlib import Path

import numpy as np
from posepile.util.errors import InputError

JOINT_NAMES_WITH_DELETED = (
    'pelv,spin0,spin1,spin2,spin3,neck,neck2,head,htop,neck3,rsho,relb,rwri,rpinkie,rthu,neck4_del,lsho,lelb,'
    'lwri,lpinkie,lthu,rhip,rkne,rank,rfoo,rtoe,rtoe2,lhip,lkne,lank,lfoo,ltoe,ltoe2')
JOINT_NAMES = ','.join(n for n in JOINT_NAMES_WITH_DELETED.split(',') if not n.endswith('_del'))
JOINT_EDGES = ('rthu-rpinkie-rwri-relb-rsho-neck3-spin3-neck-neck2-head-htop,'
               'spin3-spin2-spin1-spin0-pelv-rhip-rkne-rank-rfoo-rtoe-rtoe2')
N_JOINTS_STORED = 33
INTRINSICS_KEY = '1280x720'
COLOR_DEPTH_MAX_DISTANCE_M = 0.2  # the D415's colour sensor sits ~15 mm from the depth sensor
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 100  # AdaptivePoseSampler2(100, True, True, 100) per camera name
BOX_EXPANSION = 1.2
MIN_DETECTION_IOU = 0.5
MIN_BOX_MAX_SIDE_PX = 30
UPRIGHT_NP_ROT90_K = 3  # np.rot90(stored, k=3): 270 deg counter-clockwise = 90 deg clockwise -> upright
_FRAME_NAME = re.compile(r'(\d+)_([^_/]+)_color_[^/]*\.png')

logger = logging.getLogger(__name__)


class Human4DFormatError(InputError):
    pass


def kept_joint_indices():
    return [i for i, n in enumerate(JOINT_NAMES_WITH_DELETED.split(',')) if not n.endswith('_del')]


def load_device_repository(path):
    """{camera name: dict(color_intrinsics (3, 3) px of the 1280x720 colour stream, color_depth_rotation (3, 3),
    color_depth_translation_mm (3,))} from device_repository.json."""
    path = Path(path)
    from posepile.util import fileio
    devices = fileio.load_json(path, Human4DFormatError)
    if not isinstance(devices, list):
        raise Human4DFormatError(f'{path}: expected a list of devices')
    result = {}
    for i, device in enumerate(devices):
        try:
            name = str(device['Device'])
            matrix = [entry[INTRINSICS_KEY] for entry in device['Color Intrinsics'] if INTRINSICS_KEY in entry][0]
            matrix = np.asarray(matrix, np.float64).reshape(3, 3)
            rotation = np.asarray(device['Color Depth Rotation'], np.float64).reshape(3, 3)
            translation_m = np.asarray(device['Color Depth Translation'], np.float64).reshape(3)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise Human4DFormatError(
                f"{path}: device {i} lacks 'Device', a 'Color Intrinsics' '{INTRINSICS_KEY}' 3x3 matrix, a 'Color "
                f"Depth Rotation' 3x3 or a 'Color Depth Translation' 3-vector ({e!r})") from None
        if not np.all(np.isfinite(matrix)) or not matrix[0, 0] > 0 or not matrix[1, 1] > 0:
            raise Human4DFormatError(f'{path}: device {name} has an invalid intrinsic matrix {matrix.tolist()}')
        if not np.all(np.isfinite(rotation)) or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3):
            raise Human4DFormatError(f"{path}: device {name}: 'Color Depth Rotation' is not a rotation matrix")
        if not np.all(np.isfinite(translation_m)) or np.linalg.norm(translation_m) > COLOR_DEPTH_MAX_DISTANCE_M:
            raise Human4DFormatError(
                f"{path}: device {name}: 'Color Depth Translation' {translation_m.tolist()} is not a baseline of "
                f'a few cm in metres')
        result[name] = dict(color_intrinsics=matrix, color_depth_rotation=rotation,
                            color_depth_translation_mm=translation_m * 1000)
    return result


def load_extrinsics(path):
    """(world-to-depth-sensor rotation (3, 3), depth sensor position (3,) mm) from a .extrinsics file:
    X_depth = rotation (X_world - position), the rotation being the inverse of rows 1-3 (as the toolkit)."""
    path = Path(path)
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as e:
        raise Human4DFormatError(f'{path}: cannot read ({e})') from None
    if values.shape != (4, 3) or not np.all(np.isfinite(values)):
        raise Human4DFormatError(f'{path}: expected 4 rows of 3 finite numbers, got shape {values.shape}')
    if not np.allclose(values[:3] @ values[:3].T, np.eye(3), atol=1e-2):
        raise Human4DFormatError(f'{path}: rows 1-3 are not a rotation matrix')
    return np.linalg.inv(values[:3]), values[3]


def make_camera(device, depth_rotation, depth_position_mm):
    """Camera of the stored (rotated) colour frame: world -> depth sensor (the .extrinsics) -> colour sensor
    (X_color = R^-1 (X_depth - t), R, t from the device repository), colour intrinsics. world_up = the stored
    frame's -x axis in the world."""
    from posepile.util.camera import Camera
    world_to_depth = np.eye(4)
    world_to_depth[:3, :3] = depth_rotation
    world_to_depth[:3, 3] = -np.asarray(depth_rotation) @ np.asarray(depth_position_mm, np.float64)
    depth_to_color = np.eye(4)
    depth_to_color[:3, :3] = np.linalg.inv(device['color_depth_rotation'])
    depth_to_color[:3, 3] = -depth_to_color[:3, :3] @ device['color_depth_translation_mm']
    world_to_color = depth_to_color @ world_to_depth
    return Camera(extrinsic_matrix=world_to_color, intrinsic_matrix=device['color_intrinsics'],
                  world_up=-world_to_color[0, :3])


def load_cameras(subject_dir):
    """{camera name: colour Camera} of the devices of one subject folder that have a pose/<name>.extrinsics
    file."""
    subject_dir = Path(subject_dir)
    cameras = {}
    for name, device in load_device_repository(subject_dir / 'device_repository.json').items():
        path = subject_dir / 'pose' / f'{name}.extrinsics'
        if path.exists():
            cameras[name] = make_camera(device, *load_extrinsics(path))
    return cameras


def load_offsets(path):
    """{sequence timestamp: offset1} from offsets.txt (tab-separated name, offset1, offset2)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding='utf-8').splitlines()
    except OSError as e:
        raise Human4DFormatError(f'{path}: cannot read ({e})') from None
    result = {}
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        parts = line.rstrip('\r\n').split('\t')
        try:
            if len(parts) != 3:
                raise ValueError(f'{len(parts)} tab-separated fields')
            result[parts[0]] = int(parts[1])
        except ValueError as e:
            raise Human4DFormatError(f'{path}: line {i + 1} is not "<name>\\t<offset1>\\t<offset2>" ({e})') from None
    return result


def load_pose(path):
    """(32, 3) world joints, mm, of a gposes3d/<n>.npy file (the '_del' joint dropped)."""
    path = Path(path)
    try:
        joints = np.load(path)
    except (OSError, ValueError) as e:
        raise Human4DFormatError(f'{path}: cannot read ({e})') from None
    if joints.shape not in ((1, N_JOINTS_STORED, 3), (N_JOINTS_STORED, 3)):
        raise Human4DFormatError(f'{path}: shape {joints.shape}, expected (1, {N_JOINTS_STORED}, 3)')
    joints = joints.reshape(N_JOINTS_STORED, 3).astype(np.float64)[kept_joint_indices()]
    if not np.all(np.isfinite(joints)):
        raise Human4DFormatError(f'{path}: non-finite joint coordinates')
    extent = np.max(np.ptp(joints, axis=0))
    if not 200 <= extent <= 3000:
        raise Human4DFormatError(f'{path}: the joints span {extent:.4g} units, implausible for mm')
    return joints


def parse_frame_name(name):
    """(frame index, camera name) of '<i>_<camera>_color_<t>.png'; None for other names."""
    match = _FRAME_NAME.fullmatch(name)
    return (int(match.group(1)), match.group(2)) if match else None


def natural_key(text):
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', str(text))]


def stored_to_upright_box(box, stored_shape):
    """[x, y, w, h] in the stored frame (H, W) -> the same box in the upright view (np.rot90 k=3)."""
    x, y, w, h = box[:4]
    return np.array([stored_shape[0] - y - h, x, h, w], np.float64)


def upright_to_stored_boxes(dets, stored_shape):
    """(N, 5) [x, y, w, h, score] detected in the upright view -> stored-frame pixels (score unchanged)."""
    dets = np.asarray(dets, np.float32).reshape(-1, 5)
    x, y, w, h, score = dets.T
    return np.stack([y, stored_shape[0] - x - w, h, w, score], axis=1).astype(np.float32)


def detect_in_stored_frame(detector, stored_rgb):
    """Detections (N, 5) in stored-frame pixels, found in the upright view of the frame."""
    upright = np.ascontiguousarray(np.rot90(stored_rgb, k=UPRIGHT_NP_ROT90_K))
    return upright_to_stored_boxes(detector.detect(upright), stored_rgb.shape)


def gt_box(camera, joints_mm):
    """The projected joints' box scaled by 1.2 about its centre (stored-frame px)."""
    from posepile.util import boxes
    return boxes.expand(boxes.bb_of_points(camera.world_to_image(joints_mm)), BOX_EXPANSION)


def choose_box(camera, joints_mm, detections=None):
    """The stored box or None (frame dropped): the GT box without a detector or when the frame has no
    detection; else the detection of best IoU with the GT box, dropped if that IoU < 0.5 (as the original).
    Boxes whose longer side is under 30 px are dropped too."""
    from posepile.util import boxes
    box = gt_box(camera, joints_mm)
    dets = None if detections is None else np.asarray(detections, np.float32).reshape(-1, 5)
    if dets is not None and len(dets):
        ious = boxes.iou_matrix(box[np.newaxis], dets[:, :4])[0]
        best = int(np.argmax(ious))
        if ious[best] < MIN_DETECTION_IOU:
            return None
        box = dets[best, :4]
    if max(box[2], box[3]) < MIN_BOX_MAX_SIDE_PX:
        return None
    return np.asarray(box, np.float32)


# ------------------------------------------------------------------------------------------------
# Frames, poses and the selection
def list_frames(root):
    """[(relpath, subject, timestamp, frame index, camera name)] of the colour frames, naturally sorted."""
    root = Path(root)
    frames = []
    for path in root.glob('S*/*/Dump/color/*.png'):
        parsed = parse_frame_name(path.name)
        if parsed is None:
            continue
        relpath = path.relative_to(root).as_posix()
        subject, timestamp = relpath.split('/')[:2]
        frames.append((relpath, subject, timestamp, *parsed))
    return sorted(frames, key=lambda frame: natural_key(frame[0]))


def frames_with_poses(root):
    """[dict(relpath, subject, camera_name, joints_mm (32, 3))] of the frames that have a pose and a
    calibrated camera, naturally sorted. Frames before the pose stream starts, frames whose pose file is
    missing and frames of uncalibrated cameras are left out (counted in the log)."""
    root = Path(root)
    cameras, offsets, result = {}, {}, []
    n_before, n_missing, n_uncalibrated = 0, 0, 0
    for relpath, subject, timestamp, i_frame, camera_name in list_frames(root):
        if subject not in cameras:
            cameras[subject] = load_cameras(root / subject)
            offsets[subject] = load_offsets(root / subject / 'offsets.txt')
        if camera_name not in cameras[subject]:
            n_uncalibrated += 1
            continue
        if timestamp not in offsets[subject]:
            raise Human4DFormatError(f'{root / subject / "offsets.txt"}: no line for sequence {timestamp}')
        i_pose = i_frame - offsets[subject][timestamp]  # as the toolkit (the original: - (offset1 - 1))
        pose_path = root / subject / timestamp / 'Dump' / 'gposes3d' / f'{i_pose}.npy'
        if i_pose < 0:
            n_before += 1
            continue
        if not pose_path.exists():
            n_missing += 1
            continue
        result.append(dict(relpath=relpath, subject=subject, camera_name=camera_name,
                           joints_mm=load_pose(pose_path)))
    logger.info('%d frames with a pose; left out: %d before the pose stream, %d without a pose file, '
                '%d of uncalibrated cameras', len(result), n_before, n_missing, n_uncalibrated)
    return result, cameras


def select_frames_per_camera(frames):
    """Indices into `frames` kept by adaptive selection per camera name (across subjects and sequences, in
    natural path order, as the original): v2, 100 mm, buffer 100, validity checked, NaN unchanged."""
    from posepile.util.sampling import select_frames
    by_camera = {}
    for index, frame in enumerate(frames):
        by_camera.setdefault(frame['camera_name'], []).append(index)
    kept = []
    for indices in by_camera.values():
        poses = np.stack([frames[i]['joints_mm'] for i in indices])
        kept += [indices[k] for k in select_frames(poses, SELECTION_THRESHOLD_MM, SELECTION_BUFFER,
                                                   check_validity=True, nan_unchanged=True)]
    return sorted(kept)


# ------------------------------------------------------------------------------------------------
# The recipe's stages
from posepile.preproc import pipeline  # noqa: E402

NAME = 'human4d'


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def selection_inputs(root):
    """The files the selection reads: device repositories, offsets, extrinsics and the pose files."""
    root = Path(root)
    return [path for pattern in ('S*/device_repository.json', 'S*/offsets.txt', 'S*/pose/*.extrinsics',
                                 'S*/*/Dump/gposes3d/*.npy') for path in sorted(root.glob(pattern))]


def select_stage(data_root=None):
    """Poses of the frames, adaptive selection per camera -> posepile_work/selected.pkl (redone when the poses,
    calibrations or the list of colour frames change)."""
    from posepile.util import fileio
    out_path = work_dir(data_root) / 'selected.pkl'
    root = raw_root(data_root)
    frame_names = [frame[0] for frame in list_frames(root)]
    inputs, inputs_record = selection_inputs(root), out_path.with_suffix('.inputs.json')
    options = [SELECTION_THRESHOLD_MM, SELECTION_BUFFER, frame_names]
    if out_path.exists() and pipeline.load_stage_json(inputs_record, inputs, options) is not None:
        return fileio.load_pickle(out_path)
    if not any(root.glob('S*/device_repository.json')):
        raise FileNotFoundError(f'no S*/device_repository.json under {root}: download HUMAN4D first (main.sh)')
    frames, cameras = frames_with_poses(root)
    selected = [dict(frames[i], camera=cameras[frames[i]['subject']][frames[i]['camera_name']])
                for i in select_frames_per_camera(frames)]
    logger.info('%d of %d frames selected', len(selected), len(frames))
    fileio.save_pickle(selected, out_path)
    pipeline.save_stage_json(out_path.name, inputs_record, inputs, options)
    return selected


@pipeline.cli_options(('--detector', dict(dest='detector_spec', default='hog')))
def detect_stage(detector_spec='hog', data_root=None):
    """Optional person detection on the selected frames, in their upright view (boxes mapped back to the
    stored frames) -> posepile_work/detections.pkl {relpath: (N, 5)}."""
    from tqdm import tqdm

    from posepile.preproc.detection import make_detector
    from posepile.util import fileio, improc
    out_path = work_dir(data_root) / 'detections.pkl'
    if out_path.exists():
        return fileio.load_pickle(out_path)
    detector = make_detector(detector_spec)
    results = {}
    for frame in tqdm(select_stage(data_root), desc='human4d detection', mininterval=2, disable=None):
        stored = improc.imread_rgb(raw_root(data_root) / frame['relpath'])
        results[frame['relpath']] = detect_in_stored_frame(detector, stored)
    fileio.save_pickle(results, out_path)
    return results


def make_crop_tasks(data_root=None):
    from posepile.datasets3d import Pose3DExample
    from posepile.util import fileio
    detections_path = work_dir(data_root) / 'detections.pkl'
    detections = fileio.load_pickle(detections_path) if detections_path.exists() else None
    tasks = []
    for frame in select_stage(data_root):
        dets = None if detections is None else detections[frame['relpath']]
        box = choose_box(frame['camera'], frame['joints_mm'], dets)
        if box is None:
            continue
        example = Pose3DExample(f'{NAME}/{frame["relpath"]}', frame['joints_mm'], box, frame['camera'])
        new_relpath = f'{NAME}_downscaled/{Path(frame["relpath"]).with_suffix(".jpg").as_posix()}'
        tasks.append((f'0/{frame["relpath"]}', example, new_relpath))
    logger.info('%d crop tasks (detections: %s)', len(tasks), 'yes' if detections is not None else 'no')
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Upright perspective crops of the selected frames."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def make_dataset(data_root=None):
    """HUMAN4D (32 joints, mm), all TRAIN."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), pipeline.examples_by_split(NAME, data_root)[0])


def assemble(data_root=None):
    """The dataset for get_dataset('human4d')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.human4d.main', 'HUMAN4D stages', {
        'select': select_stage,
        'detect': detect_stage,
        'crop': crop_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
