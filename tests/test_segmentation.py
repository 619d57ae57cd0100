import numpy as np
import pytest

from posepile.datasets3d import Pose3DExample
from posepile.preproc import segmentation
from posepile.preproc.cropping import make_efficient_example
from posepile.util import boxes, masks


def test_grabcut_on_demo_crops_matches_true_masks(data_root):
    """Crops of rendered people (textured background, shading, sensor noise): the skeleton-seeded GrabCut
    masks reach a mean IoU >= 0.70 against the renderer's true visible masks."""
    from posepile.ds.demo import main as demo, scene
    cameras = demo.make_cameras(0)
    ious = []
    for frame in (0, 60):
        poses = np.stack([scene.person_poses(p, frame + 1, 25)[frame] for p in range(2)])
        for name in ('cam0', 'cam2'):
            camera = cameras[name]
            rays = scene.camera_rays(camera, demo.IMAGE_SHAPE)
            background, floor = scene.render_background(camera, rays)
            image, person_id = scene.render_people(camera, rays, list(poses), background, floor)
            frame_rgb = scene.to_uint8(image, np.random.default_rng(frame))
            for p in range(2):
                bbox = boxes.expand(boxes.bb_of_points(camera.world_to_image(poses[p])), 1.1)
                example = Pose3DExample(frame_rgb, poses[p], bbox, camera, mask=masks.encode(person_id == p))
                crop = make_efficient_example(example, f'c/{frame}_{name}_{p}.jpg', data_root=data_root)
                predicted = segmentation.segment_examples(
                    [crop], 'grabcut', scene.joint_info().stick_figure_edges, data_root=data_root,
                    other_people_world=[[poses[1 - p]]])[0]
                ious.append(masks.iou(predicted, crop.mask))
    assert np.mean(ious) >= 0.70, ious
    assert min(ious) >= 0.4, ious


def test_grabcut_without_skeleton_uses_the_box():
    image = np.full((200, 160, 3), 30, np.uint8)
    image += np.random.default_rng(0).integers(0, 20, image.shape, dtype=np.uint8)
    truth = np.zeros((200, 160), bool)
    truth[40:170, 55:105] = True
    image[truth] = (200, 60, 50)
    result = segmentation.make_segmenter('grabcut').segment(image, [[45, 30, 70, 150]])[0]
    assert masks.iou(result, masks.encode(truth)) > 0.8


def _brightness_model(path):
    pytest.importorskip('onnx')
    import onnx
    from onnx import TensorProto, helper
    side = segmentation.SEMANTIC_INPUT_SIDE
    x = helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, side, side, 3])
    y = helper.make_tensor_value_info('prob', TensorProto.FLOAT, [1, side, side])
    scale = helper.make_tensor('scale', TensorProto.FLOAT, [], [1 / 255])
    nodes = [helper.make_node('ReduceMean', ['image'], ['m'], axes=[3], keepdims=0),
             helper.make_node('Mul', ['m', 'scale'], ['prob'])]
    graph = helper.make_graph(nodes, 'bright', [x], [y], initializer=[scale])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_onnx_semantic_backend_letterboxes_thresholds_and_keeps_the_boxed_component(tmp_path):
    """A stand-in 'network' whose person probability is the pixel brightness: exercises the real
    letterboxing, resizing back, 0.2 threshold and component selection."""
    _brightness_model(tmp_path / 'seg.onnx')
    image = np.zeros((300, 420, 3), np.uint8)
    person = np.zeros((300, 420), bool)
    person[50:250, 100:160] = True
    other = np.zeros((300, 420), bool)
    other[80:200, 300:380] = True
    image[person | other] = 255
    segmenter = segmentation.OnnxSegmenter(tmp_path / 'seg.onnx', person_class=0)
    rle_person, rle_other = segmenter.segment(image, [[95, 45, 70, 210], [290, 70, 100, 140]])
    assert masks.iou(rle_person, masks.encode(person)) > 0.95
    assert masks.iou(rle_other, masks.encode(other)) > 0.95


def test_unknown_segmenter_and_tf_hint():
    with pytest.raises(ValueError, match='unknown segmenter'):
        segmentation.make_segmenter('sam')
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r'posepile\[tf\]'):
            segmentation.make_segmenter('tf:/x')
