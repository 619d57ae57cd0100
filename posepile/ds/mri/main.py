"""mRI (mmWave, RGB-D and IMU; rehabilitation exercises, 20 subjects): readers of the raw release and the stages.

Raw layout under $DATA_ROOT/mri (the official repository SizheAn/mRI: src/get_label_dict_all.py writes the label
files, dataset_template.md lists the blurred videos):

    **/subject<N>_all_labels.cpl        pickle dict: 'refined_gt_kps' (T, 3, 17) COCO-17 in metres, row i = video
                                         frame i of the first colour camera, all zeros outside 'gt_avail_frames'
                                         [first, last]; the labels' frame is camera 1's with x and y negated
                                         (get_label_dict_all.py); 'camera_matrix' {'cam1_intrinsic' 3x3, ...}
    **/blurred_subject<N>_color0.mp4    camera 1 (the coordinate origin), 1920x1080 at 30 fps, faces blurred;
                                         stored mirrored left-right (nlf-era-facts §1.2). color1 is not used.

Rules (nlf-era-facts §1.2): the camera from the labels (K = cam1_intrinsic, R = diag(-1, -1, 1): the rows of the
identity flipped as the labels' x and y are, t = 0); the video frames are un-mirrored before cropping
(VideoTask.horizontal_flip), so boxes and crops are in the camera's true image; the sampler (100 mm, buffer 500) on
the valid frames (all-zero rows are invalid); box: the projected joints x1.15, or with $POSEPILE_DETECTOR the
detection of best IoU >= 0.5 (none: dropped). All subjects go to the training split.
"""
import logging
import pickle
import re

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'mri'
JOINT_NAMES = 'nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank'
JOINT_EDGES = ('lank-lkne-lhip-lsho-lelb-lwri,rank-rkne-rhip-rsho-relb-rwri,lhip-rhip,lsho-rsho,'
               'nose-leye-lear,nose-reye-rear')
LABELS_GLOB = '**/subject*_all_labels.cpl'
LABELS_NAME = re.compile(r'^(subject\d+)_all_labels\.cpl$')
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 500
GT_BOX_EXPANSION = 1.15
MIN_DETECTION_IOU = 0.5
# The labels' frame is camera 1's with x and y negated (get_label_dict_all.py): X_cam = diag(-1, -1, 1) X_label
LABEL_TO_CAMERA = np.diag([-1.0, -1.0, 1.0])


class MRIFormatError(InputError):
    """A raw mRI file is missing, unreadable or malformed (one line naming the file)."""


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def load_labels(path):
    """(joints (T, 17, 3) mm with NaN for the all-zero rows, Camera) of a subject<N>_all_labels.cpl."""
    from posepile.bodymodels.loading import BodyModelFormatError, restricted_load
    from posepile.util.camera import Camera
    try:
        with open(path, 'rb') as f:
            labels = restricted_load(f)
    except FileNotFoundError:
        raise MRIFormatError(f'{path}: file not found') from None
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, ImportError,
            BodyModelFormatError) as e:
        raise MRIFormatError(f'{path}: cannot read the label pickle ({type(e).__name__}: {e})') from None
    if not isinstance(labels, dict) or 'refined_gt_kps' not in labels or 'camera_matrix' not in labels:
        raise MRIFormatError(f'{path}: expected a dict with refined_gt_kps and camera_matrix')
    kps = np.asarray(labels['refined_gt_kps'], np.float64)
    if kps.ndim != 3 or kps.shape[1:] != (3, 17):
        raise MRIFormatError(f'{path}: refined_gt_kps has shape {kps.shape}, expected (T, 3, 17)')
    joints = np.transpose(kps, (0, 2, 1)) * 1000
    joints[np.all(kps == 0, axis=(1, 2))] = np.nan  # rows outside gt_avail_frames are zero-filled
    finite = joints[np.isfinite(joints)]
    if finite.size and np.abs(finite).max() > 20000:
        raise MRIFormatError(f'{path}: refined_gt_kps up to {np.abs(finite).max() / 1000:.0f}: expected metres')
    try:
        K = np.asarray(labels['camera_matrix']['cam1_intrinsic'], np.float64).reshape(3, 3)
    except (KeyError, TypeError, ValueError) as e:
        raise MRIFormatError(f'{path}: camera_matrix lacks a 3x3 cam1_intrinsic ({type(e).__name__})') from None
    if not np.all(np.isfinite(K)) or not K[0, 0] > 0:
        raise MRIFormatError(f'{path}: cam1_intrinsic is not a valid intrinsic matrix')
    camera = Camera(optical_center=np.zeros(3), rot_world_to_cam=LABEL_TO_CAMERA, intrinsic_matrix=K,
                    world_up=(0, 1, 0))  # camera y is down, the labels' y is flipped: up = +y
    return joints, camera


