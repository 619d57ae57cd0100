"""A tiny Ego-Exo4D release in the layout the official code reads. Evidence for the layout:
- takes.json ({take_uid, take_name, root_dir, frame_aligned_videos: {camera: {stream: {relative_path}}}}) and
  annotations/ego_pose/<split>/{body,hand}/automatic/<take_uid>.json + camera_pose/<take_uid>.json (per Aria camera
  'camera_extrinsics' {frame: 3x4 world -> camera}): EGO4D/ego-exo4d-egopose bodypose/data/dataset_egoexo.py and
  handpose/data_preparation/dataloader.py, the EgoPose page of docs.ego-exo4d-data.org (joint names 'left-shoulder'
  / 'left_thumb_1', {frame: [{annotation3D: {name: {x, y, z, num_views_for_3d}}}]});
- takes/<take>/trajectory/gopro_calibs.csv (T_world_cam in metres, quaternion qx qy qz qw, KANNALABRANDTK3
  intrinsics_0..7 = fx fy cx cy k0..k3, start/end_frame_idx): Project Aria's Ego-Exo4D data-format page and
  facebookresearch/Ego4d ego4d/internal/human_pose/camera.py (made a COLMAP OPENCV_FISHEYE camera);
- takes/<take>/trajectory/online_calibration.jsonl: Project Aria's MPS format (the format-only real file in
  realdata/ego_exo4d, SOURCES.md); the rgb Params here are Aria-like, not a real calibration;
- units: metres (original-posepile-facts "egoexo4d": t x 1000). No real Ego-Exo4D annotation is available here.

Frames: a grey video per camera with a Gaussian dot at every body joint (and hand joint) projected independently of
posepile: GoPros by cv2.fisheye.projectPoints, the Aria by Fisheye624 re-stated from Aria's FisheyeRadTanThinPrism
formula (`aria_project`), at the video's width (Params scaled from the 2880 px sensor). Uses `render_dots` and
`max_valid_theta` of tests/fakes/egohumans.py.
"""
import csv
import json
import uuid
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from tests.fakes.egohumans import look_at, max_valid_theta, render_dots

BODY = ['nose', 'left-eye', 'right-eye', 'left-ear', 'right-ear', 'left-shoulder', 'right-shoulder', 'left-elbow',
        'right-elbow', 'left-wrist', 'right-wrist', 'left-hip', 'right-hip', 'left-knee', 'right-knee', 'left-ankle',
        'right-ankle']
HAND_PARTS = ['wrist'] + [f'{f}_{i}' for f in ('thumb', 'index', 'middle', 'ring', 'pinky') for i in range(1, 5)]
HANDS = [f'{side}_{part}' for side in ('left', 'right') for part in HAND_PARTS]
EXO_W, EXO_H = 320, 240
EXO_PARAMS = [150.0, 151.0, 160.3, 119.6, 0.05, -0.01, 0.002, 0.0]  # fx fy cx cy k0..k3
ARIA_VIDEO = 320
# Aria-like Fisheye624 Params at the 2880 px sensor (f, cx, cy, k0..k5, p0, p1, s0..s3)
ARIA_PARAMS_2880 = [1220.0, 1461.1, 1447.1, 0.41, -0.456, 0.038, 1.298, -1.77, 0.655,
                    -8e-05, 4.4e-05, -0.0006, 0.00056, 0.0005, 0.00024]
TAKES = {'train': 'fair_cooking_01_2', 'val': 'unc_dance_02_3', 'test': 'iu_bike_05_1'}
MULTI_PERSON_FRAMES = (3,)  # frames annotated with two people (skipped)
CAM02_WINDOW = {'unc_dance_02_3': (2, 6)}  # stationary window of cam02 (frames outside it have no valid pose)


def take_uid(take_name):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f'egoexo4d-fake/{take_name}'))


def aria_params_at(width):
    params = np.array(ARIA_PARAMS_2880, np.float64)
    params[:3] *= width / 2880
    return params


def aria_project(cam_points, params):
    """Pixels of camera-frame points by Aria's Fisheye624 (re-stated from FisheyeRadTanThinPrism.h); NaN behind."""
    f, cx, cy = params[:3]
    k, (p0, p1), (s0, s1, s2, s3) = params[3:9], params[9:11], params[11:15]
    x, y, z = cam_points.T
    with np.errstate(divide='ignore', invalid='ignore'):
        a, b = x / z, y / z
        r = np.hypot(a, b)
        th = np.arctan(r)
        radial = th * (1 + sum(k[i] * th ** (2 * i + 2) for i in range(6)))
        xr, yr = radial * a / r, radial * b / r
    rd2 = xr * xr + yr * yr
    xd = xr + (2 * xr * xr + rd2) * p0 + 2 * xr * yr * p1 + s0 * rd2 + s1 * rd2 * rd2
    yd = yr + (2 * yr * yr + rd2) * p1 + 2 * xr * yr * p0 + s2 * rd2 + s3 * rd2 * rd2
    pixels = np.stack([f * xd + cx, f * yd + cy], axis=1)
    pixels[z <= 0] = np.nan
    return pixels


