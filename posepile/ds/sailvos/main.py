"""SAIL-VOS 3D (GTA-V renders, 1280×800): readers of the per-object bone files, masks and visibility maps.

Raw layout under $DATA_ROOT/sailvos (one folder per sequence):
    <seq>/images/<frame:06d>.bmp                the frames (the convert stage turns them into .jpg, quality 85)
    <seq>/visible/<frame:06d>.npy               (H, W) integer map: the id of the object visible at each pixel
                                                (the compress stage turns it into .npz with key 'visible_ids')
    <seq>/<id>_<class>_<name>/<frame:06d>.png   the object's amodal mask (0 / 255); people have class 'Ped'
    <seq>/<id>_Ped_<name>/<frame:06d>_2d.txt    one row "x y" per raw GTA bone, px; invalid: x or y at −1280 / −800
    <seq>/<id>_Ped_<name>/<frame:06d>_3d.txt    one row "x y z" per raw GTA bone, GTA world metres (z up);
                                                invalid: all zero
No cameras are shipped: every (object, frame) file pair gets one estimated from its valid raw bones (valid in both
files; at least 6), with square pixels, no distortion, the principal point at (640, 400) as in the original and the
horizontal field of view searched in [30°, 100°]. The 26 joints are each the mean of 1–4 raw bones (3D-valid
ones; NaN when none is). GTA coordinates are large (km): values stay float64 until the world frame is re-centred
per sequence on the mean camera position.
"""
import logging
import re
from pathlib import Path

import numpy as np
from posepile.util.errors import InputError

JOINT_NAMES = ('htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,spin,head,pelv,rtoe,'
               'ltoe,nose,reye,leye,rear,lear,rhan,lhan')
JOINT_EDGES = 'htop-head-neck-spin-pelv-rhip-rkne-rank-rtoe,neck-rsho-relb-rwri-rhan,pelv,nose-reye-rear'
# raw bone ids averaged into each joint, in JOINT_NAMES order
JOINT_BONES = (
    (341, 8), (61,), (216, 234), (171,), (164, 309), (255, 39), (330,), (108,), (45, 294),
    (215, 131, 253), (295,), (144, 315), (147, 342, 27), (85,), (152,), (206, 128, 102), (307, 312),
    (130,), (11,), (167, 188, 191, 310), (194, 193, 236, 78), (227, 304, 58, 229), (37, 260, 195),
    (47, 148, 232), (323,), (160,))
MIN_BONES = max(max(bones) for bones in JOINT_BONES) + 1
IMAGE_SIZE = (1280, 800)  # width, height, px
PRINCIPAL_POINT = (640.0, 400.0)  # px: the image centre as the original fixes it (W / 2, H / 2)
FOV_RANGE_DEG = (30, 100)  # horizontal
METRES_TO_MM = 1000.0
MIN_CAMERA_POINTS = 6
SELECTION_THRESHOLD_MM = 100
MIN_BOX_SIDE_PX = 50  # the visible-mask box's shorter side must exceed this
MAX_OCCLUSION = 0.75  # 1 − visible / amodal mask area
MIN_VALID_JOINTS = 6  # "more than 5"
SPREAD_RANGE_MM = (100, 3000)  # RMS distance of the joints from their mean, exclusive bounds
MIN_DETECTION_IOU = 0.1  # exclusive
MAX_DETECTION_AREA_RATIO = 2  # detection area <= this × visible-mask box area
JPEG_QUALITY = 85
WORLD_UP = (0, 0, 1)  # GTA's z axis
_FRAME_FILE = re.compile(r'(\d+)_2d\.txt')

logger = logging.getLogger(__name__)


class SailVosFormatError(InputError):
    pass


