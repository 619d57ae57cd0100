"""CMU Panoptic Studio: camera calibration and 3D body readers."""
import json

import numpy as np

from posepile.util.camera import Camera

JOINT_NAMES_COCO19 = ('neck,nose,pelv,lsho,lelb,lwri,lhip,lkne,lank,rsho,relb,rwri,rhip,rkne,rank,leye,lear,'
                      'reye,rear')
JOINT_EDGES_COCO19 = 'nose-neck-pelv-rhip-rkne-rank,neck-rsho-relb-rwri,nose-reye-rear'
MIN_CONFIDENCE = 0.1


class PanopticFormatError(ValueError):
    pass


def _load_json(path):
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise PanopticFormatError(f'{path}: cannot read JSON ({e})') from e


def load_cameras(calibration_json_path, camera_type=None):
    """{name: Camera} from calibration_<seq>.json. `t` is in cm there: X_cam = R X + t; we use mm.

    The world is y-down, so world_up = (0, -1, 0). `camera_type` ('hd', 'vga', 'kinect-color') filters.
    """
    data = _load_json(calibration_json_path)
    if 'cameras' not in data:
        raise PanopticFormatError(f'{calibration_json_path}: no "cameras" list')
    cameras = {}
    for i, entry in enumerate(data['cameras']):
        if camera_type is not None and entry.get('type') != camera_type:
            continue
        try:
            rot = np.array(entry['R'], np.float64).reshape(3, 3)
            t_mm = np.array(entry['t'], np.float64).reshape(3) * 10
            intrinsics = np.array(entry['K'], np.float64).reshape(3, 3)
            dist = np.array(entry['distCoef'], np.float64).reshape(-1)
            name = entry['name']
        except (KeyError, ValueError, TypeError) as e:
            raise PanopticFormatError(
                f'{calibration_json_path}: camera #{i} is malformed ({type(e).__name__}: {e})') from e
        cameras[name] = Camera(optical_center=-rot.T @ t_mm, rot_world_to_cam=rot,
                               intrinsic_matrix=intrinsics, distortion_coeffs=dist, world_up=(0, -1, 0))
    return cameras


def load_bodies(body3d_scene_json_path):
    """[(body id, (19, 3) float32 world mm with NaN where confidence <= 0.1)] from body3DScene_*.json."""
    data = _load_json(body3d_scene_json_path)
    if 'bodies' not in data:
        raise PanopticFormatError(f'{body3d_scene_json_path}: no "bodies" list')
    result = []
    for body in data['bodies']:
        values = np.array(body['joints19'], np.float32)
        if values.size != 19 * 4:
            raise PanopticFormatError(
                f'{body3d_scene_json_path}: body {body.get("id")} has {values.size} joint values, expected 76')
        values = values.reshape(19, 4)
        coords = values[:, :3] * 10
        coords[values[:, 3] <= MIN_CONFIDENCE] = np.nan
        result.append((int(body['id']), coords))
    return result
