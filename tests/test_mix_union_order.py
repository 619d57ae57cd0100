"""The union skeletons of huge8 / medium3 / small5 in the ORIGINAL's joint order (issue 26 part 1), rebuilt here
from the declared skeletons (no data), and `posepile mix build` placing joints by name.

The original's union (merging/merged_dataset3d.py, facts §2.12) is the list of unique suffixed names in order of
first appearance over the merge list, so its order is fixed by the merge order and by each source's own declared
joint order. WANTED_ORDER below states each source's order as the original recipe declares it; evidence per row:
facts = ../shared/docs/original-posepile-facts.md (§3.2, Appendix A), review = parity-review-2026-12-07.md,
orig = the original recipe's joint-name string (read for the fact only).

Left/right split that NLF's chiral regressor assumes (222 / 222 / 111 in huge8): a name is LEFT when it starts with
'l' and RIGHT when it starts with 'r' -- the original JointInfo's naming rule, under which every such name must
have its mirror (first letter l<->r swapped, suffix kept) in the skeleton; all other names (pelv, neck, spin,
htop, nose, head, ...) are OTHER. Counting 'l'/'r' first letters alone and counting only mirror-paired names give
the same 222 / 222 / 111, because the union has no unpaired l/r name (checked below).
"""
import collections

import numpy as np
import pytest

from posepile import registry
from posepile.datasets3d import TRAIN, VALID
from posepile.joint_info import JointInfo
from posepile.merging import mixes

SMPL_PELVIS_FIRST = ('pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,'
                     'lelb,relb,lwri,rwri,lhan,rhan')
SMPL_PELVIS_LAST = ','.join(SMPL_PELVIS_FIRST.split(',')[1:] + ['pelv'])  # [*range(1, 24), 0]
OPENPOSE_MIDHIP_LAST = ','.join(n + '_coco' for n in (
    'nose,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,reye,leye,rear,lear,lfoo,ltoe,lhee,rfoo,'
    'rtoe,rhee,pelv').split(','))
SMPLX_42 = ('pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,relb,'
            'lwri,rwri,jaw,leyehf,reyehf,lmiddle1,rmiddle1,nose,reye,leye,rear,lear,lto2,lto3,lhee,rto2,rto3,rhee,'
            'lthu,lmiddle,rthu,rmiddle')
MUCO_28 = ('thor,spi4,spi2,lcla,lhan,rcla,rhan,lfoo,ltoe,rfoo,rtoe,htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,'
           'rkne,rank,lhip,lkne,lank,spin,head,pelv')
IMAR_25 = ('pelv,lhip,lkne,lank,rhip,rkne,rank,spin,neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri,lfoo,ltoe,rfoo,'
           'rtoe,lthu,lfin,rthu,rfin')
COCO_17 = 'nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank'

