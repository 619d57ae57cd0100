"""Reading and validating prediction files.

Format: an .npz with `image_path` (N,) strings (the dataset's image paths, as stored in the examples) and
one coordinate array (N, J, 3) in mm: `coords3d_pred_world` (world frame) or `coords3d_pred_cam` (each
example's camera frame; converted to world with the example's camera when cameras are given).
"""
import numpy as np

from posepile.util.fileio import atomic_write

COORD_KEYS = ('coords3d_pred_world', 'coords3d_pred_cam')
_MAX_LISTED = 5


class PredictionError(ValueError):
    pass


def _listing(items):
    items = list(items)
    shown = ', '.join(repr(str(x)) for x in items[:_MAX_LISTED])
    return shown + (f' ... ({len(items)} in all)' if len(items) > _MAX_LISTED else '')


def save_predictions(path, image_paths, coords, key='coords3d_pred_world'):
    """Write a predictions .npz atomically."""
    coords = np.asarray(coords, np.float32)
    with atomic_write(path, 'wb') as f:
        np.savez(f, image_path=np.array([str(p) for p in image_paths]), **{key: coords})


def load_predictions(path, expected_image_paths, n_joints, coord_key=COORD_KEYS, cameras=None,
                     normalize_path=None):
    """{image_path: (J, 3) float64 world mm}, after checking the file against the expected examples.

    Raises PredictionError naming the file and the first offenders for: unreadable file, missing keys,
    wrong shapes or joint count, duplicate / unknown / missing image paths, NaN or inf values, and values
    that look like metres instead of millimetres. With `cameras` (aligned with expected_image_paths),
    camera-frame predictions are converted to world coordinates, else returned as they are.
    n_joints: an int or a tuple of accepted joint counts.
    normalize_path: optional function applied to the file's image paths before matching.
    """
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise PredictionError(f'{path}: cannot read predictions as .npz ({e})') from e
    with data:
        keys = list(data.keys())
        if 'image_path' not in keys:
            raise PredictionError(f'{path}: missing array "image_path" (found {keys})')
        keys_wanted = (coord_key,) if isinstance(coord_key, str) else tuple(coord_key)
        present = [k for k in keys_wanted if k in keys]
        if not present:
            raise PredictionError(f'{path}: no coordinate array; expected one of {list(keys_wanted)}, '
                                  f'found {keys}')
        key = present[0]
        image_paths = [str(p) for p in data['image_path']]
        if normalize_path is not None:
            image_paths = [normalize_path(p) for p in image_paths]
        coords = np.asarray(data[key], np.float64)
    if coords.ndim != 3 or coords.shape[2] != 3 or coords.shape[0] != len(image_paths):
        raise PredictionError(f'{path}: "{key}" must have shape ({len(image_paths)}, joints, 3), '
                              f'got {coords.shape}')
    allowed_joints = (n_joints,) if np.isscalar(n_joints) else tuple(n_joints)
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
        raise PredictionError(f'{path}: image paths not in the benchmark: {_listing(unknown)}')
    missing = [p for p in expected if p not in seen]
    if missing:
        raise PredictionError(f'{path}: {len(missing)} of {len(expected)} benchmark images have no '
                              f'prediction: {_listing(missing)}')
    bad = ~np.all(np.isfinite(coords), axis=(1, 2))
    if np.any(bad):
        raise PredictionError(f'{path}: NaN or inf values in the predictions for '
                              f'{_listing(np.array(image_paths)[bad])}')
    # A person is about 1700 mm tall: a pose spread below 10 mm means the file is in metres.
    spread = np.median(np.max(coords, axis=1) - np.min(coords, axis=1))
    if spread < 10:
        raise PredictionError(f'{path}: pose extents are about {spread:.3g} units; predictions must be in '
                              'millimetres (metres given? multiply by 1000)')
    result = dict(zip(image_paths, coords))
    if key == 'coords3d_pred_cam' and cameras is not None:  # else the caller uses camera coordinates
        for p, camera in zip(expected, cameras):
            result[p] = camera.camera_to_world(result[p])
    return result
