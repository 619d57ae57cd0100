"""HUMBI (body session): readers of the raw release and the recipe's stages.

Raw layout under $DATA_ROOT/humbi (optionally one bundle folder deeper, e.g. Body_1_80/subject_1/...):

    subject_<n>/body/intrinsic.txt, extrinsic.txt     calibration of the session's cameras
    subject_<n>/body/<snapshot %08d>/image/image<camera id %07d>.jpg        1920x1080 px
    subject_<n>/body/<snapshot %08d>/reconstruction/keypoints.txt           OpenPose-25 3D, metres
    subject_<n>/body/<snapshot %08d>/reconstruction/smpl_parameter.txt      86 numbers (SMPL fit)

The world frame is y-down (world_up = (0, -1, 0)); all stored coordinates are in mm.

The 24 SMPL joints come from the fit with the neutral SMPL model (posepile.bodymodels, from
$DATA_ROOT/body_models/smpl): joints = SMPL joints(pose, shape) x scale + T (the file's trans T; the HUMBI
toolbox's Jtr * scale + trans). Each example's `parameters` holds the fit (type 'smpl', gender 'neutral', pose,
shape, trans, scale) in the world frame, that of its `world_coords` and camera, in posepile's (NLF's) scale
convention X = scale * SMPL(pose, shape, trans) (posepile/bodymodels/transform.py): trans = T / scale.
posepile.bodymodels.rototranslate(parameters, camera.R, camera.t / 1000) gives the fit in the camera frame.
Without the model the SMPL joints are NaN and `parameters` is None (logged).
"""
import logging
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'humbi'

# The original's 49 joints: the 24 SMPL joints with the pelvis moved last, then the 25 OpenPose body
# joints with the `_coco` suffix (mixes match joints by these names), their mid-hip moved last.
SMPL_NAMES_IN_MODEL_ORDER = ('pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,'
                             'lsho,rsho,lelb,relb,lwri,rwri,lhan,rhan')
OPENPOSE_NAMES_IN_FILE_ORDER = ('nose,neck,rsho,relb,rwri,lsho,lelb,lwri,pelv,rhip,rkne,rank,lhip,lkne,lank,reye,'
                                'leye,rear,lear,lfoo,ltoe,lhee,rfoo,rtoe,rhee')
SMPL_ORDER = [*range(1, 24), 0]
OPENPOSE_ORDER = [*range(8), *range(9, 25), 8]
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
N_SMPL_JOINTS = 24
N_OPENPOSE_JOINTS = 25
N_SMPL_PARAMETERS = 86  # scale, trans (3, m), pose (72, axis-angle), shape (10 betas)
CALIBRATION_HEADER_LINES = 3
WORLD_UP = (0, -1, 0)
IMAGE_SIZE = (1920, 1080)  # (width, height) px: boxes are clipped to it, as in the original
BOX_EXPANSION = 1.05
MIN_DETECTION_IOU = 0.5  # the hull with the best detection is used when IoU > 0.5 (strictly)
IMAGE_NAME_PATTERN = re.compile(r'^image(\d+)\.jpg$')


class HUMBIFormatError(InputError):
    """A raw HUMBI file is unreadable or malformed (the message is one line naming the file)."""


# ------------------------------------------------------------------------------------------------
# Readers
def _read_text(path):
    try:
        return Path(path).read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as e:
        raise HUMBIFormatError(f'{path}: cannot read ({type(e).__name__}: {e})') from None


def _numbers(path, text, where):
    try:
        return np.array([float(x) for x in text.split()], np.float64)
    except ValueError:
        raise HUMBIFormatError(f'{path}: {where} is not numeric: {text.strip()[:60]!r}') from None


