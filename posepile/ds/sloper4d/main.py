"""SLOPER4D (LiDAR + IMU captured SMPL in urban scenes, one head-mounted camera): readers and the recipe's stages.

Raw layout under $DATA_ROOT/sloper4d (one folder per sequence, as the official toolkit climbingdaily/SLOPER4D
reads it: src/data_loader.py, src/vid2imgs.py, visualization/render_scene.py and vis_utils.py):

    seq<NNN>_<name>/<seq>_labels.pkl    pickled dict:
        SMPL_info  {'fps', 'gender'}
        RGB_info   {'fps', 'width', 'height', 'intrinsics' [fx, fy, cx, cy] px, 'dist' (5,) OpenCV k1 k2 p1 p2 k3,
                    'lidar2cam' (unused here)}
        RGB_frames {'file_basename' [n] '<t>.jpg' with t = video frame index / fps as '%.6f' (vid2imgs.py),
                    'cam_pose' (n, 4, 4) world to camera in metres (X_cam = cam_pose @ [X; 1]),
                    'smpl_pose' (n, 72) axis-angle, 'beta' (n, 10), 'global_trans' (n, 3) world metres,
                    'bbox' [n] x1 y1 x2 y2 px (an empty entry: no box), 'skel_2d', 'tstamp', 'lidar_tstamps',
                    'extrinsic', 'human_points' (unused here)}
        An RGB frame whose 'smpl_pose' or 'bbox' entry is empty has no label (the toolkit skips it as well).
    seq<NNN>_<name>/rgb_data/<seq>.MP4  the head-mounted camera's video; label row i is decoded frame
                                        round(t_i * fps)

The world frame is the LiDAR map, z up. The fits are SMPL of the sequence's gender (SMPL_info['gender']) with the
frame's betas.

Rules (nlf-era-facts §1.2 'lidar', original-posepile-facts 'lidar'): the camera of each labelled frame from its
cam_pose (t x1000 -> mm), the intrinsics and the released distortion, world up (0, 0, 1); a frame is kept when all
the body's joints are in front of the camera and at least 6 of them project into the provided box; then the
sampler (100 mm, buffer 100) on the kept frames' camera-frame joints; the box is the provided bbox; crops with
extreme_perspective; everything is training data. The parameters are stored in the world frame
(posepile/bodymodels/transform.py). The order "filters, then sampler" is ours (the facts list both, not their
order). The original's CIMI4D reader is a broken draft and is not reimplemented.
"""
import logging
import pickle
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'sloper4d'
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 100
MIN_JOINTS_IN_BOX = 6
WORLD_UP = (0, 0, 1)
FRAME_KEYS = ('file_basename', 'cam_pose', 'smpl_pose', 'beta', 'global_trans', 'bbox')


class SLOPER4DFormatError(InputError):
    """A raw SLOPER4D file is missing, unreadable or malformed (one line naming the file)."""


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def body_model_dir(data_root=None):
    return raw_root(data_root).parent / 'body_models'


def _dict_entry(data, key, path):
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, dict):
        raise SLOPER4DFormatError(f'{path}: lacks the {key!r} dict (not a SLOPER4D *_labels.pkl?)')
    return value


def _float_array(value, shape, what, path):
    try:
        array = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise SLOPER4DFormatError(f'{path}: {what} is not numeric') from None
    if array.shape != shape or not np.all(np.isfinite(array)):
        raise SLOPER4DFormatError(f'{path}: {what} has shape {array.shape} (expected {shape}) or non-finite values')
    return array


