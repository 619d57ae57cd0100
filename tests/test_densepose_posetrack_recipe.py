"""densepose_posetrack end to end on its fake release: the people kept per split (counted here by re-stating
the rules), their frames in the PoseTrack 2018 layout, DensePose points moved like the joints (< 0.01 px), the
like-COCO variant, the one-line failure without the release."""
import cv2
import numpy as np

from posepile.datasets3d import TRAIN, VALID, get_dataset
from tests import faults
from tests.fakes import densepose_posetrack as fake

LIMBS = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]  # PoseTrack shoulders .. ankles (COCO order)


def _kept(annotation):
    """Non-crowd, DensePose points, >= 17/3 and >= 17/2 labelled (v > 0), > 6 of the 12 limb joints labelled."""
    k = np.asarray(annotation['keypoints'], float).reshape(17, 3)
    return (not annotation['iscrowd'] and 'dp_masks' in annotation and np.sum(k[:, 2] > 0) >= 17 / 2 and
            np.sum(k[LIMBS, 2] > 0) > 6)


def test_densepose_posetrack_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root)
    result = faults.run_recipe('densepose_posetrack', data_root, env_extra={'POSEPILE_WORKERS': '1'})
    assert result.returncode == 0, result.stderr[-3000:]
    dataset = get_dataset('densepose_posetrack')
    like_coco = get_dataset('densepose_posetrack_like_coco')
    for phase, split in (('train', TRAIN), ('val', VALID)):
        images, annotations = written[phase]
        kept = [a for a in annotations if _kept(a)]
        examples = list(dataset.examples[split])
        assert len(examples) == len(kept)
        for annotation, example, coco_example in zip(kept, examples, like_coco.examples[split]):
            assert example.extra['annotation_id'] == annotation['id']
            k = np.asarray(annotation['keypoints'], float).reshape(17, 3)
            x, y, w, h = np.round(annotation['bbox'])
            w, h = min(x + w, fake.IMAGE_SHAPE[1]) - x, min(y + h, fake.IMAGE_SHAPE[0]) - y  # clipped to the image
            dense_source = np.stack([x + np.array(annotation['dp_x']) / 255 * w,
                                     y + np.array(annotation['dp_y']) / 255 * h], 1)
            valid = k[:, 2] > 0
            homography, _ = cv2.findHomography(k[valid, :2], example.coords[valid].astype(np.float64), 0)
            expected = cv2.perspectiveTransform(dense_source[None], homography)[0]
            np.testing.assert_allclose(example.densepose.imcoords, expected, atol=0.01)
            assert np.all(np.isnan(coco_example.coords[[1, 2]]))  # head, head top: no COCO joint
            np.testing.assert_array_equal(coco_example.coords[3:], example.coords[3:])
    assert [len(dataset.examples[s]) for s in (TRAIN, VALID)] == [3, 1]  # of 6 + 2 annotations
    assert like_coco.joint_info.names[:3] == ['nose', 'leye', 'reye']


def test_densepose_posetrack_reads_the_posetrack_2018_frames(data_root):
    from posepile.ds.densepose_posetrack import main as recipe
    written = fake.write_fake_release(data_root)
    images, _ = written['train']
    paths = [recipe.frame_relpath('x.json', image, 'train') for image in images]
    assert paths == ['posetrack/images/train/000001_bonn_train/000000.jpg',
                     'posetrack/images/train/000001_bonn_train/000004.jpg',
                     'posetrack/images/train/000342_mpii_train/000007.jpg']
    assert all((data_root / p).exists() for p in paths)


def test_densepose_posetrack_without_release_fails_in_one_line(data_root):
    (data_root / 'densepose_posetrack').mkdir()
    result = faults.run_recipe('densepose_posetrack', data_root)
    faults.assert_one_line_failure(result, str(data_root / 'densepose_posetrack'))
