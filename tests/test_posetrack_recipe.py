import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.posetrack import main as posetrack
from tests.conftest import realdata_file
from tests.fakes import posetrack as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _run(data_root, **env_extra):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1',
               PATH=f'{Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}')  # this venv's python
    env.pop('POSEPILE_CACHE_DIR', None)
    env.pop('POSEPILE_DETECTOR', None)
    env.pop('POSETRACK_SELECTION', None)
    env.update(env_extra)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/posetrack/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return load_dataset(data_root / 'cache' / 'posetrack.posepile')


def _iou(a, b):
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


def _candidates(people, detections=None):
    """People the selection sees: with an annotation bbox and, with detections, one of IoU >= 0.1 (here each
    person has at most one such detection, so the Hungarian matching is just this test)."""
    kept = [p for p in people if p['has_bbox']]
    if detections is not None:
        kept = [p for p in kept if any(_iou(p['bbox'], d[:4]) >= 0.1 for d in detections[p['file_name']])]
    return kept


def _expected_kept_ids(people, per_joint=False):
    """The selection rule written out plainly: per track in frame order, keep a frame if a joint visible in it
    and not in the last kept frame, or the joints visible in both moved >= 0.5 x head diagonal: one norm over
    all of them (the original's rule) or some single joint (per_joint)."""
    kept = []
    for track_id in sorted({p['track_id'] for p in people}):
        last = None
        for person in sorted((p for p in people if p['track_id'] == track_id), key=lambda p: p['frame_index']):
            visible = person['keypoints'][:, 2] == 1
            if not visible.any():
                continue
            keep = last is None
            if not keep:
                both = visible & (last['keypoints'][:, 2] == 1)
                step = person['keypoints'][both, :2] - last['keypoints'][both, :2]
                limit = 0.5 * person['head_diagonal']
                moved = (np.hypot(step[:, 0], step[:, 1]) >= limit).any() if per_joint else \
                    np.sqrt((step ** 2).sum()) >= limit
                keep = moved or bool((visible & (last['keypoints'][:, 2] != 1)).any())
            if keep:
                kept.append(person['id'])
                last = person
    return kept


def _expected(written, split_name, detections=None, per_joint=False):
    return sorted(i for ps in written[split_name].values()
                  for i in _expected_kept_ids(_candidates(ps, detections), per_joint))


def _check_crops(data_root, dataset, written):
    people = {p['id']: p for seqs in written.values() for ps in seqs.values() for p in ps}
    errors, n_nan = [], 0
    for split in (0, 1):
        for example in dataset.examples[split]:
            visible = people[example.extra['annotation_id']]['keypoints'][:, 2] == 1
            assert np.array_equal(np.isfinite(example.coords).all(axis=1), visible)
            n_nan += int((~visible).sum())
            errors += dot_errors(data_root / example.image_path, example.coords, radius=4)
    assert n_nan > 0 and len(errors) > 50
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_posetrack_recipe_on_fake_release(data_root):
    """Moved-up layout, no detector: annotation boxes, bbox-less people dropped, the original's selection."""
    written = fake.write_fake_release(data_root / 'posetrack')
    dataset = _run(data_root)
    counts = {}
    for split_name, split in posetrack.SPLITS.items():
        expected = _expected(written, split_name)
        assert sorted(e.extra['annotation_id'] for e in dataset.examples[split]) == expected
        counts[split_name] = len(expected), len(_expected(written, split_name, per_joint=True))
    # (original's rule, per-joint rule): the jittering tracks tell them apart; val's jitterer has no bbox
    assert counts == {'train': (38, 10), 'val': (11, 5)}
    assert all('detection_score' not in e.extra for e in dataset.examples[0])
    _check_crops(data_root, dataset, written)


