"""RICH: readers of the raw release and the recipe's stages (datasets `rich`, 127 joints, and `rich_body`, 42).

Raw layout under $DATA_ROOT/rich (the body zips extract to ps/project/multi-ioi/rich_release/, main.sh moves
their content up, as the original):

    {train,val}/<setup>_<subject ids>_<action>/cam_<cc>/<frame %05d>_<cc>.{jpg,png,bmp}   images
    {train,val}_body/<sequence>/<frame %05d>/<subject %03d>.pkl   SMPL-X fit of one person in one frame: dict of
        (1, k) arrays betas 10, global_orient 3, body_pose 63, jaw_pose, leye_pose, reye_pose 3, left_hand_pose,
        right_hand_pose (PCA coefficients, 12), expression 10, transl 3 (m, world frame)
    scan_calibration/<setup>/calibration/<camera %03d>.xml    OpenCV FileStorage: CameraMatrix 3x4 world-to-camera
        [R | t] (t in m), Intrinsics 3x3 (px), Distortion (OpenCV order)

Moving cameras have no calibration file: their images are skipped (logged with the reason). PNG/BMP images are
converted to JPEG q85 (as the original's downloader) by the `to-jpeg` stage. Genders come from the subject-id
table below (as the original). Joints: the 127 joints of the smplx library's SMPL-X output (55 skeleton joints,
the 21 vertex joints: nose, eyes, ears, toes, heels and finger tips, then the 51 face landmarks of the model's
lmk_faces_idx / lmk_bary_coords), with the fit's PCA hand poses expanded by the model's hands_components and
hands_mean (flat_hand_mean False). All coordinates in mm; world_up = -(row 1 of R).

Frames (as the original): the image frames of the sequence's first camera (the lowest camera id; the original
took the first folder os.listdir returned), each subject's fit loaded for those frames only; a subject without
a fit in a frame is left out of it. The per-subject sampler (AdaptivePoseSampler2(100, True, True, 100)) runs
over those frames, so fits of frames without images never become its reference.
`parameters` holds the SMPL-X fit (full 165-value pose) in the WORLD frame of the example's camera (the frame
of world_coords; the fit as released): `posepile.bodymodels.rototranslate(parameters, camera.R, camera.t /
1000)` gives it in the camera frame.
Masks (as the original, which segmented every crop with DeepLabV3): the `segment` stage segments each crop
with the configured segmenter ($POSEPILE_SEGMENTER, default grabcut), keeping the other subjects of the frame
out of the mask.
"""
import logging
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from posepile.joint_info import JointInfo
from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'rich'
BODY_NAME = 'rich_body'

# The original's names of the 127 smplx-package output joints (identical strings: mixes match joints by name)
JOINT_NAMES = (
    'pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,'
    'lsho,rsho,lelb,relb,lwri,rwri,jaw,leyehf,reyehf,lindex1,lindex2,lindex3,lmiddle1,'
    'lmiddle2,lmiddle3,lpinky1,lpinky2,lpinky3,lring1,lring2,lring3,lthumb1,lthumb2,'
    'lthumb3,rindex1,rindex2,rindex3,rmiddle1,rmiddle2,rmiddle3,rpinky1,rpinky2,rpinky3,'
    'rring1,rring2,rring3,rthumb1,rthumb2,rthumb3,nose,reye,leye,rear,lear,lto2,lto3,lhee,'
    'rto2,rto3,rhee,lthu,lindex,lmiddle,lring,lpinky,rthu,rindex,rmiddle,rring,rpinky,'
    'reyebrow1,reyebrow2,reyebrow3,reyebrow4,reyebrow5,leyebrow5,leyebrow4,leyebrow3,'
    'leyebrow2,leyebrow1,nose1,nose2,nose3,nose4,rnose2,rnose1,nosemiddle,lnose1,lnose2,'
    'reye1,reye2,reye3,reye4,reye5,reye6,leye4,leye3,leye2,leye1,leye6,leye5,rmouth1,rmouth2,'
    'rmouth3,mouthtop,lmouth3,lmouth2,lmouth1,lmouth5,lmouth4,mouthbottom,rmouth4,rmouth5,'
    'rlip1,rlip2,toplip,llip2,llip1,llip3,bottomlip,rlip3')
