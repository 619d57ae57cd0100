"""InterCap: readers of the raw release and the recipe's stages (parametric-only SMPL-X examples, NLF era).

Raw layout under $DATA_ROOT/intercap (the image and fit zips extracted; the calibration folders from the official
toolkit repository github.com/YinghaoHuang91/InterCap, Data/):

    Data/calibration_{first,second,third}/Color.json, Color_2.json ... Color_6.json
        {"f": [fx, fy], "c": [cx, cy], "k": 8 OpenCV rational terms (k1 k2 p1 p2 k3 k4 k5 k6),
         "R": Rodrigues vector, "T": 3 numbers (m)}: X_cam = R(rodrigues) X_world + T, world = camera 1's frame
    RGBD_Images/<subject 01..10>/<motion 01..10>/Seg_<k>/Frames_Cam<1..6>/color/<frame 00000>.jpg   1920x1080
        (the original names the folder RGBD_Individuals; either name is accepted)
    Res_Individuals/<subject>/<motion>/Seg_<k>/res_1.pkl
        list, one dict per frame, of (1, n) arrays: global_orient 3, body_pose 63, jaw_pose, leye_pose, reye_pose
        3, left_hand_pose, right_hand_pose (PCA coefficients, <= 45), betas (10), expression (10), transl 3 (m,
        world = camera 1 frame)

Which calibration set a (subject, motion) uses is the original's rule (the JSONs equal its hard-coded extrinsics,
/work/shared/realdata/REFERENCE-nlf-era.md): `second` for subjects 8-10 and for motions 8-10 of subjects 1, 2, 4-7;
`third` for subject 3 motions 8-10 and subjects 5-7 motions 1-7; `first` otherwise. Unlike the original, the
intrinsics are read from those files: the original's hard-coded cameras 4 and 5 carry each other's focal length
and principal point (and camera 4 a distortion found in no file); docs/fidelity.md.

Examples (as the original's intercap): per segment, the frames kept by AdaptivePoseSampler2(100 mm, buffer 100) on
the 55 SMPL-X joints of the fit (pose with the PCA hands expanded and the hand mean added, betas, transl; mm) x the
6 Kinects; box = the projected joints' box x1.1 replaced by the best detection (IoU >= 0.1) when the detect stage
ran, in which case views without such a detection are dropped, as the original; the two JPEGs the original found
broken are skipped. `world_coords` is None (JointInfo([], [])); `parameters` = {'type': 'smplx', gender (the
original's per-subject table), pose (165), shape (betas), trans (m), expression} in the world frame of the
example's camera (posepile/bodymodels/transform.py). Masks: the segment stage (the original segmented every crop).
"""
import logging
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'intercap'
N_CAMERAS = 6
IMAGE_SIZE = (1080, 1920)  # (height, width) px of the Kinect colour images
IMAGE_FOLDERS = ('RGBD_Images', 'RGBD_Individuals')
FITS_FOLDER = 'Res_Individuals'
FIT_FILE = 'res_1.pkl'
# the original's per-subject gender table (subjects 1..10)
GENDERS = ('male', 'male', 'female', 'male', 'male', 'female', 'female', 'female', 'female', 'male')
BROKEN_IMAGES = ('07/04/Seg_1/Frames_Cam3/color/00170.jpg', '09/08/Seg_0/Frames_Cam2/color/00078.jpg')
BOX_EXPANSION = 1.1
MIN_DETECTION_IOU = 0.1
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 100
POSE_PARTS = ('global_orient', 'body_pose', 'jaw_pose', 'leye_pose', 'reye_pose')
POSE_SIZES = {'global_orient': 3, 'body_pose': 63, 'jaw_pose': 3, 'leye_pose': 3, 'reye_pose': 3}


class InterCapFormatError(InputError):
    """A raw InterCap file is missing, unreadable or malformed (one line naming the file)."""


# ------------------------------------------------------------------------------------------------
# Calibration
def calibration_set(subject, motion):
    """'first', 'second' or 'third': the calibration folder of a capture (the original's rule)."""
    subject, motion = int(subject), int(motion)
    if subject in (8, 9, 10) or (subject in (1, 2, 4, 5, 6, 7) and motion in (8, 9, 10)):
        return 'second'
    if (subject == 3 and motion in (8, 9, 10)) or (subject in (5, 6, 7) and 1 <= motion <= 7):
        return 'third'
    return 'first'


