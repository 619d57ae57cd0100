"""Camera model: projections against OpenCV, round trips, modifications, image and box reprojection."""
import cv2
import numpy as np
import pytest

from posepile.util.camera import Camera, reproject_box, reproject_image, reproject_image_points

DIST5 = [-0.25, 0.1, 0.002, -0.001, -0.02]
DIST8 = [-0.2, 0.08, 0.001, -0.002, -0.01, 0.01, 0.002, 0.001]
H36M_DIST = [-0.207, 0.248, -0.003, -0.0014, -0.001]


def _camera(dist=None, model='opencv', seed=0):
    rng = np.random.default_rng(seed)
    cam = Camera(rng.normal(0, 300, 3) + [0, -3000, 1500], None,
                 [[1000, 0, 640], [0, 1010, 360], [0, 0, 1]], dist, world_up=(0, 0, 1),
                 distortion_model=model)
    cam.turn_towards(target_world_point=[0, 0, 900])
    cam.rotate(roll=0.1)
    return cam


def _points(n=200, seed=1):
    return np.random.default_rng(seed).normal(0, 400, (n, 3)) + [0, 0, 900]


@pytest.mark.parametrize('dist', [None, DIST5, DIST8])
def test_projection_matches_opencv(dist):
    cam = _camera(dist)
    points = _points()
    rvec = cv2.Rodrigues(cam.R)[0]
    tvec = -cam.R @ cam.t
    expected = cv2.projectPoints(points, rvec, tvec, cam.intrinsic_matrix,
                                 np.zeros(5) if dist is None else np.array(dist))[0][:, 0]
    assert np.abs(cam.world_to_image(points) - expected).max() < 1e-6


@pytest.mark.parametrize('dist,model', [(None, 'opencv'), (DIST5, 'opencv'), (DIST8, 'opencv'),
                                        (H36M_DIST, 'h36m')])
def test_round_trips(dist, model):
    cam = _camera(dist, model)
    points = _points()
    depth = cam.world_to_camera(points)[:, 2]
    back = cam.image_to_world(cam.world_to_image(points), depth)
    assert np.abs(back - points).max() < 1e-6
    np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(points)), points, atol=1e-9)
    pixels = cam.world_to_image(points)
    np.testing.assert_allclose(cam.distort_points(cam.undistort_points(pixels)), pixels, atol=1e-6)


def test_undistort_points_matches_opencv():
    cam = _camera(DIST5)
    pixels = cam.world_to_image(_points())
    expected = cv2.undistortPointsIter(
        pixels[:, None], cam.intrinsic_matrix, np.array(DIST5), None, cam.intrinsic_matrix,
        (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12))[:, 0]
    assert np.abs(cam.undistort_points(pixels) - expected).max() < 1e-6


def test_nan_in_nan_out():
    cam = _camera(DIST5)
    out = cam.world_to_image(np.array([[np.nan, 0, 0], [0, 0, 900]]))
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()


def test_far_outside_rays_are_invalid_not_folded():
    """Beyond where the radial polynomial turns back, points must not wrap into the image."""
    cam = Camera(intrinsic_matrix=[[500, 0, 320], [0, 500, 240], [0, 0, 1]], distortion_coeffs=[-0.5, 0, 0, 0, 0])
    # r = 1.5: x*(1 - 0.5 r^2) = 1.5 * -0.125 -> would land left of the centre if not rejected.
    assert np.isnan(cam.camera_to_image([1.5, 0, 1])).all()
    assert np.isfinite(cam.camera_to_image([0.5, 0, 1])).all()


def test_turn_towards_centres_target_and_keeps_upright():
    cam = _camera(DIST5)
    target = np.array([300.0, 200, 1200])
    cam.turn_towards(target_world_point=target)
    np.testing.assert_allclose(cam.world_to_image(target), cam.intrinsic_matrix[:2, 2], atol=1e-6)
    # Upright: world up projects to image "up" (negative y), with no roll.
    up_in_cam = cam.R @ cam.world_up
    assert up_in_cam[1] < 0 and abs(up_in_cam[0]) < 1e-9
    # Turning towards an image point centres that point's content.
    cam2 = _camera(DIST5)
    point = cam2.world_to_image(target)
    cam3 = cam2.copy().turn_towards(target_image_point=point)
    np.testing.assert_allclose(cam3.world_to_image(target), cam3.intrinsic_matrix[:2, 2], atol=1e-6)


def test_zoom_shift_scale_rotate():
    cam = _camera()
    p = _points(5)
    base = cam.world_to_image(p)
    c = cam.intrinsic_matrix[:2, 2]
    np.testing.assert_allclose(cam.copy().zoom(2).world_to_image(p), (base - c) * 2 + c, atol=1e-6)
    np.testing.assert_allclose(cam.copy().shift_image([10, -5]).world_to_image(p), base + [10, -5], atol=1e-9)
    # scale_output follows cv2.resize's pixel-centre convention: u' = f (u + 0.5) - 0.5.
    np.testing.assert_allclose(cam.copy().scale_output(0.5).world_to_image(p), 0.5 * (base + 0.5) - 0.5,
                               atol=1e-9)
    rotated = cam.copy().rotate(yaw=0.1)
    assert np.allclose(rotated.R @ rotated.R.T, np.eye(3))
    np.testing.assert_allclose(rotated.t, cam.t)


