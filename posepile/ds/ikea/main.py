"""IKEA ASM (IKEA assembly): annotated frames of the Kinect colour videos with 3D body poses.

Raw layout under $DATA_ROOT/ikea (as the original PosePile read it):
    Calibration/camera_parameters.pkl     {calibration id: {camera: {'K': 3x3 px, 'R': 3x3, ...}}}
                                          (no translation is given: each camera sits at the world origin)
    <furniture>/<recording>/<camera>/images/scan_video.avi     1920x1080 colour video
    <furniture>/<recording>/<camera>/pose3d/<frame>.json       {'pose_keypoints_3d': [x, y, z, c] x 17}
                                          camera coordinates in cm (a coordinate of 0 = missing), COCO-17 order;
                                          <frame> (digits) is the index of the annotated video frame
The calibration id of a recording is the 4th '_'-separated token of its folder name
(e.g. 0001_black_table_02_01_2019_08_16_14_00 -> '02'); cameras are dev1, dev2, dev3. Recordings in folders
named 'special_test' are not used.

Per camera recording, in the order of the pose files: adaptive selection on the camera-space pose (100 mm,
buffer 1, check_validity: the original's AdaptivePoseSampler(100, check_validity=True)), then frames with
fewer than 4 joints in front of the camera and inside the 1920x1080 image are dropped. The world frame is the
camera's rotated frame (world = R^T cam, mm), world up (0, -1, 0) as in the original. Box: projected joints'
box x1.2; with a detector (POSEPILE_DETECTOR / --detector) the detection of best IoU >= 0.3 (the original
dropped frames whose best detection had IoU < 0.3 and kept the joint box only when a frame had no detection
at all; here the joint box is the fallback in both cases). Every example is TRAIN (the original used none
as test).
"""
import logging
import pickle
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

NAME = 'ikea'
# COCO-17 names and edges exactly as the original (mixes match joints by name)
JOINT_NAMES = 'nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank'
JOINT_EDGES = 'rank-rkne-rhip-lhip,rhip-rsho-relb-rwri,rsho-lsho,rear-reye-nose'
N_JOINTS = 17
IMAGE_SIZE = (1920, 1080)  # width, height (px)
MIN_JOINTS_IN_IMAGE = 4
SELECTION_THRESHOLD_MM = 100
BOX_EXPANSION = 1.2
MIN_DETECTION_IOU = 0.3
CM_TO_MM = 10
WORLD_UP = (0, -1, 0)
MAX_ABS_COORD_CM = 2000  # joints are within 20 m of the camera: larger values are not cm
SKIPPED_RECORDING = 'special_test'

logger = logging.getLogger(__name__)


class IkeaFormatError(InputError):
    """A raw IKEA ASM file is malformed (the message names the file)."""


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


# ------------------------------------------------------------------------------------------------
# Readers
def load_pose(json_path):
    """float32 (17, 3) camera coordinates in mm from a pose3d/<frame>.json (cm in the file, zeros -> NaN)."""
    from posepile.util import fileio
    json_path = Path(json_path)
    content = fileio.load_json(json_path, IkeaFormatError)
    try:
        values = np.asarray(content['pose_keypoints_3d'], np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise IkeaFormatError(f"{json_path}: 'pose_keypoints_3d' is missing or not numeric ({e!r})") from None
    if values.size != N_JOINTS * 4:
        raise IkeaFormatError(f'{json_path}: pose_keypoints_3d has {values.size} values, expected '
                              f'{N_JOINTS} x 4 = {N_JOINTS * 4}')
    pose = values.reshape(N_JOINTS, 4)[:, :3]
    if not np.all(np.isfinite(pose)):
        raise IkeaFormatError(f'{json_path}: pose_keypoints_3d holds non-finite values')
    if np.max(np.abs(pose)) > MAX_ABS_COORD_CM:
        raise IkeaFormatError(f'{json_path}: pose_keypoints_3d reaches {np.max(np.abs(pose)):.0f}: not cm')
    pose = pose * CM_TO_MM
    pose[pose == 0] = np.nan
    return pose.astype(np.float32)


def load_cameras(pkl_path):
    """{calibration id: {camera name: Camera}} from Calibration/camera_parameters.pkl (K and R only)."""
    from posepile.util.camera import Camera
    pkl_path = Path(pkl_path)
    try:
        with open(pkl_path, 'rb') as f:
            content = pickle.load(f)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a malformed file
        raise IkeaFormatError(f'{pkl_path}: cannot unpickle ({e!r})') from None
    if not isinstance(content, dict) or not content:
        raise IkeaFormatError(f'{pkl_path}: expected {{calibration id: {{camera: {{K, R}}}}}}')
    cameras = {}
    for calib_id, per_camera in content.items():
        if not isinstance(per_camera, dict):
            raise IkeaFormatError(f'{pkl_path}: entry {calib_id!r} is not a {{camera: {{K, R}}}} dict')
        cameras[str(calib_id)] = {str(name): _camera(pkl_path, f'{calib_id}/{name}', params, Camera)
                                  for name, params in per_camera.items()}
    return cameras


def _camera(pkl_path, where, params, camera_class):
    try:
        intrinsics = np.asarray(params['K'], np.float64).reshape(3, 3)
        rotation = np.asarray(params['R'], np.float64).reshape(3, 3)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise IkeaFormatError(f'{pkl_path}: {where} lacks a 3x3 K or R ({e!r})') from None
    if not (np.all(np.isfinite(intrinsics)) and np.all(np.isfinite(rotation))):
        raise IkeaFormatError(f'{pkl_path}: {where} holds non-finite values')
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3) or np.linalg.det(rotation) < 0:
        raise IkeaFormatError(f'{pkl_path}: {where}/R is not a rotation matrix')
    if intrinsics[0, 0] <= 0 or intrinsics[1, 1] <= 0 or not np.allclose(intrinsics[2], [0, 0, 1]):
        raise IkeaFormatError(f'{pkl_path}: {where}/K is not an intrinsic matrix')
    return camera_class(intrinsic_matrix=intrinsics, rot_world_to_cam=rotation, world_up=WORLD_UP)