def exo_project(cam_points, params=EXO_PARAMS):
    """Pixels by cv2.fisheye (integer pixel centres) of camera-frame points; NaN behind or beyond the lens field."""
    fx, fy, cx, cy = params[:4]
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    pixels = cv2.fisheye.projectPoints(cam_points.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K,
                                       np.asarray(params[4:8], np.float64))[0].reshape(-1, 2)
    theta = np.arctan2(np.linalg.norm(cam_points[:, :2], axis=1), cam_points[:, 2])
    pixels[(cam_points[:, 2] <= 0) | (theta > max_valid_theta(params))] = np.nan
    return pixels


def person(rng, n_frames, centre):
    """(N, 17, 3), (N, 42, 3) metres: a person facing +y walking (some frames standing still), hands in front."""
    base = np.array([[0, 0.1, 1.62], [-0.03, 0.09, 1.66], [0.03, 0.09, 1.66], [-0.07, 0.02, 1.64],
                     [0.07, 0.02, 1.64], [-0.19, 0, 1.42], [0.19, 0, 1.42], [-0.25, 0.08, 1.15],
                     [0.25, 0.08, 1.15], [-0.18, 0.3, 1.0], [0.18, 0.3, 1.0], [-0.11, 0, 0.92], [0.11, 0, 0.92],
                     [-0.12, 0.05, 0.5], [0.12, 0.05, 0.5], [-0.12, 0, 0.08], [0.12, 0, 0.08]])
    hand = np.array([[0, 0, 0]] + [[dx, 0.025 * i, -0.01 * i] for dx in (-0.035, -0.015, 0.0, 0.015, 0.03)
                                    for i in range(1, 5)], np.float64)
    hand *= 1.6  # big hands: the dots stay apart in the ego view
    steps = rng.normal(0, 0.1, (n_frames, 1, 3)) * [1, 1, 0]
    steps[0] = 0
    steps[rng.random(n_frames) < 0.3] = 0
    offsets = np.cumsum(steps, axis=0) + centre
    body = base[None] + offsets
    reach = rng.normal(0, 0.06, (n_frames, 2, 1, 3))  # the hands move relative to the head
    reach[rng.random(n_frames) < 0.3] = 0
    hands = np.concatenate([base[9] + hand * [-1, 1, 1] + reach[:, 0], base[10] + hand + reach[:, 1]], axis=1)
    body[:, 9] += reach[:, 0, 0]
    body[:, 10] += reach[:, 1, 0]
    return body, hands + offsets


def aria_pose(body_frame):
    """(R world -> camera, centre m) of an Aria at the eyes looking forward (+y) and 50 deg down."""
    eyes = body_frame[1:3].mean(0) + [0, 0.03, 0]
    forward = np.array([0, np.cos(np.deg2rad(50)), -np.sin(np.deg2rad(50))])
    return look_at(eyes, eyes + forward), eyes


def _annotation(points_by_person, names):
    return [{'annotation3D': {n: {'x': float(p[0]), 'y': float(p[1]), 'z': float(p[2]), 'num_views_for_3d': 3}
                              for n, p in zip(names, pts) if np.all(np.isfinite(p))},
             'annotation2D': {}} for pts in points_by_person]


