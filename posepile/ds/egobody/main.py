"""EgoBody (two interacting people; 5 Azure Kinects + the camera wearer's HoloLens2 PV camera; SMPL-X per person):
readers of the raw release and the recipe's stages.

Raw layout under $DATA_ROOT/egobody (the official README and viewers, sanweiliti/EgoBody README.md,
release_renderer_kinect.py, release_renderer_fpv_gaze.py, utils.py):

    data_info_release.csv    recording_name, body_idx_0 / body_idx_1 ('<idx> <gender>'), body_idx_fpv ('<idx>
                             <gender>' of the interactee), start_frame, end_frame, scene_name
    data_splits.csv          columns train, val, test: recording names (shorter columns padded with blanks)
    kinect_cam_params/kinect_<view>/Color.json   view in master, sub_1..sub_4: camera_mtx (3x3), k (OpenCV
                             distortion; the colour frames are distorted: the viewer undistorts them first)
    calibrations/<rec>/cal_trans/kinect_<11|13|14|15>to12_color.json  {'trans': 4x4} sub_k colour -> master colour
                             (11 = sub_1, 13 = sub_2, 14 = sub_3, 15 = sub_4; the last two only in 2022)
    calibrations/<rec>/cal_trans/holo_to_kinect12.json                 {'trans'} HoloLens world -> master colour
    calibrations/<rec>/cal_trans/kinect12_to_world/<scene>.json        {'trans'} master colour -> scene (world)
    smplx_interactee_<split>/<rec>/body_idx_<i>/results/frame_<NNNNN>/000.pkl   SMPL-X fit in the master colour
    smplx_camera_wearer_<split>/<rec>/body_idx_<1-i>/results/frame_<NNNNN>/000.pkl   frame, metres: global_orient,
                             body_pose (63), jaw/leye/reye_pose, left/right_hand_pose (PCA coefficients, the smplx
                             defaults: hand mean added), betas (10), expression (10), transl; pose_embedding,
                             camera_rotation, camera_translation unused ('smplx_interactee/' without the split suffix:
                             the first release's layout, also read)
    kinect_color.zip         members .../<rec>/<view>/frame_<NNNNN>.jpg
    egocentric_color.zip     members .../<rec>/<datetime>/PV/<timestamp>_frame_<NNNNN>.jpg and
                             .../<rec>/<datetime>/<datetime>_pv.txt (line 1: cx, cy, w, h; then per frame:
                             timestamp, fx, fy, the 16 values of pv2world: PV camera (OpenGL axes) -> HoloLens world)

Frames: start_frame..end_frame of data_info_release.csv. World frame: the scene mesh's (master colour ->
kinect12_to_world). Cameras (mm): Kinect view v: world -> master -> v (the inverse of its kinect_*to12 transform),
with its intrinsics and distortion; PV frame: world -> master -> HoloLens world (inverse of holo_to_kinect12) -> PV
(inverse of pv2world) -> OpenCV axes (diag(1, -1, -1), the viewer's flip), intrinsics fx, fy of that frame and the
sequence's cx, cy. Both people's SMPL-X (each with their own gendered model: the original moves person 1 with
person 0's) are moved exactly from the master frame into the world frame (posepile.bodymodels.rigid).

Rules (nlf-era-facts §1.2, original-posepile-facts 'egobody'): per camera and person the sampler (100 mm, buffer
200) on the camera-frame joints; a person is used in a view when all joints are in front of the camera and at
least 6 project into the image; the box is the projected joints' box x1.05, or with a detector ($POSEPILE_DETECTOR,
the detect stage) the people of an image are matched to its detections by the Hungarian method (IoU >= 0.2) and a
match needs >= 6 of the person's projected joints inside the detection box, whose box is then used (else the
person is dropped; the shared rule of posepile.preproc.video_stage.BoxRule, as EgoHumans and Ego-Exo4D); train /
validation / test from data_splits.csv. Parameters are stored in the world frame
(posepile/bodymodels/transform.py); parametric only (JointInfo([], [])).
"""
import csv
import logging
import pickle
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'egobody'
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 200
BOX_EXPANSION = 1.05
MIN_JOINTS_IN_IMAGE = 6
MIN_DETECTION_IOU = 0.2
MIN_JOINTS_IN_DETECTION = 6
DETECTIONS_FILE = 'person_detections.pkl'
KINECT_VIEWS = {'master': None, 'sub_1': 11, 'sub_2': 13, 'sub_3': 14, 'sub_4': 15}
SPLIT_COLUMNS = {'train': 0, 'val': 1, 'test': 2}
KINECT_ZIP = 'kinect_color.zip'
EGO_ZIP = 'egocentric_color.zip'
KINECT_RE = re.compile(r'(?:^|/)(recording_[^/]+)/(master|sub_\d)/frame_(\d+)\.jpg$')
PV_RE = re.compile(r'(?:^|/)(recording_[^/]+)/[^/]+/PV/(\d+)_frame_(\d+)\.jpg$')
PV_TXT_RE = re.compile(r'(?:^|/)(recording_[^/]+)/([^/]+)/\2_pv\.txt$')
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])
FIT_PARTS = ('global_orient', 'body_pose', 'jaw_pose', 'leye_pose', 'reye_pose', 'left_hand_pose',
             'right_hand_pose', 'betas', 'expression', 'transl')