def calibration_path(root, which, camera_index):
    """Data/calibration_<which>/Color.json for camera 1, Color_<i>.json for cameras 2..6."""
    name = 'Color.json' if camera_index == 1 else f'Color_{camera_index}.json'
    return Path(root) / 'Data' / f'calibration_{which}' / name


def _numbers(path, data, key, count):
    try:
        values = np.asarray(data[key], np.float64).reshape(-1)
    except KeyError:
        raise InterCapFormatError(f'{path}: no "{key}"') from None
    except (TypeError, ValueError):
        raise InterCapFormatError(f'{path}: "{key}" is not a list of numbers') from None
    if values.size != count or not np.all(np.isfinite(values)):
        raise InterCapFormatError(f'{path}: "{key}" has {values.size} values (expected {count} finite numbers)')
    return values


def load_camera(path):
    """Camera (mm) of one calibration JSON: K from f and c, the 8 OpenCV distortion terms k, world-to-camera
    R = Rodrigues(R), optical centre = -R^T T x 1000 (T in metres)."""
    import cv2

    from posepile.util import fileio
    from posepile.util.camera import Camera
    data = fileio.load_json(path, InterCapFormatError)
    if not isinstance(data, dict):
        raise InterCapFormatError(f'{path}: expected a JSON object with f, c, k, R, T')
    (fx, fy), (cx, cy) = _numbers(path, data, 'f', 2), _numbers(path, data, 'c', 2)
    if fx <= 0 or fy <= 0:
        raise InterCapFormatError(f'{path}: non-positive focal length ({fx}, {fy})')
    distortion = _numbers(path, data, 'k', 8)
    rotation = cv2.Rodrigues(_numbers(path, data, 'R', 3))[0]
    translation_m = _numbers(path, data, 'T', 3)
    if np.abs(translation_m).max() > 100:
        raise InterCapFormatError(f'{path}: T {translation_m.tolist()} is implausible for metres')
    return Camera(optical_center=-rotation.T @ translation_m * 1000, rot_world_to_cam=rotation,
                  intrinsic_matrix=[[fx, 0, cx], [0, fy, cy], [0, 0, 1]], distortion_coeffs=distortion)


def load_cameras(root, subject, motion):
    """The 6 Kinect cameras of a capture (index 0 = camera 1), world_up = the normalised sum of the cameras'
    up vectors -R[1] (as the original)."""
    which = calibration_set(subject, motion)
    cameras = [load_camera(calibration_path(root, which, i)) for i in range(1, N_CAMERAS + 1)]
    up = np.sum([-camera.R[1] for camera in cameras], axis=0)
    for camera in cameras:
        camera.world_up = up / np.linalg.norm(up)
    return cameras


