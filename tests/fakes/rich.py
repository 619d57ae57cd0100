"""A tiny RICH release in the raw layout (see posepile/ds/rich/main.py) with toy SMPL-X models (10475 vertices, hand
PCA, landmark faces).

train/ParkingLot1_002_burpee3 (subject 2, male; PNG images): cameras 0, 1, 2 calibrated, camera 3 moving (no
calibration file); 5 frames with poses P0, P0 + 1 mm, P1, P0 again, P2.
val/Pavallion_003_018_tossball (subjects 3, male, and 18, female; BMP images): cameras 0, 1, 2, camera 1 with a
60 px focal length (boxes under 100 px); 3 frames, subject 18 has no fit in the middle one.
Images are 1280x960 grey with a bright dot at every projected joint of every person (127 SMPL-X joints).

Fits without images (`fit_only`): train frame 12 (pose P1) and val frame 5 (subject 3, pose P2) have a fit but
no image in any camera. The original iterates the image frames of the first camera and loads fits for those
only (parity review, rich (e)); whether the real release has such fits is not known (the parity review's
hypothesis: images subsampled relative to the fits). A sampler running over the fit frames would take P1 at
frame 12 as its reference and then drop the imaged P1 of frame 20.
"""
import pickle
from pathlib import Path

import cv2
import numpy as np

from tests.toy_bodymodels import write_toy_smplx_full

WIDTH, HEIGHT = 1280, 960
BACKGROUND = 45.0
FOCAL_PX = 900.0
SMALL_FOCAL_PX = 60.0
DISTANCE_M = 4.5
MODEL_SCALE = 1.5
DISTORTION = np.array([0.03, -0.01, 2e-4, -1e-4, 0.002])
# smplx library vertex ids (vertex_ids['smplx']) in its VertexJointSelector order, written here independently
VERTEX_JOINTS = [9120, 9929, 9448, 616, 6, 5770, 5780, 8846, 8463, 8474, 8635,
                 5361, 4933, 5058, 5169, 5286, 8079, 7669, 7794, 7905, 8022]
SEQUENCES = {
    'ParkingLot1_002_burpee3': dict(phase='train', ext='.png', cameras={0: -25.0, 1: 10.0, 2: 40.0, 3: None},
                                    subjects={2: ('male', (0, 0.001, 1, 0, 2), 0.0)}, small=(),
                                    fit_only={2: {12: 1}}),
    'Pavallion_003_018_tossball': dict(phase='val', ext='.bmp', cameras={0: -15.0, 1: 0.0, 2: 20.0},
                                       subjects={3: ('male', (0, 1, 2), -0.5), 18: ('female', (0, None, 1), 0.5)},
                                       small=(1,), fit_only={3: {5: 2}}),
}
GENDER_SEEDS = {'male': 1, 'female': 2}


def camera_for_yaw(yaw_deg):
    yaw = np.deg2rad(yaw_deg)
    centre = DISTANCE_M * np.array([np.sin(yaw), 0.0, -np.cos(yaw)])
    rotation = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    return centre, rotation


def project(points_mm, centre_m, rotation, K):
    rvec = cv2.Rodrigues(rotation)[0]
    tvec = -rotation @ (centre_m * 1000)
    return cv2.projectPoints(np.asarray(points_mm, np.float64), rvec, tvec, K, DISTORTION)[0][:, 0]


