"""Motion-adaptive frame selection: drop near-duplicate poses of a track, exactly as the paper's samplers.

`select_frames(poses, threshold_mm, buffer_size, check_validity, nan_unchanged)` keeps the frames that the
original PosePile samplers keep with the same settings (`AdaptivePoseSampler` for buffer_size 1,
`AdaptivePoseSampler2` otherwise; the two agree at buffer size 1). The rules, frame by frame:

- The first frame is remembered whatever it holds, and kept if any of its joints is valid. Every later
  frame is compared with the remembered poses: the last `buffer_size` kept ones (fewer at the start).
- `check_validity`: a frame in which some joint is valid that is missing (NaN) in the last remembered pose
  is kept. Otherwise only the joints valid NOW are compared (a frame with none of them is skipped).
- The distance of a joint is the Euclidean distance to the remembered position; it is NaN where either is
  NaN. Then
  - `nan_unchanged=False` (the original's default): a NaN distance counts as "moved". A frame is skipped iff
    some remembered pose has EVERY compared joint within the threshold (< threshold_mm), i.e. a frame with
    a missing joint is kept (unless check_validity leaves that joint out of the comparison).
  - `nan_unchanged=True`: NaN distances are ignored. A frame is kept iff, for every remembered pose that
    shares a valid joint with it, some joint moved >= threshold_mm (the original's
    min over poses of max over joints >= threshold); a frame sharing no valid joint with any remembered
    pose is skipped. A kept pose is remembered with its missing coordinates filled from the previously
    remembered pose.

Choosing the behaviour for missing joints: the defaults reproduce the paper's dataset sizes, where a
track with a joint that is often missing keeps nearly every frame. `nan_unchanged=True` ignores missing
joints instead (usually the better choice for a new dataset with dropouts), and `check_validity=True` makes
a joint's reappearance a reason to keep a frame.

One detail is not reproduced: the original keeps its ring buffer in float32, so decisions within float32
rounding (~1e-4 mm at metre scale) of the threshold may differ.

Speed: the selection is sequential (each decision depends on the previous ones), so the loop is compiled
with numba; without numba a per-frame numpy version gives the same result more slowly.
"""
import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency, this keeps the module importable
    numba = None


def _select_loop(poses, threshold_sq, buffer_size, check_validity, nan_unchanged):
    n, n_joints, n_dims = poses.shape
    kept = np.empty(n, np.int64)
    n_kept = 0
    buffer = np.full((buffer_size, n_joints, n_dims), np.nan)
    joint_valid = np.empty(n_joints, np.bool_)
    newest = -1
    n_buffered = 0
    for i in range(n):
        n_valid_now = 0
        for j in range(n_joints):
            valid = True
            for c in range(n_dims):
                if np.isnan(poses[i, j, c]):
                    valid = False
            joint_valid[j] = valid
            n_valid_now += valid

        keep = False
        if n_buffered == 0:
            keep = n_valid_now > 0
        elif check_validity and _any_newly_valid(poses[i], joint_valid, buffer[newest]):
            keep = True
        elif check_validity and n_valid_now == 0:
            keep = False  # nothing to compare (the original's empty comparison also skips)
        elif nan_unchanged:
            # (the original also compares against unfilled, all-NaN buffer slots; those never decide)
            # keep iff every remembered pose with a finite comparison has some joint moved >= threshold
            keep = False
            for k in range(n_buffered):
                r = (newest - k) % buffer_size  # newest first: the likeliest to end the search early
                row_finite = False
                row_moved = False
                for j in range(n_joints):
                    if check_validity and not joint_valid[j]:
                        continue
                    d = _dist_sq(poses[i, j], buffer[r, j])
                    if not np.isnan(d):
                        row_finite = True
                        if d >= threshold_sq:
                            row_moved = True
                            break
                if row_finite:
                    if not row_moved:
                        keep = False
                        break
                    keep = True
        else:
            # skip iff some remembered pose has every compared joint within the threshold (NaN = moved)
            keep = True
            for k in range(n_buffered):
                r = (newest - k) % buffer_size
                all_within = True
                for j in range(n_joints):
                    if check_validity and not joint_valid[j]:
                        continue
                    d = _dist_sq(poses[i, j], buffer[r, j])
                    if not d < threshold_sq:
                        all_within = False
                        break
                if all_within:
                    keep = False
                    break

        if keep or n_buffered == 0:
            slot = (newest + 1) % buffer_size
            for j in range(n_joints):
                for c in range(n_dims):
                    value = poses[i, j, c]
                    if nan_unchanged and np.isnan(value) and newest >= 0:
                        value = buffer[newest, j, c]
                    buffer[slot, j, c] = value
            newest = slot
            if n_buffered < buffer_size:
                n_buffered += 1
        if keep:
            kept[n_kept] = i
            n_kept += 1
    return kept[:n_kept]


