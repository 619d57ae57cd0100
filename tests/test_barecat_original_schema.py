"""The original PosePile Barecat layout, both directions.

1. Our export, read by a reader written here from the documented original layout only (facts §1.9: sidecar
   SQLite index `X-sqlite-index`, msgpack-numpy values, keys `<phase>/<image_path>_<NN>.msgpack` with
   phases train/val/test, `joints3d` = {rows, i_rows (empty = dense)}, `cam` = {rotvec_w2c, loc, intr, up,
   distcoef}, masks {size, zcounts}, metadata with `train_bone_lengths` / `trainval_bone_lengths`).
2. An archive written here from the same documented layout (as the original tools write it: int16 boxes,
   empty rows for an example without valid joints, zlib'd masks, no key table), read by our reader, `verify`,
   the merge and `show`.
Neither side uses posepile's own encoder or decoder for the other direction.
"""
import collections
import zlib
from pathlib import Path

import barecat
import cv2
import msgpack
import numpy as np

from posepile.datasets2d import Pose2DDataset, Pose2DExample
from posepile.datasets3d import TEST, TRAIN, VALID, Pose3DDataset, Pose3DExample
from posepile.joint_info import JointInfo
from posepile.storage import barecat_store
from posepile.util import masks
from posepile.util.camera import Camera

PHASES = ('train', 'val', 'test')
JOINTS = 'pelv,rhip,rkne,lhip,lkne,neck'
EDGES = 'pelv-rhip-rkne,pelv-neck'


# ------------------------------------------------------------------------------------------------------
# msgpack-numpy wire format, from its documentation (not posepile's codec)
def doc_pack(obj):
    def default(o):
        if isinstance(o, np.ndarray):
            return {b'nd': True, b'type': o.dtype.str, b'kind': b'', b'shape': o.shape,
                    b'data': np.ascontiguousarray(o).tobytes()}
        if isinstance(o, np.generic):
            return {b'nd': False, b'type': o.dtype.str, b'data': o.tobytes()}
        raise TypeError(type(o))
    return msgpack.packb(obj, default=default, use_bin_type=True)


def doc_unpack(data):
    def hook(d):
        if b'nd' in d:
            if d[b'nd']:
                return np.frombuffer(d[b'data'], np.dtype(d[b'type'])).reshape(d[b'shape'])
            return np.frombuffer(d[b'data'], np.dtype(d[b'type']))[0]
        return d
    # msgpack-numpy's unpackb keeps msgpack's default strict_map_key=True: only str/bytes map keys
    return msgpack.unpackb(data, raw=False, object_hook=hook)


def open_sidecar_writer(path):
    """A writable archive in barecat 0.2's layout: the index is the sidecar file `path-sqlite-index`."""
    with barecat.Index(f'{path}-sqlite-index', readonly=False):
        pass
    return barecat.Barecat(path, readonly=False)


# ------------------------------------------------------------------------------------------------------
# A rich in-memory dataset
def _write_jpeg(root, relpath, seed):
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8), (5, 5), 0)
    (root / relpath).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / relpath), image, [cv2.IMWRITE_JPEG_QUALITY, 95])


