"""Camera loaders of each dataset, checked against real sample files (../shared/realdata)."""
import json

import cv2
import numpy as np
import pytest

from tests.conftest import realdata_file


# ---------------------------------------------------------------------------------------------- H36M
def test_h36m_metadata_cameras(realdata):
    from posepile.ds.h36m.main import CAMERA_IDS, load_cameras
    cameras = load_cameras(realdata_file(realdata, 'h36m/metadata.xml'))
    assert len(cameras) == 44
    assert {cam_id for _, cam_id in cameras} == set(CAMERA_IDS)
    cam = cameras[(1, '54138969')]
    np.testing.assert_allclose(cam.intrinsic_matrix[[0, 1, 0, 1], [0, 1, 2, 2]],
                               [1145.04940458804, 1143.78109572365, 512.541504956548, 515.4514869776])
    np.testing.assert_allclose(cam.t, [1841.10702774543, 4955.28462344526, 1563.4453958977])
    for (subject, camera_id), cam in cameras.items():
        # Camera centres stand 1.4-1.8 m above the z-up floor, 4-6 m from the capture centre.
        assert 1400 < cam.t[2] < 1800
        assert 3500 < np.linalg.norm(cam.t[:2]) < 6500
        assert np.allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-9) and np.linalg.det(cam.R) > 0
        # A pelvis-height point at the capture centre projects near the image centre, upright:
        # a point 1 m higher appears higher in the image (smaller v). The other rotation
        # convention turns subjects upside down and fails this.
        width, height = 1000, 1000
        pelvis, head = cam.world_to_image(np.array([[0, 0, 900.0], [0, 0, 1900.0]]))
        assert 0.25 * width < pelvis[0] < 0.75 * width and 0.2 * height < pelvis[1] < 0.8 * height
        assert head[1] < pelvis[1] - 100


def test_h36m_distortion_model_differs_from_opencv(realdata):
    """The H36M tangential term is not OpenCV's: reading it as OpenCV moves points by ~0.1-0.2 px."""
    from posepile.ds.h36m.main import load_cameras
    from posepile.util.camera import Camera
    cam = load_cameras(realdata_file(realdata, 'h36m/metadata.xml'))[(1, '54138969')]
    k1, k2, k3, p_a, p_b = cam.distortion_coeffs
    as_opencv = Camera(cam.t, cam.R, cam.intrinsic_matrix, [k1, k2, p_a, p_b, k3], world_up=cam.world_up)
    corners = np.array([[40, 40], [960, 40], [40, 960], [960, 960]], np.float64)
    points = cam.image_to_world(corners, depth=4000)
    np.testing.assert_allclose(cam.world_to_image(points), corners, atol=1e-6)
    diff = np.linalg.norm(as_opencv.world_to_image(points) - corners, axis=-1)
    assert 0.1 < diff.max() < 1.0  # ~0.2 px where people stand, up to ~0.7 px at the corners
    # Ignoring the distortion entirely is off by more than a pixel near the corners.
    undistorted = cam.copy().undistort()
    assert np.linalg.norm(undistorted.world_to_image(points) - corners, axis=-1).max() > 1.0


def test_h36m_sample_frames_have_documented_sizes(realdata):
    from posepile.ds.h36m.main import FRAME_HEIGHTS, FRAME_WIDTH
    sizes = {}
    for relpath in [
            'h36m/S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg',
            'h36m/S5/S5_SittingDown.54138969/S5_SittingDown.54138969_002061.jpg',
            'h36m/S7/S7_Greeting.55011271/S7_Greeting.55011271_000396.jpg',
            'h36m/S8/S8_WalkDog_1.55011271/S8_WalkDog_1.55011271_000026.jpg']:
        image = cv2.imread(str(realdata_file(realdata, relpath)))
        assert image.shape[1] == FRAME_WIDTH and image.shape[0] in FRAME_HEIGHTS
        sizes[relpath.split('/')[1]] = image.shape[:2]
    # The same camera records both heights (S7 vs S8 of 55011271): sizes must come from the frames.
    assert sizes['S7'] == (1002, 1000) and sizes['S8'] == (1000, 1000)


def test_h36m_malformed_metadata(tmp_path):
    from posepile.ds.h36m.main import H36MFormatError, load_cameras
    bad = tmp_path / 'metadata.xml'
    bad.write_text('<a><w0>[1 2 3]</w0></a>')
    with pytest.raises(H36MFormatError, match=r'metadata.xml.*3 numbers, expected 300'):
        load_cameras(bad)
    bad.write_text('<a><w0>[1 2')
    with pytest.raises(H36MFormatError, match='cannot parse XML'):
        load_cameras(bad)


