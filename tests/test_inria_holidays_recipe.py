"""INRIA Holidays backgrounds on a fake release: EXIF orientation (marker position worked out per tag), centre
square crop to 512 x 512, the person-free list from the detections, and sample_background."""
import numpy as np
import pytest

from posepile.ds.inria_holidays import main as holidays
from posepile.util import fileio, improc
from tests import faults
from tests.fakes import inria_holidays as fake

# Where the stored top-left marker is seen after the EXIF orientation (EXIF 2.3 Orientation semantics):
# 1 top-left, 3 (rotated 180) bottom-right, 6 (rotate 90 CW to view) top-right, 8 (rotate 90 CCW) bottom-left.
MARKER_CORNER = {None: 'tl', 1: 'tl', 3: 'br', 6: 'tr', 8: 'bl'}


def _corner(image):
    red = (image[..., 0] > 150) & (image[..., 1] < 100)
    ys, xs = np.nonzero(red)
    return ('t' if ys.mean() < image.shape[0] / 2 else 'b') + ('l' if xs.mean() < image.shape[1] / 2 else 'r')


def test_inria_holidays_recipe_on_fake_release(data_root):
    photos = fake.write_fake_release(data_root / 'inria_holidays')
    result = faults.run_recipe('inria_holidays', data_root, env_extra={'POSEPILE_DETECTOR': 'hog'})
    assert result.returncode == 0, result.stderr[-3000:]
    root = data_root / 'inria_holidays'
    for name, (width, height, orientation) in photos.items():
        image = improc.imread_rgb(root / 'jpg_small' / f'{name}.jpg')
        assert image.shape == (512, 512, 3)
        assert _corner(image) == MARKER_CORNER[orientation], (name, orientation)
        # the centre square of the displayed photo: the marker (a quarter of each stored side) covers
        # 512 * (stored side / 4 - crop offset) / square side along each displayed axis
        displayed_w, displayed_h = (height, width) if orientation in (6, 8) else (width, height)
        side = min(displayed_w, displayed_h)
        marker_w = (width if orientation not in (6, 8) else height) // 4
        offset_x = (displayed_w - side) // 2
        red_cols = ((image[..., 0] > 150) & (image[..., 1] < 100)).any(axis=0).sum()
        assert abs(red_cols - 512 * (marker_w - offset_x) / side) <= 4, name
    detections = fileio.load_pickle(root / 'posepile_work' / 'detections.pkl')
    assert sorted(detections) == sorted(f'{n}.jpg' for n in photos)
    listed = (root / 'non_person_images.txt').read_text().split()
    assert listed == sorted(n for n, boxes in detections.items() if len(boxes) == 0)

    # one image with a person detection: left out of the list
    detections['100001.jpg'] = np.array([[10, 10, 100, 300, 0.9]], np.float32)
    detections['100000.jpg'] = np.zeros((0, 5), np.float32)
    fileio.save_pickle(detections, root / 'posepile_work' / 'detections.pkl')
    holidays.select_stage()
    listed = (root / 'non_person_images.txt').read_text().split()
    assert '100001.jpg' not in listed and '100000.jpg' in listed
    assert listed == sorted(n for n, boxes in detections.items() if len(boxes) == 0)

    from posepile import augment
    augment._background_paths.cache_clear()
    rng = np.random.default_rng(0)
    backgrounds = [augment.sample_background(rng) for _ in range(10)]
    assert all(b.shape == (512, 512, 3) for b in backgrounds)
    assert {str(p).rsplit('/', 1)[1] for p in augment.background_paths()} == set(listed)


@pytest.mark.parametrize('orientation', range(1, 9))
def test_exif_orientation_is_read_and_applied(orientation):
    image = fake.photo(40, 20)
    data = improc.encode_jpeg(image)
    for little_endian in (True, False):
        tagged = data[:2] + fake.exif_app1(orientation, little_endian) + data[2:]
        assert holidays.exif_orientation(tagged) == orientation
    assert holidays.exif_orientation(data) == 1
    shown = holidays.apply_orientation(image, orientation)
    assert shown.shape[:2] == ((40, 20) if orientation >= 5 else (20, 40))
    # the stored top-left pixel's place in the displayed image, per the EXIF definition of the tag
    h, w = shown.shape[:2]
    place = {1: (0, 0), 2: (0, w - 1), 3: (h - 1, w - 1), 4: (h - 1, 0), 5: (0, 0), 6: (0, w - 1),
             7: (h - 1, w - 1), 8: (h - 1, 0)}[orientation]
    assert shown[place].tolist() == image[0, 0].tolist()


def test_a_truncated_photo_names_the_file(data_root):
    fake.write_fake_release(data_root / 'inria_holidays', as_archives=False)
    path = data_root / 'inria_holidays' / 'jpg' / '100100.jpg'
    path.write_bytes(path.read_bytes()[:500])
    result = faults.run_recipe('inria_holidays', data_root, env_extra={'POSEPILE_DETECTOR': 'hog'})
    faults.assert_one_line_failure(result, '100100.jpg')
