import os
import subprocess
from pathlib import Path

import numpy as np

from posepile.ds.mupots import main as mupots
from tests.markers import dot_errors
from tests.fakes import mupots as fake

REPO = Path(__file__).resolve().parent.parent


def test_fit_intrinsics_recovers_known_values():
    rng = np.random.default_rng(0)
    points3d = rng.normal(0, 500, (200, 3)) + [0, 0, 5000]
    K = np.array([[1497.0, 0, 1017.0], [0, 1495.0, 1043.0], [0, 0, 1]])
    points2d = points3d[:, :2] / points3d[:, 2:] * [1497.0, 1495.0] + [1017.0, 1043.0]
    fitted, rms = mupots.fit_intrinsics(points2d + rng.normal(0, 0.5, points2d.shape), points3d)
    np.testing.assert_allclose(fitted, K, atol=2.0)
    assert 0.3 < rms < 0.7  # the added noise has an RMS norm of 0.5 * sqrt(2) = 0.71 px per point


def test_mupots_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'mupots', n_frames=2, n_people=2)
    fake.write_images(data_root / 'mupots', {k: v for k, v in written.items()})
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/mupots/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    from posepile.util import fileio
    intrinsics = fileio.load_json(data_root / 'mupots' / 'posepile_work' / 'intrinsics.json')
    assert max(v['rms_residual_px'] for v in intrinsics.values()) < 0.01  # the fake is exactly pinhole
    dataset = load_dataset(data_root / 'cache' / 'mupots.posepile')
    expected = sum(p['valid'] for frames in written.values() for people in frames for p in people)
    assert len(dataset.examples[2]) == expected and len(dataset.examples[0]) == 0
    errors = []
    for example in list(dataset.examples[2])[:12]:
        projected = example.camera.world_to_image(example.world_coords)
        r = 5
        errors += dot_errors(data_root / example.image_path, projected, r)
    assert len(errors) > 20
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))
    assert example.univ_coords.shape == (17, 3)
    for example in dataset.examples[2]:
        person = int(example.image_path.split('_')[-1].split('.')[0])
        np.testing.assert_array_equal(example.parameters['occluded_joints'], np.arange(17) % (3 + person) == 0)
