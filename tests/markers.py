"""Measuring where rendered dots ended up in a crop (for the recipes' end-to-end tests)."""
import numpy as np

from posepile.util import improc


def dot_errors(crop_path, projected, radius, background=45.0, neighbours=None, separation=4):
    """Distances (px) between each projected point and the intensity centroid of the dot around it.

    Points near the crop border, NaN points, and points with another dot (of `neighbours`, default the
    other projected points) closer than `separation * radius` are skipped: their centroid would be biased.
    """
    crop = improc.imread_rgb(crop_path)[..., 1].astype(np.float64) - background
    projected = np.asarray(projected, np.float64)
    valid = np.flatnonzero(np.all(np.isfinite(projected), axis=1))
    dots = projected[valid] if neighbours is None else np.asarray(neighbours, np.float64)
    errors = []
    for j in valid:
        u, v = projected[j]
        distances = np.linalg.norm(dots - [u, v], axis=1)
        distances = distances[distances > 1e-3]  # not the dot itself
        if not (radius + 2 <= u < crop.shape[1] - radius - 2 and radius + 2 <= v < crop.shape[0] - radius - 2) or \
                (distances.size and distances.min() < separation * radius):
            continue
        y0, x0 = int(v) - radius, int(u) - radius
        patch = np.clip(crop[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1], 0, None)
        ys, xs = np.mgrid[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1]
        errors.append(np.hypot((xs * patch).sum() / patch.sum() - u, (ys * patch).sum() / patch.sum() - v))
    return errors
