"""3DPW: readers of the raw release (sequenceFiles/<split>/<sequence>.pkl, Python-2 pickles)."""
import pickle
from pathlib import Path

import numpy as np

SPLITS = ('train', 'validation', 'test')
N_TRACKS_ALL_SPLITS = 87  # (sequence, actor) tracks over the 60 sequences
SMPL_JOINT_NAMES = ('pelv,lhip,rhip,spi1,lkne,rkne,spi2,lank,rank,spi3,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,'
                    'lelb,relb,lwri,rwri,lhan,rhan')
# hips, knees, ankles, shoulders, elbows, wrists: the joints of the challenge's PCK
MAJOR_JOINTS = [1, 2, 4, 5, 7, 8, 16, 17, 18, 19, 20, 21]


class TDPWFormatError(ValueError):
    pass


def load_sequence(path):
    """The sequence pickle as a dict (latin1 decoding of the Python-2 pickles)."""
    path = Path(path)
    try:
        with open(path, 'rb') as f:
            data = pickle.load(f, encoding='latin1')
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as e:
        raise TDPWFormatError(f'{path}: cannot read the 3DPW sequence pickle ({e})') from e
    missing = [k for k in ('jointPositions', 'cam_poses', 'campose_valid', 'poses2d') if k not in data]
    if missing:
        raise TDPWFormatError(f'{path}: missing keys {missing}')
    return data


def list_sequences(root, split):
    folder = Path(root) / 'sequenceFiles' / split
    if not folder.is_dir():
        raise FileNotFoundError(f'{folder} not found: extract sequenceFiles.zip under {root}')
    return sorted(p.stem for p in folder.glob('*.pkl'))


def valid_frames(data, actor):
    """Bool (N,): camera pose valid and some 2D keypoint detected (the challenge's rule)."""
    poses2d = np.asarray(data['poses2d'][actor], np.float64)
    detected = np.mean(np.abs(poses2d.reshape(len(poses2d), -1)), axis=1) != 0
    return detected & np.asarray(data['campose_valid'][actor]).astype(bool)


def joints_camera_mm(data, actor, frames=None):
    """(F, 24, 3) SMPL joints in the camera frame, mm, from jointPositions (world, metres) and cam_poses."""
    joints = np.asarray(data['jointPositions'][actor], np.float64).reshape(-1, 24, 3)
    cam_poses = np.asarray(data['cam_poses'], np.float64)
    if frames is not None:
        joints, cam_poses = joints[frames], cam_poses[frames]
    return world_to_camera_mm(joints, cam_poses)


def world_to_camera_mm(joints_world_m, cam_poses):
    """(F, J, 3) world metres -> camera mm with per-frame 4x4 world-to-camera matrices (F, 4, 4)."""
    homogeneous = np.concatenate([joints_world_m, np.ones((*joints_world_m.shape[:2], 1))], axis=-1)
    return np.einsum('fij,fkj->fki', np.asarray(cam_poses, np.float64), homogeneous)[..., :3] * 1000


def image_relpath(sequence, frame_index):
    return f'tdpw/imageFiles/{sequence}/image_{frame_index:05d}.jpg'


# ------------------------------------------------------------------------------------------------
# SMPL joints from body-model parameters (the official evaluator regenerates ground truth this way)
def load_smpl_model(path):
    """The parts of an SMPL .pkl needed for joints: v_template, shapedirs, J_regressor, kintree_table."""
    path = Path(path)
    try:
        with open(path, 'rb') as f:
            model = pickle.load(f, encoding='latin1')
    except (OSError, pickle.UnpicklingError, EOFError) as e:
        raise TDPWFormatError(f'{path}: cannot read the SMPL model ({e})') from e

    def dense(x):
        return np.asarray(x.toarray() if hasattr(x, 'toarray') else x, np.float64)

    try:
        return {'v_template': dense(model['v_template']), 'shapedirs': dense(model['shapedirs']),
                'J_regressor': dense(model['J_regressor']),
                'parents': np.asarray(model['kintree_table'], np.int64)[0]}
    except KeyError as e:
        raise TDPWFormatError(f'{path}: SMPL model lacks {e}') from None


def smpl_joints(model, poses, betas, trans):
    """World joints (F, 24, 3) in metres: the posed kinematic chain of the shaped template plus trans."""
    import cv2
    poses = np.asarray(poses, np.float64).reshape(-1, 24, 3)
    betas = np.asarray(betas, np.float64)[:model['shapedirs'].shape[-1]]
    shaped = model['v_template'] + model['shapedirs'][..., :len(betas)] @ betas
    rest_joints = model['J_regressor'] @ shaped
    parents = model['parents']
    result = np.zeros((len(poses), 24, 3))
    for f, pose in enumerate(poses):
        rotations = [cv2.Rodrigues(p)[0] for p in pose]
        global_rot = [None] * 24
        for j in range(24):
            if j == 0:
                global_rot[0] = rotations[0]
                result[f, 0] = rest_joints[0]
            else:
                parent = parents[j]
                global_rot[j] = global_rot[parent] @ rotations[j]
                result[f, j] = result[f, parent] + global_rot[parent] @ (rest_joints[j] - rest_joints[parent])
    return result + np.asarray(trans, np.float64).reshape(-1, 1, 3)
