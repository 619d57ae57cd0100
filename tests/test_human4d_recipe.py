import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.human4d import main as human4d
from posepile.util import boxes, improc
from tests.conftest import realdata_file
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


def _pose_file(root, relpath):
    """The toolkit's rule (importers/offsets.py, h4d_rgbd_visualization_from_3d.py): colour frame i of sequence
    <timestamp> has the pose gposes3d/<i - offset1>.npy, offset1 = column 2 of that sequence's offsets.txt line."""
    subject, timestamp, _, _, name = relpath.split('/')
    lines = (Path(root) / subject / 'offsets.txt').read_text().splitlines()
    offset1 = int(next(line for line in lines if line.startswith(timestamp)).split('\t')[1])
    return Path(root) / subject / timestamp / 'Dump' / 'gposes3d' / f'{int(name.split("_")[0]) - offset1}.npy'


def _expected(written, root):
    """{relpath: joints (32, 3) mm} of the frames that must become examples: calibrated camera, a pose file
    (frame - offset1), selection per camera name over all subjects in natural path order."""
    usable = {}
    for r in sorted(written, key=_natural):
        path = _pose_file(root, r)
        if (Path(root) / written[r]['subject'] / 'pose' / f'{written[r]["camera_name"]}.extrinsics').exists() \
                and path.exists():
            usable[r] = np.delete(np.load(path).reshape(33, 3), fake.DELETED_JOINT, axis=0)
    expected = {}
    for name in {written[r]['camera_name'] for r in usable}:
        relpaths = [r for r in usable if written[r]['camera_name'] == name]
        expected.update({relpaths[k]: usable[relpaths[k]]
                         for k in _kept_by_rule([usable[r] for r in relpaths])})
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
    expected = _expected(written, data_root / 'human4d')
    n_with_pose = sum(w['joints_mm'] is not None for w in written.values())
    assert 0 < len(expected) < n_with_pose
    dataset = _run_recipe(data_root)
    assert dataset.joint_info.n_joints == 32 and dataset.joint_info.names == human4d.JOINT_NAMES.split(',')
    assert 'neck4_del' not in dataset.joint_info.names
    crops = {Path(e.image_path).relative_to('human4d_downscaled').with_suffix('.png').as_posix(): e
             for e in dataset.examples[0]}
    assert set(crops) == set(expected) and len(dataset.examples[0]) == len(expected)

    errors = []
    for relpath, example in crops.items():
        np.testing.assert_allclose(example.world_coords, expected[relpath], atol=1e-3)  # mm
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


def test_colour_camera_is_the_depth_pose_then_the_colour_depth_transform(tmp_path):
    """The toolkit's chain: X_depth = A^-1 (X - c) (the .extrinsics), X_color = R^-1 (X_depth - 1000 t), colour
    intrinsics. Re-stated here with 4x4 matrices from the raw files, and compared with the dots."""
    written = fake.write_fake_release(tmp_path, seed=4)
    relpath = next(r for r, w in written.items() if w['joints_mm'] is not None and w['subject'] == 'S2')
    truth = written[relpath]
    name = truth['camera_name']
    extrinsics = np.loadtxt(tmp_path / 'S2' / 'pose' / f'{name}.extrinsics')
    device = next(d for d in json.loads((tmp_path / 'S2' / 'device_repository.json').read_text())
                  if d['Device'] == name)
    depth_to_world = np.eye(4)
    depth_to_world[:3, :3], depth_to_world[:3, 3] = extrinsics[:3], extrinsics[3]
    color_to_depth = np.eye(4)
    color_to_depth[:3, :3] = np.reshape(device['Color Depth Rotation'], (3, 3))
    color_to_depth[:3, 3] = np.multiply(device['Color Depth Translation'], 1000)
    joints = np.concatenate([truth['joints_mm'], np.ones((32, 1))], axis=1)
    in_color = (np.linalg.inv(depth_to_world @ color_to_depth) @ joints.T).T[:, :3]
    in_depth = (np.linalg.inv(depth_to_world) @ joints.T).T[:, :3]
    color_intrinsics = np.reshape(device['Color Intrinsics'][0]['1280x720'], (3, 3))
    expected = in_color[:, :2] / in_color[:, 2:] * np.diag(color_intrinsics)[:2] + color_intrinsics[:2, 2]
    camera = human4d.load_cameras(tmp_path / 'S2')[name]
    projected = camera.world_to_image(truth['joints_mm'])
    np.testing.assert_allclose(projected, expected, atol=1e-6)
    errors = dot_errors(tmp_path / relpath, projected, 4)
    assert len(errors) > 10 and np.max(errors) < 0.2
    # the original's camera (the depth sensor's pose with the colour intrinsics) misses the dots by px
    depth_pose = in_depth[:, :2] / in_depth[:, 2:] * np.diag(color_intrinsics)[:2] + color_intrinsics[:2, 2]
    assert np.median(np.linalg.norm(depth_pose - projected, axis=1)) > 3


