import importlib.util
import json
import os
import pickle
import struct

import cv2
import numpy as np
import pytest

from posepile.preproc import detection
from posepile.preproc.association import associate_boxes, best_iou_box, box_union_rule_3dhp, choose_box
from posepile.preproc.detection import make_detector, nms, yolo_decode
from posepile.util import boxes, improc
from tests.conftest import realdata_file


def _sigmoid(x):
    return 1 / (1 + np.exp(-np.asarray(x, np.float64)))


# ------------------------------------------------------------------------------------------------ NMS
def test_nms_keeps_highest_and_suppresses_overlaps_above_threshold():
    dets = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [20, 20, 10, 10], [0, 5, 10, 10]], np.float64)
    scores = np.array([0.9, 0.95, 0.5, 0.8])
    # IoU(0,1) = 90/110 = 0.818; IoU(1,3) = 45/155 = 0.290; IoU(0,3) = 50/150 = 0.333
    assert nms(dets, scores, 0.5).tolist() == [1, 3, 2]
    # box 0 would suppress box 3 at 0.3, but box 0 is itself suppressed by box 1 first
    assert nms(dets, scores, 0.3).tolist() == [1, 3, 2]
    assert nms(dets, scores, 0.25).tolist() == [1, 2]
    assert nms(dets, scores, 0.9).tolist() == [1, 0, 3, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_nms_agrees_with_opencv_on_random_boxes():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 80))
        dets = np.concatenate([rng.uniform(0, 100, (n, 2)), rng.uniform(5, 50, (n, 2))], axis=1)
        scores = rng.uniform(0, 1, n)
        threshold = float(rng.uniform(0.1, 0.9))
        expected = cv2.dnn.NMSBoxes(dets.tolist(), scores.tolist(), 0.0, threshold)
        assert nms(dets, scores, threshold).tolist() == np.asarray(expected).reshape(-1).tolist()


# ---------------------------------------------------------------------------------------------- YOLO decoding
def test_yolo_decode_scores_and_scales_person_rows():
    rows = np.array([
        # cx,  cy,   w,   h,  obj, person, car
        [0.5, 0.5, 0.2, 0.4, 0.9, 0.5, 0.1],  # score 0.45
        [0.1, 0.2, 0.1, 0.1, 0.9, 0.1, 0.9],  # score 0.09 -> dropped (a car)
        [0.25, 0.75, 0.5, 0.5, 0.5, 1.0, 0.0],  # score 0.5
    ])
    out = yolo_decode(rows, 0.2, person_class=0, scale_x=640, scale_y=480)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[256, 144, 128, 192, 0.45], [0, 240, 320, 240, 0.5]], atol=1e-4)
    # OpenCV's darknet layers already multiply the class scores by the objectness
    out = yolo_decode(rows, 0.2, scale_x=640, scale_y=480, class_scores_include_objectness=True)
    np.testing.assert_allclose(out[:, 4], [0.5, 1.0])
    # offsets (letterbox padding) shift positions but not sizes; class 1 selects the car
    out = yolo_decode(rows, 0.5, person_class=1, scale_x=100, scale_y=100, offset_x=-10, offset_y=5)
    np.testing.assert_allclose(out, [[-10 + 10 - 5, 5 + 20 - 5, 10, 10, 0.81]], atol=1e-5)
    with pytest.raises(ValueError, match='columns'):
        yolo_decode(np.zeros((3, 5)), 0.2)


# ------------------------------------------------------------------------------------------------ darknet
_NET_HEADER = """[net]
width=32
height=32
channels=3
{extra}
[convolutional]
batch_normalize=1
filters=4
size=3
stride=2
pad=1
activation=leaky
"""


def _write_darknet(tmp_path, cfg_text, weights, name='tiny'):
    """cfg text and a weights file: header int32 major, minor, revision + int64 images seen, then the
    float32 weights in layer order."""
    (tmp_path / f'{name}.cfg').write_text(cfg_text)
    with open(tmp_path / f'{name}.weights', 'wb') as f:
        f.write(struct.pack('<iiiq', 0, 2, 5, 0))
        f.write(np.concatenate(weights).astype('<f4').tobytes())
    return tmp_path / f'{name}.cfg', tmp_path / f'{name}.weights'


