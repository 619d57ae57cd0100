"""A tiny 3DOH50K test set: testset/annots.json with lsp_joints_3d (14x3, units of 7 mm), intri, bbox."""
import json
from pathlib import Path

import numpy as np


def write_fake_release(root, seed=0, n_images=9):
    rng = np.random.default_rng(seed)
    annotations = {}
    for i in range(n_images):
        joints = (rng.normal(0, 300, (14, 3)) + [0, 0, 3500]) * 7 / 1000
        annotations[f'{i:05d}'] = {'lsp_joints_3d': joints.tolist(),
                                   'intri': [[1000.0, 0, 512], [0, 1000.0, 512], [0, 0, 1]],
                                   'bbox': [[100, 100], [300, 500]]}
    path = Path(root) / 'testset' / 'annots.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(annotations))
    return {k: np.array(v['lsp_joints_3d']) * 1000 / 7 for k, v in annotations.items()}