@pytest.mark.realdata
def test_real_device_repository_and_toolkit_pose(realdata):
    """The real device repository (same lab and devices, SOURCES.md) and the toolkit's exported M72j pose (depth
    sensor frame): the colour projection lands where SOURCES.md measured it."""
    import h5py
    path = realdata_file(realdata, 'human4d/_same_devices_not_human4d/device_repository.json')
    raw = json.loads(path.read_text())
    assert all(list(d['Color Intrinsics'][0]) == ['1280x720'] for d in raw)  # entry 0, as the toolkit reads
    devices = human4d.load_device_repository(path)
    assert {'M72e', 'M72h', 'M72i', 'M72j'} <= set(devices)
    m72j = devices['M72j']
    np.testing.assert_allclose(m72j['color_intrinsics'][[0, 1, 0, 1], [0, 1, 2, 2]],
                               [924.6648559570312, 924.4019165039062, 622.2228393554688, 348.490966796875])
    np.testing.assert_allclose(m72j['color_depth_translation_mm'], [-14.729287, 0.0076859, -0.0146561], atol=1e-5)
    with h5py.File(realdata_file(realdata, 'human4d/_derived_toolkit_h5/S3/INF_Running_S3_01_eval/annot.h5')) as f:
        joints_depth = f['pose/3d'][0]  # (33, 3) mm, the depth sensor's frame
        depth_intrinsics = f['intrinsics/M72j'][()]
        pixels_2d = f['pose/2d'][0]
    # world = the depth sensor's frame: identity extrinsics
    camera = human4d.make_camera(m72j, np.eye(3), np.zeros(3))
    projected = camera.world_to_image(joints_depth)
    np.testing.assert_allclose(projected[0], [601.47, 382.40], atol=0.01)
    # without the colour-depth transform: 2.3 px off at joint 0 (up to 5.7 px); depth intrinsics: 14.9 px
    naive = joints_depth[:, :2] / joints_depth[:, 2:] * np.diag(m72j['color_intrinsics'])[:2] + \
        m72j['color_intrinsics'][:2, 2]
    np.testing.assert_allclose(np.linalg.norm(naive[0] - projected[0]), 2.34, atol=0.01)
    assert 5.6 < np.max(np.linalg.norm(naive - projected, axis=1)) < 5.8
    depth_projection = joints_depth[:, :2] / joints_depth[:, 2:] * np.diag(depth_intrinsics)[:2] + \
        depth_intrinsics[:2, 2]
    np.testing.assert_allclose(np.linalg.norm(depth_projection[0] - projected[0]), 14.88, atol=0.01)
    # the toolkit's own 2D export is the depth-intrinsics projection, rounded to whole px
    assert np.max(np.abs(depth_projection - pixels_2d)) < 2


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
    camera = human4d.load_cameras(tmp_path / truth['subject'])[truth['camera_name']]
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
    repository = tmp_path / 'S2' / 'device_repository.json'
    repository.write_text(repository.read_text().replace('"Color Depth Rotation"', '"Rotation"'))
    with pytest.raises(human4d.Human4DFormatError, match=r"device_repository\.json: device 0 lacks .*'Color Depth "
                                                         r"Rotation'") as info:
        human4d.load_cameras(tmp_path / 'S2')
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
