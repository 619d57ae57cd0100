import os
import subprocess
import sys

import numpy as np
import pytest

from posepile import registry
from posepile.datasets3d import TRAIN, Pose3DDataset, Pose3DExample, compute_mean_bones, get_dataset
from posepile.joint_info import JointInfo
from posepile.paths import DataRootError, data_root
from posepile.util.camera import Camera


def _ex(coords):
    return Pose3DExample('x.jpg', np.array(coords, np.float32), [0, 0, 1, 1], Camera())


def test_bone_lengths_use_valid_joints_only():
    ji = JointInfo('a,b,c', 'a-b-c')
    train = [_ex([[0, 0, 0], [3, 4, 0], [3, 4, 10]]), _ex([[0, 0, 0], [6, 8, 0], [np.nan] * 3])]
    valid = [_ex([[0, 0, 0], [0, 0, 20], [0, 0, 40]])]
    ds = Pose3DDataset(ji, train, valid)
    # a-b: (5 + 10) / 2 over train; b-c: only the first example is valid.
    np.testing.assert_allclose(ds.train_bones, [7.5, 10])
    np.testing.assert_allclose(ds.trainval_bones, [(5 + 10 + 20) / 3, (10 + 20) / 2])
    np.testing.assert_allclose(compute_mean_bones(valid, ji), [20, 20])


def test_get_dataset_builds_once_then_loads_cache(data_root, monkeypatch):
    calls = []

    def builder(scale=1):
        calls.append(scale)
        ji = JointInfo('a,b', 'a-b')
        return Pose3DDataset(ji, [_ex([[0, 0, 0], [0, 0, 10 * scale]])])

    monkeypatch.setitem(registry.DATASETS, 'unit_test_ds', 'tests.test_datasets:_builder_proxy')
    monkeypatch.setattr(sys.modules[__name__], '_builder_proxy', builder, raising=False)
    ds = get_dataset('unit_test_ds')
    assert len(ds.examples[TRAIN]) == 1 and calls == [1]
    again = get_dataset('unit_test_ds')
    assert calls == [1]  # from the cache
    np.testing.assert_allclose(again.train_bones, [10])
    get_dataset('unit_test_ds', scale=2)  # other arguments: another cache entry
    assert calls == [1, 2]
    assert len(list((data_root / 'cache').iterdir())) == 2
    get_dataset('unit_test_ds', force_rebuild=True)
    assert calls == [1, 2, 1]


def test_data_root_errors_are_clear_and_lazy(monkeypatch, tmp_path):
    monkeypatch.delenv('DATA_ROOT', raising=False)
    with pytest.raises(DataRootError, match='DATA_ROOT is not set'):
        data_root()
    monkeypatch.setenv('DATA_ROOT', str(tmp_path / 'missing'))
    with pytest.raises(DataRootError, match='does not exist'):
        data_root()


def test_importing_any_module_has_no_side_effects(tmp_path):
    """Every module imports without DATA_ROOT and without touching the current folder."""
    import pkgutil
    import posepile
    names = [m.name for m in pkgutil.walk_packages(posepile.__path__, 'posepile.')
             if not m.name.endswith('.torch')]
    code = 'import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\nprint("ok")'
    env = {k: v for k, v in os.environ.items() if k not in ('DATA_ROOT', 'POSEPILE_CACHE_DIR')}
    result = subprocess.run([sys.executable, '-c', code, *names], capture_output=True, text=True, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []
