"""BML-MoVi: V3D marker mocap (120 Hz) with videos of two calibrated (PG) and two handheld (CP) cameras.

Raw layout under $DATA_ROOT/bml_movi (as the original PosePile read it):
    <round>_<camera>_Subject_<i>[_L].{avi,mp4}  videos; round F, S1 or S2; camera PG1, PG2 (800x600, AVI,
                                                named ..._L.avi) or CP1, CP2 (1920x1080 mp4), 30 fps
    F_Subjects_1_45/F_v3d_Subject_<i>.mat, F_Subjects_46_90/F_v3d_Subject_<i>.mat, S/S_v3d_Subject_<i>.mat
        MATLAB struct Subject_<i>_F (Subject_<i>_S): field move (S rounds: a 2-element struct array, S1 and
        S2) with markerLocation and virtualMarkerLocation, (T, n, 3) world mm, z up, 120 Hz
    Calib/Extrinsics_PG<k>.npz      rotationMatrix 3x3, translationVector (3,) mm, MATLAB row-vector
                                    convention x_cam = X_world . R + t
    Calib/cameraParams_PG<k>.npz    IntrinsicMatrix (MATLAB-transposed: [[fx 0 0] [s fy 0] [cx cy 1]]),
                                    RadialDistortion [k1, k2] (MATLAB's 1-based pixel coordinates)
    keypoints2d/<video stem>.npz    (not in the release) per-frame 2D keypoints of a CP video from any pose
                                    estimator: keypoints (N, J, 2) px (NaN = missing), joint_names (J,)
                                    from JOINT_NAMES; the CP cameras are calibrated from these

Joints: 87 = the 67 markers and the 20 virtual markers (joints) of V3D, names as the original. F rounds:
markerLocation (67, or already 87 wide) followed by virtualMarkerLocation (20). S rounds: 15 of the 17
columns of move[round].markerLocation go to their places among the 87 (the original's index remap), the
rest is NaN. A joint is missing (NaN) when all its coordinates are below 1e-3 in magnitude (the V3D export
writes zeros in gaps). The original set every single coordinate < 1e-3 to NaN, which also blanks out
negative coordinates of valid markers (the room's origin is in the capture volume).

Time: video frame i shows the mocap at t = i / fps - offset seconds, i.e. sample (i / fps - offset) * 120,
linearly interpolated (the toolbox's worldToVideo pairs PG frame i with sample 4 i: offset 0).

Cameras: PG from the npz files (load_camera). CP cameras have no calibration in the release: the original
estimated them from a pose model's predictions. Here `calibrate_cp` estimates, from per-frame 2D keypoints
of any source, the time offset (grid over whole video frames, scored by the reprojection error after a
RANSAC PnP fit with the fixed intrinsics, then refined below a frame) and the extrinsics (RANSAC PnP with
fixed intrinsics, f = 1508.7021 px at 1920 px width, principal point at the image centre, as the original);
CP2 is handheld and gets a camera per frame. Frames whose camera rolls by > 7 degrees are not used
(original).

Selection per video: AdaptivePoseSampler2(100 mm, check_validity, NaN unchanged, buffer 500) on the 87
joints (original). Box: projected joints' box x1.05; with a detector (POSEPILE_DETECTOR) the detection of
best IoU with it (the original took the best even at IoU 0; here it must overlap). All examples TRAIN.
"""
import json
import logging
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

