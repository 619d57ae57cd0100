"""A tiny 3DOH50K split: <split>/annots.json with lsp_joints_3d (14x3, units of 7 mm), intri, bbox; with
`images`, <split>/images/<id>.jpg and, for the trainset, masks/<id>.png.

Masks: the original reads trainset/masks/<id>.png channel 0 and thresholds it at 127 when cropping (facts doc
tdoh; original ds/tdoh/main.py); the real PNGs' other channels are not known. So that a wrong channel or threshold
shows, the fake's PNG is RGB with red = 255 within MASK_RADIUS px of a joint and FAINT_VALUE (below the threshold)
in a disc away from the joints, green = 255 everywhere, blue = 0."""
import json
from pathlib import Path

import numpy as np


MASK_RADIUS = 30
FAINT_VALUE = 100


def mask_png_bgr(pixels):
    """The fake's mask PNG content (OpenCV BGR order) of one image with joints at `pixels` (14, 2)."""
    ys, xs = np.mgrid[:1024, :1024]
    distance = np.min(np.hypot(xs[..., None] - pixels[:, 0], ys[..., None] - pixels[:, 1]), axis=-1)
    red = np.where(distance < MASK_RADIUS, 255, 0).astype(np.uint8)
    (x1, y1), (x2, y2) = pixels.min(0), pixels.max(0)
    candidates = distance[int(y1):int(y2), int(x1):int(x2)]
    if candidates.size and candidates.max() > 2.5 * MASK_RADIUS:  # a faint disc in the emptiest spot
        y, x = np.unravel_index(np.argmax(candidates), candidates.shape)
        red[np.hypot(xs - x - int(x1), ys - y - int(y1)) < MASK_RADIUS] = FAINT_VALUE
    return np.stack([np.zeros_like(red), np.full_like(red, 255), red], axis=-1)


def write_fake_release(root, seed=0, n_images=9, split='testset', images=False):
    """annots.json (and with `images`, <split>/images/<id>.jpg 1024x1024 with dots at the joints and, for the
    trainset, <split>/masks/<id>.png)."""
    rng = np.random.default_rng(seed)
    annotations = {}
    for i in range(n_images):
        joints_mm = rng.normal(0, 300, (14, 3)) + [0, 0, 3500]
        pixels = joints_mm[:, :2] / joints_mm[:, 2:] * 1000 + 512
        (x1, y1), (x2, y2) = pixels.min(0) - 20, pixels.max(0) + 20
        annotations[f'{i:05d}'] = {'lsp_joints_3d': (joints_mm * 7 / 1000).tolist(),
                                   'intri': [[1000.0, 0, 512], [0, 1000.0, 512], [0, 0, 1]],
                                   'bbox': [[float(x1), float(y1)], [float(x2), float(y2)]]}
        if images:
            from posepile.util import improc
            canvas = np.full((1024, 1024), 45.0, np.float32)
            ys, xs = np.mgrid[:1024, :1024]
            for u, v in pixels:
                canvas += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * 2.0 ** 2))
            image = np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
            improc.write_jpeg_atomic(Path(root) / split / 'images' / f'{i:05d}.jpg', image, 95)
            if split == 'trainset':
                import cv2
                mask_path = Path(root) / split / 'masks' / f'{i:05d}.png'
                mask_path.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(mask_path), mask_png_bgr(pixels))
    path = Path(root) / split / 'annots.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(annotations))
    return {k: np.array(v['lsp_joints_3d']) * 1000 / 7 for k, v in annotations.items()}
