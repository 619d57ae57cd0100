import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from posepile.datasets2d import Pose2DDataset, Pose2DExample
from posepile.datasets3d import TEST, TRAIN, VALID, Pose3DDataset, Pose3DExample
from posepile.joint_info import JointInfo
from posepile.storage import barecat_store
from posepile.util import masks
from posepile.util.camera import Camera


def _write_jpeg(path, seed):
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8), (5, 5), 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return image


def make_dataset_3d(root, n_per_split=(5, 2, 3)):
    rng = np.random.default_rng(0)
    ji = JointInfo('pelv,rhip,rkne,lhip,lkne,neck', 'pelv-rhip-rkne,pelv-neck')
    splits = []
    k = 0
    for n in n_per_split:
        examples = []
        for i in range(n):
            relpath = f'crops/img_{k:03d}.jpg'
            _write_jpeg(root / relpath, k)
            coords = rng.normal(0, 300, (6, 3)).astype(np.float32) + [1000, 2000, 900]
            coords[rng.integers(0, 6)] = np.nan
            cam = Camera([1, 2, 3], np.eye(3), [[500, 0, 24], [0, 510, 32], [0, 0, 1]],
                         [-0.1, 0.01, 0.001, 0.002, 0.0] if k % 2 else None, world_up=(0, 0, 1))
            cam.turn_towards(target_world_point=[1000, 2000, 900])
            mask = np.zeros((64, 48), bool)
            mask[10:40, 5:30] = True
            examples.append(Pose3DExample(
                relpath, coords, [3.5, 4.25, 30, 50], cam, activity_name=f'act{k % 3}', scene_name='s',
                mask=masks.encode(mask), univ_coords=coords * 0.9 if k % 2 else None,
                parameters={'type': 'smpl', 'betas': np.arange(10, dtype=np.float32)} if k == 0 else None))
            k += 1
        splits.append(examples)
    return Pose3DDataset(ji, *splits)


def assert_examples_equal(a, b):
    assert a.image_path == b.image_path
    np.testing.assert_allclose(a.world_coords, b.world_coords, atol=1.0, equal_nan=True)
    assert np.array_equal(np.isnan(a.world_coords), np.isnan(b.world_coords))
    # the original layout rounds boxes to int16 px (as the original writer), the older one keeps float32
    np.testing.assert_allclose(b.bbox, a.bbox, atol=0.5)
    assert np.array_equal(b.bbox, np.round(a.bbox)) or np.array_equal(b.bbox, a.bbox)
    np.testing.assert_allclose(a.camera.R, b.camera.R, atol=1e-6)
    np.testing.assert_allclose(a.camera.t, b.camera.t)
    np.testing.assert_allclose(a.camera.intrinsic_matrix, b.camera.intrinsic_matrix)
    assert (a.camera.distortion_coeffs is None) == (b.camera.distortion_coeffs is None)
    assert a.mask == b.mask
    assert a.activity_name == b.activity_name


@pytest.mark.parametrize('schema', barecat_store.SCHEMAS)
def test_export_roundtrip_and_verify(tmp_path, schema):
    ds = make_dataset_3d(tmp_path)
    out = tmp_path / 'out'
    meta = barecat_store.export_dataset(ds, out, image_root=tmp_path, schema=schema)
    if schema == 'original':
        assert meta['posepile']['counts'] == {'train': 5, 'val': 2, 'test': 3}
        # the sidecar index of barecat 0.2 (barecat >= 0.3 opens it too)
        assert (out / 'annotations.barecat-sqlite-index').is_file() and not (out / 'annotations.barecat').exists()
        np.testing.assert_allclose(meta['train_bone_lengths'], ds.train_bones)
    else:
        assert meta['counts'] == {'train': 5, 'valid': 2, 'test': 3}
        assert (out / 'annotations.barecat').is_file()
    store = barecat_store.open_dataset(out)
    assert isinstance(store, Pose3DDataset)
    assert store.joint_info == ds.joint_info
    np.testing.assert_allclose(store.train_bones, ds.train_bones)
    np.testing.assert_allclose(store.trainval_bones, ds.trainval_bones)
    for split in (TRAIN, VALID, TEST):
        assert len(store.examples[split]) == len(ds.examples[split])
        for a, b in zip(ds.examples[split], store.examples[split]):
            assert_examples_equal(a, b)
            # Projections through the restored camera agree to well below a pixel (the original layout
            # stores absolute mm, in float16 when that loses < 1 mm: up to 0.5 mm here).
            valid = np.isfinite(a.world_coords).all(-1)
            err = np.abs(a.camera.world_to_image(a.world_coords[valid])
                         - b.camera.world_to_image(b.world_coords[valid]))
            assert err.max() < (0.5 if schema == 'original' else 0.05)
            original = cv2.imread(str(tmp_path / a.image_path))[..., ::-1]
            assert b.image.shape == original.shape
            assert np.abs(b.image.astype(int) - original).max() == 0
            assert b.scene_name == a.scene_name
            if a.univ_coords is not None:
                np.testing.assert_allclose(b.univ_coords, a.univ_coords, atol=1.0)
            else:
                assert b.univ_coords is None
    first = store.examples[TRAIN][0]
    np.testing.assert_array_equal(first.parameters['betas'], np.arange(10))
    assert barecat_store.verify(out) == []


