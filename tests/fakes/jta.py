"""A tiny JTA release in the real layout: videos/{train,val,test}/seq_<n>.mp4 (1920x1080, bright dots at the
projected joints) and annotations/{split}/seq_<n>.json, a list of rows [frame (1-based), person id, joint id,
x2d, y2d, x3d, y3d, z3d (m, camera frame), occluded, self-occluded].

Per sequence: a walker (moves 150 mm per frame), a person standing still (the sampler drops repeats), a
person walking out of the image on the left, a far person (box under 100 px), and a person with joints
without rows (NaN). Some joints are flagged occluded. The camera looks slightly down (pitch 8 deg), so the
world up in camera coordinates is UP_CAM.

The still person (id 7) has its wrists, spine and legs occluded in frame 0 (HIDDEN_IN_FIRST_FRAME): its visible
box is still over 100 px tall, but a detector seeing the whole body gives a box more than twice its area, so with
a detector the original's rule leaves frame 0 unmatched (the parity review, jta (h): a sampler run before the
matching would take that frame as the reference and suppress the following, matchable ones)."""
import json
from pathlib import Path

import numpy as np

TEMPLATE_M = np.array([  # x right, y up, z forward; the 22 JTA joints in their order
    (0, 1.75, 0), (0, 1.62, 0), (0, 1.50, 0), (-0.08, 1.46, 0), (-0.20, 1.42, 0), (-0.26, 1.15, 0),
    (-0.29, 0.90, 0), (0.08, 1.46, 0), (0.20, 1.42, 0), (0.26, 1.15, 0), (0.29, 0.90, 0), (0, 1.38, 0.02),
    (0, 1.25, 0.03),
    (0, 1.12, 0.03), (0, 1.00, 0.02), (0, 0.95, 0), (-0.10, 0.92, 0), (-0.11, 0.50, 0.02), (-0.11, 0.08, 0),
    (0.10, 0.92, 0), (0.11, 0.50, 0.02), (0.11, 0.08, 0)])
PITCH = np.deg2rad(8)
CAMERA_HEIGHT_M = 1.6
ROT = np.array([[1, 0, 0], [0, np.cos(PITCH), -np.sin(PITCH)], [0, np.sin(PITCH), np.cos(PITCH)]])
UP_CAM = ROT @ np.array([0.0, -1.0, 0.0])
F, CX, CY = 1167.0, 960.0, 540.0
SIZE = (1920, 1080)
PERSON_IDS = (3, 7, 12, 40, 41)
HIDDEN_IN_FIRST_FRAME = {7: (6, 10, *range(11, 22))}  # person id: joints flagged occluded in frame 0


def to_camera(world_m):
    """World (y up, ground at 0, camera above the origin) -> camera frame (x right, y down, z forward), m."""
    flipped = np.asarray(world_m) * [1, -1, 1] + [0, CAMERA_HEIGHT_M, 0]
    return flipped @ ROT.T


def project(camera_m):
    return np.stack([F * camera_m[..., 0] / camera_m[..., 2] + CX, F * camera_m[..., 1] / camera_m[..., 2] + CY], -1)


def _people(n_frames, rng):
    """{person id: (n_frames, 22, 3) camera-frame metres}."""
    noise = lambda: rng.normal(0, 0.01, (n_frames, 22, 3))  # noqa: E731
    t = np.arange(n_frames)[:, None, None]
    return {
        3: TEMPLATE_M + [-1.0, 0, 6.0] + t * [0.15, 0, 0] + noise(),
        7: TEMPLATE_M + [1.2, 0, 5.0] + t * [0.02, 0, 0] + noise(),  # nearly still
        12: TEMPLATE_M + [-3.6, 0, 6.5] + t * [-0.35, 0, 0] + noise(),  # leaves on the left
        40: TEMPLATE_M + [2.0, 0, 25.0] + t * [0.3, 0, 0] + noise(),  # far: box < 100 px
        41: TEMPLATE_M + [0.3, 0, 9.0] + t * [0, 0, 0.15] + noise(),  # some joints without rows
    }


def _frame_image(points_px):
    height, width = SIZE[1], SIZE[0]
    canvas = np.full((height, width), 45.0, np.float32)
    for u, v in points_px:
        if 10 <= u < width - 10 and 10 <= v < height - 10:
            y0, x0 = int(v) - 8, int(u) - 8
            ys, xs = np.mgrid[y0:y0 + 17, x0:x0 + 17]
            canvas[y0:y0 + 17, x0:x0 + 17] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * 1.8 ** 2))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def write_fake_release(root, n_frames=6, splits=('train', 'val', 'test'), seed=0):
    """Writes $root/videos and $root/annotations (one sequence per split). Returns {split: dict(
    coords mm (n_frames, person ids, 22, 3) NaN where no row, occluded bool, person_ids)}."""
    from posepile.util.video import write_video
    rng = np.random.default_rng(seed)
    root = Path(root)
    written = {}
    for split in splits:
        people = {pid: to_camera(pose.reshape(-1, 3)).reshape(pose.shape)
                  for pid, pose in _people(n_frames, rng).items()}
        rows, images = [], [[] for _ in range(n_frames)]
        coords = np.full((n_frames, len(PERSON_IDS), 22, 3), np.nan)
        occluded = np.zeros((n_frames, len(PERSON_IDS), 22), bool)
        for p, pid in enumerate(PERSON_IDS):
            for frame in range(n_frames):
                for joint in range(22):
                    if pid == 41 and joint in (6, 10, 18) and frame % 2 == 0:
                        continue  # no row: the joint is missing
                    x, y, z = people[pid][frame, joint]
                    u, v = project(people[pid][frame, joint])
                    occ = int(rng.random() < 0.15)
                    if frame == 0 and joint in HIDDEN_IN_FIRST_FRAME.get(pid, ()):
                        occ = 1
                    rows.append([frame + 1, pid, joint, float(u), float(v), float(x), float(y), float(z), occ,
                                 int(rng.random() < 0.1)])
                    coords[frame, p, joint] = np.array([x, y, z]) * 1000
                    occluded[frame, p, joint] = occ == 1
                    images[frame].append((u, v))
        annotation = root / 'annotations' / split / 'seq_0.json'
        annotation.parent.mkdir(parents=True, exist_ok=True)
        annotation.write_text(json.dumps(rows))
        write_video(root / 'videos' / split / 'seq_0.mp4', (_frame_image(points) for points in images), fps=30,
                    quality=9)
        written[split] = dict(coords=coords, occluded=occluded, person_ids=np.array(PERSON_IDS))
    return written
