"""Exact rototranslation of SMPL-family parameters, and the convention of `Pose3DExample.parameters`.

Convention of `Pose3DExample.parameters` (the fit in the WORLD frame of that example's camera, the frame of its
`world_coords`; the camera maps world -> image, and cropping changes only the camera, never the parameters):
    {'type': 'smpl' | 'smplh' | 'smplx',
     'gender': 'female' | 'male' | 'neutral',
     'pose': (n_joints*3,) float32 axis-angle, parent-relative, the model's joint order, root first; the root
             (global orientation) is in the WORLD frame. Full rotations: no PCA hand components, the hand mean
             already added (what posepile.bodymodels' models take),
     'shape': (b,) float32 betas (the original PosePile's key name; barecat readers expect it),
     'trans': (3,) float32 world-frame translation in the model's units, METRES,
     optional 'expression': (e,) float32 SMPL-X expression coefficients,
     optional 'kid_factor' (as the original; absent means 0),
     optional 'scale' (float; absent means 1): a scaled fit whose points are X = scale * model(pose, shape, trans)
             (NLF's convention: the translation is scaled too; HUMBI's own X = s * model(pose, shape, 0) + T is
             stored as trans = T / s)}.
With this dict, `scale * model(pose, shape, trans, expression=...)` (model = posepile.bodymodels.load(type,
gender)) gives joints and vertices in the world frame in metres (`parameter_joints_mm` does it), and
    rototranslate(params, camera.R, camera.t / 1000)
gives the same body in the frame of `camera` (X_cam = R (X_world - t), posepile's Camera with its optical centre t
in mm): 1000 * its joints equal `camera.world_to_camera(world_mm)` for the joints the dataset computed from the
same fit. Datasets built before this convention (camera-frame parameters next to world-extrinsic cameras) carry
no marker: rebuild them.

Derivation (why trans is not simply rotated). The body model's posed joints and vertices are
    X = J0 + G_root (Y - J0) + trans,
where J0 = J0(betas[, expression]) is the rest pelvis (the root joint of J_regressor @ v_shaped), G_root the
global orientation (rotation of the root) and Y the posed points before the root rotation, expressed about the
rest skeleton (everything below the root depends only on the parent-relative rotations, not on the root).
A camera with rotation R (world to camera) and optical centre c (world, metres) maps X to X_c = R (X - c).
Substituting,
    X_c = R G_root (Y - J0) + R (J0 + trans - c)
        = J0 + (R G_root) (Y - J0) + [R (J0 + trans - c) - J0],
which is the same model evaluated with global orientation R G_root and translation
    trans' = R (trans + J0 - c) - J0.
The rotation turns the body about its pelvis, not about the model origin, so trans' differs from
R (trans - c) by (R - I) J0: up to ~0.2 m for a body ~0.2 m from the origin at rest, hence the exactness.
This is exact for joints and vertices alike (the whole skinned mesh moves rigidly with the root).
A scaled fit X = s M(pose, shape, trans) is the unscaled fit seen by a camera whose centre is c / s:
R (X - c) = s R (M - c / s), so trans' = R (trans + J0 - c / s) - J0 and the scale is kept.

Equality with smplfitter / NLF. smplfitter's `BodyModel.rototranslate(R, t, pose, shape, trans, kid_factor,
post_translate)` rotates the root to R G_root and returns, with post_translate=False ("t is subtracted before the
rotation": M' = R (M - t)), trans' = (trans - t) R^T + J0 (R^T - I) in row-vector form, i.e. R (trans + J0 - t) - J0
with J0 its rest pelvis J_template[0] + J_shapedirs[0] betas (+ kid term): the formula above. (post_translate=True
instead means M' = R M + t.) NLF's loader (nlf/pt/loading/parametric.py) calls it with t = cam.t / 1000 / scale on
the stored world parameters, i.e. X_cam = s M' = R (s M - cam.t / 1000): exactly `rototranslate(params, cam.R,
cam.t / 1000)` here, with the same scale convention. Our J0 is the model's root joint of the rest skeleton for the
given betas and expression, the same J0 for SMPL and SMPL+H. For SMPL-X the expression blend shapes also move J0
slightly; NLF's loader passes only 'shape' to smplfitter, so for a fit with a non-zero 'expression' NLF's trans'
differs from ours by that small effect (ours is the exact one for the model with the expression). A 'kid_factor'
is not modelled by posepile.bodymodels (no kid template): a non-zero one is refused.
"""
import functools

