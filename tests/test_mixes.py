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


# ------------------------------------------------------------------------------------------------------
# The NLF-era mixes (nlf-era-facts §2): streams, shares, section prefixes
NLF_PARAMETRIC_SHARES = {  # nlf/pt/main.py get_parts_param, default branch (facts §2)
    'agora': 10, 'bedlam': 16, 'rich': 5, 'behave': 5, 'spec': 3, 'surreal': 8, 'moyo': 8, 'arctic': 3,
    'intercap': 3, 'genebody': 1, 'egobody': 1, 'hi4d_down': 3, 'hi4d_rerender': 8, 'humman': 2,
    'synbody_humannerf': 6, 'thuman2': 6, 'zjumocap': 1, 'dfaust_render': 8}
NLF_KP3D_SHARES = {  # get_parts3d, default branch
    'h36m_': 10, 'muco_downscaled': 6, 'humbi': 5, '3doh_down': 3, 'panoptic_': 7, 'aist_': 6, 'aspset_': 4,
    'gpa_': 4, '3dpeople': 4, 'sailvos': 5, 'bml_movi': 5, 'mads_down': 2, 'umpm_down': 2, 'bmhad_down': 3,
    '3dhp_full_down': 3, 'totalcapture': 3, 'jta_down': 3, 'ikea_down': 2, 'human4d': 1, 'fit3d_': 2,
    'chi3d_': 1, 'humansc3d_': 1, 'hspace_': 3, 'egohumans': 6, 'dna_rendering': 6}
NLF_2D_SHARES = {'mpii_down': 4, 'coco_': 4, 'jrdb_down': 4, 'posetrack_down': 4, 'aic_down': 4, 'halpe': 4}
NLF_DENSE_SHARES = {'densepose_coco_': 14, 'densepose_posetrack_': 7}


def _nlf_section(image_path, prefixes):
    """NLF's assignment restated: sorted prefixes, bisect, the found prefix must start the path."""
    import bisect
    ordered = sorted(prefixes)
    i = bisect.bisect(ordered, image_path) - 1
    return ordered[i] if i >= 0 and image_path.startswith(ordered[i]) else None


def test_nlf_streams_have_nlfs_sections_and_shares():
    for name, expected, total in (('nlf_parametric', NLF_PARAMETRIC_SHARES, 97), ('nlf_kp3d', NLF_KP3D_SHARES, 97),
                                  ('nlf_2d', NLF_2D_SHARES, 24), ('nlf_dense', NLF_DENSE_SHARES, 21)):
        entries = mixes.MIXES[name]
        assert {e.prefix: e.share for e in entries} == expected, name
        assert len(entries) == len(expected) and sum(expected.values()) == total
        assert mixes.batch_size(name) == total
        assert all(e.splits == ((TRAIN, TRAIN),) for e in entries if e.dataset not in
                   {x.dataset for x in mixes.MIXES['huge8']})
    assert mixes.MIXES['nlf_2d'] is mixes.MIXES['huge2d2'] and mixes.MIXES['nlf_dense'] is mixes.MIXES['dense_multi']
    # huge2d2 as the original's make_huge2d2: six sources, TRAIN only, each with its own suffix
    assert [(e.dataset, e.suffix) for e in mixes.MIXES['huge2d2']] == [
        ('mpii_yolo_alljoints', 'mpii'), ('coco_wb', 'coco'), ('posetrack', 'posetrack'), ('jrdb', 'jrdb'),
        ('aic', 'aic'), ('halpe', 'halpe')]
    assert [(e.dataset, e.suffix) for e in mixes.MIXES['dense_multi']] == [
        ('densepose_coco', 'coco'), ('densepose_posetrack', 'posetrack')]
    # kp3d = huge8's training sources minus the five parametric ones, plus egohumans and dna_rendering;
    # sources it shares with huge8 keep huge8's splits and suffixes
    huge8 = {e.dataset: e for e in _training('huge8')}
    kp3d = {e.dataset: e for e in mixes.MIXES['nlf_kp3d']}
    assert set(kp3d) == (set(huge8) - {'agora', 'surreal', 'behave', 'rich_body', 'spec'}) | {'egohumans',
                                                                                               'dna_rendering'}
    for dataset in set(kp3d) & set(huge8):
        assert (kp3d[dataset].splits, kp3d[dataset].suffix) == (huge8[dataset].splits, huge8[dataset].suffix)
    # every image folder our recipes write falls into its own section once stored in the mix
    for name in mixes.NLF_STREAMS:
        prefixes = [e.prefix for e in mixes.MIXES[name]]
        assert len(set(prefixes)) == len(prefixes)
        for e in mixes.MIXES[name]:
            own_folder = f'{e.dataset}_downscaled/x/0001.jpg'
            stored = mixes.image_path_in_mix(own_folder, e.prefix)
            assert stored.startswith(e.prefix) and _nlf_section(stored, prefixes) == e.prefix, (name, stored)
    assert mixes.image_path_in_mix('tdoh_downscaled/a/b.jpg', '3doh_down') == '3doh_downscaled/a/b.jpg'
    assert mixes.image_path_in_mix('tdpeople_downscaled/b.jpg', '3dpeople') == '3dpeople_downscaled/b.jpg'
    assert mixes.image_path_in_mix('coco_wb_downscaled/b.jpg', 'coco_') == 'coco_wb_downscaled/b.jpg'
    assert mixes.image_path_in_mix('synbody_downscaled/b.jpg', 'synbody_humannerf') == \
        'synbody_humannerf/synbody_downscaled/b.jpg'


