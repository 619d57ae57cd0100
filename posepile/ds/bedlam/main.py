"""BEDLAM (synthetic Unreal video, SMPL-X): readers of the raw release and the recipe's stages.

Raw layout under $DATA_ROOT/bedlam (BEDLAM's download scripts; the label files as pixelite1201/BEDLAM
data_processing/df_full_body.py writes them, one per scene folder of bedlam_scene_names.csv):

    all_npz_12_training/<scene>_6fps.npz   per person-image row: imgname '<seq>/<seq>_<NNNN>.png', pose_world (165),
                                           shape (11, neutral SMPL-X betas), trans_world (3, m), cam_int (3, 3),
                                           cam_ext (4, 4: [R | t] world to camera, m), center (2), scale (box side
                                           / 200 of the joints' box x1.2), sub (the body's id); _30fps.npz alike
    <scene>/mp4/<seq>.mp4                   the sequence as video: frame NNNN = image NNNN
    <scene>/masks/<seq>/<seq>_<NNNN>_env.png the environment mask (> 127 = environment; the rest are the people)

Closeup scenes ('closeup' in the scene name) are rendered rotated: the labels (cam_int 720x1280, cam_ext with the
roll +90 deg, center) refer to the frame rotated 90 deg clockwise (df_full_body.py's rotate_flag). Here the frame
and mask stay as stored and the camera is expressed for them instead (exact: the rotation about the optical axis
moves into R, the intrinsics are permuted), so the crops are the same upright views.

Rules (nlf-era-facts §1.2): neutral SMPL-X from pose_world / shape / trans_world with the camera of cam_ext (mm),
world up (0, -1, 0); the sampler (100 mm, buffer 100) on each body's joints in the camera frame; boxes under
100 px dropped; the person box is the labels' box (center, scale x 200), or with $POSEPILE_DETECTOR the
Hungarian-matched detection (IoU >= 0.5; unmatched people dropped); the mask of all people (not environment) on
every crop. Parameters are stored in the world frame of the camera (posepile/bodymodels/transform.py).
"""
import logging
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'bedlam'
LABEL_FOLDER = 'all_npz_12_training'
LABEL_SUFFIX = '_6fps.npz'
IMAGE_NAME = re.compile(r'^(?P<seq>[^/]+)/(?P=seq)_(?P<frame>\d+)\.png$')
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 100
MIN_BOX_SIDE_PX = 100
MIN_DETECTION_IOU = 0.5
BOX_SCALE_PX = 200  # BEDLAM's `scale` is the box side / 200
REQUIRED_KEYS = ('imgname', 'pose_world', 'shape', 'trans_world', 'cam_int', 'cam_ext', 'center', 'scale')


class BEDLAMFormatError(InputError):
    """A raw BEDLAM file is missing, unreadable or malformed (one line naming the file)."""


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def body_model_dir(data_root=None):
    return raw_root(data_root).parent / 'body_models'


def load_labels(path):
    """{key: array} of a scene's label npz, checked (one row per person-image)."""
    from posepile.util import fileio
    data = fileio.load_npz(path, BEDLAMFormatError)
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise BEDLAMFormatError(f'{path}: lacks {", ".join(missing)}')
    arrays = {k: np.asarray(data[k]) for k in REQUIRED_KEYS + (('sub',) if 'sub' in data else ())}
    n = len(arrays['imgname'])
    shapes = {'pose_world': (165,), 'trans_world': (3,), 'cam_int': (3, 3), 'cam_ext': (4, 4), 'center': (2,)}
    for key, shape in shapes.items():
        if arrays[key].shape != (n,) + shape:
            raise BEDLAMFormatError(f'{path}: {key} has shape {arrays[key].shape}, expected {(n,) + shape}')
    if arrays['shape'].ndim != 2 or len(arrays['shape']) != n or len(arrays['scale']) != n:
        raise BEDLAMFormatError(f'{path}: shape/scale do not have one row per image name ({n})')
    for key in ('pose_world', 'shape', 'trans_world', 'cam_int', 'cam_ext'):
        if not np.all(np.isfinite(arrays[key])):
            raise BEDLAMFormatError(f'{path}: {key} has non-finite values')
    return arrays


