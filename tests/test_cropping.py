"""Crops land the image content where the new camera projects the world points."""
import numpy as np
import pytest

from posepile.datasets2d import Pose2DExample
from posepile.datasets3d import Pose3DExample
from posepile.preproc import cropping
from posepile.util import boxes, improc, masks
from posepile.util.camera import Camera

DIST5 = [-0.25, 0.08, 0.001, -0.0015, -0.01]


def _scene_camera(dist, imshape=(1000, 1000)):
    f = 0.9 * imshape[1]
    return Camera(optical_center=[0, -4000, 1500], intrinsic_matrix=[[f, 0, imshape[1] / 2 - 3.5],
                                                                    [0, f * 1.01, imshape[0] / 2 + 2.5],
                                                                    [0, 0, 1]],
                  distortion_coeffs=dist, world_up=(0, 0, 1),
                  rot_world_to_cam=[[1, 0, 0], [0, 0, -1], [0, 1, 0]])


def _blob_image(camera, points, imshape, sigma_px):
    """Gaussian dots centred at the (distorted) projections of `points` on a mid-grey background."""
    pixels = camera.world_to_image(points)
    ys, xs = np.mgrid[:imshape[0], :imshape[1]].astype(np.float32)
    image = np.full(imshape, 40.0, np.float32)
    for u, v in pixels:
        r = int(6 * sigma_px)
        y0, y1 = max(0, int(v) - r), min(imshape[0], int(v) + r + 1)
        x0, x1 = max(0, int(u) - r), min(imshape[1], int(u) + r + 1)
        patch = np.exp(-((xs[y0:y1, x0:x1] - u) ** 2 + (ys[y0:y1, x0:x1] - v) ** 2) / (2 * sigma_px ** 2))
        image[y0:y1, x0:x1] += 200 * patch
    return np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _centroid(image, guess, radius):
    """Intensity-weighted centroid of the blob near `guess` (background removed), px."""
    gray = image[..., 1].astype(np.float64) - 40
    x0, y0 = int(round(guess[0])) - radius, int(round(guess[1])) - radius
    patch = np.clip(gray[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1], 0, None)
    ys, xs = np.mgrid[:patch.shape[0], :patch.shape[1]]
    total = patch.sum()
    return np.array([(xs * patch).sum() / total + x0, (ys * patch).sum() / total + y0])


def _person_points(rng, height_mm=1800):
    """A 3x3 lattice of markers spread over a person-sized volume (well separated in the image)."""
    xs, zs = np.meshgrid([-250.0, 0.0, 250.0], np.linspace(150, height_mm, 3))
    ys = rng.uniform(-150, 150, xs.size)
    return np.stack([xs.ravel(), ys, zs.ravel()], 1)


@pytest.mark.parametrize('dist', [None, DIST5])
@pytest.mark.parametrize('offset_x_mm,distance_mm,sigma_px', [(-1200, 4000, 2.0), (400, 1500, 6.0)])
def test_crop_keeps_projection_on_image_content(data_root, dist, offset_x_mm, distance_mm, sigma_px):
    rng = np.random.default_rng(0)
    imshape = (1000, 1000)
    camera = _scene_camera(dist, imshape)
    points = _person_points(rng) + [offset_x_mm, distance_mm - 4000, 0]
    image = _blob_image(camera, points, imshape, sigma_px)
    improc.write_jpeg_atomic(data_root / 'frames/f.jpg', image, quality=98)
    bbox = boxes.expand(boxes.bb_of_points(camera.world_to_image(points)), 1.15)
    example = Pose3DExample('frames/f.jpg', points, bbox, camera)

    crop_example = cropping.make_efficient_example(example, 'crops/f.jpg', data_root=data_root)
    crop = improc.imread_rgb(data_root / 'crops/f.jpg')
    assert crop.shape[:2] == cropping.plan_crop(camera, bbox, imshape)[2]
    # the person box's longer side becomes 384 px unless that would upsample more than 1.2x
    assert max(crop_example.bbox[2:]) == pytest.approx(
        min(384, 1.2 * max(boxes.bb_of_points(crop_example.camera.world_to_image(points))[2:]) / 1.15 * 1.15),
        rel=0.2)
    projected = crop_example.camera.world_to_image(points)
    scale = crop_example.camera.intrinsic_matrix[0, 0] / camera.intrinsic_matrix[0, 0]
    radius = max(4, int(4 * sigma_px * scale))
    source_pixels = camera.world_to_image(points)
    inside = (np.all(projected >= radius, axis=1) & np.all(projected < np.array(crop.shape[1::-1]) - radius, 1)
              & np.all(source_pixels >= 3 * sigma_px, 1) & np.all(source_pixels < 1000 - 3 * sigma_px, 1))
    assert inside.sum() >= 6
    errors = [np.linalg.norm(_centroid(crop, p, radius) - p) for p in projected[inside]]
    assert np.max(errors) < 0.5, errors
    assert crop_example.camera.distortion_coeffs is None
    np.testing.assert_array_equal(crop_example.world_coords, example.world_coords)