def _dist_sq(a, b):
    d = 0.0
    for c in range(a.shape[0]):
        e = np.float64(a[c]) - np.float64(b[c])
        d += e * e
    return d


def _any_newly_valid(pose, joint_valid, last):
    for j in range(pose.shape[0]):
        if joint_valid[j]:
            for c in range(last.shape[1]):
                if np.isnan(last[j, c]):
                    return True
    return False


if numba is not None:
    _jit = numba.njit(cache=True, nogil=True)
    _dist_sq = _jit(_dist_sq)
    _any_newly_valid = _jit(_any_newly_valid)
    _select_loop_compiled = _jit(_select_loop)
else:  # pragma: no cover
    _select_loop_compiled = None


def select_frames(poses, threshold_mm, buffer_size=1, check_validity=False, nan_unchanged=False):
    """Indices (int64, ascending) of the frames to keep from a (N, J, 3) (or (N, J, 2)) track in mm, NaN =
    missing. The rules are in the module docstring; the flags mirror the original samplers'
    (`nan_unchanged` is its `assume_nan_unchanged`)."""
    poses = np.asarray(poses)
    if poses.ndim != 3 or poses.shape[-1] not in (2, 3):
        raise ValueError(f'poses must have shape (N, J, 3) or (N, J, 2), got {poses.shape}')
    if buffer_size < 1:
        raise ValueError(f'buffer_size must be >= 1, got {buffer_size}')
    # float32 stays float32 (no copy of a large track); distances are computed in float64 either way
    poses = np.ascontiguousarray(poses, poses.dtype if poses.dtype in (np.float32, np.float64) else np.float64)
    if len(poses) == 0:
        return np.zeros(0, np.int64)
    buffer_size = int(min(buffer_size, len(poses)))  # more slots than frames are never filled
    if _select_loop_compiled is not None:
        return _select_loop_compiled(poses, float(threshold_mm) ** 2, buffer_size, bool(check_validity),
                                     bool(nan_unchanged))
    return _select_numpy(poses, threshold_mm, buffer_size, check_validity, nan_unchanged)


def _select_numpy(poses, threshold_mm, buffer_size, check_validity, nan_unchanged):
    """Numpy fallback with the same rules: one frame at a time, vectorised over remembered poses and joints."""
    buffer = np.full((buffer_size,) + poses.shape[1:], np.nan)
    newest, n_buffered, kept = -1, 0, []
    threshold_sq = float(threshold_mm) ** 2
    for i, pose in enumerate(poses):
        valid = ~np.any(np.isnan(pose), axis=-1)
        if n_buffered == 0:
            keep = bool(valid.any())
        elif check_validity and np.any(valid & np.any(np.isnan(buffer[newest]), axis=-1)):
            keep = True
        elif check_validity and not valid.any():
            keep = False
        else:
            compared = valid if check_validity else slice(None)
            dist_sq = np.sum((pose[compared] - buffer[:n_buffered, compared]) ** 2, axis=-1)  # (R, J')
            with np.errstate(invalid='ignore'):
                if nan_unchanged:
                    finite = ~np.isnan(dist_sq)
                    row_finite = finite.any(axis=1)
                    row_moved = np.any(finite & (dist_sq >= threshold_sq), axis=1)
                    keep = bool(row_finite.any() and np.all(row_moved[row_finite]))
                else:
                    keep = not np.any(np.all(dist_sq < threshold_sq, axis=1))
        if keep or n_buffered == 0:
            slot = (newest + 1) % buffer_size
            new = pose.copy()
            if nan_unchanged and newest >= 0:
                missing = np.isnan(new)
                new[missing] = buffer[newest][missing]
            buffer[slot] = new
            newest = slot
            n_buffered = min(n_buffered + 1, buffer_size)
        if keep:
            kept.append(i)
    return np.asarray(kept, np.int64)