class EgoBodyFormatError(InputError):
    """A raw EgoBody file is missing, unreadable or malformed (one line naming the file)."""


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def body_model_dir(data_root=None):
    return raw_root(data_root).parent / 'body_models'


# ------------------------------------------------------------------------------------------------
# Readers
def _read_csv(path):
    path = Path(path)
    try:
        with open(path, newline='') as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise FileNotFoundError(f'{path} not found: download and extract the EgoBody release (main.sh step 1)') \
            from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise EgoBodyFormatError(f'{path}: cannot read the CSV ({e})') from None
    return rows


def load_splits(path):
    """{recording name: split index} of data_splits.csv (columns train, val, test)."""
    rows = _read_csv(path)
    if not rows or not set(SPLIT_COLUMNS) <= set(rows[0]):
        raise EgoBodyFormatError(f'{path}: expected the columns train, val, test')
    result = {}
    for row in rows:
        for column, split in SPLIT_COLUMNS.items():
            name = (row.get(column) or '').strip()
            if name:
                result[name] = split
    return result


def _index_gender(value, path, column):
    parts = str(value).split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in ('male', 'female'):
        raise EgoBodyFormatError(f'{path}: {column} is {value!r}, expected "<body index> <male|female>"')
    return int(parts[0]), parts[1]


def load_recording_info(path):
    """{recording: dict(genders {body index: gender}, interactee, start, end, scene)} of data_info_release.csv."""
    result = {}
    for row in _read_csv(path):
        try:
            name = row['recording_name'].strip()
            genders = dict(_index_gender(row[c], path, c) for c in ('body_idx_0', 'body_idx_1'))
            interactee, _ = _index_gender(row['body_idx_fpv'], path, 'body_idx_fpv')
            result[name] = dict(genders=genders, interactee=interactee, start=int(row['start_frame']),
                                end=int(row['end_frame']), scene=row['scene_name'].strip())
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise EgoBodyFormatError(f'{path}: a row lacks recording_name/body_idx_0/body_idx_1/body_idx_fpv/'
                                     f'start_frame/end_frame/scene_name ({type(e).__name__}: {e})') from None
    return result


def _rigid(matrix, name):
    """A checked 4x4 rigid transform (rotation re-orthonormalised)."""
    try:
        T = np.asarray(matrix, np.float64).reshape(4, 4)
    except (TypeError, ValueError):
        raise EgoBodyFormatError(f'{name}: not a 4x4 transform') from None
    U, _, Vt = np.linalg.svd(T[:3, :3])
    R = U @ Vt
    if not np.all(np.isfinite(T)) or np.linalg.det(R) < 0 or np.abs(R - T[:3, :3]).max() > 1e-3 or \
            np.abs(T[3] - [0, 0, 0, 1]).max() > 1e-6:
        raise EgoBodyFormatError(f'{name}: not a rigid transform (rotation {T[:3, :3].round(4).tolist()})')
    result = np.eye(4)
    result[:3, :3], result[:3, 3] = R, T[:3, 3]
    return result


