"""Person segmentation: one COCO RLE mask per person box.

Backends (`make_segmenter(spec)`):
- `'grabcut'` (offline default): OpenCV GrabCut seeded from the person's projected skeleton. Thin limb
  lines are sure foreground, thick limbs probable foreground, the rest of the box probable background and
  everything outside the expanded box sure background. Without joints, the box alone seeds it.
- `'onnx:MODEL.onnx'`: a semantic segmentation network with a person class run by onnxruntime, used the
  way the original uses DeepLabV3 (Pascal VOC, person = class 15): the image is letterboxed into a square
  513x513 input (padding at the top/left), the person score map is resized back and thresholded at 0.2,
  and per person box the connected component that best matches the box is kept.
  Expected model I/O: one float32 input NHWC (1, 513, 513, 3) RGB in [0, 255] (or NCHW when the input's
  second dimension is 3); one output that is either (1, H, W) / (1, 1, H, W) person probabilities, or
  (1, C, H, W) / (1, H, W, C) class logits or probabilities (softmax applied when values leave [0, 1]);
  the person channel is `person_class` (default 15).
- `'tf:SAVED_MODEL_DIR'`: the same contract for a TensorFlow SavedModel (`pip install posepile[tf]`).
Segmentation is run on the crops (cheap), as the original does.
"""
import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

from posepile.util import boxes, masks

logger = logging.getLogger(__name__)

SEMANTIC_INPUT_SIDE = 513
SEMANTIC_THRESHOLD = 0.2
PASCAL_PERSON_CLASS = 15


class Segmenter:
    def segment(self, image_rgb, person_boxes, joints2d=None, edges=None, other_joints2d=None,
                others_in_front=None):
        """One RLE per box. joints2d: per person (J, 2) px (NaN allowed); edges: list of (i, j).
        other_joints2d: skeletons (J, 2) of further people in the image that must not be included."""
        raise NotImplementedError


