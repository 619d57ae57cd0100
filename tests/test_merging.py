import numpy as np
import pytest

from posepile.datasets2d import Pose2DDataset, Pose2DExample
from posepile.datasets3d import TEST, TRAIN, VALID, Pose3DDataset, Pose3DExample
from posepile.joint_info import JointInfo
from posepile.merging.merge import merge_2d_common, merge_datasets
from posepile.util.camera import Camera


def _ds3d(names, edges, n_train, n_valid, n_test, offset):
    ji = JointInfo(names, edges)
    def ex(k):
        coords = np.arange(ji.n_joints * 3, dtype=np.float32).reshape(-1, 3) * 10 + offset + k
        return Pose3DExample(f'img{offset}_{k}.jpg', coords, [0, 0, 10, 10], Camera())
    return Pose3DDataset(ji, [ex(i) for i in range(n_train)], [ex(100 + i) for i in range(n_valid)],
                         [ex(200 + i) for i in range(n_test)])


def test_merge_union_skeleton_suffixes_and_split_remap():
    a = _ds3d('pelv,lhip,rhip,lkne,rkne', 'pelv-rhip-rkne', 3, 1, 2, 0)
    b = _ds3d('pelv,lhip,rhip,htop', 'pelv-rhip,pelv-htop', 2, 0, 4, 1000)
    c = _ds3d('pelv,lhip,rhip', 'pelv-rhip', 1, 0, 0, 5000)  # same suffix as a: shares joints
    merged = merge_datasets([
        (a, [(TRAIN, TRAIN), (VALID, TRAIN)], 'h36m'),
        (b, [(TRAIN, TRAIN), (TEST, VALID)], '3dhp'),
        (c, [(TRAIN, TRAIN)], 'h36m')])
    assert merged.joint_info.names == [
        'pelv_h36m', 'lhip_h36m', 'rhip_h36m', 'lkne_h36m', 'rkne_h36m',
        'pelv_3dhp', 'lhip_3dhp', 'rhip_3dhp', 'htop_3dhp']
    assert len(merged.examples[TRAIN]) == 3 + 1 + 2 + 1
    assert len(merged.examples[VALID]) == 4
    assert len(merged.examples[TEST]) == 0
    assert merged.source_counts[1] == {'suffix': '3dhp', 'joints': 4, 'train': 2, 'valid': 4, 'test': 0}
    # Coordinates land on their renamed joints; other groups' joints are NaN.
    first_b = merged.examples[TRAIN][4]
    np.testing.assert_array_equal(first_b.world_coords[5:], b.examples[TRAIN][0].world_coords)
    assert np.isnan(first_b.world_coords[:5]).all()
    from_c = merged.examples[TRAIN][6]
    np.testing.assert_array_equal(from_c.world_coords[:3], c.examples[TRAIN][0].world_coords)
    assert np.isnan(from_c.world_coords[3:]).all()
    # Edges of each group are kept, renamed, with their mirrors.
    ids = merged.joint_info.ids
    edges = set(merged.joint_info.stick_figure_edges)
    assert tuple(sorted((ids['pelv_h36m'], ids['lhip_h36m']))) in edges
    assert tuple(sorted((ids['pelv_3dhp'], ids['htop_3dhp']))) in edges
    assert not any(i < 5 <= j for i, j in edges)  # no edge joins the two groups
    # Bones from valid joints only: the h36m pelvis-rhip bone comes from a and c examples.
    k = merged.joint_info.stick_figure_edges.index(tuple(sorted((ids['pelv_h36m'], ids['rhip_h36m']))))
    lengths = [np.linalg.norm(e.world_coords[ids['pelv_h36m']] - e.world_coords[ids['rhip_h36m']])
               for e in merged.examples[TRAIN] if np.isfinite(e.world_coords[0]).all()]
    assert merged.train_bones[k] == pytest.approx(np.mean(lengths), rel=1e-5)


def test_merge_2d_common_keeps_examples_with_enough_body_joints():
    mpii_ji = JointInfo('rank,rkne,rhip,lhip,lkne,lank,pelv,thor,neck,htop,rwri,relb,rsho,lsho,lelb,lwri')
    full = np.arange(32, dtype=np.float32).reshape(16, 2)
    sparse = full.copy()
    sparse[[0, 1, 2, 3, 4, 5, 10]] = np.nan  # 12 - 7 = 5 limb joints left
    mpii = Pose2DDataset(mpii_ji, [Pose2DExample('a.jpg', full, [0, 0, 1, 1]),
                                   Pose2DExample('b.jpg', sparse, [0, 0, 1, 1])],
                         [Pose2DExample('c.jpg', sparse, [0, 0, 1, 1])])
    merged = merge_2d_common([(mpii, [(TRAIN, TRAIN), (VALID, VALID)])])
    assert merged.joint_info.n_joints == 17
    assert [e.image_path for e in merged.examples[TRAIN]] == ['a.jpg']
    assert [e.image_path for e in merged.examples[VALID]] == ['c.jpg']  # only training is filtered
    assert merged.source_counts[0]['dropped_few_joints'] == 1
    ex = merged.examples[TRAIN][0]
    ids = merged.joint_info.ids
    np.testing.assert_array_equal(ex.coords[ids['rank']], full[0])
    np.testing.assert_array_equal(ex.coords[ids['lwri']], full[15])
    assert np.isnan(ex.coords[ids['nose']]).all()
