import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.jrdb import main as jrdb
from tests.conftest import realdata_file
from tests.fakes import jrdb as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _run(data_root, labels=None):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1',
               PATH=f'{Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}')
    env.pop('POSEPILE_CACHE_DIR', None)
    env.pop('POSEPILE_DETECTOR', None)
    if labels:
        env['JRDB_LABELS'] = labels
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/jrdb/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return load_dataset(data_root / 'cache' / 'jrdb.posepile')


def _expected_kept_ids(people):
    """The rule written out: per (view, track) in frame order keep the first person, then a person with a joint
    labelled now but not in the last kept one, or a joint labelled in both that moved >= 0.1 x the larger side
    of the labelled-keypoint box expanded 1.15x."""
    kept = []
    for key in sorted({(p['image_dir'], p['track_id']) for p in people}):
        last = None
        for person in sorted((p for p in people if (p['image_dir'], p['track_id']) == key), key=lambda p: p['frame']):
            k = person['keypoints']
            labelled = k[:, 2] > 0
            keep = last is None
            if not keep:
                both = labelled & (last[:, 2] > 0)
                side = 1.15 * (k[labelled, :2].max(0) - k[labelled, :2].min(0)).max()
                moved = np.hypot(*(k[both, :2] - last[both, :2]).T)
                keep = bool((labelled & ~(last[:, 2] > 0)).any()) or bool((moved >= 0.1 * side).any())
            if keep:
                kept.append(person['id'])
                last = k
    return kept


def _check_crops(data_root, dataset, people):
    by_id = {p['id']: p for p in people}
    errors, n_nan = [], 0
    for example in dataset.examples[0]:
        person = by_id[example.extra['annotation_id']]
        labelled = person['keypoints'][:, 2] > 0
        assert np.array_equal(np.isfinite(example.coords).all(axis=1), labelled)
        n_nan += int((~labelled).sum())
        errors += dot_errors(data_root / example.image_path, example.coords, radius=4)
    assert len(errors) > 40
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))
    return n_nan


def test_jrdb_recipe_on_fake_per_camera_labels(data_root):
    written = fake.write_fake_release(data_root / 'jrdb')
    dataset = _run(data_root)
    expected = _expected_kept_ids(written['camera'])
    # per camera: walker frames 0, 3; appearing foot frames 0, 2; jitterer frame 0
    assert len(expected) == 2 * 5 and len(dataset.examples[0]) == 10 and not dataset.examples[1]
    assert sorted(e.extra['annotation_id'] for e in dataset.examples[0]) == sorted(expected)
    assert all(e.camera is not None for e in dataset.examples[0])  # the undistorted crop camera
    assert _check_crops(data_root, dataset, written['camera']) > 0
    names = {Path(e.image_path).name for e in dataset.examples[0]}
    assert '000002_001.jpg' in names and '000005_001.jpg' in names  # label frames 0 and 3, image index + 2


def test_jrdb_recipe_on_fake_stitched_labels(data_root):
    written = fake.write_fake_release(data_root / 'jrdb')
    dataset = _run(data_root, labels='stitched')
    expected = _expected_kept_ids(written['stitched'])
    assert len(expected) == 5 and len(dataset.examples[0]) == 5
    assert sorted(e.extra['annotation_id'] for e in dataset.examples[0]) == sorted(expected)
    assert all('image_stitched' in e.image_path for e in dataset.examples[0])
    _check_crops(data_root, dataset, written['stitched'])


def test_jrdb_recipe_with_detections_drops_unmatched_people(data_root):
    """With a detection file, people are matched (IoU >= 0.1) before the selection and carry the detection box;
    here track 7 of image_0 has no detection in any frame."""
    from posepile.util import boxes as boxlib
    from posepile.util import fileio
    written = fake.write_fake_release(data_root / 'jrdb', stitched=False)
    detections = {}
    for person in written['camera']:
        relpath = f'{person["image_dir"]}/{fake.SEQUENCE}/{person["frame"] + 2:06d}.jpg'
        rows = detections.setdefault(relpath, [[700, 20, 40, 40, 0.9]])
        if not (person['image_dir'] == 'image_0' and person['track_id'] == 7):
            k = person['keypoints']
            rows.append([*boxlib.expand(boxlib.bb_of_points(k[k[:, 2] > 0, :2]), 1.1), 0.8])
    path = jrdb.detections_path(data_root)
    path.parent.mkdir(parents=True)
    fileio.save_pickle({key: np.array(rows, np.float32) for key, rows in detections.items()}, path)
    dataset = _run(data_root)
    kept = [p for p in written['camera'] if not (p['image_dir'] == 'image_0' and p['track_id'] == 7)]
    expected = _expected_kept_ids(kept)
    assert len(expected) == 9 and sorted(e.extra['annotation_id'] for e in dataset.examples[0]) == sorted(expected)
    _check_crops(data_root, dataset, written['camera'])


def test_selection_rule_unit():
    pose = np.stack([np.arange(17) * 10.0, np.full(17, 100.0)], axis=1)
    box = np.array([0, 0, 200, 100], np.float32)  # threshold 20 px
    assert not jrdb.is_moved_enough(pose + [19.9, 0], pose, box)
    assert jrdb.is_moved_enough(pose + [20.0, 0], pose, box)
    earlier = pose.copy()
    earlier[3] = np.nan
    assert jrdb.is_moved_enough(pose, earlier, box)
    assert not jrdb.is_moved_enough(earlier, pose, box)  # a joint lost is no reason


