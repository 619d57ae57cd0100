"""The IMAR lab's mocap datasets Fit3D, CHI3D and HumanSC3D: readers, frame selection, one-pass video crops.

One module builds three datasets (registered as 'fit3d', 'chi3d', 'humansc3d'); every stage takes
`--dataset NAME`. Raw layout under $DATA_ROOT/<name> (as the toolkit github.com/sminchisescu-research/
imar_vision_datasets_tools reads it; the archives may also extract into one extra folder level):
    <name>_info.json (or info.json)   {'train_subj_names': [...], 'subj_to_act': {subject: [action, ...]}}
    train/<subject>/joints3d_25/<action>.json
                                      {'joints3d_25': (T, 25, 3)} world metres, z up; CHI3D (2, T, 25, 3):
                                      person 0 wears the markers, person 1 does not
    train/<subject>/videos/<camera>/<action>.mp4                       900x900 px
    train/<subject>/camera_parameters/<camera>/<action>.json
                                      {'extrinsics': {'R': 3x3 world->camera, 'T': [[x, y, z]] camera centre m},
                                       'intrinsics_w_distortion': {'f': [[fx, fy]], 'c': [[cx, cy]],
                                       'k': [[k1, k2, k3]], 'p': [[p1, p2]]}, 'intrinsics_wo_distortion': ...}
Cameras 50591643, 58860488, 60457274, 65906101. Only the train subjects are used (the test set has no
ground truth).

Lens model. The toolkit's `project_3d_to_2d(..., 'w_distortion')` (util/dataset_util.py) is the Human3.6M
model (same lab): with x the normalised point and r2 = |x|^2,
    x_d = x*(1 + k1 r2 + k2 r2^2 + k3 r2^3 + p2 x + p1 y) + p2 r2,
    y_d = y*(1 + k1 r2 + k2 r2^2 + k3 r2^3 + p2 x + p1 y) + p1 r2,
i.e. posepile's 'h36m' distortion model with coefficients (k1, k2, k3, p_a=p1, p_b=p2). The original
PosePile read (k1, k2, p1, p2, k3) as OpenCV coefficients, whose tangential term is 2*p1*x*y + p2*(r2 + 2x^2)
(twice as strong, differently shaped): ~0.25 px off on the body, up to ~1.5 px near the image border.

Frame alignment. The joints are sampled at 200 Hz (the mocap rate), the videos at 50 fps: mocap frame
4*i belongs to video frame i (the toolkit's notebook pairs `frames[i]` with `j3ds[4 * i]`, and its authors
confirm `j3d_fr_id = 4 * rgb_fr_id` in the toolkit's issue #1). That is why the original opened the videos
with `imageio.get_reader(path, 'ffmpeg', fps=200)`: ffmpeg's output rate of 200 fps repeats every video
frame four times, so the original's decoded frame n (zipped with mocap frame n) shows video frame n // 4,
up to 15 ms apart from the pose, and up to four crops of one image could be kept. Here video frame i
(the i-th decoded frame, posepile.util.video) is paired with mocap frame 4*i exactly; frames whose mocap
frame does not exist are not used.

Selection (as the original): per camera and person, AdaptivePoseSampler2 with 100 mm, check_validity,
NaN-unchanged and a buffer of 10 000 poses, here over the poses of the video frames. Box: the projected
joints' box x1.2 (GT box); with a detector (POSEPILE_DETECTOR / --detector) the detection of best IoU >= 0.5
(CHI3D's two people: one-to-one Hungarian assignment at IoU >= 0.5, so they never share a detection), else
the GT box. The original dropped frames without such a detection. CHI3D: each of the two people is an
example of its own (the original zipped the video with the person axis of the (2, T, 25, 3) array).
"""
import logging
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

NAMES = ('fit3d', 'chi3d', 'humansc3d')
# Joint order of joints3d_25 (the first 17 in Human3.6M's order), names as in the original PosePile
# (the same strings as h36m_alljoints: the mixes match joints by name).
JOINT_NAMES = ('pelv,lhip,lkne,lank,rhip,rkne,rank,spin,neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri,'
               'lfoo,ltoe,rfoo,rtoe,lthu,lfin,rthu,rfin')
