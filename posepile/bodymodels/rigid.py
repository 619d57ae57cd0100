"""Folding a rigid body-to-world transform into SMPL-family parameters (exact, with the pelvis offset).

Some releases store a fit in a body-local frame plus a rigid transform: EasyMocap / ZJU-MoCap
`X_world = Rodrigues(Rh) . SMPL(poses, shapes) + Th` (poses[:3] usually zero), EgoBody's Kinect-master-to-world
chain, etc. `apply_rigid(parameters, A, b)` returns parameters whose points are A X + b, by
posepile.bodymodels.rototranslate (X' = R (X - t) with R = A, t = -A^T b): the root turns to A G_root and
trans' = A (trans + J0) + b - J0 (J0 the rest pelvis), NOT A trans + b. With a 'scale' s (X = s M) the same
holds for the scaled body (A s M + b = s (A M + b / s)), the scale kept.
"""
import numpy as np

from posepile.bodymodels.transform import rototranslate


def apply_rigid(parameters, rotation, translation_m, *, model=None):
    """Parameters of the body moved to X' = rotation @ X + translation_m (rotation (3, 3) proper; translation in
    METRES, in the target frame). Other keys kept; see posepile.bodymodels.transform.rototranslate for `model`."""
    rotation = np.asarray(rotation, np.float64)
    translation = np.asarray(translation_m, np.float64).reshape(3)
    return rototranslate(parameters, rotation, -rotation.T @ translation, model=model)


def apply_rotvec_translation(parameters, rotvec, translation_m, *, model=None):
    """apply_rigid with the rotation as an axis-angle vector (EasyMocap's Rh), translation in metres (Th)."""
    from posepile.bodymodels.model import rotvec_to_matrix
    return apply_rigid(parameters, rotvec_to_matrix(np.asarray(rotvec, np.float64).reshape(3)), translation_m,
                       model=model)