NAME = 'bml_movi'
JOINT_NAMES = (
    'backneck,upperback,clavicle,sternum,umbilicus,lfronthead,lbackhead,lback,lshom,'
    'lupperarm,lelbm,lforearm,lwrithumbside,lwripinkieside,lfin,lasis,lpsis,lfrontthigh,'
    'lthigh,lknem,lankm,lhee,lfifthmetatarsal,ltoe,lcheek,lbreast,lelbinner,lwaist,lthumb,'
    'lfrontinnerthigh,linnerknee,lshin,lfirstmetatarsal,lfourthtoe,lscapula,lbum,rfronthead,'
    'rbackhead,rback,rshom,rupperarm,relbm,rforearm,rwrithumbside,rwripinkieside,rfin,'
    'rasis,rpsis,rfrontthigh,rthigh,rknem,rankm,rhee,rfifthmetatarsal,rtoe,rcheek,rbreast,'
    'relbinner,rwaist,rthumb,rfrontinnerthigh,rinnerknee,rshin,rfirstmetatarsal,rfourthtoe,'
    'rscapula,rbum,head,mhip,pelv,thor,lank,lelb,lhip,lhan,lkne,lsho,lwri,lfoo,rank,relb,'
    'rhip,rhan,rkne,rsho,rwri,rfoo')
JOINT_EDGES = 'head-thor-pelv-mhip,thor-rsho-relb-rwri-rhan,mhip-rhip-rkne-rank-rfoo'
N_MARKERS, N_VIRTUAL, N_JOINTS = 67, 20, 87
# S rounds: columns of markerLocation -> places among the 87 joints (the original's remap)
S_ROUND_COLUMNS_IN = tuple(i for i in range(17) if i not in (5, 11))
S_ROUND_JOINTS_OUT = (5, 6, 12, 13, 20, 36, 37, 43, 44, 51, 67, 71, 77, 79, 85)
S_ROUND_WIDTH = 17
MOCAP_HZ = 120
MISSING_BELOW_MM = 1e-3
WORLD_UP = (0, 0, 1)
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 500
BOX_EXPANSION = 1.05
MIN_DETECTION_IOU = 1e-6
MAX_ROLL_DEG = 7
CP_FOCAL_PX_AT_1920 = 1508.7021
CP_INLIER_PX = 15
VIDEO_PATTERN = re.compile(r'(?P<round>F|S[12])_(?P<camera>(?:CP|PG)[12])_Subject_(?P<subject>\d+)(?:_L)?\.(?:mp4|avi)')

logger = logging.getLogger(__name__)


class MoviFormatError(InputError):
    """A raw BML-MoVi file is malformed (the message names the file)."""


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


# ------------------------------------------------------------------------------------------------
# Readers
def _npz_array(path, content, key, shape):
    if key not in content:
        raise MoviFormatError(f'{path}: no array {key!r} (has {sorted(content.keys())})')
    array = np.asarray(content[key], np.float64)
    if array.size != int(np.prod(shape)) or not np.all(np.isfinite(array)):
        raise MoviFormatError(f'{path}: {key} must hold {int(np.prod(shape))} finite numbers, got shape '
                              f'{array.shape}')
    return array.reshape(shape)


def _load_npz(path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f'file not found: {path}')
    try:
        with np.load(path, allow_pickle=False) as content:
            return {k: content[k] for k in content.files}
    except (OSError, ValueError) as e:
        raise MoviFormatError(f'{path}: cannot read npz ({e})') from None


def load_camera(extrinsics_npz, camera_params_npz):
    """The Camera (mm, world z up) of a PG camera from Extrinsics_PG<k>.npz and cameraParams_PG<k>.npz.

    MATLAB conventions: x_cam = X . rotationMatrix + translationVector (row vectors), so the world-to-camera
    rotation is rotationMatrix^T and the optical centre -rotationMatrix . t; IntrinsicMatrix is transposed;
    RadialDistortion = OpenCV's k1, k2; MATLAB pixel coordinates are 1-based, so the principal point moves
    by -1 px to posepile's 0-based pixel centres."""
    from posepile.util.camera import Camera
    extrinsics = _load_npz(extrinsics_npz)
    params = _load_npz(camera_params_npz)
    rotation = _npz_array(extrinsics_npz, extrinsics, 'rotationMatrix', (3, 3))
    translation = _npz_array(extrinsics_npz, extrinsics, 'translationVector', (3,))
    intrinsics = _npz_array(camera_params_npz, params, 'IntrinsicMatrix', (3, 3)).T.copy()
    radial = _npz_array(camera_params_npz, params, 'RadialDistortion', (2,))
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4) or np.linalg.det(rotation) < 0:
        raise MoviFormatError(f'{extrinsics_npz}: rotationMatrix is not a rotation matrix')
    if not np.allclose(intrinsics[2], [0, 0, 1]) or intrinsics[0, 0] <= 0 or intrinsics[1, 1] <= 0:
        raise MoviFormatError(f'{camera_params_npz}: IntrinsicMatrix is not a (transposed) intrinsic matrix')
    if np.max(np.abs(translation)) < 100:
        raise MoviFormatError(f'{extrinsics_npz}: translationVector {translation.tolist()} is not in mm')
    intrinsics[:2, 2] -= 1  # 1-based (MATLAB) -> 0-based pixel centres
    return Camera(optical_center=-rotation @ translation, rot_world_to_cam=rotation.T, intrinsic_matrix=intrinsics,
                  distortion_coeffs=[radial[0], radial[1], 0, 0, 0], world_up=WORLD_UP)