def test_nlf_mix_names_are_registered_or_pending_and_unregistered_ones_are_listed(tmp_path, monkeypatch):
    from posepile.merging.mix_build import MixBuildError, build_mix
    monkeypatch.setenv('DATA_ROOT', str(tmp_path))
    assert all(e.dataset in registry.DATASETS for e in mixes.MIXES['nlf_parametric'])
    # a source whose recipe is not registered (yet); a new dict, so that the registry's order is untouched after
    monkeypatch.setattr(registry, 'DATASETS', {k: v for k, v in registry.DATASETS.items() if k != 'thuman2'})
    pending = [e.dataset for e in mixes.MIXES['nlf_parametric'] if e.dataset not in registry.DATASETS]
    assert pending == ['thuman2']
    with pytest.raises(MixBuildError) as error:
        build_mix('nlf_parametric', tmp_path / 'out')
    for dataset in pending:
        assert f'bash posepile/ds/{dataset}/main.sh  (no recipe yet' in str(error.value)
    summary = build_mix('nlf_parametric', tmp_path / 'out', allow_missing=True)
    assert set(summary['missing']) == {e.dataset for e in mixes.MIXES['nlf_parametric']}
    assert summary['joint_names'] == [] and summary['batch_size'] == 97 and 'stream' not in summary


