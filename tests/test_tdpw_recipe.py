import os
import subprocess
from pathlib import Path

import numpy as np

from posepile.ds.tdpw import main as tdpw
from posepile.util import improc
from posepile.util.sampling import select_frames
from tests.fakes import tdpw as fake

REPO = Path(__file__).resolve().parent.parent


def test_tdpw_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'tdpw', n_frames=12)
    fake.write_images(data_root / 'tdpw', written)
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/tdpw/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'tdpw.posepile')
    expected = {0: 0, 1: 0, 2: 0}
    for (split, _), data in written.items():
        for actor in range(len(data['jointPositions'])):
            valid = np.flatnonzero(tdpw.valid_frames(data, actor))
            if split == 'train':
                joints = np.asarray(data['jointPositions'][actor]).reshape(-1, 24, 3)[valid] * 1000
                expected[0] += len(select_frames(joints, 100))
            else:
                expected[tdpw.SPLIT_IDS[split]] += len(valid)
    assert {s: len(v) for s, v in dataset.examples.items()} == expected
    errors = []
    for example in list(dataset.examples[0])[:5] + list(dataset.examples[2])[:5]:
        assert 1000 < np.median(example.camera.world_to_camera(example.world_coords)[:, 2]) < 10000  # mm
        crop = improc.imread_rgb(data_root / example.image_path)[..., 1].astype(np.float64) - 45
        projected = example.camera.world_to_image(example.world_coords)
        scale = example.camera.intrinsic_matrix[0, 0] / 1961
        for j, (u, v) in enumerate(projected):
            others = np.delete(projected, j, axis=0)
            r = max(4, int(round(6 * scale)))
            if not (r + 2 <= u < crop.shape[1] - r - 2 and r + 2 <= v < crop.shape[0] - r - 2) or \
                    np.min(np.linalg.norm(others - [u, v], axis=1)) < 3 * r:
                continue
            patch = np.clip(crop[int(v) - r:int(v) + r + 1, int(u) - r:int(u) + r + 1], 0, None)
            ys, xs = np.mgrid[int(v) - r:int(v) + r + 1, int(u) - r:int(u) + r + 1]
            errors.append(np.hypot((xs * patch).sum() / patch.sum() - u, (ys * patch).sum() / patch.sum() - v))
    assert len(errors) > 20
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))
