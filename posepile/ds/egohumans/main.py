"""EgoHumans (egocentric multi-person; Aria glasses + GoPro exo cameras): readers of the raw release and the stages.

Raw layout under $DATA_ROOT/egohumans (the official toolkit, rawalkhirodkar/egohumans assets/DOWNLOAD.md and
lib/datasets/{ego_exo_scene,aria_human,aria_camera,exo_camera}.py, reads it so):

    <group>/<sequence>/colmap/workplace/cameras.txt     COLMAP text: CAMERA_ID MODEL WIDTH HEIGHT PARAMS; the
                                                          OPENCV_FISHEYE params are fx fy cx cy k1 k2 k3 k4 (the
                                                          1408x1408 cameras are the Arias, the others GoPros)
    <group>/<sequence>/colmap/workplace/images.txt      COLMAP text: IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME
                                                          (world -> camera in the COLMAP frame), NAME '<cam>/<t>.jpg',
                                                          then a POINTS2D line; keyframes only
    <group>/<sequence>/colmap/workplace/colmap_from_aria_transforms.pkl   {aria name: 4x4 Aria frame -> COLMAP}
    <group>/<sequence>/colmap/workplace/<cam>.npy       optional manual exo extrinsics (4x4, COLMAP frame)
    <group>/<sequence>/ego/aria<k>/calib/<t:05d>.txt    a header line, then per person 7 lines: id, then
                                                          (intrinsics, extrinsics) for rgb, left, right; an
                                                          extrinsics line is 12 numbers, reshape(4, 3).T = the
                                                          3x4 world (Aria k's frame) -> camera, metres
    <group>/<sequence>/ego/aria<k>/images/rgb/<t:05d>.jpg   RGB frames rotated 90 deg clockwise from the sensor
    <group>/<sequence>/exo/cam<k>/images/<t:05d>.jpg    GoPro frames
    <group>/<sequence>/processed_data/poses3d/<t:05d>.npy   {aria name: (17, 4)} COCO-17 x, y, z (m) + score,
                                                          in the anchor Aria's (aria01) frame

Geometry (the toolkit's): the world is aria01's frame. Exo camera: X_cam = P (C_aria01 X), P the COLMAP
world->camera of the nearest keyframe of that camera (or its manual .npy). Aria k: X_cam = E_t inv(C_k) C_aria01 X
with E_t the per-frame calibration. The transforms may carry the COLMAP scale: every composed 3x4 is split into
scale x rigid, and the optical centre comes out in Aria metres (-> mm).

Lenses: every camera is COLMAP's OPENCV_FISHEYE: fx fy cx cy k1..k4 used as the fisheye (Kannala-Brandt) model
(`Camera(distortion_model='fisheye')`); the original handed k1..k4 to the OpenCV (pinhole polynomial) model, which
is a different lens. COLMAP puts pixel centres at +0.5, posepile at integers: cx, cy - 0.5. The Aria's COLMAP
camera (square, 1408 px) describes the sensor orientation, in which the calibration's camera frame is given; the
released RGB frames are that image rotated 90 deg clockwise (cv2.ROTATE_90_CLOCKWISE: x' = H - 1 - y, y' = x), so
the ego camera is turned by -90 deg about its optical axis (exact for a radial lens: fx, fy swap, c' = (H-1-cy, cx)).

Rules (original-posepile-facts "egohumans", nlf-era-facts 1.2): joints m -> mm; ego views: a joint behind the
camera or projected more than 500 px (of the 1408 px frame; scaled with the frame width) from the principal point
is NaN; a person needs >= 6 valid joints inside the frame; the sampler (100 mm, buffer 200) per camera and person
on the camera-frame joints; box = the valid projected joints' box x1.05; with a detector ($POSEPILE_DETECTOR) the
frame's people are matched to the detections by the Hungarian method (IoU >= 0.2) and a match needs >= 6 projected
joints inside the detection box (else the person is dropped). Everything is TRAIN (ego views first, then exo).
Unlike the original's extreme-perspective crops, crops stay inside the frame and, for ego views, inside the
500 px circle (the calibrated field the joints are validated in).
"""
import logging
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'egohumans'
JOINT_NAMES = 'nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank'
JOINT_EDGES = ('lank-lkne-lhip-lsho-lelb-lwri,rank-rkne-rhip-rsho-relb-rwri,lhip-rhip,lsho-rsho,'
               'nose-leye-lear,nose-reye-rear')
