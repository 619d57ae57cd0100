"""Human3.6M: raw release readers and camera calibration (metadata.xml)."""
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from posepile.util.camera import Camera
from posepile.util.errors import InputError

CAMERA_IDS = ('54138969', '55011271', '58860488', '60457274')
SUBJECTS_IN_METADATA = 11
# Frames are 1000 px wide and 1000 or 1002 px high. The height depends on the recording, not only on the
# camera (real frames: S1/S5 54138969 and S7 55011271 are 1000x1002, S8 55011271 is 1000x1000), so the
# pipeline reads each video's size instead of assuming one per camera.
FRAME_WIDTH = 1000
FRAME_HEIGHTS = (1000, 1002)


class H36MFormatError(InputError):
    pass


def _rotation_xyz(a, b, g):
    """R_world_to_cam = Rx(a) @ Ry(b) @ Rz(g) (intrinsic x-y-z Euler angles, radians)."""
    ca, sa, cb, sb, cg, sg = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(g), np.sin(g)
    rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rz = np.array([[cg, -sg, 0], [sg, cg, 0], [0, 0, 1]])
    return rx @ ry @ rz


def load_cameras(metadata_xml_path):
    """{(subject, camera_id): Camera} for the 4 cameras x 11 subjects in the official metadata.xml.

    `w0` holds 300 numbers: 6 extrinsics (a, b, g, Tx, Ty, Tz) per (camera, subject) at
    6*((cam-1)*11 + (subj-1)), then 9 intrinsics (fx, fy, cx, cy, k1, k2, k3, p_a, p_b) per camera from 264.
    T is the camera centre in world coordinates (mm, z up). Distortion uses the H36M model.
    """
    try:
        root = ET.parse(metadata_xml_path).getroot()
    except (ET.ParseError, OSError) as e:
        raise H36MFormatError(f'{metadata_xml_path}: cannot parse XML ({e})') from e
    w0_node = root.find('w0')
    if w0_node is None or not (w0_node.text or '').strip():
        raise H36MFormatError(f'{metadata_xml_path}: no <w0> element with camera parameters')
    try:
        values = np.array([float(x) for x in w0_node.text.strip().strip('[]').split()])
    except ValueError as e:
        raise H36MFormatError(f'{metadata_xml_path}: <w0> holds a non-number ({e})') from e
    n_expected = 6 * len(CAMERA_IDS) * SUBJECTS_IN_METADATA + 9 * len(CAMERA_IDS)
    if len(values) != n_expected:
        raise H36MFormatError(
            f'{metadata_xml_path}: <w0> has {len(values)} numbers, expected {n_expected}')
    camera_ids = CAMERA_IDS
    index2id = root.find('dbcameras/index2id')
    if index2id is not None and index2id.text:
        ids = [x for x in index2id.text.strip().strip('[]').split()]
        if len(ids) == 4:
            camera_ids = tuple(ids)

    cameras = {}
    for i_cam, camera_id in enumerate(camera_ids):
        fx, fy, cx, cy, k1, k2, k3, p_a, p_b = values[264 + 9 * i_cam: 264 + 9 * (i_cam + 1)]
        intrinsics = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
        for i_subj in range(SUBJECTS_IN_METADATA):
            a, b, g, tx, ty, tz = values[6 * (i_cam * SUBJECTS_IN_METADATA + i_subj):][:6]
            cameras[(i_subj + 1, camera_id)] = Camera(
                optical_center=[tx, ty, tz], rot_world_to_cam=_rotation_xyz(a, b, g),
                intrinsic_matrix=intrinsics, distortion_coeffs=[k1, k2, k3, p_a, p_b],
                world_up=(0, 0, 1), distortion_model='h36m')
    return cameras


