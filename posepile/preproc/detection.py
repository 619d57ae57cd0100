"""Person detection: one interface, several backends, and a sharded, resumable detection stage.

`make_detector(spec)` specs (details in each class's docstring):
- `'hog'`: OpenCV's built-in HOG + linear SVM people detector (ships with OpenCV: works offline, no
  weights). Adequate for upright, fully visible people; the offline default of the recipes.
- `'darknet:CFG,WEIGHTS'`: YOLOv4 (the original PosePile's model family) via cv2.dnn.readNetFromDarknet,
  416x416 input, score = objectness x person-class score >= 0.2, NMS IoU 0.7, person class (0) only.
- `'onnx:MODEL.onnx'`: an ONNX detector run by onnxruntime. Input float32 NCHW RGB in [0, 1], letterboxed
  (right/bottom padding, grey 114) into the model's input size; output (1, N, 6) [x1, y1, x2, y2, score,
  class] or raw YOLO rows (1, N, 5 + C) [cx, cy, w, h, objectness, class scores], in input pixels.
- `'tf:SAVED_MODEL_DIR'`: a TensorFlow SavedModel (TensorFlow imported lazily; `pip install "posepile[tf]"`).
- `'gt'` / `'gt:EXPANSION'`: boxes of the projected ground-truth joints
  (GroundTruthDetector.detect_from_joints).
All backends return float32 (N, 5) arrays [x, y, w, h, score] in pixels of the given image, clipped to
it, best score first.
"""
import argparse
import logging
import struct
from pathlib import Path

import cv2
import numpy as np

from posepile.util import boxes as boxlib
from posepile.util import fileio

logger = logging.getLogger(__name__)

YOLO_INPUT_SIDE = 416
YOLO_SCORE_THRESHOLD = 0.2
YOLO_NMS_IOU = 0.7
COCO_PERSON_CLASS = 0