N_JOINTS = 17
M_TO_MM = 1000.0
ANCHOR_ARIA = 'aria01'
ARIA_COLMAP_SIZE = 1408  # the toolkit tells Aria cameras in cameras.txt by this square size
EGO_VALID_RADIUS_PX = 500.0  # the original's rule, in px of the 1408 px Aria frame
MIN_VALID_JOINTS = 6
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 200
GT_BOX_EXPANSION = 1.05
MIN_DETECTION_IOU = 0.2
MIN_JOINTS_IN_DETECTION = 6
DETECTIONS_FILE = 'person_detections.pkl'
_FRAME_RE = re.compile(r'^(\d+)\.(?:jpg|npy|txt)$')


class EgoHumansFormatError(InputError):
    """A raw EgoHumans file is missing, unreadable or malformed (one line naming the file)."""


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


# ------------------------------------------------------------------------------------------------
# Readers
def _floats(text, path, what):
    try:
        return np.array([float(v) for v in text.split()], np.float64)
    except ValueError:
        raise EgoHumansFormatError(f'{path}: {what} is not a list of numbers: {text[:80]!r}') from None


def _read_lines(path):
    try:
        return Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise EgoHumansFormatError(f'{path}: file not found') from None
    except (OSError, UnicodeDecodeError) as e:
        raise EgoHumansFormatError(f'{path}: cannot read ({e})') from None


def load_colmap_cameras(path):
    """{camera id: (model, width, height, params)} of a COLMAP cameras.txt."""
    cameras = {}
    for line in _read_lines(path):
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        fields = line.split()
        try:
            camera_id, model, width, height = int(fields[0]), fields[1], int(fields[2]), int(fields[3])
        except (IndexError, ValueError):
            raise EgoHumansFormatError(f'{path}: malformed camera line {line[:80]!r}') from None
        params = _floats(' '.join(fields[4:]), path, f'camera {camera_id} params')
        if model != 'OPENCV_FISHEYE' or len(params) != 8 or not np.all(np.isfinite(params)):
            raise EgoHumansFormatError(f'{path}: camera {camera_id} is {model} with {len(params)} params; expected '
                                       'OPENCV_FISHEYE fx fy cx cy k1 k2 k3 k4')
        cameras[camera_id] = (model, width, height, params)
    if not cameras:
        raise EgoHumansFormatError(f'{path}: no cameras listed')
    return cameras


def load_colmap_images(path):
    """[(camera name, frame, camera id, 3x4 world->camera)] of a COLMAP images.txt (NAME '<camera>/<frame>.jpg')."""
    from scipy.spatial.transform import Rotation
    lines = _read_lines(path)
    images = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith('#'):
            continue
        fields = line.split()
        i += 1  # the POINTS2D line that follows every image line
        try:
            qvec = np.array(fields[1:5], np.float64)
            tvec = np.array(fields[5:8], np.float64)
            camera_id, name = int(fields[8]), fields[9]
        except (IndexError, ValueError):
            raise EgoHumansFormatError(f'{path}: malformed image line {line[:80]!r}') from None
        parts = name.split('/')
        match = _FRAME_RE.match(parts[-1])
        if len(parts) < 2 or not match or not np.all(np.isfinite(qvec)) or np.linalg.norm(qvec) < 1e-6:
            raise EgoHumansFormatError(f'{path}: image line {line[:80]!r} lacks a <camera>/<frame>.jpg name or a '
                                       'quaternion')
        rotation = Rotation.from_quat(np.roll(qvec, -1)).as_matrix()  # COLMAP: qw qx qy qz
        images.append((parts[0], int(match.group(1)), camera_id, np.concatenate([rotation, tvec[:, None]], 1)))
    return images


