"""A tiny EgoBody release: data_info_release.csv, data_splits.csv, kinect_cam_params/, calibrations/<rec>/cal_trans/,
smplx_interactee_<split>/ and smplx_camera_wearer_<split>/ fits, kinect_color.zip and egocentric_color.zip.

Layout evidence: the official README (sanweiliti/EgoBody: the CSV columns, the calibration file names and their
directions, the PV file names <timestamp>_frame_<NNNNN>.jpg and <datetime>_pv.txt with line 1 'cx, cy, w, h' and per
frame 'timestamp, fx, fy, pv2world (16)'), release_renderer_kinect.py (data_splits.csv columns train/val/test,
smplx_<role>_<split>/ folders, cal_trans/ sub-folder, kinect_cam_params/kinect_<view>/Color.json with camera_mtx and k,
'<idx> <gender>' CSV cells, 000.pkl keys) and release_renderer_fpv_gaze.py (holo_to_kinect12 inverted, the inverse
pv2world, then diag(1, -1, -1) to OpenCV axes). The zips' member prefix (kinect_color/..., egocentric_color/...) is
an assumption: no real EgoBody file is available here (the recipe matches the members by their suffix).

Bodies: toy SMPL-X models (tests/fakes/genebody.write_toy_smplx, with hand PCA) posed by forward kinematics here, in
the master Kinect frame as released; world = the scene frame (z up). Each image shows Gaussian dots at the first 22
joints of every person in view, projected with OpenCV (Kinect distortion included). Recordings: one train, one val
(its sub_1 Kinect absent); frames 1..6 used (data_info start/end), frame 0 and 7 images exist outside that range.
The camera wearer stands at the HoloLens: behind the PV camera, so only the interactee is used in PV frames.
"""
import csv
import io
import json
import pickle
import zipfile
from pathlib import Path

import cv2
import numpy as np

from tests.fakes.freeman import render_dots
from tests.fakes.genebody import forward_kinematics, write_toy_smplx
from tests.toy_bodymodels import PARENTS

KINECT_SIZE = (320, 240)
PV_SIZE = (320, 200)
KINECT_FOCAL = 230.0
PV_FOCAL = 150.0
N_PCA = 12
N_DOTS = 22
FRAMES = range(0, 8)
START, END = 1, 6
RECORDINGS = {'recording_20210911_S03_S04_01': dict(split='train', scene='seminar_g110', interactee=1,
                                                    genders=('male', 'female'), views=('master', 'sub_1')),
              'recording_20220225_S27_S26_02': dict(split='val', scene='cab_e', interactee=0,
                                                    genders=('female', 'male'), views=('master',))}
ABSENT_TEST = 'recording_20220315_S21_S30_04'  # listed in data_splits.csv only
KINECT_DIST = {'master': np.array([0.2, -0.05, 0.001, -0.0008, 0.0]),  # strong: ignoring it moves dots by px
               'sub_1': np.array([-0.2, 0.04, -0.0005, 0.001, 0.0])}
KINECT_IDS = {'sub_1': 11}
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def look_at(position, target, up=(0, 0, 1)):
    """4x4 world-to-camera (OpenCV axes) of a camera at `position` looking at `target`."""
    forward = np.asarray(target, np.float64) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    T = np.eye(4)
    T[:3, :3] = np.stack([right, down, forward])
    T[:3, 3] = -T[:3, :3] @ position
    return T


def project(points_world, world_to_cam, K, dist=None):
    return cv2.projectPoints(points_world, cv2.Rodrigues(world_to_cam[:3, :3])[0], world_to_cam[:3, 3], K,
                             np.zeros(5) if dist is None else dist)[0][:, 0]


