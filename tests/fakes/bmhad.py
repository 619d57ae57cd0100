"""A tiny Berkeley MHAD release in the raw layout (see posepile/ds/bmhad/main.py): 8-bit Bayer PGM frames
(tile G B / R G) of clusters l01-l04 (2 cameras each here), Kinect colour PPM frames (k01, k02), C3D mocap
(43 markers, mm, mocap axes: world = (-x, z, y)), correspondence files (frame, time, mocap index) and the
RwTw_*.txt / camcfg_*.yml calibration. Each frame shows a bright grey dot at each marker of the mocap sample
its correspondence row names, projected with OpenCV (cv2.projectPoints, 4 distortion coefficients)."""
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 640, 480
BACKGROUND = 45
DOT_SIGMA = 1.6
MOCAP_HZ = 480
CLUSTER_CAMERAS = {'l01': 2, 'l02': 2, 'l03': 2, 'l04': 2, 'k01': 1, 'k02': 1}
# take -> (n camera frames, n Kinect frames, clusters whose frames exist)
TAKES = {
    (1, 1, 1): (12, 9, ('l01', 'l02', 'l03', 'l04', 'k01', 'k02')),
    (5, 2, 5): (10, 8, ('l01', 'l02', 'k01', 'k02')),  # l03/l04 missing upstream
    (4, 8, 5): (0, 0, ()),  # missing upstream everywhere (only its mocap file is here)
}


def _look_at(centre, target, up=(0, 1, 0)):
    forward = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(forward, up)  # world y up: camera x to the right, y down
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def _rotation(rotvec):
    import cv2
    return cv2.Rodrigues(np.asarray(rotvec, np.float64))[0]


def make_calibration():
    """{cluster: {'Rw', 'Tw', 'cameras': [{'K', 'dist', 'R', 't'} world -> camera, mm]}} (world y up)."""
    rng = np.random.default_rng(3)
    calibration = {}
    for i_cluster, (cluster, n) in enumerate(CLUSTER_CAMERAS.items()):
        rw = _rotation(rng.normal(0, 0.5, 3))
        tw = rng.normal(0, 500, 3)
        cameras = []
        for k in range(n):
            angle = 2 * np.pi * (i_cluster + 0.3 * k) / len(CLUSTER_CAMERAS)
            centre = np.array([3300 * np.sin(angle), 1000 + 150 * k, 3300 * np.cos(angle)])
            rotation = _look_at(centre, np.array([0, 950, 0.0]))
            cameras.append({
                'K': np.array([[540.0 + 10 * k, 0, 320.5 + 3 * k], [0, 541.0 + 10 * k, 240.5 - 2 * k], [0, 0, 1]]),
                'dist': np.array([-0.12 + 0.01 * k, 0.05, 0.0008, -0.0005]),
                'R': rotation, 't': -rotation @ centre})
        calibration[cluster] = {'Rw': rw, 'Tw': tw, 'cameras': cameras}
    return calibration


def project(camera, world_mm):
    """cv2.projectPoints of (N, 3) world mm with the fake's camera dict; NaN stays NaN."""
    import cv2
    world_mm = np.asarray(world_mm, np.float64)
    result = np.full((len(world_mm), 2), np.nan)
    valid = np.all(np.isfinite(world_mm), axis=1)
    if valid.any():
        points, _ = cv2.projectPoints(world_mm[valid].reshape(-1, 1, 3), cv2.Rodrigues(camera['R'])[0],
                                      camera['t'], camera['K'], camera['dist'])
        result[valid] = points.reshape(-1, 2)
    return result


def make_mocap(n_samples, seed):
    """(T, 43, 3) world mm (y up): markers spread over a standing body that steps sideways, with pauses."""
    rng = np.random.default_rng(seed)
    heights = np.linspace(100, 1750, 43)
    template = np.stack([rng.uniform(-260, 260, 43), heights, rng.uniform(-120, 120, 43)], axis=1)
    t = np.arange(n_samples) / MOCAP_HZ
    shift = 600 * np.clip(np.sin(2 * np.pi * 0.35 * t), -0.8, 0.8)
    poses = np.repeat(template[np.newaxis], n_samples, axis=0)
    poses[:, :, 0] += shift[:, None]
    poses[:, 20:30, 1] += 150 * np.sin(2 * np.pi * 0.8 * t)[:, None]  # arm markers go up and down
    return poses + rng.normal(0, 0.3, poses.shape)


def world_to_mocap_axes(world):
    """Inverse of the recipe's remap (x, y, z) -> (-x, z, y)."""
    return np.stack([-world[..., 0], world[..., 2], world[..., 1]], axis=-1)


def _dots(points_px):
    image = np.full((HEIGHT, WIDTH), float(BACKGROUND), np.float32)
    for u, v in points_px:
        if not (np.isfinite(u) and np.isfinite(v) and 0 <= u < WIDTH and 0 <= v < HEIGHT):
            continue
        y0, y1, x0, x1 = max(0, int(v) - 7), min(HEIGHT, int(v) + 8), max(0, int(u) - 7), min(WIDTH, int(u) + 8)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        image[y0:y1, x0:x1] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * DOT_SIGMA ** 2))
    return np.clip(image, 0, 255).astype(np.uint8)


def mosaic_gb(rgb):
    """The 'GB' Bayer mosaic (tile G B / R G) of an RGB image."""
    raw = np.empty(rgb.shape[:2], np.uint8)
    raw[0::2, 0::2] = rgb[0::2, 0::2, 1]
    raw[0::2, 1::2] = rgb[0::2, 1::2, 2]
    raw[1::2, 0::2] = rgb[1::2, 0::2, 0]
    raw[1::2, 1::2] = rgb[1::2, 1::2, 1]
    return raw


