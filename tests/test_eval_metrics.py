import json

import cv2
import numpy as np
import pytest

from posepile.eval import metrics, report
from posepile.eval.predictions import PredictionError, load_predictions, save_predictions


def _poses(n=4, j=17, seed=0):
    return np.random.default_rng(seed).normal(0, 300, (n, j, 3))


def _reference_similarity(pred, gt):
    """One pose (J, 3), straight from the closed form in protocols.md, in column-vector convention."""
    mu_p, mu_g = pred.mean(0), gt.mean(0)
    x0, y0 = pred - mu_p, gt - mu_g
    u, sigma, vt = np.linalg.svd(x0.T @ y0)
    d = np.eye(3)
    d[2, 2] = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ d @ u.T
    s = np.trace(np.diag(sigma) @ d) / np.sum(x0 ** 2)
    t = mu_g - s * rotation @ mu_p
    return s * pred @ rotation.T + t, rotation


def test_mpjpe_and_procrustes_on_similarity_transformed_copy():
    gt = _poses()
    rotation = cv2.Rodrigues(np.array([0.3, -0.5, 0.9]))[0]
    pred = 1.3 * gt @ rotation.T + [100, -50, 20]
    assert np.nanmean(metrics.mpjpe(pred, gt)) > 100
    assert np.max(metrics.pa_mpjpe(pred, gt)) < 1e-6
    aligned, rotations = metrics.procrustes_align(pred, gt, return_rotation=True)
    np.testing.assert_allclose(rotations, np.broadcast_to(rotation.T, (4, 3, 3)), atol=1e-9)
    # rigid alignment (no scale) cannot undo the 1.3x scale
    assert np.nanmean(metrics.joint_distances(metrics.procrustes_align(pred, gt, scale=False), gt)) > 10


def test_mpjpe_hand_computed():
    gt = np.zeros((1, 2, 3))
    pred = np.array([[[3.0, 4.0, 0.0], [0.0, 0.0, -2.0]]])
    np.testing.assert_allclose(metrics.mpjpe(pred, gt), [[5.0, 2.0]])


def test_procrustes_matches_closed_form_on_noisy_poses_and_is_optimal():
    rng = np.random.default_rng(1)
    gt = _poses(6, seed=1)
    rotation = cv2.Rodrigues(np.array([1.0, 0.2, -0.4]))[0]
    pred = 0.7 * (gt + rng.normal(0, 40, gt.shape)) @ rotation.T + [500, 0, 3000]
    aligned, rotations = metrics.procrustes_align(pred, gt, return_rotation=True)
    for i in range(len(gt)):
        expected, expected_rotation = _reference_similarity(pred[i], gt[i])
        np.testing.assert_allclose(aligned[i], expected, atol=1e-6)
        np.testing.assert_allclose(rotations[i], expected_rotation, atol=1e-9)
    # single-pose input gives the same as the batch
    np.testing.assert_allclose(metrics.procrustes_align(pred[2], gt[2]), aligned[2], atol=1e-9)
    # least squares: any perturbation of the aligned pose's scale or rotation increases the squared error
    sq_error = np.sum((aligned[0] - gt[0]) ** 2)
    centroid = aligned[0].mean(0)
    for s in (0.98, 1.02):
        assert np.sum((s * (aligned[0] - centroid) + centroid - gt[0]) ** 2) > sq_error
    small_turn = cv2.Rodrigues(np.array([0.0, 0.02, 0.0]))[0]
    assert np.sum(((aligned[0] - centroid) @ small_turn.T + centroid - gt[0]) ** 2) > sq_error


def test_procrustes_never_reflects():
    gt = _poses(3)
    mirrored = gt * [-1, 1, 1] + np.random.default_rng(2).normal(0, 5, gt.shape)
    aligned, rotations = metrics.procrustes_align(mirrored, gt, return_rotation=True)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-9)
    # a reflection would give ~5 mm error; a proper rotation cannot
    assert np.nanmean(metrics.joint_distances(aligned, gt)) > 50
    for i in range(3):
        np.testing.assert_allclose(aligned[i], _reference_similarity(mirrored[i], gt[i])[0], atol=1e-6)


def test_procrustes_degenerate_all_zero_prediction_maps_to_gt_centroid():
    gt = _poses(2)
    aligned = metrics.procrustes_align(np.zeros_like(gt), gt)
    np.testing.assert_allclose(aligned, np.broadcast_to(gt.mean(1, keepdims=True), gt.shape), atol=1e-9)


