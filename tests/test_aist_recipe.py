import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.aist import main as aist
from posepile.util import boxes, masks
from tests.conftest import realdata_file
from tests.fakes import aist as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent
SPLIT_INDEX = {'train': 0, 'val': 1, 'test': 2}


def _kept(poses_mm, threshold_mm=100):
    """The sampling rule written out: keep the first frame, then a frame where some joint moved at least
    `threshold_mm` since the last kept frame."""
    kept, last = [0], poses_mm[0]
    for i, pose in enumerate(poses_mm[1:], 1):
        if np.max(np.linalg.norm(pose - last, axis=-1)) >= threshold_mm:
            kept, last = kept + [i], pose
    return kept


def _expected(written):
    """{video id: (split index, selected frames)} from the fake (ignored sequence and missing videos left out)."""
    expected = {}
    for sequence, (split, _, cameras) in fake.SEQUENCES.items():
        if sequence == fake.IGNORED:
            continue
        kept = _kept(written[sequence] * 10)
        for camera in cameras:
            video_id = sequence.replace('_cAll_', f'_{camera}_')
            n = fake.SHORT_VIDEO[1] if video_id == fake.SHORT_VIDEO[0] else fake.N_ROWS
            expected[video_id] = (SPLIT_INDEX[split], [f for f in kept if f < n])
    return expected


def _run_recipe(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{env.get("PATH", "")}'
    for name in ('POSEPILE_CACHE_DIR', 'POSEPILE_DETECTOR', 'POSEPILE_SEGMENTER'):
        env.pop(name, None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/aist/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return load_dataset(data_root / 'cache' / 'aist.posepile')


def test_aist_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'aist', seed=5)
    dataset = _run_recipe(data_root)
    assert dataset.joint_info.names == aist.JOINT_NAMES.split(',') and dataset.joint_info.n_joints == 19
    expected = _expected(written)
    got = {}
    for split in (0, 1, 2):
        for example in dataset.examples[split]:
            parts = Path(example.image_path).parts  # aist_downscaled/videos/<video id>/<frame>.jpg
            got.setdefault(parts[-2], (split, []))[1].append(int(parts[-1][:6]))
    assert {k: (s, sorted(f)) for k, (s, f) in got.items()} == expected
    n_expected = [sum(len(f) for s, f in expected.values() if s == i) for i in range(3)]
    assert [len(dataset.examples[i]) for i in range(3)] == n_expected and min(n_expected) > 0
    assert sum(n_expected) < fake.N_ROWS * len(expected)  # the selection dropped frames

    errors = []
    for split in (0, 1, 2):
        for example in dataset.examples[split]:
            parts = Path(example.image_path).parts
            sequence = '_'.join(p if not (p.startswith('c') and p[1:].isdigit()) else 'cAll'
                                for p in parts[-2].split('_'))
            frame = int(parts[-1][:6])
            optim_mm = written[sequence][frame] * 10
            np.testing.assert_allclose(example.world_coords[:17], optim_mm, atol=1e-2)  # mm, not cm
            np.testing.assert_allclose(example.world_coords[17], optim_mm[5:7].mean(axis=0), atol=1e-2)
            np.testing.assert_allclose(example.world_coords[18], optim_mm[11:13].mean(axis=0), atol=1e-2)
            projected = example.camera.world_to_image(example.world_coords)
            expected_box = boxes.expand(boxes.bb_of_points(projected), aist.BOX_EXPANSION)
            np.testing.assert_allclose(example.bbox, expected_box, atol=0.03 * expected_box[3])
            assert example.mask is not None and masks.area(example.mask) > 0  # every crop is segmented
            r = max(3, int(round(2 * example.camera.intrinsic_matrix[0, 0] / 420)))
            errors += dot_errors(data_root / example.image_path, projected[:17], r)
    assert len(errors) > 40
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_camera_loader_matches_opencv(tmp_path):
    entries = fake.camera_entries('setting1')
    path = tmp_path / 'setting1.json'
    path.write_text(json.dumps(entries))
    cameras = aist.load_cameras(path)
    assert sorted(cameras) == ['c01', 'c02']
    points = np.array([[100.0, 900, -200], [-300, 1500, 250], [0, 50, 100]])
    for entry in entries:
        np.testing.assert_allclose(cameras[entry['name']].world_to_image(points), fake.project(points, entry)[0],
                                   atol=1e-3)


def test_malformed_files_name_file_and_problem(tmp_path):
    path = tmp_path / 'setting1.json'
    entries = fake.camera_entries('setting1')
    entries[1]['translation'] = [1.0, 2.0]
    path.write_text(json.dumps(entries))
    with pytest.raises(aist.AISTFormatError, match=r"setting1\.json: camera 'c02\.translation' field has shape "
                                                   r"\(2,\)") as info:
        aist.load_cameras(path)
    assert '\n' not in str(info.value)
    with open(tmp_path / 'seq.pkl', 'wb') as f:
        pickle.dump({'keypoints3d_optim': np.zeros((5, 18, 3))}, f)
    with pytest.raises(aist.AISTFormatError, match=r'seq\.pkl: keypoints3d_optim has shape \(5, 18, 3\)'):
        aist.load_keypoints(tmp_path / 'seq.pkl')
    (tmp_path / 'mapping.txt').write_text('a setting1\nb\n')
    with pytest.raises(aist.AISTFormatError, match=r'mapping\.txt: line 2 should be'):
        aist.load_mapping(tmp_path / 'mapping.txt')


def test_real_setting_and_keypoints(realdata):
    setting = aist.load_camera_setting(realdata_file(realdata, 'aist/annotations/cameras/setting1.json'))
    poses = aist.load_keypoints(realdata_file(
        realdata, 'aist/annotations/keypoints3d/gBR_sBM_cAll_d04_mBR0_ch03.pkl'))
    assert sorted(setting) == [f'c{i:02d}' for i in range(1, 10)] and poses.shape == (720, 19, 3)
    # plausible sizes in mm: left shin 300-450 mm, shoulder width 250-450 mm
    shin = np.linalg.norm(poses[:, 13] - poses[:, 15], axis=-1)
    shoulders = np.linalg.norm(poses[:, 5] - poses[:, 6], axis=-1)
    assert 300 < np.median(shin) < 450 and 250 < np.median(shoulders) < 450, (np.median(shin), np.median(shoulders))
    for name, (camera, imshape) in setting.items():
        assert imshape == (1080, 1920)
        depth = camera.world_to_camera(poses)[..., 2]
        assert 3000 < depth.min() and depth.max() < 7000, (name, depth.min(), depth.max())  # in front, 3-7 m
        pixels = camera.world_to_image(poses)
        assert np.all((pixels >= 0) & (pixels < [1920, 1080])), name  # every joint inside every image
        assert 3500 < np.hypot(camera.t[0], camera.t[2]) < 6000  # camera centres 3.5-6 m from the vertical axis
