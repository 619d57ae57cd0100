"""Pinhole cameras estimated from 2D-3D point correspondences (e.g. a person's joints in one frame).

Model: no lens distortion, square pixels, principal point fixed (by default at the image centre). Pixel
centres are at integer coordinates (docs/interfaces.md), so the centre of a W×H image is ((W-1)/2, (H-1)/2).

With a known focal length only the extrinsics are solved (PnP). Without it, the focal length is searched over a
range of horizontal fields of view: a coarse grid, a bounded 1D minimisation of the RMS reprojection error after
PnP at each focal length, then a joint least-squares polish of focal length and pose.
"""
import logging

import cv2
import numpy as np
import scipy.optimize

from posepile.util.camera import Camera

MIN_POINTS = 6
N_FOCAL_GRID = 25

log = logging.getLogger(__name__)


def estimate_camera(world_points, image_points, image_size, focal_px=None, fov_range_deg=(30, 100),
                    principal_point=None):
    """Camera that projects `world_points` onto `image_points`, and its RMS reprojection error.

    Args:
        world_points: (N, 3) points in world coordinates, mm.
        image_points: (N, 2) their pixel coordinates, px (pixel centres at integer coordinates).
            Rows with a NaN in either array are ignored; at least MIN_POINTS (6) valid rows are needed.
        image_size: (width, height) in px.
        focal_px: focal length in px. If given, the intrinsics are fixed and only the pose is solved.
            If None, it is searched over horizontal fields of view `fov_range_deg` (degrees),
            focal = (width / 2) / tan(fov / 2).
        fov_range_deg: (min, max) horizontal field of view in degrees for the focal search.
        principal_point: (x, y) in px; default the image centre ((width - 1) / 2, (height - 1) / 2).

    Returns:
        (camera, rms_px): a `Camera` (optical centre in world mm, no distortion; its world_up is the default
        and should be set by the caller) and the root-mean-square Euclidean reprojection error over the valid
        points, px.

    Raises:
        ValueError: fewer than MIN_POINTS valid correspondences, or no pose puts all points in front of the
            camera.
    """
    world_points, image_points = _valid_correspondences(world_points, image_points)
    width, height = image_size
    if principal_point is None:
        principal_point = ((width - 1) / 2, (height - 1) / 2)
    principal_point = np.asarray(principal_point, np.float64)

    if focal_px is None:
        focal_px = _search_focal(world_points, image_points, width, principal_point, fov_range_deg)
        rvec, tvec, focal_px = _polish_focal_and_pose(world_points, image_points, principal_point, focal_px)
    else:
        rvec, tvec, _ = _solve_pose(world_points, image_points, _intrinsics(focal_px, principal_point))
        if rvec is None:
            raise ValueError(
                f'No camera pose with focal length {focal_px} px puts all {len(world_points)} points in front')

    intrinsics = _intrinsics(focal_px, principal_point)
    rms = _rms_error(world_points, image_points, intrinsics, rvec, tvec)
    rot = cv2.Rodrigues(rvec)[0]
    camera = Camera(optical_center=-rot.T @ tvec, rot_world_to_cam=rot, intrinsic_matrix=intrinsics)
    return camera, rms


def _valid_correspondences(world_points, image_points):
    world_points = np.asarray(world_points, np.float64).reshape(-1, 3)
    image_points = np.asarray(image_points, np.float64).reshape(-1, 2)
    if len(world_points) != len(image_points):
        raise ValueError(f'Got {len(world_points)} world points but {len(image_points)} image points')
    is_valid = np.all(np.isfinite(world_points), axis=1) & np.all(np.isfinite(image_points), axis=1)
    n_valid = int(np.count_nonzero(is_valid))
    if n_valid < MIN_POINTS:
        raise ValueError(
            f'Camera estimation needs at least {MIN_POINTS} valid (non-NaN) 2D-3D correspondences, '
            f'got {n_valid} of {len(world_points)}')
    return world_points[is_valid], image_points[is_valid]


def _intrinsics(focal_px, principal_point):
    return np.array([[focal_px, 0, principal_point[0]], [0, focal_px, principal_point[1]], [0, 0, 1]])


def _focal_from_fov(fov_deg, width):
    return (width / 2) / np.tan(np.deg2rad(fov_deg) / 2)