JOINT_EDGES = ('htop-head-neck-spin-pelv-lhip-lkne-lank-lfoo-ltoe,lthu-lwri-lelb-lsho-neck-rsho-relb-rwri-rthu,'
               'rwri-rfin,lwri-lfin,pelv-rhip-rkne-rank-rfoo-rtoe')
N_JOINTS = 25
CAMERA_IDS = ('50591643', '58860488', '60457274', '65906101')
PEOPLE_PER_FRAME = {'fit3d': 1, 'chi3d': 2, 'humansc3d': 1}
MOCAP_FRAMES_PER_VIDEO_FRAME = 4  # 200 Hz mocap, 50 fps video
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 10_000
BOX_EXPANSION = 1.2
MIN_DETECTION_IOU = 0.5
WORLD_UP = (0, 0, 1)
MAX_ABS_COORD_M = 50  # joints and camera centres are in metres: larger values mean a unit mix-up

logger = logging.getLogger(__name__)


class ImarFormatError(InputError):
    """A raw file of Fit3D / CHI3D / HumanSC3D is malformed (the message names the file)."""


def _read_json(path):
    from posepile.util import fileio
    return fileio.load_json(path, ImarFormatError)


def _array(path, content, keys, shape):
    """content[k1][k2]... as float64 reshaped to `shape` (same size), finite; else ImarFormatError."""
    field = '/'.join(keys)
    try:
        value = content
        for key in keys:
            value = value[key]
        array = np.asarray(value, np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise ImarFormatError(f'{path}: field {field} is missing or not numeric ({e!r})') from None
    try:
        array = array.reshape(shape)
    except ValueError:
        raise ImarFormatError(f'{path}: field {field} has shape {array.shape}, expected {shape}') from None
    if not np.all(np.isfinite(array)):
        raise ImarFormatError(f'{path}: field {field} holds non-finite values')
    return array


def load_camera(json_path):
    """The Camera (mm, world z up) of one camera_parameters/<camera>/<action>.json, with the toolkit's lens
    model (posepile's 'h36m' model, coefficients (k1, k2, k3, p1, p2) in the file's order)."""
    from posepile.util.camera import Camera
    content = _read_json(json_path)
    rotation = _array(json_path, content, ('extrinsics', 'R'), (3, 3))
    centre_m = _array(json_path, content, ('extrinsics', 'T'), (3,))
    focal = _array(json_path, content, ('intrinsics_w_distortion', 'f'), (2,))
    principal = _array(json_path, content, ('intrinsics_w_distortion', 'c'), (2,))
    k = _array(json_path, content, ('intrinsics_w_distortion', 'k'), (3,))
    p = _array(json_path, content, ('intrinsics_w_distortion', 'p'), (2,))
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4) or np.linalg.det(rotation) < 0:
        raise ImarFormatError(f'{json_path}: extrinsics/R is not a rotation matrix')
    if np.max(np.abs(centre_m)) > MAX_ABS_COORD_M:
        raise ImarFormatError(f'{json_path}: extrinsics/T = {centre_m.tolist()} is not a camera centre in metres')
    if np.any(focal <= 0):
        raise ImarFormatError(f'{json_path}: intrinsics_w_distortion/f must be positive, got {focal.tolist()}')
    intrinsics = np.array([[focal[0], 0, principal[0]], [0, focal[1], principal[1]], [0, 0, 1]])
    return Camera(optical_center=centre_m * 1000, rot_world_to_cam=rotation, intrinsic_matrix=intrinsics,
                  distortion_coeffs=[k[0], k[1], k[2], p[0], p[1]], distortion_model='h36m', world_up=WORLD_UP)


