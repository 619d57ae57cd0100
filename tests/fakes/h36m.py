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