def test_float16_used_only_when_precise():
    coords = np.array([[1000.0, 2000.0, 900.0], [1300.0, 2100.0, 1700.0]], np.float32)
    enc = barecat_store.encode_coords(coords, max_error=1.0)
    assert enc['rows'].dtype == np.float16
    np.testing.assert_allclose(barecat_store.decode_coords(enc, 3), coords, atol=1.0)
    far = np.array([[0.0, 0, 0], [60010.0, 0, 0]], np.float32)  # 60 m apart: float16 steps are 16 mm there
    enc = barecat_store.encode_coords(far, max_error=1.0)
    assert enc['rows'].dtype == np.float32
    np.testing.assert_array_equal(barecat_store.decode_coords(enc, 3), far)


def test_original_rows_float16_only_when_precise_and_dense_when_all_valid():
    near = np.array([[100.0, 200.0, 900.0], [130.5, 210.25, 1700.0]], np.float32)
    enc = barecat_store.encode_rows(near, max_error=1.0)
    assert enc['rows'].dtype == np.float16 and enc['i_rows'].dtype == np.uint16 and len(enc['i_rows']) == 0
    np.testing.assert_allclose(barecat_store.decode_rows(enc, 2, 3), near, atol=1.0)
    far = np.array([[np.nan, np.nan, np.nan], [60010.5, 0, 0]], np.float32)
    enc = barecat_store.encode_rows(far, max_error=1.0)
    assert enc['rows'].dtype == np.float32 and enc['i_rows'].tolist() == [1]
    np.testing.assert_array_equal(barecat_store.decode_rows(enc, 2, 3), far)
    none_valid = np.full((3, 3), np.nan, np.float32)
    enc = barecat_store.encode_rows(none_valid, max_error=1.0)
    assert enc['rows'].shape == (3, 3) and len(enc['i_rows']) == 0  # dense NaN rows, as the reader expects
    assert np.isnan(barecat_store.decode_rows(enc, 3, 3)).all()
    # the original writer's encoding of "no valid joint": empty rows and empty i_rows
    empty = {'rows': np.zeros((0, 3), np.float32), 'i_rows': np.zeros(0, np.uint16)}
    assert np.isnan(barecat_store.decode_rows(empty, 3, 3)).all()


def test_msgpack_numpy_codec_and_older_codec_both_decode():
    value = {'a': np.arange(6, dtype=np.float16).reshape(2, 3), 'b': np.float32(2.5), 'c': [1, 'x']}
    for packed in (barecat_store.pack_np(value), barecat_store.pack(value)):
        got = barecat_store.unpack(packed)
        np.testing.assert_array_equal(got['a'], value['a'])
        assert got['a'].dtype == np.float16 and got['a'].flags.writeable
        assert float(got['b']) == 2.5 and got['c'] == [1, 'x']
    # msgpack-numpy's wire format: an array is a map with bytes keys nd/type/kind/shape/data
    import msgpack
    raw = msgpack.unpackb(barecat_store.pack_np(value), raw=False)
    assert raw['a'][b'nd'] is True and raw['a'][b'type'] == '<f2' and raw['a'][b'shape'] == [2, 3]
    assert raw['a'][b'data'] == value['a'].tobytes()