def load_joints(json_path, n_people):
    """float32 (n_people, T, 25, 3) world mm from joints3d_25/<action>.json ((T, 25, 3) when one person,
    (2, T, 25, 3) in CHI3D, metres in the file)."""
    content = _read_json(json_path)
    if not isinstance(content, dict) or 'joints3d_25' not in content:
        raise ImarFormatError(f"{json_path}: expected an object with the key 'joints3d_25'")
    try:
        joints = np.asarray(content['joints3d_25'], np.float64)
    except (TypeError, ValueError) as e:
        raise ImarFormatError(f'{json_path}: joints3d_25 is not a numeric array ({e!r})') from None
    expected = '(T, 25, 3)' if n_people == 1 else f'({n_people}, T, 25, 3)'
    if n_people == 1 and joints.ndim == 3:
        joints = joints[np.newaxis]
    if joints.ndim != 4 or joints.shape[0] != n_people or joints.shape[2:] != (N_JOINTS, 3) or \
            joints.shape[1] == 0:
        raise ImarFormatError(f'{json_path}: joints3d_25 has shape {joints.shape}, expected {expected}')
    if not np.all(np.isfinite(joints)):
        raise ImarFormatError(f'{json_path}: joints3d_25 holds non-finite values')
    if np.max(np.abs(joints)) > MAX_ABS_COORD_M:
        raise ImarFormatError(f'{json_path}: joints3d_25 reaches {np.max(np.abs(joints)):.0f}: not metres')
    return (joints * 1000).astype(np.float32)


def load_info(release_dir, name):
    """(train subjects, {subject: [actions]}) of <name>_info.json (the toolkit's README calls it info.json)."""
    release_dir = Path(release_dir)
    path = next((p for p in (release_dir / f'{name}_info.json', release_dir / 'info.json') if p.exists()), None)
    if path is None:
        raise FileNotFoundError(f'{release_dir / f"{name}_info.json"} not found: download it from the '
                                f'{name} website into {release_dir}')
    content = _read_json(path)
    try:
        train_subjects = [str(s) for s in content['train_subj_names']]
        subj_to_act = {str(s): [str(a) for a in acts] for s, acts in content['subj_to_act'].items()}
    except (KeyError, TypeError, AttributeError) as e:
        raise ImarFormatError(f"{path}: expected 'train_subj_names' (list) and 'subj_to_act' "
                              f'({{subject: [actions]}}) ({e!r})') from None
    if not train_subjects:
        raise ImarFormatError(f'{path}: train_subj_names is empty')
    missing = [s for s in train_subjects if s not in subj_to_act]
    if missing:
        raise ImarFormatError(f'{path}: train subjects {missing} have no entry in subj_to_act')
    return train_subjects, subj_to_act


def video_frame_count(video_path):
    """Frames the video's header promises (posepile.util.video.header_frame_count)."""
    from posepile.util.video import header_frame_count
    return header_frame_count(video_path)

