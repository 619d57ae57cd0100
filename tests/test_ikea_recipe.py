"""posepile/ds/ikea/main.sh end to end on a fake IKEA ASM release (AVI videos, annotated frames only)."""
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.ikea import main as ikea
from tests.fakes import ikea as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _kept_by_rule(poses_mm):
    """The original's AdaptivePoseSampler(100, check_validity=True) written out: keep the first frame with a
    valid joint; later keep a frame if a joint is valid now but missing in the last kept pose, or if some
    joint valid now moved >= 100 mm from the last kept pose."""
    kept, last = [], None
    for i, pose in enumerate(poses_mm):
        valid = np.all(np.isfinite(pose), axis=1)
        if last is None:
            last = pose
            if valid.any():
                kept.append(i)
            continue
        if not valid.any():
            continue
        if np.any(valid & ~np.all(np.isfinite(last), axis=1)) or \
                np.max(np.linalg.norm(pose[valid] - last[valid], axis=1)) >= 100:
            kept.append(i)
            last = pose
    return kept


def _expected(written):
    """{(furniture, recording, dev): [frames]} by the selection rule and >= 4 joints inside 1920x1080."""
    result = {}
    for (furniture, recording, dev), per_frame in written['poses'].items():
        if recording == 'special_test':
            continue
        K = written['cameras'][recording.split('_')[3]][dev]['K']
        frames = sorted(per_frame)
        poses_mm = np.array([np.where(per_frame[f] == 0, np.nan, per_frame[f] * 10) for f in frames])
        chosen = []
        for i in _kept_by_rule(poses_mm):
            with np.errstate(invalid='ignore'):
                uv = fake.project(K, poses_mm[i])
                inside = (poses_mm[i][:, 2] > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < 1920) & (uv[:, 1] >= 0) & \
                    (uv[:, 1] < 1080)
            if np.count_nonzero(inside) >= 4:
                chosen.append(frames[i])
        result[(furniture, recording, dev)] = chosen
    return result


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    data_root = tmp_path_factory.mktemp('ikea_data')
    written = fake.write_fake_release(data_root / 'ikea')
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{env.get("PATH", "")}'
    for var in ('POSEPILE_CACHE_DIR', 'POSEPILE_DETECTOR', 'POSEPILE_SEGMENT'):
        env.pop(var, None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/ikea/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return data_root, written, load_dataset(data_root / 'cache' / 'ikea.posepile')


def test_counts_follow_selection_and_in_image_rule(built):
    data_root, written, dataset = built
    expected = _expected(written)
    n_expected = sum(map(len, expected.values()))
    assert len(dataset.examples[0]) == n_expected
    assert not dataset.examples[1] and not dataset.examples[2]
    partly_out = expected[('Lack_TV_Bench', '0007_oak_table_02_01_2019_08_16_14_00', 'dev1')]
    assert 0 not in partly_out and partly_out  # frame 0 has < 4 joints inside the image
    assert n_expected < sum(len(p) for k, p in written['poses'].items() if k[1] != 'special_test')
    selection = json.loads((data_root / 'ikea/posepile_work/selection.json').read_text())
    assert {tuple(k.split('/')): v for k, v in selection.items()} == expected
    assert not any('special_test' in ex.image_path for ex in dataset.examples[0])
    assert dataset.joint_info.names == ikea.JOINT_NAMES.split(',')


def test_units_world_frame_and_missing_joints(built):
    _, written, dataset = built
    for example in dataset.examples[0]:
        parts = Path(example.image_path).parts  # ikea_downscaled/<furniture>/<recording>/<dev>/images/<frame>.jpg
        cm = written['poses'][(parts[1], parts[2], parts[3])][int(Path(example.image_path).stem)]
        expected_mm = np.where(cm == 0, np.nan, cm * 10)
        # world = R^T cam: distances to the origin (the camera) are preserved, in mm
        assert np.allclose(np.linalg.norm(example.world_coords, axis=1), np.linalg.norm(expected_mm, axis=1),
                           rtol=1e-4, equal_nan=True)
        assert example.camera.world_up.tolist() == [0, -1, 0]


def test_dots_sit_at_the_projected_joints(built):
    data_root, _, dataset = built
    errors = []
    for example in dataset.examples[0]:
        projected = example.camera.world_to_image(example.world_coords)
        errors += dot_errors(data_root / example.image_path, projected, radius=4, background=fake.BACKGROUND)
    assert len(errors) > 40
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_boxes_are_the_joint_box_times_1_2(built):
    from posepile.util import boxes
    _, _, dataset = built
    for example in dataset.examples[0][:10]:
        expected = boxes.expand(boxes.bb_of_points(example.camera.world_to_image(example.world_coords)), 1.2)
        assert np.allclose(example.bbox[2:], expected[2:], rtol=0.03), (example.bbox, expected)


def test_box_rule_follows_the_detector():
    from posepile.preproc.video_stage import BoxRule
    assert ikea.box_rule(None) == BoxRule('gt')
    assert ikea.box_rule('hog') == BoxRule('best_iou', 0.3)


def test_malformed_files_name_the_file(tmp_path):
    bad = tmp_path / '000003.json'
    bad.write_text(json.dumps({'pose_keypoints_3d': [1.0] * 50}))
    with pytest.raises(ikea.IkeaFormatError, match=r'000003\.json: pose_keypoints_3d has 50 values'):
        ikea.load_pose(bad)
    calib = tmp_path / 'camera_parameters.pkl'
    calib.write_bytes(pickle.dumps({'02': {'dev1': {'K': np.eye(3), 'R': 2 * np.eye(3)}}}))
    with pytest.raises(ikea.IkeaFormatError, match=r'camera_parameters\.pkl: 02/dev1/R is not a rotation'):
        ikea.load_cameras(calib)
    calib.write_bytes(b'not a pickle')
    with pytest.raises(ikea.IkeaFormatError, match=r'camera_parameters\.pkl: cannot unpickle'):
        ikea.load_cameras(calib)
