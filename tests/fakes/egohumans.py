"""A tiny EgoHumans release in the layout the official toolkit reads (rawalkhirodkar/egohumans: assets/DOWNLOAD.md for
the folders; lib/datasets/ego_exo_scene.py for colmap/workplace/{cameras.txt, images.txt,
colmap_from_aria_transforms.pkl} (the camera of an exo folder found through images.txt names '<cam>/<t>.jpg') and
processed_data/poses3d/<t:05d>.npy = {aria name: (17, 4)}; aria_human.py for ego/aria*/calib/<t:05d>.txt (a header
line, then id and (intrinsics, extrinsics) of rgb, left, right; extrinsics as 12 numbers = the 3x4's columns);
aria_camera.py for images/rgb being the sensor image rotated 90 deg clockwise; exo_camera.py for the nearest
keyframe's extrinsics, COLMAP world -> camera composed with colmap_from_aria[aria01], and manual <cam>.npy
extrinsics). COLMAP's text formats and its pixel convention (centres at +0.5) as documented by COLMAP. Units as
original-posepile-facts "egohumans" (metres). The Aria COLMAP lens is the toolkit's hard-coded OPENCV_FISHEYE k1..k4
(aria_camera.py), with the focal length scaled to the small frames. No real EgoHumans file is available here.

The frames show a Gaussian dot at every joint projected by OpenCV's fisheye model (cv2.fisheye.projectPoints, the
Kannala-Brandt lens COLMAP's OPENCV_FISHEYE is): an Aria frame is rendered in the sensor orientation and then
rotated with cv2.rotate(ROTATE_90_CLOCKWISE), as the released frames are.
"""
import pickle
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

BACKGROUND = 45.0
GROUP, SEQUENCE = '01_tagging', '001_tagging'
ARIAS = ['aria01', 'aria02', 'aria03']
EXOS = ['cam01', 'cam02']
ARIA_SIZE = 240  # square sensor image (the real one is 1408)
ARIA_PARAMS = [104.0, 104.5, 120.0, 120.0, 0.40003139535703836, -0.55946670947205268, 0.76795773277897017,
               -0.43835076136009982]  # fx fy cx cy (COLMAP pixels) k1..k4
EXO_W, EXO_H = 320, 240
EXO_PARAMS = [150.0, 151.0, 160.0, 121.0, 0.05, -0.01, 0.002, 0.0]
COLMAP_SCALE = 0.37  # COLMAP units per metre
CAM01_KEYFRAMES = (1, 5)
EGO_VALID_RADIUS_PX = 500.0 * ARIA_SIZE / 1408


def render_dots(pixels, width, height, sigma=1.6, image=None):
    """(H, W, 3) uint8 grey image with a Gaussian dot at every pixel position (dots near the border skipped)."""
    canvas = np.full((height, width), BACKGROUND, np.float32) if image is None else image
    for u, v in pixels:
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        x0, y0 = int(round(u)) - 8, int(round(v)) - 8
        if not (0 <= x0 and x0 + 17 <= width and 0 <= y0 and y0 + 17 <= height):
            continue
        ys, xs = np.mgrid[y0:y0 + 17, x0:x0 + 17]
        canvas[y0:y0 + 17, x0:x0 + 17] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * sigma ** 2))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def fisheye_project(points_world, R, center, params):
    """Pixels (posepile convention: centres at integers) by cv2.fisheye of world points (camera in front only:
    NaN for z <= 0); R world->camera, center the optical centre, params COLMAP OPENCV_FISHEYE."""
    fx, fy, cx, cy = params[:4]
    K = np.array([[fx, 0, cx - 0.5], [0, fy, cy - 0.5], [0, 0, 1]])
    cam = (np.asarray(points_world, np.float64) - center) @ R.T
    pixels = cv2.fisheye.projectPoints(cam.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K,
                                       np.asarray(params[4:8], np.float64))[0].reshape(-1, 2)
    theta = np.arctan2(np.linalg.norm(cam[:, :2], axis=1), cam[:, 2])
    pixels[(cam[:, 2] <= 0) | (theta > max_valid_theta(params))] = np.nan
    return pixels


