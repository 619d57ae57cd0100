"""BEHAVE: readers of the raw release and the recipe's stages.

Raw layout under $DATA_ROOT/behave (Date01..07.zip extracted into sequences/, calibs.zip into the root):

    split.json                                     {"train": [sequence names], "test": [...]}
    calibs/intrinsics/<k>/calibration.json         {"color": {fx, fy, cx, cy, k1..k6, p1, p2, ...}, ...}
    calibs/Date0X/config/<k>/config.json           {"rotation": 9 numbers, "translation": 3 numbers (m)}
    sequences/<seq>/info.json                      {"gender", "kinects": [0, 1, 2, 3], "intrinsic", "config", ...}
    sequences/<seq>/<frame, e.g. t0003.000>/k<k>.color.jpg, k<k>.person_mask.jpg    2048x1536 px
    sequences/<seq>/<frame>/person/person_J3d.json         {"body_joints3d": 25 x (x, y, z, confidence)}, m
    sequences/<seq>/<frame>/person/fit02/person_fit.pkl    SMPL+H fit {"pose": 156, "betas": 10, "trans": 3}, m

The config's "rotation" is stored row-major as the camera-to-world rotation (points go to the world as
R X + translation), so the world-to-camera rotation is its transpose and "translation" is the optical centre
(as the original loader: `reshape(3, 3).T`, centre = translation x 1000). info.json names the calibration folders
with paths of the authors' machines; they are resolved relative to the sequence folder when they exist there,
else by their part from `calibs/` on, under the root. World frame y-down; all stored coordinates in mm.

Joints (49, as the original): the 24 SMPL joints (the gendered SMPL model evaluated with the fit's body pose, the
first 22 joint rotations; the SMPL hand joints depend only on their parents), pelvis moved last, then the 25
OpenPose body joints of person_J3d.json with the `_coco` suffix, mid-hip moved last. `parameters` holds the SMPL+H
fit as released, in the world frame (that of `world_coords` and of the example's camera; as the original's
add_parametric): posepile.bodymodels.rototranslate(parameters, camera.R, camera.t / 1000) is the fit in the
camera frame (posepile/bodymodels/transform.py). Building needs no SMPL+H model.
"""
import logging
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'behave'

JOINT_NAMES = (
    'lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,relb,lwri,rwri,'
    'lhan,rhan,pelv,'
    'nose_coco,neck_coco,rsho_coco,relb_coco,rwri_coco,lsho_coco,lelb_coco,lwri_coco,rhip_coco,rkne_coco,'
    'rank_coco,lhip_coco,lkne_coco,lank_coco,reye_coco,leye_coco,rear_coco,lear_coco,lfoo_coco,ltoe_coco,'
    'lhee_coco,rfoo_coco,rtoe_coco,rhee_coco,pelv_coco')
JOINT_EDGES = (
    'head-neck-thor-rcla-rsho-relb-rwri-rhan,thor-spin-bell-pelv-rhip-rkne-rank-rtoe,'
    'nose_coco-neck_coco-pelv_coco-rhip_coco-rkne_coco-rank_coco-rfoo_coco-rtoe_coco,rank_coco-rhee_coco,'
    'nose_coco-reye_coco-rear_coco,neck_coco-rsho_coco-relb_coco-rwri_coco')
SMPL_ORDER = [*range(1, 24), 0]  # SMPL model order -> JOINT_NAMES order (pelvis last)
OPENPOSE_ORDER = [*range(8), *range(9, 25), 8]  # BODY_25 file order -> JOINT_NAMES order (mid-hip last)
N_OPENPOSE = 25
N_SMPLH_POSE = 156  # 52 joints x 3
N_SMPL_BODY_POSE = 66  # the 22 SMPL body joints shared with SMPL+H; the 2 SMPL hand rotations stay zero
IMAGE_SIZE = (2048, 1536)  # (width, height) px of the Kinect colour images; boxes are clipped to it
WORLD_UP = (0, -1, 0)
BOX_EXPANSION = 1.05
MIN_DETECTION_IOU = 0.5  # a detection replaces the joint box when its IoU > 0.5 (strictly)
SELECTION_THRESHOLD_MM = 100  # the original's AdaptivePoseSampler2(100, True, True, 100) per sequence
SELECTION_BUFFER = 100
MASK_THRESHOLD = 127
DISTORTION_KEYS = ('k1', 'k2', 'p1', 'p2', 'k3', 'k4', 'k5', 'k6')  # OpenCV order


