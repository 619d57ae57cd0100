"""AGORA (3840x2160 renders of scanned people): readers of the SMPL / SMPL-X ground-truth tables, the
colour-coded person masks and the camera conventions of the release.

Raw layout under $DATA_ROOT/agora (as the release's zips extract):
    train_<k>/<imgPath>, validation/<imgPath>                       renders (PNG), k = 0..9
    SMPL/<section>_withjv.pkl, SMPLX/<section>_withjv.pkl           pandas DataFrames, one row per image,
        section = train_<k> | validation_<k>; per-person lists in isValid, occlusion (%), gt_joints_3d (camera
        frame, metres; SMPL 45 joints, SMPL-X 127), scalars camX/camY/camZ (Unreal, cm) and camYaw (degrees)
    <train|validation>/<scene>/<name>_mask[_camNN]_<num:06d>_00000.png   label image: person i in colour i of
        seg_rgbs.txt where visible, background red; ..._<i+1:05d>.png: person i's amodal mask (non-zero inside)
    seg_rgbs.txt                                                    AirSim colour table ("i\\t[r, g, b]" lines)
    <gt_path_smplx of the SMPL-X tables, extension .pkl>            per-person SMPL-X fits (smplx_gt/...)
The tables are read by a restricted unpickler (posepile/ds/agora/pandas_pickle.py), without pandas; the fits by
another (posepile/ds/agora/fits.py, which also documents the frames). `parameters` holds each person's SMPL-X fit
in the world frame, that of `world_coords` and of the example's camera (posepile/bodymodels/transform.py
convention, as the original's add_parametric: person yaw and location folded into the root and trans; the SMPL-X
model files in $DATA_ROOT/body_models/smplx give the hand means). The SMPL fits (gt_path_smpl) are not read: they are
pickled torch tensors, and the original keeps only the SMPL-X ones as parameters too.
"""
import functools
import logging
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'agora'

# 24 SMPL joints, then the 42 SMPL-X joints (indices SMPLX_SELECTION of the 127 SMPL-X joints) with '_smplx'
JOINT_NAMES = (
    'pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,relb,lwri,'
    'rwri,lhan,rhan,'
    'pelv_smplx,lhip_smplx,rhip_smplx,bell_smplx,lkne_smplx,rkne_smplx,spin_smplx,lank_smplx,rank_smplx,'
    'thor_smplx,ltoe_smplx,rtoe_smplx,neck_smplx,lcla_smplx,rcla_smplx,head_smplx,lsho_smplx,rsho_smplx,'
    'lelb_smplx,relb_smplx,lwri_smplx,rwri_smplx,jaw_smplx,leyehf_smplx,reyehf_smplx,lmiddle1_smplx,'
    'rmiddle1_smplx,nose_smplx,reye_smplx,leye_smplx,rear_smplx,lear_smplx,lto2_smplx,lto3_smplx,lhee_smplx,'
    'rto2_smplx,rto3_smplx,rhee_smplx,lthu_smplx,lmiddle_smplx,rthu_smplx,rmiddle_smplx')
JOINT_EDGES = (
    'rhan-rwri-relb-rsho-rcla-thor,head-neck-thor-spin-bell-pelv-rhip-rkne-rank-rtoe,'
    'rwri_smplx-relb_smplx-rsho_smplx-rcla_smplx-thor_smplx,rank_smplx-rhee_smplx,rto2_smplx-rtoe_smplx-rto3_smplx,'
    'rear_smplx-reye_smplx-nose_smplx-head_smplx-jaw_smplx-neck_smplx-thor_smplx-spin_smplx-bell_smplx-pelv_smplx-'
    'rhip_smplx-rkne_smplx-rank_smplx-rtoe_smplx')
N_SMPL_JOINTS = 24
SMPLX_SELECTION = (*range(25), 28, 43, *range(55, 67), 68, 71, 73)

