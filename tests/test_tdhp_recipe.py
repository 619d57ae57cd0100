import os
import subprocess
from pathlib import Path

import numpy as np

from posepile.ds.tdhp import main as tdhp
from tests.fakes import tdhp as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _marker_errors(data_root, examples, source_focal, background=45.0, all_dots_world=None):
    """Dot centroid errors (px); all_dots_world(example) gives every dot drawn in its frame (world, mm) when
    the example holds only some of the joints (their neighbours bias the centroid)."""
    errors = []
    for example in examples:
        r = max(3, int(round(5 * example.camera.intrinsic_matrix[0, 0] / source_focal)))
        neighbours = None if all_dots_world is None else example.camera.world_to_image(all_dots_world(example))
        errors += dot_errors(data_root / example.image_path, example.camera.world_to_image(example.world_coords), r,
                             background=background, neighbours=neighbours)
    return np.array(errors)


def _check_masks(data_root, examples, root, world, key_camera):
    """The crop masks agree with the fake silhouette warped into the crop (away from its border)."""
    import cv2
    from posepile.util import improc, masks
    cameras = tdhp.load_train_cameras(root / 'S1' / 'Seq1' / 'camera.calibration')
    for example in examples:
        parts = example.image_path.split('/')
        camera_index = int(parts[3].split('_')[1]) if key_camera else int(parts[4].split('_')[1])
        frame = int(parts[-1][6:12])
        source = cameras[camera_index]
        silhouette = fake.person_mask(source, world[frame], 512, 512).astype(np.uint8)
        crop = example.camera
        homography = source.intrinsic_matrix @ source.R @ crop.R.T @ np.linalg.inv(crop.intrinsic_matrix)
        shape = improc.imread_rgb(data_root / example.image_path).shape[:2]
        expected = cv2.warpPerspective(silhouette.astype(np.float32), homography, shape[::-1],
                                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        got = masks.decode(example.mask)
        certain = (expected < 0.05) | (expected > 0.95)
        certain &= cv2.erode(certain.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert got.shape == shape
        assert np.mean(got[certain] == (expected[certain] > 0.5)) > 0.995


# The original's tdhp rules, re-stated: 17 joints in its loaders' order, cameras 0-2 and 4-8, every 5th frame,
# all 17 joints in view, then per camera the adaptive sampler (keep a pose when some joint moved >= 100 mm
# since the last kept one); S1-S7 TRAIN, S8 VALID.
LOADER_17 = 'htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,spin,head,pelv'.split(',')
RAW_28 = ('spi3,spi4,spi2,spin,pelv,neck,head,htop,lcla,lsho,lelb,lwri,lhan,rcla,rsho,relb,rwri,rhan,lhip,lkne,'
          'lank,lfoo,ltoe,rhip,rkne,rank,rfoo,rtoe').split(',')
TEST_17 = 'htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,pelv,spin,head'.split(',')
CAMERAS_8 = (0, 1, 2, 4, 5, 6, 7, 8)
S8_WALK = dict(n_frames=12, start_x=1200.0, drift_x_mm_per_frame=100.0, seed=8)  # walks out of some views


def _keep_moving(poses, threshold=100):
    kept, last = [], None
    for i, pose in enumerate(poses):
        if last is None or np.any(np.linalg.norm(pose - last, axis=-1) >= threshold):
            kept.append(i)
            last = pose
    return np.array(kept, int)


def _in_view(camera, world, size=512):
    px = camera.world_to_image(world)
    return np.all((px >= 0) & (px < size), axis=-1) & (camera.world_to_camera(world)[..., 2] > 0)


def _expected_tdhp_frames(world, cameras):
    """{camera: kept frames} by the original's tdhp rule (17 joints)."""
    joints = [RAW_28.index(n) for n in LOADER_17]
    result = {}
    for c in CAMERAS_8:
        frames = np.arange(0, len(world), 5)
        frames = frames[_in_view(cameras[c], world[frames][:, joints]).all(axis=1)]
        result[c] = frames[_keep_moving(world[frames][:, joints])]
    return result


def _reference_white_balance(rgb):
    """The original's 3DHP colour correction, re-stated: [0, 1] values to the power 0.67 (truncated to 8 bit),
    then in OpenCV's 8-bit Lab a -= (110 - 128) L / 255 * 1.1 and b -= (145 - 128) L / 255 * 1.1."""
    import cv2
    lifted = np.clip((np.asarray(rgb, np.float64) / 255) ** 0.67 * 255, 0, 255).astype(np.uint8)
    lab = cv2.cvtColor(lifted, cv2.COLOR_RGB2LAB).astype(np.float64)
    lab[..., 1] -= (110 - 128) * lab[..., 0] / 255 * 1.1
    lab[..., 2] -= (145 - 128) * lab[..., 0] / 255 * 1.1
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def test_white_balance_3dhp_matches_the_original_formula():
    from posepile.util.improc import white_balance_3dhp
    # reference values of the original's formula on uniform images (RGB in -> RGB out)
    for rgb_in, rgb_out in [((110, 140, 105), (161, 164, 163)), ((128, 128, 128), (173, 153, 183)),
                            ((30, 40, 25), (64, 71, 63))]:
        got = white_balance_3dhp(np.full((3, 4, 3), rgb_in, np.uint8))
        assert np.abs(got.astype(int) - rgb_out).max() <= 2, (rgb_in, got[0, 0])
    image = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    difference = white_balance_3dhp(image).astype(int) - _reference_white_balance(image)
    assert np.abs(difference).max() <= 1


def test_tdhp_recipe_on_fake_release(data_root):
    root = data_root / 'tdhp'
    world = fake.write_train_sequence(root, n_frames=20, chairs=True)
    world8 = fake.write_train_sequence(root, subject='S8', **S8_WALK)
    written = fake.write_fake_release(root, n_frames=(4, 3, 3, 3, 3, 4))
    fake.write_test_images(root, written)
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/tdhp/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'tdhp.posepile')
    assert dataset.joint_info.names == LOADER_17
    cameras = tdhp.load_train_cameras(root / 'S1' / 'Seq1' / 'camera.calibration')
    cameras8 = tdhp.load_train_cameras(root / 'S8' / 'Seq1' / 'camera.calibration')
    expected = {'S1': _expected_tdhp_frames(world, cameras), 'S8': _expected_tdhp_frames(world8, cameras8)}
    n_expected = {s: sum(len(v) for v in e.values()) for s, e in expected.items()}
    all_s8 = sum(len(range(0, len(world8), 5)) for _ in CAMERAS_8)
    assert n_expected['S8'] < all_s8  # the fake's S8 walks out of view: the all-joints rule matters
    assert len(dataset.examples[0]) == n_expected['S1'] > 0  # S1-S7: TRAIN
    assert len(dataset.examples[1]) == n_expected['S8'] > 0  # S8: VALID
    assert len(dataset.examples[2]) == sum(int(d['valid_frame'].sum()) for d in written.values())
    joints17 = [RAW_28.index(n) for n in LOADER_17]
    for split, subject_world in ((0, world), (1, world8)):
        for example in list(dataset.examples[split])[::3]:
            frame = int(example.image_path[-10:-4])
            np.testing.assert_allclose(example.world_coords, subject_world[frame][joints17], atol=0.05)
    assert not (root / 'S1' / 'Seq1' / 'Images').exists()  # crops straight from the videos

    # training crops are colour-corrected (the fake's grey 45 background), test crops are not
    corrected_background = _reference_white_balance(np.full((1, 1, 3), 45, np.uint8))[0, 0]
    from posepile.util import improc
    for split, corrected in ((0, True), (1, True), (2, False)):
        for example in list(dataset.examples[split])[:4]:
            median = np.median(improc.imread_rgb(data_root / example.image_path).reshape(-1, 3), axis=0)
            np.testing.assert_allclose(median, corrected_background if corrected else [45, 45, 45], atol=3)
    _check_crop_is_the_corrected_render(data_root, list(dataset.examples[0])[0])

    train_errors = _marker_errors(data_root, list(dataset.examples[0])[:8], 0.9 * 512,
                                  background=corrected_background[1],
                                  all_dots_world=lambda example: world[int(example.image_path[-10:-4])])
    test_errors = _marker_errors(data_root, list(dataset.examples[2])[:8], 1500)
    for errors in (train_errors, test_errors):
        assert len(errors) > 15
        assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))
    _check_masks(data_root, list(dataset.examples[0])[:6], root, world, key_camera=None)
    stored = tdhp.load_masks(data_root, 'S1', 'Seq1', 0)
    assert stored['fg'] and stored['chair'] and set(stored['chair']) == set(stored['fg'])

    # the test split: the files' order (..., pelv, spin, head) -> the loaders' (..., spin, head, pelv)
    test_example = dataset.examples[2][0]
    first = next(i for i in range(len(written['TS1']['valid_frame'])) if written['TS1']['valid_frame'][i])
    test_camera = tdhp.test_camera(root, 'TS1')
    expected_world = test_camera.camera_to_world(written['TS1']['annot3'][first])[[TEST_17.index(n) for n in LOADER_17]]
    np.testing.assert_allclose(test_example.world_coords, expected_world, atol=0.05)
    assert test_example.univ_coords.shape == (17, 3)

    # 3DHP-full: all 14 cameras, every frame through the sampler (camera coordinates), >= 9 joints in view
    full = load_dataset(data_root / 'cache' / 'tdhp_full.posepile')
    assert full.joint_info.names[0] == 'thor' and full.joint_info.n_joints == 28
    expected_full, partly_visible = 0, 0
    for subject_world, subject_cameras in ((world, cameras), (world8, cameras8)):
        for c in range(14):
            cam_coords = subject_cameras[c].world_to_camera(subject_world)
            kept = _keep_moving(cam_coords)
            inside = _in_view(subject_cameras[c], subject_world[kept])
            expected_full += int(np.sum(inside.sum(axis=1) >= 9))
            partly_visible += int(np.sum((inside.sum(axis=1) >= 9) & ~inside.all(axis=1)))
    assert len(full.examples[0]) == expected_full > len(dataset.examples[0])
    assert partly_visible >= 10
    full_examples = list(full.examples[0])
    assert {e.image_path.split('/')[3] for e in full_examples} == {f'video_{c}' for c in range(14)}
    raw_order = [RAW_28.index(n) for n in ['spi3'] + tdhp.FULL_JOINT_NAMES.split(',')[1:]]
    for example in full_examples[::7]:
        frame = int(example.image_path[-10:-4])
        source_world = world if '/S1/' in example.image_path else world8
        np.testing.assert_allclose(example.world_coords, source_world[frame][raw_order], atol=0.05)
        np.testing.assert_allclose(example.univ_coords, source_world[frame][raw_order], atol=0.05)  # univ = annot3
    s1_full = [e for e in full_examples if '/S1/' in e.image_path]
    full_errors = []
    for example in s1_full[::5][:10]:
        full_errors += dot_errors(data_root / example.image_path, example.camera.world_to_image(
            example.world_coords), max(3, int(round(5 * example.camera.intrinsic_matrix[0, 0] / (0.9 * 512)))),
            background=corrected_background[1])
    assert len(full_errors) > 15 and np.median(full_errors) < 0.5 and np.max(full_errors) < 1.0
    _check_masks(data_root, s1_full[::9][:6], root, world, key_camera=True)
    _check_full_boxes_of_partly_visible_people(full_examples, world8, cameras8)


