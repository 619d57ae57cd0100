import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.jta import main as jta
from posepile.util.sampling import select_frames
from tests.fakes import jta as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _expected_keys(written):
    """{split: set of (frame, person id)} from the fake and the rules, computed here independently."""
    expected = {}
    for split, data in written.items():
        coords, occluded = data['coords'], data['occluded']
        z = coords[..., 2]
        u = fake.F * coords[..., 0] / z + fake.CX
        v = fake.F * coords[..., 1] / z + fake.CY
        with np.errstate(invalid='ignore'):
            valid = (z > 0) & (u >= 0) & (u < 1920) & (v >= 0) & (v < 1080) & ~occluded & np.isfinite(z)
        keys = set()
        for p, pid in enumerate(data['person_ids']):
            eligible = []
            for f in range(len(coords)):
                ok = valid[f, p]
                if ok.sum() >= 5:
                    side = max(np.ptp(u[f, p][ok]), np.ptp(v[f, p][ok]))
                    if side > 100:
                        eligible.append(f)
            eligible = np.array(eligible, int)
            if len(eligible):
                keys |= {(int(f), int(pid)) for f in eligible[select_frames(coords[eligible, p], 100)]}
        expected[jta.SPLITS[split]] = keys
    return expected


def _all_dots(camera, coords_of_frame):
    """Where every person's dots of a frame land in a crop (mm camera-frame joints of all people)."""
    points = coords_of_frame.reshape(-1, 3)
    points = points[np.all(np.isfinite(points), axis=1)]
    return camera.world_to_image(points)


def test_jta_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'jta')
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    env.pop('POSEPILE_DETECTOR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/jta/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'jta.posepile')
    assert dataset.joint_info.names == jta.JOINT_NAMES.split(',')
    expected = _expected_keys(written)
    person_ids = list(fake.PERSON_IDS)
    errors = []
    for split in (0, 1, 2):
        examples = list(dataset.examples[split])
        got = {(int(Path(e.image_path).stem[:6]), int(Path(e.image_path).stem[7:])) for e in examples}
        assert got == expected[split] and len(examples) == len(got)
        assert any(pid == 7 for _, pid in got) and not any(pid == 40 for _, pid in got)
        for example in examples:
            frame, pid = int(Path(example.image_path).stem[:6]), int(Path(example.image_path).stem[7:])
            data = written[{0: 'train', 1: 'val', 2: 'test'}[split]]
            truth = data['coords'][frame, person_ids.index(pid)]
            np.testing.assert_array_equal(np.isnan(example.world_coords).any(1), np.isnan(truth).any(1))
            np.testing.assert_allclose(example.world_coords, truth, atol=0.01)  # camera frame, mm
            angle = np.degrees(np.arccos(np.clip(np.dot(example.camera.world_up, fake.UP_CAM), -1, 1)))
            assert angle < 1.5, angle
            if len(errors) < 200:
                radius = max(3, int(round(5 * example.camera.intrinsic_matrix[0, 0] / fake.F)))
                full = jta.make_camera().world_to_image(example.world_coords)
                drawn = np.all((full >= 12) & (full < np.array(fake.SIZE) - 12), axis=1)  # dots of the fake
                projected = example.camera.world_to_image(example.world_coords)
                errors += dot_errors(data_root / example.image_path, np.where(drawn[:, None], projected, np.nan),
                                     radius, neighbours=_all_dots(example.camera, data['coords'][frame]))
    assert np.isnan(next(e for e in dataset.examples[0] if e.image_path.endswith('_041.jpg')).world_coords).any()
    assert len(errors) > 30
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))
    assert len(dataset.examples[0]) > 5


