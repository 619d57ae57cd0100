"""GPA (Geometric Pose Affordance): readers of the release's joint JSON, camera ids and shipped masks.

Raw layout under $DATA_ROOT/gpa:
    xyz_gpa12_mdp_cntind_crop_cam_c2g.json  {'images': [{'file_name': '.../<id>.jpg', ...}, ...],
                                            'annotations': [{'joint_cams': 3 rows of 34 numbers (x, y, z of the
                                            34 joints in the camera frame, mm), 'f': [fx, fy] px,
                                            'c': [cx, cy] px, 'istrains': bool, ...}, ...]}
                                            (parallel lists; <id> = the 10 characters before '.jpg', digits)
    Sequence_ids/cam_ids_750k.npy           the camera id of every image, indexed by int(<id>)
    Gaussian_img_jpg_new/**/<id>.jpg        the images; the nest stage moves them to <id[:6]>/<id[6:8]>/<id>.jpg
    img_jpg_new_resnet101deeplabv3humanmask/**/<id>_mask.jpg
                                            DeepLabv3 person masks shipped with the release (person: channel 0 > 10),
                                            nested the same way
The world frame is the camera frame (intrinsics only, world up (0, -1, 0)).
"""
import logging
import os
import re
from pathlib import Path

import numpy as np
from posepile.util.errors import InputError

JOINT_NAMES = ('pelv,spin,spi1,spi2,spi3,neck,head,htop,rcla,rsho,relb,rwri,rhan,rfin,rthu,rthu2,lcla,'
               'lsho,lelb,lwri,lhan,lfin,lthu,lthu2,rhip,rkne,rank,rfoo,rtoe,lhip,lkne,lank,lfoo,ltoe')
JOINT_EDGES = ('rtoe-rfoo-rank-rkne-rhip-pelv-spin-spi1-spi2-spi3-neck-head-htop,'
               'spi3-rcla-rsho-relb-rwri-rhan-rfin,rwri-rthu-rthu2')
N_JOINTS = 34
ANNOTATION_FILE = 'xyz_gpa12_mdp_cntind_crop_cam_c2g.json'
CAMERA_IDS_FILE = 'Sequence_ids/cam_ids_750k.npy'
IMAGE_DIR = 'Gaussian_img_jpg_new'
MASK_DIR = 'img_jpg_new_resnet101deeplabv3humanmask'
MASK_THRESHOLD = 10  # a mask pixel is person where channel 0 > this (0-255)
SELECTION_THRESHOLD_MM = 100
BOX_EXPANSION = 1.15  # the joint box (GT box) is the projected joints' box scaled by this
MIN_DETECTION_IOU = 0.3
_IMAGE_ID = re.compile(r'\d{10}')

logger = logging.getLogger(__name__)


class GPAFormatError(InputError):
    pass


def load_annotations(path):
    """List (in file order) of dict(image_id str, joints_mm (34, 3) camera frame, intrinsics (3, 3) px,
    is_train bool)."""
    path = Path(path)
    from posepile.util import fileio
    content = fileio.load_json(path, GPAFormatError, required_lists=('images', 'annotations'))
    images, annotations = content['images'], content['annotations']
    if len(images) != len(annotations):
        raise GPAFormatError(f"{path}: {len(images)} images but {len(annotations)} annotations (must be parallel)")
    return [_parse_annotation(path, i, image, annotation)
            for i, (image, annotation) in enumerate(zip(images, annotations))]


def _parse_annotation(path, index, image, annotation):
    try:
        file_name = str(image['file_name'])
        joints = np.asarray(annotation['joint_cams'], np.float64)
        focal = np.asarray(annotation['f'], np.float64).reshape(2)
        center = np.asarray(annotation['c'], np.float64).reshape(2)
        is_train = bool(annotation['istrains'])
    except (KeyError, ValueError, TypeError) as e:
        raise GPAFormatError(f'{path}: annotation {index} is malformed ({e!r})') from None
    image_id = file_name[-14:-4]
    if not file_name.endswith('.jpg') or not _IMAGE_ID.fullmatch(image_id):
        raise GPAFormatError(f'{path}: image {index} file_name {file_name!r} does not end in a 10-digit id + .jpg')
    if joints.shape != (3, N_JOINTS) or not np.all(np.isfinite(joints)):
        raise GPAFormatError(
            f'{path}: annotation {index} joint_cams has shape {joints.shape}, expected 3 rows of {N_JOINTS} '
            'finite numbers')
    intrinsics = np.array([[focal[0], 0, center[0]], [0, focal[1], center[1]], [0, 0, 1]])
    return dict(image_id=image_id, joints_mm=joints.T.copy(), intrinsics=intrinsics, is_train=is_train)


