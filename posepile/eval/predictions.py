"""Reading and validating prediction files.

Format: an .npz with `image_path` (N,) strings (the dataset's image paths, as stored in the examples) and
one coordinate array (N, J, 3) in millimetres: `coords3d_pred_world` (world frame) or `coords3d_pred_cam`
(each example's camera frame; converted to world with the example's camera when cameras are given).

Every benchmark's eval reads its prediction file through this module (`read_prediction_arrays`, then
`load_predictions`), so a missing, truncated or corrupt file ends as one PredictionError naming it, never
as a zipfile/zlib traceback.
"""
import os
import warnings

import numpy as np

from posepile.util.errors import InputError
from posepile.util.fileio import atomic_write, load_npz

COORD_KEYS = ('coords3d_pred_world', 'coords3d_pred_cam')
_MAX_LISTED = 5
# A person is roughly 1700 mm tall, so a typical pose spans hundreds of mm along some axis. A median extent
# below this many units means the file is in metres (a metre-scale pose spans at most about 2 units).
_MIN_POSE_EXTENT_MM = 10.0
_MAX_POSE_EXTENT_MM = 10_000.0  # no person spans 10 m: a larger median means a unit error


class PredictionError(InputError):
    """A prediction file does not match the benchmark; the message names the file and the offenders."""


def read_prediction_arrays(path):
    """{array name: ndarray} of a predictions .npz, every array read in full here, so that a missing,
    truncated or corrupt file (bad CRC, damaged compressed data, pickled objects) raises PredictionError
    naming the file instead of failing later inside numpy or zipfile."""
    if not os.path.isfile(path):
        raise PredictionError(f'{path}: prediction file not found')
    return load_npz(path, PredictionError)


def _listing(items):
    items = list(dict.fromkeys(str(x) for x in items))  # unique, in order of appearance
    shown = ', '.join(repr(x) for x in items[:_MAX_LISTED])
    return shown + (f' ... ({len(items)} in all)' if len(items) > _MAX_LISTED else '')


def _pose_extents(coords):
    """The largest per-axis span of each pose (N,), ignoring NaN joints (NaN for an all-NaN pose)."""
    with np.errstate(invalid='ignore'), warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        return np.nanmax(np.nanmax(coords, axis=1) - np.nanmin(coords, axis=1), axis=-1)


def check_pose_scale(coords, path, names=None, unit='millimetres', factor_to_mm=1):
    """Raise PredictionError when the typical pose extent is implausible for a human in `unit`.

    coords (N, J, 3) as read from the file; `factor_to_mm` converts them to mm (1000 for files in metres).
    A person spans roughly 200-2500 mm along some axis, so a median extent below 10 mm (metres given where
    millimetres are expected) or above 10 m (millimetres given where metres are expected, or worse) is
    refused, naming the expected unit and the first offending poses.
    """
    coords = np.asarray(coords, np.float64)
    if not len(coords):
        return
    extents_mm = _pose_extents(coords) * factor_to_mm
    if not np.any(np.isfinite(extents_mm)):
        raise PredictionError(f'{path}: every pose has all joints at one point or missing')
    median_mm = float(np.nanmedian(extents_mm))
    names = np.arange(len(coords)).astype(str) if names is None else np.asarray(names)
    if median_mm < _MIN_POSE_EXTENT_MM:
        detail = ('most poses have all joints at one point' if median_mm == 0 else
                  f'poses span only about {median_mm / factor_to_mm:.3g} units; predictions must be in {unit}'
                  f'{" (metres given? multiply by 1000)" if unit == "millimetres" else ""}')
        raise PredictionError(f'{path}: {detail}. For example: {_listing(names[extents_mm < _MIN_POSE_EXTENT_MM])}')
    if median_mm > _MAX_POSE_EXTENT_MM:
        hint = ' (millimetres given? divide by 1000)' if unit == 'metres' else ''
        raise PredictionError(f'{path}: poses span about {median_mm / factor_to_mm:.3g} units, implausible for a '
                              f'person in {unit}{hint}. For example: '
                              f'{_listing(names[extents_mm > _MAX_POSE_EXTENT_MM])}')


def save_predictions(path, image_paths, coords, key='coords3d_pred_world'):
    """Write a predictions .npz atomically: `image_path` strings and `key` coords (N, J, 3) in mm."""
    if key not in COORD_KEYS:
        raise ValueError(f'{path}: prediction key must be one of {COORD_KEYS}, got {key!r}')
    coords = np.asarray(coords, np.float32)
    image_paths = np.array([str(p) for p in image_paths])
    if coords.ndim != 3 or coords.shape[2] != 3 or len(coords) != len(image_paths):
        raise ValueError(f'{path}: coords must have shape ({len(image_paths)}, joints, 3), '
                         f'got {coords.shape}')
    with atomic_write(path, 'wb') as f:
        np.savez(f, image_path=image_paths, **{key: coords})


