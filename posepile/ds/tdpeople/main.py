"""3DPeople (synthetic dressed humans rendered at 640×480) -> Pose3DDataset: 29 joints in mm, all TRAIN.

Raw layout under $DATA_ROOT/tdpeople (as the release extracts):
    rgb/<person>/<action>/<camera>/<outfit-and-background>/<frame>.jpg     the rendered frames
    skeleton/<person>/<action>/<camera>/<frame>.txt                      the joints of that frame
    segmentation_clothes/<person>/<action>/<camera>/<frame>.png          the clothes segmentation
e.g. rgb/woman17/02_04_jump/camera01/wpskin08_bottom70_..._background1928/0001.jpg. The skeleton and the
segmentation of an image are found by dropping its outfit folder and swapping the modality folder and extension.

Skeleton txt: a whitespace table with one row per raw joint (at least 67 rows); the first two columns are the
pixel coordinates (px), the last three the 3D position in the release's unit (×100 -> mm). The 29 kept joints
are the rows RAW_ROWS, named JOINT_NAMES (the names and order of the original PosePile).

Recipe (as the original): ONE motion-adaptive selection (a raw joint moved >= 100 mm since the last kept image,
`select_frames` defaults) over ALL images in sorted path order on the full raw 3D joints; per kept image a
camera with fixed intrinsics (f = 700 px, principal point (320, 240) px, no distortion) whose pose is fitted
to the raw 2D-3D joint pairs; the mask is where the clothes segmentation differs from grey 153 by more than 10
in some channel, the box is the mask's box. Images are used uncropped (640×480).
Deviations: an image whose segmentation is empty or whose joints admit no camera is skipped (logged); the
original would have kept it with a zero box or a degenerate camera. world_up is the camera's own up direction
(the release has no known up axis).
"""
import logging
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'tdpeople'

JOINT_NAMES = ('pelv,spin,spi1,spi2,neck,head,reye,leye,htop,lcla,lsho,lelb,lwri,lhan,rcla,rsho,relb,rwri,'
               'rhan,lhip,lkne,lank,lfoo,ltoe,rhip,rkne,rank,rfoo,rtoe')
JOINT_EDGES = ('pelv-spin-spi1-spi2-neck-head-htop,pelv-rhip-rkne-rank-rfoo-rtoe,'
               'spi2-rcla-rsho-relb-rwri-rhan,leye-reye')
RAW_ROWS = [*range(14), *range(33, 37), 53, *range(57, 67)]  # the raw skeleton rows of JOINT_NAMES
N_JOINTS = 29
MIN_RAW_ROWS = 67
IMAGE_SIZE = (640, 480)  # width, height, px
FOCAL_PX = 700.0
PRINCIPAL_POINT = (320.0, 240.0)  # px
RELEASE_UNIT_TO_MM = 100.0
MASK_BACKGROUND_GREY = 153
MASK_TOLERANCE = 10  # a pixel is person where some channel differs from the background grey by more than this
SELECTION_THRESHOLD_MM = 100
SELECTION_CHUNK = 20000  # images whose skeletons are held in memory at once during the selection


class TDPeopleFormatError(InputError):
    pass


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


# ------------------------------------------------------------------------------------------------
# Reading the release


def list_images(root):
    """Paths of all rgb/**/*.jpg relative to `root` ('rgb/<person>/<action>/<camera>/<outfit>/<frame>.jpg'),
    sorted as strings (the order of the selection)."""
    root = Path(root)
    paths = sorted(p.relative_to(root).as_posix() for p in (root / 'rgb').rglob('*.jpg'))
    if not paths:
        raise FileNotFoundError(f'no 3DPeople images (rgb/<person>/<action>/<camera>/<outfit>/<frame>.jpg) '
                                f'under {root}')
    return paths


def companion_path(image_relpath, modality, extension):
    """The skeleton/segmentation path of an image: outfit folder removed, rgb -> modality, .jpg -> extension."""
    parts = Path(image_relpath).parts
    if len(parts) < 3 or parts[0] != 'rgb':
        raise ValueError(f'{image_relpath}: not an image path of the form rgb/.../<outfit>/<frame>.jpg')
    return Path(modality, *parts[1:-2], Path(parts[-1]).stem + extension)