IMAGE_WIDTH, IMAGE_HEIGHT = 3840, 2160  # px
SENSOR_WIDTH_MM = 36  # focal px = focal mm / 36 * 3840
UNREAL_TO_OPENCV = ((0, 1, 0), (0, 0, -1), (1, 0, 0))  # Unreal (x forward, y right, z up) -> (x right, y down, z fwd)
MAX_OCCLUSION_PERCENT = 75  # people more occluded are skipped
MAX_OCCLUSION_UNDETECTED_PERCENT = 50  # with detections: an unmatched person more occluded than this is dropped
MIN_BOX_SIDE_PX = 100
DETECTION_MIN_IOU = 0.5
CHECK_TOLERANCE_MM = 1.0  # fits whose model joints differ more from the table's are counted in a warning
COLOUR_TOLERANCE = 10  # a label pixel belongs to person i if every channel differs by < 10 from colour i
BACKGROUND_RGB = (255, 0, 0)
SECTIONS = {**{f'train_{k}': 0 for k in range(10)}, **{f'validation_{k}': 1 for k in range(10)}}
REQUIRED_COLUMNS = ('imgPath', 'isValid', 'occlusion', 'gt_joints_3d', 'camX', 'camY', 'camZ', 'camYaw')
FIT_COLUMNS = ('gt_path_smplx', 'gender', 'kid', 'Yaw', 'X', 'Y', 'Z')  # per person, in the SMPL-X tables


class AgoraFormatError(InputError):
    pass


# ------------------------------------------------------------------------------------------------
# Readers
def load_table(path, n_joints_min, person_columns=()):
    """The DataFrame at `path` as {column: per-row list}, its REQUIRED_COLUMNS and `person_columns` (one entry
    per person) validated."""
    from posepile.ds.agora.pandas_pickle import PandasPickleError, load_table as load_pickled_frame
    try:
        table = load_pickled_frame(path)
    except PandasPickleError as e:
        raise AgoraFormatError(str(e)) from None
    except OSError as e:
        raise AgoraFormatError(f'{path}: cannot read ({e})') from None
    missing = [c for c in (*REQUIRED_COLUMNS, *person_columns) if c not in table]
    if missing:
        raise AgoraFormatError(f'{path}: columns {missing} missing (has {table.columns})')
    for i_row in range(len(table)):
        _check_row(table, i_row, n_joints_min, path, person_columns)
    return table


def _check_row(table, i_row, n_joints_min, path, person_columns=()):
    where = f'{path}: row {i_row} ({table["imgPath"][i_row]!r})'
    n_people = len(table['isValid'][i_row])
    for column in ('occlusion', 'gt_joints_3d', *person_columns):
        if len(table[column][i_row]) != n_people:
            raise AgoraFormatError(f'{where}: {len(table[column][i_row])} {column} entries for {n_people} people')
    camera = [table[c][i_row] for c in ('camX', 'camY', 'camZ', 'camYaw')]
    if not np.all(np.isfinite(np.asarray(camera, np.float64))):
        raise AgoraFormatError(f'{where}: non-finite camera values {camera}')
    occlusion = np.asarray(table['occlusion'][i_row], np.float64)
    if occlusion.size and not (np.all(occlusion >= 0) and np.all(occlusion <= 100)):
        raise AgoraFormatError(f'{where}: occlusion outside [0, 100] %: {occlusion.tolist()}')
    if 'Yaw' in person_columns:
        placement = np.asarray([table[c][i_row] for c in ('Yaw', 'X', 'Y', 'Z')], np.float64)
        if not np.all(np.isfinite(placement)):
            raise AgoraFormatError(f'{where}: non-finite person Yaw/X/Y/Z')
    for i_person, joints in enumerate(table['gt_joints_3d'][i_row]):
        joints = np.asarray(joints)
        if joints.ndim != 2 or joints.shape[1] != 3 or joints.shape[0] < n_joints_min:
            raise AgoraFormatError(f'{where}: person {i_person} gt_joints_3d has shape {joints.shape}, expected '
                                   f'(>= {n_joints_min}, 3)')
        if not np.all(np.isfinite(joints)) or np.abs(joints).max() > 1000:
            raise AgoraFormatError(f'{where}: person {i_person} gt_joints_3d not finite metres')


