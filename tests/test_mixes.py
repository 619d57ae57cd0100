"""The paper's mixes as data, their union skeleton from declared skeletons, `posepile mix build` on fake
releases (surreal, h36m, tdhp), and the training stream's exact per-batch shares."""
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile import registry
from posepile.datasets3d import TEST, TRAIN, VALID
from posepile.merging import mixes
from posepile.storage.mix_stream import MixBatchSampler

REPO = Path(__file__).resolve().parent.parent

# Union group sizes of huge8 (facts §2.12 / datasets.md §Z.1): suffix -> unique joints.
HUGE8_GROUPS = {'smpl': 24, 'h36m': 25, 'sailvos': 26, 'coco': 25, '3dhp': 28, 'gpa': 34, 'aspset': 17,
                'smplx': 42, '3doh': 14, '3dpeople': 29, 'bmlmovi': 87, 'mads': 19, 'umpm': 15, 'bmhad': 43,
                'totcap': 21, 'jta': 22, 'ikea': 17, 'human4d': 32, 'ghum': 35}


def _training(name):
    return [e for e in mixes.MIXES[name] if e.share > 0]


# ------------------------------------------------------------------------------------------------------
# Mixes as data
def test_shares_sum_to_the_batch_sizes():
    assert len(_training('huge8')) == 28 and sum(e.share for e in mixes.MIXES['huge8']) == 96
    assert len(_training('medium3')) == 14 and sum(e.share for e in mixes.MIXES['medium3']) == 96
    assert [(e.dataset, e.share) for e in _training('small5')] == [
        ('surreal', 32), ('h36m_alljoints', 32), ('muco', 32)]
    assert [(e.dataset, e.share) for e in mixes.MIXES['huge2d_common']] == [
        ('mpii_yolo_alljoints', 8), ('coco', 8), ('posetrack', 8), ('jrdb', 8)]
    for name in ('huge8', 'medium3', 'small5'):
        validation = [e for e in mixes.MIXES[name] if e.share == 0]
        assert [(e.dataset, e.splits, e.suffix) for e in validation] == [
            ('tdhp', ((TEST, VALID),), '3dhp'), ('mupots', ((TEST, VALID),), '3dhp')]
        for e in _training(name):
            assert all(use_as == TRAIN for _, use_as in e.splits)
            assert len({e.dataset for e in _training(name)}) == len(_training(name))


def test_entries_follow_the_original_merge_lists():
    by_name = {e.dataset: e for e in mixes.MIXES['huge8']}
    tv = ((TRAIN, TRAIN), (VALID, TRAIN))
    for name in ('surreal', 'h36m_alljoints', 'sailvos', 'aist', 'aspset', 'agora', 'jta', 'rich_body'):
        assert by_name[name].splits == tv, name
    assert by_name['panoptic'].splits == ((TRAIN, TRAIN),)
    suffixes = collections.defaultdict(set)
    for e in mixes.MIXES['huge8']:
        suffixes[e.suffix].add(e.dataset)
    assert suffixes[''] == {'surreal', 'humbi', 'agora', 'behave', 'spec'}
    assert suffixes['h36m'] == {'h36m_alljoints', 'fit3d', 'chi3d', 'humansc3d'}
    assert suffixes['3dhp'] == {'muco', 'tdhp_full', 'tdhp', 'mupots'}
    assert suffixes['coco'] == {'panoptic', 'aist'}
    assert {e.dataset for e in _training('medium3')} <= {e.dataset for e in _training('huge8')}
    entry = mixes.MIXES['small5'][0]
    with pytest.raises(Exception):
        entry.share = 1  # frozen


def test_datasets_are_registered_or_listed_as_pending():
    used = {e.dataset for entries in mixes.MIXES.values() for e in entries}
    unknown = sorted(d for d in used if d not in registry.DATASETS and d not in mixes.PENDING_DATASETS)
    assert not unknown, f'neither registered nor pending: {unknown}'
    assert mixes.PENDING_DATASETS <= used


# ------------------------------------------------------------------------------------------------------
# Skeletons without data
def test_registry_joint_info_reads_declared_skeletons():
    expected = {'h36m': 17, 'h36m_alljoints': 25, 'fit3d': 25, 'panoptic': 19, 'aist': 19, 'humbi': 49,
                'tdhp': 17, 'mupots': 17, 'surreal': 24, 'gpa': 34, 'sailvos': 26, 'tdoh': 14, 'aspset': 17,
                'tdpeople': 29, 'totalcapture': 21, 'hspace': 35, 'human4d': 32, 'coco': 17, 'jrdb': 17}
    for name, n_joints in expected.items():
        if name in registry.DATASETS:
            ji = registry.joint_info(name)
            assert ji.n_joints == n_joints, name
            assert len(ji.stick_figure_edges) > n_joints // 2, name
    with pytest.raises(registry.UnknownDatasetError):
        registry.joint_info('no_such_dataset')