# ---------------------------------------------------------------------------------------------- 3DHP
CALIB_DIR = 'mpi_inf_3dhp/test_util/camera_calibration'


@pytest.mark.parametrize('name,f,c,dist', [
    ('ts1-4cameras.calib', (1500.17, 1500.83), (1017.39, 1043.03), None),
    ('ts5-6cameras.calib', (1683.98, 1672.59), (939.86, 560.14), [-0.2769, 0.1311, -0.00036, -0.00115, -0.0493]),
])
def test_3dhp_test_calib(realdata, name, f, c, dist):
    from posepile.ds.tdhp.main import load_calib
    cam = load_calib(realdata_file(realdata, f'{CALIB_DIR}/{name}'))
    K = cam.intrinsic_matrix
    np.testing.assert_allclose([K[0, 0], K[1, 1]], f, atol=0.006)
    np.testing.assert_allclose([K[0, 2], K[1, 2]], c, atol=0.006)
    if dist is None:
        assert cam.distortion_coeffs is None
    else:
        np.testing.assert_allclose(cam.distortion_coeffs, dist, atol=6e-5)
    assert np.allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-4) and np.linalg.det(cam.R) > 0


def test_3dhp_test_frames_are_2048_square(realdata):
    for name in ('TS1_002001.jpg', 'TS2_001850.jpg', 'S4_Seq2_Cam0_001033.jpg'):
        image = cv2.imread(str(realdata_file(realdata, f'mpi_inf_3dhp/{name}')))
        assert image.shape[:2] == (2048, 2048)


def test_3dhp_train_cameras_from_skeletool_file(tmp_path):
    from posepile.ds.tdhp.main import load_train_cameras
    path = tmp_path / 'camera.calibration'
    path.write_text(
        'Skeletool Camera Calibration File V1.0\n'
        'name          0\n  sensor      10 10\n  size        2048 2048\n  animated    0\n'
        '  intrinsic   1497.693 0 1024.704 0 0 1497.103 1051.394 0 0 0 1 0 0 0 0 1 \n'
        '  extrinsic   0.9650164 0.00488022 0.262144 -562.8666 -0.004488356 -0.9993728 0.0351275 1398.138 '
        '0.262151 -0.03507521 -0.9643893 3852.623 0 0 0 1 \n  radial      0\n'
        'name          1\n  sensor      10 10\n  size        2048 2048\n  animated    0\n'
        '  intrinsic   1495.587 0 983.8873 0 0 1497.828 987.5902 0 0 0 1 0 0 0 0 1 \n'
        '  extrinsic   1 0 0 0 0 1 0 0 0 0 1 1000 0 0 0 1 \n  radial      0\n')
    cams = load_train_cameras(path)
    assert len(cams) == 2
    np.testing.assert_allclose(cams[0].intrinsic_matrix[0], [1497.693, 0, 1024.704])
    extrinsic = cams[0].get_extrinsic_matrix()
    np.testing.assert_allclose(extrinsic[:3, 3], [-562.8666, 1398.138, 3852.623], atol=1e-3)
    np.testing.assert_allclose(cams[1].t, [0, 0, -1000])
    path.write_text('Skeletool Camera Calibration File V1.0\nname 0\n  intrinsic 1 2 3\n')
    with pytest.raises(ValueError, match=r'camera.calibration:3: intrinsic has 3 values'):
        load_train_cameras(path)


def test_3dhp_malformed_calib(tmp_path):
    from posepile.ds.tdhp.main import load_calib
    path = tmp_path / 'x.calib'
    path.write_text('tc camera calibration v0.3\ncamera 0 a\n\tframe 0\n\t\tsensorSize 10 10\n')
    with pytest.raises(ValueError, match='x.calib: field focalLength is missing'):
        load_calib(path)


# ---------------------------------------------------------------------------------------------- Panoptic
def test_panoptic_cameras_match_opencv(realdata):
    from posepile.ds.panoptic.main import load_cameras
    path = realdata_file(realdata, 'cmu_panoptic/160906_band1/calibration_160906_band1.json')
    cameras = load_cameras(path)
    assert len(cameras) == 520
    raw = {c['name']: c for c in json.load(open(path))['cameras']}
    rng = np.random.default_rng(0)
    points_mm = rng.uniform(-1000, 1000, (200, 3)) + [0, -1000, 0]
    for name in ['00_00', '00_15', '00_30', '01_01', '50_01']:
        c = raw[name]
        expected, _ = cv2.projectPoints(points_mm / 10, cv2.Rodrigues(np.array(c['R']))[0],
                                        np.array(c['t'], np.float64), np.array(c['K'], np.float64),
                                        np.array(c['distCoef'], np.float64))
        got = cameras[name].world_to_image(points_mm)
        in_front = cameras[name].world_to_camera(points_mm)[:, 2] > 0
        valid = in_front & np.isfinite(got).all(-1)
        assert valid.sum() > 50
        assert np.abs(got[valid] - expected[valid, 0]).max() < 1e-3