def load_transforms(path):
    """{aria name: 4x4 Aria frame -> COLMAP} of colmap_from_aria_transforms.pkl (read without running code)."""
    from posepile.bodymodels.loading import restricted_load
    try:
        with open(path, 'rb') as f:
            value = restricted_load(f)
    except FileNotFoundError:
        raise EgoHumansFormatError(f'{path}: file not found') from None
    except Exception as e:
        raise EgoHumansFormatError(f'{path}: not a readable pickle ({type(e).__name__}: {e})') from None
    try:
        result = {str(k): np.asarray(v, np.float64).reshape(4, 4) for k, v in dict(value).items()}
    except (TypeError, ValueError):
        raise EgoHumansFormatError(f'{path}: expected a dict of 4x4 matrices per Aria') from None
    return result


def load_aria_calibration(path):
    """The rgb camera's 3x4 world (Aria frame) -> camera extrinsics of one per-frame calib/<t>.txt."""
    lines = [line.strip() for line in _read_lines(path)][1:]  # the first line is a header
    if len(lines) < 3:
        raise EgoHumansFormatError(f'{path}: expected a header and 7 lines (id, then intrinsics and extrinsics '
                                   f'of rgb, left, right), got {len(lines) + 1} lines')
    values = _floats(lines[2], path, 'the rgb extrinsics')
    if len(values) != 12 or not np.all(np.isfinite(values)):
        raise EgoHumansFormatError(f'{path}: the rgb extrinsics have {len(values)} values, expected 12')
    return values.reshape(4, 3).T


def load_poses(path):
    """{aria name: (17, 3) mm} of one processed_data/poses3d/<t>.npy ({name: (17, >=3) m})."""
    from posepile.bodymodels.files import load_object_npy
    data = load_object_npy(path, EgoHumansFormatError)
    if not isinstance(data, dict):
        raise EgoHumansFormatError(f'{path}: expected a dict {{aria name: (17, 4) joints}}, got {type(data).__name__}')
    result = {}
    for name, joints in data.items():
        joints = np.asarray(joints, np.float64)
        if joints.ndim != 2 or joints.shape[0] != N_JOINTS or joints.shape[1] < 3:
            raise EgoHumansFormatError(f'{path}: {name} has shape {joints.shape}, expected (17, 4)')
        joints = joints[:, :3] * M_TO_MM
        finite = joints[np.isfinite(joints)]
        if finite.size and np.abs(finite).max() > 1e6:
            raise EgoHumansFormatError(f'{path}: {name} joints up to {np.abs(finite).max():.0f} mm: not metres')
        result[str(name)] = joints
    return result


# ------------------------------------------------------------------------------------------------
# Cameras
def _rigid_from_similarity(matrix, path):
    """(R, optical centre) of a 3x4 that is scale x [R | t] (COLMAP-scaled transforms)."""
    matrix = np.asarray(matrix, np.float64)
    determinant = np.linalg.det(matrix[:3, :3])
    if not np.isfinite(determinant) or determinant <= 0:
        raise EgoHumansFormatError(f'{path}: a camera transform is singular or mirrored (det {determinant:.3g})')
    scale = np.cbrt(determinant)
    rotation = matrix[:3, :3] / scale
    return rotation, -np.linalg.solve(rotation, matrix[:3, 3] / scale)


def fisheye_camera(params, rotation, optical_center_mm, rotate_clockwise_height=None):
    """posepile Camera of COLMAP OPENCV_FISHEYE params (COLMAP pixel centres at +0.5 -> integers); with
    `rotate_clockwise_height` (the sensor image height) the camera of that image rotated 90 deg clockwise."""
    from posepile.util.camera import Camera
    fx, fy, cx, cy = params[:4]
    cx, cy = cx - 0.5, cy - 0.5
    if rotate_clockwise_height is not None:
        # x' = H - 1 - y, y' = x: the camera frame turns with the image (x' = -y, y' = x)
        fx, fy, cx, cy = fy, fx, rotate_clockwise_height - 1 - cy, cx
        rotation = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], np.float64) @ rotation
    intrinsics = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    return Camera(optical_center_mm, rotation, intrinsics, params[4:8], world_up=(0, 0, 1),
                  distortion_model='fisheye')


