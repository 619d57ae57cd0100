"""A tiny DensePose-COCO release and a synthetic UV_Processed.mat.

Layout evidence: the annotation fields are DensePose's documented COCO format (detectron2
projects/DensePose/doc/DENSEPOSE_DATASETS.md and DensePose's challenge data_format.md: person annotations with
keypoints [x, y, v] * 17, bbox, iscrowd, segmentation polygons and, when DensePose-annotated, dp_masks (14
RLE part masks of 256 x 256), dp_I (charts 1..24), dp_U, dp_V in [0, 1] and dp_x, dp_y in 0..255 across the
box); the file name is the one DensePoseData/get_DensePose_COCO.sh downloads; images are COCO train2014 names
(COCO_train2014_<id:012d>.jpg) under $DATA_ROOT/coco/train2014. The UV file has the fields and shapes that
DensePose's detectron/utils/densepose_methods.py reads (All_FaceIndices (F, 1), All_Faces (F, 3) 1-based,
All_U_norm / All_V_norm (V, 1), All_vertices (1, V) 1-based SMPL ids); its charts here are a synthetic grid.
"""
import json
from pathlib import Path

import numpy as np

from posepile.util import improc

UV_GRID = 3  # each chart: a UV_GRID x UV_GRID grid of squares over [0, 1]^2, two triangles each
PARTIAL_CHART = 24  # this chart keeps only the triangles below the diagonal u + v = 1 (points above: nearest vertex)
ANNOTATION_FILE = 'densepose_coco_2014_train.json'
IMAGE_SHAPE = (240, 320)  # H, W


def synthetic_uv_layout(grid=UV_GRID, partial_chart=PARTIAL_CHART):
    """(chart_of_face (F,), faces (F, 3) 0-based, u (V,), v (V,), smpl_ids (V,) 0-based)."""
    charts, faces, us, vs, smpl_ids = [], [], [], [], []
    n_side = grid + 1
    for chart in range(1, 25):
        base = len(us)
        for j in range(n_side):
            for i in range(n_side):
                us.append(i / grid)
                vs.append(j / grid)
                smpl_ids.append((chart - 1) * n_side ** 2 + j * n_side + i + 7)  # a seam-free toy id map
        for j in range(grid):
            for i in range(grid):
                a, b = base + j * n_side + i, base + j * n_side + i + 1
                c, d = a + n_side, b + n_side
                for triangle, corner_sum in (((a, b, c), i + j + 1), ((b, d, c), i + j + 2)):
                    if chart == partial_chart and corner_sum > grid:  # a corner above u + v = 1
                        continue
                    charts.append(chart)
                    faces.append(triangle)
    return (np.array(charts), np.array(faces), np.array(us), np.array(vs), np.array(smpl_ids))


def write_uv_data(path):
    """A UV_Processed.mat in DensePose's layout (1-based indices, column/row vectors as MATLAB writes them)."""
    from scipy.io import savemat
    charts, faces, u, v, smpl_ids = synthetic_uv_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), {'All_FaceIndices': charts[:, None].astype(np.float64),
                        'All_Faces': (faces + 1).astype(np.float64),
                        'All_U_norm': u[:, None], 'All_V_norm': v[:, None],
                        'All_vertices': (smpl_ids + 1)[None, :].astype(np.float64)})
    return path


def _keypoints(x0, y0, w, h, v):
    xs = x0 + w * np.array([.5, .45, .55, .4, .6, .3, .7, .2, .8, .15, .85, .35, .65, .35, .65, .35, .65])
    ys = y0 + h * np.array([.08, .06, .06, .08, .08, .22, .22, .38, .38, .52, .52, .55, .55, .75, .75, .95, .95])
    v = np.asarray(v)
    return np.stack([np.where(v > 0, xs, 0), np.where(v > 0, ys, 0), v], 1)