def load_skeleton(path):
    """(joints2d (R, 2) px, joints3d (R, 3) mm) float32 of all R >= 67 raw rows of one skeleton txt file."""
    path = Path(path)
    try:
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise TDPeopleFormatError(f'{path}: cannot read skeleton file ({e})') from None
    widths = sorted({len(row) for row in rows})
    if len(rows) < MIN_RAW_ROWS or len(widths) != 1 or widths[0] < 5:
        raise TDPeopleFormatError(f'{path}: expected >= {MIN_RAW_ROWS} rows of >= 5 numbers (u v ... x y z), '
                                  f'got {len(rows)} rows of {widths} values')
    try:
        values = np.array(rows, np.float32)
    except ValueError as e:
        raise TDPeopleFormatError(f'{path}: non-numeric value in skeleton file ({e})') from None
    if not np.all(np.isfinite(values)):
        raise TDPeopleFormatError(f'{path}: non-finite value in skeleton file')
    return values[:, :2], values[:, -3:] * np.float32(RELEASE_UNIT_TO_MM)


def person_mask(segmentation_rgb):
    """Bool (H, W): pixels of the clothes segmentation that differ from the grey background by > 10."""
    difference = np.abs(np.asarray(segmentation_rgb, np.int16)[..., :3] - MASK_BACKGROUND_GREY)
    if difference.ndim == 3:
        difference = difference.max(axis=2)
    return difference > MASK_TOLERANCE


def load_person_mask(path):
    from posepile.util import improc
    try:
        segmentation = improc.imread_rgb(path)
    except (FileNotFoundError, improc.ImageDecodeError) as e:
        raise TDPeopleFormatError(f'{path}: cannot read the clothes segmentation ({e})') from None
    if segmentation.shape[:2] != IMAGE_SIZE[::-1]:
        raise TDPeopleFormatError(f'{path}: segmentation is {segmentation.shape[1]}x{segmentation.shape[0]}, '
                                  f'expected {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}')
    return person_mask(segmentation)


def estimate_image_camera(joints2d, joints3d):
    """(Camera, RMS px) with the fixed intrinsics, its pose fitted to (R, 2) px / (R, 3) mm joint pairs;
    world_up is the camera's own up direction (−row 1 of R). Raises ValueError when no pose fits."""
    from posepile.util.calibration import estimate_camera
    camera, rms = estimate_camera(joints3d, joints2d, image_size=IMAGE_SIZE, focal_px=FOCAL_PX,
                                  principal_point=PRINCIPAL_POINT)
    camera.world_up = -camera.R[1].copy()
    return camera, rms


# ------------------------------------------------------------------------------------------------
# Selection: one adaptive sampler over the whole sorted image sequence


def _read_raw_pose(args):
    root, image_relpath = args
    return load_skeleton(Path(root) / companion_path(image_relpath, 'skeleton', '.txt'))[1]


def _stack_poses(poses, relpaths, n_rows):
    for pose, relpath in zip(poses, relpaths):
        if pose.shape[0] != n_rows:
            raise TDPeopleFormatError(f'{companion_path(relpath, "skeleton", ".txt")}: {pose.shape[0]} rows, '
                                      f'but the first skeleton file has {n_rows}')
    return np.stack(poses)


def select_continuing(poses_mm, remembered_mm=None):
    """(kept indices, pose remembered afterwards) of v1 selection over `poses_mm` (N, R, 3), continuing from
    the pose the sampler remembered after the previous chunk (None at the start)."""
    from posepile.util.sampling import select_frames
    if remembered_mm is None:
        kept = select_frames(poses_mm, SELECTION_THRESHOLD_MM)
        remembered_mm = poses_mm[0]
    else:
        kept = select_frames(np.concatenate([remembered_mm[np.newaxis], poses_mm]), SELECTION_THRESHOLD_MM)
        kept = kept[kept > 0] - 1
    return kept, (poses_mm[kept[-1]] if len(kept) else remembered_mm)


def select_images(root, image_relpaths, n_workers=None, chunk_size=SELECTION_CHUNK):
    """The images kept by the adaptive selection (100 mm on the full raw 3D joints), in the given order."""
    from posepile.util.parallel import parallel_map
    selected, remembered, n_rows = [], None, None
    for start in range(0, len(image_relpaths), chunk_size):
        chunk = image_relpaths[start:start + chunk_size]
        poses = parallel_map(_read_raw_pose, [(str(root), p) for p in chunk], n_workers=n_workers, chunksize=64,
                             desc=f'3DPeople skeletons {start}+')
        n_rows = n_rows or poses[0].shape[0]
        kept, remembered = select_continuing(_stack_poses(poses, chunk, n_rows), remembered)
        selected.extend(chunk[i] for i in kept)
    return selected