import numpy as np

from posepile.bodymodels.model import rotvec_to_matrix

PARAMETER_TYPES = ('smpl', 'smplh', 'smplx')


def matrix_to_rotvec(matrices):
    """(..., 3) axis-angle vectors of (..., 3, 3) rotation matrices (scipy's robust conversion)."""
    from scipy.spatial.transform import Rotation
    matrices = np.asarray(matrices, np.float64)
    return Rotation.from_matrix(matrices.reshape(-1, 3, 3)).as_rotvec().reshape(matrices.shape[:-2] + (3,))


def rest_pelvis(model, betas=None, expression=None):
    """(N, 3) or (3,) the rest root joint J0(betas[, expression]) of `model`, in metres."""
    betas = np.zeros((1, 0)) if betas is None else np.asarray(betas, np.float64)
    single = betas.ndim == 1
    betas2d = betas.reshape(1, -1) if single else betas
    expr = None if expression is None else np.asarray(expression, np.float64).reshape(len(betas2d), -1)
    zero_pose = np.zeros((len(betas2d), model.n_joints * 3))
    root = int(np.flatnonzero(np.asarray(model.parents) < 0)[0])
    joints = model(zero_pose, betas2d, None, expression=expr, return_vertices=False)['joints'][:, root]
    return joints[0] if single else joints


def rototranslate_arrays(pose, betas, trans, R, t, model, expression=None):
    """(pose', trans') such that the model's points with them equal R (X - t) of those with (pose, trans).

    pose (N, n_joints*3) or (n_joints*3,) axis-angle; betas (N, b) or (b,); trans (N, 3) or (3,), model units;
    R (3, 3) world-to-camera rotation; t (3,) optical centre in world coordinates, model units (metres).
    Returns float64 arrays of the input shapes: the root rotation becomes R G_root, trans' =
    R (trans + J0 - t) - J0 with J0 the rest pelvis (see the module docstring)."""
    pose = np.array(pose, np.float64)
    single = pose.ndim == 1
    pose2d = pose.reshape(1, -1) if single else pose
    n = len(pose2d)
    betas = np.asarray(betas, np.float64)
    betas2d = np.broadcast_to(betas.reshape(-1, betas.shape[-1]) if betas.size else np.zeros((1, 0)),
                              (n, betas.shape[-1] if betas.size else 0))
    expr2d = None
    if expression is not None:
        expression = np.asarray(expression, np.float64)
        expr2d = np.broadcast_to(expression.reshape(-1, expression.shape[-1]), (n, expression.shape[-1]))
    trans2d = np.broadcast_to(np.asarray(trans, np.float64).reshape(-1, 3), (n, 3))
    R = np.asarray(R, np.float64)
    t = np.asarray(t, np.float64).reshape(3)
    root = int(np.flatnonzero(np.asarray(model.parents) < 0)[0])
    pelvis = rest_pelvis(model, betas2d, expr2d)
    new_pose = pose2d.copy()
    root_rotation = rotvec_to_matrix(pose2d[:, root * 3:root * 3 + 3])
    new_pose[:, root * 3:root * 3 + 3] = matrix_to_rotvec(R @ root_rotation)
    new_trans = (trans2d + pelvis - t) @ R.T - pelvis
    return (new_pose[0], new_trans[0]) if single else (new_pose, new_trans)


