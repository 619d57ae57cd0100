"""SURREAL: camera reconstruction from the per-clip _info.mat, the SMPL fits, and the recipe's stages.

Mirroring. The released joints2D are K [R | t] joints3D with a rotation of determinant -1 (`camera_from_location`):
the videos are a mirror image of a right-handed view of the joints3D world. Frames are mirrored back when decoded
and the camera with them (`mirrored_camera`: a proper rotation), so each example's camera maps the world rigidly.

SMPL parameters. `_info.mat` has per frame pose (72, SMPL axis-angle), shape (10 betas), gender (0 female,
1 male) and zrot. As the original (its rotateBody), the world root orientation is Rx(90 deg) Rz(zrot) R(pose[:3]).
The released joints3D are exactly the forward kinematics of that pose (checked on the real clip 01_01_c0001: the
rest bones G_parent^T (J_child - J_parent) are constant over its 100 frames to 0.0003 mm, float32 precision, while
with the joints mirrored they vary by up to 370 mm), so the world fit agrees with joints3D, left and right
included, and no pose mirroring is needed: the example's camera is a proper rotation. The world translation puts
the model's pelvis at the released pelvis: trans = joints3D[pelvis] - J0(betas) (J0 the gendered model's rest
pelvis); the original used joints3D[pelvis] minus a fixed per-gender offset (its comment calls this wrong, kept
for reproducibility), which shifts the body by a shape-dependent J0(betas) - offset. Whether the real SMPL rest
skeleton J(betas) reproduces joints3D to the millimetre cannot be checked without the licensed model: the
recipe keeps the released joints3D as the example's joints (mm), reordered as the original (SMPL joints 1..23, then
the pelvis: its selected_joints = [*range(1, 24), 0]). Each example's `parameters` holds the fit in the world frame
of joints3D, the frame of its `world_coords` and of its (mirrored-back, proper) camera
(posepile/bodymodels/transform.py): posepile.bodymodels.rototranslate(parameters, camera.R, camera.t / 1000) is
the fit in the camera frame. The translation needs the gendered SMPL models of $DATA_ROOT/body_models/smpl;
without a model, `parameters` is None for that gender (logged). The original's parametric variant stored trans in
mm; ours is in metres, as every other recipe.
"""
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


GENDERS = {0: 'female', 1: 'male'}
# SMPL's y-up body frame to the SURREAL world's z-up: a rotation by +90 degrees about x (the original's R90)
Y_UP_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])


def world_root_rotations(root_rotvecs, zrot):
    """(N, 3, 3) world root orientations Rx(90 deg) Rz(zrot) R(root) of (N, 3) SMPL root axis-angles, (N,) zrot."""
    from posepile.bodymodels import rotvec_to_matrix
    zrot = np.asarray(zrot, np.float64).reshape(-1)
    cos, sin, zero, one = np.cos(zrot), np.sin(zrot), np.zeros_like(zrot), np.ones_like(zrot)
    rz = np.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], axis=-1).reshape(-1, 3, 3)
    return Y_UP_TO_Z_UP @ rz @ rotvec_to_matrix(np.asarray(root_rotvecs, np.float64).reshape(-1, 3))


def load_smpl_fits(info, info_mat_path):
    """(gender per frame ('female'/'male'), world pose (N, 72) with zrot folded into the root, betas (N, 10)),
    validated against the number of frames of joints3D."""
    from posepile.bodymodels.transform import matrix_to_rotvec
    n_frames = len(load_joints3d_mm(info))
    missing = [k for k in ('pose', 'shape', 'zrot', 'gender') if k not in info]
    if missing:
        raise SurrealFormatError(f'{info_mat_path}: no {", ".join(missing)} variable(s)')
    pose = np.asarray(info['pose'], np.float64).reshape(72, -1).T.copy()
    betas = np.asarray(info['shape'], np.float64).reshape(10, -1).T
    zrot = np.asarray(info['zrot'], np.float64).reshape(-1)
    gender = np.asarray(info['gender']).reshape(-1)
    sizes = {'pose': len(pose), 'shape': len(betas), 'zrot': len(zrot), 'gender': len(gender)}
    wrong = {k: v for k, v in sizes.items() if v != n_frames}
    if wrong:
        raise SurrealFormatError(f'{info_mat_path}: {wrong} frames, but joints3D has {n_frames}')
    if not (np.all(np.isfinite(pose)) and np.all(np.isfinite(betas)) and np.all(np.isfinite(zrot))):
        raise SurrealFormatError(f'{info_mat_path}: non-finite pose, shape or zrot')
    if not np.all(np.isin(gender, list(GENDERS))):
        raise SurrealFormatError(f'{info_mat_path}: gender values {sorted(set(gender.tolist()))}, expected 0 or 1')
    pose[:, :3] = matrix_to_rotvec(world_root_rotations(pose[:, :3], zrot))
    return [GENDERS[int(g)] for g in gender], pose, betas


def world_parameters(gender, pose, betas, pelvis_mm, model):
    """The world-frame SMPL parameter dict of one frame: the model's pelvis at the released pelvis (mm)."""
    from posepile.bodymodels.transform import rest_pelvis
    trans = np.asarray(pelvis_mm, np.float64) / 1000 - rest_pelvis(model, betas)
    return {'type': 'smpl', 'gender': gender, 'pose': pose.astype(np.float32), 'shape': betas.astype(np.float32),
            'trans': trans.astype(np.float32)}


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
# SMPL's joints 1..23, then the pelvis (the original's order: selected_joints = [*range(1, 24), 0])
SMPL_TO_DATASET = [*range(1, 24), 0]
JOINT_NAMES = ('lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,'
               'lelb,relb,lwri,rwri,lhan,rhan,pelv')
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


def body_model_dir(data_root=None):
    return raw_root(data_root).parent / 'body_models'


class SMPLModels:
    """The gendered SMPL models of $DATA_ROOT/body_models/smpl, loaded once each; None (logged) when missing."""

    def __init__(self, data_root=None):
        self.model_dir, self.models = body_model_dir(data_root), {}

    def __getitem__(self, gender):
        if gender not in self.models:
            from posepile import bodymodels
            try:
                self.models[gender] = bodymodels.load('smpl', gender, self.model_dir)
            except bodymodels.BodyModelNotFoundError as e:
                logger.warning('no SMPL parameters for the %s bodies: %s', gender, e)
                self.models[gender] = None
        return self.models[gender]


def make_video_tasks(data_root=None):
    """One VideoTask per clip: the selected frames (mirrored back when decoded), each with the person's mask
    and box from the part segmentation and the world-frame SMPL fit; frames without a visible person are left
    out."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    from posepile.util import masks
    root = raw_root(data_root)
    selection = select_frames_stage(data_root)
    models = SMPLModels(data_root)
    tasks, n_empty = [], 0
    for split, clip in list_clips(root):
        info = load_info(root / f'{clip}_info.mat')
        camera = mirrored_camera(camera_from_location(info['camLoc']))
        joints = load_joints3d_mm(info)
        genders, poses, betas = load_smpl_fits(info, root / f'{clip}_info.mat')
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
            model = models[genders[frame]]
            parameters = None if model is None else world_parameters(genders[frame], poses[frame], betas[frame],
                                                                     joints[frame][0], model)
            example = Pose3DExample(frame_relpath(clip, frame), joints[frame][SMPL_TO_DATASET], masks.to_bbox(rle),
                                    camera, mask=rle,
                                    scene_name=clip.split('/')[2], parameters=parameters)
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
    boxes from the part segmentation, frames and cameras mirrored back to a right-handed system, the gendered
    SMPL fit in the world frame (`parameters`)."""
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
