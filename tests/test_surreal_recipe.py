import os
import subprocess
from pathlib import Path

import numpy as np

from posepile.util import masks
from posepile.util.sampling import select_frames
from tests.markers import dot_errors
from tests.fakes import surreal as fake

REPO = Path(__file__).resolve().parent.parent


def test_surreal_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'surreal')
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/surreal/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'surreal.posepile')
    assert len(dataset.examples[0]) == len(select_frames(written['train'], 100))
    assert len(dataset.examples[2]) == len(select_frames(written['test'], 100))
    errors = []
    for example in list(dataset.examples[0])[:8] + list(dataset.examples[2])[:8]:
        # the mirrored-back camera is a proper rotation (right-handed)
        assert np.linalg.det(example.camera.R) > 0.99
        projected = example.camera.world_to_image(example.world_coords)
        # the mask (from the part labels) covers the joints in the crop
        mask = masks.decode(example.mask)
        inside = [mask[int(round(v)), int(round(u))] for u, v in projected
                  if 0 <= round(u) < mask.shape[1] and 0 <= round(v) < mask.shape[0]]
        assert np.mean(inside) > 0.9
        r = max(3, int(round(4 * example.camera.intrinsic_matrix[0, 0] / 600)))
        errors += dot_errors(data_root / example.image_path, projected, r)
    assert len(errors) > 20
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))