class Sequence:
    """One EgoHumans sequence: its cameras per frame and its people's joints per frame."""

    def __init__(self, root):
        self.root = Path(root)
        self.name = f'{self.root.parent.name}/{self.root.name}'
        workplace = self.root / 'colmap' / 'workplace'
        self.colmap_cameras = load_colmap_cameras(workplace / 'cameras.txt')
        self.images = load_colmap_images(workplace / 'images.txt')
        self.transforms_path = workplace / 'colmap_from_aria_transforms.pkl'
        self.transforms = load_transforms(self.transforms_path)
        if ANCHOR_ARIA not in self.transforms:
            raise EgoHumansFormatError(f'{self.transforms_path}: no transform of the anchor {ANCHOR_ARIA}')
        self.anchor = self.transforms[ANCHOR_ARIA]
        camera_ids = {}
        for camera_name, _, camera_id, _ in self.images:
            if camera_id not in self.colmap_cameras:
                raise EgoHumansFormatError(f'{workplace / "images.txt"}: {camera_name} uses camera {camera_id}, '
                                           'which cameras.txt does not list')
            camera_ids.setdefault(camera_name, camera_id)
        self.camera_ids = camera_ids
        self.arias = sorted(p.name for p in (self.root / 'ego').glob('aria*') if (p / 'calib').is_dir())
        self.exos = sorted(p.name for p in (self.root / 'exo').glob('cam*') if (p / 'images').is_dir())
        poses_dir = self.root / 'processed_data' / 'poses3d'
        self.pose_paths = {int(_FRAME_RE.match(p.name).group(1)): p for p in sorted(poses_dir.glob('*.npy'))
                           if _FRAME_RE.match(p.name)}
        if not self.pose_paths:
            raise EgoHumansFormatError(f'{poses_dir}: no <frame>.npy 3D poses')
        self.workplace = workplace
        self._exo_keyframes = {}

    def aria_intrinsics(self, aria):
        """COLMAP params of an Aria: the camera its images use in images.txt, else any 1408x1408 camera."""
        camera_id = self.camera_ids.get(aria)
        if camera_id is None:
            square = [i for i, (_, w, h, _) in sorted(self.colmap_cameras.items())
                      if w == h == ARIA_COLMAP_SIZE]
            if not square:
                raise EgoHumansFormatError(f'{self.workplace / "cameras.txt"}: no camera for {aria} (no images of it '
                                           f'in images.txt, no {ARIA_COLMAP_SIZE}x{ARIA_COLMAP_SIZE} camera)')
            camera_id = square[0]
        return self.colmap_cameras[camera_id]

    def ego_camera(self, aria, frame):
        """The Aria's rgb camera at a frame (upright released image), or None without a calibration file."""
        if aria not in self.transforms:
            raise EgoHumansFormatError(f'{self.transforms_path}: no transform of {aria}')
        path = self.root / 'ego' / aria / 'calib' / f'{frame:05d}.txt'
        if not path.exists():
            return None
        extrinsics = load_aria_calibration(path) @ np.linalg.inv(self.transforms[aria]) @ self.anchor
        rotation, center_m = _rigid_from_similarity(extrinsics, path)
        _, _, height, params = self.aria_intrinsics(aria)
        return fisheye_camera(params, rotation, center_m * M_TO_MM, rotate_clockwise_height=height)

    def exo_keyframes(self, exo):
        """{frame: 3x4 COLMAP world -> camera} of an exo camera (its manual <cam>.npy as frame 1 if present)."""
        if exo not in self._exo_keyframes:
            manual = self.workplace / f'{exo}.npy'
            if manual.exists():
                from posepile.bodymodels.files import load_object_npy
                matrix = np.asarray(load_object_npy(manual, EgoHumansFormatError), np.float64)
                if matrix.shape not in ((4, 4), (3, 4)):
                    raise EgoHumansFormatError(f'{manual}: shape {matrix.shape}, expected 4x4 extrinsics')
                keyframes = {1: matrix[:3]}
            else:
                keyframes = {frame: matrix for name, frame, _, matrix in self.images if name == exo}
            self._exo_keyframes[exo] = keyframes
        return self._exo_keyframes[exo]

    def exo_camera(self, exo, frame):
        """The exo camera at a frame: the nearest keyframe's extrinsics (ties: the earlier one), or None."""
        keyframes = self.exo_keyframes(exo)
        if not keyframes or exo not in self.camera_ids:
            return None
        nearest = min(keyframes, key=lambda k: (abs(k - frame), k))
        extrinsics = keyframes[nearest] @ self.anchor
        rotation, center_m = _rigid_from_similarity(extrinsics, self.workplace / 'images.txt')
        return fisheye_camera(self.colmap_cameras[self.camera_ids[exo]][3], rotation, center_m * M_TO_MM)

    def image_shape(self, view, camera_name):
        """(H, W) of the released frames: the COLMAP camera's size (an Aria's rotated 90 deg)."""
        if view == 'ego':
            _, width, height, _ = self.aria_intrinsics(camera_name)
            return width, height
        _, width, height, _ = self.colmap_cameras[self.camera_ids[camera_name]]
        return height, width

    def poses(self, frame):
        return load_poses(self.pose_paths[frame])