def test_posetrack_recipe_with_detector_on_the_label_archive_layout(data_root):
    """posetrack_data/annotations (as the label archive extracts) and a detector: people are matched to the
    detections (IoU >= 0.1) before the selection, unmatched ones dropped, the detection is the box."""
    written = fake.write_fake_release(data_root / 'posetrack', annotation_dir='posetrack_data/annotations')
    fake.write_detections(posetrack.detections_path(data_root), written)  # the detect stage then skips
    from posepile.util import fileio
    detections = fileio.load_pickle(posetrack.detections_path(data_root))
    dataset = _run(data_root, POSEPILE_DETECTOR='hog')
    for split_name, split in posetrack.SPLITS.items():
        expected = _expected(written, split_name, detections)
        assert sorted(e.extra['annotation_id'] for e in dataset.examples[split]) == expected
    # the appearing track's ankle frame (3) is undetected: frame 4 is kept in its place; the walker of the second
    # train sequence loses frame 0 (a head-sized detection), so its first kept frame is 1
    train = {e.extra['annotation_id'] for e in dataset.examples[0]}
    people = {(p['sequence'], p['track_id'], p['frame_index']): p['id']
              for seqs in written.values() for ps in seqs.values() for p in ps}
    assert people[('000001_bonn_train', 2, 4)] in train and people[('000001_bonn_train', 2, 3)] not in train
    assert people[('000002_mpii_train', 1, 0)] not in train and people[('000002_mpii_train', 1, 1)] in train
    assert (len(dataset.examples[0]), len(dataset.examples[1])) == (37, 10)
    assert all(e.extra['detection_score'] == pytest.approx(0.6 + e.extra['annotation_id'] / 1e6)
               for split in (0, 1) for e in dataset.examples[split])
    _check_crops(data_root, dataset, written)
    # before cropping, each example's box is its person's detection
    by_id = {p['id']: p for seqs in written.values() for ps in seqs.values() for p in ps}
    for _, example, _ in posetrack.make_crop_tasks(data_root, detector_spec='hog'):
        np.testing.assert_allclose(example.bbox, fake.detection_box(by_id[example.extra['annotation_id']]),
                                   atol=1e-3)


def test_selection_rules_and_layouts_without_cropping(tmp_path):
    written = fake.write_fake_release(tmp_path / 'posetrack')
    for rule, per_joint in [('frobenius', False), ('per_joint', True)]:
        tasks = posetrack.make_crop_tasks(tmp_path, selection=rule)
        for split_name, split in posetrack.SPLITS.items():
            got = sorted(t[1].extra['annotation_id'] for t in tasks if t[0].startswith(f'{split}/'))
            assert got == _expected(written, split_name, per_joint=per_joint)
    by_id = {p['id']: p for seqs in written.values() for ps in seqs.values() for p in ps}
    for _, example, _ in tasks:  # no detector: the annotation box
        np.testing.assert_allclose(example.bbox, by_id[example.extra['annotation_id']]['bbox'], atol=1e-3)
    with pytest.raises(ValueError, match='unknown PoseTrack selection rule'):
        posetrack.select_track_frames(np.zeros((1, 17, 2)), [28.0], rule='l1')
    # a detector configured but no detection file, or one missing frames (stale): one clear error
    with pytest.raises(FileNotFoundError, match='run the detect stage'):
        posetrack.make_crop_tasks(tmp_path, detector_spec='hog')
    from posepile.util import fileio
    fake.write_detections(posetrack.detections_path(tmp_path), written)
    stale = fileio.load_pickle(posetrack.detections_path(tmp_path))
    del stale['images/val/003418_mpii_test/000002.jpg']
    fileio.save_pickle(stale, posetrack.detections_path(tmp_path))
    with pytest.raises(FileNotFoundError, match='no detections for 1 frames .*rerun the detect stage'):
        posetrack.make_crop_tasks(tmp_path, detector_spec='hog')
    # both layouts holding sequence files is ambiguous
    fake.write_fake_release(tmp_path / 'posetrack', annotation_dir='posetrack_data/annotations')
    with pytest.raises(posetrack.PoseTrackFormatError, match='both hold sequence files'):
        posetrack.make_crop_tasks(tmp_path)