def load_camera_ids(path, image_ids):
    """int64 array: the camera id of each of `image_ids` (looked up at int(id) in cam_ids_750k.npy)."""
    path = Path(path)
    try:
        all_ids = np.load(path)
    except (OSError, ValueError) as e:
        raise GPAFormatError(f'{path}: cannot read camera ids ({e})') from None
    if all_ids.ndim != 1 or not np.issubdtype(all_ids.dtype, np.number):
        raise GPAFormatError(f'{path}: expected a 1-D numeric array, got {all_ids.dtype} {all_ids.shape}')
    indices = np.array([int(i) for i in image_ids], np.int64)
    if len(indices) and indices.max() >= len(all_ids):
        raise GPAFormatError(f'{path}: has {len(all_ids)} entries, image id {indices.max()} is out of range')
    return all_ids[indices].astype(np.int64)


def nested_relpath(image_id, suffix=''):
    """'<id[:6]>/<id[6:8]>/<id><suffix>.jpg': where the nest stage puts an image (or a mask, suffix '_mask')."""
    return f'{image_id[:6]}/{image_id[6:8]}/{image_id}{suffix}.jpg'


def nest_files(folder):
    """Moves every *.jpg under `folder` to <name[:6]>/<name[6:8]>/<name> (already nested ones stay).
    Returns the number moved."""
    folder = Path(folder)
    n_moved = 0
    for source in sorted(folder.rglob('*.jpg')):
        target = folder / source.name[:6] / source.name[6:8] / source.name
        if source != target:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            n_moved += 1
    return n_moved


def load_mask(path):
    """RLE of the shipped DeepLab person mask (channel 0 > MASK_THRESHOLD)."""
    from posepile.util import improc, masks
    try:
        image = improc.imread_rgb(path)
    except (FileNotFoundError, improc.ImageDecodeError) as e:
        raise GPAFormatError(f'{path}: cannot read the person mask ({e})') from None
    return masks.encode(image[..., 0] > MASK_THRESHOLD)


def make_camera(intrinsics):
    from posepile.util.camera import Camera
    return Camera(intrinsic_matrix=intrinsics, world_up=(0, -1, 0))


def joint_box(camera, joints_mm):
    """The GT box [x, y, w, h] px: the projected joints' box scaled by BOX_EXPANSION about its centre."""
    from posepile.util import boxes
    return boxes.expand(boxes.bb_of_points(camera.world_to_image(joints_mm)), BOX_EXPANSION)


def select_indices(annotations, camera_ids, detections=None):
    """Indices of the annotations kept by adaptive selection (100 mm, per camera id, in file order).

    With `detections` ({nested relpath: (N, 5)}), images without any detection are left out before the
    selection, as in the original.
    """
    from posepile.util.sampling import select_frames
    per_camera = {}
    for index, (annotation, camera_id) in enumerate(zip(annotations, camera_ids)):
        if detections is not None and len(image_detections(detections, annotation['image_id'])) == 0:
            continue
        per_camera.setdefault(int(camera_id), []).append(index)
    kept = []
    for indices in per_camera.values():
        poses = np.stack([annotations[i]['joints_mm'] for i in indices]).astype(np.float32)
        kept += [indices[k] for k in select_frames(poses, SELECTION_THRESHOLD_MM)]
    return sorted(kept)


def image_detections(detections, image_id):
    relpath = nested_relpath(image_id)
    if relpath not in detections:
        raise KeyError(f'{relpath} has no entry in the detections: rerun the detect stage')
    return np.asarray(detections[relpath], np.float32).reshape(-1, 5)


def choose_example_box(annotation, detections=None):
    """The stored box: without detections the GT box; with them the detection of best IoU with the GT box if
    that IoU >= 0.3, else None (the image is dropped)."""
    from posepile.preproc.association import choose_box
    gt_box = joint_box(make_camera(annotation['intrinsics']), annotation['joints_mm'])
    if detections is None:
        return gt_box
    dets = image_detections(detections, annotation['image_id'])
    return choose_box(gt_box, dets, rule='best_iou', min_iou=MIN_DETECTION_IOU, fallback_to_gt=False)


