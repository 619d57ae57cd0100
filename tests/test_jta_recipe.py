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


def test_detections_are_associated_by_the_hungarian_rule():
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import BoxRule, PersonTask, choose_boxes
    rule = BoxRule(**jta.DETECTION_RULE)
    gt = [[100, 100, 80, 200], [400, 120, 90, 220], [900, 100, 60, 150]]
    people = [PersonTask(str(i), Pose3DExample('x.jpg', np.zeros((22, 3)), box, jta.make_camera()), 'c.jpg')
              for i, box in enumerate(gt)]
    detections = np.array([[395, 110, 100, 240, 0.9],  # person 1
                           [95, 95, 90, 215, 0.8],  # person 0
                           [850, 60, 160, 240, 0.9]], np.float32)  # person 2, but area > 2x: not allowed
    chosen = choose_boxes(people, detections, rule)
    np.testing.assert_allclose(chosen[0], detections[1, :4])
    np.testing.assert_allclose(chosen[1], detections[0, :4])
    assert chosen[2] is None  # unmatched people are dropped, as the original
