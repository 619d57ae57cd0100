"""Exact rototranslation of SMPL-family parameters into a camera frame, and the convention of
`Pose3DExample.parameters`.

Convention of `Pose3DExample.parameters` (the fit in the camera frame of that example's camera):
    {'type': 'smpl' | 'smplh' | 'smplx',
     'gender': 'female' | 'male' | 'neutral',
     'pose': (n_joints*3,) float32 axis-angle, parent-relative, the model's joint order, root first; the root
             (global orientation) is in the CAMERA frame. Full rotations: no PCA hand components, the hand mean
             already added (what posepile.bodymodels' models take),
     'shape': (b,) float32 betas (the original PosePile's key name; barecat readers expect it),
     'trans': (3,) float32 camera-frame translation in the model's units, METRES,
     optional 'expression': (e,) float32 SMPL-X expression coefficients,
     optional 'kid_factor' (as the original; absent means 0),
     optional 'scale' (float; absent means 1): a scaled fit (HUMBI) whose points are
             X = scale * model(pose, shape, 0) + trans, i.e. the body is scaled about the model origin and
             then translated (the same as scale * model(pose, shape, trans / scale))}.
With this dict, `model(pose, shape, trans, expression=...)` (model = posepile.bodymodels.load(type, gender))
gives joints and vertices in the camera frame in metres (with a 'scale': scale * model(pose, shape, 0) + trans;
`parameter_joints_mm` handles both): X_cam_mm = 1000 * model(...)['joints'] equals
`example.camera.world_to_camera(world_mm)` for the joints the dataset computed from the same fit.

Derivation (why trans is not simply rotated). The body model's posed joints and vertices are
    X = J0 + G_root (Y - J0) + trans,
where J0 = J0(betas[, expression]) is the rest pelvis (the root joint of J_regressor @ v_shaped), G_root the
global orientation (rotation of the root) and Y the posed points before the root rotation, expressed about the
rest skeleton (everything below the root depends only on the parent-relative rotations, not on the root).
A camera with rotation R (world to camera) and optical centre c (world, the posepile Camera's `t`, here in
metres) maps X to X_c = R (X - c). Substituting,
    X_c = R G_root (Y - J0) + R (J0 + trans - c)
        = J0 + (R G_root) (Y - J0) + [R (J0 + trans - c) - J0],
which is the same model evaluated with global orientation R G_root and translation
    trans' = R (trans + J0 - c) - J0.
The rotation turns the body about its pelvis, not about the model origin, so trans' differs from
R (trans - c) by (R - I) J0: up to ~0.2 m for a body ~0.2 m from the origin at rest, hence the exactness.
This is exact for joints and vertices alike (the whole skinned mesh moves rigidly with the root).
A scaled fit X = s Y + trans (Y the model's points without trans) works the same way, with the pelvis scaled:
    X_c = s [J0 + (R G_root) (Y - J0)] + R (trans - c) + s (R - I) J0, so trans' = R (trans + s J0 - c) - s J0
and the scale is kept.
"""
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


def rototranslate(pose, betas, trans, R, t, model, expression=None, scale=1.0):
    """(pose', trans') such that the model's points with them equal R (X - t) of those with (pose, trans);
    with a `scale` s, the points are X = s * model(pose, betas, 0) + trans (before and after).

    pose (N, n_joints*3) or (n_joints*3,) axis-angle; betas (N, b) or (b,); trans (N, 3) or (3,), model units;
    R (3, 3) world-to-camera rotation; t (3,) optical centre in world coordinates, model units (metres).
    Returns float64 arrays of the input shapes: the root rotation becomes R G_root, trans' =
    R (trans + s J0 - t) - s J0 with J0 the rest pelvis (see the module docstring)."""
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
    pelvis = rest_pelvis(model, betas2d, expr2d) * float(scale)
    new_pose = pose2d.copy()
    root_rotation = rotvec_to_matrix(pose2d[:, root * 3:root * 3 + 3])
    new_pose[:, root * 3:root * 3 + 3] = matrix_to_rotvec(R @ root_rotation)
    new_trans = (trans2d + pelvis - t) @ R.T - pelvis
    return (new_pose[0], new_trans[0]) if single else (new_pose, new_trans)


def to_camera_frame(params, R, t, model):
    """The parameter dict `params` (keys as in the module docstring; betas under 'shape' or 'betas', world
    frame) rototranslated into the camera frame X_cam = R (X_world - t): a new dict with 'pose' and 'trans'
    replaced (float32), all other keys kept. R (3, 3) world-to-camera; t (3,) the optical centre in world
    coordinates in the MODEL's units (metres; a posepile Camera's `t` is in mm: pass camera.t / 1000, or use
    `camera_frame_parameters`). A 'scale' is kept: the scaled body is rototranslated (see the module docstring).
    R must be a proper rotation: a mirrored camera (det -1) is refused."""
    scale = float(params.get('scale', 1.0))
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f'cannot rototranslate a fit with scale {scale}: it must be positive and finite')
    if np.linalg.det(np.asarray(R, np.float64)) < 0:
        raise ValueError('cannot rototranslate into a mirrored camera (rotation determinant -1): the mirrored body is '
                         'no pose of the same model; mirror the images and camera back first (as for SURREAL)')
    betas = params.get('shape', params.get('betas'))
    betas = np.zeros(0) if betas is None else np.asarray(betas, np.float64).reshape(-1)
    expression = params.get('expression')
    expression = None if expression is None else np.asarray(expression, np.float64).reshape(-1)
    pose, trans = rototranslate(np.asarray(params['pose'], np.float64).reshape(-1), betas,
                                np.asarray(params['trans'], np.float64).reshape(3), R, t, model, expression,
                                scale=scale)
    return {**params, 'pose': pose.astype(np.float32), 'trans': trans.astype(np.float32)}


def camera_frame_parameters(params, camera, model):
    """`to_camera_frame` with a posepile Camera (optical centre in mm, converted to the model's metres)."""
    return to_camera_frame(params, camera.R, np.asarray(camera.t, np.float64) / 1000, model)


def parameter_joints_mm(params, model):
    """(n_joints, 3) mm: the model's joints of one parameter dict (in whatever frame the dict is in); with a
    'scale' s, s * joints(pose, shape, 0) + trans."""
    betas = params.get('shape', params.get('betas'))
    expression = params.get('expression')
    out = model(np.asarray(params['pose'], np.float64).reshape(1, -1),
                None if betas is None else np.asarray(betas, np.float64).reshape(1, -1), None,
                expression=None if expression is None else np.asarray(expression, np.float64).reshape(1, -1),
                return_vertices=False)
    scale = float(params.get('scale', 1.0))
    return (out['joints'][0] * scale + np.asarray(params['trans'], np.float64).reshape(3)) * 1000