def test_frame_selection_rules():
    pose = np.zeros((17, 2))
    pose[:, 0] = np.arange(17) * 20
    small_everywhere = pose + [0.3 * 28.0, 0]  # every joint 8.4 px (< 14 px), all together 34.6 px
    one_far = small_everywhere.copy()
    one_far[5] += [0.6 * 28.0, 0]  # one joint 16.8 px further
    frames = np.stack([pose, small_everywhere, one_far])
    assert posetrack.select_track_frames(frames, [28.0] * 3, rule='per_joint') == [0, 2]
    assert posetrack.select_track_frames(frames, [28.0] * 3, rule='frobenius') == [0, 1, 2]
    assert posetrack.select_track_frames(frames, [28.0] * 3) == [0, 1, 2]  # the original's rule is the default
    few = pose.copy()
    few[:3] = np.nan
    three_joints = np.stack([few, few + [8.0, 0]])  # 14 joints x 8 px: norm 29.9 px, per joint 8 px
    assert posetrack.select_track_frames(three_joints, [28.0] * 2, rule='frobenius') == [0, 1]
    assert posetrack.select_track_frames(three_joints, [28.0] * 2, rule='per_joint') == [0]
    for rule in posetrack.SELECTION_RULES:
        appearing = np.stack([pose, pose, pose])
        appearing[0, 3] = np.nan
        assert posetrack.select_track_frames(appearing, [28.0, np.nan, 28.0], rule=rule) == [0, 1]
        assert posetrack.select_track_frames(np.full((2, 17, 2), np.nan), [28.0, 28.0], rule=rule) == []
        exactly_at_threshold = pose.copy()
        exactly_at_threshold[5] += [14.0, 0]  # 0.5 x 28 px, by one joint (so the norm is 14 px too): kept
        assert posetrack.select_track_frames(np.stack([pose, exactly_at_threshold]), [28.0] * 2, rule=rule) == [0, 1]


def test_people_without_bbox_are_dropped(tmp_path):
    written = fake.write_fake_release(tmp_path / 'posetrack')
    path = tmp_path / 'posetrack' / 'annotations' / 'val' / f'{fake.SEQUENCES["val"][0]}.json'
    people = posetrack.load_sequence(path)
    without = {p['id'] for p in people if p['bbox'] is None}
    assert without == {p['id'] for p in written['val'][fake.SEQUENCES['val'][0]] if not p['has_bbox']}
    assert len(without) == 9
    boxed = posetrack.attach_boxes(people)
    assert len(boxed) == len(people) - 9 and not without & {p['id'] for p in boxed}
    assert all(np.array_equal(p['box'], p['bbox']) for p in boxed)


@pytest.mark.parametrize('content, problem', [
    ('{"images": [', 'invalid JSON'),
    (json.dumps({'images': [{'id': 1, 'file_name': 'a.jpg', 'frame_id': 1}],
                 'annotations': [{'id': 7, 'image_id': 1, 'track_id': 0, 'keypoints': [1, 2, 1] * 16}]}),
     'annotation 7 has 48 keypoint values, expected 51'),
    (json.dumps({'images': [], 'annotations': [{'id': 7, 'image_id': 3, 'keypoints': []}]}),
     'refers to unknown image 3'),
    (json.dumps({'annotations': []}), 'not a PoseTrack 2018 file'),
    (json.dumps({'images': [{'id': 1, 'file_name': 'a.jpg', 'frame_id': 1}],
                 'annotations': [{'id': 7, 'image_id': 1, 'track_id': 0, 'keypoints': [1, 2, 1] * 17,
                                  'bbox_head': [1, 2, 3]}]}), 'has a bbox_head of 3 values, expected 4'),
])
def test_malformed_file_names_file_and_problem(tmp_path, content, problem):
    path = tmp_path / '000001_bonn_train.json'
    path.write_text(content)
    with pytest.raises(posetrack.PoseTrackFormatError) as info:
        posetrack.load_sequence(path)
    message = str(info.value)
    assert str(path) in message and problem in message and '\n' not in message


def test_real_posetrack18_sample(realdata):
    """Two real PoseTrack 2018 val files (one labelled frame each): 1 and 2 people, v in {0, 1}."""
    expected = {'003418_mpii_test': [11], '009473_mpii_test': [14, 15]}
    for sequence, n_valid in expected.items():
        path = realdata_file(realdata, f'posetrack18/annotations/val/{sequence}.json')
        raw = json.loads(path.read_text())
        people = posetrack.load_sequence(path)
        assert [int(np.isfinite(p['coords']).all(axis=1).sum()) for p in people] == n_valid
        for person, annotation in zip(people, raw['annotations']):
            v = np.array(annotation['keypoints']).reshape(17, 3)[:, 2]
            assert np.array_equal(np.isnan(person['coords'][:, 0]), v != 1)
            assert person['bbox'] is not None and 100 < person['head_diagonal'] < 500
            valid = person['coords'][np.isfinite(person['coords'][:, 0])]
            assert np.all((valid >= 0) & (valid < [1920, 1080]))
            assert (realdata / 'posetrack18' / person['file_name']).exists()
        for rule in posetrack.SELECTION_RULES:  # one frame per track: all kept
            assert len(posetrack.select_people(posetrack.attach_boxes(people), rule)) == len(people)
