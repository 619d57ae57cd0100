import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.human4d import main as human4d
from posepile.util import boxes, improc
from tests.fakes import human4d as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _natural(text):
    return [int(p) if p.isdigit() else p for p in re.split(r'(\d+)', text)]


def _kept_by_rule(poses, threshold=100.0, buffer_size=100):
    """Keep a pose iff, for each of the last 100 kept poses, some joint moved >= 100 mm."""
    kept, buffer = [], []
    for i, pose in enumerate(poses):
        if all(np.max(np.linalg.norm(pose - b, axis=-1)) >= threshold for b in buffer):
            kept.append(i)
            buffer = (buffer + [pose])[-buffer_size:]
    return kept


def _expected(written):
    """Relpaths of the frames that must become examples: calibrated camera, a pose file, selection per
    camera name over all subjects in natural path order."""
    usable = [r for r in sorted(written, key=_natural) if written[r]['joints_mm'] is not None
              and written[r]['camera_name'] in fake.CAMERAS[written[r]['subject']]]
    expected = set()
    for name in {written[r]['camera_name'] for r in usable}:
        relpaths = [r for r in usable if written[r]['camera_name'] == name]
        expected |= {relpaths[k] for k in _kept_by_rule([written[r]['joints_mm'] for r in relpaths])}
    return expected


