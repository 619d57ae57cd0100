"""Drop training examples whose annotation cannot be right: too few joints inside the person box, or a bone
whose length is far from the dataset's mean (mocap glitches, swapped markers, mis-associated people)."""
import logging

import numpy as np

from posepile.datasets3d import TRAIN

logger = logging.getLogger(__name__)


def implausible_bones(coords, edges, reference_lengths, relsmall=0.1, relbig=3.0, absbig_mm=150.0):
    """Bool (..., n_edges): bone length / reference < relsmall or > relbig, AND |length - reference| >
    absbig_mm. NaN bones (an endpoint missing) are never implausible."""
    coords = np.asarray(coords, np.float64)
    edges = np.asarray(edges, int).reshape(-1, 2)
    lengths = np.linalg.norm(coords[..., edges[:, 0], :] - coords[..., edges[:, 1], :], axis=-1)
    reference = np.asarray(reference_lengths, np.float64)
    with np.errstate(invalid='ignore', divide='ignore'):
        ratio = lengths / reference
        bad = ((ratio < relsmall) | (ratio > relbig)) & (np.abs(lengths - reference) > absbig_mm)
    return bad & np.isfinite(lengths)


def joints_in_box_count(example):
    """Number of valid joints whose projection lies inside the example's box."""
    if getattr(example, 'world_coords', None) is not None:
        points = example.camera.world_to_image(example.world_coords)
    else:
        points = example.coords
    x, y, w, h = example.bbox
    inside = ((points[:, 0] >= x) & (points[:, 0] <= x + w) & (points[:, 1] >= y) & (points[:, 1] <= y + h))
    return int(np.sum(inside & np.all(np.isfinite(points), axis=1)))


def filter_by_plausibility(dataset, relsmall=0.1, relbig=3.0, absbig_mm=150.0, min_joints_in_box=4,
                           always_plausible=lambda example: False):
    """Filter the TRAIN examples of a Pose3DDataset in place and return (dataset, report).

    Bone references are the mean train bone lengths computed before filtering (valid joints only);
    they are recomputed afterwards. report: counts of kept and dropped examples per reason.
    """
    dataset.update_bones()
    edges = dataset.joint_info.stick_figure_edges
    reference = dataset.train_bones
    kept = []
    report = {'train_before': len(dataset.examples[TRAIN]), 'dropped_few_joints_in_box': 0,
              'dropped_implausible_bone': 0}
    for example in dataset.examples[TRAIN]:
        if always_plausible(example):
            kept.append(example)
        elif joints_in_box_count(example) < min_joints_in_box:
            report['dropped_few_joints_in_box'] += 1
        elif np.any(implausible_bones(example.world_coords, edges, reference, relsmall, relbig, absbig_mm)):
            report['dropped_implausible_bone'] += 1
        else:
            kept.append(example)
    dataset.examples[TRAIN] = kept
    dataset.update_bones()
    report['train_after'] = len(kept)
    dropped = report['train_before'] - report['train_after']
    logger.info('Plausibility filter dropped %d of %d training examples (%.2f%%): %d with < %d joints '
                'in the box, %d with an implausible bone', dropped, report['train_before'],
                100 * dropped / max(1, report['train_before']), report['dropped_few_joints_in_box'],
                min_joints_in_box, report['dropped_implausible_bone'])
    return dataset, report