def candidate_frames(n_mocap_frames, n_video_frames):
    """Video frame indices that have a mocap frame (video frame i = mocap frame 4i)."""
    n = min(n_video_frames, -(-n_mocap_frames // MOCAP_FRAMES_PER_VIDEO_FRAME))
    return np.arange(max(n, 0))


def select_video_frames(poses_mm, n_video_frames):
    """The video frames kept for one person in one camera: adaptive selection over the poses of the video
    frames (100 mm, check_validity, NaN unchanged, buffer 10 000, as the original's per-camera sampler)."""
    from posepile.util.sampling import select_frames
    frames = candidate_frames(len(poses_mm), n_video_frames)
    if len(frames) == 0:
        return []
    poses = poses_mm[frames * MOCAP_FRAMES_PER_VIDEO_FRAME]
    kept = select_frames(poses, SELECTION_THRESHOLD_MM, SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)
    return frames[kept].tolist()


# ------------------------------------------------------------------------------------------------
# The recipe's stages (each takes the dataset name)
def raw_root(name, data_root=None):
    return pipeline.raw_root(name, data_root)


def work_dir(name, data_root=None):
    return pipeline.work_dir(name, data_root)


def release_dir(name, data_root=None):
    """The folder holding train/ (the raw root, or the one subfolder the archives extracted into)."""
    root = raw_root(name, data_root)
    if (root / 'train').is_dir():
        return root
    nested = sorted(p.parent for p in root.glob('*/train') if p.is_dir() and p.parent.name != 'posepile_work')
    if len(nested) == 1:
        return nested[0]
    raise FileNotFoundError(f'{root / "train"} not found: extract {name}_train.tar.gz into {root} '
                            f'(main.sh step 1)')


def _check_name(name):
    if name not in NAMES:
        raise ValueError(f'unknown IMAR dataset {name!r}: use one of {", ".join(NAMES)}')


def _sequence_paths(release, subject, action, camera_id):
    base = Path(release) / 'train' / subject
    return (base / 'videos' / camera_id / f'{action}.mp4',
            base / 'camera_parameters' / camera_id / f'{action}.json')


DATASET_OPTION = ('--dataset', dict(dest='name', required=True, choices=NAMES))


@pipeline.cli_options(DATASET_OPTION)
def select_frames_stage(name, data_root=None):
    """Per train sequence, camera and person: the video frames kept by adaptive selection.
    Writes posepile_work/selection.json {subject: {action: {camera: [[frames of person 0], ...]}}}."""
    _check_name(name)
    out_path = work_dir(name, data_root) / 'selection.json'
    release = release_dir(name, data_root)
    inputs = sorted(release.glob('train/*/joints3d_25/*.json')) + sorted(release.glob('train/*/videos/*/*.mp4'))
    cached = pipeline.load_stage_json(out_path, inputs, [name])
    if cached is not None:
        return cached
    train_subjects, subj_to_act = load_info(release, name)
    selection = {}
    for subject in train_subjects:
        selection[subject] = {}
        for action in subj_to_act[subject]:
            poses = load_joints(release / 'train' / subject / 'joints3d_25' / f'{action}.json',
                                PEOPLE_PER_FRAME[name])
            per_camera = {}
            for camera_id in CAMERA_IDS:
                video_path, _ = _sequence_paths(release, subject, action, camera_id)
                n_video = _video_frame_count_or_mocap_span(video_path, poses.shape[1])
                per_camera[camera_id] = [select_video_frames(person, n_video) for person in poses]
            selection[subject][action] = per_camera
    pipeline.save_stage_json(selection, out_path, inputs, [name])
    n = sum(len(f) for acts in selection.values() for cams in acts.values() for ppl in cams.values() for f in ppl)
    logger.info('%s: %d person crops selected', name, n)
    return selection


def _video_frame_count_or_mocap_span(video_path, n_mocap):
    """The video's frame count; for a missing or unreadable video the span of the mocap (the video stage
    then reports that video as broken, and --skip-broken builds the rest)."""
    from posepile.util.video import VideoReadError
    expected = n_mocap / MOCAP_FRAMES_PER_VIDEO_FRAME
    try:
        n_video = video_frame_count(video_path)
    except (FileNotFoundError, VideoReadError) as e:
        logger.warning('%s', e)
        return int(np.ceil(expected))
    if abs(n_video - expected) > max(10, 0.05 * expected):
        logger.warning('%s has %d frames, but its %d mocap frames at 200 Hz span %.0f video frames at 50 fps',
                       video_path, n_video, n_mocap, expected)
    return n_video


def gt_box(camera, world_mm):
    """The projected joints' box x1.2 ([x, y, w, h] px)."""
    from posepile.util import boxes
    return boxes.expand(boxes.bb_of_points(camera.world_to_image(world_mm)), BOX_EXPANSION)


def crop_relpath(name, subject, action, camera_id, frame, person):
    suffix = f'_{person}' if PEOPLE_PER_FRAME[name] > 1 else ''
    return f'{name}_downscaled/train/{subject}/videos/{camera_id}/{action}/{frame:06d}{suffix}.jpg'


def make_video_tasks(name, data_root=None):
    """One VideoTask per (subject, action, camera): {video frame: [PersonTask per person]}."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    selection = select_frames_stage(name, data_root)
    release = release_dir(name, data_root)
    data_root_path = raw_root(name, data_root).parent
    tasks = []
    for subject, actions in sorted(selection.items()):
        for action, per_camera in sorted(actions.items()):
            poses = load_joints(release / 'train' / subject / 'joints3d_25' / f'{action}.json',
                                PEOPLE_PER_FRAME[name])
            for camera_id, frames_per_person in sorted(per_camera.items()):
                video_path, camera_path = _sequence_paths(release, subject, action, camera_id)
                camera = load_camera(camera_path)
                video_relpath = video_path.relative_to(data_root_path).as_posix()
                frames = {}
                for person, person_frames in enumerate(frames_per_person):
                    for frame in person_frames:
                        world = poses[person, frame * MOCAP_FRAMES_PER_VIDEO_FRAME]
                        others = [poses[q, frame * MOCAP_FRAMES_PER_VIDEO_FRAME] for q in range(len(poses))
                                  if q != person]
                        example = Pose3DExample(f'{video_relpath}#{frame}', world, gt_box(camera, world), camera,
                                                activity_name=action, scene_name=subject)
                        frames.setdefault(frame, []).append(PersonTask(
                            f'train/{subject}/{action}/{camera_id}/{frame:06d}/{person}', example,
                            crop_relpath(name, subject, action, camera_id, frame, person),
                            others_world=others or None))
                tasks.append(VideoTask(f'{subject}/{action}/{camera_id}', video_relpath, frames))
    return tasks


def box_rule(name, detector_spec):
    """GT box without a detector; with one, the best detection at IoU >= 0.5 (CHI3D: Hungarian)."""
    from posepile.preproc.video_stage import BoxRule
    if not detector_spec:
        return BoxRule('gt')
    return BoxRule('hungarian' if PEOPLE_PER_FRAME[name] > 1 else 'best_iou', min_iou=MIN_DETECTION_IOU)


@pipeline.cli_options(DATASET_OPTION, pipeline.DETECTOR_OPTION, pipeline.SKIP_BROKEN_OPTION,
                      pipeline.KEEP_FRAMES_OPTION,
                      ('--segmenter', dict(dest='segmenter_spec', default=None,
                                           help='also segment the crops (e.g. grabcut); default: no masks')))
def video_stage(name, detector_spec=None, shard=None, n_workers=None, skip_broken=None, keep_frames=False,
                segmenter_spec=None, data_root=None):
    """One pass per video: perspective-correct crops (lens model undone) of the selected frames, boxes by
    the detector when one is given ($POSEPILE_DETECTOR), optionally segmented."""
    from posepile.joint_info import JointInfo
    _check_name(name)
    detector_spec = pipeline.configured_detector(detector_spec)
    pipeline.dataset_video_stage(
        name, make_video_tasks(name, data_root), shard, n_workers, data_root, detector_spec=detector_spec,
        box_rule=box_rule(name, detector_spec), skip_broken=skip_broken, keep_frames=keep_frames,
        segmenter_spec=segmenter_spec, joint_edges=JointInfo(JOINT_NAMES, JOINT_EDGES).stick_figure_edges)


def make_dataset(data_root=None, name='fit3d'):
    """One of the three datasets: train subjects only, 25 joints in world mm (z up)."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    _check_name(name)
    splits = pipeline.examples_by_split(name, data_root, split_of_key=lambda key: 0)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0])


def make_fit3d(data_root=None):
    return make_dataset(data_root, 'fit3d')


def make_chi3d(data_root=None):
    return make_dataset(data_root, 'chi3d')


def make_humansc3d(data_root=None):
    return make_dataset(data_root, 'humansc3d')


@pipeline.cli_options(DATASET_OPTION)
def assemble_stage(name, data_root=None):
    """The dataset for get_dataset(NAME)."""
    _check_name(name)
    pipeline.save_datasets({name: lambda: make_dataset(data_root, name)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.imar.main', 'Fit3D / CHI3D / HumanSC3D stages', {
        'select-frames': select_frames_stage, 'video': video_stage, 'assemble': assemble_stage})


if __name__ == '__main__':
    main()
