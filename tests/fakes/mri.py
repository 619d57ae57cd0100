"""A tiny mRI release in the official layout (SizheAn/mRI: src/get_label_dict_all.py writes
label_dict/subject<N>_all_labels.cpl, a pickle with 'refined_gt_kps' (T, 3, 17) in metres, zero outside
'gt_avail_frames', in camera 1's frame with x and y negated, and 'camera_matrix' from src/camera_calibrate.py getPmat;
dataset_template.md lists camera_blursubject1_0427_blurred/blurred_subject1_color{0,1}.mp4, 1920x1080 at 30 fps).
The videos are written mirrored left-right, as nlf-era-facts §1.2 says the release stores them. No real mRI file is
available here; the frames are 1/6 of the real size (intrinsics scaled alike).

Each frame of color0 shows a Gaussian dot at each joint's projection (camera 1: X_cam = diag(-1, -1, 1) X_label,
then K), then mirrored."""
import pickle
from pathlib import Path

import numpy as np

from tests.fakes.freeman import person_track, render_dots

SCALE = 1 / 6
WIDTH, HEIGHT = 320, 180
CAM1_K = np.array([[1030.792174583942 * SCALE, 0.175946363713597 * SCALE, 983.9463572673553 * SCALE],
                   [0, 1034.034428253797 * SCALE, 553.3467762302013 * SCALE], [0, 0, 1]])
SUBJECTS = {'subject1': '0427', 'subject2': '0428'}
LABEL_TO_CAMERA = np.diag([-1.0, -1.0, 1.0])


def project(joints_label_m, K=CAM1_K):
    cam = joints_label_m @ LABEL_TO_CAMERA.T
    return cam[:, :2] / cam[:, 2:] * [K[0, 0], K[1, 1]] + cam[:, 1:2] / cam[:, 2:] * [K[0, 1], 0] + K[:2, 2]


def write_fake_release(root, seed=0, n_frames=14, gt_range=(2, 11), videos=True):
    """Write the release under root (= $DATA_ROOT/mri); returns {subject: (T, 17, 3) label joints in metres,
    zero outside gt_range (inclusive)}."""
    from posepile.util.video import write_video
    rng = np.random.default_rng(seed)
    root = Path(root)
    written = {}
    for subject, date in SUBJECTS.items():
        # z up in person_track; the label frame is y up (camera y down, flipped), z away from the camera
        track = person_track(rng, n_frames, [rng.uniform(30, 50), 0, 0], 6.0) / 100  # metres
        joints = np.stack([track[..., 0], track[..., 2] - 1.0, track[..., 1] + 3.2], axis=-1)
        first, last = gt_range
        joints[:first] = 0
        joints[last + 1:] = 0
        written[subject] = joints
        labels = {'naive_gt_kps': np.transpose(joints, (0, 2, 1)) * 1.01,
                  'refined_gt_kps': np.transpose(joints, (0, 2, 1)).astype(np.float32),
                  'gt_avail_frames': [first, last], 'video_label': {'T pose': [first, first + 2]},
                  'camera_matrix': {'cam1_intrinsic': CAM1_K, 'cam1_R': np.eye(3), 'cam1_T': np.zeros(3),
                                    'cam2_intrinsic': CAM1_K.copy()}}
        path = root / 'label_dict' / f'{subject}_all_labels.cpl'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(labels))
        if videos:
            folder = root / f'camera_blur{subject}_{date}_blurred'
            frames = []
            for pose in joints:
                image = render_dots(project(pose) if np.any(pose) else np.zeros((0, 2)), WIDTH, HEIGHT)
                frames.append(np.ascontiguousarray(image[:, ::-1]))  # stored mirrored
            write_video(folder / f'blurred_{subject}_color0.mp4', frames, fps=30, quality=9)
            write_video(folder / f'blurred_{subject}_color1.mp4', frames[:2], fps=30, quality=5)
    return written
