import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.coco import main as coco
from posepile.paths import realdata_root
from posepile.util import boxes, improc
from tests.fakes import coco as fake

REPO = Path(__file__).resolve().parent.parent


def _run(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/coco/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def _expected_counts(written, split, limit):
    images, annotations = written[split]
    count = 0
    for image in images:
        anns = [a for a in annotations if a['image_id'] == image['id']]
        overlaps = coco.max_iou_with_others([a['bbox'] for a in anns])
        count += sum(1 for a, o in zip(anns, overlaps)
                     if not a.get('iscrowd') and a['num_keypoints'] > 0 and o < limit)
    return count


def test_coco_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'coco')
    _run(data_root)
    from posepile.storage.annotations import load_dataset
    for name, limit in coco.MAX_IOU_WITH_OTHERS.items():
        dataset = load_dataset(data_root / 'cache' / f'{name}.posepile')
        assert len(dataset.examples[0]) == _expected_counts(written, 'train2017', limit)
        assert len(dataset.examples[1]) == _expected_counts(written, 'val2017', limit)
    dataset = load_dataset(data_root / 'cache' / 'coco.posepile')
    assert len(dataset.examples[0]) < 6  # one overlapping pair (IoU > 0.5) was dropped
    # keypoints in the crops lie on the dots; unlabelled keypoints are NaN
    errors, n_nan = [], 0
    for example in dataset.examples[0]:
        crop = improc.imread_rgb(data_root / example.image_path)[..., 1].astype(np.float64) - 40
        n_nan += int(np.isnan(example.coords[:, 0]).sum())
        valid = example.coords[np.all(np.isfinite(example.coords), axis=1)]
        for u, v in valid:
            others = np.linalg.norm(valid - [u, v], axis=1)
            if np.sort(others)[1] < 12 or not (6 <= u < crop.shape[1] - 6 and 6 <= v < crop.shape[0] - 6):
                continue
            patch = np.clip(crop[int(v) - 4:int(v) + 5, int(u) - 4:int(u) + 5], 0, None)
            ys, xs = np.mgrid[int(v) - 4:int(v) + 5, int(u) - 4:int(u) + 5]
            errors.append(np.hypot((xs * patch).sum() / patch.sum() - u, (ys * patch).sum() / patch.sum() - v))
    assert n_nan > 0 and len(errors) > 20
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_coco_real_subset(data_root):
    root = realdata_root()
    if root is None or not (Path(root) / 'coco' / 'test_coco.json').exists():
        pytest.skip('real COCO subset not found under ../shared/realdata/coco')
    written = fake.write_fake_release(data_root / 'coco', realdata=root)
    tasks = [t for t in coco.make_crop_tasks(data_root) if t[0].startswith('1/')]
    assert len(tasks) == _expected_counts(written, 'val2017', 1.01)
    images = {im['id']: im for im in written['val2017'][0]}
    for _, example, _ in tasks:
        h, w = improc.image_size_from_header(data_root / example.image_path)
        valid = example.coords[np.all(np.isfinite(example.coords), axis=1)]
        assert np.all(boxes.contains(boxes.expand(example.bbox, 1.5), valid))  # keypoints near their box
        assert np.all((valid >= 0) & (valid < [w, h]))
    assert {im['width'] for im in images.values()} == {640, 500}