# The joint order each source enters the mix with, as the original declares it (after the entry's selection:
# HUMBI only its `_coco` joints; 3DHP test and MuPoTS converted to MuCo's 28).
WANTED_ORDER = {
    'surreal': SMPL_PELVIS_LAST,  # facts §3.2 surreal "24 joints (pelvis last)"; review (g)
    'h36m_alljoints': ('rhip,rkne,rank,rfoo,rtoe,lhip,lkne,lank,lfoo,ltoe,spin,neck,head,htop,lsho,lelb,lwri,lthu,'
                       'lfin,rsho,relb,rwri,rthu,rfin,pelv'),  # facts App. A H36M-25
    'fit3d': IMAR_25, 'chi3d': IMAR_25, 'humansc3d': IMAR_25,  # review §1(g) "same 25 names in the same order"
    'sailvos': ('htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,spin,head,pelv,rtoe,ltoe,'
                'nose,reye,leye,rear,lear,rhan,lhan'),  # orig sailvos make_dataset
    # facts §3.2 panoptic "coco19 reordered: neck,nose,lsho,...,rear,pelv"; review §6 "moves pelv (index 2) last"
    'panoptic': 'neck,nose,lsho,lelb,lwri,lhip,lkne,lank,rsho,relb,rwri,rhip,rkne,rank,leye,lear,reye,rear,pelv',
    'muco': MUCO_28,  # facts §3.2 muco; review "MuCo's order with thor for spi3"
    'aist': COCO_17 + ',neck,pelv',  # facts §3.2 aist / App. A
    'gpa': ('pelv,spin,spi1,spi2,spi3,neck,head,htop,rcla,rsho,relb,rwri,rhan,rfin,rthu,rthu2,lcla,lsho,lelb,lwri,'
            'lhan,lfin,lthu,lthu2,rhip,rkne,rank,rfoo,rtoe,lhip,lkne,lank,lfoo,ltoe'),  # orig gpa
    'humbi': OPENPOSE_MIDHIP_LAST,  # facts §3.2 behave/humbi "OpenPose-25 (_coco suffix, midhip moved last)"
    'aspset': 'rank,rkne,rhip,rwri,relb,rsho,lank,lkne,lhip,lwri,lelb,lsho,htop,head,neck,spin,pelv',  # facts
    'agora': SMPL_PELVIS_FIRST + ',' + ','.join(n + '_smplx' for n in SMPLX_42.split(',')),  # orig agora
    'tdoh': 'rank,rkne,rhip,lhip,lkne,lank,rwri,relb,rsho,lsho,lelb,lwri,neck,head',  # orig tdoh (LSP-14)
    'tdpeople': ('pelv,spin,spi1,spi2,neck,head,reye,leye,htop,lcla,lsho,lelb,lwri,lhan,rcla,rsho,relb,rwri,rhan,'
                 'lhip,lkne,lank,lfoo,ltoe,rhip,rkne,rank,rfoo,rtoe'),  # orig tdpeople
    'bml_movi': ('backneck,upperback,clavicle,sternum,umbilicus,lfronthead,lbackhead,lback,lshom,lupperarm,lelbm,'
                 'lforearm,lwrithumbside,lwripinkieside,lfin,lasis,lpsis,lfrontthigh,lthigh,lknem,lankm,lhee,'
                 'lfifthmetatarsal,ltoe,lcheek,lbreast,lelbinner,lwaist,lthumb,lfrontinnerthigh,linnerknee,lshin,'
                 'lfirstmetatarsal,lfourthtoe,lscapula,lbum,rfronthead,rbackhead,rback,rshom,rupperarm,relbm,'
                 'rforearm,rwrithumbside,rwripinkieside,rfin,rasis,rpsis,rfrontthigh,rthigh,rknem,rankm,rhee,'
                 'rfifthmetatarsal,rtoe,rcheek,rbreast,relbinner,rwaist,rthumb,rfrontinnerthigh,rinnerknee,rshin,'
                 'rfirstmetatarsal,rfourthtoe,rscapula,rbum,head,mhip,pelv,thor,lank,lelb,lhip,lhan,lkne,lsho,lwri,'
                 'lfoo,rank,relb,rhip,rhan,rkne,rsho,rwri,rfoo'),  # orig bml_movi (67 markers + 20 virtual)
    'mads': 'neck,pelv,lhip,lkne,lank,ltoe,rhip,rkne,rank,rtoe,lsho,lelb,lwri,lhan,rsho,relb,rwri,rhan,head',
    'umpm': 'pelv,neck,head,rsho,relb,rwri,lsho,lelb,lwri,rhip,lhip,rkne,lkne,rank,lank',  # orig umpm
    'bmhad': ('head,lhead,rhead,rback,backl,backt,lback,lside,bell,chest,rside,lsho1,lsho2,larm,lelb,lwri,lhan1,'
              'lhan2,lhan3,rsho1,rsho2,rarm,relb,rwri,rhan1,rhan2,rhan3,lhipb,lhipf,lhipl,lleg,lkne,lank,lhee,lfoo,'
              'rhipb,rhipf,rhipl,rleg,rkne,rank,rhee,rfoo'),  # facts "names head...rfoo"; orig bmhad
    'tdhp_full': MUCO_28,  # the original builds 3DHP-full in MuCo's skeleton (§2.12)
    'totalcapture': ('pelv,spin,spin1,spin2,spin3,neck,head,rcla,rsho,relb,rwri,lcla,lsho,lelb,lwri,rhip,rkne,rank,'
                     'lhip,lkne,lank'),  # orig totalcapture; review §3 "21, same names"
    'jta': ('htop,head,neck,rcla,rsho,relb,rwri,lcla,lsho,lelb,lwri,spin0,spin1,spin2,spin3,pelv,rhip,rkne,rank,'
            'lhip,lkne,lank'),  # orig jta
    'ikea': COCO_17,  # facts §3.2 ikea "COCO-17 joints"
    'human4d': ('pelv,spin0,spin1,spin2,spin3,neck,neck2,head,htop,neck3,rsho,relb,rwri,rpinkie,rthu,lsho,lelb,'
                'lwri,lpinkie,lthu,rhip,rkne,rank,rfoo,rtoe,rtoe2,lhip,lkne,lank,lfoo,ltoe,ltoe2'),  # orig, _del out
    'behave': SMPL_PELVIS_LAST + ',' + OPENPOSE_MIDHIP_LAST,  # facts §3.2 behave; review "the same"
    'rich_body': SMPLX_42,  # facts App. A; review (g) same selection
    'spec': SMPL_PELVIS_FIRST,  # orig spec: the SMPL joint order as is
    'hspace': ('pelv,spin1,spin2,spin3,neck,head,head2,lbrow1,rbrow1,lcla,lsho,lelb,lwri,lmiddle1,lmiddle3,lthu,'
               'rcla,rsho,relb,rwri,rmiddle1,rmiddle3,rthu,lhip,lkne,lank,lhee,lfoo,ltoe,rhip,rkne,rank,rhee,rfoo,'
               'rtoe'),  # orig hspace selection (35 of GHUM's 63)
    'tdhp': MUCO_28, 'mupots': MUCO_28,  # validation entries, converted to MuCo's skeleton
}
UNION_SIZE = {'huge8': 555, 'medium3': 277, 'small5': 77}


