"""posepile/ds/umpm/main.sh end to end on a fake UMPM release (100 Hz C3D virtual markers, one and two people,
marker videos at 50 fps, sequence files with trailing commas, one video shipped as .avi.xz), the readers'
errors (truncated C3D, malformed calibration, unreadable sequence file) and the plausibility filter's NaN mode.
No real UMPM files are available (../shared/realdata/SOURCES.md), so the camera loader is checked against
OpenCV's projection with the fake's calibration files."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.umpm import main as umpm
from tests.fakes import umpm as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _n_kept_buffered(poses_mm, threshold_mm=100):
    """The v2 rule written out for complete poses and a buffer longer than the sequence: keep the first pose,
    then a pose that differs by >= threshold in some joint from EVERY pose kept so far."""
    kept = [poses_mm[0]]
    for pose in poses_mm[1:]:
        if min(np.max(np.linalg.norm(pose - old, axis=-1)) for old in kept) >= threshold_mm:
            kept.append(pose)
    return len(kept)


def _expected_count(written):
    """Per sequence, camera and person: the video frames i < min(video length, mocap samples / 2) with the
    pose of sample 2i, mean-subtracted, sampled; the set-aside p2_free_2 is not built."""
    total = 0
    for sequence, mocap in written['mocap'].items():
        for n_video in written['n_video_frames'][sequence].values():
            for person in mocap:
                poses = person[::2][:n_video].astype(np.float64)
                total += _n_kept_buffered(poses - poses.mean(axis=1, keepdims=True))
    return total


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    data_root = tmp_path_factory.mktemp('umpm_data')
    written = fake.write_fake_release(data_root / 'umpm')
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{env.get("PATH", "")}'
    for var in ('POSEPILE_CACHE_DIR', 'POSEPILE_DETECTOR', 'POSEPILE_SEGMENT', 'SKIP_BROKEN'):
        env.pop(var, None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/umpm/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return data_root, written, load_dataset(data_root / 'cache' / 'umpm.posepile'), result.stderr


def _parse(example):
    # umpm_downscaled/Video/<sequence>_<cam>/frame_<i>_<person>.jpg
    folder, name = Path(example.image_path).parts[-2:]
    sequence, cam = folder.rsplit('_', 1)
    _, frame, person = Path(name).stem.split('_')
    return sequence, cam, int(frame), int(person)


def test_counts_joints_and_units(built):
    _, written, dataset, _ = built
    examples = dataset.examples[0]
    assert len(examples) == _expected_count(written) > 0
    assert not dataset.examples[1] and not dataset.examples[2]
    assert dataset.joint_info.names == umpm.JOINT_NAMES.split(',')
    parsed = [_parse(ex) for ex in examples]
    assert {p[0] for p in parsed} == {'p1_grab_3', 'p2_free_1'}  # p2_free_2 left out, as the original
    assert {p[3] for p in parsed if p[0] == 'p2_free_1'} == {0, 1}  # two people, each its own example
    assert {p[1] for p in parsed if p[0] == 'p1_grab_3'} == set('fsrl')  # the .avi.xz was decompressed
    assert max(p[2] for p in parsed if p[:2] == ('p2_free_1', 's')) < 29 < max(p[2] for p in parsed)  # 29 frames
    for example, (sequence, _, frame, person) in zip(examples, parsed):
        truth = written['mocap'][sequence][person, 2 * frame]  # video frame i = mocap sample 2i, mm
        if (sequence, person, frame) == fake.GLITCH:
            continue
        np.testing.assert_allclose(example.world_coords, truth, atol=1e-3)
        assert example.camera.world_up.tolist() == [0, 0, 1]
        assert 1550 < example.world_coords[2, 2] < 1750  # head height above the floor, z up


def test_the_glitched_bone_is_set_to_nan(built):
    data_root, written, dataset, _ = built
    sequence, person, frame = fake.GLITCH
    glitched = [ex for ex in dataset.examples[0] if _parse(ex)[0] == sequence and _parse(ex)[2:] == (frame, person)]
    assert len(glitched) == 4  # one per camera: the pose is kept, with the wrist and elbow removed
    for example in glitched:
        assert np.isnan(example.world_coords[[4, 5]]).all()  # relb, rwri
        others = [j for j in range(15) if j not in (4, 5)]
        np.testing.assert_allclose(example.world_coords[others], written['mocap'][sequence][person, 2 * frame, others],
                                   atol=1e-3)
    import json
    report = json.loads((data_root / 'umpm' / 'posepile_work' / 'plausibility_report.json').read_text())
    assert report['examples_with_joints_set_to_nan'] == 4 and report['train_after'] == report['train_before']


def test_dots_sit_at_the_projected_joints_of_sample_2i(built):
    """Video frame i shows mocap sample 2i: pairing it with sample 2i + 1 (the people turn 6 degrees per
    sample) would put the hands px away."""
    data_root, written, dataset, _ = built
    errors, errors_if_odd_sample = [], []
    for example in dataset.examples[0][::3]:
        sequence, _, frame, person = _parse(example)
        mocap = written['mocap'][sequence]
        everyone = example.camera.world_to_image(mocap[:, 2 * frame].reshape(-1, 3))
        projected = example.camera.world_to_image(mocap[person, 2 * frame])
        errors += dot_errors(data_root / example.image_path, projected, radius=4, background=fake.BACKGROUND,
                             neighbours=everyone)
        if 2 * frame + 1 < mocap.shape[1]:
            odd = example.camera.world_to_image(mocap[person, 2 * frame + 1][[5, 8]])  # the wrists
            others = np.delete(everyone, [15 * person + 5, 15 * person + 8], axis=0)  # not the true wrist dots
            with np.errstate(invalid='ignore'):
                errors_if_odd_sample += dot_errors(data_root / example.image_path, odd, radius=4,
                                                   background=fake.BACKGROUND, neighbours=others)
    assert len(errors) > 100 and len(errors_if_odd_sample) > 20
    assert np.median(np.nan_to_num(errors_if_odd_sample, nan=np.inf)) > 1.0  # NaN: no dot there at all
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_boxes_are_the_joint_box_times_1_15(built):
    from posepile.util import boxes
    _, _, dataset, _ = built
    for example in dataset.examples[0][:20]:
        expected = boxes.expand(boxes.bb_of_points(example.camera.world_to_image(example.world_coords)), 1.15)
        assert np.allclose(example.bbox[2:], expected[2:], rtol=0.03), (example.bbox, expected)


def test_box_rule_follows_the_detector():
    from posepile.preproc.video_stage import BoxRule
    assert umpm.box_rule(None) == BoxRule('gt')
    assert umpm.box_rule('hog') == BoxRule('hungarian', min_iou=0.5, fallback_to_gt=False)


def test_load_camera_matches_opencv(tmp_path):
    calib = fake.make_calibration('calib_l06', 2)
    fake.write_ini(tmp_path / 'calib_x_r.ini', calib)
    camera = umpm.load_camera(tmp_path / 'calib_x_r.ini')
    grid = np.stack(np.meshgrid(np.linspace(0, 643, 12), np.linspace(0, 485, 12)), -1).reshape(-1, 2)
    world = camera.image_to_world(grid, np.linspace(2500, 7000, len(grid)))
    assert np.abs(camera.world_to_image(world) - fake.opencv_project(world, calib)).max() < 1e-6  # px
    assert 4900 < np.linalg.norm(camera.t[:2]) < 5100 and camera.t[2] == pytest.approx(1800, abs=1e-6)  # mm


def test_sequence_files_are_read_tolerantly(tmp_path):
    path = tmp_path / 'p4_meet_2.json'
    path.write_text('{\n  "id":"p4_meet_2",\n  "calib":"calib_l06",\n  "list":[1, 2,],\n}\n')
    assert umpm.load_sequence_info(path) == {'id': 'p4_meet_2', 'calib': 'calib_l06', 'list': [1, 2]}
    path.write_text('{"id": "a,}", "calib": "calib_l06",}')  # commas inside strings stay
    assert umpm.load_sequence_info(path)['id'] == 'a,}'
    path.write_text('{"id": "p4_meet_2" "calib": "calib_l06"}')
    with pytest.raises(umpm.UmpmFormatError, match=r'p4_meet_2\.json: not readable'):
        umpm.load_sequence_info(path)
    known = tmp_path / 'p3_circle_2.json'
    known.write_text('{"id": "p3_circle_2" "calib": ')  # unreadable, but the original replaced it by hand
    assert umpm.load_sequence_info(known)['calib'] == 'calib_l06'


def test_malformed_files_name_the_file(tmp_path):
    calib = fake.make_calibration('calib_l06', 0)
    path = tmp_path / 'calib_l06_f.ini'
    fake.write_ini(path, calib)
    lines = path.read_text().splitlines()
    path.write_text('\n'.join(lines[:3] + ['-0.2 0.1 0.001'] + lines[4:]))
    with pytest.raises(umpm.UmpmFormatError, match=r'calib_l06_f\.ini: line 4 should hold 4 or 5 finite numbers'):
        umpm.load_camera(path)
    fake.write_ini(path, dict(calib, tvec=calib['tvec'] / 1000))
    with pytest.raises(umpm.UmpmFormatError, match=r'calib_l06_f\.ini: .*not in millimetres'):
        umpm.load_camera(path)
    c3d = tmp_path / 'p1_x_vm.c3d'
    fake.write_c3d(c3d, fake.make_motion(40, 0)[np.newaxis])
    assert umpm.load_mocap(c3d).shape == (1, 40, 15, 3)
    c3d.write_bytes(c3d.read_bytes()[:-3000])
    with pytest.raises(umpm.UmpmFormatError, match=r'p1_x_vm\.c3d: truncated C3D: the header promises 40 frames'):
        umpm.load_mocap(c3d)
    fake.write_c3d(c3d, fake.make_motion(10, 0)[np.newaxis, :, :12])
    with pytest.raises(umpm.UmpmFormatError, match=r'p1_x_vm\.c3d: expected 15 or 30 points'):
        umpm.load_mocap(c3d)
    c3d.write_bytes(b'\x00' * 600)
    with pytest.raises(umpm.UmpmFormatError, match=r'p1_x_vm\.c3d: not a C3D file'):
        umpm.load_mocap(c3d)


def test_plausibility_nan_mode_drops_when_too_few_joints_remain():
    from posepile.datasets3d import Pose3DDataset, Pose3DExample
    from posepile.joint_info import JointInfo
    from posepile.util.camera import Camera
    camera = Camera(optical_center=[0, -5000, 1000], rot_world_to_cam=[[1, 0, 0], [0, 0, -1], [0, 1, 0]],
                    intrinsic_matrix=[[500, 0, 320], [0, 500, 240], [0, 0, 1]])
    pose = fake.TEMPLATE_MM.astype(np.float32)
    box = [0, 0, 640, 480]
    examples = [Pose3DExample('a.jpg', pose + i, box, camera) for i in range(20)]
    stretched = pose.copy()
    stretched[[5, 8], 0] *= 3  # both forearms 3x too long: relb, rwri, lelb, lwri become NaN
    examples.append(Pose3DExample('b.jpg', stretched, box, camera))
    small_box = Pose3DExample('c.jpg', pose, [0, 0, 5, 5], camera)  # no joint in the box: dropped
    examples.append(small_box)
    dataset = Pose3DDataset(JointInfo(umpm.JOINT_NAMES, umpm.JOINT_EDGES), examples)
    report = umpm.filter_by_plausibility_nan_mode(dataset, **umpm.PLAUSIBILITY)
    assert report['dropped_few_joints_in_box'] == 1 and report['examples_with_joints_set_to_nan'] == 1
    kept_b = [ex for ex in dataset.examples[0] if ex.image_path == 'b.jpg'][0]
    assert np.isnan(kept_b.world_coords[[4, 5, 7, 8]]).all() and np.isfinite(kept_b.world_coords[:4]).all()


class _BrightPixelsDetector:
    """One detection: the box of the frame's bright pixels (all dots of all people), score 1."""

    def detect(self, image_rgb):
        ys, xs = np.nonzero(image_rgb[..., 1] > 120)
        if len(xs) == 0:
            return np.zeros((0, 5), np.float32)
        return np.array([[xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1, 1]], np.float32)


