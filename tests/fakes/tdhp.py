"""A tiny MPI-INF-3DHP test set in the real layout: TS{1..6}/annot_data.mat as MATLAB v7.3 (HDF5 with the
512-byte MATLAB user block) holding annot2, annot3, univ_annot3 (N, 1, 17, 2|3), valid_frame (N, 1),
activity_annotation (N, 1); plus test_util/camera_calibration/ts1-4cameras.calib and ts5-6cameras.calib
in the "tc camera calibration v0.3" text format."""
from pathlib import Path

import numpy as np

CALIB_TEMPLATE = """tc camera calibration v0.3
camera\t0\tcam_8
\tframe\t0
\t\tsensorSize\t{sw}\t{sh}\t# in mm
\t\tfocalLength\t{f}\t# in mm
\t\tpixelAspect\t1.00044
\t\tcenterOffset\t-0.0322884\t0.0929296\t# in mm (positive values move right and down)
\t\tdistortionModel\tOpenCV
\t\tdistortion\t\t{dist}
\t\t\torigin\t{origin}
\t\t\tup\t-0.208215\t0.976233\t0.06014
\t\t\tright\t0.000575281\t0.0616098\t-0.9981
"""


def _write_v73_mat(path, arrays):
    import h5py
    with h5py.File(path, 'w', userblock_size=512) as f:
        for name, value in arrays.items():
            f.create_dataset(name, data=value)
    header = b'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 .'
    with open(path, 'r+b') as f:
        f.write(header.ljust(116, b' ') + b'\x00' * 8 + b'\x00\x02IM')


