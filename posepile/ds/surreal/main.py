"""SURREAL: camera reconstruction from the per-clip _info.mat."""
import numpy as np
import scipy.io

from posepile.util.camera import Camera

IMAGE_SIZE = (320, 240)  # width, height
INTRINSICS = np.array([[600.0, 0, 160], [0, 600, 120], [0, 0, 1]])


class SurrealFormatError(ValueError):
    pass


def load_info(info_mat_path):
    try:
        return scipy.io.loadmat(info_mat_path)
    except Exception as e:
        raise SurrealFormatError(f'{info_mat_path}: cannot read .mat ({type(e).__name__}: {e})') from e


def camera_from_location(cam_loc_m):
    """The SURREAL render camera: Blender's fixed orientation, at `camLoc` (metres) -> Camera in mm."""
    rot_world_to_blender_cam = np.array([[0, 0, 1], [0, -1, 0], [-1, 0, 0]], np.float64).T
    # Blender cameras look along -z with y up; flip y and z to get the OpenCV convention.
    rot = np.diag([1.0, -1, -1]) @ rot_world_to_blender_cam
    return Camera(optical_center=np.asarray(cam_loc_m, np.float64).reshape(3) * 1000,
                  rot_world_to_cam=rot, intrinsic_matrix=INTRINSICS, world_up=(0, 0, 1))


def load_camera(info_mat_path):
    info = load_info(info_mat_path)
    if 'camLoc' not in info:
        raise SurrealFormatError(f'{info_mat_path}: no camLoc variable (keys: {sorted(info)})')
    return camera_from_location(info['camLoc'])


def load_joints3d_mm(info):
    """joints3D (3, 24, N) metres -> (N, 24, 3) float32 mm (a single frame is stored as (3, 24))."""
    joints = np.asarray(info['joints3D'], np.float64)
    if joints.ndim == 2:
        joints = joints[..., np.newaxis]
    return (joints.transpose(2, 1, 0) * 1000).astype(np.float32)
