import warnings

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


def test_first_frame_is_remembered_even_when_empty():
    assert select_frames(np.zeros((0, 17, 3)), 100).tolist() == []
    assert select_frames(_track([7.0]), 100).tolist() == [0]
    assert select_frames(_track([np.nan]), 100).tolist() == []
    # with the defaults a NaN distance counts as moved, even for a frame without any valid joint
    assert select_frames(_track([np.nan, np.nan]), 100).tolist() == [1]
    assert select_frames(_track([np.nan, 5, 50, 500]), 100).tolist() == [1, 3]
    # ... and with nan_unchanged it never counts, so nothing after an empty first frame is kept
    assert select_frames(_track([np.nan, 5, 50, 500]), 100, nan_unchanged=True).tolist() == []
    assert select_frames(_track([np.nan, 5, 50, 500]), 100, check_validity=True,
                         nan_unchanged=True).tolist() == [1, 3]


def test_v1_defaults_keep_frames_with_a_missing_joint():
    # issue 21: a still two-joint track whose joint 1 drops out for one frame
    poses = np.zeros((3, 2, 3))
    poses[1, 1] = np.nan
    assert select_frames(poses, 100).tolist() == [0, 1, 2]
    assert select_frames(poses, 100, nan_unchanged=True).tolist() == [0]
    # check_validity compares only the joints valid now, so the dropout costs nothing
    assert select_frames(poses, 100, check_validity=True).tolist() == [0]
    # one joint missing throughout: the original keeps every frame
    walk = np.cumsum(np.random.default_rng(0).normal(0, 5, (300, 3, 3)), axis=0)
    walk[:, 2] = np.nan
    assert len(select_frames(walk, 100)) == 300
    assert len(select_frames(walk, 100, nan_unchanged=True)) < 300


def test_v2_buffer_fills_missing_joints_from_the_last_kept_pose():
    # issue 21: track (joint 0, joint 1) in x, threshold 100 mm, buffer 100, check_validity + nan_unchanged
    nan = np.nan
    x = np.array([[0, nan], [0, 0], [200, 0], [0, 500]], np.float64)
    poses = np.stack([x, np.zeros_like(x), np.zeros_like(x)], -1)
    options = dict(buffer_size=100, check_validity=True, nan_unchanged=True)
    assert select_frames(poses, 100, **options).tolist() == [0, 1, 2]
    assert sampling._select_numpy(poses, 100, 100, True, True).tolist() == [0, 1, 2]


def test_nan_unchanged_remembers_last_known_positions():
    nan = np.nan
    poses = np.array([
        [[0, 0, 0], [0, 0, 0]],
        [[150, 0, 0], [nan, nan, nan]],  # kept (joint 0 moved); joint 1 unknown now
        [[160, 0, 0], [50, 0, 0]],  # joint 1 vs remembered 0 -> 50 mm: not moved
        [[170, 0, 0], [120, 0, 0]],  # joint 1 moved 120 mm from its remembered position -> keep
    ], np.float64)
    assert select_frames(poses, 100, nan_unchanged=True).tolist() == [0, 1, 3]
    # without it the remembered joint 1 is NaN after frame 1, a NaN distance counts as moved (frame 2 kept);
    # frame 3 is then within 100 mm of frame 2 in both joints
    assert select_frames(poses, 100).tolist() == [0, 1, 2]


def test_buffer_drops_repeated_motion():
    # back and forth between two places: with a buffer of 2 the revisits are near a buffered pose
    poses = _track([0, 200, 0, 200, 0, 400])
    assert select_frames(poses, 100).tolist() == [0, 1, 2, 3, 4, 5]
    assert select_frames(poses, 100, buffer_size=2).tolist() == [0, 1, 5]