def _wanted_union(name):
    """The original's union for mix `name`, from WANTED_ORDER and the merge list alone (no project code)."""
    names = []
    for entry in mixes.get_mix(name):
        suffix = f'_{entry.suffix}' if entry.suffix else ''
        for joint in WANTED_ORDER[entry.dataset].split(','):
            if joint + suffix not in names:
                names.append(joint + suffix)
    return names


def _declared(entry):
    """The entry's declared skeleton (its recipe's JointInfo, after the entry's selection), suffixed."""
    suffix = f'_{entry.suffix}' if entry.suffix else ''
    return [n + suffix for n in mixes.entry_joint_info(entry).names]


def _mix_sources():
    return sorted({e.dataset for name in UNION_SIZE for e in mixes.get_mix(name)})


def test_wanted_orders_are_self_consistent():
    assert set(WANTED_ORDER) == set(_mix_sources())
    for name, size in UNION_SIZE.items():
        assert len(_wanted_union(name)) == size, name
    huge8 = _wanted_union('huge8')
    assert huge8.index('pelv') == 23  # create_skeleton_info_file: index 23 is `pelv_smpl`
    for order in WANTED_ORDER.values():
        JointInfo(order)  # every l/r name has its mirror


@pytest.mark.parametrize('dataset', _mix_sources())
def test_declared_order_is_the_originals(dataset):
    """Each mix source declares its joints in the original recipe's order (the union order follows)."""
    if not mixes.has_declared_skeleton(dataset):
        pytest.skip(f'{dataset}: no declared skeleton available')
    entry = next(e for name in UNION_SIZE for e in mixes.get_mix(name) if e.dataset == dataset)
    declared = [n[:-len(entry.suffix) - 1] if entry.suffix else n for n in _declared(entry)]
    assert declared == WANTED_ORDER[dataset].split(','), (
        f'{dataset}: declared {",".join(declared)}\n wanted {WANTED_ORDER[dataset]}')