def write_calibration(path, rotation, centre_m, K):
    """OpenCV FileStorage XML as the release: CameraMatrix [R | t] (t = -R c, m), Intrinsics, Distortion."""
    def matrix(tag, values, rows, cols):
        data = ' '.join(f'{v:.12e}' for v in np.ravel(values))
        return (f'<{tag} type_id="opencv-matrix">\n  <rows>{rows}</rows>\n  <cols>{cols}</cols>\n  <dt>d</dt>\n'
                f'  <data>\n    {data}</data></{tag}>\n')
    extrinsic = np.concatenate([rotation, (-rotation @ centre_m)[:, None]], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('<?xml version="1.0"?>\n<opencv_storage>\n' + matrix('CameraMatrix', extrinsic, 3, 4)
                    + matrix('Intrinsics', K, 3, 3) + matrix('Distortion', DISTORTION, 5, 1) + '</opencv_storage>\n')


def smplx_127_joints_m(model, arrays, fit):
    """(127, 3) m as the smplx package: PCA hands expanded (+ hand mean), skeleton joints, vertex joints, then the
    51 landmarks (barycentric on the landmark faces)."""
    hands = [fit[f'{s}_hand_pose'][0] @ arrays[f'hands_components{s[0]}'][:fit[f'{s}_hand_pose'].shape[1]]
             + arrays[f'hands_mean{s[0]}'] for s in ('left', 'right')]
    pose = np.concatenate([fit[k][0] for k in ('global_orient', 'body_pose', 'jaw_pose', 'leye_pose', 'reye_pose')]
                          + hands)
    out = model(pose[None], fit['betas'], fit['transl'], expression=fit['expression'])
    vertices = out['vertices'][0].astype(np.float64)
    triangles = vertices[arrays['f'][arrays['lmk_faces_idx']].astype(np.int64)]
    landmarks = np.einsum('lkc,lk->lc', triangles, arrays['lmk_bary_coords'])
    return np.concatenate([out['joints'][0], vertices[VERTEX_JOINTS], landmarks]), pose


def make_fit(rng, arrays, x_offset):
    rest_pelvis = arrays['J_regressor'][0] @ arrays['v_template']
    f32 = lambda a: np.asarray(a, np.float32)[None]  # noqa: E731  (1, k) float32 as the release
    return {'betas': f32(rng.normal(0, 1, 10)), 'global_orient': f32([np.pi + rng.normal(0, 0.1),
                                                                       rng.uniform(-0.5, 0.5), rng.normal(0, 0.1)]),
            'body_pose': f32(rng.normal(0, 0.15, 63)), 'jaw_pose': f32(rng.normal(0, 0.1, 3)),
            'leye_pose': f32(rng.normal(0, 0.1, 3)), 'reye_pose': f32(rng.normal(0, 0.1, 3)),
            'left_hand_pose': f32(rng.normal(0, 0.5, 12)), 'right_hand_pose': f32(rng.normal(0, 0.5, 12)),
            'expression': f32(rng.normal(0, 1, 10)),
            'transl': f32(rng.uniform(-0.1, 0.1, 3) - rest_pelvis + [x_offset, 0, 0])}


def render(pixels, sigma=2.0):
    canvas = np.full((HEIGHT, WIDTH), BACKGROUND, np.float32)
    for u, v in pixels:
        x0, y0 = int(round(u)) - 12, int(round(v)) - 12
        if not (0 <= x0 and x0 + 25 <= WIDTH and 0 <= y0 and y0 + 25 <= HEIGHT):
            continue
        ys, xs = np.mgrid[y0:y0 + 25, x0:x0 + 25]
        canvas[y0:y0 + 25, x0:x0 + 25] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * sigma ** 2))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def write_fake_release(data_root, seed=0):
    """Write the release under data_root/rich and toy SMPL-X models under data_root/body_models.

    Returns dict(people=[dict(seq, phase, subject, gender, frame, joints_m (127, 3), pose (165,) full, fit)]
    (fit-only frames included),
    images=[dict(relpath (.jpg, after conversion), seq, frame, camera, static, small, pixels {subject: (127, 2)})],
    cameras={(setup, camera): (centre m, R, K)}).
    """
    from posepile import bodymodels
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    root = data_root / 'rich'
    models = {}
    for gender, model_seed in GENDER_SEEDS.items():
        arrays, _ = write_toy_smplx_full(data_root / 'body_models', gender, VERTEX_JOINTS, seed=model_seed,
                                         scale=MODEL_SCALE)
        models[gender] = (bodymodels.load('smplx', gender, data_root / 'body_models'), arrays)
    result = {'people': [], 'images': [], 'cameras': {}}
    for seq, spec in SEQUENCES.items():
        setup = seq.split('_')[0]
        cameras = {}
        for camera_id, yaw in spec['cameras'].items():
            centre, rotation = camera_for_yaw(yaw if yaw is not None else 60.0)
            focal = SMALL_FOCAL_PX if camera_id in spec['small'] else FOCAL_PX
            K = np.array([[focal, 0, WIDTH / 2 + 3.3], [0, focal * 1.002, HEIGHT / 2 - 2.1], [0, 0, 1]])
            cameras[camera_id] = (centre, rotation, K)
            if yaw is not None:
                write_calibration(root / 'scan_calibration' / setup / 'calibration' / f'{camera_id:03d}.xml',
                                  rotation, centre, K)
                result['cameras'][(setup, camera_id)] = (centre, rotation, K)
        n_frames = max(len(s[1]) for s in spec['subjects'].values())
        frames = [10 + 5 * i for i in range(n_frames)]
        world = {f: {} for f in frames}
        for subject, (gender, keys, x_offset) in spec['subjects'].items():
            model, arrays = models[gender]
            key_fits = [make_fit(rng, arrays, x_offset) for _ in range(3)]
            fit_frames = [*zip(frames, keys), *spec['fit_only'].get(subject, {}).items()]
            for frame, key in fit_frames:
                if key is None:
                    continue
                fit = {k: v + np.float32(key % 1) for k, v in key_fits[int(key)].items()}
                path = root / f'{spec["phase"]}_body' / seq / f'{frame:05d}' / f'{subject:03d}.pkl'
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, 'wb') as f:
                    pickle.dump(fit, f, protocol=2)
                joints_m, pose = smplx_127_joints_m(model, arrays, fit)
                if frame in world:
                    world[frame][subject] = joints_m * 1000
                result['people'].append(dict(seq=seq, phase=spec['phase'], subject=subject, gender=gender,
                                             frame=frame, joints_m=joints_m, pose=pose, fit=fit))
        for frame in frames:
            for camera_id, (centre, rotation, K) in cameras.items():
                pixels = {s: project(w, centre, rotation, K) for s, w in world[frame].items()}
                image = render(np.concatenate(list(pixels.values())))
                stem = f'{spec["phase"]}/{seq}/cam_{camera_id:02d}/{frame:05d}_{camera_id:02d}'
                (root / stem).parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / (stem + spec['ext'])), image[..., ::-1])
                result['images'].append(dict(relpath=f'rich/{stem}.jpg', seq=seq, frame=frame, camera=camera_id,
                                             static=spec['cameras'][camera_id] is not None,
                                             small=camera_id in spec['small'], pixels=pixels))
    return result
