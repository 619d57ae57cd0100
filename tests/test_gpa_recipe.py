import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.gpa import main as gpa
from posepile.util import boxes, masks
from posepile.util.camera import Camera, reproject_image
from tests.fakes import gpa as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _n_kept(poses_mm, threshold_mm=100):
    """The sampling rule written out: keep the first frame, then a frame where some joint moved at least
    `threshold_mm` since the last kept frame."""
    n_kept, last = 1, poses_mm[0]
    for pose in poses_mm[1:]:
        if np.max(np.linalg.norm(pose - last, axis=-1)) >= threshold_mm:
            n_kept, last = n_kept + 1, pose
    return n_kept


def _expected_counts(written):
    counts = {True: 0, False: 0}
    for camera_id, (is_train, _) in fake.CAMERAS.items():
        frames = sorted((w['index'], w['joints_mm']) for w in written.values() if w['camera_id'] == camera_id)
        counts[is_train] += _n_kept(np.stack([joints for _, joints in frames]))
    return counts[True], counts[False]


def _run_recipe(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{env.get("PATH", "")}'
    for name in ('POSEPILE_CACHE_DIR', 'POSEPILE_DETECTOR'):
        env.pop(name, None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/gpa/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return load_dataset(data_root / 'cache' / 'gpa.posepile')


def _mask_iou_in_crop(example, true_mask, intrinsics):
    crop_mask = masks.decode(example.mask)
    source = Camera(intrinsic_matrix=intrinsics, world_up=(0, -1, 0))
    warped = reproject_image(true_mask.astype(np.uint8) * 255, source, example.camera, crop_mask.shape)
    true_in_crop = warped > 127
    return np.count_nonzero(crop_mask & true_in_crop) / np.count_nonzero(crop_mask | true_in_crop)


def test_gpa_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'gpa', seed=4)
    dataset = _run_recipe(data_root)
    assert dataset.joint_info.n_joints == 34 and dataset.joint_info.names == gpa.JOINT_NAMES.split(',')
    n_train, n_test = _expected_counts(written)
    assert n_train + n_test < len(written)  # the selection dropped some frames
    assert (len(dataset.examples[0]), len(dataset.examples[1]), len(dataset.examples[2])) == (n_train, 0, n_test)
    # the release's flat files were re-nested by id
    image_id = sorted(written)[-1]
    assert (data_root / 'gpa' / gpa.IMAGE_DIR / gpa.nested_relpath(image_id)).exists()
    assert not (data_root / 'gpa' / gpa.IMAGE_DIR / f'{image_id}.jpg').exists()

    errors, ious = [], []
    for split, examples in ((True, dataset.examples[0]), (False, dataset.examples[2])):
        for example in examples:
            truth = written[Path(example.image_path).stem]
            assert truth['is_train'] == split
            np.testing.assert_allclose(example.world_coords, truth['joints_mm'], atol=1e-3)  # mm, not m
            projected = example.camera.world_to_image(example.world_coords)
            # GT box: the projected joints' box x1.15 (reprojected into the crop: nearly the same box)
            expected_box = boxes.expand(boxes.bb_of_points(projected), gpa.BOX_EXPANSION)
            np.testing.assert_allclose(example.bbox, expected_box, atol=0.02 * expected_box[3])
            ious.append(_mask_iou_in_crop(example, truth['mask'], truth['intrinsics']))
            r = max(3, int(round(4 * example.camera.intrinsic_matrix[0, 0] / fake.FOCAL)))
            errors += dot_errors(data_root / example.image_path, projected, r)
    assert min(ious) > 0.9, min(ious)
    assert len(errors) > 40
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_malformed_annotation_names_file_and_problem(tmp_path):
    fake.write_fake_release(tmp_path, seed=1, frames_per_camera=1, malformed=True)
    with pytest.raises(gpa.GPAFormatError, match=r'xyz_gpa12_mdp_cntind_crop_cam_c2g\.json: annotation 1 '
                                                  r'joint_cams has shape \(2, 34\)') as info:
        gpa.load_annotations(tmp_path / gpa.ANNOTATION_FILE)
    assert '\n' not in str(info.value)
    (tmp_path / gpa.ANNOTATION_FILE).write_text('{"images": [{"file_name": "a/12.jpg"}], "annotations": [{}]}')
    with pytest.raises(gpa.GPAFormatError, match=r'c2g\.json: annotation 0 is malformed'):
        gpa.load_annotations(tmp_path / gpa.ANNOTATION_FILE)


def test_detections_drop_undetected_frames_and_replace_the_box():
    rng = np.random.default_rng(2)
    motion = fake.make_motion(rng, 4) + np.array([0, 150, 300, 450])[:, None, None]  # each moved >= 100 mm
    intrinsics = fake.intrinsics_of(7)
    annotations = [dict(image_id=f'{1000 + i:010d}', joints_mm=joints, intrinsics=intrinsics, is_train=True)
                   for i, joints in enumerate(motion)]
    gt_box = gpa.joint_box(Camera(intrinsic_matrix=intrinsics), motion[1])
    good = [*(gt_box[:2] + 5), *(gt_box[2:] * 0.9), 0.8]
    detections = {gpa.nested_relpath(a['image_id']): np.zeros((0, 5), np.float32) for a in annotations}
    detections[gpa.nested_relpath(annotations[1]['image_id'])] = np.array([[0, 0, 20, 20, 0.9], good], np.float32)
    detections[gpa.nested_relpath(annotations[2]['image_id'])] = np.array([[0, 0, 20, 20, 0.9]], np.float32)
    # frames 0 and 3 have no detection: left out before the selection
    assert gpa.select_indices(annotations, [7] * 4, detections) == [1, 2]
    np.testing.assert_allclose(gpa.choose_example_box(annotations[1], detections), good[:4], rtol=1e-6)
    assert gpa.choose_example_box(annotations[2], detections) is None  # best IoU < 0.3
    np.testing.assert_allclose(gpa.choose_example_box(annotations[2]), gpa.joint_box(
        Camera(intrinsic_matrix=intrinsics), motion[2]))