def write_pgm(path, raw):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'P5\n%d %d\n255\n' % (raw.shape[1], raw.shape[0]) + raw.tobytes())


def write_ppm(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'P6\n%d %d\n255\n' % (rgb.shape[1], rgb.shape[0]) + np.ascontiguousarray(rgb).tobytes())


def write_c3d(path, world_mm):
    import ezc3d
    path.parent.mkdir(parents=True, exist_ok=True)
    c3d = ezc3d.c3d()
    c3d['parameters']['POINT']['RATE']['value'] = [MOCAP_HZ]
    c3d['parameters']['POINT']['LABELS']['value'] = tuple(f'M{i:02d}' for i in range(43))
    points = np.ones((4, 43, len(world_mm)))
    points[:3] = world_to_mocap_axes(world_mm).transpose(2, 1, 0)
    c3d['data']['points'] = points
    c3d.write(str(path))


def _matrix_yaml(name, values, rows, cols):
    data = ', '.join(repr(float(v)) for v in np.asarray(values).reshape(-1))
    return f'   {name}: !!opencv-matrix\n      rows: {rows}\n      cols: {cols}\n      dt: d\n      data: [ {data} ]\n'


def write_calibration(root, calibration):
    import cv2
    folder = root / 'Calibration'
    folder.mkdir(parents=True, exist_ok=True)
    for cluster, entry in calibration.items():
        rw, tw = entry['Rw'], entry['Tw']
        (folder / f'RwTw_{cluster}.txt').write_text(
            'Rw=' + ' '.join(f'{v:.12f}' for v in rw.reshape(-1)) + ' \nTw=' +
            ' '.join(f'{v:.9f}' for v in tw) + ' \n')
        text = f'%YAML:1.0\nNumber of cameras: {len(entry["cameras"])}\n'
        for k, camera in enumerate(entry['cameras']):
            r_rel = camera['R'] @ rw.T  # cluster -> camera
            t_rel = camera['t'] - r_rel @ tw
            posrel = np.concatenate([t_rel, cv2.Rodrigues(r_rel)[0].reshape(3)])
            text += (f'Camera_{k + 1}:\n' + _matrix_yaml('K', camera['K'], 3, 3) +
                     _matrix_yaml('Dist', camera['dist'], 1, 4) + _matrix_yaml('PosRel', posrel, 1, 6))
        (folder / f'camcfg_{cluster}.yml').write_text(text)


def write_fake_release(root, takes=None, missing_marker=7, zero_marker=12):
    """Writes $root (= $DATA_ROOT/bmhad). Marker `missing_marker` is NaN in every sample of the first take,
    `zero_marker` is (0, 0, 0) (a dropout) in every sample of the second take. Returns dict(calibration,
    mocap={take: (T, 43, 3) world mm with NaN}, correspondences={(cluster, take): mocap indices})."""
    root = Path(root)
    takes = takes or TAKES
    calibration = make_calibration()
    write_calibration(root, calibration)
    written = {'calibration': calibration, 'mocap': {}, 'correspondences': {}}
    for i_take, (take, (n_cam, n_kin, clusters)) in enumerate(takes.items()):
        s, a, r = take
        name = f's{s:02d}_a{a:02d}_r{r:02d}'
        n_samples = 2000
        world = make_mocap(n_samples, seed=i_take)
        stored = world.copy()
        if i_take == 0:
            world[:, missing_marker] = np.nan
            stored[:, missing_marker] = np.nan
        if i_take == 1:
            stored[:, zero_marker] = world_to_mocap_axes(np.zeros(3))
            world[:, zero_marker] = np.nan
        write_c3d(root / 'Mocap/OpticalData' / f'moc_{name}.c3d', stored)
        written['mocap'][take] = world
        if n_cam:
            _write_correspondence(root / 'Camera/Correspondences' / f'corr_moc_img_{name}.txt', n_cam, 22, 5)
        for k in (1, 2):
            if n_kin:
                _write_correspondence(root / 'Kinect/Correspondences' / f'corr_moc_kin{k:02d}_{name}.txt', n_kin,
                                      30, 9 + k)
        for cluster in clusters:
            n_frames, fps, start = (n_kin, 30, 9 + int(cluster[1:])) if cluster[0] == 'k' else (n_cam, 22, 5)
            indices = _indices(n_frames, fps, start)
            written['correspondences'][(cluster, take)] = indices
            for k, camera in enumerate(calibration[cluster]['cameras']):
                for i_frame, index in enumerate(indices):
                    grey = _dots(project(camera, world[index]))
                    rgb = np.repeat(grey[..., None], 3, axis=2)
                    if cluster[0] == 'k':
                        path = (root / f'Kinect/Kin{int(cluster[1:]):02d}/S{s:02d}/A{a:02d}/R{r:02d}' /
                                f'kin_k{int(cluster[1:]):02d}_{name}_color_{i_frame:05d}.ppm')
                        write_ppm(path, rgb)
                    else:
                        c = int(cluster[1:])
                        path = (root / f'Camera/Cluster{c:02d}/Cam{k + 1:02d}/S{s:02d}/A{a:02d}/R{r:02d}' /
                                f'img_l{c:02d}_c{k + 1:02d}_{name}_{i_frame:05d}.pgm')
                        write_pgm(path, mosaic_gb(rgb))
    return written


def _indices(n_frames, fps, start):
    return (start + np.round(np.arange(n_frames) * MOCAP_HZ / fps * 3)).astype(int)  # 3x: more motion


def _write_correspondence(path, n_frames, fps, start):
    path.parent.mkdir(parents=True, exist_ok=True)
    indices = _indices(n_frames, fps, start)
    rows = [f'{i} {i / fps:.6f} {index}' for i, index in enumerate(indices)]
    path.write_text('\n'.join(rows) + '\n')
