"""SPEC-SYN (synthetic renders with varied cameras): readers of annotations/{train,test}.npz and the placement of
the SMPL joints in the camera.

Raw layout under $DATA_ROOT/spec/spec-syn: annotations/{train,test}.npz with one row per person: imgname (image
path relative to spec-syn), pose (72 SMPL axis-angle), shape (10 betas), cam_rotmat (3x3 world-to-camera),
cam_int (3x3 px), openpose_gt (25 OpenPose body-25 joints x (x px, y px, confidence)), S (>= 12 joints x (x, y,
z m, confidence), the first 12 in LSP order rank..lwri). The release has no SMPL translation: as in the original,
the SMPL joints of (pose, shape) are placed by PnP against 14 of the OpenPose joints with the shipped intrinsics,
then scaled about the camera centre by the ratio of the RMS spreads of S and of the same 12 SMPL joints.

The scale uses the first 12 rows of S only (the LSP joints named above, compared with the same 12 SMPL joints);
the original took the RMS spread of all rows of S against those 12 SMPL joints (docs/fidelity.md has the size
of the difference). OpenPose joints with confidence 0 are left out of the PnP (the original fitted them at
(0, 0) px).

`parameters` (the convention of posepile/bodymodels/transform.py) holds that placed fit in the world frame of the
example's camera (the frame of `world_coords`; the shipped camera has its optical centre at the world origin and
the rotation cam_rotmat): type 'smpl', gender 'neutral', pose (72, the root turned by the PnP rotation and the
camera), shape (the betas used), trans (metres) and scale s, such that the world joints are
    X_world_mm = 1000 * s * model(pose, shape, trans)['joints']
(NLF's scale convention: the body is scaled by s about the world origin; s is the RMS-spread ratio above, the
placed camera distance s times the PnP one). posepile.bodymodels.rototranslate(parameters, camera.R,
camera.t / 1000) gives the fit in the (crop) camera's frame.
"""
import collections
import logging
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'spec'
SPLITS = {'train': 0, 'test': 2}

JOINT_NAMES = ('pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,'
               'relb,lwri,rwri,lhan,rhan')
JOINT_EDGES = 'head-neck-thor-rcla-rsho-relb-rwri-rhan,thor-spin-bell-pelv-rhip-rkne-rank-rtoe'
OPENPOSE_NAMES = ('head,neck,rsho,relb,rwri,lsho,lelb,lwri,pelv,rhip,rkne,rank,lhip,lkne,lank,reye,leye,rear,'
                  'lear,lto2,lto3,lhee,rto2,rto3,rhee')
PNP_JOINTS = 'neck,rsho,relb,rwri,lsho,lelb,lwri,pelv,rhip,rkne,rank,lhip,lkne,lank'  # SMPL <-> OpenPose
S_JOINTS = 'rank,rkne,rhip,lhip,lkne,lank,rwri,relb,rsho,lsho,lelb,lwri'  # the first 12 rows of S
BOX_EXPANSION = 1.15
DETECTION_MIN_IOU = 0.3
MIN_BOX_SIDE_PX = 100
MIN_PNP_POINTS = 6
ARRAYS = {'imgname': (), 'pose': (72,), 'shape': (None,), 'cam_rotmat': (3, 3), 'cam_int': (3, 3),
          'openpose_gt': (25, 3), 'S': (None, None)}


class SpecFormatError(InputError):
    pass


def _indices(names, order):
    order = order.split(',')
    return [order.index(n) for n in names.split(',')]


# ------------------------------------------------------------------------------------------------
# Readers
def load_annotations(path):
    """{key: array} of annotations/<split>.npz, validated (one row per person, no pickled objects)."""
    from posepile.util import fileio
    path = Path(path)
    try:
        everything = fileio.load_npz(path, SpecFormatError)
    except FileNotFoundError as e:
        raise SpecFormatError(str(e)) from None
    arrays = {key: everything[key] for key in ARRAYS if key in everything}
    missing = [key for key in ARRAYS if key not in arrays]
    if missing:
        raise SpecFormatError(f'{path}: arrays {missing} missing')
    n = len(arrays['imgname'])
    for key, shape in ARRAYS.items():
        actual = arrays[key].shape
        if actual[0] != n or len(actual) != len(shape) + 1 or any(
                e is not None and a != e for a, e in zip(actual[1:], shape)):
            raise SpecFormatError(f'{path}: {key} has shape {actual}, expected ({n}, {shape})')
        if key != 'imgname' and not np.all(np.isfinite(arrays[key])):
            raise SpecFormatError(f'{path}: {key} has non-finite values')
    if arrays['S'].shape[1] < 12 or arrays['S'].shape[2] < 3:
        raise SpecFormatError(f'{path}: S has shape {arrays["S"].shape}, expected (N, >= 12, >= 3)')
    scale_m = rms_spread(arrays['S'][:, :12, :3])
    if n and not (0.05 < np.median(scale_m) < 2):
        raise SpecFormatError(f'{path}: S spreads {np.median(scale_m):.3g} (median RMS), expected metres')
    return arrays


