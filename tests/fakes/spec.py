"""A tiny SPEC-SYN release: spec-syn/annotations/{train,test}.npz (imgname, pose, shape, cam_rotmat, cam_int,
openpose_gt, S), 1920x1080 PNG renders with dots at the joints, and a toy neutral SMPL model (official .pkl
layout) in $DATA_ROOT/body_models/smpl for the joints."""
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

WIDTH, HEIGHT = 1920, 1080
BACKGROUND = 45.0
DOT_SIGMA_PX = 2.0
SMPL_NAMES = ('pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,relb,'
              'lwri,rwri,lhan,rhan').split(',')
OPENPOSE_NAMES = ('head,neck,rsho,relb,rwri,lsho,lelb,lwri,pelv,rhip,rkne,rank,lhip,lkne,lank,reye,leye,rear,lear,'
                  'lto2,lto3,lhee,rto2,rto3,rhee').split(',')
S_NAMES = 'rank,rkne,rhip,lhip,lkne,lank,rwri,relb,rsho,lsho,lelb,lwri'.split(',')
S_EXTRA = 'neck,head,pelv,spin,thor,bell,lcla,rcla,lhan,rhan,ltoe,rtoe'.split(',')  # rows 12-23 of the fake S
# split: [(imgname, [(depth mm, image point of the body centre px, scale, zero-confidence OpenPose joints)])]
SCENES = {
    'train': [('train/images/seq01_pitch10_fov60_cam3_000001.png',
               [(6500.0, (560, 520), 1.25, ()), (7000.0, (1380, 560), 0.9, ('lank', 'rwri'))]),
              ('train/images/seq02_pitch20_fov75_cam1_000007.png',
               [(60000.0, (400, 300), 1.0, ()), (6000.0, (1100, 520), 1.1, ())])],  # the first is tiny
    'test': [('test/images/seq07_pitch5_fov90_cam0_000002.png', [(6200.0, (900, 560), 1.2, ())])],
}


def write_toy_smpl(data_root):
    from tests.toy_bodymodels import write_toy_model
    write_toy_model(Path(data_root) / 'body_models', 'smpl', 'neutral', scale=2.5)


def _project(cam_mm, intrinsics):
    uvw = cam_mm @ np.asarray(intrinsics).T
    return uvw[:, :2] / uvw[:, 2:]


def _render(pixels_list):
    canvas = np.full((HEIGHT, WIDTH), BACKGROUND, np.float32)
    ys, xs = np.mgrid[:HEIGHT, :WIDTH]
    r = int(4 * DOT_SIGMA_PX)
    for pixels in pixels_list:
        for u, v in pixels:
            if not (r <= u < WIDTH - r - 1 and r <= v < HEIGHT - r - 1):
                continue
            x0, y0 = int(u) - r, int(v) - r
            sl = np.s_[y0:y0 + 2 * r + 1, x0:x0 + 2 * r + 1]
            canvas[sl] += 200 * np.exp(-((xs[sl] - u) ** 2 + (ys[sl] - v) ** 2) / (2 * DOT_SIGMA_PX ** 2))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _person(model, rng, depth, centre_px, scale, zero_conf, intrinsics):
    pose = np.concatenate([rng.normal(0, 0.5, 3), rng.normal(0, 0.15, 69)])
    shape = rng.normal(0, 0.5, 10)
    joints = model(pose[None], shape[None], None, return_vertices=False)['joints'][0] * 1000
    rot = Rotation.from_rotvec(rng.normal(0, 0.4, 3)).as_matrix()
    centre = np.linalg.solve(intrinsics, [*centre_px, 1.0]) * depth
    trans = centre / scale - (joints @ rot.T).mean(axis=0)
    cam_mm = (joints @ rot.T + trans) * scale
    pixels = _project(cam_mm, intrinsics)
    openpose = np.zeros((25, 3))
    for i, name in enumerate(OPENPOSE_NAMES):
        if name in SMPL_NAMES:
            openpose[i] = [*pixels[SMPL_NAMES.index(name)], 0.9]
        else:  # eyes, ears, feet: not SMPL joints (unused by the recipe)
            openpose[i] = [*(pixels.mean(axis=0) + rng.normal(0, 30, 2)), 0.7]
        if name in zero_conf:
            openpose[i] = 0
    s_rows = [cam_mm[SMPL_NAMES.index(n)] for n in S_NAMES + S_EXTRA]
    s_array = np.concatenate([np.array(s_rows) / 1000, np.ones((24, 1))], axis=1)
    return dict(pose=pose, shape=shape, openpose_gt=openpose, S=s_array, cam_mm=cam_mm, pixels=pixels)


def write_fake_release(data_root, images=True):
    """Writes $DATA_ROOT/spec/spec-syn and the toy SMPL model. Returns {split: [dict(imgname, row, cam_mm (24,
    3) camera frame, cam_rotmat, cam_int, box (projected joints x1.15), kept (box sides >= 100 px))]}."""
    from posepile import bodymodels
    data_root = Path(data_root)
    write_toy_smpl(data_root)
    model = bodymodels.load('smpl', 'neutral', data_root / 'body_models' / 'smpl')
    root = data_root / 'spec' / 'spec-syn'
    rng = np.random.default_rng(7)
    truth = {}
    for split, scenes in SCENES.items():
        rows = {k: [] for k in ('imgname', 'pose', 'shape', 'cam_rotmat', 'cam_int', 'openpose_gt', 'S')}
        truth[split] = []
        for imgname, people in scenes:
            focal = rng.uniform(900, 1300)
            intrinsics = np.array([[focal, 0, 960 + 13.25], [0, focal * 1.001, 540 - 7.5], [0, 0, 1]])
            cam_rotmat = Rotation.from_euler('xyz', rng.normal(0, 0.3, 3)).as_matrix()
            all_pixels = []
            for depth, centre, scale, zero_conf in people:
                person = _person(model, rng, depth, centre, scale, zero_conf, intrinsics)
                for key, value in (('imgname', imgname), ('pose', person['pose']), ('shape', person['shape']),
                                   ('cam_rotmat', cam_rotmat), ('cam_int', intrinsics),
                                   ('openpose_gt', person['openpose_gt']), ('S', person['S'])):
                    rows[key].append(value)
                (x1, y1), (x2, y2) = person['pixels'].min(0), person['pixels'].max(0)
                box = np.array([(x1 + x2) / 2 - (x2 - x1) * 0.575, (y1 + y2) / 2 - (y2 - y1) * 0.575,
                                (x2 - x1) * 1.15, (y2 - y1) * 1.15])
                truth[split].append(dict(imgname=imgname, row=len(rows['imgname']) - 1, cam_mm=person['cam_mm'],
                                         cam_rotmat=cam_rotmat, cam_int=intrinsics, box=box,
                                         kept=bool(min(box[2:]) >= 100)))
                all_pixels.append(person['pixels'])
            if images:
                import cv2
                path = root / imgname
                path.parent.mkdir(parents=True, exist_ok=True)
                assert cv2.imwrite(str(path), _render(all_pixels)[..., ::-1])
        path = root / 'annotations' / f'{split}.npz'
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{k: np.array(v) for k, v in rows.items()})
    return truth
