import numpy as np
import pytest

from posepile.datasets2d import Pose2DDataset, Pose2DExample
from posepile.datasets3d import TEST, TRAIN, VALID, Pose3DDataset, Pose3DExample
from posepile.joint_info import JointInfo
from posepile.storage import annotations
from posepile.util import masks
from posepile.util.camera import Camera


def make_3d(n=(4, 2, 3)):
    rng = np.random.default_rng(0)
    ji = JointInfo('pelv,lhip,rhip,lkne,rkne', 'pelv-rhip-rkne')
    splits = []
    k = 0
    for count in n:
        exs = []
        for _ in range(count):
            coords = rng.normal(0, 500, (5, 3)).astype(np.float32)
            coords[k % 5] = np.nan
            model = 'h36m' if k % 3 == 1 else 'opencv'
            dist = {0: None, 1: [-0.2, 0.2, 0.01, 0.001, -0.002], 2: [-0.1, 0.01, 0, 0.001, 0, 0.1, 0.01, 0.001]}[k % 3]
            cam = Camera(rng.normal(size=3) * 1000, Camera().turn_towards(target_world_point=rng.normal(size=3)).R,
                         [[1000 + k, 0, 500], [0, 1001, 499.5], [0, 0, 1]], dist, world_up=(0, 0, 1),
                         distortion_model=model)
            mask = masks.encode(rng.random((30, 20)) > 0.5) if k % 2 else None
            exs.append(Pose3DExample(
                f'crops/ü/{k}.jpg', coords, rng.random(4) * 100, cam, activity_name=f'act{k % 3}',
                scene_name=f'scene{k % 2}', mask=mask, univ_coords=coords * 0.9 if k == 2 else None,
                parameters={'type': 'smpl', 'betas': np.arange(10.0), 'gender': 'f'} if k == 3 else None))
            k += 1
        splits.append(exs)
    return Pose3DDataset(ji, *splits)


def assert_same_example(a, b):
    assert type(a) is type(b)
    assert a.image_path == b.image_path
    coords_a = a.world_coords if hasattr(a, 'world_coords') else a.coords
    coords_b = b.world_coords if hasattr(b, 'world_coords') else b.coords
    np.testing.assert_array_equal(coords_a, coords_b)
    np.testing.assert_array_equal(a.bbox, b.bbox)
    assert a.mask == b.mask
    if a.camera is None:
        assert b.camera is None
    else:
        assert a.camera.allclose(b.camera, atol=0)
        np.testing.assert_array_equal(a.camera.R, b.camera.R)
    if hasattr(a, 'world_coords'):
        assert a.activity_name == b.activity_name and a.scene_name == b.scene_name
        if a.univ_coords is None:
            assert b.univ_coords is None
        else:
            np.testing.assert_array_equal(a.univ_coords, b.univ_coords)
        if a.parameters is None:
            assert b.parameters is None
        else:
            assert a.parameters['type'] == b.parameters['type']
            np.testing.assert_array_equal(a.parameters['betas'], b.parameters['betas'])


def test_roundtrip_3d_exact(tmp_path):
    ds = make_3d()
    path = annotations.save_dataset(ds, tmp_path / 'x.posepile')
    loaded = annotations.load_dataset(path)
    assert loaded.joint_info == ds.joint_info
    np.testing.assert_array_equal(loaded.train_bones, ds.train_bones)
    np.testing.assert_array_equal(loaded.trainval_bones, ds.trainval_bones)
    for split in (TRAIN, VALID, TEST):
        assert len(loaded.examples[split]) == len(ds.examples[split])
        for a, b in zip(ds.examples[split], loaded.examples[split]):
            assert_same_example(a, b)
    assert loaded.examples[TEST][-1].image_path == ds.examples[TEST][-1].image_path
    assert_same_example(loaded.examples[TRAIN][-1], ds.examples[TRAIN][-1])
    # Pickle for interoperability.
    annotations.save_dataset_pickle(loaded, tmp_path / 'x.pkl')
    again = annotations.load_dataset(tmp_path / 'x.pkl')
    for a, b in zip(ds.iter_examples(), again.iter_examples()):
        assert_same_example(a, b)


