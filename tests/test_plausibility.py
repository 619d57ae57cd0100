import numpy as np

from posepile.datasets3d import TEST, TRAIN, Pose3DDataset, Pose3DExample
from posepile.joint_info import JointInfo
from posepile.preproc.plausibility import filter_by_plausibility, implausible_bones
from posepile.util.camera import Camera


def _example(coords, bbox):
    camera = Camera(intrinsic_matrix=[[1000, 0, 500], [0, 1000, 500], [0, 0, 1]], world_up=(0, -1, 0))
    return Pose3DExample('x.jpg', coords, bbox, camera)


def _pose(rng):
    """A 5-joint chain 3 m in front of the camera, bones about 400 mm."""
    return np.array([[0, -800, 3000], [0, -400, 3000], [0, 0, 3000], [0, 400, 3000], [0, 800, 3000]],
                    np.float64) + rng.normal(0, 10, (5, 3))


def test_bone_rule_needs_both_relative_and_absolute_deviation():
    edges = [(0, 1)]
    reference = [400.0]
    cases = {30: True,      # ratio 0.075 < 0.1 and 370 mm off
             45: False,     # ratio 0.1125: not small enough
             1250: True,    # ratio 3.125 > 3 and 850 mm off
             1150: False}   # ratio 2.875
    for length, expected in cases.items():
        coords = np.array([[0, 0, 0], [length, 0, 0]], np.float64)
        assert implausible_bones(coords, edges, reference)[0] == expected, length
    # a short reference: ratio 0.05 but only 9.5 mm off -> plausible (absolute rule)
    assert not implausible_bones(np.array([[0, 0, 0], [0.5, 0, 0]]), edges, [10.0])[0]
    assert not implausible_bones(np.array([[0, 0, 0], [np.nan, 0, 0]]), edges, [400.0])[0]


def test_filter_counts_and_keeps_test_split():
    rng = np.random.default_rng(0)
    ji = JointInfo('a,b,c,d,e', 'a-b-c-d-e')
    good = [_example(_pose(rng), [300, 100, 400, 800]) for _ in range(20)]
    long_bone = _pose(rng)
    long_bone[4] = long_bone[3] + [0, 2000, 0]  # 2 m bone: > 3x and > 150 mm off
    outside_box = _example(_pose(rng), [0, 0, 50, 50])  # < 4 joints in the box
    bad_bone = _example(long_bone, [0, 0, 1000, 1000])
    test_only = _example(long_bone, [0, 0, 1000, 1000])
    dataset = Pose3DDataset(ji, good + [outside_box, bad_bone], None, [test_only])
    dataset, report = filter_by_plausibility(dataset)
    assert report == {'train_before': 22, 'dropped_few_joints_in_box': 1, 'dropped_implausible_bone': 1,
                      'train_after': 20}
    assert len(dataset.examples[TRAIN]) == 20 and len(dataset.examples[TEST]) == 1
    assert np.all(np.abs(dataset.train_bones - 400) < 20)
