"""A tiny GeneBody-Train40 release in the raw layout, with a toy SMPL-X model (hand PCA and mean included).

Layout evidence: gnr genebody/genebody.py (image/<view>/<frame>.jpg, mask/<view>/mask<frame>.png, param/<frame>.npy,
annots.npy, genebody_split.npy) and the real files in /work/shared/realdata/genebody (annots.npy: cams[view] =
{K, D (5,), c2w (4,4) m, c2w_R, c2w_T}; param/0392.npy: {'smplx': {global_orient (1,3), body_pose (1,21,3),
jaw/leye/reye_pose (1,3), left/right_hand_pose (15,3), betas (1,10), expression (1,10), transl (1,3),
keypoints3d (1,55,3)}, 'smplx_scale': float}). keypoints3d = smplx_scale * SMPLX(**smplx).joints[:55] (gnr), with
smplx's defaults (full hand rotations plus the hand mean). Images are smaller than the real 2448x2048.

Subjects: 'amanda' (female, train, views 00, 01, 02; frames P0, P0 + 1 mm-ish, P1, P2; view 02's mask of the
last frame is empty), 'barry' (male, train, views 00 and 01, frames P0, P1), 'fuzhizhi' (test: present but not
used), 'zhuna' (listed in train, absent).
"""
from pathlib import Path

import cv2
import numpy as np

from tests.toy_bodymodels import PARENTS, toy_arrays, write_npz

WIDTH, HEIGHT = 1224, 1024
FOCAL_PX = 1000.0
DISTANCE_M = 2.6
BACKGROUND = 45.0
DISTORTION = np.array([-0.06, 0.11, -0.001, 0.003, -0.05])
MODEL_SCALE = 1.0
N_DOTS = 22  # dots drawn at the first 22 (body) joints; the hand and face joints crowd together
SUBJECTS = {
    'amanda': dict(gender='female', views=('00', '01', '02'), frames=(0, 0.0005, 1, 2), empty=('02', 3),
                   scale=1.05),
    'barry': dict(gender='male', views=('00', '01'), frames=(0, 1), empty=None, scale=0.93),
}
TEST_SUBJECT = 'fuzhizhi'
ABSENT_TRAIN = 'zhuna'
YAWS = {'00': -40.0, '01': 10.0, '02': 60.0}


def write_toy_smplx(model_dir, gender, seed):
    """(arrays incl. hands_componentsl/r, hands_meanl/r, path) of a toy SMPL-X .npz (10 shape + 10 expression)."""
    rng = np.random.default_rng(seed + 50)
    arrays = toy_arrays('smplx', 20, seed)
    for key in ('v_template', 'shapedirs', 'posedirs'):
        arrays[key] = arrays[key] * MODEL_SCALE
    extras = {'hands_componentsl': np.linalg.qr(rng.normal(size=(45, 45)))[0].T,
              'hands_componentsr': np.linalg.qr(rng.normal(size=(45, 45)))[0].T,
              'hands_meanl': rng.normal(0, 0.15, 45), 'hands_meanr': rng.normal(0, 0.15, 45)}
    path = Path(model_dir) / 'smplx' / f'SMPLX_{gender.upper()}.npz'
    write_npz(path, arrays, **extras)
    return {**arrays, **extras}, path


def forward_kinematics(arrays, parents, pose, betas, trans, expression=None, n_shape=10):
    """(J, 3) m: joints of a toy model computed here from the arrays (independent of posepile.bodymodels)."""
    v_shaped = arrays['v_template'] + arrays['shapedirs'][..., :len(betas)] @ betas
    if expression is not None and len(expression):
        v_shaped = v_shaped + arrays['shapedirs'][..., n_shape:n_shape + len(expression)] @ expression
    rest = arrays['J_regressor'] @ v_shaped
    local = [cv2.Rodrigues(np.asarray(r, np.float64))[0] for r in np.reshape(pose, (-1, 3))]
    rotations, joints = [local[0]], [rest[0]]
    for j in range(1, len(parents)):
        p = parents[j]
        rotations.append(rotations[p] @ local[j])
        joints.append(joints[p] + rotations[p] @ (rest[j] - rest[p]))
    return np.array(joints) + trans