def write_fake_release(root, seed=0, n_frames=8):
    """Write takes under root (= $DATA_ROOT/egoexo4d); returns the truth per take:
    {take_name: {'split', 'uid', 'body' (N, 17, 3) m, 'hands' (N, 42, 3) m (NaN = not annotated), 'exo': {cam: (R,
    centre m, window)}, 'aria': [(R, centre m)] per frame, 'multi': frames with two people}}."""
    from posepile.util.video import write_video
    rng = np.random.default_rng(seed)
    root = Path(root)
    takes, truth = [], {}
    for split, take_name in TAKES.items():
        uid = take_uid(take_name)
        body, hands = person(rng, n_frames, centre=np.array([0.0, 0.0, 0.0]))
        body[min(2, n_frames - 1), 3] = np.nan  # an unannotated left ear
        hands[min(5, n_frames - 1), 21:] = np.nan  # the right hand not annotated in frame 5
        take_dir = root / 'takes' / take_name
        videos = {}
        exo = {}
        calib_rows = []
        for c, cam in enumerate(('cam01', 'cam02')):
            angle = np.deg2rad(70 + 60 * c)
            position = np.array([np.cos(angle) * 3.2, np.sin(angle) * 3.2, 1.3])
            R = look_at(position, [0, 0, 0.9])
            window = CAM02_WINDOW.get(take_name, (-1, -1)) if cam == 'cam02' else (-1, -1)
            exo[cam] = (R, position, window)
            q = Rotation.from_matrix(R.T).as_quat()
            calib_rows.append(dict(
                cam_uid=cam, graph_uid='g1', tx_world_cam=position[0], ty_world_cam=position[1],
                tz_world_cam=position[2], qx_world_cam=q[0], qy_world_cam=q[1], qz_world_cam=q[2],
                qw_world_cam=q[3], image_width=EXO_W, image_height=EXO_H, intrinsics_type='KANNALABRANDTK3',
                **{f'intrinsics_{i}': v for i, v in enumerate(EXO_PARAMS)}, start_frame_idx=window[0],
                end_frame_idx=window[1]))
            frames = [render_dots(exo_project((np.concatenate([body[i], hands[i]]) - position) @ R.T), EXO_W, EXO_H)
                      for i in range(n_frames)]
            write_video(take_dir / 'frame_aligned_videos' / f'{cam}.mp4', frames, fps=30, quality=9)
            videos[cam] = {'0': {'relative_path': f'frame_aligned_videos/{cam}.mp4'}}
        trajectory = take_dir / 'trajectory'
        trajectory.mkdir(parents=True, exist_ok=True)
        with open(trajectory / 'gopro_calibs.csv', 'w', newline='') as f:
            writer = csv.DictWriter(f, list(calib_rows[0]))
            writer.writeheader()
            writer.writerows(calib_rows)
        record = {'utc_timestamp_ns': 1, 'tracking_timestamp_us': 1, 'ImuCalibrations': [], 'CameraCalibrations': [
            {'Calibrated': True, 'Label': 'camera-rgb', 'SerialNumber': '0',
             'Projection': {'Name': 'FisheyeRadTanThinPrism', 'Description': 'see FisheyeRadTanThinPrism.h',
                            'Params': ARIA_PARAMS_2880},
             'T_Device_Camera': {'Translation': [0, 0, 0], 'UnitQuaternion': [1, [0, 0, 0]]}}]}
        (trajectory / 'online_calibration.jsonl').write_text(json.dumps(record) + '\n')

        aria, extrinsics, frames = [], {}, []
        params = aria_params_at(ARIA_VIDEO)
        for i in range(n_frames):
            R, centre = aria_pose(body[i])
            aria.append((R, centre))
            extrinsics[str(i)] = np.concatenate([R, (-R @ centre)[:, None]], 1).tolist()
            frames.append(render_dots(aria_project((np.concatenate([body[i], hands[i]]) - centre) @ R.T, params),
                                      ARIA_VIDEO, ARIA_VIDEO))
        write_video(take_dir / 'frame_aligned_videos' / 'aria01_214-1.mp4', frames, fps=30, quality=9)
        videos['aria01'] = {'rgb': {'relative_path': 'frame_aligned_videos/aria01_214-1.mp4'}}
        takes.append({'take_uid': uid, 'take_name': take_name, 'root_dir': f'takes/{take_name}',
                      'frame_aligned_videos': videos})

        annotation_dir = root / 'annotations' / 'ego_pose' / split
        body_json, hand_json = {}, {}
        for i in range(n_frames):
            bodies, hand_sets = [body[i]], [hands[i]]
            if i in MULTI_PERSON_FRAMES:
                bodies.append(body[i] + [1.5, 0, 0])
                hand_sets.append(hands[i] + [1.5, 0, 0])
            body_json[str(i)] = _annotation(bodies, BODY)
            hand_json[str(i)] = _annotation(hand_sets, HANDS)
        for kind, content in (('body', body_json), ('hand', hand_json)):
            (annotation_dir / kind / 'automatic').mkdir(parents=True, exist_ok=True)
            (annotation_dir / kind / 'automatic' / f'{uid}.json').write_text(json.dumps(content))
        camera_pose = {'metadata': {'take_uid': uid, 'take_name': take_name},
                       'aria01': {'camera_intrinsics': [[150, 0, 255.5], [0, 150, 255.5], [0, 0, 1]],
                                  'camera_extrinsics': extrinsics}}
        for cam, (R, position, _) in exo.items():
            camera_pose[cam] = {'camera_intrinsics': [[120, 0, 160], [0, 120, 120], [0, 0, 1]],
                                'camera_extrinsics': np.concatenate([R, (-R @ position)[:, None]], 1).tolist()}
        (annotation_dir / 'camera_pose').mkdir(parents=True, exist_ok=True)
        (annotation_dir / 'camera_pose' / f'{uid}.json').write_text(json.dumps(camera_pose))
        truth[take_name] = dict(split=split, uid=uid, body=body, hands=hands, exo=exo, aria=aria,
                                multi=MULTI_PERSON_FRAMES)
    (root / 'takes.json').write_text(json.dumps(takes))
    return truth