def _search_focal(world_points, image_points, width, principal_point, fov_range_deg):
    """Focal length (px) minimising the RMS error after PnP: a grid over the FOV range, then a 1D refinement."""
    fov_min, fov_max = sorted(fov_range_deg)
    # log-spaced focal lengths: the error profile is roughly scale-invariant in f
    focals = np.geomspace(_focal_from_fov(fov_max, width), _focal_from_fov(fov_min, width), N_FOCAL_GRID)

    def rms_at(focal):
        return _solve_pose(world_points, image_points, _intrinsics(focal, principal_point))[2]

    errors = np.array([rms_at(f) for f in focals])
    if not np.any(np.isfinite(errors)):
        raise ValueError(
            f'No camera with a horizontal FOV in {fov_range_deg} deg puts all points in front of it')
    best = int(np.nanargmin(np.where(np.isfinite(errors), errors, np.nan)))
    low, high = focals[max(best - 1, 0)], focals[min(best + 1, len(focals) - 1)]
    result = scipy.optimize.minimize_scalar(
        lambda log_f: rms_at(np.exp(log_f)), bounds=(np.log(low), np.log(high)), method='bounded',
        options=dict(xatol=1e-6))
    focal = float(np.exp(result.x)) if result.fun <= errors[best] else float(focals[best])
    log.debug('Focal search: grid best %.2f px (rms %.4f), refined %.2f px', focals[best], errors[best], focal)
    return focal


def _polish_focal_and_pose(world_points, image_points, principal_point, focal_px):
    """Joint least-squares refinement of log-focal and pose, starting from PnP at `focal_px`."""
    rvec, tvec, _ = _solve_pose(world_points, image_points, _intrinsics(focal_px, principal_point))

    def residuals(params):
        intrinsics = _intrinsics(np.exp(params[0]), principal_point)
        projected = cv2.projectPoints(world_points, params[1:4], params[4:7], intrinsics, None)[0]
        return (projected.reshape(-1, 2) - image_points).reshape(-1)

    start = np.concatenate([[np.log(focal_px)], rvec, tvec])
    result = scipy.optimize.least_squares(residuals, start, method='lm', xtol=1e-12, ftol=1e-12)
    new_focal, new_rvec, new_tvec = float(np.exp(result.x[0])), result.x[1:4], result.x[4:7]
    old_cost = np.sum(residuals(start) ** 2)
    if (result.cost * 2 <= old_cost
            and _all_in_front(world_points, new_rvec, new_tvec)):
        return new_rvec, new_tvec, new_focal
    return rvec, tvec, focal_px


def _solve_pose(world_points, image_points, intrinsics):
    """Best pose (rvec, tvec, rms px) over several PnP initialisations refined by Levenberg-Marquardt.

    Only poses with all points in front of the camera count; returns (None, None, inf) if there is none.
    """
    best = (None, None, np.inf)
    for rvec, tvec in _pnp_candidates(world_points, image_points, intrinsics):
        rvec, tvec = cv2.solvePnPRefineLM(
            world_points, image_points, intrinsics, None, rvec.copy(), tvec.copy(),
            criteria=(cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 100, 1e-12))
        rvec, tvec = rvec.reshape(3), tvec.reshape(3)
        if not _all_in_front(world_points, rvec, tvec):
            continue
        rms = _rms_error(world_points, image_points, intrinsics, rvec, tvec)
        if rms < best[2]:
            best = (rvec, tvec, rms)
    return best


def _pnp_candidates(world_points, image_points, intrinsics):
    """Initial poses from SQPnP, EPnP and EPnP-RANSAC (the latter for gross outliers)."""
    candidates = []
    for method in (cv2.SOLVEPNP_SQPNP, cv2.SOLVEPNP_EPNP):
        try:
            ok, rvec, tvec = cv2.solvePnP(world_points, image_points, intrinsics, None, flags=method)
        except cv2.error:
            continue
        if ok and np.all(np.isfinite(rvec)) and np.all(np.isfinite(tvec)):
            candidates.append((rvec, tvec))
    try:
        ok, rvec, tvec, inliers = cv2.solvePnPRansac(
            world_points, image_points, intrinsics, None, reprojectionError=4.0, iterationsCount=200,
            flags=cv2.SOLVEPNP_EPNP)
    except cv2.error:
        ok = False
    if ok and inliers is not None and len(inliers) >= MIN_POINTS and np.all(np.isfinite(tvec)):
        candidates.append((rvec, tvec))
    return candidates


def _all_in_front(world_points, rvec, tvec):
    rot = cv2.Rodrigues(np.asarray(rvec, np.float64))[0]
    depths = world_points @ rot[2] + np.asarray(tvec, np.float64).reshape(3)[2]
    return bool(np.all(depths > 0))


def _rms_error(world_points, image_points, intrinsics, rvec, tvec):
    projected = cv2.projectPoints(world_points, rvec, tvec, intrinsics, None)[0].reshape(-1, 2)
    return float(np.sqrt(np.mean(np.sum((projected - image_points) ** 2, axis=1))))
