"""A tiny InterCap release in the raw layout (posepile/ds/intercap/main.py), with toy SMPL-X models that carry hand
PCA arrays. Also the helpers the other NLF-era studio fakes share (toy SMPL-X with hands, independent forward
kinematics, dot rendering, OpenCV projection).

Evidence for the layout: the calibration JSONs are in the format of the real files of the official toolkit
(/work/shared/realdata/intercap/toolkit_Data/calibration_*/Color*.json: f, c, k (8), camera_mtx, view_mtx, R
(Rodrigues), T (m); world = camera 1 whose R, T are zero); the distortion terms are those of the real Color.json;
the folders RGBD_Images/<subject>/<motion>/Seg_<k>/Frames_Cam<c>/color/<frame:05d>.jpg follow the official README
and third-party loaders (huochf/StackFLOW intercap_metadata.py), Res_Individuals/<subject>/<motion>/Seg_<k>/
res_1.pkl (a list of per-frame dicts of (1, n) arrays, PCA hands) the original recipe's reader.

Captures: 01/01/Seg_0 (male, calibration `first`, 4 frames: P0, P0 + 1 mm, P1, P2), 03/09/Seg_0 (female, `third`,
2 frames) and 08/02/Seg_1 (female, `second`, 2 frames; camera 6's frame 1 image is missing). 6 cameras on a circle
around the person, 1920x1080 grey images with a dot at each of the 55 projected SMPL-X joints.
"""
import json
import pickle
from pathlib import Path

import cv2
import numpy as np

from tests.toy_bodymodels import PARENTS, write_toy_model

WIDTH, HEIGHT = 1920, 1080
BACKGROUND = 45.0
FOCAL_PX = 918.0
REAL_DISTORTION = (0.535593, -2.509073, 0.000718, -0.000244, 1.362741, 0.414365, -2.340596, 1.297858)  # Color.json
MODEL_SCALE = 0.6
N_HAND_PCA = 12
PERSON_CENTRE_M = np.array([0.0, 0.0, 3.0])  # in camera 1's frame (the world)
YAWS = (0.0, 60.0, 120.0, 180.0, 240.0, 300.0)
CALIBRATION_YAW_CHANGES = {'first': {}, 'second': {2: 3.0, 3: -4.0}, 'third': {3: 5.0}}
CAPTURES = {  # (subject, motion, seg): (gender, calibration set, frame keys)
    ('01', '01', 'Seg_0'): ('male', 'first', (0, 0.001, 1, 2)),
    ('03', '09', 'Seg_0'): ('female', 'third', (0, 1)),
    ('08', '02', 'Seg_1'): ('female', 'second', (0, 1)),
}
MISSING_IMAGES = ('08/02/Seg_1/Frames_Cam6/color/00001.jpg',)


# ------------------------------------------------------------------------------------------------
# Shared helpers (also used by the hi4d, moyo, arctic and dna_rendering fakes)
def write_toy_smplx_with_hands(model_dir, gender, seed=0, scale=MODEL_SCALE, n_shape=20):
    """(arrays incl. hands_components{l,r} (45, 45) and hands_mean{l,r} (45,), path): a toy SMPL-X .npz (the
    small toy of tests/toy_bodymodels.py) with the official file's hand PCA arrays added (10 shape + 10 expression
    columns when n_shape=20)."""
    arrays, path = write_toy_model(model_dir, 'smplx', gender, n_shape=n_shape, seed=seed, scale=scale)
    rng = np.random.default_rng(seed + 500)
    arrays = dict(arrays, hands_componentsl=np.linalg.qr(rng.normal(0, 1, (45, 45)))[0].T,
                  hands_componentsr=np.linalg.qr(rng.normal(0, 1, (45, 45)))[0].T,
                  hands_meanl=rng.normal(0, 0.1, 45), hands_meanr=rng.normal(0, 0.1, 45))
    np.savez(path, **arrays)
    return arrays, path


