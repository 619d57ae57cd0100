"""A tiny SLOPER4D release: <seq>/<seq>_labels.pkl and <seq>/rgb_data/<seq>.MP4 per sequence.

Layout evidence: the official toolkit climbingdaily/SLOPER4D (src/data_loader.py: the pickle's SMPL_info {fps,
gender}, RGB_info {fps, width, height, intrinsics [fx, fy, cx, cy], lidar2cam, dist}, RGB_frames {file_basename,
bbox (x1 y1 x2 y2, empty when missing), skel_2d, cam_pose (4x4 world to camera, m), extrinsic, tstamp,
lidar_tstamps, smpl_pose (72), global_trans, beta (10), human_points}; src/vid2imgs.py: file_basename =
'%.6f' % (frame / fps) + '.jpg', the video at rgb_data/<seq>.MP4; vis_utils.camera_to_pixel: OpenCV's 5-coefficient
distortion). No real SLOPER4D file is available here. World z up (the LiDAR map).

The bodies are toy SMPL models (tests/toy_bodymodels.py, the sequence's gender) posed by forward kinematics computed
here; each labelled frame shows a Gaussian dot at every joint projected by OpenCV's projectPoints with the released
distortion. Per sequence: one row without a label (empty smpl_pose and bbox: the toolkit's missing label), one row
whose bbox lies beside the body (fewer than 6 joints inside), and some rows repeating the previous pose (dropped by
the sampler).
"""
import pickle
from pathlib import Path

import cv2
import numpy as np

from tests.fakes.freeman import render_dots
from tests.fakes.genebody import forward_kinematics
from tests.toy_bodymodels import PARENTS, write_toy_model

WIDTH, HEIGHT = 320, 240
FOCAL_PX = 260.0
FPS = 29.97
SEQUENCES = {'seq002_football_001': 'male', 'seq003_street_002': 'female'}
N_VIDEO_FRAMES = 26
LABELLED_FRAMES = tuple(range(1, 26, 2))  # every 2nd frame carries a label row (13 rows)
UNLABELLED_FRAME = 5
BOX_BESIDE_FRAME = 9
TOY_SCALE = 2.0
DEPTH_M = 9.0
DISTORTION = np.array([-0.25, 0.05, 0.0015, -0.001, 0.0])  # strong: ignoring it moves the dots by pixels
# camera looking along world +y, z up: x_cam = x, y_cam = -z, z_cam = y
BASE_ROTATION = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])


def basename(frame, fps=FPS):
    return f'{frame / fps:.06f}.jpg'