def load_section(root, section):
    """Per image: dict(img_path, camera, people=[dict(i_person, valid, occlusion %, camera-frame joints mm (66,
    3))]) from SMPL/<section>_withjv.pkl and SMPLX/<section>_withjv.pkl (rows must correspond)."""
    smpl_path = Path(root) / 'SMPL' / f'{section}_withjv.pkl'
    smplx_path = Path(root) / 'SMPLX' / f'{section}_withjv.pkl'
    smpl = load_table(smpl_path, N_SMPL_JOINTS)
    smplx = load_table(smplx_path, max(SMPLX_SELECTION) + 1, FIT_COLUMNS)
    if smpl['imgPath'] != smplx['imgPath'] or any(
            len(a) != len(b) for a, b in zip(smpl['isValid'], smplx['isValid'])):
        raise AgoraFormatError(f'{smplx_path}: its images or people do not correspond to those of {smpl_path}')
    images = []
    for i_row, img_path in enumerate(smpl['imgPath']):
        people = []
        for i_person, (valid, occlusion, joints, joints_x) in enumerate(zip(
                smpl['isValid'][i_row], smpl['occlusion'][i_row], smpl['gt_joints_3d'][i_row],
                smplx['gt_joints_3d'][i_row])):
            cam_mm = np.concatenate([np.asarray(joints, np.float64)[:N_SMPL_JOINTS],
                                     np.asarray(joints_x, np.float64)[list(SMPLX_SELECTION)]]) * 1000
            fit = {c: smplx[c][i_row][i_person] for c in FIT_COLUMNS}
            people.append(dict(i_person=i_person, valid=bool(valid), occlusion=float(occlusion), cam_mm=cam_mm,
                               fit_relpath=str(fit['gt_path_smplx']), gender=str(fit['gender']),
                               kid=bool(fit['kid']), yaw_deg=float(fit['Yaw']),
                               location_cm=[float(fit[c]) for c in ('X', 'Y', 'Z')]))
        location = [float(smpl[c][i_row]) for c in ('camX', 'camY', 'camZ')]
        images.append(dict(row=i_row, img_path=str(img_path), people=people,
                           camera=get_camera(location, float(smpl['camYaw'][i_row]), str(img_path))))
    return images


def rotation_matrix(yaw_deg, pitch_deg):
    """World-to-camera rotation Rx(pitch) @ Ry(-yaw): transforms3d's euler2mat(-yaw, pitch, 0, 'syxz') (static
    axes: about y, then x, then z), as the original."""
    yaw, pitch = np.deg2rad(-yaw_deg), np.deg2rad(pitch_deg)
    rot_y = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    rot_x = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    return rot_x @ rot_y


def get_camera(location_cm, yaw_deg, image_filename):
    """The camera of a render, from the AGORA readme's conventions (as the original): focal = mm / 36 * 3840 px;
    'hdri' scenes 50 mm at (0, 0, 170) cm, yaw 0, pitch 0; the fixed rigs cam00-cam03 18 mm at hard-coded
    positions, yaw +-45 / +-135 deg, pitch 30 deg; 'ag2' 28 mm at (0, 0, 170) cm, pitch 15 deg; otherwise 28 mm
    at the table's location and yaw, pitch 0, ground offset -1.7 m in y. Unreal cm -> OpenCV-axes mm, principal
    point (1920, 1080), world_up (0, -1, 0)."""
    from posepile.util.camera import Camera
    ground_m = np.zeros(3)
    rigs = {'cam00': ((400, -275, 265), 135), 'cam01': ((400, 225, 265), -135),
            'cam02': ((-490, 170, 265), -45), 'cam03': ((-490, -275, 265), 45)}
    rig = next((name for name in rigs if name in image_filename), None)
    if 'hdri' in image_filename:
        focal_mm, location_cm, yaw_deg, pitch_deg = 50, (0, 0, 170), 0, 0
    elif rig is not None:
        focal_mm, (location_cm, yaw_deg), pitch_deg = 18, rigs[rig], 30
    elif 'ag2' in image_filename:
        focal_mm, location_cm, yaw_deg, pitch_deg = 28, (0, 0, 170), 0, 15
    else:
        focal_mm, pitch_deg, ground_m = 28, 0, np.array([0, -1.7, 0])
    focal_px = focal_mm / SENSOR_WIDTH_MM * IMAGE_WIDTH
    intrinsics = [[focal_px, 0, IMAGE_WIDTH / 2], [0, focal_px, IMAGE_HEIGHT / 2], [0, 0, 1]]
    location_m = np.array(UNREAL_TO_OPENCV, np.float64) @ (np.asarray(location_cm, np.float64) / 100) + ground_m
    return Camera(optical_center=location_m * 1000, rot_world_to_cam=rotation_matrix(yaw_deg, pitch_deg),
                  intrinsic_matrix=intrinsics, world_up=(0, -1, 0))


MASK_NAME_PATTERN = re.compile(
    r'(?P<name>(?P<scene>.+?)_(\d+mm_)?(5_10|5_15))(?P<cam>(_cam\d+)?)_(?P<num>\d+)\.png$')