def forward_kinematics(arrays, parents, pose, betas, trans, expression=None, n_shape_columns=None):
    """(J, 3) m: joints of a toy model from its arrays (independent of posepile.bodymodels); the expression
    blend shapes start at column n_shape_columns of shapedirs."""
    from tests.fakes import genebody
    return genebody.forward_kinematics(arrays, parents, np.asarray(pose), np.asarray(betas, np.float64), trans,
                                       None if expression is None else np.asarray(expression), n_shape_columns)


def camera_for_yaw(yaw_deg, centre_m=PERSON_CENTRE_M, distance_m=3.0):
    """(optical centre (3,) m, R world-to-camera) on a circle around centre_m, looking at it (y down); yaw 0 is
    the identity camera distance_m behind the centre along -z."""
    yaw = np.deg2rad(yaw_deg)
    optical_centre = centre_m + distance_m * np.array([np.sin(yaw), 0.0, -np.cos(yaw)])
    rotation = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    return optical_centre, rotation


def project(points_mm, centre_m, rotation, K, distortion=None):
    """Pixels by OpenCV's projectPoints (rational 8-term or 5-term model, or none)."""
    rvec = cv2.Rodrigues(np.asarray(rotation, np.float64))[0]
    tvec = -np.asarray(rotation) @ (np.asarray(centre_m) * 1000)
    dist = np.zeros(5) if distortion is None else np.asarray(distortion, np.float64)
    return cv2.projectPoints(np.asarray(points_mm, np.float64), rvec, tvec, np.asarray(K, np.float64), dist)[0][:, 0]


def render_dots(pixels, width, height, sigma=2.0, image=None):
    """(H, W, 3) uint8 grey image with a Gaussian dot at every pixel position (dots near the border skipped)."""
    canvas = np.full((height, width), BACKGROUND, np.float32) if image is None else image
    for u, v in pixels:
        x0, y0 = int(round(u)) - 12, int(round(v)) - 12
        if not (0 <= x0 and x0 + 25 <= width and 0 <= y0 and y0 + 25 <= height):
            continue
        ys, xs = np.mgrid[y0:y0 + 25, x0:x0 + 25]
        canvas[y0:y0 + 25, x0:x0 + 25] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * sigma ** 2))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def expand_hands(arrays, left, right):
    """(90,) full hand poses (left, right) of PCA coefficients: coefficients @ components[:n] + mean."""
    return np.concatenate([left @ arrays['hands_componentsl'][:len(left)] + arrays['hands_meanl'],
                           right @ arrays['hands_componentsr'][:len(right)] + arrays['hands_meanr']])


def random_smplx_fit(rng, arrays, n_hand=N_HAND_PCA, centre_m=PERSON_CENTRE_M):
    """A random upright (y-down) SMPL-X fit in the released parts, pelvis near centre_m."""
    rest_pelvis = arrays['J_regressor'][0] @ arrays['v_template']
    return {'global_orient': np.array([np.pi + rng.normal(0, 0.1), rng.uniform(-0.6, 0.6), rng.normal(0, 0.1)]),
            'body_pose': rng.normal(0, 0.15, 63), 'jaw_pose': rng.normal(0, 0.1, 3),
            'leye_pose': rng.normal(0, 0.1, 3), 'reye_pose': rng.normal(0, 0.1, 3),
            'left_hand_pose': rng.normal(0, 0.5, n_hand), 'right_hand_pose': rng.normal(0, 0.5, n_hand),
            'betas': rng.normal(0, 1, 10), 'expression': rng.normal(0, 0.5, 10),
            'transl': rng.uniform(-0.1, 0.1, 3) - rest_pelvis + centre_m}


def full_pose(arrays, fit):
    """(165,) the full SMPL-X pose of a fit in released parts (hands expanded, mean added)."""
    return np.concatenate([fit['global_orient'], fit['body_pose'], fit['jaw_pose'], fit['leye_pose'],
                           fit['reye_pose'], expand_hands(arrays, fit['left_hand_pose'], fit['right_hand_pose'])])


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


