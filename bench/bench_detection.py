"""Speed of the detection post-processing: posepile's NMS vs OpenCV's cv2.dnn.NMSBoxes (C++) and a plain
per-pair Python loop (the reference semantics), and the HOG backend's images per second.

Candidate boxes imitate raw YOLO output after the score threshold: clusters of jittered boxes around
a few people plus scattered false positives. Timings are from the same run.

    python bench/bench_detection.py [--boxes 2000] [--repeats 20]
"""
import argparse
import time

import cv2
import numpy as np

from posepile.preproc.detection import make_detector, nms


def make_candidates(n_boxes, seed=0):
    rng = np.random.default_rng(seed)
    n_people = max(1, n_boxes // 50)
    people = np.concatenate([rng.uniform(0, 1500, (n_people, 2)), rng.uniform(50, 400, (n_people, 1))], 1)
    owner = rng.integers(0, n_people, n_boxes)
    height = people[owner, 2] * rng.normal(1, 0.08, n_boxes)
    width = height * 0.4 * rng.normal(1, 0.1, n_boxes)
    x = people[owner, 0] + rng.normal(0, 0.05, n_boxes) * width
    y = people[owner, 1] + rng.normal(0, 0.05, n_boxes) * height
    boxes = np.stack([x, y, width, height], 1)
    scores = rng.uniform(0.2, 1, n_boxes)
    return boxes, scores


def python_loop_nms(boxes, scores, iou_threshold):
    kept = []
    for i in np.argsort(-scores, kind='stable'):
        x1, y1, w1, h1 = boxes[i]
        suppressed = False
        for j in kept:
            x2, y2, w2, h2 = boxes[j]
            iw = max(0.0, min(x1 + w1, x2 + w2) - max(x1, x2))
            ih = max(0.0, min(y1 + h1, y2 + h2) - max(y1, y2))
            inter = iw * ih
            if inter / (w1 * h1 + w2 * h2 - inter) > iou_threshold:
                suppressed = True
                break
        if not suppressed:
            kept.append(int(i))
    return np.array(kept)


def timed(fn, repeats):
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        result = fn()
    return (time.perf_counter() - start) / repeats, result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--boxes', type=int, default=2000)
    parser.add_argument('--repeats', type=int, default=20)
    args = parser.parse_args()
    boxes, scores = make_candidates(args.boxes)
    box_list, score_list = boxes.tolist(), scores.tolist()

    t_ours, kept = timed(lambda: nms(boxes, scores, 0.7), args.repeats)
    t_cv, kept_cv = timed(lambda: cv2.dnn.NMSBoxes(box_list, score_list, 0.0, 0.7), args.repeats)
    t_loop, kept_loop = timed(lambda: python_loop_nms(boxes, scores, 0.7), max(1, args.repeats // 10))
    assert kept.tolist() == np.asarray(kept_cv).reshape(-1).tolist() == kept_loop.tolist()
    print(f'NMS of {args.boxes} candidate boxes (IoU 0.7) -> {len(kept)} kept')
    print(f'  posepile nms        {t_ours * 1e3:8.2f} ms')
    print(f'  cv2.dnn.NMSBoxes    {t_cv * 1e3:8.2f} ms   (posepile / OpenCV time ratio {t_ours / t_cv:.2f})')
    print(f'  python pair loop    {t_loop * 1e3:8.2f} ms   (speed-up of posepile {t_loop / t_ours:.1f}x)')

    rng = np.random.default_rng(0)
    hog = make_detector('hog')
    for shape in [(480, 640, 3), (1080, 1920, 3)]:
        image = cv2.GaussianBlur(rng.integers(0, 255, shape, dtype=np.uint8), (0, 0), 3)
        t_hog, _ = timed(lambda: hog.detect(image), 3)
        print(f'HOG on {shape[1]}x{shape[0]}: {t_hog * 1e3:.0f} ms per image ({1 / t_hog:.1f} images/s)')


if __name__ == '__main__':
    main()
