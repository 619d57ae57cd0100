import numpy as np
import pytest

from posepile.util import sampling
from posepile.util.sampling import select_frames


def _track(positions_mm):
    """One joint moving along x: positions (N,) -> (N, 1, 3)."""
    positions = np.asarray(positions_mm, np.float64)
    return np.stack([positions, np.zeros_like(positions), np.zeros_like(positions)], -1)[:, np.newaxis]


def test_keeps_frame_when_moved_at_least_threshold_since_last_kept():
    poses = _track([0, 40, 80, 99.9, 100, 150, 199.9, 250, 260])
    assert select_frames(poses, 100).tolist() == [0, 4, 7]


def test_first_valid_frame_is_kept_and_invalid_frames_never():
    poses = _track([np.nan, np.nan, 5, 500, np.nan, 1000])
    assert select_frames(poses, 100).tolist() == [2, 3, 5]
    assert select_frames(_track([np.nan, np.nan]), 100).tolist() == []
    assert select_frames(np.zeros((0, 17, 3)), 100).tolist() == []
    assert select_frames(_track([7.0]), 100).tolist() == [0]


def test_only_joints_valid_in_both_poses_are_compared():
    a = np.array([[0, 0, 0], [np.nan, np.nan, np.nan]], np.float64)
    b = np.array([[10, 0, 0], [500, 0, 0]], np.float64)  # joint 1 appears: not "moved" by default
    c = np.array([[10, 0, 0], [700, 0, 0]], np.float64)
    poses = np.stack([a, b, c])
    assert select_frames(poses, 100).tolist() == [0]
    # check_validity: a joint valid now but invalid in the last kept pose forces a keep
    assert select_frames(poses, 100, check_validity=True).tolist() == [0, 1, 2]


def test_nan_unchanged_remembers_last_known_positions():
    nan = np.nan
    poses = np.array([
        [[0, 0, 0], [0, 0, 0]],
        [[150, 0, 0], [nan, nan, nan]],  # kept (joint 0 moved); joint 1 unknown now
        [[160, 0, 0], [50, 0, 0]],  # joint 1 vs remembered 0 -> 50 mm: not moved
        [[170, 0, 0], [120, 0, 0]],  # joint 1 moved 120 mm from its remembered position -> keep
    ], np.float64)
    assert select_frames(poses, 100, nan_unchanged=True).tolist() == [0, 1, 3]
    # without remembering, joint 1 is unknown in the last kept frame (1), so frame 3 is not compared on it
    assert select_frames(poses, 100).tolist() == [0, 1]


def test_buffer_drops_repeated_motion():
    # back and forth between two places: with a buffer of 2 the revisits are near a buffered pose
    poses = _track([0, 200, 0, 200, 0, 400])
    assert select_frames(poses, 100).tolist() == [0, 1, 2, 3, 4, 5]
    assert select_frames(poses, 100, buffer_size=2).tolist() == [0, 1, 5]


def _reference(poses, threshold, buffer_size=1, check_validity=False, nan_unchanged=False):
    """Plain per-frame loop with the documented semantics."""
    remembered, kept = [], []
    for i, pose in enumerate(poses):
        valid = ~np.isnan(pose[:, 0])
        if not valid.any():
            continue
        if not remembered:
            keep = True
        else:
            keep = True
            for ref in remembered:
                both = valid & ~np.isnan(ref[:, 0])
                moved = np.any(np.linalg.norm(pose[both] - ref[both], axis=-1) >= threshold)
                if check_validity and np.any(valid & np.isnan(ref[:, 0])):
                    moved = True
                if not moved:
                    keep = False
                    break
        if keep:
            kept.append(i)
            new = pose.copy()
            if nan_unchanged and remembered:
                new[~valid] = remembered[-1][~valid]
            remembered = (remembered + [new])[-buffer_size:]
    return kept


@pytest.mark.parametrize('options', [{}, {'check_validity': True}, {'nan_unchanged': True},
                                     {'buffer_size': 5}, {'buffer_size': 3, 'check_validity': True,
                                                          'nan_unchanged': True}])
def test_matches_reference_loop_on_random_tracks(options):
    rng = np.random.default_rng(3)
    poses = np.cumsum(rng.normal(0, 20, (600, 5, 3)), axis=0)
    poses[rng.random((600, 5)) < 0.15] = np.nan
    poses[100:110] = np.nan
    expected = _reference(poses, 60, **options)
    assert select_frames(poses, 60, **options).tolist() == expected
    assert sampling._select_blockwise(
        poses, np.any(~np.isnan(poses[..., 0]), 1), expected[0], 60, options.get('buffer_size', 1),
        options.get('check_validity', False), options.get('nan_unchanged', False)).tolist() == expected
    assert select_frames(poses.astype(np.float32), 60, **options).tolist() == expected


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match='shape'):
        select_frames(np.zeros((10, 3)), 100)
    with pytest.raises(ValueError, match='buffer_size'):
        select_frames(np.zeros((10, 2, 3)), 100, buffer_size=0)
