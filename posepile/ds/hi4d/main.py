"""Hi4D (real images): readers of the raw release and the recipe's stages (parametric-only SMPL examples, NLF era).

Raw layout under $DATA_ROOT/hi4d (the official dataset.md of github.com/yifeiyin04/Hi4D, the pair zips extracted):

    <pairXX>/<actionXX>/meta.npz             start, end (frame ids), num_persons (2), genders, betas, ...
    <pairXX>/<actionXX>/cameras/rgb_cameras.npz
        ids (8,) camera ids, intrinsics (8, 3, 3), extrinsics (8, 3, 4) world-to-camera [R | t] (t in m),
        dist_coeffs (8, 5) OpenCV
    <pairXX>/<actionXX>/images/<camera id>/<frame:06d>.jpg                          940x1280 px
    <pairXX>/<actionXX>/seg/img_seg_mask/<camera id>/{0,1,all}/<frame:06d>.png      per-person and union masks
    <pairXX>/<actionXX>/smpl/<frame:06d>.npz
        betas (P, 10), global_orient (P, 3), body_pose (P, 69), transl (P, 3) m, joints_3d (P, 24, 3) m

Examples (the original's hi4d/main.py): per camera, frames start..end; a person's box is the detection matched to
its instance mask by Hungarian assignment on IoU (mask vs. the detection's box as a mask; IoU >= 0.1) when the
detect stage ran, else the box of its instance mask (no detector: ours); a person needs >= 6 of its 24 projected
joints (joints_3d) inside the box; then one AdaptivePoseSampler2(100 mm, buffer 100) per camera, fed the kept
people in frame and person order (as the original: both people share the sampler), on joints_3d. `parameters` =
{'type': 'smpl', gender, pose (72 = global_orient + body_pose), shape (betas), trans (m)} in the world frame of
the example's camera; the stored mask is the union mask of everyone (`all`), as the original. `world_coords` is
None (JointInfo([], [])); everything is training data. world_up (0, 1, 0).
"""
import logging
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'hi4d'
MIN_MASK_DETECTION_IOU = 0.1
MIN_JOINTS_IN_BOX = 6
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 100
WORLD_UP = (0, 1, 0)


class Hi4DFormatError(InputError):
    """A raw Hi4D file is missing, unreadable or malformed (one line naming the file)."""


def load_npz(path, keys):
    """{key: array} of an .npz (no pickles), every key required."""
    import zipfile
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise Hi4DFormatError(f'{path}: lacks {", ".join(missing)}')
            return {k: data[k] for k in keys}
    except FileNotFoundError:
        raise Hi4DFormatError(f'{path}: not found') from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise Hi4DFormatError(f'{path}: not a readable .npz ({type(e).__name__}: {e})') from None


def load_cameras(path):
    """{camera id (str): Camera (mm)} of rgb_cameras.npz: K, world-to-camera R and t (m), 5 OpenCV terms."""
    from posepile.util.camera import Camera
    data = load_npz(path, ('ids', 'intrinsics', 'extrinsics', 'dist_coeffs'))
    n = len(data['ids'])
    shapes = {'intrinsics': (n, 3, 3), 'extrinsics': (n, 3, 4)}
    for key, shape in shapes.items():
        if data[key].shape != shape or not np.all(np.isfinite(data[key])):
            raise Hi4DFormatError(f'{path}: {key} has shape {data[key].shape}, expected {shape} finite')
    if len(data['dist_coeffs']) != n:
        raise Hi4DFormatError(f'{path}: dist_coeffs has {len(data["dist_coeffs"])} rows for {n} cameras')
    cameras = {}
    for camera_id, K, extrinsics, distortion in zip(data['ids'], data['intrinsics'], data['extrinsics'],
                                                    data['dist_coeffs']):
        R, t_m = extrinsics[:, :3].astype(np.float64), extrinsics[:, 3].astype(np.float64)
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) <= 0:
            raise Hi4DFormatError(f'{path}: camera {camera_id} extrinsic rotation is not a rotation matrix')
        cameras[str(int(camera_id))] = Camera(optical_center=-R.T @ t_m * 1000, rot_world_to_cam=R,
                                              intrinsic_matrix=K, distortion_coeffs=distortion, world_up=WORLD_UP)
    return cameras


def load_meta(path):
    """(start, end, genders [str]) of meta.npz."""
    from posepile.bodymodels.loading import BodyModelFormatError, normalize_gender
    data = load_npz(path, ('start', 'end', 'num_persons', 'genders'))
    start, end, n = int(data['start']), int(data['end']), int(data['num_persons'])
    genders = [str(g) for g in np.asarray(data['genders']).reshape(-1)]
    if end < start or len(genders) != n:
        raise Hi4DFormatError(f'{path}: start {start}, end {end}, {len(genders)} genders for {n} persons')
    try:
        return start, end, [normalize_gender(g) for g in genders]
    except BodyModelFormatError as e:
        raise Hi4DFormatError(f'{path}: {e}') from None


