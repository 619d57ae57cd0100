"""3DPeople (synthetic dressed humans rendered at 640×480): readers of the per-frame skeleton files and masks.

Raw layout under $DATA_ROOT/tdpeople (one folder per modality, same sub-paths in each):
    rgb/<person>/<sequence>/camera<NN>/<frame>.jpg            the rendered frames (.png accepted too)
    segmentation_clothes/<person>/<sequence>/camera<NN>/<frame>.png
    skeleton/<person>/<sequence>/camera<NN>/<frame>.txt      29 rows "u v x y z"
Skeleton rows: image coordinates u, v in px (pixel centres at integer coordinates), then the 3D joint in
world coordinates in the release's unit (×100 → mm). The render camera is not shipped: it is estimated per
camera folder with the fixed intrinsics f = 700 px, principal point (320, 240), no distortion.
The facts this follows do not spell out the row order of the 29 joints or the exact folder names; JOINT_NAMES
and the layout above are this recipe's reading, and the readers fail with a one-line message naming the file
when a release does not match them.
"""
import logging
from pathlib import Path

import numpy as np

JOINT_NAMES = ('pelv,spi1,spi2,spi3,neck,head,htop,'
               'lcla,lsho,lelb,lwri,lthu,lfin,rcla,rsho,relb,rwri,rthu,rfin,'
               'lhip,lkne,lank,lfoo,ltoe,rhip,rkne,rank,rfoo,rtoe')
JOINT_EDGES = ('pelv-spi1-spi2-spi3-neck-head-htop,spi3-lcla-lsho-lelb-lwri-lfin,lwri-lthu,'
               'pelv-lhip-lkne-lank-lfoo-ltoe')
N_JOINTS = 29
IMAGE_SIZE = (640, 480)  # width, height, px
FOCAL_PX = 700.0
PRINCIPAL_POINT = (320.0, 240.0)  # px, as used for the release (not the (319.5, 239.5) pixel-grid centre)
RELEASE_UNIT_TO_MM = 100.0
MASK_BACKGROUND_GREY = 153
MASK_TOLERANCE = 10  # a pixel is person where some channel differs from the background grey by more than this
SELECTION_THRESHOLD_MM = 100
# A camera folder is one static camera when a single pose explains all its frames this well (px RMS);
# otherwise every frame gets its own pose.
STATIC_CAMERA_MAX_RMS_PX = 1.0
MODALITIES = ('rgb', 'segmentation_clothes', 'skeleton')

logger = logging.getLogger(__name__)


class TDPeopleFormatError(ValueError):
    pass


def load_skeleton(path):
    """(joints2d (29, 2) px, joints3d (29, 3) mm) from one skeleton txt file."""
    path = Path(path)
    try:
        lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise TDPeopleFormatError(f'{path}: cannot read skeleton file ({e})') from e
    if len(lines) != N_JOINTS or any(len(row) != 5 for row in lines):
        shape = sorted({len(row) for row in lines})
        raise TDPeopleFormatError(
            f'{path}: expected {N_JOINTS} rows of 5 numbers "u v x y z", got {len(lines)} rows of {shape} values')
    try:
        values = np.array(lines, np.float64)
    except ValueError as e:
        raise TDPeopleFormatError(f'{path}: non-numeric value in skeleton file ({e})') from None
    if not np.all(np.isfinite(values)):
        raise TDPeopleFormatError(f'{path}: non-finite value in skeleton file')
    return values[:, :2], values[:, 2:] * RELEASE_UNIT_TO_MM


def person_mask(segmentation_rgb):
    """Bool (H, W): pixels of the clothes segmentation that are not the grey background."""
    difference = np.abs(np.asarray(segmentation_rgb, np.int16) - MASK_BACKGROUND_GREY)
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
        raise TDPeopleFormatError(
            f'{path}: segmentation is {segmentation.shape[1]}x{segmentation.shape[0]}, expected '
            f'{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}')
    return person_mask(segmentation)


def list_videos(root):
    """'<person>/<sequence>/camera<NN>' for every camera folder with skeleton files, sorted."""
    videos = sorted(str(d.relative_to(Path(root) / 'skeleton'))
                    for d in (Path(root) / 'skeleton').glob('*/*/camera*') if d.is_dir())
    if not videos:
        raise FileNotFoundError(f'no 3DPeople skeleton folders (skeleton/<person>/<sequence>/camera<NN>) under {root}')
    return videos


def list_frames(root, video):
    """Frame names (file stems) of a camera folder in numeric order."""
    stems = [p.stem for p in (Path(root) / 'skeleton' / video).glob('*.txt')]
    return sorted(stems, key=lambda stem: (int(stem) if stem.isdigit() else np.inf, stem))


def find_frame_file(root, modality, video, frame, extensions):
    for extension in extensions:
        path = Path(root) / modality / video / f'{frame}{extension}'
        if path.exists():
            return path
    raise FileNotFoundError(f'{Path(root) / modality / video / frame}{{{",".join(extensions)}}} not found')