class GrabCutSegmenter(Segmenter):
    """GrabCut seeded from the skeleton. Works on a region around the box, downscaled so that the box's
    longer side is at most `work_side_px` (grabcut cost grows with pixel count)."""

    def __init__(self, iterations=4, work_side_px=200, box_margin=1.25):
        self.iterations = iterations
        self.work_side_px = work_side_px
        self.box_margin = box_margin

    def segment(self, image_rgb, person_boxes, joints2d=None, edges=None, other_joints2d=None,
                others_in_front=None):
        """others_in_front: per skeleton of other_joints2d, whether it is closer to the camera than the
        segmented person(s) (then it may cover them); unknown = behind (only marks the surroundings)."""
        imshape = image_rgb.shape[:2]
        results = []
        for i_person, box in enumerate(person_boxes):
            joints = None if joints2d is None else joints2d[i_person]
            # everybody else in the image is background for this person
            in_front = list(others_in_front or [False] * len(other_joints2d or []))
            others = list(zip(other_joints2d or [], in_front))
            if joints2d is not None:
                others += [(j, False) for k, j in enumerate(joints2d) if k != i_person]
            results.append(self._segment_one(image_rgb, np.asarray(box[:4], np.float64), joints, edges,
                                             imshape, others))
        return results

    def _segment_one(self, image, box, joints, edges, imshape, other_skeletons=()):
        region = boxes.intersection(boxes.expand(box, self.box_margin * 1.2), boxes.full_box(imshape))
        if region[2] < 2 or region[3] < 2:
            return masks.empty(imshape)
        x0, y0 = int(np.floor(region[0])), int(np.floor(region[1]))
        x1 = min(imshape[1], int(np.ceil(region[0] + region[2])))
        y1 = min(imshape[0], int(np.ceil(region[1] + region[3])))
        scale = min(1.0, self.work_side_px / max(box[2], box[3]))
        patch = image[y0:y1, x0:x1]
        work_shape = (max(2, int(round((y1 - y0) * scale))), max(2, int(round((x1 - x0) * scale))))
        if scale < 1:
            patch = cv2.resize(patch, (work_shape[1], work_shape[0]), interpolation=cv2.INTER_AREA)

        def to_work(points):
            return (np.asarray(points, np.float64) - [x0, y0] + 0.5) * scale - 0.5

        seed = np.full(work_shape, cv2.GC_BGD, np.uint8)
        inner = boxes.expand(box, self.box_margin)
        ix0, iy0 = np.floor(to_work(inner[:2])).astype(int)
        ix1, iy1 = np.ceil(to_work(inner[:2] + inner[2:])).astype(int)
        seed[max(0, iy0):max(0, iy1 + 1), max(0, ix0):max(0, ix1 + 1)] = cv2.GC_PR_BGD
        box_side_work = max(box[2], box[3]) * scale
        has_skeleton = joints is not None and edges and np.sum(np.all(np.isfinite(joints), 1)) >= 2
        if has_skeleton:
            joints_work = to_work(joints)
            for thickness_rel, label in ((0.09, cv2.GC_PR_FGD), (0.025, cv2.GC_FGD)):
                thickness = max(1, int(round(thickness_rel * box_side_work)))
                for i, j in edges:
                    a, b = joints_work[i], joints_work[j]
                    if np.all(np.isfinite(a)) and np.all(np.isfinite(b)):
                        cv2.line(seed, tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int)),
                                 int(label), thickness)
            own_sure = seed == cv2.GC_FGD
            own_probable = seed == cv2.GC_PR_FGD
            thickness = max(1, int(round(0.03 * box_side_work)))
            for other, is_in_front in other_skeletons:
                other_lines = np.zeros(work_shape, np.uint8)
                other_work = to_work(other)
                for i, j in edges:
                    a, b = other_work[i], other_work[j]
                    if np.all(np.isfinite(a)) and np.all(np.isfinite(b)):
                        cv2.line(other_lines, tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int)),
                                 1, thickness)
                # a person in front covers ours; one behind is hidden where our limbs are
                overwrite = ~own_sure if is_in_front else ~(own_sure | own_probable)
                seed[(other_lines > 0) & overwrite] = cv2.GC_BGD
        else:
            # No skeleton: a central ellipse of the box is probable foreground.
            centre = tuple(np.round(to_work(boxes.center(box))).astype(int))
            axes = (max(1, int(box[2] * scale * 0.3)), max(1, int(box[3] * scale * 0.42)))
            cv2.ellipse(seed, centre, axes, 0, 0, 360, int(cv2.GC_PR_FGD), -1)
        if not np.any((seed == cv2.GC_FGD) | (seed == cv2.GC_PR_FGD)):
            return masks.empty(imshape)
        bgd_model = np.zeros((1, 65), np.float64)
        fgd_model = np.zeros((1, 65), np.float64)
        try:
            cv2.grabCut(np.ascontiguousarray(patch), seed, None, bgd_model, fgd_model, self.iterations,
                        cv2.GC_INIT_WITH_MASK)
        except cv2.error as e:  # degenerate colour statistics (e.g. a flat patch)
            logger.debug('grabcut failed: %s', e)
        foreground = ((seed == cv2.GC_FGD) | (seed == cv2.GC_PR_FGD)).astype(np.uint8)
        foreground = cv2.morphologyEx(foreground, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        if has_skeleton:
            foreground = _component_touching(foreground, seed_points=joints_work)
        if scale < 1:
            foreground = cv2.resize(foreground, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        full = np.zeros(imshape, np.uint8)
        full[y0:y1, x0:x1] = foreground
        return masks.encode(full > 0)


def _component_touching(foreground, seed_points):
    """Keep the connected components that contain at least one valid joint (drop detached blobs)."""
    n, labels = cv2.connectedComponents(foreground, connectivity=4)
    if n <= 2:
        return foreground
    keep = set()
    h, w = foreground.shape
    for x, y in seed_points:
        if np.isfinite(x) and np.isfinite(y):
            xi, yi = int(round(x)), int(round(y))
            if 0 <= xi < w and 0 <= yi < h and labels[yi, xi] > 0:
                keep.add(labels[yi, xi])
    if not keep:
        return foreground
    return np.isin(labels, list(keep)).astype(np.uint8)


class SemanticSegmenter(Segmenter):
    """Shared pre/post-processing of the ONNX and TF person-class segmentation models."""

    def __init__(self, person_class=PASCAL_PERSON_CLASS, threshold=SEMANTIC_THRESHOLD,
                 input_side=SEMANTIC_INPUT_SIDE):
        self.person_class = person_class
        self.threshold = threshold
        self.input_side = input_side

    def _run(self, batch_nhwc_float32):
        raise NotImplementedError

    def person_probability(self, image_rgb):
        """Person probability map (H, W) float32 of the whole image."""
        h, w = image_rgb.shape[:2]
        side = self.input_side
        scale = side / max(h, w)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(image_rgb, (new_w, new_h), interpolation=interp)
        pad_top, pad_left = side - new_h, side - new_w  # the original pads at the top/left
        canvas = np.zeros((side, side, 3), np.float32)
        canvas[pad_top:, pad_left:] = resized
        prob = self._person_map(self._run(canvas[np.newaxis]))
        prob = cv2.resize(prob, (side, side), interpolation=cv2.INTER_LINEAR) if prob.shape != (side, side) \
            else prob
        prob = prob[pad_top:, pad_left:]
        return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)

    def _person_map(self, output):
        out = np.asarray(output, np.float32)
        if out.ndim == 4 and out.shape[1] == 1:
            out = out[:, 0]
        if out.ndim == 3:
            return out[0]
        if out.ndim != 4:
            raise ValueError(f'segmentation output of shape {out.shape} not understood')
        channels_first = out.shape[1] < out.shape[3]
        scores = out[0] if channels_first else np.moveaxis(out[0], -1, 0)
        if scores.min() < 0 or scores.max() > 1:
            scores = np.exp(scores - scores.max(0, keepdims=True))
            scores /= scores.sum(0, keepdims=True)
        return scores[self.person_class]

    def segment(self, image_rgb, person_boxes, joints2d=None, edges=None, other_joints2d=None,
                others_in_front=None):
        foreground = (self.person_probability(image_rgb) > self.threshold).astype(np.uint8)
        return [masks.encode(best_component_for_box(foreground, np.asarray(box[:4]))) for box in person_boxes]


def best_component_for_box(foreground, box):
    """The 4-connected component of `foreground` whose bounding box best overlaps `box` (IoU)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(foreground.astype(np.uint8), connectivity=4)
    if n <= 1:
        return np.zeros_like(foreground, bool)
    component_boxes = stats[1:, :4].astype(np.float64)
    ious = boxes.iou_matrix(component_boxes, np.asarray(box, np.float64)[np.newaxis])[:, 0]
    best = int(np.argmax(ious))
    if ious[best] <= 0:
        return np.zeros_like(foreground, bool)
    return labels == best + 1


class OnnxSegmenter(SemanticSegmenter):
    def __init__(self, model_path, **kwargs):
        super().__init__(**kwargs)
        try:
            import onnxruntime
        except ImportError as e:
            raise ImportError('The onnx segmenter needs onnxruntime: pip install onnxruntime') from e
        if not Path(model_path).exists():
            raise FileNotFoundError(f'ONNX segmentation model not found: {model_path}')
        self.session = onnxruntime.InferenceSession(str(model_path), providers=['CPUExecutionProvider'])
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.channels_first = len(model_input.shape) == 4 and model_input.shape[1] == 3

    def _run(self, batch):
        feed = np.ascontiguousarray(batch.transpose(0, 3, 1, 2) if self.channels_first else batch)
        return self.session.run(None, {self.input_name: feed})[0]


class TFSegmenter(SemanticSegmenter):
    def __init__(self, model_dir, **kwargs):
        super().__init__(**kwargs)
        try:
            import tensorflow as tf
        except ImportError as e:
            raise ImportError('The tf segmenter needs TensorFlow: pip install "posepile[tf]"') from e
        self.tf = tf
        self.model = tf.saved_model.load(str(model_dir))

    def _run(self, batch):
        result = self.model(self.tf.constant(batch))
        if isinstance(result, dict):
            result = next(iter(result.values()))
        return result.numpy()


def make_segmenter(spec='grabcut'):
    kind, _, arg = spec.partition(':')
    if kind == 'grabcut':
        return GrabCutSegmenter()
    if kind == 'onnx':
        return OnnxSegmenter(arg)
    if kind == 'tf':
        return TFSegmenter(arg)
    raise ValueError(f'unknown segmenter {spec!r}; use grabcut, onnx:MODEL.onnx or tf:SAVED_MODEL_DIR')


def segment_examples(examples, segmenter_spec='grabcut', joint_edges=None, data_root=None, desc='segment',
                     other_people_world=None):
    """Masks for a list of (cropped) examples: list of RLE, one per example, in order.

    other_people_world: optional, per example a list of (J, 3) world coordinates (mm) of the other people
    in the same frame; they are projected into the crop and kept out of the mask.
    """
    from tqdm import tqdm

    from posepile.util import improc
    if data_root is None:
        from posepile.paths import data_root as get_data_root
        data_root = get_data_root()
    segmenter = make_segmenter(segmenter_spec)
    results = []
    for i_example, example in enumerate(tqdm(examples, desc=desc, mininterval=2, disable=None if desc else True)):
        image = improc.imread_rgb(Path(data_root) / example.image_path)
        joints2d = None
        if getattr(example, 'world_coords', None) is not None and example.camera is not None:
            joints2d = [example.camera.world_to_image(example.world_coords)]
        elif getattr(example, 'coords', None) is not None:
            joints2d = [example.coords]
        others, in_front = None, None
        if other_people_world is not None and example.camera is not None:
            own_depth = np.nanmean(example.camera.world_to_camera(example.world_coords)[:, 2])
            others = [example.camera.world_to_image(w) for w in other_people_world[i_example]]
            in_front = [np.nanmean(example.camera.world_to_camera(w)[:, 2]) < own_depth
                        for w in other_people_world[i_example]]
        results.append(segmenter.segment(image, [example.bbox], joints2d, joint_edges, others, in_front)[0])
    return results


def _segment_chunk(chunk, segmenter_spec, joint_edges, data_root):
    examples, others = chunk
    return segment_examples(examples, segmenter_spec, joint_edges, data_root=data_root, desc=None,
                            other_people_world=others)


def segment_examples_parallel(examples, segmenter_spec='grabcut', joint_edges=None, data_root=None,
                              other_people_world=None, n_workers=None, n_chunks=8):
    """segment_examples over a local process pool (in chunks; results in input order). Model-based
    segmenters run in this process (one model in memory)."""
    import functools

    from posepile.util.parallel import parallel_map
    if not segmenter_spec.startswith('grabcut'):
        return segment_examples(examples, segmenter_spec, joint_edges, data_root,
                                other_people_world=other_people_world)
    if data_root is None:
        from posepile.paths import data_root as get_data_root
        data_root = get_data_root()
    others = other_people_world if other_people_world is not None else [None] * len(examples)
    chunks = [(examples[i::n_chunks], others[i::n_chunks] if other_people_world is not None else None)
              for i in range(n_chunks)]
    worker = functools.partial(_segment_chunk, segmenter_spec=segmenter_spec, joint_edges=joint_edges,
                               data_root=str(data_root))
    results = [None] * len(examples)
    for i, chunk_result in enumerate(parallel_map(worker, chunks, n_workers=n_workers, desc='segment')):
        results[i::n_chunks] = chunk_result
    return results


def main(argv=None):
    """Segment the crops of a saved example list: python -m posepile.preproc.segmentation IN.pkl OUT.pkl"""
    from posepile.util import fileio
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument('examples_pickle')
    parser.add_argument('out_pickle')
    parser.add_argument('--segmenter', default='grabcut')
    args = parser.parse_args(argv)
    if Path(args.out_pickle).exists():
        logger.info('%s exists, skipping', args.out_pickle)
        return
    examples = fileio.load_pickle(args.examples_pickle)
    fileio.save_pickle(segment_examples(examples, args.segmenter), args.out_pickle)


if __name__ == '__main__':
    logging.basicConfig(level=logging.INFO)
    main()
