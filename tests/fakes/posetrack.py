"""A tiny PoseTrack 2018 release in the official layout: <annotation dir>/{train,val}/<sequence>.json with
categories (17 keypoint names, skeleton), images (file_name, id, frame_id, vid_id, nframes, is_labeled,
ignore_regions_x/y, mask_file, has_no_densepose, width, height) and annotations (keypoints 17 x [x, y, v] with
v in {0, 1}, bbox, bbox_head, track_id, num_keypoints, scores, iscrowd, category_id, id, image_id), plus
images/{train,val}/<sequence>/<frame:06d>.jpg with bright dots at the visible keypoints.

The annotation dir is `posetrack_data/annotations` (as the official label archive extracts: the original
PosePile reads that path, and the PoseTrack21 dataset_structure.md shows the same posetrack_data/{train,val}
tree) or `annotations` (the same files moved up; the layout of the real sample in shared/realdata/posetrack18,
from mmpose's tests/data). The JSON fields follow the real sample files.

Tracks are designed for the frame selection: a walker moving 7 px per frame, a jitterer whose joints each
move less than the threshold (0.5 x head diagonal = 14.1 px) but together much more, and one whose
ankle becomes visible mid-track. One val track has no `bbox` (the original drops such annotations).
`write_detections` writes a detect-stage file (not part of the release) with chosen misses."""
import json
from pathlib import Path

import numpy as np

from posepile.util import improc

KEYPOINT_NAMES = ['nose', 'head_bottom', 'head_top', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
                  'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
                  'left_knee', 'right_knee', 'left_ankle', 'right_ankle']
SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
            [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
WIDTH, HEIGHT = 480, 270
BACKGROUND = 45
HEAD_BOX_SIDE = 20.0  # px, diagonal 28.3 px -> selection threshold 14.1 px
JITTER_RADIUS = 5.0  # px: two jittered positions of a joint are at most 10 px apart
# unit pose (x relative to the box width, y to the height) of a standing person
_TEMPLATE = np.array([[.50, .08], [.50, .14], [.50, .00], [.38, .07], [.62, .07], [.25, .20], [.75, .20],
                      [.15, .38], [.85, .38], [.10, .54], [.90, .54], [.32, .54], [.68, .54], [.30, .76],
                      [.70, .76], [.30, .98], [.70, .98]])
SEQUENCES = {'train': ['000001_bonn_train', '000002_mpii_train'], 'val': ['003418_mpii_test']}
N_FRAMES = 10  # per sequence; every frame except the last is labelled


def _pose(x0, y0, width=90.0, height=200.0):
    return _TEMPLATE * [width, height] + [x0, y0]


def _track_poses(kind, rng, n):
    """(n, 17, 2) px and (n, 17) visibility for one track."""
    visible = rng.random(17) > 0.2
    visible[[0, 1, 5, 6]] = True
    vis = np.tile(visible, (n, 1))
    if kind == 'walker':
        poses = np.stack([_pose(30 + 7 * i, 40) for i in range(n)])
    elif kind == 'jitter':
        radius, angle = JITTER_RADIUS * np.sqrt(rng.random((n, 17))), rng.uniform(0, 2 * np.pi, (n, 17))
        poses = _pose(190, 35) + np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=-1)
    else:  # 'appearing': static, right ankle becomes visible at frame 3
        poses = np.stack([_pose(350, 45)] * n)
        vis[:, 16] = np.arange(n) >= 3
    return poses, vis.astype(int)


def _image_entry(split, sequence, index, labeled):
    vid = sequence.split('_')[0]
    frame_id = int(f'1{vid}{index:04d}')
    return {'has_no_densepose': True, 'is_labeled': labeled,
            'file_name': f'images/{split}/{sequence}/{index:06d}.jpg', 'nframes': N_FRAMES,
            'frame_id': frame_id, 'vid_id': vid, 'ignore_regions_y': [[0, 0, 20, 20]],
            'ignore_regions_x': [[0, 10, 10, 0]], 'id': frame_id, 'width': WIDTH, 'height': HEIGHT,
            'mask_file': f'mask/{split}/{sequence}/{index:06d}.jpg'}


def _annotation(image, track_id, pose, vis, with_bbox):
    keypoints = np.concatenate([np.where(vis[:, None] > 0, pose, 0), vis[:, None]], axis=1)
    head = pose[1] + [-HEAD_BOX_SIDE / 2, -HEAD_BOX_SIDE]
    valid = pose[vis > 0]
    annotation = {'bbox_head': [float(head[0]), float(head[1]), HEAD_BOX_SIDE, HEAD_BOX_SIDE],
                  'keypoints': keypoints.ravel().tolist(), 'track_id': track_id, 'image_id': image['id'],
                  'scores': [], 'category_id': 1, 'id': image['id'] * 100 + track_id, 'iscrowd': False,
                  'num_keypoints': int(vis.sum())}
    if with_bbox:
        (x1, y1), (x2, y2) = valid.min(0) - 8, valid.max(0) + 8
        annotation['bbox'] = [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]
    return annotation


