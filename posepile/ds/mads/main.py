"""MADS (Martial Arts, Dancing and Sports): readers of the MATLAB files and the recipe's stages.

Raw layout under $DATA_ROOT/mads (as the multi-view part of the release, MADS_multiview.zip, extracts):
    multi_view_data/<action>/<sequence>_C<c>.avi    one video per camera c (0, 1, 2)
    multi_view_data/<action>/<sequence>_GT.mat      GTpose2: 1 x N cell, cell i = the world joints (J x 3, mm,
                                                    world y up) of video frame i; J = 19, or 15 in some
                                                    sequences; a frame without ground truth holds NaNs
                                                    (or an empty matrix)
    multi_view_data/<action>/Calib_Cam<c>.mat       Bouguet's calibration toolbox: om_ext (axis-angle, 3x1),
                                                    T_ext (3x1, mm; X_cam = R(om_ext) X_world + T_ext),
                                                    KK (3x3 px), kc (5x1: k1 k2 p1 p2 k3, OpenCV order)
Frame alignment: cell i of GTpose2 belongs to the i-th decoded frame of each video (the original zipped the
decoded frames with the cells); frames beyond the shorter of the two are not used.

Selection (the original's settings): per video, the frames with at least one valid joint, then adaptive
selection v1 (100 mm, check_validity). Box: the projected joints' box x1.2; with a detector
(POSEPILE_DETECTOR / --detector) the detection of best IoU with it (the original had no IoU threshold),
the GT box when the frame has no detection. 15-joint sequences are padded to the 19 joints with NaN.
Everything is training data (MADS has no split in the paper's mix).
"""
import logging
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

NAME = 'mads'
JOINT_NAMES = 'neck,pelv,lhip,lkne,lank,ltoe,rhip,rkne,rank,rtoe,lsho,lelb,lwri,lhan,rsho,relb,rwri,rhan,head'
JOINT_EDGES = 'head-neck-pelv-rhip-rkne-rank-rtoe,neck-rsho-relb-rwri-rhan'  # the left side is mirrored
# the joints of the 15-joint sequences, in their order
JOINT_NAMES15 = 'neck,pelv,lhip,lkne,lank,rhip,rkne,rank,lsho,lelb,lwri,rsho,relb,rwri,head'
INDICES15 = [JOINT_NAMES.split(',').index(name) for name in JOINT_NAMES15.split(',')]
N_JOINTS = 19
SELECTION_THRESHOLD_MM = 100
BOX_EXPANSION = 1.2
MIN_DETECTION_IOU = 0.0  # the original took the detection of highest IoU, however small
WORLD_UP = (0, 1, 0)
PERSON_EXTENT_MM = (300, 4000)  # median extent of the valid joints of a frame: outside means not millimetres
VIDEO_PATTERN = re.compile(r'(?P<sequence>.+)_C(?P<camera>\d)\.avi')

logger = logging.getLogger(__name__)


class MadsFormatError(InputError):
    """A raw MADS file is malformed (the message names the file)."""


# ------------------------------------------------------------------------------------------------
# Readers
def _load_mat(path):
    import scipy.io
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f'{path} not found')
    try:
        return scipy.io.loadmat(str(path), squeeze_me=False, struct_as_record=False)
    except NotImplementedError:  # MATLAB v7.3 (HDF5)
        raise MadsFormatError(f'{path}: MATLAB v7.3 (HDF5) file; expected a v5 .mat file') from None
    except Exception as e:  # scipy raises ValueError, TypeError, OSError... on damaged files
        raise MadsFormatError(f'{path}: cannot read the .mat file ({e})') from None


def _field(path, content, name, size):
    if name not in content:
        raise MadsFormatError(f'{path}: variable {name} is missing')
    try:
        value = np.asarray(content[name], np.float64)
    except (TypeError, ValueError):
        raise MadsFormatError(f'{path}: variable {name} is not numeric') from None
    if value.size != size:
        raise MadsFormatError(f'{path}: variable {name} has shape {value.shape}, expected {size} values')
    if not np.all(np.isfinite(value)):
        raise MadsFormatError(f'{path}: variable {name} holds non-finite values')
    return value


