"""FreeMan (8 synchronised smartphones, in the wild): readers of the raw release and the recipe's stages.

Raw layout under $DATA_ROOT/freeman (the official toolkit, wangjiongw/FreeMan_API freeman_loader.py, reads it so):

    30FPS/train.txt, validation.txt, test.txt     session names, one a line (session_list.txt: all of them)
    30FPS/cameras/<session>.json                  [{'name': 'c01'.., 'size', 'matrix' 3x3 K, 'rotation' (3,) rvec,
                                                    'translation' (3,) tvec, 'distortions' (5,)} per view], world
                                                    to camera (aniposelib.Camera: X_cam = Rodrigues(rvec) X + tvec),
                                                    translation in cm
    30FPS/keypoints3d/<session>.npy               object array; item 0 a dict with 'keypoints3d_optim' (N, 17, 3)
                                                    COCO-17 world joints in cm (the toolkit's default key)
    30FPS/videos/<session>/vframes/c0<k>.mp4      view k (1..8); frame i = keypoint row i (30 fps)

Rules (nlf-era-facts §1.2): cm -> mm for the keypoints and the camera translation; the sampler (100 mm, buffer
100, on the world joints, the same for every view); the box: without a detector the projected joints' box x1.15,
with one ($POSEPILE_DETECTOR) the detection of best IoU >= 0.5 (none: the view is dropped); crops with
extreme_perspective. Train = train.txt, validation = validation.txt (the original assembles those two; test.txt is
not used). Unlike the original, the released lens distortion is applied (the original ignores it; the toolkit
projects with it).
"""
import logging
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'freeman'
FPS_FOLDER = '30FPS'
JOINT_NAMES = 'nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank'
JOINT_EDGES = ('lank-lkne-lhip-lsho-lelb-lwri,rank-rkne-rhip-rsho-relb-rwri,lhip-rhip,lsho-rsho,'
               'nose-leye-lear,nose-reye-rear')
KEYPOINTS_KEY = 'keypoints3d_optim'
CM_TO_MM = 10.0
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 100
GT_BOX_EXPANSION = 1.15
MIN_DETECTION_IOU = 0.5
SPLIT_FILES = {0: 'train.txt', 1: 'validation.txt'}
N_VIEWS = 8


class FreeManFormatError(InputError):
    """A raw FreeMan file is missing, unreadable or malformed (one line naming the file)."""


def release_dir(data_root=None):
    return pipeline.raw_root(NAME, data_root) / FPS_FOLDER


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def load_session_list(path):
    """Session names of a split file (blank lines ignored)."""
    try:
        return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise FileNotFoundError(f'{path} not found: download and extract the FreeMan release (main.sh step 1)') \
            from None
    except (OSError, UnicodeDecodeError) as e:
        raise FreeManFormatError(f'{path}: cannot read the session list ({e})') from None


def load_cameras(path):
    """{view name: Camera (mm)} of cameras/<session>.json (rvec/tvec world to camera, tvec in cm)."""
    import cv2

    from posepile.util import fileio
    from posepile.util.camera import Camera
    entries = fileio.load_json(path, FreeManFormatError)
    if not isinstance(entries, list) or not entries:
        raise FreeManFormatError(f'{path}: expected a list of camera dicts')
    rotations, raw = [], []
    for i, entry in enumerate(entries):
        try:
            name = str(entry['name'])
            K = np.asarray(entry['matrix'], np.float64).reshape(3, 3)
            rvec = np.asarray(entry['rotation'], np.float64).reshape(3)
            tvec_mm = np.asarray(entry['translation'], np.float64).reshape(3) * CM_TO_MM
            dist = np.asarray(entry.get('distortions', np.zeros(5)), np.float64).reshape(-1)
        except (KeyError, TypeError, ValueError) as e:
            raise FreeManFormatError(f'{path}: camera {i} lacks name/matrix/rotation/translation or has a wrong '
                                     f'shape ({type(e).__name__}: {e})') from None
        if not all(np.all(np.isfinite(a)) for a in (K, rvec, tvec_mm, dist)) or dist.size not in (4, 5, 8):
            raise FreeManFormatError(f'{path}: camera {name} has non-finite values or {dist.size} distortion '
                                     'coefficients (expected 4, 5 or 8)')
        R = cv2.Rodrigues(rvec)[0]
        rotations.append(R)
        raw.append((name, K, R, tvec_mm, dist))
    up = -np.mean([R[1] for R in rotations], axis=0)  # the mean up direction of the (upright) phones
    up /= np.linalg.norm(up)
    return {name: Camera(optical_center=-R.T @ t, rot_world_to_cam=R, intrinsic_matrix=K, distortion_coeffs=dist,
                         world_up=up) for name, K, R, t, dist in raw}


