import numpy as np
import pytest

from posepile.ds.tdhp import eval as tdhp_eval
from posepile.ds.tdhp import main as tdhp
from posepile.eval.predictions import save_predictions
from tests.fakes import tdhp as fake


@pytest.fixture
def release(data_root):
    return data_root, fake.write_fake_release(data_root / 'tdhp')


def _predictions(written, gt_key, rng):
    """GT (camera frame) + a global shift; joint 4 (right wrist) off by 102 mm on even frames and 172 mm (away from the 5 mm AUC steps: float32 files)
    on odd frames; joint 16 (head, not in the 14-joint groups) off by 500 mm."""
    paths, coords, truth = [], [], []
    for sequence, data in written.items():
        for i in np.flatnonzero(data['valid_frame']):
            pose = data[gt_key][i].copy()
            truth.append((sequence, int(data['activity'][i]), i))
            pose[4] += [102.0 if i % 2 == 0 else 172.0, 0, 0]
            pose[16] += [0, 500.0, 0]
            coords.append(pose + rng.normal(0, 1000, 3))
            paths.append(tdhp.test_image_relpath(sequence, int(i)))
    return paths, np.stack(coords), truth


def _expected(truth, select=lambda t: True, n_group_joints=14, head_in_groups=False):
    """Independent PCK / AUC / MPJPE from the construction above."""
    frames = [t for t in truth if select(t)]
    wrist = np.array([102.0 if t[2] % 2 == 0 else 172.0 for t in frames])
    n = len(frames)
    hits_150 = np.sum(wrist < 150) + n * (n_group_joints - 1) - (0 if not head_in_groups else n)
    pck = 100 * hits_150 / (n * n_group_joints)
    thresholds = np.arange(0, 151, 5)
    per_threshold = []
    for t in thresholds:
        correct_zero_joints = (n_group_joints - 1 - (1 if head_in_groups else 0)) * n * (t > 0)
        head_hits = 0 if not head_in_groups else n * (500 < t)
        per_threshold.append((correct_zero_joints + np.sum(wrist < t) + head_hits) / (n * n_group_joints))
    auc = 100 * np.mean(per_threshold)
    mpjpe = (np.sum(wrist) + 500 * n) / (17 * n)
    return pck, auc, mpjpe


def test_tdhp_eval_official_defaults(release, tmp_path):
    data_root, written = release
    paths, coords, truth = _predictions(written, 'univ_annot3', np.random.default_rng(0))
    save_predictions(tmp_path / 'p.npz', paths, coords, key='coords3d_pred_cam')
    results = tdhp_eval.main(['--pred-path', str(tmp_path / 'p.npz')])
    pck, auc, mpjpe = _expected(truth)
    assert results['all']['n'] == len(truth)
    assert results['all']['pck150'] == pytest.approx(pck, abs=1e-4)
    assert results['all']['auc'] == pytest.approx(auc, abs=1e-4)
    assert results['all']['mpjpe'] == pytest.approx(mpjpe, abs=1e-3)
    ts3 = _expected(truth, lambda t: t[0] == 'TS3')
    assert results['per_sequence']['TS3']['pck150'] == pytest.approx(ts3[0], abs=1e-4)
    # scene scores are frame-weighted means of the sequence scores
    gs = results['per_scene']['GS']
    ts1, ts2 = results['per_sequence']['TS1'], results['per_sequence']['TS2']
    assert gs['auc'] == pytest.approx((ts1['auc'] * ts1['n'] + ts2['auc'] * ts2['n']) / (ts1['n'] + ts2['n']))
    activity = next(iter(results['per_activity']))
    a_index = tdhp.ACTIVITY_NAMES.index(activity) + 1
    assert results['per_activity'][activity]['mpjpe'] == pytest.approx(
        _expected(truth, lambda t: t[1] == a_index)[2], abs=1e-3)


def test_tdhp_eval_variants(release, tmp_path):
    data_root, written = release
    # predictions made from annot3 score perfectly (except the planted errors) only with --metric-gt
    paths, coords, truth = _predictions(written, 'annot3', np.random.default_rng(1))
    save_predictions(tmp_path / 'p.npz', paths, coords, key='coords3d_pred_cam')
    metric = tdhp_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--metric-gt'])
    universal = tdhp_eval.main(['--pred-path', str(tmp_path / 'p.npz')])
    assert metric['all']['pck150'] == pytest.approx(_expected(truth)[0], abs=1e-4)
    assert universal['all']['mpjpe'] > metric['all']['mpjpe'] + 1
    groups17 = tdhp_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--metric-gt', '--groups17'])
    pck17, auc17, _ = _expected(truth, n_group_joints=17, head_in_groups=True)
    assert groups17['all']['pck150'] == pytest.approx(pck17, abs=1e-4)
    assert groups17['all']['auc'] == pytest.approx(auc17, abs=1e-4)


def test_tdhp_world_predictions_use_the_test_cameras(release, tmp_path):
    data_root, written = release
    paths, coords_cam, truth = _predictions(written, 'univ_annot3', np.random.default_rng(2))
    world = []
    for (sequence, _, _), pose in zip(truth, coords_cam):
        world.append(tdhp.test_camera(data_root / 'tdhp', sequence).camera_to_world(pose))
    save_predictions(tmp_path / 'w.npz', paths, np.stack(world), key='coords3d_pred_world')
    results = tdhp_eval.main(['--pred-path', str(tmp_path / 'w.npz')])
    assert results['all']['pck150'] == pytest.approx(_expected(truth)[0], abs=1e-3)


def test_annot_mat_errors_name_the_file(tmp_path):
    (tmp_path / 'annot_data.mat').write_bytes(b'MATLAB 5.0 MAT-file' + b'\x00' * 200)
    with pytest.raises(tdhp.TDHPFormatError, match='annot_data.mat'):
        tdhp.load_test_annotations(tmp_path / 'annot_data.mat')