def write_fake_release(root, seed=0, n_frames=(12, 9, 10, 8, 7, 11)):
    """Returns {sequence: dict(annot3, univ_annot3, valid_frame, activity)} as written."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    written = {}
    for i, n in enumerate(n_frames):
        sequence = f'TS{i + 1}'
        univ = rng.normal(0, 250, (n, 17, 3)) + [0, 0, 4500]
        metric = univ * rng.uniform(0.9, 1.1)
        valid = rng.random(n) > 0.2
        valid[0] = True
        activity = rng.integers(1, 8, n)
        annot2 = rng.uniform(0, 2048, (n, 17, 2))
        (root / sequence).mkdir(parents=True, exist_ok=True)
        _write_v73_mat(root / sequence / 'annot_data.mat', {
            'annot2': annot2[:, np.newaxis].astype(np.float32),
            'annot3': metric[:, np.newaxis].astype(np.float32),
            'univ_annot3': univ[:, np.newaxis].astype(np.float32),
            'valid_frame': valid[:, np.newaxis].astype(np.float64),
            'activity_annotation': activity[:, np.newaxis].astype(np.float64)})
        written[sequence] = dict(annot3=metric.astype(np.float32).astype(np.float64),
                                 univ_annot3=univ.astype(np.float32).astype(np.float64), valid_frame=valid,
                                 activity=activity)
    calib_dir = root / 'test_util' / 'camera_calibration'
    calib_dir.mkdir(parents=True, exist_ok=True)
    (calib_dir / 'ts1-4cameras.calib').write_text(CALIB_TEMPLATE.format(
        sw=10, sh=10, f=7.32506, dist='0.0 0.0 0.0 0.0 0.0', origin='3427.28\t1387.86\t309.42'))
    (calib_dir / 'ts5-6cameras.calib').write_text(CALIB_TEMPLATE.format(
        sw=10, sh=5.625, f=8.770747, dist='-0.2769 0.1311 -0.00036 -0.00115 -0.0493',
        origin='-2000.0\t1600.0\t2500.0'))
    return written


# ------------------------------------------------------------------------------------------------
# Training sequences and test images, for the recipe's end-to-end test
def _calibration_text(cameras_params):
    lines = ['Skeletool Camera Calibration File V1.0']
    for i, (intrinsic, extrinsic, size) in enumerate(cameras_params):
        lines += [f'name          {i}', '  sensor      10 10', f'  size        {size[0]} {size[1]}',
                  '  animated    0', '  intrinsic   ' + ' '.join(f'{v:.6f}' for v in intrinsic.ravel()),
                  '  extrinsic   ' + ' '.join(f'{v:.6f}' for v in extrinsic.ravel()), '  radial      0']
    return '\n'.join(lines) + '\n'


def _dots(camera, points_world, width, height, sigma=1.8, body=None):
    """Grey frame (45) with bright dots at the projected points; `body` = (mask, red level) paints the person's
    region in the red channel only (the dots are measured in green)."""
    canvas = np.full((height, width), 45.0, np.float32)
    for u, v in camera.world_to_image(points_world):
        if 10 <= u < width - 10 and 10 <= v < height - 10:
            y0, x0 = int(v) - 8, int(u) - 8
            ys, xs = np.mgrid[y0:y0 + 17, x0:x0 + 17]
            canvas[y0:y0 + 17, x0:x0 + 17] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * sigma ** 2))
    frame = np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    if body is not None:
        mask, level = body
        frame[..., 0] = np.where(mask, np.maximum(frame[..., 0], level), frame[..., 0])
    return frame


BODY_RADIUS_PX = 16  # the fake person mask: pixels within this distance of the projected skeleton


def person_mask(camera, world28, width, height):
    """The fake FGmasks silhouette: thick lines along the 3DHP edges and discs at the joints (bool H, W)."""
    import cv2
    from posepile.ds.tdhp import main as tdhp
    from posepile.joint_info import JointInfo
    mask = np.zeros((height, width), np.uint8)
    pixels = camera.world_to_image(world28)
    for i, j in JointInfo(tdhp.ALL_JOINT_NAMES, tdhp.ALL_JOINT_EDGES).stick_figure_edges:
        a, b = np.round(pixels[[i, j]] * 16).astype(np.int64)
        cv2.line(mask, tuple(int(x) for x in a), tuple(int(x) for x in b), 1, 2 * BODY_RADIUS_PX, cv2.LINE_8, 4)
    for u, v in np.round(pixels * 16).astype(np.int64):
        cv2.circle(mask, (int(u), int(v)), BODY_RADIUS_PX * 16, 1, -1, cv2.LINE_8, 4)
    return mask.astype(bool)


def chair_mask(camera, world28, width, height):
    """The fake ChairMasks region: a box below the pelvis (bool H, W)."""
    mask = np.zeros((height, width), bool)
    u, v = camera.world_to_image(world28[4:5])[0]
    x0, y0 = int(u) - 40, int(v) + 10
    mask[max(y0, 0):max(y0 + 50, 0), max(x0, 0):max(x0 + 80, 0)] = True
    return mask


def write_train_sequence(root, subject='S1', sequence='Seq1', n_frames=30, size=(512, 512), seed=0,
                         cameras=tuple(range(14)), masks=True, chairs=False, body_level=None, start_x=0.0,
                         drift_x_mm_per_frame=0.0):
    """S*/Seq*/annot.mat (v5; annot2/annot3/univ_annot3 cells of 14 cameras, frames, cameras),
    camera.calibration (14 cameras), imageSequence/video_{c}.avi for `cameras` (dots at the projected 28
    joints), FGmasks/video_{c}.avi (white silhouette, see person_mask) and, with `chairs`,
    ChairMasks/video_{c}.avi. `body_level` paints the silhouette into the red channel of the frames.
    `drift_x_mm_per_frame` moves the person sideways (+x) every frame: with a start_x of about a metre it
    walks out of view of some cameras (partly visible people). Returns the world poses (N, 28, 3) mm."""
    import scipy.io
    from posepile.ds.demo import scene
    from posepile.ds.tdhp import main as tdhp
    from posepile.util.video import write_video
    rng = np.random.default_rng(seed)
    folder = Path(root) / subject / sequence
    folder.mkdir(parents=True, exist_ok=True)
    walk17 = scene.person_poses(0, n_frames, 25).astype(np.float64)[..., [0, 2, 1]] * [1, 1, 1]
    walk17[..., :] -= walk17[:1, 0] * [1, 0, 1]
    walk17[..., 0] += start_x + drift_x_mm_per_frame * np.arange(n_frames)[:, np.newaxis]
    world = np.zeros((n_frames, 28, 3))
    names = tdhp.ALL_JOINT_NAMES.split(',')
    demo_names = scene.JOINT_NAMES.split(',')
    for j, name in enumerate(names):
        source = name if name in demo_names else {'spi3': 'spin', 'spi4': 'neck', 'spi2': 'spin', 'lcla': 'lsho',
                                                 'rcla': 'rsho', 'lhan': 'lwri', 'rhan': 'rwri', 'lfoo': 'lank',
                                                 'rfoo': 'rank', 'ltoe': 'lank', 'rtoe': 'rank'}[name]
        world[:, j] = walk17[:, demo_names.index(source)] + rng.normal(0, 25, 3)
    params, annot2, annot3 = [], [], []
    from posepile.util.camera import Camera
    for c in range(14):
        azimuth = 2 * np.pi * c / 14
        centre = np.array([4000 * np.sin(azimuth), 1000 + 300 * (c % 3), 4000 * np.cos(azimuth)])
        camera = Camera(optical_center=centre, world_up=(0, 1, 0))
        camera.turn_towards(target_world_point=[0, 900, 0])
        f = 0.9 * size[0]
        intrinsic = np.array([[f, 0, size[0] / 2, 0], [0, f, size[1] / 2, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
        params.append((intrinsic, camera.get_extrinsic_matrix(), size))
    (folder / 'camera.calibration').write_text(_calibration_text(params))
    all_cameras = tdhp.load_train_cameras(folder / 'camera.calibration')
    for c, camera in enumerate(all_cameras):
        cam_coords = camera.world_to_camera(world)
        annot3.append(cam_coords.reshape(n_frames, 84))
        annot2.append(camera.world_to_image(world).reshape(n_frames, 56))
    cell = np.empty((14, 1), dtype=object)
    for c in range(14):
        cell[c, 0] = annot3[c]
    cell2 = np.empty((14, 1), dtype=object)
    for c in range(14):
        cell2[c, 0] = annot2[c]
    scipy.io.savemat(str(folder / 'annot.mat'), {'annot2': cell2, 'annot3': cell, 'univ_annot3': cell,
                                                  'frames': np.arange(n_frames)[:, None], 'cameras': np.arange(14)})
    white = lambda m: np.repeat(m.astype(np.uint8)[..., None] * 255, 3, axis=2)  # noqa: E731
    for c in cameras:
        camera = all_cameras[c]
        silhouettes = [person_mask(camera, w, *size) for w in world]
        bodies = [(m, body_level) if body_level is not None else None for m in silhouettes]
        write_video(folder / 'imageSequence' / f'video_{c}.avi',
                    (_dots(camera, w, *size, body=b) for w, b in zip(world, bodies)), fps=25, quality=9)
        if masks:
            write_video(folder / 'FGmasks' / f'video_{c}.avi', (white(m) for m in silhouettes), fps=25, quality=9)
        if chairs:
            write_video(folder / 'ChairMasks' / f'video_{c}.avi',
                        (white(chair_mask(camera, w, *size)) for w in world), fps=25, quality=9)
    return world


def write_test_images(root, written):
    """TS*/imageSequence/img_%06d.jpg (1-based) with dots at the test camera's projection of annot3."""
    from posepile.ds.tdhp import main as tdhp
    from posepile.util import improc
    for sequence, data in written.items():
        camera = tdhp.test_camera(root, sequence)
        width, height = (2048, 2048) if sequence in ('TS1', 'TS2', 'TS3', 'TS4') else (1920, 1080)
        for i in range(len(data['valid_frame'])):
            world = camera.camera_to_world(data['annot3'][i])
            improc.write_jpeg_atomic(Path(root) / sequence / 'imageSequence' / f'img_{i + 1:06d}.jpg',
                                     _dots(camera, world, width, height, sigma=2.5), 95)
