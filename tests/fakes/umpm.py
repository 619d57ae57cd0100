"""A tiny UMPM release in the real layout (see posepile/ds/umpm/main.py): <sequence>.json files with the
release's trailing comma (and one with wrong values that the original replaced by hand), Calib/<calib>_<cam>.ini,
Groundtruth/<sequence>_vm.c3d (ezc3d; 100 Hz, 15 or 30 points, mm, z up) and Video/<sequence>_<cam>.avi
(lossless FFV1 in AVI, 644x486, 50 fps; one shipped as .avi.xz) whose frame i shows a bright dot at each joint of
mocap sample 2i, projected with OpenCV (cv2.projectPoints, independent of posepile's Camera)."""
import json
import lzma
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 644, 486
BACKGROUND = 45
DOT_SIGMA = 2.0
CAMERA_NAMES = 'fsrl'
# (sequence, calib used for rendering, people, mocap samples, video frames per camera (f, s, r, l))
SEQUENCES = (('p1_grab_3', 'calib_l06', 1, 64, (32, 32, 32, 32)),
             ('p2_free_1', 'calib_n27', 2, 61, (31, 29, 31, 31)))
XZ_VIDEO = 'p1_grab_3_f'  # shipped compressed
GLITCH = ('p2_free_1', 1, 9)  # (sequence, person, video frame): the right wrist jumps 450 mm (a mocap glitch)
# UMPM order: pelv,neck,head,rsho,relb,rwri,lsho,lelb,lwri,rhip,lhip,rkne,lkne,rank,lank; body frame mm
# (x: the person's right, y: forward, z: up)
TEMPLATE_MM = np.array([
    [0, 0, 950], [0, 0, 1480], [0, 20, 1650], [200, 0, 1450], [470, 0, 1450], [730, 0, 1450], [-200, 0, 1450],
    [-470, 0, 1450], [-730, 0, 1450], [120, 0, 920], [-120, 0, 920], [140, 0, 520], [-140, 0, 520],
    [150, 0, 100], [-150, 0, 100]])


def make_calibration(calib, i_camera):
    """{'K', 'dist' (k1 k2 p1 p2), 'rvec', 'tvec' (mm)}: cameras on a 5 m circle, 1.8 m high, looking at the
    room centre 1 m above the floor."""
    import cv2
    angle = np.deg2rad(20 + 90 * i_camera + (7 if calib == 'calib_n27' else 0))
    centre = np.array([5000 * np.cos(angle), 5000 * np.sin(angle), 1800.0])
    forward = np.array([0, 0, 1000.0]) - centre
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    rotation = np.stack([right, np.cross(forward, right), forward])
    f = 560.0 + 6 * i_camera
    return {'K': np.array([[f, 0, 321.0 + i_camera], [0, f * 1.002, 242.0 - i_camera], [0, 0, 1]]),
            'dist': np.array([-0.24 + 0.02 * i_camera, 0.11, 0.0009 * (i_camera - 1.5), -0.0006]),
            'rvec': cv2.Rodrigues(rotation)[0].reshape(3), 'tvec': -rotation @ centre}


def write_ini(path, calib):
    rows = [' '.join(f'{v:.10g}' for v in row) for row in calib['K']]
    rows += [' '.join(f'{v:.10g}' for v in calib[key]) for key in ('dist', 'rvec', 'tvec')]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\r\n'.join(rows) + ' \r\n')  # the files come from Windows


def opencv_project(points_mm, calib):
    import cv2
    points = np.asarray(points_mm, np.float64).reshape(-1, 1, 3)
    projected, _ = cv2.projectPoints(points, calib['rvec'], calib['tvec'], calib['K'], calib['dist'])
    return projected.reshape(-1, 2)


def make_motion(n_samples, person, seed=0):
    """(N, 15, 3) mm at 100 Hz: turns about the vertical at 6 degrees per sample with swinging arms while
    walking 0.5 m; person 1 stands 1.3 m to the side."""
    rng = np.random.default_rng(seed + 10 * person)
    t = np.arange(n_samples)
    heading = np.deg2rad(6.0 * t * (1 if person == 0 else -0.8) + 40 * person)
    poses = np.repeat(TEMPLATE_MM[np.newaxis], n_samples, axis=0).astype(np.float64)
    swing = 220 * np.sin(2 * np.pi * t / 37)
    poses[:, [5, 8], 1] += np.stack([swing, -swing], axis=1)
    c, s = np.cos(heading), np.sin(heading)
    x, y = poses[..., 0].copy(), poses[..., 1].copy()
    poses[..., 0] = c[:, None] * x - s[:, None] * y
    poses[..., 1] = s[:, None] * x + c[:, None] * y
    poses[..., 0] += (8.0 * t - 250)[:, None] + (650 if person == 1 else -650)
    poses[..., 1] += 400 * person - 200
    return poses + rng.normal(0, 1.0, poses.shape)