def test_world_up_is_the_geometric_median():
    rng = np.random.default_rng(0)
    up = np.array([0.0, -0.99, 0.14]) / np.linalg.norm([0.0, -0.99, 0.14])
    poses = np.zeros((6, 22, 3))
    for i in range(5):
        poses[i, 18] = poses[i, 21] = rng.normal(0, 1000, 3)
        poses[i, 2] = poses[i, 18] + 1500 * (up + rng.normal(0, 0.01, 3))
    poses[5, 2] = poses[5, 18] + [1500, 0, 0]  # an outlier (a person lying down) barely moves the median
    poses[5, 21] = poses[5, 18]
    assert np.degrees(np.arccos(np.dot(jta.frame_world_up(poses), up))) < 2
    assert np.allclose(jta.frame_world_up(np.full((2, 22, 3), np.nan)), [0, -1, 0])


def test_malformed_annotation_names_the_file(tmp_path):
    path = tmp_path / 'seq_1.json'
    path.write_text('[[1, 0, 0, 1.0, 2.0, 0.1, 0.2, 5.0, 0]]')
    with pytest.raises(jta.JTAFormatError, match='seq_1.json.*10 numbers'):
        jta.load_poses(path)
    path.write_text('[[1, 0, 30, 1.0, 2.0, 0.1, 0.2, 5.0, 0, 0]]')
    with pytest.raises(jta.JTAFormatError, match='seq_1.json.*joint ids'):
        jta.load_poses(path)
    path.write_text('[[0, 0, 3, 1.0, 2.0, 0.1, 0.2, 5.0, 0, 0]]')
    with pytest.raises(jta.JTAFormatError, match='seq_1.json.*frame'):
        jta.load_poses(path)


def test_match_detections_assigns_first_and_filters_after():
    gt = [[100, 100, 80, 200], [400, 120, 90, 220], [900, 100, 60, 150]]
    detections = np.array([[395, 110, 100, 240, 0.9],  # person 1
                           [95, 95, 90, 215, 0.8],  # person 0
                           [850, 60, 160, 240, 0.9]], np.float32)  # person 2, but area > 2x: not kept
    matched = dict(jta.match_detections(gt, detections))
    assert sorted(matched) == [0, 1]
    np.testing.assert_allclose(matched[0], detections[1, :4])
    np.testing.assert_allclose(matched[1], detections[0, :4])
    # a detection whose longer side is 100 px is not kept, even at IoU 1
    assert jta.match_detections([[0, 0, 100, 60]], [[0, 0, 100, 60, 1]]) == []
    # the assignment comes first: person 0's best detection is taken by the assignment for the pair of higher
    # summed IoU, and the filter then drops person 1's (area > 2x) instead of falling back to another pairing
    gt = [[0, 0, 100, 200], [0, 0, 60, 120]]
    detections = [[0, 0, 60, 130, 1], [0, 0, 110, 200, 1]]
    assert [i for i, _ in jta.match_detections(gt, detections)] == [0, 1]


def _iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _gt_detector_boxes(coords_of_frame):
    """The `gt:1.0` detector restated: per person the box of all annotated joints in front of the camera,
    clipped to the 1920x1080 image."""
    result = []
    for pose in coords_of_frame:
        with np.errstate(invalid='ignore'):
            front = pose[np.isfinite(pose[:, 2]) & (pose[:, 2] > 0)]
        if len(front) == 0:
            continue
        u, v = fake.F * front[:, 0] / front[:, 2] + fake.CX, fake.F * front[:, 1] / front[:, 2] + fake.CY
        x1, x2 = np.clip([u.min(), u.max()], 0, 1920)
        y1, y2 = np.clip([v.min(), v.max()], 0, 1080)
        if x2 > x1 and y2 > y1:
            result.append([x1, y1, x2 - x1, y2 - y1])
    return result