def _chirality(names):
    counts = collections.Counter('left' if n[0] == 'l' else 'right' if n[0] == 'r' else 'other' for n in names)
    present = set(names)
    unpaired = [n for n in names if n[0] in 'lr' and {'l': 'r', 'r': 'l'}[n[0]] + n[1:] not in present]
    return counts, unpaired


@pytest.mark.parametrize('name', list(UNION_SIZE))
def test_union_rebuilt_from_declared_skeletons(name):
    """Counts, pelvis at 23 in huge8, 222/222/111 chirality, and every source's block of new names appearing
    contiguously, in the source's declared order, in the mix order."""
    missing = [e.dataset for e in mixes.missing_entries(name)]
    if missing:
        pytest.skip(f'{name}: skeletons not available: {missing}')
    entries = mixes.get_mix(name)
    union = mixes.mix_joint_info(name)
    names = list(union.names)
    # restated union: first appearances over the declared skeletons, in mix order
    restated, blocks = [], []
    for entry in entries:
        new = [n for n in _declared(entry) if n not in restated]
        blocks.append((entry.dataset, len(restated), new))
        restated += new
    assert names == restated
    assert len(names) == UNION_SIZE[name] == len(set(names))
    for dataset, start, new in blocks:  # the source's new names sit at [start, start + len(new))
        assert names[start:start + len(new)] == new, dataset
    starts = [start for _, start, new in blocks if new]
    assert starts == sorted(starts)
    if name == 'huge8':
        assert names.index('pelv') == 23, f'pelv at {names.index("pelv")}; SURREAL must declare its pelvis last'
        counts, unpaired = _chirality(names)
        assert unpaired == []
        assert (counts['left'], counts['right'], counts['other']) == (222, 222, 111)
        mirror = union.mirror_mapping if hasattr(union, 'mirror_mapping') else None
        if mirror is not None:  # the mapping pairs each left name with its right name
            assert all(names[mirror[i]][1:] == n[1:] and names[mirror[i]][0] in 'lr'
                       for i, n in enumerate(names) if n[0] in 'lr')
    # and the whole order is the original's
    wanted = _wanted_union(name)
    if names != wanted:
        first = next(i for i, (a, b) in enumerate(zip(names, wanted)) if a != b)
        owner = next(d for d, start, new in reversed(blocks) if start <= first)
        pytest.fail(f'{name}: union differs from the original first at index {first} ({names[first]!r} vs '
                    f'{wanted[first]!r}), in the block of {owner}')


def test_small5_skeleton_info_indices_follow_the_union():
    info = mixes.skeleton_info('small5', mixes.mix_joint_info('small5', allow_missing=True))
    union = info['']['names']
    for dataset in ('surreal', 'h36m_alljoints', 'muco'):
        if dataset not in info:
            continue
        entry = next(e for e in mixes.get_mix('small5') if e.dataset == dataset)
        suffix = f'_{entry.suffix}' if entry.suffix else ''
        assert [union[i] for i in info[dataset]['indices']] == [n + suffix for n in info[dataset]['names']]