def nms(boxes_xywh, scores, iou_threshold):
    """Greedy non-maximum suppression. Returns indices of the kept boxes, highest score first."""
    boxes_xywh = np.asarray(boxes_xywh, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    order = np.argsort(-scores, kind='stable')
    x1, y1 = boxes_xywh[:, 0], boxes_xywh[:, 1]
    x2, y2 = x1 + boxes_xywh[:, 2], y1 + boxes_xywh[:, 3]
    areas = boxes_xywh[:, 2] * boxes_xywh[:, 3]
    kept = []
    while order.size:
        i = order[0]
        kept.append(int(i))
        rest = order[1:]
        inter_w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        inter_h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = inter_w * inter_h
        union = areas[i] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(kept, np.int64)


def yolo_decode(rows, score_threshold, person_class=COCO_PERSON_CLASS, scale_x=1.0, scale_y=1.0,
                offset_x=0.0, offset_y=0.0, class_scores_include_objectness=False):
    """Raw YOLO rows [cx, cy, w, h, objectness, class scores...] -> float32 (N, 5) [x, y, w, h, score] boxes
    of the person class, in image pixels.

    Coordinates map as x_image = x_row * scale_x + offset_x (same for y; sizes are only scaled).
    score = objectness x person-class score, or the person-class column alone when
    `class_scores_include_objectness` (OpenCV's darknet [yolo]/[region] layers already multiply them).
    Rows scoring below `score_threshold` are dropped. No NMS here.
    """
    rows = np.asarray(rows, np.float64)
    rows = rows.reshape(-1, rows.shape[-1]) if rows.ndim else rows.reshape(-1, 1)
    if rows.shape[1] < 6 + person_class:
        raise ValueError(
            f'YOLO rows need 5 + classes columns (person class {person_class}), got {rows.shape[1]}')
    scores = rows[:, 5 + person_class]
    if not class_scores_include_objectness:
        scores = rows[:, 4] * scores
    keep = scores >= score_threshold
    rows, scores = rows[keep], scores[keep]
    w = rows[:, 2] * scale_x
    h = rows[:, 3] * scale_y
    x = rows[:, 0] * scale_x + offset_x - w / 2
    y = rows[:, 1] * scale_y + offset_y - h / 2
    return np.stack([x, y, w, h, scores], axis=1).astype(np.float32)


def _finish(dets, nms_iou, imshape=None):
    """Clipping to the image, then NMS (so that kept boxes overlap at most nms_iou as returned)."""
    dets = np.asarray(dets, np.float32).reshape(-1, 5)
    if len(dets) == 0:
        return dets
    if imshape is not None:
        x1 = np.clip(dets[:, 0], 0, imshape[1])
        y1 = np.clip(dets[:, 1], 0, imshape[0])
        x2 = np.clip(dets[:, 0] + dets[:, 2], 0, imshape[1])
        y2 = np.clip(dets[:, 1] + dets[:, 3], 0, imshape[0])
        dets = np.stack([x1, y1, x2 - x1, y2 - y1, dets[:, 4]], 1).astype(np.float32)
        dets = dets[(dets[:, 2] > 1) & (dets[:, 3] > 1)]
    return dets[nms(dets[:, :4], dets[:, 4], nms_iou)]


def _check_image(image_rgb):
    image_rgb = np.asarray(image_rgb)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(
            f'detectors take uint8 RGB images (H, W, 3), got {image_rgb.dtype} {image_rgb.shape}')
    return image_rgb


class Detector:
    """Person detector. `detect` returns float32 (N, 5) [x, y, w, h, score] boxes in pixels of the given
    image (score in [0, 1], best first)."""

    def detect(self, image_rgb):
        raise NotImplementedError

    def detect_batch(self, images):
        return [self.detect(image) for image in images]


class HogDetector(Detector):
    """OpenCV's HOG + linear SVM people detector (Dalal & Triggs, INRIA-trained; ships with OpenCV).

    The 64x128 px detection window holds a person about 96 px tall with margins, so
    - returned boxes are shrunk to the person's usual extent inside the window;
    - images are upscaled so that people `min_person_height_px` tall reach the window's person size, and
      small images are upscaled to at least `min_image_height_px` (otherwise a person filling a small
      image never fits the window); very large images are downscaled to `max_image_side_px` first
      (HOG's cost grows with the pixel count; people stay findable down to about
      min_person_height_px x original/downscaled size).
    Scores are the SVM margins squashed to (0, 1) with a logistic function (margin 0 -> 0.5).
    `score_threshold` is applied as OpenCV's hit threshold (on the margin). Windows are NMS-ed; OpenCV's
    own clustering (`group_threshold` > 0 neighbours) is off by default because on real photos (COCO
    samples) it removed more true people than false positives. A 4 px window stride finds more people
    (better box alignment) at about 3x the cost of the 8 px default.
    """

    WINDOW_PERSON_HEIGHT_PX = 96

    def __init__(self, score_threshold=0.5, nms_iou=0.5, min_person_height_px=80, min_image_height_px=256,
                 max_image_side_px=1280, scale_step=1.03, win_stride_px=8, group_threshold=0,
                 max_upscale=4.0):
        if not 0 < score_threshold < 1:
            raise ValueError(f'HOG score_threshold must be in (0, 1), got {score_threshold}')
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.min_person_height_px = min_person_height_px
        self.min_image_height_px = min_image_height_px
        self.max_image_side_px = max_image_side_px
        self.scale_step = scale_step
        self.win_stride_px = win_stride_px
        self.group_threshold = group_threshold
        self.max_upscale = max_upscale

    def resize_factor(self, imshape):
        """Factor by which the image is resized before running the detector."""
        h, w = imshape[:2]
        factor = max(1.0, self.WINDOW_PERSON_HEIGHT_PX / self.min_person_height_px,
                     self.min_image_height_px / h)
        factor = min(factor, self.max_upscale)
        if self.max_image_side_px and max(h, w) * factor > self.max_image_side_px:
            factor = self.max_image_side_px / max(h, w)
        return factor

    def detect(self, image_rgb):
        image_rgb = _check_image(image_rgb)
        factor = self.resize_factor(image_rgb.shape)
        image = image_rgb
        if factor != 1:
            interp = cv2.INTER_LINEAR if factor > 1 else cv2.INTER_AREA
            image = cv2.resize(image_rgb, None, fx=factor, fy=factor, interpolation=interp)
        if image.shape[0] < 128 or image.shape[1] < 64:  # smaller than the window (OpenCV would fail)
            return np.zeros((0, 5), np.float32)
        rects, margins = self.hog.detectMultiScale(
            image, winStride=(self.win_stride_px, self.win_stride_px), padding=(16, 16),
            scale=self.scale_step, hitThreshold=self._margin_of_score(self.score_threshold),
            groupThreshold=self.group_threshold)
        if len(rects) == 0:
            return np.zeros((0, 5), np.float32)
        rects = np.asarray(rects, np.float64).reshape(-1, 4) / factor
        scores = self._score_of_margin(np.asarray(margins, np.float64).reshape(-1))
        # the person spans about 3/4 of the window's height and 5/8 of its width
        cx, cy = rects[:, 0] + rects[:, 2] / 2, rects[:, 1] + rects[:, 3] / 2
        w, h = rects[:, 2] * 0.625, rects[:, 3] * 0.78
        dets = np.stack([cx - w / 2, cy - h / 2, w, h, scores], 1)
        return _finish(dets[scores >= self.score_threshold], self.nms_iou, image_rgb.shape)

    @staticmethod
    def _score_of_margin(margin):
        return 1 / (1 + np.exp(-2 * margin))

    @staticmethod
    def _margin_of_score(score):
        return 0.5 * np.log(score / (1 - score))


def letterbox(image_rgb, input_hw, pad_value=114, center=False):
    """Scale to fit `input_hw` keeping the aspect ratio and pad (right/bottom, or both sides if `center`).

    Returns (canvas uint8 (H, W, 3), scale, (pad_x, pad_y)): image px = (canvas px - pad) / scale.
    """
    h, w = image_rgb.shape[:2]
    scale = min(input_hw[0] / h, input_hw[1] / w)
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    pad_x, pad_y = ((input_hw[1] - new_w) // 2, (input_hw[0] - new_h) // 2) if center else (0, 0)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = np.full((input_hw[0], input_hw[1], 3), pad_value, np.uint8)
    resized = cv2.resize(image_rgb, (new_w, new_h), interpolation=interp)
    canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = resized
    return canvas, scale, (pad_x, pad_y)


def _read_darknet_sections(cfg_path):
    """[(section name, {key: value})] of a darknet cfg, in order (lowercase names and keys)."""
    sections = []
    for line in Path(cfg_path).read_text(errors='replace').splitlines():
        line = line.split('#')[0].split(';')[0].strip()
        if line.startswith('[') and line.endswith(']'):
            sections.append((line[1:-1].strip().lower(), {}))
        elif '=' in line and sections:
            key, value = line.split('=', 1)
            sections[-1][1][key.strip().lower()] = value.strip()
    return sections


def _darknet_weight_count(cfg_path):
    """Number of float32 weights the cfg's layers read, or None if it uses layer types not handled here
    (everything YOLOv3/v4 need is: convolutional, route, shortcut, maxpool, upsample, yolo)."""
    sections = _read_darknet_sections(cfg_path)
    if not sections or sections[0][0] not in ('net', 'network'):
        raise ValueError(f'{cfg_path}: a darknet cfg must start with a [net] section')
    channels = int(sections[0][1].get('channels', 3))
    out_channels = []  # per layer
    total = 0
    passthrough = ('maxpool', 'upsample', 'yolo', 'region', 'shortcut', 'dropout', 'scale_channels', 'sam')
    for name, options in sections[1:]:
        if name in ('convolutional', 'conv'):
            filters, size = int(options['filters']), int(options.get('size', 1))
            groups = int(options.get('groups', 1))
            batch_norm = int(options.get('batch_normalize', 0))
            total += filters * (4 if batch_norm else 1) + filters * (channels // groups) * size * size
            channels = filters
        elif name == 'route':
            layers = [int(x) for x in options['layers'].split(',')]
            here = len(out_channels)
            channels = sum(out_channels[i if i >= 0 else here + i] for i in layers)
            channels //= int(options.get('groups', 1))  # route with groups keeps one slice
        elif name not in passthrough:
            return None
        out_channels.append(channels)
    return total


def _check_darknet_weights_size(cfg_path, weights_path):
    """Truncated or mismatched .weights files load silently in OpenCV (with garbage weights): check the
    file size against the weight count of the cfg."""
    try:
        count = _darknet_weight_count(cfg_path)
    except (KeyError, ValueError, IndexError) as e:
        raise ValueError(f'{cfg_path}: malformed darknet cfg ({type(e).__name__}: {e})') from e
    if count is None:
        return
    with open(weights_path, 'rb') as f:
        header = f.read(12)
    if len(header) < 12:
        raise ValueError(f'{weights_path}: too short for a darknet weights file')
    major, minor, _ = struct.unpack('<iii', header)
    # the "images seen" counter is int64 from format 0.2 on, int32 before
    header_bytes = 20 if major * 10 + minor >= 2 and major < 1000 and minor < 1000 else 16
    n_stored = (Path(weights_path).stat().st_size - header_bytes) / 4
    if n_stored != count:
        raise ValueError(f'{weights_path}: holds {n_stored:g} weights but {cfg_path} needs {count} '
                         '(truncated download or the wrong cfg?)')


class DarknetYoloDetector(Detector):
    """YOLOv4 (or v3) in Darknet format (.cfg + .weights) through OpenCV's DNN module.

    The image (RGB, /255) is resized to `input_side` x `input_side` (416 like the original's YOLOv4-416);
    `letterbox=None` follows the cfg's `letter_box` key (darknet's default is a plain stretch; letterboxing
    centres the image on grey 127). Rows are decoded with yolo_decode (OpenCV's [yolo] layer outputs
    [cx, cy, w, h] relative to the input and class scores already multiplied by the objectness; it zeroes
    class scores below the layer's `thresh`, 0.2 unless the cfg's [yolo] sections set it, so lower
    `score_threshold`s need that key), person class only, score >= 0.2, clipped to the image, NMS IoU 0.7.
    """

    def __init__(self, cfg_path, weights_path, input_side=YOLO_INPUT_SIDE,
                 score_threshold=YOLO_SCORE_THRESHOLD, nms_iou=YOLO_NMS_IOU, person_class=COCO_PERSON_CLASS,
                 letterbox=None):
        for path in (cfg_path, weights_path):
            if not Path(path).is_file():
                raise FileNotFoundError(f'darknet model file not found: {path}')
        _check_darknet_weights_size(cfg_path, weights_path)
        try:
            self.net = cv2.dnn.readNetFromDarknet(str(cfg_path), str(weights_path))
        except cv2.error as e:
            raise ValueError(f'cannot load darknet model {cfg_path} / {weights_path}: {e}') from e
        self.output_names = self.net.getUnconnectedOutLayersNames()
        self.cfg_path = str(cfg_path)
        if letterbox is None:
            net_options = _read_darknet_sections(cfg_path)[0][1]
            letterbox = net_options.get('letter_box', '0') not in ('0', '')
        self.letterbox = bool(letterbox)
        self.input_side = input_side
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.person_class = person_class

    def _input_blob(self, image_rgb):
        """(blob (1, 3, S, S) float32 RGB in [0, 1], (scale_x, scale_y, offset_x, offset_y)) where
        image px = relative output coordinate * scale + offset."""
        h, w = image_rgb.shape[:2]
        side = self.input_side
        if self.letterbox:
            canvas, scale, (pad_x, pad_y) = letterbox(image_rgb, (side, side), pad_value=127, center=True)
            mapping = (side / scale, side / scale, -pad_x / scale, -pad_y / scale)
        else:
            interp = cv2.INTER_AREA if side < min(h, w) else cv2.INTER_LINEAR
            canvas = cv2.resize(image_rgb, (side, side), interpolation=interp)
            mapping = (w, h, 0.0, 0.0)
        # the image is already RGB, which darknet models expect: no channel swap
        blob = cv2.dnn.blobFromImage(canvas, 1 / 255, swapRB=False, crop=False)
        return blob, mapping

    def detect(self, image_rgb):
        image_rgb = _check_image(image_rgb)
        blob, (scale_x, scale_y, offset_x, offset_y) = self._input_blob(image_rgb)
        self.net.setInput(blob)
        try:
            outputs = self.net.forward(self.output_names)
        except cv2.error as e:
            raise RuntimeError(
                f'darknet model {self.cfg_path} failed on a {image_rgb.shape} image: {e}') from e
        rows = np.concatenate([np.asarray(o).reshape(-1, np.asarray(o).shape[-1]) for o in outputs])
        dets = yolo_decode(rows, self.score_threshold, self.person_class, scale_x, scale_y, offset_x,
                           offset_y, class_scores_include_objectness=True)
        return _finish(dets, self.nms_iou, image_rgb.shape)


class OnnxDetector(Detector):
    """An ONNX person detector run by onnxruntime (CPU).

    Input: the model's first input, float32 NCHW, RGB scaled to [0, 1]. Its height and width are read from
    the model (640 x 640 where dynamic). The image is letterboxed into it: scaled to fit, keeping the aspect
    ratio, and padded right/bottom with grey 114 (the YOLOX/YOLOv5+ convention).
    Output: the model's first output, one of
    - (1, N, 6) rows [x1, y1, x2, y2, score, class] in input pixels (end-to-end exports with NMS inside);
    - (1, N, 5 + C) raw YOLO rows [cx, cy, w, h, objectness, class scores...] in input pixels (YOLOX with
      decoding in the graph, YOLOv5), scored as objectness x class score.
    Person rows (class `person_class`, 0 for COCO) scoring >= `score_threshold` are mapped back to image
    pixels (divided by the letterbox scale), clipped to the image and NMS-ed at `nms_iou`.
    """

    def __init__(self, model_path, score_threshold=YOLO_SCORE_THRESHOLD, nms_iou=YOLO_NMS_IOU,
                 person_class=COCO_PERSON_CLASS):
        try:
            import onnxruntime
        except ImportError as e:
            raise ImportError('The onnx detector needs onnxruntime: pip install onnxruntime') from e
        if not Path(model_path).is_file():
            raise FileNotFoundError(f'ONNX detector model not found: {model_path}')
        try:
            self.session = onnxruntime.InferenceSession(str(model_path), providers=['CPUExecutionProvider'])
        except Exception as e:  # onnxruntime raises its own exception types for corrupt files
            raise ValueError(f'cannot load ONNX detector {model_path}: {e}') from e
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        shape = model_input.shape
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            raise ValueError(
                f'{model_path}: expected an NCHW RGB image input (1, 3, H, W), got shape {shape}')
        self.input_hw = tuple(s if isinstance(s, int) and s > 0 else 640 for s in shape[2:4])
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.person_class = person_class
        self.model_path = str(model_path)

    def detect(self, image_rgb):
        image_rgb = _check_image(image_rgb)
        canvas, scale, _ = letterbox(image_rgb, self.input_hw)
        batch = np.ascontiguousarray((canvas.astype(np.float32) / 255).transpose(2, 0, 1)[np.newaxis])
        output = np.asarray(self.session.run(None, {self.input_name: batch})[0])
        if output.ndim < 2:
            raise ValueError(f'{self.model_path}: detector output of shape {output.shape} not understood')
        rows = output.reshape(-1, output.shape[-1]).astype(np.float64)
        if rows.shape[1] == 6:  # [x1, y1, x2, y2, score, class]
            rows = rows[(np.round(rows[:, 5]) == self.person_class) & (rows[:, 4] >= self.score_threshold)]
            dets = np.stack([rows[:, 0], rows[:, 1], rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1],
                             rows[:, 4]], 1) / np.array([scale, scale, scale, scale, 1])
        elif rows.shape[1] > 6:
            dets = yolo_decode(rows, self.score_threshold, self.person_class, 1 / scale, 1 / scale)
        else:
            raise ValueError(f'{self.model_path}: detector output of shape {output.shape} not understood '
                             '(expected (1, N, 6) boxes or (1, N, 5 + classes) raw YOLO rows)')
        return _finish(dets, self.nms_iou, image_rgb.shape)


class TFDetector(Detector):
    """A TensorFlow SavedModel detector (TensorFlow is imported only here: `pip install "posepile[tf]"`).

    Two calling conventions are recognised:
    - a model exposing `predict_single_image(image uint8 (H, W, 3), score_threshold, nms_iou)` returning
      (N, 5) [x, y, w, h, score] person boxes in image pixels (the interface the original pipeline calls on
      its YOLOv4 TF port); thresholds 0.2 / 0.7 are passed through;
    - the TF Object Detection API convention: called on uint8 (1, H, W, 3), returning a dict with
      `detection_boxes` (1, N, 4) [ymin, xmin, ymax, xmax] normalised to [0, 1], `detection_scores` and
      `detection_classes` (COCO label map: person = 1).
    """

    def __init__(self, model_dir, score_threshold=YOLO_SCORE_THRESHOLD, nms_iou=YOLO_NMS_IOU, person_class=1):
        try:
            import tensorflow as tf
        except ImportError as e:
            raise ImportError('The tf detector needs TensorFlow: pip install "posepile[tf]"') from e
        if not Path(model_dir).is_dir():
            raise FileNotFoundError(f'TensorFlow SavedModel directory not found: {model_dir}')
        self.tf = tf
        self.model = tf.saved_model.load(str(model_dir))
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.person_class = person_class

    def detect(self, image_rgb):
        image_rgb = _check_image(image_rgb)
        h, w = image_rgb.shape[:2]
        if hasattr(self.model, 'predict_single_image'):
            dets = np.asarray(self.model.predict_single_image(
                self.tf.constant(image_rgb), self.score_threshold, self.nms_iou)).reshape(-1, 5)
            return _finish(dets, self.nms_iou, image_rgb.shape)
        result = self.model(self.tf.constant(image_rgb[np.newaxis]))
        boxes = np.asarray(result['detection_boxes'])[0]
        scores = np.asarray(result['detection_scores'])[0]
        classes = np.asarray(result['detection_classes'])[0]
        keep = (np.round(classes) == self.person_class) & (scores >= self.score_threshold)
        boxes, scores = boxes[keep], scores[keep]
        dets = np.stack([boxes[:, 1] * w, boxes[:, 0] * h, (boxes[:, 3] - boxes[:, 1]) * w,
                         (boxes[:, 2] - boxes[:, 0]) * h, scores], 1)
        return _finish(dets, self.nms_iou, image_rgb.shape)


class GroundTruthDetector(Detector):
    """Boxes from projected ground-truth joints: the bounding box of each person's finite joints, expanded
    about its centre by `expansion` (1.05-1.25 in the original's datasets), score 1. People without any
    finite joint give no box."""

    def __init__(self, expansion=1.15):
        if not expansion > 0:
            raise ValueError(f'gt detector expansion must be positive, got {expansion}')
        self.expansion = expansion

    def detect_from_joints(self, joints2d_per_person):
        """joints2d_per_person: iterable of (J, 2) px arrays (NaN = unknown) -> float32 (N, 5)."""
        dets = []
        for joints in joints2d_per_person:
            box = boxlib.bb_of_points(joints)
            if np.all(np.isfinite(box)):
                dets.append([*boxlib.expand(box, self.expansion), 1.0])
        return np.asarray(dets, np.float32).reshape(-1, 5)

    def detect(self, image_rgb):
        raise TypeError('the gt detector needs joints: use detect_from_joints(joints2d_per_person)')


def make_detector(spec='hog'):
    """Detector from a spec string: 'hog', 'gt' or 'gt:EXPANSION', 'darknet:CFG,WEIGHTS', 'onnx:MODEL',
    'tf:SAVED_MODEL_DIR'."""
    kind, _, arg = str(spec).partition(':')
    if kind == 'hog' and not arg:
        return HogDetector()
    if kind == 'darknet':
        parts = arg.split(',')
        if len(parts) != 2 or not all(parts):
            raise ValueError(f'darknet detector spec must be darknet:CFG,WEIGHTS, got {spec!r}')
        return DarknetYoloDetector(*parts)
    if kind in ('onnx', 'tf') and not arg:
        raise ValueError(f'detector spec {spec!r} needs a path: {kind}:PATH')
    if kind == 'onnx':
        return OnnxDetector(arg)
    if kind == 'tf':
        return TFDetector(arg)
    if kind == 'gt':
        try:
            return GroundTruthDetector(float(arg) if arg else 1.15)
        except ValueError as e:
            raise ValueError(f'gt detector spec must be gt or gt:EXPANSION, got {spec!r}') from e
    raise ValueError(f'unknown detector {spec!r}; use hog, gt, darknet:CFG,WEIGHTS, onnx:MODEL or tf:DIR')


# ------------------------------------------------------------------------------------------------
# The detection stage
def shard_output_path(out_path, index, count):
    """out_path itself for a single shard, else e.g. dets.shard-0002-of-0008.pkl next to it."""
    out_path = Path(out_path)
    if count == 1:
        return out_path
    return out_path.with_name(f'{out_path.stem}.shard-{index:04d}-of-{count:04d}{out_path.suffix}')


def run_detection_stage(image_root, relpaths, out_path, detector_spec='hog', shard=None,
                        checkpoint_every=500):
    """Detect people in this shard's images; write pickle {relpath: float32 (N, 5) [x, y, w, h, score]}.

    relpaths are relative to `image_root` (and are the keys); a member path '<container>::<member>' reads the
    image from inside a zip or HDF5 container (posepile.util.image_sources). `shard` 'i/n' (0-based) takes
    every n-th of the sorted relpaths and writes `shard_output_path(out_path, i, n)`; None uses the Slurm array task if
    any, else everything. Skipped when that file (or the merged `out_path`) exists. Progress is
    checkpointed atomically every `checkpoint_every` images to `<shard file>.partial`, so a killed run
    resumes where it stopped. Returns the path written.
    """
    from tqdm import tqdm

    from posepile.util import image_sources, improc
    from posepile.util.parallel import parse_shard, shard_items
    index, count = parse_shard(shard)
    out_path = Path(out_path)
    final_path = shard_output_path(out_path, index, count)
    for done in dict.fromkeys([final_path, out_path]):
        if done.exists():
            logger.info('%s exists: detection shard %d/%d finished', done, index, count)
            return done
    partial_path = final_path.with_name(final_path.name + '.partial')
    results = fileio.load_pickle(partial_path) if partial_path.exists() else {}
    if results:
        logger.info('resuming %s: %d images already done', final_path, len(results))
    todo = [p for p in shard_items(sorted(set(map(str, relpaths))), index, count) if p not in results]
    detector = make_detector(detector_spec) if todo else None
    for i, relpath in enumerate(tqdm(todo, desc=f'detect {index + 1}/{count}', mininterval=2, disable=None)):
        if image_sources.is_member_path(relpath):  # '<zip or HDF5>::<member>', the container under image_root
            image = image_sources.decode_image(image_sources.read_image_bytes(relpath, image_root), relpath)
        else:
            image = improc.imread_rgb(Path(image_root) / relpath, strict=True)
        results[relpath] = detector.detect(image)
        if (i + 1) % checkpoint_every == 0:
            fileio.save_pickle(results, partial_path)
    fileio.save_pickle(results, final_path)
    partial_path.unlink(missing_ok=True)
    return final_path


def merge_detection_shards(out_path, count):
    """Union of the `count` shard files into `out_path` (atomic; skipped if it exists). Errors name the
    shards that have not finished."""
    out_path = Path(out_path)
    if count == 1 or out_path.exists():
        return out_path
    paths = [shard_output_path(out_path, i, count) for i in range(count)]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f'detection shards not finished: {", ".join(missing)}')
    merged = {}
    for path in paths:
        merged.update(fileio.load_pickle(path))
    fileio.save_pickle(merged, out_path)
    return out_path


def main(argv=None):
    """python -m posepile.preproc.detection IMAGE_ROOT OUT.pkl [--detector SPEC] [--shard i/n]
    (images: all *.jpg under IMAGE_ROOT, keys relative to it)"""
    from posepile.util.parallel import add_shard_argument
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument('image_root')
    parser.add_argument('out_path')
    parser.add_argument('--detector', default='hog')
    parser.add_argument('--pattern', default='**/*.jpg')
    parser.add_argument('--merge-shards', type=int, default=None, help='merge N finished shard files')
    add_shard_argument(parser)
    args = parser.parse_args(argv)
    if args.merge_shards:
        merge_detection_shards(args.out_path, args.merge_shards)
        return
    root = Path(args.image_root)
    relpaths = [str(p.relative_to(root)) for p in root.glob(args.pattern)]
    run_detection_stage(root, relpaths, args.out_path, args.detector, args.shard)


if __name__ == '__main__':
    logging.basicConfig(level=logging.INFO)
    main()