def load_bones(path2d):
    """(bones2d (B, 2) px, bones3d (B, 3) world mm float64) of `<frame>_2d.txt` and its `_3d.txt`, invalid rows
    as NaN (3D all zero; 2D x or y at −width / −height)."""
    path2d = Path(path2d)
    path3d = path2d.with_name(path2d.name.replace('_2d.txt', '_3d.txt'))
    bones2d = _load_table(path2d, 2)
    bones3d = _load_table(path3d, 3)
    if len(bones2d) != len(bones3d):
        raise SailVosFormatError(f'{path3d}: {len(bones3d)} rows but {path2d.name} has {len(bones2d)}')
    bones3d[np.all(bones3d == 0, axis=1)] = np.nan
    bones2d[np.isin(bones2d, [-IMAGE_SIZE[0], -IMAGE_SIZE[1]]).any(axis=1)] = np.nan
    return bones2d, bones3d * METRES_TO_MM


def _load_table(path, n_columns):
    try:
        rows = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise SailVosFormatError(f'{path}: cannot read ({e})') from None
    if len(rows) < MIN_BONES or any(len(row) != n_columns for row in rows):
        widths = sorted({len(row) for row in rows})
        raise SailVosFormatError(
            f'{path}: expected >= {MIN_BONES} rows of {n_columns} numbers, got {len(rows)} rows of {widths} values')
    try:
        values = np.array(rows, np.float64)
    except ValueError as e:
        raise SailVosFormatError(f'{path}: non-numeric value ({e})') from None
    if not np.all(np.isfinite(values)):
        raise SailVosFormatError(f'{path}: non-finite value')
    return values


def joints_from_bones(bones3d):
    """(26, 3) mm: each joint the mean of its 3D-valid raw bones, NaN when none is valid."""
    joints = np.full((len(JOINT_BONES), 3), np.nan)
    for i, bones in enumerate(JOINT_BONES):
        valid = bones3d[list(bones)]
        valid = valid[np.all(np.isfinite(valid), axis=1)]
        if len(valid):
            joints[i] = valid.mean(axis=0)
    return joints


def estimate_frame_camera(bones2d, bones3d):
    """(Camera, RMS px) from the bones valid in 2D and 3D, or (None, nan) with fewer than 6 or no solution.

    The points are centred before the estimation (GTA coordinates are large); the camera is in world mm.
    """
    from posepile.util.calibration import estimate_camera
    valid = np.all(np.isfinite(bones2d), axis=1) & np.all(np.isfinite(bones3d), axis=1)
    if np.count_nonzero(valid) < MIN_CAMERA_POINTS:
        return None, np.nan
    mean3d = bones3d[valid].mean(axis=0)
    try:
        camera, rms = estimate_camera(bones3d[valid] - mean3d, bones2d[valid], IMAGE_SIZE,
                                      fov_range_deg=FOV_RANGE_DEG, principal_point=PRINCIPAL_POINT)
    except ValueError as e:
        logger.warning('no camera: %s', e)
        return None, np.nan
    camera.t = camera.t + mean3d
    camera.world_up = np.array(WORLD_UP, np.float64)
    return camera, rms


def pose_changed(last_kept, pose):
    """The original's rule: True for the first pose, else iff a joint valid in both moved >= 100 mm (False when
    no joint is valid in both)."""
    if last_kept is None:
        return True
    both = np.all(np.isfinite(last_kept), axis=1) & np.all(np.isfinite(pose), axis=1)
    return bool(np.any(np.linalg.norm(pose[both] - last_kept[both], axis=1) >= SELECTION_THRESHOLD_MM))


def load_visible_ids(sequence_dir, frame):
    """(H, W) int object-id map of visible/<frame>.npz ('visible_ids') or .npy."""
    base = Path(sequence_dir) / 'visible' / frame
    path = base.with_suffix('.npz') if base.with_suffix('.npz').exists() else base.with_suffix('.npy')
    try:
        if path.suffix == '.npz':
            with np.load(path) as archive:
                ids = archive['visible_ids']
        else:
            ids = np.load(path)
    except (OSError, ValueError, KeyError) as e:
        raise SailVosFormatError(f'{path}: cannot read the visibility map ({e!r})') from None
    if ids.shape != IMAGE_SIZE[::-1]:
        raise SailVosFormatError(f'{path}: visibility map is {ids.shape}, expected {IMAGE_SIZE[::-1]} (H, W)')
    return ids


def load_amodal_area(path):
    """Pixel count of an amodal mask PNG (value / 255 summed, as the original)."""
    import cv2
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise SailVosFormatError(f'{path}: cannot read the amodal mask')
    return float(mask.sum() / 255)


