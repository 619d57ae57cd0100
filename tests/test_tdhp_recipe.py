import os
import subprocess
from pathlib import Path

import numpy as np

from posepile.ds.tdhp import main as tdhp
from posepile.util.sampling import select_frames
from tests.markers import dot_errors
from tests.fakes import tdhp as fake

REPO = Path(__file__).resolve().parent.parent


def _marker_errors(data_root, examples, source_focal):
    errors = []
    for example in examples:
        r = max(3, int(round(5 * example.camera.intrinsic_matrix[0, 0] / source_focal)))
        errors += dot_errors(data_root / example.image_path, example.camera.world_to_image(example.world_coords), r)
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


def test_tdhp_recipe_on_fake_release(data_root):
    root = data_root / 'tdhp'
    world = fake.write_train_sequence(root, n_frames=20, chairs=True)
    written = fake.write_fake_release(root, n_frames=(4, 3, 3, 3, 3, 4))
    fake.write_test_images(root, written)
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/tdhp/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'tdhp.posepile')
    kept = np.arange(0, 20, 5)[select_frames(world[::5], 100)]
    cameras = tdhp.load_train_cameras(root / 'S1' / 'Seq1' / 'camera.calibration')
    expected_train = 0
    for c in tdhp.TRAIN_CAMERAS:
        for f in kept:
            px = cameras[c].world_to_image(world[f])
            inside = np.all((px >= 0) & (px < 512), axis=1)
            expected_train += inside.mean() >= 1 / 3
    assert len(dataset.examples[0]) == expected_train > 0
    assert len(dataset.examples[2]) == sum(int(d['valid_frame'].sum()) for d in written.values())
    assert dataset.joint_info.n_joints == 28
    assert not (root / 'S1' / 'Seq1' / 'Images').exists()  # crops straight from the videos
    train_errors = _marker_errors(data_root, list(dataset.examples[0])[:8], 0.9 * 512)
    test_errors = _marker_errors(data_root, list(dataset.examples[2])[:8], 1500)
    for errors in (train_errors, test_errors):
        assert len(errors) > 15
        assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))
    _check_masks(data_root, list(dataset.examples[0])[:6], root, world, key_camera=None)
    stored = tdhp.load_masks(data_root, 'S1', 'Seq1', 0)
    assert stored['fg'] and stored['chair'] and set(stored['chair']) == set(stored['fg'])

    # 3DHP-full: all 14 cameras, every frame through the sampler (camera coordinates), >= 9 joints in view
    full = load_dataset(data_root / 'cache' / 'tdhp_full.posepile')
    assert full.joint_info.names[0] == 'thor' and full.joint_info.n_joints == 28
    expected_full = 0
    for c in range(14):
        cam_coords = cameras[c].world_to_camera(world)
        kept = select_frames(cam_coords, 100)
        px = cameras[c].world_to_image(world[kept])
        inside = np.all((px >= 0) & (px < 512), axis=2) & (cam_coords[kept, :, 2] > 0)
        expected_full += int(np.sum(inside.sum(axis=1) >= 9))
    assert len(full.examples[0]) == expected_full > len(dataset.examples[0])
    full_examples = list(full.examples[0])
    assert {e.image_path.split('/')[3] for e in full_examples} == {f'video_{c}' for c in range(14)}
    raw_order = [tdhp.ALL_JOINT_NAMES.split(',').index(n) for n in ['spi3'] + tdhp.FULL_JOINT_NAMES.split(',')[1:]]
    for example in full_examples[::7]:
        frame = int(example.image_path[-10:-4])
        np.testing.assert_allclose(example.world_coords, world[frame][raw_order], atol=0.05)
        np.testing.assert_allclose(example.univ_coords, world[frame][raw_order], atol=0.05)  # fake: univ = annot3
    full_errors = []
    for example in full_examples[::5][:10]:
        full_errors += dot_errors(data_root / example.image_path, example.camera.world_to_image(
            example.world_coords), max(3, int(round(5 * example.camera.intrinsic_matrix[0, 0] / (0.9 * 512)))))
    assert len(full_errors) > 15 and np.median(full_errors) < 0.5 and np.max(full_errors) < 1.0
    _check_masks(data_root, full_examples[::9][:6], root, world, key_camera=True)

    test_example = dataset.examples[2][0]
    assert test_example.univ_coords.shape == (28, 3)
    assert np.isnan(test_example.world_coords[0]).all()  # spi3 is not among the 17 test joints


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