JOINT_EDGES = ('rwri-relb-rsho-rcla-thor,rank-rhee,rto2-rtoe-rto3,'
               'rear-reye-nose-head-jaw-neck-thor-spin-bell-pelv-rhip-rkne-rank-rtoe')
# rich_body: the 42-joint SMPL-X selection that AGORA uses too (indices into the 127)
BODY_INDICES = [*range(25), 28, 43, *range(55, 67), 68, 71, 73]
BODY_JOINT_NAMES = (
    'pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,relb,lwri,'
    'rwri,jaw,leyehf,reyehf,lmiddle1,rmiddle1,nose,reye,leye,rear,lear,lto2,lto3,lhee,rto2,rto3,rhee,lthu,'
    'lmiddle,rthu,rmiddle')
BODY_JOINT_EDGES = JOINT_EDGES
JOINT_INFOS = {'make_body_dataset': JointInfo(BODY_JOINT_NAMES, BODY_JOINT_EDGES)}  # registry.joint_info
# smplx library (vertex_ids['smplx'], VertexJointSelector order): face keypoints, feet, then finger tips l, r
SMPLX_VERTEX_JOINT_IDS = [9120, 9929, 9448, 616, 6,  # nose, reye, leye, rear, lear
                          5770, 5780, 8846, 8463, 8474, 8635,  # LBigToe, LSmallToe, LHeel, RBigToe, RSmallToe, RHeel
                          5361, 4933, 5058, 5169, 5286,  # lthumb, lindex, lmiddle, lring, lpinky
                          8079, 7669, 7794, 7905, 8022]  # rthumb, rindex, rmiddle, rring, rpinky
N_SKELETON_JOINTS = 55
N_LANDMARKS = 51
MALE_SUBJECTS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 20)
FEMALE_SUBJECTS = (13, 16, 18)
PHASES = {'train': 0, 'val': 1}  # the original builds train and validation (the test set has no public fits)
FIT_SIZES = {'betas': None, 'global_orient': 3, 'body_pose': 63, 'jaw_pose': 3, 'leye_pose': 3, 'reye_pose': 3,
             'left_hand_pose': None, 'right_hand_pose': None, 'expression': None, 'transl': 3}
BOX_EXPANSION = 1.05
MIN_DETECTION_IOU = 0.5  # a detection replaces the joint box when its IoU > 0.5 (strictly)
MIN_BOX_SIDE_PX = 100
SELECTION_THRESHOLD_MM = 100  # the original's AdaptivePoseSampler2(100, True, True, 100) per subject
SELECTION_BUFFER = 100
JPEG_QUALITY = 85
RAW_IMAGE_SUFFIXES = ('.png', '.bmp')
JOINTS_CHUNK = 256  # frames per body-model call (vertices of 10475 x 3 float32 per frame)
IMAGE_PATTERN = re.compile(r'^(\d+)_(\d+)\.jpg$')


class RICHFormatError(InputError):
    """A raw RICH file is missing, unreadable or malformed (one line naming the file)."""