def mocap_path(root, round_name, subject):
    subject = int(subject)
    if round_name == 'F':
        folder = 'F_Subjects_1_45' if subject <= 45 else 'F_Subjects_46_90'
        return Path(root) / folder / f'F_v3d_Subject_{subject}.mat'
    return Path(root) / 'S' / f'S_v3d_Subject_{subject}.mat'


def _field(path, struct, name):
    value = getattr(struct, name, None)
    if value is None:
        raise MoviFormatError(f'{path}: the move struct has no field {name!r}')
    array = np.asarray(value, np.float64)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0:
        raise MoviFormatError(f'{path}: {name} has shape {array.shape}, expected (T, n, 3)')
    return array


def load_mocap(mat_path, round_name, subject):
    """float32 (T, 87, 3) world mm (z up, 120 Hz) of one round ('F', 'S1', 'S2') of a subject; NaN = missing."""
    import scipy.io
    mat_path = Path(mat_path)
    if not mat_path.exists():
        raise FileNotFoundError(f'mocap file not found: {mat_path}')
    key = f'Subject_{int(subject)}_{round_name[0]}'
    try:
        content = scipy.io.loadmat(str(mat_path), struct_as_record=False, squeeze_me=True, variable_names=[key])
    except NotImplementedError:
        raise MoviFormatError(f'{mat_path}: MATLAB v7.3 (HDF5) files are not supported') from None
    except Exception as e:  # noqa: BLE001 - scipy raises several types for corrupt files
        raise MoviFormatError(f'{mat_path}: cannot read MATLAB file ({e})') from None
    if key not in content:
        raise MoviFormatError(f'{mat_path}: no variable {key}')
    move = getattr(content[key], 'move', None)
    if move is None:
        raise MoviFormatError(f'{mat_path}: {key} has no field move')
    if round_name == 'F':
        coords = _f_round(mat_path, move)
    else:
        moves = np.atleast_1d(move)
        number = int(round_name[1]) - 1
        if len(moves) <= number:
            raise MoviFormatError(f'{mat_path}: {key}.move has {len(moves)} elements, round {round_name} missing')
        coords = _s_round(mat_path, moves[number])
    coords = coords.copy()
    coords[np.all(np.abs(coords) < MISSING_BELOW_MM, axis=-1) | np.any(np.isnan(coords), axis=-1)] = np.nan
    if np.nanmax(np.abs(coords), initial=0) > 50_000:
        raise MoviFormatError(f'{mat_path}: coordinates reach {np.nanmax(np.abs(coords)):.0f}: not mm')
    return coords.astype(np.float32)


def _f_round(path, move):
    markers = _field(path, move, 'markerLocation')
    if markers.shape[1] == N_JOINTS:
        return markers
    virtual = _field(path, move, 'virtualMarkerLocation')
    if markers.shape[1] != N_MARKERS or virtual.shape[1] != N_VIRTUAL or len(markers) != len(virtual):
        raise MoviFormatError(f'{path}: markerLocation {markers.shape} and virtualMarkerLocation {virtual.shape}: '
                              f'expected (T, {N_MARKERS}, 3) and (T, {N_VIRTUAL}, 3)')
    return np.concatenate([markers, virtual], axis=1)


