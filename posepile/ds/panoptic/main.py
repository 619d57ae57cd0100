"""CMU Panoptic Studio: camera calibration and 3D body readers, and the recipe's stages."""

import numpy as np

from posepile.util.camera import Camera
from posepile.util.errors import InputError

# joints19 of body3DScene_*.json, in the file's order (the toolbox's COCO19: index 2 is the body centre)
FILE_JOINT_NAMES = ('neck,nose,pelv,lsho,lelb,lwri,lhip,lkne,lank,rsho,relb,rwri,rhip,rkne,rank,leye,lear,reye,'
                    'rear').split(',')
# Our order, as the original's: the file's order with pelv (file index 2) moved last
FILE_INDICES = [i for i in range(19) if i != 2] + [2]
JOINT_NAMES_COCO19 = ','.join(FILE_JOINT_NAMES[i] for i in FILE_INDICES)
JOINT_EDGES_COCO19 = 'nose-neck-pelv-rhip-rkne-rank,neck-rsho-relb-rwri,nose-reye-rear'
MIN_CONFIDENCE = 0.1
MIN_VALID_JOINTS = 6  # bodies with fewer valid joints are not used (as the original)
MIN_BODY_EXTENT_MM = 100  # a body of >= 6 valid joints spanning less is in the wrong units (e.g. metres)


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
        for what, values in (('R', rot), ('t', t_mm), ('K', intrinsics), ('distCoef', dist)):
            if not np.isfinite(values).all():
                raise PanopticFormatError(f'{calibration_json_path}: camera {name} has a non-finite {what}')
        cameras[name] = Camera(optical_center=-rot.T @ t_mm, rot_world_to_cam=rot,
                               intrinsic_matrix=intrinsics, distortion_coeffs=dist, world_up=(0, -1, 0))
    return cameras


def load_bodies(body3d_scene_json_path):
    """[(body id, (19, 3) float32 world mm)] from body3DScene_*.json: cm x10, NaN where the confidence is
    <= 0.1, joints in our order (JOINT_NAMES_COCO19: the file's with pelv last). Infinite values,
    coordinates beyond 1 km or a body of >= 6 valid joints spanning < 10 cm (wrong units, corruption) are an
    error naming the file."""
    from posepile.util.validation import check_coords_mm
    data = _load_json(body3d_scene_json_path)
    if not isinstance(data, dict) or not isinstance(data.get('bodies'), list):
        raise PanopticFormatError(f'{body3d_scene_json_path}: no "bodies" list')
    result = []
    for body in data['bodies']:
        if not isinstance(body, dict):
            raise PanopticFormatError(f'{body3d_scene_json_path}: a body is not an object')
        try:
            body_id = int(body['id'])
            values = np.array(body['joints19'], np.float64)
        except (KeyError, ValueError, TypeError) as e:
            raise PanopticFormatError(
                f'{body3d_scene_json_path}: malformed body ({type(e).__name__}: {e})') from e
        if values.size != 19 * 4:
            raise PanopticFormatError(
                f'{body3d_scene_json_path}: body {body_id} has {values.size} joint values, expected 76')
        values = values.reshape(19, 4)
        check_coords_mm(values[:, :3] * 10, body3d_scene_json_path, f'joints19 of body {body_id}')  # file order
        if not np.isfinite(values[:, 3]).all():
            raise PanopticFormatError(f'{body3d_scene_json_path}: non-finite confidence in body {body_id}')
        values = values[FILE_INDICES]
        coords = values[:, :3] * 10
        coords[values[:, 3] <= MIN_CONFIDENCE] = np.nan
        valid = np.isfinite(coords).all(axis=1)
        if valid.sum() >= MIN_VALID_JOINTS:
            extent_mm = np.ptp(coords[valid], axis=0).max()
            if extent_mm < MIN_BODY_EXTENT_MM:
                raise PanopticFormatError(
                    f'{body3d_scene_json_path}: body {body_id} spans only {extent_mm:.3g} mm (joints19 must be '
                    'in cm: wrong units?)')
        result.append((body_id, coords.astype(np.float32)))
    ids = [body_id for body_id, _ in result]
    if len(set(ids)) != len(ids):
        raise PanopticFormatError(f'{body3d_scene_json_path}: body ids repeat ({ids})')
    return result


# ------------------------------------------------------------------------------------------------
# The recipe's stages
import logging  # noqa: E402
from pathlib import Path  # noqa: E402

from posepile.preproc import pipeline  # noqa: E402

