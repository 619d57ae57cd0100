"""Fisheye lens models ('fisheye' = OpenCV fisheye / Kannala-Brandt, 'fisheye624' = Project Aria's
FisheyeRadTanThinPrism): projection against cv2.fisheye and projectaria-tools, round trips over fields of view
beyond 180 deg, the valid field (NaN beyond it), pinhole crops cut through the lens, and Barecat storage."""
import json
import math

import cv2
import numpy as np
import pytest

from posepile.datasets3d import TRAIN
from posepile.paths import realdata_root
from posepile.preproc import cropping
from posepile.storage import barecat_store
from posepile.util.camera import (Camera, camera_from_fisheye624_params, get_reprojection_maps, reproject_image,
                                  reproject_image_points)

K = np.array([[600.0, 0, 640.5], [0, 605.0, 479.5], [0, 0, 1]])
KB4 = np.array([0.05, -0.01, 0.003, -0.0005])  # GoPro-like KB4 coefficients
# a 190 deg lens (equidistant-like), image 1280 x 960 with the circle inside
KB4_190 = np.array([-0.012, 0.0021, -0.0003, 0.00002])
# An Aria-like Fisheye624 calibration (not a real one; the real one is read from realdata below)
ARIA_LIKE = [610.0, 715.3, 704.8, 0.41, -0.45, 0.04, 1.3, -1.77, 0.65,
             -8e-05, 4.4e-05, -0.0006, 0.00056, 0.0005, 0.00024]
ARIA_FILE = 'ego_exo4d/_format_only_aria_mps/trajectory/online_calibration.jsonl'


def _rays(max_angle_deg, n=2000, seed=0, min_angle_deg=0.0):
    """Unit directions with angles from the +z axis spread evenly over [min, max] deg."""
    rng = np.random.default_rng(seed)
    theta = np.deg2rad(np.linspace(min_angle_deg, max_angle_deg, n))
    phi = rng.uniform(0, 2 * np.pi, n)
    return np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=1)


def _posed(camera):
    camera.t = np.array([120.0, -3000.0, 1500.0])
    camera.turn_towards(target_world_point=[0, 0, 900])
    camera.rotate(roll=0.2)
    return camera


def _aria_reference_projection(params, ray):
    """Project Aria's FisheyeRadTanThinPrism, re-stated from the formula in its FisheyeRadTanThinPrism.h."""
    f, cx, cy = params[:3]
    k = params[3:9]
    p0, p1 = params[9:11]
    s0, s1, s2, s3 = params[11:15]
    a, b = ray[0] / ray[2], ray[1] / ray[2]
    r = math.hypot(a, b)
    th = math.atan(r)
    radial = th * (1 + sum(k[i] * th ** (2 * i + 2) for i in range(6)))
    xr, yr = (radial * a / r, radial * b / r) if r > 0 else (0.0, 0.0)
    rd2 = xr * xr + yr * yr
    xd = xr + (2 * xr * xr + rd2) * p0 + 2 * xr * yr * p1 + s0 * rd2 + s1 * rd2 * rd2
    yd = yr + (2 * yr * yr + rd2) * p1 + 2 * xr * yr * p0 + s2 * rd2 + s3 * rd2 * rd2
    return np.array([f * xd + cx, f * yd + cy])


def _real_aria_params(label='camera-rgb'):
    root = realdata_root()
    path = root / ARIA_FILE if root is not None else None
    if path is None or not path.exists():
        pytest.skip(f'real Aria calibration not available ({ARIA_FILE})')
    with open(path) as f:
        line = json.loads(f.readline())
    calib = next(c for c in line['CameraCalibrations'] if c['Label'] == label)
    assert calib['Projection']['Name'] == 'FisheyeRadTanThinPrism'
    return np.array(calib['Projection']['Params'], np.float64)


# --------------------------------------------------------------------------------------------------
def test_fisheye_matches_cv2_fisheye():
    camera = _posed(Camera(intrinsic_matrix=K, distortion_coeffs=KB4, distortion_model='fisheye'))
    points = camera.camera_to_world(_rays(89, seed=1) * np.random.default_rng(2).uniform(300, 8000, (2000, 1)))
    rvec = cv2.Rodrigues(camera.R)[0]
    tvec = -camera.R @ camera.t
    expected = cv2.fisheye.projectPoints(points[:, None], rvec, tvec, K, KB4)[0][:, 0]
    assert np.abs(camera.world_to_image(points) - expected).max() < 1e-6
    # cv2's own inverse is reliable to about 60 deg (it diverges towards 90 deg); ours matches it there
    pixels = camera.camera_to_image(_rays(60, seed=3))
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-14)
    cv2_undistorted = cv2.fisheye.undistortPoints(pixels[:, None], K, KB4, criteria=criteria)[:, 0]
    ours = camera.image_to_camera(pixels)[:, :2]
    assert np.abs(ours - cv2_undistorted).max() * K[0, 0] < 1e-6


