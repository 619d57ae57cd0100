"""A tiny 3DOH50K test set: testset/annots.json with lsp_joints_3d (14x3, units of 7 mm), intri, bbox."""
import json
from pathlib import Path

import numpy as np


def write_fake_release(root, seed=0, n_images=9, split='testset', images=False):
    """annots.json (and with `images`, <split>/images/<id>.jpg 1024x1024 with dots at the joints)."""
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
    path = Path(root) / split / 'annots.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(annotations))
    return {k: np.array(v['lsp_joints_3d']) * 1000 / 7 for k, v in annotations.items()}
