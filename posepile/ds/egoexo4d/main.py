"""Ego-Exo4D (Aria glasses + GoPro exo cameras; 61-point body + hands pseudo-GT): readers of the raw release and the
recipe's stages.

Raw layout under $DATA_ROOT/egoexo4d, as the `egoexo` downloader writes it and the official code reads it
(facebookresearch/Ego4d notebooks/egoexo/tutorials/pose_tutorial.md and ego4d/internal/human_pose/camera.py;
EGO4D/ego-exo4d-egopose bodypose/data/dataset_egoexo.py and handpose/data_preparation/dataloader.py; the EgoPose
page of docs.ego-exo4d-data.org; Project Aria's Ego-Exo4D data-format page):

    takes.json                                          [{take_uid, take_name, root_dir 'takes/<take_name>',
                                                          frame_aligned_videos: {camera: {stream: {relative_path}}}}]
    annotations/ego_pose/<split>/body/automatic/<take_uid>.json   {frame: [{annotation3D: {'left-shoulder': {x, y,
                                                          z, num_views_for_3d}, ...}}]} (17 COCO joints, metres,
                                                          world frame; one list entry per annotated person)
    annotations/ego_pose/<split>/hand/automatic/<take_uid>.json   the same with 'left_wrist', 'left_thumb_1'..
                                                          'right_pinky_4' (2 x 21)
    annotations/ego_pose/<split>/camera_pose/<take_uid>.json      {'metadata': {...}, 'aria01': {'camera_intrinsics'
                                                          (of an undistorted image: not used), 'camera_extrinsics':
                                                          {frame: 3x4 world -> Aria RGB camera, metres}}, 'cam01': ...}
    takes/<take_name>/trajectory/gopro_calibs.csv       per GoPro: cam_uid, {tx,ty,tz,qx,qy,qz,qw}_world_cam
                                                          (camera -> world, metres), image_width, image_height,
                                                          intrinsics_type KANNALABRANDTK3, intrinsics_0..7 = fx fy cx
                                                          cy k0..k3 (the toolkit makes them a COLMAP OPENCV_FISHEYE
                                                          camera), start_frame_idx, end_frame_idx (-1: whole video)
    takes/<take_name>/trajectory/online_calibration.jsonl   Aria MPS online calibration; the 'camera-rgb' entry's
                                                          FisheyeRadTanThinPrism (Fisheye624) Params at the 2880 px
                                                          full-resolution sensor
    takes/<take_name>/<relative_path>                   frame-aligned videos: '<aria>_214-1.mp4' (stream 'rgb', in
                                                          the sensor orientation), 'cam01.mp4' (stream '0'); frame i of
                                                          every video is annotation frame i

Cameras: exo = the GoPro's KB3 lens as posepile's 'fisheye' model (the same polynomial as OpenCV fisheye) with its
released pose; ego = the annotation's per-frame Aria RGB extrinsics and the take's online Fisheye624 calibration
('fisheye624'), scaled from the 2880 px sensor to the video's width (1408 px in the release). Both are read at the
raw frames; the original instead recovered a focal length from the undistorted-image intrinsics by a bounded search
and handed the fisheye coefficients to the OpenCV (pinhole polynomial) model (nlf-era-facts 4).

Rules (original-posepile-facts "egoexo4d"): the train and val annotations (test skipped); frames with several
annotated people skipped; joints m -> mm; 61 joints = 17 COCO + neck + pelvis (shoulder / hip midpoints, NaN when
one side is missing) + 2 x 21 hand joints; per view a joint is valid when in front of the camera, inside the lens'
valid field and on the frame; >= 6 valid joints; the sampler (100 mm, buffer 200) per take and view on the
camera-frame joints; box = the valid projected joints' box x1.05, or with a detector ($POSEPILE_DETECTOR) the
Hungarian-matched detection at IoU >= 0.2 that holds >= 6 of the valid projected joints (else the person is
dropped; the shared rule of posepile.preproc.video_stage.BoxRule). Ego views: invalid joints are NaN and the
crops stay inside the in-front (90 deg) field. No drawing ever touches the frames (the original burned its debug
box and joint circles into the training crops).
"""
import csv
import json
import logging

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'egoexo4d'
SPLITS = {0: 'train', 1: 'val'}  # the test annotations are not used (the original skips them)
BODY_SOURCE_NAMES = ['nose', 'left-eye', 'right-eye', 'left-ear', 'right-ear', 'left-shoulder', 'right-shoulder',
                     'left-elbow', 'right-elbow', 'left-wrist', 'right-wrist', 'left-hip', 'right-hip', 'left-knee',
                     'right-knee', 'left-ankle', 'right-ankle']