def test_3dhp_group_recipes_declare_mucos_skeleton():
    for name in ('muco', 'tdhp_full'):
        if not mixes._readable(name):
            continue
        ji = registry.joint_info(name)
        assert ji.names == mixes.muco_joint_info().names, name
        assert ji.stick_figure_edges == mixes.muco_joint_info().stick_figure_edges, name


def _group(name):
    return name.rsplit('_', 1)[1] if '_' in name else 'smpl'


def _expected_huge8_subset(registered):
    """The union size of huge8's registered entries, from the facts' group sizes (not from the code)."""
    groups = {e.suffix or 'smpl' for e in mixes.MIXES['huge8'] if e.dataset in registered and e.suffix}
    groups.add('3dhp')  # the validation entries (3DHP test, MuPoTS) in MuCo's 28 joints
    size = {g: HUGE8_GROUPS[g] for g in groups}
    if registered & {'surreal', 'agora', 'behave', 'spec'}:
        size['smpl'] = 24
    if registered & {'agora', 'rich_body'}:
        size['smplx'] = 42
    if registered & {'humbi', 'behave'}:
        size['coco'] = 25  # the 25 OpenPose joints
    elif 'coco' in size:
        size['coco'] = 19  # Panoptic/AIST only
    return sum(size.values()), size


def test_mix_joint_info_of_the_registered_subset():
    registered = {e.dataset for e in mixes.MIXES['huge8'] if mixes.has_declared_skeleton(e.dataset)}
    union = mixes.mix_joint_info('huge8', allow_missing=True)
    expected, groups = _expected_huge8_subset(registered)
    assert dict(collections.Counter(_group(n) for n in union.names)) == groups
    assert union.n_joints == expected
    assert len(set(union.names)) == union.n_joints
    # the unsuffixed SMPL group is exactly SURREAL's 24 names: HUMBI, AGORA, BEHAVE and SPEC use the same
    # strings (HUMBI contributes only its *_coco joints)
    assert [n for n in union.names if '_' not in n] == list(registry.joint_info('surreal').names)
    assert 'thor_3dhp' in union.names and 'spi3_3dhp' not in union.names  # MuCo's naming
    # edges connect joints of the same group only
    assert all(_group(union.names[i]) == _group(union.names[j]) for i, j in union.stick_figure_edges)
    if registered != {e.dataset for e in _training('huge8')} | {'tdhp', 'mupots'}:
        with pytest.raises(mixes.UnregisteredDatasetError):
            mixes.mix_joint_info('huge8')
    small5 = mixes.mix_joint_info('small5', allow_missing=True)
    assert small5.n_joints == 24 + 25 + 28
    assert small5.names[:24] == registry.joint_info('surreal').names
    assert mixes.mix_joint_info('huge2d_common').n_joints == 17


_HUGE8_MISSING = sorted(e.dataset for e in mixes.missing_entries('huge8'))


@pytest.mark.skipif(bool(_HUGE8_MISSING),
                    reason=f'huge8 needs all 28 sources registered; pending: {", ".join(_HUGE8_MISSING)}')
def test_huge8_union_has_555_joints():
    union = mixes.mix_joint_info('huge8')
    assert union.n_joints == 555
    assert dict(collections.Counter(_group(n) for n in union.names)) == HUGE8_GROUPS


def test_skeleton_info_lists_every_source_skeleton():
    info = mixes.skeleton_info('small5')
    union = mixes.mix_joint_info('small5', allow_missing=True)
    assert info['']['names'] == union.names and len(info['']['edges']) == len(union.stick_figure_edges)
    h36m = info['h36m_alljoints']
    assert h36m['names'] == registry.joint_info('h36m_alljoints').names
    assert [union.names[i] for i in h36m['indices']] == [n + '_h36m' for n in h36m['names']]
    assert len(h36m['edges']) == 24
    assert info['tdhp']['names'] == mixes.muco_joint_info().names == info['mupots']['names']