def test_with_a_detector_unmatched_people_are_dropped(tmp_path, monkeypatch):
    """The bright-pixel box matches a lone person (IoU ~0.75 with the joint box x1.15). With two people it is
    assigned to at most one of them (one-to-one, IoU >= 0.5) and the other is dropped, not given its GT box."""
    from posepile.preproc import video_stage as video_stage_module
    from posepile.preproc.pipeline import recipe_crop_results
    from posepile.preproc.video_stage import video_stage_report
    from posepile.util import boxes
    written = fake.write_fake_release(tmp_path / 'umpm', sequences=(
        ('p1_grab_3', 'calib_l06', 1, 12, (6, 6, 6, 6)), ('p2_free_1', 'calib_n27', 2, 12, (6, 6, 6, 6))))
    monkeypatch.setitem(video_stage_module._DETECTORS, 'bright', _BrightPixelsDetector())
    umpm.decompress_stage(data_root=tmp_path)
    umpm.video_stage(detector_spec='bright', n_workers=1, data_root=tmp_path)
    keys = [key.split('/')[1:] for key, _ in recipe_crop_results('umpm', tmp_path)]
    lone = written['mocap']['p1_grab_3'][0, ::2].astype(np.float64)
    assert sum(video == 'p1_grab_3' for video, *_ in [(k[0][:-2],) for k in keys]) == \
        4 * _n_kept_buffered(lone - lone.mean(axis=1, keepdims=True))  # every lone person matched
    pairs = [(video, frame) for video, frame, _ in keys if video.startswith('p2_free_1')]
    assert pairs and len(pairs) == len(set(pairs))  # never both people of a frame: one detection, one person
    stats = video_stage_report(tmp_path / 'umpm' / 'posepile_work' / 'crops')['stats']
    assert stats['dropped_no_detection'] == stats['people'] - len(keys) > 0
    for _, example in recipe_crop_results('umpm', tmp_path)[:5]:  # the detection: tighter than joints x1.15
        gt_box = boxes.expand(boxes.bb_of_points(example.camera.world_to_image(example.world_coords)), 1.15)
        assert example.bbox[3] < 0.95 * gt_box[3]  # heights (px; the dots' size dominates narrow widths)