@pytest.mark.parametrize('model,coeffs,max_angle_deg', [
    ('fisheye', KB4, 89.9), ('fisheye', KB4_190, 95.0), ('fisheye624', ARIA_LIKE[3:], 75.0)])
def test_round_trips_over_the_whole_field(model, coeffs, max_angle_deg):
    camera = Camera(intrinsic_matrix=K, distortion_coeffs=coeffs, distortion_model=model)
    rays = _rays(max_angle_deg, n=20000)
    pixels = camera.camera_to_image(rays * 2500.0)
    assert np.all(np.isfinite(pixels))
    back = camera.image_to_rays(pixels)
    assert np.abs(camera.camera_to_image(back) - pixels).max() < 0.01
    assert np.abs(back - rays).max() < 1e-9
    # a pixel grid over the valid circle: image -> ray -> image
    radius = camera.valid_image_radius(max_angle_deg)
    ys, xs = np.mgrid[-radius:radius:101j, -radius:radius:101j]
    grid = np.stack([xs.ravel(), ys.ravel()], 1)
    grid = grid[np.hypot(xs, ys).ravel() < radius] + K[:2, 2]
    assert np.abs(camera.camera_to_image(camera.image_to_rays(grid)) - grid).max() < 0.01
    # z-depth back-projection in front of the camera; rays beyond 90 deg have no z-depth point
    front = rays[:, 2] > 1e-3
    depth = np.where(front, 2500.0 * rays[:, 2], 1.0)
    points = camera.image_to_camera(pixels, depth)
    assert np.abs(points[front] - 2500.0 * rays[front]).max() < 1e-6
    assert np.all(np.isnan(points[rays[:, 2] < 0]))
    # undistort/distort points (pinhole pixels of the same K) in front of the camera
    in_front = pixels[rays[:, 2] > 0.2]
    assert np.abs(camera.distort_points(camera.undistort_points(in_front)) - in_front).max() < 1e-6


def test_beyond_the_valid_field_is_nan_and_outside():
    # theta_d = theta - 0.15 theta^3 stops growing at theta = acos-free sqrt(1/0.45) = 1.4907 rad (85.4 deg)
    camera = Camera(intrinsic_matrix=K, distortion_coeffs=[-0.15, 0, 0, 0], distortion_model='fisheye')
    theta_max = camera.max_valid_angle_from_axis()
    assert abs(theta_max - math.sqrt(1 / 0.45)) < 1e-9
    rays = _rays(120, n=1201)
    angles = np.arccos(rays[:, 2])
    pixels = camera.camera_to_image(rays)
    assert np.all(np.isfinite(pixels[angles <= theta_max]))
    assert np.all(np.isnan(pixels[angles > theta_max]))
    assert np.array_equal(camera.is_in_field(rays), angles <= theta_max)
    # pixels beyond the valid image circle back-project to NaN, those inside do not
    radius = camera.valid_image_radius()
    assert abs(radius - 600 * (theta_max - 0.15 * theta_max ** 3)) < 1e-6
    probes = K[:2, 2] + np.array([[0.999 * radius, 0], [0, -0.999 * radius], [1.001 * radius, 0], [0, 1.3 * radius]])
    rays_back = camera.image_to_rays(probes)
    assert np.all(np.isfinite(rays_back[:2])) and np.all(np.isnan(rays_back[2:]))
    # NaN in, NaN out; the origin has no direction
    assert np.all(np.isnan(camera.camera_to_image(np.array([[np.nan, 0, 1], [0, 0, 0], [0, 0, -5]]))))
    # the lens' own field (e.g. 190 deg -> 95) and the image limit the field further
    lens = Camera(intrinsic_matrix=K, distortion_coeffs=KB4_190, distortion_model='fisheye')
    wide = _rays(110, n=111)
    angles = np.rad2deg(np.arccos(wide[:, 2]))
    assert np.array_equal(lens.is_in_field(wide, max_angle_from_axis_deg=95), angles <= 95 + 1e-9)
    assert np.any(angles[lens.is_in_field(wide)] > 95)  # the model itself is valid further out
    in_image = lens.is_in_field(wide * 1000, imshape=(960, 1280), max_angle_from_axis_deg=95)
    projected = lens.camera_to_image(wide)
    assert np.all((np.abs(projected[in_image] - [640, 480]) <= [640, 480]).all(axis=1))
    assert np.sum(in_image) < np.sum(angles <= 95)
    # a pinhole camera: behind or on the image plane is outside
    pinhole = Camera(intrinsic_matrix=K)
    assert list(pinhole.is_in_field(np.array([[0, 0, 1.0], [1, 0, 0], [0, 1, -1], [np.nan, 0, 1]]))) == [
        True, False, False, False]
    small = Camera(intrinsic_matrix=[[25, 0, 63.5], [0, 25, 47.5], [0, 0, 1]], distortion_coeffs=KB4_190,
                   distortion_model='fisheye')
    mask = small.valid_pixel_mask((96, 128), max_angle_from_axis_deg=95)
    ys, xs = np.nonzero(mask)
    radius = small.valid_image_radius(95)
    distances = np.hypot(xs - small.intrinsic_matrix[0, 2], ys - small.intrinsic_matrix[1, 2])
    assert distances.max() <= radius + 1e-6 and mask.sum() > 0.9 * np.pi * radius ** 2