def object_id(object_dir):
    try:
        return int(Path(object_dir).name.split('_')[0])
    except ValueError:
        raise SailVosFormatError(f'{object_dir}: object folder name does not start with "<id>_"') from None


def rms_spread(joints):
    """RMS distance (mm) of the valid joints from their mean."""
    valid = joints[np.all(np.isfinite(joints), axis=1)]
    return float(np.sqrt(np.mean(np.sum((valid - valid.mean(axis=0)) ** 2, axis=1)))) if len(valid) else np.nan


def passes_filters(person):
    """The original's person filters (except the detection match): visible box, occlusion, joints, spread."""
    n_valid = np.count_nonzero(np.all(np.isfinite(person['joints']), axis=1))
    spread = rms_spread(person['joints'])
    return bool(np.min(person['box'][2:]) > MIN_BOX_SIDE_PX and not person['occlusion'] > MAX_OCCLUSION
                and n_valid >= MIN_VALID_JOINTS and SPREAD_RANGE_MM[0] < spread < SPREAD_RANGE_MM[1])


def match_detections(gt_boxes, detections):
    """{GT index: detection box (4,)}: Hungarian assignment on IoU, then a pair is kept iff IoU > 0.1 and the
    detection's area <= 2× the GT box's."""
    from scipy.optimize import linear_sum_assignment

    from posepile.util import boxes
    detections = np.asarray(detections, np.float64).reshape(-1, 5)
    if len(gt_boxes) == 0 or len(detections) == 0:
        return {}
    ious = boxes.iou_matrix(np.asarray(gt_boxes, np.float64), detections[:, :4])
    result = {}
    for i_gt, i_det in zip(*linear_sum_assignment(-ious)):
        det_box = detections[i_det, :4]
        if ious[i_gt, i_det] > MIN_DETECTION_IOU and \
                boxes.area(det_box) <= MAX_DETECTION_AREA_RATIO * boxes.area(gt_boxes[i_gt]):
            result[int(i_gt)] = det_box.astype(np.float32)
    return result


# ------------------------------------------------------------------------------------------------
# Per-sequence preparation
def list_bone_files(sequence_dir):
    """The sequence's `<id>_Ped_*/<frame>_2d.txt` files sorted by path (object folder, then frame) as the
    original, whose selection runs over them in this order."""
    return sorted(Path(sequence_dir).glob('*/*_2d.txt'), key=lambda p: str(p.relative_to(sequence_dir)))


def prepare_sequence(sequence_dir):
    """Selected people of one sequence: dicts with frame, object_id, joints (26, 3) world mm float64, camera
    (world mm), rms_px, box (visible-mask box), occlusion, mask (RLE of all visible people), kept (filters)."""
    sequence_dir = Path(sequence_dir)
    people, last_kept = [], None
    for path2d in list_bone_files(sequence_dir):
        match = _FRAME_FILE.fullmatch(path2d.name)
        if not match:
            raise SailVosFormatError(f'{path2d}: file name is not <frame>_2d.txt')
        bones2d, bones3d = load_bones(path2d)
        joints = joints_from_bones(bones3d)
        if np.count_nonzero(np.all(np.isfinite(bones2d), axis=1) & np.all(np.isfinite(bones3d), axis=1)) \
                < MIN_CAMERA_POINTS or not pose_changed(last_kept, joints):
            continue
        camera, rms = estimate_frame_camera(bones2d, bones3d)
        if camera is None:
            continue  # a frame without a camera is skipped before the selection, as in the original
        last_kept = joints
        frame = f'{int(match.group(1)):06d}'
        person = dict(frame=frame, object_id=object_id(path2d.parent), joints=joints, camera=camera, rms_px=rms)
        amodal_path = path2d.with_name(path2d.name.replace('_2d.txt', '.png'))
        person.update(_frame_masks(sequence_dir, frame, amodal_path, person['object_id']))
        person['kept'] = passes_filters(person)
        people.append(person)
    return people


