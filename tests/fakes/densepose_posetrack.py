"""A tiny DensePose-PoseTrack release.

Layout evidence: no DensePose-PoseTrack file is public outside its Dropbox links, so the fields follow DensePose's
challenge/2018_PoseTrack_DensePose/data_format.md (images {id, width, height, file_name, has_no_densepose,
is_labeled, vid_id, frame_id, nframes}, annotations {bbox, dp_I, dp_U, dp_V, dp_masks, dp_x, dp_y, id,
image_id, iscrowd, keypoints, segmentation, track_id}); the file names are the ones
PoseTrack/get_DensePose_PoseTrack.sh downloads; the PoseTrack 2017 folder names of file_name
(images/<set>/<sequence>_<source>/<frame:08d>.jpg) and the frames' PoseTrack 2018 location
(posetrack/images/<phase>/<seq:06d>_<source>_<phase>/<frame_id:06d>.jpg) are the original PosePile's rule
(original-posepile-facts.md); keypoints carry PoseTrack's single visibility flag (0 / 1). The UV file is the
densepose_coco fake's synthetic one, at $DATA_ROOT/densepose_coco/UV_data/.
"""
import json
from pathlib import Path

import numpy as np

from posepile.util import improc
from tests.fakes import densepose_coco as dp_fake

IMAGE_SHAPE = (180, 240)
ALL = [1] * 17
FEW_LIMBS = [1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]  # 9 labelled, 4 limb joints
FEW_LABELLED = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]  # 8 labelled (< 17 / 2)
# phase: per frame (sequence folder, frame_id, persons: (box, flags, with DensePose points, crowd))
LAYOUT = {
    'train': [('000001_bonn', 0, [([20.2, 10.5, 80.0, 150.0], ALL, True, False),
                                  ([120.0, 20.0, 90.0, 140.0], FEW_LIMBS, True, False)]),
              ('000001_bonn', 4, [([25.0, 12.0, 82.0, 150.0], ALL, True, False),
                                  ([130.0, 15.0, 80.0, 150.0], ALL, False, False)]),  # no DensePose points
              ('000342_mpii', 10003420007, [([60.0, 20.0, 100.0, 150.0], FEW_LABELLED, True, False),
                                            ([170.0, 30.0, 75.0, 140.0], ALL, True, False)])],  # 2018-style id
    'val': [('000522_mpii_val', 2, [([40.0, 20.0, 90.0, 150.0], ALL, True, False),
                                     ([140.0, 20.0, 80.0, 150.0], [0] * 17, True, True)])],  # crowd
}


def frame_path(phase, folder, frame_id):
    """Where the original expects the frame (re-stated here for the test)."""
    sequence, source = folder.split('_', 1)
    source = source[:-len(phase) - 1] if source.endswith('_' + phase) else source
    frame = frame_id % 10 ** 4 if frame_id >= 10 ** 10 else frame_id
    return f'posetrack/images/{phase}/{int(sequence):06d}_{source}_{phase}/{frame:06d}.jpg'


def write_fake_release(data_root, seed=0, n_points=10):
    """Writes densepose_posetrack/densepose_posetrack_{train,val}2017.json, the UV file and the frames;
    returns {phase: (images, annotations)}."""
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    root = data_root / 'densepose_posetrack'
    root.mkdir(parents=True, exist_ok=True)
    dp_fake.write_uv_data(data_root / 'densepose_coco' / 'UV_data' / 'UV_Processed.mat')
    written = {}
    ann_id = 1
    for phase, frames in LAYOUT.items():
        images, annotations = [], []
        for k, (folder, frame_id, persons) in enumerate(frames):
            image_id = 10 * (1 + list(LAYOUT).index(phase)) + k
            height, width = IMAGE_SHAPE
            images.append({'id': image_id, 'width': width, 'height': height, 'vid_id': int(folder.split('_')[0]),
                           'frame_id': frame_id, 'nframes': 30, 'is_labeled': True,
                           'file_name': f'images/bonn_mpii_{phase}_5sec/{folder}/{frame_id % 10 ** 4 + 1:08d}.jpg'})
            ys, xs = np.mgrid[:height, :width]
            canvas = (60 + 50 * np.sin(xs / 7.0 + k) + 40 * np.cos(ys / 5.0)).clip(0, 255).astype(np.uint8)
            improc.write_jpeg_atomic(data_root / frame_path(phase, folder, frame_id),
                                     np.repeat(canvas[..., None], 3, axis=2), 95)
            for box, flags, dense, crowd in persons:
                x, y, w, h = box
                keypoints = dp_fake._keypoints(x, y, w, h, flags)
                annotation = {'id': ann_id, 'image_id': image_id, 'category_id': 1, 'iscrowd': int(crowd),
                              'keypoints': keypoints.ravel().tolist(), 'bbox': box, 'area': w * h,
                              'track_id': len(annotations) % 2,
                              'segmentation': [[x, y, x + w, y, x + w, y + h, x, y + h]]}
                if dense:
                    annotation.update(dp_fake._densepose_points(rng, n_points))
                annotations.append(annotation)
                ann_id += 1
        categories = [{'supercategory': 'person', 'id': 1, 'name': 'person'}]
        (root / f'densepose_posetrack_{phase}2017.json').write_text(
            json.dumps({'images': images, 'annotations': annotations, 'categories': categories}))
        written[phase] = (images, annotations)
    return written