NAME = 'panoptic'
logger = logging.getLogger(__name__)
SEQUENCES_FILE = Path(__file__).with_name('sequences.txt')
POSE_FOLDER = 'hdPose3d_stage1_coco19'
POSE_SUBFOLDERS = ('', 'hd')  # some archives keep the body3DScene files under hdPose3d_stage1_coco19/hd/
SELECTION_THRESHOLD_MM = 100
MIN_MOVED_JOINTS = 3
NO_MATCH_COST_MM = 1e9  # Hungarian cost of a pair without a joint valid in both (never kept as a match)
BOX_EXPANSION = 1.25
MIN_JOINTS_IN_IMAGE = 6


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def listed_sequences(sequences_file=SEQUENCES_FILE):
    return [line.strip() for line in open(sequences_file, encoding='utf-8')
            if line.strip() and not line.startswith('#')]


def calibration_path(root, sequence):
    return Path(root) / sequence / f'calibration_{sequence}.json'


def _looks_like_sequence(folder):
    """A folder holding any part of a Panoptic sequence download (calibration, poses, videos)."""
    return folder.is_dir() and (any(folder.glob('calibration_*.json')) or (folder / POSE_FOLDER).exists()
                                or any(folder.glob(f'{POSE_FOLDER}.tar*')) or (folder / 'hdVideos').is_dir())


def sequence_report(root, sequences_file=SEQUENCES_FILE):
    """{'listed': [names], 'present': listed and on disk, 'absent': listed, not on disk, 'unlisted': on disk
    (a folder with a calibration, poses or videos) but not in sequences.txt, so not built}."""
    root = Path(root)
    listed = listed_sequences(sequences_file)
    present = [s for s in listed if _looks_like_sequence(root / s)]
    on_disk = sorted(p.name for p in root.iterdir() if _looks_like_sequence(p)) if root.is_dir() else []
    return {'listed': listed, 'present': present, 'absent': [s for s in listed if s not in present],
            'unlisted': [s for s in on_disk if s not in listed]}


def _shortlist(names, n=5):
    return ', '.join(names[:n]) + (f' and {len(names) - n} more' if len(names) > n else '')


def status_notes(root):
    """Lines for `posepile status`: listed sequences absent, and sequences on disk that are not listed."""
    if not Path(root).is_dir():
        return []
    report = sequence_report(root)
    lines = [f'sequences: {len(report["present"])} of the {len(report["listed"])} listed are present']
    if report['present'] and report['absent']:
        lines[0] += f'; absent: {_shortlist(report["absent"])}'
    if report['unlisted']:
        lines.append(f'not in {SEQUENCES_FILE.name}, ignored: {_shortlist(report["unlisted"])}')
    return lines


def sequences_on_disk(root, sequences_file=SEQUENCES_FILE):
    """The listed sequences present under root; absent and unlisted ones are logged."""
    report = sequence_report(root, sequences_file)
    if report['absent']:
        logger.info('%d of the %d sequences of %s are not under %s (skipped): %s', len(report['absent']),
                    len(report['listed']), sequences_file, root, ', '.join(report['absent']))
    if report['unlisted']:
        logger.warning('%d sequences under %s are not listed in %s and are ignored: %s', len(report['unlisted']),
                       root, sequences_file, ', '.join(report['unlisted']))
    if not report['present']:
        raise FileNotFoundError(f'none of the sequences in {sequences_file} is under {root}')
    return report['present']


def pose_files(root, sequence):
    """{HD frame index: path} of hdPose3d_stage1_coco19/body3DScene_%08d.json and of the same under hd/
    (both layouts occur in the release, as the original reads both)."""
    folder = Path(root) / sequence / POSE_FOLDER
    result = {}
    for sub in POSE_SUBFOLDERS:
        for path in sorted((folder / sub).glob('body3DScene_*.json')):
            try:
                frame = int(path.stem.split('_')[-1])
            except ValueError:
                raise PanopticFormatError(f'{path}: no frame index in the file name') from None
            if frame in result:
                logger.warning('%s: frame %d is also in %s: that one is used', path, frame, result[frame])
                continue
            result[frame] = path
    return dict(sorted(result.items()))


def check_sequence(root, sequence):
    """Raise PanopticFormatError naming the missing file when the sequence lacks its calibration or poses."""
    path = calibration_path(root, sequence)
    if not path.is_file():
        raise PanopticFormatError(f'{path} not found: sequence {sequence} cannot be built (download it again, '
                                  'or set SKIP_BROKEN=1 to build the other sequences)')
    folder = Path(root) / sequence / POSE_FOLDER
    if not pose_files(root, sequence):
        raise PanopticFormatError(f'{folder}: no body3DScene_*.json (nor under {POSE_FOLDER}/hd/): extract '
                                  f'{POSE_FOLDER}.tar, or set SKIP_BROKEN=1 to build the other sequences')


