"""ASPset-510: camera JSON reader."""
import json

import numpy as np

from posepile.util.camera import Camera

JOINT_NAMES = 'rank,rkne,rhip,rwri,relb,rsho,lank,lkne,lhip,lwri,lelb,lsho,htop,head,neck,spin,pelv'
JOINT_EDGES = 'htop-head-neck-spin-pelv-rhip-rkne-rank,neck-rsho-relb-rwri'


class ASPsetFormatError(ValueError):
    pass


def camera_from_matrices(intrinsic_3x4, extrinsic_4x4):
    """World is y-down (mm); the extrinsic maps world to camera."""
    intrinsic = np.asarray(intrinsic_3x4, np.float64)
    extrinsic = np.asarray(extrinsic_4x4, np.float64)
    if intrinsic.shape != (3, 4) or extrinsic.shape != (4, 4):
        raise ValueError(f'expected a 3x4 intrinsic and a 4x4 extrinsic, got {intrinsic.shape} and '
                         f'{extrinsic.shape}')
    return Camera(extrinsic_matrix=extrinsic, intrinsic_matrix=intrinsic[:, :3], world_up=(0, -1, 0))


def load_camera(json_path):
    """Camera from cameras/<subj>/<subj>-<view>.json (`intrinsic_matrix` 3x4, `extrinsic_matrix` 4x4)."""
    try:
        with open(json_path, encoding='utf-8') as f:
            data = json.load(f)
        return camera_from_matrices(data['intrinsic_matrix'], data['extrinsic_matrix'])
    except (OSError, json.JSONDecodeError, KeyError, ValueError) as e:
        raise ASPsetFormatError(f'{json_path}: not a valid ASPset camera file ({type(e).__name__}: {e})') from e