def _draw(people):
    canvas = np.full((HEIGHT, WIDTH), float(BACKGROUND), np.float32)
    ys, xs = np.mgrid[:HEIGHT, :WIDTH]
    for pose, vis in people:
        for (u, v), flag in zip(pose, vis):
            if flag == 1:
                canvas += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * 1.5 ** 2))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


ANNOTATION_DIRS = ('annotations', 'posetrack_data/annotations')


def write_fake_release(root, seed=0, annotation_dir='annotations'):
    """Returns {split: {sequence: [person dicts]}}, each with id, track_id, frame_index, file_name,
    keypoints (17, 3), head_diagonal (px), has_bbox and bbox (None without), in the order written."""
    assert annotation_dir in ANNOTATION_DIRS
    rng = np.random.default_rng(seed)
    root = Path(root)
    categories = [{'supercategory': 'person', 'id': 1, 'name': 'person', 'keypoints': KEYPOINT_NAMES,
                   'skeleton': SKELETON}]
    written = {}
    for split, sequences in SEQUENCES.items():
        written[split] = {}
        for s, sequence in enumerate(sequences):
            kinds = ['walker', 'jitter', 'appearing'] if s == 0 else ['jitter', 'walker']
            tracks = [_track_poses(kind, rng, N_FRAMES) for kind in kinds]
            images, annotations, people = [], [], []
            for index in range(N_FRAMES):
                labeled = index < N_FRAMES - 1
                image = _image_entry(split, sequence, index, labeled)
                images.append(image)
                frame_people = [(poses[index], vis[index]) for poses, vis in tracks] if labeled else []
                for track_id, (pose, vis) in enumerate(frame_people):
                    with_bbox = not (split == 'val' and track_id == 1)
                    annotation = _annotation(image, track_id, pose, vis, with_bbox)
                    annotations.append(annotation)
                    people.append({'id': annotation['id'], 'track_id': track_id, 'frame_index': index,
                                   'keypoints': np.array(annotation['keypoints']).reshape(17, 3),
                                   'head_diagonal': float(np.hypot(HEAD_BOX_SIDE, HEAD_BOX_SIDE)),
                                   'has_bbox': with_bbox, 'bbox': annotation.get('bbox'),
                                   'file_name': image['file_name'], 'sequence': sequence})
                improc.write_jpeg_atomic(root / image['file_name'], _draw(frame_people), 98)
            path = root / annotation_dir / split / f'{sequence}.json'
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({'categories': categories, 'images': images, 'annotations': annotations}))
            written[split][sequence] = people
    return written


# people without a matching detection: (sequence, track_id, frame_index) -> why
MISSED = {('000001_bonn_train', 2, 3): 'no detection',  # the appearing track's ankle frame: frame 4 takes over
          ('000002_mpii_train', 1, 0): 'a small detection on the head (IoU < 0.1)',
          ('003418_mpii_test', 0, 4): 'no detection'}


def detection_box(person):
    """The detection of a matched person: its annotation box shifted and grown a little (IoU about 0.8)."""
    x, y, w, h = person['bbox']
    return [x - 4.0, y + 3.0, w * 1.08, h * 1.05]


def write_detections(path, written):
    """{image file_name: float32 (N, 5) [x, y, w, h, score]}: per frame a spurious box far from everyone, then
    per person with a bbox its detection (score 0.6 + id / 1e6, unique) unless MISSED says otherwise."""
    from posepile.util import fileio
    detections = {}
    for sequences in written.values():
        for sequence, people in sequences.items():
            for person in people:
                rows = detections.setdefault(person['file_name'], [[WIDTH - 30.0, HEIGHT - 30.0, 25.0, 25.0, 0.95]])
                if not person['has_bbox']:
                    continue
                why = MISSED.get((sequence, person['track_id'], person['frame_index']))
                if why == 'no detection':
                    continue
                box = detection_box(person)
                if why is not None:  # 20 x 20 px inside the person's box: IoU about 0.02
                    x, y, w, _ = person['bbox']
                    box = [x + w / 2 - 10, y, 20.0, 20.0]
                rows.append([*box, 0.6 + person['id'] / 1e6])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fileio.save_pickle({k: np.array(v, np.float32) for k, v in detections.items()}, path)
