"""The training mixes of the WACV 2023 paper as data, and their union skeleton computed without any data.

A mix is a list of `MixEntry(dataset, splits, suffix, share)`:
  dataset: registered name (posepile/registry.py); splits: ((take_split, use_as_split), ...) with
  TRAIN=0, VALID=1, TEST=2; suffix: appended as `_<suffix>` to every joint name (datasets with the same suffix
  share joints; '' leaves names unchanged); share: examples of this source in every training batch (3D batches
  hold 96 examples, 2D batches 32); 0 for validation-only entries.

Facts (see ../shared/docs/original-posepile-facts.md §2.12 and ../shared/docs/datasets.md §Z):
- Entries, split mappings and suffixes: the original's posepile/merging/merged_dataset3d.py (make_huge8,
  make_medium3, make_small5) and merged_dataset2d.py (make_huge2d with separate=False = huge2d_common).
- Shares: datasets.md §Z.1 ("Batch shares of the mixes; from the paper's training code"). The original
  PosePile repository itself holds no shares; they live in the training code of the paper (MeTRAbs/NLF
  training scripts), which is not in our reference index, so §Z.1 is the only source used here.
- The NLF era (nlf-era-facts.md §2): huge2d2 and dense_multi (the original's merged_dataset2d.py) and NLF's four
  training streams nlf_parametric, nlf_kp3d, nlf_2d (= huge2d2), nlf_dense (= dense_multi) with the default
  shares of nlf/pt/main.py; their entries carry NLF's section name (`prefix`) that every image path of the
  source starts with in the built mix.
"""
import dataclasses
import logging

from posepile.datasets3d import TEST, TRAIN, VALID
from posepile.joint_info import JointInfo

logger = logging.getLogger(__name__)

BATCH_SIZE_3D = 96
BATCH_SIZE_2D = 32


@dataclasses.dataclass(frozen=True)
class MixEntry:
    dataset: str
    splits: tuple[tuple[int, int], ...]
    suffix: str
    share: int
    prefix: str = ''  # NLF's section name: every image path of the source in the built mix starts with it


_T = ((TRAIN, TRAIN),)  # train -> train
_TV = ((TRAIN, TRAIN), (VALID, TRAIN))  # train + val -> train
_TEST_AS_VALID = ((TEST, VALID),)

# The validation entries of the 3D mixes: the 3DHP test set and MuPoTS, both converted to MuCo's 28-joint
# skeleton before suffixing (see MUCO_3DHP_NAMES). The original takes MuPoTS from `mupots_yolo`, whose VALID
# split holds the GT people matched to YOLO detections (IoU > 0.1), with (VALID -> VALID); our `mupots`
# module keeps every annotated person in its TEST split, so the same role is (TEST -> VALID).
_VALIDATION_3D = [
    MixEntry('tdhp', _TEST_AS_VALID, '3dhp', 0),
    MixEntry('mupots', _TEST_AS_VALID, '3dhp', 0),
]


def _entries(rows):
    return [MixEntry(*row) for row in rows]