def sequence_roots(data_root=None):
    root = pipeline.raw_root(NAME, data_root)
    if not root.is_dir():
        raise FileNotFoundError(f'{root} not found: download and extract the EgoHumans sequences (main.sh step 1)')
    found = sorted(p.parent.parent for p in root.glob('*/*/processed_data/poses3d'))
    if not found:
        raise FileNotFoundError(f'{root}: no <group>/<sequence>/processed_data/poses3d: download and extract the '
                                'EgoHumans sequences (main.sh step 1)')
    return found


# ------------------------------------------------------------------------------------------------
# Rules
def ego_valid_radius_px(imshape):
    """The original's 500 px (of the 1408 px Aria frame) scaled with the frame width."""
    return EGO_VALID_RADIUS_PX * imshape[1] / ARIA_COLMAP_SIZE


def ego_max_angle_deg(camera, imshape):
    """The angle from the axis (deg) at which the lens' image circle (smaller focal length) reaches the valid
    radius: ego crops are kept inside it."""
    radius = ego_valid_radius_px(imshape)
    low, high = 0.0, float(np.rad2deg(camera.max_valid_angle_from_axis()))
    if camera.valid_image_radius(high) <= radius:
        return high
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if camera.valid_image_radius(mid) <= radius else (low, mid)
    return low


def valid_joints(camera, joints_mm, imshape, is_ego):
    """Bool (17,): joints in front of the camera whose projection lies in the frame and, for ego views, within
    the valid radius of the principal point."""
    cam = camera.world_to_camera(joints_mm)
    with np.errstate(invalid='ignore'):
        pixels = camera.camera_to_image(cam)
        valid = np.all(np.isfinite(pixels), axis=1) & (cam[:, 2] > 0)
        valid &= ((pixels[:, 0] >= -0.5) & (pixels[:, 0] <= imshape[1] - 0.5)
                  & (pixels[:, 1] >= -0.5) & (pixels[:, 1] <= imshape[0] - 0.5))
        if is_ego:
            centre = camera.intrinsic_matrix[:2, 2]
            valid &= np.linalg.norm(pixels - centre, axis=1) <= ego_valid_radius_px(imshape)
    return valid


def gt_box(camera, joints_mm, valid):
    from posepile.util import boxes
    return boxes.expand(boxes.bb_of_points(camera.world_to_image(joints_mm[valid])), GT_BOX_EXPANSION)