def load_labels(path):
    """The labels of one sequence, checked: {'fps', 'width', 'height', 'K' (3, 3), 'dist' (5,), 'gender',
    'frames': [dict(basename, cam_pose (4, 4) m, pose (72,) or None, betas (10,), trans (3,) m, bbox xyxy or
    None)]}. Read with posepile's restricted unpickler (numpy arrays and builtins only; no code in the file runs)."""
    from posepile.bodymodels.loading import BodyModelFormatError, restricted_load
    path = Path(path)
    try:
        with open(path, 'rb') as f:
            data = restricted_load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f'{path} not found: download the SLOPER4D sequences (main.sh step 1)') from None
    except (OSError, BodyModelFormatError, pickle.UnpicklingError, EOFError, ValueError, TypeError,
            AttributeError, ImportError, IndexError, KeyError) as e:
        raise SLOPER4DFormatError(f'{path}: cannot read the labels pickle ({type(e).__name__}: {e})') from None
    smpl_info = _dict_entry(data, 'SMPL_info', path)
    rgb_info = _dict_entry(data, 'RGB_info', path)
    frames = _dict_entry(data, 'RGB_frames', path)
    for key in ('fps', 'width', 'height', 'intrinsics'):
        if key not in rgb_info:
            raise SLOPER4DFormatError(f'{path}: RGB_info lacks {key!r}')
    fx, fy, cx, cy = _float_array(rgb_info['intrinsics'], (4,), 'RGB_info intrinsics', path)
    dist = np.asarray(rgb_info.get('dist', np.zeros(5)), np.float64).reshape(-1)
    if dist.size not in (4, 5, 8) or not np.all(np.isfinite(dist)):
        raise SLOPER4DFormatError(f'{path}: RGB_info dist has {dist.size} values or non-finite ones (expected 5)')
    fps = float(rgb_info['fps'])
    if not (np.isfinite(fps) and fps > 0):
        raise SLOPER4DFormatError(f'{path}: RGB_info fps is {rgb_info["fps"]!r}')
    gender = str(smpl_info.get('gender', 'neutral'))
    missing = [k for k in FRAME_KEYS if k not in frames]
    if missing:
        raise SLOPER4DFormatError(f'{path}: RGB_frames lacks {", ".join(missing)}')
    n = len(frames['file_basename'])
    lengths = {k: len(frames[k]) for k in FRAME_KEYS}
    if any(v != n for v in lengths.values()):
        raise SLOPER4DFormatError(f'{path}: RGB_frames lists differ in length ({lengths})')
    rows = []
    for i in range(n):
        basename = str(frames['file_basename'][i])
        pose, box = frames['smpl_pose'][i], frames['bbox'][i]
        labelled = np.size(pose) > 0 and np.size(box) > 0
        rows.append(dict(
            basename=basename,
            cam_pose=_float_array(frames['cam_pose'][i], (4, 4), f'RGB_frames cam_pose[{i}]', path),
            pose=_float_array(np.reshape(pose, -1), (72,), f'RGB_frames smpl_pose[{i}]', path) if labelled
            else None,
            betas=_float_array(np.reshape(frames['beta'][i], -1), (10,), f'RGB_frames beta[{i}]', path)
            if labelled else None,
            trans=_float_array(np.reshape(frames['global_trans'][i], -1), (3,), f'RGB_frames global_trans[{i}]',
                               path) if labelled else None,
            bbox=_float_array(np.reshape(box, -1), (4,), f'RGB_frames bbox[{i}]', path) if labelled else None))
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    return {'fps': fps, 'width': int(rgb_info['width']), 'height': int(rgb_info['height']), 'K': K, 'dist': dist,
            'gender': gender, 'frames': rows}


def frame_index(basename, fps, path):
    """The video frame of a label row: its file name is '<frame / fps as %.6f>.jpg' (vid2imgs.py)."""
    stem = basename.rsplit('.', 1)[0]
    try:
        seconds = float(stem)
    except ValueError:
        raise SLOPER4DFormatError(f'{path}: file_basename {basename!r} is not <seconds>.jpg') from None
    if not (np.isfinite(seconds) and seconds >= 0):
        raise SLOPER4DFormatError(f'{path}: file_basename {basename!r} is not a time stamp')
    return int(round(seconds * fps))


def frame_camera(cam_pose, K, dist, path='<labels>'):
    """posepile Camera (mm) of a 4x4 world-to-camera cam_pose in metres."""
    from posepile.util.camera import Camera
    stored = np.asarray(cam_pose[:3, :3], np.float64)
    U, _, Vt = np.linalg.svd(stored)  # stored rotations may be float rounding away from orthonormal
    R = U @ Vt
    if np.linalg.det(R) < 0 or np.abs(R - stored).max() > 1e-3:
        raise SLOPER4DFormatError(f'{path}: a cam_pose is not a rigid world-to-camera transform (rotation part '
                                  f'{stored.round(4).tolist()})')
    t_mm = np.asarray(cam_pose[:3, 3], np.float64) * 1000
    return Camera(optical_center=-R.T @ t_mm, rot_world_to_cam=R, intrinsic_matrix=K, distortion_coeffs=dist,
                  world_up=WORLD_UP)


def xyxy_to_xywh(box):
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    return np.array([x1, y1, x2 - x1, y2 - y1], np.float32)