def write_fake_release(data_root, seed=0):
    """Write body_models/smpl/SMPL_<GENDER>.pkl and sloper4d/<seq>/ under data_root; returns {'models': {gender:
    toy arrays}, 'rows': [dict(seq, frame, labelled, params (world), cam_pose, K, bbox_xyxy, joints_world_m)]}."""
    from posepile.util.video import write_video
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    models = {gender: write_toy_model(data_root / 'body_models', 'smpl', gender, seed=7 + i, scale=TOY_SCALE)[0]
              for i, gender in enumerate(sorted(set(SEQUENCES.values())))}
    K = np.array([[FOCAL_PX, 0, WIDTH / 2 + 2.5], [0, FOCAL_PX * 1.002, HEIGHT / 2 - 1.5], [0, 0, 1]])
    rows = []
    for seq, gender in SEQUENCES.items():
        betas = rng.normal(0, 0.5, 10)
        pose = rng.normal(0, 0.15, 72)
        centre_world = np.array([rng.uniform(-5, 5), rng.uniform(-5, 5), 1.2])  # the LiDAR wearer walks
        images = {}
        frames = {key: [] for key in ('file_basename', 'bbox', 'skel_2d', 'cam_pose', 'extrinsic', 'tstamp',
                                      'lidar_tstamps', 'smpl_pose', 'global_trans', 'beta', 'human_points')}
        for frame in LABELLED_FRAMES:
            if frame > LABELLED_FRAMES[0] and rng.random() > 0.3:
                pose = pose + rng.normal(0, 0.15, 72)  # otherwise the same pose: dropped by the sampler
            centre_world = centre_world + [0.05, 0.1, 0]
            R = cv2.Rodrigues(rng.uniform(-0.08, 0.08, 3))[0] @ BASE_ROTATION
            body_cam = np.array([rng.uniform(-0.2, 0.2), 0.1, DEPTH_M])
            trans = R.T @ (body_cam - np.zeros(3)) + centre_world  # the body DEPTH_M in front of the camera
            t_m = -R @ centre_world  # cam_pose translation: X_cam = R X + t
            cam_pose = np.eye(4)
            cam_pose[:3, :3], cam_pose[:3, 3] = R, t_m
            joints = forward_kinematics(models[gender], PARENTS['smpl'], pose, betas, trans)
            pixels = cv2.projectPoints(joints, cv2.Rodrigues(R)[0], t_m, K, DISTORTION)[0][:, 0]
            x0, y0 = pixels.min(0)
            x1, y1 = pixels.max(0)
            pad = 0.05 * max(x1 - x0, y1 - y0)
            bbox = np.array([x0 - pad, y0 - pad, x1 + pad, y1 + pad])
            if frame == BOX_BESIDE_FRAME:
                bbox = bbox + [x1 - x0 + 3 * pad, 0, x1 - x0 + 3 * pad, 0]  # beside the body: no joint inside
            labelled = frame != UNLABELLED_FRAME
            images[frame] = render_dots(pixels, WIDTH, HEIGHT) if labelled else render_dots(np.zeros((0, 2)), WIDTH,
                                                                                           HEIGHT)
            frames['file_basename'].append(basename(frame))
            frames['bbox'].append(bbox.tolist() if labelled else [])
            frames['skel_2d'].append(np.concatenate([pixels[:17], np.ones((17, 1))], 1).ravel().tolist()
                                     if labelled else [])
            frames['cam_pose'].append(cam_pose)
            frames['extrinsic'].append(cam_pose.ravel())
            frames['tstamp'].append(frame / FPS)
            frames['lidar_tstamps'].append(1.67e9 + frame / FPS)
            frames['smpl_pose'].append(pose.copy() if labelled else [])
            frames['global_trans'].append(trans.copy())
            frames['beta'].append(betas.copy())
            frames['human_points'].append(rng.normal(0, 0.3, (20, 3)) + centre_world)
            rows.append(dict(seq=seq, frame=frame, labelled=labelled, gender=gender, cam_pose=cam_pose, K=K,
                             bbox_xyxy=bbox, joints_world_m=joints,
                             params=dict(pose=pose.copy(), shape=betas.copy(), trans=trans.copy())))
        frames['cam_pose'] = np.array(frames['cam_pose'])
        labels = {'LiDAR_info': {'fps': 20}, 'SMPL_info': {'fps': 20, 'gender': gender},
                  'RGB_info': {'fps': FPS, 'width': WIDTH, 'height': HEIGHT,
                               'intrinsics': [K[0, 0], K[1, 1], K[0, 2], K[1, 2]],
                               'lidar2cam': np.eye(4).ravel().tolist(), 'dist': DISTORTION.tolist()},
                  'RGB_frames': frames}
        seq_dir = data_root / 'sloper4d' / seq
        seq_dir.mkdir(parents=True, exist_ok=True)
        (seq_dir / f'{seq}_labels.pkl').write_bytes(pickle.dumps(labels, protocol=4))
        video = [images.get(f, render_dots(np.zeros((0, 2)), WIDTH, HEIGHT)) for f in range(N_VIDEO_FRAMES)]
        write_video(seq_dir / 'rgb_data' / f'{seq}.MP4', video, fps=FPS, quality=9)
    return {'models': models, 'rows': rows, 'K': K}
