"""A tiny JRDB-Pose release in the official layout under train_dataset/:
- calibration/cameras.yaml as in the JRDB toolkit: a `stitching` block, then `cameras:` with sensor_0..sensor_9
  (width, height, D as one line of 5 numbers, K and R as folded `>` blocks of 3 lines, T one line, comments);
- labels/labels_2d_pose_coco/<sequence>_image<N>.json (per camera) and labels/labels_2d_pose_stitched_coco/
  <sequence>.json, COCO style as the real stitched file (licenses, info, categories with the 17 JRDB keypoint
  names and skeleton, images {id, width 752, height 480 (also for the panorama), file_name, license, flickr_url,
  coco_url, date_captured}, annotations {id, track_id, image_id, category_id, is_crowd, keypoints 17 x [x, y, v]
  with v 0/1/2, num_keypoints}, no bbox), written with json.dumps(indent=4);
- images/image_<N>/<sequence>/<frame:06d>.jpg (752 x 480) and images/image_stitched/... (3760 x 480).
The labels are two frames behind the images (label frame f is drawn in image f + 2; images 0 and 1 show where
the people were before). Bright dots at the labelled keypoints."""
import json
from pathlib import Path

import numpy as np

from posepile.util import improc

KEYPOINT_NAMES = ['head', 'right eye', 'left eye', 'right shoulder', 'center shoulder', 'left shoulder',
                  'right elbow', 'left elbow', 'center hip', 'right wrist', 'right hip', 'left hip', 'left wrist',
                  'right knee', 'left knee', 'right foot', 'left foot']
SKELETON = [[1, 2], [0, 4], [3, 4], [8, 10], [5, 7], [10, 13], [14, 16], [4, 5], [7, 12], [4, 8], [3, 6],
            [13, 15], [11, 14], [6, 9], [8, 11]]
WIDTH, HEIGHT, STITCHED_WIDTH = 752, 480, 3760
BACKGROUND = 45
SEQUENCE = 'bytes-cafe-2019-02-07_0'
CAMERAS = ['image_0', 'image_2']
N_FRAMES = 6  # labelled frames 0..5 -> images 2..7
WALK_STEP = 8.0  # px per frame; threshold 0.1 x 1.15 x 180 px = 20.7 px
_TEMPLATE = np.array([[.50, .00], [.42, .06], [.58, .06], [.20, .20], [.50, .20], [.80, .20], [.10, .38],
                      [.90, .38], [.50, .55], [.02, .56], [.30, .55], [.70, .55], [.98, .56], [.30, .77],
                      [.70, .77], [.30, .99], [.70, .99]])
PERSON_W, PERSON_H, TOP = 80.0, 180.0, 150.0

_CAMERAS_YAML_HEAD = """stitching:
  radius: 3360000
  rotation: 0
  scalewidth: 1831
  crop: 1
cameras:
  # camera order matters!
"""


def _sensor_yaml(i):
    angle = np.deg2rad(72.0 * (i % 5))
    c, s = np.cos(angle), np.sin(angle)
    R = np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])
    K = [[480.0 + i, 0, 350.0 + 2 * i], [0, 483.0 + i, 205.0 + i], [0, 0, 1]]
    D = [-0.336, 0.158, 0.00012, -7.2e-05, -0.045]
    T = [0.1 * i, -4.0 - 123.0 * (i >= 5), -55.0]
    rows = lambda m: ''.join(f'      {" ".join(f"{v:.6g}" for v in row)}\n' for row in m)  # noqa: E731
    return (f'  sensor_{i}:\n    width: 752\n    height: 480\n    D: {" ".join(f"{v:.6g}" for v in D)}\n'
            + ('    # K = fx   0    cx\n    #     0    fy   cy\n    #     0    0    1\n' if i == 0 else '')
            + f'    K: >\n{rows(K)}    R: >\n{rows(R)}    T: {" ".join(f"{v:.6g}" for v in T)}\n')


def _pose(x0, y0=TOP):
    return np.round(_TEMPLATE * [PERSON_W, PERSON_H] + [x0, y0], 1)


def _tracks(rng, x_offset, frames):
    """{track_id: (poses (F, 17, 2), visibility (F, 17))} for label frames `frames` (may be negative)."""
    f = np.asarray(frames, float)
    n = len(f)
    v = np.where(rng.random(17) < 0.3, 1, 2)
    walker = np.stack([_pose(x_offset + 120 + WALK_STEP * k) for k in f])
    static = np.stack([_pose(x_offset + 330)] * n)
    static_vis = np.tile(v, (n, 1))
    static_vis[:, 15] = np.where(f >= 2, 2, 0)  # right foot labelled from frame 2 on
    jitter = _pose(x_offset + 520) + rng.uniform(-2, 2, (n, 17, 2)).round(1)
    return {1: (walker, np.tile(v, (n, 1))), 4: (static, static_vis), 7: (jitter, np.tile(v, (n, 1)))}