def load_predictions(path, expected_image_paths, n_joints, cameras=None, normalize_path=None,
                     coord_key=COORD_KEYS, allow_nan=False, arrays=None):
    """{image_path: (J, 3) float64 array in mm} after checking the file against the benchmark examples.

    expected_image_paths: the benchmark's image paths; every one needs exactly one prediction.
    n_joints: an int or a tuple of accepted joint counts.
    cameras: optional cameras aligned with expected_image_paths; camera-frame predictions
        (`coords3d_pred_cam`) are then converted to world coordinates, else returned as they are.
    normalize_path: optional function applied to the file's image paths before matching.
    coord_key: the coordinate array name, or names tried in order.
    allow_nan: accept NaN joints (benchmarks whose official script scores them as misses); inf is never
        accepted.
    arrays: the file's arrays when the caller already read them with read_prediction_arrays(path).

    Raises PredictionError naming the file and the first offenders for: unreadable file, missing arrays,
    wrong shapes or joint count, duplicate / unknown / missing image paths, NaN or inf values, and values
    that look like metres instead of millimetres.
    """
    data = read_prediction_arrays(path) if arrays is None else arrays
    keys = list(data.keys())
    if 'image_path' not in keys:
        raise PredictionError(f'{path}: missing array "image_path" (found {keys})')
    keys_wanted = (coord_key,) if isinstance(coord_key, str) else tuple(coord_key)
    present = [k for k in keys_wanted if k in keys]
    if not present:
        raise PredictionError(f'{path}: no coordinate array; expected one of {list(keys_wanted)}, '
                              f'found {keys}')
    key = present[0]
    try:
        image_paths = [str(p) for p in np.asarray(data['image_path']).ravel()]
        coords = np.asarray(data[key], np.float64)
    except (ValueError, TypeError) as e:
        raise PredictionError(f'{path}: cannot read "image_path" / "{key}" ({e})') from e
    if normalize_path is not None:
        image_paths = [normalize_path(p) for p in image_paths]
    if coords.ndim != 3 or coords.shape[2] != 3 or coords.shape[0] != len(image_paths):
        raise PredictionError(f'{path}: "{key}" must have shape ({len(image_paths)}, joints, 3) to match '
                              f'{len(image_paths)} image paths, got {coords.shape}')
    allowed_joints = (int(n_joints),) if np.isscalar(n_joints) else tuple(n_joints)
    if coords.shape[1] not in allowed_joints:
        raise PredictionError(f'{path}: predictions have {coords.shape[1]} joints, the benchmark takes '
                              f'{" or ".join(map(str, allowed_joints))}')

    seen, duplicates = set(), []
    for p in image_paths:
        if p in seen:
            duplicates.append(p)
        seen.add(p)
    if duplicates:
        raise PredictionError(f'{path}: duplicate image paths: {_listing(duplicates)}')
    expected = [str(p) for p in expected_image_paths]
    expected_set = set(expected)
    unknown = [p for p in image_paths if p not in expected_set]
    if unknown:
        raise PredictionError(f'{path}: {len(unknown)} image paths not in the benchmark: {_listing(unknown)}')
    missing = [p for p in expected if p not in seen]
    if missing:
        raise PredictionError(f'{path}: {len(missing)} of {len(expected)} benchmark images have no '
                              f'prediction (the file has {len(image_paths)}): {_listing(missing)}')

    bad = ~np.all(np.isfinite(coords) | (allow_nan & np.isnan(coords)), axis=(1, 2))
    if np.any(bad):
        what = 'inf' if allow_nan else 'NaN or inf'
        raise PredictionError(f'{path}: {what} values in {np.count_nonzero(bad)} predictions: '
                              f'{_listing(np.array(image_paths)[bad])}')
    check_pose_scale(coords, path, image_paths)

    result = dict(zip(image_paths, coords))
    if key == 'coords3d_pred_cam' and cameras is not None:  # else the caller uses camera coordinates
        cameras = list(cameras)
        if len(cameras) != len(expected):
            raise ValueError(f'{path}: got {len(cameras)} cameras for {len(expected)} benchmark images')
        for p, camera in zip(expected, cameras):
            result[p] = camera.camera_to_world(result[p])
    return result