def test_fisheye624_matches_the_documented_formula():
    params = np.array(ARIA_LIKE)
    camera = camera_from_fisheye624_params(params)
    rays = _rays(80, n=300, seed=4)
    expected = np.array([_aria_reference_projection(params, r) for r in rays])
    assert np.abs(camera.camera_to_image(rays * 1234.0) - expected).max() < 1e-9
    assert np.abs(camera.image_to_rays(expected) - rays).max() < 1e-9
    # zero tangential and thin-prism terms reduce it to the 'fisheye' radial model with 6 coefficients
    radial_only = camera_from_fisheye624_params(np.concatenate([params[:3], [0.05, -0.01, 0.003, -0.0005, 0, 0],
                                                                np.zeros(6)]))
    kb4 = Camera(intrinsic_matrix=radial_only.intrinsic_matrix, distortion_coeffs=KB4, distortion_model='fisheye')
    assert np.abs(radial_only.camera_to_image(rays) - kb4.camera_to_image(rays)).max() < 1e-9
    with pytest.raises(ValueError, match='15 parameters'):
        camera_from_fisheye624_params(params[:14])
    with pytest.raises(ValueError, match='fisheye624 distortion needs 12'):
        Camera(distortion_coeffs=params[3:14], distortion_model='fisheye624')


@pytest.mark.realdata
def test_real_aria_calibration_against_projectaria_tools():
    params = _real_aria_params('camera-rgb')
    camera = camera_from_fisheye624_params(params)
    # the RGB sensor is 2880 x 2880; round trips over the image inscribed circle
    ys, xs = np.mgrid[0:2880:97j, 0:2880:97j]
    grid = np.stack([xs.ravel(), ys.ravel()], 1)
    grid = grid[np.hypot(grid[:, 0] - params[1], grid[:, 1] - params[2]) < 1400]
    rays = camera.image_to_rays(grid)
    assert np.all(np.isfinite(rays))
    assert np.abs(camera.camera_to_image(rays) - grid).max() < 0.01
    assert np.abs(camera.camera_to_image(rays) - np.array([_aria_reference_projection(params, r)
                                                            for r in rays])).max() < 1e-6
    calibration = pytest.importorskip('projectaria_tools.core.calibration')
    for label in ('camera-rgb', 'camera-slam-left'):
        params = _real_aria_params(label)
        camera = camera_from_fisheye624_params(params)
        reference = calibration.CameraProjection(calibration.CameraModelType.FISHEYE624, params)
        rays = _rays(75, n=400, seed=5)
        expected = np.array([np.asarray(reference.project(r)).reshape(2) for r in rays])
        assert np.abs(camera.camera_to_image(rays) - expected).max() < 1e-3
        unprojected = np.array([np.asarray(reference.unproject(p)).reshape(3) for p in expected])
        unprojected /= np.linalg.norm(unprojected, axis=1, keepdims=True)
        assert np.abs(camera.image_to_rays(expected) - unprojected).max() < 1e-6


@pytest.mark.parametrize('model,coeffs', [('fisheye', KB4), ('fisheye624', ARIA_LIKE[3:])])
def test_horizontal_flip_mirrors_the_projection(model, coeffs):
    camera = _posed(Camera(intrinsic_matrix=K, distortion_coeffs=coeffs, distortion_model=model))
    points = camera.camera_to_world(_rays(85, n=200) * 2000)
    pixels = camera.world_to_image(points)
    flipped = camera.copy().horizontal_flip(image_width=1280)
    # the flipped camera sees the scene mirrored about its own y-z plane: u' = W - 1 - u, v' = v
    expected = np.stack([1280 - 1 - pixels[:, 0], pixels[:, 1]], 1)
    assert np.abs(flipped.world_to_image(points) - expected).max() < 1e-9
    assert np.abs(flipped.image_to_rays(expected) - camera.image_to_rays(pixels) * [-1, 1, 1]).max() < 1e-9


