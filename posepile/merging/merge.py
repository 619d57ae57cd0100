"""Combine datasets into one: a union skeleton with per-group joint-name suffixes, and split remapping.

Joint names get `_<suffix>` appended (no suffix: unchanged); datasets with the same suffix share joints.
The union keeps names in order of first appearance; edges are the union of the renamed edges.
"""
import copy
import logging

import numpy as np

from posepile.datasets2d import Pose2DDataset
from posepile.datasets3d import TEST, TRAIN, VALID, Pose3DDataset
from posepile.joint_info import JointInfo

logger = logging.getLogger(__name__)

# The common 2D skeleton (COCO order) that 2D datasets are merged into.
COMMON_2D_NAMES = ('nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank'
                   .split(','))
COMMON_2D_EDGES = 'lank-lkne-lhip-lsho-lelb-lwri,lsho-rsho,lhip-rhip,nose-leye-lear,leye-reye'
BODY_JOINTS_2D = ('lsho', 'rsho', 'lelb', 'relb', 'lwri', 'rwri', 'lhip', 'rhip', 'lkne', 'rkne', 'lank',
                  'rank')


def suffixed_joint_info(joint_info, suffix):
    if not suffix:
        return joint_info
    return JointInfo([f'{name}_{suffix}' for name in joint_info.names], joint_info.stick_figure_edges)


def union_joint_info(joint_infos):
    names = []
    seen = set()
    for ji in joint_infos:
        for name in ji.names:
            if name not in seen:
                seen.add(name)
                names.append(name)
    index = {name: i for i, name in enumerate(names)}
    edges = set()
    for ji in joint_infos:
        for i, j in ji.stick_figure_edges:
            edges.add(tuple(sorted((index[ji.names[i]], index[ji.names[j]]))))
    merged = JointInfo(names)
    merged.stick_figure_edges = sorted(edges)
    return merged


def merge_datasets(sources, update_bones=True):
    """`sources`: list of (dataset, [(take_split, use_as_split), ...], suffix).

    E.g. `[(h36m, [(TRAIN, TRAIN), (VALID, TRAIN)], 'h36m'), (tdhp, [(TEST, VALID)], '3dhp')]`.
    Returns a Pose3DDataset (or Pose2DDataset) in the union skeleton whose `source_counts` attribute gives
    the number of examples each source contributed per target split.
    """
    if not sources:
        raise ValueError('Nothing to merge')
    is_3d = isinstance(sources[0][0], Pose3DDataset)
    renamed = [suffixed_joint_info(ds.joint_info, suffix) for ds, _, suffix in sources]
    merged_ji = union_joint_info(renamed)
    examples = {TRAIN: [], VALID: [], TEST: []}
    source_counts = []
    for (dataset, split_mapping, suffix), ji in zip(sources, renamed):
        if isinstance(dataset, Pose3DDataset) != is_3d:
            raise ValueError('Cannot merge 2D and 3D datasets together')
        mapping = ji.get_coord_mapping(merged_ji)
        counts = {TRAIN: 0, VALID: 0, TEST: 0}
        for take_split, use_as_split in split_mapping:
            for example in dataset.examples[take_split]:
                examples[use_as_split].append(_convert_example(example, mapping, is_3d))
                counts[use_as_split] += 1
        source_counts.append({'suffix': suffix, 'joints': ji.n_joints,
                              **{name: counts[s] for s, name in ((TRAIN, 'train'), (VALID, 'valid'),
                                                                  (TEST, 'test'))}})
        logger.info('Merged %s (suffix %r): %s', dataset, suffix, counts)
    if is_3d:
        result = Pose3DDataset(merged_ji, examples[TRAIN], examples[VALID], examples[TEST],
                               compute_bone_lengths=update_bones)
    else:
        result = Pose2DDataset(merged_ji, examples[TRAIN], examples[VALID], examples[TEST])
    result.source_counts = source_counts
    return result


def _convert_coords(coords, mapping):
    result = np.full((len(mapping), coords.shape[-1]), np.nan, np.float32)
    present = mapping >= 0
    result[present] = coords[mapping[present]]
    return result


def _convert_example(example, mapping, is_3d):
    new = copy.copy(example)
    if is_3d:
        new.world_coords = _convert_coords(example.world_coords, mapping)
        if example.univ_coords is not None:
            new.univ_coords = _convert_coords(example.univ_coords, mapping)
    else:
        new.coords = _convert_coords(example.coords, mapping)
    return new


def merge_2d_common(sources, min_valid_body_joints=7):
    """Merge 2D datasets into the common 17-joint (COCO-order) skeleton by joint name.

    `sources`: list of (dataset, [(take_split, use_as_split), ...]). Training examples are kept only with
    more than 6 valid body joints (of the 12 limb joints); other splits are kept whole.
    """
    common = JointInfo(COMMON_2D_NAMES, COMMON_2D_EDGES)
    body_indices = [common.ids[name] for name in BODY_JOINTS_2D]
    examples = {TRAIN: [], VALID: [], TEST: []}
    source_counts = []
    for dataset, split_mapping in sources:
        mapping = dataset.joint_info.get_coord_mapping(common)
        if np.count_nonzero(mapping >= 0) == 0:
            raise ValueError(f'{dataset} shares no joint names with the common 2D skeleton')
        kept = {TRAIN: 0, VALID: 0, TEST: 0}
        dropped = 0
        for take_split, use_as_split in split_mapping:
            for example in dataset.examples[take_split]:
                new = _convert_example(example, mapping, is_3d=False)
                if use_as_split == TRAIN:
                    n_valid = np.count_nonzero(np.isfinite(new.coords[body_indices]).all(axis=-1))
                    if n_valid < min_valid_body_joints:
                        dropped += 1
                        continue
                examples[use_as_split].append(new)
                kept[use_as_split] += 1
        source_counts.append({'train': kept[TRAIN], 'valid': kept[VALID], 'test': kept[TEST],
                              'dropped_few_joints': dropped})
    result = Pose2DDataset(common, examples[TRAIN], examples[VALID], examples[TEST])
    result.source_counts = source_counts
    return result
