"""A tiny HUMBI body release in the raw layout (see posepile/ds/humbi/main.py) with a toy neutral SMPL model.

subject_1/body (cameras 0, 4, 5, 7; camera 5 looks past the person) with snapshots 00000001 and 00000002, and
Body_1_80/subject_2/body (one bundle folder deeper, as the zips extract; cameras 0, 4, 7 calibrated, images
also from camera 9 which the calibration lacks) with snapshot 00000001. Images are 1920x1080 grey with a
bright dot at every projected joint (25 OpenPose keypoints and 24 SMPL joints, laid out on a grid so that
the dots stay apart); subject_1/body/00000002/image/image0000007.jpg is a truncated (broken) JPEG.
"""
from pathlib import Path

import cv2
import numpy as np

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
SMPL_MODEL_RELPATH = 'body_models/smpl/basicModel_neutral_lbs_10_207_0_v1.0.0.pkl'
WIDTH, HEIGHT = 1920, 1080
FOCAL_PX = 1000.0
DISTANCE_MM = 4500.0
BACKGROUND = 45.0
GRID_STEP_MM = 200.0
# subject folder -> ({camera id: yaw in degrees, None = calibrated but looking past the person}, image ids,
# snapshots)
SUBJECTS = {
    'subject_1': ({0: -20.0, 4: 0.0, 5: None, 7: 25.0}, (0, 4, 5, 7), ('00000001', '00000002')),
    'Body_1_80/subject_2': ({0: -15.0, 4: 5.0, 7: 20.0}, (0, 4, 7, 9), ('00000001',)),
}
BROKEN_IMAGE = 'humbi/subject_1/body/00000002/image/image0000007.jpg'


def grid_layout(rng):
    """(49, 3) mm offsets from the body centre: a 7x7 grid in the x-y plane with small depth jitter."""
    xs, ys = np.meshgrid(np.arange(-3, 4) * GRID_STEP_MM, np.arange(-3, 4) * GRID_STEP_MM)
    points = np.stack([xs.ravel(), ys.ravel(), rng.uniform(-60, 60, 49)], axis=1)
    return points[rng.permutation(49)]


def write_smpl_model(data_root, rest_joints_m, rng):
    """Toy neutral SMPL in the official .pkl layout (chumpy shapedirs, scipy.sparse J_regressor): 24 vertices = the
    rest joints (J_regressor = identity, each vertex skinned to its joint), small shape directions, no pose
    blend shapes."""
    from tests.toy_bodymodels import write_official_pickle
    model = {'v_template': rest_joints_m, 'shapedirs': rng.normal(0, 0.005, (24, 3, 10)),
             'posedirs': np.zeros((24, 3, 207)), 'J_regressor': np.eye(24), 'weights': np.eye(24),
             'kintree_table': np.array([[4294967295] + SMPL_PARENTS[1:], list(range(24))], np.int64),
             'f': np.array([[0, 1, 2], [0, 2, 3]], np.uint32)}
    write_official_pickle(Path(data_root) / SMPL_MODEL_RELPATH, model)
    return model


def posed_smpl_joints_m(model, parameters):
    """(24, 3) metres: forward kinematics of the toy model, scaled, then translated (HUMBI's convention)."""
    rest = model['v_template'] + model['shapedirs'] @ parameters['shape']
    local = [cv2.Rodrigues(np.asarray(r, np.float64))[0] for r in parameters['pose'].reshape(24, 3)]
    rotations, joints = [local[0]], [rest[0]]
    for j in range(1, 24):
        parent = SMPL_PARENTS[j]
        rotations.append(rotations[parent] @ local[j])
        joints.append(joints[parent] + rotations[parent] @ (rest[j] - rest[parent]))
    return np.array(joints) * parameters['scale'] + parameters['trans']


def camera_for_yaw(yaw_deg):
    """(optical centre (3,) m, R world-to-camera): on a circle of 4.5 m around the origin, looking at it."""
    yaw = np.deg2rad(yaw_deg)
    centre = DISTANCE_MM / 1000 * np.array([np.sin(yaw), 0.0, -np.cos(yaw)])
    rotation = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    return centre, rotation


def project(points_mm, centre_m, rotation, intrinsics):
    cam = (points_mm - centre_m * 1000) @ rotation.T
    return (cam[:, :2] / cam[:, 2:]) @ intrinsics[:2, :2].T + intrinsics[:2, 2]