def rms_spread(points):
    """RMS distance of the points from their mean, over the last two axes (same units as the points)."""
    points = np.asarray(points, np.float64)
    return np.sqrt(np.mean(np.square(points - points.mean(axis=-2, keepdims=True)), axis=(-2, -1)))


def solve_pose(joints3d, points2d, intrinsics):
    """(R, t, rms px): rigid pose putting `joints3d` (mm) onto `points2d` (px) with fixed intrinsics, no
    distortion (EPnP, then Levenberg-Marquardt refinement: what the original's fully-fixed calibrateCamera does)."""
    import cv2
    object_points = np.ascontiguousarray(joints3d, np.float64).reshape(-1, 1, 3)
    image_points = np.ascontiguousarray(points2d, np.float64).reshape(-1, 1, 2)
    intrinsics = np.asarray(intrinsics, np.float64)
    ok, rvec, tvec = cv2.solvePnP(object_points, image_points, intrinsics, None, flags=cv2.SOLVEPNP_EPNP)
    if not ok:
        raise ValueError('EPnP failed')
    ok, rvec, tvec = cv2.solvePnP(object_points, image_points, intrinsics, None, rvec, tvec, useExtrinsicGuess=True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise ValueError('PnP refinement failed')
    projected = cv2.projectPoints(object_points, rvec, tvec, intrinsics, None)[0].reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum(np.square(projected - image_points.reshape(-1, 2)), axis=1))))
    return cv2.Rodrigues(rvec)[0], tvec.reshape(3), rms


def place_person(smpl_joints_mm, openpose_gt, intrinsics, s_joints_m):
    """(camera-frame joints mm (24, 3), PnP rms px) or None when too few OpenPose joints have confidence > 0."""
    placement = solve_placement(smpl_joints_mm, openpose_gt, intrinsics, s_joints_m)
    return None if placement is None else (placement['cam_mm'], placement['rms_px'])


def solve_placement(smpl_joints_mm, openpose_gt, intrinsics, s_joints_m):
    """dict(cam_mm = s * (R J + t) (24, 3), rot R, trans_mm t, scale s, rms_px) or None when fewer than 6 OpenPose
    joints have confidence > 0. J: the model's joints without translation (mm)."""
    i_3d, i_2d = _indices(PNP_JOINTS, JOINT_NAMES), _indices(PNP_JOINTS, OPENPOSE_NAMES)
    confident = openpose_gt[i_2d, 2] > 0
    if confident.sum() < MIN_PNP_POINTS:
        return None
    rot, trans, rms = solve_pose(smpl_joints_mm[i_3d][confident], openpose_gt[i_2d, :2][confident], intrinsics)
    scale = rms_spread(s_joints_m[:12, :3] * 1000) / rms_spread(smpl_joints_mm[_indices(S_JOINTS, JOINT_NAMES)])
    return dict(cam_mm=(smpl_joints_mm @ rot.T + trans) * scale, rot=rot, trans_mm=trans, scale=float(scale),
                rms_px=rms)


def camera_parameters(pose, betas, placement, rest_pelvis_mm):
    """The placed fit as a camera-frame parameter dict (scaled convention of the module docstring).

    The model's points without translation are Y = J0 + G (Y0 - J0) (J0 the rest pelvis = joint 0 of the
    untranslated joints, G the root rotation); placed, X = s (R Y + t) = s [J0 + R G (Y0 - J0) + t + (R - I) J0]:
    the root becomes R G and trans = t + (R - I) J0, in metres (X = s * model(pose', shape, trans))."""
    from scipy.spatial.transform import Rotation
    rot, scale = np.asarray(placement['rot'], np.float64), placement['scale']
    pelvis = np.asarray(rest_pelvis_mm, np.float64) / 1000
    pose = np.array(pose, np.float64)
    pose[:3] = Rotation.from_matrix(rot @ Rotation.from_rotvec(pose[:3]).as_matrix()).as_rotvec()
    trans = np.asarray(placement['trans_mm'], np.float64) / 1000 + rot @ pelvis - pelvis
    return dict(type='smpl', gender='neutral', pose=pose.astype(np.float32),
                shape=np.asarray(betas, np.float32), trans=trans.astype(np.float32), scale=float(scale))