@pytest.mark.parametrize('schema', barecat_store.SCHEMAS)
def test_2d_roundtrip(tmp_path, schema):
    ji = JointInfo('nose,lsho,rsho')
    exs = []
    for i in range(3):
        _write_jpeg(tmp_path / f'c/{i}.jpg', i)
        coords = np.array([[10.25, 20.5], [np.nan, np.nan], [30, 40]], np.float32)
        mask = np.zeros((64, 48), bool)
        mask[5:20, 3:9] = True
        exs.append(Pose2DExample(f'c/{i}.jpg', coords, [1, 2, 30, 40], extra={'head_box': [1, 2, 3, 4]},
                                 mask=masks.encode(mask)))
    ds = Pose2DDataset(ji, exs)
    barecat_store.export_dataset(ds, tmp_path / 'out', image_root=tmp_path, schema=schema)
    store = barecat_store.open_dataset(tmp_path / 'out')
    assert isinstance(store, Pose2DDataset) and not store.is_3d
    got = store.examples[TRAIN][2]
    np.testing.assert_allclose(got.coords, exs[2].coords, atol=0.1, equal_nan=True)
    assert got.extra == {'head_box': [1, 2, 3, 4]}
    assert got.mask == exs[2].mask
    assert barecat_store.verify(tmp_path / 'out') == []


@pytest.mark.parametrize('schema', barecat_store.SCHEMAS)
def test_resume_after_interruption(tmp_path, monkeypatch, schema):
    ds = make_dataset_3d(tmp_path)
    out = tmp_path / 'out'
    calls = {'n': 0}
    name = 'encode_example_original' if schema == 'original' else 'encode_example'
    original = getattr(barecat_store, name)

    def failing(*args):
        calls['n'] += 1
        if calls['n'] == 4:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(barecat_store, name, failing)
    with pytest.raises(KeyboardInterrupt):
        barecat_store.export_dataset(ds, out, image_root=tmp_path, schema=schema)
    monkeypatch.setattr(barecat_store, name, original)
    # An unfinished export is not mistaken for a finished one.
    with pytest.raises(barecat_store.BarecatStoreError, match='did not finish'):
        barecat_store.open_dataset(out)
    assert any('unfinished export' in p for p in barecat_store.verify(out))
    barecat_store.export_dataset(ds, out, image_root=tmp_path, schema=schema)
    assert barecat_store.verify(out) == []
    store = barecat_store.open_dataset(out)
    for a, b in zip(ds.iter_examples(), store.iter_examples()):
        assert_examples_equal(a, b)


def test_reexport_of_a_changed_dataset_replaces_changed_and_removes_stale_entries(tmp_path):
    ds = make_dataset_3d(tmp_path)
    out = tmp_path / 'out'
    barecat_store.export_dataset(ds, out, image_root=tmp_path)
    ds.examples[TRAIN] = ds.examples[TRAIN][:3]
    ds.examples[TRAIN][0].world_coords = ds.examples[TRAIN][0].world_coords + 100
    barecat_store.export_dataset(ds, out, image_root=tmp_path)
    assert barecat_store.verify(out) == []
    store = barecat_store.open_dataset(out)
    assert len(store.examples[TRAIN]) == 3
    for a, b in zip(ds.iter_examples(), store.iter_examples()):
        assert_examples_equal(a, b)
    # An export in the other layout is not silently mixed into this folder.
    with pytest.raises(barecat_store.BarecatStoreError, match='original .sidecar. layout'):
        barecat_store.export_dataset(ds, out, image_root=tmp_path, schema='posepile')