def _bn_conv_layer_weights(rng):
    # layer with batch norm, 4 filters 3x3 over 3 channels: biases, scales, means, variances, kernels
    return [rng.normal(0, 0.1, 4), np.ones(4), np.zeros(4), np.ones(4), rng.normal(0, 0.3, 4 * 3 * 3 * 3)]


def _write_random_darknet(tmp_path, seed=0, objectness_logit=3.0):
    """conv -> conv -> yolo head with 3 anchors and 2 classes, random weights."""
    cfg = _NET_HEADER.format(extra='') + """
[convolutional]
size=1
stride=1
pad=1
filters=21
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=2
num=3
"""
    rng = np.random.default_rng(seed)
    bias2 = rng.normal(0, 0.5, 21)
    bias2[4::7] = objectness_logit
    bias2[5::7] = 3.0  # person logits high
    return _write_darknet(tmp_path, cfg, _bn_conv_layer_weights(rng) + [bias2, rng.normal(0, 0.1, 21 * 4)])


# head biases of the constant-output net: tx, ty, tw, th, objectness, person, other class
_HEAD_BIAS = np.array([0.3, -0.5, 0.2, -0.1, 1.0, 0.5, -2.0])


def _write_constant_head_darknet(tmp_path, letter_box=False):
    """conv (stride 2) -> maxpool -> 1x1 conv with zero weights -> yolo (1 anchor 4x6 px, 2 classes) on a
    32 px input: an 8x8 grid whose raw outputs equal the head biases, so every box is known in closed form."""
    cfg = _NET_HEADER.format(extra='letter_box=1\n' if letter_box else '') + """
[maxpool]
size=2
stride=2

[convolutional]
size=1
stride=1
pad=1
filters=7
activation=linear

[yolo]
mask=0
anchors=4,6
classes=2
num=1
"""
    rng = np.random.default_rng(0)
    name = 'letterbox' if letter_box else 'stretch'
    return _write_darknet(tmp_path, cfg, _bn_conv_layer_weights(rng) + [_HEAD_BIAS, np.zeros(7 * 4)], name)


def _constant_head_expected_boxes(to_image_x, to_image_y, size_scale_x, size_scale_y, imshape):
    """Closed-form boxes of the constant-head net, mapped to the image and clipped (x1, y1, x2, y2)."""
    grid = 8
    rows, cols = np.mgrid[:grid, :grid]
    cx = (cols.ravel() + _sigmoid(_HEAD_BIAS[0])) / grid
    cy = (rows.ravel() + _sigmoid(_HEAD_BIAS[1])) / grid
    w = 4 * np.exp(_HEAD_BIAS[2]) / 32 * size_scale_x
    h = 6 * np.exp(_HEAD_BIAS[3]) / 32 * size_scale_y
    x1 = np.clip(to_image_x(cx) - w / 2, 0, imshape[1])
    x2 = np.clip(to_image_x(cx) + w / 2, 0, imshape[1])
    y1 = np.clip(to_image_y(cy) - h / 2, 0, imshape[0])
    y2 = np.clip(to_image_y(cy) + h / 2, 0, imshape[0])
    keep = (x2 - x1 > 1) & (y2 - y1 > 1)
    return np.stack([x1, y1, x2, y2], 1)[keep]


def _sorted_corners(dets):
    corners = np.stack([dets[:, 0], dets[:, 1], dets[:, 0] + dets[:, 2], dets[:, 1] + dets[:, 3]], 1)
    return corners[np.lexsort((corners[:, 0], corners[:, 1]))]


def test_darknet_boxes_match_closed_form_in_image_pixels(tmp_path):
    cfg, weights = _write_constant_head_darknet(tmp_path)
    detector = detection.DarknetYoloDetector(cfg, weights, input_side=32)
    assert not detector.letterbox
    imshape = (120, 200, 3)  # non-square: x and y scale differently under the plain resize
    dets = detector.detect(np.full(imshape, 90, np.uint8))
    expected = _constant_head_expected_boxes(lambda u: u * 200, lambda v: v * 120, 200, 120, imshape)
    assert len(expected) == 64  # no box fully outside, none suppressed (neighbours overlap little)
    assert dets.shape == (64, 5) and dets.dtype == np.float32
    np.testing.assert_allclose(_sorted_corners(dets), _sorted_corners_from(expected), atol=1e-3)
    # score = objectness x person probability, counted once
    np.testing.assert_allclose(dets[:, 4], _sigmoid(1.0) * _sigmoid(0.5), rtol=1e-5)


