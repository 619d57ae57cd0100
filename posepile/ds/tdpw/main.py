"""3DPW: readers of the raw release (sequenceFiles/<split>/<sequence>.pkl, Python-2 pickles) and the recipe.

Each example's `parameters` holds the actor's gendered SMPL fit of that frame (poses (72), betas (first 10),
trans (m)) as released: in the 3DPW world frame, the frame of the example's `world_coords` (jointPositions) and of
its camera (cam_poses) (posepile/bodymodels/transform.py). posepile.bodymodels.rototranslate(parameters,
camera.R, camera.t / 1000) gives the fit in the (crop) camera's frame. No body model is needed to build it.

Joints: the 24 SMPL joints of jointPositions in the original's order, SMPL joints 1..23 then the pelvis
(DATASET_JOINT_NAMES; SMPL_JOINT_NAMES is the SMPL order that the evaluation and the raw files use).
"""
import pickle
from pathlib import Path

import numpy as np

from posepile.joint_info import JointInfo
from posepile.util.errors import InputError

SPLITS = ('train', 'validation', 'test')
N_TRACKS_ALL_SPLITS = 87  # (sequence, actor) tracks over the 60 sequences
SMPL_JOINT_NAMES = ('pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,'
                    'lelb,relb,lwri,rwri,lhan,rhan')
# the dataset's order (as the original): SMPL joints 1..23, then the pelvis
SMPL_TO_DATASET = [*range(1, 24), 0]
DATASET_JOINT_NAMES = ','.join(np.array(SMPL_JOINT_NAMES.split(','))[SMPL_TO_DATASET])
JOINT_EDGES = ('pelv-bell-spin-thor-neck-head,pelv-lhip-lkne-lank-ltoe,pelv-rhip-rkne-rank-rtoe,'
               'thor-lcla-lsho-lelb-lwri-lhan,thor-rcla-rsho-relb-rwri-rhan')
JOINT_INFOS = {'make_dataset': JointInfo(DATASET_JOINT_NAMES, JOINT_EDGES)}  # read by posepile.registry
# hips, knees, ankles, shoulders, elbows, wrists: the joints of the challenge's PCK (SMPL order)
MAJOR_JOINTS = [1, 2, 4, 5, 7, 8, 16, 17, 18, 19, 20, 21]


class TDPWFormatError(InputError):
    pass


def load_sequence(path):
    """The sequence pickle as a dict (latin1 decoding of the Python-2 pickles), its arrays checked: cam_poses
    (N, 4, 4); per actor jointPositions and poses (N, 72), trans (N, 3), poses2d (N, 3, 18), campose_valid (N,),
    >= 10 betas, a gender. TDPWFormatError (one line naming the file) otherwise, also for an unreadable pickle
    (a corrupt header can make the unpickler ask for gigabytes: MemoryError)."""
    path = Path(path)
    try:
        with open(path, 'rb') as f:
            data = pickle.load(f, encoding='latin1')
    except OSError as e:
        raise TDPWFormatError(f'{path}: cannot read the 3DPW sequence pickle ({e})') from e
    except Exception as e:  # corrupt pickles raise UnpicklingError, MemoryError, ValueError, KeyError, ...
        detail = f'{type(e).__name__}: {e}' if str(e) else type(e).__name__
        raise TDPWFormatError(f'{path}: corrupt 3DPW sequence pickle ({detail})') from None
    if not isinstance(data, dict):
        raise TDPWFormatError(f'{path}: a {type(data).__name__}, not the dict of a 3DPW sequence pickle')
    missing = [k for k in ('jointPositions', 'cam_poses', 'campose_valid', 'poses2d', 'poses', 'betas', 'trans',
                           'genders') if k not in data]
    if missing:
        raise TDPWFormatError(f'{path}: missing keys {missing}')
    _check_shapes(data, path)
    return data


def _shape(value):
    try:
        return np.shape(np.asarray(value, np.float64))
    except (ValueError, TypeError):
        return 'ragged'


