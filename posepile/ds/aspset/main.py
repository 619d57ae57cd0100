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


# ------------------------------------------------------------------------------------------------
# Splits and mocap
CAMERA_NAMES = ('left', 'mid', 'right')
ROOT_INDEX = 16  # pelvis
MOCAP_FPS = 50
TEST_FRAME_STEP = 5  # the test split is evaluated at 10 fps


def load_splits(root):
    """List of (subject, clip, split, [cameras]) from splits.csv ('all' means left, mid, right); the file is
    looked for at the release root and in data/ (where the aspset510 repository keeps it)."""
    import csv
    from pathlib import Path
    candidates = [Path(root) / 'splits.csv', Path(root) / 'data' / 'splits.csv']
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        raise FileNotFoundError(f'{candidates[0]} not found: run the ASPset-510 download step first')
    rows = []
    with open(path, newline='') as f:
        for i, row in enumerate(csv.DictReader(f)):
            try:
                camera = row['camera_id']
                cameras = list(CAMERA_NAMES) if camera == 'all' else [camera]
                rows.append((row['subject_id'], row['clip_id'], row['split'], cameras))
            except KeyError as e:
                raise ASPsetFormatError(f'{path}: row {i + 2} lacks column {e}') from None
    return rows


def split_folder(split):
    return 'test' if split == 'test' else 'trainval'


def load_mocap(path):
    """(N, 17, 3) world joints in mm from a joints_3d .c3d file (ezc3d: points (4, 17, N))."""
    import ezc3d
    try:
        points = np.asarray(ezc3d.c3d(str(path))['data']['points'])
    except Exception as e:  # ezc3d raises plain RuntimeError/IndexError on bad files
        raise ASPsetFormatError(f'{path}: cannot read the c3d file ({e})') from e
    if points.ndim != 3 or points.shape[:2] != (4, 17):
        raise ASPsetFormatError(f'{path}: expected points of shape (4, 17, N), got {points.shape}')
    return np.transpose(points[:3], (2, 1, 0)).astype(np.float64)


def frame_relpath(split, subject, clip, camera, frame_index):
    """Path relative to DATA_ROOT of a frame extracted from a clip video; index = 50 fps mocap row."""
    return f'aspset/{split_folder(split)}/frames/{subject}/{subject}-{clip}-{camera}/frame_{frame_index:06d}.jpg'