def _s_round(path, move):
    markers = _field(path, move, 'markerLocation')
    if markers.shape[1] != S_ROUND_WIDTH:
        raise MoviFormatError(f'{path}: S-round markerLocation has {markers.shape[1]} columns, expected '
                              f'{S_ROUND_WIDTH}')
    coords = np.full((len(markers), N_JOINTS, 3), np.nan)
    coords[:, list(S_ROUND_JOINTS_OUT)] = markers[:, list(S_ROUND_COLUMNS_IN)]
    return coords


def poses_at_frames(mocap_mm, frames, fps, offset_s=0.0):
    """(len(frames), J, 3) mocap linearly interpolated at the times of video frames (t = i / fps - offset);
    NaN outside the recording."""
    mocap_mm = np.asarray(mocap_mm, np.float64)
    positions = (np.asarray(frames, np.float64) / fps - offset_s) * MOCAP_HZ
    result = np.full((len(positions),) + mocap_mm.shape[1:], np.nan)
    inside = (positions >= 0) & (positions <= len(mocap_mm) - 1)
    lower = np.floor(positions[inside]).astype(int)
    weight = (positions[inside] - lower)[:, None, None]
    upper = np.minimum(lower + 1, len(mocap_mm) - 1)
    exact = weight[:, 0, 0] == 0
    blended = mocap_mm[lower] * (1 - weight) + mocap_mm[upper] * weight
    blended[exact] = mocap_mm[lower[exact]]  # no NaN leaks from the next sample at exact samples
    result[inside] = blended
    return result


def n_frames_with_mocap(n_mocap, fps, offset_s=0.0):
    """Frames i >= 0 whose time i / fps - offset falls inside the mocap recording (may start late)."""
    return int(np.floor(((n_mocap - 1) / MOCAP_HZ + offset_s) * fps + 1e-9)) + 1


def video_info(video_path):
    """(frame count, fps) of a video (header values; frames counted by decoding when the header lacks them)."""
    import av

    from posepile.util.video import VideoReadError, count_frames
    video_path = Path(video_path)
    if not video_path.exists():
        raise FileNotFoundError(f'video not found: {video_path}')
    try:
        with av.open(str(video_path)) as container:
            stream = container.streams.video[0]
            n, rate = int(stream.frames or 0), stream.average_rate or stream.guessed_rate
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as e:
        raise VideoReadError(video_path, -1, e) from e
    if not rate:
        raise MoviFormatError(f'{video_path}: the video stream has no frame rate')
    return (n if n > 0 else count_frames(video_path)), float(rate)


def camera_roll_deg(camera):
    """Angle (degrees) between the camera's x axis and the horizontal direction orthogonal to its view."""
    forward, right = camera.R[2], camera.R[0]
    expected = np.cross(forward, camera.world_up)
    norm = np.linalg.norm(expected)
    if norm < 1e-9:
        return 90.0
    return float(np.rad2deg(np.arccos(np.clip(expected / norm @ right, -1, 1))))


# ------------------------------------------------------------------------------------------------
# CP camera calibration from 2D keypoints
def cp_intrinsics(image_size):
    """The original's fixed CP intrinsics (f = 1508.7021 px at 1920 px width, principal point at the
    centre), scaled to the video's (width, height) px."""
    width, height = image_size
    focal = CP_FOCAL_PX_AT_1920 * width / 1920
    return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])