def _check_shapes(data, path):
    n_frames = len(np.asarray(data['cam_poses']))
    if _shape(data['cam_poses']) != (n_frames, 4, 4):
        raise TDPWFormatError(f'{path}: cam_poses has shape {_shape(data["cam_poses"])}, expected (N, 4, 4)')
    n_actors = len(data['jointPositions'])
    per_actor = {'jointPositions': (n_frames, 72), 'poses': (n_frames, 72), 'trans': (n_frames, 3),
                 'poses2d': (n_frames, 3, 18), 'campose_valid': (n_frames,)}
    for key in (*per_actor, 'betas', 'genders'):
        if len(data[key]) != n_actors:
            raise TDPWFormatError(f'{path}: {key} has {len(data[key])} actors, jointPositions {n_actors}')
    for actor in range(n_actors):
        for key, expected in per_actor.items():
            shape = _shape(data[key][actor])
            if shape != expected:
                per_frame = (f'{int(np.prod(shape[1:]))} instead of {int(np.prod(expected[1:]))} values per frame'
                             if shape != 'ragged' and len(shape) >= 1 and shape[0] == n_frames else
                             f'shape {shape}, expected {expected}')
                raise TDPWFormatError(f'{path}: actor {actor} {key} has {per_frame} ({n_frames} frames)')
        if np.size(np.asarray(data['betas'][actor])) < 10:
            raise TDPWFormatError(f'{path}: actor {actor} has {np.size(data["betas"][actor])} betas, expected >= 10')


def list_sequences(root, split):
    folder = Path(root) / 'sequenceFiles' / split
    if not folder.is_dir():
        raise FileNotFoundError(f'{folder} not found: extract sequenceFiles.zip under {root}')
    return sorted(p.stem for p in folder.glob('*.pkl'))


def valid_frames(data, actor):
    """Bool (N,): camera pose valid and some 2D keypoint detected (the challenge's rule)."""
    poses2d = np.asarray(data['poses2d'][actor], np.float64)
    detected = np.mean(np.abs(poses2d.reshape(len(poses2d), -1)), axis=1) != 0
    return detected & np.asarray(data['campose_valid'][actor]).astype(bool)


def joints_camera_mm(data, actor, frames=None):
    """(F, 24, 3) SMPL joints in the camera frame, mm, from jointPositions (world, metres) and cam_poses."""
    joints = np.asarray(data['jointPositions'][actor], np.float64).reshape(-1, 24, 3)
    cam_poses = np.asarray(data['cam_poses'], np.float64)
    if frames is not None:
        joints, cam_poses = joints[frames], cam_poses[frames]
    return world_to_camera_mm(joints, cam_poses)


def world_to_camera_mm(joints_world_m, cam_poses):
    """(F, J, 3) world metres -> camera mm with per-frame 4x4 world-to-camera matrices (F, 4, 4)."""
    homogeneous = np.concatenate([joints_world_m, np.ones((*joints_world_m.shape[:2], 1))], axis=-1)
    return np.einsum('fij,fkj->fki', np.asarray(cam_poses, np.float64), homogeneous)[..., :3] * 1000


def image_relpath(sequence, frame_index):
    return f'tdpw/imageFiles/{sequence}/image_{frame_index:05d}.jpg'


# ------------------------------------------------------------------------------------------------
# SMPL joints from body-model parameters (the official evaluator regenerates ground truth this way)
GENDERS = {'f': 'female', 'm': 'male'}


def load_smpl_model(path, gender='neutral'):
    """The SMPL model in `path` (an official .pkl/.npz, or a folder holding one) as a posepile.bodymodels
    BodyModel; TDPWFormatError (one line naming the file) when it is missing or unreadable."""
    from posepile import bodymodels
    try:
        return bodymodels.load('smpl', gender, path)
    except bodymodels.BodyModelFormatError as e:
        raise TDPWFormatError(str(e)) from None


# the 9 parts of the challenge's angle metric: pelvis, hips, knees, shoulders, elbows
ANGLE_PARTS = [0, 1, 2, 4, 5, 16, 17, 18, 19]
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


