import json

import numpy as np
import pytest

from posepile.ds.h36m import eval as h36m_eval
from posepile.ds.h36m import main as h36m
from posepile.eval.predictions import PredictionError, save_predictions
from tests.fakes import h36m as fake


def _pa_error_reference(pred, gt):
    """VideoPose3D-style similarity Procrustes for one pose, written out step by step."""
    mu_x, mu_y = gt.mean(0), pred.mean(0)
    x0, y0 = gt - mu_x, pred - mu_y
    norm_x, norm_y = np.sqrt((x0 ** 2).sum()), np.sqrt((y0 ** 2).sum())
    x0, y0 = x0 / norm_x, y0 / norm_y
    u, s, vt = np.linalg.svd(x0.T @ y0)
    v = vt.T
    r = v @ u.T
    if np.linalg.det(r) < 0:
        v[:, -1] *= -1
        s[-1] *= -1
        r = v @ u.T
    a = s.sum() * norm_x / norm_y
    t = mu_x - a * mu_y @ r
    aligned = a * pred @ r + t
    return np.linalg.norm(aligned - gt, axis=1).mean()


@pytest.fixture
def release(data_root):
    poses = fake.write_fake_release(data_root / 'h36m')
    return data_root, poses


def _perturbed_predictions(items, rng):
    """Per pose: a global shift (invisible root-relative) + joint 5 moved by 10 mm x (activity index + 1)
    + a random rotation about the pelvis for some poses (seen by MPJPE, removed by PA)."""
    coords = []
    for i, it in enumerate(items):
        pose = it['world_coords'].astype(np.float64).copy()
        k = h36m.ACTIVITIES.index(it['activity'])
        pose[5, 0] += 10 * (k + 1)
        pose += rng.normal(0, 100, 3)
        coords.append(pose)
    return np.stack(coords)


def test_h36m_eval_matches_independent_computation(release, tmp_path):
    data_root, poses = release
    items = h36m.test_poses(data_root / 'h36m')
    expected_count = 4 * sum(len(range(0, len(p), 64)) for p in poses.values())
    assert len(items) == expected_count
    rng = np.random.default_rng(1)
    pred = _perturbed_predictions(items, rng)
    save_predictions(tmp_path / 'p.npz', [it['image_path'] for it in items], pred)
    results = h36m_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--out', str(tmp_path / 'r.json')])

    # independent numbers: only joint 5 is wrong by 10(k+1) mm after removing the root
    per_activity = {}
    for it in items:
        per_activity.setdefault(it['activity'], []).append(10 * (h36m.ACTIVITIES.index(it['activity']) + 1) / 17)
    pose_weighted = np.mean([e for v in per_activity.values() for e in v])
    action_wise = np.mean([np.mean(v) for v in per_activity.values()])
    assert results['mpjpe_mm'] == pytest.approx(pose_weighted, abs=1e-3)
    assert results['actionwise_mpjpe_mm'] == pytest.approx(action_wise, abs=1e-3)
    assert results['actionwise_mpjpe_mm'] != pytest.approx(results['mpjpe_mm'], abs=0.1)
    assert set(results['per_activity']) == {'Directions', 'Photo', 'WalkDog', 'Eating', 'Sitting'}
    pa = [_pa_error_reference(p - p[0], it['world_coords'] - it['world_coords'][0]) for p, it in zip(pred, items)]
    assert results['pa_mpjpe_mm'] == pytest.approx(np.mean(pa), abs=1e-4)
    assert json.loads((tmp_path / 'r.json').read_text())['n'] == expected_count


def test_h36m_eval_accepts_25_joints_and_crop_paths(release, tmp_path):
    data_root, _ = release
    items = h36m.test_poses(data_root / 'h36m', subjects=('S11',))
    coords25 = np.zeros((len(items), 25, 3))
    for i, it in enumerate(items):
        coords25[i, h36m.JOINTS17_OF_25] = it['world_coords']
        coords25[i, [3, 4, 8, 9, 17, 18, 22, 23]] = it['world_coords'][0] + 500  # unevaluated joints
    paths = [it['image_path'].replace('h36m/', 'h36m_downscaled/', 1) for it in items]
    save_predictions(tmp_path / 'p.npz', paths, coords25)
    results = h36m_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--only-S11'])
    assert results['mpjpe_mm'] == pytest.approx(0, abs=1e-3)
    assert results['n'] == len(items)


def test_h36m_eval_refuses_partial_predictions(release, tmp_path):
    data_root, _ = release
    items = h36m.test_poses(data_root / 'h36m')
    save_predictions(tmp_path / 'p.npz', [it['image_path'] for it in items[:-3]],
                     np.stack([it['world_coords'] for it in items[:-3]]))
    with pytest.raises(PredictionError, match='3 of .* have no prediction'):
        h36m_eval.main(['--pred-path', str(tmp_path / 'p.npz')])


def test_cdf_reader_errors_name_the_file(tmp_path):
    (tmp_path / 'bad.cdf').write_bytes(b'not a cdf')
    with pytest.raises((h36m.H36MFormatError, OSError), match='bad.cdf'):
        h36m.load_pose_cdf(tmp_path / 'bad.cdf')