def select_people(frames):
    """The original's Panoptic selection. frames: [(frame, [(body id, (19, 3) mm)])] in frame order.
    Returns {frame: [kept body ids]}.

    Per frame, bodies with >= 6 valid joints. One remembered pose per track (the pose last kept). The frame's
    people are matched to the remembered poses by Hungarian assignment on the mean joint distance (over joints
    valid in both). A matched person is kept when >= 3 joints moved >= 100 mm from the remembered pose (NaN
    distances ignored); the kept pose then replaces the remembered one. Unmatched people (more people than
    tracks, or no joint valid in both: ours, the original's cost is NaN there) are kept and start a track.
    Body ids of the file are not used. Real check: the 20 frames of 160906_band1 keep 11 person-frames.
    """
    from scipy.optimize import linear_sum_assignment
    remembered = []
    kept = {}
    for frame, bodies in frames:
        people = [(i, c) for i, c in bodies if np.isfinite(c).all(axis=1).sum() >= MIN_VALID_JOINTS]
        if not people:
            continue
        matches = {}
        if remembered:
            distances = np.linalg.norm(np.stack([c for _, c in people])[:, np.newaxis] -
                                       np.stack(remembered)[np.newaxis], axis=-1)  # (people, tracks, joints)
            n_common = np.isfinite(distances).sum(axis=-1)
            cost = np.where(n_common > 0, np.nansum(distances, axis=-1) / np.maximum(n_common, 1),
                            NO_MATCH_COST_MM)
            for p, t in zip(*linear_sum_assignment(cost)):
                if n_common[p, t] > 0:
                    matches[p] = t
        for p, (body_id, coords) in enumerate(people):
            if p in matches:
                moved = np.linalg.norm(coords - remembered[matches[p]], axis=-1) >= SELECTION_THRESHOLD_MM
                if np.count_nonzero(moved) < MIN_MOVED_JOINTS:  # NaN >= 100 is False: NaN ignored
                    continue
                remembered[matches[p]] = coords
            else:
                remembered.append(coords)
            kept.setdefault(frame, []).append(body_id)
    return kept


def select_frames_stage(data_root=None, skip_broken=None):
    """Per sequence, the person-frames to crop (select_people). A listed sequence on disk without its
    calibration or poses, or with a bad pose file, is an error naming the file; with SKIP_BROKEN=1
    (--skip-broken) it is skipped and listed (here and at the end of assemble).
    Writes {'sequences': {sequence: {frame: [body ids]}}, 'skipped': {sequence: reason}}."""
    skip_broken = pipeline.skip_broken_default(skip_broken)
    root = raw_root(data_root)
    out_path = work_dir(data_root) / 'selection.json'
    sequences = sequences_on_disk(root)
    inputs = [SEQUENCES_FILE] + [p for s in sequences for p in
                                 [calibration_path(root, s), *pose_files(root, s).values()] if p.exists()]
    options = [SELECTION_THRESHOLD_MM, MIN_MOVED_JOINTS, MIN_VALID_JOINTS, skip_broken, sequences]
    cached = pipeline.load_stage_json(out_path, inputs, options)
    if cached is not None:
        _log_skipped(cached)
        return cached
    selection = {'sequences': {}, 'skipped': {}}
    for sequence in sequences:
        try:
            check_sequence(root, sequence)
            frames = [(frame, load_bodies(path)) for frame, path in pose_files(root, sequence).items()]
        except InputError as e:
            if not skip_broken:
                raise
            selection['skipped'][sequence] = str(e)
            continue
        kept = select_people(frames)
        selection['sequences'][sequence] = {str(frame): ids for frame, ids in kept.items()}
        logger.info('%s: %d person-frames kept of %d frames', sequence, sum(map(len, kept.values())), len(frames))
    _log_skipped(selection)
    pipeline.save_stage_json(selection, out_path, inputs, options)
    return selection


def _log_skipped(selection):
    for sequence, reason in selection.get('skipped', {}).items():
        logger.warning('skipped sequence %s (SKIP_BROKEN=1): %s', sequence, reason)


