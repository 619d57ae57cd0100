"""A tiny Human3.6M release in the real layout: S*/MyPoseFeatures/D3_Positions/<Action>.cdf with the
variable Pose of shape (1, N, 96) float32 (32 joints x xyz, world mm), as cdflib reads the real files."""
from pathlib import Path

import numpy as np

ACTIONS = {
    'S9': {'Directions 1': 150, 'Directions': 70, 'TakingPhoto 1': 200, 'WalkingDog': 65, 'Eating': 129},
    'S11': {'Photo': 64, 'WalkDog 1': 190, 'Sitting 1': 100, 'Directions 1': 257},
}


def write_pose_cdf(path, poses_n_32_3):
    from cdflib.cdfwrite import CDF
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(poses_n_32_3, np.float32).reshape(1, -1, 96)
    cdf = CDF(str(path), cdf_spec={'Majority': 'Row_major'}, delete=True)
    cdf.write_var({'Variable': 'Pose', 'Data_Type': 21, 'Num_Elements': 1, 'Rec_Vary': True,
                   'Dim_Sizes': [data.shape[1], 96]}, var_data=data)
    cdf.close()


def write_fake_release(root, seed=0, actions=None):
    """Writes poses for the test subjects; returns {(subject, action): (N, 32, 3) poses}."""
    rng = np.random.default_rng(seed)
    template = rng.normal(0, 250, (32, 3)) + [0, 0, 900]
    written = {}
    for subject, subject_actions in (actions or ACTIONS).items():
        for action, n_frames in subject_actions.items():
            walk = np.cumsum(rng.normal(0, 3, (n_frames, 32, 3)), axis=0)
            poses = template + walk + rng.normal(0, 500, 3) * [1, 1, 0]
            write_pose_cdf(Path(root) / subject / 'MyPoseFeatures' / 'D3_Positions' / f'{action}.cdf', poses)
            written[(subject, action)] = poses.astype(np.float32)
    return written


# ------------------------------------------------------------------------------------------------
# A release with videos and cameras, for the recipe's end-to-end test
from posepile.ds.h36m import main as h36m  # noqa: E402

FRAME_SIZES = {'54138969': (1000, 1002), '55011271': (1000, 1000), '58860488': (1000, 1000),
               '60457274': (1000, 1002)}  # (width, height)
RECIPE_ACTIONS = {'S1': {'Directions 1': 40}, 'S9': {'Greeting': 70}, 'S11': {'Walking 1': 70}}


def _euler_xyz(rotation):
    """(a, b, g) with rotation = Rx(a) @ Ry(b) @ Rz(g)."""
    b = np.arcsin(np.clip(rotation[0, 2], -1, 1))
    a = np.arctan2(-rotation[1, 2], rotation[2, 2])
    g = np.arctan2(-rotation[0, 1], rotation[0, 0])
    return a, b, g


def write_synthetic_metadata_xml(path):
    """A metadata.xml in the official format (<w0> with 300 numbers) with four cameras around the origin."""
    from posepile.util.camera import Camera
    values = []
    for i_cam in range(4):
        azimuth = np.deg2rad(45 + 90 * i_cam)
        for _ in range(11):
            centre = np.array([4500 * np.cos(azimuth), 4500 * np.sin(azimuth), 1600.0])
            camera = Camera(optical_center=centre, world_up=(0, 0, 1))
            camera.turn_towards(target_world_point=[0, 0, 900])
            values += [*_euler_xyz(camera.R), *centre]
    for i_cam in range(4):
        values += [1145.0 + i_cam, 1144.0 + i_cam, 512.0 - i_cam, 515.0 + i_cam,
                   -0.207, 0.247, -0.003, -0.0009, -0.0012]
    text = '[' + ' '.join(f'{v:.10g}' for v in values) + ']'
    Path(path).write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<a>\n   <w0>{text}</w0>\n</a>\n')


def _poses32(n_frames, phase):
    """A walking person: the demo's 17-joint motion placed into the 32-joint layout (the other 15 joints
    sit next to their neighbours, as the real skeleton's duplicate joints do)."""
    from posepile.ds.demo import scene
    poses17 = scene.person_poses(0, n_frames + 3, 50)[3:].astype(np.float64)
    poses17[..., :2] -= poses17[:1, 0, :2]  # start at the origin
    poses17[..., 0] += phase
    poses32 = np.zeros((n_frames, 32, 3))
    poses32[:, h36m.JOINTS17_OF_32] = poses17
    for j in range(32):
        if j not in h36m.JOINTS17_OF_32:
            poses32[:, j] = poses32[:, max(k for k in h36m.JOINTS17_OF_32 if k < j)] + [0, 0, -30.0]
    return poses32


def _marker_frame(camera, joints17, width, height):
    """Grey frame with a Gaussian dot (sigma 2.5 px) at the distorted projection of each joint."""
    image = np.full((height, width), 50.0, np.float32)
    ys, xs = np.mgrid[:height, :width]
    for u, v in camera.world_to_image(joints17):
        if not (0 <= u < width and 0 <= v < height):
            continue
        y0, y1, x0, x1 = max(0, int(v) - 12), min(height, int(v) + 13), max(0, int(u) - 12), min(width, int(u) + 13)
        image[y0:y1, x0:x1] += 200 * np.exp(-((xs[y0:y1, x0:x1] - u) ** 2 + (ys[y0:y1, x0:x1] - v) ** 2) / 12.5)
    return np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def write_recipe_release(root, realdata=None, actions=None):
    """CDFs, metadata.xml (the real one when available) and marker videos for every camera.
    Returns {(subject, action): poses (N, 32, 3)}."""
    from posepile.util.video import write_video
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    real_xml = Path(realdata) / 'h36m' / 'metadata.xml' if realdata else None
    if real_xml is not None and real_xml.exists():
        (root / 'metadata.xml').write_bytes(real_xml.read_bytes())
    else:
        write_synthetic_metadata_xml(root / 'metadata.xml')
    cameras = h36m.load_cameras(root / 'metadata.xml')
    written = {}
    for i, (subject, subject_actions) in enumerate((actions or RECIPE_ACTIONS).items()):
        for action, n_frames in subject_actions.items():
            poses = _poses32(n_frames, phase=200.0 * i)
            write_pose_cdf(root / subject / 'MyPoseFeatures' / 'D3_Positions' / f'{action}.cdf', poses)
            for camera_id, (width, height) in FRAME_SIZES.items():
                camera = cameras[(int(subject[1:]), camera_id)]
                frames = (_marker_frame(camera, p[h36m.JOINTS17_OF_32], width, height) for p in poses)
                write_video(root / subject / 'Videos' / f'{action}.{camera_id}.mp4', frames, fps=50, quality=9)
            written[(subject, action)] = poses.astype(np.float32)
    return written