def mask_relpath(image_filename, i_file):
    """The mask PNG `i_file` (0: label image, i + 1: person i's amodal mask) of a render, relative to the
    AGORA root: <train|validation>/<scene>/<name>_mask[_camNN]_<num:06d>_<i_file:05d>.png."""
    match = MASK_NAME_PATTERN.match(Path(image_filename).name)
    phase = next((p for p in ('train', 'validation', 'test') if f'{p}set' in image_filename), None)
    if match is None or phase is None:
        raise AgoraFormatError(f'{image_filename}: not an AGORA render name (no mask file name derivable)')
    return (f'{phase}/{match["scene"]}/{match["name"]}_mask{match["cam"]}_{int(match["num"]):06d}_'
            f'{i_file:05d}.png')


def load_colors(path):
    """(N, 3) int RGB of AirSim's seg_rgbs.txt ('<i>\\t[r, g, b]' per line, i = 0, 1, ...)."""
    pattern = re.compile(r'^(\d+)\s+\[(\d+),\s*(\d+),\s*(\d+)\]\s*$')
    colors = []
    try:
        lines = Path(path).read_text(encoding='utf-8').splitlines()
    except OSError as e:
        raise AgoraFormatError(f'{path}: cannot read ({e})') from None
    for i_line, line in enumerate(line for line in lines if line.strip()):
        match = pattern.match(line)
        if match is None or int(match[1]) != i_line or max(map(int, match.groups()[1:])) > 255:
            raise AgoraFormatError(f'{path}: line {i_line + 1} is not "{i_line}<tab>[r, g, b]": {line!r}')
        colors.append([int(v) for v in match.groups()[1:]])
    return np.array(colors, np.int32).reshape(-1, 3)


def _read_png(path):
    """The image as stored (BGR or grey), uint8."""
    import cv2
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise AgoraFormatError(f'{path}: missing or not a readable image')
    if image.dtype != np.uint8:
        raise AgoraFormatError(f'{path}: {image.dtype} pixels, expected 8-bit')
    return image


def _colour_mask(image_bgr, rgb, tolerance):
    """Pixels whose every channel differs by < tolerance from `rgb` (cv2.inRange: fast on 3840x2160)."""
    import cv2
    bgr = np.asarray(rgb, np.int64)[::-1]
    lower, upper = np.clip(bgr - tolerance + 1, 0, 255), np.clip(bgr + tolerance - 1, 0, 255)
    return cv2.inRange(image_bgr, lower.astype(np.float64), upper.astype(np.float64)) > 0


def person_masks(root, image_filename, i_people, colors):
    """({i_person: (modal RLE, amodal RLE)}, RLE of all people): modal = label pixels within COLOUR_TOLERANCE of
    the person's colour, within the amodal mask (non-zero pixels of its PNG); all people = label pixels that are
    not the background colour."""
    from posepile.util import masks
    label_path = Path(root) / mask_relpath(image_filename, 0)
    label = _read_png(label_path)
    if label.ndim != 3 or label.shape[2] != 3:
        raise AgoraFormatError(f'{label_path}: shape {label.shape}, expected a colour image')
    result = {}
    for i_person in i_people:
        if i_person >= len(colors):
            raise AgoraFormatError(f'{label_path}: person {i_person} has no colour in seg_rgbs.txt')
        amodal_path = Path(root) / mask_relpath(image_filename, i_person + 1)
        amodal_image = _read_png(amodal_path)
        if amodal_image.shape[:2] != label.shape[:2]:
            raise AgoraFormatError(f'{amodal_path}: size {amodal_image.shape[:2]} differs from the label image')
        amodal = amodal_image != 0 if amodal_image.ndim == 2 else ~_colour_mask(amodal_image[..., :3], (0, 0, 0), 1)
        modal = _colour_mask(label, colors[i_person], COLOUR_TOLERANCE) & amodal
        result[i_person] = (masks.encode(modal), masks.encode(amodal))
    return result, masks.encode(~_colour_mask(label, BACKGROUND_RGB, 1))