def estimate_cameras(joints2d, joints3d):
    """One Camera per frame from (N, 29, 2) px and (N, 29, 3) mm, with fixed intrinsics; the same camera for
    all frames when one static camera fits them (RMS <= STATIC_CAMERA_MAX_RMS_PX). Also the RMS per frame, px.

    The world has no known up axis, so world_up is the camera's own up direction (−row 1 of R).
    """
    from posepile.util.calibration import estimate_camera
    kwargs = dict(image_size=IMAGE_SIZE, focal_px=FOCAL_PX, principal_point=PRINCIPAL_POINT)
    try:
        camera, rms = estimate_camera(joints3d.reshape(-1, 3), joints2d.reshape(-1, 2), **kwargs)
    except ValueError:
        rms = np.inf
    if rms <= STATIC_CAMERA_MAX_RMS_PX:
        cameras = [camera] * len(joints2d)
    else:
        cameras = [_frame_camera(points3d, points2d, **kwargs) for points3d, points2d in zip(joints3d, joints2d)]
    errors = []
    for camera, points3d, points2d in zip(cameras, joints3d, joints2d):
        if camera is None:
            errors.append(np.inf)
            continue
        camera.world_up = -camera.R[1].copy()
        errors.append(np.sqrt(np.mean(np.sum((camera.world_to_image(points3d) - points2d) ** 2, axis=-1))))
    return cameras, np.array(errors)


def _frame_camera(points3d, points2d, **kwargs):
    """The camera of one frame, or None when no pose puts the joints in front of it."""
    from posepile.util.calibration import estimate_camera
    try:
        return estimate_camera(points3d, points2d, **kwargs)[0]
    except ValueError as e:
        logger.warning('no camera for a frame: %s', e)
        return None


# ------------------------------------------------------------------------------------------------
# The recipe's stages
from posepile.preproc import pipeline  # noqa: E402

NAME = 'tdpeople'


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def prepare_video(root, video):
    """Selected frames of one camera folder with their joints (mm), cameras, masks (RLE) and boxes (px)."""
    from posepile.util import masks
    from posepile.util.sampling import select_frames
    root = Path(root)
    frames = list_frames(root, video)
    skeletons = [load_skeleton(root / 'skeleton' / video / f'{frame}.txt') for frame in frames]
    joints2d = np.stack([s[0] for s in skeletons])
    joints3d = np.stack([s[1] for s in skeletons])
    selected = select_frames(joints3d, SELECTION_THRESHOLD_MM)
    cameras, errors = estimate_cameras(joints2d[selected], joints3d[selected])
    result = dict(video=video, frames=[], image_paths=[], joints3d=[], cameras=[], masks=[], boxes=[],
                  rms_px=[], n_empty=0, n_no_camera=0)
    for index, camera, rms in zip(selected, cameras, errors):
        frame = frames[index]
        if camera is None:
            result['n_no_camera'] += 1
            continue
        mask = load_person_mask(find_frame_file(root, 'segmentation_clothes', video, frame, ('.png', '.jpg')))
        if not mask.any():
            result['n_empty'] += 1
            continue
        image_path = find_frame_file(root, 'rgb', video, frame, ('.jpg', '.png'))
        rle = masks.encode(mask)
        result['frames'].append(frame)
        result['image_paths'].append(str(image_path.relative_to(root.parent)))
        result['joints3d'].append(joints3d[index].astype(np.float32))
        result['cameras'].append(camera)
        result['masks'].append(rle)
        result['boxes'].append(masks.to_bbox(rle))
        result['rms_px'].append(float(rms))
    return result


def _prepare_video_task(args):
    return prepare_video(*args)


def prepare_stage(n_workers=None, data_root=None):
    """Adaptive frame selection (100 mm), cameras estimated with fixed intrinsics, masks from the clothes
    segmentation, per camera folder."""
    from posepile.util import fileio
    from posepile.util.parallel import parallel_map
    out_path = work_dir(data_root) / 'prepared.pkl'
    if out_path.exists():
        return fileio.load_pickle(out_path)
    root = raw_root(data_root)
    tasks = [(str(root), video) for video in list_videos(root)]
    prepared = parallel_map(_prepare_video_task, tasks, n_workers=n_workers, desc='3DPeople videos')
    rms = np.concatenate([p['rms_px'] for p in prepared] + [np.zeros(0)])
    logger.info('%d frames selected from %d videos (%d without a visible person); camera fit RMS median '
                '%.3f px, max %.3f px', len(rms), len(prepared), sum(p['n_empty'] for p in prepared),
                np.median(rms) if len(rms) else np.nan, rms.max() if len(rms) else np.nan)
    fileio.save_pickle(prepared, out_path)
    return prepared


def make_crop_tasks(data_root=None):
    from posepile.datasets3d import Pose3DExample
    tasks = []
    for video_result in prepare_stage(data_root=data_root):
        video = video_result['video']
        person, sequence, _ = video.split('/')
        for frame, image_path, joints, camera, rle, box in zip(
                video_result['frames'], video_result['image_paths'], video_result['joints3d'],
                video_result['cameras'], video_result['masks'], video_result['boxes']):
            example = Pose3DExample(image_path, joints, box, camera, mask=rle, scene_name=person,
                                    activity_name=sequence)
            tasks.append((f'0/{video}/{frame}', example, f'tdpeople_downscaled/{video}/{frame}.jpg'))
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of the selected frames (box = clothes-segmentation box)."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def make_dataset(data_root=None):
    """3DPeople: every selected frame as TRAIN (adaptive 100 mm per camera folder), 29 joints in mm,
    cameras estimated with fixed intrinsics (f = 700 px, c = (320, 240)), masks from the clothes segmentation."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0], None, None)


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