def _ray_pattern(rays):
    """A smooth function of the viewing direction (independent of any camera), uint8."""
    return np.clip(128 + 60 * np.sin(9 * rays[..., 0]) + 50 * np.cos(7 * rays[..., 1] + 3 * rays[..., 2]),
                   0, 255).astype(np.uint8)


# a 190 deg lens whose 95 deg circle (radius ~224 px) lies inside a 640 x 480 image
LENS_190_K = [[140.0, 0, 319.5], [0, 140.0, 239.5], [0, 0, 1]]


def _inside_source(lens, rays, imshape, margin=2):
    pixels = lens.camera_to_image(rays)
    with np.errstate(invalid='ignore'):
        return np.all((pixels >= margin) & (pixels <= np.array(imshape[::-1]) - 1 - margin), axis=-1)


def test_pinhole_crop_through_a_190_degree_lens():
    imshape = (480, 640)
    lens = Camera(intrinsic_matrix=LENS_190_K, distortion_coeffs=KB4_190, distortion_model='fisheye',
                  world_up=(0, -1, 0))
    ys, xs = np.mgrid[:imshape[0], :imshape[1]].astype(np.float64)
    source_rays = lens.image_to_rays(np.stack([xs, ys], -1))
    image = np.where(np.isfinite(source_rays[..., :1]), _ray_pattern(np.nan_to_num(source_rays))[..., None], 0)
    image = np.repeat(image, 3, axis=2).astype(np.uint8)
    # a pinhole crop looking 80 deg to the side: its edge sees rays beyond 90 deg from the lens axis
    crop = lens.copy().undistort()
    crop.intrinsic_matrix = np.array([[150.0, 0, 99.5], [0, 150.0, 99.5], [0, 0, 1]])
    crop.R = cv2.Rodrigues(np.array([0.0, np.deg2rad(80), 0.0]))[0].T @ crop.R
    crop_rays = crop.image_to_rays(np.stack(np.meshgrid(np.arange(200.0), np.arange(200.0)), -1))
    lens_rays = crop_rays @ crop.R @ lens.R.T
    assert lens_rays[..., 2].min() < -0.1  # part of the crop lies behind the lens' image plane
    map_x, map_y = get_reprojection_maps(lens, crop, (200, 200))
    expected = lens.camera_to_image(lens_rays)
    assert np.abs(np.stack([map_x, map_y], -1) - expected).max() < 0.01
    rendered = reproject_image(image, lens, crop, (200, 200), interp=cv2.INTER_LINEAR)[..., 0]
    # the other way, lens pixels whose rays are behind the pinhole crop camera have no crop pixel
    lens_pixels = lens.camera_to_image(_rays(95, n=500, seed=7))
    in_crop = reproject_image_points(lens_pixels, lens, crop)
    behind = (lens.image_to_rays(lens_pixels) @ lens.R @ crop.R.T)[:, 2] <= 0
    assert 0 < behind.sum() < len(behind)
    assert np.all(np.isnan(in_crop[behind])) and np.all(np.isfinite(in_crop[~behind]))
    truth = _ray_pattern(lens_rays).astype(np.float64)
    inside = _inside_source(lens, lens_rays, imshape)
    assert inside.mean() > 0.5 and np.all(rendered[~np.isfinite(expected).all(-1)] == 0)
    assert np.abs(rendered - truth)[inside].mean() < 1.5


