"""A tiny Fit3D / CHI3D / HumanSC3D release in the real layout (see posepile/ds/imar/main.py):
<name>_info.json, train/<subject>/joints3d_25/<action>.json (metres, 200 Hz; CHI3D (2, T, 25, 3)),
train/<subject>/camera_parameters/<camera>/<action>.json and 50 fps H.264 videos whose frame i shows a
bright dot at each joint of mocap frame 4*i, projected with the IMAR toolkit's lens model (restated here
independently of posepile's Camera). Camera 50591643 is the real Fit3D calibration when the real sample is
available."""
import json
from pathlib import Path

import numpy as np

CAMERA_IDS = ('50591643', '58860488', '60457274', '65906101')
REAL_CAMERA = 'fit3d/train/s03/camera_parameters/50591643/band_pull_apart.json'
SIZE = 900  # the videos are 900 x 900
BACKGROUND = 45
DOT_SIGMA = 2.0
# {dataset: {subject: {action: number of mocap frames}}}; 'sXX' test subjects are listed but not train
SEQUENCES = {
    'fit3d': {'s03': {'band_pull_apart': 150}, 's04': {'squat': 110}},
    'chi3d': {'s02': {'Grab 4': 120}},
    'humansc3d': {'s01': {'001': 90}},
}
TEST_SUBJECTS = {'fit3d': 's11', 'chi3d': 's04', 'humansc3d': 's06'}
EXTRA_VIDEO_FRAMES = {'fit3d': 0, 'chi3d': 2, 'humansc3d': 0}  # videos may run past the mocap

# joints3d_25 order: pelv,lhip,lkne,lank,rhip,rkne,rank,spin,neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri,
# lfoo,ltoe,rfoo,rtoe,lthu,lfin,rthu,rfin; body frame metres (x: the person's left, y: forward, z: up)
TEMPLATE_M = np.array([
    [0, 0, .95], [.12, 0, .92], [.14, 0, .52], [.15, 0, .1], [-.12, 0, .92], [-.14, 0, .52], [-.15, 0, .1],
    [0, 0, 1.2], [0, 0, 1.48], [0, .02, 1.62], [0, 0, 1.78], [.2, 0, 1.45], [.48, 0, 1.45], [.74, 0, 1.45],
    [-.2, 0, 1.45], [-.48, 0, 1.45], [-.74, 0, 1.45], [.15, .1, .04], [.15, .22, .03], [-.15, .1, .04],
    [-.15, .22, .03], [.8, .06, 1.45], [.86, 0, 1.45], [-.8, .06, 1.45], [-.86, 0, 1.45]])


def toolkit_project(points_m, camera):
    """The toolkit's project_3d_to_2d(w_distortion) of world points (N, 3) metres with a camera JSON dict."""
    intr = camera['intrinsics_w_distortion']
    R, T = np.array(camera['extrinsics']['R']), np.array(camera['extrinsics']['T'])
    pc = (points_m - T) @ R.T
    p = np.array(intr['p'])[:, [1, 0]]
    x = pc[:, :2] / pc[:, 2:3]
    r2 = np.sum(x ** 2, axis=1)
    radial = 1 + np.transpose(np.array(intr['k']) @ np.array([r2, r2 ** 2, r2 ** 3]))
    xx = x * (x @ p.T + radial) + r2[:, None] * p
    return np.array(intr['f']) * xx + np.array(intr['c'])


def _look_at(centre, target):
    forward = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(forward, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])  # rows: camera x, y, z in world coordinates


def make_cameras(realdata=None):
    """{camera id: camera JSON dict}; the real one first when available, the others around its target."""
    real = Path(realdata) / REAL_CAMERA if realdata else None
    if real is not None and real.exists():
        first = json.loads(real.read_text())
    else:
        centre = np.array([-4.0, 1.77, 1.55])
        first = {'extrinsics': {'R': _look_at(centre, np.array([-1.0, .7, 1.0])).tolist(), 'T': [centre.tolist()]},
                 'intrinsics_w_distortion': {'f': [[1097.7, 1093.5]], 'c': [[470.1, 443.1]],
                                             'k': [[-.191, .0697, .0025]], 'p': [[-.00325, .00244]]}}
    centre0 = np.array(first['extrinsics']['T'][0])
    axis = np.array(first['extrinsics']['R'])[2]
    target = centre0 + 4.8 * axis  # 4.8 m in front of camera 0
    cameras = {CAMERA_IDS[0]: first}
    for i, camera_id in enumerate(CAMERA_IDS[1:], 1):
        angle = np.arctan2(-axis[1], -axis[0]) + np.deg2rad(90 * i + 10)
        centre = target * [1, 1, 0] + [4.8 * np.cos(angle), 4.8 * np.sin(angle), 1.5 + 0.05 * i]
        cameras[camera_id] = {
            'extrinsics': {'R': _look_at(centre, target * [1, 1, 0] + [0, 0, 0.9]).tolist(), 'T': [centre.tolist()]},
            'intrinsics_w_distortion': {'f': [[1100.0 + 3 * i, 1096.0 + 2 * i]], 'c': [[452.0 + i, 447.0 - i]],
                                        'k': [[-.2 + .01 * i, .08, .002]], 'p': [[-.003 * i, .002]]}}
    for camera in cameras.values():
        camera.setdefault('intrinsics_wo_distortion', {'c': camera['intrinsics_w_distortion']['c'][0],
                                                       'f': camera['intrinsics_w_distortion']['f'][0]})
    return cameras, target


