import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.mupots import main as mupots
from posepile.util import boxes
from tests.conftest import realdata_file
from tests.fakes import mupots as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent
TRUE_K = np.array([[fake.TRUE_FOCAL_PX[0], 0, fake.TRUE_CENTER_PX[0]],
                   [0, fake.TRUE_FOCAL_PX[1], fake.TRUE_CENTER_PX[1]], [0, 0, 1]])
# SOURCES.md (realdata/mupots): least squares without joint 15 on the real files
REAL_NO_SPINE_FIT = {'TS1': (1500.85, 1495.89, 1030.70, 1045.49), 'TS13': (1102.47, 1103.33, 984.01, 507.55)}


def test_fit_intrinsics_recovers_known_values():
    rng = np.random.default_rng(0)
    points3d = rng.normal(0, 500, (200, 3)) + [0, 0, 5000]
    K = np.array([[1497.0, 0, 1017.0], [0, 1495.0, 1043.0], [0, 0, 1]])
    points2d = points3d[:, :2] / points3d[:, 2:] * [1497.0, 1495.0] + [1017.0, 1043.0]
    fitted, rms = mupots.fit_intrinsics(points2d + rng.normal(0, 0.5, points2d.shape), points3d)
    np.testing.assert_allclose(fitted, K, atol=2.0)
    assert 0.3 < rms < 0.7  # the added noise has an RMS norm of 0.5 * sqrt(2) = 0.71 px per point


def _shuffle_annot2_across_frames(src, dst, seed=0):
    """annot.mat whose annot2 of frame f is that of another frame: 2D and 3D no longer correspond."""
    import scipy.io
    cells = scipy.io.loadmat(str(src))['annotations']
    annot2 = [[cells[f, p]['annot2'][0, 0].copy() for p in range(cells.shape[1])] for f in range(cells.shape[0])]
    order = np.random.default_rng(seed).permutation(cells.shape[0])
    order = np.roll(order, 1) if np.any(order == np.arange(len(order))) else order
    for f in range(cells.shape[0]):
        for p in range(cells.shape[1]):
            cells[f, p]['annot2'][0, 0] = annot2[order[f]][p]
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(dst), {'annotations': cells})


def test_calibrate_sequence_leaves_out_the_wrong_spine(tmp_path):
    written = fake.write_fake_release(tmp_path, n_frames=4, n_people=2)
    path = tmp_path / 'MultiPersonTestSet' / 'TS1' / 'annot.mat'
    K, rms = mupots.calibrate_sequence(path)
    np.testing.assert_allclose(K, TRUE_K, atol=1e-6)
    assert rms < 1e-6
    # the original's fit on all 17 joints is pulled off by the wrong 2D spine
    people = [p for frame in written['TS1'] for p in frame if p['valid']]
    K_all, rms_all = mupots.fit_intrinsics(np.concatenate([p['annot2'] for p in people]),
                                           np.concatenate([p['annot3'] for p in people]))
    assert rms_all > 20 and np.max(np.abs(K_all - TRUE_K)) > 5
    # a sequence without a bad joint
    K, rms = mupots.calibrate_sequence(tmp_path / 'MultiPersonTestSet' / 'TS3' / 'annot.mat')
    np.testing.assert_allclose(K, TRUE_K, atol=1e-6)


def test_calibrate_sequence_fails_on_2d_and_3d_of_different_frames(tmp_path):
    fake.write_fake_release(tmp_path, n_frames=6, n_people=2)
    shuffled = tmp_path / 'shuffled' / 'TS4' / 'annot.mat'
    _shuffle_annot2_across_frames(tmp_path / 'MultiPersonTestSet' / 'TS4' / 'annot.mat', shuffled)
    with pytest.raises(mupots.MuPoTSFormatError, match=r'TS4/annot\.mat: annot2 does not match .* RMS') as info:
        mupots.calibrate_sequence(shuffled)
    assert '\n' not in str(info.value)


