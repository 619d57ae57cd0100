"""Demo capture: a synthetic multi-view recording that runs through the whole pipeline offline.

Raw release layout (written by `generate`, read by every later stage exactly like a real dataset's files):

    $DATA_ROOT/demo/
      README.txt                 this layout, in words
      calibration.json           {"fps": 25, "image_size": [H, W], "n_frames": N,
                                  "cameras": {"cam0": {"intrinsic_matrix": 3x3 px,
                                              "distortion_coeffs": [k1, k2, p1, p2, k3] (OpenCV),
                                              "rot_world_to_cam": 3x3, "optical_center_mm": [x, y, z]}, ...}}
                                 (world: mm, z up, floor at z = 0; X_cam = R (X_world - c))
      videos/cam<k>.mp4          H.264, 640x480, 25 fps, frame 0 = annotation row 0
      joints3d_mm.npz            poses (P, N, 17, 3) float32 mm, joint_names (17,), fps
      truth_masks/cam<k>.json    [frame][person] COCO RLE of the visible person (for measuring only)

Stages (see main.sh): select-frames, video (one pass per video: detect, associate, crop, segment), report,
assemble, check-crops, predict-baseline, summary. Working files go to $DATA_ROOT/demo/posepile_work/, crops to
$DATA_ROOT/demo_downscaled/.
"""
import argparse
import functools
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from posepile.datasets3d import TEST, TRAIN, Pose3DDataset, Pose3DExample
from posepile.ds.demo import scene
from posepile.util import boxes, fileio, masks
from posepile.util.camera import Camera

logger = logging.getLogger(__name__)

NAME = 'demo'
N_FRAMES = 200
FPS = 25
IMAGE_SHAPE = (480, 640)
N_CAMERAS = 4
TRAIN_FRACTION = 0.75  # the first 75% of the frames are the training part, the rest the test part
TEST_EVERY_NTH = 5  # test frames are not subsampled by motion, only strided (as in H36M)
SELECTION_THRESHOLD_MM = 100  # the original's adaptive selection threshold
GT_BOX_EXPANSION = 1.1
MIN_ASSOCIATION_IOU = 0.3  # HOG also fires on the checkered floor: demand real overlap
MIN_VISIBLE_FRACTION = 0.25  # people mostly hidden behind the other are not used
BASELINE_NOISE_MM = 30.0  # per-coordinate std of the baseline predictions (root-relative MPJPE ~ 60 mm)


# ------------------------------------------------------------------------------------------------
# Paths
def raw_root(data_root=None):
    from posepile.paths import data_root as get_data_root
    return Path(data_root or get_data_root()) / NAME


def work_dir(data_root=None):
    return raw_root(data_root) / 'posepile_work'


def _require(path, stage):
    if not Path(path).exists():
        raise FileNotFoundError(f'{path} is missing: run the "{stage}" stage first '
                                f'(bash posepile/ds/demo/main.sh)')
    return Path(path)


# ------------------------------------------------------------------------------------------------
# Generation of the raw release
def make_cameras(seed=0):
    """Four cameras on a 6.5 m circle around the stage, at different heights, with OpenCV distortion."""
    rng = np.random.default_rng(seed + 1000)
    cameras = {}
    for k in range(N_CAMERAS):
        azimuth = np.deg2rad(20 + 90 * k + rng.uniform(-8, 8))
        distance = 6500 + rng.uniform(-300, 300)
        centre = np.array([distance * np.cos(azimuth), distance * np.sin(azimuth), 1400 + 220 * k])
        focal = 575 + rng.uniform(-20, 20)
        intrinsics = np.array([[focal, 0, 319.5 + rng.uniform(-6, 6)],
                               [0, focal * (1 + rng.uniform(-0.005, 0.005)), 239.5 + rng.uniform(-6, 6)],
                               [0, 0, 1]])
        distortion = np.array([-0.16 + rng.uniform(-0.04, 0.04), 0.04 + rng.uniform(-0.01, 0.01),
                               rng.uniform(-1e-3, 1e-3), rng.uniform(-1e-3, 1e-3), 0.0])
        camera = Camera(optical_center=centre, intrinsic_matrix=intrinsics, distortion_coeffs=distortion,
                        world_up=(0, 0, 1))
        camera.turn_towards(target_world_point=[rng.uniform(-200, 200), rng.uniform(-200, 200), 850])
        camera.rotate(roll=rng.uniform(-0.03, 0.03))
        cameras[f'cam{k}'] = camera
    return cameras


