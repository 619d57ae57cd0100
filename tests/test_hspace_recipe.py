import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.hspace import main as hspace
from posepile.util import improc, masks, tfrecord
from posepile.util.camera import Camera, reproject_box
from tests.fakes import hspace as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _kept_by_rule(poses, threshold=100.0, buffer_size=20):
    """The selection rule written out (no missing joints): keep a pose iff for every one of the last 20 kept
    poses some joint moved >= 100 mm."""
    kept, buffer = [], []
    for i, pose in enumerate(poses):
        if all(np.max(np.linalg.norm(pose - b, axis=-1)) >= threshold for b in buffer):
            kept.append(i)
            buffer = (buffer + [pose])[-buffer_size:]
    return kept


def _expected(written):
    """{key: person truth} of the people that must become examples."""
    expected = {}
    for name, records in written.items():
        if name == 'selected':
            continue
        order = [(i, p) for i, people in enumerate(records) for p in range(len(people))]
        poses = [records[i][p]['selected_mm'] for i, p in order]
        for k in _kept_by_rule(poses):
            i, p = order[k]
            x0, y0, x1, y1 = records[i][p]['rect']
            if min(x1 - x0, y1 - y0) >= 100:
                expected[f'{name}/{i:08d}_{p:03d}'] = records[i][p]
    return expected


def _run_recipe(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{env.get("PATH", "")}'
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/hspace/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return load_dataset(data_root / 'cache' / 'hspace.posepile')


def test_hspace_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'hspace', n_files=2, seed=3)
    expected = _expected(written)
    n_people = sum(len(people) for name, records in written.items() if name != 'selected' for people in records)
    assert 0 < len(expected) < n_people
    dataset = _run_recipe(data_root)
    assert dataset.joint_info.names == hspace.JOINT_NAMES.split(',') and dataset.joint_info.n_joints == 35
    assert len(dataset.examples[1]) == len(dataset.examples[2]) == 0
    keys = {str(Path(e.image_path).parent.name) + '/' + Path(e.image_path).stem for e in dataset.examples[0]}
    assert keys == set(expected)

    errors = []
    source = Camera(intrinsic_matrix=fake.INTRINSICS)
    for example in dataset.examples[0]:
        truth = expected[f'{Path(example.image_path).parent.name}/{Path(example.image_path).stem}']
        np.testing.assert_allclose(example.world_coords, truth['selected_mm'], atol=1e-3)  # m -> mm
        x0, y0, x1, y1 = truth['rect']
        # box = the label rectangle after erode x1 / dilate x2 (4x4): within 3 px of the rectangle
        box = reproject_box(np.array([x0, y0, x1 - x0, y1 - y0], float), source, example.camera)
        np.testing.assert_allclose(example.bbox, box, atol=4)
        projected = example.camera.world_to_image(example.world_coords)
        r = max(3, int(round(4 * example.camera.intrinsic_matrix[0, 0] / fake.FOCAL)))
        errors += dot_errors(data_root / example.image_path, projected, r)
        crop = improc.imread_rgb(data_root / example.image_path).reshape(-1, 3).astype(float)
        background = crop[crop[:, 1] < 50]
        assert background[:, 0].mean() > background[:, 2].mean() + 20  # stored BGR -> RGB
        mask = masks.decode(example.mask)  # the all-people mask, reprojected into the crop
        cx, cy = np.round(example.bbox[:2] + example.bbox[2:] / 2).astype(int)
        assert mask[cy, cx] and mask.mean() > 0.05
    assert len(errors) > 40, len(errors)
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_unpacked_fields_parse_the_same(tmp_path):
    fake.write_fake_release(tmp_path / 'a', n_files=1, seed=1, packed=True)
    fake.write_fake_release(tmp_path / 'b', n_files=1, seed=1, packed=False)
    path_a, path_b = (sorted((tmp_path / x).glob(hspace.TRAIN_GLOB))[0] for x in 'ab')
    records_a, records_b = hspace.read_records(path_a), hspace.read_records(path_b)
    assert len(records_a) == len(records_b) == 6
    for a, b in zip(records_a, records_b):
        np.testing.assert_array_equal(a['joints_mm'], b['joints_mm'])
        assert a['mask_ids'] == b['mask_ids'] and a['image_bytes'] == b['image_bytes']


def test_decoding_helpers(tmp_path):
    written = fake.write_fake_release(tmp_path, n_files=1, seed=2)
    path = sorted(tmp_path.glob(hspace.TRAIN_GLOB))[0]
    record = hspace.read_records(path)[0]
    image = hspace.decode_image(path, 0, record['image_bytes'])
    assert tuple(image[0, 0]) == fake.BACKGROUND_RGB
    labels = hspace.decode_labels(path, 0, record['mask_bytes'], image.shape)
    truth = written[path.stem][0][1]
    x0, y0, x1, y1 = truth['rect']
    box = hspace.person_box(labels, truth['mask_id'])  # both halves (label and label - 1), no speck
    assert np.all(np.abs(box - [x0, y0, x1 - x0, y1 - y0]) <= 3), (box, truth['rect'])
    np.testing.assert_allclose(record['intrinsics'], fake.INTRINSICS, rtol=1e-6)


def test_flipped_byte_gives_one_line_crc_error(tmp_path):
    fake.write_fake_release(tmp_path, n_files=1, seed=1)
    path = sorted(tmp_path.glob(hspace.TRAIN_GLOB))[0]
    data = bytearray(path.read_bytes())
    first = 8 + 4 + int.from_bytes(data[:8], 'little') + 4
    data[first + 12 + 100] ^= 0x01  # in the data of record 1
    path.write_bytes(bytes(data))
    with pytest.raises(hspace.HSPACEFormatError, match=r'hspace_fake_000\.tfrecord: record 1: CRC mismatch') as info:
        hspace.read_records(path)
    assert '\n' not in str(info.value)


def test_missing_feature_names_file_and_record(tmp_path):
    path = tmp_path / 'x.tfrecord'
    tfrecord.write_records(path, [tfrecord.encode_example({'number_of_rigged_characters': np.array([1]),
                                                           'RIGGED_0/joints_3d': np.zeros(60, np.float32)})])
    with pytest.raises(hspace.HSPACEFormatError,
                       match=r"x\.tfrecord: record 0: feature 'RIGGED_0/joints_3d' has 60 values, expected 189"):
        hspace.read_records(path)


def test_records_without_selected_people_are_not_decoded(data_root, monkeypatch):
    written = fake.write_fake_release(data_root / 'hspace', n_files=1, seed=4)
    path = sorted((data_root / 'hspace').glob(hspace.TRAIN_GLOB))[0]
    decoded = []
    original = hspace.decode_image
    monkeypatch.setattr(hspace, 'decode_image', lambda p, i, data: decoded.append(i) or original(p, i, data))
    results = hspace.process_file(path, data_root)
    kept_records = {int(key.split('/')[-1].split('_')[0]) for key in _expected(written)}
    assert len(results) == len(_expected(written))
    assert kept_records <= set(decoded) < set(range(len(written[path.stem])))
    assert not {2, 5} & set(decoded)  # the records whose people all repeat earlier poses
