"""A tiny BML-MoVi release in the raw layout (see posepile/ds/bml_movi/main.py): V3D .mat mocap (F round:
move.markerLocation (T, 67, 3) + move.virtualMarkerLocation (T, 20, 3); S rounds: a 2-element move struct
array with 17-column markerLocation), Calib/Extrinsics_PG<k>.npz + cameraParams_PG<k>.npz in MATLAB
conventions (PG1 = the real file when ../shared/realdata has it), PG videos (<round>_PG<k>_Subject_<i>_L.avi,
800x600, 30 fps, frame i = mocap sample 4 i) and a CP1 video (mp4, 960x540 here) that starts `CP_OFFSET_S`
before the mocap, with keypoints2d/<video>.npz (the 20 virtual joints projected, 1 px noise, outliers).
Each frame shows a bright dot at every joint, projected the MATLAB way (restated here, 1-based pixels)."""
from pathlib import Path

import numpy as np

BACKGROUND = 45
DOT_SIGMA = 1.8
FPS = 30
MOCAP_HZ = 120
PG_SIZE = (800, 600)
CP_SIZE = (960, 540)
CP_OFFSET_S = 0.4
REAL_CALIB = 'bml_movi/Calib'
N_MOCAP = 300
VIRTUAL_NAMES = ('head,mhip,pelv,thor,lank,lelb,lhip,lhan,lkne,lsho,lwri,lfoo,rank,relb,rhip,rhan,rkne,rsho,'
                 'rwri,rfoo').split(',')
S_COLUMNS_IN = [i for i in range(17) if i not in (5, 11)]
S_JOINTS_OUT = [5, 6, 12, 13, 20, 36, 37, 43, 44, 51, 67, 71, 77, 79, 85]


def look_at(centre, target, up=(0, 0, 1.0)):
    """World-to-camera rotation (rows: camera x, y (down), z (forward)) of a camera at `centre` (z up)."""
    forward = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(forward, right), forward])


def matlab_pg_camera(realdata=None, index=1):
    """{'rotationMatrix', 'translationVector', 'IntrinsicMatrix', 'RadialDistortion'} (MATLAB conventions)."""
    real = Path(realdata) / REAL_CALIB if realdata else None
    if index == 1 and real is not None and (real / 'Extrinsics_PG1.npz').exists():
        extr, intr = np.load(real / 'Extrinsics_PG1.npz'), np.load(real / 'cameraParams_PG1.npz')
        return {'rotationMatrix': extr['rotationMatrix'], 'translationVector': extr['translationVector'],
                'IntrinsicMatrix': intr['IntrinsicMatrix'], 'RadialDistortion': intr['RadialDistortion']}
    centre = np.array([4900.0, 10.0, 1340.0]) if index == 1 else np.array([300.0, 4700.0, 1500.0])
    rotation = look_at(centre, np.array([0, 0, 1000.0]))  # x_cam = R (X - c)
    return {'rotationMatrix': rotation.T, 'translationVector': -rotation @ centre,
            'IntrinsicMatrix': np.array([[975.0 + 5 * index, 0, 0], [0, 976.0 + 4 * index, 0], [406.0, 293.0, 1]]),
            'RadialDistortion': np.array([-0.18, 0.18])}


def matlab_project(camera, world_mm):
    """MATLAB's worldToImage (ApplyDistortion) restated, minus 1 for 0-based pixel centres; (N, 2) px."""
    cam = world_mm @ camera['rotationMatrix'] + camera['translationVector']
    xy = cam[:, :2] / cam[:, 2:3]
    r2 = np.sum(xy ** 2, axis=1, keepdims=True)
    k1, k2 = camera['RadialDistortion']
    xy = xy * (1 + k1 * r2 + k2 * r2 ** 2)
    uv1 = np.concatenate([xy, np.ones((len(xy), 1))], axis=1) @ camera['IntrinsicMatrix']
    return uv1[:, :2] - 1