def _sorted_corners_from(corners):
    return corners[np.lexsort((corners[:, 0], corners[:, 1]))]


def test_darknet_letterbox_from_cfg_maps_boxes_back(tmp_path):
    cfg, weights = _write_constant_head_darknet(tmp_path, letter_box=True)
    detector = detection.DarknetYoloDetector(cfg, weights, input_side=32)
    assert detector.letterbox
    imshape = (120, 200, 3)
    dets = detector.detect(np.full(imshape, 90, np.uint8))
    # fit 200x120 into 32x32: scale 0.16 -> 32x19 px, centred: 6 px padding on top
    scale, pad_y = 0.16, 6
    expected = _constant_head_expected_boxes(
        lambda u: u * 32 / scale, lambda v: (v * 32 - pad_y) / scale, 32 / scale, 32 / scale, imshape)
    assert 0 < len(expected) < 64  # rows of cells on the padding fall outside the image
    np.testing.assert_allclose(_sorted_corners(dets), _sorted_corners_from(expected), atol=1e-3)


def test_darknet_random_weights_give_person_boxes_inside_the_image(tmp_path):
    cfg, weights = _write_random_darknet(tmp_path)
    # a 32 px input keeps the number of raw rows small (16 x 16 cells x 3 anchors)
    detector = detection.DarknetYoloDetector(cfg, weights, input_side=32)
    image = np.random.default_rng(1).integers(0, 255, (120, 200, 3), dtype=np.uint8)
    dets = detector.detect(image)
    assert dets.dtype == np.float32 and dets.ndim == 2 and dets.shape[1] == 5
    assert len(dets) > 0  # objectness and person logits were set high
    assert np.all(dets[:, 4] >= 0.2) and np.all(dets[:, 4] <= 1)
    assert np.all(np.diff(dets[:, 4]) <= 0)  # best first
    assert np.all(dets[:, 0] >= 0) and np.all(dets[:, 0] + dets[:, 2] <= 200 + 1e-3)
    assert np.all(dets[:, 1] >= 0) and np.all(dets[:, 1] + dets[:, 3] <= 120 + 1e-3)
    # no two kept boxes overlap more than the NMS threshold
    ious = boxes.iou_matrix(dets[:, :4], dets[:, :4])
    np.fill_diagonal(ious, 0)
    assert ious.max(initial=0) <= detection.YOLO_NMS_IOU + 1e-6
    batch = detector.detect_batch([image, image[:60]])
    np.testing.assert_array_equal(batch[0], dets)
    assert batch[1].shape[1] == 5


def test_darknet_spec_uses_the_original_input_size_and_threshold(tmp_path):
    cfg, weights = _write_random_darknet(tmp_path, objectness_logit=-4.0)  # scores ~0.02: all below 0.2
    detector = make_detector(f'darknet:{cfg},{weights}')
    assert detector.input_side == 416
    assert detector.detect(np.zeros((100, 100, 3), np.uint8)).shape == (0, 5)


def test_darknet_bad_specs_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.cfg'):
        make_detector(f'darknet:{tmp_path}/nope.cfg,{tmp_path}/nope.weights')
    with pytest.raises(ValueError, match='CFG,WEIGHTS'):
        make_detector('darknet:only.cfg')
    cfg, _ = _write_random_darknet(tmp_path)
    (tmp_path / 'short.weights').write_bytes(struct.pack('<iiiq', 0, 2, 5, 0) + b'\0' * 40)
    with pytest.raises(ValueError, match='short.weights'):
        make_detector(f'darknet:{cfg},{tmp_path / "short.weights"}')


_ROUTE_CFG = _NET_HEADER.replace('filters=4', 'filters=8').format(extra='') + """
[convolutional]
batch_normalize=1
filters=4
size=1

[convolutional]
batch_normalize=1
filters=8
size=3
pad=1

[shortcut]
from=-3

[route]
layers=-1,0

[route]
layers=-1
groups=2
group_id=1

[maxpool]
size=2
stride=2

[upsample]
stride=2

[convolutional]
size=1
filters=7

[yolo]
mask=0
anchors=4,6
classes=2
num=1
"""