def global_rotations(poses):
    """(F, 24, 3, 3) world orientations of the SMPL joints from axis-angle poses (F, 72): the kinematic
    chain of local rotations (no body model file needed)."""
    import cv2
    poses = np.asarray(poses, np.float64).reshape(-1, 24, 3)
    result = np.zeros((len(poses), 24, 3, 3))
    for f, pose in enumerate(poses):
        for j in range(24):
            local = cv2.Rodrigues(pose[j])[0]
            result[f, j] = local if j == 0 else result[f, SMPL_PARENTS[j]] @ local
    return result


def smpl_joints(model, poses, betas, trans):
    """World joints (F, 24, 3) in metres: the posed SMPL skeleton (posepile.bodymodels, joints only) of poses
    (F, 72), one betas vector (its first model.n_betas values) and trans (F, 3) or (3,)."""
    poses = np.asarray(poses, np.float64).reshape(-1, 72)
    betas = np.asarray(betas, np.float64).reshape(-1)[:model.n_betas]
    trans = np.broadcast_to(np.asarray(trans, np.float64).reshape(-1, 3), (len(poses), 3))
    return model(poses, betas, trans, return_vertices=False)['joints']


def world_parameters(data, actor, frame):
    """The actor's SMPL fit at `frame` as a world-frame parameter dict (posepile/bodymodels/transform.py)."""
    gender = GENDERS.get(str(data['genders'][actor]).lower()[:1])
    pose = np.asarray(data['poses'][actor][frame], np.float64).reshape(-1)
    betas = np.asarray(data['betas'][actor], np.float64).reshape(-1)[:10]
    trans = np.asarray(data['trans'][actor][frame], np.float64).reshape(-1)
    sequence = data.get('sequence', '?')
    if gender is None or pose.size != 72 or trans.size != 3 or betas.size != 10:
        raise TDPWFormatError(f'{sequence}: actor {actor} has gender {data["genders"][actor]!r}, pose '
                              f'{pose.size}, betas {betas.size}, trans {trans.size} values (expected f/m, 72, 10, 3)')
    if not (np.all(np.isfinite(pose)) and np.all(np.isfinite(betas)) and np.all(np.isfinite(trans))):
        raise TDPWFormatError(f'{sequence}: actor {actor} frame {frame} has non-finite SMPL parameters')
    return {'type': 'smpl', 'gender': gender, 'pose': pose.astype(np.float32), 'shape': betas.astype(np.float32),
            'trans': trans.astype(np.float32)}


# ------------------------------------------------------------------------------------------------
# The recipe's stages (see main.sh)
import logging  # noqa: E402

from posepile.preproc import pipeline  # noqa: E402

NAME = 'tdpw'
logger = logging.getLogger(__name__)
SPLIT_IDS = {'train': 0, 'validation': 1, 'test': 2}
BOX_EXPANSION = 1.15
MIN_ASSOCIATION_IOU = float(np.nextafter(0.1, 1))  # IoU > 0.1 (strict, as the original's parametric builder)


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def frame_camera(data, frame):
    """The camera of one frame: cam_intrinsics and cam_poses[frame] (world->camera, metres -> mm)."""
    from posepile.util.camera import Camera
    extrinsic = np.array(data['cam_poses'][frame], np.float64)
    extrinsic[:3, 3] *= 1000
    # crops stay upright as the (hand-held) camera saw them: "up" is the camera's own up direction
    return Camera(extrinsic_matrix=extrinsic, intrinsic_matrix=np.asarray(data['cam_intrinsics'], np.float64),
                  world_up=-extrinsic[1, :3])