# ------------------------------------------------------------------------------------------------
# The recipe's stages
from posepile.preproc import pipeline  # noqa: E402

NAME = 'gpa'


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def nest_stage(data_root=None):
    """Re-nest the images and masks by id (<id[:6]>/<id[6:8]>/)."""
    root = raw_root(data_root)
    for folder in (IMAGE_DIR, MASK_DIR):
        if not (root / folder).is_dir():
            raise FileNotFoundError(f'{root / folder} not found: extract the GPA archives first (main.sh step 1)')
        logger.info('%s: %d files moved into the nested layout', folder, nest_files(root / folder))


def _load_release(data_root=None):
    root = raw_root(data_root)
    annotations = load_annotations(root / ANNOTATION_FILE)
    camera_ids = load_camera_ids(root / CAMERA_IDS_FILE, [a['image_id'] for a in annotations])
    return annotations, camera_ids


@pipeline.cli_options(('--detector', dict(dest='detector_spec', default='hog')))
def detect_stage(detector_spec='hog', shard=None, data_root=None):
    """Optional person detection on all annotated images (then boxes: best IoU >= 0.3 with the joint box)."""
    from posepile.preproc.detection import run_detection_stage
    annotations, _ = _load_release(data_root)
    relpaths = [nested_relpath(a['image_id']) for a in annotations]
    run_detection_stage(raw_root(data_root) / IMAGE_DIR, relpaths, work_dir(data_root) / 'detections.pkl',
                        detector_spec, shard=shard)


def _prepare_one(args):
    root, annotation, box = args
    mask = load_mask(Path(root) / MASK_DIR / nested_relpath(annotation['image_id'], '_mask'))
    return dict(annotation, box=np.asarray(box, np.float32), mask=mask)


def prepare_stage(n_workers=None, data_root=None):
    """Adaptive selection per camera id, boxes (GT or best detection), shipped masks
    (posepile_work/prepared.pkl, redone when the annotation, camera-id or detection files change)."""
    from posepile.util import fileio
    from posepile.util.parallel import parallel_map
    root = raw_root(data_root)
    out_path = work_dir(data_root) / 'prepared.pkl'
    detections_path = work_dir(data_root) / 'detections.pkl'
    inputs, inputs_record = [root / ANNOTATION_FILE, root / CAMERA_IDS_FILE, detections_path], \
        out_path.with_suffix('.inputs.json')
    if out_path.exists() and pipeline.load_stage_json(inputs_record, inputs) is not None:
        return fileio.load_pickle(out_path)
    annotations, camera_ids = _load_release(data_root)
    detections = fileio.load_pickle(detections_path) if detections_path.exists() else None
    selected = select_indices(annotations, camera_ids, detections)
    jobs = []
    for index in selected:
        box = choose_example_box(annotations[index], detections)
        if box is not None:
            jobs.append((str(root), annotations[index], box))
    logger.info('%d of %d images selected, %d with a box (detections: %s)', len(selected), len(annotations),
                len(jobs), 'yes' if detections is not None else 'no, joint boxes')
    prepared = parallel_map(_prepare_one, jobs, n_workers=n_workers, desc='GPA masks')
    fileio.save_pickle(prepared, out_path)
    pipeline.save_stage_json(out_path.name, inputs_record, inputs)
    return prepared


def make_crop_tasks(data_root=None):
    from posepile.datasets3d import TEST, TRAIN, Pose3DExample
    tasks = []
    for item in prepare_stage(data_root=data_root):
        image_id = item['image_id']
        relpath = f'{NAME}/{IMAGE_DIR}/{nested_relpath(image_id)}'
        example = Pose3DExample(relpath, item['joints_mm'], item['box'], make_camera(item['intrinsics']),
                                mask=item['mask'])
        split = TRAIN if item['is_train'] else TEST
        tasks.append((f'{split}/{image_id}', example, relpath.replace(f'{NAME}/', f'{NAME}_downscaled/', 1)))
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of the selected images (masks reprojected into the crops)."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def make_dataset(data_root=None):
    """GPA: istrains images as TRAIN, the others as TEST (both selected adaptively, 100 mm per camera id);
    34 joints in mm, camera frame = world frame."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0], None, splits[2])


def assemble(data_root=None):
    """The dataset for get_dataset('gpa')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.gpa.main', 'GPA stages', {
        'nest': nest_stage,
        'detect': detect_stage,
        'prepare': prepare_stage,
        'crop': crop_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
