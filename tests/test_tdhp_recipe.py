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


def test_tdhp_recipe_on_fake_release(data_root):
    root = data_root / 'tdhp'
    world = fake.write_train_sequence(root, n_frames=30)
    written = fake.write_fake_release(root, n_frames=(4, 3, 3, 3, 3, 4))
    fake.write_test_images(root, written)
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1')
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/tdhp/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'tdhp.posepile')
    kept = np.arange(0, 30, 5)[select_frames(world[::5], 100)]
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
    test_example = dataset.examples[2][0]
    assert test_example.univ_coords.shape == (28, 3)
    assert np.isnan(test_example.world_coords[0]).all()  # spi3 is not among the 17 test joints


def test_detections_follow_the_union_rule(data_root):
    from posepile.preproc.video_stage import BoxRule, choose_boxes
    from posepile.util import boxes
    root = data_root / 'tdhp'
    fake.write_train_sequence(root, n_frames=12)
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
