"""Pinhole camera with lens distortion, and image/point/box reprojection between cameras.

Conventions (see docs/interfaces.md):
- `R` rotates world to camera, `t` is the optical centre in world coordinates (mm):
  `X_cam = R @ (X_world - t)`. The camera frame has x right, y down, z forward.
- Pixel centres are at integer coordinates; `K` maps normalised coordinates to pixels.
- Distortion models:
  - ``'opencv'``: coefficients (k1, k2, p1, p2, k3[, k4, k5, k6]) exactly as OpenCV's `projectPoints`.
  - ``'h36m'``: Human3.6M's model with coefficients (k1, k2, k3, p_a, p_b); its tangential term is not
    OpenCV's (datasets.md): ``tan = p_a*y + p_b*x``, ``x_d = x*(radial + tan) + p_b*r2``,
    ``y_d = y*(radial + tan) + p_a*r2``.
  - ``'fisheye'``: the OpenCV fisheye / Kannala-Brandt model with coefficients (k1, k2, k3, k4), as
    ``cv2.fisheye``, COLMAP's OPENCV_FISHEYE and GoPro/Aria KB4 calibrations use it: for a camera-frame point
    at angle ``theta`` from the optical axis, ``theta_d = theta*(1 + k1*theta^2 + k2*theta^4 + k3*theta^6 +
    k4*theta^8)`` and the normalised point is ``theta_d * (x, y) / hypot(x, y)``.
  - ``'fisheye624'``: Project Aria's FisheyeRadTanThinPrism ("Fisheye624") with coefficients
    (k0..k5, p0, p1, s0..s3): the same radial polynomial in theta with six terms giving (x_r, y_r), then
    ``x_d = x_r + (2*x_r^2 + r_d^2)*p0 + 2*x_r*y_r*p1 + s0*r_d^2 + s1*r_d^4`` and
    ``y_d = y_r + (2*y_r^2 + r_d^2)*p1 + 2*x_r*y_r*p0 + s2*r_d^2 + s3*r_d^4`` with ``r_d^2 = x_r^2 + y_r^2``.
    Aria's single focal length f goes into K as fx = fy = f (`camera_from_fisheye624_params`).

  For the two fisheye models, ``theta = atan2(hypot(x, y), z)``, so rays up to 180 deg from the axis (fields of
  view over 180 deg, points slightly behind the camera plane) project correctly; OpenCV and Aria's tools use
  atan(r) of x/z and are equal to this for z > 0 only. The valid field is ``theta <= theta_max``, where
  theta_max is the angle at which theta_d(theta) stops increasing (else pi); beyond it the polynomial folds
  back and the lens model means nothing: such points project to NaN, and pixels beyond theta_d(theta_max)
  (`valid_image_radius`) back-project to NaN. A calibration's own, smaller field (e.g. Aria's max solid angle,
  a 190 deg lens' 95 deg) is passed as `max_angle_from_axis_deg` to `is_in_field`, `valid_image_radius` and
  `valid_pixel_mask`. `image_to_camera` returns points at z-depth, which does not exist for rays at or beyond
  90 deg: those are NaN there; `image_to_rays` returns unit directions valid over the whole field, and image
  reprojection uses rays, so a pinhole crop can be cut from any part of a fisheye image.
"""
import copy as copy_module

import cv2
import numpy as np

DISTORTION_MODELS = ('opencv', 'h36m', 'fisheye', 'fisheye624')
# models that project through the angle from the optical axis; their coefficients are kept even if all zero
# (an all-zero 'fisheye' lens is the equidistant projection, not a pinhole)
FISHEYE_MODELS = ('fisheye', 'fisheye624')
N_FISHEYE_COEFFS = {'fisheye': 4, 'fisheye624': 12}


