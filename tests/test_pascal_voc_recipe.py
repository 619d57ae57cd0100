"""PASCAL VOC occluders on a fake devkit release: which objects pass (the rule re-stated on the written
objects), the soft rim after the x0.5 downscale, the colours, the palette PNG reading, and the sampling API."""
import json

import cv2
import numpy as np
import pytest

from posepile.ds.pascal_voc import main as voc
from tests import faults
from tests.fakes import pascal_voc as fake


def _passes(obj):
    return (obj['name'] != 'person' and not obj['difficult'] and not obj['truncated'] and obj['pixels'] >= 500
            and obj['class_consistent'])


def test_pascal_voc_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'pascal_voc')
    result = faults.run_recipe('pascal_voc', data_root)
    assert result.returncode == 0, result.stderr[-3000:]
    out = data_root / 'pascal_voc' / 'occluders'
    index = json.loads((out / 'index.json').read_text())
    expected = [(image_id, o['index'], o['name']) for image_id, objects in sorted(written.items())
                for o in objects if _passes(o)]
    assert [(e['image_id'], e['object_index'], e['class']) for e in index] == expected
    assert len(expected) == 3  # dog, chair, bottle (exactly 500 px)
    assert sorted(p.name for p in out.glob('*.png')) == sorted(e['file'] for e in index)

    # the chair: a 40 x 30 rectangle at even coordinates -> 20 x 15 after x0.5; 2x2 blocks average the rim
    # (0.75) and the inside (1): inside 255, edges (2 rim + 2 inside) 0.875 -> 223, corners (3 + 1) 0.8125 -> 207
    rgba = cv2.imread(str(out / '2007_000039_01.png'), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (15, 20, 4)
    alpha = rgba[..., 3].astype(int)
    assert alpha[7, 10] == 255 and abs(alpha[0, 10] - 223) <= 1 and abs(alpha[7, 0] - 223) <= 1
    assert abs(alpha[0, 0] - 207) <= 1 and abs(alpha[14, 19] - 207) <= 1
    rgb = rgba[7, 10, 2::-1].astype(int)
    assert np.abs(rgb - fake.object_colour(1).astype(int)).max() <= 4

    # the sampling API a training loop calls
    from posepile import augment
    augment._occluders.cache_clear()
    rng = np.random.default_rng(0)
    drawn = {augment.sample_occluder(rng).name for _ in range(40)}
    assert drawn == {e['file'] for e in index}
    image = np.zeros((64, 64, 3), np.uint8)
    chair = next(o for o in augment.load_occluders() if o.name == '2007_000039_01.png')
    augment.paste_occluder(image, chair, (32, 32))
    assert np.abs(image[32, 32].astype(int) - fake.object_colour(1).astype(int)).max() <= 4
    assert image[0, 0].tolist() == [0, 0, 0]  # outside the 20 x 15 occluder
    top = 24  # the 15 rows centred at y = 32 start at round(32 - 7.5) = 24
    assert image[top - 1, 32].tolist() == [0, 0, 0]
    edge = image[top, 32].astype(int)  # top rim row: alpha 223/255 of the occluder's colour over black
    assert abs(chair.mask[0, 10] - 223 / 255) < 0.005
    assert np.abs(edge - np.round(chair.rgb[0, 10].astype(float) * 223 / 255)).max() <= 1


def test_contact_sheet_of_the_occluders(data_root, tmp_path):
    fake.write_fake_release(data_root / 'pascal_voc')
    voc.main(['occluders'])
    from posepile import augment, show
    augment._occluders.cache_clear()
    out = tmp_path / 'sheet.png'
    show.main(['pascal_voc', '--out', str(out), '--tile-size', '64'])
    sheet = cv2.imread(str(out))[..., ::-1]
    assert sheet.shape == (2 * 64, 2 * 64, 3)  # 3 occluders: 2 columns, 2 rows
    # the dog (object 1 of 2007_000032, first tile) shows its colour in the tile centre, on a checkerboard
    assert np.abs(sheet[32, 32].astype(int) - fake.object_colour(1).astype(int)).max() <= 8
    assert not sheet[64:, 64:].any()  # the empty 4th tile


def test_palette_png_indices_are_read_not_colours(tmp_path):
    indices = np.arange(256, dtype=np.uint8).reshape(16, 16)
    fake.write_palette_png(tmp_path / 'x.png', indices)
    assert np.array_equal(voc.read_label_png(tmp_path / 'x.png'), indices)
    (tmp_path / 'bad.png').write_bytes(b'not a png')
    with pytest.raises(voc.PascalVocFormatError, match='bad.png'):
        voc.read_label_png(tmp_path / 'bad.png')


def test_unknown_class_names_the_xml(data_root):
    fake.write_fake_release(data_root / 'pascal_voc')
    xml = data_root / 'pascal_voc/VOCdevkit/VOC2012/Annotations/2007_000032.xml'
    xml.write_text(xml.read_text().replace('<name>dog</name>', '<name>doggo</name>'))
    result = faults.run_recipe('pascal_voc', data_root)
    faults.assert_one_line_failure(result, '2007_000032.xml', 'doggo')
