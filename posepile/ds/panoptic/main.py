"""CMU Panoptic Studio: camera calibration and 3D body readers."""

import numpy as np

from posepile.util.camera import Camera
from posepile.util.errors import InputError

JOINT_NAMES_COCO19 = ('neck,nose,pelv,lsho,lelb,lwri,lhip,lkne,lank,rsho,relb,rwri,rhip,rkne,rank,leye,lear,'
                      'reye,rear')
JOINT_EDGES_COCO19 = 'nose-neck-pelv-rhip-rkne-rank,neck-rsho-relb-rwri,nose-reye-rear'
MIN_CONFIDENCE = 0.1


class PanopticFormatError(InputError):
    pass


def _load_json(path):
    from posepile.util import fileio
    return fileio.load_json(path, PanopticFormatError)


def load_cameras(calibration_json_path, camera_type=None):
    """{name: Camera} from calibration_<seq>.json. `t` is in cm there: X_cam = R X + t; we use mm.

    The world is y-down, so world_up = (0, -1, 0). `camera_type` ('hd', 'vga', 'kinect-color') filters.
    """
    data = _load_json(calibration_json_path)
    if 'cameras' not in data:
        raise PanopticFormatError(f'{calibration_json_path}: no "cameras" list')
    cameras = {}
    for i, entry in enumerate(data['cameras']):
        if camera_type is not None and entry.get('type') != camera_type:
            continue
        try:
            rot = np.array(entry['R'], np.float64).reshape(3, 3)
            t_mm = np.array(entry['t'], np.float64).reshape(3) * 10
            intrinsics = np.array(entry['K'], np.float64).reshape(3, 3)
            dist = np.array(entry['distCoef'], np.float64).reshape(-1)
            name = entry['name']
        except (KeyError, ValueError, TypeError) as e:
            raise PanopticFormatError(
                f'{calibration_json_path}: camera #{i} is malformed ({type(e).__name__}: {e})') from e
        cameras[name] = Camera(optical_center=-rot.T @ t_mm, rot_world_to_cam=rot,
                               intrinsic_matrix=intrinsics, distortion_coeffs=dist, world_up=(0, -1, 0))
    return cameras


def load_bodies(body3d_scene_json_path):
    """[(body id, (19, 3) float32 world mm with NaN where confidence <= 0.1)] from body3DScene_*.json."""
    data = _load_json(body3d_scene_json_path)
    if 'bodies' not in data:
        raise PanopticFormatError(f'{body3d_scene_json_path}: no "bodies" list')
    result = []
    for body in data['bodies']:
        values = np.array(body['joints19'], np.float32)
        if values.size != 19 * 4:
            raise PanopticFormatError(
                f'{body3d_scene_json_path}: body {body.get("id")} has {values.size} joint values, expected 76')
        values = values.reshape(19, 4)
        coords = values[:, :3] * 10
        coords[values[:, 3] <= MIN_CONFIDENCE] = np.nan
        result.append((int(body['id']), coords))
    return result


# ------------------------------------------------------------------------------------------------
# The recipe's stages
import logging  # noqa: E402
from pathlib import Path  # noqa: E402

from posepile.preproc import pipeline  # noqa: E402

NAME = 'panoptic'
logger = logging.getLogger(__name__)
SEQUENCES_FILE = Path(__file__).with_name('sequences.txt')
SELECTION_THRESHOLD_MM = 100
BOX_EXPANSION = 1.25
MIN_JOINTS_IN_IMAGE = 6


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def sequences_on_disk(root, sequences_file=SEQUENCES_FILE):
    names = [line.strip() for line in open(sequences_file, encoding='utf-8')
             if line.strip() and not line.startswith('#')]
    present = [n for n in names if (Path(root) / n / f'calibration_{n}.json').exists()]
    missing = sorted(set(names) - set(present))
    if missing:
        logger.info('%d listed sequences are not under %s (skipped): %s', len(missing), root, ', '.join(missing))
    if not present:
        raise FileNotFoundError(f'none of the sequences in {sequences_file} is under {root}')
    return present


def load_tracks(root, sequence):
    """{body id: {frame: (19, 3) mm}} from hdPose3d_stage1_coco19/body3DScene_%08d.json (frame = HD index)."""
    tracks = {}
    folder = Path(root) / sequence / 'hdPose3d_stage1_coco19'
    for path in sorted(folder.glob('body3DScene_*.json')):
        frame = int(path.stem.split('_')[-1])
        for body_id, coords in load_bodies(path):
            tracks.setdefault(body_id, {})[frame] = coords
    return tracks


def select_frames_stage(data_root=None):
    """Per sequence and person: adaptive selection over the person's track with the original's settings
    (AdaptivePoseSampler(100): some joint moved >= 100 mm, and a missing joint counts as moved, so tracks
    with low-confidence joints keep most frames). Writes {sequence: {frame: [body ids]}}."""
    from posepile.util.sampling import select_frames
    out_path = work_dir(data_root) / 'selection.json'
    inputs = sorted(raw_root(data_root).glob('*/hdPose3d_stage1_coco19/*.json'))
    cached = pipeline.load_stage_json(out_path, inputs, [SELECTION_THRESHOLD_MM])
    if cached is not None:
        return cached
    root = raw_root(data_root)
    selection = {}
    for sequence in sequences_on_disk(root):
        per_frame = {}
        for body_id, track in sorted(load_tracks(root, sequence).items()):
            frames = sorted(track)
            kept = select_frames(np.stack([track[f] for f in frames]), SELECTION_THRESHOLD_MM)
            for i in kept:
                per_frame.setdefault(str(frames[i]), []).append(body_id)
        selection[sequence] = per_frame
    pipeline.save_stage_json(selection, out_path, inputs, [SELECTION_THRESHOLD_MM])
    return selection


