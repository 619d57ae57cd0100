import pickle

import numpy as np
import pytest
from scipy.integrate import quad

from posepile.ds.tdpw import eval as tdpw_eval
from posepile.ds.tdpw import main as tdpw
from posepile.eval.predictions import PredictionError
from tests.fakes import tdpw as fake


def _camera_joints_m(data, actor):
    joints = np.asarray(data['jointPositions'][actor]).reshape(-1, 24, 3)
    homogeneous = np.concatenate([joints, np.ones((*joints.shape[:2], 1))], -1)
    return np.einsum('fij,fkj->fki', data['cam_poses'], homogeneous)[..., :3]


# Per-joint prediction errors (mm) chosen away from the integer AUC thresholds, so that round-off can never
# decide a comparison: every non-root joint j is off by 3.3 + 0.5 j mm along y, the left wrist (20) by
# 40.3 mm on even and 60.3 mm on odd frames.
JOINT_ERRORS_MM = np.array([0.0] + [3.3 + 0.5 * j for j in range(1, 24)])


def _wrist_error(frame):
    return 40.3 if frame % 2 == 0 else 60.3


def _write_official_predictions(written, folder, splits=tdpw.SPLITS):
    """GT in camera metres plus the planted errors and a global shift; returns the valid frames' indices."""
    frames = []
    for (split, sequence), data in written.items():
        per_actor = []
        for actor in range(len(data['jointPositions'])):
            joints = _camera_joints_m(data, actor)
            for f in range(len(joints)):
                errors = JOINT_ERRORS_MM.copy()
                errors[20] = _wrist_error(f)
                joints[f, :, 1] += errors / 1000
                joints[f] += [0.3, -0.2, 0.1]
            per_actor.append(joints)
            if split in splits:
                frames += [int(f) for f in np.flatnonzero(tdpw.valid_frames(data, actor))]
        (folder / 'res' / split).mkdir(parents=True, exist_ok=True)
        with open(folder / 'res' / split / f'{sequence}.pkl', 'wb') as f:
            pickle.dump({'jointPositions': np.stack(per_actor)}, f, protocol=2)
    return np.array(frames)


def _expected(frames):
    errors = np.tile(JOINT_ERRORS_MM, (len(frames), 1))
    errors[:, 20] = [_wrist_error(f) for f in frames]
    mpjpe = errors.mean()
    major = errors[:, tdpw.MAJOR_JOINTS]
    pck = 100 * np.mean(major <= 50)
    pcks = np.array([np.mean(major <= t) for t in range(200)])
    auc = quad(lambda x: np.interp(x, np.linspace(0, 1, 200), pcks), 0, 1, limit=1000)[0]
    return len(frames), mpjpe, pck, auc


@pytest.fixture
def release(data_root):
    return data_root, fake.write_fake_release(data_root / 'tdpw')


def test_official_layout_all_splits(release, tmp_path):
    data_root, written = release
    frames = _write_official_predictions(written, tmp_path)
    results = tdpw_eval.main(['--pred-path', str(tmp_path)])
    n, mpjpe, pck, auc = _expected(frames)
    assert results['n_frames'] == n and results['n_tracks'] == 6
    assert results['MPJPE'] == pytest.approx(mpjpe, abs=1e-6)
    assert results['PCK'] == pytest.approx(pck, abs=1e-9)
    assert results['AUC'] == pytest.approx(auc, abs=1e-5)
    assert 0 < results['MPJPE_PA'] < results['MPJPE']


def test_test_split_only_and_npz_layout(release, tmp_path):
    data_root, written = release
    frames = _write_official_predictions(written, tmp_path, splits=('test',))
    official = tdpw_eval.main(['--pred-path', str(tmp_path / 'res'), '--test-split'])
    n, mpjpe, pck, _ = _expected(frames)
    assert official['n_frames'] == n and official['n_tracks'] == 3
    assert official['PCK'] == pytest.approx(pck)
    # the same predictions as our npz layout, one row per valid (frame, actor)
    paths, person_index, coords = [], [], []
    for (split, sequence), data in written.items():
        if split != 'test':
            continue
        with open(tmp_path / 'res' / split / f'{sequence}.pkl', 'rb') as f:
            joints = pickle.load(f)['jointPositions']
        for actor in range(len(joints)):
            for frame in np.flatnonzero(tdpw.valid_frames(data, actor)):
                paths.append(tdpw.image_relpath(sequence, int(frame)))
                person_index.append(actor)
                coords.append(joints[actor, frame] * 1000)
    np.savez(tmp_path / 'p.npz', image_path=np.array(paths), person_index=np.array(person_index),
             coords3d_pred_cam=np.stack(coords).astype(np.float32))
    ours = tdpw_eval.main(['--pred-path', str(tmp_path / 'p.npz'), '--test-split'])
    for key in ('MPJPE', 'MPJPE_PA', 'PCK', 'AUC'):
        assert ours[key] == pytest.approx(official[key], abs=1e-3)