# ------------------------------------------------------------------------------------------------------
# mix build: joints placed by NAME, so datasets built in an older order need no rebuild
def test_mix_build_places_joints_of_an_old_order_build_by_name(data_root):
    """A SURREAL built in another joint order (the declared order reversed: covers the old pelvis-first build
    whatever the declared order is) enters small5 with every joint at its union index by name."""
    from posepile.datasets3d import Pose3DDataset, Pose3DExample, save_to_cache
    from posepile.merging.mix_build import build_mix
    from posepile.storage.barecat_store import BarecatDataset
    from posepile.util.camera import Camera
    declared = registry.joint_info('surreal')
    old_names = list(declared.names)[::-1]
    old_ji = JointInfo(old_names, [(len(old_names) - 1 - i, len(old_names) - 1 - j)
                                   for i, j in declared.stick_figure_edges])
    rng = np.random.default_rng(5)
    camera = Camera(optical_center=[0, -4000, 1000], rot_world_to_cam=[[1, 0, 0], [0, 0, -1], [0, 1, 0]],
                    intrinsic_matrix=[[1000, 0, 500], [0, 1000, 500], [0, 0, 1]])
    examples = {TRAIN: [], VALID: []}
    for split in (TRAIN, VALID):
        for i in range(3):
            # coordinate x = 1000 * (index of the joint in the DECLARED order) + example number: by-name check
            coords = np.stack([[1000.0 * declared.ids[n] + i, rng.uniform(-100, 100), rng.uniform(0, 1700)]
                               for n in old_names])
            coords[old_names.index('lhan')] = np.nan
            examples[split].append(Pose3DExample(f'surreal/{split}_{i}.jpg', coords, [0, 0, 1000, 1000], camera))
    save_to_cache('surreal', Pose3DDataset(old_ji, examples[TRAIN], examples[VALID]))

    summary = build_mix('small5', data_root / 'small5', allow_missing=True, include_images=False)
    union = mixes.mix_joint_info('small5', allow_missing=True)
    assert summary['joint_names'] == list(union.names)
    shard = BarecatDataset(data_root / 'small5' / 'sources' / 'surreal', load_images=False)
    assert shard.joint_info.names == union.names
    assert len(shard.examples[TRAIN]) == 6  # train + val -> train
    for k, example in enumerate(shard.examples[TRAIN]):
        coords = example.world_coords
        for name in declared.names:
            u = union.ids[name]
            if name == 'lhan':
                assert np.isnan(coords[u]).all()
            else:
                assert coords[u, 0] == pytest.approx(1000.0 * declared.ids[name] + k % 3, abs=1.0), name
        others = [i for i, n in enumerate(union.names) if n not in declared.ids]
        assert np.isnan(coords[others]).all()
    if 'pelv' in union.ids and union.names[:24] == SMPL_PELVIS_LAST.split(','):
        assert shard.examples[TRAIN][0].world_coords[23, 0] == pytest.approx(1000.0 * declared.ids['pelv'], abs=1)


def test_2d_mix_exports_2d_archives(data_root):
    """huge2d_common's shards are the original's 2D archives: joints2d {rows, i_rows}, int16 bbox, no joints3d,
    metadata with the common 17 names."""
    import barecat
    from posepile.datasets2d import Pose2DDataset, Pose2DExample
    from posepile.datasets3d import save_to_cache
    from posepile.merging.mix_build import build_mix
    from posepile.storage.barecat_store import unpack
    ji = registry.joint_info('coco')
    examples = []
    for i in range(3):
        coords = np.full((ji.n_joints, 2), 20.25 + i, np.float32)
        coords[ji.ids['nose']] = np.nan
        examples.append(Pose2DExample(f'coco/x_{i}.jpg', coords, [1.4, 2.6, 50, 60]))
    save_to_cache('coco', Pose2DDataset(ji, examples))
    build_mix('huge2d_common', data_root / 'h2d', allow_missing=True, include_images=False)
    shard = data_root / 'h2d' / 'sources' / 'coco'
    archive = barecat.Barecat(shard / 'annotations.barecat', readonly=True)
    try:
        metadata = unpack(archive['metadata.msgpack'])
        assert metadata['joint_names'] == list(mixes.common_2d_joint_info().names)
        keys = sorted(k for k in archive if k.startswith('train/'))
        assert keys == [f'train/coco/x_{i}.jpg_00.msgpack' for i in range(3)]
        value = unpack(archive[keys[1]])
    finally:
        archive.close()
    assert 'joints3d' not in value and 'cam' not in value
    assert value['bbox'].dtype == np.int16 and value['bbox'].tolist() == [1, 3, 50, 60]
    rows, i_rows = value['joints2d']['rows'], value['joints2d']['i_rows']
    assert i_rows.dtype == np.uint16 and len(i_rows) == 16 and 0 not in i_rows  # nose (index 0) missing
    np.testing.assert_allclose(rows.astype(np.float32), 21.25, atol=0.1)