def max_valid_theta(params):
    """The angle (rad) where theta_d = theta (1 + k1 theta^2 + ... + k4 theta^8) stops increasing: a real lens images
    nothing beyond it (cv2.fisheye would fold such points back into the image)."""
    theta = np.linspace(0, np.pi, 200001)
    k1, k2, k3, k4 = params[4:8]
    theta_d = theta * (1 + k1 * theta ** 2 + k2 * theta ** 4 + k3 * theta ** 6 + k4 * theta ** 8)
    decreasing = np.flatnonzero(np.diff(theta_d) <= 0)
    return theta[decreasing[0]] if decreasing.size else np.pi


def look_at(position, target, up=(0, 0, 1)):
    forward = np.asarray(target, np.float64) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(forward, right), forward])


ROT_CW = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], np.float64)  # upright camera = ROT_CW @ sensor camera


def rotate_pixels_clockwise(pixels, sensor_height):
    """Sensor pixels -> pixels of the frame rotated 90 deg clockwise (cv2.ROTATE_90_CLOCKWISE)."""
    return np.stack([sensor_height - 1 - pixels[:, 1], pixels[:, 0]], axis=1)


def person_tracks(rng, n_frames):
    """{aria: (N, 17, 3) m}: people on a ring of radius 1.4 m facing its centre, random-walking (some frames
    standing still)."""
    base = np.array([[0, 0, 0.93], [-0.03, 0.02, 0.95], [0.03, 0.02, 0.95], [-0.07, 0, 0.94], [0.07, 0, 0.94],
                     [-0.12, 0, 0.82], [0.12, 0, 0.82], [-0.17, 0, 0.65], [0.17, 0, 0.65], [-0.2, 0.05, 0.5],
                     [0.2, 0.05, 0.5], [-0.08, 0, 0.52], [0.08, 0, 0.52], [-0.09, 0.02, 0.28],
                     [0.09, 0.02, 0.28], [-0.09, 0, 0.04], [0.09, 0, 0.04]]) * 1.7
    tracks = {}
    for k, aria in enumerate(ARIAS):
        angle = 2 * np.pi * k / len(ARIAS) + rng.uniform(-0.2, 0.2)
        facing = -np.array([np.cos(angle), np.sin(angle), 0])  # the body's +y (nose side) towards the centre
        side = np.cross(facing, [0, 0, 1])
        body = base[:, 0:1] * -side + base[:, 1:2] * facing + base[:, 2:3] * np.array([0, 0, 1])
        steps = rng.normal(0, 0.05, (n_frames, 17, 3))
        steps[0] = 0
        steps[rng.random(n_frames) < 0.3] = 0
        tracks[aria] = body + np.array([np.cos(angle), np.sin(angle), 0]) * rng.uniform(1.2, 1.6) + \
            np.cumsum(steps, axis=0)
    return tracks


def ego_camera_truth(joints, rng_pitch):
    """(R upright world->camera, optical centre m) of an Aria worn at the eyes, looking at the ring's centre
    and pitched down."""
    eyes = joints[1:3].mean(0)
    forward = -eyes * [1, 1, 0]
    forward = forward / np.linalg.norm(forward) + [0, 0, -np.tan(rng_pitch)]
    return look_at(eyes + 0.02 * forward, eyes + forward), eyes + 0.02 * forward


def similarity(rng, scale):
    matrix = np.eye(4)
    matrix[:3, :3] = scale * Rotation.random(random_state=rng.integers(1 << 30)).as_matrix()
    matrix[:3, 3] = rng.uniform(-2, 2, 3)
    return matrix


