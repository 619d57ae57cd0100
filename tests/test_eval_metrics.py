import cv2
import numpy as np
import pytest

from posepile.eval import metrics, report
from posepile.eval.predictions import PredictionError, load_predictions, save_predictions


def _poses(n=4, j=17, seed=0):
    return np.random.default_rng(seed).normal(0, 300, (n, j, 3))


def test_mpjpe_and_procrustes_on_similarity_transformed_copy():
    gt = _poses()
    rotation = cv2.Rodrigues(np.array([0.3, -0.5, 0.9]))[0]
    pred = 1.3 * gt @ rotation.T + [100, -50, 20]
    assert np.nanmean(metrics.mpjpe(pred, gt)) > 100
    assert np.max(metrics.pa_mpjpe(pred, gt)) < 1e-6
    # rigid alignment (no scale) cannot undo the 1.3x scale
    assert np.nanmean(metrics.joint_distances(metrics.procrustes_align(pred, gt, scale=False), gt)) > 10


def test_procrustes_never_reflects():
    gt = _poses(1)
    mirrored = gt * [-1, 1, 1]
    aligned = metrics.procrustes_align(mirrored, gt)
    # a reflection would give zero error; a proper rotation cannot
    assert np.nanmean(metrics.joint_distances(aligned, gt)) > 50


def test_procrustes_ignores_nan_gt_joints_and_fit_subset():
    gt = _poses(2)
    pred = gt + [10, 0, 0]
    gt_nan = gt.copy()
    gt_nan[:, 3] = np.nan
    errors = metrics.pa_mpjpe(pred, gt_nan)
    assert np.all(np.isnan(errors[:, 3]))
    assert np.nanmax(errors) < 1e-6
    # fitting on joints 0-4 only still aligns a pure translation exactly
    assert np.nanmax(metrics.pa_mpjpe(pred, gt, fit_joints=[0, 1, 2, 4, 5])) < 1e-6


def test_n_mpjpe_removes_scale_only():
    gt = _poses()
    assert np.max(metrics.n_mpjpe(0.8 * gt, gt)) < 1e-9
    rotation = cv2.Rodrigues(np.array([0, 0, 0.5]))[0]
    assert np.mean(metrics.n_mpjpe(gt @ rotation.T, gt)) > 50


def test_pck_strict_and_inclusive_at_the_boundary():
    d = np.array([[0, 149.999, 150, 150.001, np.nan]])
    assert metrics.pck(d, 150) == pytest.approx(50.0)
    assert metrics.pck(d, 150, inclusive=True) == pytest.approx(75.0)


def test_auc_variants_by_hand():
    # distance 0: below all 30 positive thresholds but not below 0 -> 30/31 (strict <)
    assert metrics.auc_3dhp(np.array([0.0])) == pytest.approx(100 * 30 / 31)
    # distance 72: below thresholds 75..150 (16 of 31)
    assert metrics.auc_3dhp(np.array([72.0])) == pytest.approx(100 * 16 / 31)
    assert metrics.auc_3dhp(np.array([200.0])) == 0
    # continuous: mean(max(0, 1 - d / 150))
    assert metrics.auc_continuous(np.array([0.0, 75.0, 300.0]), 150) == pytest.approx(100 * (1 + 0.5 + 0) / 3)


def test_auc_3dpw_matches_numerical_integration():
    from scipy.integrate import quad
    d = np.array([3.5, 10, 47.2, 120, 199.5, 250])
    thresholds = np.arange(200)
    pcks = np.array([np.mean(d <= t) for t in thresholds])
    x = np.linspace(0, 1, 200)
    expected = quad(lambda v: np.interp(v, x, pcks), 0, 1, limit=500)[0]
    assert metrics.auc_3dpw(d) == pytest.approx(expected, abs=1e-4)


def test_cps_uses_worst_joint():
    d = np.array([[10, 20, 90], [10, 20, 120]])
    assert metrics.cps(d, 100) == pytest.approx(50.0)


def test_report_table_and_json(tmp_path):
    text = report.format_table('T', [('all', 3, 51.234, float('nan'))], ['subset', 'n', 'mpjpe', 'x'])
    assert '51.2' in text and 'nan' in text and text.splitlines()[0] == 'T'
    report.write_json(tmp_path / 'r.json', {'a': 1.5})
    assert (tmp_path / 'r.json').read_text().strip().startswith('{')


def _write(path, paths, coords, key='coords3d_pred_world'):
    save_predictions(path, paths, coords, key=key)


def test_predictions_round_trip_and_camera_frame(tmp_path):
    from posepile.util.camera import Camera
    paths = ['a.jpg', 'b.jpg']
    coords = _poses(2)
    _write(tmp_path / 'p.npz', paths, coords)
    loaded = load_predictions(tmp_path / 'p.npz', paths, 17)
    np.testing.assert_allclose(loaded['b.jpg'], coords[1], atol=1e-3)
    camera = Camera(optical_center=[100, 200, 300], world_up=(0, 0, 1))
    camera.turn_towards(target_world_point=[1000, 5000, 0])
    cam_coords = np.stack([camera.world_to_camera(c) for c in coords])
    _write(tmp_path / 'c.npz', paths, cam_coords, key='coords3d_pred_cam')
    loaded = load_predictions(tmp_path / 'c.npz', paths, 17, cameras=[camera, camera])
    np.testing.assert_allclose(loaded['a.jpg'], coords[0], atol=1e-2)


@pytest.mark.parametrize('case,message', [
    ('count', 'have no prediction'), ('unknown', 'not in the benchmark'), ('duplicate', 'duplicate'),
    ('joints', 'joints'), ('nan', 'NaN or inf'), ('metres', 'millimetres'), ('garbage', 'cannot read'),
    ('nokey', 'no coordinate array')])
def test_prediction_errors_name_file_and_offenders(tmp_path, case, message):
    paths = ['a.jpg', 'b.jpg', 'c.jpg']
    coords = _poses(3)
    path = tmp_path / 'p.npz'
    if case == 'count':
        _write(path, paths[:2], coords[:2])
    elif case == 'unknown':
        _write(path, ['a.jpg', 'b.jpg', 'zzz.jpg'], coords)
    elif case == 'duplicate':
        _write(path, ['a.jpg', 'a.jpg', 'b.jpg'], coords)
    elif case == 'joints':
        _write(path, paths, coords[:, :14])
    elif case == 'nan':
        coords[2, 5, 1] = np.nan
        _write(path, paths, coords)
    elif case == 'metres':
        _write(path, paths, coords / 1000)
    elif case == 'garbage':
        path.write_bytes(b'not a zip')
    elif case == 'nokey':
        np.savez(path, image_path=np.array(paths), coords=coords)
    with pytest.raises(PredictionError, match=message) as info:
        load_predictions(path, paths, 17)
    assert str(path) in str(info.value)
    if case in ('unknown', 'duplicate', 'nan'):
        assert {'unknown': 'zzz.jpg', 'duplicate': 'a.jpg', 'nan': 'c.jpg'}[case] in str(info.value)
