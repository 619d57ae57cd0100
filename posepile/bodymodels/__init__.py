"""SMPL-family body models (SMPL, SMPL+H, SMPL-X) in NumPy, loaded from the official files users download themselves.

    model = posepile.bodymodels.load('smpl', 'neutral', '/data/body_models')
    out = model(pose_rotvecs, betas, trans)                  # (N, 72), (N, 10), (N, 3)
    out['joints'], out['vertices']                           # (N, 24, 3), (N, 6890, 3), metres
    model(pose_rotvecs, betas, trans, return_vertices=False)  # joints only, 50-100x faster

    # Pose3DExample.parameters are world-frame fits (posepile/bodymodels/transform.py); into a camera's frame:
    cam_params = posepile.bodymodels.rototranslate(example.parameters, camera.R, camera.t / 1000)
    joints_cam_mm = posepile.bodymodels.parameter_joints_mm(cam_params)  # model loaded from type and gender

'joints' are the skeleton's joints: forward kinematics of J_regressor @ v_shaped (see model.py for the exact
conventions). Files are read without chumpy or torch, with a restricted unpickler (see loading.py for what it trusts).
"""
import numpy as np

from posepile.bodymodels.loading import BodyModelFormatError, BodyModelNotFoundError, find_model_file
from posepile.bodymodels.model import BodyModel, rotvec_to_matrix
from posepile.bodymodels.transform import camera_frame_parameters, parameter_joints_mm, rototranslate

__all__ = ['load', 'BodyModel', 'BodyModelFormatError', 'BodyModelNotFoundError', 'find_model_file',
           'rotvec_to_matrix', 'N_JOINTS', 'rototranslate', 'camera_frame_parameters', 'parameter_joints_mm']

N_JOINTS = {'smpl': 24, 'smplh': 52, 'smplx': 55}


def load(model_type, gender, model_dir=None):
    """The `model_type` ('smpl', 'smplh' or 'smplx') model of `gender` ('female', 'male', 'neutral'; also 'f', 'm',
    'n') from `model_dir`: a folder holding the official file (or a `<model_type>/` subfolder of it), or the file
    itself; default $DATA_ROOT/body_models/<model_type>. BodyModelNotFoundError (one line naming the expected files
    and the download site) when absent, BodyModelFormatError when the file is unreadable or inconsistent."""
    from posepile.bodymodels import loading
    model_type = str(model_type).lower()
    if model_type not in N_JOINTS:
        raise BodyModelFormatError(f'unknown body model type {model_type!r}: use smpl, smplh or smplx')
    gender = loading.normalize_gender(gender)
    path = find_model_file(model_type, gender, model_dir)
    arrays = loading.read_model_file(path)
    parents = loading.kintree_parents(arrays['kintree_table'], path)
    _check_sizes(arrays, parents, model_type, path)
    return BodyModel(arrays['v_template'], arrays['shapedirs'], arrays['posedirs'], arrays['J_regressor'],
                     arrays['weights'], parents, arrays['f'], model_type=model_type, gender=gender, path=path)


def _check_sizes(arrays, parents, model_type, path):
    n_joints, n_vertices = len(parents), len(arrays['v_template'])
    expected = {'v_template': (n_vertices, 3), 'shapedirs': (n_vertices, 3, None),
                'posedirs': (n_vertices, 3, (n_joints - 1) * 9), 'J_regressor': (n_joints, n_vertices),
                'weights': (n_vertices, n_joints), 'f': (None, 3)}
    if n_joints != N_JOINTS[model_type]:
        raise BodyModelFormatError(f'{path}: {n_joints} joints in kintree_table, but {model_type} has '
                                   f'{N_JOINTS[model_type]}')
    for key, shape in expected.items():
        actual = arrays[key].shape
        if len(actual) != len(shape) or any(e is not None and a != e for a, e in zip(actual, shape)):
            shape_text = '(' + ', '.join('any' if e is None else str(e) for e in shape) + ')'
            raise BodyModelFormatError(f'{path}: {key} has shape {actual}, expected {shape_text}')
        if key != 'f' and not np.all(np.isfinite(arrays[key])):
            raise BodyModelFormatError(f'{path}: {key} has non-finite values')