MIXES = {
    # 28 training sources; shares from datasets.md §Z.1 (sum 96); order = the original's merge order
    'huge8': _entries([
        ('surreal', _TV, '', 5),
        ('h36m_alljoints', _TV, 'h36m', 4),
        ('fit3d', _T, 'h36m', 2),
        ('chi3d', _T, 'h36m', 1),
        ('humansc3d', _T, 'h36m', 1),
        ('sailvos', _TV, 'sailvos', 5),
        ('panoptic', _T, 'coco', 7),
        ('muco', _T, '3dhp', 6),  # MuCo-3DHP, the first 200 000 composites (the original's muco_3dhp_200k)
        ('aist', _TV, 'coco', 6),
        ('gpa', _T, 'gpa', 4),
        ('humbi', _T, '', 5),  # only its 25 `*_coco` joints (see entry_joint_info)
        ('aspset', _TV, 'aspset', 4),
        ('agora', _TV, '', 3),
        ('tdoh', _T, '3doh', 3),
        ('tdpeople', _T, '3dpeople', 4),
        ('bml_movi', _T, 'bmlmovi', 5),
        ('mads', _T, 'mads', 2),
        ('umpm', _T, 'umpm', 2),
        ('bmhad', _T, 'bmhad', 3),
        ('tdhp_full', _T, '3dhp', 3),
        ('totalcapture', _T, 'totcap', 3),
        ('jta', _TV, 'jta', 3),
        ('ikea', _T, 'ikea', 2),
        ('human4d', _T, 'human4d', 1),
        ('behave', _T, '', 3),
        ('rich_body', _TV, 'smplx', 4),  # the 42-joint SMPL-X body subset (the original's make_rich_body)
        ('spec', _T, '', 2),
        ('hspace', _T, 'ghum', 3),
    ]) + _VALIDATION_3D,
    # 14 training sources; shares from datasets.md §Z.1 (sum 96); h36m is the 25-joint h36m_alljoints
    # (the original's make_medium3 loads 'h36m_alljoints')
    'medium3': _entries([
        ('surreal', _TV, '', 8),
        ('h36m_alljoints', _TV, 'h36m', 9),
        ('sailvos', _TV, 'sailvos', 7),
        ('panoptic', _T, 'coco', 9),
        ('muco', _T, '3dhp', 9),
        ('aist', _TV, 'coco', 9),
        ('humbi', _T, '', 7),
        ('agora', _TV, '', 5),
        ('jta', _TV, 'jta', 5),
        ('tdhp_full', _T, '3dhp', 5),
        ('tdpeople', _T, '3dpeople', 6),
        ('totalcapture', _T, 'totcap', 5),
        ('rich_body', _TV, 'smplx', 7),
        ('hspace', _T, 'ghum', 5),
    ]) + _VALIDATION_3D,
    # 3 training sources, 32 each (datasets.md §Z.1); no plausibility filter in the original
    'small5': _entries([
        ('surreal', _TV, '', 32),
        ('h36m_alljoints', _TV, 'h36m', 32),
        ('muco', _T, '3dhp', 32),
    ]) + _VALIDATION_3D,
    # 2D: the original's make_huge2d(separate=False): no suffixes, converted to the common 17-joint set,
    # training examples kept with > 6 valid limb joints; 8 of each 32-example 2D batch (datasets.md §Z.1)
    'huge2d_common': _entries([
        # all people, associated with detections, all 16 joints (the original's make_mpii_yolo(filter_joints=False))
        ('mpii_yolo_alljoints', _T, '', 8),
        ('coco', _TV, '', 8),  # multi-person COCO, train + val
        ('posetrack', _T, '', 8),
        ('jrdb', _T, '', 8),
    ]),
}