BODY_NAMES = 'nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank,neck,pelv'
FINGERS = ('thumb', 'index', 'middle', 'ring', 'pinky')
HAND_SOURCE_PARTS = ['wrist'] + [f'{finger}_{i}' for finger in FINGERS for i in range(1, 5)]
HAND_SOURCE_NAMES = [f'{side}_{part}' for side in ('left', 'right') for part in HAND_SOURCE_PARTS]
HAND_NAMES = [f'{side[0]}{"hand" if part == "wrist" else part.replace("_", "")}'
              for side in ('left', 'right') for part in HAND_SOURCE_PARTS]
JOINT_NAMES = BODY_NAMES.split(',') + HAND_NAMES
N_JOINTS = len(JOINT_NAMES)  # 61
_HAND_EDGES = ','.join(f'{s}wri-{s}hand-{s}{f}1-{s}{f}2-{s}{f}3-{s}{f}4' for s in 'lr' for f in FINGERS)
JOINT_EDGES = ('lank-lkne-lhip-pelv-rhip-rkne-rank,lwri-lelb-lsho-neck-rsho-relb-rwri,pelv-neck-nose,'
               'nose-leye-lear,nose-reye-rear,' + _HAND_EDGES)
M_TO_MM = 1000.0
MIN_VALID_JOINTS = 6
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 200
GT_BOX_EXPANSION = 1.05
MIN_DETECTION_IOU = 0.2
MIN_JOINTS_IN_DETECTION = 6
ARIA_RGB_CALIBRATION_WIDTH = 2880  # the online calibration's camera-rgb is for the full-resolution sensor
ARIA_RGB_VIDEO_WIDTH = 1408  # the released Aria RGB videos (used when a video cannot be probed)
EGO_MAX_ANGLE_DEG = 90.0  # ego joints and crops: in front of the camera


class EgoExo4DFormatError(InputError):
    """A raw Ego-Exo4D file is missing, unreadable or malformed (one line naming the file)."""


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def release_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


# ------------------------------------------------------------------------------------------------
# Readers
def _load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise EgoExo4DFormatError(f'{path}: file not found') from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise EgoExo4DFormatError(f'{path}: not readable JSON ({type(e).__name__}: {str(e)[:80]})') from None


def load_takes(path):
    """{take_uid: take dict} of takes.json."""
    takes = _load_json(path)
    if not isinstance(takes, list) or not all(isinstance(t, dict) and 'take_uid' in t for t in takes):
        raise EgoExo4DFormatError(f'{path}: expected a list of takes with take_uid')
    return {t['take_uid']: t for t in takes}


def _point(entry, path, frame, name):
    try:
        values = [float(entry[k]) for k in 'xyz']
    except (KeyError, TypeError, ValueError):
        raise EgoExo4DFormatError(f'{path}: frame {frame}: joint {name} lacks numeric x, y, z') from None
    return values


def load_pose_annotation(path, source_names):
    """{frame: (n_people, len(source_names), 3) m} of a body or hand annotation JSON (missing joints NaN)."""
    data = _load_json(path)
    if not isinstance(data, dict):
        raise EgoExo4DFormatError(f'{path}: expected {{frame: [person annotations]}}')
    result = {}
    for frame, people in data.items():
        try:
            frame_index = int(frame)
        except ValueError:
            raise EgoExo4DFormatError(f'{path}: key {frame!r} is not a frame number') from None
        if not isinstance(people, list):
            raise EgoExo4DFormatError(f'{path}: frame {frame}: expected a list of person annotations')
        joints = np.full((len(people), len(source_names), 3), np.nan)
        for p, person in enumerate(people):
            points = person.get('annotation3D') if isinstance(person, dict) else None
            if not isinstance(points, dict):
                raise EgoExo4DFormatError(f'{path}: frame {frame}: a person without an annotation3D dict')
            for j, name in enumerate(source_names):
                if name in points:
                    joints[p, j] = _point(points[name], path, frame, name)
        result[frame_index] = joints
    return result