def cp_truth():
    """The true CP1 camera: R world-to-camera, centre mm, K for 960x540 (the recipe's fixed intrinsics)."""
    centre = np.array([-2600.0, -3300.0, 1550.0])
    focal = 1508.7021 * CP_SIZE[0] / 1920
    return {'R': look_at(centre, np.array([100.0, 50.0, 950.0])), 'centre': centre,
            'K': np.array([[focal, 0, CP_SIZE[0] / 2], [0, focal, CP_SIZE[1] / 2], [0, 0, 1]])}


def pinhole_project(camera, world_mm):
    cam = (world_mm - camera['centre']) @ camera['R'].T
    return (cam[:, :2] / cam[:, 2:3]) @ camera['K'][:2, :2].T + camera['K'][:2, 2]


def make_mocap(n_samples=N_MOCAP, seed=0):
    """(T, 87, 3) world mm (z up, 120 Hz): 67 marker points and 20 joints over a body that wanders
    non-periodically around the origin, with moving arms."""
    rng = np.random.default_rng(seed)
    template = np.stack([rng.uniform(-250, 250, 87), rng.uniform(-150, 150, 87), rng.uniform(60, 1800, 87)], 1)
    t = np.arange(n_samples) / MOCAP_HZ
    path = np.stack([500 * np.sin(0.9 * t + 0.3 * t ** 2), 300 * np.sin(1.7 * t) - 200 * t, 0 * t], axis=1)
    poses = template[np.newaxis] + path[:, np.newaxis]
    arm = rng.choice(87, 20, replace=False)
    poses[:, arm, 2] += 250 * np.sin(2.3 * t + 0.4 * t ** 2)[:, None]
    return poses + rng.normal(0, 0.3, poses.shape)


def _dots(points_px, size):
    width, height = size
    image = np.full((height, width), float(BACKGROUND), np.float32)
    for u, v in points_px:
        if not (np.isfinite(u) and np.isfinite(v) and 0 <= u < width and 0 <= v < height):
            continue
        y0, y1, x0, x1 = max(0, int(v) - 7), min(height, int(v) + 8), max(0, int(u) - 7), min(width, int(u) + 8)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        image[y0:y1, x0:x1] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * DOT_SIGMA ** 2))
    return np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def write_avi(path, frames, size, fps=FPS):
    import av
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), 'w', format='avi') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], 'yuv420p'
        stream.options = {'crf': '8', 'preset': 'ultrafast'}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def interpolate(mocap, frame, offset_s):
    position = (frame / FPS - offset_s) * MOCAP_HZ
    if position < 0 or position > len(mocap) - 1:
        return None
    lower = int(np.floor(position))
    weight = position - lower
    return mocap[lower] if weight == 0 else mocap[lower] * (1 - weight) + mocap[lower + 1] * weight


def make_keypoints(mocap, n_frames, offset_s, seed=5):
    """(n_frames, 20, 2) noisy 2D keypoints of the virtual joints in the CP1 video (before the mocap starts:
    the first pose), 1 px noise, 5 % outliers, 5 % missing."""
    rng = np.random.default_rng(seed)
    truth = cp_truth()
    keypoints = np.zeros((n_frames, 20, 2))
    for i in range(n_frames):
        pose = interpolate(mocap, i, offset_s)
        keypoints[i] = pinhole_project(truth, (mocap[0] if pose is None else pose)[67:])
    keypoints += rng.normal(0, 1.0, keypoints.shape)
    outliers = rng.random(keypoints.shape[:2]) < 0.05
    keypoints[outliers] += rng.uniform(60, 200, (outliers.sum(), 2)) * rng.choice([-1, 1], (outliers.sum(), 2))
    keypoints[rng.random(keypoints.shape[:2]) < 0.05] = np.nan
    return keypoints


def _write_mat(path, key, move):
    import scipy.io
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {key: {'move': move}}, do_compression=True)