def _frame_masks(sequence_dir, frame, amodal_path, own_id):
    """Visible-mask box (px), occlusion fraction and the RLE of all visible people of a frame."""
    from posepile.util import masks
    visible_ids = load_visible_ids(sequence_dir, frame)
    own = masks.encode(visible_ids == own_id)
    person_ids = [object_id(p.parent) for p in sorted(sequence_dir.glob(f'*_Ped_*/{frame}.png'))]
    amodal_area = load_amodal_area(amodal_path)
    occlusion = 1 - masks.area(own) / amodal_area if amodal_area > 0 else 1.0
    return dict(box=masks.to_bbox(own), occlusion=occlusion,
                mask=masks.encode(np.isin(visible_ids, person_ids)))


def convert_image(bmp_path):
    """BMP -> JPEG (quality 85) next to it, then the BMP is deleted."""
    from posepile.util import improc
    bmp_path = Path(bmp_path)
    jpeg_path = bmp_path.with_suffix('.jpg')
    try:
        image = improc.imread_rgb(bmp_path)
    except improc.ImageDecodeError as e:
        raise SailVosFormatError(f'{bmp_path}: cannot decode ({e})') from None
    improc.write_jpeg_atomic(jpeg_path, image, JPEG_QUALITY)
    bmp_path.unlink()


def compress_visibility(npy_path):
    """visible/<frame>.npy -> .npz (key 'visible_ids', compressed), then the .npy is deleted."""
    from posepile.util import fileio
    npy_path = Path(npy_path)
    try:
        ids = np.load(npy_path)
    except (OSError, ValueError) as e:
        raise SailVosFormatError(f'{npy_path}: cannot read ({e})') from None
    with fileio.atomic_write(npy_path.with_suffix('.npz')) as f:
        np.savez_compressed(f, visible_ids=ids)
    npy_path.unlink()


# ------------------------------------------------------------------------------------------------
# The recipe's stages
from posepile.preproc import pipeline  # noqa: E402

NAME = 'sailvos'


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def list_sequences(root):
    sequences = sorted(d.name for d in Path(root).iterdir()
                       if d.is_dir() and d.name != 'posepile_work' and any(d.glob('*/*_2d.txt')))
    if not sequences:
        raise FileNotFoundError(f'no SAIL-VOS sequences with pose files (<seq>/<id>_Ped_*/*_2d.txt) under {root}')
    return sequences


def convert_stage(n_workers=None, data_root=None):
    """BMP frames -> JPEG quality 85."""
    from posepile.util.parallel import parallel_map
    paths = sorted(str(p) for p in raw_root(data_root).glob('*/images/*.bmp'))
    parallel_map(convert_image, paths, n_workers=n_workers, desc='SAIL-VOS BMP -> JPEG')
    logger.info('%d frames converted to JPEG', len(paths))


def compress_stage(n_workers=None, data_root=None):
    """Visibility maps .npy -> .npz."""
    from posepile.util.parallel import parallel_map
    paths = sorted(str(p) for p in raw_root(data_root).glob('*/visible/*.npy'))
    parallel_map(compress_visibility, paths, n_workers=n_workers, desc='SAIL-VOS visibility maps')


def prepare_inputs(root, sequences):
    """The files prepare_sequence reads: the pose tables and amodal masks of every object folder, the
    visibility maps."""
    root = Path(root)
    return [path for sequence in sequences for pattern in ('*/*_2d.txt', '*/*_3d.txt', '*_Ped_*/*.png', 'visible/*')
            for path in sorted((root / sequence).glob(pattern))]