# ------------------------------------------------------------------------------------------------
# Readers
def _matrix(root, path, tag, shape=None):
    node = root.find(tag)
    data = None if node is None else node.find('data')
    if data is None or data.text is None:
        raise RICHFormatError(f'{path}: no <{tag}><data> element')
    try:
        values = np.array([float(x) for x in data.text.split()], np.float64)
    except ValueError:
        raise RICHFormatError(f'{path}: <{tag}> data is not numeric') from None
    rows, cols = node.findtext('rows'), node.findtext('cols')
    if rows is not None and cols is not None and values.size != int(rows) * int(cols):
        raise RICHFormatError(f'{path}: <{tag}> has {values.size} values, but rows x cols = {rows} x {cols}')
    if shape is not None and values.size != int(np.prod(shape)):
        raise RICHFormatError(f'{path}: <{tag}> has {values.size} values, expected {"x".join(map(str, shape))}')
    if not np.all(np.isfinite(values)):
        raise RICHFormatError(f'{path}: <{tag}> has non-finite values')
    return values if shape is None else values.reshape(shape)


def load_camera(xml_path):
    """Camera (mm) of one static RICH camera: CameraMatrix [R | t] world-to-camera (t in m, x 1000), Intrinsics
    (px), Distortion (OpenCV order, 4, 5 or 8 values); world_up = -(row 1 of R) (the world is z-up-ish per setup,
    the cameras are upright)."""
    from posepile.util.camera import Camera
    try:
        root = ElementTree.parse(xml_path).getroot()
    except (OSError, ElementTree.ParseError) as e:
        raise RICHFormatError(f'{xml_path}: cannot read the calibration ({type(e).__name__}: {e})') from None
    extrinsic = _matrix(root, xml_path, 'CameraMatrix', (3, 4))
    rotation = extrinsic[:, :3]
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3) or np.linalg.det(rotation) <= 0:
        raise RICHFormatError(f'{xml_path}: CameraMatrix does not start with a rotation')
    if np.abs(extrinsic[:, 3]).max() > 100:
        raise RICHFormatError(f'{xml_path}: translation {extrinsic[:, 3].tolist()} is implausible for metres')
    intrinsics = _matrix(root, xml_path, 'Intrinsics', (3, 3))
    if not np.allclose(intrinsics[2], [0, 0, 1]) or intrinsics[0, 0] <= 0 or intrinsics[1, 1] <= 0:
        raise RICHFormatError(f'{xml_path}: Intrinsics is not a camera matrix')
    distortion = _matrix(root, xml_path, 'Distortion')
    if distortion.size not in (4, 5, 8):
        raise RICHFormatError(f'{xml_path}: Distortion has {distortion.size} values, expected 4, 5 or 8')
    matrix = np.concatenate([extrinsic, [[0, 0, 0, 1]]])
    matrix[:3, 3] *= 1000
    return Camera(extrinsic_matrix=matrix, intrinsic_matrix=intrinsics, distortion_coeffs=distortion,
                  world_up=-rotation[1])