def load_smpl(path, n_persons):
    """The frame's SMPL fits: dict of (P, k) float64 arrays betas, global_orient, body_pose, transl, joints_3d."""
    keys = ('betas', 'global_orient', 'body_pose', 'transl', 'joints_3d')
    data = load_npz(path, keys)
    sizes = {'global_orient': 3, 'body_pose': 69, 'transl': 3}
    for key, size in sizes.items():
        if data[key].shape != (n_persons, size):
            raise Hi4DFormatError(f'{path}: {key} has shape {data[key].shape}, expected ({n_persons}, {size})')
    if data['joints_3d'].shape != (n_persons, 24, 3) or len(data['betas']) != n_persons:
        raise Hi4DFormatError(f'{path}: joints_3d {data["joints_3d"].shape} / betas {data["betas"].shape} do not '
                              f'match {n_persons} persons')
    result = {k: np.asarray(v, np.float64) for k, v in data.items()}
    if not all(np.all(np.isfinite(v)) for v in result.values()):
        raise Hi4DFormatError(f'{path}: non-finite values')
    return result


def load_mask(path):
    """Boolean (H, W) mask of a PNG (any channel non-zero)."""
    import cv2
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise Hi4DFormatError(f'{path}: cannot read the mask')
    return np.any(image != 0, axis=-1) if image.ndim == 3 else image != 0


# ------------------------------------------------------------------------------------------------
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def sequence_dirs(root):
    """<pair>/<action> folders holding meta.npz, sorted."""
    root = Path(root)
    found = sorted(p.parent for p in root.glob('*/*/meta.npz'))
    if not found:
        raise FileNotFoundError(f'no <pair>/<action>/meta.npz under {root}: extract the Hi4D pair archives there '
                                f'(step 1 of main.sh)')
    return found


def assign_people(person_masks, detections):
    """{person index: box [x, y, w, h]}: with detections, the Hungarian assignment maximising the IoU of each
    person's mask with each detection's box as a mask, pairs below IoU 0.1 dropped (the original); without
    (None), every non-empty mask's own box."""
    from scipy.optimize import linear_sum_assignment

    from posepile.util import boxes
    if detections is None:
        return {i: boxes.bb_of_mask(mask) for i, mask in enumerate(person_masks) if mask.any()}
    detections = np.asarray(detections, np.float64).reshape(-1, 5)
    if not len(detections) or not person_masks:
        return {}
    ious = np.array([[_mask_box_iou(mask, box) for box in detections[:, :4]] for mask in person_masks])
    rows, cols = linear_sum_assignment(-ious)
    return {int(r): detections[c, :4].astype(np.float32) for r, c in zip(rows, cols)
            if ious[r, c] >= MIN_MASK_DETECTION_IOU}


def _mask_box_iou(mask, box):
    """IoU of a boolean mask with a box [x, y, w, h] rasterised on the same grid (pixel centres inside)."""
    height, width = mask.shape
    x0, y0 = int(np.clip(np.ceil(box[0] - 0.5), 0, width)), int(np.clip(np.ceil(box[1] - 0.5), 0, height))
    x1 = int(np.clip(np.ceil(box[0] + box[2] - 0.5), 0, width))
    y1 = int(np.clip(np.ceil(box[1] + box[3] - 0.5), 0, height))
    box_area = max(x1 - x0, 0) * max(y1 - y0, 0)
    inter = int(mask[y0:y1, x0:x1].sum()) if box_area else 0
    union = int(mask.sum()) + box_area - inter
    return inter / union if union else 0.0


def load_detections(data_root=None):
    from posepile.util import fileio
    path = work_dir(data_root) / 'detections.pkl'
    return fileio.load_pickle(path) if path.exists() else None