def load_transform(path):
    """The 4x4 rigid transform {'trans': ...} of a calibration JSON (metres)."""
    from posepile.util import fileio
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f'{path} not found: extract the EgoBody calibrations (main.sh step 1)')
    data = fileio.load_json(path, EgoBodyFormatError)
    if not isinstance(data, dict) or 'trans' not in data:
        raise EgoBodyFormatError(f'{path}: lacks "trans"')
    return _rigid(data['trans'], path)


def load_kinect_intrinsics(path):
    """(K (3, 3), distortion) of kinect_cam_params/kinect_<view>/Color.json."""
    from posepile.util import fileio
    data = fileio.load_json(path, EgoBodyFormatError)
    try:
        K = np.asarray(data['camera_mtx'], np.float64).reshape(3, 3)
        dist = np.asarray(data.get('k', np.zeros(5)), np.float64).reshape(-1)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise EgoBodyFormatError(f'{path}: lacks camera_mtx (3x3) / k ({type(e).__name__}: {e})') from None
    if not (np.all(np.isfinite(K)) and np.all(np.isfinite(dist)) and dist.size in (4, 5, 8)):
        raise EgoBodyFormatError(f'{path}: non-finite intrinsics or {dist.size} distortion coefficients')
    return K, dist


def parse_pv_txt(text, name):
    """((cx, cy, w, h), {timestamp: (fx, fy, pv2world 4x4)}) of a <datetime>_pv.txt."""
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        cx, cy, width, height = (float(v) for v in lines[0].split(','))
        frames = {}
        for line in lines[1:]:
            values = line.split(',')
            if len(values) < 19:
                raise ValueError(f'{len(values)} values in a frame line (expected 19)')
            frames[values[0].strip()] = (float(values[1]), float(values[2]),
                                         np.array(values[3:19], np.float64).reshape(4, 4))
    except (IndexError, ValueError) as e:
        raise EgoBodyFormatError(f'{name}: not a HoloLens PV camera file ({e})') from None
    return (cx, cy, width, height), frames