def _render_camera_video(item, poses, out_dir, seed):
    """Render one camera's video and its true masks (worker function)."""
    from posepile.util.video import write_video
    camera_name, camera = item
    rays = scene.camera_rays(camera, IMAGE_SHAPE)
    background, floor_points = scene.render_background(camera, rays)
    rng = np.random.default_rng([seed, int(camera_name[3:])])
    truth = []

    def frames():
        for i_frame in range(poses.shape[1]):
            image, person_id = scene.render_people(
                camera, rays, list(poses[:, i_frame]), background, floor_points)
            truth.append([masks.encode(person_id == p) for p in range(poses.shape[0])])
            yield scene.to_uint8(image, rng)

    write_video(Path(out_dir) / 'videos' / f'{camera_name}.mp4', frames(), FPS, quality=8)
    fileio.save_json(truth, Path(out_dir) / 'truth_masks' / f'{camera_name}.json')
    return camera_name


def generate(data_root=None, seed=0, n_frames=N_FRAMES, n_workers=None):
    """Write the raw release under $DATA_ROOT/demo (skipped when complete). Deterministic given the seed."""
    from posepile.util.parallel import parallel_map
    root = raw_root(data_root)
    if (root / 'calibration.json').exists():
        logger.info('%s exists: raw release already generated', root / 'calibration.json')
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix='.demo-generating-', dir=root.parent))
    try:
        poses = np.stack([scene.person_poses(p, n_frames, FPS) for p in range(len(scene.PEOPLE))])
        cameras = make_cameras(seed)
        worker = functools.partial(_render_camera_video, poses=poses, out_dir=str(tmp), seed=seed)
        parallel_map(worker, list(cameras.items()), n_workers=n_workers, desc='render cameras')
        np.savez(tmp / 'joints3d_mm.npz', poses=poses, joint_names=np.array(scene.JOINT_NAMES.split(',')),
                 fps=FPS)
        (tmp / 'README.txt').write_text(__doc__)
        calibration = {'fps': FPS, 'image_size': list(IMAGE_SHAPE), 'n_frames': n_frames, 'cameras': {
            name: {'intrinsic_matrix': c.intrinsic_matrix.tolist(),
                   'distortion_coeffs': c.distortion_coeffs.tolist(),
                   'rot_world_to_cam': c.R.tolist(), 'optical_center_mm': c.t.tolist()}
            for name, c in cameras.items()}}
        # calibration.json is written last inside the temp folder, and the folder renamed at once
        fileio.save_json(calibration, tmp / 'calibration.json', indent=1)
        if root.exists():  # leftovers of a run killed before the rename (no calibration.json)
            shutil.rmtree(root)
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes a private folder
        tmp.rename(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------------------------------------
# Reading the raw release
def load_calibration(path):
    """{camera name: Camera} and the calibration dict, from calibration.json (clear errors on bad files)."""
    path = Path(path)
    try:
        calibration = fileio.load_json(path)
    except (OSError, ValueError) as e:
        raise ValueError(f'{path}: cannot read calibration JSON: {e}') from e
    cameras = {}
    for name, c in calibration.get('cameras', {}).items():
        try:
            cameras[name] = Camera(optical_center=c['optical_center_mm'], rot_world_to_cam=c['rot_world_to_cam'],
                                   intrinsic_matrix=c['intrinsic_matrix'],
                                   distortion_coeffs=c['distortion_coeffs'], world_up=(0, 0, 1))
        except (KeyError, ValueError, TypeError) as e:
            raise ValueError(f'{path}: camera {name!r} is malformed ({e!r})') from e
    if not cameras:
        raise ValueError(f'{path}: no cameras')
    return cameras, calibration


def load_poses(path):
    """(people, frames, 17, 3) float32 mm from joints3d_mm.npz; a damaged file is one InputError naming it."""
    from posepile.util.errors import InputError
    path = Path(path)
    arrays = fileio.load_npz(path)
    if 'poses' not in arrays:
        raise InputError(f'{path}: no "poses" array (found {sorted(arrays)})')
    poses = arrays['poses']
    if poses.ndim != 4 or poses.shape[2:] != (17, 3) or not np.issubdtype(poses.dtype, np.number):
        raise InputError(f'{path}: poses must be numbers of shape (people, frames, 17, 3), got {poses.dtype} '
                         f'{poses.shape}')
    return poses.astype(np.float32)


# ------------------------------------------------------------------------------------------------
# Stages
def select_frames_stage(data_root=None):
    """Adaptive selection on the 3D tracks: per person, keep training frames where some joint moved
    >= 100 mm since the last kept frame; test frames are every 5th frame."""
    from posepile.preproc import pipeline
    from posepile.util.sampling import select_frames
    out_path = work_dir(data_root) / 'selection.json'
    inputs = [raw_root(data_root) / 'joints3d_mm.npz']
    options = [SELECTION_THRESHOLD_MM, TRAIN_FRACTION, TEST_EVERY_NTH]
    cached = pipeline.load_stage_json(out_path, inputs, options)
    if cached is not None:
        return cached
    poses = load_poses(_require(raw_root(data_root) / 'joints3d_mm.npz', 'generate'))
    n_train_frames = int(round(TRAIN_FRACTION * poses.shape[1]))
    train = {str(p): select_frames(poses[p, :n_train_frames], SELECTION_THRESHOLD_MM).tolist()
             for p in range(poses.shape[0])}
    test = list(range(n_train_frames, poses.shape[1], TEST_EVERY_NTH))
    selection = {'train': train, 'test': test, 'threshold_mm': SELECTION_THRESHOLD_MM}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    pipeline.save_stage_json(selection, out_path, inputs, options)
    n_train = sum(len(v) for v in train.values())
    logger.info('selected %d of %d training person-frames, %d test frames', n_train,
                n_train_frames * poses.shape[0], len(test))
    return selection


def _frames_needed(selection):
    frames = set(selection['test'])
    for kept in selection['train'].values():
        frames.update(kept)
    return sorted(frames)


def frame_relpath(camera_name, frame_index):
    """Where --keep-frames writes a full frame (the frames are not needed otherwise)."""
    from posepile.util.video import FRAME_NAME_PATTERN
    return f'{NAME}/frames/{camera_name}/{FRAME_NAME_PATTERN.format(frame_index)}'


def make_video_tasks(data_root=None):
    """One VideoTask per camera: the selected frames and the people to crop in each (with their GT boxes,
    true masks and the other people's joints), leaving out people mostly hidden or outside the image.
    Returns (tasks, counts of people left out)."""
    from posepile.preproc.video_stage import PersonTask, VideoTask
    root = raw_root(data_root)
    _require(work_dir(data_root) / 'selection.json', 'select-frames')
    selection = select_frames_stage(data_root)
    cameras, calibration = load_calibration(_require(root / 'calibration.json', 'generate'))
    poses = load_poses(root / 'joints3d_mm.npz')
    imshape = tuple(calibration['image_size'])
    full_box = boxes.full_box(imshape)
    wanted = {f: ('test', list(range(poses.shape[0]))) for f in selection['test']}
    for person, kept in selection['train'].items():
        for f in kept:
            wanted.setdefault(f, ('train', []))[1].append(int(person))
    tasks = []
    left_out = {'people_considered': 0, 'skipped_occluded_or_outside': 0}
    for camera_name in sorted(cameras):
        camera = cameras[camera_name]
        truth = fileio.load_json(root / 'truth_masks' / f'{camera_name}.json')
        small_camera = camera.copy().scale_output(0.25)
        small_rays = scene.camera_rays(small_camera, (imshape[0] // 4, imshape[1] // 4))
        frames = {}
        for frame, (split, people) in sorted(wanted.items()):
            joints2d = camera.world_to_image(poses[:, frame])
            for person in sorted(set(people)):
                left_out['people_considered'] += 1
                full_area = _unoccluded_area(small_camera, small_rays, poses[person, frame], person)
                visible = masks.area(truth[frame][person])
                in_image = boxes.contains(full_box, joints2d[person]).sum()
                if full_area == 0 or visible < MIN_VISIBLE_FRACTION * full_area or in_image < 10:
                    left_out['skipped_occluded_or_outside'] += 1
                    continue
                gt_box = boxes.expand(boxes.bb_of_points(joints2d[person]), GT_BOX_EXPANSION)
                example = Pose3DExample(
                    frame_relpath(camera_name, frame), poses[person, frame], gt_box, camera,
                    activity_name='walking', scene_name=camera_name, mask=truth[frame][person])
                frames.setdefault(frame, []).append(PersonTask(
                    key=f'{split}/{camera_name}/{frame:06d}/{person}', example=example,
                    crop_relpath=f'{NAME}_downscaled/{camera_name}/frame_{frame:06d}_p{person}.jpg',
                    others_world=[poses[p, frame] for p in range(poses.shape[0]) if p != person]))
        tasks.append(VideoTask(key=camera_name, video_path=str(root / 'videos' / f'{camera_name}.mp4'),
                               frames=frames, frame_relpath_pattern=frame_relpath(camera_name, 0)
                               .replace('000000', '{:06d}')))
    return tasks, left_out


def video_stage(detector_spec='hog', segmenter_spec='grabcut', shard=None, n_workers=None, keep_frames=False,
                data_root=None, skip_broken=None):
    """One pass per camera video: decode, detect people in the selected frames, associate detections
    with the people (Hungarian, IoU >= 0.3, else the GT box), crop, segment the crops. A broken video
    fails the stage naming it, unless skip_broken (default: SKIP_BROKEN=1), which builds the rest."""
    from posepile.paths import data_root as get_data_root
    from posepile.preproc.video_stage import BoxRule, run_video_stage
    tasks, left_out = make_video_tasks(data_root)
    fileio.save_json(left_out, work_dir(data_root) / 'left_out_people.json')
    run_video_stage(tasks, work_dir(data_root) / 'crops', data_root=Path(data_root or get_data_root()),
                    shard=shard, n_workers=n_workers, detector_spec=detector_spec,
                    box_rule=BoxRule('hungarian', min_iou=MIN_ASSOCIATION_IOU), segmenter_spec=segmenter_spec,
                    joint_edges=scene.joint_info().stick_figure_edges, keep_frames=keep_frames,
                    skip_broken=skip_broken)


def report_stage(data_root=None):
    """Association counts and the segmentation IoU against the true masks carried into each crop."""
    from posepile.paths import data_root as get_data_root
    from posepile.preproc.cropping import reproject_mask
    from posepile.preproc.pipeline import load_crop_results
    from posepile.preproc.video_stage import video_stage_report
    from posepile.util import improc
    root = Path(data_root or get_data_root())
    work = work_dir(data_root)
    report = video_stage_report(work / 'crops')
    left_out = fileio.load_json(work / 'left_out_people.json')
    association = {'people': left_out['people_considered'],
                   'matched_to_detection': report['stats'].get('matched_to_detection', 0),
                   'skipped_occluded_or_outside': left_out['skipped_occluded_or_outside']}
    fileio.save_json(association, work / 'association_stats.json')
    cameras, _ = load_calibration(raw_root(data_root) / 'calibration.json')
    truth = {name: fileio.load_json(raw_root(data_root) / 'truth_masks' / f'{name}.json') for name in cameras}
    ious = []
    for key, example in load_crop_results(work / 'crops'):
        _, camera_name, frame, person = key.split('/')
        crop_shape = improc.image_size_from_header(root / example.image_path)
        true_mask = reproject_mask(truth[camera_name][int(frame)][int(person)], cameras[camera_name],
                                   example.camera, crop_shape)
        ious.append(masks.iou(example.mask, true_mask))
    stats = {'segmenter': 'video stage', 'n': len(ious), 'mean_iou': float(np.mean(ious)),
             'median_iou': float(np.median(ious)), 'min_iou': float(np.min(ious))}
    fileio.save_json(stats, work / 'segmentation_stats.json')
    logger.info('association: %s; segmentation mean IoU vs true masks: %.3f over %d crops', association,
                stats['mean_iou'], len(ious))


def _unoccluded_area(small_camera, small_rays, pose, person_index, scale=4):
    """Pixel area the person would cover if alone, from a render at 1/scale resolution."""
    shape = small_rays.shape[:2]
    _, person_id = scene.render_people(small_camera, small_rays, [pose if i == person_index else _far_away(pose)
                                                                  for i in range(person_index + 1)],
                                       np.zeros((*shape, 3), np.float32), np.full((*shape, 2), np.nan))
    return int(np.sum(person_id == person_index)) * scale * scale


def _far_away(pose):
    return pose + np.array([1e7, 1e7, 0], np.float32)


def make_dataset(data_root=None):
    """The finished demo Pose3DDataset: crops with detector boxes, segmenter masks, plausibility-filtered."""
    from posepile.preproc.pipeline import load_crop_results
    from posepile.preproc.plausibility import filter_by_plausibility
    results = load_crop_results(_require(work_dir(data_root) / 'crops', 'video'))
    splits = {TRAIN: [], TEST: []}
    for key, example in results:
        splits[TRAIN if key.startswith('train/') else TEST].append(example)
    dataset = Pose3DDataset(scene.joint_info(), splits[TRAIN], None, splits[TEST])
    dataset, report = filter_by_plausibility(dataset)
    fileio.save_json(report, work_dir(data_root) / 'plausibility_report.json')
    return dataset


def assemble_stage(data_root=None):
    from posepile.datasets3d import save_to_cache
    dataset = make_dataset(data_root)
    path = save_to_cache(NAME, dataset)
    logger.info('saved %s to %s', dataset, path)


def check_crops_stage(n_samples=24, data_root=None, seed=0):
    """Crop reprojection error: each sampled crop is compared with the scene rendered directly through the
    crop's camera; the sub-pixel shift between the two (phase correlation on the central part) is how far
    the crop camera's projections are from the image content."""
    import cv2
    from posepile.paths import data_root as get_data_root
    from posepile.preproc.pipeline import load_crop_results
    from posepile.util import improc
    root = Path(data_root or get_data_root())
    poses = load_poses(raw_root(data_root) / 'joints3d_mm.npz')
    results = load_crop_results(work_dir(data_root) / 'crops')
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(results), size=min(n_samples, len(results)), replace=False)
    errors = []
    for i in sorted(chosen):
        key, example = results[i]
        frame = int(key.split('/')[2])
        crop = improc.imread_rgb(root / example.image_path).astype(np.float32).mean(-1)
        rays = scene.camera_rays(example.camera, crop.shape)
        background, floor_points = scene.render_background(example.camera, rays)
        image, _ = scene.render_people(example.camera, rays, list(poses[:, frame]), background, floor_points)
        direct = scene.to_uint8(image).astype(np.float32).mean(-1)
        h, w = crop.shape
        y0, y1, x0, x1 = h // 5, h - h // 5, w // 5, w - w // 5
        window = cv2.createHanningWindow((x1 - x0, y1 - y0), cv2.CV_32F)
        (dx, dy), _ = cv2.phaseCorrelate(direct[y0:y1, x0:x1], crop[y0:y1, x0:x1], window)
        errors.append(float(np.hypot(dx, dy)))
    stats = {'n': len(errors), 'mean_px': float(np.mean(errors)), 'max_px': float(np.max(errors))}
    fileio.save_json(stats, work_dir(data_root) / 'reprojection_stats.json')
    logger.info('crop reprojection error: mean %.3f px, max %.3f px over %d crops', stats['mean_px'],
                stats['max_px'], stats['n'])
    return stats


def predict_baseline_stage(out_path=None, data_root=None, seed=0):
    """Baseline predictions for the test set: the true world coordinates plus Gaussian noise of 30 mm per
    coordinate (a root-relative MPJPE of about 60 mm, as the root's noise adds to every joint's), written
    as a predictions file for eval.py."""
    from posepile.datasets3d import get_dataset
    from posepile.eval.predictions import save_predictions
    out_path = Path(out_path or work_dir(data_root) / 'baseline_predictions.npz')
    dataset = get_dataset(NAME)
    examples = dataset.examples[TEST]
    rng = np.random.default_rng(seed)
    coords = np.stack([ex.world_coords for ex in examples]).astype(np.float64)
    coords += rng.normal(0, BASELINE_NOISE_MM, coords.shape)
    save_predictions(out_path, [ex.image_path for ex in examples], coords, key='coords3d_pred_world')
    logger.info('wrote %d baseline predictions to %s', len(examples), out_path)


def summary_stage(started_at=None, data_root=None, contact_sheet=None, eval_json=None):
    """Print the run's summary; the last line is `summary: {json}`."""
    from posepile.datasets3d import get_dataset
    work = work_dir(data_root)
    selection = select_frames_stage(data_root)
    _, calibration = load_calibration(raw_root(data_root) / 'calibration.json')
    seg = fileio.load_json(work / 'segmentation_stats.json')
    reproj = fileio.load_json(work / 'reprojection_stats.json')
    assoc = fileio.load_json(work / 'association_stats.json')
    evaluation = fileio.load_json(eval_json or work / 'eval_results.json')
    dataset = get_dataset(NAME)
    n_cameras = len(calibration['cameras'])
    frames_in = calibration['n_frames'] * n_cameras
    n_examples = sum(len(v) for v in dataset.examples.values())
    seconds = None if started_at is None else round(time.time() - float(started_at), 1)
    lines = [
        f'frames in:            {frames_in} ({calibration["n_frames"]} x {n_cameras} cameras), '
        f'{len(_frames_needed(selection)) * n_cameras} decoded for crops after adaptive selection',
        f'examples kept:        {n_examples} (train {len(dataset.examples[TRAIN])}, '
        f'test {len(dataset.examples[TEST])}); {assoc["matched_to_detection"]} of {assoc["people"]} '
        f'people matched to a detection',
        f'segmentation IoU:     {seg["mean_iou"]:.3f} mean vs true masks ({seg["segmenter"]}, {seg["n"]} crops)',
        f'crop reprojection:    {reproj["mean_px"]:.3f} px mean, {reproj["max_px"]:.3f} px max '
        f'({reproj["n"]} crops vs direct renders)',
        f'evaluation:           MPJPE {evaluation["mpjpe_mm"]:.1f} mm, PA-MPJPE {evaluation["pa_mpjpe_mm"]:.1f} mm,'
        f' PCK@150 {evaluation["pck150"]:.1f}%, AUC {evaluation["auc"]:.1f}%',
    ]
    if seconds is not None:
        lines.append(f'wall time:            {seconds} s')
    if contact_sheet:
        lines.append(f'contact sheet:        {contact_sheet}')
    for line in lines:
        print(line)
    summary = {'frames': frames_in, 'examples': n_examples, 'seg_iou': round(seg['mean_iou'], 4),
               'reproj_px': round(reproj['mean_px'], 4), 'mpjpe_mm': round(evaluation['mpjpe_mm'], 2),
               'seconds': seconds, 'contact_sheet': str(contact_sheet) if contact_sheet else None}
    print('summary: ' + json.dumps(summary))
    return summary


def main(argv=None):
    from posepile.preproc.pipeline import SKIP_BROKEN_OPTION
    from posepile.util.parallel import add_shard_argument
    parser = argparse.ArgumentParser(prog='python -m posepile.ds.demo.main', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='stage', required=True)
    p = sub.add_parser('generate')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--n-frames', type=int, default=int(os.environ.get('POSEPILE_DEMO_FRAMES', N_FRAMES)))
    p.add_argument('--workers', type=int, default=None)
    sub.add_parser('select-frames')
    p = sub.add_parser('video', help='one pass per video: detect, associate, crop, segment')
    p.add_argument('--detector', default='hog')
    p.add_argument('--segmenter', default='grabcut')
    p.add_argument('--keep-frames', action='store_true', help='also write the selected full frames as JPEGs')
    p.add_argument('--workers', type=int, default=None)
    flag, options = SKIP_BROKEN_OPTION
    p.add_argument(flag, **options)
    add_shard_argument(p)
    sub.add_parser('report')
    sub.add_parser('assemble')
    sub.add_parser('check-crops')
    p = sub.add_parser('predict-baseline')
    p.add_argument('--out', default=None)
    p = sub.add_parser('summary')
    p.add_argument('--started-at', type=float, default=None)
    p.add_argument('--contact-sheet', default=None)
    p.add_argument('--eval-json', default=None)
    args = parser.parse_args(argv)
    if args.stage == 'generate':
        generate(seed=args.seed, n_frames=args.n_frames, n_workers=args.workers)
    elif args.stage == 'select-frames':
        select_frames_stage()
    elif args.stage == 'video':
        video_stage(args.detector, args.segmenter, shard=args.shard, n_workers=args.workers,
                    keep_frames=args.keep_frames, skip_broken=args.skip_broken)
    elif args.stage == 'report':
        report_stage()
    elif args.stage == 'assemble':
        assemble_stage()
    elif args.stage == 'check-crops':
        check_crops_stage()
    elif args.stage == 'predict-baseline':
        predict_baseline_stage(args.out)
    elif args.stage == 'summary':
        summary_stage(args.started_at, contact_sheet=args.contact_sheet, eval_json=args.eval_json)


if __name__ == '__main__':
    import sys

    from posepile.util.errors import run_cli
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    sys.exit(run_cli(main, prog='python -m posepile.ds.demo.main'))
