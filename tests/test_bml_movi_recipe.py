"""posepile/ds/bml_movi/main.sh end to end on a fake BML-MoVi release (V3D .mat, PG and CP videos), the PG
camera loader on the real calibration files, and the CP calibration (time offset + extrinsics) on fakes
whose true offset and camera are known."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.bml_movi import main as movi
from posepile.paths import realdata_root
from tests.fakes import bml_movi as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _kept_by_rule(poses, threshold=100, buffer_size=500):
    """AdaptivePoseSampler2(100, check_validity, assume_nan_unchanged, buffer) written out."""
    kept, buffer = [], []
    for i, pose in enumerate(poses):
        valid = np.all(np.isfinite(pose), axis=1)
        if not buffer:
            buffer.append(pose.copy())
            if valid.any():
                kept.append(i)
            continue
        last = buffer[-1]
        keep = bool(np.any(valid & ~np.all(np.isfinite(last), axis=1)))
        if not keep:
            distances = [np.max(np.linalg.norm(pose[valid & np.all(np.isfinite(b), axis=1)] -
                                               b[valid & np.all(np.isfinite(b), axis=1)], axis=1))
                         for b in buffer if np.any(valid & np.all(np.isfinite(b), axis=1))]
            keep = bool(distances) and min(distances) >= threshold
        if keep:
            kept.append(i)
            buffer.append(np.where(np.isfinite(pose), pose, last))
            buffer = buffer[-buffer_size:]
    return kept


def _expected(written):
    result = {}
    for name, n_frames in written['n_frames'].items():
        round_name, camera = name.split('_')[:2]
        subject = int(name.split('_')[3].split('.')[0])
        mocap = written['mocap'][(round_name, subject)]
        offset = fake.CP_OFFSET_S if camera.startswith('CP') else 0.0
        frames = [i for i in range(n_frames) if fake.interpolate(mocap, i, offset) is not None]
        poses = np.array([fake.interpolate(mocap, i, offset) for i in frames])
        result[name] = [frames[i] for i in _kept_by_rule(poses)]
    return result


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    data_root = tmp_path_factory.mktemp('movi_data')
    written = fake.write_fake_release(data_root / 'bml_movi', realdata=realdata_root())
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1',
               MOVI_CP_OFFSET_RANGE='-2 3')
    env['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{env.get("PATH", "")}'
    for var in ('POSEPILE_CACHE_DIR', 'POSEPILE_DETECTOR', 'SKIP_BROKEN'):
        env.pop(var, None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/bml_movi/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return data_root, written, load_dataset(data_root / 'cache' / 'bml_movi.posepile')


def test_counts_follow_the_selection_rule(built):
    data_root, written, dataset = built
    expected = _expected(written)
    selection = json.loads((data_root / 'bml_movi/posepile_work/selection.json').read_text())
    assert {name: entry['frames'] for name, entry in selection.items()} == expected
    assert len(dataset.examples[0]) == sum(map(len, expected.values())) > 0
    assert not dataset.examples[1] and not dataset.examples[2]
    assert min(expected['F_CP1_Subject_1.mp4']) >= 12  # the mocap starts 0.4 s into the CP video
    assert dataset.joint_info.names == movi.JOINT_NAMES.split(',') and len(dataset.joint_info.names) == 87


def test_units_rounds_and_missing_joints(built):
    _, written, dataset = built
    for example in dataset.examples[0]:
        video, frame = Path(example.image_path).parts[1], int(Path(example.image_path).stem)
        round_name, camera = video.split('_')[:2]
        subject = int(video.split('_')[3].split('.')[0])
        offset = fake.CP_OFFSET_S if camera.startswith('CP') else 0.0
        truth = fake.interpolate(written['mocap'][(round_name, subject)], frame, offset)
        assert np.allclose(example.world_coords, truth, atol=0.5, equal_nan=True)  # mm, z up
        assert example.camera.world_up.tolist() == [0, 0, 1]
        if round_name == 'S1':
            assert np.count_nonzero(np.isfinite(example.world_coords[:, 0])) == 15
    early_f = [ex for ex in dataset.examples[0] if 'F_PG1' in ex.image_path and int(Path(ex.image_path).stem) < 10]
    assert early_f and all(np.isnan(ex.world_coords[3]).all() for ex in early_f)  # zeros in the V3D file


def test_dots_sit_at_the_projected_joints(built):
    data_root, _, dataset = built
    errors = {'PG': [], 'CP': []}
    for example in dataset.examples[0]:
        kind = 'CP' if '_CP' in example.image_path else 'PG'
        errors[kind] += dot_errors(data_root / example.image_path, example.camera.world_to_image(example.world_coords),
                                   radius=3, background=fake.BACKGROUND)
    assert len(errors['PG']) > 100 and len(errors['CP']) > 30
    assert np.median(errors['PG']) < 0.5 and np.max(errors['PG']) < 1.0, errors['PG']
    # CP: the estimated camera (fitted to noisy 2D keypoints) is within ~0.2 px of the true one
    assert np.median(errors['CP']) < 0.5 and np.max(errors['CP']) < 1.0


def test_cp_calibration_file(built):
    data_root, written, _ = built
    entry = json.loads((data_root / 'bml_movi/posepile_work/cp_calibration/F_CP1_Subject_1.json').read_text())
    assert abs(entry['time_offset_s'] - fake.CP_OFFSET_S) < 1 / fake.FPS
    assert np.linalg.norm(np.array(entry['camera']['optical_center_mm']) - written['cp']['centre']) < 50


def test_cp_offset_and_camera_are_recovered():
    """Static camera (CP1): the offset within 1 frame, the camera within 1 px over the body."""
    mocap = fake.make_mocap(seed=0)
    keypoints = fake.make_keypoints(mocap, 80, fake.CP_OFFSET_S)
    intrinsics = movi.cp_intrinsics(fake.CP_SIZE)
    offset, camera, rms = movi.estimate_offset_and_cameras(mocap[:, 67:], keypoints, fake.FPS, intrinsics, (-2, 3))
    assert abs(offset - fake.CP_OFFSET_S) < 1 / fake.FPS
    points = mocap.reshape(-1, 3)
    error = np.linalg.norm(camera.world_to_image(points) - fake.pinhole_project(fake.cp_truth(), points), axis=1)
    assert error.max() < 1.0 and rms < 2.0, (error.max(), rms)


def test_moving_cp_camera_is_calibrated_per_frame():
    """Handheld camera (CP2): a camera per frame, each within 1 px; the offset within 1 frame."""
    rng = np.random.default_rng(2)
    mocap = fake.make_mocap(seed=3)
    truth = fake.cp_truth()
    offset_true, n_frames = 0.25, 40
    keypoints, cameras = np.full((n_frames, 20, 2), np.nan), []
    for i in range(n_frames):
        camera = dict(truth, centre=truth['centre'] + [8 * i, -5 * i, 3 * np.sin(i)])
        camera['R'] = fake.look_at(camera['centre'], np.array([100.0, 50.0, 950.0]) + rng.normal(0, 20, 3))
        cameras.append(camera)
        pose = fake.interpolate(mocap, i, offset_true)
        if pose is not None:
            keypoints[i] = fake.pinhole_project(camera, pose[67:]) + rng.normal(0, 0.5, (20, 2))
    offset, per_frame, _ = movi.estimate_offset_and_cameras(
        mocap[:, 67:], keypoints, fake.FPS, truth['K'], (-0.5, 1.0), moving=True)
    assert abs(offset - offset_true) < 1 / fake.FPS
    assert len(per_frame) > 30
    for i, camera in per_frame.items():
        pose = fake.interpolate(mocap, i, offset_true)
        assert np.max(np.linalg.norm(camera.world_to_image(pose) - fake.pinhole_project(cameras[i], pose), axis=1)) < 1


def test_load_camera_on_the_real_pg1_files():
    root = realdata_root()
    calib = Path(root) / fake.REAL_CALIB if root else None
    if calib is None or not (calib / 'Extrinsics_PG1.npz').exists():
        pytest.skip('real BML-MoVi camera files not found (../shared/realdata or $POSEPILE_REALDATA)')
    camera = movi.load_camera(calib / 'Extrinsics_PG1.npz', calib / 'cameraParams_PG1.npz')
    assert np.allclose(camera.t, [4927.3, 6.7, 1344.8], atol=0.1)  # optical centre mm, 1.35 m high (z up)
    # (0, 0, 1000 mm) lands at MATLAB's (375.85, 297.64) px, i.e. (374.85, 296.64) with 0-based pixel centres
    assert np.allclose(camera.world_to_image(np.array([[0, 0, 1000.0]])), [[374.85, 296.64]], atol=0.01)
    content = fake.matlab_pg_camera(root, 1)
    body = fake.make_mocap(seed=0).reshape(-1, 3)  # a person wandering within 1 m of the origin
    assert np.max(np.abs(camera.world_to_image(body) - fake.matlab_project(content, body))) < 1e-6
    uv = camera.world_to_image(body)
    assert np.all(camera.world_to_camera(body)[:, 2] > 3000)  # in front, 3-7 m away
    assert np.all((uv >= 0) & (uv < [800, 600]))  # inside the 800x600 PG frame
    assert movi.camera_roll_deg(camera) < 2
    mat = calib / 'Extrinsics_PG1.mat'
    if mat.exists():  # the .mat holds the same values as the npz
        import scipy.io
        values = scipy.io.loadmat(str(mat))
        assert np.allclose(values['rotationMatrix'], content['rotationMatrix'])
        assert np.allclose(values['translationVector'].reshape(3), content['translationVector'])


def test_malformed_files_name_the_file(tmp_path):
    np.savez(tmp_path / 'Extrinsics_PG1.npz', rotationMatrix=2 * np.eye(3), translationVector=[0, 0, 5000.0])
    np.savez(tmp_path / 'cameraParams_PG1.npz', IntrinsicMatrix=np.eye(3), RadialDistortion=[0, 0])
    with pytest.raises(movi.MoviFormatError, match=r'Extrinsics_PG1\.npz: rotationMatrix is not a rotation'):
        movi.load_camera(tmp_path / 'Extrinsics_PG1.npz', tmp_path / 'cameraParams_PG1.npz')
    import scipy.io
    scipy.io.savemat(str(tmp_path / 'F_v3d_Subject_1.mat'),
                     {'Subject_1_F': {'move': {'markerLocation': np.zeros((5, 60, 3)),
                                               'virtualMarkerLocation': np.zeros((5, 20, 3))}}})
    with pytest.raises(movi.MoviFormatError, match=r'F_v3d_Subject_1\.mat: markerLocation \(5, 60, 3\)'):
        movi.load_mocap(tmp_path / 'F_v3d_Subject_1.mat', 'F', 1)
    (tmp_path / 'bad.mat').write_bytes(b'MATLAB 5.0 MAT-file' + bytes(50))
    with pytest.raises(movi.MoviFormatError, match=r'bad\.mat: '):
        movi.load_mocap(tmp_path / 'bad.mat', 'F', 1)