# ------------------------------------------------------------------------------------------------------
# The NLF era (../shared/docs/nlf-era-facts.md §2). Entries: (dataset, splits, suffix, share, prefix).
# The prefix is NLF's section name (nlf/pt/main.py): NLF assigns every example of a stream's archive to the
# section whose name is the longest sorted-predecessor prefix of its image path and draws `share` examples of
# each section per batch; mix build makes every image path of the source start with it (IMAGE_DIR_RENAMES).
#
# huge2d2: the original's merged_dataset2d.make_huge2d2 (separate=True): MPII (YOLO-associated, all people, all
# 16 joints), COCO-WholeBody, PoseTrack, JRDB, AIC and Halpe, each (TRAIN -> TRAIN) with its own joint-name
# suffix; training examples with > 6 valid limb joints. Shares: NLF's 2D stream (4 each, batch 24).
MIXES['huge2d2'] = _entries([
    ('mpii_yolo_alljoints', _T, 'mpii', 4, 'mpii_down'),
    ('coco_wb', _T, 'coco', 4, 'coco_'),
    ('posetrack', _T, 'posetrack', 4, 'posetrack_down'),
    ('jrdb', _T, 'jrdb', 4, 'jrdb_down'),
    ('aic', _T, 'aic', 4, 'aic_down'),
    ('halpe', _T, 'halpe', 4, 'halpe'),
])
# dense_multi: make_dense_multi: DensePose-COCO (suffix coco) + DensePose-PoseTrack (suffix posetrack), TRAIN
# only, no joint filter. Shares: NLF's DensePose stream (14 + 7).
MIXES['dense_multi'] = _entries([
    ('densepose_coco', _T, 'coco', 14, 'densepose_coco_'),
    ('densepose_posetrack', _T, 'posetrack', 7, 'densepose_posetrack_'),
])
# NLF's four training streams (nlf/pt/main.py build_data, default shares). The 2D and DensePose streams read
# the huge2d2 and dense_multi archives.
MIXES['nlf_2d'] = MIXES['huge2d2']
MIXES['nlf_dense'] = MIXES['dense_multi']
# Parametric stream: one archive of every parametric set (no skeleton: JointInfo([], [])), shares sum to 97.
# Dataset names are this project's registry names; NLF's section names are the prefixes.
MIXES['nlf_parametric'] = _entries([
    ('agora', _T, '', 10, 'agora'),
    ('bedlam', _T, '', 16, 'bedlam'),
    ('rich', _T, '', 5, 'rich'),
    ('behave', _T, '', 5, 'behave'),
    ('spec', _T, '', 3, 'spec'),
    ('surreal', _T, '', 8, 'surreal'),
    ('moyo', _T, '', 8, 'moyo'),
    ('arctic', _T, '', 3, 'arctic'),
    ('intercap', _T, '', 3, 'intercap'),
    ('genebody', _T, '', 1, 'genebody'),
    ('egobody', _T, '', 1, 'egobody'),
    ('hi4d', _T, '', 3, 'hi4d_down'),  # the real Hi4D captures
    ('hi4d_rerender', _T, '', 8, 'hi4d_rerender'),
    ('humman', _T, '', 2, 'humman'),
    ('synbody', _T, '', 6, 'synbody_humannerf'),  # SynBody's HumanNeRF subset
    ('thuman2', _T, '', 6, 'thuman2'),
    ('zjumocap', _T, '', 1, 'zjumocap'),
    ('dfaust', _T, '', 8, 'dfaust_render'),  # the Blender renders of the D-FAUST registrations
])
# 3D keypoint stream: huge8's keypoint sources minus the five that moved to the parametric stream (agora,
# surreal, behave, rich, spec), plus egohumans and dna_rendering; shares sum to 97. Splits and suffixes as in
# huge8; egohumans (COCO-17 joints) joins the `coco` group; dna_rendering's suffix is ours (the facts do not
# name it).
_HUGE8 = {e.dataset: e for e in MIXES['huge8']}
MIXES['nlf_kp3d'] = [dataclasses.replace(_HUGE8[dataset], share=share, prefix=prefix) for dataset, share, prefix in [
    ('h36m_alljoints', 10, 'h36m_'),
    ('muco', 6, 'muco_downscaled'),
    ('humbi', 5, 'humbi'),
    ('tdoh', 3, '3doh_down'),
    ('panoptic', 7, 'panoptic_'),
    ('aist', 6, 'aist_'),
    ('aspset', 4, 'aspset_'),
    ('gpa', 4, 'gpa_'),
    ('tdpeople', 4, '3dpeople'),
    ('sailvos', 5, 'sailvos'),
    ('bml_movi', 5, 'bml_movi'),
    ('mads', 2, 'mads_down'),
    ('umpm', 2, 'umpm_down'),
    ('bmhad', 3, 'bmhad_down'),
    ('tdhp_full', 3, '3dhp_full_down'),
    ('totalcapture', 3, 'totalcapture'),
    ('jta', 3, 'jta_down'),
    ('ikea', 2, 'ikea_down'),
    ('human4d', 1, 'human4d'),
    ('fit3d', 2, 'fit3d_'),
    ('chi3d', 1, 'chi3d_'),
    ('humansc3d', 1, 'humansc3d_'),
    ('hspace', 3, 'hspace_'),
]] + _entries([
    ('egohumans', _T, 'coco', 6, 'egohumans'),
    ('dna_rendering', _T, 'dna', 6, 'dna_rendering'),
])
# The NLF streams and their batch sizes (sum of the shares).
NLF_STREAMS = ('nlf_parametric', 'nlf_kp3d', 'nlf_2d', 'nlf_dense')
# Image directories whose name differs from NLF's section name: our crop folder -> the folder name NLF's
# prefix expects (the original names the 3DPeople / 3DOH / 3DHP crop folders with a leading digit).
# A path whose first folder is neither the prefix nor listed here is stored under `<prefix>/<path>`.
IMAGE_DIR_RENAMES = {
    'tdoh_downscaled': '3doh_downscaled',
    'tdpeople_downscaled': '3dpeople_downscaled',
    'tdhp_full_downscaled': '3dhp_full_downscaled',
}

# Mixes whose merged training set goes through the plausibility filter (defaults, piano1 kept): §2.12.
PLAUSIBILITY_FILTERED = frozenset({'huge8', 'medium3', 'nlf_kp3d'})
# Mixes of 2D datasets (converted to the common 17-joint skeleton, > 6 valid limb joints in training).
MIXES_2D = frozenset({'huge2d_common'})
# 2D mixes that keep each source's own skeleton, suffixed (the union of the suffixed skeletons).
MIXES_2D_SUFFIXED = frozenset({'huge2d2', 'nlf_2d', 'dense_multi', 'nlf_dense'})
# 2D mixes whose training examples need > 6 valid limb joints (make_dense_multi has no such filter).
LIMB_FILTERED_2D = frozenset({'huge2d_common', 'huge2d2', 'nlf_2d'})
# Parametric mixes: no skeleton (JointInfo([], [])), examples keep only their body-model parameters.
MIXES_PARAMETRIC = frozenset({'nlf_parametric'})
MIN_VALID_LIMB_JOINTS_2D = 7  # "> 6 valid body joints"