def load_fit(path, hand_pca):
    """World-independent SMPL-X parameter dict (master colour frame) of one 000.pkl: PCA hands expanded with the
    model's components and mean (the smplx defaults the EgoBody viewers use). Restricted unpickler."""
    from posepile.bodymodels import hands
    from posepile.bodymodels.loading import BodyModelFormatError, restricted_load
    try:
        with open(path, 'rb') as f:
            data = restricted_load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f'{path} not found') from None
    except (OSError, BodyModelFormatError, pickle.UnpicklingError, EOFError, ValueError, TypeError,
            AttributeError, ImportError, IndexError, KeyError) as e:
        raise EgoBodyFormatError(f'{path}: cannot read the SMPL-X fit ({type(e).__name__}: {e})') from None
    if not isinstance(data, dict):
        raise EgoBodyFormatError(f'{path}: expected a dict of SMPL-X parameters')
    values = {}
    for key in FIT_PARTS:
        if key not in data:
            if key in ('expression', 'jaw_pose', 'leye_pose', 'reye_pose'):
                continue
            raise EgoBodyFormatError(f'{path}: lacks {key}')
        try:
            values[key] = np.asarray(data[key], np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise EgoBodyFormatError(f'{path}: {key} is not numeric') from None
        if not np.all(np.isfinite(values[key])):
            raise EgoBodyFormatError(f'{path}: {key} has non-finite values')
    if values['transl'].size != 3 or values['global_orient'].size != 3 or values['body_pose'].size != 63:
        raise EgoBodyFormatError(f'{path}: transl/global_orient/body_pose have {values["transl"].size}/'
                                 f'{values["global_orient"].size}/{values["body_pose"].size} values (3/3/63)')
    try:
        pose = hands.smplx_full_pose(values['global_orient'], values['body_pose'], values.get('jaw_pose'),
                                     values.get('leye_pose'), values.get('reye_pose'), values['left_hand_pose'],
                                     values['right_hand_pose'], hand_pca=hand_pca, use_pca=True)
    except ValueError as e:
        raise EgoBodyFormatError(f'{path}: {e}') from None
    params = {'type': 'smplx', 'pose': pose.astype(np.float32), 'shape': values['betas'].astype(np.float32),
              'trans': values['transl'].astype(np.float32)}
    if 'expression' in values and values['expression'].size:
        params['expression'] = values['expression'].astype(np.float32)
    return params


# ------------------------------------------------------------------------------------------------
# Cameras
def camera_of_world_to_camera(T, K, dist=None):
    """posepile Camera (mm) of a 4x4 world-to-camera transform in metres."""
    from posepile.util.camera import Camera
    T = _rigid(T, 'world-to-camera chain')
    return Camera(optical_center=-T[:3, :3].T @ T[:3, 3] * 1000, rot_world_to_cam=T[:3, :3], intrinsic_matrix=K,
                  distortion_coeffs=dist, world_up=(0, 0, 1))


def calibration_file(root, rec, name):
    """calibrations/<rec>/cal_trans/<name> (the viewers' path) or calibrations/<rec>/<name> (the README's)."""
    base = root / 'calibrations' / rec
    path = base / 'cal_trans' / name
    return path if path.exists() or not (base / name).exists() else base / name


def fit_path(root, rec, role, body, frame, split_name):
    """The 000.pkl of a person's frame: smplx_<role>_<split>/ (current release) or smplx_<role>/ (first one)."""
    relative = Path(rec) / f'body_idx_{body}' / 'results' / f'frame_{frame:05d}' / '000.pkl'
    path = root / f'smplx_{role}_{split_name}' / relative
    return path if path.exists() else root / f'smplx_{role}' / relative


# ------------------------------------------------------------------------------------------------
# Tasks
def _index(zip_path, pattern):
    from posepile.util import image_sources
    if not Path(zip_path).exists():
        raise FileNotFoundError(f'{zip_path} not found: download it from the EgoBody site (main.sh step 1)')
    try:
        members = image_sources.zip_members(zip_path)
    except InputError:
        raise
    except Exception as e:
        raise EgoBodyFormatError(f'{zip_path}: not a readable zip ({type(e).__name__}: {e})') from None
    result = {}
    for member in members:
        match = pattern.search(member)
        if match:
            result[match.groups()] = member
    return result


def selected(joints_cam_mm):
    from posepile.util.sampling import select_frames
    return select_frames(joints_cam_mm, SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)


def usable_box(camera, joints_world_mm, imshape):
    """The projected joints' box x1.05 when all joints are in front and >= 6 project into the image, else None."""
    from posepile.util import boxes
    if not np.all(camera.world_to_camera(joints_world_mm)[:, 2] > 0):
        return None
    pixels = camera.world_to_image(joints_world_mm)
    height, width = imshape
    inside = np.all(np.isfinite(pixels), axis=1) & (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & \
        (pixels[:, 1] >= 0) & (pixels[:, 1] < height)
    if np.count_nonzero(inside) < MIN_JOINTS_IN_IMAGE:
        return None
    return boxes.expand(boxes.bb_of_points(pixels), BOX_EXPANSION).astype(np.float32)


def image_size(container, member):
    """(height, width) of a zip member JPEG (decoded once per view and recording: the frames share it)."""
    import cv2

    from posepile.util import image_sources
    data = np.frombuffer(image_sources.read_zip_member(container, member), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise EgoBodyFormatError(f'{image_sources.member_path(container, member)}: cannot decode the image')
    return image.shape[:2]


def crop_relpath(rec, view, frame, body):
    return f'{NAME}_downscaled/{rec}/{view}/{frame:05d}_{body}.jpg'


def detection_rule():
    """Hungarian on IoU >= 0.2, and the detection must hold >= 6 of the person's projected joints, else the person is
    dropped (the shared rule: posepile.preproc.video_stage.BoxRule)."""
    from posepile.preproc.video_stage import BoxRule
    return BoxRule('hungarian', min_iou=MIN_DETECTION_IOU, fallback_to_gt=False,
                   min_joints_inside=MIN_JOINTS_IN_DETECTION)


def make_crop_tasks(data_root=None, detections=None):
    """(key '<split>/<rec>/<view>/<frame>/<body>', example, crop relpath) per person, view and selected frame. With
    `detections` ({image member path: (N, 5)}, the detect stage's file) the box is the matched detection's
    (detection_rule) and unmatched people are left out."""
    from posepile import bodymodels
    from posepile.bodymodels import hands
    from posepile.bodymodels.rigid import apply_rigid
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.datasets3d import Pose3DExample
    from posepile.util import image_sources
    root = raw_root(data_root)
    splits = load_splits(root / 'data_splits.csv')
    info = load_recording_info(root / 'data_info_release.csv')
    kinect_images = _index(root / KINECT_ZIP, KINECT_RE)
    pv_images = _index(root / EGO_ZIP, PV_RE)
    pv_txts = {groups[0]: member for groups, member in _index(root / EGO_ZIP, PV_TXT_RE).items()}
    kinect_rel, ego_rel = (Path(NAME) / KINECT_ZIP).as_posix(), (Path(NAME) / EGO_ZIP).as_posix()
    intrinsics = {}
    models = {}
    tasks, joints2d = [], []
    counts = {'recordings': 0, 'fits': 0, 'not in view': 0, 'selected': 0}
    for rec in sorted(set(splits) & set(info)):
        split = splits[rec]
        split_name = [k for k, v in SPLIT_COLUMNS.items() if v == split][0]
        meta = info[rec]
        counts['recordings'] += 1
        master_to_world = load_transform(calibration_file(root, rec, f'kinect12_to_world/{meta["scene"]}.json'))
        world_to_master = np.linalg.inv(master_to_world)
        views = {}  # view: (world-to-camera 4x4 or None per frame, K, dist, image lookup)
        for view, kinect_id in KINECT_VIEWS.items():
            frames = {int(f): m for (r, v, f), m in kinect_images.items() if r == rec and v == view}
            if not frames:
                continue
            if view not in intrinsics:
                intrinsics[view] = load_kinect_intrinsics(root / 'kinect_cam_params' / f'kinect_{view}' / 'Color.json')
            master_to_view = np.eye(4) if kinect_id is None else np.linalg.inv(
                load_transform(calibration_file(root, rec, f'kinect_{kinect_id}to12_color.json')))
            camera = camera_of_world_to_camera(master_to_view @ world_to_master, *intrinsics[view])
            imshape = image_size(root / KINECT_ZIP, frames[min(frames)])
            views[view] = ({f: camera for f in frames}, frames, kinect_rel, imshape)
        pv_frames = {int(f): (ts, m) for (r, ts, f), m in pv_images.items() if r == rec}
        if pv_frames:
            if rec not in pv_txts:
                raise EgoBodyFormatError(f'{root / EGO_ZIP}: PV frames of {rec} but no <datetime>_pv.txt')
            name = image_sources.member_path(root / EGO_ZIP, pv_txts[rec])
            text = image_sources.read_zip_member(root / EGO_ZIP, pv_txts[rec]).decode('utf-8', 'replace')
            (cx, cy, pv_width, pv_height), pv_poses = parse_pv_txt(text, name)
            master_to_holo = np.linalg.inv(load_transform(calibration_file(root, rec, 'holo_to_kinect12.json')))
            cameras = {}
            for frame, (timestamp, _) in pv_frames.items():
                if timestamp not in pv_poses:
                    continue
                fx, fy, pv_to_holo = pv_poses[timestamp]
                K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
                world_to_pv = GL_TO_CV @ np.linalg.inv(_rigid(pv_to_holo, name)) @ master_to_holo @ world_to_master
                cameras[frame] = camera_of_world_to_camera(world_to_pv, K)
            views['pv'] = (cameras, {f: m for f, (_, m) in pv_frames.items()}, ego_rel,
                           (int(round(pv_height)), int(round(pv_width))))
        people = {meta['interactee']: 'interactee', 1 - meta['interactee']: 'camera_wearer'}
        for body, role in sorted(people.items()):
            gender = meta['genders'][body]
            if gender not in models:
                model = bodymodels.load('smplx', gender, body_model_dir(data_root))
                models[gender] = (model, hands.hand_pca(model.path))
            model, pca = models[gender]
            world_params = {}
            for frame in range(meta['start'], meta['end'] + 1):
                path = fit_path(root, rec, role, body, frame, split_name)
                if not path.exists():
                    continue
                fit = load_fit(path, pca)
                params = apply_rigid({**fit, 'gender': gender}, master_to_world[:3, :3], master_to_world[:3, 3],
                                     model=model)
                world_params[frame] = (params, parameter_joints_mm(params, model))
            counts['fits'] += len(world_params)
            for view, (cameras, images, container_rel, imshape) in sorted(views.items()):
                candidates = []
                for frame in sorted(world_params):
                    if frame not in images or frame not in cameras:
                        continue
                    camera = cameras[frame]
                    params, joints = world_params[frame]
                    box = usable_box(camera, joints, imshape)
                    if box is None:
                        counts['not in view'] += 1
                        continue
                    candidates.append((frame, camera, params, box, camera.world_to_camera(joints), joints))
                if not candidates:
                    continue
                for k in selected(np.stack([c[4] for c in candidates])):
                    frame, camera, params, box, _, joints = candidates[k]
                    image = image_sources.member_path(container_rel, images[frame])
                    example = Pose3DExample(image, None, box, camera, scene_name=rec, activity_name=meta['scene'],
                                            parameters=params)
                    tasks.append((f'{split}/{rec}/{view}/{frame:05d}/{body}', example,
                                  crop_relpath(rec, view, frame, body)))
                    joints2d.append(camera.world_to_image(joints) if detections is not None else None)
                    counts['selected'] += 1
    if detections is not None:
        boxes = pipeline.boxes_from_detections([(ex.image_path, ex.bbox, j) for (_, ex, _), j in zip(tasks, joints2d)],
                                               detections, detection_rule())
        for (_, example, _), box in zip(tasks, boxes):
            if box is not None:
                example.bbox = box
        counts['matched to a detection'] = sum(box is not None for box in boxes)
        tasks = [task for task, box in zip(tasks, boxes) if box is not None]
    logger.info('%d crop tasks; %s', len(tasks), ', '.join(f'{k} {v}' for k, v in counts.items()))
    if not tasks:
        raise FileNotFoundError(f'no usable EgoBody frames under {root}: are the zips, fits and CSVs in place '
                                '(main.sh step 1)?')
    return tasks


def detections_path(data_root=None):
    return work_dir(data_root) / DETECTIONS_FILE


@pipeline.cli_options(pipeline.DETECTOR_OPTION)
def detect_stage(detector_spec=None, shard=None, data_root=None):
    """Person detections in the images of the selected people, read in place from the zips (only with a detector;
    'gt' needs none: the boxes are the projected joints')."""
    from posepile.preproc.detection import run_detection_stage
    detector_spec = pipeline.configured_detector(detector_spec)
    if not detector_spec or detector_spec.split(':')[0] == 'gt':
        logger.info('no image detector: the boxes are the projected joints x%.2f', BOX_EXPANSION)
        return
    relpaths = sorted({example.image_path for _, example, _ in make_crop_tasks(data_root)})
    run_detection_stage(raw_root(data_root).parent, relpaths, detections_path(data_root), detector_spec, shard)


def crop_stage(shard=None, n_workers=None, data_root=None, skip_broken=None):
    """Crops of the selected person x view x frame, read in place from the release zips (with the detect stage's
    file: the matched detection boxes, unmatched people left out)."""
    from posepile.util import fileio
    path = detections_path(data_root)
    detections = fileio.load_pickle(path) if path.exists() else None
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root, detections), shard, n_workers, data_root,
                                skip_broken=skip_broken, extreme_perspective=True)


crop_stage.cli_options = [pipeline.SKIP_BROKEN_OPTION]


def make_dataset(data_root=None):
    """EgoBody: parametric only (SMPL-X of both people, world frame), train / validation / test."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo([], []), splits[0], splits[1], splits[2])


def assemble(data_root=None):
    """The dataset for get_dataset('egobody')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.egobody.main', 'EgoBody stages', {
        'detect': detect_stage, 'crop': crop_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