def test_darknet_weight_count_follows_routes_shortcuts_and_groups(tmp_path):
    # conv 3->8 3x3 bn: 4*8 + 8*3*9 = 248; conv 8->4 1x1 bn: 16 + 32 = 48; conv 4->8 3x3 bn: 32 + 288 = 320;
    # route (8 + 8 channels) split in 2 groups -> 8; head conv 8->7 1x1: 7 + 56 = 63. Total 679.
    (tmp_path / 'route.cfg').write_text(_ROUTE_CFG)
    assert detection._darknet_weight_count(tmp_path / 'route.cfg') == 679
    rng = np.random.default_rng(0)
    cfg, weights = _write_darknet(tmp_path, _ROUTE_CFG, [rng.normal(0, 0.1, 679)], name='route')
    detector = make_detector(f'darknet:{cfg},{weights}')
    assert detector.detect(np.zeros((50, 60, 3), np.uint8)).shape[1] == 5
    _write_darknet(tmp_path, _ROUTE_CFG, [rng.normal(0, 0.1, 680)], name='route')
    with pytest.raises(ValueError, match='holds 680 weights but .*route.cfg needs 679'):
        make_detector(f'darknet:{cfg},{weights}')


def test_detectors_reject_non_rgb_uint8(tmp_path):
    cfg, weights = _write_random_darknet(tmp_path)
    with pytest.raises(ValueError, match='uint8 RGB'):
        make_detector(f'darknet:{cfg},{weights}').detect(np.zeros((50, 50), np.uint8))
    with pytest.raises(ValueError, match='uint8 RGB'):
        make_detector('hog').detect(np.zeros((50, 50, 3), np.float32))


# ------------------------------------------------------------------------------------------------ ONNX
def _save_onnx(path, nodes, inputs, outputs, initializers):
    onnx = pytest.importorskip('onnx')
    from onnx import helper
    graph = helper.make_graph(nodes, 'detector', inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _onnx_model_with_fixed_output(path, output_rows, input_hw=(64, 96)):
    """dets = rows + 0 * mean(images): output independent of the pixels (the graph still consumes them)."""
    pytest.importorskip('onnx')
    from onnx import TensorProto, helper
    rows = np.asarray(output_rows, np.float32)[np.newaxis]
    image = helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, *input_hw])
    out = helper.make_tensor_value_info('dets', TensorProto.FLOAT, list(rows.shape))
    nodes = [helper.make_node('ReduceMean', ['images'], ['m'], keepdims=0),
             helper.make_node('Mul', ['m', 'zero'], ['z']),
             helper.make_node('Add', ['rows', 'z'], ['dets'])]
    initializers = [helper.make_tensor('rows', TensorProto.FLOAT, rows.shape, rows.ravel().tolist()),
                    helper.make_tensor('zero', TensorProto.FLOAT, [], [0.0])]
    _save_onnx(path, nodes, [image], [out], initializers)


def test_onnx_backend_scales_letterboxed_boxes_back(tmp_path):
    # image 240x360 letterboxed into 64x96: scale 64/240 -> exactly 64x96
    rows = [[8, 16, 32, 48, 0.9, 0], [0, 0, 10, 10, 0.95, 2], [8, 16, 32, 48, 0.1, 0]]
    _onnx_model_with_fixed_output(tmp_path / 'det.onnx', rows)
    detector = make_detector(f'onnx:{tmp_path / "det.onnx"}')
    assert detector.input_hw == (64, 96)
    dets = detector.detect(np.zeros((240, 360, 3), np.uint8))
    np.testing.assert_allclose(dets, [[30, 60, 90, 120, 0.9]], rtol=1e-5)


def test_onnx_backend_with_dynamic_input_size_uses_640(tmp_path):
    rows = [[64, 32, 320, 640, 0.5, 0]]
    _onnx_model_with_fixed_output(tmp_path / 'dyn.onnx', rows, input_hw=('height', 'width'))
    detector = make_detector(f'onnx:{tmp_path / "dyn.onnx"}')
    assert detector.input_hw == (640, 640)
    # 960x480 (h x w) fits 640 px by scale 2/3: boxes come back x1.5, clipped to the image height
    dets = detector.detect(np.zeros((960, 480, 3), np.uint8))
    np.testing.assert_allclose(dets, [[96, 48, 384, 912, 0.5]], rtol=1e-5)