def test_roundtrip_2d(tmp_path):
    ji = JointInfo('nose,lsho,rsho')
    exs = [Pose2DExample(f'{i}.jpg', [[1.5, 2], [np.nan, np.nan], [3, 4 + i]], [0, 1, 2, 3],
                         extra={'head_box': [1, 2, 3, 4]} if i == 0 else None) for i in range(3)]
    ds = Pose2DDataset(ji, exs[:2], [], exs[2:])
    loaded = annotations.load_dataset(annotations.save_dataset(ds, tmp_path / 'y.posepile'))
    assert isinstance(loaded, Pose2DDataset)
    for a, b in zip(ds.iter_examples(), loaded.iter_examples()):
        assert_same_example(a, b)
    assert loaded.examples[TRAIN][0].extra == {'head_box': [1, 2, 3, 4]}


def test_failed_save_leaves_old_version_and_no_partial(tmp_path, monkeypatch):
    path = tmp_path / 'z.posepile'
    annotations.save_dataset(make_3d((2, 0, 0)), path)
    original_append = annotations._ColumnFiles.append
    calls = {'n': 0}

    def failing_append(self, name, array):
        calls['n'] += 1
        if calls['n'] == 5:  # a column write in the middle of the save fails
            raise OSError('disk full')
        return original_append(self, name, array)

    monkeypatch.setattr(annotations._ColumnFiles, 'append', failing_append)
    with pytest.raises(OSError, match='disk full'):
        annotations.save_dataset(make_3d((5, 0, 0)), path)
    monkeypatch.setattr(annotations._ColumnFiles, 'append', original_append)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['z.posepile']  # no temp folder left
    assert len(annotations.load_dataset(path).examples[TRAIN]) == 2  # the old version is intact


def test_corrupt_files_give_clear_errors(tmp_path):
    path = annotations.save_dataset(make_3d(), tmp_path / 'c.posepile')
    coords_file = path / 'coords.npy'
    coords_file.write_bytes(coords_file.read_bytes()[:100])
    with pytest.raises(annotations.DatasetFileError, match='coords.npy'):
        annotations.load_dataset(path)
    (path / 'bbox.npy').unlink()
    (path / 'header.json').write_text('{"schema_version": 1, ')
    with pytest.raises(annotations.DatasetFileError, match='header.json: invalid JSON'):
        annotations.load_dataset(path)
    (path / 'header.json').unlink()
    with pytest.raises(annotations.DatasetFileError, match='no header.json'):
        annotations.load_dataset(path)


def test_unsaved_frames_are_rejected(tmp_path):
    ds = make_3d((1, 0, 0))
    ds.examples[TRAIN][0].image_path = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(annotations.DatasetFileError, match='crop the examples before saving'):
        annotations.save_dataset(ds, tmp_path / 'f.posepile')


def test_cache_with_old_camera_frame_parameters_is_refused(tmp_path):
    """3D caches say their parameters are world-frame; one without that mark that holds parameters was built
    with camera-frame parameters (before the interop change) and must be rebuilt, not silently misread."""
    import json

    import pytest

    from posepile.datasets3d import Pose3DDataset, Pose3DExample
    from posepile.joint_info import JointInfo
    from posepile.storage.annotations import DatasetFileError, load_dataset, save_dataset
    from posepile.util.camera import Camera
    camera = Camera(intrinsic_matrix=np.array([[500, 0, 64], [0, 500, 64], [0, 0, 1.0]]))
    params = {'type': 'smpl', 'gender': 'neutral', 'pose': np.zeros(72, np.float32),
              'shape': np.zeros(10, np.float32), 'trans': np.array([0, 0, 3], np.float32)}
    for with_parameters in (True, False):
        example = Pose3DExample('a.jpg', np.ones((2, 3), np.float32), np.array([0, 0, 10, 10], np.float32), camera,
                                parameters=params if with_parameters else None)
        path = tmp_path / f'd{with_parameters}.posepile'
        save_dataset(Pose3DDataset(JointInfo('a,b', 'a-b'), [example]), path)
        assert load_dataset(path).examples[0][0].world_coords.shape == (2, 3)
        header = json.loads((path / 'header.json').read_text())
        assert header['parameters_frame'] == 'world'
        del header['parameters_frame']
        (path / 'header.json').write_text(json.dumps(header))
        if with_parameters:
            with pytest.raises(DatasetFileError, match='camera-frame convention; rebuild'):
                load_dataset(path)
        else:
            assert len(load_dataset(path).examples[0]) == 1  # nothing to misread