# ------------------------------------------------------------------------------------------------
# Fits
def load_fits(path):
    """The per-frame SMPL-X fits of a res_1.pkl: list of dicts of 1-D float64 arrays (global_orient, body_pose,
    jaw_pose, leye_pose, reye_pose, left/right_hand_pose PCA coefficients, betas, expression, transl).
    Read with posepile's restricted unpickler (numpy arrays and builtins only; no code in the file runs)."""
    import pickle

    from posepile.bodymodels.loading import BodyModelFormatError, restricted_load
    try:
        with open(path, 'rb') as f:
            data = restricted_load(f)
    except FileNotFoundError:
        raise InterCapFormatError(f'{path}: not found') from None
    except (OSError, BodyModelFormatError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise InterCapFormatError(f'{path}: cannot read the fits ({type(e).__name__}: {e})') from None
    if not isinstance(data, (list, tuple)) or not data:
        raise InterCapFormatError(f'{path}: expected a non-empty list of per-frame fit dicts')
    fits = []
    for i, frame in enumerate(data):
        if not isinstance(frame, dict):
            raise InterCapFormatError(f'{path}: frame {i} is not a dict')
        fit = {}
        for key in (*POSE_PARTS, 'left_hand_pose', 'right_hand_pose', 'betas', 'transl', 'expression'):
            if key not in frame:
                if key == 'expression':
                    continue
                raise InterCapFormatError(f'{path}: frame {i} has no {key}')
            try:
                value = np.asarray(frame[key], np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise InterCapFormatError(f'{path}: frame {i} {key} is not numeric') from None
            expected = POSE_SIZES.get(key, 3 if key == 'transl' else None)
            if (expected is not None and value.size != expected) or not np.all(np.isfinite(value)) or \
                    (key.endswith('hand_pose') and value.size > 45) or value.size == 0:
                raise InterCapFormatError(f'{path}: frame {i} {key} has {value.size} values or non-finite ones')
            fit[key] = value
        fits.append(fit)
    return fits


def world_parameters(fit, gender, hand_pca):
    """The world-frame parameter dict of one fit: pose (165 = global, body 21, jaw, eyes, both hands with the PCA
    coefficients expanded and the hand mean added; `hand_pca` = posepile.bodymodels.hands.hand_pca of the model)."""
    from posepile.bodymodels.hands import smplx_full_pose
    pose = smplx_full_pose(*(fit[k] for k in POSE_PARTS), fit['left_hand_pose'], fit['right_hand_pose'],
                           hand_pca=hand_pca, use_pca=True)
    parameters = {'type': 'smplx', 'gender': gender, 'pose': pose.astype(np.float32),
                  'shape': fit['betas'].astype(np.float32), 'trans': fit['transl'].astype(np.float32)}
    if 'expression' in fit:
        parameters['expression'] = fit['expression'].astype(np.float32)
    return parameters


# ------------------------------------------------------------------------------------------------
# The raw tree
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def body_model_dir(data_root=None):
    return raw_root(data_root).parent / 'body_models'


def image_folder(root):
    for name in IMAGE_FOLDERS:
        if (Path(root) / name).is_dir():
            return Path(root) / name
    raise FileNotFoundError(f'{Path(root) / IMAGE_FOLDERS[0]} not found: extract the RGBD_Images zips into '
                            f'{root} (step 1 of main.sh)')


def segment_dirs(root):
    """[(subject, motion, segment folder name, fit path)] of Res_Individuals/<subject>/<motion>/Seg_<k>/res_1.pkl,
    sorted."""
    fits_root = Path(root) / FITS_FOLDER
    if not fits_root.is_dir():
        raise FileNotFoundError(f'{fits_root} not found: extract the Res_Individuals zip into {root} '
                                f'(step 1 of main.sh)')
    found = []
    for path in sorted(fits_root.glob(f'*/*/Seg_*/{FIT_FILE}')):
        subject, motion, seg = path.parts[-4:-1]
        if not (re.fullmatch(r'\d\d', subject) and re.fullmatch(r'\d\d', motion)):
            continue
        if not 1 <= int(subject) <= len(GENDERS):
            raise InterCapFormatError(f'{path}: subject {subject} is not one of 01..10 (no gender known)')
        found.append((subject, motion, seg, path))
    return found


def person_box(pixels, detections=None):
    """[x, y, w, h] px: the projected joints' box x1.1; with detections, the one of highest IoU >= 0.1, else None
    (the original drops such a view)."""
    from posepile.preproc.association import choose_box
    from posepile.util import boxes
    box = boxes.expand(boxes.bb_of_points(pixels), BOX_EXPANSION)
    if detections is None:
        return np.asarray(box, np.float32)
    return choose_box(box, detections, rule='best_iou', min_iou=MIN_DETECTION_IOU, fallback_to_gt=False)


def load_detections(data_root=None):
    """{relpath: (N, 5) [x, y, w, h, score] px} of the detect stage, or None when it has not run."""
    from posepile.util import fileio
    path = work_dir(data_root) / 'detections.pkl'
    return fileio.load_pickle(path) if path.exists() else None


def selected_frames(joints_mm):
    from posepile.util.sampling import select_frames
    return select_frames(joints_mm, SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)


class _GenderModels:
    """The SMPL-X model and its hand-PCA expander of each gender, loaded on first use."""

    def __init__(self, data_root):
        self.data_root, self.loaded = data_root, {}

    def __call__(self, gender):
        if gender not in self.loaded:
            from posepile import bodymodels
            from posepile.bodymodels.hands import hand_pca
            model = bodymodels.load('smplx', gender, body_model_dir(self.data_root))
            self.loaded[gender] = (model, hand_pca(model.path))
        return self.loaded[gender]


def make_crop_tasks(data_root=None):
    """(key 'train/crop relpath', example, crop relpath) per selected frame x Kinect (all InterCap is training
    data for the original)."""
    from posepile.datasets3d import TRAIN, Pose3DExample
    root = raw_root(data_root)
    images = image_folder(root)
    detections = load_detections(data_root)
    models = _GenderModels(data_root)
    counts = dict.fromkeys(['frames', 'selected', 'missing image', 'broken image', 'no detection'], 0)
    tasks = []
    for subject, motion, seg, fit_path in segment_dirs(root):
        gender = GENDERS[int(subject) - 1]
        model, hands = models(gender)
        cameras = load_cameras(root, subject, motion)
        fits = load_fits(fit_path)
        parameters = [world_parameters(fit, gender, hands) for fit in fits]
        joints_mm = model(np.stack([p['pose'] for p in parameters]), np.stack([p['shape'] for p in parameters]),
                          np.stack([p['trans'] for p in parameters]), return_vertices=False)['joints'] * 1000
        kept = selected_frames(joints_mm)
        counts['frames'] += len(fits)
        counts['selected'] += len(kept)
        for i in kept:
            for i_camera, camera in enumerate(cameras):
                member = f'{subject}/{motion}/{seg}/Frames_Cam{i_camera + 1}/color/{i:05d}.jpg'
                if member in BROKEN_IMAGES:
                    counts['broken image'] += 1
                    continue
                path = images / member
                if not path.exists():
                    counts['missing image'] += 1
                    continue
                relpath = str(path.relative_to(root.parent))
                box = person_box(camera.world_to_image(joints_mm[i]),
                                 None if detections is None else detections.get(relpath, np.zeros((0, 5))))
                if box is None:
                    counts['no detection'] += 1
                    continue
                example = Pose3DExample(relpath, None, box, camera, scene_name=f'{subject}_{motion}_{seg}',
                                        activity_name=motion, parameters=parameters[i])
                new_relpath = f'{NAME}_downscaled/{path.relative_to(root)}'
                tasks.append((f'{TRAIN}/{new_relpath}', example, new_relpath))
    logger.info('%d crop tasks; %s', len(tasks), ', '.join(f'{k} {v}' for k, v in counts.items()))
    if not tasks:
        raise FileNotFoundError(f'no usable InterCap views under {root}')
    return tasks


# ------------------------------------------------------------------------------------------------
# Stages
@pipeline.cli_options(('--detector', dict(dest='detector_spec', default='hog')))
def detect_stage(detector_spec='hog', shard=None, data_root=None):
    """Optional person detection on every colour image (then a view keeps the best detection at IoU >= 0.1 with
    the joint box, or is dropped, as the original)."""
    from posepile.preproc.detection import run_detection_stage
    root = raw_root(data_root)
    images = image_folder(root)
    relpaths = sorted(str(p.relative_to(root.parent)) for p in images.glob('*/*/Seg_*/Frames_Cam*/color/*.jpg'))
    run_detection_stage(root.parent, relpaths, work_dir(data_root) / 'detections.pkl', detector_spec, shard=shard)


def crop_stage(shard=None, n_workers=None, data_root=None, skip_broken=None):
    """Crops of the selected frames x 6 Kinects."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root,
                                skip_broken=skip_broken)


crop_stage.cli_options = [pipeline.SKIP_BROKEN_OPTION]


def masks_path(data_root=None):
    return work_dir(data_root) / 'masks.json'


@pipeline.cli_options(('--segmenter', dict(dest='segmenter_spec', default=None,
                                             help='grabcut, onnx:MODEL or tf:DIR; default $POSEPILE_SEGMENTER or '
                                                  'grabcut')))
def segment_stage(segmenter_spec=None, n_workers=None, data_root=None):
    """A person mask for every crop (the original's stage 2), to posepile_work/masks.json {crop key: RLE}."""
    pipeline.segment_crops(NAME, segmenter_spec, n_workers, data_root)


def make_dataset(data_root=None):
    """InterCap: parametric-only examples (SMPL-X in the world frame of each example's camera), person masks."""
    from posepile.datasets3d import TRAIN, Pose3DDataset
    from posepile.joint_info import JointInfo
    return Pose3DDataset(JointInfo([], []), train_examples=pipeline.examples_with_masks(NAME, data_root)[TRAIN])


def assemble(data_root=None):
    """The dataset for get_dataset('intercap')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.intercap.main', 'InterCap stages', {
        'detect': detect_stage, 'crop': crop_stage, 'segment': segment_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
