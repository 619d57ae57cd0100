import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.halpe import main as halpe
from tests.conftest import realdata_file
from tests.fakes import halpe as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent
# the joint names of the original PosePile's Halpe (the paper's mixes match joints by these names)
ORIGINAL_NAMES = (
    'nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank,htop,neck,pelv,ltoe,rtoe,'
    'ltoe2,rtoe2,lhee,rhee,rface1,rface2,rface3,rface4,rface5,rface6,rface7,rface8,chin,lface8,lface7,lface6,'
    'lface5,lface4,lface3,lface2,lface1,rface9,rface10,rface11,rface12,rface13,lface13,lface12,lface11,lface10,'
    'lface9,nose1,nose2,nose3,nose4,rface14,rface15,nose5,lface15,lface14,reye1,reye2,reye3,reye4,reye5,reye6,'
    'leye4,leye3,leye2,leye1,leye6,leye5,rmouth1,rmouth2,rmouth3,mouth1,lmouth3,lmouth2,lmouth1,lmouth4,lmouth5,'
    'mouth2,rmouth5,rmouth4,rmouth6,rmouth7,mouth3,lmouth7,lmouth6,lmouth8,mouth4,rmouth8,'
    + ','.join(f'{side}han{i}' for side in 'lr' for i in range(1, 22)))


def _run(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1',
               PATH=f'{Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}')  # this venv's python
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/halpe/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def _invalid(annotation):
    """Expected NaN pattern: flag 0 or position exactly (0, 0)."""
    k = np.array(annotation['keypoints'], np.float64).reshape(136, 3)
    return (k[:, 2] == 0) | ((k[:, 0] == 0) & (k[:, 1] == 0))


def _expected_usable(annotation):
    """The keep rule written out: not crowd; of the 26 body points (those at (0, 0) not counted) >= 26/3 with
    v == 2 and >= 13 with v > 0; annotation box and valid-keypoint box both with shorter side > 100 px."""
    if annotation['iscrowd']:
        return False
    k = np.array(annotation['keypoints'], np.float64).reshape(136, 3)
    flags = np.where(_invalid(annotation), 0, k[:, 2])[:26]
    if (flags == 2).sum() * 3 < 26 or (flags > 0).sum() < 13 or min(annotation['bbox'][2:]) <= 100:
        return False
    valid = k[~_invalid(annotation), :2]
    return bool((valid.max(0) - valid.min(0)).min() > 100)


def test_halpe_recipe_on_fake_release(data_root):
    images, annotations, kinds = fake.write_fake_release(data_root / 'halpe')
    _run(data_root)
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'halpe.posepile')
    by_id = {a['id']: a for a in annotations}
    expected = sorted(a['id'] for a in annotations if _expected_usable(a))
    assert expected == sorted(i for i, kind in kinds.items() if kind in ('full', 'zeros'))  # the fake's intent
    assert sorted(e.extra['annotation_id'] for e in dataset.examples[0]) == expected
    assert len(dataset.examples[0]) == 3 and not dataset.examples[1] and not dataset.examples[2]
    assert dataset.joint_info.n_joints == 136 and ','.join(dataset.joint_info.names) == ORIGINAL_NAMES
    errors, n_nan = [], 0
    for example in dataset.examples[0]:
        annotation = by_id[example.extra['annotation_id']]
        invalid = _invalid(annotation)
        assert np.array_equal(np.isnan(example.coords).any(axis=1), invalid)
        n_nan += int(invalid.sum())
        if kinds[annotation['id']] == 'zeros':  # the (0, 0) quirk points are NaN although v > 0
            assert np.isnan(example.coords[fake.QUIRK_JOINTS]).all()
        errors += dot_errors(data_root / example.image_path, example.coords, radius=4)
    assert n_nan > 0 and len(errors) > 20
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_zero_position_is_invalid_whatever_the_flag():
    keypoints = np.tile([10.0, 20.0, 2.0], 136)
    keypoints[3 * 5:3 * 5 + 3] = [0, 0, 2]
    keypoints[3 * 7:3 * 7 + 3] = [0, 30, 2]  # x == 0 alone is a valid position
    keypoints[3 * 8 + 2] = 0
    coords = halpe.keypoints_to_coords(keypoints)
    assert np.flatnonzero(np.isnan(coords[:, 0])).tolist() == [5, 8]


@pytest.mark.parametrize('content, problem', [
    ('{"images": [], "annotations": [', 'invalid JSON'),
    (json.dumps({'images': [{'id': 1, 'file_name': 'a.jpg'}],
                 'annotations': [{'id': 5, 'image_id': 1, 'bbox': [0, 0, 1, 1], 'keypoints': [0] * 51}]}),
     'annotation 5 has 51 keypoint values, expected 408'),
    (json.dumps({'images': [], 'annotations': [{'id': 5, 'image_id': 2, 'bbox': [0, 0, 1, 1],
                                                'keypoints': [0] * 408}]}), 'refers to unknown image 2'),
    (json.dumps([1, 2]), 'expected a JSON object with the lists'),
])
def test_malformed_file_names_file_and_problem(tmp_path, content, problem):
    path = tmp_path / fake.FILE_NAME
    path.write_text(content)
    with pytest.raises(halpe.HalpeFormatError) as info:
        halpe.load_annotation_file(path)
    message = str(info.value)
    assert str(path) in message and problem in message and '\n' not in message


def test_real_halpe_sample(realdata):
    """The real Halpe-FullBody subset (4 COCO val images, 14 people, 136 keypoints each)."""
    path = realdata_file(realdata, 'halpe/test_halpe.json')
    images, annotations = halpe.load_annotation_file(path)
    assert len(images) == 4 and len(annotations) == 14
    n_valid = 0
    for annotation in annotations:
        k = np.array(annotation['keypoints'], np.float64).reshape(136, 3)
        coords = halpe.keypoints_to_coords(annotation['keypoints'])
        assert coords.shape == (136, 2)
        assert np.array_equal(np.isnan(coords[:, 0]), (k[:, 2] == 0) | ((k[:, 0] == 0) & (k[:, 1] == 0)))
        image = images[annotation['image_id']]
        valid = coords[np.isfinite(coords[:, 0])]
        assert np.all((valid >= 0) & (valid <= [image['width'], image['height']]))
        n_valid += len(valid)
    assert n_valid == 856  # SOURCES.md: all 856 labelled points inside the images
    # in this sample the flag alone marks missing points, and 32 + 7 face points carry a position but v == 0
    first = np.array(annotations[0]['keypoints']).reshape(136, 3)
    assert np.sum((first[:, 2] == 0) & (first[:, 0] != 0)) == 32
    usable = [a['id'] for a in annotations if halpe.is_usable(a)]
    assert usable == [a['id'] for a in annotations if _expected_usable(a)] and 0 < len(usable) < 14