def jpeg(image):
    return cv2.imencode('.jpg', image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def write_fake_release(data_root, seed=0):
    """Write body_models/smplx/ and egobody/ under data_root; returns {'models': {gender: arrays}, 'people': [dict(rec,
    body, role, gender, frame, fit (master frame, PCA hands), full_pose, joints_world_m)], 'cameras': {(rec, view,
    frame): (world_to_cam 4x4, K, dist, (w, h))}}."""
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    root = data_root / 'egobody'
    models = {g: write_toy_smplx(data_root / 'body_models', g, seed=11 + i)[0]
              for i, g in enumerate(('female', 'male'))}
    kinect_K = {view: np.array([[KINECT_FOCAL, 0, KINECT_SIZE[0] / 2 + 2], [0, KINECT_FOCAL, KINECT_SIZE[1] / 2 - 3],
                                [0, 0, 1]]) for view in KINECT_DIST}
    for view, K in kinect_K.items():
        path = root / 'kinect_cam_params' / f'kinect_{view}' / 'Color.json'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({'f': [K[0, 0], K[1, 1]], 'c': [K[0, 2], K[1, 2]], 'camera_mtx': K.tolist(),
                                    'k': KINECT_DIST[view].tolist()}))
    people, cameras = [], {}
    kinect_zip = zipfile.ZipFile(root / 'kinect_color.zip', 'w', zipfile.ZIP_STORED)
    ego_zip = zipfile.ZipFile(root / 'egocentric_color.zip', 'w', zipfile.ZIP_STORED)
    info_rows = []
    for rec, spec in RECORDINGS.items():
        calib = root / 'calibrations' / rec / 'cal_trans'
        (calib / 'kinect12_to_world').mkdir(parents=True, exist_ok=True)
        interactee_at = np.array([-0.6, 0.6, 0.0])
        wearer_at = np.array([0.9, -1.0, 0.0])
        head = wearer_at + [0, 0, 1.6]
        world_to_master = look_at(np.array([0.2, -4.2, 1.3]), [0, 0, 0.5])
        world_to_sub = look_at(np.array([3.8, -2.0, 1.6]), [0, 0, 0.5])
        holo_from_master = look_at(rng.uniform(-1, 1, 3), rng.uniform(2, 3, 3))  # any rigid transform
        write = lambda name, T: (calib / name).write_text(json.dumps({'trans': T.tolist()}))  # noqa: E731
        write(f'kinect12_to_world/{spec["scene"]}.json', np.linalg.inv(world_to_master))
        write('holo_to_kinect12.json', np.linalg.inv(holo_from_master))
        if 'sub_1' in spec['views']:
            write('kinect_11to12_color.json', world_to_master @ np.linalg.inv(world_to_sub))
        view_transforms = {'master': world_to_master, 'sub_1': world_to_sub}
        # per frame: both people (master-frame fits), the PV camera at the wearer's head looking at the interactee
        datetime = '2021-09-11-144522'
        pv_lines = [f'{PV_SIZE[0] / 2 + 1.5}, {PV_SIZE[1] / 2 - 2.0}, {PV_SIZE[0]}, {PV_SIZE[1]}']
        state = {}
        for body in (0, 1):
            state[body] = dict(pose=rng.normal(0, 0.15, 66), hands=rng.normal(0, 0.5, (2, N_PCA)),
                               betas=rng.normal(0, 0.5, 10), expression=rng.normal(0, 0.3, 10))
        for frame in FRAMES:
            frame_people = []
            for body in (0, 1):
                s = state[body]
                if frame > 0 and rng.random() > 0.3:
                    s['pose'] = s['pose'] + rng.normal(0, 0.12, 66)  # otherwise the same pose: dropped by the sampler
                gender = spec['genders'][body]
                arrays = models[gender]
                role = 'interactee' if body == spec['interactee'] else 'camera_wearer'
                place = interactee_at if role == 'interactee' else wearer_at
                target_world = place + [0, 0, 0.9]
                transl_master = (world_to_master[:3, :3] @ target_world + world_to_master[:3, 3])
                master_to_world = np.linalg.inv(world_to_master)
                fit = {'global_orient': s['pose'][None, :3].astype(np.float32),
                       'body_pose': s['pose'][None, 3:66].astype(np.float32),
                       'jaw_pose': np.zeros((1, 3), np.float32), 'leye_pose': np.zeros((1, 3), np.float32),
                       'reye_pose': np.zeros((1, 3), np.float32),
                       'left_hand_pose': s['hands'][0][None].astype(np.float32),
                       'right_hand_pose': s['hands'][1][None].astype(np.float32),
                       'betas': s['betas'][None].astype(np.float32),
                       'expression': s['expression'][None].astype(np.float32),
                       'transl': transl_master[None].astype(np.float32),
                       'pose_embedding': rng.normal(0, 1, (1, 32)).astype(np.float32),
                       'camera_rotation': np.eye(3)[None].astype(np.float32),
                       'camera_translation': np.zeros((1, 3), np.float32)}
                path = (root / f'smplx_{role}_{spec["split"]}' / rec / f'body_idx_{body}' / 'results' /
                        f'frame_{frame:05d}' / '000.pkl')
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(pickle.dumps(fit, protocol=2))
                # the fit as float32, as the recipe reads it
                used = {k: np.float64(v.reshape(-1)) for k, v in fit.items()}
                full_pose = np.concatenate([used['global_orient'], used['body_pose'], np.zeros(9)] + [
                    used[f'{side}_hand_pose'] @ arrays[f'hands_components{side[0]}'][:N_PCA] +
                    arrays[f'hands_mean{side[0]}'] for side in ('left', 'right')])
                joints_master = forward_kinematics(arrays, PARENTS['smplx'], full_pose, used['betas'], used['transl'],
                                                   expression=used['expression'])
                joints_world = joints_master @ master_to_world[:3, :3].T + master_to_world[:3, 3]
                person = dict(rec=rec, body=body, role=role, gender=gender, frame=frame, full_pose=full_pose,
                              betas=used['betas'], expression=used['expression'], transl_master=used['transl'],
                              joints_world_m=joints_world, split=spec['split'])
                people.append(person)
                frame_people.append(person)
            for view in spec['views']:
                T, K, dist = view_transforms[view], kinect_K[view], KINECT_DIST[view]
                image = render_dots(np.zeros((0, 2)), *KINECT_SIZE)[..., 0].astype(np.float32)
                for p in frame_people:
                    render_dots(project(p['joints_world_m'][:N_DOTS], T, K, dist), *KINECT_SIZE, image=image)
                cameras[(rec, view, frame)] = (T, K, dist, KINECT_SIZE)
                kinect_zip.writestr(f'kinect_color/{rec}/{view}/frame_{frame:05d}.jpg',
                                    jpeg(render_dots(np.zeros((0, 2)), *KINECT_SIZE, image=image)))
            world_to_pv = look_at(head + rng.normal(0, 0.02, 3), interactee_at + [0, 0, 1.0] + rng.normal(0, 0.1, 3))
            world_to_holo = holo_from_master @ world_to_master
            pv_to_holo = np.linalg.inv(np.linalg.inv(GL_TO_CV) @ world_to_pv @ np.linalg.inv(world_to_holo))
            fx, fy = PV_FOCAL + rng.uniform(-3, 3), PV_FOCAL + rng.uniform(-3, 3)
            timestamp = str(132756000000000000 + frame * 333333)
            pv_lines.append(', '.join([timestamp, f'{fx:.6f}', f'{fy:.6f}'] +
                                      [f'{v:.12f}' for v in pv_to_holo.ravel()]))
            K = np.array([[fx, 0, PV_SIZE[0] / 2 + 1.5], [0, fy, PV_SIZE[1] / 2 - 2.0], [0, 0, 1]])
            image = render_dots(np.zeros((0, 2)), *PV_SIZE)[..., 0].astype(np.float32)
            for p in frame_people:
                cam = p['joints_world_m'] @ world_to_pv[:3, :3].T + world_to_pv[:3, 3]
                if np.all(cam[:, 2] > 0):
                    render_dots(project(p['joints_world_m'][:N_DOTS], world_to_pv, K), *PV_SIZE, image=image)
            cameras[(rec, 'pv', frame)] = (world_to_pv, K, None, PV_SIZE)
            ego_zip.writestr(f'egocentric_color/{rec}/{datetime}/PV/{timestamp}_frame_{frame:05d}.jpg',
                             jpeg(render_dots(np.zeros((0, 2)), *PV_SIZE, image=image)))
        ego_zip.writestr(f'egocentric_color/{rec}/{datetime}/{datetime}_pv.txt', '\n'.join(pv_lines) + '\n')
        genders = spec['genders']
        info_rows.append({'recording_name': rec, 'body_idx_0': f'0 {genders[0]}', 'body_idx_1': f'1 {genders[1]}',
                          'body_idx_fpv': f'{spec["interactee"]} {genders[spec["interactee"]]}',
                          'start_frame': START, 'end_frame': END, 'scene_name': spec['scene']})
    kinect_zip.close()
    ego_zip.close()
    with open(root / 'data_info_release.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, list(info_rows[0]))
        writer.writeheader()
        writer.writerows(info_rows)
    by_split = {'train': [], 'val': [], 'test': [ABSENT_TEST]}
    for rec, spec in RECORDINGS.items():
        by_split[spec['split']].append(rec)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(['train', 'val', 'test'])
    for i in range(max(len(v) for v in by_split.values())):
        writer.writerow([v[i] if i < len(v) else '' for v in by_split.values()])
    (root / 'data_splits.csv').write_text(buffer.getvalue())
    return {'models': models, 'people': people, 'cameras': cameras}
