"""MIT Indoor Scenes: the image list of a fake release (readable images only) and the contact sheet."""
from tests import faults
from tests.fakes import indoorscenes as fake


def test_indoorscenes_recipe_lists_the_readable_images(data_root, tmp_path):
    readable = fake.write_fake_release(data_root / 'indoorscenes')
    result = faults.run_recipe('indoorscenes', data_root)
    assert result.returncode == 0, result.stderr[-3000:]
    listed = (data_root / 'indoorscenes' / 'image_list.txt').read_text().split()
    assert listed == readable and len(listed) == sum(fake.CATEGORIES.values())
    assert '6 images in 3 categories (1 unreadable left out)' in result.stdout

    from posepile import augment, show
    augment._indoor_paths.cache_clear()
    assert len(augment.indoor_scene_paths()) == 6
    out = tmp_path / 'sheet.png'
    show.main(['indoorscenes', '--out', str(out), '--tile-size', '64'])
    import cv2
    sheet = cv2.imread(str(out))
    assert sheet.shape == (2 * 64, 3 * 64, 3)  # 6 tiles: 3 columns (ceil sqrt 6), 2 rows