# MuCo-3DHP's 28 joints (names and order of the original's posepile/ds/muco make_joint_info: the 3DHP raw
# skeleton with spi3 called `thor`, reordered). MuCo, 3DHP-full, the 3DHP test set and MuPoTS all enter the
# mixes in this skeleton (suffix 3dhp).
MUCO_3DHP_NAMES = ('thor,spi4,spi2,lcla,lhan,rcla,rhan,lfoo,ltoe,rfoo,rtoe,htop,neck,rsho,relb,rwri,lsho,lelb,'
                   'lwri,rhip,rkne,rank,lhip,lkne,lank,spin,head,pelv')
MUCO_3DHP_EDGES = ('htop-head-neck-lcla-lsho-lelb-lwri-lhan,neck-rcla-rsho-relb-rwri-rhan,'
                   'neck-spi4-thor-spi2-spin-pelv-lhip-lkne-lank-lfoo-ltoe,pelv-rhip-rkne-rank-rfoo-rtoe')
# Entries in the MuCo skeleton: the original builds MuCo and 3DHP-full with MuCo's make_joint_info and
# converts the 3DHP test set and MuPoTS to it (by joint name; unmatched joints become NaN).
CONVERTED_TO_MUCO = frozenset({'muco', 'tdhp_full', 'tdhp', 'mupots'})
# The same joint under another name in our 3DHP recipes: MuCo name -> 3DHP raw name (index 0 of the 28).
MUCO_ALIASES = {'thor': 'spi3'}

# Registry names the mixes use that had no recipe when the mixes were written (issue 19); tests/test_mixes.py
# checks every entry is registered or listed here. Whether a skeleton is available now: has_declared_skeleton.
# The NLF-era names (issue 30) are being added by their recipes; until then `posepile mix build` lists them with
# their (future) build command.
PENDING_DATASETS = frozenset()  # every source the mixes name has a registered recipe


def is_2d(name):
    return name in MIXES_2D or name in MIXES_2D_SUFFIXED


def batch_size(name):
    """Examples per training batch: the fixed 96 / 32 of the WACV mixes, else the sum of the shares."""
    if name in ('huge8', 'medium3', 'small5'):
        return BATCH_SIZE_3D
    if name in MIXES_2D:
        return BATCH_SIZE_2D
    return sum(e.share for e in get_mix(name))


def image_path_in_mix(image_path, prefix):
    """The image path under which an example of a source with NLF section name `prefix` is stored in the mix:
    unchanged if it starts with the prefix, else its first folder renamed (IMAGE_DIR_RENAMES) if that makes it
    start with the prefix, else `<prefix>/<path>`."""
    image_path = str(image_path)
    if not prefix or image_path.startswith(prefix):
        return image_path
    first, sep, rest = image_path.partition('/')
    renamed = IMAGE_DIR_RENAMES.get(first)
    if renamed is not None and renamed.startswith(prefix):
        return f'{renamed}{sep}{rest}'
    return f'{prefix}/{image_path}'


def nlf_section_of(image_path, prefixes):
    """The section NLF assigns an image path to (restated from nlf/pt/main.py get_sections_and_sizes): the
    greatest prefix in sorted order that is <= the path, if the path starts with it; else None (left out)."""
    import bisect
    ordered = sorted(prefixes)
    i = bisect.bisect(ordered, image_path) - 1
    return ordered[i] if i >= 0 and image_path.startswith(ordered[i]) else None


class UnregisteredDatasetError(KeyError):
    def __str__(self):
        return self.args[0]


def get_mix(name):
    if name not in MIXES:
        raise KeyError(f'Unknown mix {name!r}; known: {", ".join(MIXES)}')
    return MIXES[name]


def is_registered(dataset):
    from posepile import registry
    return dataset in registry.DATASETS


def muco_joint_info():
    return JointInfo(MUCO_3DHP_NAMES, MUCO_3DHP_EDGES)


def entry_joint_info(entry):
    """The skeleton an entry contributes, before suffixing: its declared skeleton, with the original's
    per-entry selections (HUMBI: only the `*_coco` joints; 3DHP test and MuPoTS: MuCo's 28 joints)."""
    from posepile import registry
    if entry.dataset in CONVERTED_TO_MUCO:
        if entry.dataset in ('muco', 'tdhp_full') and _readable(entry.dataset):
            return registry.joint_info(entry.dataset)  # declared by its recipe (MuCo's 28 joints)
        return muco_joint_info()
    ji = registry.joint_info(entry.dataset)
    if entry.dataset == 'humbi':
        ji = ji.select_joints([name for name in ji.names if name.endswith('_coco')])
    return ji