def write_fake_release(root, realdata=None, zero_marker=3):
    """Writes $root (= $DATA_ROOT/bml_movi). F subject 1: PG1, PG2 and CP1 videos; S subject 2: an S1 PG1
    video. Marker `zero_marker` is 0 (a gap) in the first 40 samples of F subject 1. Returns dict(mocap=
    {(round, subject): (T, 87, 3) mm with NaN}, pg={k: MATLAB camera dict}, cp=cp_truth(), n_frames={video:
    n}, keypoints=(N, 20, 2))."""
    from posepile.util.video import write_video
    root = Path(root)
    pg = {k: matlab_pg_camera(realdata, k) for k in (1, 2)}
    (root / 'Calib').mkdir(parents=True, exist_ok=True)
    for k, camera in pg.items():
        np.savez(root / 'Calib' / f'Extrinsics_PG{k}.npz', rotationMatrix=camera['rotationMatrix'],
                 translationVector=camera['translationVector'])
        np.savez(root / 'Calib' / f'cameraParams_PG{k}.npz', IntrinsicMatrix=camera['IntrinsicMatrix'],
                 RadialDistortion=camera['RadialDistortion'])
    f_mocap = make_mocap(seed=0)
    stored = f_mocap.copy()
    stored[:40, zero_marker] = 0
    _write_mat(mocap_file(root, 'F', 1), 'Subject_1_F',
               {'markerLocation': stored[:, :67], 'virtualMarkerLocation': stored[:, 67:]})
    f_truth = f_mocap.copy()
    f_truth[:40, zero_marker] = np.nan
    s_full = make_mocap(seed=1)
    s_rounds = []
    for number in range(2):
        columns = np.zeros((N_MOCAP, 17, 3))
        columns[:, S_COLUMNS_IN] = s_full[:, S_JOINTS_OUT] + 100 * number
        s_rounds.append(columns)
    move = np.zeros((1, 2), dtype=[('markerLocation', object), ('virtualMarkerLocation', object)])
    for number in range(2):
        move[0, number] = (s_rounds[number], np.zeros((N_MOCAP, 20, 3)))
    _write_mat(mocap_file(root, 'S', 2), 'Subject_2_S', move)
    s1_truth = np.full((N_MOCAP, 87, 3), np.nan)
    s1_truth[:, S_JOINTS_OUT] = s_rounds[0][:, S_COLUMNS_IN]
    written = {'mocap': {('F', 1): f_truth, ('S1', 2): s1_truth}, 'pg': pg, 'cp': cp_truth(), 'n_frames': {}}
    n_pg = 70
    for name, mocap, k in (('F_PG1_Subject_1_L.avi', f_truth, 1), ('F_PG2_Subject_1_L.avi', f_truth, 2),
                           ('S1_PG1_Subject_2_L.avi', s1_truth, 1)):
        frames = (_dots(matlab_project(pg[k], mocap[4 * i]), PG_SIZE) for i in range(n_pg))
        write_avi(root / name, frames, PG_SIZE)
        written['n_frames'][name] = n_pg
    n_cp = 80
    cp_frames = (_dots(pinhole_project(written['cp'], mocap_or_first(f_truth, i)), CP_SIZE) for i in range(n_cp))
    write_video(root / 'F_CP1_Subject_1.mp4', cp_frames, FPS, quality=10)
    written['n_frames']['F_CP1_Subject_1.mp4'] = n_cp
    keypoints = make_keypoints(f_truth, n_cp, CP_OFFSET_S)
    (root / 'keypoints2d').mkdir(exist_ok=True)
    np.savez(root / 'keypoints2d' / 'F_CP1_Subject_1.npz', keypoints=keypoints, joint_names=np.array(VIRTUAL_NAMES))
    written['keypoints'] = keypoints
    return written


def mocap_or_first(mocap, frame):
    pose = interpolate(mocap, frame, CP_OFFSET_S)
    return mocap[0] if pose is None else pose


def mocap_file(root, round_name, subject):
    if round_name == 'F':
        folder = 'F_Subjects_1_45' if subject <= 45 else 'F_Subjects_46_90'
        return Path(root) / folder / f'F_v3d_Subject_{subject}.mat'
    return Path(root) / 'S' / f'S_v3d_Subject_{subject}.mat'
