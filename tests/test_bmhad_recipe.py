"""posepile/ds/bmhad/main.sh end to end on a fake Berkeley MHAD release (Bayer PGM, Kinect PPM, C3D)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.bmhad import main as bmhad
from tests.fakes import bmhad as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _n_kept_buffered(poses_mm, threshold_mm=100):
    """The selection rule written out for a whole-take buffer and markers that are either always or never
    missing: keep the first frame, then a frame differing by >= threshold in some valid marker from EVERY
    frame kept so far."""
    valid = np.all(np.isfinite(poses_mm[0]), axis=1)
    poses = poses_mm[:, valid]
    kept = [poses[0]]
    for pose in poses[1:]:
        if min(np.max(np.linalg.norm(pose - old, axis=-1)) for old in kept) >= threshold_mm:
            kept.append(pose)
    return len(kept)


def _expected_count(written):
    total = 0
    for (cluster, take), indices in written['correspondences'].items():
        total += fake.CLUSTER_CAMERAS[cluster] * _n_kept_buffered(written['mocap'][take][indices])
    return total


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    data_root = tmp_path_factory.mktemp('bmhad_data')
    written = fake.write_fake_release(data_root / 'bmhad')
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{env.get("PATH", "")}'
    for var in ('POSEPILE_CACHE_DIR', 'POSEPILE_DETECTOR', 'SKIP_BROKEN'):
        env.pop(var, None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/bmhad/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return data_root, written, load_dataset(data_root / 'cache' / 'bmhad.posepile'), result.stderr


def test_counts_and_skipped_takes(built):
    _, written, dataset, log = built
    assert len(dataset.examples[0]) == _expected_count(written) > 0
    assert not dataset.examples[1] and not dataset.examples[2]
    paths = [ex.image_path for ex in dataset.examples[0]]
    assert not any('s04_a08_r05' in p for p in paths)
    assert not any('s05_a02_r05' in p and ('img_l03' in p or 'img_l04' in p) for p in paths)
    assert any('s05_a02_r05' in p and 'kin_k02' in p for p in paths)
    assert 's04_a08_r05 is missing in the release (all cameras)' in log
    assert 's05_a02_r05 is missing in the release for cluster l03' in log
    assert dataset.joint_info.names == bmhad.JOINT_NAMES.split(',') and len(dataset.joint_info.names) == 43


def test_units_axes_and_missing_markers(built):
    _, written, dataset, _ = built
    for example in dataset.examples[0]:
        take = tuple(int(x) for x in re.search(r'_s(\d\d)_a(\d\d)_r(\d\d)_', example.image_path).groups())
        mocap = written['mocap'][take]
        # some mocap sample of the take, in world mm with y up (heights 0.1-1.9 m)
        distances = np.nanmax(np.abs(mocap - example.world_coords), axis=(1, 2))
        assert distances.min() < 0.01
        assert 50 < np.nanmin(example.world_coords[:, 1]) and np.nanmax(example.world_coords[:, 1]) < 2100
        assert example.camera.world_up.tolist() == [0, 1, 0]
        nan_markers = np.flatnonzero(np.isnan(example.world_coords[:, 0])).tolist()
        assert nan_markers == ([7] if take == (1, 1, 1) else [12])  # NaN in the C3D / zeros in the C3D


def test_dots_sit_at_the_projected_markers(built):
    data_root, _, dataset, _ = built
    errors = []
    for example in dataset.examples[0]:
        projected = example.camera.world_to_image(example.world_coords)
        radius = 3 if example.camera.intrinsic_matrix[0, 0] < 800 else 5
        errors += dot_errors(data_root / example.image_path, projected, radius=radius, background=fake.BACKGROUND)
    assert len(errors) > 100
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_camera_loader_matches_opencv_projection(tmp_path):
    calibration = fake.make_calibration()
    fake.write_calibration(tmp_path, calibration)
    world = fake.make_mocap(50, seed=1).reshape(-1, 3)
    for cluster, entry in calibration.items():
        cameras = bmhad.load_cluster_cameras(tmp_path / 'Calibration', cluster)
        assert len(cameras) == len(entry['cameras'])
        for camera, truth in zip(cameras, entry['cameras']):
            assert np.max(np.abs(camera.world_to_image(world) - fake.project(truth, world))) < 1e-3


def test_gb_bayer_pattern_is_demosaiced_by_opencvs_gr_code():
    import cv2
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 30
    raw = fake.mosaic_gb(rgb)  # row 0: G B G B..., row 1: R G R G...
    assert raw[0, 0] == 100 and raw[0, 1] == 30 and raw[1, 0] == 200
    assert bmhad.demosaic(raw)[4, 4].tolist() == [200, 100, 30]
    # OpenCV's "GB" code (what the original used, then writing RGB) swaps red and blue on this tile
    assert cv2.cvtColor(raw, cv2.COLOR_BayerGB2RGB)[4, 4].tolist() == [30, 100, 200]


def test_pgm_reader_agrees_with_opencv(tmp_path):
    import cv2
    raw = np.random.default_rng(0).integers(0, 256, (6, 9), dtype=np.uint8)
    fake.write_pgm(tmp_path / 'a.pgm', raw)
    assert np.array_equal(bmhad.read_pgm(tmp_path / 'a.pgm'), raw)
    assert np.array_equal(cv2.imread(str(tmp_path / 'a.pgm'), cv2.IMREAD_UNCHANGED), raw)


def test_malformed_files_name_the_file(tmp_path):
    (tmp_path / 'short.pgm').write_bytes(b'P5\n640 480\n255\n' + bytes(100))
    with pytest.raises(bmhad.BmhadFormatError, match=r'short\.pgm: 100 bytes of pixels'):
        bmhad.read_pgm(tmp_path / 'short.pgm')
    (tmp_path / 'RwTw_l01.txt').write_text('Rw=1 0 0 0 1 0 \nTw=0 0 0 \n')
    with pytest.raises(bmhad.BmhadFormatError, match=r'RwTw_l01\.txt: expected lines'):
        bmhad.read_cluster_extrinsics(tmp_path / 'RwTw_l01.txt')
    corr = tmp_path / 'corr_moc_img_s01_a01_r01.txt'
    corr.write_text('0 0.0 5\n1 0.045 99999\n')
    with pytest.raises(bmhad.BmhadFormatError, match=r'corr_moc_img_s01_a01_r01\.txt: mocap index 99999'):
        bmhad.load_correspondence(corr, 1000)
    fake.write_c3d(tmp_path / 'moc.c3d', np.ones((5, 43, 3)))
    (tmp_path / 'bad.c3d').write_bytes((tmp_path / 'moc.c3d').read_bytes()[:700])
    with pytest.raises(bmhad.BmhadFormatError, match=r'bad\.c3d: '):
        bmhad.load_mocap(tmp_path / 'bad.c3d')