class _OriginalSampler:
    """The original samplers' rules, re-stated one frame at a time from their documented semantics
    (AdaptivePoseSampler2; with buffer 1 it is AdaptivePoseSampler): a ring buffer of `buffer_size` slots
    starting all-NaN, filled with the kept poses (missing coordinates copied from the previous slot when
    assume_nan_unchanged)."""

    def __init__(self, threshold, check_validity, assume_nan_unchanged, buffer_size):
        self.threshold = threshold
        self.check_validity = check_validity
        self.assume_nan_unchanged = assume_nan_unchanged
        self.slots = None
        self.size = buffer_size
        self.next_slot = 0
        self.n_filled = 0

    def _remember(self, pose):
        if self.slots is None:
            self.slots = np.full((self.size,) + pose.shape, np.nan)
        previous = self.slots[(self.next_slot - 1) % self.size].copy()
        new = pose.copy()
        if self.assume_nan_unchanged:
            new[np.isnan(pose)] = previous[np.isnan(pose)]
        self.slots[self.next_slot] = new
        self.next_slot = (self.next_slot + 1) % self.size
        self.n_filled = min(self.n_filled + 1, self.size)

    def keep(self, pose):
        joint_valid = ~np.isnan(pose).any(axis=-1)
        if self.slots is None:
            self._remember(pose)
            return bool(joint_valid.any())
        compared = np.ones(len(pose), bool)
        if self.check_validity:
            last = self.slots[(self.next_slot - 1) % self.size]
            if np.any(joint_valid & np.isnan(last).any(axis=-1)):
                self._remember(pose)
                return True
            compared = joint_valid
        # slots never filled are all-NaN: in the original they never decide (all-NaN rows are ignored by
        # nanmin/nanmax, and all(NaN < t) is False), so only the filled ones are compared here (speed)
        filled = self.slots[:self.n_filled]
        change = np.linalg.norm(pose[compared] - filled[:, compared], axis=-1)  # (slots, joints)
        with np.errstate(invalid='ignore'), warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN slices
            if self.assume_nan_unchanged:
                # min over slots of (max over joints), NaN ignored; all-NaN -> not changed
                changed = change.size > 0 and np.nanmin(np.nanmax(change, axis=1)) >= self.threshold
            else:
                changed = not np.any(np.all(change < self.threshold, axis=1))
        if changed:
            self._remember(pose)
        return changed


def _original(poses, threshold, buffer_size=1, check_validity=False, nan_unchanged=False):
    sampler = _OriginalSampler(threshold, check_validity, nan_unchanged, buffer_size)
    return [i for i, pose in enumerate(poses) if sampler.keep(pose)]


def _random_walk_with_gaps(n_frames, n_joints, seed, p_missing):
    rng = np.random.default_rng(seed)
    poses = np.cumsum(rng.normal(0, 25, (n_frames, n_joints, 3)), axis=0)
    poses[rng.random((n_frames, n_joints)) < p_missing] = np.nan
    poses[n_frames // 3:n_frames // 3 + 7] = np.nan  # a stretch without anyone
    return poses


def test_issue_random_walk_counts():
    """The numbers of issue 21 come from the original on the issue author's walk; on ours the relation holds:
    the defaults keep far more frames than ignoring missing joints."""
    poses = _random_walk_with_gaps(3000, 17, 0, 0.02)
    kept_default = len(select_frames(poses, 100))
    kept_ignoring = len(select_frames(poses, 100, nan_unchanged=True))
    assert kept_default == len(_original(poses, 100)) and kept_default > 1.3 * kept_ignoring


@pytest.mark.parametrize('buffer_size', [1, 100, 500, 10_000])
@pytest.mark.parametrize('check_validity', [False, True])
@pytest.mark.parametrize('nan_unchanged', [False, True])
def test_matches_the_original_rules_on_random_walks(buffer_size, check_validity, nan_unchanged):
    for seed, p_missing in ((buffer_size, 0.05), (buffer_size + 1, 0.4)):
        poses = _random_walk_with_gaps(700, 4, seed, p_missing)
        options = dict(buffer_size=buffer_size, check_validity=check_validity, nan_unchanged=nan_unchanged)
        expected = _original(poses, 60, **options)
        assert select_frames(poses, 60, **options).tolist() == expected
        assert sampling._select_numpy(poses, 60, min(buffer_size, len(poses)), check_validity,
                                      nan_unchanged).tolist() == expected
        assert select_frames(poses.astype(np.float32), 60, **options).tolist() == \
            _original(poses.astype(np.float32).astype(np.float64), 60, **options)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match='shape'):
        select_frames(np.zeros((10, 3)), 100)
    with pytest.raises(ValueError, match='buffer_size'):
        select_frames(np.zeros((10, 2, 3)), 100, buffer_size=0)
