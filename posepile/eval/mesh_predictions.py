"""Reading mesh-benchmark prediction files (body-model parameters or vertices), on top of
posepile.eval.predictions (file reading, PredictionError, unit checks).

Every function raises PredictionError naming the file and the problem in one line.
"""
import numpy as np

from posepile.eval.predictions import PredictionError, _listing, check_pose_scale, read_prediction_arrays

__all__ = ['read_prediction_arrays', 'match_rows', 'float_array', 'optional_strings', 'check_pose_scale',
           'PredictionError', 'restrict_rows']


def _strings(path, arrays, key):
    if key not in arrays:
        raise PredictionError(f'{path}: missing array "{key}" (found {sorted(arrays)})')
    try:
        return [str(x) for x in np.asarray(arrays[key]).ravel()]
    except (ValueError, TypeError) as e:
        raise PredictionError(f'{path}: cannot read "{key}" ({e})') from e


def match_rows(path, arrays, expected, key='image_path', normalize=None):
    """Row index (len(expected),) of each expected name in the file's `key` array; PredictionError for a
    missing array, duplicate, unknown or missing names."""
    names = _strings(path, arrays, key)
    if normalize is not None:
        names = [normalize(n) for n in names]
    row_of, duplicates = {}, []
    for i, name in enumerate(names):
        if name in row_of:
            duplicates.append(name)
        row_of[name] = i
    if duplicates:
        raise PredictionError(f'{path}: duplicate {key} values: {_listing(duplicates)}')
    expected = [str(x) for x in expected]
    expected_set = set(expected)
    unknown = [n for n in names if n not in expected_set]
    if unknown:
        raise PredictionError(f'{path}: {len(unknown)} {key} values not in the benchmark: {_listing(unknown)}')
    missing = [n for n in expected if n not in row_of]
    if missing:
        raise PredictionError(f'{path}: {len(missing)} of {len(expected)} benchmark items have no prediction '
                              f'(the file has {len(names)}): {_listing(missing)}')
    return np.array([row_of[n] for n in expected], np.int64)


def restrict_rows(path, arrays, keep, key='image_path', normalize=None):
    """The arrays with only the rows whose `key` value is in `keep` (a set); arrays of another length are
    kept as they are (e.g. a scalar gender)."""
    names = _strings(path, arrays, key)
    if normalize is not None:
        names = [normalize(n) for n in names]
    rows = np.array([n in keep for n in names], bool)
    n = len(names)
    return {k: (np.asarray(v)[rows] if np.ndim(v) and len(v) == n else v) for k, v in arrays.items()}


def float_array(path, arrays, key, tail_shape, rows=None, unit=None):
    """arrays[key] as float64 with shape (N, *tail_shape) (a (N, prod) flat layout is accepted), its rows
    `rows` picked; PredictionError when missing, mis-shaped or non-finite. tail_shape entries may be a tuple
    of accepted sizes."""
    if key not in arrays:
        raise PredictionError(f'{path}: missing array "{key}" (found {sorted(arrays)})')
    try:
        values = np.asarray(arrays[key], np.float64)
    except (ValueError, TypeError) as e:
        raise PredictionError(f'{path}: cannot read "{key}" as numbers ({e})') from e
    fixed = [t for t in tail_shape if not isinstance(t, tuple)]
    if values.ndim == 2 and len(fixed) == len(tail_shape) and len(tail_shape) > 1 \
            and values.shape[1] == int(np.prod(tail_shape)):
        values = values.reshape(len(values), *tail_shape)
    ok = values.ndim == len(tail_shape) + 1 and all(
        (a in t) if isinstance(t, tuple) else (a == t) for a, t in zip(values.shape[1:], tail_shape))
    if not ok:
        wanted = ', '.join('|'.join(map(str, t)) if isinstance(t, tuple) else str(t) for t in tail_shape)
        raise PredictionError(f'{path}: "{key}" must have shape (N, {wanted}){f" in {unit}" if unit else ""}, '
                              f'got {values.shape}')
    if rows is not None:
        values = values[rows]
    bad = ~np.all(np.isfinite(values.reshape(len(values), -1)), axis=1)
    if np.any(bad):
        raise PredictionError(f'{path}: NaN or inf in "{key}" for {np.count_nonzero(bad)} predictions')
    return values


def optional_strings(path, arrays, key, n_rows, rows=None, allowed=None):
    """A per-row list of strings from arrays[key] (one value or one per row), or None when absent."""
    if key not in arrays:
        return None
    values = _strings(path, arrays, key)
    if len(values) == 1:
        values = values * n_rows
    elif rows is not None:
        values = [values[i] for i in rows]
    if allowed is not None:
        bad = sorted(set(values) - set(allowed))
        if bad:
            raise PredictionError(f'{path}: "{key}" values {bad} not among {list(allowed)}')
    return values
