"""Human3.6M: raw release readers and camera calibration (metadata.xml)."""
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from posepile.util.camera import Camera

CAMERA_IDS = ('54138969', '55011271', '58860488', '60457274')
SUBJECTS_IN_METADATA = 11
# Frames are 1000 px wide and 1000 or 1002 px high. The height depends on the recording, not only on the
# camera (real frames: S1/S5 54138969 and S7 55011271 are 1000x1002, S8 55011271 is 1000x1000), so the
# pipeline reads each video's size instead of assuming one per camera.
FRAME_WIDTH = 1000
FRAME_HEIGHTS = (1000, 1002)


class H36MFormatError(ValueError):
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
    return pose.reshape(-1, 32, 3).astype(np.float32)


def image_relpath(subject, action_basename, camera_id, frame_index):
    """Path (relative to DATA_ROOT) of an extracted full frame; 0-based index = CDF row."""
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