# ------------------------------------------------------------------------------------------------------
# The training stream
def test_batches_hold_exactly_the_shares():
    sizes = {'a': 7, 'b': 50, 'c': 3, 'v': 10}
    shares = {'a': 5, 'b': 4, 'c': 3, 'v': 0}
    sampler = MixBatchSampler(sizes, shares, seed=3)
    batches = [b for b, _ in zip(sampler, range(40))]
    for batch in batches:
        assert len(batch) == 12
        assert collections.Counter(s for s, _ in batch) == {'a': 5, 'b': 4, 'c': 3}
        assert all(0 <= i < sizes[s] for s, i in batch)
    for source, share in (('a', 5), ('b', 4), ('c', 3)):
        stream = [i for batch in batches for s, i in batch if s == source]
        n = sizes[source]
        for epoch in range(len(stream) // n):  # every full pass is a permutation (infinite epochs)
            assert sorted(stream[epoch * n:(epoch + 1) * n]) == list(range(n))
        assert stream[:n] != stream[n:2 * n] or n < 3  # reshuffled per epoch
    again = [b for b, _ in zip(MixBatchSampler(sizes, shares, seed=3), range(40))]
    other = [b for b, _ in zip(MixBatchSampler(sizes, shares, seed=4), range(40))]
    assert again == batches and other != batches
    shuffled = next(iter(MixBatchSampler(sizes, shares, seed=3, shuffle_within_batch=True)))
    assert collections.Counter(s for s, _ in shuffled) == {'a': 5, 'b': 4, 'c': 3}
    with pytest.raises(ValueError, match='c'):
        MixBatchSampler({'a': 3, 'c': 0}, {'a': 1, 'c': 1})


def test_mix_shares_drive_the_sampler():
    entries = _training('huge8')
    sampler = MixBatchSampler({e.dataset: 1000 + i for i, e in enumerate(entries)},
                              {e.dataset: e.share for e in entries}, seed=0)
    batch = next(iter(sampler))
    assert len(batch) == 96
    assert collections.Counter(s for s, _ in batch) == {e.dataset: e.share for e in entries}


def test_torch_wrappers():
    torch = pytest.importorskip('torch')
    from posepile.storage.mix_stream import torch_batch_sampler
    sampler = torch_batch_sampler({'a': 4, 'b': 9}, {'a': 2, 'b': 3}, seed=1)
    assert isinstance(sampler, torch.utils.data.Sampler)
    batch = next(iter(sampler))
    assert collections.Counter(s for s, _ in batch) == {'a': 2, 'b': 3}


# ------------------------------------------------------------------------------------------------------
# posepile mix build small5 on fake releases
@pytest.fixture(scope='module')
def built_fakes(tmp_path_factory):
    from tests.fakes import h36m, surreal, tdhp
    data_root = tmp_path_factory.mktemp('mix_data')
    surreal.write_fake_release(data_root / 'surreal', n_frames=12)
    h36m.write_recipe_release(data_root / 'h36m', actions={'S1': {'Directions 1': 15}})
    tdhp.write_train_sequence(data_root / 'tdhp', n_frames=6)
    tdhp.write_test_images(data_root / 'tdhp', tdhp.write_fake_release(data_root / 'tdhp', n_frames=(2, 1, 1, 1, 1, 2)))
    env = _env(data_root)
    for name in ('surreal', 'h36m', 'tdhp'):
        result = subprocess.run(['bash', str(REPO / f'posepile/ds/{name}/main.sh')], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    return data_root


def _env(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', TDHP_FULL='0')
    env.pop('POSEPILE_CACHE_DIR', None)
    return env


def _mix(data_root, *args):
    return subprocess.run([sys.executable, '-m', 'posepile.cli', 'mix', *args], cwd=REPO, env=_env(data_root),
                          capture_output=True, text=True, timeout=600)


def test_mix_build_small5_end_to_end(built_fakes, tmp_path, monkeypatch):
    from posepile.storage.annotations import load_dataset
    from posepile.storage.barecat_store import BarecatDataset
    data_root = built_fakes
    monkeypatch.setenv('DATA_ROOT', str(data_root))
    out = tmp_path / 'small5'

    refused = _mix(data_root, 'build', 'small5', str(out))
    assert refused.returncode == 2
    assert 'muco' in refused.stderr and 'bash posepile/ds/muco/main.sh' in refused.stderr
    assert 'bash posepile/ds/mupots/main.sh' in refused.stderr and not (out / 'sources').exists()

    result = _mix(data_root, 'build', 'small5', str(out), '--allow-missing')
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'muco' in result.stdout and 'bash posepile/ds/muco/main.sh' in result.stdout

    union = mixes.mix_joint_info('small5', allow_missing=True)
    summary = json.loads((out / 'mix.json').read_text())
    assert summary['joint_names'] == union.names
    assert set(summary['missing']) == {'muco', 'mupots'}
    assert set(summary['sources']) == {'surreal', 'h36m_alljoints', 'tdhp'}

    cache = data_root / 'cache'
    expectations = {  # source -> (built dataset, {target split: [source splits]})
        'surreal': ('surreal', {TRAIN: [TRAIN, VALID]}),
        'h36m_alljoints': ('h36m_alljoints', {TRAIN: [TRAIN, VALID]}),
        'tdhp': ('tdhp', {VALID: [TEST]}),
    }
    for source, (built_name, mapping) in expectations.items():
        built = load_dataset(cache / f'{built_name}.posepile')
        shard = BarecatDataset(out / 'sources' / source, load_images=True)
        assert shard.joint_info.names == union.names
        for target in (TRAIN, VALID, TEST):
            expected = [ex for s in mapping.get(target, []) for ex in built.examples[s]]
            assert len(shard.examples[target]) == len(expected), (source, target)
            assert f'{source:<16}' in result.stdout
            for got, want in list(zip(shard.examples[target], expected))[:5]:
                layout = _layout(source, union)
                for union_index, name in layout:
                    j = built.joint_info.ids.get(name)
                    if j is None:
                        assert np.isnan(got.world_coords[union_index]).all()
                    else:
                        np.testing.assert_allclose(got.world_coords[union_index], want.world_coords[j], atol=1.0)
                others = np.setdiff1d(np.arange(union.n_joints), [u for u, _ in layout])
                assert np.isnan(got.world_coords[others]).all()
                assert got.image.shape[2] == 3  # the crop came along
        n_train = len(shard.examples[TRAIN])
        assert summary['sources'][source]['counts']['train'] == n_train

    info = json.loads((out / 'skeleton_info.json').read_text())
    assert {'surreal', 'h36m_alljoints', 'tdhp', ''} <= set(info)
    assert info['']['names'] == union.names

    # resumable: a second run skips the finished shards
    stamp = (out / 'sources' / 'surreal' / 'mix_source.json').stat().st_mtime_ns
    again = _mix(data_root, 'build', 'small5', str(out), '--allow-missing')
    assert again.returncode == 0 and again.stderr.count('finished shard found, skipped') == 3
    assert (out / 'sources' / 'surreal' / 'mix_source.json').stat().st_mtime_ns == stamp

    # the stream over the built mix: exact shares of the available sources
    from posepile.storage.mix_stream import MixStream
    stream = MixStream(out, seed=0, load_images=False)
    assert set(stream.stores) == {'surreal', 'h36m_alljoints'} and stream.batch_size == 64
    batch = next(iter(stream))
    assert len(batch) == 64
    surreal_paths = {str(ex.image_path) for ex in stream.stores['surreal'].examples[TRAIN]}
    assert sum(str(ex.image_path) in surreal_paths for ex in batch) == 32


def _layout(source, union):
    entry = next(e for e in mixes.MIXES['small5'] if e.dataset == source)
    indices, names = mixes.source_layout(entry, union)
    return list(zip(indices, names))


def test_plausibility_reference_is_the_merged_train_mean(built_fakes, tmp_path, monkeypatch):
    """medium3 (filtered) on the same fakes: bone references = mean train bones over the merged set."""
    from posepile.datasets3d import compute_mean_bones
    from posepile.merging.mix_build import build_mix
    from posepile.storage.annotations import load_dataset
    monkeypatch.setenv('DATA_ROOT', str(built_fakes))
    summary = build_mix('medium3', tmp_path / 'medium3', allow_missing=True, include_images=False)
    union = mixes.mix_joint_info('medium3', allow_missing=True)
    reference = np.array([np.nan if v is None else v for v in summary['train_bone_reference_mm']])
    h36m = load_dataset(built_fakes / 'cache' / 'h36m_alljoints.posepile')
    own = compute_mean_bones(list(h36m.examples[TRAIN]) + list(h36m.examples[VALID]), h36m.joint_info)
    for k, (i, j) in enumerate(h36m.joint_info.stick_figure_edges):
        a, b = union.ids[h36m.joint_info.names[i] + '_h36m'], union.ids[h36m.joint_info.names[j] + '_h36m']
        u = union.stick_figure_edges.index(tuple(sorted((a, b))))
        assert reference[u] == pytest.approx(own[k], rel=1e-4)
    assert np.isfinite(reference).sum() == 23 + 24  # surreal's and h36m's edges; validation has no train
    counts = summary['sources']['surreal']['counts']
    assert counts['train'] == len(load_dataset(built_fakes / 'cache' / 'surreal.posepile').examples[TRAIN]) + \
        len(load_dataset(built_fakes / 'cache' / 'surreal.posepile').examples[VALID])  # SURREAL always kept


def test_plausibility_filter_drops_broken_training_examples(data_root):
    """A synthetic built `aist` (19 joints) in medium3: one example with a 10x bone and one outside its box
    are dropped; validation-free, the others kept. Reference bones come from the merged train set."""
    from posepile.datasets3d import Pose3DDataset, Pose3DExample, save_to_cache
    from posepile.merging.mix_build import build_mix
    from posepile.util.camera import Camera
    if 'aist' not in registry.DATASETS:
        pytest.skip('aist is not registered')
    ji = registry.joint_info('aist')
    rng = np.random.default_rng(0)
    camera = Camera(optical_center=[0, -4000, 1000], rot_world_to_cam=[[1, 0, 0], [0, 0, -1], [0, 1, 0]],
                    intrinsic_matrix=[[1000, 0, 500], [0, 1000, 500], [0, 0, 1]])
    template = np.stack([rng.uniform(-300, 300, ji.n_joints), rng.uniform(-100, 100, ji.n_joints),
                         rng.uniform(0, 1700, ji.n_joints)], axis=1)
    examples = []
    for i in range(20):
        coords = template + rng.normal(0, 5, template.shape)
        box = [0, 0, 1000, 1000]
        if i == 3:
            a, b = ji.stick_figure_edges[0]
            coords[b] = coords[a] + 10 * (coords[b] - coords[a]) + [0, 0, 2000]
        if i == 7:
            box = [0, 0, 5, 5]
        examples.append(Pose3DExample(f'aist/crop_{i}.jpg', coords, box, camera))
    save_to_cache('aist', Pose3DDataset(ji, examples))
    summary = build_mix('medium3', data_root / 'medium3', allow_missing=True, include_images=False)
    marker = summary['sources']['aist']
    assert marker['counts']['train'] == 18
    assert marker['dropped_implausible_bone'] == 1 and marker['dropped_few_joints_in_box'] == 1
    # the same build again is a no-op; the stream draws 9 aist examples per batch, all kept ones
    from posepile.storage.mix_stream import MixStream
    stream = MixStream(data_root / 'medium3', load_images=False)
    batch = next(iter(stream))
    assert len(batch) == 9 and {str(ex.image_path) for ex in batch} <= {
        f'aist/crop_{i}.jpg' for i in range(20) if i not in (3, 7)}


def test_huge2d_common_keeps_examples_with_more_than_6_limb_joints(data_root):
    """A synthetic built `coco` in huge2d_common: converted to the common 17 joints; training examples with
    <= 6 valid limb joints dropped, train + val -> train."""
    from posepile.datasets2d import Pose2DDataset, Pose2DExample
    from posepile.datasets3d import save_to_cache
    from posepile.merging.merge import BODY_JOINTS_2D
    from posepile.merging.mix_build import build_mix
    from posepile.storage.barecat_store import BarecatDataset
    ji = registry.joint_info('coco')
    limbs = [ji.ids[n] for n in BODY_JOINTS_2D]
    examples = {TRAIN: [], VALID: []}
    expected = 0
    for split in (TRAIN, VALID):
        for n_valid in range(13):
            coords = np.full((ji.n_joints, 2), 10.0, np.float32) + n_valid
            coords[limbs[n_valid:]] = np.nan
            examples[split].append(Pose2DExample(f'coco/{split}_{n_valid}.jpg', coords, [0, 0, 50, 50]))
            expected += n_valid > 6
    save_to_cache('coco', Pose2DDataset(ji, examples[TRAIN], examples[VALID]))
    summary = build_mix('huge2d_common', data_root / 'h2d', allow_missing=True, include_images=False)
    assert summary['sources']['coco']['counts'] == {'train': expected, 'valid': 0, 'test': 0}
    assert summary['sources']['coco']['dropped_few_limb_joints'] == 26 - expected
    shard = BarecatDataset(data_root / 'h2d' / 'sources' / 'coco', load_images=False)
    assert shard.joint_info.names == mixes.common_2d_joint_info().names
    first = shard.examples[TRAIN][0]
    assert str(first.image_path) == 'coco/0_7.jpg'
    np.testing.assert_allclose(first.coords[shard.joint_info.ids['nose']], [17, 17])
    assert set(summary['missing']) == {'mpii_yolo_alljoints', 'posetrack', 'jrdb'}
