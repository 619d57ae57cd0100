import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.coco_wb import main as coco_wb
from tests.conftest import realdata_file
from tests.fakes import coco_wb as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent
PARTS = [('keypoints', 17, None), ('foot_kpts', 6, 'foot_valid'), ('face_kpts', 68, 'face_valid'),
         ('lefthand_kpts', 21, 'lefthand_valid'), ('righthand_kpts', 21, 'righthand_valid')]


def _run(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1',
               PATH=f'{Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}')  # this venv's python
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/coco_wb/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def _expected_invalid(annotation):
    """(133,) bool written out from the raw fields: part not valid, or its flag/confidence <= 0."""
    invalid = []
    for field, n, valid_field in PARTS:
        flags = np.array(annotation[field], np.float64).reshape(n, 3)[:, 2]
        part_valid = annotation[valid_field] if valid_field else True
        invalid.append((flags <= 0) | (not part_valid))
    return np.concatenate(invalid)


def test_coco_wb_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root)
    _run(data_root)
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'coco_wb.posepile')
    assert dataset.joint_info.n_joints == 133
    by_id = {}
    for split_name, split in coco_wb.SPLITS.items():
        images, annotations, kinds = written[split_name]
        by_id.update({a['id']: a for a in annotations})
        expected = sorted(a['id'] for a in annotations if not a['iscrowd'] and not _expected_invalid(a).all())
        assert expected == sorted(i for i, kind in kinds.items() if kind in ('full', 'nohands'))
        assert sorted(e.extra['annotation_id'] for e in dataset.examples[split]) == expected
    assert len(dataset.examples[0]) == 3 and len(dataset.examples[1]) == 2
    errors, n_nan = [], 0
    for split in (0, 1):
        for example in dataset.examples[split]:
            invalid = _expected_invalid(by_id[example.extra['annotation_id']])
            assert np.array_equal(np.isnan(example.coords).any(axis=1), invalid)
            n_nan += int(invalid.sum())
            assert example.mask is not None
            errors += dot_errors(data_root / example.image_path, example.coords, radius=4)
    assert n_nan > 0 and len(errors) > 20
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_part_flag_gates_the_part():
    annotation = {field: [10.0, 20.0, 1.0] * n for field, n, _ in PARTS}
    annotation.update(foot_valid=True, face_valid=False, lefthand_valid=True, righthand_valid=True)
    annotation['righthand_kpts'][2] = 0.0  # first right-hand point: confidence 0
    annotation['keypoints'][3 * 4 + 2] = 0  # right ear: v == 0
    coords = coco_wb.annotation_to_coords(annotation)
    invalid = np.flatnonzero(np.isnan(coords[:, 0]))
    assert invalid.tolist() == [4] + list(range(23, 91)) + [112]


@pytest.mark.parametrize('content, problem', [
    ('{"images": [], "annotations": [{', 'cannot read JSON'),
    (json.dumps({'images': [{'id': 1, 'file_name': 'a.jpg'}],
                 'annotations': [{'id': 9, 'image_id': 1, 'keypoints': [0] * 51, 'foot_kpts': [0] * 18,
                                  'face_kpts': [0] * 204, 'lefthand_kpts': [0] * 63}]}),
     "annotation 9 has no field in 'righthand_kpts', expected 63"),
    (json.dumps({'images': [{'id': 1, 'file_name': 'a.jpg'}],
                 'annotations': [{'id': 9, 'image_id': 1, 'keypoints': [0] * 54}]}),
     "annotation 9 has 54 values in 'keypoints', expected 51"),
    (json.dumps({'images': {}}), 'not a COCO-WholeBody file'),
])
def test_malformed_file_names_file_and_problem(tmp_path, content, problem):
    path = tmp_path / 'coco_wholebody_val_v1.0.json'
    path.write_text(content)
    with pytest.raises(coco_wb.COCOWholeBodyFormatError) as info:
        coco_wb.load_annotation_file(path)
    message = str(info.value)
    assert str(path) in message and problem in message and '\n' not in message


def test_real_coco_wholebody_sample(realdata):
    """The real COCO-WholeBody subset: 4 val2017 images, 14 people; hands of 2 people with fractional
    confidences; the body part equals the COCO keypoints file of the same people."""
    path = realdata_file(realdata, 'coco_wholebody/test_coco_wholebody.json')
    images, annotations = coco_wb.load_annotation_file(path)
    assert len(images) == 4 and len(annotations) == 14
    valid_counts = []
    for annotation in annotations:
        coords = coco_wb.annotation_to_coords(annotation)
        assert np.array_equal(np.isnan(coords[:, 0]), _expected_invalid(annotation))
        body_v = np.array(annotation['keypoints']).reshape(17, 3)[:, 2]
        assert np.array_equal(np.isfinite(coords[:17, 0]), body_v > 0)
        assert int((body_v > 0).sum()) == annotation['num_keypoints']
        image = images[annotation['image_id']]
        valid = coords[np.isfinite(coords[:, 0])]
        assert np.all((valid >= 0) & (valid <= [image['width'], image['height']]))
        valid_counts.append(len(valid))
    assert sum(c == 0 for c in valid_counts) == 2  # two people without any keypoint are not cropped
    coco_path = Path(realdata) / 'coco' / 'test_coco.json'
    if coco_path.exists():
        from posepile.ds.coco.main import keypoints_to_coords
        coco = {a['id']: a for a in json.loads(coco_path.read_text())['annotations']}
        for annotation in annotations:
            np.testing.assert_array_equal(coco_wb.annotation_to_coords(annotation)[:17],
                                          keypoints_to_coords(coco[annotation['id']]['keypoints']))