def test_onnx_backend_decodes_raw_yolo_rows(tmp_path):
    rows = [[48, 32, 20, 40, 0.8, 0.9, 0.1], [10, 10, 4, 4, 0.9, 0.05, 0.9]]
    _onnx_model_with_fixed_output(tmp_path / 'raw.onnx', rows)
    dets = make_detector(f'onnx:{tmp_path / "raw.onnx"}').detect(np.zeros((128, 192, 3), np.uint8))
    # scale 0.5: centre (96, 64), size (40, 80); score 0.8 x 0.9
    np.testing.assert_allclose(dets, [[76, 24, 40, 80, 0.72]], rtol=1e-5)


def test_onnx_backend_feeds_rgb_in_0_1_padded_right_with_grey(tmp_path):
    """A model whose score is the mean of its input's first channel: checks the RGB order, the /255
    scaling and where/with what the letterbox pads."""
    pytest.importorskip('onnx')
    from onnx import TensorProto, helper
    image_info = helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, 64, 96])
    out = helper.make_tensor_value_info('dets', TensorProto.FLOAT, [1, 1, 6])
    nodes = [helper.make_node('Gather', ['images', 'channel0'], ['red'], axis=1),  # (1, 64, 96)
             helper.make_node('ReduceMean', ['red'], ['score'], axes=[1, 2], keepdims=1),  # (1, 1, 1)
             helper.make_node('Concat', ['box', 'score', 'cls'], ['dets'], axis=2)]
    initializers = [helper.make_tensor('channel0', TensorProto.INT64, [], [0]),
                    helper.make_tensor('box', TensorProto.FLOAT, [1, 1, 4], [8, 16, 40, 56]),
                    helper.make_tensor('cls', TensorProto.FLOAT, [1, 1, 1], [0])]
    _save_onnx(tmp_path / 'red.onnx', nodes, [image_info], [out], initializers)
    detector = make_detector(f'onnx:{tmp_path / "red.onnx"}')
    red = np.zeros((240, 240, 3), np.uint8)
    red[..., 0] = 255
    dets = detector.detect(red)
    # 240x240 -> 64x64 at scale 4/15, then 32 columns of grey 114 on the right
    expected_score = (64 * 1.0 + 32 * 114 / 255) / 96
    np.testing.assert_allclose(dets, [[30, 60, 120, 150, expected_score]], rtol=1e-5)
    # a blue image: the first channel sees only the padding (score 0.149 < 0.2)
    assert len(detector.detect(red[..., ::-1].copy())) == 0


def test_onnx_missing_or_bad_model(tmp_path):
    pytest.importorskip('onnxruntime')
    with pytest.raises(FileNotFoundError, match='nothere.onnx'):
        make_detector(f'onnx:{tmp_path / "nothere.onnx"}')
    (tmp_path / 'garbage.onnx').write_bytes(b'not a model')
    with pytest.raises(ValueError, match='garbage.onnx'):
        make_detector(f'onnx:{tmp_path / "garbage.onnx"}')


# ------------------------------------------------------------------------------------------------ HOG
def test_hog_finds_people_in_demo_render():
    """HOG on one frame of the demo scene: both people are found with IoU >= 0.4 against their joint boxes."""
    from posepile.ds.demo import main as demo, scene
    camera = demo.make_cameras(0)['cam0']
    poses = np.stack([scene.person_poses(p, 1, 25)[0] for p in range(2)])
    rays = scene.camera_rays(camera, demo.IMAGE_SHAPE)
    background, floor = scene.render_background(camera, rays)
    image, _ = scene.render_people(camera, rays, list(poses), background, floor)
    frame = scene.to_uint8(image, np.random.default_rng(0))
    dets = make_detector('hog').detect(frame)
    gt = np.array([boxes.expand(boxes.bb_of_points(camera.world_to_image(p)), 1.1) for p in poses])
    matches = associate_boxes(gt, dets, min_iou=0.3)
    assert np.all(matches >= 0)
    ious = [boxes.iou(gt[i], dets[matches[i], :4]) for i in range(2)]
    assert min(ious) >= 0.4, ious


