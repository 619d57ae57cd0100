import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.coco import main as coco
from posepile.paths import realdata_root
from posepile.util import boxes, improc
from tests import faults
from tests.fakes import coco as fake

REPO = Path(__file__).resolve().parent.parent


def _run(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/coco/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def _iou(a, b):
    """IoU of two [x, y, w, h] boxes, written out."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _original_keeps(annotation):
    """The original's rule in both modes, written out: >= 17/3 visible (v == 2), >= 17/2 labelled (v > 0), and
    the labelled keypoints' box expanded 1.25x about its centre has a longer side >= 200 px."""
    k = np.asarray(annotation['keypoints'], float).reshape(17, 3)
    labelled = k[k[:, 2] > 0, :2]
    if np.sum(k[:, 2] == 2) < 17 / 3 or len(labelled) < 17 / 2:
        return False
    return 1.25 * max(np.ptp(labelled[:, 0]), np.ptp(labelled[:, 1])) >= 200


def _expected_counts(written, split, limit=None):
    """Non-crowd people that pass the original's keypoint rule and whose box has IoU < limit with every other
    box of the image (crowd regions included); limit None: no overlap limit."""
    images, annotations = written[split]
    count = 0
    for image in images:
        anns = [a for a in annotations if a['image_id'] == image['id']]
        for a in anns:
            if a.get('iscrowd') or not _original_keeps(a):
                continue
            overlap = max([_iou(a['bbox'], b['bbox']) for b in anns if b is not a], default=0.0)
            count += limit is None or overlap < limit
    return count


def test_coco_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'coco')
    _run(data_root)
    from posepile.storage.annotations import load_dataset
    counts = {}
    for name, limit in [('coco', None), ('coco_single', 0.1)]:
        dataset = load_dataset(data_root / 'cache' / f'{name}.posepile')
        counts[name] = len(dataset.examples[0]), len(dataset.examples[1])
        assert counts[name] == (_expected_counts(written, 'train2017', limit),
                                _expected_counts(written, 'val2017', limit))
    # the multi-person coco keeps the overlapping person of the third train image (IoU 0.65 with a person the
    # keypoint rule drops: 8 labelled < 17/2); the keypoint/size rule drops 2 of 5 train and 2 of 3 val people
    boxes = [a['bbox'] for a in written['train2017'][1] if a['image_id'] == written['train2017'][0][2]['id']]
    assert _iou(*boxes) > 0.5
    assert counts == {'coco': (3, 1), 'coco_single': (2, 1)}
    dataset = load_dataset(data_root / 'cache' / 'coco.posepile')
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
    # 14 annotations: 2 without keypoints, 4 more fail the original's visibility/size rule (e.g. 1724673: 17
    # visible keypoints, but their box x1.25 is < 200 px)
    assert len(tasks) == _expected_counts(written, 'val2017') == 8
    assert _expected_counts(written, 'val2017', 0.1) == 5  # coco_single's share of the real subset
    images = {im['id']: im for im in written['val2017'][0]}
    for _, example, _ in tasks:
        h, w = improc.image_size_from_header(data_root / example.image_path)
        valid = example.coords[np.all(np.isfinite(example.coords), axis=1)]
        assert np.all(boxes.contains(boxes.expand(example.bbox, 1.5), valid))  # keypoints near their box
        assert np.all((valid >= 0) & (valid < [w, h]))
    assert {im['width'] for im in images.values()} == {640, 500}


def _edit_annotation(path, annotation_index, **changes):
    """Rewrite one annotation of a COCO JSON in place (json writes NaN as the bare literal, as a broken
    exporter would)."""
    import json
    data = json.loads(Path(path).read_text())
    data['annotations'][annotation_index].update(changes)
    Path(path).write_text(json.dumps(data))


@pytest.mark.parametrize('change, problem', [
    (dict(keypoints=[10, 20, 2] * 16), 'has 48 keypoint values, expected 51'),
    (dict(bbox=[20.0, float('nan'), 90.0, 180.0]), 'expected 4 finite numbers'),
])
def test_malformed_annotation_names_the_json_and_the_annotation_id(tmp_path, change, problem):
    """A wrong keypoint count (a ValueError before) or a NaN box (an error naming the image before) ends the
    build with one line naming the annotation JSON and the annotation id; the fixed file rebuilds identically."""
    written = fake.write_fake_release(tmp_path / 'probe' / 'coco')
    annotation = written['train2017'][1][3]  # the first person of the second train image
    annotation_id = annotation['id']
    assert annotation['num_keypoints'] > 0 and not annotation['iscrowd']

    def fault(path):
        _edit_annotation(path, 3, **change)
    fault.__name__ = f'annotation_{annotation_id}_{next(iter(change))}'

    faults.check_fault_is_reported_and_repaired(
        'coco', lambda root: fake.write_fake_release(root / 'coco'), 'coco/annotations/person_keypoints_train2017.json',
        fault, tmp_path, names=['person_keypoints_train2017.json', f'annotation {annotation_id} ', problem])


def test_check_annotation_messages(tmp_path):
    path = tmp_path / 'person_keypoints_val2017.json'
    good = {'id': 5, 'keypoints': [1, 2, 2] * 17, 'bbox': [1, 2, 3, 4]}
    coco.check_annotation(path, good)
    for bad, problem in [(dict(good, bbox=[1, 2, 3]), 'expected 4 finite numbers'),
                         (dict(good, keypoints=[1, 2, float('inf')] * 17), 'non-finite keypoint'),
                         ({'id': 5, 'keypoints': [0] * 51}, "no 'bbox'")]:
        with pytest.raises(coco.COCOFormatError) as info:
            coco.check_annotation(path, bad)
        assert str(info.value).startswith(f'{path}: annotation 5') and problem in str(info.value)