def load_keypoints(npz_path):
    """(keypoints (N, J, 2) px with NaN, joint indices (J,) into JOINT_NAMES) of a keypoints2d/*.npz file."""
    npz_path = Path(npz_path)
    if not npz_path.exists():
        raise FileNotFoundError(f'keypoints file not found: {npz_path}')
    content = _load_npz(npz_path)
    if 'keypoints' not in content or 'joint_names' not in content:
        raise MoviFormatError(f'{npz_path}: expected arrays keypoints (N, J, 2) and joint_names (J,)')
    keypoints = np.asarray(content['keypoints'], np.float64)
    names = [str(n) for n in np.asarray(content['joint_names']).reshape(-1)]
    if keypoints.ndim != 3 or keypoints.shape[1] != len(names) or keypoints.shape[2] not in (2, 3):
        raise MoviFormatError(f'{npz_path}: keypoints has shape {keypoints.shape}, expected (N, {len(names)}, 2)')
    unknown = [n for n in names if n not in JOINT_NAMES.split(',')]
    if unknown:
        raise MoviFormatError(f'{npz_path}: unknown joint names {unknown[:5]}')
    all_names = JOINT_NAMES.split(',')
    return keypoints[..., :2], np.array([all_names.index(n) for n in names])


def _pnp(world, image, intrinsics, ransac=True):
    """(rvec, tvec, errors px of all given points) of a PnP fit with fixed intrinsics, or None."""
    import cv2
    valid = np.all(np.isfinite(world), axis=1) & np.all(np.isfinite(image), axis=1)
    w, i = world[valid].astype(np.float64), image[valid].astype(np.float64)
    if len(w) < 6:
        return None
    try:
        if ransac:
            ok, rvec, tvec, inliers = cv2.solvePnPRansac(
                w, i, intrinsics, None, iterationsCount=100, reprojectionError=CP_INLIER_PX, confidence=0.999,
                flags=cv2.SOLVEPNP_EPNP)
            if not ok or inliers is None or len(inliers) < 6:
                return None
            inliers = inliers.reshape(-1)
        else:
            ok, rvec, tvec = cv2.solvePnP(w, i, intrinsics, None, flags=cv2.SOLVEPNP_EPNP)
            inliers = np.arange(len(w))
            if not ok:
                return None
        rvec, tvec = cv2.solvePnPRefineLM(w[inliers], i[inliers], intrinsics, None, rvec, tvec)
    except cv2.error:
        return None
    projected, _ = cv2.projectPoints(w, rvec, tvec, intrinsics, None)
    return rvec, tvec, np.linalg.norm(projected.reshape(-1, 2) - i, axis=1)


def _truncated_error(errors, n_expected):
    """Mean reprojection error with each point's error capped at the inlier threshold (missing fits count
    as the cap), px."""
    if errors is None:
        return float(CP_INLIER_PX)
    capped = np.minimum(errors, CP_INLIER_PX)
    return float((capped.sum() + CP_INLIER_PX * max(0, n_expected - len(capped))) / max(n_expected, 1))


def alignment_error(offset_s, mocap_mm, keypoints_px, fps, intrinsics, frames, moving=False):
    """How well the mocap at time offset `offset_s` fits the 2D keypoints of `frames`: the truncated mean
    reprojection error (px) after a PnP fit (one camera, or one per frame when `moving`)."""
    world = poses_at_frames(mocap_mm, frames, fps, offset_s)
    image = keypoints_px[frames]
    valid = np.all(np.isfinite(world), axis=-1) & np.all(np.isfinite(image), axis=-1)
    n_expected = int(np.count_nonzero(np.all(np.isfinite(image), axis=-1)))
    if not moving:
        fit = _pnp(world[valid], image[valid], intrinsics)
        return _truncated_error(None if fit is None else fit[2], n_expected)
    errors = []
    for w, i, v in zip(world, image, valid):
        fit = _pnp(w[v], i[v], intrinsics)
        if fit is not None:
            errors.append(fit[2])
    return _truncated_error(np.concatenate(errors) if errors else None, n_expected)