# HD videos missing upstream (the official release lacks them): skipped with a log line, not an error
UPSTREAM_MISSING_HD_VIDEOS = {('160906_band3', '00_03')} | {
    (s, '00_20') for s in ('171204_pose3', '171204_pose4', '171204_pose5', '160422_haggling1')}


def hd_cameras(root, sequence):
    """The sequence's HD cameras from its calibration, except the videos missing upstream. A camera whose
    video is missing here is NOT dropped silently: its video task reports it (or --skip-broken skips it);
    set PANOPTIC_HD_VIEWS=00_00,00_01,... to build only the views you downloaded."""
    import os
    cameras = load_cameras(calibration_path(root, sequence), camera_type='hd')
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


def person_in_view(camera, world_mm, image_size):
    """(enough joints in view, box) as the original: >= 6 valid joints in front of the camera and inside the
    image; box = all valid joints' projections x 1.25 (not clipped to the image)."""
    from posepile.util import boxes
    width, height = image_size
    pixels = camera.world_to_image(world_mm)
    depth = camera.world_to_camera(world_mm)[:, 2]
    finite = np.all(np.isfinite(pixels), axis=1)
    inside = finite & (depth > 0) & np.all((pixels >= 0) & (pixels < [width, height]), axis=1)
    return inside.sum() >= MIN_JOINTS_IN_IMAGE, boxes.expand(boxes.bb_of_points(pixels[finite]), BOX_EXPANSION)


def make_video_tasks(data_root=None, skip_broken=None):
    """One VideoTask per sequence and HD camera (body3DScene index = HD frame index): every selected person
    with >= 6 joints in view, box = all valid joints x 1.25 (person_in_view)."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    root = raw_root(data_root)
    selection = select_frames_stage(data_root, skip_broken)
    tasks = []
    for sequence, per_frame in sorted(selection['sequences'].items()):
        files = pose_files(root, sequence)
        bodies = {int(f): dict(load_bodies(files[int(f)])) for f in per_frame}
        calibration = _load_json(calibration_path(root, sequence))
        resolution = {c['name']: c['resolution'] for c in calibration['cameras']}
        for camera_name, camera in hd_cameras(root, sequence).items():
            people = {}
            for frame_str, body_ids in sorted(per_frame.items(), key=lambda kv: int(kv[0])):
                frame = int(frame_str)
                for body_id in body_ids:
                    world = bodies[frame][body_id]
                    enough_in_view, box = person_in_view(camera, world, resolution[camera_name])
                    if not enough_in_view:
                        continue
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


def box_rule(detector_spec):
    """The original's: with a detector, Hungarian assignment at IoU > 0.1 with detections of area < 2x the
    GT box, the detection box used, unmatched people dropped; without, the GT box."""
    from posepile.preproc.video_stage import BoxRule
    if not detector_spec:
        return BoxRule('gt')
    return BoxRule('hungarian', min_iou=0.1, max_area_ratio=2.0, fallback_to_gt=False)


@pipeline.cli_options(pipeline.DETECTOR_OPTION, pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION)
def video_stage(shard=None, n_workers=None, detector_spec=None, skip_broken=None, keep_frames=False,
                data_root=None):
    """Crops of every selected person with >= 6 joints in view of each HD camera, one pass per video; boxes by
    box_rule (a detector from --detector or $POSEPILE_DETECTOR)."""
    detector_spec = pipeline.configured_detector(detector_spec)
    pipeline.dataset_video_stage(NAME, make_video_tasks(data_root, skip_broken), shard, n_workers, data_root,
                                 box_rule=box_rule(detector_spec), detector_spec=detector_spec,
                                 skip_broken=skip_broken, keep_frames=keep_frames)


def make_dataset(data_root=None):
    """CMU Panoptic (HD cameras): the selected person-frames (select_people) in every HD camera where >= 6
    joints are in view; 19 COCO-style joints in mm, pelv last (low-confidence joints NaN); all in TRAIN."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    examples = pipeline.examples_by_split(NAME, data_root, split_of_key=lambda key: 0)[0]
    return Pose3DDataset(JointInfo(JOINT_NAMES_COCO19, JOINT_EDGES_COCO19), examples)


def assemble(data_root=None):
    """The dataset for get_dataset('panoptic')."""
    from posepile.util import fileio
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})
    selection_path = work_dir(data_root) / 'selection.json'
    if selection_path.exists():  # the sequences skipped with SKIP_BROKEN=1, listed last
        _log_skipped(fileio.load_json(selection_path).get('value') or {})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.panoptic.main', 'CMU Panoptic stages', {
        'select-frames': select_frames_stage,
        'video': video_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
