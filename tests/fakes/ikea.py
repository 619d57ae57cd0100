"""A tiny IKEA ASM release in the raw layout (see posepile/ds/ikea/main.py): Calibration/camera_parameters.pkl
({calibration id: {dev: {'K', 'R', ...}}}), <furniture>/<recording>/<dev>/images/scan_video.avi (1920x1080,
H.264 in AVI via PyAV) whose frame i shows a bright dot at each joint of the annotated pose of frame i, and
<furniture>/<recording>/<dev>/pose3d/<frame:06d>.json (camera coordinates, cm, [x, y, z, confidence] x 17,
zeros for missing joints). Only some video frames are annotated; one recording lies in 'special_test'."""
import json
import pickle
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 1920, 1080
BACKGROUND = 45
DOT_SIGMA = 2.5
FPS = 25
# COCO-17 body frame (cm): x right of the image, y down, z away from the camera
TEMPLATE_CM = np.array([
    [0, -160, 0], [-3, -163, -2], [3, -163, -2], [-7, -161, 3], [7, -161, 3], [-18, -140, 0], [18, -140, 0],
    [-24, -112, 0], [24, -112, 0], [-28, -86, -2], [28, -86, -2], [-11, -90, 0], [11, -90, 0], [-12, -48, 0],
    [12, -48, 0], [-13, -8, 0], [13, -8, 0]], np.float64)
# (furniture, recording, dev, n video frames, annotated frames, placement)
RECORDINGS = [
    ('Kallax_Shelf_Drawer', '0001_white_floor_05_04_2019_08_28_10_47', 'dev3', 14,
     list(range(0, 14)), 'walk'),
    ('Lack_TV_Bench', '0007_oak_table_02_01_2019_08_16_14_00', 'dev1', 12,
     [0, 1, 2, 4, 5, 7, 8, 9, 10, 11], 'walk_partly_out'),
    ('Lack_TV_Bench', 'special_test', 'dev1', 6, list(range(6)), 'walk'),
]


def make_cameras():
    """{calibration id: {dev: {'K', 'R', 'T' (unused by the recipe)}}}."""
    def rotation(yaw, pitch):
        cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
        return np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]]) @ np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    cameras = {}
    for calib_id, yaw in (('02', 0.3), ('05', -0.5)):
        cameras[calib_id] = {
            dev: {'K': np.array([[1050.0 + 7 * k, 0, 960.5 - 4 * k], [0, 1048.0 + 6 * k, 541.2 + 3 * k], [0, 0, 1]]),
                  'R': rotation(yaw + 0.4 * k, 0.1 * k), 'T': np.zeros(3)}
            for k, dev in enumerate(('dev1', 'dev2', 'dev3'))}
    return cameras


def make_poses(n_frames, placement, seed):
    """(n_frames, 17, 3) camera coordinates in cm: the person walks sideways (6 cm per frame) with pauses;
    'walk_partly_out' starts at the right image border (frame 0: < 4 joints inside); some joints missing."""
    rng = np.random.default_rng(seed)
    steps = np.array([6.0 if i % 5 != 3 else 0.5 for i in range(n_frames)])  # a pause every 5th frame
    x = np.cumsum(steps) - steps[0]
    poses = np.repeat(TEMPLATE_CM[np.newaxis], n_frames, axis=0) + rng.normal(0, 0.2, (n_frames, 17, 3))
    start = 400.0 if placement == 'walk_partly_out' else -30.0
    poses[:, :, 0] += start - (x[:, None] * (2 if placement == 'walk_partly_out' else 1))
    poses[:, :, 2] += 350.0
    poses[:, :, 1] += 70.0
    if n_frames > 4:
        poses[2, [3, 4]] = 0.0  # ears missing in frame 2 (zeros in the file)
        poses[4, 9] = 0.0
    return poses


def project(K, points_cam):
    return (points_cam[:, :2] / points_cam[:, 2:3]) @ K[:2, :2].T + K[:2, 2]


def _frame(points_px):
    image = np.full((HEIGHT, WIDTH), float(BACKGROUND), np.float32)
    for u, v in points_px:
        if not (np.isfinite(u) and np.isfinite(v) and 0 <= u < WIDTH and 0 <= v < HEIGHT):
            continue
        y0, y1, x0, x1 = max(0, int(v) - 9), min(HEIGHT, int(v) + 10), max(0, int(u) - 9), min(WIDTH, int(u) + 10)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        image[y0:y1, x0:x1] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * DOT_SIGMA ** 2))
    return np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def write_avi(path, frames, fps=FPS):
    """H.264 in an AVI container (PyAV), near-lossless."""
    import av
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), 'w', format='avi') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, 'yuv420p'
        stream.options = {'crf': '8', 'preset': 'ultrafast'}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_fake_release(root, recordings=None):
    """Writes $root (= $DATA_ROOT/ikea); returns dict(cameras={calib id: {dev: {K, R}}},
    poses={(furniture, recording, dev): {frame: (17, 3) cm with zeros}}, calib_of={recording: id})."""
    root = Path(root)
    recordings = recordings or RECORDINGS
    cameras = make_cameras()
    (root / 'Calibration').mkdir(parents=True, exist_ok=True)
    with open(root / 'Calibration' / 'camera_parameters.pkl', 'wb') as f:
        pickle.dump(cameras, f)
    written = {'cameras': cameras, 'poses': {}}
    for i, (furniture, recording, dev, n_frames, annotated, placement) in enumerate(recordings):
        calib_id = recording.split('_')[3] if recording != 'special_test' else '02'
        K = cameras[calib_id][dev]['K']
        poses = make_poses(n_frames, placement, seed=i)
        base = root / furniture / recording / dev
        (base / 'pose3d').mkdir(parents=True, exist_ok=True)
        for frame in annotated:
            values = np.concatenate([poses[frame], np.where(poses[frame][:, :1] == 0, 0, 0.9)], axis=1)
            (base / 'pose3d' / f'{frame:06d}.json').write_text(json.dumps(
                {'pose_keypoints_3d': values.reshape(-1).tolist()}))
        frames = (_frame(project(K, np.where(poses[j] == 0, np.nan, poses[j]))) for j in range(n_frames))
        write_avi(base / 'images' / 'scan_video.avi', frames)
        written['poses'][(furniture, recording, dev)] = {frame: poses[frame] for frame in annotated}
    return written
