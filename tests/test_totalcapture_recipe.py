import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.totalcapture import main as tc
from posepile.util import masks
from posepile.util.camera import Camera, reproject_image, reproject_image_points
from tests.conftest import realdata_file
from tests.fakes import totalcapture as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _kept(poses_mm, threshold_mm=100):
    """The sampling rule written out: keep the first frame, then a frame where some joint moved at least
    `threshold_mm` since the last kept frame (positions in the given list)."""
    kept, last = [0], poses_mm[0]
    for i, pose in enumerate(poses_mm[1:], 1):
        if np.max(np.linalg.norm(pose - last, axis=-1)) >= threshold_mm:
            kept, last = kept + [i], pose
    return kept


def _expected_frames(written):
    """{(subject, take, camera number): selected frame indices}, from the fake with OpenCV projection."""
    expected = {}
    for subject, take in fake.TRAIN_TAKES:
        poses = written[(subject, take)][:fake.N_FRAMES]  # the extra Vicon rows have no video frames
        for c, params in enumerate(fake.camera_params(), 1):
            visible = []
            for i, pose in enumerate(poses):
                pixels, depth = fake.project(pose, params)
                inside = (pixels[:, 0] >= 0) & (pixels[:, 0] < fake.WIDTH) & (pixels[:, 1] >= 0) & \
                         (pixels[:, 1] < fake.HEIGHT) & (depth > 0)
                if inside.sum() >= 6:
                    visible.append(i)
            selected = [visible[k] for k in _kept(poses[visible])]
            expected[(subject, take, c)] = [f for f in selected if f != fake.EMPTY_MATTE_FRAME]
    return expected