def test_procrustes_ignores_nan_gt_joints_and_fit_subset():
    rng = np.random.default_rng(3)
    gt = _poses(2)
    pred = gt + rng.normal(0, 30, gt.shape)
    gt_nan = gt.copy()
    gt_nan[:, 3] = np.nan
    errors = metrics.pa_mpjpe(pred, gt_nan)
    assert np.all(np.isnan(errors[:, 3])) and np.isfinite(np.delete(errors, 3, axis=1)).all()
    # the NaN joint is left out of the fit: same as aligning the poses without it
    kept = np.delete(np.arange(17), 3)
    expected = metrics.pa_mpjpe(pred[:, kept], gt[:, kept])
    np.testing.assert_allclose(np.delete(errors, 3, axis=1), expected, atol=1e-9)
    # fit_joints: the transform comes from those joints only but is applied to all
    fit = [0, 1, 2, 4, 5]
    aligned = metrics.procrustes_align(pred, gt, fit_joints=fit)
    for i in range(2):
        reference_fit, rotation = _reference_similarity(pred[i, fit], gt[i, fit])
        np.testing.assert_allclose(aligned[i, fit], reference_fit, atol=1e-6)
        # the other joints moved by the same similarity transform (relative vectors scaled+rotated alike)
        s = np.linalg.norm(aligned[i, 10] - aligned[i, 0]) / np.linalg.norm(pred[i, 10] - pred[i, 0])
        np.testing.assert_allclose(aligned[i, 10] - aligned[i, 0], s * rotation @ (pred[i, 10] - pred[i, 0]),
                                   atol=1e-6)
    pure_shift = gt + [10, 0, 0]
    assert np.nanmax(metrics.pa_mpjpe(pure_shift, gt, fit_joints=fit)) < 1e-6


def test_n_mpjpe_scale_by_hand():
    gt = np.array([[[1.0, 0, 0], [0, 2.0, 0]]])
    pred = np.array([[[2.0, 0, 0], [0, 2.0, 0]]])
    # s = (2 + 4) / (4 + 4) = 0.75 -> scaled pred (1.5, 0, 0), (0, 1.5, 0)
    np.testing.assert_allclose(metrics.n_mpjpe(pred, gt), [[0.5, 0.5]])
    np.testing.assert_allclose(metrics.n_mpjpe(pred[0], gt[0]), [0.5, 0.5])
    poses = _poses()
    assert np.max(metrics.n_mpjpe(0.8 * poses, poses)) < 1e-9
    rotation = cv2.Rodrigues(np.array([0, 0, 0.5]))[0]
    assert np.mean(metrics.n_mpjpe(poses @ rotation.T, poses)) > 50


def test_root_relative_single_and_mid_hip():
    poses = np.array([[[10.0, 0, 0], [20.0, 2, 0], [30.0, 4, 6]]])
    np.testing.assert_allclose(metrics.root_relative(poses, 0)[0, 2], [20, 4, 6])
    np.testing.assert_allclose(metrics.root_relative(poses, [0, 1])[0, 2], [15, 3, 6])


def test_pck_strict_and_inclusive_at_the_boundary():
    d = np.array([[0, 149.999, 150, 150.001, np.nan]])
    assert metrics.pck(d, 150) == pytest.approx(50.0)
    assert metrics.pck(d, 150, inclusive=True) == pytest.approx(75.0)
    assert np.isnan(metrics.pck(np.full(3, np.nan), 150))


def test_auc_variants_by_hand():
    # distance 0: below all 30 positive thresholds but not below 0 -> 30/31 (strict <)
    assert metrics.auc_3dhp(np.array([0.0])) == pytest.approx(100 * 30 / 31)
    # distance 72: below thresholds 75..150 (16 of 31); exactly 75: below 80..150 (15 of 31)
    assert metrics.auc_3dhp(np.array([72.0])) == pytest.approx(100 * 16 / 31)
    assert metrics.auc_3dhp(np.array([75.0])) == pytest.approx(100 * 15 / 31)
    assert metrics.auc_3dhp(np.array([[0.0, 72.0], [200.0, np.nan]])) == pytest.approx(100 * 46 / 31 / 3)
    assert metrics.auc_3dhp(np.array([200.0])) == 0
    # continuous: mean(max(0, 1 - d / 150))
    assert metrics.auc_continuous(np.array([0.0, 75.0, 300.0]), 150) == pytest.approx(100 * (1 + 0.5 + 0) / 3)
    assert metrics.auc_continuous(np.array([25.0, np.nan]), 50) == pytest.approx(50.0)