def make_rich_dataset(root):
    """Several people per image, underscores in paths, NaN joints, an example without any valid joint,
    coordinates too far for float16, OpenCV distortion (5 and 8 coefficients), an undistorted crop of an
    H36M-model camera, masks, body-model parameters with and without 'pose', univ coords."""
    rng = np.random.default_rng(3)
    ji = JointInfo(JOINTS, EDGES)
    mask = np.zeros((64, 48), bool)
    mask[10:40, 5:30] = True
    splits = {TRAIN: [], VALID: [], TEST: []}
    layout = [(TRAIN, 'crops/s_1/img_0.jpg'), (TRAIN, 'crops/s_1/img_0.jpg'), (TRAIN, 'crops/s_1/img_1.jpg'),
              (TRAIN, 'crops/s_2/img_2.jpg'), (TRAIN, 'crops/s_1/img_0.jpg'), (VALID, 'crops/v/img_3.jpg'),
              (VALID, 'crops/v/img_4.jpg'), (TEST, 'crops/t/img_5.jpg'), (TEST, 'crops/t/img_5.jpg')]
    for k, (split, relpath) in enumerate(layout):
        if not (root / relpath).exists():
            _write_jpeg(root, relpath, k)
        center = np.array([1000.0, 2000.0, 900.0]) if k != 3 else np.array([60000.5, 2000.0, 900.0])
        coords = (rng.normal(0, 300, (6, 3)) + center).astype(np.float32)
        coords[rng.integers(0, 6)] = np.nan
        if k == 6:
            coords[:] = np.nan
        dist = {1: [-0.1, 0.01, 0.001, 0.002, 0.0], 2: [-0.2, 0.05, 0.001, -0.002, 0.01, 0.001, 0.0005, 0.0001]}
        cam = Camera(center + rng.normal(0, 50, 3) - [0, 3000, 0], np.eye(3),
                     [[500, 0, 24], [0, 510, 32], [0, 0, 1]], dist.get(k % 3), world_up=(0, 0, 1))
        cam.turn_towards(target_world_point=center)
        if k == 4:
            cam = Camera(cam.t, cam.R, cam.intrinsic_matrix, None, world_up=(0, 0, 1), distortion_model='h36m')
        params = None
        if k == 0:
            params = {'type': 'smpl', 'gender': 'f', 'pose': rng.normal(0, 0.1, 72).astype(np.float32),
                      'shape': np.arange(10, dtype=np.float32), 'trans': np.array([0.1, 0.2, 3.0])}
        elif k == 2:
            params = {'type': 'smpl', 'betas': np.arange(10, dtype=np.float32)}
        splits[split].append(Pose3DExample(
            relpath, coords, [3.25 + k, 4.75, 30.5, 50.25], cam, activity_name=f'act{k % 3}',
            scene_name=f'scene{k % 2}', mask=masks.encode(mask) if k % 2 == 0 else None,
            univ_coords=coords * 0.9 if k == 1 else None, parameters=params))
    return Pose3DDataset(ji, splits[TRAIN], splits[VALID], splits[TEST])


# ------------------------------------------------------------------------------------------------------
# 1. Our export, read by the documented original layout
def read_documented_layout(folder):
    """{phase: [(key, image_path_from_key, value dict)]}, metadata, images archive; barecat opens the sidecar
    layout, every key is grouped by its first path component, image_path = key minus phase and '_NN...'."""
    ann_path = Path(folder) / 'annotations.barecat'
    assert Path(f'{ann_path}-sqlite-index').is_file() and not ann_path.exists()
    ann = barecat.Barecat(ann_path, readonly=True)
    metadata = doc_unpack(ann['metadata.msgpack'])
    groups = collections.defaultdict(list)
    for key in ann:
        groups[key.partition('/')[0]].append(key)
    result = {}
    for phase in PHASES:
        result[phase] = [(key, '_'.join(key.partition('/')[2].split('_')[:-1]), doc_unpack(ann[key]))
                         for key in groups[phase]]
    images = barecat.Barecat(Path(folder) / 'images.barecat', readonly=True)
    return result, metadata, images


def documented_coords(d, n_joints):
    j = d['joints3d']
    if len(j['i_rows']) > 0:
        coords = np.full((n_joints, 3), np.nan, np.float32)
        coords[j['i_rows']] = j['rows']
        return coords
    return np.asarray(j['rows'], np.float32)


def documented_projection(d, coords):
    cam = d['cam']
    R = cv2.Rodrigues(np.asarray(cam['rotvec_w2c'], np.float64))[0]
    K = np.concatenate([cam['intr'], [[0, 0, 1]]])
    dist = cam.get('distcoef', np.zeros(5))
    tvec = -R @ np.asarray(cam['loc'], np.float64)
    valid = np.isfinite(coords).all(-1)
    points = cv2.projectPoints(coords[valid].astype(np.float64), cv2.Rodrigues(R)[0], tvec, K, dist)[0]
    return points.reshape(-1, 2)