def estimate_offset_and_cameras(mocap_mm, keypoints_px, fps, intrinsics, offset_range_s=(-20, 40),
                                moving=False, max_frames_coarse=150):
    """The time offset (s; video frame i shows mocap time i / fps - offset) and the camera(s) that best explain
    per-frame 2D keypoints (N, J, 2) px of the mocap joints (T, J, 3) mm.

    A grid over whole video frames in `offset_range_s`, each candidate scored by `alignment_error` on up to
    `max_frames_coarse` frames, then a bounded scalar refinement within one frame of the best on all frames;
    extrinsics by RANSAC PnP with the fixed intrinsics on all frames (per frame when `moving`).
    Returns (offset_s, camera or {frame: camera}, rms px of the inliers)."""
    import scipy.optimize
    keypoints_px = np.asarray(keypoints_px, np.float64)
    has_points = np.flatnonzero(np.sum(np.all(np.isfinite(keypoints_px), axis=-1), axis=1) >= 6)
    if len(has_points) == 0:
        raise ValueError('no frame has 6 or more 2D keypoints')
    coarse_frames = has_points[np.linspace(0, len(has_points) - 1, min(max_frames_coarse, len(has_points)))
                               .round().astype(int)]
    grid = np.arange(np.ceil(offset_range_s[0] * fps), np.floor(offset_range_s[1] * fps) + 1) / fps
    errors = [alignment_error(o, mocap_mm, keypoints_px, fps, intrinsics, coarse_frames, moving) for o in grid]
    best = float(grid[int(np.argmin(errors))])
    result = scipy.optimize.minimize_scalar(
        alignment_error, bounds=(best - 1 / fps, best + 1 / fps), method='bounded',
        args=(mocap_mm, keypoints_px, fps, intrinsics, has_points, moving), options=dict(xatol=0.05 / fps))
    offset = float(result.x) if result.fun <= alignment_error(
        best, mocap_mm, keypoints_px, fps, intrinsics, has_points, moving) else best
    cameras, rms = _fit_cameras(offset, mocap_mm, keypoints_px, fps, intrinsics, has_points, moving)
    return offset, cameras, rms


def _camera_from_pnp(rvec, tvec, intrinsics):
    import cv2

    from posepile.util.camera import Camera
    rotation = cv2.Rodrigues(rvec)[0]
    return Camera(optical_center=-rotation.T @ tvec.reshape(3), rot_world_to_cam=rotation,
                  intrinsic_matrix=intrinsics, world_up=WORLD_UP)


def _fit_cameras(offset, mocap_mm, keypoints_px, fps, intrinsics, frames, moving):
    world = poses_at_frames(mocap_mm, frames, fps, offset)
    image = keypoints_px[frames]
    if not moving:
        fit = _pnp(world.reshape(-1, 3), image.reshape(-1, 2), intrinsics)
        if fit is None:
            raise ValueError('PnP found no camera for the keypoints')
        inlier_errors = fit[2][fit[2] < CP_INLIER_PX]
        return _camera_from_pnp(fit[0], fit[1], intrinsics), float(np.sqrt(np.mean(inlier_errors ** 2)))
    cameras, inlier_errors = {}, []
    for frame, w, i in zip(frames, world, image):
        fit = _pnp(w, i, intrinsics)
        if fit is not None:
            cameras[int(frame)] = _camera_from_pnp(fit[0], fit[1], intrinsics)
            inlier_errors.append(fit[2][fit[2] < CP_INLIER_PX])
    if not cameras:
        raise ValueError('PnP found no camera in any frame')
    return cameras, float(np.sqrt(np.mean(np.concatenate(inlier_errors) ** 2)))


def _camera_to_json(camera):
    return {'R': camera.R.tolist(), 'optical_center_mm': camera.t.tolist(), 'K': camera.intrinsic_matrix.tolist()}


def _camera_from_json(entry):
    from posepile.util.camera import Camera
    return Camera(optical_center=entry['optical_center_mm'], rot_world_to_cam=entry['R'],
                  intrinsic_matrix=entry['K'], world_up=WORLD_UP)


# ------------------------------------------------------------------------------------------------
# Stages
def find_videos(root):
    """[(video path, round, camera, subject)] of the videos in the raw root, sorted."""
    found = []
    for path in sorted(Path(root).iterdir()) if Path(root).is_dir() else []:
        match = VIDEO_PATTERN.fullmatch(path.name)
        if match:
            found.append((path, match['round'], match['camera'], int(match['subject'])))
    return found