def camera_for_yaw(yaw_deg, distance_m=DISTANCE_M):
    """(optical centre (3,) m, R world-to-camera): on a circle around the origin, looking at it, world y down."""
    yaw = np.deg2rad(yaw_deg)
    centre = distance_m * np.array([np.sin(yaw), 0.0, -np.cos(yaw)])
    rotation = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    return centre, rotation


def intrinsics(width=WIDTH, height=HEIGHT, focal=FOCAL_PX):
    return np.array([[focal, 0, width / 2 + 3.3], [0, focal * 1.001, height / 2 - 2.1], [0, 0, 1]])


def project(points_m, centre_m, rotation, K, distortion):
    """Pixels by OpenCV's projectPoints (world metres, X_cam = R (X - centre))."""
    rvec = cv2.Rodrigues(rotation)[0]
    tvec = -rotation @ centre_m
    points = np.asarray(points_m, np.float64)
    return cv2.projectPoints(points, rvec, tvec, K, np.asarray(distortion, np.float64))[0][:, 0]


def render(pixels, width, height, mask_box=None, sigma=2.0):
    """(RGB image with a Gaussian dot at each pixel, uint8 mask 255 inside mask_box [x0, y0, x1, y1])."""
    canvas = np.full((height, width), BACKGROUND, np.float32)
    for u, v in pixels:
        x0, y0 = int(round(u)) - 12, int(round(v)) - 12
        if not (0 <= x0 and x0 + 25 <= width and 0 <= y0 and y0 + 25 <= height):
            continue
        ys, xs = np.mgrid[y0:y0 + 25, x0:x0 + 25]
        canvas[y0:y0 + 25, x0:x0 + 25] += 200 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * sigma ** 2))
    image = np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    mask = np.zeros((height, width), np.uint8)
    if mask_box is not None:
        x0, y0, x1, y1 = np.round(mask_box).astype(int)
        mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 255
    return image, mask


def random_smplx_fit(rng, arrays):
    """Released-style SMPL-X parts, upright in a y-down world, the pelvis near the origin."""
    rest_pelvis = arrays['J_regressor'][0] @ arrays['v_template']
    return {'global_orient': np.array([[np.pi + rng.normal(0, 0.1), rng.uniform(-0.5, 0.5), rng.normal(0, 0.1)]]),
            'body_pose': rng.normal(0, 0.2, (1, 21, 3)), 'jaw_pose': rng.normal(0, 0.1, (1, 3)),
            'leye_pose': rng.normal(0, 0.1, (1, 3)), 'reye_pose': rng.normal(0, 0.1, (1, 3)),
            'left_hand_pose': rng.normal(0, 0.2, (15, 3)), 'right_hand_pose': rng.normal(0, 0.2, (15, 3)),
            'betas': rng.normal(0, 1, (1, 10)), 'expression': rng.normal(0, 1, (1, 10)),
            'transl': (rng.uniform(-0.1, 0.1, 3) - rest_pelvis)[None]}


def full_pose(fit, arrays):
    """The smplx library's use_pca=False, flat_hand_mean=False rule, re-stated: hands + the model's hand mean."""
    return np.concatenate([fit['global_orient'].ravel(), fit['body_pose'].ravel(), fit['jaw_pose'].ravel(),
                           fit['leye_pose'].ravel(), fit['reye_pose'].ravel(),
                           fit['left_hand_pose'].ravel() + arrays['hands_meanl'],
                           fit['right_hand_pose'].ravel() + arrays['hands_meanr']])


