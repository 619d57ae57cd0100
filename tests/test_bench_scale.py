"""bench/bench_scale.py at a tiny size (the synthetic huge8 sources, their save and the vectorised paths the
mix build uses at scale), and the equality of those paths with the per-example rules."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


def _bench_module():
    spec = importlib.util.spec_from_file_location('bench_scale', REPO / 'bench' / 'bench_scale.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules['bench_scale'] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    bench = _bench_module()
    out = tmp_path_factory.mktemp('bench_scale')
    mp = pytest.MonkeyPatch()
    data_root = out / 'data'
    data_root.mkdir()
    mp.setenv('DATA_ROOT', str(data_root))
    mp.setenv('POSEPILE_CACHE_DIR', str(data_root / 'cache'))
    counts = bench.write_sources('huge8', 2000, data_root)
    yield bench, out, counts
    mp.undo()


def test_source_counts_follow_the_recipes():
    bench = _bench_module()
    counts = bench.source_counts('huge8', 13_000_000)
    assert abs(sum(counts.values()) - 13_000_000) < 100
    assert counts['aist'] == 5_280_681 and counts['panoptic'] == 2_782_985 and counts['humbi'] == 1_271_076
    from posepile.merging import mixes
    assert set(counts) == {e.dataset for e in mixes.MIXES['huge8']}  # 28 sources + 2 validation entries
    assert len(counts) == 30


def test_written_sources_load_with_their_skeletons(built):
    bench, out, counts = built
    from posepile import registry
    from posepile.datasets3d import TRAIN, VALID, get_dataset
    aist = get_dataset('aist')
    assert aist.joint_info.names == registry.joint_info('aist').names
    n_aist = sum(len(v) for v in aist.examples.values())
    assert n_aist == counts['aist'] and len(aist.examples[VALID]) == n_aist // 10  # train+val -> train entry
    example = aist.examples[TRAIN][5]
    assert example.mask is not None and 300 < len(example.mask['counts']) < 2000  # ~0.7 kB RLE per crop
    path = Path(bench.__file__).parent  # noqa: F841 (module loaded from the repo)
    assert (Path(out) / 'data' / example.image_path).is_file()  # resolves to a shared JPEG
    # the crop camera sees the joints inside the box (256 px crop)
    px = example.camera.world_to_image(example.world_coords)
    valid = np.all(np.isfinite(px), axis=1)
    x, y, w, h = example.bbox
    assert np.all((px[valid, 0] >= x - 1) & (px[valid, 0] <= x + w + 1))
    assert get_dataset('humbi').examples[TRAIN][0].parameters['pose'].shape == (72,)


def test_column_paths_equal_the_per_example_rules(built):
    from posepile.datasets3d import TRAIN, compute_mean_bones, get_dataset
    from posepile.preproc.plausibility import column_plausibility_flags, implausible_bones, joints_in_box_count
    dataset = get_dataset('aist')
    split = dataset.examples[TRAIN]
    ji = dataset.joint_info
    examples = list(split)  # plain list: the per-example path
    np.testing.assert_allclose(compute_mean_bones(split, ji), compute_mean_bones(examples, ji), rtol=1e-6)
    order = np.arange(ji.n_joints)[::-1].copy()  # the joints as a mix would pick them (another order)
    edges = np.argsort(order)[np.array(ji.stick_figure_edges)]
    reference = compute_mean_bones(split, ji)
    reference[0] = 5.0  # makes the first bone implausible in many examples
    few, bad = column_plausibility_flags(split, order, edges, reference)
    expected_few, expected_bad = [], []
    for example in examples:
        example.world_coords = example.world_coords[order]
        f = joints_in_box_count(example) < 4
        expected_few.append(f)
        expected_bad.append(not f and bool(np.any(implausible_bones(example.world_coords, edges, reference))))
    assert few.sum() > 0 and bad.sum() > 0
    np.testing.assert_array_equal(few, expected_few)
    np.testing.assert_array_equal(bad, expected_bad)


def test_measure_reports_time_and_peak_rss(tmp_path):
    bench = _bench_module()
    code = 'import numpy as np; a = np.ones(60 * 2**20 // 8); import time; time.sleep(0.4)'
    row = bench.measure('alloc', [sys.executable, '-c', code], env=None, out_path=tmp_path)
    assert row['exit'] == 0 and row['seconds'] >= 0.4
    assert 60 <= row['peak_rss_mb'] < 400  # the child's own peak (not the parent's pages at fork)
    json.dumps(row)


def test_mix_sources_exported_in_parallel(monkeypatch, tmp_path):
    """`posepile mix build --workers 2`: every source exported once, in forked processes."""
    import os
    from types import SimpleNamespace

    from posepile.merging import mix_build
    sizes = {'small': 10, 'large': 1000, 'medium': 100}
    monkeypatch.setattr('posepile.storage.annotations.describe',
                        lambda path: {'counts': {'train': sizes[Path(path).name.split('.')[0]]}})
    monkeypatch.setattr('posepile.datasets3d.cache_path', lambda name: tmp_path / f'{name}.posepile')
    monkeypatch.setattr(mix_build, 'export_source', lambda view, shard_dir, *args: {'pid': os.getpid(),
                                                                                     'dataset': view})
    todo = [(SimpleNamespace(dataset=name), tmp_path / name, 'fp') for name in sizes]
    results = list(mix_build._export_all(todo, lambda entry: entry.dataset, ('huge8', None, None, False, '2G'), 2))
    assert sorted(d for d, _ in results) == sorted(sizes)
    assert all(marker['dataset'] == d and marker['pid'] != os.getpid() for d, marker in results)
    sequential = list(mix_build._export_all(todo, lambda entry: entry.dataset, ('huge8', None, None, False, '2G'), 1))
    assert [d for d, _ in sequential] == list(sizes) and sequential[0][1]['pid'] == os.getpid()


def test_torch_items_without_images_and_from_an_annotation_only_export(built, tmp_path):
    """The adapter on an annotation-only export: images come from DATA_ROOT; load_images=False gives the same
    geometry without the image."""
    pytest.importorskip('torch', reason='PyTorch not installed (pip install "posepile[torch]")')
    from posepile.datasets3d import get_dataset
    from posepile.storage import barecat_store
    from posepile.storage.torch import TorchPoseDataset
    dataset = get_dataset('umpm')
    barecat_store.export_dataset(dataset, tmp_path / 'umpm', include_images=False)
    with_images = TorchPoseDataset(tmp_path / 'umpm', output_size=64)
    without = TorchPoseDataset(tmp_path / 'umpm', output_size=64, load_images=False)
    a, b = with_images[3], without[3]
    assert tuple(a['image'].shape) == (3, 64, 64) and 'image' not in b
    np.testing.assert_allclose(a['coords2d'].numpy(), b['coords2d'].numpy())
    np.testing.assert_array_equal(a['joint_valid'].numpy(), b['joint_valid'].numpy())