def test_hog_on_real_coco_photos_matches_annotated_people(realdata):
    """COCO val2017 samples (many sitting/occluded people, hard for HOG): at least 3 of the annotated
    12 people >= 90 px tall get a detection with IoU >= 0.5 (3 with OpenCV 4.14), and no image gives more
    than 8 boxes."""
    annotations = json.loads(realdata_file(realdata, 'coco/test_coco.json').read_text())
    detector = make_detector('hog')
    n_people = n_matched = 0
    for image_info in annotations['images']:
        image = improc.imread_rgb(realdata_file(realdata, f'coco/{image_info["file_name"]}'))
        gt = np.array([a['bbox'] for a in annotations['annotations']
                       if a['image_id'] == image_info['id'] and not a['iscrowd'] and a['bbox'][3] >= 90])
        dets = detector.detect(image)
        assert dets.dtype == np.float32 and dets.shape[1] == 5 and len(dets) <= 8
        assert np.all(dets[:, 0] >= 0) and np.all(dets[:, 0] + dets[:, 2] <= image.shape[1] + 1e-3)
        n_people += len(gt)
        n_matched += int(np.sum(associate_boxes(gt, dets, min_iou=0.5) >= 0))
    assert n_people == 12
    assert n_matched >= 3, n_matched


def test_hog_resizing_and_tiny_images():
    detector = detection.HogDetector()
    assert detector.resize_factor((1000, 1000)) == pytest.approx(1.2)  # 80 px people -> 96 px
    assert detector.resize_factor((100, 80)) == pytest.approx(2.56)  # small image up to 256 px tall
    assert detector.resize_factor((20, 20)) == pytest.approx(4.0)  # capped
    assert detector.resize_factor((2048, 2048)) == pytest.approx(1280 / 2048)  # large: bounded cost
    dets = detector.detect(np.zeros((20, 20, 3), np.uint8))  # 80x80 after upscaling: below the window
    assert dets.shape == (0, 5) and dets.dtype == np.float32
    flat = detector.detect(np.full((300, 200, 3), 128, np.uint8))  # no gradients, no people
    assert flat.shape == (0, 5)


# ------------------------------------------------------------------------------------------------ gt, specs
def test_gt_detector_expands_joint_boxes():
    det = make_detector('gt:1.2')
    joints = [np.array([[10, 10], [30, 50], [np.nan, 99]], np.float32), np.full((2, 2), np.nan, np.float32),
              np.array([[100, 100], [110, 120]], np.float32)]
    out = det.detect_from_joints(joints)
    # box (10, 10, 20, 40) scaled 1.2 about (20, 30); the all-NaN person gives no box
    np.testing.assert_allclose(out, [[8, 6, 24, 48, 1], [99, 98, 12, 24, 1]], rtol=1e-6)
    assert make_detector('gt').expansion == 1.15
    with pytest.raises(TypeError, match='detect_from_joints'):
        det.detect(np.zeros((10, 10, 3), np.uint8))


def test_unknown_and_malformed_detector_specs():
    with pytest.raises(ValueError, match='unknown detector'):
        make_detector('yolo9000')
    with pytest.raises(ValueError, match='onnx:PATH'):
        make_detector('onnx:')
    with pytest.raises(ValueError, match='gt:EXPANSION'):
        make_detector('gt:big')


def test_tf_backend_gives_install_hint_without_tensorflow():
    if importlib.util.find_spec('tensorflow') is not None:
        pytest.skip('tensorflow is installed')
    with pytest.raises(ImportError, match=r'posepile\[tf\]'):
        make_detector('tf:/nonexistent')


# ------------------------------------------------------------------------------------------------ association
def _greedy_association(ious, min_iou):
    """Reference greedy matcher: repeatedly take the globally best remaining pair."""
    ious = np.array(ious, np.float64)
    result = np.full(ious.shape[0], -1)
    while ious.size and ious.max() >= min_iou:
        g, d = np.unravel_index(np.argmax(ious), ious.shape)
        result[g] = d
        ious[g, :] = -1
        ious[:, d] = -1
    return result