def _draw(poses_and_vis, width):
    canvas = np.full((HEIGHT, width), float(BACKGROUND), np.float32)
    for pose, vis in poses_and_vis:
        for (x, y), v in zip(pose, vis):
            if v > 0:
                x0, y0 = int(x) - 8, int(y) - 8
                ys, xs = np.mgrid[max(y0, 0):min(y0 + 17, HEIGHT), max(x0, 0):min(x0 + 17, width)]
                canvas[ys, xs] += 200 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5 ** 2))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _label_file(image_dir, sequence, tracks, n_frames, first_image_id, first_annotation_id):
    images, annotations, people = [], [], []
    for frame in range(n_frames):
        image = {'id': first_image_id + frame, 'width': WIDTH, 'height': HEIGHT,
                 'file_name': f'{image_dir}/{sequence}/{frame:06d}.jpg', 'license': 0, 'flickr_url': '',
                 'coco_url': '', 'date_captured': 0}
        images.append(image)
        for track_id, (poses, vis) in tracks.items():
            keypoints = np.concatenate([np.where(vis[frame][:, None] > 0, poses[frame], 0),
                                        vis[frame][:, None]], axis=1)
            annotation = {'id': first_annotation_id + len(annotations), 'track_id': track_id,
                          'image_id': image['id'], 'category_id': 1, 'is_crowd': 0,
                          'keypoints': keypoints.ravel().tolist(), 'num_keypoints': int((vis[frame] > 0).sum())}
            annotations.append(annotation)
            people.append({'id': annotation['id'], 'track_id': track_id, 'image_dir': image_dir, 'frame': frame,
                           'keypoints': keypoints})
    categories = [{'id': 1, 'name': 'person', 'keypoints': KEYPOINT_NAMES, 'skeleton': SKELETON}]
    content = {'licenses': [{'name': '', 'id': 0, 'url': ''}],
               'info': {'contributor': '', 'date_created': '', 'description': 'JRDB-Pose',
                        'url': 'https://jrdb.erc.monash.edu/', 'version': '1.0', 'year': '2022'},
               'categories': categories, 'images': images, 'annotations': annotations}
    return content, people


def _write_view(root, image_dir, label_path, tracks_of_frames, width, n_frames, ids):
    """Labels for frames 0..n-1 and images 0..n+1 (image f + 2 shows label frame f)."""
    frames = list(range(-2, n_frames))
    tracks = tracks_of_frames(frames)
    labelled = {t: (poses[2:], vis[2:]) for t, (poses, vis) in tracks.items()}
    content, people = _label_file(image_dir, SEQUENCE, labelled, n_frames, *ids)
    label_path.parent.mkdir(parents=True, exist_ok=True)
    label_path.write_text(json.dumps(content, indent=4))
    for k, frame in enumerate(frames):
        image = _draw([(poses[k], vis[k]) for poses, vis in tracks.values()], width)
        improc.write_jpeg_atomic(root / 'images' / image_dir / SEQUENCE / f'{frame + 2:06d}.jpg', image, 98)
    return people


def write_fake_release(jrdb_root, seed=0, stitched=True):
    """Writes $DATA_ROOT/jrdb/train_dataset/...; returns {'camera': [people], 'stitched': [people]}, each person
    a dict with id, track_id, image_dir, frame (LABEL index) and keypoints (17, 3)."""
    rng = np.random.default_rng(seed)
    root = Path(jrdb_root) / 'train_dataset'
    (root / 'calibration').mkdir(parents=True, exist_ok=True)
    (root / 'calibration' / 'cameras.yaml').write_text(
        _CAMERAS_YAML_HEAD + ''.join(_sensor_yaml(i) for i in range(10)))
    written = {'camera': [], 'stitched': []}
    for i, image_dir in enumerate(CAMERAS):
        seed_i = int(rng.integers(1 << 30))
        label_path = root / 'labels' / 'labels_2d_pose_coco' / f'{SEQUENCE}_image{image_dir.split("_")[1]}.json'
        written['camera'] += _write_view(root, image_dir, label_path,
                                         lambda frames: _tracks(np.random.default_rng(seed_i), 0, frames),
                                         WIDTH, N_FRAMES, (1, 1000 * (i + 1)))
    if stitched:
        label_path = root / 'labels' / 'labels_2d_pose_stitched_coco' / f'{SEQUENCE}.json'
        written['stitched'] = _write_view(root, 'image_stitched', label_path,
                                          lambda frames: _tracks(np.random.default_rng(seed + 7), 2000, frames),
                                          STITCHED_WIDTH, 4, (1, 1))
    return written