def stored_frame_camera(cam_int, cam_ext, closeup, stored_height):
    """Camera (mm) of the frame as stored in the mp4. For closeups the labels' camera sees the stored frame
    rotated 90 deg clockwise: rotated (u', v') = stored (x = v', y = H - 1 - u') with H the stored height, so the
    stored frame's camera has R'' = Rz R (Rz: x'' = y, y'' = -x) and K'' = [[fy, 0, cy], [0, fx, H - 1 - cx]]."""
    from posepile.util.camera import Camera
    K = np.asarray(cam_int, np.float64)
    R = np.asarray(cam_ext, np.float64)[:3, :3]
    t_mm = np.asarray(cam_ext, np.float64)[:3, 3] * 1000
    centre = -np.linalg.solve(R, t_mm)
    if closeup:
        height = stored_height
        Rz = np.array([[0.0, 1, 0], [-1, 0, 0], [0, 0, 1]])
        K = np.array([[K[1, 1], 0, K[1, 2]], [0, K[0, 0], height - 1 - K[0, 2]], [0, 0, 1]])
        R = Rz @ R
    return Camera(optical_center=centre, rot_world_to_cam=R, intrinsic_matrix=K, world_up=(0, -1, 0))


def stored_frame_box(center, scale, closeup, stored_height):
    """The labels' square box [x, y, w, h] in the stored frame (closeups: centre (v', H - 1 - u'))."""
    side = float(scale) * BOX_SCALE_PX
    cx, cy = float(center[0]), float(center[1])
    if closeup:
        cx, cy = cy, stored_height - 1 - cx
    return np.array([cx - side / 2, cy - side / 2, side, side], np.float32)


def scene_label_files(data_root=None):
    folder = raw_root(data_root) / LABEL_FOLDER
    files = sorted(folder.glob(f'*{LABEL_SUFFIX}'))
    if not files:
        raise FileNotFoundError(f'{folder}/*{LABEL_SUFFIX} not found: download and extract the BEDLAM labels '
                                '(main.sh step 1)')
    return files


def video_size(path):
    """(width, height) of a video from its header."""
    import imageio.v2 as imageio
    try:
        reader = imageio.get_reader(str(path), format='FFMPEG')
        width, height = reader.get_meta_data()['size']
        reader.close()
    except (OSError, RuntimeError, KeyError, IndexError, ValueError) as e:
        raise BEDLAMFormatError(f'{path}: cannot read the video header ({type(e).__name__}: {e})') from None
    return int(width), int(height)


def load_people_mask(path):
    """Boolean mask of the people: the pixels that the environment mask does not cover."""
    import cv2
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise BEDLAMFormatError(f'{path}: missing or unreadable environment mask')
    return image <= 127


def selected_rows(joints_cam_mm):
    from posepile.util.sampling import select_frames
    return select_frames(joints_cam_mm, SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)