def suffixed(joint_info, suffix):
    if not suffix:
        return joint_info
    return JointInfo([f'{name}_{suffix}' for name in joint_info.names], joint_info.stick_figure_edges)


def union(joint_infos):
    """Unique names in order of first appearance; edges = union of the (renamed) edges, sorted.

    The union's order is the original's (huge8: 555 joints, `pelv` at 23, 222 left / 222 right / 111 other)
    exactly when every source declares its joints in the original recipe's order (tests/test_mix_union_order.py
    states those orders); built datasets in an older order are placed by name (mix_build.SourceView)."""
    names = list(dict.fromkeys(name for ji in joint_infos for name in ji.names))
    index = {name: i for i, name in enumerate(names)}
    edges = {tuple(sorted((index[ji.names[i]], index[ji.names[j]])))
             for ji in joint_infos for i, j in ji.stick_figure_edges}
    return JointInfo(names, sorted(edges))


def common_2d_joint_info():
    from posepile.merging.merge import COMMON_2D_EDGES, COMMON_2D_NAMES
    return JointInfo(COMMON_2D_NAMES, COMMON_2D_EDGES)


def _readable(dataset):
    from posepile import registry
    if not is_registered(dataset):
        return False
    try:
        registry.joint_info(dataset)
    except (ImportError, registry.UnknownDatasetError) as e:
        logger.warning('%s is registered but its skeleton cannot be read: %s', dataset, e)
        return False
    return True


def has_declared_skeleton(dataset):
    """Whether the dataset's skeleton can be read: registered, and its module imports (a name may be
    registered before its recipe module lands)."""
    return dataset in CONVERTED_TO_MUCO or _readable(dataset)


def missing_entries(name):
    """Entries of the mix whose declared skeleton is not available (not registered / module missing)."""
    return [entry for entry in get_mix(name) if not has_declared_skeleton(entry.dataset)]


def mix_joint_info(name, allow_missing=False):
    """The union skeleton of mix `name` from the declared skeletons of its datasets (no data needed).

    huge2d_common gives the common 17-joint set, parametric mixes no joints. Datasets whose skeleton is
    unavailable (not registered yet, or registered without an importable module) raise
    UnregisteredDatasetError unless `allow_missing`, in which case the union covers the available entries only.
    """
    entries = get_mix(name)
    if name in MIXES_2D:
        return common_2d_joint_info()
    if name in MIXES_PARAMETRIC:
        return JointInfo([], [])  # parametric-only examples: no joints (nlf-era-facts §3)
    missing = [e.dataset for e in missing_entries(name)]
    if missing and not allow_missing:
        raise UnregisteredDatasetError(
            f'Mix {name!r}: skeletons not available (datasets not registered yet): {", ".join(missing)}')
    return union([suffixed(entry_joint_info(e), e.suffix) for e in entries if e.dataset not in missing])


def source_layout(entry, union_joint_info):
    """(union indices of the entry's joints, their unsuffixed names) in the entry skeleton's order."""
    names = entry_joint_info(entry).names
    suffix = f'_{entry.suffix}' if entry.suffix else ''
    return [union_joint_info.ids[n + suffix] for n in names], names


def skeleton_info(name, union_joint_info=None, entries=None):
    """{source: {indices, names, edges, suffix}} for every source skeleton of the mix, plus '' for the
    whole union (§2.13): indices into the union, unsuffixed names, and the union's edges among them
    (indexed within the source skeleton, so edges shared within a suffix group appear in each member)."""
    union_ji = union_joint_info or mix_joint_info(name, allow_missing=True)
    result = {}
    for entry in entries if entries is not None else get_mix(name):
        if name in MIXES_PARAMETRIC:
            continue
        if name in MIXES_2D:
            indices, names = list(range(union_ji.n_joints)), list(union_ji.names)
        else:
            if not has_declared_skeleton(entry.dataset):
                continue
            indices, names = source_layout(entry, union_ji)
        sub = union_ji.select_joints(indices)
        result[entry.dataset] = {'suffix': entry.suffix, 'indices': indices, 'names': names,
                                 'edges': [list(e) for e in sub.stick_figure_edges]}
    result[''] = {'suffix': '', 'indices': list(range(union_ji.n_joints)), 'names': list(union_ji.names),
                  'edges': [list(e) for e in union_ji.stick_figure_edges]}
    return result