def _densepose_points(rng, n):
    charts = rng.integers(1, 25, n)
    return {'dp_I': charts.astype(float).tolist(), 'dp_U': rng.uniform(0, 1, n).tolist(),
            'dp_V': rng.uniform(0, 1, n).tolist(), 'dp_x': rng.uniform(0, 255, n).tolist(),
            'dp_y': rng.uniform(0, 255, n).tolist(),
            'dp_masks': [{'counts': 'PPP1', 'size': [256, 256]}] + [[] for _ in range(13)]}


# per image: persons (box [x, y, w, h], visibility flags of the 17 keypoints, with DensePose points?, crowd?)
ALL_VISIBLE = [2] * 17
FACE_AND_FOUR_LIMBS = [2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0]  # 9 labelled, only 4 limb joints
FEW_VISIBLE = [1] * 12 + [2] * 5  # 17 labelled, 5 visible (< 17 / 3)
SEVEN_LIMBS = [0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0]  # 7 limb joints, 7 labelled (< 17 / 2)
NINE_LABELLED = [2, 2, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0]  # 9 labelled, 7 limb joints: kept
LAYOUT = [
    [([20.3, 30.6, 120.2, 190.4], ALL_VISIBLE, True, False), ([170.5, 20.2, 110.0, 200.7], NINE_LABELLED, True, False)],
    [([40.0, 10.0, 100.0, 180.0], ALL_VISIBLE, False, False),  # no DensePose points
     ([160.0, 20.0, 120.0, 200.0], FACE_AND_FOUR_LIMBS, True, False)],
    [([10.0, 10.0, 90.0, 150.0], FEW_VISIBLE, True, False), ([120.0, 30.0, 80.0, 170.0], SEVEN_LIMBS, True, False),
     ([230.4, 40.2, 95.3, 180.0], ALL_VISIBLE, True, False),  # the rounded box crosses the right border (x 325)
     ([20.0, 160.0, 100.0, 70.0], [0] * 17, True, True)],  # a crowd region
]


def write_fake_release(data_root, seed=0, n_points=12):
    """Writes densepose_coco/{densepose_coco_2014_train.json, UV_data/UV_Processed.mat} and
    coco/train2014/*.jpg under data_root; returns (images, annotations) as written."""
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    root = data_root / 'densepose_coco'
    root.mkdir(parents=True, exist_ok=True)
    write_uv_data(root / 'UV_data' / 'UV_Processed.mat')
    images, annotations = [], []
    ann_id = 100
    for i, persons in enumerate(LAYOUT):
        image_id = 500 + i
        file_name = f'COCO_train2014_{image_id:012d}.jpg'
        height, width = IMAGE_SHAPE
        images.append({'id': image_id, 'file_name': file_name, 'height': height, 'width': width})
        ys, xs = np.mgrid[:height, :width]
        canvas = (40 + 60 * np.sin(xs / 9.0)[..., None] + 50 * np.cos(ys / 7.0)[..., None]).clip(0, 255)
        improc.write_jpeg_atomic(data_root / 'coco' / 'train2014' / file_name,
                                 np.repeat(canvas, 3, axis=2).astype(np.uint8), 95)
        for box, flags, dense, crowd in persons:
            x, y, w, h = box
            keypoints = _keypoints(x, y, w, h, flags)
            annotation = {'id': ann_id, 'image_id': image_id, 'category_id': 1, 'iscrowd': int(crowd),
                          'keypoints': keypoints.ravel().tolist(), 'num_keypoints': int(np.sum(keypoints[:, 2] > 0)),
                          'bbox': box, 'area': w * h,
                          'segmentation': [[x, y, x + w, y, x + w, y + h, x, y + h]]}
            if dense:
                annotation.update(_densepose_points(rng, n_points))
            annotations.append(annotation)
            ann_id += 1
    categories = [{'supercategory': 'person', 'id': 1, 'name': 'person'}]
    (root / ANNOTATION_FILE).write_text(json.dumps({'images': images, 'annotations': annotations,
                                                    'categories': categories}))
    return images, annotations