def test_association_is_optimal_where_greedy_is_wrong():
    # 10x10 boxes along x; IoU of two such boxes offset by s is (10 - s) / (10 + s)
    gt = np.array([[0, 0, 10, 10], [3, 0, 10, 10]], np.float64)
    dets = np.array([[1, 0, 10, 10, 0.9], [-2, 0, 10, 10, 0.8]], np.float64)
    ious = boxes.iou_matrix(gt, dets[:, :4])
    np.testing.assert_allclose(ious, [[9 / 11, 8 / 12], [8 / 12, 5 / 15]])
    # greedy grabs the best pair (gt0-det0, 0.82) and leaves gt1 with det1 (0.33, below 0.4): one match
    assert _greedy_association(ious, 0.4).tolist() == [0, -1]
    # Hungarian matches both (0.67 + 0.67 = 1.33 total IoU)
    assert associate_boxes(gt, dets, min_iou=0.4).tolist() == [1, 0]
    # with a low threshold greedy matches both too, but with a lower total (0.82 + 0.33 = 1.15)
    assert _greedy_association(ious, 0.1).tolist() == [0, 1]
    assert associate_boxes(gt, dets, min_iou=0.1).tolist() == [1, 0]


def test_association_maximises_iou_not_the_number_of_matches():
    # gt0-det0 IoU 0.905; gt0-det1 and gt1-det0 0.149; gt1-det1 0 (not allowed at min_iou 0.1).
    # Matching both people would pair each with a poor detection (total 0.30); the IoU-optimal
    # assignment (as the original's Hungarian on -IoU) gives det0 to gt0 and leaves gt1 unmatched.
    gt = np.array([[0, 0, 10, 10], [7.9, 0, 10, 10]], np.float64)
    dets = np.array([[0.5, 0, 10, 10, 0.9], [-7.4, 0, 10, 10, 0.9]], np.float64)
    ious = boxes.iou_matrix(gt, dets[:, :4])
    np.testing.assert_allclose(ious, [[9.5 / 10.5, 2.6 / 17.4], [2.6 / 17.4, 0]], atol=1e-9)
    assert associate_boxes(gt, dets, min_iou=0.1).tolist() == [0, -1]


def test_association_filters_low_iou_oversized_and_unconfident():
    gt = np.array([[0, 0, 10, 10]], np.float64)
    assert associate_boxes(gt, np.array([[50, 50, 10, 10, 1.0]]), min_iou=0.1).tolist() == [-1]
    big = np.array([[-5, -5, 20, 20, 1.0]])  # IoU 0.25, area ratio 4
    assert associate_boxes(gt, big, min_iou=0.1).tolist() == [0]
    assert associate_boxes(gt, big, min_iou=0.3).tolist() == [-1]
    assert associate_boxes(gt, big, min_iou=0.1, max_area_ratio=2).tolist() == [-1]
    weak = np.array([[0, 0, 10, 10, 0.1]])
    assert associate_boxes(gt, weak, min_score=0.1).tolist() == [-1]
    assert associate_boxes(gt, weak, min_score=0.05).tolist() == [0]
    assert associate_boxes(gt, np.zeros((0, 5))).tolist() == [-1]
    assert associate_boxes(np.zeros((0, 4)), weak).tolist() == []
    # more GT people than detections: each detection used once
    many = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [40, 0, 10, 10]], np.float64)
    assert associate_boxes(many, np.array([[0.5, 0, 10, 10, 1.0]])).tolist() in ([0, -1, -1], [-1, 0, -1])