class BEHAVEFormatError(InputError):
    """A raw BEHAVE file is missing, unreadable or malformed (one line naming the file)."""


# ------------------------------------------------------------------------------------------------
# Readers
def load_json(path):
    from posepile.util import fileio
    return fileio.load_json(path, BEHAVEFormatError)


def _numbers(path, value, key, count):
    try:
        array = np.asarray(value, np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise BEHAVEFormatError(f'{path}: {key} is not a list of numbers') from None
    if array.size != count or not np.all(np.isfinite(array)):
        raise BEHAVEFormatError(f'{path}: {key} has {array.size} values (expected {count} finite numbers)')
    return array


def load_camera(intrinsics_path, config_path):
    """Camera (mm, world y-down) of one Kinect: colour intrinsics and OpenCV distortion (k1, k2, p1, p2, k3..k6)
    from calibration.json; world-to-camera R = transpose of the config's row-major rotation, optical centre =
    its translation (m) x 1000."""
    from posepile.util.camera import Camera
    intrinsics = load_json(intrinsics_path)
    color = intrinsics.get('color') if isinstance(intrinsics, dict) else None
    if not isinstance(color, dict):
        raise BEHAVEFormatError(f'{intrinsics_path}: no "color" intrinsics object')
    missing = [k for k in ('fx', 'fy', 'cx', 'cy', *DISTORTION_KEYS) if k not in color]
    if missing:
        raise BEHAVEFormatError(f'{intrinsics_path}: color intrinsics lack {", ".join(missing)}')
    values = _numbers(intrinsics_path, [color[k] for k in ('fx', 'fy', 'cx', 'cy', *DISTORTION_KEYS)],
                      'color intrinsics', 12)
    fx, fy, cx, cy = values[:4]
    if fx <= 0 or fy <= 0:
        raise BEHAVEFormatError(f'{intrinsics_path}: non-positive focal length ({fx}, {fy})')
    config = load_json(config_path)
    if not isinstance(config, dict) or 'rotation' not in config or 'translation' not in config:
        raise BEHAVEFormatError(f'{config_path}: expected "rotation" and "translation"')
    cam_to_world = _numbers(config_path, config['rotation'], 'rotation', 9).reshape(3, 3)
    if not np.allclose(cam_to_world @ cam_to_world.T, np.eye(3), atol=1e-3) or np.linalg.det(cam_to_world) <= 0:
        raise BEHAVEFormatError(f'{config_path}: rotation is not a rotation matrix')
    centre_m = _numbers(config_path, config['translation'], 'translation', 3)
    if np.abs(centre_m).max() > 100:
        raise BEHAVEFormatError(f'{config_path}: translation {centre_m.tolist()} is implausible for metres')
    return Camera(optical_center=centre_m * 1000, rot_world_to_cam=cam_to_world.T,
                  intrinsic_matrix=[[fx, 0, cx], [0, fy, cy], [0, 0, 1]], distortion_coeffs=values[4:],
                  world_up=WORLD_UP)


def load_openpose_joints(path):
    """(25, 3) world mm: the OpenPose BODY_25 joints of person_J3d.json (x, y, z, confidence per joint, m)."""
    data = load_json(path)
    if not isinstance(data, dict) or 'body_joints3d' not in data:
        raise BEHAVEFormatError(f'{path}: no "body_joints3d"')
    values = _numbers(path, data['body_joints3d'], 'body_joints3d', N_OPENPOSE * 4).reshape(N_OPENPOSE, 4)
    if np.abs(values[:, :3]).max() > 100:
        raise BEHAVEFormatError(f'{path}: body_joints3d values up to {np.abs(values[:, :3]).max():.1f} are not metres')
    return values[:, :3] * 1000


def load_fit(path):
    """The SMPL+H fit of person_fit.pkl: dict pose (156,) axis-angle, betas (10,), trans (3,) m (float64).
    Read with posepile's restricted unpickler (numpy arrays and builtins only; no code in the file runs)."""
    import pickle

    from posepile.bodymodels.loading import BodyModelFormatError, restricted_load
    try:
        with open(path, 'rb') as f:
            data = restricted_load(f)
    except (OSError, BodyModelFormatError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise BEHAVEFormatError(f'{path}: cannot read the fit ({type(e).__name__}: {e})') from None
    if not isinstance(data, dict) or not all(k in data for k in ('pose', 'betas', 'trans')):
        raise BEHAVEFormatError(f'{path}: expected a dict with pose, betas and trans')
    pose = _numbers(path, data['pose'], 'pose', N_SMPLH_POSE)
    betas = np.asarray(data['betas'], np.float64).reshape(-1)
    if not 1 <= betas.size <= 16 or not np.all(np.isfinite(betas)):
        raise BEHAVEFormatError(f'{path}: betas has {betas.size} values or non-finite ones')
    trans = _numbers(path, data['trans'], 'trans', 3)
    return {'pose': pose, 'betas': betas, 'trans': trans}


def load_split(path):
    """The sequence names of split.json's "train" list (TRAIN); every other sequence is TEST (as the original)."""
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get('train'), list):
        raise BEHAVEFormatError(f'{path}: expected {{"train": [...], "test": [...]}}')
    return set(map(str, data['train']))


def load_mask(path):
    """COCO RLE of the shipped person mask (a JPEG, thresholded at 127)."""
    import cv2

    from posepile.util import masks
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise BEHAVEFormatError(f'{path}: cannot read the person mask')
    return masks.encode(image > MASK_THRESHOLD)


def resolve_calibration_dir(seq_dir, value, root, info_path):
    """The calibration folder that info.json names: relative to the sequence folder, else the part of the
    path from 'calibs' on, under the root."""
    if not isinstance(value, str) or not value:
        raise BEHAVEFormatError(f'{info_path}: calibration path {value!r} is not a string')
    direct = Path(seq_dir) / value
    if not Path(value).is_absolute() and direct.is_dir():
        return direct
    parts = Path(value).parts
    if 'calibs' in parts:
        candidate = Path(root).joinpath(*parts[parts.index('calibs'):])
        if candidate.is_dir():
            return candidate
    raise BEHAVEFormatError(f'{info_path}: calibration folder {value!r} not found (extract calibs.zip into {root})')


def load_sequence(seq_dir, root):
    """(info dict, {kinect id: Camera}) of one sequence."""
    info_path = Path(seq_dir) / 'info.json'
    info = load_json(info_path)
    if not isinstance(info, dict) or str(info.get('gender')) not in ('male', 'female'):
        raise BEHAVEFormatError(f'{info_path}: gender must be "male" or "female"')
    kinects = info.get('kinects')
    if not isinstance(kinects, list) or not kinects:
        raise BEHAVEFormatError(f'{info_path}: "kinects" must be a non-empty list')
    intrinsic_dir = resolve_calibration_dir(seq_dir, info.get('intrinsic'), root, info_path)
    config_dir = resolve_calibration_dir(seq_dir, info.get('config'), root, info_path)
    cameras = {int(k): load_camera(intrinsic_dir / str(k) / 'calibration.json', config_dir / str(k) / 'config.json')
               for k in kinects}
    return info, cameras


# ------------------------------------------------------------------------------------------------
# Body models and joints
def body_model_dir(data_root=None):
    return pipeline.raw_root(NAME, data_root).parent / 'body_models'


def smpl_joints_mm(smpl_model, fits):
    """(N, 24, 3) world mm: SMPL joints of the fits' body pose (first 22 joints), betas and trans."""
    pose = np.zeros((len(fits), 72))
    pose[:, :N_SMPL_BODY_POSE] = [fit['pose'][:N_SMPL_BODY_POSE] for fit in fits]
    betas = np.stack([fit['betas'][:smpl_model.n_betas] for fit in fits])
    trans = np.stack([fit['trans'] for fit in fits])
    return smpl_model(pose, betas, trans, return_vertices=False)['joints'] * 1000


def frame_dirs(seq_dir):
    """Frame folders of a sequence (those holding person/), sorted by name (time order, as the original)."""
    return sorted(d for d in Path(seq_dir).iterdir() if d.is_dir() and (d / 'person').is_dir())


def sequence_world_coords(seq_dir, smpl_model):
    """(frame dirs, (N, 49, 3) world mm in JOINT_NAMES order, fits) of one sequence."""
    frames = frame_dirs(seq_dir)
    if not frames:
        return [], np.zeros((0, 49, 3)), []
    fits = [load_fit(d / 'person' / 'fit02' / 'person_fit.pkl') for d in frames]
    openpose = np.stack([load_openpose_joints(d / 'person' / 'person_J3d.json') for d in frames])
    smpl = smpl_joints_mm(smpl_model, fits)
    return frames, np.concatenate([smpl[:, SMPL_ORDER], openpose[:, OPENPOSE_ORDER]], axis=1), fits


def selected_frames(world_coords):
    """Indices kept by the original's AdaptivePoseSampler2(100, True, True, 100) over a sequence's frames."""
    from posepile.util.sampling import select_frames
    return select_frames(world_coords, SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)


# ------------------------------------------------------------------------------------------------
# The raw tree and stages
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def sequence_dirs(root):
    seq_root = Path(root) / 'sequences'
    if not seq_root.is_dir():
        raise FileNotFoundError(f'{seq_root} not found: extract Date01..07.zip into it (step 1 of main.sh)')
    return sorted(d for d in seq_root.iterdir() if d.is_dir() and (d / 'info.json').exists())


def person_box(pixels, detections=None):
    """[x, y, w, h] px: the projected joints' box expanded 1.05x, replaced by the detection of highest IoU if
    that IoU > 0.5, clipped to the 2048x1536 image."""
    from posepile.preproc.association import choose_box
    from posepile.util import boxes
    box = boxes.expand(boxes.bb_of_points(pixels), BOX_EXPANSION)
    if detections is not None and len(detections):
        box = choose_box(box, detections, rule='best_iou', min_iou=np.nextafter(MIN_DETECTION_IOU, 1))
    width, height = IMAGE_SIZE
    return boxes.intersection(box, boxes.full_box((height, width)))


def crop_relpath(image_relpath):
    return image_relpath.replace(f'{NAME}/', f'{NAME}_downscaled/', 1)


def load_detections(data_root=None):
    """{relpath: (N, 5) [x, y, w, h, score] px} of the detect stage, or None when it has not run."""
    from posepile.util import fileio
    path = work_dir(data_root) / 'detections.pkl'
    return fileio.load_pickle(path) if path.exists() else None


def world_parameters(fit, gender):
    """The SMPL+H fit as a world-frame parameter dict (posepile/bodymodels/transform.py)."""
    return {'type': 'smplh', 'gender': gender, 'pose': fit['pose'].astype(np.float32),
            'shape': fit['betas'].astype(np.float32), 'trans': fit['trans'].astype(np.float32)}


def make_crop_tasks(data_root=None):
    """(key 'split/relpath', example, crop relpath) per selected frame x Kinect with a non-empty box; masks are
    attached later, only for the crop stage's own shard."""
    from posepile import bodymodels
    from posepile.datasets3d import TEST, TRAIN, Pose3DExample
    from posepile.util import boxes
    root = raw_root(data_root)
    train_sequences = load_split(root / 'split.json')
    detections = load_detections(data_root)
    models = {}
    tasks, counts = [], {'frames': 0, 'selected': 0, 'empty box': 0}
    for seq_dir in sequence_dirs(root):
        info, cameras = load_sequence(seq_dir, root)
        gender = info['gender']
        if gender not in models:
            models[gender] = bodymodels.load('smpl', gender, body_model_dir(data_root))
        frames, world, fits = sequence_world_coords(seq_dir, models[gender])
        kept = selected_frames(world) if len(frames) else []
        counts['frames'] += len(frames)
        counts['selected'] += len(kept)
        split = TRAIN if seq_dir.name in train_sequences else TEST
        for i in kept:
            for kinect, camera in cameras.items():
                relpath = str((frames[i] / f'k{kinect}.color.jpg').relative_to(root.parent))
                detected = None if detections is None else detections.get(relpath)
                box = person_box(camera.world_to_image(world[i]), detected)
                if not boxes.area(box) > 0:
                    counts['empty box'] += 1
                    continue
                example = Pose3DExample(relpath, world[i], box, camera, scene_name=seq_dir.name,
                                        activity_name=str(info.get('cat', 'unknown')),
                                        parameters=world_parameters(fits[i], gender))
                tasks.append((f'{split}/{relpath}', example, crop_relpath(relpath)))
    logger.info('%d crop tasks; %s', len(tasks), ', '.join(f'{k} {v}' for k, v in counts.items()))
    if not tasks:
        raise FileNotFoundError(f'no usable BEHAVE frames under {root}/sequences')
    return tasks


def mask_path(image_relpath, data_root=None):
    path = raw_root(data_root).parent / image_relpath
    return path.with_name(path.name.replace('.color.jpg', '.person_mask.jpg'))


def crop_stage(shard=None, n_workers=None, data_root=None, skip_broken=None):
    """Crops of the selected frames x Kinects, with the shipped person masks."""
    from posepile.util.parallel import parse_shard, shard_items
    tasks = make_crop_tasks(data_root)
    index, count = parse_shard(shard)
    for _, example, _ in shard_items(sorted(tasks, key=lambda task: task[0]), index, count):
        example.mask = load_mask(mask_path(example.image_path, data_root))
    pipeline.dataset_crop_stage(NAME, tasks, (index, count), n_workers, data_root, skip_broken=skip_broken)


crop_stage.cli_options = [pipeline.SKIP_BROKEN_OPTION]


@pipeline.cli_options(('--detector', dict(dest='detector_spec', default='hog')))
def detect_stage(detector_spec='hog', shard=None, data_root=None):
    """Optional person detection on every colour image (a box is replaced by the best detection at IoU > 0.5)."""
    from posepile.preproc.detection import run_detection_stage
    root = raw_root(data_root)
    relpaths = sorted(str(p.relative_to(root.parent)) for p in (root / 'sequences').glob('*/*/k*.color.jpg'))
    run_detection_stage(root.parent, relpaths, work_dir(data_root) / 'detections.pkl', detector_spec, shard=shard)


def make_dataset(data_root=None):
    """BEHAVE: selected frames x 4 Kinects, 49 joints in mm, train/test from split.json, person masks, the SMPL+H
    fit in the world frame (`parameters`)."""
    from posepile.datasets3d import TEST, TRAIN, Pose3DDataset
    from posepile.joint_info import JointInfo
    by_split = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), train_examples=by_split[TRAIN],
                         test_examples=by_split[TEST])


def assemble(data_root=None):
    """The dataset for get_dataset('behave')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.behave.main', 'BEHAVE stages', {
        'detect': detect_stage, 'crop': crop_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
