"""Person detection: one interface, several backends, and a sharded, resumable detection stage.

`make_detector(spec)` specs:
- `'hog'`: OpenCV's built-in HOG + linear SVM people detector (ships with OpenCV: works offline, no
  weights). Adequate for upright, fully visible people; the offline default of the recipes.
- `'darknet:CFG,WEIGHTS'`: YOLOv4 (the original PosePile's model family) via cv2.dnn.readNetFromDarknet,
  416x416 input, score = objectness x person-class score >= 0.2, NMS IoU 0.7, person class only.
- `'onnx:MODEL.onnx'`: an ONNX detector run by onnxruntime. Input: one float32 NCHW RGB tensor in [0, 1];
  its spatial size is read from the model (640x640 when dynamic); the image is letterboxed into it (scaled
  to fit, padded right/bottom with grey 114). Output (first output), either
  (1, N, 6) rows [x1, y1, x2, y2, score, class] in input pixels (e.g. exported end-to-end YOLOX/RTMDet/
  YOLOv8 with NMS), or (1, N, 5 + C) raw YOLO rows [cx, cy, w, h, objectness, class scores...] in input
  pixels, decoded and NMS-ed here. The person class index is `person_class` (0 for COCO-trained models).
- `'tf:SAVED_MODEL_DIR'`: a TensorFlow SavedModel in the TF Object Detection API convention (called on a
  uint8 (1, H, W, 3) tensor, returns detection_boxes [ymin, xmin, ymax, xmax] normalised,
  detection_scores, detection_classes with person = 1). Needs `pip install "posepile[tf]"`.
- `'gt'`: boxes from the projected ground-truth joints (GroundTruthDetector), always available.
All backends return float32 (N, 5) arrays [x, y, w, h, score] in pixels of the given image.
"""
import argparse
import logging
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
                offset_x=0.0, offset_y=0.0):
    """Raw YOLO rows [cx, cy, w, h, objectness, class scores...] -> (N, 5) [x, y, w, h, score] person boxes.

    Box coordinates are mapped as x_image = x_row * scale_x + offset_x (same for y). score = objectness x
    person-class score; rows below `score_threshold` are dropped.
    """
    rows = np.asarray(rows, np.float64).reshape(-1, np.asarray(rows).shape[-1])
    if rows.shape[1] < 6:
        raise ValueError(f'YOLO rows need >= 6 columns (box, objectness, classes), got {rows.shape[1]}')
    scores = rows[:, 4] * rows[:, 5 + person_class]
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


class Detector:
    def detect(self, image_rgb):
        """float32 (N, 5) [x, y, w, h, score] person boxes, px."""
        raise NotImplementedError

    def detect_batch(self, images):
        return [self.detect(image) for image in images]


class HogDetector(Detector):
    """OpenCV's HOG people detector. The 64x128 window contains margins around the person, so boxes are
    shrunk to the person's usual extent within the window; small images are upscaled so that people down
    to `min_person_height_px` tall fit the window. Scores are the SVM margins squashed to (0, 1)."""

    def __init__(self, score_threshold=0.3, nms_iou=0.5, min_person_height_px=80, scale_step=1.05):
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.upscale = max(1.0, 96 / min_person_height_px)
        self.scale_step = scale_step

    def detect(self, image_rgb):
        image = image_rgb
        if self.upscale > 1:
            image = cv2.resize(image_rgb, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR)
        if image.shape[0] < 128 or image.shape[1] < 64:  # smaller than the detection window (and
            return np.zeros((0, 5), np.float32)          # OpenCV crashes on such input)
        rects, weights = self.hog.detectMultiScale(
            image, winStride=(8, 8), padding=(16, 16), scale=self.scale_step, hitThreshold=0,
            groupThreshold=0)
        if len(rects) == 0:
            return np.zeros((0, 5), np.float32)
        rects = np.asarray(rects, np.float64) / self.upscale
        scores = 1 / (1 + np.exp(-2 * np.asarray(weights, np.float64).reshape(-1)))
        # the person spans about 3/4 of the window's height and 5/8 of its width
        cx, cy = rects[:, 0] + rects[:, 2] / 2, rects[:, 1] + rects[:, 3] / 2
        w, h = rects[:, 2] * 0.625, rects[:, 3] * 0.78
        dets = np.stack([cx - w / 2, cy - h / 2, w, h, scores], 1)
        dets = dets[dets[:, 4] >= self.score_threshold]
        return _finish(dets, self.nms_iou, image_rgb.shape)