def test_lens_model_the_original_cannot_express(tmp_path):
    ds = make_dataset_3d(tmp_path, n_per_split=(2, 0, 0))
    h36m = ds.examples[TRAIN][1]
    h36m.camera = Camera(h36m.camera.t, h36m.camera.R, h36m.camera.intrinsic_matrix,
                         [0.1, -0.05, 0.01, 0.001, -0.002], world_up=(0, 0, 1), distortion_model='h36m')
    with pytest.raises(barecat_store.BarecatStoreError, match='train example 1: the camera uses the h36m lens'):
        barecat_store.export_dataset(ds, tmp_path / 'out', image_root=tmp_path)
    # A crop's camera has no distortion left (undistort makes it a plain pinhole): exported.
    h36m.camera.undistort()
    barecat_store.export_dataset(ds, tmp_path / 'out', image_root=tmp_path)
    got = barecat_store.open_dataset(tmp_path / 'out').examples[TRAIN][1]
    assert got.camera.distortion_model == 'opencv' and got.camera.distortion_coeffs is None
    # The older layout still stores the H36M model with its coefficients.
    h36m.camera.distortion_model = 'h36m'
    h36m.camera.distortion_coeffs = np.array([0.1, -0.05, 0.01, 0.001, -0.002])
    barecat_store.export_dataset(ds, tmp_path / 'old', image_root=tmp_path, schema='posepile')
    got = barecat_store.open_dataset(tmp_path / 'old').examples[TRAIN][1]
    np.testing.assert_allclose(got.camera.distortion_coeffs, h36m.camera.distortion_coeffs)


@pytest.mark.parametrize('schema', barecat_store.SCHEMAS)
def test_merge_and_show_accept_opened_exports(tmp_path, schema):
    from posepile import show
    from posepile.merging.merge import merge_datasets
    ds = make_dataset_3d(tmp_path)
    out = tmp_path / 'out'
    barecat_store.export_dataset(ds, out, image_root=tmp_path, schema=schema)
    store = show.load_any(out)
    merged = merge_datasets([(store, [(TRAIN, TRAIN), (VALID, TRAIN)], 'a'), (store, [(TEST, VALID)], 'b')])
    assert merged.joint_info.n_joints == 12 and len(merged.examples[TRAIN]) == 7
    np.testing.assert_allclose(merged.examples[TRAIN][0].world_coords[:6], ds.examples[TRAIN][0].world_coords,
                               atol=1.0)
    sheet, indices = show.make_contact_sheet(store, TRAIN, n=4, tile_size=64)
    assert sheet.shape[2] == 3 and len(indices) == 4


def _shards(out, name):
    return sorted(Path(out).glob(f'{name}-shard-*'))


def test_verify_reports_corruption_truncation_and_missing_shards(tmp_path):
    ds = make_dataset_3d(tmp_path)
    out = tmp_path / 'out'
    barecat_store.export_dataset(ds, out, image_root=tmp_path, shard_size_limit=4000)
    image_shards = _shards(out, 'images.barecat')
    assert len(image_shards) >= 3
    # Flip a byte in the middle of the first image shard.
    data = bytearray(image_shards[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    image_shards[0].write_bytes(bytes(data))
    # Truncate the second, delete the last.
    image_shards[1].write_bytes(image_shards[1].read_bytes()[:100])
    image_shards[-1].unlink()
    problems = barecat_store.verify(out)
    text = '\n'.join(problems)
    assert 'fails its CRC32C checksum' in text and image_shards[0].name in text
    assert 'truncated' in text and image_shards[1].name in text
    assert 'missing shard' in text and image_shards[-1].name in text
    result = subprocess.run([sys.executable, '-m', 'posepile.cli', 'verify', str(out)],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert 'CRC32C' in result.stdout


def test_multiprocess_readers(tmp_path):
    import multiprocessing
    ds = make_dataset_3d(tmp_path)
    out = tmp_path / 'out'
    barecat_store.export_dataset(ds, out, image_root=tmp_path)
    store = barecat_store.open_dataset(out)
    store.examples[TRAIN][0]  # open handles in the parent before forking
    ctx = multiprocessing.get_context('fork')
    with ctx.Pool(2) as pool:
        paths = pool.map(_read_path, [(store, i) for i in range(5)])
    assert paths == [ex.image_path for ex in ds.examples[TRAIN]]


def _read_path(args):
    store, i = args
    ex = store.examples[TRAIN][i]
    assert ex.image.shape == (64, 48, 3)
    return ex.image_path