def load_fit(path):
    """The SMPL-X fit of one subject in one frame: {key: (k,) float64} for the FIT_SIZES keys. Read with
    posepile's restricted unpickler (numpy arrays and builtins only; no code in the file runs)."""
    import pickle

    from posepile.bodymodels.loading import BodyModelFormatError, restricted_load
    try:
        with open(path, 'rb') as f:
            data = restricted_load(f)
    except (OSError, BodyModelFormatError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise RICHFormatError(f'{path}: cannot read the fit ({type(e).__name__}: {e})') from None
    if not isinstance(data, dict):
        raise RICHFormatError(f'{path}: expected a dict of SMPL-X parameters')
    missing = [k for k in FIT_SIZES if k not in data]
    if missing:
        raise RICHFormatError(f'{path}: the fit lacks {", ".join(missing)}')
    fit = {}
    for key, size in FIT_SIZES.items():
        value = np.asarray(data[key], np.float64)
        if value.ndim == 2 and len(value) != 1:
            raise RICHFormatError(f'{path}: {key} holds {len(value)} parameter sets, expected 1')
        value = value.reshape(-1)
        if (size is not None and value.size != size) or value.size == 0 or not np.all(np.isfinite(value)):
            raise RICHFormatError(f'{path}: {key} has {value.size} values' + (f', expected {size}' if size else '')
                                  + ' or non-finite ones')
        fit[key] = value
    for key in ('left_hand_pose', 'right_hand_pose'):
        if fit[key].size > 45:
            raise RICHFormatError(f'{path}: {key} has {fit[key].size} PCA coefficients (at most 45)')
    return fit


def subject_gender(subject_id, sequence):
    if subject_id in MALE_SUBJECTS:
        return 'male'
    if subject_id in FEMALE_SUBJECTS:
        return 'female'
    raise RICHFormatError(f'{sequence}: subject {subject_id} is not in the gender table')


# ------------------------------------------------------------------------------------------------
# SMPL-X joints as the smplx package outputs them
class SmplxJoints:
    """The 127 joints (mm) of SMPL-X fits with one gendered model: skeleton, vertex joints, face landmarks."""

    def __init__(self, gender, model_dir):
        from posepile import bodymodels
        self.gender = gender
        self.model = bodymodels.load('smplx', gender, model_dir)
        extras = _read_model_extras(self.model.path, ('hands_componentsl', 'hands_componentsr', 'hands_meanl',
                                                      'hands_meanr', 'lmk_faces_idx', 'lmk_bary_coords'))
        self.hand_components = {'left': extras['hands_componentsl'].reshape(-1, 45),
                                'right': extras['hands_componentsr'].reshape(-1, 45)}
        self.hand_mean = {'left': extras['hands_meanl'].reshape(45), 'right': extras['hands_meanr'].reshape(45)}
        faces = self.model.faces[extras['lmk_faces_idx'].astype(np.int64).reshape(-1)]
        self.landmark_vertices = faces  # (51, 3)
        self.landmark_weights = extras['lmk_bary_coords'].reshape(-1, 3)
        if len(faces) != N_LANDMARKS or len(self.landmark_weights) != N_LANDMARKS:
            raise RICHFormatError(f'{self.model.path}: {len(faces)} landmark faces, expected {N_LANDMARKS}')
        if self.model.n_vertices <= max(SMPLX_VERTEX_JOINT_IDS):
            raise RICHFormatError(f'{self.model.path}: {self.model.n_vertices} vertices, too few for SMPL-X')

    def parameters(self, fit):
        """World-frame parameter dict of a fit: full pose (165 = global, body 21, jaw, eyes, hands 2 x 15)."""
        hands = []
        for side in ('left', 'right'):
            coefficients = fit[f'{side}_hand_pose']
            hands.append(coefficients @ self.hand_components[side][:coefficients.size] + self.hand_mean[side])
        pose = np.concatenate([fit['global_orient'], fit['body_pose'], fit['jaw_pose'], fit['leye_pose'],
                               fit['reye_pose'], *hands])
        return {'type': 'smplx', 'gender': self.gender, 'pose': pose.astype(np.float32),
                'shape': fit['betas'].astype(np.float32), 'trans': fit['transl'].astype(np.float32),
                'expression': fit['expression'].astype(np.float32)}

    def joints_mm(self, parameter_list):
        """(N, 127, 3) mm of N parameter dicts."""
        result = []
        for start in range(0, len(parameter_list), JOINTS_CHUNK):
            chunk = parameter_list[start:start + JOINTS_CHUNK]
            out = self.model(np.stack([p['pose'] for p in chunk]), np.stack([p['shape'] for p in chunk]),
                             np.stack([p['trans'] for p in chunk]),
                             expression=np.stack([p['expression'] for p in chunk]))
            vertices = out['vertices'].astype(np.float64)
            landmarks = np.einsum('nlkc,lk->nlc', vertices[:, self.landmark_vertices], self.landmark_weights)
            result.append(np.concatenate([out['joints'], vertices[:, SMPLX_VERTEX_JOINT_IDS], landmarks], axis=1))
        return np.concatenate(result) * 1000 if result else np.zeros((0, 127, 3))


def _read_model_extras(path, keys):
    """Arrays of an SMPL-X model file beyond the body model's own (plain arrays; no pickles are run)."""
    path = Path(path)
    try:
        if path.suffix.lower() == '.npz':
            with np.load(path, allow_pickle=False) as archive:
                return {k: np.asarray(archive[k], np.float64) for k in keys}
        from posepile.bodymodels.loading import restricted_load, to_dense
        with open(path, 'rb') as f:
            data = restricted_load(f)
        return {k: np.asarray(to_dense(data[k], k), np.float64) for k in keys}
    except KeyError as e:
        raise RICHFormatError(f'{path}: the SMPL-X model lacks {e} (needed for the hand PCA and face landmarks)')
    except (OSError, ValueError) as e:
        raise RICHFormatError(f'{path}: cannot read {", ".join(keys)} ({type(e).__name__}: {e})') from None


# ------------------------------------------------------------------------------------------------
# The raw tree
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def body_model_dir(data_root=None):
    return raw_root(data_root).parent / 'body_models'


def sequence_dirs(root):
    """[(phase, sequence folder)] of the train and val image trees."""
    result = [(phase, d) for phase in PHASES for d in sorted((Path(root) / phase).glob('*'))
              if d.is_dir() and any(d.glob('cam_*'))]
    if not result:
        raise FileNotFoundError(f'no {{train,val}}/<sequence>/cam_*/ image folders under {root}')
    return result


def parse_sequence_name(name):
    """(setup, [subject ids]) of '<setup>_<id>[_<id>...]_<action>' (e.g. 'Pavallion_003_018_tossball')."""
    parts = name.split('_')
    if len(parts) < 3 or not all(p.isdigit() for p in parts[1:-1]):
        raise RICHFormatError(f'{name}: sequence name is not <setup>_<subject ids>_<action>')
    return parts[0], [int(p) for p in parts[1:-1]]


def sequence_images(seq_dir):
    """{camera id: {frame: image path}} of the JPEGs of a sequence."""
    result = {}
    for cam_dir in sorted(Path(seq_dir).glob('cam_*')):
        images = {}
        for path in cam_dir.iterdir():
            match = IMAGE_PATTERN.match(path.name)
            if match:
                images[int(match.group(1))] = path
        result[int(cam_dir.name.split('_')[1])] = images
    return result


def fit_frames(body_dir):
    """Sorted frame numbers that have a fit folder under a sequence's body folder."""
    if not Path(body_dir).is_dir():
        raise RICHFormatError(f'{body_dir}: no fits for this sequence (extract the *_body.zip files)')
    return sorted(int(d.name) for d in Path(body_dir).iterdir() if d.is_dir() and d.name.isdigit())


def sequence_fits(body_dir, subjects, frames):
    """{subject: {frame: fit}} of the fits that exist for `frames` (a subject may be absent from some)."""
    result = {s: {} for s in subjects}
    if not Path(body_dir).is_dir():
        raise RICHFormatError(f'{body_dir}: no fits for this sequence (extract the *_body.zip files)')
    for frame in frames:
        for subject in subjects:
            path = Path(body_dir) / f'{frame:05d}' / f'{subject:03d}.pkl'
            if path.exists():
                result[subject][frame] = load_fit(path)
    return result


def frame_list(images):
    """The frames the original iterates: the image frames of the first camera (lowest id), sorted."""
    if not images:
        return []
    return sorted(images[min(images)])


def select_subject_frames(frames, world_coords):
    """Frames kept by the original's AdaptivePoseSampler2(100, True, True, 100) over one subject's fits."""
    from posepile.util.sampling import select_frames
    if not frames:
        return set()
    chosen = select_frames(world_coords, SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER,
                           check_validity=True, nan_unchanged=True)
    return {frames[i] for i in chosen}


def load_sequence_cameras(root, setup, camera_ids, sequence):
    """{camera id: Camera} of the static cameras; the moving ones (no calibration file) are skipped, logged."""
    cameras = {}
    for camera_id in camera_ids:
        path = Path(root) / 'scan_calibration' / setup / 'calibration' / f'{camera_id:03d}.xml'
        if not path.exists():
            logger.info('%s: camera %d skipped: it moves (no calibration %s)', sequence, camera_id, path)
            continue
        cameras[camera_id] = load_camera(path)
    return cameras


def person_box(pixels, image_size, detections=None):
    """[x, y, w, h] px: projected joints' box expanded 1.05x, replaced by the detection of highest IoU if that IoU
    > 0.5, clipped to the image ((height, width))."""
    from posepile.preproc.association import choose_box
    from posepile.util import boxes
    box = boxes.expand(boxes.bb_of_points(pixels), BOX_EXPANSION)
    if detections is not None and len(detections):
        box = choose_box(box, detections, rule='best_iou', min_iou=np.nextafter(MIN_DETECTION_IOU, 1))
    return boxes.intersection(box, boxes.full_box(image_size))


def load_detections(data_root=None):
    from posepile.util import fileio
    path = work_dir(data_root) / 'detections.pkl'
    return fileio.load_pickle(path) if path.exists() else None


# ------------------------------------------------------------------------------------------------
# Stages
def to_jpeg_stage(n_workers=None, data_root=None):
    """Convert the PNG/BMP images of train/val to JPEG q85 next to them (as the original's downloader); the
    sources are kept (delete them yourself to save space)."""
    from posepile.util.parallel import parallel_map
    root = raw_root(data_root)
    sources = sorted(p for phase in PHASES for p in (root / phase).glob('*/cam_*/*')
                     if p.suffix.lower() in RAW_IMAGE_SUFFIXES and not p.with_suffix('.jpg').exists())
    logger.info('%d images to convert to JPEG', len(sources))
    parallel_map(_convert_to_jpeg, sources, n_workers=n_workers, desc='to JPEG', chunksize=16)


def _convert_to_jpeg(path):
    import cv2

    from posepile.util import improc
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise RICHFormatError(f'{path}: cannot decode the image')
    improc.write_jpeg_atomic(path.with_suffix('.jpg'), image[..., ::-1], JPEG_QUALITY)


def sequence_tasks(root, phase, seq_dir, models, detections, counts):
    """Crop tasks of one sequence: selected (frame, subject) pairs x static cameras with a box of min side 100."""
    from posepile.datasets3d import Pose3DExample
    from posepile.util.improc import image_size_from_header
    setup, subjects = parse_sequence_name(seq_dir.name)
    genders = {s: subject_gender(s, seq_dir.name) for s in subjects}
    images = sequence_images(seq_dir)
    cameras = load_sequence_cameras(root, setup, sorted(images), seq_dir.name)
    counts['moving camera views'] += sum(len(images[c]) for c in images if c not in cameras)
    body_dir = root / f'{phase}_body' / seq_dir.name
    frames_of_sequence = frame_list(images)
    counts['fit frames without a first-camera image'] += len(set(fit_frames(body_dir)) - set(frames_of_sequence))
    fits = sequence_fits(body_dir, subjects, frames_of_sequence)
    tasks, world_by_frame = [], {}
    for subject in subjects:
        joints_model = models(genders[subject])
        frames = sorted(fits[subject])
        params = [joints_model.parameters(fits[subject][f]) for f in frames]
        world = joints_model.joints_mm(params)
        for frame, coords in zip(frames, world):
            world_by_frame.setdefault(frame, {})[subject] = coords
        kept = select_subject_frames(frames, world)
        counts['subject frames'] += len(frames)
        counts['selected'] += len(kept)
        for i, frame in enumerate(frames):
            if frame not in kept:
                continue
            for camera_id, camera in cameras.items():
                path = images[camera_id].get(frame)
                if path is None:
                    counts['missing image'] += 1
                    continue
                relpath = str(path.relative_to(root.parent))
                detected = None if detections is None else detections.get(relpath)
                box = person_box(camera.world_to_image(world[i]), image_size_from_header(path), detected)
                if min(box[2:]) < MIN_BOX_SIDE_PX:
                    counts['small box'] += 1
                    continue
                example = Pose3DExample(relpath, world[i], box, camera, scene_name=seq_dir.name,
                                        activity_name=seq_dir.name.split('_')[-1], parameters=params[i])
                new_relpath = f'{NAME}_downscaled/{Path(relpath).relative_to(NAME).with_suffix("")}_{subject:03d}.jpg'
                tasks.append((f'{PHASES[phase]}/{new_relpath}', example, new_relpath, (frame, subject)))
    # the other subjects of each crop's frame (kept out of its mask by the segment stage)
    return [(key, example, new_relpath,
             [world_by_frame[frame][s].astype(np.float32) for s in sorted(world_by_frame[frame]) if s != subject])
            for key, example, new_relpath, (frame, subject) in tasks]


def make_crop_tasks(data_root=None):
    """(key 'split/crop relpath', example, crop relpath, [world joints (127, 3) mm of the frame's other
    subjects]) of every selected subject x frame x static camera."""
    root = raw_root(data_root)
    detections = load_detections(data_root)
    loaded = {}

    def models(gender):
        if gender not in loaded:
            loaded[gender] = SmplxJoints(gender, body_model_dir(data_root))
        return loaded[gender]

    counts = dict.fromkeys(['subject frames', 'selected', 'moving camera views', 'missing image', 'small box',
                            'fit frames without a first-camera image'], 0)
    tasks = []
    for phase, seq_dir in sequence_dirs(root):
        tasks += sequence_tasks(root, phase, seq_dir, models, detections, counts)
    logger.info('%d crop tasks; %s', len(tasks), ', '.join(f'{k} {v}' for k, v in counts.items()))
    if not tasks:
        raise FileNotFoundError(f'no usable RICH views under {root}')
    return tasks


def other_people_path(data_root=None):
    return work_dir(data_root) / 'other_people.pkl'


def masks_path(data_root=None):
    return work_dir(data_root) / 'masks.json'


def crop_stage(shard=None, n_workers=None, data_root=None, skip_broken=None):
    """Crops of the selected subject x frame x static camera views."""
    from posepile.util import fileio
    from posepile.util.fingerprint import digest
    tasks = make_crop_tasks(data_root)
    others = {key: other for key, _, _, other in tasks}
    path = other_people_path(data_root)
    if not path.exists() or digest(fileio.load_pickle(path)) != digest(others):  # rewritten only on change
        path.parent.mkdir(parents=True, exist_ok=True)
        fileio.save_pickle(others, path)
    pipeline.dataset_crop_stage(NAME, [task[:3] for task in tasks], shard, n_workers, data_root,
                                skip_broken=skip_broken)


crop_stage.cli_options = [pipeline.SKIP_BROKEN_OPTION]


@pipeline.cli_options(('--detector', dict(dest='detector_spec', default='hog')))
def detect_stage(detector_spec='hog', shard=None, data_root=None):
    """Optional person detection on the train/val JPEGs (a box is replaced by the best detection at IoU > 0.5)."""
    from posepile.preproc.detection import run_detection_stage
    root = raw_root(data_root)
    relpaths = sorted(str(p.relative_to(root.parent)) for phase in PHASES
                      for p in (root / phase).glob('*/cam_*/*.jpg'))
    run_detection_stage(root.parent, relpaths, work_dir(data_root) / 'detections.pkl', detector_spec, shard=shard)


@pipeline.cli_options(('--segmenter', dict(dest='segmenter_spec', default=None,
                                             help='grabcut, onnx:MODEL or tf:DIR; default $POSEPILE_SEGMENTER or '
                                                  'grabcut (the original used DeepLabV3)')))
def segment_stage(segmenter_spec=None, n_workers=None, data_root=None):
    """A person mask for every crop (the original segmented every RICH crop); the other subjects of the frame
    are kept out. Written to posepile_work/masks.json {crop key: RLE}; redone when the crops or the segmenter
    change."""
    import os

    from posepile.preproc.segmentation import segment_examples_parallel
    from posepile.util import fileio
    segmenter_spec = segmenter_spec or os.environ.get('POSEPILE_SEGMENTER') or 'grabcut'
    crops_dir = work_dir(data_root) / 'crops'
    inputs = sorted(crops_dir.glob('*.pkl')) + [other_people_path(data_root)]
    options = {'segmenter': segmenter_spec}
    if pipeline.load_stage_json(masks_path(data_root), inputs, options) is not None:
        logger.info('%s is up to date', masks_path(data_root))
        return
    results = pipeline.recipe_crop_results(NAME, data_root)
    if not other_people_path(data_root).exists():
        raise FileNotFoundError(f'{other_people_path(data_root)} not found: run the crop stage first')
    others = fileio.load_pickle(other_people_path(data_root))
    edges = JointInfo(JOINT_NAMES, JOINT_EDGES).stick_figure_edges
    rles = segment_examples_parallel([example for _, example in results], segmenter_spec, edges,
                                     data_root=raw_root(data_root).parent,
                                     other_people_world=[others.get(key, []) for key, _ in results],
                                     n_workers=n_workers)
    pipeline.save_stage_json({key: rle for (key, _), rle in zip(results, rles)}, masks_path(data_root), inputs,
                             options)
    logger.info('%d crops segmented with %s', len(rles), segmenter_spec)


def make_dataset(data_root=None):
    """RICH: selected views of train and val, 127 SMPL-X joints in mm, the fit in the world frame of each
    example's camera (as world_coords), a person mask per crop (the segment stage)."""
    from posepile.datasets3d import TRAIN, VALID, Pose3DDataset
    from posepile.util import fileio
    path = masks_path(data_root)
    if not path.exists():
        raise FileNotFoundError(f'{path} not found: run the segment stage of posepile/ds/rich/main.sh first')
    person_masks = fileio.load_json(path)['value']
    by_split = {0: [], 1: [], 2: []}
    for key, example in pipeline.recipe_crop_results(NAME, data_root):
        if key not in person_masks:
            raise FileNotFoundError(f'{path} has no mask for {key}: rerun the segment stage')
        example.mask = person_masks[key]
        by_split[int(key.split('/')[0])].append(example)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), train_examples=by_split[TRAIN],
                         valid_examples=by_split[VALID])