def test_panoptic_bodies_visible_in_hd_views(realdata):
    from posepile.ds.panoptic.main import load_bodies, load_cameras
    root = realdata_file(realdata, 'cmu_panoptic/160906_band1')
    cameras = load_cameras(root / 'calibration_160906_band1.json', camera_type='hd')
    assert len(cameras) == 31
    files = sorted((root / 'hdPose3d_stage1_coco19').glob('body3DScene_*.json'))
    assert len(files) == 20
    n_bodies = 0
    for path in files:
        for body_id, coords in load_bodies(path):
            n_bodies += 1
            valid = np.isfinite(coords).all(-1)
            assert valid.sum() >= 10
            # Plausible human extent along the y-down world's vertical axis (band members may sit).
            height = np.nanmax(coords[:, 1]) - np.nanmin(coords[:, 1])
            assert 500 < height < 2100, height
            n_inside = 0
            for cam in cameras.values():
                px = cam.world_to_image(coords[valid])
                in_front = cam.world_to_camera(coords[valid])[:, 2] > 0
                if (in_front.all() and np.isfinite(px).all() and (px >= 0).all()
                        and (px[:, 0] < 1920).all() and (px[:, 1] < 1080).all()):
                    n_inside += 1
            assert n_inside >= 9, (path.name, body_id, n_inside)
    assert n_bodies == 60


def test_panoptic_demo_views(realdata):
    from posepile.ds.panoptic.main import load_cameras
    root = realdata_file(realdata, 'cmu_panoptic/demo_160422_calib_tent13')
    cameras = load_cameras(root / 'camera_parameters.json', camera_type='hd')
    assert len(cameras) == 31
    for name in ['00_03', '00_06', '00_12', '00_13', '00_23']:
        image = cv2.imread(str(root / name / f'{name}_00004500.jpg'))
        assert image.shape[:2] == (1080, 1920)
        assert name in cameras


def test_panoptic_malformed(tmp_path):
    from posepile.ds.panoptic.main import load_bodies, load_cameras
    path = tmp_path / 'calibration_x.json'
    path.write_text(json.dumps({'cameras': [{'name': '00_00', 'type': 'hd', 'K': [[1, 0], [0, 1]]}]}))
    with pytest.raises(ValueError, match='calibration_x.json: camera #0 is malformed'):
        load_cameras(path)
    path.write_text('{"bodies": [{"id": 0, "joints19": [1, 2, 3]}]}')
    with pytest.raises(ValueError, match='3 joint values, expected 76'):
        load_bodies(path)


# ---------------------------------------------------------------------------------------------- SURREAL
def test_surreal_camera_reproduces_joints2d_exactly(realdata):
    from posepile.ds.surreal.main import load_camera, load_info, load_joints3d_mm
    path = realdata_file(realdata, 'surreal/01_01_c0001_info.mat')
    info = load_info(path)
    cam = load_camera(path)
    joints3d = load_joints3d_mm(info)
    joints2d = np.asarray(info['joints2D'], np.float64).transpose(2, 1, 0)
    assert joints3d.shape == (100, 24, 3)
    projected = cam.world_to_image(joints3d)
    np.testing.assert_array_equal(np.round(projected), joints2d)


def test_surreal_malformed(tmp_path):
    from posepile.ds.surreal.main import load_camera
    path = tmp_path / 'bad_info.mat'
    path.write_bytes(b'MATLAB 5.0 garbage')
    with pytest.raises(ValueError, match='bad_info.mat: cannot read .mat'):
        load_camera(path)


# ---------------------------------------------------------------------------------------------- ASPset
def test_aspset_camera_reprojection(realdata, tmp_path):
    from posepile.ds.aspset.main import load_camera
    values = json.load(open(realdata_file(realdata, 'aspset/04ac-0026-right_conftest_values.json')))
    cam_values = values['camera_04ac-right']
    # Written in the release's own camera JSON layout, then read back by our loader.
    path = tmp_path / '04ac-right.json'
    path.write_text(json.dumps({'intrinsic_matrix': cam_values['intrinsic_matrix_3x4'],
                                'extrinsic_matrix': cam_values['extrinsic_matrix_4x4']}))
    cam = load_camera(path)
    joints = np.array(values['joints_3d_04ac-0026_world_mm']['value'])
    expected = np.array(values['joints_2d_04ac-0026-right_px']['value'])
    assert np.abs(cam.world_to_image(joints) - expected).max() < 1e-6