def list_subjects(data_root=None):
    """{subject: (labels path, colour-0 video path)} of the subjects whose labels exist."""
    root = raw_root(data_root)
    if not root.is_dir():
        raise FileNotFoundError(f'{root} not found: download and extract the mRI release (main.sh step 1)')
    labels = {}
    for path in sorted(root.glob(LABELS_GLOB)):
        match = LABELS_NAME.match(path.name)
        if match and 'posepile_work' not in path.parts:
            labels[match.group(1)] = path
    if not labels:
        raise FileNotFoundError(f'no subject*_all_labels.cpl under {root}: extract the mRI label files there '
                                '(main.sh step 1)')
    result = {}
    for subject, path in labels.items():
        videos = sorted(root.glob(f'**/blurred_{subject}_color0.mp4'))
        if not videos:
            raise FileNotFoundError(f'{root}/**/blurred_{subject}_color0.mp4 not found: the blurred RGB videos of '
                                    f'{subject} are missing (main.sh step 1)')
        result[subject] = (path, videos[0])
    return result


def selected_frames(joints_mm):
    from posepile.util.sampling import select_frames
    return select_frames(joints_mm, SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)


def frame_relpath(subject, frame):
    return f'{NAME}/frames/{subject}/{frame:06d}.jpg'


def crop_relpath(subject, frame):
    return f'{NAME}_downscaled/{subject}/{frame:06d}.jpg'


def make_video_tasks(data_root=None):
    """One VideoTask per subject (colour camera 0, un-mirrored): its selected frames with all joints valid."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    from posepile.util import boxes
    data_root_path = raw_root(data_root).parent
    tasks = []
    for subject, (labels_path, video_path) in list_subjects(data_root).items():
        joints, camera = load_labels(labels_path)
        frames = {}
        for frame in selected_frames(joints):
            frame = int(frame)
            if not np.all(np.isfinite(joints[frame])):
                continue
            box = boxes.expand(boxes.bb_of_points(camera.world_to_image(joints[frame])), GT_BOX_EXPANSION)
            example = Pose3DExample(frame_relpath(subject, frame), joints[frame], box, camera, scene_name=subject)
            frames[frame] = [PersonTask(f'0/{subject}/{frame:06d}', example, crop_relpath(subject, frame))]
        tasks.append(VideoTask(subject, video_path.relative_to(data_root_path).as_posix(), frames,
                               frame_relpath_pattern=frame_relpath(subject, 0).replace('000000', '{:06d}'),
                               horizontal_flip=True))
    logger.info('%d videos, %d crops selected', len(tasks), sum(len(t.frames) for t in tasks))
    return tasks


def box_rule(detector_spec):
    """The projected joints x1.15 without a detector; with one the best detection at IoU >= 0.5, else dropped."""
    from posepile.preproc.video_stage import BoxRule
    if not detector_spec:
        return BoxRule('gt')
    return BoxRule('best_iou', min_iou=MIN_DETECTION_IOU, fallback_to_gt=False)


@pipeline.cli_options(pipeline.DETECTOR_OPTION, pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION,
                      ('--segmenter', dict(dest='segmenter_spec', default=None,
                                           help='also segment the crops (e.g. grabcut); default: no masks')))
def video_stage(detector_spec=None, shard=None, n_workers=None, skip_broken=None, keep_frames=False,
                segmenter_spec=None, data_root=None):
    """One pass per subject video (un-mirrored): crops of the selected frames."""
    from posepile.joint_info import JointInfo
    detector_spec = pipeline.configured_detector(detector_spec)
    pipeline.dataset_video_stage(
        NAME, make_video_tasks(data_root), shard, n_workers, data_root, detector_spec=detector_spec,
        box_rule=box_rule(detector_spec), skip_broken=skip_broken, keep_frames=keep_frames,
        segmenter_spec=segmenter_spec, joint_edges=JointInfo(JOINT_NAMES, JOINT_EDGES).stick_figure_edges)


def make_dataset(data_root=None):
    """mRI: every subject in training, COCO-17 joints in mm in the labels' frame (camera 1 with x, y negated)."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0])


def assemble(data_root=None):
    """The dataset for get_dataset('mri')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.mri.main', 'mRI stages', {
        'video': video_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