def write_fake_release(data_root, seed=0):
    """Write the release under data_root/genebody/GeneBody-Train40 and toy models under data_root/body_models.
    Returns dict(frames=[dict(subject, frame, gender, joints_m (55, 3) world = scale * model joints, fit, scale)],
    images=[dict(relpath, subject, frame, view, pixels (55, 2), empty_mask)], cameras={(subject, view): (centre,
    R, K)})."""
    from posepile.util import improc
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    release = data_root / 'genebody' / 'GeneBody-Train40'
    release.mkdir(parents=True, exist_ok=True)
    models = {g: write_toy_smplx(data_root / 'body_models', g, seed=7 + i)[0]
              for i, g in enumerate(('female', 'male'))}
    np.save(release / 'genebody_split.npy', {'train': [*SUBJECTS, ABSENT_TRAIN], 'test': [TEST_SUBJECT]},
            allow_pickle=True)
    result = {'frames': [], 'images': [], 'cameras': {}}
    for subject, spec in [*SUBJECTS.items(), (TEST_SUBJECT, dict(gender='female', views=('00',), frames=(0,),
                                                                 empty=None, scale=1.0))]:
        subject_dir = release / subject
        arrays = models[spec['gender']]
        K = intrinsics()
        cams = {}
        for view in spec['views']:
            centre, rotation = camera_for_yaw(YAWS[view])
            c2w = np.eye(4)
            c2w[:3, :3], c2w[:3, 3] = rotation.T, centre
            cams[view] = {'c2w': c2w, 'K': K, 'c2w_R': rotation.T, 'c2w_T': centre[:, None], 'D': DISTORTION}
            result['cameras'][(subject, view)] = (centre, rotation, K)
        cams['47'] = dict(cams[spec['views'][0]])  # a camera without images (as joseph_matanda's 40 of 48)
        subject_dir.mkdir(parents=True, exist_ok=True)
        np.save(subject_dir / 'annots.npy', {'cams': cams}, allow_pickle=True)
        keys = [random_smplx_fit(rng, arrays) for _ in range(3)]
        for index, key in enumerate(spec['frames']):
            fit = {k: v + (key % 1) if k in ('body_pose', 'transl') else v for k, v in keys[int(key)].items()}
            fit = {k: v.astype(np.float32).astype(np.float64) for k, v in fit.items()}
            scale = spec['scale']
            joints = scale * forward_kinematics(arrays, PARENTS['smplx'], full_pose(fit, arrays), fit['betas'][0],
                                                fit['transl'][0], fit['expression'][0])
            frame = f'{index * 3 + 1:04d}'
            (subject_dir / 'param').mkdir(exist_ok=True)
            np.save(subject_dir / 'param' / f'{frame}.npy',
                    {'smplx': {**{k: v.astype(np.float32) for k, v in fit.items()},
                               'keypoints3d': joints[None].astype(np.float32)}, 'smplx_scale': scale},
                    allow_pickle=True)
            result['frames'].append(dict(subject=subject, frame=frame, gender=spec['gender'], joints_m=joints,
                                         fit=fit, scale=scale))
            for view in spec['views']:
                centre, rotation, _ = result['cameras'][(subject, view)]
                pixels = project(joints, centre, rotation, K, DISTORTION)
                empty = spec['empty'] == (view, index)
                box = None if empty else np.concatenate([pixels.min(0) - 4, pixels.max(0) + 4])
                image, mask = render(pixels[:N_DOTS], WIDTH, HEIGHT, box)
                image_path = subject_dir / 'image' / view / f'{frame}.jpg'
                image_path.parent.mkdir(parents=True, exist_ok=True)
                improc.write_jpeg_atomic(image_path, image, 95)
                (subject_dir / 'mask' / view).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(subject_dir / 'mask' / view / f'mask{frame}.png'), mask)
                result['images'].append(dict(relpath=str(image_path.relative_to(data_root)), subject=subject,
                                             frame=frame, view=view, pixels=pixels, empty_mask=empty,
                                             frame_index=index))
    return result