def test_auc_3dhp_equals_mean_pck_and_closed_form():
    d = np.random.default_rng(4).uniform(0, 200, 500)
    d[:5] = [0, 5, 10, 150, 149.9]
    mean_pck = np.mean([metrics.pck(d, t) for t in range(0, 151, 5)])
    closed_form = 100 * np.mean(np.maximum(0, 1 - (np.floor(d / 5) + 1) / 31))
    assert metrics.auc_3dhp(d) == pytest.approx(mean_pck, abs=1e-9)
    assert metrics.auc_3dhp(d) == pytest.approx(closed_form, abs=1e-9)


def test_auc_continuous_equals_integral_of_pck():
    d = np.random.default_rng(5).uniform(0, 200, 300)
    thresholds = np.linspace(0, 100, 20001)
    pck_curve = np.array([metrics.pck(d, t) for t in thresholds])
    integral = np.trapezoid(pck_curve, thresholds) / 100
    assert metrics.auc_continuous(d, 100) == pytest.approx(integral, abs=0.01)


def test_auc_3dpw_matches_numerical_integration():
    from scipy.integrate import quad
    d = np.array([3.5, 10, 47.2, 120, 199.5, 250, 0, 50])
    thresholds = np.arange(200)
    pcks = np.array([np.mean(d <= t) for t in thresholds])
    x = np.linspace(0, 1, 200)
    expected = quad(lambda v: np.interp(v, x, pcks), 0, 1, limit=500)[0]
    assert metrics.auc_3dpw(d) == pytest.approx(expected, abs=1e-4)
    # by hand: a single distance of 0 has PCK 1 at every threshold (<=) -> area 1 (a fraction, not %)
    assert metrics.auc_3dpw(np.array([0.0])) == pytest.approx(1.0)
    # distance 99.5: PCK 0 at t <= 99 and 1 from t = 100; the linear ramp between x = 99/199 and 100/199
    # leaves an area of 1 - 99.5/199
    assert metrics.auc_3dpw(np.array([99.5])) == pytest.approx(1 - 99.5 / 199)


def test_cps_uses_worst_joint_and_skips_unannotated_poses():
    d = np.array([[10, 20, 90], [10, 20, 120], [np.nan, np.nan, np.nan], [99.9, np.nan, 5]])
    assert metrics.cps(d, 100) == pytest.approx(100 * 2 / 3)
    np.testing.assert_allclose(metrics.worst_joint_distances(d), [90, 120, np.nan, 99.9])


def test_report_table_and_json(tmp_path):
    rows = [('all', 3, 51.234, float('nan')), ('TS1', np.int64(12), np.float32(7.25), np.float64(1))]
    text = report.format_table('T', rows, ['subset', 'n', 'mpjpe', 'x'], decimals=2)
    lines = text.splitlines()
    assert lines[0] == 'T'
    assert lines[1].split() == ['subset', 'n', 'mpjpe', 'x']
    assert lines[3].split() == ['all', '3', '51.23', 'nan']
    assert lines[4].split() == ['TS1', '12', '7.25', '1.00']
    assert len({len(line) for line in lines[1:]}) == 1  # fixed width
    with pytest.raises(ValueError, match='row 0 has 2 cells'):
        report.format_table('T', [(1, 2)], ['a', 'b', 'c'])
    results = {'mpjpe': np.float32(51.5), 'n': np.int64(3), 'per_joint': np.array([1.0, 2.0])}
    report.write_json(tmp_path / 'r.json', results)
    assert json.loads((tmp_path / 'r.json').read_text()) == {'mpjpe': 51.5, 'n': 3, 'per_joint': [1.0, 2.0]}
    assert [p.name for p in tmp_path.iterdir()] == ['r.json']  # no temp file left behind


def _write(path, paths, coords, key='coords3d_pred_world'):
    save_predictions(path, paths, coords, key=key)


