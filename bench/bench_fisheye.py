"""Speed and accuracy of the fisheye lens models: `python bench/bench_fisheye.py [n_points]`.

Prints seconds for world_to_image / image_to_rays / image_to_camera on n points (default 1e6) spread over a
190 deg field ('fisheye') and a 150 deg field ('fisheye624', the real Aria RGB calibration's coefficients when
../shared/realdata is present, else Aria-like ones), and the largest pixel round-trip error.
"""
import json
import logging
import sys
import time

import numpy as np

from posepile.paths import realdata_root
from posepile.util.camera import Camera, camera_from_fisheye624_params

logger = logging.getLogger('bench_fisheye')


def _rays(max_angle_deg, n, seed=0):
    rng = np.random.default_rng(seed)
    theta = np.arccos(1 - rng.uniform(0, 1, n) * (1 - np.cos(np.deg2rad(max_angle_deg))))
    phi = rng.uniform(0, 2 * np.pi, n)
    return np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=1)


def _aria_params():
    root = realdata_root()
    path = root / 'ego_exo4d/_format_only_aria_mps/trajectory/online_calibration.jsonl' if root else None
    if path is not None and path.exists():
        line = json.loads(path.open().readline())
        return next(c for c in line['CameraCalibrations'] if c['Label'] == 'camera-rgb')['Projection']['Params']
    return [610.0, 715.3, 704.8, 0.41, -0.45, 0.04, 1.3, -1.77, 0.65, -8e-05, 4.4e-05, -0.0006, 0.00056, 0.0005,
            0.00024]


def main():
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 10 ** 6
    cameras = [
        ('fisheye', Camera([10.0, 20, 30], None, [[600, 0, 640], [0, 605, 480], [0, 0, 1]],
                           [-0.012, 0.0021, -0.0003, 0.00002], distortion_model='fisheye'), 95),
        ('fisheye624', camera_from_fisheye624_params(_aria_params()), 75)]
    for name, camera, max_angle in cameras:
        world = camera.camera_to_world(_rays(max_angle, n) * 3000.0)
        start = time.perf_counter()
        pixels = camera.world_to_image(world)
        t_project = time.perf_counter() - start
        start = time.perf_counter()
        rays = camera.image_to_rays(pixels)
        t_rays = time.perf_counter() - start
        start = time.perf_counter()
        camera.image_to_camera(pixels)
        t_camera = time.perf_counter() - start
        error = np.abs(camera.camera_to_image(rays) - pixels).max()
        logger.info(f'{name}: {n} points up to {max_angle} deg: world_to_image {t_project:.3f} s, '
                    f'image_to_rays {t_rays:.3f} s, image_to_camera {t_camera:.3f} s, '
                    f'max round trip {error:.2e} px')


if __name__ == '__main__':
    main()