# ------------------------------------------------------------------------------------------------
# Stages
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def list_sections(root):
    """The sections whose SMPL and SMPL-X tables are both present."""
    sections = [s for s in SECTIONS if (root / 'SMPL' / f'{s}_withjv.pkl').exists()]
    for section in sections:
        if not (root / 'SMPLX' / f'{section}_withjv.pkl').exists():
            raise FileNotFoundError(f'{root}/SMPLX/{section}_withjv.pkl not found (SMPL/{section}_withjv.pkl is)')
    if not sections:
        raise FileNotFoundError(f'no SMPL/<train_k|validation_k>_withjv.pkl under {root}')
    return sections


def image_relpath(section, img_path):
    """The render relative to DATA_ROOT: agora/train_<k>/<imgPath> or agora/validation/<imgPath>."""
    return f'{NAME}/{section if section.startswith("train") else "validation"}/{img_path}'


def seg_colors_path(root):
    for path in (root / 'seg_rgbs.txt', root / 'archives' / 'seg_rgbs.txt'):
        if path.exists():
            return path
    raise FileNotFoundError(f'{root}/seg_rgbs.txt not found (AirSim docs/seg_rgbs.txt; see main.sh)')


def body_model_dir(root):
    """$DATA_ROOT/body_models (SMPL-X files in it or in its smplx/ subfolder)."""
    return Path(root).parent / 'body_models'


def person_parameters(root, person, world_mm):
    """(world-frame parameter dict, deviation mm of the model's skeleton joints from the table's, None for kids)."""
    from posepile import bodymodels
    from posepile.ds.agora import fits
    path = fits.fit_path(root, person['fit_relpath'])
    try:
        gender = fits.parameter_gender(person['gender'], person['kid'])
    except ValueError as e:
        raise AgoraFormatError(f'{path}: {e} in the table') from None
    fit = fits.load_smplx_fit(path, person['kid'])
    model_path = bodymodels.find_model_file('smplx', gender, body_model_dir(root) / 'smplx')
    params = fits.world_parameters(fit, person['gender'], person['kid'], person['yaw_deg'], person['location_cm'],
                                   world_mm[fits.PELVIS_INDEX] / 1000, fits.hand_means(str(model_path)))
    if person['kid']:
        return params, None
    return params, fits.check_against_model(params, world_mm, _cached_model(str(model_path), gender))


@functools.lru_cache(maxsize=4)
def _cached_model(model_path, gender):
    from posepile import bodymodels
    return bodymodels.load('smplx', gender, model_path)


def _prepare_image(job):
    """Masks, boxes, world joints and world-frame SMPL-X parameters of the valid, not too occluded people of one
    image."""
    root, section, image, colors = job
    people = [p for p in image['people'] if p['valid'] and p['occlusion'] <= MAX_OCCLUSION_PERCENT]
    if not people:
        return None
    from posepile.util import masks
    person_rles, all_people = person_masks(root, image['img_path'], [p['i_person'] for p in people], colors)
    camera = image['camera']
    result = []
    for person in people:
        modal, _ = person_rles[person['i_person']]
        world_mm = camera.camera_to_world(person['cam_mm'])
        params, deviation_mm = person_parameters(root, person, world_mm)
        result.append(dict(i_person=person['i_person'], occlusion=person['occlusion'], box=masks.to_bbox(modal),
                           world_mm=world_mm, parameters=params, model_deviation_mm=deviation_mm))
    return dict(section=section, row=image['row'], relpath=image_relpath(section, image['img_path']),
                camera=camera, mask=all_people, people=result)


def prepare_section(root, section, colors, n_workers=None):
    from posepile.util.parallel import parallel_map
    images = load_section(root, section)
    jobs = [(root, section, image, colors) for image in images]
    prepared = parallel_map(_prepare_image, jobs, n_workers, desc=f'agora masks {section}')
    skipped = sum(p is None for p in prepared)
    deviations = [p['model_deviation_mm'] for image in prepared if image is not None for p in image['people']
                  if p['model_deviation_mm'] is not None]
    off = [d for d in deviations if d > CHECK_TOLERANCE_MM]
    if off:
        logger.warning('%s: for %d of %d adults the SMPL-X model joints of the fit differ from the table joints by '
                       'more than %g mm (max %.3g mm): another SMPL-X model version than AGORA used?', section,
                       len(off), len(deviations), CHECK_TOLERANCE_MM, max(off))
    if skipped:
        logger.info('%s: %d of %d images without a valid person with occlusion <= %d %%', section, skipped,
                    len(images), MAX_OCCLUSION_PERCENT)
    return [p for p in prepared if p is not None]


