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
# the joint names of the original PosePile's COCO-WholeBody (the paper's mixes match joints by these names)
ORIGINAL_NAMES = (
    'nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank,ltoe,ltoe2,lhee,rtoe,'
    'rtoe2,rhee,rface1,rface2,rface3,rface4,rface5,rface6,rface7,rface8,chin,lface8,lface7,lface6,lface5,lface4,'
    'lface3,lface2,lface1,rface9,rface10,rface11,rface12,rface13,lface13,lface12,lface11,lface10,lface9,nose1,'
    'nose2,nose3,nose4,rface14,rface15,nose5,lface15,lface14,reye1,reye2,reye3,reye4,reye5,reye6,leye4,leye3,'
    'leye2,leye1,leye6,leye5,rmouth1,rmouth2,rmouth3,mouth1,lmouth3,lmouth2,lmouth1,lmouth4,lmouth5,mouth2,'
    'rmouth5,rmouth4,rmouth6,rmouth7,mouth3,lmouth7,lmouth6,lmouth8,mouth4,rmouth8,'
    + ','.join(f'{side}han{i}' for side in 'lr' for i in range(1, 22)))


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


def _expected_usable(annotation):
    """The original's keep rule written out: not crowd; of the 17 body points >= 17/3 with v == 2 and >= 17/2 with
    v in (1, 2); the box of all valid points, 1.25x as large, has a longer side >= 200 px."""
    flags = np.array(annotation['keypoints'], np.float64).reshape(17, 3)[:, 2]
    if annotation['iscrowd'] or 3 * np.sum(flags == 2) < 17 or 2 * np.sum((flags == 1) | (flags == 2)) < 17:
        return False
    points = np.concatenate([np.array(annotation[field], np.float64).reshape(n, 3)[:, :2] for field, n, _ in PARTS])
    valid = points[~_expected_invalid(annotation)]
    return bool(1.25 * (valid.max(0) - valid.min(0)).max() >= 200)


def test_coco_wb_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root)
    _run(data_root)
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'coco_wb.posepile')
    assert dataset.joint_info.n_joints == 133 and ','.join(dataset.joint_info.names) == ORIGINAL_NAMES
    by_id = {}
    for split_name, split in coco_wb.SPLITS.items():
        images, annotations, kinds = written[split_name]
        by_id.update({a['id']: a for a in annotations})
        expected = sorted(a['id'] for a in annotations if _expected_usable(a))
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
    ('{"images": [], "annotations": [{', 'invalid JSON'),
    (json.dumps({'images': [{'id': 1, 'file_name': 'a.jpg'}],
                 'annotations': [{'id': 9, 'image_id': 1, 'keypoints': [0] * 51, 'foot_kpts': [0] * 18,
                                  'face_kpts': [0] * 204, 'lefthand_kpts': [0] * 63}]}),
     "annotation 9 has no field in 'righthand_kpts', expected 63"),
    (json.dumps({'images': [{'id': 1, 'file_name': 'a.jpg'}],
                 'annotations': [{'id': 9, 'image_id': 1, 'keypoints': [0] * 54}]}),
     "annotation 9 has 54 values in 'keypoints', expected 51"),
    (json.dumps({'images': {}}), 'expected a JSON object with the lists'),
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
    usable = [a['id'] for a in annotations if coco_wb.is_usable(a, coco_wb.annotation_to_coords(a))]
    assert usable == [a['id'] for a in annotations if _expected_usable(a)] and len(usable) == 8
    coco_path = Path(realdata) / 'coco' / 'test_coco.json'
    if coco_path.exists():
        from posepile.ds.coco.main import keypoints_to_coords
        coco = {a['id']: a for a in json.loads(coco_path.read_text())['annotations']}
        for annotation in annotations:
            np.testing.assert_array_equal(coco_wb.annotation_to_coords(annotation)[:17],
                                          keypoints_to_coords(coco[annotation['id']]['keypoints']))