def write_calibration(body_dir, cameras):
    header = ['Numcam: 107', f'numframes: {len(cameras)}', f'numP: {len(cameras)}']
    intrinsic, extrinsic, projection = list(header), list(header), list(header)
    for camera_id, (centre, rotation, intrinsics) in sorted(cameras.items()):
        intrinsic += [f'0 {camera_id}'] + [' '.join(f'{v:.10f}' for v in row) for row in intrinsics]
        extrinsic += [f'0 {camera_id}', ' '.join(f'{v:.12f}' for v in centre)]
        extrinsic += [' '.join(f'{v:.12f}' for v in row) for row in rotation]
        matrix = intrinsics @ rotation @ np.concatenate([np.eye(3), -centre[:, np.newaxis]], axis=1)
        projection += [f'0 {camera_id}'] + [' '.join(f'{v:.10f}' for v in row) for row in matrix]
    for name, lines in (('intrinsic', intrinsic), ('extrinsic', extrinsic), ('project', projection)):
        (body_dir / f'{name}.txt').write_text('\n'.join(lines) + '\n')


def render_dots(pixels, sigma=2.0):
    canvas = np.full((HEIGHT, WIDTH), BACKGROUND, np.float32)
    for u, v in pixels:
        x0, y0 = int(round(u)) - 12, int(round(v)) - 12
        if not (0 <= x0 and x0 + 25 <= WIDTH and 0 <= y0 and y0 + 25 <= HEIGHT):
            continue
        ys, xs = np.mgrid[y0:y0 + 25, x0:x0 + 25]
        canvas[y0:y0 + 25, x0:x0 + 25] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * sigma ** 2))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def write_fake_release(data_root, seed=0):
    """Write the release under data_root/humbi (and the toy SMPL model under data_root/body_models).

    Returns dict(snapshots={(body relpath, snapshot): dict(keypoints_m (25, 3) file order, smpl (the 86
    numbers as dict scale/trans/pose/shape), smpl_joints_m (24, 3) model order)}, images=[dict(relpath,
    body, snapshot, camera_id, calibrated, broken, pixels (49, 2) of keypoints then SMPL joints)],
    cameras={body relpath: {camera id: (centre m, R, K)}}).
    """
    from posepile.util import improc
    rng = np.random.default_rng(seed)
    layout_mm = grid_layout(rng)
    model = write_smpl_model(data_root, layout_mm[25:] / 1000, rng)
    root = Path(data_root) / 'humbi'
    result = {'snapshots': {}, 'images': [], 'cameras': {}}
    for subject, (yaws, image_ids, snapshots) in SUBJECTS.items():
        body = root / subject / 'body'
        body.mkdir(parents=True, exist_ok=True)
        cameras = {}
        for camera_id, yaw in yaws.items():
            intrinsics = np.array([[FOCAL_PX, 0, WIDTH / 2], [0, FOCAL_PX, HEIGHT / 2], [0, 0, 1]])
            if yaw is None:  # principal point far to the left: the person projects right of the image
                intrinsics[0, 2] = -6000
            cameras[camera_id] = (*camera_for_yaw(yaw or 0.0), intrinsics)
        write_calibration(body, cameras)
        body_relpath = str(body.relative_to(root.parent))
        result['cameras'][body_relpath] = cameras
        for snapshot in snapshots:
            centre_m = np.array([rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1)])
            keypoints_m = layout_mm[:25] / 1000 + centre_m
            smpl = {'scale': rng.uniform(0.97, 1.03), 'trans': centre_m, 'pose': rng.uniform(-0.02, 0.02, 72),
                    'shape': rng.normal(0, 1, 10)}
            smpl_joints_m = posed_smpl_joints_m(model, smpl)
            reconstruction = body / snapshot / 'reconstruction'
            reconstruction.mkdir(parents=True, exist_ok=True)
            (reconstruction / 'keypoints.txt').write_text(
                ''.join(' '.join(f'{v:.9f}' for v in row) + '\n' for row in keypoints_m))
            values = [smpl['scale'], *smpl['trans'], *smpl['pose'], *smpl['shape']]
            (reconstruction / 'smpl_parameter.txt').write_text(''.join(f'{v:.9f}\n' for v in values))
            result['snapshots'][(body_relpath, snapshot)] = dict(keypoints_m=keypoints_m, smpl=smpl,
                                                                 smpl_joints_m=smpl_joints_m)
            world_mm = np.concatenate([keypoints_m, smpl_joints_m]) * 1000
            for camera_id in image_ids:
                relpath = f'{body_relpath}/{snapshot}/image/image{camera_id:07d}.jpg'
                calibrated = camera_id in cameras
                centre, rotation, intrinsics = cameras.get(camera_id, cameras[0])
                pixels = project(world_mm, centre, rotation, intrinsics)
                path = Path(data_root) / relpath
                improc.write_jpeg_atomic(path, render_dots(pixels), 95)
                if relpath == BROKEN_IMAGE:
                    data = path.read_bytes()
                    path.write_bytes(data[:len(data) * 3 // 5])
                result['images'].append(dict(relpath=relpath, body=body_relpath, snapshot=snapshot,
                                             camera_id=camera_id, calibrated=calibrated,
                                             broken=relpath == BROKEN_IMAGE, pixels=pixels))
    return result