def _run_recipe(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{env.get("PATH", "")}'
    for name in ('POSEPILE_CACHE_DIR', 'POSEPILE_DETECTOR'):
        env.pop(name, None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/human4d/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return load_dataset(data_root / 'cache' / 'human4d.posepile')


def test_human4d_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'human4d', seed=5)
    expected = _expected(written)
    n_with_pose = sum(w['joints_mm'] is not None for w in written.values())
    assert 0 < len(expected) < n_with_pose
    dataset = _run_recipe(data_root)
    assert dataset.joint_info.n_joints == 32 and dataset.joint_info.names == human4d.JOINT_NAMES.split(',')
    assert 'neck4_del' not in dataset.joint_info.names
    crops = {Path(e.image_path).relative_to('human4d_downscaled').with_suffix('.png').as_posix(): e
             for e in dataset.examples[0]}
    assert set(crops) == expected and len(dataset.examples[0]) == len(expected)

    errors = []
    for relpath, example in crops.items():
        truth = written[relpath]
        np.testing.assert_allclose(example.world_coords, truth['joints_mm'], atol=1e-3)  # mm
        projected = example.camera.world_to_image(example.world_coords)
        # the box: the projected joints' box x1.2 (seen in the upright crop)
        np.testing.assert_allclose(example.bbox, boxes.expand(boxes.bb_of_points(projected), 1.2),
                                   atol=0.03 * example.bbox[3])
        # the crop is upright: head top well above the ankles, the body roughly vertical
        names = dataset.joint_info.names
        htop, rank = projected[names.index('htop')], projected[names.index('rank')]
        assert rank[1] - htop[1] > 3 * abs(rank[0] - htop[0])
        assert example.bbox[3] > 2 * example.bbox[2]
        r = max(3, int(round(4 * example.camera.intrinsic_matrix[0, 0] / fake.FOCAL)))
        errors += dot_errors(data_root / example.image_path, projected, r)
    assert len(errors) > 40, len(errors)
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_camera_describes_the_stored_rotated_frame(tmp_path):
    written = fake.write_fake_release(tmp_path, seed=1)
    cameras = human4d.load_cameras(tmp_path / 'S1')
    assert set(cameras) == set(fake.CAMERAS['S1'])
    relpath = next(r for r, w in written.items() if w['joints_mm'] is not None and w['subject'] == 'S1')
    truth = written[relpath]
    camera = cameras[truth['camera_name']]
    projected = camera.world_to_image(truth['joints_mm'])
    np.testing.assert_allclose(projected, fake.project(truth['joints_mm'], truth['intrinsics'], truth['rotation'],
                                                       truth['position']), atol=1e-6)
    errors = dot_errors(tmp_path / relpath, projected, 4)
    assert len(errors) > 10 and np.max(errors) < 0.2
    assert improc.imread_rgb(tmp_path / relpath).shape == (720, 1280, 3)
    # world_up: the stored frame's -x axis (the up of the upright view), near the true vertical (the fake's
    # cameras are pitched down by a few degrees)
    np.testing.assert_allclose(camera.world_up, -truth['rotation'][0], atol=1e-9)
    assert np.dot(camera.world_up, [0, 0, 1]) > np.cos(np.deg2rad(10))


class _BrightBlobDetector:
    """Finds the bounding box of the dots; only upright images (taller than wide blobs) are accepted."""

    def detect(self, image_rgb):
        box = boxes.bb_of_mask(image_rgb[..., 1] > 100)
        assert box[3] > box[2], 'the detector must be given the upright view'
        return np.array([[*box, 0.9], [0, 0, 10, 10, 0.5]], np.float32)


def test_detection_runs_upright_and_maps_back(tmp_path):
    written = fake.write_fake_release(tmp_path, seed=2)
    relpath = next(r for r, w in written.items() if w['joints_mm'] is not None)
    stored = improc.imread_rgb(tmp_path / relpath)
    dets = human4d.detect_in_stored_frame(_BrightBlobDetector(), stored)
    np.testing.assert_allclose(dets[0, :4], boxes.bb_of_mask(stored[..., 1] > 100), atol=1e-4)
    back = human4d.stored_to_upright_box(dets[0], stored.shape)
    np.testing.assert_allclose(back, boxes.bb_of_mask(np.rot90(stored, k=3)[..., 1] > 100), atol=1e-4)
    truth = written[relpath]
    camera = human4d.make_camera(truth['intrinsics'], truth['rotation'], truth['position'])
    gt = human4d.gt_box(camera, truth['joints_mm'])
    # the best-IoU detection replaces the GT box; IoU < 0.5 drops the frame; no detection keeps the GT box
    assert boxes.iou(human4d.choose_box(camera, truth['joints_mm'], dets), gt) > 0.5
    np.testing.assert_allclose(human4d.choose_box(camera, truth['joints_mm'], dets), dets[0, :4])
    assert human4d.choose_box(camera, truth['joints_mm'], dets[1:]) is None
    np.testing.assert_allclose(human4d.choose_box(camera, truth['joints_mm'], np.zeros((0, 5))), gt)
    np.testing.assert_allclose(human4d.choose_box(camera, truth['joints_mm']), gt)


def test_malformed_files_name_the_file(tmp_path):
    fake.write_fake_release(tmp_path, seed=3)
    path = tmp_path / 'S1' / 'pose' / 'M72h.extrinsics'
    path.write_text('1 0 0\n0 1 0\n0 0 1\n')
    with pytest.raises(human4d.Human4DFormatError, match=r'M72h\.extrinsics: expected 4 rows of 3') as info:
        human4d.load_cameras(tmp_path / 'S1')
    assert '\n' not in str(info.value)
    pose = next((tmp_path / 'S1').glob('*/Dump/gposes3d/0.npy'))
    np.save(pose, np.zeros((1, 32, 3), np.float32))
    with pytest.raises(human4d.Human4DFormatError, match=r'gposes3d/0\.npy: shape \(1, 32, 3\)'):
        human4d.load_pose(pose)
    np.save(pose, np.ones((1, 33, 3), np.float32) * np.arange(33)[:, None] / 1000)  # metres, not mm
    with pytest.raises(human4d.Human4DFormatError, match='implausible for mm'):
        human4d.load_pose(pose)
    (tmp_path / 'S1' / 'offsets.txt').write_text('19-07-12-09-09-06 3 10\n')
    with pytest.raises(human4d.Human4DFormatError, match=r'offsets\.txt: line 1 is not'):
        human4d.load_offsets(tmp_path / 'S1' / 'offsets.txt')
