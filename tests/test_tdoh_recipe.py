import os
import subprocess
from pathlib import Path

import cv2
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
    from posepile.util import masks
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

    # training crops carry the released masks (red channel > 127), warped into the crop; test crops have none
    assert all(example.mask is None for example in dataset.examples[2])
    n_faint = 0
    for example in dataset.examples[0]:
        image_id = Path(example.image_path).stem
        raw = cv2.imread(str(data_root / 'tdoh' / 'trainset' / 'masks' / f'{image_id}.png'))
        expected = raw[..., 2] > 127  # OpenCV's BGR: red is index 2
        n_faint += int(np.any(raw[..., 2] == fake.FAINT_VALUE))
        got = masks.decode(example.mask)
        crop = cv2.imread(str(data_root / example.image_path))
        assert got.shape == crop.shape[:2]
        # each crop pixel's source pixel: its ray through the original camera (identity extrinsics, intri)
        ys, xs = np.mgrid[2:got.shape[0]:4, 2:got.shape[1]:4]
        rays = example.camera.camera_to_world(1000 * example.camera.image_to_camera(
            np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)))  # world = the original camera
        intrinsics = np.array([[1000.0, 0, 512], [0, 1000.0, 512], [0, 0, 1]])
        source = (rays / rays[:, 2:]) @ intrinsics.T
        u, v = np.round(source[:, 0]).astype(int), np.round(source[:, 1]).astype(int)
        inside = (u >= 0) & (u < 1024) & (v >= 0) & (v < 1024)
        truth = np.zeros(len(u), bool)
        truth[inside] = expected[v[inside], u[inside]]
        sampled = got[ys.ravel(), xs.ravel()]
        iou = (sampled & truth).sum() / max((sampled | truth).sum(), 1)
        assert truth.sum() > 100 and iou > 0.9, (image_id, iou)
        faint = np.zeros(len(u), bool)
        faint[inside] = raw[v[inside], u[inside], 2] == fake.FAINT_VALUE
        assert not np.any(sampled & faint)  # red 100 <= 127: not the person
    assert n_faint >= 2  # the sub-threshold discs were there to be left out