def load_aria_extrinsics(path):
    """{aria name: {frame: 3x4 world -> camera (m)}} of a camera_pose JSON."""
    data = _load_json(path)
    if not isinstance(data, dict):
        raise EgoExo4DFormatError(f'{path}: expected {{camera: {{camera_intrinsics, camera_extrinsics}}}}')
    result = {}
    for name, value in data.items():
        if not name.startswith('aria'):
            continue
        extrinsics = value.get('camera_extrinsics') if isinstance(value, dict) else None
        if not isinstance(extrinsics, dict):
            raise EgoExo4DFormatError(f'{path}: {name} has no per-frame camera_extrinsics')
        frames = {}
        for frame, matrix in extrinsics.items():
            try:
                matrix = np.asarray(matrix, np.float64).reshape(3, 4)
                frame = int(frame)
            except (TypeError, ValueError):
                raise EgoExo4DFormatError(f'{path}: {name} frame {frame}: extrinsics are not a 3x4 matrix') from None
            if not np.all(np.isfinite(matrix)) or abs(np.linalg.det(matrix[:, :3]) - 1) > 1e-3:
                raise EgoExo4DFormatError(f'{path}: {name} frame {frame}: extrinsics are not a rotation and '
                                          'translation')
            frames[frame] = matrix
        result[name] = frames
    return result


GOPRO_COLUMNS = ['cam_uid', 'image_width', 'image_height', 'intrinsics_type'] + \
    [f'{a}_world_cam' for a in ('tx', 'ty', 'tz', 'qx', 'qy', 'qz', 'qw')] + [f'intrinsics_{i}' for i in range(8)]


def load_gopro_calibrations(path):
    """{cam_uid: dict(params (8,) fx fy cx cy k0..k3, R_world_cam, t_world_cam_m, width, height, start, end)}."""
    from scipy.spatial.transform import Rotation
    try:
        with open(path, newline='') as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise EgoExo4DFormatError(f'{path}: file not found') from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise EgoExo4DFormatError(f'{path}: not a readable CSV ({e})') from None
    result = {}
    for i, row in enumerate(rows):
        missing = [c for c in GOPRO_COLUMNS if not row.get(c)]
        if missing:
            raise EgoExo4DFormatError(f'{path}: row {i + 1} lacks {", ".join(missing[:3])}')
        if row['intrinsics_type'] != 'KANNALABRANDTK3':
            raise EgoExo4DFormatError(f'{path}: {row["cam_uid"]} has intrinsics_type {row["intrinsics_type"]}, '
                                      'expected KANNALABRANDTK3')
        try:
            numbers = {c: float(row[c]) for c in GOPRO_COLUMNS[1:] if c != 'intrinsics_type'}
            start, end = int(row.get('start_frame_idx') or -1), int(row.get('end_frame_idx') or -1)
        except ValueError:
            raise EgoExo4DFormatError(f'{path}: {row["cam_uid"]}: a calibration value is not a number') from None
        quaternion = np.array([numbers[f'q{a}_world_cam'] for a in 'xyzw'])
        if not all(np.isfinite(list(numbers.values()))) or np.linalg.norm(quaternion) < 1e-6:
            raise EgoExo4DFormatError(f'{path}: {row["cam_uid"]}: non-finite calibration or zero quaternion')
        result[row['cam_uid']] = dict(
            params=np.array([numbers[f'intrinsics_{k}'] for k in range(8)]),
            R_world_cam=Rotation.from_quat(quaternion).as_matrix(),
            t_world_cam_m=np.array([numbers[f't{a}_world_cam'] for a in 'xyz']),
            width=int(numbers['image_width']), height=int(numbers['image_height']), start=start, end=end)
    return result


