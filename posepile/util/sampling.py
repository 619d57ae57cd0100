"""Motion-adaptive frame selection: drop near-duplicate consecutive poses.

`select_frames(poses, threshold_mm)` keeps a frame when some joint, valid in both poses, moved at least
`threshold_mm` since the last kept frame. The first frame with any valid joint is kept; frames without any
valid joint are never kept.

Options (as in the original's samplers):
- `buffer_size=N`: compare against the last N kept poses; a frame is kept only if it differs (some joint
  >= threshold) from EVERY one of them, which removes repeated motions (e.g. walking on the spot).
- `check_validity=True`: also keep a frame where a joint is valid that was invalid in the compared pose.
- `nan_unchanged=True`: a joint that is NaN in a kept frame keeps its last known position in the
  remembered pose (instead of being unknown there).

Deliberate difference from the original PosePile: there a joint invalid in either pose counted as "moved",
so a track with one permanently missing joint kept every frame. Here only joints valid in both poses are
compared, and `check_validity` is the explicit way to react to joints (re)appearing.

Speed: the selection is inherently sequential (each decision depends on the previous ones), so the loop is
compiled with numba (about 10-50 M poses/s); without numba a vectorised numpy version gives the same
result more slowly.
"""
import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency, this keeps the module importable
    numba = None


def _select_loop(poses, any_valid, first, threshold_sq, buffer_size, check_validity, nan_unchanged):
    n, n_joints, n_dims = poses.shape
    kept = np.empty(n, np.int64)
    kept[0] = first
    n_kept = 1
    buffer = np.empty((buffer_size, n_joints, n_dims), np.float64)
    buffer[0] = poses[first]
    n_buffered = 1
    newest = 0
    for i in range(first + 1, n):
        if not any_valid[i]:
            continue
        keep = True
        for r in range(n_buffered):
            ref = buffer[r]
            differs = False
            for j in range(n_joints):
                now_valid = not np.isnan(poses[i, j, 0])
                before_valid = not np.isnan(ref[j, 0])
                if now_valid and before_valid:
                    d = 0.0
                    for c in range(n_dims):
                        e = poses[i, j, c] - ref[j, c]
                        d += e * e
                    if d >= threshold_sq:
                        differs = True
                        break
                elif check_validity and now_valid and not before_valid:
                    differs = True
                    break
            if not differs:
                keep = False
                break
        if keep:
            kept[n_kept] = i
            n_kept += 1
            slot = (newest + 1) % buffer_size
            for j in range(n_joints):
                if nan_unchanged and np.isnan(poses[i, j, 0]):
                    buffer[slot, j] = buffer[newest, j]
                else:
                    buffer[slot, j] = poses[i, j]
            newest = slot
            if n_buffered < buffer_size:
                n_buffered += 1
    return kept[:n_kept]


if numba is not None:
    _select_loop_compiled = numba.njit(cache=True, nogil=True)(_select_loop)
else:  # pragma: no cover
    _select_loop_compiled = None


def select_frames(poses, threshold_mm, buffer_size=1, check_validity=False, nan_unchanged=False):
    """Indices (int64, ascending) of the frames to keep from a (N, J, 3) track (mm, NaN = invalid)."""
    poses = np.asarray(poses)
    poses = np.ascontiguousarray(poses, poses.dtype if poses.dtype in (np.float32, np.float64) else np.float64)
    if poses.ndim != 3 or poses.shape[-1] not in (2, 3):
        raise ValueError(f'poses must have shape (N, J, 3) or (N, J, 2), got {poses.shape}')
    if buffer_size < 1:
        raise ValueError(f'buffer_size must be >= 1, got {buffer_size}')
    if len(poses) == 0:
        return np.zeros(0, np.int64)
    any_valid = np.any(~np.isnan(poses[..., 0]), axis=1)
    valid_frames = np.flatnonzero(any_valid)
    if valid_frames.size == 0:
        return np.zeros(0, np.int64)
    first = int(valid_frames[0])
    if _select_loop_compiled is not None:
        return _select_loop_compiled(poses, any_valid, first, float(threshold_mm) ** 2, int(buffer_size),
                                     bool(check_validity), bool(nan_unchanged))
    return _select_blockwise(poses, any_valid, first, threshold_mm, buffer_size, check_validity,
                             nan_unchanged)


def _keep_mask(candidates, reference, threshold_mm, check_validity):
    """Bool (..., M): candidates (M, J, 3) vs reference broadcastable (..., M|1, J, 3)."""
    diff = candidates - reference
    dist_sq = np.einsum('...jc,...jc->...j', diff, diff)
    with np.errstate(invalid='ignore'):
        moved = np.any(dist_sq >= threshold_mm * threshold_mm, axis=-1)  # NaN compares False
    if check_validity:
        valid_now = ~np.isnan(candidates[..., 0])
        valid_before = ~np.isnan(reference[..., 0])
        moved |= np.any(valid_now & ~valid_before, axis=-1)
    return moved


def _select_blockwise(poses, any_valid, first, threshold_mm, buffer_size, check_validity, nan_unchanged):
    """Numpy fallback: scans blocks of frames vectorised against the remembered poses."""
    n = len(poses)
    remembered = [poses[first].copy()]
    kept = [first]
    i = first + 1
    block = 16
    while i < n:
        references = np.stack(remembered)[:, np.newaxis]  # (R, 1, J, 3)
        candidates = poses[i:i + block]
        keep = np.all(_keep_mask(candidates, references, threshold_mm, check_validity), axis=0)
        keep &= any_valid[i:i + block]
        hits = np.flatnonzero(keep)
        if hits.size == 0:
            i += len(candidates)
            block = min(block * 2, 65536)
            continue
        k = i + int(hits[0])
        kept.append(k)
        new = poses[k].copy()
        if nan_unchanged:
            missing = np.isnan(new[:, 0])
            new[missing] = remembered[-1][missing]
        remembered.append(new)
        if len(remembered) > buffer_size:
            remembered.pop(0)
        i = k + 1
        block = max(16, 2 * int(hits[0]) + 2)
    return np.asarray(kept, np.int64)