# ------------------------------------------------------------------------------------------------
# Poses and the test set
TEST_SUBJECTS = ('S9', 'S11')
TRAIN_SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8')
TEST_FRAME_STEP = 64
# The 17 evaluated joints among the 32 of the mocap skeleton, and their names.
JOINTS17_OF_32 = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
JOINT_NAMES17 = 'pelv,rhip,rkne,rank,lhip,lkne,lank,spin,neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri'
JOINT_EDGES17 = 'htop-head-neck-spin-pelv-lhip-lkne-lank,pelv-rhip-rkne-rank,neck-lsho-lelb-lwri,neck-rsho-relb-rwri'
# 25-joint ("all joints") predictions map to the 17 by these indices.
JOINTS17_OF_25 = [24, 0, 1, 2, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 19, 20, 21]
ACTIVITIES = ('Directions', 'Discussion', 'Eating', 'Greeting', 'Phoning', 'Posing', 'Purchases', 'Sitting',
              'SittingDown', 'Smoking', 'Photo', 'Waiting', 'Walking', 'WalkDog', 'WalkTogether')
_ACTIVITY_ALIASES = {'TakingPhoto': 'Photo', 'WalkingDog': 'WalkDog'}


def canonical_activity(action_basename):
    """'TakingPhoto 1' -> 'Photo', 'WalkingDog' -> 'WalkDog', 'Directions 1' -> 'Directions'."""
    name = action_basename.split(' ')[0].split('.')[0]
    name = _ACTIVITY_ALIASES.get(name, name)
    if name not in ACTIVITIES:
        raise H36MFormatError(f'unknown Human3.6M action {action_basename!r}')
    return name


def load_pose_cdf(path):
    """(N, 32, 3) float32 mm from a D3_Positions(_mono) CDF file (variable Pose, shape (1, N, 96))."""
    import cdflib
    path = Path(path)
    try:
        cdf = cdflib.CDF(str(path))
        pose = np.asarray(cdf.varget('Pose'))
    except (OSError, ValueError, KeyError) as e:
        raise H36MFormatError(f'{path}: cannot read the Pose variable ({e})') from e
    if pose.shape[-1] != 96:
        raise H36MFormatError(f'{path}: Pose has shape {pose.shape}, expected (1, N, 96)')
    from posepile.util.validation import check_coords_mm
    return check_coords_mm(pose.reshape(-1, 32, 3), path, 'Pose values').astype(np.float32)


def image_relpath(subject, action_basename, camera_id, frame_index):
    """Path (relative to DATA_ROOT) of a full frame (written only with --keep-frames; the examples' source
    name before cropping); 0-based index = CDF row."""
    return f'h36m/{subject}/Images/{action_basename}.{camera_id}/frame_{frame_index:06d}.jpg'


def list_actions(root, subject):
    folder = Path(root) / subject / 'MyPoseFeatures' / 'D3_Positions'
    if not folder.is_dir():
        raise FileNotFoundError(f'{folder} not found: extract the {subject} poses archive '
                                f'(Poses_D3_Positions_{subject}.tgz) under {root}')
    return sorted(p.stem for p in folder.glob('*.cdf'))


def test_poses(root, subjects=TEST_SUBJECTS, frame_step=TEST_FRAME_STEP):
    """The benchmark's test poses: list of dicts with image_path, subject, activity, camera and the 17
    world coordinates (mm). Every `frame_step`-th frame from 0, all four cameras."""
    items = []
    for subject in subjects:
        for action in list_actions(root, subject):
            poses = load_pose_cdf(Path(root) / subject / 'MyPoseFeatures' / 'D3_Positions' / f'{action}.cdf')
            activity = canonical_activity(action)
            for camera_id in CAMERA_IDS:
                for i in range(0, len(poses), frame_step):
                    items.append(dict(image_path=image_relpath(subject, action, camera_id, i), subject=subject,
                                      activity=activity, camera=camera_id,
                                      world_coords=poses[i, JOINTS17_OF_32]))
    return items