def make_motion(n_mocap, target, person=0, seed=0):
    """(T, 25, 3) metres at 200 Hz: the person walks 0.9 m along x and back (1.2 m/s) with swinging arms,
    then stands still; a second person stands 1.1 m away, facing the first."""
    rng = np.random.default_rng(seed + person)
    t = np.arange(n_mocap) / 200.0
    half = n_mocap * 0.4 / 200.0
    position = 1.2 * np.where(t < half, t, np.maximum(2 * half - t, 0)) - 0.45
    poses = np.repeat(TEMPLATE_M[np.newaxis], n_mocap, axis=0)
    swing = 0.25 * np.sin(2 * np.pi * 1.5 * t)
    for wrist, elbow in ((13, 12), (16, 15), (21, 12), (22, 12), (23, 15), (24, 15)):
        poses[:, wrist, 2] += swing * (1 if wrist in (13, 21, 22) else -1) * (poses[0, wrist, 0] - poses[0, elbow, 0])
    poses += rng.normal(0, 0.002, poses.shape)
    offset = np.array([0.0, -0.55 + 1.1 * person, 0.0])
    if person == 1:
        poses[..., :2] *= -1  # turned around, facing person 0
    poses[:, :, 0] += position[:, None] * (1 if person == 0 else 0.3)
    return poses + target * [1, 1, 0] + offset


def _marker_frame(points_px):
    image = np.full((SIZE, SIZE), float(BACKGROUND), np.float32)
    for u, v in points_px:
        if not (0 <= u < SIZE and 0 <= v < SIZE):
            continue
        y0, y1, x0, x1 = max(0, int(v) - 8), min(SIZE, int(v) + 9), max(0, int(u) - 8), min(SIZE, int(u) + 9)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        image[y0:y1, x0:x1] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * DOT_SIGMA ** 2))
    return np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def write_fake_release(root, name, realdata=None, sequences=None):
    """Writes $root (= $DATA_ROOT/<name>); returns dict(cameras={id: JSON dict}, joints={(subject, action):
    (P, T, 25, 3) metres}, n_video_frames={(subject, action): n})."""
    from posepile.util.video import write_video
    root = Path(root)
    sequences = sequences or SEQUENCES[name]
    n_people = 2 if name == 'chi3d' else 1
    cameras, target = make_cameras(realdata)
    info = {'train_subj_names': sorted(sequences),
            'subj_to_act': {**{s: sorted(a) for s, a in sequences.items()}, TEST_SUBJECTS[name]: ['unused']}}
    root.mkdir(parents=True, exist_ok=True)
    (root / f'{name}_info.json').write_text(json.dumps(info))
    written = {'cameras': cameras, 'joints': {}, 'n_video_frames': {}}
    for i_seq, (subject, actions) in enumerate(sorted(sequences.items())):
        for action, n_mocap in actions.items():
            joints = np.stack([make_motion(n_mocap, target, person, seed=i_seq) for person in range(n_people)])
            base = root / 'train' / subject
            (base / 'joints3d_25').mkdir(parents=True, exist_ok=True)
            (base / 'joints3d_25' / f'{action}.json').write_text(
                json.dumps({'joints3d_25': (joints if n_people > 1 else joints[0]).tolist()}))
            n_video = -(-n_mocap // 4) + EXTRA_VIDEO_FRAMES[name]
            for camera_id, camera in cameras.items():
                path = base / 'camera_parameters' / camera_id / f'{action}.json'
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(camera))
                frames = (_marker_frame(toolkit_project(joints[:, 4 * i].reshape(-1, 3), camera))
                          if 4 * i < n_mocap else _marker_frame([]) for i in range(n_video))
                write_video(base / 'videos' / camera_id / f'{action}.mp4', frames, fps=50, quality=9)
            written['joints'][(subject, action)] = joints
            written['n_video_frames'][(subject, action)] = n_video
    return written