def load_camera(calib_mat_path):
    """The Camera (mm, world y up) of a Calib_Cam<c>.mat: R = Rodrigues(om_ext), X_cam = R X + T_ext,
    intrinsics KK, distortion kc (k1, k2, p1, p2, k3)."""
    import cv2

    from posepile.util.camera import Camera
    path = Path(calib_mat_path)
    content = _load_mat(path)
    om = _field(path, content, 'om_ext', 3).reshape(3)
    translation = _field(path, content, 'T_ext', 3).reshape(3)
    intrinsics = _field(path, content, 'KK', 9).reshape(3, 3)
    distortion = _field(path, content, 'kc', 5).reshape(5)
    if intrinsics[0, 0] <= 0 or intrinsics[1, 1] <= 0 or not np.allclose(intrinsics[2], [0, 0, 1]):
        raise MadsFormatError(f'{path}: KK is not an intrinsic matrix ({intrinsics.tolist()})')
    rotation = cv2.Rodrigues(om)[0]
    return Camera(optical_center=-rotation.T @ translation, rot_world_to_cam=rotation, intrinsic_matrix=intrinsics,
                  distortion_coeffs=distortion, world_up=WORLD_UP)


def _frame_pose(path, i, cell):
    """One GTpose2 cell as (19, 3) float64 mm (NaN = missing); 15-joint cells are placed into the 19."""
    try:
        pose = np.asarray(cell, np.float64)
    except (TypeError, ValueError):
        raise MadsFormatError(f'{path}: GTpose2 cell {i} is not numeric') from None
    if pose.size == 0 or (pose.size == 1 and np.isnan(pose).all()):
        return np.full((N_JOINTS, 3), np.nan)
    if pose.ndim != 2 or pose.shape not in ((N_JOINTS, 3), (15, 3)):
        raise MadsFormatError(f'{path}: GTpose2 cell {i} has shape {pose.shape}, expected 19x3 or 15x3')
    if np.any(np.isinf(pose)):
        raise MadsFormatError(f'{path}: GTpose2 cell {i} holds infinite values')
    if len(pose) == N_JOINTS:
        return pose
    result = np.full((N_JOINTS, 3), np.nan)
    result[INDICES15] = pose
    return result



def load_poses(gt_mat_path):
    """(N, 19, 3) float32 world joints in mm from a <sequence>_GT.mat (GTpose2, one cell per video frame;
    15-joint sequences padded with NaN, frames without ground truth all NaN)."""
    path = Path(gt_mat_path)
    content = _load_mat(path)
    if 'GTpose2' not in content:
        raise MadsFormatError(f'{path}: variable GTpose2 is missing')
    cells = content['GTpose2']
    if not (isinstance(cells, np.ndarray) and cells.dtype == object and cells.ndim == 2 and 1 in cells.shape):
        raise MadsFormatError(f'{path}: GTpose2 should be a 1 x N cell array, got '
                              f'{getattr(cells, "dtype", type(cells))} {getattr(cells, "shape", "")}')
    cells = cells.reshape(-1)
    if len(cells) == 0:
        raise MadsFormatError(f'{path}: GTpose2 is empty')
    poses = np.stack([_frame_pose(path, i, cell) for i, cell in enumerate(cells)])
    _check_millimetres(path, poses)
    return poses.astype(np.float32)


def _check_millimetres(path, poses):
    valid = np.all(np.isfinite(poses), axis=-1)
    extents = [np.max(np.ptp(pose[ok], axis=0)) for pose, ok in zip(poses, valid) if ok.sum() >= 2]
    if not extents:
        raise MadsFormatError(f'{path}: GTpose2 has no frame with two valid joints')
    median = float(np.median(extents))
    if not PERSON_EXTENT_MM[0] <= median <= PERSON_EXTENT_MM[1]:
        raise MadsFormatError(f'{path}: the person spans {median:.3g} units: the joints are not in millimetres')


def parse_video_name(path):
    """(sequence, camera number) of <sequence>_C<c>.avi, or None."""
    m = VIDEO_PATTERN.fullmatch(Path(path).name)
    return None if m is None else (m['sequence'], int(m['camera']))


def select_video_frames(poses_mm, n_video_frames):
    """Frames kept for one video: among the first min(N, n_video_frames) frames those with a valid joint,
    then adaptive selection v1 (100 mm, check_validity), as the original."""
    from posepile.util.sampling import select_frames
    n = min(len(poses_mm), n_video_frames)
    candidates = np.flatnonzero(np.any(np.all(np.isfinite(poses_mm[:n]), axis=-1), axis=-1))
    if len(candidates) == 0:
        return candidates
    return candidates[select_frames(poses_mm[candidates], SELECTION_THRESHOLD_MM, check_validity=True)]


def gt_box(camera, world_mm):
    """The projected (valid) joints' box x1.2, [x, y, w, h] px."""
    from posepile.util import boxes
    return boxes.expand(boxes.bb_of_points(camera.world_to_image(world_mm)), BOX_EXPANSION)


