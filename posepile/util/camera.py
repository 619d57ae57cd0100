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
"""
import copy as copy_module

import cv2
import numpy as np

DISTORTION_MODELS = ('opencv', 'h36m')


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
            if np.any(coeffs != 0):
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
        """Project camera-frame points (..., 3) to pixels (..., 2), applying lens distortion."""
        points = np.asarray(points, np.float64)
        with np.errstate(divide='ignore', invalid='ignore'):
            normalized = points[..., :2] / points[..., 2:3]
        if self.distortion_coeffs is not None:
            normalized = self._distort_normalized(normalized)
        return self._normalized_to_pixels(normalized)

    def world_to_image(self, points):
        return self.camera_to_image(self.world_to_camera(points))

    def image_to_camera(self, points, depth=1):
        """Back-project pixels (..., 2) to camera-frame points at the given depth (z, mm)."""
        normalized = self._pixels_to_normalized(np.asarray(points, np.float64))
        if self.distortion_coeffs is not None:
            normalized = self._undistort_normalized(normalized)
        depth = np.asarray(depth, np.float64)[..., np.newaxis]
        return np.concatenate([normalized, np.ones_like(normalized[..., :1])], axis=-1) * depth

    def image_to_world(self, points, depth):
        return self.camera_to_world(self.image_to_camera(points, depth))

    def undistort_points(self, points):
        """Distorted pixel coordinates -> the pixels where an undistorted camera (same K) sees them."""
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
    # Camera modifications (all in place, return self for chaining)
    def turn_towards(self, target_image_point=None, target_world_point=None):
        """Rotate the camera about its optical centre so that it looks at the target.

        The new orientation is upright with respect to `world_up` (no roll), as used for person crops.
        """
        if target_world_point is None:
            if target_image_point is None:
                raise ValueError('Give target_image_point or target_world_point')
            target_world_point = self.image_to_world(target_image_point, depth=1000.0)
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
        if self.distortion_coeffs is not None:
            # x -> -x flips the sign of the tangential coefficient that multiplies x alone.
            index = 4 if self.distortion_model == 'h36m' else 3
            self.distortion_coeffs[index] *= -1
        return self

    def undistort(self):
        """Drop the lens distortion (images must be reprojected with reproject_image to match)."""
        self.distortion_coeffs = None
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


# --------------------------------------------------------------------------------------------------
# Reprojection between two cameras that share the optical centre
def reproject_image_points(points, old_camera, new_camera):
    """Pixels (..., 2) seen by `old_camera` -> pixels of `new_camera` (same optical centre assumed)."""
    rays = old_camera.image_to_camera(points)
    rays_world = rays @ old_camera.R
    return new_camera.camera_to_image(rays_world @ new_camera.R.T)


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