def test_resume_skips_pixels_but_recomputes_annotation(data_root):
    rng = np.random.default_rng(1)
    camera = _scene_camera(DIST5)
    points = _person_points(rng)
    improc.write_jpeg_atomic(data_root / 'f.jpg', _blob_image(camera, points, (1000, 1000), 3), 95)
    bbox = boxes.bb_of_points(camera.world_to_image(points))
    example = Pose3DExample('f.jpg', points, bbox, camera)
    first = cropping.make_efficient_example(example, 'c.jpg', data_root=data_root)
    data = (data_root / 'c.jpg').read_bytes()
    mtime = (data_root / 'c.jpg').stat().st_mtime_ns
    second = cropping.make_efficient_example(example, 'c.jpg', data_root=data_root)
    assert (data_root / 'c.jpg').stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(first.bbox, second.bbox)
    # a truncated crop (killed mid-write elsewhere) is re-rendered
    (data_root / 'c.jpg').write_bytes(data[:len(data) // 2])
    cropping.make_efficient_example(example, 'c.jpg', data_root=data_root)
    assert (data_root / 'c.jpg').read_bytes() == data


def test_mask_and_flip_follow_the_pixels(data_root):
    imshape = (600, 800)
    image = np.zeros((*imshape, 3), np.uint8)
    image[200:450, 300:380] = 255
    mask = masks.encode(image[..., 0] > 0)
    camera = _scene_camera(None, imshape)
    example = Pose3DExample(image, np.zeros((3, 3)), [300, 200, 80, 250], camera, mask=mask)
    for flip in (False, True):
        out = cropping.make_efficient_example(example, f'm{flip}.jpg', data_root=data_root, horizontal_flip=flip)
        crop = improc.imread_rgb(data_root / f'm{flip}.jpg')
        bright = crop[..., 0] > 127
        assert masks.iou(out.mask, masks.encode(bright)) > 0.97
        box_of_pixels = boxes.bb_of_mask(bright)
        assert boxes.iou(box_of_pixels, out.bbox) > 0.95


def test_2d_example_coords_follow(data_root):
    imshape = (480, 640)
    coords = np.array([[100.0, 120.0], [180.0, 300.0], [140.0, 200.0]])
    image = _blob_image(_trivial_identity(imshape), np.c_[coords, np.ones(3)], imshape, 3)
    example = Pose2DExample(image, coords, boxes.expand(boxes.bb_of_points(coords), 1.2))
    out = cropping.make_efficient_example(example, 'p.jpg', data_root=data_root)
    crop = improc.imread_rgb(data_root / 'p.jpg')
    errors = [np.linalg.norm(_centroid(crop, p, 8) - p) for p in out.coords]
    assert np.max(errors) < 0.5


def _trivial_identity(imshape):
    """A camera whose image_to_camera at depth 1 then projection is the identity on pixels (2D helper)."""
    return Camera(intrinsic_matrix=[[1, 0, 0], [0, 1, 0], [0, 0, 1]], world_up=(0, -1, 0))


def test_box_outside_image_is_a_clear_error(data_root):
    camera = _scene_camera(None)
    example = Pose3DExample(np.zeros((100, 100, 3), np.uint8), np.zeros((1, 3)), [5000, 5000, 50, 50], camera)
    with pytest.raises(cropping.CropError, match='outside the image'):
        cropping.make_efficient_example(example, 'x.jpg', data_root=data_root)


def test_a_truncated_source_jpeg_is_an_error_naming_the_file(tmp_path):
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.cropping import make_efficient_example
    from posepile.util import improc
    from posepile.util.camera import Camera
    rng = np.random.default_rng(0)
    improc.write_jpeg_atomic(tmp_path / 'src.jpg', rng.integers(0, 255, (300, 400, 3), dtype=np.uint8))
    data = (tmp_path / 'src.jpg').read_bytes()
    (tmp_path / 'src.jpg').write_bytes(data[:len(data) * 2 // 3])
    camera = Camera(intrinsic_matrix=[[400, 0, 199.5], [0, 400, 149.5], [0, 0, 1]], world_up=(0, -1, 0))
    example = Pose3DExample('src.jpg', np.zeros((2, 3)) + [0, 0, 3000], [100, 50, 150, 200], camera)
    with pytest.raises(improc.ImageDecodeError, match=r'src\.jpg: truncated JPEG'):
        make_efficient_example(example, 'crop.jpg', data_root=tmp_path)
    assert not (tmp_path / 'crop.jpg').exists()