# ------------------------------------------------------------------------------------------------
# The recipe's stages


def prepare_image(args):
    """A dict (image path, joints3d (29, 3) mm, camera, mask RLE, box px, rms px) of one selected image, or
    a dict with 'skipped' = reason when its segmentation is empty or no camera fits."""
    from posepile.util import masks
    root, image_relpath = Path(args[0]), args[1]
    joints2d, joints3d = load_skeleton(root / companion_path(image_relpath, 'skeleton', '.txt'))
    try:
        camera, rms = estimate_image_camera(joints2d, joints3d)
    except ValueError as e:
        return dict(image_relpath=image_relpath, skipped=f'no camera ({e})')
    mask = load_person_mask(root / companion_path(image_relpath, 'segmentation_clothes', '.png'))
    if not mask.any():
        return dict(image_relpath=image_relpath, skipped='empty segmentation')
    rle = masks.encode(mask)
    return dict(image_relpath=image_relpath, joints3d=joints3d[RAW_ROWS], camera=camera, mask=rle,
                box=masks.to_bbox(rle), rms_px=float(rms))


def prepare_stage(n_workers=None, data_root=None):
    """Adaptive selection over all images (100 mm), then per kept image: camera, mask and box
    (posepile_work/prepared.pkl, redone when a skeleton or clothes segmentation file or the image list changes)."""
    from posepile.util import fileio
    from posepile.util.parallel import parallel_map
    out_path = work_dir(data_root) / 'prepared.pkl'
    root = raw_root(data_root)
    image_relpaths = list_images(root)
    inputs = sorted({root / companion_path(p, modality, extension) for p in image_relpaths
                     for modality, extension in (('skeleton', '.txt'), ('segmentation_clothes', '.png'))})
    inputs_record = out_path.with_suffix('.inputs.json')
    if out_path.exists() and pipeline.load_stage_json(inputs_record, inputs, image_relpaths) is not None:
        return fileio.load_pickle(out_path)
    selected = select_images(root, image_relpaths, n_workers)
    results = parallel_map(prepare_image, [(str(root), p) for p in selected], n_workers=n_workers, chunksize=16,
                           desc='3DPeople cameras and masks')
    prepared = [r for r in results if 'skipped' not in r]
    for skipped in (r for r in results if 'skipped' in r):
        logger.warning('%s skipped: %s', skipped['image_relpath'], skipped['skipped'])
    rms = np.array([r['rms_px'] for r in prepared])
    logger.info('%d of %d images selected, %d used; camera fit RMS median %.3f px, max %.3f px',
                len(selected), len(image_relpaths), len(prepared), np.median(rms) if len(rms) else np.nan,
                rms.max() if len(rms) else np.nan)
    work_dir(data_root).mkdir(parents=True, exist_ok=True)
    fileio.save_pickle(prepared, out_path)
    pipeline.save_stage_json(out_path.name, inputs_record, inputs, image_relpaths)
    return prepared


def make_crop_tasks(data_root=None):
    from posepile.datasets3d import Pose3DExample
    tasks = []
    for item in prepare_stage(data_root=data_root):
        relpath = item['image_relpath']
        person, action = Path(relpath).parts[1:3]
        example = Pose3DExample(f'{NAME}/{relpath}', item['joints3d'], item['box'], item['camera'],
                                mask=item['mask'], scene_name=person, activity_name=action)
        crop = f'{NAME}_downscaled/{Path(relpath).relative_to("rgb").as_posix()}'
        tasks.append((f'0/{relpath}', example, crop))
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of the selected images (box = clothes-segmentation box)."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def joint_info():
    from posepile.joint_info import JointInfo
    return JointInfo(JOINT_NAMES, JOINT_EDGES)


def make_dataset(data_root=None):
    """3DPeople: every selected image as TRAIN, 29 joints in mm, cameras with f = 700 px, c = (320, 240) px."""
    from posepile.datasets3d import Pose3DDataset
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(joint_info(), splits[0], None, None)


def assemble(data_root=None):
    """The dataset for get_dataset('tdpeople')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.tdpeople.main', '3DPeople stages', {
        'prepare': prepare_stage,
        'crop': crop_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