def _check_full_boxes_of_partly_visible_people(full_examples, world8, cameras8):
    """The original's box: all 28 projected joints x 1.05, not clipped: a person walking out of view keeps
    its box (and so its scale in the crop)."""
    from posepile.util import boxes
    from posepile.util.camera import reproject_box
    checked = 0
    for example in full_examples:
        if '/S8/' not in example.image_path:
            continue
        camera_index = int(example.image_path.split('/')[3].split('_')[1])
        frame = int(example.image_path[-10:-4])
        source = cameras8[camera_index]
        inside = _in_view(source, world8[frame])
        if inside.all():
            continue
        px = source.world_to_image(world8[frame])
        x0, y0 = px.min(axis=0)
        x1, y1 = px.max(axis=0)
        w, h = (x1 - x0) * 1.05, (y1 - y0) * 1.05
        expected = np.array([(x0 + x1 - w) / 2, (y0 + y1 - h) / 2, w, h])
        assert expected[0] < 0 or expected[1] < 0 or expected[0] + w > 512 or expected[1] + h > 512
        # the crop's box mapped back to the frame (side midpoints through the turned camera: ~2% off far from
        # the image centre) is the full box, not the in-view (clipped) one
        got = reproject_box(example.bbox, example.camera, source)
        clipped = boxes.intersection(expected, [0, 0, 512, 512])
        error_full, error_clipped = np.abs(got - expected).max(), np.abs(got - clipped).max()
        assert error_full < 0.04 * max(w, h), (got, expected)
        # the crop's scale follows the full box: its longer side becomes 384 px (unless that is > 1.2x)
        scale = example.camera.intrinsic_matrix[0, 0] / source.intrinsic_matrix[0, 0]
        assert abs(max(example.bbox[2:]) - 384) < 1 or abs(scale - 1.2) < 1e-3
        if error_clipped > 0.15 * max(w, h):
            assert error_full < error_clipped / 3
            checked += 1
    assert checked >= 3  # frames where the in-view (clipped) box would have been clearly different


