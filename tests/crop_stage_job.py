"""A crop stage over deterministic synthetic frames, run as a separate process by test_pipeline.py.

python -m tests.crop_stage_job DATA_ROOT N_TASKS [SHARD]
"""
import sys
from pathlib import Path

import numpy as np

from posepile.datasets3d import Pose3DExample
from posepile.preproc.pipeline import run_crop_stage
from posepile.util import boxes, improc
from posepile.util.camera import Camera


def make_tasks(data_root, n_tasks):
    rng = np.random.default_rng(0)
    camera = Camera(optical_center=[0, -4000, 1500], rot_world_to_cam=[[1, 0, 0], [0, 0, -1], [0, 1, 0]],
                    intrinsic_matrix=[[900, 0, 499.5], [0, 900, 499.5], [0, 0, 1]],
                    distortion_coeffs=[-0.2, 0.05, 0.001, 0.001, 0], world_up=(0, 0, 1))
    tasks = []
    for i in range(n_tasks):
        frame = Path(data_root) / 'frames' / f'{i:04d}.jpg'
        if not frame.exists():
            image = cv_noise(rng, (1000, 1000))
            improc.write_jpeg_atomic(frame, image)
        else:
            cv_noise(rng, (1000, 1000))  # keep the random stream identical on reruns
        points = np.stack([rng.uniform(-300, 300, 17), rng.uniform(-200, 200, 17),
                           rng.uniform(100, 1800, 17)], 1) + [rng.uniform(-1000, 1000), 0, 0]
        bbox = boxes.expand(boxes.bb_of_points(camera.world_to_image(points)), 1.1)
        example = Pose3DExample(f'frames/{i:04d}.jpg', points, bbox, camera)
        tasks.append((f'{i:04d}', example, f'crops/{i:04d}.jpg'))
    return tasks


def cv_noise(rng, shape):
    small = rng.integers(0, 255, (shape[0] // 8, shape[1] // 8, 3), dtype=np.uint8)
    import cv2
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def main():
    data_root, n_tasks = sys.argv[1], int(sys.argv[2])
    shard = sys.argv[3] if len(sys.argv) > 3 else None
    tasks = make_tasks(data_root, n_tasks)
    run_crop_stage(tasks, Path(data_root) / 'results', shard=shard, n_workers=1, data_root=data_root)


if __name__ == '__main__':
    main()
