import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.aic import main as aic
from tests.conftest import realdata_file
from tests.fakes import aic as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _run(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1',
               PATH=f'{Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/aic/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def _is_kept(keypoints):
    """The rule written out: >= 14/3 joints with v == 2 and >= 7 with v in {1, 2}."""
    v = keypoints[:, 2]
    return (v == 2).sum() * 3 >= 14 and (v > 0).sum() * 2 >= 14


def test_aic_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'aic')
    _run(data_root)
    assert not (data_root / 'aic' / 'train').exists()  # nothing extracted
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'aic.posepile')
    expected = [p for p in written if _is_kept(p['keypoints'])]
    assert len(expected) == 3 and len(dataset.examples[0]) == 3 and not dataset.examples[1]
    assert dataset.joint_info.names == aic.JOINT_NAMES.split(',')
    by_id = {p['id']: p for p in written}
    assert sorted(e.extra['annotation_id'] for e in dataset.examples[0]) == sorted(p['id'] for p in expected)
    errors, n_nan, n_occluded = [], 0, 0
    for example in dataset.examples[0]:
        v = by_id[example.extra['annotation_id']]['keypoints'][:, 2]
        assert np.array_equal(np.isfinite(example.coords).all(axis=1), v > 0)
        n_nan += int((v == 0).sum())
        n_occluded += int((v == 1).sum())
        assert example.image_path.startswith('aic_downscaled/')
        errors += dot_errors(data_root / example.image_path, example.coords, radius=4)
    assert n_nan > 0 and n_occluded > 0 and len(errors) > 25
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_crop_paths_follow_the_original_layout():
    name = 'ff945ae2e729f24eea992814639d59b3bdec8bd8.jpg'
    assert aic.crop_relpath(name, 3) == 'aic_downscaled/ff/94/ff945ae2e729f24eea992814639d59b3bdec8bd8_03.jpg'
    assert aic.is_person_kept([2] * 5 + [1] * 2 + [0] * 7)
    assert not aic.is_person_kept([2] * 4 + [1] * 6 + [0] * 4)
    assert not aic.is_person_kept([2] * 6 + [0] * 8)


def test_only_train_image_members_are_read(tmp_path):
    fake.write_fake_release(tmp_path / 'aic')
    with tarfile.open(tmp_path / 'aic' / 'AI_Challenger.tar.gz') as tar:
        names = [aic.image_name_of_member(m) for m in tar]
    assert sum(n is not None for n in names) == len(fake.IMAGES) + 1  # + the unannotated train image


@pytest.mark.parametrize('content, problem', [
    ('{"images": [', 'invalid JSON'),
    (json.dumps({'annotations': []}), 'not an AI Challenger keypoint file'),
    (json.dumps({'images': [{'id': 1, 'file_name': 'a.jpg'}],
                 'annotations': [{'id': 5, 'image_id': 1, 'bbox': [1, 2, 3, 4], 'keypoints': [1, 2, 2] * 13}]}),
     'annotation 5 has 39 keypoint values, expected 42'),
    (json.dumps({'images': [{'id': 1, 'file_name': 'a.jpg'}],
                 'annotations': [{'id': 5, 'image_id': 2, 'bbox': [1, 2, 3, 4], 'keypoints': [1, 2, 2] * 14}]}),
     'refers to unknown image 2'),
    (json.dumps({'images': [{'id': 1, 'file_name': 'a.jpg'}],
                 'annotations': [{'id': 5, 'image_id': 1, 'bbox': [1, 2, 3, 4], 'keypoints': [1, 2, 3] * 14}]}),
     'visibility flags [3], expected 0, 1 or 2'),
    (json.dumps({'images': [{'id': 1, 'file_name': 'a.jpg'}],
                 'annotations': [{'id': 5, 'image_id': 1, 'keypoints': [1, 2, 2] * 14}]}), 'malformed annotation'),
])
def test_malformed_file_names_file_and_problem(tmp_path, content, problem):
    path = tmp_path / 'aic_train.json'
    path.write_text(content)
    with pytest.raises(aic.AICFormatError) as info:
        aic.load_annotations(path)
    message = str(info.value)
    assert str(path) in message and problem in message and '\n' not in message


def test_real_aic_sample(realdata):
    """mmpose's test_aic.json (the COCO-style conversion): 3 images, 9 people, 101 labelled points."""
    path = realdata_file(realdata, 'aic/test_aic.json')
    raw = json.loads(path.read_text())
    people = aic.load_annotations(path)
    assert sum(map(len, people.values())) == len(raw['annotations']) == 9
    assert sum(int(np.isfinite(p['coords'][:, 0]).sum()) for ps in people.values() for p in ps) == 101
    sizes = {image['file_name']: (image['width'], image['height']) for image in raw['images']}
    for file_name, persons in people.items():
        from posepile.util import improc
        h, w = improc.image_size_from_header(path.parent / file_name)
        assert (w, h) == sizes[file_name]
        for person in persons:
            valid = person['coords'][np.isfinite(person['coords'][:, 0])]
            assert np.all((valid >= 0) & (valid < [w, h]))
            assert person['bbox'][2] > 0 and person['bbox'][3] > 0
    first = raw['annotations'][0]
    person = next(p for p in people[raw['images'][0]['file_name']] if p['id'] == first['id'])
    np.testing.assert_array_equal(person['visibility'], np.array(first['keypoints']).reshape(14, 3)[:, 2])
    assert 0 < sum(aic.is_person_kept(p['visibility']) for ps in people.values() for p in ps) <= 9