def rototranslate(parameters, R, t_m, *, model=None):
    """The parameter dict `parameters` (keys as in the module docstring; betas under 'shape' or 'betas')
    rototranslated by X' = R (X - t_m): a new dict with 'pose' and 'trans' replaced (float32), all other keys
    kept. R (3, 3) a proper rotation (world to camera); t_m (3,) the new frame's origin (a camera's optical
    centre) in the old frame, in METRES (a posepile Camera's `t` is in mm: pass camera.t / 1000). With a 'scale'
    s the body X = s * model(pose, shape, trans) is moved (trans' = R (trans + J0 - t_m / s) - J0), the scale
    kept. Equals smplfitter's `rototranslate(R, t_m / s, ..., post_translate=False)` as NLF calls it (module
    docstring). `model`: the posepile.bodymodels model of the fit; None loads parameters['type'],
    parameters['gender'] from the default folder ($DATA_ROOT/body_models, cached).
    ValueError for a mirrored R (det -1), a non-positive scale or a non-zero 'kid_factor'."""
    scale = float(parameters.get('scale', 1.0))
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f'cannot rototranslate a fit with scale {scale}: it must be positive and finite')
    R = np.asarray(R, np.float64)
    if R.shape != (3, 3) or not np.allclose(R @ R.T, np.eye(3), atol=1e-5):
        raise ValueError(f'cannot rototranslate by R of shape {R.shape}: not a 3x3 rotation matrix')
    if np.linalg.det(R) < 0:
        raise ValueError('cannot rototranslate into a mirrored camera (rotation determinant -1): the mirrored body is '
                         'no pose of the same model; mirror the images and camera back first (as for SURREAL)')
    if np.any(np.asarray(parameters.get('kid_factor', 0.0), np.float64) != 0):
        raise ValueError('cannot rototranslate a fit with a non-zero kid_factor: posepile.bodymodels has no kid '
                         'template (its rest pelvis is unknown)')
    if model is None:
        model = default_model(parameters['type'], parameters['gender'])
    betas = parameters.get('shape', parameters.get('betas'))
    betas = np.zeros(0) if betas is None else np.asarray(betas, np.float64).reshape(-1)
    expression = parameters.get('expression')
    expression = None if expression is None else np.asarray(expression, np.float64).reshape(-1)
    pose, trans = rototranslate_arrays(np.asarray(parameters['pose'], np.float64).reshape(-1), betas,
                                       np.asarray(parameters['trans'], np.float64).reshape(3), R,
                                       np.asarray(t_m, np.float64).reshape(3) / scale, model, expression)
    return {**parameters, 'pose': pose.astype(np.float32), 'trans': trans.astype(np.float32)}


def camera_frame_parameters(parameters, camera, model=None):
    """World-frame `parameters` in the frame of a posepile Camera (optical centre in mm):
    rototranslate(parameters, camera.R, camera.t / 1000, model=model)."""
    return rototranslate(parameters, camera.R, np.asarray(camera.t, np.float64) / 1000, model=model)


def default_model(model_type, gender):
    """posepile.bodymodels.load(model_type, gender) from the default folder, cached per resolved file (and its
    modification time)."""
    from posepile import bodymodels
    from posepile.bodymodels import loading
    model_type, gender = str(model_type).lower(), loading.normalize_gender(gender)
    path = bodymodels.find_model_file(model_type, gender, None)
    return _load_cached(model_type, gender, str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load_cached(model_type, gender, path, _mtime_ns):
    from posepile import bodymodels
    return bodymodels.load(model_type, gender, path)


def parameter_joints_mm(params, model=None):
    """(n_joints, 3) mm: the model's joints of one parameter dict (in whatever frame the dict is in); with a
    'scale' s, s * joints(pose, shape, trans). `model` None: default_model(params['type'], params['gender'])."""
    if model is None:
        model = default_model(params['type'], params['gender'])
    betas = params.get('shape', params.get('betas'))
    expression = params.get('expression')
    out = model(np.asarray(params['pose'], np.float64).reshape(1, -1),
                None if betas is None else np.asarray(betas, np.float64).reshape(1, -1),
                np.asarray(params['trans'], np.float64).reshape(1, 3),
                expression=None if expression is None else np.asarray(expression, np.float64).reshape(1, -1),
                return_vertices=False)
    return out['joints'][0] * float(params.get('scale', 1.0)) * 1000