# HD videos missing upstream (the official release lacks them): skipped with a log line, not an error
UPSTREAM_MISSING_HD_VIDEOS = {('160906_band3', '00_03')} | {
    (s, '00_20') for s in ('171204_pose3', '171204_pose4', '171204_pose5', '160422_haggling1')}


def hd_cameras(root, sequence):
    """The sequence's HD cameras from its calibration, except the videos missing upstream. A camera whose
    video is missing here is NOT dropped silently: its video task reports it (or --skip-broken skips it);
    set PANOPTIC_HD_VIEWS=00_00,00_01,... to build only the views you downloaded."""
    import os
    cameras = load_cameras(Path(root) / sequence / f'calibration_{sequence}.json', camera_type='hd')
    chosen = os.environ.get('PANOPTIC_HD_VIEWS')
    wanted = set(chosen.split(',')) if chosen else None
    result = {}
    for name, camera in sorted(cameras.items()):
        if (sequence, name) in UPSTREAM_MISSING_HD_VIDEOS:
            logger.info('%s: hd_%s.mp4 is missing in the official release: camera skipped', sequence, name)
        elif wanted is None or name in wanted:
            result[name] = camera
    return result


def frame_relpath(sequence, camera_name, frame):
    """A full HD frame's path (written only with --keep-frames; the examples' source name)."""
    return f'panoptic/{sequence}/hdImgs/{camera_name}/{camera_name}_{frame:08d}.jpg'


def make_video_tasks(data_root=None):
    """One VideoTask per sequence and HD camera (body3DScene index = HD frame index): every selected person
    with >= 6 joints in view, box = joints in view x 1.25 (clipped)."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    from posepile.util import boxes
    root = raw_root(data_root)
    selection = select_frames_stage(data_root)
    tasks = []
    for sequence, per_frame in sorted(selection.items()):
        tracks = load_tracks(root, sequence)
        calibration = _load_json(root / sequence / f'calibration_{sequence}.json')
        resolution = {c['name']: c['resolution'] for c in calibration['cameras']}
        for camera_name, camera in hd_cameras(root, sequence).items():
            width, height = resolution[camera_name]
            people = {}
            for frame_str, body_ids in sorted(per_frame.items(), key=lambda kv: int(kv[0])):
                frame = int(frame_str)
                for body_id in body_ids:
                    world = tracks[body_id][frame]
                    pixels = camera.world_to_image(world)
                    visible = np.all(np.isfinite(pixels), 1) & np.all((pixels >= 0) & (pixels < [width, height]), 1)
                    if visible.sum() < MIN_JOINTS_IN_IMAGE:
                        continue
                    box = boxes.intersection(boxes.expand(boxes.bb_of_points(pixels[visible]), BOX_EXPANSION),
                                             boxes.full_box((height, width)))
                    relpath = frame_relpath(sequence, camera_name, frame)
                    example = Pose3DExample(relpath, world, box, camera, scene_name=sequence)
                    crop = relpath.replace('panoptic/', 'panoptic_downscaled/', 1).replace('.jpg', f'_{body_id}.jpg')
                    people.setdefault(frame, []).append(
                        PersonTask(f'{sequence}/{camera_name}/{frame:08d}/{body_id}', example, crop))
            pattern = f'panoptic/{sequence}/hdImgs/{camera_name}/{camera_name}_{{:08d}}.jpg'
            tasks.append(VideoTask(f'{sequence}/{camera_name}', str(root / sequence / 'hdVideos' /
                                                                    f'hd_{camera_name}.mp4'),
                                   people, frame_relpath_pattern=pattern))
    return tasks


@pipeline.cli_options(pipeline.DETECTOR_OPTION, pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION)
def video_stage(shard=None, n_workers=None, detector_spec=None, skip_broken=None, keep_frames=False,
                data_root=None):
    """Crops of every person with >= 6 joints in view of each HD camera, one pass per video. With a detector
    (--detector or $POSEPILE_DETECTOR) the paper's rule: Hungarian assignment at IoU > 0.1 with detections
    less than 2x the joint box's area; unmatched people keep the joint box."""
    from posepile.preproc.video_stage import BoxRule
    detector_spec = pipeline.configured_detector(detector_spec)
    rule = BoxRule('hungarian', min_iou=0.1, max_area_ratio=2.0) if detector_spec else BoxRule('gt')
    pipeline.dataset_video_stage(NAME, make_video_tasks(data_root), shard, n_workers, data_root, box_rule=rule,
                                 detector_spec=detector_spec, skip_broken=skip_broken, keep_frames=keep_frames)


def make_dataset(data_root=None):
    """CMU Panoptic (HD cameras): every person and camera where >= 6 joints are in view, after adaptive
    selection per person; 19 COCO-style joints in mm (low-confidence joints NaN); all in TRAIN."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    examples = pipeline.examples_by_split(NAME, data_root, split_of_key=lambda key: 0)[0]
    return Pose3DDataset(JointInfo(JOINT_NAMES_COCO19, JOINT_EDGES_COCO19), examples)


def assemble(data_root=None):
    """The dataset for get_dataset('panoptic')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.panoptic.main', 'CMU Panoptic stages', {
        'select-frames': select_frames_stage,
        'video': video_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
