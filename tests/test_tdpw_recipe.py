import os
import subprocess
from pathlib import Path

import numpy as np

from posepile.ds.tdpw import main as tdpw
from posepile.util.sampling import select_frames
from tests.markers import dot_errors
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
        projected = example.camera.world_to_image(example.world_coords)
        errors += dot_errors(data_root / example.image_path, projected,
                             max(4, int(round(6 * example.camera.intrinsic_matrix[0, 0] / 1961))), separation=3)
    assert len(errors) > 20
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))