def test_efficient_example_crop_stays_inside_the_valid_circle(tmp_path):
    from posepile.datasets3d import Pose3DExample
    imshape = (480, 640)
    lens = _posed(Camera(intrinsic_matrix=LENS_190_K, distortion_coeffs=KB4_190, distortion_model='fisheye'))
    radius = lens.valid_image_radius(95)
    # a person near the rim of the circle, towards the lower right
    center = lens.intrinsic_matrix[:2, 2] + 0.9 * radius * np.array([np.cos(0.6), np.sin(0.6)])
    person_rays = lens.image_to_rays(center + np.random.default_rng(0).normal(0, 4, (12, 2)))
    world = lens.camera_to_world(person_rays * 3000.0)
    ys, xs = np.mgrid[:imshape[0], :imshape[1]].astype(np.float64)
    source_rays = lens.image_to_rays(np.stack([xs, ys], -1))
    image = np.repeat(_ray_pattern(np.nan_to_num(source_rays))[..., None], 3, axis=2)
    bbox = cv2.boundingRect(lens.world_to_image(world).astype(np.float32))
    example = Pose3DExample(image, world.astype(np.float32), np.array(bbox, np.float32), lens)
    new = cropping.make_efficient_example(example, 'crops/a.jpg', data_root=tmp_path, max_angle_from_axis_deg=95,
                                          further_expansion_factor=3)
    crop = cv2.imread(str(tmp_path / 'crops/a.jpg'))[..., 0]
    # the crop's pixels come from inside the valid circle only
    height, width = crop.shape
    border = np.concatenate([np.stack([np.arange(width), np.zeros(width)], 1),
                             np.stack([np.arange(width), np.full(width, height - 1)], 1),
                             np.stack([np.zeros(height), np.arange(height)], 1),
                             np.stack([np.full(height, width - 1), np.arange(height)], 1)]).astype(np.float64)
    in_source = reproject_image_points(border, new.camera, lens)
    assert np.all(np.isfinite(in_source))
    distances = np.hypot(*(in_source - lens.intrinsic_matrix[:2, 2]).T)
    assert radius - 3 < distances.max() <= radius + 1  # cut at the circle, not before
    # the crop shows what the pinhole crop camera sees, and the person's joints project into it
    crop_rays = new.camera.image_to_rays(np.stack(np.meshgrid(np.arange(width), np.arange(height)), -1)
                                         .astype(np.float64))
    lens_rays = crop_rays @ new.camera.R @ lens.R.T
    truth = _ray_pattern(lens_rays)
    assert np.abs(crop.astype(np.float64) - truth)[_inside_source(lens, lens_rays, imshape)].mean() < 3
    projected = new.camera.world_to_image(world)
    assert np.all((projected > 0) & (projected < [width, height]))
    # only the sides that leave the circle were cut (here not the left one, towards the lens centre)
    uncut_bbox = cropping.plan_crop(lens, example.bbox, imshape, 3, extreme_perspective=True)[1]
    assert abs(new.bbox[0] - uncut_bbox[0]) < 0.05 and new.bbox[1] < uncut_bbox[1] - 1
    # without the lens' field the model's own (wider) circle is the limit: the crop reaches beyond 95 deg
    wider_camera, _, (wider_height, wider_width) = cropping.plan_crop(lens, example.bbox, imshape, 3)
    wider_border = np.concatenate([np.stack([np.arange(wider_width), np.zeros(wider_width)], 1),
                                   np.stack([np.zeros(wider_height), np.arange(wider_height)], 1),
                                   np.stack([np.arange(wider_width), np.full(wider_width, wider_height - 1)], 1),
                                   np.stack([np.full(wider_height, wider_width - 1), np.arange(wider_height)], 1)])
    in_source = reproject_image_points(wider_border.astype(np.float64), wider_camera, lens)
    assert np.hypot(*(in_source - lens.intrinsic_matrix[:2, 2]).T).max() > radius + 2


@pytest.mark.parametrize('schema', barecat_store.SCHEMAS)
def test_barecat_keeps_the_lens_model(tmp_path, schema):
    from tests.test_barecat_store import make_dataset_3d
    lenses = [('fisheye', KB4), ('fisheye', np.zeros(4)), ('fisheye624', np.array(ARIA_LIKE[3:]))]
    ds = make_dataset_3d(tmp_path, n_per_split=(len(lenses), 0, 0))
    for example, (model, coeffs) in zip(ds.examples[TRAIN], lenses):
        camera = example.camera
        example.camera = Camera(camera.t, camera.R, camera.intrinsic_matrix, coeffs, world_up=(0, 0, 1),
                                distortion_model=model)
    if schema == 'original':
        # the original readers would read fisheye coefficients as OpenCV's: uncropped fisheye cameras are refused
        with pytest.raises(barecat_store.BarecatStoreError, match='fisheye'):
            barecat_store.export_dataset(ds, tmp_path / 'out', image_root=tmp_path, schema=schema)
        return
    barecat_store.export_dataset(ds, tmp_path / 'out', image_root=tmp_path, schema=schema)
    stored = barecat_store.open_dataset(tmp_path / 'out').examples[TRAIN]
    for example, got, (model, coeffs) in zip(ds.examples[TRAIN], stored, lenses):
        got = got.camera
        assert got.distortion_model == model and got.allclose(example.camera)
        points = example.camera.camera_to_world(_rays(60, n=50) * 1000)
        # (the older layout stores R as float32: a few micro-pixels)
        assert np.abs(got.world_to_image(points) - example.camera.world_to_image(points)).max() < 1e-4