def colmap_image_line(image_id, P, camera_id, name):
    q = Rotation.from_matrix(P[:3, :3]).as_quat()  # x y z w
    values = [q[3], q[0], q[1], q[2], *P[:3, 3]]
    return f'{image_id} ' + ' '.join(f'{v:.17g}' for v in values) + f' {camera_id} {name}\n\n'


def write_fake_release(root, seed=0, n_frames=6):
    """Write one sequence under root (= $DATA_ROOT/egohumans); returns the ground truth:
    {'joints_m': {aria: (N, 17, 3)}, 'ego': {aria: [(R_upright, centre_m)] per frame},
     'exo': {cam: [(R, centre_m)] per frame}, 'frames': [1..N]}."""
    rng = np.random.default_rng(seed)
    seq = Path(root) / GROUP / SEQUENCE
    workplace = seq / 'colmap' / 'workplace'
    workplace.mkdir(parents=True, exist_ok=True)
    frames = list(range(1, n_frames + 1))
    tracks = person_tracks(rng, n_frames)
    transforms = {aria: similarity(rng, COLMAP_SCALE) for aria in ARIAS}  # Aria frame -> COLMAP, common scale
    anchor = transforms['aria01']  # world = aria01's frame

    # the poses (world = aria01 frame, metres, + a score column)
    poses_dir = seq / 'processed_data' / 'poses3d'
    poses_dir.mkdir(parents=True)
    for i, frame in enumerate(frames):
        data = {aria: np.concatenate([tracks[aria][i], np.ones((17, 1))], 1) for aria in ARIAS}
        np.save(poses_dir / f'{frame:05d}.npy', data, allow_pickle=True)

    everyone = [tracks[a] for a in ARIAS]
    truth = {'joints_m': tracks, 'ego': {}, 'exo': {}, 'frames': frames}
    # ego: per-frame calibration (sensor-oriented camera in the Aria's own frame), rotated frames
    for k, aria in enumerate(ARIAS):
        pitch = np.deg2rad(rng.uniform(8, 18))
        calib_dir = seq / 'ego' / aria / 'calib'
        image_dir = seq / 'ego' / aria / 'images' / 'rgb'
        calib_dir.mkdir(parents=True)
        image_dir.mkdir(parents=True)
        truth['ego'][aria] = []
        for i, frame in enumerate(frames):
            R_up, centre = ego_camera_truth(tracks[aria][i], pitch)
            R_sensor = ROT_CW.T @ R_up
            world_to_cam = np.eye(4)
            world_to_cam[:3, :3], world_to_cam[:3, 3] = R_sensor, -R_sensor @ centre
            # X_cam = E inv(C_k) C_1 X  ->  E = [R|t] inv(C_1) C_k (rigid: the scales are equal)
            E = (world_to_cam @ np.linalg.inv(anchor) @ transforms[aria])[:3]
            intrinsics = ' '.join(f'{v:.6f}' for v in [ARIA_PARAMS[0], ARIA_PARAMS[2], ARIA_PARAMS[3]] + [0.0] * 12)
            extrinsics = ' '.join(f'{v:.17g}' for v in E.T.reshape(-1))
            (calib_dir / f'{frame:05d}.txt').write_text(
                'Serial, intrinsics (radtanthinprsim), extrinsic (3x4)\n'
                f'{aria}\n{intrinsics}\n{extrinsics}\n{intrinsics}\n{extrinsics}\n{intrinsics}\n{extrinsics}\n')
            truth['ego'][aria].append((R_up, centre))
            pixels = np.concatenate([fisheye_project(p[i], R_sensor, centre, ARIA_PARAMS) for p in everyone])
            sensor = render_dots(pixels, ARIA_SIZE, ARIA_SIZE)
            cv2.imwrite(str(image_dir / f'{frame:05d}.jpg'), cv2.rotate(sensor, cv2.ROTATE_90_CLOCKWISE),
                        [cv2.IMWRITE_JPEG_QUALITY, 98])

    # exo: cam01 from two keyframes of images.txt (slightly different), cam02 from its manual cam02.npy
    centre_of_ring = np.mean([t[0].mean(0) for t in everyone], axis=0)
    lines, image_id = [], 1
    for aria_index, aria in enumerate(ARIAS):
        lines.append(colmap_image_line(image_id, np.eye(4), 1 + aria_index, f'{aria}/00001.jpg'))
        image_id += 1
    exo_truth = {}
    for c, cam in enumerate(EXOS):
        angle = np.pi / 3 + c * np.pi * 0.9
        position = np.array([np.cos(angle) * 3.6, np.sin(angle) * 3.6, rng.uniform(1.0, 1.6)])
        R = look_at(position, centre_of_ring + [0, 0, -0.1])
        keyframes = {}
        for key in (CAM01_KEYFRAMES if cam == 'cam01' else (1,)):
            turn = Rotation.from_rotvec(rng.normal(0, np.deg2rad(2.0), 3)).as_matrix() if key != 1 else np.eye(3)
            keyframes[key] = (turn @ R, position)
        exo_truth[cam] = keyframes
        camera_id = 1 + len(ARIAS) + c
        for key, (Rk, pk) in sorted(keyframes.items()):
            metric = np.eye(4)
            metric[:3, :3], metric[:3, 3] = Rk, -Rk @ pk
            P = COLMAP_SCALE * metric @ np.linalg.inv(anchor)
            if cam == 'cam02':  # manual extrinsics in cam02.npy; its images.txt pose is a stale one
                np.save(workplace / 'cam02.npy', P)
                P = P.copy()
                P[:3, :3] = Rotation.from_rotvec([0.3, 0, 0]).as_matrix() @ P[:3, :3]
            lines.append(colmap_image_line(image_id, P, camera_id, f'{cam}/{key:05d}.jpg'))
            image_id += 1
    (workplace / 'images.txt').write_text(
        '# Image list with two lines of data per image:\n'
        '#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n'
        '#   POINTS2D[] as (X, Y, POINT3D_ID)\n'
        f'# Number of images: {image_id - 1}, mean observations per image: 0\n' + ''.join(lines))
    camera_lines = [f'{1 + i} OPENCV_FISHEYE {ARIA_SIZE} {ARIA_SIZE} ' + ' '.join(map(str, ARIA_PARAMS)) + '\n'
                    for i in range(len(ARIAS))]
    camera_lines += [f'{1 + len(ARIAS) + c} OPENCV_FISHEYE {EXO_W} {EXO_H} ' + ' '.join(map(str, EXO_PARAMS)) + '\n'
                     for c in range(len(EXOS))]
    (workplace / 'cameras.txt').write_text(
        '# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n'
        f'# Number of cameras: {len(camera_lines)}\n' + ''.join(camera_lines))
    with open(workplace / 'colmap_from_aria_transforms.pkl', 'wb') as f:
        pickle.dump(transforms, f)
    with open(workplace / 'aria_from_colmap_transforms.pkl', 'wb') as f:
        pickle.dump({k: np.linalg.inv(v) for k, v in transforms.items()}, f)

    for cam, keyframes in exo_truth.items():
        image_dir = seq / 'exo' / cam / 'images'
        image_dir.mkdir(parents=True)
        truth['exo'][cam] = []
        for i, frame in enumerate(frames):
            nearest = min(keyframes, key=lambda k: (abs(k - frame), k))
            R, position = keyframes[nearest]
            truth['exo'][cam].append((R, position))
            pixels = np.concatenate([fisheye_project(p[i], R, position, EXO_PARAMS) for p in everyone])
            cv2.imwrite(str(image_dir / f'{frame:05d}.jpg'), render_dots(pixels, EXO_W, EXO_H),
                        [cv2.IMWRITE_JPEG_QUALITY, 98])
    return truth