class Camera:
    def __init__(
            self, optical_center=None, rot_world_to_cam=None, intrinsic_matrix=None,
            distortion_coeffs=None, world_up=(0, 0, 1), extrinsic_matrix=None,
            distortion_model='opencv'):
        if extrinsic_matrix is not None:
            if optical_center is not None or rot_world_to_cam is not None:
                raise ValueError('Give either extrinsic_matrix or optical_center/rot_world_to_cam, not both')
            extrinsic_matrix = np.asarray(extrinsic_matrix, np.float64)
            rot_world_to_cam = extrinsic_matrix[:3, :3]
            # Solve rather than transpose: published rotations are often rounded and not exactly
            # orthonormal, and R @ (X - C) must reproduce R @ X + t exactly.
            optical_center = -np.linalg.solve(rot_world_to_cam, extrinsic_matrix[:3, 3])

        self.R = np.eye(3) if rot_world_to_cam is None else np.array(rot_world_to_cam, np.float64)
        self.t = np.zeros(3) if optical_center is None else np.array(
            optical_center, np.float64).reshape(3)
        self.intrinsic_matrix = (
            np.eye(3) if intrinsic_matrix is None else np.array(intrinsic_matrix, np.float64))
        if self.R.shape != (3, 3) or self.intrinsic_matrix.shape != (3, 3):
            raise ValueError(
                f'Rotation and intrinsic matrix must be 3x3, got {self.R.shape} and '
                f'{self.intrinsic_matrix.shape}')
        if distortion_model not in DISTORTION_MODELS:
            raise ValueError(f'Unknown distortion model {distortion_model!r}; use one of {DISTORTION_MODELS}')
        self.distortion_model = distortion_model
        self.distortion_coeffs = None
        if distortion_coeffs is not None:
            coeffs = np.array(distortion_coeffs, np.float64).reshape(-1)
            if distortion_model == 'opencv' and len(coeffs) not in (4, 5, 8):
                raise ValueError(f'OpenCV distortion needs 4, 5 or 8 coefficients, got {len(coeffs)}')
            if distortion_model == 'h36m' and len(coeffs) != 5:
                raise ValueError(f'H36M distortion needs 5 coefficients (k1,k2,k3,p_a,p_b), got {len(coeffs)}')
            if distortion_model in FISHEYE_MODELS:
                if len(coeffs) != N_FISHEYE_COEFFS[distortion_model]:
                    raise ValueError(
                        f'{distortion_model} distortion needs {N_FISHEYE_COEFFS[distortion_model]} coefficients '
                        f'({"k1..k4" if distortion_model == "fisheye" else "k0..k5, p0, p1, s0..s3"}), '
                        f'got {len(coeffs)}')
                self.distortion_coeffs = coeffs
            elif np.any(coeffs != 0):
                if distortion_model == 'opencv' and len(coeffs) == 4:
                    coeffs = np.concatenate([coeffs, [0.0]])
                self.distortion_coeffs = coeffs
        self.world_up = np.array(world_up, np.float64)
        self._max_valid_r2 = None

    # ----------------------------------------------------------------------------------------------
    # Construction helpers
    @staticmethod
    def from_fov(fov_degrees, imshape, world_up=(0, -1, 0)):
        """Camera at the origin looking along +z with the given diagonal-free horizontal-or-vertical FOV.

        The field of view applies to the larger image side.
        """
        height, width = imshape[:2]
        f = max(height, width) / 2 / np.tan(np.deg2rad(fov_degrees) / 2)
        intrinsics = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
        return Camera(intrinsic_matrix=intrinsics, world_up=world_up)

    def copy(self):
        # a shallow copy with fresh arrays keeps the cached lens limit (deepcopy would go through
        # __getstate__, which drops it, and recomputing it costs milliseconds per crop)
        new = object.__new__(type(self))
        new.__dict__ = {k: (v.copy() if isinstance(v, np.ndarray) else copy_module.copy(v))
                        for k, v in self.__dict__.items()}
        return new

    def has_distortion(self):
        return self.distortion_coeffs is not None

    def get_extrinsic_matrix(self):
        """4x4 world-to-camera matrix with translation in mm."""
        result = np.eye(4)
        result[:3, :3] = self.R
        result[:3, 3] = -self.R @ self.t
        return result

    def allclose(self, other, atol=1e-6):
        def same_dist(a, b):
            if a is None or b is None:
                return a is None and b is None
            return a.shape == b.shape and np.allclose(a, b, atol=atol)

        return (np.allclose(self.R, other.R, atol=atol) and np.allclose(self.t, other.t, atol=atol * 1e3)
                and np.allclose(self.intrinsic_matrix, other.intrinsic_matrix, atol=atol * 1e3)
                and self.distortion_model == other.distortion_model
                and same_dist(self.distortion_coeffs, other.distortion_coeffs)
                and np.allclose(self.world_up, other.world_up, atol=atol))

    def __repr__(self):
        return (f'Camera(optical_center={self.t.tolist()}, R={self.R.tolist()}, '
                f'K={self.intrinsic_matrix.tolist()}, distortion={self.distortion_model}:'
                f'{None if self.distortion_coeffs is None else self.distortion_coeffs.tolist()})')

    # ----------------------------------------------------------------------------------------------
    # Point transforms
    def world_to_camera(self, points):
        points = np.asarray(points, np.float64)
        return (points - self.t) @ self.R.T

    def camera_to_world(self, points):
        points = np.asarray(points, np.float64)
        return points @ self.R + self.t

    def camera_to_image(self, points):
        """Project camera-frame points (..., 3) to pixels (..., 2), applying lens distortion.

        Fisheye models: NaN for points beyond the model's valid field (theta > theta_max, see the module doc).
        """
        points = np.asarray(points, np.float64)
        if self.is_fisheye():
            return self._normalized_to_pixels(self._fisheye_project_rays(points))
        with np.errstate(divide='ignore', invalid='ignore'):
            normalized = points[..., :2] / points[..., 2:3]
        if self.distortion_coeffs is not None:
            normalized = self._distort_normalized(normalized)
        return self._normalized_to_pixels(normalized)

    def world_to_image(self, points):
        return self.camera_to_image(self.world_to_camera(points))

    def image_to_camera(self, points, depth=1):
        """Back-project pixels (..., 2) to camera-frame points at the given depth (z, mm).

        Fisheye models: NaN for pixels outside the valid image circle and for rays at or beyond 90 deg from
        the axis (they have no point at a positive z-depth; use `image_to_rays`).
        """
        normalized = self._pixels_to_normalized(np.asarray(points, np.float64))
        if self.distortion_coeffs is not None:
            normalized = self._undistort_normalized(normalized)
        depth = np.asarray(depth, np.float64)[..., np.newaxis]
        ones = np.where(np.isnan(normalized[..., :1]), np.nan, 1.0)  # NaN in (or no such point) -> all NaN
        return np.concatenate([normalized, ones], axis=-1) * depth

    def image_to_rays(self, points):
        """Back-project pixels (..., 2) to unit-length viewing directions (..., 3) in the camera frame.

        Valid over the whole field of a fisheye lens, including rays at or beyond 90 deg from the axis; NaN for
        pixels outside the valid image circle.
        """
        normalized = self._pixels_to_normalized(np.asarray(points, np.float64))
        if self.is_fisheye():
            return self._fisheye_unproject_rays(normalized)
        if self.distortion_coeffs is not None:
            normalized = self._undistort_normalized(normalized)
        rays = np.concatenate([normalized, np.ones_like(normalized[..., :1])], axis=-1)
        return rays / np.linalg.norm(rays, axis=-1, keepdims=True)

    def image_to_world(self, points, depth):
        return self.camera_to_world(self.image_to_camera(points, depth))

    def undistort_points(self, points):
        """Distorted pixel coordinates -> the pixels where an undistorted camera (same K) sees them.

        Fisheye models: NaN where the pinhole image does not exist (rays at or beyond 90 deg).
        """
        points = np.asarray(points, np.float64)
        if self.distortion_coeffs is None:
            return points.copy()
        return self._normalized_to_pixels(self._undistort_normalized(self._pixels_to_normalized(points)))

    def distort_points(self, points):
        """Undistorted pixel coordinates (same K) -> distorted pixel coordinates."""
        points = np.asarray(points, np.float64)
        if self.distortion_coeffs is None:
            return points.copy()
        return self._normalized_to_pixels(self._distort_normalized(self._pixels_to_normalized(points)))

    # ----------------------------------------------------------------------------------------------
    # The calibrated field (egocentric / fisheye cameras)
    def is_fisheye(self):
        """True for a 'fisheye' or 'fisheye624' camera that still has its lens model (not undistorted)."""
        return self.distortion_model in FISHEYE_MODELS and self.distortion_coeffs is not None

    def max_valid_angle_from_axis(self):
        """Largest angle (radians) from the optical axis that the lens model maps one-to-one.

        Fisheye models: theta_max (pi if theta_d keeps growing up to pi). Pinhole models: just under pi/2,
        or less where an OpenCV polynomial folds back.
        """
        if self.is_fisheye():
            return self._get_fisheye_theta_max()
        if self.distortion_coeffs is not None:
            max_r2 = self._get_max_valid_r2()
            if np.isfinite(max_r2):
                return float(np.arctan(np.sqrt(max_r2)))
        return np.pi / 2

    def is_in_field(self, points, imshape=None, max_angle_from_axis_deg=None):
        """Bool (...): whether camera-frame points (..., 3, mm) are inside the calibrated field.

        False for non-finite points, for points behind a pinhole camera (z <= 0) and for points beyond the
        lens model's valid angle (`max_valid_angle_from_axis`) or beyond `max_angle_from_axis_deg` (e.g. 95
        for a 190 deg lens; Aria calibrations give it as the max solid angle). With `imshape` (H, W), the
        projection must also fall on the image (pixel centres at integers, edges at -0.5 and W - 0.5).
        """
        points = np.asarray(points, np.float64)
        finite = np.all(np.isfinite(points), axis=-1)
        safe = np.where(finite[..., np.newaxis], points, 0.0)
        theta = np.arctan2(np.hypot(safe[..., 0], safe[..., 1]), safe[..., 2])
        limit = self.max_valid_angle_from_axis()
        if max_angle_from_axis_deg is not None:
            limit = min(limit, np.deg2rad(max_angle_from_axis_deg))
        inside = finite & (theta <= limit)
        if not self.is_fisheye():
            inside &= safe[..., 2] > 0
        if imshape is not None:
            with np.errstate(invalid='ignore'):
                pixels = self.camera_to_image(np.where(inside[..., np.newaxis], safe, [0.0, 0.0, 1.0]))
                inside &= ((pixels[..., 0] >= -0.5) & (pixels[..., 0] <= imshape[1] - 0.5)
                           & (pixels[..., 1] >= -0.5) & (pixels[..., 1] <= imshape[0] - 0.5))
        return inside

    def valid_image_radius(self, max_angle_from_axis_deg=None):
        """Radius (px, about the principal point) of the image circle that the valid field maps into.

        Pixels farther from the principal point see no valid ray (or one beyond `max_angle_from_axis_deg`).
        Measured with the smaller focal length; for 'fisheye624' the radial part only (its tangential and
        thin-prism terms move the circle by well under a pixel for real calibrations). inf for a pinhole
        camera without an angle limit.
        """
        K = self.intrinsic_matrix
        focal = min(K[0, 0], K[1, 1])
        limit = self.max_valid_angle_from_axis()
        if max_angle_from_axis_deg is not None:
            limit = min(limit, np.deg2rad(max_angle_from_axis_deg))
        if self.is_fisheye():
            return float(focal * self._fisheye_theta_d(limit))
        if limit >= np.pi / 2:
            return np.inf
        radius = np.tan(limit)
        if self.distortion_coeffs is not None:
            radius = np.linalg.norm(self._distort_normalized(np.array([radius, 0.0]), check_validity=False))
        return float(focal * radius)

    def valid_pixel_mask(self, imshape, max_angle_from_axis_deg=None):
        """Bool (H, W): pixels whose back-projected ray is valid (and within `max_angle_from_axis_deg`)."""
        height, width = imshape[:2]
        ys, xs = np.mgrid[:height, :width].astype(np.float64)
        rays = self.image_to_rays(np.stack([xs, ys], axis=-1))
        with np.errstate(invalid='ignore'):
            valid = np.all(np.isfinite(rays), axis=-1)
            if max_angle_from_axis_deg is not None:
                valid &= rays[..., 2] >= np.cos(np.deg2rad(max_angle_from_axis_deg))
        return valid

    def _normalized_to_pixels(self, normalized):
        K = self.intrinsic_matrix
        x, y = normalized[..., 0], normalized[..., 1]
        u = K[0, 0] * x + K[0, 1] * y + K[0, 2]
        v = K[1, 1] * y + K[1, 2]
        return np.stack([u, v], axis=-1)

    def _pixels_to_normalized(self, pixels):
        K = self.intrinsic_matrix
        y = (pixels[..., 1] - K[1, 2]) / K[1, 1]
        x = (pixels[..., 0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
        return np.stack([x, y], axis=-1)

    # ----------------------------------------------------------------------------------------------
    # Distortion models (in normalised image coordinates)
    def _distort_normalized(self, xy, check_validity=True):
        if self.is_fisheye():  # (x, y) is the pinhole point (x/z, y/z) of a ray in front of the camera
            return self._fisheye_project_rays(np.concatenate([xy, np.ones_like(xy[..., :1])], axis=-1))
        x, y = xy[..., 0], xy[..., 1]
        d = self.distortion_coeffs
        r2 = x * x + y * y
        if self.distortion_model == 'h36m':
            k1, k2, k3, p_a, p_b = d
            radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
            tangential = p_a * y + p_b * x
            xd = x * (radial + tangential) + p_b * r2
            yd = y * (radial + tangential) + p_a * r2
        else:
            k1, k2, p1, p2, k3 = d[:5]
            radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
            if len(d) == 8:
                k4, k5, k6 = d[5:]
                radial = radial / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
            xy2 = 2 * x * y
            xd = x * radial + p1 * xy2 + p2 * (r2 + 2 * x * x)
            yd = y * radial + p1 * (r2 + 2 * y * y) + p2 * xy2
        result = np.stack([xd, yd], axis=-1)
        if check_validity:
            # Beyond the radius where the radial mapping stops growing, the polynomial folds back and
            # far-away rays would land inside the image. Mark such points invalid.
            with np.errstate(invalid='ignore'):
                result[r2 > self._get_max_valid_r2()] = np.nan
        return result

    def _get_max_valid_r2(self):
        key = (self.distortion_model, tuple(np.asarray(self.distortion_coeffs, np.float64).tolist()))
        cached = self._max_valid_r2
        if cached is not None and isinstance(cached, tuple) and cached[0] == key:
            return cached[1]
        self._max_valid_r2 = None
        if self._max_valid_r2 is None:
            r = np.linspace(0, 5, 50001)[1:]
            xy = np.stack([r, np.zeros_like(r)], axis=-1)
            # Check along both axes and the diagonal: tangential terms make the mapping anisotropic.
            dirs = [np.array([1, 0]), np.array([0, 1]), np.array([1, 1]) / np.sqrt(2),
                    np.array([1, -1]) / np.sqrt(2)]
            limit = np.inf
            for direction in dirs:
                xy = r[:, np.newaxis] * direction
                distorted = self._distort_normalized(xy, check_validity=False)
                radius = np.linalg.norm(distorted, axis=-1)
                decreasing = np.nonzero(np.diff(radius) <= 0)[0]
                if len(decreasing) > 0:
                    limit = min(limit, r[decreasing[0]] ** 2)
            self._max_valid_r2 = (key, limit)
        return limit

    def _undistort_normalized(self, xy_distorted, n_iter=20):
        """Invert the distortion by Newton's method with a numerical Jacobian (vectorised)."""
        xy_distorted = np.asarray(xy_distorted, np.float64)
        if self.is_fisheye():
            rays = self._fisheye_unproject_rays(xy_distorted)
            with np.errstate(divide='ignore', invalid='ignore'):
                z = np.where(rays[..., 2] > 0, rays[..., 2], np.nan)
                return rays[..., :2] / z[..., np.newaxis]
        shape = xy_distorted.shape
        target = xy_distorted.reshape(-1, 2)
        estimate = target.copy()
        eps = 1e-7
        active = np.all(np.isfinite(target), axis=1)
        for _ in range(n_iter):
            if not np.any(active):
                break
            est = estimate[active]
            f = self._distort_normalized(est, check_validity=False) - target[active]
            fx = (self._distort_normalized(est + [eps, 0], check_validity=False)
                  - self._distort_normalized(est - [eps, 0], check_validity=False)) / (2 * eps)
            fy = (self._distort_normalized(est + [0, eps], check_validity=False)
                  - self._distort_normalized(est - [0, eps], check_validity=False)) / (2 * eps)
            det = fx[:, 0] * fy[:, 1] - fy[:, 0] * fx[:, 1]
            with np.errstate(divide='ignore', invalid='ignore'):
                dx = (fy[:, 1] * f[:, 0] - fy[:, 0] * f[:, 1]) / det
                dy = (-fx[:, 1] * f[:, 0] + fx[:, 0] * f[:, 1]) / det
            step = np.stack([dx, dy], axis=-1)
            step[~np.isfinite(step)] = 0
            estimate[active] = est - step
            # 1e-11 in normalised coordinates is ~1e-8 px; the numerical Jacobian cannot do much better
            still = np.max(np.abs(step), axis=1) > 1e-11
            active_idx = np.nonzero(active)[0]
            active[active_idx[~still]] = False
        return estimate.reshape(shape)

    # ----------------------------------------------------------------------------------------------
    # Fisheye models ('fisheye' = Kannala-Brandt / OpenCV fisheye, 'fisheye624' = Aria's)
    def _radial_coeffs(self):
        return self.distortion_coeffs[:4] if self.distortion_model == 'fisheye' else self.distortion_coeffs[:6]

    def _fisheye_theta_d(self, theta):
        """theta_d = theta * (1 + k1 theta^2 + k2 theta^4 + ...)."""
        theta = np.asarray(theta, np.float64)
        theta2 = theta * theta
        poly = np.zeros_like(theta)
        for k in self._radial_coeffs()[::-1]:
            poly = (poly + k) * theta2
        return theta * (1 + poly)

    def _fisheye_theta_d_and_slope(self, theta):
        theta2 = theta * theta
        poly = np.zeros_like(theta)
        slope = np.zeros_like(theta)
        coeffs = self._radial_coeffs()
        for i in range(len(coeffs) - 1, -1, -1):
            poly = (poly + coeffs[i]) * theta2
            slope = (slope + (2 * i + 3) * coeffs[i]) * theta2
        return theta * (1 + poly), 1 + slope

    def _get_fisheye_theta_max(self):
        # cached in the same slot as the OpenCV limit; the key includes the model name
        key = (self.distortion_model, tuple(self.distortion_coeffs.tolist()))
        cached = self._max_valid_r2
        if cached is not None and isinstance(cached, tuple) and cached[0] == key:
            return cached[1]
        theta = np.linspace(0, np.pi, 20001)
        slope = self._fisheye_theta_d_and_slope(theta)[1]
        not_increasing = np.nonzero(slope <= 0)[0]
        if len(not_increasing) == 0:
            limit = np.pi
        else:  # refine the first zero of the slope by bisection
            lo, hi = theta[not_increasing[0] - 1], theta[not_increasing[0]]
            for _ in range(60):
                mid = (lo + hi) / 2
                if self._fisheye_theta_d_and_slope(np.array(mid))[1] > 0:
                    lo = mid
                else:
                    hi = mid
            limit = float(lo)
        self._max_valid_r2 = (key, limit)
        return limit

    def _fisheye_project_rays(self, points):
        """Camera-frame points (..., 3) -> distorted normalised coordinates (..., 2); NaN beyond theta_max."""
        x, y, z = points[..., 0], points[..., 1], points[..., 2]
        r = np.hypot(x, y)
        theta = np.arctan2(r, z)
        theta_d = self._fisheye_theta_d(theta)
        with np.errstate(divide='ignore', invalid='ignore'):
            # on the axis (r == 0) the direction does not matter in front of the camera
            factor = np.where(r > 0, theta_d / r, np.where(z > 0, 1.0, np.nan))
            factor = np.where(theta <= self._get_fisheye_theta_max(), factor, np.nan)
        xr, yr = x * factor, y * factor
        if self.distortion_model == 'fisheye624':
            xr, yr = self._fisheye624_tangential_thin_prism(xr, yr)
        return np.stack([xr, yr], axis=-1)

    def _fisheye624_tangential_thin_prism(self, xr, yr):
        p0, p1, s0, s1, s2, s3 = self.distortion_coeffs[6:]
        with np.errstate(invalid='ignore', over='ignore'):
            rd2 = xr * xr + yr * yr
            twice_dot = 2 * (p0 * xr + p1 * yr)
            xd = xr + twice_dot * xr + rd2 * (p0 + s0 + s1 * rd2)
            yd = yr + twice_dot * yr + rd2 * (p1 + s2 + s3 * rd2)
        return xd, yd

    def _fisheye624_invert_tangential_thin_prism(self, xd, yd, max_iter=30):
        """Newton's method with the analytic Jacobian; NaN where it does not converge."""
        p0, p1, s0, s1, s2, s3 = self.distortion_coeffs[6:]
        xr, yr = xd.copy(), yd.copy()
        for _ in range(max_iter):
            fx, fy = self._fisheye624_tangential_thin_prism(xr, yr)
            with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
                fx -= xd
                fy -= yd
                rd2 = xr * xr + yr * yr
                prism_x = 2 * (s0 + 2 * s1 * rd2)
                prism_y = 2 * (s2 + 2 * s3 * rd2)
                j00 = 1 + 6 * p0 * xr + 2 * p1 * yr + xr * prism_x
                j01 = 2 * p0 * yr + 2 * p1 * xr + yr * prism_x
                j10 = 2 * p0 * yr + 2 * p1 * xr + xr * prism_y
                j11 = 1 + 2 * p0 * xr + 6 * p1 * yr + yr * prism_y
                det = j00 * j11 - j01 * j10
                step_x = (j11 * fx - j01 * fy) / det
                step_y = (-j10 * fx + j00 * fy) / det
            xr -= step_x
            yr -= step_y
            with np.errstate(invalid='ignore', over='ignore'):
                relative_step = (np.abs(step_x) + np.abs(step_y)) / (1 + np.abs(xr) + np.abs(yr))
                if not np.any(relative_step > 1e-14):  # (NaN compares False)
                    break
        fx, fy = self._fisheye624_tangential_thin_prism(xr, yr)
        with np.errstate(invalid='ignore', over='ignore'):
            bad = ~(np.abs(fx - xd) + np.abs(fy - yd) <= 1e-10 * (1 + np.abs(xd) + np.abs(yd)))
        return np.where(bad, np.nan, xr), np.where(bad, np.nan, yr)

    def _fisheye_theta_from_theta_d(self, theta_d, max_iter=100):
        """Solve theta_d(theta) = theta_d on [0, theta_max] (Newton, kept inside a bisection bracket).

        NaN where theta_d exceeds theta_d(theta_max), i.e. outside the valid image circle.
        """
        theta_max = self._get_fisheye_theta_max()
        theta_d_max = float(self._fisheye_theta_d(theta_max))
        with np.errstate(invalid='ignore'):
            valid = np.isfinite(theta_d) & (theta_d <= theta_d_max * (1 + 1e-12))
        target = np.where(valid, np.minimum(theta_d, theta_d_max), 0.0)
        lo = np.zeros_like(target)
        hi = np.full_like(target, theta_max)
        # start from a table of the (increasing) radial map: Newton then needs two or three steps
        table_theta = np.linspace(0, theta_max, 4097)
        theta = np.interp(target, self._fisheye_theta_d(table_theta), table_theta)
        for _ in range(max_iter):
            value, slope = self._fisheye_theta_d_and_slope(theta)
            error = value - target
            lo = np.where(error < 0, theta, lo)
            hi = np.where(error > 0, theta, hi)
            with np.errstate(divide='ignore', invalid='ignore'):
                new = theta - error / slope
            outside = ~((new >= lo) & (new <= hi))
            new = np.where(outside, (lo + hi) / 2, new)
            step = np.abs(new - theta)
            theta = new
            if not np.max(step, initial=0) > 1e-14:  # 1e-14 rad: ~1e-11 px at f = 1000 px
                break
        return np.where(valid, theta, np.nan)

    def _fisheye_unproject_rays(self, xy_distorted):
        """Distorted normalised coordinates (..., 2) -> unit rays (..., 3); NaN outside the valid circle."""
        xy_distorted = np.asarray(xy_distorted, np.float64)
        xr, yr = xy_distorted[..., 0], xy_distorted[..., 1]
        if self.distortion_model == 'fisheye624':
            xr, yr = self._fisheye624_invert_tangential_thin_prism(xr, yr)
        theta_d = np.hypot(xr, yr)
        theta = self._fisheye_theta_from_theta_d(theta_d)
        with np.errstate(divide='ignore', invalid='ignore'):
            factor = np.where(theta_d > 0, np.sin(theta) / theta_d, 1.0)
        return np.stack([xr * factor, yr * factor, np.cos(theta)], axis=-1)

    # ----------------------------------------------------------------------------------------------
    # Camera modifications (all in place, return self for chaining)
    def turn_towards(self, target_image_point=None, target_world_point=None):
        """Rotate the camera about its optical centre so that it looks at the target.

        The new orientation is upright with respect to `world_up` (no roll), as used for person crops.
        """
        if target_world_point is None:
            if target_image_point is None:
                raise ValueError('Give target_image_point or target_world_point')
            # along the viewing ray (valid for fisheye rays at or beyond 90 deg, unlike a z-depth)
            target_world_point = self.camera_to_world(
                self.image_to_rays(np.asarray(target_image_point, np.float64)) * 1000.0)
        forward = np.asarray(target_world_point, np.float64) - self.t
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, self.world_up)
        norm_right = np.linalg.norm(right)
        if norm_right < 1e-8:
            # Looking straight along the up vector: keep the current right axis as far as possible.
            right = self.R[0] - np.dot(self.R[0], forward) * forward
            norm_right = np.linalg.norm(right)
        right /= norm_right
        down = np.cross(forward, right)
        self.R = np.stack([right, down, forward], axis=0)
        return self

    def rotate(self, yaw=0.0, pitch=0.0, roll=0.0):
        """Rotate about the camera's own y (yaw), x (pitch) and z (roll) axes, radians."""
        rot_yaw = cv2.Rodrigues(np.array([0.0, yaw, 0.0]))[0]
        rot_pitch = cv2.Rodrigues(np.array([pitch, 0.0, 0.0]))[0]
        rot_roll = cv2.Rodrigues(np.array([0.0, 0.0, roll]))[0]
        self.R = rot_roll @ rot_pitch @ rot_yaw @ self.R
        return self

    def scale_output(self, factor):
        """Adapt to an image resized by `factor` (pixel centres at integers: u' = f*(u+0.5) - 0.5)."""
        self.intrinsic_matrix[:2] *= factor
        self.intrinsic_matrix[:2, 2] += (factor - 1) / 2
        return self

    def shift_image(self, offset):
        """Adapt to an image whose content moved by `offset` px (e.g. -crop_top_left for a crop)."""
        self.intrinsic_matrix[:2, 2] += np.asarray(offset, np.float64)
        return self

    def shift_to_center(self, desired_center_image_point, imshape):
        self.shift_image(np.array([(imshape[1] - 1) / 2, (imshape[0] - 1) / 2])
                         - np.asarray(desired_center_image_point, np.float64))
        return self

    def zoom(self, factor):
        """Multiply the focal lengths by `factor`, keeping the principal point."""
        self.intrinsic_matrix[:2, :2] *= factor
        return self

    def horizontal_flip(self, image_width=None):
        """Mirror the camera. With `image_width`, the principal point moves as for `image[:, ::-1]`."""
        self.R[0] *= -1
        self.intrinsic_matrix[0, 1] *= -1
        if image_width is not None:
            self.intrinsic_matrix[0, 2] = image_width - 1 - self.intrinsic_matrix[0, 2]
        if self.distortion_coeffs is not None and self.distortion_model != 'fisheye':
            # x -> -x flips the sign of the coefficients of the terms that are odd in x alone
            # ('fisheye' is radially symmetric; Aria's p0 multiplies r^2 + 2x^2 like OpenCV's p2, and the
            # thin-prism terms s0, s1 are added to x alone).
            indices = {'h36m': [4], 'opencv': [3], 'fisheye624': [6, 8, 9]}[self.distortion_model]
            self.distortion_coeffs[indices] *= -1
        return self

    def undistort(self):
        """Drop the lens distortion (images must be reprojected with reproject_image to match); the camera
        becomes a plain pinhole ('opencv' without coefficients), whatever its lens model was."""
        self.distortion_coeffs = None
        self.distortion_model = 'opencv'
        self._max_valid_r2 = None
        return self

    def square_pixels(self):
        """Make fx == fy by increasing the smaller focal length."""
        K = self.intrinsic_matrix
        f = max(K[0, 0], K[1, 1])
        K[0, 0] = K[1, 1] = f
        return self

    def __getstate__(self):
        state = self.__dict__.copy()
        state['_max_valid_r2'] = None
        return state


def camera_from_fisheye624_params(params, optical_center=None, rot_world_to_cam=None, world_up=(0, 0, 1)):
    """Camera from Project Aria's FisheyeRadTanThinPrism parameter list (15 values: f, cx, cy, k0..k5, p0, p1,
    s0..s3, as in Aria calibration JSON `Projection.Params`); pixel centres at integers as in Aria's tools."""
    params = np.asarray(params, np.float64).reshape(-1)
    if len(params) != 15:
        raise ValueError(f'Fisheye624 needs 15 parameters (f, cx, cy, k0..k5, p0, p1, s0..s3), got {len(params)}')
    focal, cx, cy = params[:3]
    intrinsics = np.array([[focal, 0, cx], [0, focal, cy], [0, 0, 1]])
    return Camera(optical_center, rot_world_to_cam, intrinsics, params[3:], world_up=world_up,
                  distortion_model='fisheye624')


# --------------------------------------------------------------------------------------------------
# Reprojection between two cameras that share the optical centre
def reproject_image_points(points, old_camera, new_camera):
    """Pixels (..., 2) seen by `old_camera` -> pixels of `new_camera` (same optical centre assumed)."""
    rays = old_camera.image_to_rays(points)
    new_rays = (rays @ old_camera.R) @ new_camera.R.T
    if not new_camera.is_fisheye():
        # a pinhole camera sees nothing behind it (x/z would mirror such rays into the image)
        with np.errstate(invalid='ignore'):
            new_rays = np.where(new_rays[..., 2:3] > 0, new_rays, np.nan)
    return new_camera.camera_to_image(new_rays)


def reproject_box(box, old_camera, new_camera):
    """Reproject a box via its 4 side midpoints (robust for person boxes under strong rotation)."""
    from posepile.util import boxes
    points = reproject_image_points(boxes.side_midpoints(box), old_camera, new_camera)
    return boxes.bb_of_points(points)


def reproject_box_corners(box, old_camera, new_camera):
    from posepile.util import boxes
    points = reproject_image_points(boxes.corners(box), old_camera, new_camera)
    return boxes.bb_of_points(points)


def _check_same_center(old_camera, new_camera):
    if not np.allclose(old_camera.t, new_camera.t, atol=1e-3):
        raise ValueError(
            'Image reprojection needs cameras with the same optical centre; got '
            f'{old_camera.t} and {new_camera.t}')


def _cubic_interpolation_matrix(positions, n_nodes):
    """(len(positions), n_nodes) weights of Keys' cubic convolution (a = -0.5) at fractional node indices."""
    base = np.floor(positions).astype(np.int64)
    frac = positions - base
    matrix = np.zeros((len(positions), n_nodes))
    rows = np.arange(len(positions))
    for offset in (-1, 0, 1, 2):
        d = np.abs(frac - offset)
        w = np.where(d <= 1, 1.5 * d ** 3 - 2.5 * d ** 2 + 1,
                     np.where(d < 2, -0.5 * d ** 3 + 2.5 * d ** 2 - 4 * d + 2, 0))
        np.add.at(matrix, (rows, np.clip(base + offset, 0, n_nodes - 1)), w)
    return matrix


def get_reprojection_maps(old_camera, new_camera, output_imshape, grid_step=8):
    """Float32 maps (H, W) giving, for each output pixel of `new_camera`, the source pixel of `old_camera`.

    The mapping is smooth, so it is evaluated exactly on a grid every `grid_step` px and interpolated
    bicubically in between (error far below 0.01 px for real lenses, checked in the tests); grid_step=1
    evaluates every pixel.
    """
    _check_same_center(old_camera, new_camera)
    height, width = output_imshape[:2]
    if grid_step <= 1 or height * width < 64 * 64:
        ys, xs = np.mgrid[:height, :width].astype(np.float64)
        old_pixels = reproject_image_points(np.stack([xs, ys], axis=-1), new_camera, old_camera)
        old_pixels = np.where(np.isfinite(old_pixels), old_pixels, -1e6)
        return old_pixels[..., 0].astype(np.float32), old_pixels[..., 1].astype(np.float32)
    # grid nodes at 0, s, 2s, ... beyond the last pixel, plus one node of margin on each side for the
    # bicubic interpolation
    n_y = -(-(height - 1) // grid_step) + 1
    n_x = -(-(width - 1) // grid_step) + 1
    node_ys = np.arange(-1, n_y + 1, dtype=np.float64) * grid_step
    node_xs = np.arange(-1, n_x + 1, dtype=np.float64) * grid_step
    grid = np.stack(np.meshgrid(node_xs, node_ys), axis=-1)
    coarse = reproject_image_points(grid, new_camera, old_camera)
    invalid = ~np.all(np.isfinite(coarse), axis=-1)
    coarse = np.where(invalid[..., None], -1e6, coarse)
    # separable cubic convolution (Keys, a = -0.5) of the coarse grid, as two small matrix products
    # (float64 for the small first product, float32 for the large second one: 1e-4 px is plenty)
    weights_y = _cubic_interpolation_matrix(np.arange(height) / grid_step + 1, len(node_ys))
    weights_x = _cubic_interpolation_matrix(np.arange(width) / grid_step + 1, len(node_xs)).astype(np.float32)
    map_x = (coarse[..., 0] @ weights_x.T.astype(np.float64)).astype(np.float32)
    map_y = (coarse[..., 1] @ weights_x.T.astype(np.float64)).astype(np.float32)
    map_x = weights_y.astype(np.float32) @ map_x
    map_y = weights_y.astype(np.float32) @ map_y
    if np.any(invalid):  # near the edge of a lens' valid region: fall back to exact evaluation there
        bad = cv2.dilate(invalid.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float64)
        bad_full = (np.abs(weights_y) @ bad @ np.abs(weights_x).T) > 0
        ys, xs = np.nonzero(bad_full)
        exact = reproject_image_points(np.stack([xs, ys], -1).astype(np.float64), new_camera, old_camera)
        exact = np.where(np.isfinite(exact), exact, -1e6)
        map_x[bad_full], map_y[bad_full] = exact[:, 0], exact[:, 1]
    return map_x, map_y


def reproject_image(
        image, old_camera, new_camera, output_imshape, border_mode=cv2.BORDER_CONSTANT,
        border_value=0, interp=cv2.INTER_LINEAR, antialias_factor=1, dst=None):
    """Render what `new_camera` sees, given `image` taken by `old_camera` from the same optical centre.

    Lens distortion of both cameras is modelled exactly. With `antialias_factor` a > 1 the image is rendered
    at a-times the resolution and area-averaged down, which avoids aliasing when shrinking.
    """
    output_imshape = tuple(output_imshape[:2])
    if antialias_factor > 1:
        big_camera = new_camera.copy().scale_output(antialias_factor)
        big_shape = (output_imshape[0] * antialias_factor, output_imshape[1] * antialias_factor)
        big = reproject_image(
            image, old_camera, big_camera, big_shape, border_mode, border_value, interp)
        return cv2.resize(big, (output_imshape[1], output_imshape[0]), dst=dst,
                          interpolation=cv2.INTER_AREA)

    _check_same_center(old_camera, new_camera)
    if not old_camera.has_distortion() and not new_camera.has_distortion():
        # A pure rotation + intrinsics change is a homography: much faster than a general remap.
        homography = (old_camera.intrinsic_matrix @ old_camera.R @ new_camera.R.T
                      @ np.linalg.inv(new_camera.intrinsic_matrix))
        return cv2.warpPerspective(
            image, homography, (output_imshape[1], output_imshape[0]),
            flags=interp | cv2.WARP_INVERSE_MAP, borderMode=border_mode, borderValue=border_value,
            dst=dst)

    map_x, map_y = get_reprojection_maps(old_camera, new_camera, output_imshape)
    return cv2.remap(image, map_x, map_y, interp, borderMode=border_mode, borderValue=border_value,
                     dst=dst)
