"""A tiny MADS multi-view release in the real layout (see posepile/ds/mads/main.py):
multi_view_data/<action>/<sequence>_C<c>.avi (H.264 in AVI), <sequence>_GT.mat (GTpose2: 1 x N cell of J x 3 mm,
J = 19, or 15 in the second sequence; frames without ground truth hold NaNs or an empty matrix) and
Calib_Cam<c>.mat (Bouguet's toolbox: om_ext, T_ext, KK, kc, plus fc, cc, alpha_c). Video frame i shows a bright
dot at each valid joint of cell i, projected with Bouguet's model restated here (independent of posepile)."""
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 640, 480
BACKGROUND = 45
DOT_SIGMA = 2.0
N_CAMERAS = 3
# (action, sequence, joints, GT cells, extra video frames beyond the cells (negative: fewer))
SEQUENCES = (('HipHop', 'HipHop_HipHop1', 19, 34, 2), ('Taichi', 'Taichi_S1', 15, 30, -3))
INVALID_FRAMES = {0: 'nan', 1: 'empty', 12: 'nan'}  # frames without ground truth (cell index: how)
# GTpose2 order (19): neck,pelv,lhip,lkne,lank,ltoe,rhip,rkne,rank,rtoe,lsho,lelb,lwri,lhan,rsho,relb,rwri,rhan,
# head; body frame mm (x: the person's left, y: up, z: forward)
TEMPLATE_MM = np.array([
    [0, 1480, 0], [0, 950, 0], [120, 920, 0], [140, 520, 0], [150, 100, 0], [150, 30, 150], [-120, 920, 0],
    [-140, 520, 0], [-150, 100, 0], [-150, 30, 150], [200, 1450, 0], [480, 1450, 0], [740, 1450, 0],
    [820, 1450, 40], [-200, 1450, 0], [-480, 1450, 0], [-740, 1450, 0], [-820, 1450, 40], [0, 1650, 20]])
INDICES15 = [0, 1, 2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16, 18]


def rodrigues(om):
    from scipy.spatial.transform import Rotation
    return Rotation.from_rotvec(np.asarray(om, np.float64).reshape(3)).as_matrix()


def bouguet_project(points_mm, calib):
    """Bouguet's project_points2 of world points (N, 3) mm with a Calib_Cam dict."""
    pc = np.asarray(points_mm, np.float64) @ rodrigues(calib['om_ext']).T + calib['T_ext'].reshape(3)
    x = pc[:, :2] / pc[:, 2:3]
    k1, k2, p1, p2, k3 = calib['kc'].reshape(5)
    r2 = np.sum(x ** 2, axis=1)
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    dx = np.stack([2 * p1 * x[:, 0] * x[:, 1] + p2 * (r2 + 2 * x[:, 0] ** 2),
                   p1 * (r2 + 2 * x[:, 1] ** 2) + 2 * p2 * x[:, 0] * x[:, 1]], axis=1)
    xd = x * radial[:, None] + dx
    fc, cc, alpha = calib['fc'].reshape(2), calib['cc'].reshape(2), float(np.asarray(calib['alpha_c']).reshape(-1)[0])
    return np.stack([fc[0] * (xd[:, 0] + alpha * xd[:, 1]) + cc[0], fc[1] * xd[:, 1] + cc[1]], axis=1)


def make_calibration(i_camera):
    """Calib_Cam dict: camera on a 4.5 m circle around the origin, 1.4 m high, looking at (0, 1 m, 0)."""
    angle = np.deg2rad(-30 + 35 * i_camera)
    centre = np.array([4500 * np.sin(angle), 1400, 4500 * np.cos(angle)])
    forward = (np.array([0, 1000, 0]) - centre) / np.linalg.norm(np.array([0, 1000, 0]) - centre)
    right = np.cross(forward, [0, 1, 0])  # world y up; camera y points down
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    from scipy.spatial.transform import Rotation
    om = Rotation.from_matrix(rotation).as_rotvec()
    fc = np.array([620.0 + 7 * i_camera, 618.0 + 5 * i_camera])
    cc = np.array([318.0 + 3 * i_camera, 243.0 - 2 * i_camera])
    kc = np.array([-0.22 + 0.03 * i_camera, 0.09, 0.0012 * (i_camera - 1), -0.0008, 0.0])
    return {'om_ext': om.reshape(3, 1), 'T_ext': (-rotation @ centre).reshape(3, 1),
            'KK': np.array([[fc[0], 0, cc[0]], [0, fc[1], cc[1]], [0, 0, 1]]), 'kc': kc.reshape(5, 1),
            'fc': fc.reshape(2, 1), 'cc': cc.reshape(2, 1), 'alpha_c': np.array([[0.0]])}