@pytest.mark.realdata
@pytest.mark.parametrize('sequence', ['TS1', 'TS13'])
def test_calibrate_sequence_on_real_files(realdata, sequence):
    path = realdata_file(realdata, f'mupots/MultiPersonTestSet/{sequence}/annot.mat')
    K, rms = mupots.calibrate_sequence(path)
    assert rms <= 1.5
    fx, fy, cx, cy = REAL_NO_SPINE_FIT[sequence]
    np.testing.assert_allclose([K[0, 0], K[1, 1], K[0, 2], K[1, 2]], [fx, fy, cx, cy], atol=2.0)
    # SOURCES.md point check, TS13 frame 0 person 0: the head top projects onto its annot2
    if sequence == 'TS13':
        head_top = np.array([389.662, -1324.58, 3438.48])
        np.testing.assert_allclose(head_top[:2] / head_top[2] * [K[0, 0], K[1, 1]] + K[:2, 2],
                                   [1108.96, 82.55], atol=0.1)


@pytest.mark.realdata
def test_calibrate_sequence_fails_on_real_shuffled_frames(realdata, tmp_path):
    path = realdata_file(realdata, 'mupots/MultiPersonTestSet/TS13/annot.mat')
    _shuffle_annot2_across_frames(path, tmp_path / 'TS13' / 'annot.mat')
    with pytest.raises(mupots.MuPoTSFormatError, match=r'TS13/annot\.mat: .* RMS \d+'):
        mupots.calibrate_sequence(tmp_path / 'TS13' / 'annot.mat')


def test_mupots_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'mupots', n_frames=2, n_people=2)
    fake.write_images(data_root / 'mupots', {k: v for k, v in written.items()})
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/mupots/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    from posepile.util import fileio
    intrinsics = fileio.load_json(data_root / 'mupots' / 'posepile_work' / 'intrinsics.json')
    assert max(v['rms_residual_px'] for v in intrinsics.values()) < 0.01  # the fake is exactly pinhole
    for sequence, frames in written.items():
        np.testing.assert_allclose(intrinsics[sequence]['intrinsic_matrix'], TRUE_K, atol=1e-3)
        # left out: the joints whose annot2 is > 5 px from the true projection in some valid person
        bad = sorted({j for people in frames for p in people if p['valid'] for j in range(17)
                      if np.linalg.norm(p['annot2'][j] - p['true_pixels'][j]) > 5})
        assert intrinsics[sequence]['joints_left_out'] == bad, sequence
    assert intrinsics['TS1']['joints_left_out'] == [15] and intrinsics['TS3']['joints_left_out'] == []
    dataset = load_dataset(data_root / 'cache' / 'mupots.posepile')
    expected = sum(p['valid'] for frames in written.values() for people in frames for p in people)
    assert len(dataset.examples[2]) == expected and len(dataset.examples[0]) == 0
    errors = []
    for example in list(dataset.examples[2])[:12]:  # TS1-TS3: the first two have the wrong 2D spine
        projected = example.camera.world_to_image(example.world_coords)
        r = 5
        errors += dot_errors(data_root / example.image_path, projected, r)
    assert len(errors) > 20
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))
    assert example.univ_coords.shape == (17, 3)
    for example in dataset.examples[2]:
        person = int(example.image_path.split('_')[-1].split('.')[0])
        np.testing.assert_array_equal(example.parameters['occluded_joints'], np.arange(17) % (3 + person) == 0)
        # the box: the joints that agree with the 3D (not the wrong 2D spine), x1.1 (seen in the crop)
        sequence = example.image_path.split('/')[-2]
        kept = [j for j in range(17) if j not in intrinsics[sequence]['joints_left_out']]
        projected = example.camera.world_to_image(example.world_coords)
        np.testing.assert_allclose(example.bbox, boxes.expand(boxes.bb_of_points(projected[kept]), 1.1),
                                   atol=0.05 * example.bbox[3])