def make_crop_tasks(data_root=None, detections=None):
    """(tasks, stats): one crop task per valid (frame, actor). With `detections` ({relpath: (D, 5)}), as the
    original's parametric builder: each frame's actors are Hungarian-matched to its detections (IoU > 0.1 with
    the projected-joint box x1.15), the detection box is used, and actors without a match are left out."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.association import associate_boxes
    from posepile.util import boxes
    root = raw_root(data_root)
    tasks = []
    stats = {'people': 0, 'matched_to_detection': 0, 'dropped_unmatched': 0}
    for split in SPLITS:
        if not (root / 'sequenceFiles' / split).is_dir():
            continue
        for sequence in list_sequences(root, split):
            data = load_sequence(root / 'sequenceFiles' / split / f'{sequence}.pkl')
            n_actors = len(data['jointPositions'])
            # every valid frame, no thinning (neither of the original's builders samples 3DPW)
            wanted = {a: set(np.flatnonzero(valid_frames(data, a)).tolist()) for a in range(n_actors)}
            for frame in sorted(set().union(*wanted.values())):
                relpath = image_relpath(sequence, frame)
                if not (root.parent / relpath).exists():
                    raise FileNotFoundError(f'{root.parent / relpath} not found: extract imageFiles.zip')
                camera = frame_camera(data, frame)
                world = [np.asarray(data['jointPositions'][a], np.float64).reshape(-1, 24, 3)[frame] * 1000
                         for a in range(n_actors)]
                gt_boxes = np.array([boxes.expand(boxes.bb_of_points(camera.world_to_image(w)), BOX_EXPANSION)
                                     for w in world])
                matches = (associate_boxes(gt_boxes, detections[relpath], MIN_ASSOCIATION_IOU)
                           if detections is not None else np.full(n_actors, -1))
                for actor in range(n_actors):
                    if frame not in wanted[actor]:
                        continue
                    stats['people'] += 1
                    box = gt_boxes[actor]
                    if detections is not None:
                        if matches[actor] < 0:
                            stats['dropped_unmatched'] += 1
                            continue
                        box = detections[relpath][matches[actor], :4]
                        stats['matched_to_detection'] += 1
                    example = Pose3DExample(relpath, world[actor][SMPL_TO_DATASET], box, camera, scene_name=sequence,
                                            parameters=world_parameters(data, actor, frame))
                    crop = f'tdpw_downscaled/{sequence}/image_{frame:05d}_{actor}.jpg'
                    tasks.append((f'{SPLIT_IDS[split]}/{sequence}/{actor}/{frame:05d}', example, crop))
    if not tasks:
        raise FileNotFoundError(f'no 3DPW sequences under {root / "sequenceFiles"}')
    return tasks, stats


def all_frame_relpaths(data_root=None):
    tasks, _ = make_crop_tasks(data_root)
    return sorted({example.image_path for _, example, _ in tasks})


@pipeline.cli_options(('--detector', dict(dest='detector_spec', default='hog')))
def detect_stage(detector_spec='hog', shard=None, data_root=None):
    from posepile.preproc.detection import run_detection_stage
    root = raw_root(data_root)
    run_detection_stage(root.parent, all_frame_relpaths(data_root), work_dir(data_root) / 'detections.pkl',
                        detector_spec, shard=shard)


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of every valid (frame, actor), with detection boxes where the detect stage ran."""
    from posepile.util import fileio
    detections_path = work_dir(data_root) / 'detections.pkl'
    detections = fileio.load_pickle(detections_path) if detections_path.exists() else None
    tasks, stats = make_crop_tasks(data_root, detections)
    logger.info('association: %s', stats)
    pipeline.dataset_crop_stage(NAME, tasks, shard, n_workers, data_root)


def body_model_dir(data_root=None):
    return raw_root(data_root).parent / 'body_models'


def make_dataset(data_root=None):
    """3DPW with the 24 SMPL joints (mm, pelvis last): every valid frame of the train, validation and test
    splits as released; with detections, only the actors matched to one, with its box; the gendered SMPL fit in
    the world frame (`parameters`)."""
    from posepile.datasets3d import Pose3DDataset
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JOINT_INFOS['make_dataset'], splits[0], splits[1], splits[2])


def assemble(data_root=None):
    """The dataset for get_dataset('tdpw')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.tdpw.main', '3DPW stages', {
        'detect': detect_stage,
        'crop': crop_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