@pytest.fixture(scope='module')
def built_2d_fakes(tmp_path_factory):
    from tests.fakes import aic, halpe
    data_root = tmp_path_factory.mktemp('mix2d_data')
    aic.write_fake_release(data_root / 'aic')
    halpe.write_fake_release(data_root / 'halpe')
    env = dict(_env(data_root), POSEPILE_WORKERS='1',
               PATH=f'{Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}')
    for name in ('aic', 'halpe'):
        result = subprocess.run(['bash', str(REPO / f'posepile/ds/{name}/main.sh')], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    return data_root


def test_mix_build_nlf_2d_on_fakes(built_2d_fakes, tmp_path, monkeypatch):
    """`posepile mix build nlf_2d` on the AIC and Halpe fakes: suffixed union of the six 2D skeletons, the
    > 6-limb-joint rule per source, NLF's section prefixes, per-source shards with crops, one stream archive."""
    from posepile.merging.merge import BODY_JOINTS_2D
    from posepile.storage.annotations import load_dataset
    from posepile.storage.barecat_store import BarecatDataset
    from posepile.util import improc
    data_root = built_2d_fakes
    monkeypatch.setenv('DATA_ROOT', str(data_root))
    out = tmp_path / 'nlf_2d'
    refused = _mix(data_root, 'build', 'nlf_2d', str(out))
    assert refused.returncode == 2 and 'bash posepile/ds/jrdb/main.sh' in refused.stderr
    result = _mix(data_root, 'build', 'nlf_2d', str(out), '--allow-missing')
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / 'mix.json').read_text())
    assert set(summary['sources']) == {'aic', 'halpe'} and summary['batch_size'] == 24

    # the union: every registered source's own joints with its suffix (nothing shared across sources)
    expected_names = [f'{n}_{e.suffix}' for e in mixes.MIXES['nlf_2d'] for n in registry.joint_info(e.dataset).names]
    assert summary['joint_names'] == expected_names

    prefixes = list(NLF_2D_SHARES)
    stream = BarecatDataset(out / 'stream', load_images=False)
    assert stream.joint_info.names == expected_names
    stream_paths = []
    total_train = 0
    for entry in (e for e in mixes.MIXES['nlf_2d'] if e.dataset in ('aic', 'halpe')):
        built = load_dataset(data_root / 'cache' / f'{entry.dataset}.posepile')
        limbs = [built.joint_info.ids[n] for n in BODY_JOINTS_2D]
        kept = [ex for ex in built.examples[TRAIN] if np.isfinite(ex.coords[limbs]).all(axis=1).sum() > 6]
        assert 0 < len(kept) <= len(built.examples[TRAIN])
        shard = BarecatDataset(out / 'sources' / entry.dataset, load_images=True)
        assert len(shard.examples[TRAIN]) == len(kept) and summary['sources'][entry.dataset]['counts']['train'] == \
            len(kept)
        assert summary['sources'][entry.dataset].get('dropped_few_limb_joints', 0) == \
            len(built.examples[TRAIN]) - len(kept)
        assert not shard.examples[VALID] and not shard.examples[TEST]
        columns = [expected_names.index(f'{n}_{entry.suffix}') for n in built.joint_info.names]
        for got, want in zip(shard.examples[TRAIN], kept):
            assert str(got.image_path) == str(want.image_path)  # our folders already start with NLF's prefix
            assert _nlf_section(str(got.image_path), prefixes) == entry.prefix
            np.testing.assert_allclose(got.coords[columns], want.coords, atol=0.1)
            others = np.setdiff1d(np.arange(len(expected_names)), columns)
            assert np.isnan(got.coords[others]).all()
            assert np.array_equal(got.image, improc.decode_jpeg((data_root / want.image_path).read_bytes()))
        stream_paths += [str(ex.image_path) for ex in kept]
        total_train += len(kept)
    assert len(stream.examples[TRAIN]) == total_train
    assert [str(ex.image_path) for ex in stream.examples[TRAIN]] == stream_paths
    assert summary['stream']['sections'] == {'aic_down': len([p for p in stream_paths if p.startswith('aic')]),
                                             'halpe': len([p for p in stream_paths if p.startswith('halpe')])}


def test_mix_build_renames_image_folders_to_nlf_sections(data_root):
    """nlf_kp3d with a synthetic built `tdoh` (crop folder tdoh_downscaled): stored as 3doh_downscaled/...,
    which falls in NLF's '3doh_down' section, and the crops still come along (read through image_links)."""
    from posepile.datasets3d import Pose3DDataset, Pose3DExample, save_to_cache
    from posepile.merging.mix_build import build_mix
    from posepile.storage.barecat_store import BarecatDataset
    from posepile.util import improc
    from posepile.util.camera import Camera
    ji = registry.joint_info('tdoh')
    camera = Camera([0, 0, 0], np.eye(3), [[500, 0, 32], [0, 500, 32], [0, 0, 1]])
    rng = np.random.default_rng(1)
    template = np.stack([rng.uniform(-300, 300, ji.n_joints), rng.uniform(-800, 800, ji.n_joints),
                         np.full(ji.n_joints, 4000.0)], axis=1)
    examples = []
    for i in range(3):
        path = f'tdoh_downscaled/train/{i:04d}.jpg'
        image = rng.integers(0, 255, (64, 64, 3), np.uint8)
        (data_root / path).parent.mkdir(parents=True, exist_ok=True)
        (data_root / path).write_bytes(improc.encode_jpeg(image, 95))
        coords = template + rng.normal(0, 2, template.shape)  # plausible: nlf_kp3d is filtered as huge8
        examples.append(Pose3DExample(path, coords, [-100, -100, 264, 264], camera))
    save_to_cache('tdoh', Pose3DDataset(ji, examples))
    summary = build_mix('nlf_kp3d', data_root / 'kp3d', allow_missing=True)
    assert summary['sources']['tdoh']['counts']['train'] == 3
    shard = BarecatDataset(data_root / 'kp3d' / 'sources' / 'tdoh', load_images=True)
    stream = BarecatDataset(data_root / 'kp3d' / 'stream', load_images=False)
    for i, (got, original) in enumerate(zip(shard.examples[TRAIN], examples)):
        assert str(got.image_path) == f'3doh_downscaled/train/{i:04d}.jpg'
        assert _nlf_section(str(got.image_path), list(NLF_KP3D_SHARES)) == '3doh_down'
        assert np.array_equal(got.image, improc.decode_jpeg((data_root / original.image_path).read_bytes()))
    assert [str(ex.image_path) for ex in stream.examples[TRAIN]] == [
        f'3doh_downscaled/train/{i:04d}.jpg' for i in range(3)]