def prepare_stage(n_workers=None, data_root=None):
    """Per section: tables read, masks decoded, modal-mask boxes, joints into the world frame (mm).
    Results in posepile_work/prepared/<section>.pkl (recomputed when their inputs change)."""
    from posepile.util import fileio
    root = raw_root(data_root)
    colors_path = seg_colors_path(root)
    colors = load_colors(colors_path)
    result = {}
    for section in list_sections(root):
        inputs = [root / 'SMPL' / f'{section}_withjv.pkl', root / 'SMPLX' / f'{section}_withjv.pkl', colors_path]
        out_path = work_dir(data_root) / 'prepared' / f'{section}.pkl'
        fingerprint = pipeline.inputs_fingerprint(inputs, {'parameters': 1})
        stored = fileio.load_pickle(out_path) if out_path.exists() else None
        if stored is None or stored.get('fingerprint') != fingerprint:
            stored = dict(fingerprint=fingerprint, images=prepare_section(root, section, colors, n_workers))
            fileio.save_pickle(stored, out_path)
        result[section] = stored['images']
    return result


@pipeline.cli_options(pipeline.DETECTOR_OPTION)
def detect_stage(detector_spec=None, shard=None, data_root=None):
    """Optional person detection on the renders with people (then: Hungarian match at IoU >= 0.5)."""
    import os

    from posepile.preproc.detection import run_detection_stage
    relpaths = sorted(image['relpath'][len(NAME) + 1:] for images in prepare_stage(data_root=data_root).values()
                      for image in images)
    spec = detector_spec or os.environ.get('POSEPILE_DETECTOR') or 'hog'
    run_detection_stage(raw_root(data_root), relpaths, work_dir(data_root) / 'detections.pkl', spec, shard=shard)


def final_boxes(image, detections=None):
    """{i_person: final box}. Without detections: the modal-mask box. With them (the original's rule): the
    detection matched by Hungarian assignment at IoU >= 0.5, else the mask box, but an unmatched person more
    than 50 % occluded is dropped. Either way, boxes with a side < 100 px are dropped."""
    from posepile.preproc.association import associate_boxes
    people = image['people']
    boxes = {p['i_person']: np.asarray(p['box'], np.float32) for p in people}
    if detections is not None:
        dets = np.asarray(detections, np.float32).reshape(-1, 5)
        matches = associate_boxes([p['box'] for p in people], dets, min_iou=DETECTION_MIN_IOU)
        for person, i_det in zip(people, matches):
            if i_det >= 0:
                boxes[person['i_person']] = dets[i_det, :4]
            elif person['occlusion'] > MAX_OCCLUSION_UNDETECTED_PERCENT:
                del boxes[person['i_person']]
    return {i: box for i, box in boxes.items() if min(box[2], box[3]) >= MIN_BOX_SIDE_PX}


def make_crop_tasks(data_root=None):
    from posepile.datasets3d import Pose3DExample
    from posepile.util import fileio
    detections_path = work_dir(data_root) / 'detections.pkl'
    detections = fileio.load_pickle(detections_path) if detections_path.exists() else None
    tasks = []
    for section, images in prepare_stage(data_root=data_root).items():
        for image in images:
            key = image['relpath'][len(NAME) + 1:]
            boxes = final_boxes(image, None if detections is None else detections.get(key, []))
            stem = str(Path(image['relpath']).with_suffix('')).replace(f'{NAME}/', f'{NAME}_downscaled/', 1)
            for person in image['people']:
                if person['i_person'] not in boxes:
                    continue
                example = Pose3DExample(image['relpath'], person['world_mm'], boxes[person['i_person']],
                                        image['camera'], mask=image['mask'], scene_name=section,
                                        parameters=person['parameters'])
                tasks.append((f'{SECTIONS[section]}/{section}/{image["row"]:06d}/{person["i_person"]:02d}', example,
                              f'{stem}_{person["i_person"]}.jpg'))
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of the kept people."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def make_dataset(data_root=None):
    """AGORA: train_0-9 as TRAIN, validation_0-9 as VALIDATION; 66 joints (24 SMPL + 42 SMPL-X '_smplx'), mm;
    `parameters` the SMPL-X fit in the world frame."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0], splits[1], None)


def assemble(data_root=None):
    """The dataset for get_dataset('agora')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.agora.main', 'AGORA stages', {
        'prepare': prepare_stage,
        'detect': detect_stage,
        'crop': crop_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