def prepare_stage(n_workers=None, data_root=None):
    """Per sequence: adaptive selection, cameras estimated per object and frame, masks, filters
    (posepile_work/prepared.pkl, redone when a pose file, mask or visibility map changes)."""
    from posepile.util import fileio
    from posepile.util.parallel import parallel_map
    out_path = work_dir(data_root) / 'prepared.pkl'
    root = raw_root(data_root)
    sequences = list_sequences(root)
    inputs, inputs_record = prepare_inputs(root, sequences), out_path.with_suffix('.inputs.json')
    if out_path.exists() and pipeline.load_stage_json(inputs_record, inputs) is not None:
        return fileio.load_pickle(out_path)
    results = parallel_map(prepare_sequence, [str(root / s) for s in sequences], n_workers=n_workers,
                           desc='SAIL-VOS sequences')
    prepared = dict(zip(sequences, results))
    rms = np.array([p['rms_px'] for people in results for p in people] + [np.nan])
    logger.info('%d people selected (%d pass the filters); camera fit RMS median %.3f px, max %.3f px',
                len(rms) - 1, sum(p['kept'] for people in results for p in people), np.nanmedian(rms),
                np.nanmax(rms))
    fileio.save_pickle(prepared, out_path)
    pipeline.save_stage_json(out_path.name, inputs_record, inputs)
    return prepared


def image_relpath(sequence, frame):
    """The frame's JPEG relative to DATA_ROOT."""
    return f'{NAME}/{sequence}/images/{frame}.jpg'


@pipeline.cli_options(('--detector', dict(dest='detector_spec', default='hog')))
def detect_stage(detector_spec='hog', shard=None, data_root=None):
    """Optional person detection on the frames with selected people (boxes then: Hungarian match)."""
    from posepile.preproc.detection import run_detection_stage
    relpaths = sorted({image_relpath(sequence, p['frame'])[len(NAME) + 1:]
                       for sequence, people in prepare_stage(data_root=data_root).items() for p in people})
    run_detection_stage(raw_root(data_root), relpaths, work_dir(data_root) / 'detections.pkl', detector_spec,
                        shard=shard)


def final_people(people, sequence, detections=None):
    """The people that become examples, each with its final box: without detections those passing the
    filters (visible-mask box); with them those also matched to a detection (the detection's box)."""
    if detections is None:
        return [dict(p, final_box=p['box']) for p in people if p['kept']]
    by_frame = {}
    for person in people:
        by_frame.setdefault(person['frame'], []).append(person)
    result = []
    for frame, frame_people in sorted(by_frame.items()):
        key = image_relpath(sequence, frame)[len(NAME) + 1:]
        if key not in detections:
            continue  # as in the original: a frame without a detection entry is skipped
        matches = match_detections([p['box'] for p in frame_people], detections[key])
        result += [dict(p, final_box=matches[i]) for i, p in enumerate(frame_people) if i in matches and p['kept']]
    return result


def recentre(people):
    """(joints, camera) per person with the world shifted by the mean camera position (mm, float64)."""
    offset = np.mean([p['camera'].t for p in people], axis=0)
    result = []
    for person in people:
        camera = person['camera'].copy()
        camera.t = camera.t - offset
        result.append((person['joints'] - offset, camera))
    return result


def make_crop_tasks(data_root=None):
    from posepile.datasets3d import Pose3DExample
    from posepile.util import fileio
    detections_path = work_dir(data_root) / 'detections.pkl'
    detections = fileio.load_pickle(detections_path) if detections_path.exists() else None
    tasks = []
    for sequence, people in sorted(prepare_stage(data_root=data_root).items()):
        people = final_people(people, sequence, detections)
        if not people:
            continue
        for person, (joints, camera) in zip(people, recentre(people)):
            frame, oid = person['frame'], person['object_id']
            relpath = image_relpath(sequence, frame)
            example = Pose3DExample(relpath, joints, person['final_box'], camera, mask=person['mask'],
                                    scene_name=sequence)
            new_relpath = f'{NAME}_downscaled/{sequence}/images/{frame}_{oid}.jpg'
            tasks.append((f'0/{sequence}/{frame}/{oid:06d}', example, new_relpath))
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of the selected people (world re-centred per sequence)."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def make_dataset(data_root=None):
    """SAIL-VOS 3D: all selected people as TRAIN; 26 joints in mm, world frame re-centred per sequence on the
    mean camera position, cameras estimated from the 2D-3D bones."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0], None, None)


def assemble(data_root=None):
    """The dataset for get_dataset('sailvos')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.sailvos.main', 'SAIL-VOS 3D stages', {
        'convert': convert_stage,
        'compress': compress_stage,
        'prepare': prepare_stage,
        'detect': detect_stage,
        'crop': crop_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
