"""Four cases where the official evaluation scripts define the benchmark number (issue 14). Expected values
are computed by hand or from the official formulas re-stated here, never from posepile's own output."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.aspset import eval as aspset_eval
from posepile.ds.aspset import main as aspset
from posepile.ds.mupots import eval as mupots_eval
from posepile.ds.mupots import main as mupots
from posepile.ds.tdhp import eval as tdhp_eval
from posepile.ds.tdhp import main as tdhp
from posepile.eval import metrics
from posepile.eval.predictions import PredictionError, save_predictions
from tests.fakes import aspset as fake_aspset
from tests.fakes import mupots as fake_mupots
from tests.fakes import tdhp as fake_tdhp

REALDATA = Path(os.environ.get('POSEPILE_REALDATA', Path(__file__).resolve().parents[2] / 'shared' / 'realdata'))
RHIP, RKNE, RANK = 8, 9, 10  # MuPoTS / 3DHP test order


# ------------------------------------------------------------------------------------------------
# MuPoTS: a zero-length predicted bone is 0/0 in the official rescaling -> NaN joints that count as misses
def _standing_pose():
    """A 17-joint MuPoTS-order pose (mm), every bone non-zero."""
    names = mupots.JOINT_NAMES.split(',')
    coords = {'htop': (0, -1700, 0), 'neck': (0, -1450, 0), 'rsho': (-180, -1420, 0), 'relb': (-200, -1150, 30),
              'rwri': (-210, -900, 80), 'lsho': (180, -1420, 0), 'lelb': (200, -1150, 30),
              'lwri': (210, -900, 80), 'rhip': (-110, -950, 0), 'rkne': (-120, -500, 40),
              'rank': (-120, -80, 0), 'lhip': (110, -950, 0), 'lkne': (120, -500, 40), 'lank': (120, -80, 0),
              'pelv': (0, -950, 0), 'spin': (0, -1200, 0), 'head': (0, -1580, 20)}
    return np.array([coords[n] for n in names], np.float64)


def test_mupots_zero_length_bone_is_nan_and_a_miss():
    gt = _standing_pose()
    pred = gt.copy()
    pred[RHIP] = pred[mupots.ROOT_INDEX]  # right hip moved onto the pelvis: a zero-length bone
    rescaled = mupots_eval.rescale_to_gt_bone_lengths(pred, gt)
    assert np.isnan(rescaled[[RHIP, RKNE, RANK]]).all()
    assert np.isfinite(np.delete(rescaled, [RHIP, RKNE, RANK], axis=0)).all()
    errors = metrics.joint_distances(rescaled, gt, nan_prediction_is_miss=True)[:14]  # the 14 group joints
    # 11 of 14 joints exact (hits at every threshold > 0: 30 of 31), 3 misses
    assert metrics.pck(errors, 150) == pytest.approx(100 * 11 / 14)
    assert metrics.pck(errors, 150) == pytest.approx(78.5714, abs=5e-5)
    assert metrics.auc_3dhp(errors) == pytest.approx(100 * 11 / 14 * 30 / 31)
    assert metrics.auc_3dhp(errors) == pytest.approx(76.0369, abs=5e-5)

    # the documented alternative puts the joint on its parent: errors are then the offsets by hand
    ours = mupots_eval.rescale_to_gt_bone_lengths(pred, gt, zero_bone_on_parent=True)
    np.testing.assert_allclose(ours[RHIP], gt[mupots.ROOT_INDEX])
    hip_error = np.linalg.norm(gt[RHIP] - gt[mupots.ROOT_INDEX])  # 110 mm
    knee_dir = (gt[RKNE] - gt[mupots.ROOT_INDEX]) / np.linalg.norm(gt[RKNE] - gt[mupots.ROOT_INDEX])
    knee = gt[mupots.ROOT_INDEX] + knee_dir * np.linalg.norm(gt[RKNE] - gt[RHIP])
    expected = np.zeros(14)
    expected[RHIP] = hip_error
    expected[RKNE] = np.linalg.norm(knee - gt[RKNE])
    expected[RANK] = np.linalg.norm(knee + (gt[RANK] - gt[RKNE]) - gt[RANK])  # same direction as GT
    np.testing.assert_allclose(metrics.joint_distances(ours, gt)[:14], expected, atol=1e-9)


def test_mupots_eval_counts_zero_bone_joints_as_misses(data_root, tmp_path):
    written = fake_mupots.write_fake_release(data_root / 'mupots')
    paths, coords2d, coords3d = [], [], []
    for sequence, frames in written.items():
        for f, people in enumerate(frames):
            for person in people:
                if person['valid']:
                    pose = person['univ_annot3'].copy()
                    pose[RHIP] = pose[mupots.ROOT_INDEX]
                    paths.append(mupots.image_relpath(sequence, f))
                    coords2d.append(person['annot2'])
                    coords3d.append(pose)
    np.savez(tmp_path / 'p.npz', image_path=np.array(paths), coords2d_pred=np.stack(coords2d),
             coords3d_pred_cam=np.stack(coords3d))
    official = mupots_eval.main(['--pred-path', str(tmp_path / 'p.npz')])
    assert official['pck_matched'] == pytest.approx(100 * 11 / 14)
    assert official['auc_matched'] == pytest.approx(100 * 11 / 14 * 30 / 31)
    variant = mupots_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--zero-bone-on-parent'])
    assert variant['pck_matched'] > official['pck_matched']


def test_pck_and_auc_count_inf_as_miss_and_skip_nan():
    d = np.array([[10.0, np.inf, np.nan, 200.0]])
    assert metrics.pck(d, 150) == pytest.approx(100 / 3)
    # 10 mm is below 28 of the 31 thresholds (15, ..., 150); the miss and 200 mm below none
    assert metrics.auc_3dhp(d) == pytest.approx(100 * (28 / 31) / 3)
    assert metrics.auc_continuous(d, 150) == pytest.approx(100 * (1 - 10 / 150) / 3)
    assert metrics.cps(d, 300) == 0.0  # the missed joint makes the pose incorrect
    assert metrics.cps(np.array([[10.0, np.nan]]), 300) == 100.0


def test_tdhp_nan_prediction_counts_as_miss(data_root, tmp_path):
    written = fake_tdhp.write_fake_release(data_root / 'tdhp')
    paths, coords, n = [], [], 0
    for sequence, data in written.items():
        for i in np.flatnonzero(data['valid_frame']):
            pose = data['univ_annot3'][i].copy()
            if n % 2 == 0:
                pose[4] = np.nan  # right wrist not predicted in every other frame
            n += 1
            coords.append(pose)
            paths.append(tdhp.test_image_relpath(sequence, int(i)))
    save_predictions(tmp_path / 'p.npz', paths, np.stack(coords), key='coords3d_pred_cam')
    results = tdhp_eval.main(['--pred-path', str(tmp_path / 'p.npz')])
    n_missing = (n + 1) // 2
    assert results['all']['pck150'] == pytest.approx(100 * (14 * n - n_missing) / (14 * n))
    assert results['all']['auc'] == pytest.approx(100 * 30 / 31 * (14 * n - n_missing) / (14 * n), rel=1e-6)
    assert np.isnan(results['all']['mpjpe'])
    coords = np.stack(coords)
    coords[0, 3] = np.inf
    save_predictions(tmp_path / 'inf.npz', paths, coords, key='coords3d_pred_cam')
    with pytest.raises(PredictionError, match='inf values'):
        tdhp_eval.main(['--pred-path', str(tmp_path / 'inf.npz')])


# ------------------------------------------------------------------------------------------------
# 3DPW: predicted matrices that are not exact rotations are projected onto SO(3) (cv2.Rodrigues does)
def test_rotation_angle_of_scaled_identity_is_zero():
    eye = np.eye(3)
    assert metrics.rotation_angle_deg(0.98 * eye, eye) == pytest.approx(0.0, abs=1e-9)
    # before: arccos((trace - 1) / 2) of 0.98 I would be arccos(0.97) = 14.07 deg
    assert np.degrees(np.arccos((3 * 0.98 - 1) / 2)) == pytest.approx(14.07, abs=0.01)


def test_rotation_angle_of_averaged_rotations():
    def rot_z(deg):
        c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    # the mean of +-20 deg about z is cos(20) * (x,y block) + z: its nearest rotation is the identity
    averaged = (rot_z(20) + rot_z(-20)) / 2
    assert metrics.rotation_angle_deg(averaged, np.eye(3)) == pytest.approx(0.0, abs=1e-9)
    # true rotations are unchanged: 30 deg apart, float16 rounding costs < 0.1 deg
    assert metrics.rotation_angle_deg(rot_z(30), np.eye(3)) == pytest.approx(30.0)
    assert metrics.rotation_angle_deg(rot_z(30).astype(np.float16), rot_z(0)) == pytest.approx(30.0, abs=0.1)


# ------------------------------------------------------------------------------------------------
# ASPset: posekit's point_set_registration takes the scale before the reflection fix
def _posekit_aligned(pred, gt):
    """The official evaluator's registration, re-stated from its documented formula: both centred and
    normalised to unit Frobenius norm, SVD of gt^T pred, scale = sum of singular values (before the
    reflection fix) * |gt| / |pred|, rotation with the last singular vector flipped when det < 0."""
    mu_p, mu_g = pred.mean(0), gt.mean(0)
    p, g = pred - mu_p, gt - mu_g
    norm_p, norm_g = np.linalg.norm(p), np.linalg.norm(g)
    u, w, vt = np.linalg.svd((g / norm_g).T @ (p / norm_p))
    scale = w.sum()
    rotation = u @ vt
    if np.linalg.det(rotation) < 0:
        vt[2] *= -1
        rotation = u @ vt
    return norm_g * scale * (p / norm_p) @ rotation.T + mu_g


def test_aspset_procrustes_scale_on_a_mirrored_pose():
    gt = _standing_pose()
    gt[:, 2] += np.linspace(-60, 60, 17)  # not planar
    pelvis = gt[mupots.ROOT_INDEX]
    mirrored = 2 * pelvis - gt
    official = metrics.procrustes_align(mirrored, gt, scale_before_reflection_fix=True)
    np.testing.assert_allclose(official, _posekit_aligned(mirrored, gt), atol=1e-9)
    least_squares = metrics.procrustes_align(mirrored, gt)
    # least squares minimises the summed squared error: never more than the official scale's
    assert np.sum((least_squares - gt) ** 2) < np.sum((official - gt) ** 2)
    # for a pose whose best fit is a proper rotation both agree
    rng = np.random.default_rng(0)
    noisy = gt * 1.1 + rng.normal(0, 15, gt.shape)
    np.testing.assert_allclose(metrics.procrustes_align(noisy, gt, scale_before_reflection_fix=True),
                               metrics.procrustes_align(noisy, gt), atol=1e-9)


def test_aspset_procrustes_on_the_real_mirrored_pose():
    path = REALDATA / 'aspset' / '04ac-0026-right_conftest_values.json'
    if not path.exists():
        pytest.skip(f'real ASPset sample not found at {path} (set POSEPILE_REALDATA)')
    values = json.loads(path.read_text())
    gt = np.asarray(values['joints_3d_04ac-0026_world_mm']['value'], np.float64).reshape(17, 3)
    mirrored = 2 * gt[aspset.ROOT_INDEX] - gt
    official = metrics.procrustes_align(mirrored, gt, scale_before_reflection_fix=True)
    least_squares = metrics.procrustes_align(mirrored, gt)
    # the numbers of the issue, measured with the official evaluator and with the least-squares scale
    assert np.mean(np.linalg.norm(official - gt, axis=-1)) == pytest.approx(127.9097, abs=5e-5)
    assert np.mean(np.linalg.norm(least_squares - gt, axis=-1)) == pytest.approx(129.3576, abs=5e-5)


def test_aspset_eval_uses_the_official_scale_by_default(data_root, tmp_path):
    written = fake_aspset.write_fake_release(data_root / 'aspset')
    items = aspset_eval.ground_truth(data_root / 'aspset', 'test')
    paths = [it['image_path'] for it in items]
    gts = np.stack([it['gt_cam'] for it in items])
    mirrored = 2 * gts[:, aspset.ROOT_INDEX:aspset.ROOT_INDEX + 1] - gts
    save_predictions(tmp_path / 'p.npz', paths, mirrored, key='coords3d_pred_cam')
    official = aspset_eval.main(['--pred-path', str(tmp_path / 'p.npz')])
    expected = np.mean([np.linalg.norm(_posekit_aligned(m - m[aspset.ROOT_INDEX], g - g[aspset.ROOT_INDEX])
                                       - (g - g[aspset.ROOT_INDEX]), axis=-1) for m, g in zip(mirrored, gts)])
    assert official['procrustes']['mpjpe'] == pytest.approx(expected, rel=1e-5)  # float32 file
    least_squares = aspset_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--least-squares-scale'])
    assert least_squares['procrustes']['mpjpe'] != pytest.approx(expected, rel=1e-3)
    assert written


# ------------------------------------------------------------------------------------------------
# ASPset splits.csv: the official file has no header row
def test_aspset_splits_with_and_without_header(tmp_path):
    rows = ['04ac,0026,test,all', '04ac,0031,test,mid', '0a6b,0002,train,left']
    (tmp_path / 'splits.csv').write_text('\n'.join(rows) + '\n')
    official = aspset.load_splits(tmp_path)
    assert official == [('04ac', '0026', 'test', ['left', 'mid', 'right']), ('04ac', '0031', 'test', ['mid']),
                        ('0a6b', '0002', 'train', ['left'])]
    (tmp_path / 'splits.csv').write_text('subject_id,clip_id,split,camera_id\n' + '\n'.join(rows) + '\n')
    assert aspset.load_splits(tmp_path) == official
    (tmp_path / 'splits.csv').write_text('04ac,0026,test\n')  # the older three-column file: every camera
    assert aspset.load_splits(tmp_path) == [('04ac', '0026', 'test', ['left', 'mid', 'right'])]
    (tmp_path / 'splits.csv').write_text('04ac,0026,testing,all\n')
    with pytest.raises(aspset.ASPsetFormatError, match=r'splits\.csv: line 1'):
        aspset.load_splits(tmp_path)


# ------------------------------------------------------------------------------------------------
# Unit errors in either direction are refused, naming the expected unit (issue 13)
def test_predictions_in_the_wrong_unit_are_refused_both_ways(tmp_path):
    from posepile.eval.predictions import load_predictions
    rng = np.random.default_rng(0)
    poses_mm = rng.normal(0, 300, (20, 17, 3)) + [0, 0, 4000]
    paths = [f'img_{i}.jpg' for i in range(20)]
    for scale, message in ((1 / 1000, 'metres given'), (1000, 'implausible for a person in millimetres')):
        save_predictions(tmp_path / 'p.npz', paths, poses_mm * scale)
        with pytest.raises(PredictionError, match=message):
            load_predictions(tmp_path / 'p.npz', paths, 17)
    save_predictions(tmp_path / 'p.npz', paths, poses_mm)
    assert len(load_predictions(tmp_path / 'p.npz', paths, 17)) == 20


def test_official_3dpw_layout_in_millimetres_is_refused(tmp_path):
    from posepile.eval.predictions import check_pose_scale
    joints_mm = np.random.default_rng(1).normal(0, 400, (2, 30, 24, 3))
    with pytest.raises(PredictionError, match=r'res/x\.pkl: .*metres \(millimetres given\? divide by 1000\)'):
        check_pose_scale(joints_mm[0], 'res/x.pkl', unit='metres', factor_to_mm=1000)
    check_pose_scale(joints_mm[0] / 1000, 'res/x.pkl', unit='metres', factor_to_mm=1000)