# ------------------------------------------------------------------------------------------------
# The recipe's stages (see main.sh)
from posepile.preproc import pipeline  # noqa: E402
TRAIN_FRAME_STEP = 5
SELECTION_THRESHOLD_MM = 100
BOX_EXPANSION = 1.15  # boxes of the projected joints, expanded about their centre
# S9's 'SittingDown 1', 'Waiting 1' and 'Greeting' have world coordinates shifted by +200 mm in x.
S9_SHIFTED_ACTIONS = ('SittingDown 1', 'Waiting 1', 'Greeting')
JOINTS25_OF_32 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 17, 18, 19, 21, 22, 25, 26, 27, 29, 30, 0]
JOINT_NAMES25 = ('rhip,rkne,rank,rfoo,rtoe,lhip,lkne,lank,lfoo,ltoe,spin,neck,head,htop,lsho,lelb,lwri,lthu,'
                 'lfin,rsho,relb,rwri,rthu,rfin,pelv')
JOINT_EDGES25 = ('htop-head-neck-spin-pelv-lhip-lkne-lank-lfoo-ltoe,pelv-rhip-rkne-rank-rfoo-rtoe,'
                 'neck-lsho-lelb-lwri-lfin,lwri-lthu,neck-rsho-relb-rwri-rfin,rwri-rthu')

logger = __import__('logging').getLogger(__name__)
NAME = 'h36m'


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def corrected_world_coords(subject, action, coords):
    """Undo the +200 mm x shift of three S9 recordings (for training on S9; evaluation uses the GT as is)."""
    if subject == 'S9' and action in S9_SHIFTED_ACTIONS:
        coords = coords.copy()
        coords[..., 0] -= 200
    return coords


def subjects_present(root):
    return [s for s in TRAIN_SUBJECTS + TEST_SUBJECTS if (Path(root) / s / 'MyPoseFeatures').is_dir()]


def select_frames_stage(data_root=None):
    """Training subjects: every 5th frame, then adaptive selection (a joint moved >= 100 mm); test subjects:
    every 64th frame. Writes posepile_work/selection.json {subject: {action: [frame indices]}}."""
    from posepile.util.sampling import select_frames
    root = raw_root(data_root)
    out_path = work_dir(data_root) / 'selection.json'
    inputs = sorted(raw_root(data_root).glob('S*/MyPoseFeatures/D3_Positions/*.cdf'))
    cached = pipeline.load_stage_json(out_path, inputs, [SELECTION_THRESHOLD_MM, TRAIN_FRAME_STEP, TEST_FRAME_STEP])
    if cached is not None:
        return cached
    subjects = subjects_present(root)
    if not subjects:
        raise FileNotFoundError(f'no subject folders with MyPoseFeatures under {root}: extract the '
                                'Poses_D3_Positions_S*.tgz archives first')
    selection = {}
    for subject in subjects:
        selection[subject] = {}
        for action in list_actions(root, subject):
            poses = load_pose_cdf(root / subject / 'MyPoseFeatures' / 'D3_Positions' / f'{action}.cdf')
            if subject in TEST_SUBJECTS:
                frames = list(range(0, len(poses), TEST_FRAME_STEP))
            else:
                candidates = np.arange(0, len(poses), TRAIN_FRAME_STEP)
                frames = candidates[select_frames(poses[candidates], SELECTION_THRESHOLD_MM)].tolist()
            selection[subject][action] = frames
    pipeline.save_stage_json(selection, out_path, inputs, [SELECTION_THRESHOLD_MM, TRAIN_FRAME_STEP, TEST_FRAME_STEP])
    return selection


def _video_jobs(selection):
    return [(subject, action, camera_id, frames) for subject, actions in sorted(selection.items())
            for action, frames in sorted(actions.items()) for camera_id in CAMERA_IDS]


