"""posepile/ds/mads/main.sh end to end on a fake MADS multi-view release (AVI marker videos, GTpose2 cells with
19 or 15 joints, Bouguet calibration files), the camera loader against Bouguet's model, and malformed files.
No real MADS files are available (../shared/realdata/SOURCES.md), so the loader is checked on the fake's."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.mads import main as mads
from tests.fakes import mads as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _n_kept_v1(poses_mm, threshold_mm=100):
    """AdaptivePoseSampler(100, check_validity=True) written out: keep the first pose; then keep a pose if a
    joint valid now was missing in the last kept pose, or if some joint valid now moved >= threshold."""
    last, n = None, 0
    for pose in poses_mm:
        valid = np.all(np.isfinite(pose), axis=1)
        if last is not None and not np.any(valid & ~np.all(np.isfinite(last), axis=1)):
            if np.all(np.linalg.norm(pose[valid] - last[valid], axis=1) < threshold_mm):
                continue
        last, n = pose, n + 1
    return n


def _expected_count(written):
    total = 0
    for sequence, poses in written['poses'].items():
        n = min(len(poses), written['n_video_frames'][sequence])
        with_gt = [p for p in poses[:n] if np.any(np.isfinite(p))]
        total += fake.N_CAMERAS * _n_kept_v1(with_gt)
    return total


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    data_root = tmp_path_factory.mktemp('mads_data')
    written = fake.write_fake_release(data_root / 'mads')
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{env.get("PATH", "")}'
    for var in ('POSEPILE_CACHE_DIR', 'POSEPILE_DETECTOR', 'POSEPILE_SEGMENT', 'SKIP_BROKEN'):
        env.pop(var, None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/mads/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return data_root, written, load_dataset(data_root / 'cache' / 'mads.posepile')


def _sequence_and_frame(example):
    # mads_downscaled/multi_view_data/<action>/<sequence>_C<c>/<frame>.jpg
    parts = Path(example.image_path).parts
    sequence, camera = parts[-2].rsplit('_C', 1)
    return sequence, int(camera), int(Path(example.image_path).stem)


def test_counts_joints_and_units(built):
    _, written, dataset = built
    examples = dataset.examples[0]
    assert len(examples) == _expected_count(written) > 0
    assert not dataset.examples[1] and not dataset.examples[2]
    assert dataset.joint_info.names == mads.JOINT_NAMES.split(',')
    assert len(dataset.joint_info.stick_figure_edges) == 18  # a tree over 19 joints, both sides
    for example in examples:
        sequence, _, frame = _sequence_and_frame(example)
        truth = written['poses'][sequence][frame]
        np.testing.assert_allclose(example.world_coords, truth, atol=1e-3)  # mm, NaN where the GT has none
        assert example.camera.world_up.tolist() == [0, 1, 0]
    taichi = [ex for ex in examples if 'Taichi_S1' in ex.image_path]
    assert taichi and all(np.isnan(ex.world_coords[[5, 9, 13, 17]]).all() for ex in taichi)  # 15 -> 19 padded
    assert all(np.isfinite(ex.world_coords[18]).all() for ex in taichi)  # head is among the 15
    assert all(1500 < ex.world_coords[18, 1] < 1800 for ex in examples)  # head height, mm above the floor, y up


def test_frames_without_ground_truth_or_beyond_the_video_are_not_used(built):
    _, written, dataset = built
    frames = {(s, f) for s, _, f in map(_sequence_and_frame, dataset.examples[0])}
    assert not {f for _, f in frames} & set(fake.INVALID_FRAMES)
    n_taichi_video = written['n_video_frames']['Taichi_S1']
    assert max(f for s, f in frames if s == 'Taichi_S1') < n_taichi_video < len(written['poses']['Taichi_S1'])


def test_dots_sit_at_the_projected_joints_of_cell_i(built):
    """Video frame i shows the joints of GTpose2 cell i: pairing it with cell i - 1 (the person walks 60 mm per
    frame) would be several px off."""
    data_root, written, dataset = built
    errors, errors_if_previous = [], []
    for example in dataset.examples[0][::2]:
        sequence, _, frame = _sequence_and_frame(example)
        projected = example.camera.world_to_image(example.world_coords)
        radius = 4
        errors += dot_errors(data_root / example.image_path, projected, radius=radius, background=fake.BACKGROUND)
        previous = written['poses'][sequence][frame - 1]
        if frame >= 3 and np.isfinite(previous).any() and frame - 1 not in fake.INVALID_FRAMES:
            with np.errstate(invalid='ignore'):
                errors_if_previous += dot_errors(
                    data_root / example.image_path, example.camera.world_to_image(previous), radius=radius,
                    background=fake.BACKGROUND, neighbours=projected)
    assert len(errors) > 100
    assert np.median(np.nan_to_num(errors_if_previous, nan=np.inf)) > 2
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_boxes_are_the_joint_box_times_1_2(built):
    from posepile.util import boxes
    _, _, dataset = built
    for example in dataset.examples[0][:15]:
        expected = boxes.expand(boxes.bb_of_points(example.camera.world_to_image(example.world_coords)), 1.2)
        assert np.allclose(example.bbox[2:], expected[2:], rtol=0.03), (example.bbox, expected)


def test_box_rule_follows_the_detector():
    from posepile.preproc.video_stage import BoxRule
    assert mads.box_rule(None) == BoxRule('gt')
    assert mads.box_rule('hog') == BoxRule('best_iou', min_iou=0.0, fallback_to_gt=True)


def test_load_camera_matches_bouguets_model(tmp_path):
    import scipy.io
    calib = fake.make_calibration(2)
    calib['kc'] = np.array([[-0.3], [0.12], [0.002], [-0.0015], [0.01]])
    scipy.io.savemat(str(tmp_path / 'Calib_Cam2.mat'), calib)
    camera = mads.load_camera(tmp_path / 'Calib_Cam2.mat')
    grid = np.stack(np.meshgrid(np.linspace(0, 639, 12), np.linspace(0, 479, 12)), -1).reshape(-1, 2)
    world = camera.image_to_world(grid, np.linspace(2500, 6000, len(grid)))
    difference = np.abs(camera.world_to_image(world) - fake.bouguet_project(world, calib))
    assert difference.max() < 1e-6  # px, over the whole image
    centre = -fake.rodrigues(calib['om_ext']).T @ calib['T_ext'].reshape(3)
    np.testing.assert_allclose(camera.t, centre, atol=1e-6)  # mm


def test_malformed_files_name_the_file(tmp_path):
    import scipy.io
    calib = fake.make_calibration(0)
    del calib['om_ext']
    scipy.io.savemat(str(tmp_path / 'Calib_Cam0.mat'), calib)
    with pytest.raises(mads.MadsFormatError, match=r'Calib_Cam0\.mat: variable om_ext is missing'):
        mads.load_camera(tmp_path / 'Calib_Cam0.mat')
    (tmp_path / 'Calib_Cam1.mat').write_bytes(b'MATLAB 5.0 MAT-file, truncated')
    with pytest.raises(mads.MadsFormatError, match=r'Calib_Cam1\.mat: cannot read'):
        mads.load_camera(tmp_path / 'Calib_Cam1.mat')
    poses = fake.make_motion(6)
    cells = np.empty((1, 6), dtype=object)
    for i in range(6):
        cells[0, i] = poses[i][:17]
    scipy.io.savemat(str(tmp_path / 'X_GT.mat'), {'GTpose2': cells})
    with pytest.raises(mads.MadsFormatError, match=r'X_GT\.mat: GTpose2 cell 0 has shape \(17, 3\)'):
        mads.load_poses(tmp_path / 'X_GT.mat')
    for i in range(6):
        cells[0, i] = poses[i] / 1000
    scipy.io.savemat(str(tmp_path / 'Y_GT.mat'), {'GTpose2': cells})
    with pytest.raises(mads.MadsFormatError, match=r'Y_GT\.mat: .*not in millimetres'):
        mads.load_poses(tmp_path / 'Y_GT.mat')
    scipy.io.savemat(str(tmp_path / 'Z_GT.mat'), {'GTpose': cells})
    with pytest.raises(mads.MadsFormatError, match=r'Z_GT\.mat: variable GTpose2 is missing'):
        mads.load_poses(tmp_path / 'Z_GT.mat')


def test_missing_video_is_named_and_skip_broken_builds_the_rest(tmp_path):
    from posepile.preproc.pipeline import recipe_crop_results
    from posepile.preproc.video_stage import BrokenVideosError
    fake.write_fake_release(tmp_path / 'mads', sequences=(('Jazz', 'Jazz_J1', 19, 14, 0),))
    (tmp_path / 'mads' / 'multi_view_data' / 'Jazz' / 'Jazz_J1_C1.avi').write_bytes(b'not a video')
    with pytest.raises(BrokenVideosError, match='Jazz_J1_C1.avi'):
        mads.video_stage(n_workers=1, data_root=tmp_path)
    mads.video_stage(n_workers=1, skip_broken=True, data_root=tmp_path)
    cameras = {key.split('/')[-2][-2:] for key, _ in recipe_crop_results('mads', tmp_path)}
    assert cameras == {'C0', 'C2'}