def _check_crop_is_the_corrected_render(data_root, example):
    """A training crop = the colour correction applied to the same crop rendered without it."""
    from posepile.preproc.cropping import make_efficient_example
    from posepile.util import improc
    from posepile.util.video import iter_frames
    task = next(p for t in tdhp.make_video_tasks(data_root) for frames in t.frames.values() for p in frames
                if p.crop_relpath == example.image_path)
    _, subject, sequence, _, video = example.image_path.split('/')[:5]  # tdhp_downscaled/S/Seq/Images/video_N
    frame_index = int(example.image_path[-10:-4])
    video_path = tdhp.raw_root(data_root) / subject / sequence / 'imageSequence' / f'{video}.avi'
    source = task.example
    source.image = next(frame for _, frame in iter_frames(video_path, [frame_index]))
    plain = make_efficient_example(source, 'check/plain.jpg', data_root=data_root, skip_existing=False)
    uncorrected = improc.imread_rgb(data_root / plain.image_path)
    corrected = improc.imread_rgb(data_root / example.image_path)
    assert uncorrected.shape == corrected.shape
    reference = _reference_white_balance(uncorrected)
    assert np.abs(corrected.astype(float) - uncorrected).mean() > 20  # the correction is visible
    assert np.abs(corrected.astype(float) - reference).mean() < 2.5
    np.testing.assert_allclose(corrected.reshape(-1, 3).mean(0), reference.reshape(-1, 3).mean(0), atol=1.5)