def make_video_tasks(data_root=None):
    """One VideoTask per video: the selected frames (frame index = CDF row, 0-based) and the person in each,
    with the box of the projected joints x 1.15."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    from posepile.util import boxes
    root = raw_root(data_root)
    selection = select_frames_stage(data_root)
    metadata = root / 'metadata.xml'
    if not metadata.exists():
        raise FileNotFoundError(f'{metadata} not found: copy metadata.xml from the official code package')
    cameras = load_cameras(metadata)
    tasks = []
    poses_by_video = {}
    for subject, action, camera_id, frames in _video_jobs(selection):
        if (subject, action) not in poses_by_video:
            poses_by_video = {(subject, action): load_pose_cdf(
                root / subject / 'MyPoseFeatures' / 'D3_Positions' / f'{action}.cdf')}
        poses = poses_by_video[(subject, action)]
        camera = cameras[(int(subject[1:]), camera_id)]
        split = 'test' if subject in TEST_SUBJECTS else 'train'
        people = {}
        for frame in frames:
            relpath = image_relpath(subject, action, camera_id, frame)
            world = poses[frame]
            if split == 'train':
                world = corrected_world_coords(subject, action, world)
            box = boxes.expand(boxes.bb_of_points(camera.world_to_image(world[JOINTS17_OF_32])), BOX_EXPANSION)
            example = Pose3DExample(relpath, world, box, camera, activity_name=canonical_activity(action),
                                    scene_name=subject)
            people[frame] = [PersonTask(f'{split}/{subject}/{action}/{camera_id}/{frame:06d}', example,
                                        relpath.replace('h36m/', 'h36m_downscaled/', 1))]
        tasks.append(VideoTask(f'{subject}/{action}.{camera_id}',
                               str(root / subject / 'Videos' / f'{action}.{camera_id}.mp4'), people,
                               frame_relpath_pattern=f'h36m/{subject}/Images/{action}.{camera_id}/frame_{{:06d}}.jpg'))
    return tasks


@pipeline.cli_options(pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION,
                      ('--segmenter', dict(dest='segmenter_spec', default=None,
                                           help='also segment the crops (e.g. grabcut); default: no masks')))
def video_stage(shard=None, n_workers=None, skip_broken=None, keep_frames=False, segmenter_spec=None,
                data_root=None):
    """One pass per video: perspective-correct crops around the projected joints of the selected frames
    (H36M lens model undone), optionally segmented; no full frames unless --keep-frames."""
    from posepile.joint_info import JointInfo
    edges17 = JointInfo(JOINT_NAMES17, JOINT_EDGES17).stick_figure_edges
    edges32 = [(JOINTS17_OF_32[a], JOINTS17_OF_32[b]) for a, b in edges17]  # examples carry all 32 joints
    pipeline.dataset_video_stage(NAME, make_video_tasks(data_root), shard, n_workers, data_root,
                                 skip_broken=skip_broken, keep_frames=keep_frames, segmenter_spec=segmenter_spec,
                                 joint_edges=edges32)


def _make(joint_indices, names, edges, data_root=None):
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = {0: [], 2: []}
    for key, example in pipeline.recipe_crop_results(NAME, data_root):
        example.world_coords = example.world_coords[joint_indices]
        splits[0 if key.startswith('train/') else 2].append(example)
    return Pose3DDataset(JointInfo(names, edges), splits[0], None, splits[2])


def make_dataset(data_root=None):
    """Human3.6M with the 17 standard joints: train S1, S5-S8 (every 5th frame + adaptive 100 mm), test S9,
    S11 (every 64th frame), all four cameras."""
    return _make(JOINTS17_OF_32, JOINT_NAMES17, JOINT_EDGES17, data_root)


def make_alljoints(data_root=None):
    """The same examples with 25 joints (adds feet, toes, thumbs and finger tips)."""
    return _make(JOINTS25_OF_32, JOINT_NAMES25, JOINT_EDGES25, data_root)


def assemble_stage(data_root=None):
    """The datasets h36m (17 joints) and h36m_alljoints (25 joints) for get_dataset()."""
    pipeline.save_datasets({'h36m': lambda: make_dataset(data_root),
                            'h36m_alljoints': lambda: make_alljoints(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.h36m.main', 'Human3.6M stages', {
        'select-frames': select_frames_stage, 'video': video_stage, 'assemble': assemble_stage})


if __name__ == '__main__':
    main()
