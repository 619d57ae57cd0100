import numpy as np
import pytest

from posepile.joint_info import JointInfo


def test_parse_strings_edges_and_mirror():
    ji = JointInfo('pelv,rhip,rkne,rank,lhip,lkne,lank,neck,head', 'head-neck-pelv-rhip-rkne-rank')
    assert ji.n_joints == 9 and ji.ids['lkne'] == 5
    assert ji.mirror_mapping == [0, 4, 5, 6, 1, 2, 3, 7, 8]
    edges = set(ji.stick_figure_edges)
    # The left side was added automatically.
    for a, b in [('pelv', 'lhip'), ('lhip', 'lkne'), ('lkne', 'lank'), ('pelv', 'rhip'), ('neck', 'head')]:
        assert tuple(sorted((ji.ids[a], ji.ids[b]))) in edges
    assert len(edges) == 8


def test_unknown_names_in_edges_are_skipped_and_lists_work():
    ji = JointInfo(['a', 'b', 'c'], 'a-b-zzz-c')
    assert ji.stick_figure_edges == [(0, 1)]
    assert JointInfo(['a', 'b'], [(0, 1)]).stick_figure_edges == [(0, 1)]
    with pytest.raises(ValueError, match='Duplicate'):
        JointInfo('a,b,a')


def test_select_and_convert():
    ji = JointInfo('pelv,rhip,lhip,neck', 'neck-pelv-rhip')
    sub = ji.select_joints(['neck', 'rhip', 'pelv'])
    assert sub.names == ['neck', 'rhip', 'pelv']
    assert set(sub.stick_figure_edges) == {(0, 2), (1, 2)}
    coords = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    other = JointInfo('neck,htop,pelv')
    out = ji.convert_coords(coords, other)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out[:, 0], coords[:, 3])
    np.testing.assert_array_equal(out[:, 2], coords[:, 0])
    assert np.isnan(out[:, 1]).all()
    bones = ji.get_joint2bone_mat()
    assert bones.shape == (len(ji.stick_figure_edges), 4) and np.all(bones.sum(axis=1) == 0)