def make_video_tasks(data_root=None):
    """One VideoTask per sequence video: per selected frame the people (sampler per body in the camera frame,
    boxes >= 100 px) with their world-frame parameters, all sharing the frame's people mask."""
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    from posepile.util import masks
    root = raw_root(data_root)
    model = bodymodels.load('smplx', 'neutral', body_model_dir(data_root))
    tasks, counts = [], {'rows': 0, 'selected': 0, 'small box': 0}
    for label_path in scene_label_files(data_root):
        scene = label_path.name[:-len(LABEL_SUFFIX)]
        closeup = 'closeup' in scene
        labels = load_labels(label_path)
        rows_by_track = {}
        for i, name in enumerate(labels['imgname']):
            match = IMAGE_NAME.match(str(name))
            if not match:
                raise BEDLAMFormatError(f'{label_path}: imgname {name!r} is not <seq>/<seq>_<frame>.png')
            sub = str(labels['sub'][i]) if 'sub' in labels else ''
            rows_by_track.setdefault((match['seq'], sub, i if not sub else None), []).append(
                (int(match['frame']), i))
        people_by_seq = {}
        heights = {}
        for (seq, sub, _), rows in sorted(rows_by_track.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]))):
            video_path = root / scene / 'mp4' / f'{seq}.mp4'
            if seq not in heights:
                if not video_path.exists():
                    raise FileNotFoundError(f'{video_path} not found: extract the BEDLAM mp4 archives (main.sh step 1)')
                heights[seq] = video_size(video_path)[1]
            rows.sort()
            params, joints_cam, cameras = [], [], []
            for frame, i in rows:
                camera = stored_frame_camera(labels['cam_int'][i], labels['cam_ext'][i], closeup, heights[seq])
                p = {'type': 'smplx', 'gender': 'neutral', 'pose': labels['pose_world'][i].astype(np.float32),
                     'shape': labels['shape'][i].astype(np.float32),
                     'trans': labels['trans_world'][i].astype(np.float32)}
                params.append(p)
                cameras.append(camera)
                joints_cam.append(camera.world_to_camera(parameter_joints_mm(p, model)))
            counts['rows'] += len(rows)
            for k in selected_rows(np.stack(joints_cam)):
                frame, i = rows[k]
                box = stored_frame_box(labels['center'][i], labels['scale'][i], closeup, heights[seq])
                if max(box[2], box[3]) < MIN_BOX_SIDE_PX:
                    counts['small box'] += 1
                    continue
                counts['selected'] += 1
                people_by_seq.setdefault(seq, {}).setdefault(frame, []).append((i, sub, params[k], cameras[k], box))
        for seq, frames in sorted(people_by_seq.items()):
            task_frames = {}
            for frame, people in sorted(frames.items()):
                mask_path = root / scene / 'masks' / seq / f'{seq}_{frame:04d}_env.png'
                mask = masks.encode(load_people_mask(mask_path))
                relpath = f'{NAME}/{scene}/png/{seq}/{seq}_{frame:04d}.png'
                task_frames[frame] = [
                    PersonTask(f'0/{scene}/{seq}/{frame:04d}/{i}', Pose3DExample(
                        relpath, None, box, camera, scene_name=scene, activity_name=seq, mask=mask,
                        parameters=p), f'{NAME}_downscaled/{scene}/{seq}/{frame:04d}_{i:06d}.jpg')
                    for i, sub, p, camera, box in people]
            tasks.append(VideoTask(f'{scene}/{seq}', f'{NAME}/{scene}/mp4/{seq}.mp4', task_frames))
    logger.info('%d videos; %s', len(tasks), ', '.join(f'{k} {v}' for k, v in counts.items()))
    return tasks


def box_rule(detector_spec):
    """The labels' box without a detector; with one Hungarian matching at IoU >= 0.5, unmatched people dropped."""
    from posepile.preproc.video_stage import BoxRule
    if not detector_spec:
        return BoxRule('gt')
    return BoxRule('hungarian', min_iou=MIN_DETECTION_IOU, fallback_to_gt=False)


@pipeline.cli_options(pipeline.DETECTOR_OPTION, pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION)
def video_stage(detector_spec=None, shard=None, n_workers=None, skip_broken=None, keep_frames=False,
                data_root=None):
    """One pass per sequence mp4: crops of the selected people with the people mask."""
    detector_spec = pipeline.configured_detector(detector_spec)
    pipeline.dataset_video_stage(
        NAME, make_video_tasks(data_root), shard, n_workers, data_root, detector_spec=detector_spec,
        box_rule=box_rule(detector_spec), skip_broken=skip_broken, keep_frames=keep_frames)


def make_dataset(data_root=None):
    """BEDLAM: parametric only (neutral SMPL-X, world frame of each camera), people masks, training."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo([], []), train_examples=splits[0])


def assemble(data_root=None):
    """The dataset for get_dataset('bedlam')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.bedlam.main', 'BEDLAM stages', {
        'video': video_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