def calibration_id(recording_name):
    """The calibration id of a recording folder: its 4th '_'-separated token."""
    parts = recording_name.split('_')
    if len(parts) < 4:
        raise IkeaFormatError(f'{recording_name}: recording folder name has no calibration id (4th token)')
    return parts[3]


def find_recordings(root):
    """[(furniture, recording, camera)] of every <f>/<r>/<c>/pose3d folder, sorted; 'special_test' skipped."""
    found = []
    for pose_dir in sorted(Path(root).glob('*/*/*/pose3d')):
        camera_dir = pose_dir.parent
        recording_dir = camera_dir.parent
        if recording_dir.name == SKIPPED_RECORDING:
            logger.info('%s: skipped (special_test, as the original)', recording_dir)
            continue
        found.append((recording_dir.parent.name, recording_dir.name, camera_dir.name))
    return found


def pose_files(camera_dir):
    """{frame index: pose3d json path} of one camera recording."""
    result = {}
    for path in Path(camera_dir, 'pose3d').glob('*.json'):
        if not re.fullmatch(r'\d+', path.stem):
            raise IkeaFormatError(f'{path}: pose file name is not a frame index')
        result[int(path.stem)] = path
    return dict(sorted(result.items()))


def n_joints_in_image(camera_mm, intrinsics):
    """How many joints are in front of the camera and project inside the 1920x1080 image."""
    with np.errstate(invalid='ignore', divide='ignore'):
        z = camera_mm[:, 2]
        uv = (camera_mm[:, :2] / z[:, None]) @ intrinsics[:2, :2].T + intrinsics[:2, 2]
        inside = ((z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < IMAGE_SIZE[0]) &
                  (uv[:, 1] >= 0) & (uv[:, 1] < IMAGE_SIZE[1]))
    return int(np.count_nonzero(inside))


def select_recording_frames(poses_cam_mm, intrinsics):
    """Indices into the recording's poses kept by the original's rule: selection (100 mm, check_validity,
    buffer 1) over all annotated frames, then >= 4 joints inside the image."""
    from posepile.util.sampling import select_frames
    if len(poses_cam_mm) == 0:
        return []
    kept = select_frames(np.asarray(poses_cam_mm), SELECTION_THRESHOLD_MM, 1, check_validity=True)
    return [int(i) for i in kept if n_joints_in_image(poses_cam_mm[i], intrinsics) >= MIN_JOINTS_IN_IMAGE]


# ------------------------------------------------------------------------------------------------
# Stages
def _calibration_path(data_root):
    path = raw_root(data_root) / 'Calibration' / 'camera_parameters.pkl'
    if not path.exists():
        raise FileNotFoundError(f'{path} not found: extract the IKEA ASM calibration (main.sh step 1)')
    return path