def test_detections_follow_the_union_rule(data_root):
    from posepile.preproc.video_stage import BoxRule, choose_boxes
    from posepile.util import boxes
    root = data_root / 'tdhp'
    fake.write_train_sequence(root, n_frames=12, cameras=tdhp.TRAIN_CAMERAS, masks=False)
    people = [p for task in tdhp.make_video_tasks(data_root) for frame in task.frames.values() for p in frame]
    assert people
    for person in people:
        box = np.asarray(person.example.bbox, np.float64)
        # a detection slightly larger than the joint box: the hull replaces the box
        larger = np.array([[box[0] - 5, box[1] - 8, box[2] + 10, box[3] + 4, 0.9]], np.float32)
        chosen, = choose_boxes([person], larger, BoxRule('3dhp', min_iou=0.5))
        np.testing.assert_allclose(chosen, boxes.hull(larger[0, :4], box), atol=1e-3)
        # a confident detection elsewhere: the hull would not overlap enough, the joint box stays
        far = np.array([[box[0] + 3 * box[2], box[1], box[2], box[3], 0.95], [*larger[0, :4], 0.5]], np.float32)
        chosen, = choose_boxes([person], far, BoxRule('3dhp', min_iou=0.5))
        np.testing.assert_allclose(chosen, box, atol=1e-3)
        assert choose_boxes([person], np.zeros((0, 5)), BoxRule('3dhp', min_iou=0.5))[0] is not None


def test_white_balance_3dhp_removes_the_green_cast_of_real_training_frames(realdata):
    """Real 3DHP studio frames are green (mean G about 31 levels above (R + B) / 2); the original's correction
    roughly halves that and brightens them (the inverted port it replaces made them greener)."""
    from posepile.util import improc
    from posepile.util.improc import white_balance_3dhp
    from tests.conftest import realdata_file
    for name in ('S4_Seq2_Cam0_001033.jpg', 'S8_Seq1_Cam8_002165.jpg'):
        image = improc.imread_rgb(realdata_file(realdata, f'mpi_inf_3dhp/{name}'), 4)
        before, after = (im.reshape(-1, 3).mean(axis=0) for im in (image, white_balance_3dhp(image)))
        green_excess = [m[1] - (m[0] + m[2]) / 2 for m in (before, after)]
        assert green_excess[0] > 25 and green_excess[1] < green_excess[0] - 7, (name, green_excess)
        assert after.mean() > before.mean() + 20