def load_aria_rgb_params(path):
    """The 15 Fisheye624 Params of the first 'camera-rgb' entry of an online_calibration.jsonl."""
    try:
        with open(path) as f:
            for line_number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    for camera in record['CameraCalibrations']:
                        if camera['Label'] == 'camera-rgb':
                            if camera['Projection']['Name'] != 'FisheyeRadTanThinPrism':
                                raise EgoExo4DFormatError(f'{path}: camera-rgb projection is '
                                                          f'{camera["Projection"]["Name"]}, expected '
                                                          'FisheyeRadTanThinPrism')
                            params = np.array(camera['Projection']['Params'], np.float64)
                            if params.shape != (15,) or not np.all(np.isfinite(params)):
                                raise EgoExo4DFormatError(f'{path}: camera-rgb has {params.size} Params, '
                                                          'expected 15')
                            return params
                except (ValueError, KeyError, TypeError) as e:
                    raise EgoExo4DFormatError(f'{path}: line {line_number} is not an Aria calibration record '
                                              f'({type(e).__name__}: {str(e)[:60]})') from None
    except FileNotFoundError:
        raise EgoExo4DFormatError(f'{path}: file not found') from None
    except (OSError, UnicodeDecodeError) as e:
        raise EgoExo4DFormatError(f'{path}: cannot read ({e})') from None
    raise EgoExo4DFormatError(f'{path}: no camera-rgb calibration')


def video_width(path, default):
    """The width (px) of a video's first video stream, or `default` when it cannot be opened (the video stage
    then reports the video as broken)."""
    try:
        import av
        with av.open(str(path)) as container:
            return int(container.streams.video[0].codec_context.width)
    except Exception:  # noqa: BLE001 - a missing or broken video is reported by the video stage
        return default


# ------------------------------------------------------------------------------------------------
# Cameras
def exo_camera(calibration, width=None):
    """posepile 'fisheye' Camera of a GoPro calibration (scaled when the video is `width` px wide)."""
    from posepile.util.camera import Camera
    fx, fy, cx, cy = calibration['params'][:4]
    scale = 1.0 if width is None else width / calibration['width']
    intrinsics = np.array([[fx * scale, 0, cx * scale], [0, fy * scale, cy * scale], [0, 0, 1]])
    return Camera(calibration['t_world_cam_m'] * M_TO_MM, calibration['R_world_cam'].T, intrinsics,
                  calibration['params'][4:8], world_up=(0, 0, 1), distortion_model='fisheye')


def aria_rgb_params_at_width(params, width):
    """Fisheye624 Params of the 2880 px calibration scaled to a `width` px video (focal and principal point)."""
    params = np.array(params, np.float64)
    params[:3] *= width / ARIA_RGB_CALIBRATION_WIDTH
    return params


def ego_camera(params, extrinsics):
    """posepile 'fisheye624' Camera of the Aria RGB Params (at the video's size) and a 3x4 world -> camera (m)."""
    from posepile.util.camera import camera_from_fisheye624_params
    rotation = extrinsics[:, :3]
    centre_mm = -rotation.T @ extrinsics[:, 3] * M_TO_MM
    return camera_from_fisheye624_params(params, centre_mm, rotation, world_up=(0, 0, 1))


# ------------------------------------------------------------------------------------------------
# Rules
def frame_joints(body, hands):
    """(61, 3) mm of one frame's single person, or None when several people are annotated."""
    if (body is not None and len(body) > 1) or (hands is not None and len(hands) > 1):
        return None
    if (body is None or len(body) == 0) and (hands is None or len(hands) == 0):
        return None
    joints = np.full((N_JOINTS, 3), np.nan)
    if body is not None and len(body):
        joints[:17] = body[0] * M_TO_MM
        joints[17] = (joints[5] + joints[6]) / 2  # neck: the shoulders' midpoint
        joints[18] = (joints[11] + joints[12]) / 2  # pelvis: the hips' midpoint
    if hands is not None and len(hands):
        joints[19:] = hands[0] * M_TO_MM
    finite = joints[np.isfinite(joints)]
    if finite.size and np.abs(finite).max() > 1e6:
        raise ValueError(f'joints up to {np.abs(finite).max():.0f} mm: not metres')
    return joints


def valid_joints(camera, joints_mm, imshape, max_angle_deg=None):
    """Bool (61,): finite joints in front of the camera, inside the lens' valid field and on the frame."""
    cam = camera.world_to_camera(joints_mm)
    with np.errstate(invalid='ignore'):
        return camera.is_in_field(cam, imshape=imshape, max_angle_from_axis_deg=max_angle_deg) & (cam[:, 2] > 0)


def valid_projected_joints(camera, joints_mm, valid):
    """(61, 2) px: the valid joints' projections, NaN for the others (what the detection must hold)."""
    pixels = np.full((len(joints_mm), 2), np.nan)
    pixels[valid] = camera.world_to_image(joints_mm[valid])
    return pixels


