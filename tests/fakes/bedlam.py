"""A tiny BEDLAM release: all_npz_12_training/<scene>_6fps.npz with the keys and conventions that
pixelite1201/BEDLAM data_processing/df_full_body.py writes (imgname '<seq>/<seq>_<NNNN>.png' every 5th image,
pose_world 165, shape 11, trans_world m, cam_int, cam_ext [R | t] world to camera in m, center / scale = the box of
the first 22 projected joints x1.2, side / 200, sub), <scene>/mp4/<seq>.mp4 and <scene>/masks/<seq>/<seq>_<NNNN>_env.png
(BEDLAM's download layout; the environment mask's polarity, white = environment, is an assumption: no real BEDLAM
file is available here). A closeup scene stores its frames unrotated while its labels refer to the frame rotated
90 deg clockwise (df_full_body.py's rotate_flag).

Bodies are toy neutral SMPL-X models (tests/toy_bodymodels.py) posed by forward kinematics computed here; every
frame shows a Gaussian dot at each projected joint. Body 1 of each sequence is far away: its box is under 100 px."""
from pathlib import Path

import cv2
import numpy as np

from tests.fakes.freeman import render_dots
from tests.fakes.genebody import forward_kinematics
from tests.toy_bodymodels import PARENTS, write_toy_model

WIDTH, HEIGHT = 320, 180  # stored frames (both scenes)
FOCAL_PX = 260.0
SCENES = ('20221010_3_1000_batch01hand', '20221019_3-8_250_highbmihand_closeup_suburb_b')
SEQ = 'seq_000000'
LABELED_FRAMES = (0, 5, 10, 15, 20)
N_VIDEO_FRAMES = 21
TOY_SCALE = 2.0


def is_closeup(scene):
    return 'closeup' in scene


def write_fake_release(data_root, seed=0):
    """Write body_models/smplx/SMPLX_NEUTRAL.npz and bedlam/ under data_root; returns {'model': toy arrays,
    'rows': [dict(scene, frame, body, params (world), R, t_m, K (labels' frame), box_side)]}."""
    from posepile.util.video import write_video
    rng = np.random.default_rng(seed)
    data_root = Path(data_root)
    arrays, _ = write_toy_model(data_root / 'body_models', 'smplx', 'neutral', n_shape=400, seed=5,
                                scale=TOY_SCALE)  # 300 shape + 100 expression columns (v1.1)
    root = data_root / 'bedlam'
    rows = []
    for scene in SCENES:
        closeup = is_closeup(scene)
        label_w, label_h = (HEIGHT, WIDTH) if closeup else (WIDTH, HEIGHT)
        K = np.array([[FOCAL_PX, 0, label_w / 2], [0, FOCAL_PX, label_h / 2], [0, 0, 1]])
        roll = np.pi / 2 if closeup else 0.0  # the camera turned about its axis (Unreal renders closeups rotated)
        R = cv2.Rodrigues(np.array([0.05, rng.uniform(-0.2, 0.2), roll]))[0]
        t_m = np.array([0.1, 0.2, 0.3])
        bodies = []
        for body, depth in ((0, 4.5), (1, 40.0)):
            betas = rng.normal(0, 0.5, 11)
            pose = rng.normal(0, 0.15, 165)
            centre_cam = np.array([rng.uniform(-0.3, 0.3), 0.0, depth])
            trans = R.T @ (centre_cam - t_m)
            bodies.append((body, betas, pose, trans))
        images = {f: np.full((label_h, label_w), 45.0, np.float32) for f in LABELED_FRAMES}
        env = {f: np.full((label_h, label_w), 255, np.uint8) for f in LABELED_FRAMES}
        for body, betas, pose0, trans in bodies:
            pose = pose0.copy()
            for frame in LABELED_FRAMES:
                if rng.random() > 0.3 and frame:
                    pose = pose + rng.normal(0, 0.12, 165)  # otherwise the same pose: dropped by the sampler
                joints = forward_kinematics(arrays, PARENTS['smplx'], pose, betas, trans)
                cam = joints @ R.T + t_m
                pixels = cam[:, :2] / cam[:, 2:] * FOCAL_PX + K[:2, 2]
                render_dots(pixels, label_w, label_h, image=images[frame])
                x0, y0 = pixels[:22].min(0)
                x1, y1 = pixels[:22].max(0)
                side = max(x1 - x0, y1 - y0) * 1.2
                cv2.circle(env[frame], tuple(int(v) for v in pixels[0]), 6, 0, -1)  # some person pixels
                rows.append(dict(scene=scene, frame=frame, body=body, R=R, t_m=t_m, K=K, box_side=side,
                                 params=dict(pose=pose.copy(), shape=betas, trans=trans), joints_cam_m=cam,
                                 center=[(x0 + x1) / 2, (y0 + y1) / 2], scale=side / 200))
        scene_rows = [r for r in rows if r['scene'] == scene]
        cam_ext = [np.vstack([np.hstack([r['R'], r['t_m'][:, None]]), [0, 0, 0, 1]]) for r in scene_rows]
        path = root / 'all_npz_12_training' / f'{scene}_6fps.npz'
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, imgname=np.array([f'{SEQ}/{SEQ}_{r["frame"]:04d}.png' for r in scene_rows]),
                 center=np.array([r['center'] for r in scene_rows]), scale=np.array([r['scale'] for r in scene_rows]),
                 pose_cam=np.array([r['params']['pose'] for r in scene_rows]),
                 pose_world=np.array([r['params']['pose'] for r in scene_rows]),
                 shape=np.array([r['params']['shape'] for r in scene_rows]),
                 trans_cam=np.array([r['params']['trans'] for r in scene_rows]),
                 trans_world=np.array([r['params']['trans'] for r in scene_rows]),
                 cam_int=np.array([r['K'] for r in scene_rows]), cam_ext=np.array(cam_ext),
                 gender=np.array(['neutral'] * len(scene_rows)), sub=np.array([f'rp_body_{r["body"]}'
                                                                                for r in scene_rows]))
        unrotate = (lambda a: np.ascontiguousarray(np.rot90(a, 1))) if closeup else (lambda a: a)  # CCW: stored
        frames = []
        for f in range(N_VIDEO_FRAMES):
            image = images.get(f, np.full((label_h, label_w), 45.0, np.float32))
            frames.append(unrotate(render_dots(np.zeros((0, 2)), label_w, label_h, image=image.copy())))
        write_video(root / scene / 'mp4' / f'{SEQ}.mp4', frames, fps=30, quality=9)
        for f, mask in env.items():
            path = root / scene / 'masks' / SEQ / f'{SEQ}_{f:04d}_env.png'
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), unrotate(mask))
    return {'model': arrays, 'rows': rows}