def detection_rule():
    """Hungarian on IoU >= 0.2, and the detection must hold >= 6 of the person's projected valid joints, else the
    person is dropped (the shared rule: posepile.preproc.video_stage.BoxRule)."""
    from posepile.preproc.video_stage import BoxRule
    return BoxRule('hungarian', min_iou=MIN_DETECTION_IOU, fallback_to_gt=False,
                   min_joints_inside=MIN_JOINTS_IN_DETECTION)


def match_detections(people, detections):
    """Boxes (or None = dropped) of a frame's people [(gt box, projected valid joints (N, 2))] given the frame's
    detections (D, 5), by detection_rule()."""
    from posepile.preproc.video_stage import choose_frame_boxes
    return choose_frame_boxes([box for box, _ in people], detections, detection_rule(),
                              [joints for _, joints in people])


def selected_frames(camera_frame_poses):
    from posepile.util.sampling import select_frames
    return select_frames(np.asarray(camera_frame_poses), SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER,
                         check_validity=True, nan_unchanged=True)


def image_relpath(sequence, view, camera_name, frame):
    kind = 'ego' if view == 'ego' else 'exo'
    sub = f'images/rgb/{frame:05d}.jpg' if view == 'ego' else f'images/{frame:05d}.jpg'
    return f'{NAME}/{sequence.name}/{kind}/{camera_name}/{sub}'


def crop_relpath(sequence, camera_name, frame, person):
    return f'{NAME}_downscaled/{sequence.name}/{camera_name}/{frame:05d}_{person}.jpg'


def candidates(data_root=None):
    """Per sequence: the selected (view, camera, frame, person, example) with full-frame GT boxes.

    view is 'ego' or 'exo'; the example's world joints are NaN where the ego rule invalidates them.
    """
    from posepile.datasets3d import Pose3DExample
    result = []
    for root in sequence_roots(data_root):
        sequence = Sequence(root)
        poses = {frame: sequence.poses(frame) for frame in sorted(sequence.pose_paths)}
        views = [('ego', name) for name in sequence.arias] + [('exo', name) for name in sequence.exos]
        for view, camera_name in views:
            imshape = None
            tracks = {}  # person -> [(frame, camera, joints, valid)]
            for frame, people in poses.items():
                camera = (sequence.ego_camera(camera_name, frame) if view == 'ego'
                          else sequence.exo_camera(camera_name, frame))
                if camera is None:
                    continue
                if imshape is None:
                    imshape = sequence.image_shape(view, camera_name)
                for person, joints in people.items():
                    valid = valid_joints(camera, joints, imshape, view == 'ego')
                    if np.count_nonzero(valid) >= MIN_VALID_JOINTS:
                        tracks.setdefault(person, []).append((frame, camera, joints, valid))
            for person, track in sorted(tracks.items()):
                kept = selected_frames([camera.world_to_camera(joints) for _, camera, joints, _ in track])
                for index in kept:
                    frame, camera, joints, valid = track[int(index)]
                    world = joints.copy()
                    if view == 'ego':
                        world[~valid] = np.nan
                    example = Pose3DExample(image_relpath(sequence, view, camera_name, frame),
                                            world.astype(np.float32), gt_box(camera, joints, valid), camera,
                                            scene_name=sequence.name)
                    result.append(dict(view=view, sequence=sequence, camera_name=camera_name, frame=frame,
                                       person=person, example=example, imshape=imshape,
                                       joints2d=camera.world_to_image(joints[valid])))
    return result


# ------------------------------------------------------------------------------------------------
# Stages
def detections_path(data_root=None):
    return work_dir(data_root) / DETECTIONS_FILE