def test_smpl_ground_truth_matches_joint_positions(data_root, tmp_path):
    fake.write_smpl_models(tmp_path / 'smpl')
    written = fake.write_fake_release(data_root / 'tdpw', smpl_dir=tmp_path / 'smpl')
    _write_official_predictions(written, tmp_path)
    from_joints = tdpw_eval.main(['--pred-path', str(tmp_path)])
    from_smpl = tdpw_eval.main(['--pred-path', str(tmp_path), '--smpl-dir', str(tmp_path / 'smpl')])
    for key in ('MPJPE', 'MPJPE_PA', 'PCK', 'AUC'):
        assert from_smpl[key] == pytest.approx(from_joints[key], abs=1e-6)


def test_smpl_joints_follow_the_kinematic_chain(tmp_path):
    fake.write_smpl_models(tmp_path)
    model = tdpw.load_smpl_model(tmp_path / 'basicmodel_m_lbs_10_207_0_v1.0.0.pkl', 'male')
    rest = model.J_template  # J_regressor @ v_template
    zero = tdpw.smpl_joints(model, np.zeros((1, 72)), np.zeros(10), np.zeros((1, 3)))[0]
    np.testing.assert_allclose(zero, rest, atol=1e-12)
    # rotating the root by 90 deg about z rotates every joint about joint 0
    pose = np.zeros((1, 72))
    pose[0, 2] = np.pi / 2
    turned = tdpw.smpl_joints(model, pose, np.zeros(10), np.zeros((1, 3)))[0]
    rz = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    np.testing.assert_allclose(turned, (rest - rest[0]) @ rz.T + rest[0], atol=1e-9)
    # bone lengths are preserved under any pose
    pose = np.random.default_rng(0).normal(0, 0.5, (1, 72))
    posed = tdpw.smpl_joints(model, pose, np.zeros(10), np.zeros((1, 3)))[0]
    parents = fake.SMPL_PARENTS
    for j in range(1, 24):
        assert np.linalg.norm(posed[j] - posed[parents[j]]) == pytest.approx(
            np.linalg.norm(rest[j] - rest[parents[j]]))


def test_missing_prediction_files_are_listed(release, tmp_path):
    (tmp_path / 'res' / 'test').mkdir(parents=True)
    with pytest.raises(PredictionError, match='prediction files missing'):
        tdpw_eval.main(['--pred-path', str(tmp_path), '--test-split'])


def _rotation(axis, degrees):
    import cv2
    return cv2.Rodrigues(np.asarray(axis, np.float64) / np.linalg.norm(axis) * np.radians(degrees))[0]


def test_joint_angle_errors_with_and_without_procrustes(release, tmp_path):
    """Predictions = GT turned by 12 deg about the camera's y axis (joints about the pelvis, orientations
    too), with one part (the left knee, part 3) turned a further 9 deg about another axis: MPJAE is about
    12 deg, and after the Procrustes rotation only the knee's 9 deg remain (9 / 9 parts = 1 deg)."""
    data_root, written = release
    turn = _rotation([0, 1, 0], 12)
    extra = _rotation([1, 0, 0], 9)
    for (split, sequence), data in written.items():
        joints_per_actor, rots_per_actor = [], []
        for actor in range(len(data['jointPositions'])):
            joints = _camera_joints_m(data, actor)
            pelvis = joints[:, :1]
            joints_per_actor.append((joints - pelvis) @ turn.T + pelvis)
            world_rot = tdpw.global_rotations(np.asarray(data['poses'][actor]))[:, tdpw.ANGLE_PARTS]
            cam_rot = np.matmul(np.asarray(data['cam_poses'])[:, np.newaxis, :3, :3], world_rot)
            rots = np.matmul(turn, cam_rot)
            rots[:, 3] = extra @ rots[:, 3]
            rots_per_actor.append(rots)
        (tmp_path / 'res' / split).mkdir(parents=True, exist_ok=True)
        with open(tmp_path / 'res' / split / f'{sequence}.pkl', 'wb') as f:
            pickle.dump({'jointPositions': np.stack(joints_per_actor), 'orientations': np.stack(rots_per_actor)}, f)
    results = tdpw_eval.main(['--pred-path', str(tmp_path)])
    assert results['MPJPE_PA'] == pytest.approx(0, abs=1e-6)
    assert results['MPJAE_PA'] == pytest.approx(9 / 9, abs=1e-6)
    # without alignment: 8 parts off by 12 deg, the knee by the composition of 9 and 12 deg rotations
    knee = np.degrees(np.arccos((np.trace(extra @ turn) - 1) / 2))
    assert results['MPJAE'] == pytest.approx((8 * 12 + knee) / 9, abs=1e-6)


def test_smpl_models_come_from_posepile_bodymodels_and_missing_ones_name_the_file(tmp_path):
    from posepile.bodymodels import BodyModel
    paths = fake.write_smpl_models(tmp_path / 'smpl')
    assert isinstance(tdpw_eval.load_gt_smpl_model(tmp_path / 'smpl', 'f'), BodyModel)
    paths['f'].unlink()
    with pytest.raises(tdpw.TDPWFormatError, match='female') as info:
        tdpw_eval.load_gt_smpl_model(tmp_path / 'smpl', 'f')
    assert str(tmp_path / 'smpl') in str(info.value) and '\n' not in str(info.value)
