import os
import subprocess
from pathlib import Path

import numpy as np

from tests.markers import dot_errors
from tests.fakes import tdoh as fake

REPO = Path(__file__).resolve().parent.parent


def test_tdoh_recipe_on_fake_release(data_root):
    train = fake.write_fake_release(data_root / 'tdoh', seed=1, n_images=5, split='trainset', images=True)
    test = fake.write_fake_release(data_root / 'tdoh', seed=2, n_images=4, split='testset', images=True)
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/tdoh/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'tdoh.posepile')
    assert len(dataset.examples[0]) == len(train) and len(dataset.examples[2]) == len(test)
    np.testing.assert_allclose(dataset.examples[2][0].world_coords, test['00000'], atol=1e-3)  # mm
    errors = []
    for example in list(dataset.examples[0]) + list(dataset.examples[2]):
        projected = example.camera.world_to_image(example.world_coords)
        r = max(3, int(round(5 * example.camera.intrinsic_matrix[0, 0] / 1000)))
        errors += dot_errors(data_root / example.image_path, projected, r)
    assert len(errors) > 20
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))