def test_predictions_round_trip_and_camera_frame(tmp_path):
    from posepile.util.camera import Camera
    paths = ['a.jpg', 'b.jpg']
    coords = _poses(2)
    _write(tmp_path / 'p.npz', paths, coords)
    assert [p.name for p in tmp_path.iterdir()] == ['p.npz']
    loaded = load_predictions(tmp_path / 'p.npz', paths[::-1], 17)
    assert set(loaded) == set(paths) and loaded['b.jpg'].dtype == np.float64
    np.testing.assert_allclose(loaded['b.jpg'], coords[1], atol=1e-3)
    # normalize_path maps the file's paths onto the benchmark's
    loaded = load_predictions(tmp_path / 'p.npz', ['x/a.jpg', 'x/b.jpg'], (14, 17),
                              normalize_path=lambda p: 'x/' + p)
    np.testing.assert_allclose(loaded['x/a.jpg'], coords[0], atol=1e-3)
    camera = Camera(optical_center=[100, 200, 300], world_up=(0, 0, 1))
    camera.turn_towards(target_world_point=[1000, 5000, 0])
    cam_coords = np.stack([camera.world_to_camera(c) for c in coords])
    _write(tmp_path / 'c.npz', paths, cam_coords, key='coords3d_pred_cam')
    loaded = load_predictions(tmp_path / 'c.npz', paths, 17, cameras=[camera, camera])
    np.testing.assert_allclose(loaded['a.jpg'], coords[0], atol=1e-2)
    # without cameras, camera-frame coordinates come back unchanged
    loaded = load_predictions(tmp_path / 'c.npz', paths, 17)
    np.testing.assert_allclose(loaded['a.jpg'], cam_coords[0], atol=1e-2)
    # coord_key selects the array; a file without it is rejected
    with pytest.raises(PredictionError, match='coords3d_pred_world'):
        load_predictions(tmp_path / 'c.npz', paths, 17, coord_key='coords3d_pred_world')


@pytest.mark.parametrize('case,message,offender', [
    ('count', 'have no prediction', "'c.jpg'"),
    ('unknown', 'not in the benchmark', "'zzz.jpg'"),
    ('duplicate', 'duplicate image paths', "'a.jpg'"),
    ('joints', 'joints, the benchmark takes 17', 'have 14 joints'),
    ('shape', 'must have shape', '(3, 17, 2)'),
    ('nan', 'NaN or inf', "'c.jpg'"),
    ('inf', 'NaN or inf', "'b.jpg'"),
    ('metres', 'millimetres', "'a.jpg'"),
    ('collapsed', 'one point', "'b.jpg'"),
    ('garbage', 'not a .npz', 'truncated?'),
    ('absent', 'not found', 'absent.npz'),
    ('nopaths', 'missing array "image_path"', "'coords3d_pred_world'"),
    ('nokey', 'no coordinate array', "'coords'")])
def test_prediction_errors_name_file_and_offenders(tmp_path, case, message, offender):
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
    elif case == 'shape':
        np.savez(path, image_path=np.array(paths), coords3d_pred_world=coords[..., :2])
    elif case in ('nan', 'inf'):
        coords[{'nan': 2, 'inf': 1}[case], 5, 1] = np.nan if case == 'nan' else np.inf
        _write(path, paths, coords)
    elif case == 'metres':
        _write(path, paths, coords / 1000)
    elif case == 'collapsed':
        coords[:] = 0
        _write(path, paths, coords)
    elif case == 'garbage':
        path.write_bytes(b'not a zip')
    elif case == 'absent':
        path = tmp_path / 'absent.npz'
    elif case == 'nopaths':
        np.savez(path, coords3d_pred_world=coords)
    elif case == 'nokey':
        np.savez(path, image_path=np.array(paths), coords=coords)
    with pytest.raises(PredictionError, match=message) as info:
        load_predictions(path, paths, 17)
    assert str(path) in str(info.value)
    assert offender in str(info.value)


def test_prediction_error_lists_only_first_offenders(tmp_path):
    paths = [f'{i:03d}.jpg' for i in range(40)]
    _write(tmp_path / 'p.npz', paths[:10], _poses(10))
    with pytest.raises(PredictionError) as info:
        load_predictions(tmp_path / 'p.npz', paths, 17)
    text = str(info.value)
    assert '30 of 40 benchmark images' in text and "'010.jpg'" in text and '(30 in all)' in text
    assert "'039.jpg'" not in text
