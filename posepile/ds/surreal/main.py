"""SURREAL: camera reconstruction from the per-clip _info.mat."""
import numpy as np
import scipy.io

from posepile.util.camera import Camera
from posepile.util.errors import InputError

IMAGE_SIZE = (320, 240)  # width, height
INTRINSICS = np.array([[600.0, 0, 160], [0, 600, 120], [0, 0, 1]])


class SurrealFormatError(InputError):
    pass


def load_info(info_mat_path):
    try:
        return scipy.io.loadmat(info_mat_path)
    except Exception as e:
        raise SurrealFormatError(f'{info_mat_path}: cannot read .mat ({type(e).__name__}: {e})') from e


def camera_from_location(cam_loc_m):
    """The SURREAL render camera: Blender's fixed orientation, at `camLoc` (metres) -> Camera in mm."""
    rot_world_to_blender_cam = np.array([[0, 0, 1], [0, -1, 0], [-1, 0, 0]], np.float64).T
    # Blender cameras look along -z with y up; flip y and z to get the OpenCV convention.
    rot = np.diag([1.0, -1, -1]) @ rot_world_to_blender_cam
    return Camera(optical_center=np.asarray(cam_loc_m, np.float64).reshape(3) * 1000,
                  rot_world_to_cam=rot, intrinsic_matrix=INTRINSICS, world_up=(0, 0, 1))


def load_camera(info_mat_path):
    info = load_info(info_mat_path)
    if 'camLoc' not in info:
        raise SurrealFormatError(f'{info_mat_path}: no camLoc variable (keys: {sorted(info)})')
    return camera_from_location(info['camLoc'])


def load_joints3d_mm(info):
    """joints3D (3, 24, N) metres -> (N, 24, 3) float32 mm (a single frame is stored as (3, 24))."""
    joints = np.asarray(info['joints3D'], np.float64)
    if joints.ndim == 2:
        joints = joints[..., np.newaxis]
    return (joints.transpose(2, 1, 0) * 1000).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# The recipe's stages
import logging  # noqa: E402
from pathlib import Path  # noqa: E402

from posepile.preproc import pipeline  # noqa: E402

NAME = 'surreal'
logger = logging.getLogger(__name__)
SPLITS = {'train': 0, 'val': 1, 'test': 2}
SELECTION_THRESHOLD_MM = 100
JOINT_NAMES = ('pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,'
               'lelb,relb,lwri,rwri,lhan,rhan')
JOINT_EDGES = ('pelv-bell-spin-thor-neck-head,pelv-lhip-lkne-lank-ltoe,pelv-rhip-rkne-rank-rtoe,'
               'thor-lcla-lsho-lelb-lwri-lhan,thor-rcla-rsho-relb-rwri-rhan')


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def mirrored_camera(camera):
    """The released videos are mirrored with respect to a right-handed camera (the render camera's
    rotation has determinant -1). Frames are mirrored back when extracted, and the camera with them."""
    return camera.copy().horizontal_flip(image_width=IMAGE_SIZE[0])


def list_clips(root):
    """(split, relative video path without extension) for every clip with its _info.mat."""
    clips = []
    for split in SPLITS:
        for video in sorted((Path(root) / 'cmu' / split).glob('run*/*/*.mp4')):
            if video.with_name(video.stem + '_info.mat').exists():
                clips.append((split, str(video.relative_to(root).with_suffix(''))))
    if not clips:
        raise FileNotFoundError(f'no SURREAL clips (cmu/<split>/run*/<seq>/*.mp4 + _info.mat) under {root}')
    return clips


def frame_relpath(clip, frame):
    return f'surreal/frames/{clip}/frame_{frame:06d}.jpg'


def select_frames_stage(data_root=None):
    from posepile.util.sampling import select_frames
    out_path = work_dir(data_root) / 'selection.json'
    inputs = sorted(raw_root(data_root).glob('**/*_info.mat'))
    cached = pipeline.load_stage_json(out_path, inputs, [SELECTION_THRESHOLD_MM])
    if cached is not None:
        return cached
    root = raw_root(data_root)
    selection = {}
    for _, clip in list_clips(root):
        joints = load_joints3d_mm(load_info(root / f'{clip}_info.mat'))
        selection[clip] = select_frames(joints, SELECTION_THRESHOLD_MM).tolist()
    pipeline.save_stage_json(selection, out_path, inputs, [SELECTION_THRESHOLD_MM])
    return selection


def make_video_tasks(data_root=None):
    """One VideoTask per clip: the selected frames (mirrored back when decoded), each with the person's mask
    and box from the part segmentation; frames without a visible person are left out."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    from posepile.util import masks
    root = raw_root(data_root)
    selection = select_frames_stage(data_root)
    tasks, n_empty = [], 0
    for split, clip in list_clips(root):
        info = load_info(root / f'{clip}_info.mat')
        camera = mirrored_camera(camera_from_location(info['camLoc']))
        joints = load_joints3d_mm(info)
        segm = load_info(root / f'{clip}_segm.mat')
        people = {}
        for frame in selection.get(clip, []):
            key = f'segm_{frame + 1}'
            if key not in segm:
                raise SurrealFormatError(f'{root / clip}_segm.mat: no {key} for frame {frame}')
            mask = np.asarray(segm[key])[:, ::-1] > 0
            if not mask.any():
                n_empty += 1
                continue
            rle = masks.encode(mask)
            example = Pose3DExample(frame_relpath(clip, frame), joints[frame], masks.to_bbox(rle), camera, mask=rle,
                                    scene_name=clip.split('/')[2])
            crop = frame_relpath(clip, frame).replace('surreal/frames/', 'surreal_downscaled/', 1)
            people[frame] = [PersonTask(f'{SPLITS[split]}/{clip}/{frame:06d}', example, crop)]
        tasks.append(VideoTask(clip, str(root / f'{clip}.mp4'), people, horizontal_flip=True,
                               frame_relpath_pattern=f'surreal/frames/{clip}/frame_{{:06d}}.jpg'))
    if n_empty:
        logger.info('left out %d frames without a visible person', n_empty)
    return tasks


@pipeline.cli_options(pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION)
def video_stage(shard=None, n_workers=None, skip_broken=None, keep_frames=False, data_root=None):
    """Crops, one pass per clip, frames mirrored back (the released videos are mirrored); masks and boxes
    from the part segmentation."""
    pipeline.dataset_video_stage(NAME, make_video_tasks(data_root), shard, n_workers, data_root,
                                 skip_broken=skip_broken, keep_frames=keep_frames)


def make_dataset(data_root=None):
    """SURREAL: the official train/val/test folders, adaptive 100 mm per clip, 24 SMPL joints (mm), masks and
    boxes from the part segmentation, frames and cameras mirrored back to a right-handed system."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0], splits[1], splits[2])


def assemble(data_root=None):
    """The dataset for get_dataset('surreal')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.surreal.main', 'SURREAL stages', {
        'select-frames': select_frames_stage,
        'video': video_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
