"""posepile/ds/panoptic/main.sh end to end on fake sequences (one with its poses under
hdPose3d_stage1_coco19/hd/, one on disk but not listed), the original's selection rule on synthetic tracks and
on the 20 real frames of 160906_band1, the box rule with a detector, and the faults of issue 27 (joints19
holding inf, a missing calibration file, SKIP_BROKEN=1)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.panoptic import main as panoptic
from tests import faults
from tests.conftest import realdata_file
from tests.fakes import panoptic as fake
from tests.markers import dot_errors

HD_SEQUENCE = '160224_haggling1'  # listed; its fake keeps the poses under hdPose3d_stage1_coco19/hd/
UNLISTED = 'zz_unlisted'
FILE_ORDER = 'neck,nose,pelv,lsho,lelb,lwri,lhip,lkne,lank,rsho,relb,rwri,rhip,rkne,rank,leye,lear,reye,rear'
OUR_ORDER = 'neck,nose,lsho,lelb,lwri,lhip,lkne,lank,rsho,relb,rwri,rhip,rkne,rank,leye,lear,reye,rear,pelv'


def expected_kept(bodies):
    """The original's rule restated per body id (the fake's people stay far apart, so the Hungarian matching
    pairs equal ids): a body with >= 6 valid joints is kept when first seen, then whenever >= 3 of its joints
    moved >= 100 mm from its last kept pose (joints invalid in either pose ignored). [(frame, body id)]"""
    kept = []
    for body_id, coords in bodies.items():
        last = None
        for frame, pose in enumerate(coords):
            if np.isfinite(pose).all(axis=1).sum() < 6:
                continue
            if last is None or np.count_nonzero(np.linalg.norm(pose - last, axis=1) >= 100) >= 3:
                kept.append((frame, body_id))
                last = pose
    return sorted(kept)


def in_view(camera, world, size=(1920, 1080)):
    pixels = camera.world_to_image(world)
    depth = camera.world_to_camera(world)[:, 2]
    return np.count_nonzero(np.isfinite(pixels).all(1) & (depth > 0) & (pixels >= 0).all(1)
                            & (pixels < size).all(1))


def write_two_sequences(root, n_frames=10, n_hd=3, hd_frames=6, hd_cameras=2):
    written = {fake.SEQUENCE: fake.write_fake_release(root / 'panoptic', n_frames=n_frames, n_hd=n_hd)}
    written[HD_SEQUENCE] = fake.write_fake_release(root / 'panoptic', seed=1, n_frames=hd_frames,
                                                   sequence=HD_SEQUENCE, n_hd=hd_cameras, pose_subfolder='hd')
    fake.write_fake_release(root / 'panoptic', seed=2, n_frames=3, sequence=UNLISTED, videos=False)
    return written


def test_panoptic_recipe_on_fake_release(data_root):
    from posepile import status
    from posepile.storage.annotations import load_dataset
    from posepile.util import boxes
    written = write_two_sequences(data_root)
    result = faults.run_recipe('panoptic', data_root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert UNLISTED in result.stderr and 'not listed' in result.stderr  # reported, not built
    dataset = load_dataset(data_root / 'cache' / 'panoptic.posepile')
    assert ','.join(dataset.joint_info.names) == OUR_ORDER  # the original's: pelv moved last

    expected = set()
    for sequence, bodies in written.items():
        cameras = panoptic.load_cameras(data_root / 'panoptic' / sequence / f'calibration_{sequence}.json', 'hd')
        kept = expected_kept(bodies)
        assert any(body_id == fake.ENTERING_BODY for _, body_id in kept)  # unmatched: kept
        assert not any(body_id == fake.SPARSE_BODY for _, body_id in kept)  # 5 valid joints: never used
        assert 0 < len(kept) < sum(np.isfinite(b[:, 0, 0]).sum() for b in bodies.values()) // 2
        for name, camera in cameras.items():
            expected |= {(sequence, name, f, i) for f, i in kept if in_view(camera, bodies[i][f]) >= 6}
    got = set()
    for example in dataset.examples[0]:
        parts = Path(example.image_path).stem.split('_')
        sequence = Path(example.image_path).parts[1]
        got.add((sequence, f'{parts[0]}_{parts[1]}', int(parts[2]), int(parts[3])))
    assert len(got) == len(dataset.examples[0])
    assert got == expected and {s for s, *_ in got} == set(written)  # the hd/ layout gives examples too

    errors = []
    order = [FILE_ORDER.split(',').index(name) for name in OUR_ORDER.split(',')]
    for example in dataset.examples[0][::3]:
        parts = Path(example.image_path).stem.split('_')
        bodies = written[Path(example.image_path).parts[1]]
        frame, body_id = int(parts[2]), int(parts[3])
        np.testing.assert_allclose(example.world_coords, bodies[body_id][frame][order], atol=0.01)
        projected = example.camera.world_to_image(example.world_coords)
        every_dot = np.concatenate([example.camera.world_to_image(b[frame]) for b in bodies.values()])
        r = max(3, int(round(5 * example.camera.intrinsic_matrix[0, 0] / 1300)))
        errors += dot_errors(data_root / example.image_path, projected, r, neighbours=every_dot)
    assert len(errors) > 20
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))

    # the full-frame boxes: all valid joints x 1.25, not clipped to the image
    for task in panoptic.make_video_tasks(data_root):
        sequence, camera_name = task.key.split('/')
        camera = panoptic.load_cameras(
            data_root / 'panoptic' / sequence / f'calibration_{sequence}.json', 'hd')[camera_name]
        for frame, people in task.frames.items():
            for person in people:
                world = written[sequence][int(person.key.split('/')[-1])][frame]
                box = boxes.expand(boxes.bb_of_points(camera.world_to_image(world)), 1.25)
                np.testing.assert_allclose(person.example.bbox, box, rtol=1e-4, atol=1e-3)

    notes = status.raw_notes('panoptic', data_root)
    assert notes[0].startswith('sequences: 2 of the 66 listed are present') and any(UNLISTED in n for n in notes)


def test_sequence_list_is_the_originals_66():
    names = panoptic.listed_sequences()
    assert len(names) == len(set(names)) == 66
    for group in ('170224_haggling_{}', '170228_haggling_{}', '170404_haggling_{}', '170407_haggling_{}'):
        assert {group.format(s) for s in ('a1', 'a2', 'a3', 'b1', 'b2', 'b3')} <= set(names)
    assert {f'171204_pose{i}' for i in range(1, 7)} <= set(names)
    assert {'160422_haggling1', '160906_band4', '160906_ian5', '170915_toddler5', '171026_cello3',
            '161029_piano4', '170221_haggling_m3', '170407_office2', '170915_office1'} <= set(names)
    # every sequence of the table of HD videos missing upstream is processed
    assert {s for s, _ in panoptic.UPSTREAM_MISSING_HD_VIDEOS} <= set(names)


# ---------------------------------------------------------------------------------------------- selection
def _pose(rng, offset=(0, 0, 0)):
    return (np.stack([rng.normal(0, 150, 19), rng.uniform(-1700, -100, 19), rng.normal(0, 100, 19)], 1)
            + offset).astype(np.float32)


def test_selection_on_a_track_moving_20_mm_per_frame_with_a_flickering_joint():
    pose = _pose(np.random.default_rng(0))
    frames = []
    for f in range(100):
        coords = pose + np.float32([20 * f, 0, 0])
        if f % 2:
            coords[4] = np.nan  # flickers: a NaN distance is ignored, not counted as moved
        frames.append((f, [(0, coords)]))
    kept = panoptic.select_people(frames)
    assert sorted(kept) == list(range(0, 100, 5)) and len(kept) == 20  # the old rule kept 100


def test_selection_matches_people_by_position_not_id():
    rng = np.random.default_rng(1)
    a, b = _pose(rng, (-800, 0, 0)), _pose(rng, (800, 0, 0))
    frames = [(0, [(0, a), (1, b)]),
              (1, [(1, a + 5), (0, b + 5)]),  # ids swapped, barely moved: nobody kept
              (2, [(0, a + [150, 0, 0])]),  # a moved 150 mm, b left
              (3, [(0, a + [150, 0, 0]), (1, b)]),  # b is back where it was remembered
              (4, [(0, a + [150, 0, 0]), (1, b), (2, _pose(rng, (0, 0, 900)))])]  # a newcomer: unmatched, kept
    assert panoptic.select_people(frames) == {0: [0, 1], 2: [0], 4: [2]}


def test_selection_needs_three_moved_joints_and_six_valid_ones():
    pose = _pose(np.random.default_rng(2))
    two_moved, three_moved = pose.copy(), pose.copy()
    two_moved[:2] += [0, 0, 200]
    three_moved[:3] += [0, 0, 200]
    assert panoptic.select_people([(0, [(0, pose)]), (1, [(0, two_moved)])]) == {0: [0]}
    assert panoptic.select_people([(0, [(0, pose)]), (1, [(0, three_moved)])]) == {0: [0], 1: [0]}
    sparse = np.full_like(pose, np.nan)
    sparse[:5] = pose[:5]
    assert panoptic.select_people([(0, [(0, sparse)]), (1, [(0, sparse + 500)])]) == {}


@pytest.mark.parametrize('subfolder', ['', 'hd'])
def test_selection_on_real_frames_keeps_the_originals_11(realdata, tmp_path, subfolder):
    """The 20 real frames of 160906_band1 (3 people, NaN joints in 19, 9 and 12 frames): the original keeps
    11 person-frames (the old rule kept 49), in either layout."""
    source = realdata_file(realdata, 'cmu_panoptic/160906_band1')
    folder = tmp_path / 'panoptic' / '160906_band1'
    (folder / 'hdPose3d_stage1_coco19' / subfolder).mkdir(parents=True)
    shutil.copy(source / 'calibration_160906_band1.json', folder)
    for path in sorted((source / 'hdPose3d_stage1_coco19').glob('body3DScene_*.json')):
        shutil.copy(path, folder / 'hdPose3d_stage1_coco19' / subfolder)
    selection = panoptic.select_frames_stage(tmp_path)
    per_frame = selection['sequences']['160906_band1']
    assert len(per_frame) > 1 and sum(map(len, per_frame.values())) == 11
    assert per_frame['168'] == [0, 1, 2]  # the first frame: everyone


def test_real_bodies_have_pelv_last(realdata):
    path = realdata_file(realdata, 'cmu_panoptic/160906_band1/hdPose3d_stage1_coco19/body3DScene_00000168.json')
    raw = json.loads(path.read_text())['bodies'][0]
    values = np.array(raw['joints19']).reshape(19, 4)
    body_id, coords = panoptic.load_bodies(path)[0]
    assert body_id == raw['id']
    np.testing.assert_allclose(coords[-1], values[2, :3] * 10, rtol=1e-6)  # bodycenter -> pelv, last
    np.testing.assert_allclose(coords[2], values[3, :3] * 10, rtol=1e-6)  # lsho


# ---------------------------------------------------------------------------------------------- boxes
def test_detector_rule_is_the_originals():
    """Hungarian IoU > 0.1 with detections < 2x the GT box's area; the detection box is used; unmatched
    people are dropped (a deterministic set of detections through the video stage's box chooser)."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import BoxRule, PersonTask, choose_boxes
    assert panoptic.box_rule(None) == BoxRule('gt')
    rule = panoptic.box_rule('hog')
    gt = [[100, 100, 100, 200], [400, 100, 100, 200], [700, 100, 100, 200], [1000, 100, 100, 200]]
    people = [PersonTask(str(i), Pose3DExample('x.jpg', np.zeros((19, 3)), box, None), 'c.jpg')
              for i, box in enumerate(gt)]
    detections = np.float32([[110, 110, 100, 200, 0.9],  # person 0: IoU 0.68
                             [390, 90, 140, 280, 0.9],  # person 1: area 1.96x: allowed
                             [680, 80, 150, 280, 0.9],  # person 2: area 2.1x: not allowed
                             [1095, 100, 100, 200, 0.9]])  # person 3: IoU 0.026: not allowed
    chosen = choose_boxes(people, detections, rule)
    np.testing.assert_array_equal(chosen[0], detections[0, :4])
    np.testing.assert_array_equal(chosen[1], detections[1, :4])
    assert chosen[2] is None and chosen[3] is None


def test_box_is_all_valid_joints_unclipped():
    from posepile.util import boxes
    from posepile.util.camera import Camera
    camera = Camera(optical_center=[0, -1000, -3000], world_up=(0, -1, 0),
                    intrinsic_matrix=[[1000, 0, 960], [0, 1000, 540], [0, 0, 1]])
    camera.turn_towards(target_world_point=[0, -1000, 0])
    world = _pose(np.random.default_rng(3)) + [2800, 0, 0]  # partly beyond the right image border
    world[0] = np.nan
    enough, box = panoptic.person_in_view(camera, world, (1920, 1080))
    pixels = camera.world_to_image(world)
    assert 6 <= in_view(camera, world) < 18 and enough
    np.testing.assert_allclose(box, boxes.expand(boxes.bb_of_points(pixels), 1.25), rtol=1e-5)
    assert box[0] + box[2] > 1920  # not clipped


# ---------------------------------------------------------------------------------------------- faults
def _small_release(root):
    write_two_sequences(root, n_frames=4, n_hd=1, hd_frames=4, hd_cameras=1)


@pytest.fixture(scope='module')
def clean_build(tmp_path_factory):
    root = tmp_path_factory.mktemp('panoptic_clean')
    _small_release(root)
    result = faults.run_recipe('panoptic', root)
    assert result.returncode == 0, result.stderr[-3000:]
    return faults.output_bytes(root)


def _inf_joint(path):
    data = json.loads(Path(path).read_text())
    data['bodies'][1]['joints19'][4] = float('inf')
    Path(path).write_text(json.dumps(data))


def test_inf_in_joints19_names_the_file(clean_build, tmp_path):
    target = f'panoptic/{fake.SEQUENCE}/hdPose3d_stage1_coco19/body3DScene_00000002.json'
    faults.check_fault_is_reported_and_repaired('panoptic', _small_release, target, _inf_joint, tmp_path,
                                                reference=clean_build, names=['body3DScene_00000002.json',
                                                                              'infinite'])


def test_missing_calibration_names_the_file(clean_build, tmp_path):
    target = f'panoptic/{HD_SEQUENCE}/calibration_{HD_SEQUENCE}.json'
    faults.check_fault_is_reported_and_repaired('panoptic', _small_release, target, faults.remove, tmp_path,
                                                reference=clean_build, names=[f'calibration_{HD_SEQUENCE}.json'])


def test_skip_broken_builds_the_other_sequences(tmp_path):
    from posepile.storage.annotations import load_dataset
    _small_release(tmp_path)
    (tmp_path / 'panoptic' / HD_SEQUENCE / f'calibration_{HD_SEQUENCE}.json').unlink()
    result = faults.run_recipe('panoptic', tmp_path, {'SKIP_BROKEN': '1'})
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'skipped sequence {HD_SEQUENCE}' in result.stderr.splitlines()[-1]  # listed at the end
    dataset = load_dataset(tmp_path / 'cache' / 'panoptic.posepile')
    sequences = {Path(e.image_path).parts[1] for e in dataset.examples[0]}
    assert sequences == {fake.SEQUENCE}