def sequence_tasks(root, seq_dir, detections, counts):
    """Crop tasks of one sequence: per camera, the people with a box holding >= 6 of their projected joints, in
    frame and person order, thinned by one sampler (both people share it, as the original)."""
    from posepile.datasets3d import TRAIN, Pose3DExample
    from posepile.util import boxes, masks
    from posepile.util.sampling import select_frames
    start, end, genders = load_meta(seq_dir / 'meta.npz')
    cameras = load_cameras(seq_dir / 'cameras' / 'rgb_cameras.npz')
    fits = {frame: load_smpl(seq_dir / 'smpl' / f'{frame:06d}.npz', len(genders)) for frame in range(start, end + 1)}
    seq_rel = seq_dir.relative_to(root)
    tasks = []
    for camera_id, camera in cameras.items():
        mask_dir = seq_dir / 'seg' / 'img_seg_mask' / camera_id
        candidates = []  # (frame, person, box, relpath)
        for frame, fit in fits.items():
            image_path = seq_dir / 'images' / camera_id / f'{frame:06d}.jpg'
            if not image_path.exists():
                counts['missing image'] += 1
                continue
            relpath = str(image_path.relative_to(root.parent))
            person_masks = [load_mask(mask_dir / str(i) / f'{frame:06d}.png') for i in range(len(genders))]
            assigned = assign_people(person_masks, None if detections is None else
                                     detections.get(relpath, np.zeros((0, 5))))
            counts['unassigned people'] += len(genders) - len(assigned)
            for i_person in sorted(assigned):
                box = assigned[i_person]
                if boxes.contains(box, camera.world_to_image(fit['joints_3d'][i_person] * 1000)).sum() < \
                        MIN_JOINTS_IN_BOX:
                    counts['< 6 joints in the box'] += 1
                    continue
                candidates.append((frame, i_person, box, relpath))
        if not candidates:
            continue
        kept = select_frames(np.stack([fits[f]['joints_3d'][i] * 1000 for f, i, _, _ in candidates]),
                             SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER, check_validity=True,
                             nan_unchanged=True)
        counts['not selected'] += len(candidates) - len(kept)
        union_masks = {}
        for frame, i_person, box, relpath in (candidates[k] for k in kept):
            fit = fits[frame]
            if frame not in union_masks:
                union_masks[frame] = masks.encode(load_mask(mask_dir / 'all' / f'{frame:06d}.png'))
            parameters = {
                'type': 'smpl', 'gender': genders[i_person],
                'pose': np.concatenate([fit['global_orient'][i_person], fit['body_pose'][i_person]]).astype(np.float32),
                'shape': fit['betas'][i_person].astype(np.float32),
                'trans': fit['transl'][i_person].astype(np.float32)}
            example = Pose3DExample(relpath, None, box, camera, scene_name=str(seq_rel),
                                    activity_name=seq_dir.name.rstrip('0123456789'), mask=union_masks[frame],
                                    parameters=parameters)
            new_relpath = f'{NAME}_downscaled/{seq_rel}/images/{camera_id}/{frame:06d}_{i_person:02d}.jpg'
            tasks.append((f'{TRAIN}/{new_relpath}', example, new_relpath))
    return tasks


def make_crop_tasks(data_root=None):
    """(key 'train/crop relpath', example, crop relpath) per selected person x frame x camera."""
    root = raw_root(data_root)
    detections = load_detections(data_root)
    counts = dict.fromkeys(['missing image', 'unassigned people', '< 6 joints in the box', 'not selected'], 0)
    tasks = []
    for seq_dir in sequence_dirs(root):
        tasks += sequence_tasks(root, seq_dir, detections, counts)
    logger.info('%d crop tasks; %s', len(tasks), ', '.join(f'{k} {v}' for k, v in counts.items()))
    if not tasks:
        raise FileNotFoundError(f'no usable Hi4D views under {root}')
    return tasks


@pipeline.cli_options(('--detector', dict(dest='detector_spec', default='hog')))
def detect_stage(detector_spec='hog', shard=None, data_root=None):
    """Optional person detection on every image (then people are matched to detections by Hungarian mask IoU)."""
    from posepile.preproc.detection import run_detection_stage
    root = raw_root(data_root)
    relpaths = sorted(str(p.relative_to(root.parent)) for p in root.glob('*/*/images/*/*.jpg'))
    run_detection_stage(root.parent, relpaths, work_dir(data_root) / 'detections.pkl', detector_spec, shard=shard)


def crop_stage(shard=None, n_workers=None, data_root=None, skip_broken=None):
    """Crops of the selected person x frame x camera views, with the union mask."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root,
                                skip_broken=skip_broken)


crop_stage.cli_options = [pipeline.SKIP_BROKEN_OPTION]


def make_dataset(data_root=None):
    """Hi4D (real images): parametric-only SMPL examples in the world frame of each example's camera."""
    from posepile.datasets3d import TRAIN, Pose3DDataset
    from posepile.joint_info import JointInfo
    by_split = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo([], []), train_examples=by_split[TRAIN])


def assemble(data_root=None):
    """The dataset for get_dataset('hi4d')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.hi4d.main', 'Hi4D stages', {
        'detect': detect_stage, 'crop': crop_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