class DarknetYoloDetector(Detector):
    """YOLOv4 (or v3) in Darknet format through OpenCV's DNN module."""

    def __init__(self, cfg_path, weights_path, input_side=YOLO_INPUT_SIDE, score_threshold=YOLO_SCORE_THRESHOLD,
                 nms_iou=YOLO_NMS_IOU, person_class=COCO_PERSON_CLASS):
        for path in (cfg_path, weights_path):
            if not Path(path).exists():
                raise FileNotFoundError(f'darknet model file not found: {path}')
        try:
            self.net = cv2.dnn.readNetFromDarknet(str(cfg_path), str(weights_path))
        except cv2.error as e:
            raise ValueError(f'cannot load darknet model {cfg_path} / {weights_path}: {e}') from e
        self.output_names = self.net.getUnconnectedOutLayersNames()
        self.input_side = input_side
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.person_class = person_class

    def detect(self, image_rgb):
        h, w = image_rgb.shape[:2]
        # image is already RGB, which is what darknet models expect: no channel swap
        blob = cv2.dnn.blobFromImage(image_rgb, 1 / 255, (self.input_side, self.input_side), swapRB=False,
                                     crop=False)
        self.net.setInput(blob)
        outputs = self.net.forward(self.output_names)
        rows = np.concatenate([np.asarray(o).reshape(-1, np.asarray(o).shape[-1]) for o in outputs])
        # darknet region outputs are relative to the input size: scale to the original image
        dets = yolo_decode(rows, self.score_threshold, self.person_class, scale_x=w, scale_y=h)
        return _finish(dets, self.nms_iou, image_rgb.shape)


def letterbox(image_rgb, input_hw, pad_value=114):
    """Scale to fit `input_hw` keeping the aspect ratio, pad right/bottom. Returns (canvas, scale)."""
    h, w = image_rgb.shape[:2]
    scale = min(input_hw[0] / h, input_hw[1] / w)
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = np.full((input_hw[0], input_hw[1], 3), pad_value, np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image_rgb, (new_w, new_h), interpolation=interp)
    return canvas, scale


class OnnxDetector(Detector):
    def __init__(self, model_path, score_threshold=YOLO_SCORE_THRESHOLD, nms_iou=YOLO_NMS_IOU,
                 person_class=COCO_PERSON_CLASS):
        try:
            import onnxruntime
        except ImportError as e:
            raise ImportError('The onnx detector needs onnxruntime: pip install onnxruntime') from e
        if not Path(model_path).exists():
            raise FileNotFoundError(f'ONNX detector model not found: {model_path}')
        self.session = onnxruntime.InferenceSession(str(model_path), providers=['CPUExecutionProvider'])
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        shape = model_input.shape
        if len(shape) != 4 or shape[1] not in (3, 'C', None) and not isinstance(shape[1], str):
            raise ValueError(f'{model_path}: expected an NCHW image input, got shape {shape}')
        self.input_hw = tuple(s if isinstance(s, int) and s > 0 else 640 for s in shape[2:4])
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.person_class = person_class
        self.model_path = str(model_path)

    def detect(self, image_rgb):
        canvas, scale = letterbox(image_rgb, self.input_hw)
        batch = (canvas.astype(np.float32) / 255).transpose(2, 0, 1)[np.newaxis]
        output = np.asarray(self.session.run(None, {self.input_name: np.ascontiguousarray(batch)})[0])
        rows = output.reshape(-1, output.shape[-1])
        if rows.shape[1] == 6:  # [x1, y1, x2, y2, score, class]
            rows = rows[(rows[:, 5].round() == self.person_class) & (rows[:, 4] >= self.score_threshold)]
            dets = np.stack([rows[:, 0], rows[:, 1], rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1],
                             rows[:, 4]], 1) / np.array([scale, scale, scale, scale, 1])
        elif rows.shape[1] > 6:
            dets = yolo_decode(rows, self.score_threshold, self.person_class, 1 / scale, 1 / scale)
        else:
            raise ValueError(f'{self.model_path}: detector output of shape {output.shape} not understood '
                             '(expected (1, N, 6) boxes or (1, N, 5 + classes) raw YOLO rows)')
        return _finish(dets, self.nms_iou, image_rgb.shape)