# ------------------------------------------------------------------------------------------------
def intrinsics(i_camera):
    return np.array([[FOCAL_PX + 2 * i_camera, 0, 956.9 + i_camera], [0, FOCAL_PX + 2 * i_camera + 0.3, 553.1],
                     [0, 0, 1]])


def write_calibrations(root):
    """{set: [(centre m, R, K)] x 6}: Data/calibration_<set>/Color*.json in the real files' format."""
    cameras = {}
    for which, changes in CALIBRATION_YAW_CHANGES.items():
        cameras[which] = []
        for i, yaw in enumerate(YAWS, start=1):
            centre, rotation = camera_for_yaw(yaw + changes.get(i, 0.0))
            K = intrinsics(i)
            rvec = cv2.Rodrigues(rotation)[0].ravel() if i > 1 or changes.get(i) else np.zeros(3)
            T = -rotation @ centre
            name = 'Color.json' if i == 1 else f'Color_{i}.json'
            write_json(root / 'Data' / f'calibration_{which}' / name, {
                'c': [K[0, 2], K[1, 2]], 'f': [K[0, 0], K[1, 1]], 'k': list(REAL_DISTORTION),
                'camera_mtx': K.tolist(), 'view_mtx': [[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]],
                'R': rvec.tolist(), 'T': T.tolist()})
            cameras[which].append((centre, rotation, K))
    return cameras


def write_fake_release(data_root, seed=0):
    """Write the release under data_root/intercap and toy SMPL-X models under data_root/body_models.

    Returns dict(frames=[dict(capture (subject, motion, seg), frame, gender, fit (released parts, float32 values),
    pose (165,) full, joints_m (55, 3) world)], images=[dict(relpath, capture, frame, camera (1..6), pixels
    (55, 2))], cameras={set: [(centre m, R, K)]}, models={gender: arrays}).
    """
    from posepile.util import improc
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    root = data_root / 'intercap'
    models = {gender: write_toy_smplx_with_hands(data_root / 'body_models', gender, seed=30 + i)[0]
              for i, gender in enumerate(('male', 'female'))}
    cameras = write_calibrations(root)
    result = {'frames': [], 'images': [], 'cameras': cameras, 'models': models}
    for (subject, motion, seg), (gender, which, keys) in CAPTURES.items():
        arrays = models[gender]
        bases = [random_smplx_fit(rng, arrays) for _ in range(3)]
        fits = []
        for i_frame, key in enumerate(keys):
            fit = {k: (v + (key % 1) if k in ('transl', 'body_pose') else v) for k, v in bases[int(key)].items()}
            fit = {k: np.asarray(v, np.float32).astype(np.float64) for k, v in fit.items()}
            fits.append({k: v.astype(np.float32)[np.newaxis] for k, v in fit.items()})
            pose = full_pose(arrays, fit)
            joints = forward_kinematics(arrays, PARENTS['smplx'], pose, fit['betas'], fit['transl'],
                                        fit['expression'], n_shape_columns=10)
            result['frames'].append(dict(capture=(subject, motion, seg), frame=i_frame, gender=gender, fit=fit,
                                         pose=pose, joints_m=joints))
            for i_camera, (centre, rotation, K) in enumerate(cameras[which], start=1):
                member = f'{subject}/{motion}/{seg}/Frames_Cam{i_camera}/color/{i_frame:05d}.jpg'
                pixels = project(joints * 1000, centre, rotation, K, REAL_DISTORTION)
                if member in MISSING_IMAGES:
                    continue
                path = root / 'RGBD_Images' / member
                path.parent.mkdir(parents=True, exist_ok=True)
                improc.write_jpeg_atomic(path, render_dots(pixels, WIDTH, HEIGHT), 95)
                result['images'].append(dict(relpath=f'intercap/RGBD_Images/{member}', capture=(subject, motion, seg),
                                             frame=i_frame, camera=i_camera, pixels=pixels))
        fit_path = root / 'Res_Individuals' / subject / motion / seg / 'res_1.pkl'
        fit_path.parent.mkdir(parents=True, exist_ok=True)
        with open(fit_path, 'wb') as f:
            pickle.dump(fits, f, protocol=2)
    return result