def load_keypoints(path):
    """(N, 17, 3) world joints in mm of keypoints3d/<session>.npy ('keypoints3d_optim', cm)."""
    from posepile.bodymodels.files import load_object_npy
    data = load_object_npy(path, FreeManFormatError)
    item = data[0] if isinstance(data, np.ndarray) and data.dtype == object and data.size else data
    if isinstance(item, np.ndarray) and item.dtype == object and item.size == 1:
        item = item.item()
    if not isinstance(item, dict) or KEYPOINTS_KEY not in item:
        raise FreeManFormatError(f'{path}: expected an object array whose item 0 is a dict with {KEYPOINTS_KEY!r}')
    joints = np.asarray(item[KEYPOINTS_KEY], np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (17, 3):
        raise FreeManFormatError(f'{path}: {KEYPOINTS_KEY} has shape {joints.shape}, expected (N, 17, 3)')
    joints = joints * CM_TO_MM
    finite = joints[np.isfinite(joints)]
    if finite.size and np.abs(finite).max() > 1e6:
        raise FreeManFormatError(f'{path}: keypoints up to {np.abs(finite).max():.0f} mm: not centimetres')
    return joints


def video_relpath(session, view):
    return f'{NAME}/{FPS_FOLDER}/videos/{session}/vframes/{view}.mp4'


def frame_relpath(session, view, frame):
    """A full frame's path (written only with --keep-frames; the examples' source name)."""
    return f'{NAME}/{FPS_FOLDER}/frames/{session}/{view}/{frame:06d}.jpg'


def crop_relpath(session, view, frame):
    return f'{NAME}_downscaled/{session}/{view}/{frame:06d}.jpg'


def sessions_by_split(data_root=None):
    root = release_dir(data_root)
    if not root.is_dir():
        raise FileNotFoundError(f'{root} not found: download and extract the FreeMan release (main.sh step 1)')
    return {split: load_session_list(root / filename) for split, filename in SPLIT_FILES.items()}


def selected_frames(joints_mm):
    from posepile.util.sampling import select_frames
    return select_frames(joints_mm, SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)


def gt_box(camera, joints_mm):
    from posepile.util import boxes
    return boxes.expand(boxes.bb_of_points(camera.world_to_image(joints_mm)), GT_BOX_EXPANSION)


def make_video_tasks(data_root=None):
    """One VideoTask per (session, view): the selected frames, each with the person's GT box."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    root = release_dir(data_root)
    tasks = []
    for split, sessions in sessions_by_split(data_root).items():
        for session in sessions:
            joints = load_keypoints(root / 'keypoints3d' / f'{session}.npy')
            cameras = load_cameras(root / 'cameras' / f'{session}.json')
            kept = selected_frames(joints)
            for view, camera in sorted(cameras.items()):
                frames = {}
                for frame in kept:
                    frame = int(frame)
                    if not np.all(np.isfinite(joints[frame])):
                        continue
                    example = Pose3DExample(frame_relpath(session, view, frame), joints[frame],
                                            gt_box(camera, joints[frame]), camera, scene_name=session)
                    frames[frame] = [PersonTask(f'{split}/{session}/{view}/{frame:06d}', example,
                                                crop_relpath(session, view, frame))]
                pattern = frame_relpath(session, view, 0).replace('000000', '{:06d}')
                tasks.append(VideoTask(f'{session}/{view}', video_relpath(session, view), frames,
                                       frame_relpath_pattern=pattern))
    logger.info('%d videos, %d crops selected', len(tasks), sum(len(t.frames) for t in tasks))
    if not tasks:
        raise FileNotFoundError(f'no FreeMan sessions listed in {root}/train.txt or validation.txt')
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
    """One pass per view video: crops (extreme perspective) of the selected frames."""
    from posepile.joint_info import JointInfo
    detector_spec = pipeline.configured_detector(detector_spec)
    pipeline.dataset_video_stage(
        NAME, make_video_tasks(data_root), shard, n_workers, data_root, detector_spec=detector_spec,
        box_rule=box_rule(detector_spec), skip_broken=skip_broken, keep_frames=keep_frames,
        segmenter_spec=segmenter_spec, joint_edges=JointInfo(JOINT_NAMES, JOINT_EDGES).stick_figure_edges,
        extreme_perspective=True)


def make_dataset(data_root=None):
    """FreeMan: train (train.txt) and validation (validation.txt) sessions, COCO-17 world joints in mm."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0], splits[1])


def assemble(data_root=None):
    """The dataset for get_dataset('freeman')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.freeman.main', 'FreeMan stages', {
        'video': video_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