def make_motion(n_frames, seed=0):
    """(N, 19, 3) mm: walks 1.2 m along x at 60 mm per frame and back with swinging arms, then stands."""
    rng = np.random.default_rng(seed)
    i = np.arange(n_frames)
    half = n_frames * 0.35
    position = 60.0 * np.where(i < half, i, np.maximum(2 * half - i, 0)) - 600
    poses = np.repeat(TEMPLATE_MM[np.newaxis], n_frames, axis=0).astype(np.float64)
    swing = 250 * np.sin(2 * np.pi * i / 12)
    for wrist in (12, 13, 16, 17):
        poses[:, wrist, 2] += swing * (1 if wrist < 14 else -1)
    poses[:, :, 0] += position[:, None]
    return poses + rng.normal(0, 1.0, poses.shape)


def _marker_frame(points_px):
    image = np.full((HEIGHT, WIDTH), float(BACKGROUND), np.float32)
    for u, v in points_px:
        if not (0 <= u < WIDTH and 0 <= v < HEIGHT):
            continue
        y0, y1, x0, x1 = max(0, int(v) - 8), min(HEIGHT, int(v) + 9), max(0, int(u) - 8), min(WIDTH, int(u) + 9)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        image[y0:y1, x0:x1] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * DOT_SIGMA ** 2))
    return np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def write_gt_mat(path, poses19, n_joints):
    """<sequence>_GT.mat with GTpose2 as a 1 x N cell (15-joint sequences store only their 15 joints)."""
    import scipy.io
    cells = np.empty((1, len(poses19)), dtype=object)
    for i, pose in enumerate(poses19):
        how = INVALID_FRAMES.get(i)
        if how == 'empty':
            cells[0, i] = np.zeros((0, 0))
        elif how == 'nan':
            cells[0, i] = np.full((n_joints, 3), np.nan)
        else:
            cells[0, i] = pose if n_joints == 19 else pose[INDICES15]
    scipy.io.savemat(str(path), {'GTpose2': cells})


def write_fake_release(root, sequences=SEQUENCES):
    """Writes $root (= $DATA_ROOT/mads); returns dict(calibrations=[Calib dict per camera],
    poses={sequence: (N, 19, 3) mm with NaN where the GT has no value}, n_video_frames={sequence: n},
    actions={sequence: action})."""
    import scipy.io

    from posepile.util.video import write_video
    root = Path(root)
    calibrations = [make_calibration(c) for c in range(N_CAMERAS)]
    written = {'calibrations': calibrations, 'poses': {}, 'n_video_frames': {}, 'actions': {}}
    for i_seq, (action, sequence, n_joints, n_cells, extra) in enumerate(sequences):
        folder = root / 'multi_view_data' / action
        folder.mkdir(parents=True, exist_ok=True)
        poses = make_motion(n_cells, seed=i_seq)
        write_gt_mat(folder / f'{sequence}_GT.mat', poses, n_joints)
        truth = poses.copy()
        for i in INVALID_FRAMES:
            truth[i] = np.nan
        if n_joints == 15:
            truth[:, [j for j in range(19) if j not in INDICES15]] = np.nan
        n_video = n_cells + extra
        for c, calib in enumerate(calibrations):
            scipy.io.savemat(str(folder / f'Calib_Cam{c}.mat'), calib)
            frames = (_marker_frame(bouguet_project(truth[i][np.all(np.isfinite(truth[i]), axis=1)], calib))
                      if i < n_cells else _marker_frame([]) for i in range(n_video))
            write_video(folder / f'{sequence}_C{c}.avi', frames, fps=25, quality=9)
        written['poses'][sequence] = truth.astype(np.float32)
        written['n_video_frames'][sequence] = n_video
        written['actions'][sequence] = action
    return written