def gt_box(camera, joints_mm, valid):
    from posepile.util import boxes
    return boxes.expand(boxes.bb_of_points(camera.world_to_image(joints_mm[valid])), GT_BOX_EXPANSION)


def selected_frames(camera_frame_poses):
    from posepile.util.sampling import select_frames
    return select_frames(np.asarray(camera_frame_poses), SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER,
                         check_validity=True, nan_unchanged=True)


def crop_relpath(take_name, camera_name, frame):
    return f'{NAME}_downscaled/{take_name}/{camera_name}/{frame:06d}.jpg'


def frame_relpath_pattern(take_name, camera_name):
    return f'{NAME}/takes/{take_name}/frames/{camera_name}/{{:06d}}.jpg'


def _video(take, camera_name, stream, root, path):
    try:
        relative = take['frame_aligned_videos'][camera_name][stream]['relative_path']
    except (KeyError, TypeError):
        return None
    if not isinstance(relative, str):
        raise EgoExo4DFormatError(f'{path}: {take["take_name"]}: {camera_name} video path is not a string')
    return root / take['root_dir'] / relative


def take_views(root, take, split_dir, take_uid, takes_path):
    """[(view, camera name, video path, {frame: camera or None})] of one take."""
    trajectory = root / take['root_dir'] / 'trajectory'
    views = []
    for camera_name, calibration in sorted(load_gopro_calibrations(trajectory / 'gopro_calibs.csv').items()):
        path = _video(take, camera_name, '0', root, takes_path)
        if path is None:
            continue
        width = video_width(path, calibration['width'])
        camera = exo_camera(calibration, width if width != calibration['width'] else None)
        height = int(round(calibration['height'] * width / calibration['width']))
        views.append(('exo', camera_name, path, (height, width), calibration, camera))
    extrinsics = load_aria_extrinsics(split_dir / 'camera_pose' / f'{take_uid}.json')
    if extrinsics:
        params = load_aria_rgb_params(trajectory / 'online_calibration.jsonl')
        for aria, frames in sorted(extrinsics.items()):
            path = _video(take, aria, 'rgb', root, takes_path)
            if path is None:
                continue
            width = video_width(path, ARIA_RGB_VIDEO_WIDTH)
            views.append(('ego', aria, path, (width, width), aria_rgb_params_at_width(params, width), frames))
    return views