def video_frame_count(video_path):
    """Frames the video's header promises (posepile.util.video.header_frame_count)."""
    from posepile.util.video import header_frame_count
    return header_frame_count(video_path)

# ------------------------------------------------------------------------------------------------
# Stages
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def list_videos(data_root=None):
    """Paths relative to the raw root (sorted) of multi_view_data/<action>/<sequence>_C<c>.avi."""
    root = raw_root(data_root)
    if not (root / 'multi_view_data').is_dir():
        raise FileNotFoundError(f'{root / "multi_view_data"} not found: download and extract MADS_multiview.zip '
                                '(main.sh step 1)')
    result = []
    for path in sorted((root / 'multi_view_data').glob('*/*.avi')):
        if parse_video_name(path) is None:
            logger.warning('%s: not named <sequence>_C<c>.avi, ignored', path)
        else:
            result.append(path.relative_to(root).as_posix())
    if not result:
        raise FileNotFoundError(f'no videos in {root / "multi_view_data"}/<action>/: extract the release first')
    return result


def _n_frames_or_gt_length(video_path, n_gt):
    """The video's frame count; for a missing or unreadable video the ground truth's length (the video
    stage then reports that video as broken, and --skip-broken builds the rest)."""
    from posepile.util.video import VideoReadError
    try:
        n_video = video_frame_count(video_path)
    except (FileNotFoundError, VideoReadError) as e:
        logger.warning('%s', e)
        return n_gt
    if n_video != n_gt:
        logger.info('%s: %d frames, %d ground-truth cells: the first %d are used', video_path, n_video, n_gt,
                    min(n_video, n_gt))
    return n_video


def make_video_tasks(data_root=None):
    """One VideoTask per video: the selected frames, each with its person (GT box = joints x1.2)."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    root = raw_root(data_root)
    tasks, poses_cache = [], {}
    for relpath in list_videos(data_root):
        sequence, camera_number = parse_video_name(relpath)
        folder = (root / relpath).parent
        gt_path = folder / f'{sequence}_GT.mat'
        if gt_path not in poses_cache:
            poses_cache[gt_path] = load_poses(gt_path)
        poses = poses_cache[gt_path]
        camera = load_camera(folder / f'Calib_Cam{camera_number}.mat')
        frames = {}
        for frame in select_video_frames(poses, _n_frames_or_gt_length(root / relpath, len(poses))).tolist():
            example = Pose3DExample(f'{NAME}/{relpath}#{frame}', poses[frame], gt_box(camera, poses[frame]),
                                    camera, activity_name=folder.name, scene_name=sequence)
            stem = relpath[:-len('.avi')]
            frames[frame] = [PersonTask(f'0/{stem}/{frame:06d}', example,
                                        f'{NAME}_downscaled/{stem}/{frame:06d}.jpg')]
        tasks.append(VideoTask(relpath[:-len('.avi')], str(root / relpath), frames))
    logger.info('%d videos, %d frames selected', len(tasks), sum(len(t.frames) for t in tasks))
    return tasks


def box_rule(detector_spec):
    """GT box without a detector; with one, the detection of best IoU (no threshold), else the GT box."""
    from posepile.preproc.video_stage import BoxRule
    if not detector_spec:
        return BoxRule('gt')
    return BoxRule('best_iou', min_iou=MIN_DETECTION_IOU, fallback_to_gt=True)


@pipeline.cli_options(pipeline.DETECTOR_OPTION, pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION,
                      ('--segmenter', dict(dest='segmenter_spec', default=None,
                                           help='also segment the crops (e.g. grabcut); default: no masks')))
def video_stage(detector_spec=None, shard=None, n_workers=None, skip_broken=None, keep_frames=False,
                segmenter_spec=None, data_root=None):
    """One pass per video: crops of the selected frames (box: joints x1.2, or the best detection with
    $POSEPILE_DETECTOR / --detector), optionally segmented."""
    from posepile.joint_info import JointInfo
    detector_spec = pipeline.configured_detector(detector_spec)
    pipeline.dataset_video_stage(
        NAME, make_video_tasks(data_root), shard, n_workers, data_root, detector_spec=detector_spec,
        box_rule=box_rule(detector_spec), skip_broken=skip_broken, keep_frames=keep_frames,
        segmenter_spec=segmenter_spec, joint_edges=JointInfo(JOINT_NAMES, JOINT_EDGES).stick_figure_edges)


def make_dataset(data_root=None):
    """MADS multi-view (all training): 19 joints, world mm, y up."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0])


def assemble(data_root=None):
    """The dataset for get_dataset('mads')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.mads.main', 'MADS stages', {
        'video': video_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