def sequence_dirs(data_root=None):
    root = raw_root(data_root)
    dirs = sorted(p.parent for p in root.glob('*/*_labels.pkl') if p.name == f'{p.parent.name}_labels.pkl')
    if not dirs:
        raise FileNotFoundError(f'{root}/<seq>/<seq>_labels.pkl not found: download and extract the SLOPER4D '
                                'sequences (main.sh step 1)')
    return dirs


def video_relpath(seq):
    return f'{NAME}/{seq}/rgb_data/{seq}.MP4'


def crop_relpath(seq, frame):
    return f'{NAME}_downscaled/{seq}/{frame:06d}.jpg'


def selected_rows(joints_cam_mm):
    from posepile.util.sampling import select_frames
    return select_frames(joints_cam_mm, SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)


def make_video_tasks(data_root=None):
    """One VideoTask per sequence: the labelled frames whose body is in front of the camera with >= 6 joints in
    the provided box, thinned by the sampler in the camera frame."""
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    from posepile.util import boxes
    tasks = []
    counts = {'rows': 0, 'unlabelled': 0, 'behind camera': 0, 'few joints in box': 0, 'selected': 0}
    for seq_dir in sequence_dirs(data_root):
        seq = seq_dir.name
        label_path = seq_dir / f'{seq}_labels.pkl'
        labels = load_labels(label_path)
        model = bodymodels.load('smpl', labels['gender'], body_model_dir(data_root))
        candidates, seen_frames = [], set()
        for row in labels['frames']:
            counts['rows'] += 1
            if row['pose'] is None:
                counts['unlabelled'] += 1
                continue
            frame = frame_index(row['basename'], labels['fps'], label_path)
            if frame in seen_frames:
                raise SLOPER4DFormatError(f'{label_path}: two label rows name video frame {frame} '
                                          f'({row["basename"]})')
            seen_frames.add(frame)
            camera = frame_camera(row['cam_pose'], labels['K'], labels['dist'], label_path)
            params = {'type': 'smpl', 'gender': model.gender, 'pose': row['pose'].astype(np.float32),
                      'shape': row['betas'].astype(np.float32), 'trans': row['trans'].astype(np.float32)}
            joints_world = parameter_joints_mm(params, model)
            joints_cam = camera.world_to_camera(joints_world)
            if not np.all(joints_cam[:, 2] > 0):
                counts['behind camera'] += 1
                continue
            box = xyxy_to_xywh(row['bbox'])
            if np.count_nonzero(boxes.contains(box, camera.world_to_image(joints_world))) < MIN_JOINTS_IN_BOX:
                counts['few joints in box'] += 1
                continue
            candidates.append((frame, camera, params, box, joints_cam))
        frames = {}
        if candidates:
            for k in selected_rows(np.stack([c[4] for c in candidates])):
                frame, camera, params, box, _ = candidates[k]
                example = Pose3DExample(f'{NAME}/{seq}/rgb_data/{seq}_imgs/{frame:06d}.jpg', None, box, camera,
                                        scene_name=seq, parameters=params)
                frames[frame] = [PersonTask(f'0/{seq}/{frame:06d}', example, crop_relpath(seq, frame))]
        counts['selected'] += len(frames)
        tasks.append(VideoTask(seq, video_relpath(seq), frames,
                               frame_relpath_pattern=f'{NAME}/{seq}/rgb_data/{seq}_imgs/{{:06d}}.jpg'))
    logger.info('%d videos; %s', len(tasks), ', '.join(f'{k} {v}' for k, v in counts.items()))
    return tasks


@pipeline.cli_options(pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION)
def video_stage(shard=None, n_workers=None, skip_broken=None, keep_frames=False, data_root=None):
    """One pass per sequence MP4: crops (extreme perspective, the released distortion) of the selected frames in
    the provided boxes."""
    from posepile.preproc.video_stage import BoxRule
    pipeline.dataset_video_stage(NAME, make_video_tasks(data_root), shard, n_workers, data_root, box_rule=BoxRule('gt'),
                                 skip_broken=skip_broken, keep_frames=keep_frames, extreme_perspective=True)


def make_dataset(data_root=None):
    """SLOPER4D: parametric only (SMPL in the world frame of each camera, z up), training."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo([], []), train_examples=splits[0])


def assemble(data_root=None):
    """The dataset for get_dataset('sloper4d')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.sloper4d.main', 'SLOPER4D stages', {
        'video': video_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
