"""A tiny BEHAVE release in the raw layout (see posepile/ds/behave/main.py) with toy SMPL and SMPL+H models.

sequences/Date01_Sub01_boxlarge_hand (train, male; info.json names the calibrations with the authors' absolute
paths) with 5 frames whose poses are P0, P0 + 1 mm, P1, P0 again (a return the 100-pose buffer remembers), P2;
sequences/Date03_Sub03_chairwood_sit (test, female; relative calibration paths) with 2 distinct frames, whose
Kinect 3 looks past the person (empty box). 4 Kinects, 2048x1536 grey colour images with a bright dot at every
projected joint (24 SMPL joints of the fit and 25 OpenPose joints), person masks = the joints' box + 3 px.
"""
import json
import pickle
from pathlib import Path

import cv2
import numpy as np

from tests.toy_bodymodels import PARENTS, write_toy_model

WIDTH, HEIGHT = 2048, 1536
BACKGROUND = 45.0
DISTANCE_M = 4.0
FOCAL_PX = 976.0
DISTORTION = {'k1': 0.05, 'k2': -0.02, 'p1': 1e-4, 'p2': -2e-4, 'k3': 0.001, 'k4': 0.04, 'k5': -0.015, 'k6': 0.001}
MODEL_SCALE = 1.5
YAWS = {0: -70.0, 1: -20.0, 2: 30.0, 3: 80.0}
SEQUENCES = {
    'Date01_Sub01_boxlarge_hand': dict(gender='male', train=True, date='Date01', frames=(0, 0.001, 1, 0, 2),
                                       absolute=True, away=()),
    'Date03_Sub03_chairwood_sit': dict(gender='female', train=False, date='Date03', frames=(0, 1),
                                       absolute=False, away=(3,)),
}
SPLIT_EXTRA_TEST = ['Date04_Sub05_yogamat']  # listed in split.json but not in the release


def camera_for_yaw(yaw_deg):
    """(optical centre (3,) m, R world-to-camera) on a circle around the origin, looking at it (y down)."""
    yaw = np.deg2rad(yaw_deg)
    centre = DISTANCE_M * np.array([np.sin(yaw), 0.0, -np.cos(yaw)])
    rotation = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    return centre, rotation


def intrinsics():
    return np.array([[FOCAL_PX, 0, 1024.3], [0, FOCAL_PX * 1.001, 770.2], [0, 0, 1]])


def project(points_mm, centre_m, rotation, K):
    """Pixels by OpenCV's projectPoints with the rational 8-coefficient model (k1, k2, p1, p2, k3, k4, k5, k6)."""
    rvec = cv2.Rodrigues(rotation)[0]
    tvec = -rotation @ (centre_m * 1000)
    dist = np.array([DISTORTION[k] for k in ('k1', 'k2', 'p1', 'p2', 'k3', 'k4', 'k5', 'k6')])
    return cv2.projectPoints(np.asarray(points_mm, np.float64), rvec, tvec, K, dist)[0][:, 0]


def forward_kinematics(arrays, parents, pose, betas, trans):
    """(J, 3) m: joints of a toy model, computed from its arrays (independent of posepile.bodymodels)."""
    from tests.fakes import genebody
    return genebody.forward_kinematics(arrays, parents, pose, betas, trans)


def render(pixels, mask_box=None, sigma=2.0):
    """(RGB image with a dot at each pixel, uint8 mask 255 inside mask_box), WIDTH x HEIGHT."""
    from tests.fakes import genebody
    return genebody.render(pixels, WIDTH, HEIGHT, mask_box, sigma)


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def write_calibrations(root):
    """{date: {kinect: (centre m, R)}}; a Kinect listed in a sequence's 'away' is moved 25 m sideways on that
    sequence's date (the person then projects far left of the image)."""
    cameras = {}
    for kinect, yaw in YAWS.items():
        color = {'fx': FOCAL_PX, 'fy': FOCAL_PX * 1.001, 'cx': 1024.3, 'cy': 770.2, **DISTORTION,
                 'codx': 0, 'cody': 0, 'metric_radius': 0}
        write_json(root / 'calibs' / 'intrinsics' / str(kinect) / 'calibration.json',
                   {'color': color, 'depth': dict(color, fx=504.0, fy=504.0)})
    for spec in SEQUENCES.values():
        cameras[spec['date']] = {}
        for kinect, yaw in YAWS.items():
            centre, rotation = camera_for_yaw(yaw)
            if kinect in spec['away']:
                centre = centre + rotation[0] * 25.0
            cameras[spec['date']][kinect] = (centre, rotation)
            # stored row-major as the camera-to-world rotation: the transpose of world-to-camera
            write_json(root / 'calibs' / spec['date'] / 'config' / str(kinect) / 'config.json',
                       {'rotation': rotation.T.ravel().tolist(), 'translation': centre.tolist()})
    return cameras