class TFDetector(Detector):
    def __init__(self, model_dir, score_threshold=YOLO_SCORE_THRESHOLD, nms_iou=YOLO_NMS_IOU, person_class=1):
        try:
            import tensorflow as tf
        except ImportError as e:
            raise ImportError('The tf detector needs TensorFlow: pip install "posepile[tf]"') from e
        self.tf = tf
        self.model = tf.saved_model.load(str(model_dir))
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.person_class = person_class

    def detect(self, image_rgb):
        h, w = image_rgb.shape[:2]
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
    """Boxes from projected ground-truth joints, expanded about their centre by `expansion`."""

    def __init__(self, expansion=1.15):
        self.expansion = expansion

    def detect_from_joints(self, joints2d_per_person):
        dets = []
        for joints in joints2d_per_person:
            box = boxlib.bb_of_points(joints)
            if np.all(np.isfinite(box)):
                dets.append([*boxlib.expand(box, self.expansion), 1.0])
        return np.asarray(dets, np.float32).reshape(-1, 5)

    def detect(self, image_rgb):
        raise TypeError('the gt detector needs joints: use detect_from_joints(joints2d_per_person)')


def make_detector(spec='hog'):
    kind, _, arg = str(spec).partition(':')
    if kind == 'hog':
        return HogDetector()
    if kind == 'darknet':
        parts = arg.split(',')
        if len(parts) != 2:
            raise ValueError(f'darknet detector spec must be darknet:CFG,WEIGHTS, got {spec!r}')
        return DarknetYoloDetector(*parts)
    if kind == 'onnx':
        return OnnxDetector(arg)
    if kind == 'tf':
        return TFDetector(arg)
    if kind == 'gt':
        return GroundTruthDetector(float(arg) if arg else 1.15)
    raise ValueError(f'unknown detector {spec!r}; use hog, gt, darknet:CFG,WEIGHTS, onnx:MODEL or tf:DIR')


# ------------------------------------------------------------------------------------------------
# The detection stage
def shard_output_path(out_path, index, count):
    out_path = Path(out_path)
    if count == 1:
        return out_path
    return out_path.with_name(f'{out_path.stem}.shard-{index:04d}-of-{count:04d}{out_path.suffix}')


def run_detection_stage(image_root, relpaths, out_path, detector_spec='hog', shard=None, checkpoint_every=500):
    """Detect people in this shard's images; write pickle {relpath: float32 (N, 5)} atomically.

    Finished shards are skipped. Progress is checkpointed every `checkpoint_every` images to
    `<output>.partial`, so a killed run resumes where it stopped.
    """
    from tqdm import tqdm

    from posepile.util import improc
    from posepile.util.parallel import parse_shard, shard_items
    index, count = parse_shard(shard)
    final_path = shard_output_path(out_path, index, count)
    if final_path.exists():
        logger.info('%s exists: detection shard finished', final_path)
        return final_path
    partial_path = final_path.with_name(final_path.name + '.partial')
    results = fileio.load_pickle(partial_path) if partial_path.exists() else {}
    todo = [p for p in shard_items(sorted(relpaths), index, count) if p not in results]
    detector = make_detector(detector_spec) if todo else None
    for i, relpath in enumerate(tqdm(todo, desc=f'detect {index + 1}/{count}', mininterval=2, disable=None)):
        image = improc.imread_rgb(Path(image_root) / relpath)
        results[relpath] = detector.detect(image)
        if (i + 1) % checkpoint_every == 0:
            fileio.save_pickle(results, partial_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    fileio.save_pickle(results, final_path)
    partial_path.unlink(missing_ok=True)
    return final_path


def merge_detection_shards(out_path, count):
    """Union of the shard files into `out_path` (atomic). Errors name the shards that have not finished."""
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