def _run_recipe(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{env.get("PATH", "")}'
    for name in ('POSEPILE_CACHE_DIR', 'POSEPILE_DETECTOR'):
        env.pop(name, None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/totalcapture/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return load_dataset(data_root / 'cache' / 'totalcapture.posepile')


def test_totalcapture_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'totalcapture', seed=3)
    dataset = _run_recipe(data_root)
    assert dataset.joint_info.names == tc.JOINT_NAMES.split(',') and dataset.joint_info.n_joints == 21
    expected = _expected_frames(written)
    assert sum(len(v) for v in expected.values()) < 2 * 2 * fake.N_FRAMES  # the selection dropped frames
    assert len(dataset.examples[1]) == 0 and len(dataset.examples[2]) == 0
    got = {}
    for example in dataset.examples[0]:
        parts = Path(example.image_path).parts  # totalcapture_downscaled/video/s1/acting1/TC_..._cam1/000003.jpg
        subject, take, camera = tc.parse_video_name(parts[-2] + '.mp4')
        got.setdefault((subject, take, camera), []).append(int(parts[-1][:6]))
    assert {k: sorted(v) for k, v in got.items()} == {k: v for k, v in expected.items() if v}

    params = fake.camera_params()
    errors, ious = [], []
    for example in dataset.examples[0]:
        parts = Path(example.image_path).parts
        subject, take, camera = tc.parse_video_name(parts[-2] + '.mp4')
        frame = int(parts[-1][:6])
        np.testing.assert_allclose(example.world_coords, written[(subject, take)][frame], atol=1e-2)  # mm
        projected = example.camera.world_to_image(example.world_coords)
        # box = matte box (inside joints x1.25) cut by the image, reprojected into the crop
        pixels, _ = fake.project(written[(subject, take)][frame], params[camera - 1])
        x0, y0, x1, y1 = fake.matte_rectangle(pixels)
        source = _source_camera(params[camera - 1])
        xm, ym = (x0 + x1) / 2, (y0 + y1) / 2  # boxes are carried into crops by their side midpoints
        sides = reproject_image_points(np.array([[xm, y0], [x1, ym], [xm, y1], [x0, ym]], np.float64), source,
                                       example.camera)
        mins, maxs = sides.min(axis=0), sides.max(axis=0)
        np.testing.assert_allclose(example.bbox, [*mins, *(maxs - mins)], atol=0.03 * example.bbox[3])
        # mask = the matte carried into the crop
        matte = np.zeros((fake.HEIGHT, fake.WIDTH), np.uint8)
        matte[y0:y1, x0:x1] = 255
        crop_mask = masks.decode(example.mask)
        warped = reproject_image(matte, source, example.camera, crop_mask.shape) > 127
        ious.append(np.count_nonzero(crop_mask & warped) / np.count_nonzero(crop_mask | warped))
        r = max(3, int(round(2 * example.camera.intrinsic_matrix[0, 0] / fake.FOCAL[0])))
        drawn = (pixels[:, 0] >= 10) & (pixels[:, 0] < fake.WIDTH - 10) & (pixels[:, 1] >= 10) & \
                (pixels[:, 1] < fake.HEIGHT - 10)  # the fake draws dots only there
        errors += dot_errors(data_root / example.image_path, np.where(drawn[:, None], projected, np.nan), r,
                             neighbours=projected)
    assert min(ious) > 0.9, min(ious)
    assert len(errors) > 40
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def _source_camera(params):
    rotation, translation_m, intrinsics, k1 = params
    extrinsics = np.eye(4)
    extrinsics[:3, :3], extrinsics[:3, 3] = rotation, translation_m * 1000
    return Camera(extrinsic_matrix=extrinsics, intrinsic_matrix=intrinsics, distortion_coeffs=[k1, 0, 0, 0, 0],
                  world_up=(0, 1, 0))


def test_loaders_match_the_fake(tmp_path):
    params = fake.camera_params()
    fake.write_calibration(tmp_path / 'calibration.cal', params)
    calibration = tc.load_calibration(tmp_path / 'calibration.cal')
    assert [shape for _, shape in calibration] == [(fake.HEIGHT, fake.WIDTH)] * 2
    points = np.array([[100.0, 900, -200], [-300, 1500, 250]])
    for camera, p in zip(tc.load_cameras(tmp_path / 'calibration.cal'), params):
        np.testing.assert_allclose(camera.world_to_image(points), fake.project(points, p)[0], atol=1e-3)
    poses = np.random.default_rng(0).normal(size=(4, 21, 3)) * 30
    fake.write_vicon(tmp_path / 'gt_skel_gbl_pos.txt', poses)
    np.testing.assert_allclose(tc.load_joints(tmp_path / 'gt_skel_gbl_pos.txt'), poses * 25.4, rtol=1e-5, atol=1e-3)


def test_malformed_files_name_file_and_problem(tmp_path):
    fake.write_calibration(tmp_path / 'calibration.cal')
    lines = (tmp_path / 'calibration.cal').read_text().splitlines()
    lines[5] = '0.1 0.2'
    (tmp_path / 'calibration.cal').write_text('\n'.join(lines))
    with pytest.raises(tc.TotalCaptureFormatError, match=r'calibration\.cal: line 6 should hold 3 finite numbers'):
        tc.load_cameras(tmp_path / 'calibration.cal')
    (tmp_path / 'calibration.cal').write_text('\n'.join(lines[:-2]))
    with pytest.raises(tc.TotalCaptureFormatError, match=r'calibration\.cal: the header promises 2 cameras'):
        tc.load_cameras(tmp_path / 'calibration.cal')
    fake.write_vicon(tmp_path / 'gt_skel_gbl_pos.txt', np.zeros((3, 21, 3)))
    text = (tmp_path / 'gt_skel_gbl_pos.txt').read_text().splitlines()
    text[2] = text[2].rsplit('\t', 2)[0]
    (tmp_path / 'gt_skel_gbl_pos.txt').write_text('\n'.join(text))
    with pytest.raises(tc.TotalCaptureFormatError, match=r'gt_skel_gbl_pos\.txt: line 3 has 20 joints') as info:
        tc.load_joints(tmp_path / 'gt_skel_gbl_pos.txt')
    assert '\n' not in str(info.value)


def test_real_calibration_and_vicon(realdata):
    calibration = tc.load_calibration(realdata_file(realdata, 'totalcapture/calibration.txt'))
    poses = tc.load_joints(realdata_file(realdata, 'totalcapture/vicon/S1/acting3/gt_skel_gbl_pos.txt'))
    assert len(calibration) == 8 and poses.shape == (240, 21, 3)
    # plausible sizes in mm: head above the feet by 1.4-2 m, thigh 0.3-0.6 m
    height = poses[:, 6, 1] - np.minimum(poses[:, 17, 1], poses[:, 20, 1])
    thigh = np.linalg.norm(poses[:, 15] - poses[:, 16], axis=-1)
    assert 1200 < np.median(height) < 2000 and 300 < np.median(thigh) < 600, (np.median(height), np.median(thigh))
    for camera, imshape in calibration:
        assert imshape == (1080, 1920)
        centre_distance = np.hypot(camera.t[0], camera.t[2])
        assert 3000 < centre_distance < 6000 and 1500 < camera.t[1] < 3000  # mm, y up
        depth = camera.world_to_camera(poses)[..., 2]
        assert np.all(depth > 1000)  # in front of every camera
    # the subject is inside most views in most frames (camera 2 and 5 see it only partly, see SOURCES.md)
    inside = [np.mean(tc.visible_joint_counts(camera, imshape, poses) == 21) for camera, imshape in calibration]
    assert np.median(inside) > 0.8, inside
