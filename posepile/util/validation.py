"""Checks every reader applies to what it read: finite values in plausible ranges (units!) and counts that
match what a header promises. Failures are InputErrors naming the file and the problem in one line."""
import numpy as np

from posepile.util.errors import InputError

# No human pose coordinate lies 1 km from a capture's origin; larger values mean wrong units or corruption.
MAX_ABS_COORD_MM = 1e6


def check_coords_mm(coords, path, what='joint coordinates', max_abs_mm=MAX_ABS_COORD_MM):
    """Raise InputError if `coords` (mm, NaN = missing allowed) hold inf or values beyond max_abs_mm."""
    coords = np.asarray(coords, np.float64)
    if np.isinf(coords).any():
        index = np.unravel_index(np.flatnonzero(np.isinf(coords))[0], coords.shape)
        raise InputError(f'{path}: infinite value in the {what} at index {tuple(int(i) for i in index)}')
    finite = coords[np.isfinite(coords)]
    if finite.size and np.abs(finite).max() > max_abs_mm:
        index = np.unravel_index(np.nanargmax(np.abs(np.where(np.isfinite(coords), coords, 0))), coords.shape)
        raise InputError(f'{path}: implausible {what}: {np.abs(finite).max():.3g} mm at index '
                         f'{tuple(int(i) for i in index)} (more than {max_abs_mm:.0e} mm from the origin; '
                         'wrong units or a corrupt file?)')
    return coords


def check_count(actual, promised, path, what):
    """Raise InputError when a file holds fewer (or more) items than its header promises."""
    if int(actual) != int(promised):
        raise InputError(f'{path}: {actual} {what}, but its header promises {promised} (truncated or corrupt '
                         'file?)')