def _camera_for(cameras, calib_path, recording, camera_name):
    calib_id = calibration_id(recording)
    try:
        return cameras[calib_id][camera_name]
    except KeyError:
        raise IkeaFormatError(f'{calib_path}: no camera {calib_id}/{camera_name} (for recording '
                              f'{recording})') from None


def select_stage(data_root=None):
    """Frame selection per camera recording; writes posepile_work/selection.json
    {'<furniture>/<recording>/<camera>': [frame indices]}."""
    from tqdm import tqdm

    from posepile.util import fileio
    out_path = work_dir(data_root) / 'selection.json'
    if out_path.exists():
        return fileio.load_json(out_path)
    root = raw_root(data_root)
    calib_path = _calibration_path(data_root)
    cameras = load_cameras(calib_path)
    selection = {}
    for furniture, recording, camera_name in tqdm(find_recordings(root), desc='ikea select'):
        camera = _camera_for(cameras, calib_path, recording, camera_name)
        files = pose_files(root / furniture / recording / camera_name)
        frames = list(files)
        poses = np.stack([load_pose(p) for p in files.values()]) if files else np.zeros((0, N_JOINTS, 3))
        kept = select_recording_frames(poses, camera.intrinsic_matrix)
        selection[f'{furniture}/{recording}/{camera_name}'] = [frames[i] for i in kept]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fileio.save_json(selection, out_path)
    logger.info('ikea: %d frames selected in %d recordings', sum(map(len, selection.values())), len(selection))
    return selection


def gt_box(camera, world_mm):
    """The projected joints' box x1.2 ([x, y, w, h] px)."""
    from posepile.util import boxes
    return boxes.expand(boxes.bb_of_points(camera.world_to_image(world_mm)), BOX_EXPANSION)


def make_video_tasks(data_root=None):
    """One VideoTask per camera recording (scan_video.avi): {frame: [PersonTask]}."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    selection = select_stage(data_root)
    root = raw_root(data_root)
    calib_path = _calibration_path(data_root)
    cameras = load_cameras(calib_path)
    tasks = []
    for seq_key, frames in sorted(selection.items()):
        if not frames:
            continue
        furniture, recording, camera_name = seq_key.split('/')
        camera = _camera_for(cameras, calib_path, recording, camera_name)
        video_relpath = f'{NAME}/{seq_key}/images/scan_video.avi'
        files = pose_files(root / seq_key)
        frame_tasks = {}
        for frame in frames:
            world = camera.camera_to_world(load_pose(files[frame]))
            example = Pose3DExample(f'{video_relpath}#{frame}', world.astype(np.float32), gt_box(camera, world),
                                    camera, activity_name=furniture, scene_name=recording)
            frame_tasks[frame] = [PersonTask(f'0/{seq_key}/{frame:06d}', example,
                                             f'{NAME}_downscaled/{seq_key}/images/{frame:06d}.jpg')]
        tasks.append(VideoTask(seq_key, video_relpath, frame_tasks,
                               frame_relpath_pattern=f'{NAME}/{seq_key}/images/{{:06d}}.jpg'))
    return tasks


def box_rule(detector_spec):
    """GT box without a detector; with one, the detection of best IoU >= 0.3 (else the GT box)."""
    from posepile.preproc.video_stage import BoxRule
    return BoxRule('best_iou', MIN_DETECTION_IOU) if detector_spec else BoxRule('gt')


@pipeline.cli_options(pipeline.DETECTOR_OPTION, pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION)
def video_stage(detector_spec=None, shard=None, n_workers=None, skip_broken=None, keep_frames=False,
                data_root=None):
    """One pass per video: crops of the selected annotated frames (boxes by the detector when one is given)."""
    from posepile.joint_info import JointInfo
    detector_spec = pipeline.configured_detector(detector_spec)
    pipeline.dataset_video_stage(
        NAME, make_video_tasks(data_root), shard, n_workers, data_root, detector_spec=detector_spec,
        box_rule=box_rule(detector_spec), skip_broken=skip_broken, keep_frames=keep_frames,
        joint_edges=JointInfo(JOINT_NAMES, JOINT_EDGES).stick_figure_edges)


def make_dataset(data_root=None):
    """The IKEA ASM dataset: all TRAIN, 17 COCO joints, mm."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0])


def assemble_stage(data_root=None):
    """The dataset for get_dataset('ikea')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.ikea.main', 'IKEA ASM stages', {
        'select': select_stage, 'video': video_stage, 'assemble': assemble_stage})


if __name__ == '__main__':
    main()
