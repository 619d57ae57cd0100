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


def column_plausibility_flags(segment, joint_index, edges, reference_lengths, relsmall=0.1, relbig=3.0,
                              absbig_mm=150.0, min_joints_in_box=4, chunk=16384):
    """Vectorised plausibility of every example of a saved dataset's split (a LazyExampleList of
    posepile.storage.annotations), reading its memory-mapped columns instead of building examples.

    joint_index: the source joints that count (in the order `edges` index them); reference_lengths: per edge (mm).
    Returns (few_joints_in_box, implausible_bone) bool arrays, the same as `joints_in_box_count(ex) <
    min_joints_in_box` and `any(implausible_bones(...))` per example (an example with few joints in its box is not
    tested for bones); examples with a distorted lens or no camera go through those per-example functions.
    Returns None when `segment` has no columns (a plain list of examples)."""
    if not hasattr(segment, 'column') or segment.column('coords') is None or segment.column('coords').shape[1] == 0:
        return None  # no columns (a list of examples), or no joints (parametric-only examples are kept)
    coords_all, boxes = segment.column('coords'), segment.column('bbox')
    R_all, t_all, K_all = segment.column('cam_R'), segment.column('cam_t'), segment.column('cam_K')
    has_cam, dist_n, dist_model = segment.column('has_cam'), segment.column('cam_dist_n'), segment.column(
        'cam_dist_model')
    joint_index = np.asarray(joint_index, np.int64)
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    n = len(coords_all)
    few = np.zeros(n, bool)
    bad_bone = np.zeros(n, bool)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        if hasattr(segment, 'release_pages'):
            segment.release_pages()  # the pages mapped so far leave the resident set (they stay cached)
        world = np.asarray(coords_all[start:stop], np.float64)[:, joint_index]
        R, t, K = (np.asarray(a[start:stop], np.float64) for a in (R_all, t_all, K_all))
        cam = np.einsum('nij,nkj->nki', R, world - t[:, None, :])
        with np.errstate(divide='ignore', invalid='ignore'):
            x, y = cam[..., 0] / cam[..., 2], cam[..., 1] / cam[..., 2]
        u = K[:, 0, 0, None] * x + K[:, 0, 1, None] * y + K[:, 0, 2, None]
        v = K[:, 1, 1, None] * y + K[:, 1, 2, None]
        box = np.asarray(boxes[start:stop], np.float64)
        bx, by, bw, bh = (box[:, k, None] for k in range(4))
        finite = np.isfinite(u) & np.isfinite(v)
        with np.errstate(invalid='ignore'):
            inside = (u >= bx) & (u <= bx + bw) & (v >= by) & (v <= by + bh) & finite
        few_chunk = inside.sum(axis=1) < min_joints_in_box
        bad_chunk = np.any(implausible_bones(world, edges, reference_lengths, relsmall, relbig, absbig_mm), axis=1)
        # per example where the pinhole projection above is not the camera's
        special = np.flatnonzero(~np.asarray(has_cam[start:stop]) | (np.asarray(dist_n[start:stop]) > 0)
                                 | (np.asarray(dist_model[start:stop]) != 0))
        for k in special:
            example = segment.example(start + k)
            example.world_coords = np.asarray(example.world_coords)[joint_index]
            few_chunk[k] = joints_in_box_count(example) < min_joints_in_box
        few[start:stop] = few_chunk
        bad_bone[start:stop] = bad_chunk & ~few_chunk
    return few, bad_bone


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
