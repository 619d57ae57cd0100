"""densepose_coco end to end on its fake release: the people kept (counted here by re-stating the original's
rules), their DensePose points in the crops (the same plane-to-plane map as the joints, < 0.01 px) and on
SMPL (the synthetic UV charts), the one-line failures."""
import numpy as np

import cv2

from posepile.datasets3d import TRAIN, get_dataset
from tests import faults
from tests.fakes import densepose_coco as fake

LIMBS = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]  # COCO shoulders .. ankles


def _kept(annotation):
    """The original's rules, written out: non-crowd, DensePose points, >= 17/3 visible (v == 2),
    >= 17/2 labelled (v > 0), > 6 of the 12 limb joints labelled."""
    k = np.asarray(annotation['keypoints'], float).reshape(17, 3)
    return (not annotation['iscrowd'] and 'dp_masks' in annotation and np.sum(k[:, 2] == 2) >= 17 / 3 and
            np.sum(k[:, 2] > 0) >= 17 / 2 and np.sum(k[LIMBS, 2] > 0) > 6)


def test_densepose_coco_recipe_on_fake_release(data_root):
    images, annotations = fake.write_fake_release(data_root)
    result = faults.run_recipe('densepose_coco', data_root, env_extra={'POSEPILE_WORKERS': '1'})
    assert result.returncode == 0, result.stderr[-3000:]
    kept = [a for a in annotations if _kept(a)]
    dataset = get_dataset('densepose_coco')
    examples = list(dataset.examples[TRAIN])
    assert len(examples) == len(kept) == 3  # of 8 annotations: no points, few visible, few limbs (x2), crowd dropped
    widths = {image['id']: image['width'] for image in images}
    for annotation, example in zip(kept, examples):
        assert example.extra['coco_id'] == annotation['id']
        k = np.asarray(annotation['keypoints'], float).reshape(17, 3)
        source = k[:, :2][k[:, 2] > 0]
        x, y, w, h = np.round(annotation['bbox'])
        w = min(x + w, widths[annotation['image_id']]) - x  # the box clipped to the image
        dense_source = np.stack([x + np.array(annotation['dp_x']) / 255 * w,
                                 y + np.array(annotation['dp_y']) / 255 * h], 1)
        homography, _ = cv2.findHomography(source, example.coords[k[:, 2] > 0].astype(np.float64), 0)
        expected = cv2.perspectiveTransform(dense_source[None], homography)[0]
        np.testing.assert_allclose(example.densepose.imcoords, expected, atol=0.01)
        # chart 24 of the fake keeps only u + v <= 1: the rest go to a vertex (one-hot); elsewhere inside
        charts = np.array(annotation['dp_I'])
        inside = (charts != fake.PARTIAL_CHART) | (np.array(annotation['dp_U']) + np.array(annotation['dp_V']) <= 1)
        assert np.all(np.min(example.densepose.barycoords[inside], 1) >= -1e-6)
        assert np.all(np.sort(example.densepose.barycoords[~inside], 1) == [0, 0, 1])
    assert any(a['bbox'][0] + a['bbox'][2] > widths[a['image_id']] for a in kept)  # the clipped box is exercised


def test_densepose_coco_missing_uv_data_fails_in_one_line(data_root):
    fake.write_fake_release(data_root)
    uv = data_root / 'densepose_coco' / 'UV_data' / 'UV_Processed.mat'
    uv.unlink()
    result = faults.run_recipe('densepose_coco', data_root, env_extra={'POSEPILE_WORKERS': '1'})
    faults.assert_one_line_failure(result, str(uv))


def test_densepose_coco_bad_annotation_fails_in_one_line(data_root):
    import json
    fake.write_fake_release(data_root)
    path = data_root / 'densepose_coco' / fake.ANNOTATION_FILE
    data = json.loads(path.read_text())
    data['annotations'][0]['dp_I'][3] = 31  # no such chart
    path.write_text(json.dumps(data))
    result = faults.run_recipe('densepose_coco', data_root, env_extra={'POSEPILE_WORKERS': '1'})
    faults.assert_one_line_failure(result, str(path), f'annotation {data["annotations"][0]["id"]}')