def calibration_path(data_root, video_path):
    return work_dir(data_root) / 'cp_calibration' / f'{Path(video_path).stem}.json'


@pipeline.cli_options(('--offset-range', dict(dest='offset_range_s', type=float, nargs=2, default=(-20.0, 40.0),
                                              help='time offsets searched, s (default -20 40, the original)')))
def calibrate_cp_stage(offset_range_s=(-20.0, 40.0), data_root=None):
    """Time offset and extrinsics of every CP video that has keypoints2d/<video>.npz (others: skipped, logged)."""
    from posepile.util import fileio
    root = raw_root(data_root)
    for video_path, round_name, camera_name, subject in find_videos(root):
        if not camera_name.startswith('CP'):
            continue
        out_path = calibration_path(data_root, video_path)
        keypoints_path = root / 'keypoints2d' / f'{video_path.stem}.npz'
        if out_path.exists():
            continue
        if not keypoints_path.exists():
            logger.info('%s: no %s (2D keypoints): CP camera not calibrated, video skipped', video_path.name,
                        keypoints_path)
            continue
        keypoints, joint_indices = load_keypoints(keypoints_path)
        mocap = load_mocap(mocap_path(root, round_name, subject), round_name, subject)[:, joint_indices]
        n_frames, fps = video_info(video_path)
        width, height = _video_size(video_path)
        intrinsics = cp_intrinsics((width, height))
        offset, cameras, rms = estimate_offset_and_cameras(
            mocap, keypoints[:n_frames], fps, intrinsics, offset_range_s, moving=camera_name == 'CP2')
        logger.info('%s: time offset %.4f s, RMS reprojection error %.2f px', video_path.name, offset, rms)
        entry = {'time_offset_s': offset, 'rms_px': rms, 'fps': fps}
        if isinstance(cameras, dict):
            entry['cameras'] = {str(k): _camera_to_json(c) for k, c in cameras.items()}
        else:
            entry['camera'] = _camera_to_json(cameras)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        fileio.save_json(entry, out_path)


