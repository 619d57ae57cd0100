"""Camera estimation from 2D-3D correspondences against known synthetic cameras."""
import numpy as np
import pytest

from posepile.util.calibration import estimate_camera
from posepile.util.camera import Camera

IMAGE_SIZE = (640, 480)
CASES = [(seed, 40 + 50 * seed / 7, 20 + 40 * seed // 7) for seed in range(8)]  # (seed, h-FOV deg, n points)


def _true_focal(fov_deg, width=IMAGE_SIZE[0]):
    return (width / 2) / np.tan(np.deg2rad(fov_deg) / 2)


def _scene(seed, fov_deg, n_points, noise_px=0.0, n_nan=3):
    """Known camera 3-8 m from a human-sized point cloud (1-2 m wide, 1.8 m tall), 2D with Gaussian noise."""
    rng = np.random.default_rng(seed)
    width, height = IMAGE_SIZE
    focal = _true_focal(fov_deg)
    intrinsics = [[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]]
    cloud_width = rng.uniform(1000, 2000)
    world = rng.uniform(-0.5, 0.5, (n_points, 3)) * [cloud_width, cloud_width / 2, 1800] + [0, 0, 900]
    distance = rng.uniform(3000, 8000)
    azimuth, elevation = rng.uniform(0, 2 * np.pi), rng.uniform(-0.2, 0.4)
    direction = [np.cos(azimuth) * np.cos(elevation), np.sin(azimuth) * np.cos(elevation), np.sin(elevation)]
    camera = Camera(np.multiply(direction, distance) + [0, 0, 900], None, intrinsics, world_up=(0, 0, 1))
    camera.turn_towards(target_world_point=np.array([0, 0, 900]) + rng.normal(0, 200, 3))
    camera.rotate(roll=rng.uniform(-0.2, 0.2))
    image = camera.world_to_image(world) + rng.normal(0, noise_px, (n_points, 2))
    world[rng.choice(n_points, n_nan, replace=False)] = np.nan
    image[rng.choice(n_points, n_nan, replace=False), 1] = np.nan
    return camera, world, image


def _rms(camera, world, image):
    valid = np.all(np.isfinite(world), axis=1) & np.all(np.isfinite(image), axis=1)
    errors = camera.world_to_image(world[valid]) - image[valid]
    return np.sqrt(np.mean(np.sum(errors ** 2, axis=1)))


def _depths(camera, world):
    return camera.world_to_camera(world[np.all(np.isfinite(world), axis=1)])[:, 2]


@pytest.mark.parametrize('seed,fov_deg,n_points', CASES)
def test_focal_search_exact_points(seed, fov_deg, n_points):
    true_camera, world, image = _scene(seed, fov_deg, n_points)
    camera, rms = estimate_camera(world, image, IMAGE_SIZE)
    focal = camera.intrinsic_matrix[0, 0]
    assert abs(focal / _true_focal(fov_deg) - 1) < 0.005
    assert camera.intrinsic_matrix[1, 1] == focal
    assert np.allclose(camera.intrinsic_matrix[:2, 2], [319.5, 239.5])
    assert camera.distortion_coeffs is None
    assert rms < 0.5
    assert rms == pytest.approx(_rms(camera, world, image), abs=1e-6)
    assert np.linalg.norm(camera.t - true_camera.t) < 30  # mm
    assert np.all(_depths(camera, world) > 0)


@pytest.mark.parametrize('seed,fov_deg,n_points', CASES)
def test_focal_search_noisy_points(seed, fov_deg, n_points):
    """With 0.5 px noise a person-sized cloud at 3-8 m constrains the focal length only to a few percent
    (focal length trades against distance); the estimate must still fit at least as well as the true camera."""
    true_camera, world, image = _scene(seed, fov_deg, n_points, noise_px=0.5)
    camera, rms = estimate_camera(world, image, IMAGE_SIZE)
    assert rms < 1.0
    assert rms <= _rms(true_camera, world, image) + 1e-6
    assert abs(camera.intrinsic_matrix[0, 0] / _true_focal(fov_deg) - 1) < 0.08
    assert np.all(_depths(camera, world) > 0)


@pytest.mark.parametrize('noise_px', [0.0, 0.5])
@pytest.mark.parametrize('seed,fov_deg,n_points', CASES)
def test_fixed_focal(seed, fov_deg, n_points, noise_px):
    true_camera, world, image = _scene(seed, fov_deg, n_points, noise_px=noise_px)
    camera, rms = estimate_camera(world, image, IMAGE_SIZE, focal_px=_true_focal(fov_deg))
    assert np.allclose(camera.intrinsic_matrix, true_camera.intrinsic_matrix)
    if noise_px == 0:
        assert rms < 1e-4
        assert np.allclose(camera.R, true_camera.R, atol=1e-7)
        assert np.linalg.norm(camera.t - true_camera.t) < 1e-3  # mm
    else:
        assert rms < 1.0
        assert rms <= _rms(true_camera, world, image) + 1e-6
        assert np.linalg.norm(camera.t - true_camera.t) < 50  # mm
    assert np.all(_depths(camera, world) > 0)


def test_explicit_principal_point():
    true_camera, world, image = _scene(3, 60, 30)
    true_camera.intrinsic_matrix[:2, 2] = [320, 240]
    image = true_camera.world_to_image(np.nan_to_num(world)) + 0 * image  # keep the NaN rows of image
    camera, rms = estimate_camera(world, image, IMAGE_SIZE, focal_px=true_camera.intrinsic_matrix[0, 0],
                                  principal_point=(320, 240))
    assert np.allclose(camera.intrinsic_matrix[:2, 2], [320, 240])
    assert rms < 1e-4
    assert np.linalg.norm(camera.t - true_camera.t) < 1e-3


def test_too_few_points_raise():
    _, world, image = _scene(0, 60, 9, n_nan=2)
    world[:4] = np.nan  # at most 5 valid rows remain
    with pytest.raises(ValueError, match='at least 6'):
        estimate_camera(world, image, IMAGE_SIZE)
    with pytest.raises(ValueError, match='at least 6'):
        estimate_camera(world[:5], image[:5], IMAGE_SIZE, focal_px=500)


def test_mismatched_lengths_raise():
    _, world, image = _scene(0, 60, 20)
    with pytest.raises(ValueError, match='world points'):
        estimate_camera(world, image[:-1], IMAGE_SIZE)