@pipeline.cli_options(pipeline.DETECTOR_OPTION)
def detect_stage(detector_spec=None, shard=None, data_root=None):
    """Person detections in the frames that hold a selected person (only with a detector)."""
    from posepile.preproc.detection import run_detection_stage
    detector_spec = pipeline.configured_detector(detector_spec)
    if not detector_spec:
        logger.info('no detector: the boxes are the projected joints x%.2f', GT_BOX_EXPANSION)
        return
    relpaths = sorted({c['example'].image_path for c in candidates(data_root)})
    run_detection_stage(pipeline.raw_root(NAME, data_root).parent, relpaths, detections_path(data_root),
                        detector_spec, shard)


def make_crop_tasks(data_root=None):
    from posepile.util import fileio
    detections = fileio.load_pickle(detections_path(data_root)) if detections_path(data_root).exists() else None
    chosen = candidates(data_root)
    if detections is not None:
        boxes = pipeline.boxes_from_detections(
            [(c['example'].image_path, c['example'].bbox, c['joints2d']) for c in chosen], detections,
            detection_rule())
        kept = []
        for c, box in zip(chosen, boxes):
            if box is not None:
                c['example'].bbox = box
                kept.append(c)
        logger.info('%d of %d people matched to a detection', len(kept), len(chosen))
        chosen = kept
    tasks = []
    for c in chosen:
        key = (f'0/{c["view"]}/{c["sequence"].name}/{c["camera_name"]}/{c["frame"]:05d}/{c["person"]}')
        tasks.append((key, c['example'], crop_relpath(c['sequence'], c['camera_name'], c['frame'], c['person'])))
    logger.info('%d crops (%d ego, %d exo)', len(tasks), sum(c['view'] == 'ego' for c in chosen),
                sum(c['view'] == 'exo' for c in chosen))
    return tasks, {key: c for (key, _, _), c in zip(tasks, chosen)}


CROP_GROUPS_FILE = 'crop_groups.json'


@pipeline.cli_options(pipeline.SKIP_BROKEN_OPTION)
def crop_stage(shard=None, n_workers=None, skip_broken=None, data_root=None):
    """Crops of the selected people: pinhole views through the fisheye lenses, ego crops inside the valid circle."""
    from posepile.util import fileio
    tasks, info = make_crop_tasks(data_root)
    groups = {}  # the crop option max_angle_from_axis_deg is per stage run: one run per distinct ego field
    for task in tasks:
        c = info[task[0]]
        angle = round(ego_max_angle_deg(c['example'].camera, c['imshape']), 4) if c['view'] == 'ego' else None
        groups.setdefault(angle, []).append(task)
    subdirs = {}
    for angle, group in groups.items():
        subdir = 'crops_exo' if angle is None else f'crops_ego_{angle:.4f}'
        subdirs[subdir] = angle
        pipeline.dataset_crop_stage(NAME, group, shard, n_workers, data_root, subdir=subdir,
                                    skip_broken=skip_broken, max_angle_from_axis_deg=angle)
    fileio.save_json(sorted(subdirs), work_dir(data_root) / CROP_GROUPS_FILE)


def make_dataset(data_root=None):
    """EgoHumans: COCO-17 world joints (mm, the anchor Aria's frame) of ego and exo views, all TRAIN."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    from posepile.util import fileio
    groups_path = work_dir(data_root) / CROP_GROUPS_FILE
    if not groups_path.exists():
        raise FileNotFoundError(f'{groups_path} not found: run the crop stage of posepile/ds/{NAME}/main.sh first')
    results = []
    for subdir in fileio.load_json(groups_path):
        results += pipeline.recipe_crop_results(NAME, data_root, subdir)
    results.sort(key=lambda item: item[0])  # ego views first, then exo
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), [pinhole_model_name(ex) for _, ex in results])


def pinhole_model_name(example):
    """A crop camera has no lens left (Camera.undistort keeps the model's name): call it 'opencv', the name the
    annotation store knows for a distortion-free camera."""
    if example.camera is not None and example.camera.distortion_coeffs is None:
        example.camera.distortion_model = 'opencv'
    return example


def assemble(data_root=None):
    """The dataset for get_dataset('egohumans')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.egohumans.main', 'EgoHumans stages', {
        'detect': detect_stage, 'crop': crop_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