def _calibration_blocks(path, block_length):
    """{camera id: (block_length - 1, 3) rows} from a HUMBI calibration file: 3 header lines, then per camera
    a line '<ignored> <camera id>' and block_length - 1 rows of 3 numbers."""
    lines = [line for line in _read_text(path).splitlines()[CALIBRATION_HEADER_LINES:] if line.strip()]
    if not lines:
        raise HUMBIFormatError(f'{path}: no camera blocks after the {CALIBRATION_HEADER_LINES} header lines')
    if len(lines) % block_length:
        raise HUMBIFormatError(f'{path}: {len(lines)} data lines, not a multiple of the block length {block_length}')
    blocks = {}
    for start in range(0, len(lines), block_length):
        line_number = start + CALIBRATION_HEADER_LINES + 1
        header = _numbers(path, lines[start], f'camera header of block {start // block_length}')
        if len(header) != 2 or header[1] != int(header[1]) or header[1] < 0:
            raise HUMBIFormatError(f'{path}: block header {lines[start].strip()!r} (data line {line_number}) '
                                   f'is not "<ignored> <camera id>"')
        rows = [_numbers(path, line, f'row of camera {int(header[1])}') for line in
                lines[start + 1:start + block_length]]
        if any(len(row) != 3 for row in rows):
            raise HUMBIFormatError(f'{path}: camera {int(header[1])} has a row without exactly 3 numbers')
        camera_id = int(header[1])
        if camera_id in blocks:
            raise HUMBIFormatError(f'{path}: camera {camera_id} appears twice')
        blocks[camera_id] = np.stack(rows)
    return blocks


def load_intrinsics(path):
    """{camera id: K (3, 3) px} from intrinsic.txt (4-line blocks: id line, 3 rows of K)."""
    result = _calibration_blocks(path, 4)
    for camera_id, matrix in result.items():
        if not np.allclose(matrix[2], [0, 0, 1]) or matrix[0, 0] <= 0 or matrix[1, 1] <= 0:
            raise HUMBIFormatError(f'{path}: camera {camera_id} has no valid intrinsic matrix ({matrix.tolist()})')
    return result


def load_extrinsics(path):
    """{camera id: (optical centre (3,) mm, R (3, 3) world-to-camera)} from extrinsic.txt (5-line blocks: id
    line, camera centre in metres, 3 rows of R; the translation is t = -R C)."""
    result = {}
    for camera_id, rows in _calibration_blocks(path, 5).items():
        rotation = rows[1:]
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3) or np.linalg.det(rotation) <= 0:
            raise HUMBIFormatError(f'{path}: camera {camera_id} has a rotation that is not orthonormal')
        result[camera_id] = (rows[0] * 1000, rotation)
    return result


def load_cameras(intrinsic_path, extrinsic_path):
    """{camera id: Camera} (mm, world y-down) of the cameras present in both calibration files."""
    from posepile.util.camera import Camera
    intrinsics = load_intrinsics(intrinsic_path)
    extrinsics = load_extrinsics(extrinsic_path)
    unmatched = sorted(set(intrinsics) ^ set(extrinsics))
    if unmatched:
        logger.warning('%s / %s: cameras %s are in only one of the two files (skipped)',
                       intrinsic_path, extrinsic_path, unmatched)
    return {camera_id: Camera(optical_center=extrinsics[camera_id][0], rot_world_to_cam=extrinsics[camera_id][1],
                              intrinsic_matrix=intrinsics[camera_id], world_up=WORLD_UP)
            for camera_id in sorted(set(intrinsics) & set(extrinsics))}


def load_keypoints(path):
    """(25, 3) OpenPose body keypoints in world mm (the file has one 'x y z' line per keypoint, metres)."""
    values = _numbers(path, _read_text(path), 'the keypoint list')
    if values.size != N_OPENPOSE_JOINTS * 3:
        raise HUMBIFormatError(f'{path}: {values.size} numbers, expected {N_OPENPOSE_JOINTS} x 3')
    return values.reshape(N_OPENPOSE_JOINTS, 3) * 1000


def load_smpl_parameters(path):
    """The SMPL fit of a snapshot as a dict: type 'smpl', gender 'neutral', scale s (float), trans (3,) metres,
    pose (72,) axis-angle, shape (10,) betas, with joints = s * SMPL joints(pose, shape, trans) (metres; NLF's
    convention), i.e. trans = T / s for the file's translation T (whose joints are s * joints(pose, shape) + T)."""
    values = _numbers(path, _read_text(path).replace(',', ' '), 'the parameter list')
    if values.size != N_SMPL_PARAMETERS:
        raise HUMBIFormatError(f'{path}: {values.size} numbers, expected {N_SMPL_PARAMETERS} '
                               '(scale, trans 3, pose 72, shape 10)')
    if not np.all(np.isfinite(values)) or values[0] <= 0:
        raise HUMBIFormatError(f'{path}: non-finite values or a non-positive scale')
    return {'type': 'smpl', 'gender': 'neutral', 'scale': float(values[0]),
            'trans': (values[1:4] / values[0]).astype(np.float32), 'pose': values[4:76].astype(np.float32),
            'shape': values[76:86].astype(np.float32)}