def move_parameters(params, rotation, translation_m, pelvis_m):
    """`params` (scale s, absent = 1) of a body whose points X = s * model(pose, shape, trans) are moved rigidly to
    rotation @ X + translation_m: the root turns by `rotation`, trans' = (rotation @ pelvis + translation) / s -
    (pelvis / s - trans), exact because the posed pelvis `pelvis_m` (joint 0, metres, in the frame of `params`)
    is s (J0 + trans) and stays put relative to the body (no body model needed)."""
    from scipy.spatial.transform import Rotation
    rotation = np.asarray(rotation, np.float64)
    pelvis = np.asarray(pelvis_m, np.float64)
    trans = np.asarray(params['trans'], np.float64)
    pose = np.array(params['pose'], np.float64)
    pose[:3] = Rotation.from_matrix(rotation @ Rotation.from_rotvec(pose[:3]).as_matrix()).as_rotvec()
    scale = float(params.get('scale', 1.0))
    new_trans = (rotation @ pelvis + np.asarray(translation_m, np.float64)) / scale - (pelvis / scale - trans)
    return {**params, 'pose': pose.astype(np.float32), 'trans': new_trans.astype(np.float32)}


# ------------------------------------------------------------------------------------------------
# Stages
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root) / 'spec-syn'


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def annotation_paths(data_root=None):
    paths = {split: raw_root(data_root) / 'annotations' / f'{split}.npz' for split in SPLITS}
    paths = {split: path for split, path in paths.items() if path.exists()}
    if not paths:
        raise FileNotFoundError(f'no annotations/train.npz or test.npz under {raw_root(data_root)}')
    return paths


def smpl_joints_mm(arrays, model):
    """(N, 24, 3) SMPL joints (mm) of every row's pose and shape, without translation."""
    betas = arrays['shape'][:, :model.n_betas] if hasattr(model, 'n_betas') else arrays['shape']
    result = [model(arrays['pose'][i:i + 4096], betas[i:i + 4096], None, return_vertices=False)['joints']
              for i in range(0, len(arrays['pose']), 4096)]
    return np.concatenate(result) * 1000 if result else np.zeros((0, 24, 3))


def prepare_split(split, path, model):
    """Per image: [dict(row, camera-frame joints mm, cam_rotmat, cam_int, pnp_rms_px, parameters (in the frame of
    the shipped camera; moved to the world frame in person_examples))]."""
    from tqdm import tqdm
    arrays = load_annotations(path)
    joints = smpl_joints_mm(arrays, model)
    images = collections.defaultdict(list)
    for row in tqdm(range(len(joints)), desc=f'spec PnP {split}', mininterval=2, disable=None):
        placed = solve_placement(joints[row], arrays['openpose_gt'][row], arrays['cam_int'][row], arrays['S'][row])
        if placed is None:
            logger.info('%s row %d: fewer than %d OpenPose joints for PnP: skipped', path, row, MIN_PNP_POINTS)
            continue
        betas = arrays['shape'][row][:model.n_betas]
        images[str(arrays['imgname'][row])].append(dict(
            row=row, cam_mm=placed['cam_mm'], pnp_rms_px=placed['rms_px'], cam_rotmat=arrays['cam_rotmat'][row],
            cam_int=arrays['cam_int'][row],
            parameters=camera_parameters(arrays['pose'][row], betas, placed, joints[row][0])))
    return dict(images)


def prepare_stage(data_root=None):
    """Joints placed in the camera by PnP and RMS scaling (posepile_work/prepared.pkl, redone when inputs change)."""
    from posepile import bodymodels
    from posepile.util import fileio
    paths = annotation_paths(data_root)
    out_path = work_dir(data_root) / 'prepared.pkl'
    model_path = bodymodels.find_model_file('smpl', 'neutral', _model_dir(data_root))
    fingerprint = pipeline.inputs_fingerprint([*paths.values(), model_path], {'parameters': 2})
    stored = fileio.load_pickle(out_path) if out_path.exists() else None
    if stored is None or stored.get('fingerprint') != fingerprint:
        model = bodymodels.load('smpl', 'neutral', model_path)
        stored = dict(fingerprint=fingerprint,
                      splits={split: prepare_split(split, path, model) for split, path in paths.items()})
        rms = [p['pnp_rms_px'] for images in stored['splits'].values() for people in images.values() for p in people]
        if rms:
            logger.info('PnP reprojection RMS: median %.3g px, max %.3g px', np.median(rms), np.max(rms))
        fileio.save_pickle(stored, out_path)
    return stored['splits']