def _video_size(video_path):
    import av
    with av.open(str(video_path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height


def video_cameras(data_root, video_path, camera_name, n_frames):
    """(offset s, [Camera or None per frame]) of a video, or None when a CP video has no calibration."""
    root = raw_root(data_root)
    if camera_name.startswith('PG'):
        camera = load_camera(root / 'Calib' / f'Extrinsics_{camera_name}.npz',
                             root / 'Calib' / f'cameraParams_{camera_name}.npz')
        return 0.0, [camera] * n_frames
    path = calibration_path(data_root, video_path)
    if not path.exists():
        return None
    entry = json.loads(path.read_text())
    if 'camera' in entry:
        return entry['time_offset_s'], [_camera_from_json(entry['camera'])] * n_frames
    per_frame = {int(k): _camera_from_json(v) for k, v in entry['cameras'].items()}
    return entry['time_offset_s'], [per_frame.get(i) for i in range(n_frames)]


def select_video(mocap_mm, cameras, fps, offset_s):
    """Frame indices kept in one video: frames with mocap, a camera rolling <= 7 degrees, and selected by
    AdaptivePoseSampler2(100 mm, check_validity, NaN unchanged, buffer 500)."""
    from posepile.util.sampling import select_frames
    n = min(len(cameras), n_frames_with_mocap(len(mocap_mm), fps, offset_s))
    poses = poses_at_frames(mocap_mm, np.arange(n), fps, offset_s)
    usable = [i for i in range(n) if cameras[i] is not None and camera_roll_deg(cameras[i]) <= MAX_ROLL_DEG
              and np.any(np.all(np.isfinite(poses[i]), axis=-1))]
    if not usable:
        return []
    kept = select_frames(poses[usable], SELECTION_THRESHOLD_MM, SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)
    return [usable[i] for i in kept]


def select_stage(data_root=None):
    """Frames kept per video; writes posepile_work/selection.json {video file name: [frames]}."""
    from tqdm import tqdm

    from posepile.util import fileio
    out_path = work_dir(data_root) / 'selection.json'
    if out_path.exists():
        return fileio.load_json(out_path)
    root = raw_root(data_root)
    videos = find_videos(root)
    if not videos:
        raise FileNotFoundError(f'{root} holds no <round>_<camera>_Subject_<i> videos: extract the release first')
    selection = {}
    for video_path, round_name, camera_name, subject in tqdm(videos, desc='bml_movi select'):
        n_frames, fps = video_info(video_path)
        cameras = video_cameras(data_root, video_path, camera_name, n_frames)
        if cameras is None:
            logger.info('%s: no CP calibration (run the calibrate-cp stage with 2D keypoints): skipped',
                        video_path.name)
            continue
        offset, per_frame = cameras
        mocap = load_mocap(mocap_path(root, round_name, subject), round_name, subject)
        selection[video_path.name] = {'fps': fps, 'frames': select_video(mocap, per_frame, fps, offset)}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fileio.save_json(selection, out_path)
    return selection


def gt_box(camera, world_mm):
    from posepile.util import boxes
    return boxes.expand(boxes.bb_of_points(camera.world_to_image(world_mm)), BOX_EXPANSION)


def make_video_tasks(data_root=None):
    """One VideoTask per selected video: {frame: [PersonTask]}."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    root = raw_root(data_root)
    selection = select_stage(data_root)
    tasks = []
    for video_path, round_name, camera_name, subject in find_videos(root):
        entry = selection.get(video_path.name)
        if not entry or not entry['frames']:
            continue
        frames, fps = entry['frames'], entry['fps']
        offset, cameras = video_cameras(data_root, video_path, camera_name, max(frames) + 1)
        mocap = load_mocap(mocap_path(root, round_name, subject), round_name, subject)
        poses = poses_at_frames(mocap, frames, fps, offset).astype(np.float32)
        video_relpath = f'{NAME}/{video_path.name}'
        frame_tasks = {}
        for frame, world in zip(frames, poses):
            camera = cameras[frame]
            example = Pose3DExample(f'{video_relpath}#{frame}', world, gt_box(camera, world), camera,
                                    activity_name=round_name, scene_name=f'Subject_{subject}')
            frame_tasks[frame] = [PersonTask(f'0/{video_path.stem}/{frame:06d}', example,
                                             f'{NAME}_downscaled/{video_path.name}/{frame:06d}.jpg')]
        tasks.append(VideoTask(video_path.stem, video_relpath, frame_tasks))
    return tasks


def box_rule(detector_spec):
    """GT box without a detector; with one, the detection of best IoU with it (any overlap)."""
    from posepile.preproc.video_stage import BoxRule
    return BoxRule('best_iou', MIN_DETECTION_IOU) if detector_spec else BoxRule('gt')


@pipeline.cli_options(pipeline.DETECTOR_OPTION, pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION)
def video_stage(detector_spec=None, shard=None, n_workers=None, skip_broken=None, keep_frames=False,
                data_root=None):
    """One pass per video: crops of the selected frames (boxes by the detector when one is given)."""
    from posepile.joint_info import JointInfo
    detector_spec = pipeline.configured_detector(detector_spec)
    pipeline.dataset_video_stage(
        NAME, make_video_tasks(data_root), shard, n_workers, data_root, detector_spec=detector_spec,
        box_rule=box_rule(detector_spec), skip_broken=skip_broken, keep_frames=keep_frames,
        joint_edges=JointInfo(JOINT_NAMES, JOINT_EDGES).stick_figure_edges)


def make_dataset(data_root=None):
    """BML-MoVi: all TRAIN, 87 joints (67 markers + 20 virtual), world mm (z up)."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0])


def assemble_stage(data_root=None):
    """The dataset for get_dataset('bml_movi')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.bml_movi.main', 'BML-MoVi stages', {
        'calibrate-cp': calibrate_cp_stage, 'select': select_stage, 'video': video_stage,
        'assemble': assemble_stage})


if __name__ == '__main__':
    main()