def smpl_joints_mm(smpl_model, parameters):
    """(24, 3) world mm: scale * the posed SMPL joints of the fit (pose, shape, trans)."""
    joints_m = smpl_model(np.asarray(parameters['pose'], np.float64)[np.newaxis],
                          np.asarray(parameters['shape'], np.float64)[np.newaxis],
                          np.asarray(parameters['trans'], np.float64)[np.newaxis], return_vertices=False)['joints'][0]
    return joints_m * parameters['scale'] * 1000


def body_model_dir(data_root=None):
    return Path(pipeline.raw_root(NAME, data_root).parent) / 'body_models'


def load_smpl_model(data_root=None):
    """The neutral SMPL model (posepile.bodymodels, from $DATA_ROOT/body_models/smpl) or None when it is not
    installed (then the SMPL joints are NaN and no parameters are kept; the 25 _coco joints are unaffected)."""
    from posepile import bodymodels
    try:
        return bodymodels.load('smpl', 'neutral', body_model_dir(data_root))
    except bodymodels.BodyModelNotFoundError as e:
        logger.warning('%s: the 24 SMPL joints will be NaN and no SMPL parameters are kept', e)
        return None
    except bodymodels.BodyModelFormatError as e:  # the message already names the file
        raise HUMBIFormatError(str(e)) from None


def snapshot_world_coords(snapshot_dir, smpl_model):
    """((49, 3) world mm in JOINT_NAMES order, SMPL parameter dict) of one snapshot."""
    reconstruction = Path(snapshot_dir) / 'reconstruction'
    parameters = load_smpl_parameters(reconstruction / 'smpl_parameter.txt')
    keypoints = load_keypoints(reconstruction / 'keypoints.txt')
    smpl = (np.full((N_SMPL_JOINTS, 3), np.nan) if smpl_model is None
            else smpl_joints_mm(smpl_model, parameters))
    return np.concatenate([smpl[SMPL_ORDER], keypoints[OPENPOSE_ORDER]]), parameters


# ------------------------------------------------------------------------------------------------
# The raw tree
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def body_dirs(root):
    """subject_*/body folders, directly under the root or inside one bundle folder (as the zips extract)."""
    found = sorted(set(Path(root).glob('subject_*/body')) | set(Path(root).glob('*/subject_*/body')))
    return [d for d in found if d.is_dir()]


def snapshot_dirs(body_dir):
    return sorted(d for d in Path(body_dir).iterdir() if d.is_dir() and d.name.isdigit())


def camera_id_of_image(image_path):
    match = IMAGE_NAME_PATTERN.match(Path(image_path).name)
    return None if match is None else int(match.group(1))


def snapshot_images(snapshot_dir):
    """Images of a snapshot, sorted by camera id."""
    images = [p for p in (Path(snapshot_dir) / 'image').glob('image*.jpg') if camera_id_of_image(p) is not None]
    return sorted(images, key=camera_id_of_image)


def all_image_relpaths(data_root=None):
    """Paths relative to DATA_ROOT ('humbi/subject_1/body/00000001/image/image0000004.jpg') of every image."""
    root = raw_root(data_root)
    return [str(p.relative_to(root.parent)) for body in body_dirs(root)
            for snapshot in snapshot_dirs(body) for p in snapshot_images(snapshot)]


# ------------------------------------------------------------------------------------------------
# Stages
def broken_images_stage(n_workers=None, data_root=None):
    """List the JPEGs that do not decode (the original found ~600); they are skipped, not fatal."""
    from posepile.util import fileio, improc
    from posepile.util.parallel import parallel_map
    out_path = work_dir(data_root) / 'broken_images.json'
    if out_path.exists():
        return fileio.load_json(out_path)
    root_parent = raw_root(data_root).parent
    relpaths = all_image_relpaths(data_root)
    if not relpaths:
        raise FileNotFoundError(f'no subject_*/body/<snapshot>/image/image*.jpg under {raw_root(data_root)}')
    readable = parallel_map(improc.is_readable_image, [str(root_parent / p) for p in relpaths], n_workers=n_workers,
                            desc='checking JPEGs', chunksize=64)
    broken = [p for p, ok in zip(relpaths, readable) if not ok]
    logger.info('%d of %d JPEGs are broken and will be skipped: %s', len(broken), len(relpaths),
                ', '.join(broken) or '-')
    fileio.save_json(broken, out_path)
    return broken