def _expected_with_detector(data, order):
    """({(frame, person id): detection box}, {(frame, person id): the sampler chose it}) by the original's JTA
    rule ('match first': Hungarian over the people with a visible box, IoU > 0.1, det area < 2x the visible box,
    det longer side > 100, then >= 5 valid joints, then the 100 mm sampler per person) or by the old order
    ('select first': >= 5 valid joints and a visible box longer side > 100, the sampler, then the matching among
    the selected people of each frame)."""
    from scipy.optimize import linear_sum_assignment
    coords, occluded = data['coords'], data['occluded']
    z = coords[..., 2]
    u, v = fake.F * coords[..., 0] / z + fake.CX, fake.F * coords[..., 1] / z + fake.CY
    with np.errstate(invalid='ignore'):
        valid = (z > 0) & (u >= 0) & (u < 1920) & (v >= 0) & (v < 1080) & ~occluded & np.isfinite(z)

    def visible_box(f, p):
        ok = valid[f, p]
        return [u[f, p][ok].min(), v[f, p][ok].min(), np.ptp(u[f, p][ok]), np.ptp(v[f, p][ok])] if ok.any() else None

    def matches(f, people):
        gts = [(p, visible_box(f, p)) for p in people]
        gts = [(p, box) for p, box in gts if box is not None and box[2] > 0]
        dets = _gt_detector_boxes(coords[f])
        if not gts or not dets:
            return {}
        ious = np.array([[_iou(g, d) for d in dets] for _, g in gts])
        result = {}
        for i, j in zip(*linear_sum_assignment(-ious)):
            d, g = dets[j], gts[i][1]
            if ious[i, j] > 0.1 and d[2] * d[3] < 2 * g[2] * g[3] and max(d[2], d[3]) > 100:
                result[gts[i][0]] = d
        return result

    n_frames, n_people = coords.shape[:2]
    keys = {}
    for p, pid in enumerate(data['person_ids']):
        if order == 'match first':
            eligible = [(f, matches(f, range(n_people))[p]) for f in range(n_frames)
                        if p in matches(f, range(n_people)) and valid[f, p].sum() >= 5]
        else:
            eligible = [(f, None) for f in range(n_frames) if valid[f, p].sum() >= 5
                        and max(visible_box(f, p)[2:]) > 100]
        if eligible:
            frames = np.array([f for f, _ in eligible])
            for i in select_frames(coords[frames, p], 100):
                keys[(int(frames[i]), int(pid))] = eligible[i][1]
    selected = dict(keys)
    if order == 'select first':
        person_index = {int(pid): p for p, pid in enumerate(data['person_ids'])}
        kept = {}
        for f in {f for f, _ in keys}:
            people = [person_index[pid] for g, pid in keys if g == f]
            for p, box in matches(f, people).items():
                kept[(f, int(data['person_ids'][p]))] = box
        keys = kept
    return keys, selected


def test_jta_recipe_with_a_detector_matches_first_and_selects_after(data_root):
    written = fake.write_fake_release(data_root / 'jta', splits=('train',))
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_DETECTOR='gt:1.0')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/jta/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'jta.posepile')
    expected, _ = _expected_with_detector(written['train'], 'match first')
    select_first, sampled_first = _expected_with_detector(written['train'], 'select first')
    got = {(int(Path(e.image_path).stem[:6]), int(Path(e.image_path).stem[7:])): e for e in dataset.examples[0]}
    assert set(got) == set(expected) and len(got) == len(dataset.examples[0])
    # frame 0 of person 7 is selected by a sampler run first, but unmatched (the whole-body detection is > 2x
    # its visible box): it suppressed the matchable frames after it, which matching first keeps
    assert (0, 7) in sampled_first and (0, 7) not in select_first and (0, 7) not in expected
    assert {f for f, pid in expected if pid == 7} - {f for f, pid in select_first if pid == 7}
    assert len(expected) > len(select_first)
    from posepile.preproc.cropping import plan_crop
    for key, example in got.items():  # the box is the matched detection, carried into the crop
        camera = jta.make_camera(world_up=example.camera.world_up)
        _, crop_box, _ = plan_crop(camera, np.asarray(expected[key], np.float64), (1080, 1920))
        np.testing.assert_allclose(example.bbox, crop_box, atol=0.05)