def test_3dhp_union_rule_best_iou_box_and_choose_box():
    joint_box = np.array([0, 0, 100, 200.0])
    dets = np.array([[5, -10, 100, 190, 0.9], [500, 500, 50, 50, 0.95]])
    # the most confident is far away: its hull with the joint box has IoU < 0.5 -> the joint box
    np.testing.assert_allclose(box_union_rule_3dhp(joint_box, dets), joint_box)
    assert box_union_rule_3dhp(joint_box, dets, fallback=None) is None
    np.testing.assert_allclose(box_union_rule_3dhp(joint_box, dets[:1]), [0, -10, 105, 210])
    np.testing.assert_allclose(box_union_rule_3dhp(joint_box, np.zeros((0, 5))), joint_box)
    np.testing.assert_allclose(best_iou_box(joint_box, dets), dets[0, :4])
    np.testing.assert_allclose(best_iou_box(joint_box, dets[1:]), joint_box)
    np.testing.assert_allclose(best_iou_box(joint_box, dets, use_hull=True), [0, -10, 105, 210])

    np.testing.assert_allclose(choose_box(joint_box, dets), dets[0, :4])
    np.testing.assert_allclose(choose_box(joint_box, dets, 'best_iou_hull', imshape=(150, 80)),
                               [0, 0, 80, 150])
    np.testing.assert_allclose(choose_box(joint_box, dets[:1], '3dhp'), [0, -10, 105, 210])
    np.testing.assert_allclose(choose_box(joint_box, dets, 'gt'), joint_box)
    assert choose_box(joint_box, dets[1:], fallback_to_gt=False) is None
    np.testing.assert_allclose(choose_box(joint_box, dets[1:]), joint_box)
    assert choose_box(joint_box, dets).dtype == np.float32
    with pytest.raises(ValueError, match='unknown box rule'):
        choose_box(joint_box, dets, 'median')


# ------------------------------------------------------------------------------------------------ stage
def _write_images(root, count=6):
    rng = np.random.default_rng(0)
    relpaths = []
    for i in range(count):
        relpath = f'imgs/{i}.jpg'
        image = rng.integers(0, 255, (160 if i % 2 else 64, 96, 3), dtype=np.uint8)
        improc.write_jpeg_atomic(root / relpath, image)
        relpaths.append(relpath)
    return relpaths


def test_detection_stage_shards_resume_and_merge(tmp_path):
    relpaths = _write_images(tmp_path)
    out = tmp_path / 'dets.pkl'
    shard_files = [detection.run_detection_stage(tmp_path, relpaths, out, 'hog', shard=f'{i}/3')
                   for i in range(3)]
    assert [p.name for p in shard_files] == [f'dets.shard-{i:04d}-of-0003.pkl' for i in range(3)]
    assert not out.exists()
    with pytest.raises(FileNotFoundError, match='other.shard-0000-of-0003'):
        detection.merge_detection_shards(tmp_path / 'other.pkl', 3)
    detection.merge_detection_shards(out, 3)
    with open(out, 'rb') as f:
        merged = pickle.load(f)
    assert sorted(merged) == sorted(relpaths)
    assert all(v.dtype == np.float32 and v.ndim == 2 and v.shape[1] == 5 for v in merged.values())
    # every image in exactly one shard
    shard_keys = [set(pickle.loads(p.read_bytes())) for p in shard_files]
    assert sum(len(k) for k in shard_keys) == len(relpaths) and set.union(*shard_keys) == set(relpaths)
    # a finished shard is not recomputed
    mtime = os.stat(shard_files[0]).st_mtime_ns
    assert detection.run_detection_stage(tmp_path, relpaths, out, 'hog', shard='0/3') in (shard_files[0], out)
    assert os.stat(shard_files[0]).st_mtime_ns == mtime


def test_detection_stage_resumes_from_checkpoint_and_names_bad_images(tmp_path):
    relpaths = _write_images(tmp_path, count=4)
    out = tmp_path / 'single.pkl'
    # a previous run was killed after two images: their (marker) results are kept, not recomputed
    marker = np.array([[1, 2, 3, 4, 0.5]], np.float32)
    with open(tmp_path / 'single.pkl.partial', 'wb') as f:
        pickle.dump({relpaths[0]: marker, relpaths[1]: marker}, f)
    assert detection.run_detection_stage(tmp_path, relpaths, out, 'hog') == out
    result = pickle.loads(out.read_bytes())
    assert sorted(result) == sorted(relpaths)
    np.testing.assert_array_equal(result[relpaths[0]], marker)
    assert result[relpaths[2]].shape[1] == 5
    assert not (tmp_path / 'single.pkl.partial').exists()

    (tmp_path / 'imgs' / 'broken.jpg').write_bytes(b'not a jpeg')
    with pytest.raises(ValueError, match='broken.jpg'):
        detection.run_detection_stage(tmp_path, ['imgs/broken.jpg'], tmp_path / 'b.pkl', 'hog')
    assert not (tmp_path / 'b.pkl').exists()