def _model_dir(data_root):
    from posepile.paths import data_root as default_data_root
    return Path(data_root or default_data_root()) / 'body_models' / 'smpl'


@pipeline.cli_options(pipeline.DETECTOR_OPTION)
def detect_stage(detector_spec=None, shard=None, data_root=None):
    """Optional person detection (then: Hungarian match at IoU >= 0.3, unmatched people dropped)."""
    import os

    from posepile.preproc.detection import run_detection_stage
    relpaths = sorted({imgname for images in prepare_stage(data_root).values() for imgname in images})
    spec = detector_spec or os.environ.get('POSEPILE_DETECTOR') or 'hog'
    run_detection_stage(raw_root(data_root), relpaths, work_dir(data_root) / 'detections.pkl', spec, shard=shard)


def person_examples(imgname, people, detections=None):
    """[(person, example)]: box = projected joints x1.15, or with detections the Hungarian-matched detection
    (IoU >= 0.3; unmatched people dropped); boxes with a side < 100 px dropped."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.association import associate_boxes
    from posepile.util import boxes
    from posepile.util.camera import Camera
    examples = []
    for person in people:
        camera = Camera(rot_world_to_cam=person['cam_rotmat'], intrinsic_matrix=person['cam_int'],
                        world_up=(0, -1, 0))
        world = camera.camera_to_world(person['cam_mm'])
        box = boxes.expand(boxes.bb_of_points(camera.world_to_image(world)), BOX_EXPANSION)
        params = person.get('parameters')
        if params is not None:  # camera -> world frame: X_w = R^T X_c + optical centre
            params = move_parameters(params, camera.R.T, np.asarray(camera.t, np.float64) / 1000,
                                     np.asarray(person['cam_mm'][0], np.float64) / 1000)
        examples.append(Pose3DExample(f'{NAME}/spec-syn/{imgname}', world, box, camera,
                                      scene_name=Path(imgname).parent.name, parameters=params))
    if detections is not None:
        dets = np.asarray(detections, np.float32).reshape(-1, 5)
        matches = associate_boxes([ex.bbox for ex in examples], dets, min_iou=DETECTION_MIN_IOU)
        for example, i_det in zip(examples, matches):
            example.bbox = dets[i_det, :4] if i_det >= 0 else None
    return [(p, ex) for p, ex in zip(people, examples)
            if ex.bbox is not None and min(ex.bbox[2], ex.bbox[3]) >= MIN_BOX_SIDE_PX]


def crop_relpath(imgname, row):
    """spec_downscaled/spec-syn/<dir>/<4th '_' field of the name>/<stem>_<row:06d>.jpg (the original's grouping;
    names with fewer fields are not grouped)."""
    path = Path(imgname)
    fields = path.stem.split('_')
    group = f'{fields[3]}/' if len(fields) > 3 else ''
    return f'{NAME}_downscaled/spec-syn/{path.parent.as_posix()}/{group}{path.stem}_{row:06d}.jpg'.replace('/./', '/')


def make_crop_tasks(data_root=None):
    from posepile.util import fileio
    detections_path = work_dir(data_root) / 'detections.pkl'
    detections = fileio.load_pickle(detections_path) if detections_path.exists() else None
    tasks = []
    for split, images in prepare_stage(data_root).items():
        for imgname, people in sorted(images.items()):
            image_dets = None if detections is None else detections.get(imgname, [])
            for person, example in person_examples(imgname, people, image_dets):
                tasks.append((f'{SPLITS[split]}/{person["row"]:07d}', example, crop_relpath(imgname, person['row'])))
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of the kept people (extreme_perspective, as the original: wide-angle cameras)."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root,
                                extreme_perspective=True)


def make_dataset(data_root=None):
    """SPEC-SYN: train as TRAIN, test as TEST; 24 SMPL joints in mm, placed by PnP and RMS scaling; `parameters`
    the scaled SMPL fit in the world frame (module docstring)."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0], None, splits[2])


def assemble(data_root=None):
    """The dataset for get_dataset('spec')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.spec.main', 'SPEC-SYN stages', {
        'prepare': prepare_stage,
        'detect': detect_stage,
        'crop': crop_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
