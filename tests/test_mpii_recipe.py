import os
import subprocess
from pathlib import Path

import numpy as np

from posepile.datasets2d import Pose2DExample
from posepile.ds.mpii import main as mpii
from posepile.paths import realdata_root
from posepile.preproc.cropping import make_efficient_example
from posepile.util import improc
from tests.fakes import mpii as fake

REPO = Path(__file__).resolve().parent.parent


def test_mpii_recipe_on_fake_release(data_root):
    people = fake.write_fake_release(data_root / 'mpii')
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/mpii/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'mpii.posepile')
    assert len(dataset.examples[0]) == len(people)
    assert dataset.joint_info.n_joints == 16
    errors = []
    for example, person in zip(dataset.examples[0], people):
        np.testing.assert_array_equal(np.isnan(example.coords[:, 0]), np.isnan(person['coords'][:, 0]))
        assert len(example.extra['head_box']) == 4
        crop = improc.imread_rgb(data_root / example.image_path)[..., 1].astype(np.float64) - 45
        valid = example.coords[np.all(np.isfinite(example.coords), 1)]
        for u, v in valid:
            if np.sort(np.linalg.norm(valid - [u, v], axis=1))[1] < 14 or \
                    not (6 <= u < crop.shape[1] - 6 and 6 <= v < crop.shape[0] - 6):
                continue
            patch = np.clip(crop[int(v) - 4:int(v) + 5, int(u) - 4:int(u) + 5], 0, None)
            ys, xs = np.mgrid[int(v) - 4:int(v) + 5, int(u) - 4:int(u) + 5]
            errors.append(np.hypot((xs * patch).sum() / patch.sum() - u, (ys * patch).sum() / patch.sum() - v))
    assert len(errors) > 15
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_mpii_real_images(data_root):
    root = realdata_root()
    if root is None or not (Path(root) / 'mpii' / 'test_mpii.json').exists():
        import pytest
        pytest.skip('real MPII sample not found under ../shared/realdata/mpii')
    people = fake.write_fake_release(data_root / 'mpii', realdata=root)
    loaded = mpii.load_people(data_root / 'mpii' / mpii.ANNOTATION_FILE)
    assert len(loaded) == len(people) == 5
    for person in loaded:
        image_path = data_root / 'mpii' / 'images' / person['image']
        h, w = improc.image_size_from_header(image_path)
        valid = person['coords'][np.all(np.isfinite(person['coords']), 1)]
        assert np.all((valid >= 0) & (valid < [w, h]))
        box = mpii.person_box(person['center'], person['scale'])
        example = Pose2DExample(f'mpii/images/{person["image"]}', person['coords'], box)
        crop = make_efficient_example(example, f'c/{person["image"]}', data_root=data_root)
        ch, cw = improc.imread_rgb(data_root / crop.image_path).shape[:2]
        inside = crop.coords[np.all(np.isfinite(crop.coords), 1)]
        assert np.mean(np.all((inside >= 0) & (inside < [cw, ch]), 1)) > 0.9


def test_person_box_is_the_originals_shifted_square():
    """Side 200 * scale, centred 0.075 * side below objpos (written out by hand for scale 2 at (500, 300))."""
    np.testing.assert_allclose(mpii.person_box(np.array([500.0, 300.0]), 2.0), [300, 130, 400, 400])