def write_c3d(path, mocap):
    """mocap: (P, N, J, 3) mm -> a 100 Hz C3D with J * P points (person 0 first; UMPM has J = 15)."""
    import ezc3d
    n_people, n_samples, n_joints = mocap.shape[:3]
    c3d = ezc3d.c3d()
    c3d['parameters']['POINT']['RATE']['value'] = [100]
    names = 'pelv,neck,head,rsho,relb,rwri,lsho,lelb,lwri,rhip,lhip,rkne,lkne,rank,lank'.split(',')
    c3d['parameters']['POINT']['LABELS']['value'] = [f'P{p + 1}:{n}' for p in range(n_people)
                                                     for n in names[:n_joints]]
    c3d['parameters']['POINT']['UNITS']['value'] = ['mm']
    points = np.ones((4, n_joints * n_people, n_samples))
    points[:3] = mocap.transpose(0, 2, 1, 3).reshape(-1, n_samples, 3).transpose(2, 0, 1)
    c3d['data']['points'] = points
    path.parent.mkdir(parents=True, exist_ok=True)
    c3d.write(str(path))


def _marker_frame(points_px):
    image = np.full((HEIGHT, WIDTH), float(BACKGROUND), np.float32)
    for u, v in points_px:
        if not (0 <= u < WIDTH and 0 <= v < HEIGHT):
            continue
        y0, y1, x0, x1 = max(0, int(v) - 8), min(HEIGHT, int(v) + 9), max(0, int(u) - 8), min(WIDTH, int(u) + 9)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        image[y0:y1, x0:x1] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * DOT_SIGMA ** 2))
    return np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def write_avi(path, frames, fps=50):
    """Lossless FFV1 video in an AVI container (the release's videos are uncompressed AVI)."""
    import av
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), 'w') as container:
        stream = container.add_stream('ffv1', rate=fps)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, 'bgr0'
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_sequence_json(path, sequence, calib, broken=False):
    """The release's sequence file: a trailing comma before the closing brace; `broken` also has the
    wrong id and calibration (what the original replaced by hand)."""
    fields = {'id': 'p2_free_2' if broken else sequence, 'bg': f'backgr_{calib[6:]}_1',
              'calib': 'calib_l06' if broken else calib, 'video_dir': 'Video', 'gt_dir': 'Groundtruth',
              'bg_dir': 'Background', 'calib_dir': 'Calib'}
    body = ',\n'.join(f'  "{k}":{json.dumps(v)}' for k, v in fields.items())
    path.write_text('{\n' + body + ',\n}\n')


def write_fake_release(root, sequences=SEQUENCES):
    """Writes $root (= $DATA_ROOT/umpm); returns dict(calibrations={calib: {cam: dict}}, mocap={sequence:
    (P, N, 15, 3) mm at 100 Hz as written}, truth={sequence: (P, N, 15, 3)} = mocap, n_video_frames={sequence:
    {cam: n}}, calib_of={sequence: calib}). The glitch is part of the mocap (and of the video)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    written = {'calibrations': {}, 'mocap': {}, 'n_video_frames': {}, 'calib_of': {}}
    for i_seq, (sequence, calib, n_people, n_samples, n_frames) in enumerate(sequences):
        if calib not in written['calibrations']:
            written['calibrations'][calib] = {}
            for i_cam, cam in enumerate(CAMERA_NAMES):
                written['calibrations'][calib][cam] = make_calibration(calib, i_cam)
                write_ini(root / 'Calib' / f'{calib}_{cam}.ini', written['calibrations'][calib][cam])
        mocap = np.stack([make_motion(n_samples, p, seed=i_seq) for p in range(n_people)])
        if GLITCH[0] == sequence and 2 * GLITCH[2] < n_samples:
            mocap[GLITCH[1], 2 * GLITCH[2], 5] += [0, 0, 450]
        write_c3d(root / 'Groundtruth' / f'{sequence}_vm.c3d', mocap)
        write_sequence_json(root / f'{sequence}.json', sequence, calib, broken=sequence == 'p2_free_1')
        for cam, n in zip(CAMERA_NAMES, n_frames):
            camera = written['calibrations'][calib][cam]
            frames = (_marker_frame(opencv_project(mocap[:, 2 * i].reshape(-1, 3), camera)) if 2 * i < n_samples
                      else _marker_frame([]) for i in range(n))
            path = root / 'Video' / f'{sequence}_{cam}.avi'
            write_avi(path, frames)
            if f'{sequence}_{cam}' == XZ_VIDEO:
                with open(path, 'rb') as src, lzma.open(str(path) + '.xz', 'wb') as dst:
                    dst.write(src.read())
                path.unlink()
        written['mocap'][sequence] = mocap.astype(np.float32)
        written['n_video_frames'][sequence] = dict(zip(CAMERA_NAMES, n_frames))
        written['calib_of'][sequence] = calib
    # the sequence the original set aside: its file and mocap exist, it is not built
    write_sequence_json(root / 'p2_free_2.json', 'p2_free_2', 'calib_n27')
    write_c3d(root / 'Groundtruth' / 'p2_free_2_vm.c3d', make_motion(20, 0)[np.newaxis])
    return written