def make_video_tasks(data_root=None):
    """One VideoTask per (take, camera): its selected frames, each with the GT box; (exo tasks, ego tasks)."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    root = release_root(data_root)
    takes_path = root / 'takes.json'
    if not takes_path.exists():
        raise FileNotFoundError(f'{takes_path} not found: download the Ego-Exo4D metadata and annotations '
                                '(main.sh step 1)')
    takes = load_takes(takes_path)
    tasks = {'exo': [], 'ego': []}
    n_multi = 0
    for split, split_name in SPLITS.items():
        split_dir = root / 'annotations' / 'ego_pose' / split_name
        body_dir = split_dir / 'body' / 'automatic'
        uids = sorted(p.stem for p in body_dir.glob('*.json')) if body_dir.is_dir() else []
        for take_uid in uids:
            if take_uid not in takes:
                raise EgoExo4DFormatError(f'{body_dir / (take_uid + ".json")}: take {take_uid} is not in '
                                          f'{takes_path}')
            take = takes[take_uid]
            body_path = body_dir / f'{take_uid}.json'
            body = load_pose_annotation(body_path, BODY_SOURCE_NAMES)
            hand_path = split_dir / 'hand' / 'automatic' / f'{take_uid}.json'
            hands = load_pose_annotation(hand_path, HAND_SOURCE_NAMES) if hand_path.exists() else {}
            poses = {}
            for frame in sorted(set(body) | set(hands)):
                try:
                    joints = frame_joints(body.get(frame), hands.get(frame))
                except ValueError as e:
                    raise EgoExo4DFormatError(f'{body_path}: frame {frame}: {e}') from None
                if joints is None:
                    n_multi += 1
                    continue
                poses[frame] = joints
            for view, camera_name, video_path, imshape, calibration, cameras in take_views(
                    root, take, split_dir, take_uid, takes_path):
                candidates = []
                for frame, joints in poses.items():
                    if view == 'exo':
                        if calibration['start'] >= 0 and not calibration['start'] <= frame <= calibration['end']:
                            continue
                        camera = cameras
                        valid = valid_joints(camera, joints, imshape)
                    else:
                        if frame not in cameras:
                            continue
                        camera = ego_camera(calibration, cameras[frame])
                        valid = valid_joints(camera, joints, imshape, EGO_MAX_ANGLE_DEG)
                    if np.count_nonzero(valid) >= MIN_VALID_JOINTS:
                        candidates.append((frame, camera, joints, valid))
                if not candidates:
                    continue
                # the sampler sees what the example keeps: ego joints out of the view are NaN
                kept = selected_frames([np.where(v[:, None] | (view == 'exo'), c.world_to_camera(j), np.nan)
                                        for _, c, j, v in candidates])
                frames = {}
                for index in kept:
                    frame, camera, joints, valid = candidates[int(index)]
                    world = joints.copy()
                    if view == 'ego':
                        world[~valid] = np.nan
                    example = Pose3DExample(frame_relpath_pattern(take['take_name'], camera_name).format(frame),
                                            world.astype(np.float32), gt_box(camera, joints, valid), camera,
                                            scene_name=take['take_name'])
                    key = f'{split}/{view}/{take["take_name"]}/{camera_name}/{frame:06d}'
                    frames[frame] = [PersonTask(key, example, crop_relpath(take['take_name'], camera_name, frame),
                                                joints2d=valid_projected_joints(camera, joints, valid))]
                tasks[view].append(VideoTask(f'{take["take_name"]}/{camera_name}',
                                             str(video_path.relative_to(root.parent)), frames,
                                             frame_relpath_pattern=frame_relpath_pattern(take['take_name'],
                                                                                         camera_name)))
    logger.info('%d exo and %d ego videos, %d crops selected; %d frames with several people skipped',
                len(tasks['exo']), len(tasks['ego']),
                sum(len(t.frames) for ts in tasks.values() for t in ts), n_multi)
    if not tasks['exo'] and not tasks['ego']:
        raise FileNotFoundError(f'{root}/annotations/ego_pose/{{train,val}}/body/automatic: no annotated take with '
                                'its videos: download the annotations and the takes (main.sh step 1)')
    return tasks


def box_rule(detector_spec):
    """The projected valid joints x1.05 without a detector; with one the Hungarian match at IoU >= 0.2 holding
    >= 6 of the valid projected joints, else dropped."""
    from posepile.preproc.video_stage import BoxRule
    if not detector_spec:
        return BoxRule('gt')
    return BoxRule('hungarian', min_iou=MIN_DETECTION_IOU, fallback_to_gt=False,
                   min_joints_inside=MIN_JOINTS_IN_DETECTION)


SUBDIRS = {'exo': 'videos_exo', 'ego': 'videos_ego'}


# ------------------------------------------------------------------------------------------------
# Stages
@pipeline.cli_options(pipeline.DETECTOR_OPTION, pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION)
def video_stage(detector_spec=None, shard=None, n_workers=None, skip_broken=None, keep_frames=False,
                data_root=None):
    """One pass per take and camera video: pinhole crops through the fisheye lenses of the selected frames (ego
    crops inside the in-front field)."""
    detector_spec = pipeline.configured_detector(detector_spec)
    tasks = make_video_tasks(data_root)
    for view, subdir in SUBDIRS.items():
        options = dict(max_angle_from_axis_deg=EGO_MAX_ANGLE_DEG) if view == 'ego' else {}
        pipeline.dataset_video_stage(NAME, tasks[view], shard, n_workers, data_root, subdir=subdir,
                                     detector_spec=detector_spec, box_rule=box_rule(detector_spec),
                                     skip_broken=skip_broken, keep_frames=keep_frames, **options)


def make_dataset(data_root=None):
    """Ego-Exo4D: 61 world joints (mm) of exo and ego views; train = the train annotations, validation = val."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    examples = {0: [], 1: [], 2: []}
    for subdir in SUBDIRS.values():
        for key, example in sorted(pipeline.recipe_crop_results(NAME, data_root, subdir), key=lambda kv: kv[0]):
            examples[int(key.split('/')[0])].append(example)
    return Pose3DDataset(JointInfo(','.join(JOINT_NAMES), JOINT_EDGES), examples[0], examples[1])


def assemble(data_root=None):
    """The dataset for get_dataset('egoexo4d')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.egoexo4d.main', 'Ego-Exo4D stages', {
        'video': video_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