def make_poses(rng, n_keys, smplh_arrays):
    """Key poses: (pose 156, betas 10, trans 3 m, OpenPose (25, 3) m offsets) per key index; the pelvis near the
    world origin."""
    keys = []
    rest_pelvis = smplh_arrays['J_regressor'][0] @ smplh_arrays['v_template']
    for _ in range(n_keys):
        pose = rng.normal(0, 0.15, 156)
        pose[:3] = [np.pi + rng.normal(0, 0.1), rng.uniform(-0.6, 0.6), rng.normal(0, 0.1)]  # upright in y-down
        keys.append(dict(pose=pose, betas=rng.normal(0, 1, 10), trans=rng.uniform(-0.15, 0.15, 3) - rest_pelvis,
                         openpose=rng.normal(0, 0.45, (25, 3))))
    return keys


def write_fake_release(data_root, seed=0):
    """Write the release under data_root/behave and toy models under data_root/body_models.

    Returns dict(frames=[dict(seq, frame, split ('train'/'test'), gender, smpl_joints_m (24, 3) model order,
    smplh_joints_m (52, 3), openpose_m (25, 3) file order, fit)], images=[dict(relpath, seq, frame, kinect,
    pixels (49, 2): SMPL joints then OpenPose, in view)], cameras={kinect: (centre m, R, K)}, sequences).
    """
    from posepile.util import improc
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    root = data_root / 'behave'
    models = {}
    for i, gender in enumerate(('male', 'female')):
        smpl, _ = write_toy_model(data_root / 'body_models', 'smpl', gender, seed=10 + i, scale=MODEL_SCALE)
        smplh, _ = write_toy_model(data_root / 'body_models', 'smplh', gender, seed=20 + i, scale=MODEL_SCALE)
        models[gender] = (smpl, smplh)
    cameras = write_calibrations(root)
    write_json(root / 'split.json', {'train': [s for s, v in SEQUENCES.items() if v['train']],
                                     'test': [s for s, v in SEQUENCES.items() if not v['train']] + SPLIT_EXTRA_TEST})
    result = {'frames': [], 'images': [], 'cameras': {}, 'sequences': SEQUENCES}
    for seq, spec in SEQUENCES.items():
        seq_dir = root / 'sequences' / seq
        prefix = '/BS/xxie-4/static00/behave-fix/' if spec['absolute'] else '../../'
        write_json(seq_dir / 'info.json', {
            'gender': spec['gender'], 'kinects': list(YAWS), 'cat': seq.split('_')[2], 'beta': [0.0] * 10,
            'intrinsic': f'{prefix}calibs/intrinsics', 'config': f'{prefix}calibs/{spec["date"]}/config',
            'empty': f'{prefix}calibs/{spec["date"]}/background'})
        (seq_dir / 'notes').mkdir(exist_ok=True)  # a folder that is not a frame
        smpl_arrays, smplh_arrays = models[spec['gender']]
        keys = make_poses(rng, 3, smplh_arrays)
        for index, key in enumerate(spec['frames']):
            base = keys[int(key)]
            fit = {'pose': base['pose'] + (key % 1), 'betas': base['betas'], 'trans': base['trans'] + (key % 1)}
            frame = f't{index * 2:04d}.000'
            frame_dir = seq_dir / frame
            (frame_dir / 'person' / 'fit02').mkdir(parents=True, exist_ok=True)
            with open(frame_dir / 'person' / 'fit02' / 'person_fit.pkl', 'wb') as f:
                pickle.dump({k: v.astype(np.float32) for k, v in fit.items()}, f, protocol=2)
            fit = {k: v.astype(np.float32).astype(np.float64) for k, v in fit.items()}
            smpl_pose = np.concatenate([fit['pose'][:66], np.zeros(6)])
            smpl_joints = forward_kinematics(smpl_arrays, PARENTS['smpl'], smpl_pose, fit['betas'], fit['trans'])
            smplh_joints = forward_kinematics(smplh_arrays, PARENTS['smplh'], fit['pose'], fit['betas'],
                                              fit['trans'])
            openpose = (base['openpose'] + fit['trans']).astype(np.float32).astype(np.float64)
            confidence = np.full((25, 1), 0.8)
            write_json(frame_dir / 'person' / 'person_J3d.json',
                       {'body_joints3d': np.concatenate([openpose, confidence], 1).ravel().tolist(),
                        'face_joints3d': [0.0] * 280})
            result['frames'].append(dict(seq=seq, frame=frame, split='train' if spec['train'] else 'test',
                                         gender=spec['gender'], smpl_joints_m=smpl_joints,
                                         smplh_joints_m=smplh_joints, openpose_m=openpose, fit=fit))
            world_mm = np.concatenate([smpl_joints, openpose]) * 1000
            for kinect, (centre, rotation) in cameras[spec['date']].items():
                away = kinect in spec['away']
                K = intrinsics()
                pixels = project(world_mm, centre, rotation, K)
                joint_box = np.concatenate([pixels.min(0) - 3, pixels.max(0) + 3])  # mask: the joints' box + 3 px
                image, mask = render(pixels, joint_box)
                improc.write_jpeg_atomic(frame_dir / f'k{kinect}.color.jpg', image, 95)
                cv2.imwrite(str(frame_dir / f'k{kinect}.person_mask.jpg'), mask)
                relpath = f'behave/sequences/{seq}/{frame}/k{kinect}.color.jpg'
                result['images'].append(dict(relpath=relpath, seq=seq, frame=frame, kinect=kinect, pixels=pixels,
                                             in_view=not away, frame_index=index))
                result['cameras'][(seq, kinect)] = (centre, rotation, K)
    return result