def test_mix_build_nlf_parametric_keeps_parameters_drops_joints(data_root):
    """A synthetic built `agora` in nlf_parametric: examples without parameters dropped, joints dropped
    (parametric-only archive: no joint names), parameters kept, paths start with 'agora'."""
    from posepile.datasets3d import Pose3DDataset, Pose3DExample, save_to_cache
    from posepile.merging.mix_build import build_mix
    from posepile.storage.barecat_store import BarecatDataset
    from posepile.util.camera import Camera
    ji = registry.joint_info('agora')
    camera = Camera([0, 0, 0], np.eye(3), [[500, 0, 32], [0, 500, 32], [0, 0, 1]])
    examples = []
    for i in range(5):
        params = None if i == 2 else {
            'type': 'smplx', 'gender': 'neutral', 'pose': np.full(165, 0.01 * i, np.float32),
            'shape': np.arange(10, dtype=np.float32), 'trans': np.array([0, 0, 4.0 + i], np.float32)}
        coords = np.full((ji.n_joints, 3), 100.0 * i) + [0, 0, 4000]
        examples.append(Pose3DExample(f'agora_downscaled/{i}.jpg', coords, [0, 0, 64, 64], camera,
                                      parameters=params))
    save_to_cache('agora', Pose3DDataset(ji, examples))
    summary = build_mix('nlf_parametric', data_root / 'param', allow_missing=True, include_images=False)
    marker = summary['sources']['agora']
    assert marker['counts']['train'] == 4 and marker['dropped_no_parameters'] == 1
    for folder in ('sources/agora', 'stream'):
        archive = BarecatDataset(data_root / 'param' / folder, load_images=False)
        assert archive.joint_info.n_joints == 0
        got = list(archive.examples[TRAIN])
        assert [str(ex.image_path) for ex in got] == [f'agora_downscaled/{i}.jpg' for i in (0, 1, 3, 4)]
        assert all(ex.world_coords is None for ex in got)
        np.testing.assert_allclose([ex.parameters['trans'][2] for ex in got], [4, 5, 7, 8])
        np.testing.assert_allclose(got[3].parameters['pose'], np.full(165, 0.04), atol=1e-6)


def test_huge2d2_limb_rule_counts_the_sources_own_limb_joints(data_root):
    """A synthetic built `jrdb` in huge2d2: kept with > 6 valid of its own 12 limb joints (suffix _jrdb);
    validation-free (TRAIN -> TRAIN only)."""
    from posepile.datasets2d import Pose2DDataset, Pose2DExample
    from posepile.datasets3d import save_to_cache
    from posepile.merging.merge import BODY_JOINTS_2D
    from posepile.merging.mix_build import build_mix
    ji = registry.joint_info('jrdb')
    limbs = [ji.ids[n] for n in BODY_JOINTS_2D]
    train = []
    for n_valid in range(13):
        coords = np.full((ji.n_joints, 2), 10.0, np.float32)
        coords[limbs[n_valid:]] = np.nan
        train.append(Pose2DExample(f'jrdb_downscaled/{n_valid}.jpg', coords, [0, 0, 50, 50]))
    valid = [Pose2DExample('jrdb_downscaled/v.jpg', np.full((ji.n_joints, 2), np.nan, np.float32), [0, 0, 5, 5])]
    save_to_cache('jrdb', Pose2DDataset(ji, train, valid))
    summary = build_mix('huge2d2', data_root / 'h2d2', allow_missing=True, include_images=False)
    assert summary['sources']['jrdb']['counts'] == {'train': 6, 'valid': 0, 'test': 0}  # 7..12 valid limbs
    assert summary['sources']['jrdb']['dropped_few_limb_joints'] == 7