@pipeline.cli_options(('--detector', dict(dest='detector_spec', default='hog')))
def detect_stage(detector_spec='hog', shard=None, data_root=None):
    """Optional person detection on the readable images (then the box is the hull with the best detection)."""
    from posepile.preproc.detection import run_detection_stage
    broken = set(broken_images_stage(data_root=data_root))
    relpaths = [p for p in all_image_relpaths(data_root) if p not in broken]
    run_detection_stage(raw_root(data_root).parent, relpaths, work_dir(data_root) / 'detections.pkl',
                        detector_spec, shard=shard)


def load_detections(data_root=None):
    """{relpath: (N, 5) [x, y, w, h, score] px} of the detect stage, or None when it has not run."""
    from posepile.util import fileio
    path = work_dir(data_root) / 'detections.pkl'
    return fileio.load_pickle(path) if path.exists() else None


def person_box(pixels, detections=None):
    """[x, y, w, h] px: the box of the projected joints expanded 1.05x; with detections, its hull with the
    detection of highest IoU if that IoU > 0.5; clipped to the 1920x1080 image."""
    from posepile.preproc.association import choose_box
    from posepile.util import boxes
    box = boxes.expand(boxes.bb_of_points(pixels), BOX_EXPANSION)
    if detections is not None and len(detections):
        box = choose_box(box, detections, rule='best_iou_hull', min_iou=np.nextafter(MIN_DETECTION_IOU, 1))
    width, height = IMAGE_SIZE
    return boxes.intersection(box, boxes.full_box((height, width)))


def crop_relpath(image_relpath):
    return image_relpath.replace(f'{NAME}/', f'{NAME}_downscaled/', 1)


def make_crop_tasks(data_root=None):
    """Every snapshot x camera (no motion-based selection, as the original), except broken JPEGs, images of
    cameras missing from the calibration, and views whose clipped box is empty."""
    from posepile.datasets3d import Pose3DExample
    from posepile.util import boxes
    root = raw_root(data_root)
    broken = set(broken_images_stage(data_root=data_root))
    detections = load_detections(data_root)
    smpl_model = load_smpl_model(data_root)
    tasks, skipped = [], {'broken JPEG': 0, 'uncalibrated camera': 0, 'empty box': 0}
    for body in body_dirs(root):
        cameras = load_cameras(body / 'intrinsic.txt', body / 'extrinsic.txt')
        subject = body.parent.name
        for snapshot in snapshot_dirs(body):
            world, parameters = snapshot_world_coords(snapshot, smpl_model)
            for image_path in snapshot_images(snapshot):
                relpath = str(image_path.relative_to(root.parent))
                camera = cameras.get(camera_id_of_image(image_path))
                reason = 'broken JPEG' if relpath in broken else 'uncalibrated camera' if camera is None else None
                if reason is None:
                    detected = None if detections is None else detections.get(relpath)
                    box = person_box(camera.world_to_image(world), detected)
                    reason = 'empty box' if not boxes.area(box) > 0 else None
                if reason is not None:
                    skipped[reason] += 1
                    continue
                example = Pose3DExample(relpath, world, box, camera, scene_name=f'{subject}/{snapshot.name}',
                                        parameters=None if smpl_model is None else dict(parameters))
                tasks.append((relpath, example, crop_relpath(relpath)))
    if broken:
        logger.info('skipping %d broken JPEGs: %s', len(broken), ', '.join(sorted(broken)))
    logger.info('%d crop tasks; skipped: %s', len(tasks), ', '.join(f'{k} {v}' for k, v in skipped.items()))
    if not tasks:
        raise FileNotFoundError(f'no usable HUMBI body images under {root}')
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of every usable snapshot x camera."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def make_dataset(data_root=None):
    """HUMBI body: every snapshot x camera, 49 joints (24 SMPL + 25 OpenPose `_coco`) in mm, the SMPL fit (with
    its scale) in the world frame (`parameters`); all in TRAIN (as the original)."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    examples = pipeline.examples_by_split(NAME, data_root, split_of_key=lambda key: 0)[0]
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), examples)


def assemble(data_root=None):
    """The dataset for get_dataset('humbi')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.humbi.main', 'HUMBI body stages', {
        'find-broken': broken_images_stage, 'detect': detect_stage, 'crop': crop_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