def make_body_dataset(data_root=None, full=None):
    """rich_body: RICH with the 42 SMPL-X joints that AGORA uses too (BODY_INDICES of the 127); `full` is the
    `rich` dataset when already built (its examples are not modified)."""
    import copy

    from posepile.datasets3d import Pose3DDataset
    full = make_dataset(data_root) if full is None else full
    splits = []
    for split in (0, 1, 2):
        examples = [copy.copy(example) for example in full.examples[split]]
        for example in examples:
            example.world_coords = np.ascontiguousarray(example.world_coords[BODY_INDICES])
        splits.append(examples)
    return Pose3DDataset(JointInfo(BODY_JOINT_NAMES, BODY_JOINT_EDGES), *splits)


def assemble(data_root=None):
    """The datasets for get_dataset('rich') (127 joints) and get_dataset('rich_body') (42 joints)."""
    built = {}

    def rich():
        built[NAME] = make_dataset(data_root)
        return built[NAME]

    pipeline.save_datasets({NAME: rich, BODY_NAME: lambda: make_body_dataset(data_root, built.get(NAME))})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.rich.main', 'RICH stages', {
        'to-jpeg': to_jpeg_stage, 'detect': detect_stage, 'crop': crop_stage, 'segment': segment_stage,
        'assemble': assemble})


if __name__ == '__main__':
    main()