def test_our_export_reads_with_the_documented_original_layout(tmp_path):
    ds = make_rich_dataset(tmp_path)
    out = tmp_path / 'out'
    barecat_store.export_dataset(ds, out, image_root=tmp_path)
    phases, metadata, images = read_documented_layout(out)
    assert metadata['joint_names'] == JOINTS.split(',')
    assert JointInfo(metadata['joint_names'], [tuple(e) for e in metadata['joint_edges']]) == ds.joint_info
    # bone lengths present, float32 mm
    assert metadata['train_bone_lengths'].dtype == np.float32
    np.testing.assert_allclose(metadata['train_bone_lengths'], ds.train_bones, rtol=1e-6)
    np.testing.assert_allclose(metadata['trainval_bone_lengths'], ds.trainval_bones, rtol=1e-6)

    # the original reader sees the examples of a phase in its archive's key order; match them by key
    worst = collections.defaultdict(float)
    for split, phase in zip((TRAIN, VALID, TEST), PHASES):
        entries = phases[phase]
        assert len(entries) == len(ds.examples[split])
        by_key = {key: (impath, d) for key, impath, d in entries}
        seen = collections.Counter()
        for ex in ds.examples[split]:
            nn = seen[ex.image_path]
            seen[ex.image_path] += 1
            impath, d = by_key[f'{phase}/{ex.image_path}_{nn:02d}.msgpack']
            assert impath == ex.image_path == d['impath']
            coords = documented_coords(d, 6)
            assert coords.shape == (6, 3)
            assert np.array_equal(np.isnan(coords), np.isnan(ex.world_coords))
            if np.isfinite(ex.world_coords).any():
                worst['joints_mm'] = max(worst['joints_mm'], np.nanmax(np.abs(coords - ex.world_coords)))
                assert d['joints3d']['i_rows'].dtype == np.uint16
                projected = documented_projection(d, coords)
                expected = ex.camera.world_to_image(ex.world_coords[np.isfinite(ex.world_coords).all(-1)])
                worst['projection_px'] = max(worst['projection_px'], np.abs(projected - expected).max())
            worst['bbox_px'] = max(worst['bbox_px'], np.abs(np.asarray(d['bbox'], np.float32) - ex.bbox).max())
            assert d['cam']['intr'].shape == (2, 3)
            np.testing.assert_allclose(d['cam']['up'], ex.camera.world_up)
            if ex.camera.distortion_coeffs is None:
                assert 'distcoef' not in d['cam']
            if ex.mask is not None:
                assert zlib.decompress(d['mask']['zcounts']).decode() == ex.mask['counts']
                assert list(d['mask']['size']) == ex.mask['size']
            else:
                assert 'mask' not in d
            if ex.parameters is not None and 'pose' in ex.parameters:
                np.testing.assert_array_equal(d['parameters']['pose'].reshape(-1), ex.parameters['pose'])
            else:
                assert 'parameters' not in d  # the original reader requires 'pose' in 'parameters'
            assert images[d['impath']] == (tmp_path / ex.image_path).read_bytes()
    print('worst:', dict(worst))
    assert worst['joints_mm'] < 1.0 and worst['bbox_px'] < 1.0 and worst['projection_px'] < 0.5, dict(worst)
    # the example without valid joints decodes to all NaN, not to an empty array
    assert np.isnan(documented_coords(phases['val'][1][2], 6)).all()
    # float32 where float16 would lose >= 1 mm (60 m from the origin)
    far = [d for key, _, d in phases['train'] if 'img_2' in key][0]
    assert far['joints3d']['rows'].dtype == np.float32


def test_our_export_opens_with_the_installed_barecat(tmp_path):
    """barecat >= 0.3 opens the sidecar layout (it looks for `X-sqlite-index` when `X` is absent)."""
    ds = make_rich_dataset(tmp_path)
    barecat_store.export_dataset(ds, tmp_path / 'out', image_root=tmp_path)
    with barecat.Barecat(tmp_path / 'out' / 'annotations.barecat', readonly=True) as bc:
        assert bc.index.path.endswith('annotations.barecat-sqlite-index')
        assert sum(1 for k in bc if k.startswith(('train/', 'val/', 'test/'))) == 9
        d = doc_unpack(bc['val/crops/v/img_3.jpg_00.msgpack'])
        assert d['impath'] == 'crops/v/img_3.jpg' and d['joints3d']['rows'].ndim == 2


