"""posepile/ds/imar/main.sh end to end on fake Fit3D / CHI3D / HumanSC3D releases (200 Hz mocap, 50 fps marker
videos), and the camera loader on the real Fit3D calibration."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.imar import main as imar
from posepile.paths import realdata_root
from tests.fakes import imar as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _n_kept_buffered(poses_mm, threshold_mm=100):
    """The sampling rule written out (buffer larger than the sequence, no missing joints): keep the first
    frame, then a frame that differs by >= threshold in some joint from EVERY frame kept so far."""
    kept = [poses_mm[0]]
    for pose in poses_mm[1:]:
        if min(np.max(np.linalg.norm(pose - old, axis=-1)) for old in kept) >= threshold_mm:
            kept.append(pose)
    return len(kept)


def _expected_count(name, written):
    """Per camera and person: video frames i with a mocap frame 4i, sampled on the poses of mocap frame 4i."""
    total = 0
    for key, joints in written['joints'].items():
        n_mocap = joints.shape[1]
        n_frames = min(written['n_video_frames'][key], -(-n_mocap // 4))
        for person in joints:
            total += len(fake.CAMERA_IDS) * _n_kept_buffered(person[:4 * n_frames:4] * 1000)
    return total


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    data_root = tmp_path_factory.mktemp('imar_data')
    written = {name: fake.write_fake_release(data_root / name, name, realdata=realdata_root())
               for name in imar.NAMES}
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{env.get("PATH", "")}'
    for var in ('POSEPILE_CACHE_DIR', 'POSEPILE_DETECTOR', 'POSEPILE_SEGMENT'):
        env.pop(var, None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/imar/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return data_root, written


def _load(data_root, name):
    from posepile.storage.annotations import load_dataset
    return load_dataset(data_root / 'cache' / f'{name}.posepile')


@pytest.mark.parametrize('name', imar.NAMES)
def test_counts_joints_and_units(built, name):
    from posepile.ds.h36m.main import JOINT_NAMES25
    data_root, written = built
    dataset = _load(data_root, name)
    assert len(dataset.examples[0]) == _expected_count(name, written[name]) > 0
    assert not dataset.examples[1] and not dataset.examples[2]
    assert sorted(dataset.joint_info.names) == sorted(JOINT_NAMES25.split(','))  # the mix shares joints
    assert dataset.joint_info.names[1] == 'lhip' and dataset.joint_info.names[17] == 'lfoo'
    for example in dataset.examples[0][:20]:
        assert 1600 < example.world_coords[10, 2] < 1900  # head top, mm above the floor (z up)
        assert example.camera.world_up.tolist() == [0, 0, 1]
    if name == 'chi3d':  # both people, each its own example
        assert {Path(ex.image_path).stem[-2:] for ex in dataset.examples[0]} == {'_0', '_1'}


@pytest.mark.parametrize('name', imar.NAMES)
def test_dots_sit_at_the_projected_joints_of_mocap_frame_4i(built, name):
    """Video frame i shows the joints of mocap frame 4i: a reader pairing video frame i with mocap frame i
    (or 4i+-4) would be off by tens of px here, the person moving 24 mm per video frame."""
    data_root, written = built
    dataset = _load(data_root, name)
    errors, errors_if_mocap_frame_i = [], []
    for example in dataset.examples[0][::2][:30]:
        parts = Path(example.image_path).parts  # <name>_downscaled/train/<subject>/videos/<camera>/<action>/<i>
        frame, person = (int(x) for x in (Path(example.image_path).stem.split('_') + ['0'])[:2])
        joints_m = written[name]['joints'][(parts[2], parts[5])]
        everyone = example.camera.world_to_image(joints_m[:, 4 * frame].reshape(-1, 3) * 1000)
        radius = max(3, int(round(3 * example.camera.intrinsic_matrix[0, 0] / 1100)))
        errors += dot_errors(data_root / example.image_path, example.camera.world_to_image(example.world_coords),
                             radius=radius, background=fake.BACKGROUND, neighbours=everyone)
        if frame >= 4:  # what a 1:1 pairing of video and mocap frames would claim
            with np.errstate(invalid='ignore'):
                errors_if_mocap_frame_i += dot_errors(
                    data_root / example.image_path, example.camera.world_to_image(joints_m[person, frame] * 1000),
                    radius=radius, background=fake.BACKGROUND, neighbours=everyone)
    assert len(errors) > 40
    assert np.median(np.nan_to_num(errors_if_mocap_frame_i, nan=np.inf)) > 3  # NaN: no dot there at all
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_boxes_are_the_joint_box_times_1_2(built):
    from posepile.util import boxes
    data_root, _ = built
    for example in _load(data_root, 'fit3d').examples[0][:10]:
        expected = boxes.expand(boxes.bb_of_points(example.camera.world_to_image(example.world_coords)), 1.2)
        # the crop camera is turned towards the box centre, so the stored box is the reprojected one
        assert np.allclose(example.bbox[2:], expected[2:], rtol=0.03), (example.bbox, expected)


def test_box_rule_follows_the_detector():
    from posepile.preproc.video_stage import BoxRule
    assert imar.box_rule('fit3d', None) == BoxRule('gt')
    assert imar.box_rule('humansc3d', 'hog') == BoxRule('best_iou', min_iou=0.5)
    assert imar.box_rule('chi3d', 'hog') == BoxRule('hungarian', min_iou=0.5)  # two people: one-to-one


def test_frame_alignment_is_4_to_1():
    assert imar.candidate_frames(150, 38).tolist() == list(range(38))
    assert imar.candidate_frames(150, 40).tolist() == list(range(38))  # video runs past the mocap
    assert imar.candidate_frames(150, 30).tolist() == list(range(30))


def test_load_camera_matches_the_toolkit_on_the_real_fit3d_camera():
    root = realdata_root()
    path = Path(root) / fake.REAL_CAMERA if root else None
    if path is None or not path.exists():
        pytest.skip('real Fit3D camera file not found (../shared/realdata or $POSEPILE_REALDATA)')
    import cv2
    camera = imar.load_camera(path)
    content = json.loads(path.read_text())
    # rays through a grid over the whole 900x900 image, 2-6 m away
    grid = np.stack(np.meshgrid(np.linspace(0, 899, 16), np.linspace(0, 899, 16)), -1).reshape(-1, 2)
    world_mm = camera.image_to_world(grid, np.linspace(2000, 6000, len(grid)))
    toolkit = fake.toolkit_project(world_mm / 1000, content)
    assert np.max(np.abs(camera.world_to_image(world_mm) - toolkit)) < 1e-6
    # the original PosePile's reading of the same numbers as OpenCV coefficients differs
    intr = content['intrinsics_w_distortion']
    (k1, k2, k3), (p1, p2) = intr['k'][0], intr['p'][0]
    pc = (world_mm / 1000 - np.array(content['extrinsics']['T'])) @ np.array(content['extrinsics']['R']).T
    opencv, _ = cv2.projectPoints(pc.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), camera.intrinsic_matrix,
                                  np.array([k1, k2, p1, p2, k3]))
    difference = np.linalg.norm(opencv.reshape(-1, 2) - toolkit, axis=1)
    assert 1.0 < difference.max() < 3.0 and 0.1 < np.median(difference) < 0.5
    # centre in mm, 1.55 m above the floor
    assert camera.t[2] == pytest.approx(1552.19, abs=0.01)
    frame_path = Path(root) / 'fit3d/train/s03/frames/50591643/band_pull_apart/000000.png'
    if frame_path.exists():
        from posepile.util import improc
        height, width = improc.image_size_from_header(frame_path)[:2]
        assert (width, height) == (900, 900)  # the principal point (470, 443) is near its centre


def test_malformed_files_name_the_file(tmp_path):
    cameras, _ = fake.make_cameras()
    bad = dict(cameras['58860488'], extrinsics={'T': [[1, 2, 1.5]]})
    path = tmp_path / 'cam.json'
    path.write_text(json.dumps(bad))
    with pytest.raises(imar.ImarFormatError, match=r'cam\.json: field extrinsics/R is missing'):
        imar.load_camera(path)
    path.write_text(json.dumps(dict(cameras['58860488'], extrinsics={'R': np.eye(3).tolist(),
                                                                    'T': [[1000, 2000, 1500]]})))
    with pytest.raises(imar.ImarFormatError, match='not a camera centre in metres'):
        imar.load_camera(path)
    joints = tmp_path / 'joints.json'
    joints.write_text(json.dumps({'joints3d_25': np.zeros((10, 17, 3)).tolist()}))
    with pytest.raises(imar.ImarFormatError, match=r'joints\.json: joints3d_25 has shape \(1, 10, 17, 3\)'):
        imar.load_joints(joints, 1)
    joints.write_text(json.dumps({'joints3d_25': np.zeros((10, 25, 3)).tolist()}))
    with pytest.raises(imar.ImarFormatError, match=r'expected \(2, T, 25, 3\)'):
        imar.load_joints(joints, 2)
    joints.write_text('{"joints3d_25": [[[1, 2')
    with pytest.raises(imar.ImarFormatError, match='joints.json: invalid JSON'):
        imar.load_joints(joints, 1)


def test_missing_video_is_named_and_skip_broken_builds_the_rest(tmp_path):
    from posepile.preproc.pipeline import recipe_crop_results
    from posepile.preproc.video_stage import BrokenVideosError
    fake.write_fake_release(tmp_path / 'humansc3d', 'humansc3d', sequences={'s01': {'001': 40}})
    video = tmp_path / 'humansc3d' / 'train' / 's01' / 'videos' / '60457274' / '001.mp4'
    video.unlink()
    with pytest.raises(BrokenVideosError, match='60457274/001.mp4'):
        imar.video_stage('humansc3d', n_workers=1, data_root=tmp_path)
    imar.video_stage('humansc3d', n_workers=1, skip_broken=True, data_root=tmp_path)
    cameras = {key.split('/')[3] for key, _ in recipe_crop_results('humansc3d', tmp_path)}
    assert cameras == set(fake.CAMERA_IDS) - {'60457274'}
