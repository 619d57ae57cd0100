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


def _run(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1',
               PATH=f'{Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}')  # this venv's python
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/posetrack/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def _expected_kept_ids(people, per_joint=True):
    """The selection rule written out plainly: per track in frame order, keep a frame if a joint visible in it
    and in the last kept frame moved > 0.5 x head diagonal, or a joint is visible now but was not then."""
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
                moved = (np.hypot(step[:, 0], step[:, 1]) > limit).any() if per_joint else \
                    np.sqrt((step ** 2).sum()) > limit
                keep = moved or bool((visible & (last['keypoints'][:, 2] != 1)).any())
            if keep:
                kept.append(person['id'])
                last = person
    return kept


def test_posetrack_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'posetrack')
    _run(data_root)
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'posetrack.posepile')
    people = {p['id']: p for seqs in written.values() for ps in seqs.values() for p in ps}
    for split_name, split in posetrack.SPLITS.items():
        expected = [i for ps in written[split_name].values() for i in _expected_kept_ids(ps)]
        frobenius = [i for ps in written[split_name].values() for i in _expected_kept_ids(ps, per_joint=False)]
        assert len(frobenius) > len(expected)  # the jittering track tells the two rules apart
        assert sorted(e.extra['annotation_id'] for e in dataset.examples[split]) == sorted(expected)
    # per sequence: walker frames 0, 3, 6; jitterer frame 0; appearing ankle frames 0, 3
    assert len(dataset.examples[0]) == 6 + 4 and len(dataset.examples[1]) == 6
    errors, n_nan = [], 0
    for split in (0, 1):
        for example in dataset.examples[split]:
            visible = people[example.extra['annotation_id']]['keypoints'][:, 2] == 1
            assert np.array_equal(np.isfinite(example.coords).all(axis=1), visible)
            n_nan += int((~visible).sum())
            errors += dot_errors(data_root / example.image_path, example.coords, radius=4)
    assert n_nan > 0 and len(errors) > 50
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_frame_selection_measures_each_joint_separately():
    pose = np.zeros((17, 2))
    pose[:, 0] = np.arange(17) * 20
    small_everywhere = pose + [0.3 * 28.0, 0]  # every joint 8.4 px (< 14 px), all together 34.6 px
    one_far = pose.copy()
    one_far[5] += [0.6 * 28.0, 0]  # one joint 16.8 px
    kept = posetrack.select_track_frames(np.stack([pose, small_everywhere, one_far]), [28.0] * 3)
    assert kept == [0, 2]
    appearing = np.stack([pose, pose, pose])
    appearing[0, 3] = np.nan
    assert posetrack.select_track_frames(appearing, [28.0, np.nan, 28.0]) == [0, 1]
    assert posetrack.select_track_frames(np.full((2, 17, 2), np.nan), [28.0, 28.0]) == []
    exactly_at_threshold = pose.copy()
    exactly_at_threshold[5] += [14.0, 0]  # 0.5 x 28 px: kept, as the original's "not all < threshold"
    assert posetrack.select_track_frames(np.stack([pose, exactly_at_threshold]), [28.0] * 2) == [0, 1]


def test_box_falls_back_to_expanded_keypoint_box(tmp_path):
    written = fake.write_fake_release(tmp_path / 'posetrack')
    path = tmp_path / 'posetrack' / 'annotations' / 'val' / f'{fake.SEQUENCES["val"][0]}.json'
    people = posetrack.load_sequence(path)
    without = [p for p in people if p['bbox'] is None]
    assert len(without) == sum(not p['has_bbox'] for p in written['val'][fake.SEQUENCES['val'][0]]) > 0
    coords = without[0]['coords']
    box = posetrack.person_box(without[0])
    lo, hi = np.nanmin(coords, axis=0), np.nanmax(coords, axis=0)
    np.testing.assert_allclose(box[2:], (hi - lo) * 1.15, rtol=1e-5)
    np.testing.assert_allclose(box[:2] + box[2:] / 2, (lo + hi) / 2, rtol=1e-5)


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
        assert len(posetrack.select_people(people)) == len(people)  # one frame per track: all kept