# ------------------------------------------------------------------------------------------------------
# 2. An archive written as the original tools write it, read by our tools
def write_original_archive(folder, ds, image_root, with_images=True):
    """The documented original layout: examples grouped by image in first-appearance order, NN per image,
    int16 rounded boxes, float16 rows if that loses < 1 mm, empty i_rows when all joints are valid (and
    empty rows when none is), rotvec/loc/intr/up camera, distcoef only if non-zero, zlib'd mask counts."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ann = open_sidecar_writer(folder / 'annotations.barecat')
    metadata = {'joint_names': list(ds.joint_info.names),
                'joint_edges': [list(map(int, e)) for e in ds.joint_info.stick_figure_edges],
                'train_bone_lengths': np.asarray(ds.train_bones, np.float32),
                'trainval_bone_lengths': np.asarray(ds.trainval_bones, np.float32)}
    ann['metadata.msgpack'] = doc_pack(metadata)
    for split, phase in zip((TRAIN, VALID, TEST), PHASES):
        by_image = collections.defaultdict(list)
        for ex in ds.examples[split]:
            by_image[ex.image_path].append(ex)
        for impath, exs in by_image.items():
            for nn, ex in enumerate(exs):
                ann[f'{phase}/{impath}_{nn:02d}.msgpack'] = doc_pack(original_tool_dict(ex))
    ann.close()
    if with_images:
        images = open_sidecar_writer(folder / 'images.barecat')
        for ex in ds.iter_examples():
            if ex.image_path not in images:
                images[ex.image_path] = (Path(image_root) / ex.image_path).read_bytes()
        images.close()


def original_tool_dict(ex):
    cam = ex.camera
    d = {'impath': ex.image_path, 'bbox': np.round(ex.bbox).astype(np.int16),
         'cam': {'rotvec_w2c': cv2.Rodrigues(cam.R)[0][:, 0], 'loc': cam.t, 'intr': cam.intrinsic_matrix[:2],
                 'up': cam.world_up}}
    if cam.distortion_coeffs is not None and np.count_nonzero(cam.distortion_coeffs):
        d['cam']['distcoef'] = cam.distortion_coeffs
    coords = ex.world_coords.astype(np.float32)
    valid = np.where(np.isfinite(coords).all(-1))[0].astype(np.uint16)
    rows = coords[valid]
    if len(rows) and np.max(np.abs(rows - rows.astype(np.float16))) < 1:
        rows = rows.astype(np.float16)
    if len(valid) == len(coords):
        valid = valid[:0]
    d['joints3d'] = {'rows': rows, 'i_rows': valid}
    if ex.parameters is not None and 'pose' in ex.parameters:
        d['parameters'] = dict(ex.parameters)
    if ex.mask is not None:
        d['mask'] = {'size': ex.mask['size'], 'zcounts': zlib.compress(ex.mask['counts'].encode(), -1)}
    return d


def test_archive_in_the_original_layout_reads_with_our_tools(tmp_path):
    from posepile import show
    from posepile.merging.merge import merge_datasets
    ds = make_rich_dataset(tmp_path)
    folder = tmp_path / 'orig'
    write_original_archive(folder, ds, tmp_path)
    store = barecat_store.open_dataset(folder)
    assert isinstance(store, Pose3DDataset) and store.is_3d and store.joint_info == ds.joint_info
    np.testing.assert_allclose(store.train_bones, ds.train_bones, rtol=1e-6)
    for split, phase in zip((TRAIN, VALID, TEST), PHASES):
        assert len(store.examples[split]) == len(ds.examples[split])
        # no key table: examples in key order, as the original reader lists them
        expected = {}
        seen = collections.Counter()
        for ex in ds.examples[split]:
            expected[f'{phase}/{ex.image_path}_{seen[ex.image_path]:02d}.msgpack'] = ex
            seen[ex.image_path] += 1
        for key, got in zip(sorted(expected), store.examples[split]):
            ex = expected[key]
            assert got.image_path == ex.image_path
            assert np.array_equal(np.isnan(got.world_coords), np.isnan(ex.world_coords))
            assert np.nanmax(np.abs(got.world_coords - ex.world_coords), initial=0) < 1.0
            assert np.abs(got.bbox - ex.bbox).max() <= 0.5
            np.testing.assert_allclose(got.camera.R, ex.camera.R, atol=1e-9)
            np.testing.assert_allclose(got.camera.intrinsic_matrix, ex.camera.intrinsic_matrix)
            if ex.camera.distortion_coeffs is None:
                assert got.camera.distortion_coeffs is None
            else:
                np.testing.assert_allclose(got.camera.distortion_coeffs, ex.camera.distortion_coeffs)
            assert got.mask == ex.mask  # zcounts -> COCO RLE
            if ex.parameters is not None and 'pose' in ex.parameters:
                np.testing.assert_array_equal(got.parameters['pose'], ex.parameters['pose'])
            assert got.image.shape == (64, 48, 3)
    assert barecat_store.verify(folder) == []
    merged = merge_datasets([(store, [(TRAIN, TRAIN), (VALID, VALID)], '')])
    assert len(merged.examples[TRAIN]) == 5 and merged.train_bones is not None
    sheet, _ = show.make_contact_sheet(show.load_any(folder), VALID, n=2, tile_size=48)
    assert sheet.size > 0


def test_original_archive_variants_masks_and_2d(tmp_path, monkeypatch):
    """Masks as plain compressed `counts` bytes or uncompressed `ucounts`; a 2D archive (`joints2d`, no camera);
    images missing from the archive are read from DATA_ROOT, as the original reader does."""
    mask = np.zeros((64, 48), bool)
    mask[3:30, 10:20] = True
    rle = masks.encode(mask)
    runs = np.diff(np.concatenate([[0], np.flatnonzero(np.diff(np.concatenate(
        [[False], mask.T.reshape(-1), [not mask.T.reshape(-1)[-1]]]).astype(np.int8))), [mask.size]]))
    _write_jpeg(tmp_path, 'c/a_1.jpg', 0)
    folder = tmp_path / 'orig2d'
    folder.mkdir()
    ann = open_sidecar_writer(folder / 'annotations.barecat')
    ann['metadata.msgpack'] = doc_pack({'joint_names': ['nose', 'lsho', 'rsho'], 'joint_edges': []})
    coords = np.array([[10.25, 20.5], [np.nan, np.nan], [30, 40]], np.float32)
    for nn, m in enumerate([{'size': [64, 48], 'counts': rle['counts'].encode()},
                            {'size': [64, 48], 'ucounts': runs.astype(np.uint32)}]):
        ann[f'val/c/a_1.jpg_{nn:02d}.msgpack'] = doc_pack({
            'impath': 'c/a_1.jpg', 'bbox': np.array([1, 2, 30, 40], np.int16), 'mask': m,
            'joints2d': {'rows': coords[[0, 2]].astype(np.float16), 'i_rows': np.array([0, 2], np.uint16)}})
    ann.close()
    monkeypatch.setenv('DATA_ROOT', str(tmp_path))
    store = barecat_store.open_dataset(folder)
    assert isinstance(store, Pose2DDataset) and not store.is_3d
    assert len(store.examples[TRAIN]) == 0 and len(store.examples[VALID]) == 2
    for got in store.examples[VALID]:
        assert isinstance(got, Pose2DExample) and got.camera is None
        np.testing.assert_allclose(got.coords, coords, atol=0.01, equal_nan=True)
        assert np.array_equal(masks.decode(got.mask), mask)
        assert got.image.shape == (64, 48, 3)  # from DATA_ROOT: this archive has no images archive
    assert barecat_store.verify(folder) == []


def test_verify_reports_key_and_image_path_disagreement(tmp_path):
    ds = make_rich_dataset(tmp_path)
    folder = tmp_path / 'orig'
    write_original_archive(folder, ds, tmp_path)
    with barecat.Barecat(folder / 'annotations.barecat', readonly=False) as ann:
        value = doc_unpack(ann['test/crops/t/img_5.jpg_01.msgpack'])
        value['impath'] = 'crops/t/other.jpg'
        del ann['test/crops/t/img_5.jpg_01.msgpack']
        ann['test/crops/t/img_5.jpg_01.msgpack'] = doc_pack(value)
    problems = barecat_store.verify(folder)
    assert len(problems) == 2 and "its key gives 'crops/t/img_5.jpg'" in problems[0]
    assert 'images.barecat: image crops/t/other.jpg' in problems[1]