def test_horizontal_flip_matches_flipped_image():
    for dist, model in [(None, 'opencv'), (DIST5, 'opencv'), (H36M_DIST, 'h36m')]:
        cam = _camera(dist, model)
        width = 1280
        flipped = cam.copy().horizontal_flip(image_width=width)
        p = _points(50)
        a = cam.world_to_image(p)
        b = flipped.world_to_image(p)
        # The flipped camera sees each point where image[:, ::-1] shows it (skew-free K for exactness).
        if abs(cam.intrinsic_matrix[0, 1]) == 0:
            np.testing.assert_allclose(b[:, 0], width - 1 - a[:, 0], atol=1e-6)
        np.testing.assert_allclose(b[:, 1], a[:, 1], atol=1e-6)


def _render_dots(camera, points, imshape):
    image = np.zeros(imshape, np.uint8)
    for u, v in camera.world_to_image(points):
        cv2.circle(image, (int(round(u * 256)), int(round(v * 256))), 4 * 256, 255, -1, cv2.LINE_AA, 8)
    return image


def _centroids(image, expected):
    """Intensity-weighted centroid of the blob nearest each expected position."""
    result = []
    for u, v in expected:
        x0, y0 = int(u) - 9, int(v) - 9
        patch = image[max(y0, 0):y0 + 19, max(x0, 0):x0 + 19].astype(np.float64)
        ys, xs = np.mgrid[max(y0, 0):y0 + 19, max(x0, 0):x0 + 19]
        result.append([np.sum(xs * patch) / patch.sum(), np.sum(ys * patch) / patch.sum()])
    return np.array(result)


@pytest.mark.parametrize('old_dist,new_dist,antialias', [
    (None, None, 1), (DIST5, None, 1), (DIST5, None, 2), (None, DIST5, 1), (DIST5, DIST8, 2)])
def test_reproject_image_moves_dots_to_new_projection(old_dist, new_dist, antialias):
    old = Camera([0, 0, 0], None, [[800, 0, 319.5], [0, 800, 239.5], [0, 0, 1]], old_dist, world_up=(0, -1, 0))
    rng = np.random.default_rng(2)
    points = np.stack([rng.uniform(-800, 800, 12), rng.uniform(-600, 600, 12), rng.uniform(2500, 3500, 12)], -1)
    image = _render_dots(old, points, (480, 640))
    new = old.copy()
    new.distortion_coeffs = None if new_dist is None else np.array(new_dist, np.float64)
    new.rotate(yaw=0.05, pitch=-0.03, roll=0.1)
    new.zoom(1.1).shift_image([5, -7])
    out = reproject_image(image, old, new, (480, 640), interp=cv2.INTER_CUBIC, antialias_factor=antialias)
    expected = new.world_to_image(points)
    inside = np.all((expected > 15) & (expected < [625, 465]), axis=1)
    assert inside.sum() >= 6
    found = _centroids(out, expected[inside])
    assert np.abs(found - expected[inside]).max() < 0.5


def test_reproject_points_and_box():
    old = _camera(DIST5)
    new = old.copy().undistort().rotate(yaw=0.1)
    p = _points(20)
    np.testing.assert_allclose(reproject_image_points(old.world_to_image(p), old, new), new.world_to_image(p),
                               atol=1e-6)
    box = reproject_box([600, 300, 80, 160], old, new)
    assert box.shape == (4,) and np.all(np.isfinite(box)) and 50 < box[2] < 120 and 120 < box[3] < 200
    with pytest.raises(ValueError, match='same optical centre'):
        moved = new.copy()
        moved.t = moved.t + 100
        reproject_image(np.zeros((10, 10), np.uint8), old, moved, (10, 10))


def test_extrinsic_matrix_round_trip_and_validation():
    cam = _camera()
    rebuilt = Camera(extrinsic_matrix=cam.get_extrinsic_matrix(), intrinsic_matrix=cam.intrinsic_matrix)
    np.testing.assert_allclose(rebuilt.t, cam.t, atol=1e-9)
    with pytest.raises(ValueError, match='4, 5 or 8'):
        Camera(distortion_coeffs=[1, 2, 3])
    with pytest.raises(ValueError, match='Unknown distortion model'):
        Camera(distortion_model='division')


@pytest.mark.parametrize('dist', [DIST5, DIST8])
def test_grid_interpolated_reprojection_maps_match_exact_maps(dist):
    from posepile.util.camera import get_reprojection_maps
    old = Camera([0, 0, 0], None, [[600, 0, 320], [0, 600, 240], [0, 0, 1]], dist, world_up=(0, -1, 0))
    new = old.copy().undistort()
    new.rotate(yaw=0.2, pitch=0.1).zoom(0.5).shift_image([-100, -50])  # wide view: reaches the lens' edge
    exact_x, exact_y = get_reprojection_maps(old, new, (400, 500), grid_step=1)
    fast_x, fast_y = get_reprojection_maps(old, new, (400, 500))
    valid = exact_x > -1e5
    np.testing.assert_array_equal(valid, fast_x > -1e5)
    assert np.abs(exact_x - fast_x)[valid].max() < 0.01
    assert np.abs(exact_y - fast_y)[valid].max() < 0.01