def test_frame_offset_and_camera_of_image_dir(tmp_path):
    assert jrdb.image_relpath_of_label('image_4/tressider-2019-04-26_2/000123.jpg') == \
        ('image_4', 'tressider-2019-04-26_2', 125)
    fake.write_fake_release(tmp_path / 'jrdb', stitched=False)
    cameras = jrdb.load_cameras(tmp_path / 'jrdb' / 'train_dataset' / 'calibration' / 'cameras.yaml')
    assert sorted(cameras) == list(range(10))
    assert jrdb.camera_of_image_dir(cameras, 'image_8') is cameras[4]
    assert jrdb.camera_of_image_dir(cameras, 'image_stitched') is None


@pytest.mark.parametrize('content, problem', [
    ('{"images": [', 'invalid JSON'),
    (json.dumps({'annotations': []}), 'expected a JSON object with the lists'),
    (json.dumps({'images': [{'id': 1, 'file_name': 'image_0/s/000000.jpg'}],
                 'annotations': [{'id': 9, 'image_id': 1, 'track_id': 2, 'keypoints': [1, 2, 2] * 16}]}),
     'annotation 9 has 48 keypoint values, expected 51'),
    (json.dumps({'images': [{'id': 1, 'file_name': 'image_0/s/000000.jpg'}],
                 'annotations': [{'id': 9, 'image_id': 4, 'track_id': 2, 'keypoints': [1, 2, 2] * 17}]}),
     'refers to unknown image 4'),
    (json.dumps({'images': [{'id': 1, 'file_name': 'frames/000000.png'}],
                 'annotations': [{'id': 9, 'image_id': 1, 'track_id': 2, 'keypoints': [1, 2, 2] * 17}]}),
     "image 1: file_name 'frames/000000.png' is not"),
    (json.dumps({'images': [{'id': 1, 'file_name': 'image_0/s/000000.jpg'}],
                 'annotations': [{'id': 9, 'image_id': 1, 'keypoints': [1, 2, 2] * 17}]}), 'malformed annotation'),
])
def test_malformed_label_file_names_file_and_problem(tmp_path, content, problem):
    path = tmp_path / 'bytes-cafe-2019-02-07_0_image0.json'
    path.write_text(content)
    with pytest.raises(jrdb.JRDBFormatError) as info:
        jrdb.load_label_file(path)
    message = str(info.value)
    assert str(path) in message and problem in message and '\n' not in message


@pytest.mark.parametrize('text, problem', [
    ('cameras:\n  sensor_0:\n    K: 1 2 3\n    R: 1 0 0 0 1 0 0 0 1\n    D: 0 0 0 0 0\n    T: 0 0 0\n',
     'sensor_0 K has 3 values, expected 9'),
    ('stitching:\n  radius: 1\n', 'no "cameras" mapping'),
    ('cameras:\n  sensor_0:\n    R: 1 0 0 0 1 0 0 0 1\n', 'sensor_0 has no K'),
    ('cameras:\n  sensor_0:\n      oops\n', 'does not fit'),
])
def test_malformed_cameras_file_names_file_and_problem(tmp_path, text, problem):
    path = tmp_path / 'cameras.yaml'
    path.write_text(text)
    with pytest.raises(jrdb.JRDBFormatError) as info:
        jrdb.load_cameras(path)
    assert str(path) in str(info.value) and problem in str(info.value) and '\n' not in str(info.value)


def test_real_jrdb_cameras(realdata):
    """The toolkit's cameras.yaml: 10 sensors, two rings of 5 cameras 72 degrees apart, 5 distortion values."""
    path = realdata_file(realdata, 'jrdb/train_dataset/calibration/cameras.yaml')
    cameras = jrdb.load_cameras(path)
    assert sorted(cameras) == list(range(10))
    centers = np.stack([cameras[i].t for i in range(10)])
    radii = np.hypot(centers[:, 0], centers[:, 2])
    assert np.all((radii > 40) & (radii < 60))
    assert np.all(np.abs(centers[:5, 1]) < 10) and np.all(np.abs(centers[5:, 1] - 128) < 5)
    np.testing.assert_allclose(cameras[0].distortion_coeffs[:2], [-0.336591, 0.159742])
    np.testing.assert_allclose(cameras[0].intrinsic_matrix[0, 2], 350.738)
    for camera in cameras.values():
        np.testing.assert_allclose(camera.R @ camera.R.T, np.eye(3), atol=1e-4)
        # a point 5 m in front of the camera lands near the principal point (px)
        point = camera.t + 5000 * camera.R[2]
        projected = camera.world_to_image(point[np.newaxis])[0]
        assert np.linalg.norm(projected - camera.intrinsic_matrix[:2, 2]) < 1


def test_real_jrdb_stitched_labels(realdata):
    """The real stitched subset: 15 images, 60 people (4 tracks), panorama x up to 3760 px, frames shifted +2."""
    path = realdata_file(realdata, 'jrdb/train_dataset/labels/labels_2d_pose_stitched_coco/'
                                   'meyer-green-2019-03-16_0.subset_images_1-15.json')
    raw = json.loads(path.read_text())
    people = jrdb.load_label_file(path)
    assert len(people) == len(raw['annotations']) == 60
    assert len({p['track_id'] for p in people}) == 4
    images = {image['id']: image['file_name'] for image in raw['images']}
    for person, annotation in zip(people, raw['annotations']):
        label_frame = int(Path(images[annotation['image_id']]).stem)
        assert person['frame'] == label_frame + 2 and person['image_dir'] == 'image_stitched'
        v = np.array(annotation['keypoints']).reshape(17, 3)[:, 2]
        assert np.array_equal(np.isnan(person['coords'][:, 0]), v == 0)
    xs = np.concatenate([p['coords'][:, 0] for p in people])
    assert np.nanmax(xs) > 752 and np.nanmax(xs) < 3760
    selected = jrdb.select_people(jrdb.attach_boxes(people))
    assert 4 <= len(selected) < 60
