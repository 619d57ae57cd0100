"""ZJU-MoCap (Neural Body release): readers of the raw release and the recipe's stages.

Raw layout under $DATA_ROOT/zjumocap (one folder per sequence, as Neural Body's zju_mocap loader reads it):

    CoreView_<seq>/annots.npy              np.save'd dict {'cams': {'K': [3x3 per camera], 'D': [5x1], 'R': [3x3],
                                           'T': [3x1] in mm}, 'ims': [{'ims': [image relpath per camera]} per frame]}
    CoreView_<seq>/Camera_B<k>/<frame:06d>.jpg          (313/315: 'Camera (<k>)/CoreView_313_Camera_(<k>)_<frame:04d>_
                                                         <time>.jpg', frame numbers from 1)
    CoreView_<seq>/mask/<image relpath>.png, mask_cihp/<image relpath>.png   person masks (> 0; the union is used)
    CoreView_<seq>/new_params/<frame>.npy  EasyMocap SMPL fit {'poses' (1,72), 'shapes' (1,10), 'Rh' (1,3),
                                           'Th' (1,3) m}

Cameras: X_cam = R X_world + T with T in mm (Neural Body divides it by 1000 for metres), K, 5-term OpenCV D; the
world up is the mean of the cameras' up directions (-y of each upright camera). The EasyMocap fit is
X_world = Rodrigues(Rh) . SMPL(poses, shapes) + Th (poses[:3] is zero in the released fits, the global rotation is in
Rh). It is folded into the root exactly, with the pelvis offset, by posepile.bodymodels.rigid.apply_rotvec_translation
(root -> R_h G_root, trans = R_h J0 + Th - J0), so the stored parameters {'type': 'smpl', 'gender': 'neutral',
pose (72), shape (10), trans (m)} give the same world body (posepile/bodymodels/transform.py convention).

Selection (as the original): every frame of `ims`, the original's AdaptivePoseSampler2(100 mm, buffer 100) on the
24 SMPL joints of each sequence, then every camera; the box is the mask's box (an empty mask drops the view). Output:
parametric only (world_coords None, JointInfo([], [])), the person mask in each crop.
"""
import logging
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'zjumocap'
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 100
MASK_FOLDERS = ('mask', 'mask_cihp')
OLD_NAMING = re.compile(r'CoreView_\d+_Camera_\(\d+\)_(\d+)_')  # 313 / 315: frame numbers from 1


class ZJUMocapFormatError(InputError):
    """A raw ZJU-MoCap file is missing, unreadable or malformed (one line naming the file)."""


def _load(path):
    from posepile.bodymodels.files import load_object_npy
    return load_object_npy(path, ZJUMocapFormatError)


def _matrices(path, values, key, shape):
    try:
        array = np.asarray(values, np.float64)
        array = array.reshape((-1, *shape))
    except (TypeError, ValueError):
        raise ZJUMocapFormatError(f'{path}: cams.{key} is not a list of {shape} arrays') from None
    if not np.all(np.isfinite(array)):
        raise ZJUMocapFormatError(f'{path}: cams.{key} has non-finite values')
    return array


def load_annots(path):
    """(cameras [Camera (mm)], image relpaths [[per camera] per frame]) of annots.npy."""
    from posepile.util.camera import Camera
    annots = _load(path)
    if not isinstance(annots, dict) or not isinstance(annots.get('cams'), dict) or 'ims' not in annots:
        raise ZJUMocapFormatError(f'{path}: expected {{"cams": {{K, D, R, T}}, "ims": [...]}}')
    cams = annots['cams']
    missing = [k for k in ('K', 'R', 'T') if k not in cams]
    if missing:
        raise ZJUMocapFormatError(f'{path}: cams lacks {", ".join(missing)}')
    Ks, Rs = _matrices(path, cams['K'], 'K', (3, 3)), _matrices(path, cams['R'], 'R', (3, 3))
    Ts = _matrices(path, cams['T'], 'T', (3,))
    Ds = _matrices(path, cams['D'], 'D', (5,)) if 'D' in cams else np.zeros((len(Ks), 5))
    if not len(Ks) == len(Rs) == len(Ts) == len(Ds):
        raise ZJUMocapFormatError(f'{path}: cams have {len(Ks)} K, {len(Rs)} R, {len(Ts)} T, {len(Ds)} D')
    for i, R in enumerate(Rs):
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) <= 0:
            raise ZJUMocapFormatError(f'{path}: cams.R[{i}] is not a rotation matrix')
    if np.abs(Ts).max() < 50:
        raise ZJUMocapFormatError(f'{path}: cams.T up to {np.abs(Ts).max():.2f}: expected millimetres')
    up = -Rs[:, 1].mean(0)
    up = up / np.linalg.norm(up)
    cameras = [Camera(optical_center=-R.T @ T, rot_world_to_cam=R, intrinsic_matrix=K, distortion_coeffs=D,
                      world_up=up) for K, R, T, D in zip(Ks, Rs, Ts, Ds)]
    try:
        ims = [[str(p) for p in entry['ims']] for entry in annots['ims']]
    except (TypeError, KeyError):
        raise ZJUMocapFormatError(f'{path}: ims must be a list of {{"ims": [paths]}}') from None
    if any(len(row) != len(cameras) for row in ims):
        raise ZJUMocapFormatError(f'{path}: ims rows do not list one image per camera ({len(cameras)})')
    return cameras, ims


def param_index(image_relpath):
    """Frame number of new_params/<n>.npy for an image: the file's number (Camera_B naming), or the 1-based
    frame field of the 313/315 naming (Neural Body's rule)."""
    name = Path(image_relpath).name
    match = OLD_NAMING.search(name)
    if match:
        return int(match.group(1))
    stem = Path(name).stem
    if not stem.isdigit():
        raise ZJUMocapFormatError(f'{image_relpath}: cannot tell the frame number from the image name')
    return int(stem)


def load_fit(path):
    """{'poses' (72,), 'shapes' (10,), 'Rh' (3,), 'Th' (3,)} float64 of new_params/<n>.npy."""
    data = _load(path)
    if not isinstance(data, dict):
        raise ZJUMocapFormatError(f'{path}: expected a dict with poses, shapes, Rh and Th')
    result = {}
    for key, size in (('poses', 72), ('shapes', None), ('Rh', 3), ('Th', 3)):
        if key not in data:
            raise ZJUMocapFormatError(f'{path}: no {key}')
        value = np.asarray(data[key], np.float64).reshape(-1)
        if (size is not None and value.size != size) or not np.all(np.isfinite(value)):
            raise ZJUMocapFormatError(f'{path}: {key} has {value.size} values (expected {size or "some"} finite)')
        result[key] = value
    if np.abs(result['Th']).max() > 100:
        raise ZJUMocapFormatError(f'{path}: Th {result["Th"].tolist()} is not in metres')
    return result


def world_parameters(fit, model):
    """The EasyMocap fit with Rh/Th folded into the root (exact, with the pelvis offset)."""
    from posepile.bodymodels import rigid
    local = {'type': 'smpl', 'gender': 'neutral', 'pose': fit['poses'], 'shape': fit['shapes'][:model.n_betas],
             'trans': np.zeros(3)}
    result = rigid.apply_rotvec_translation(local, fit['Rh'], fit['Th'], model=model)
    result['shape'] = np.asarray(result['shape'], np.float32)
    return result


def load_mask(seq_dir, image_relpath):
    """Boolean person mask: the union of mask/ and mask_cihp/ (those present), as Neural Body."""
    import cv2
    result = None
    for folder in MASK_FOLDERS:
        path = (Path(seq_dir) / folder / image_relpath).with_suffix('.png')
        if path.exists():
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise ZJUMocapFormatError(f'{path}: cannot read the mask')
            result = image > 0 if result is None else result | (image > 0)
    if result is None:
        raise ZJUMocapFormatError(f'{Path(seq_dir) / "mask" / image_relpath}: no mask (mask/ or mask_cihp/)')
    return result


# ------------------------------------------------------------------------------------------------
# The raw tree and stages
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def body_model_dir(data_root=None):
    return raw_root(data_root).parent / 'body_models'


def sequence_dirs(root):
    if not Path(root).is_dir():
        raise FileNotFoundError(f'{root} not found: place the CoreView_* folders there (step 1 of main.sh)')
    return sorted(d for d in Path(root).iterdir() if d.is_dir() and d.name.startswith('CoreView_')
                  and (d / 'annots.npy').exists())


def selected_frames(joints_mm):
    from posepile.util.sampling import select_frames
    return select_frames(joints_mm, SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)


def crop_relpath(image_relpath):
    return image_relpath.replace(f'{NAME}/', f'{NAME}_downscaled/', 1)


def make_crop_tasks(data_root=None):
    """(key 'train/relpath', example, crop relpath) per selected frame x camera with a non-empty mask."""
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.datasets3d import TRAIN, Pose3DExample
    from posepile.util import boxes, masks
    root = raw_root(data_root)
    model = bodymodels.load('smpl', 'neutral', body_model_dir(data_root))
    tasks, counts = [], {'sequences': 0, 'frames': 0, 'selected': 0, 'empty mask': 0}
    for seq_dir in sequence_dirs(root):
        cameras, ims = load_annots(seq_dir / 'annots.npy')
        params = [world_parameters(load_fit(seq_dir / 'new_params' / f'{param_index(row[0])}.npy'), model)
                  for row in ims]
        joints = np.stack([parameter_joints_mm(p, model) for p in params]) if params else np.zeros((0, 24, 3))
        kept = selected_frames(joints) if params else []
        counts['sequences'] += 1
        counts['frames'] += len(ims)
        counts['selected'] += len(kept)
        for i in kept:
            for camera, image_relpath in zip(cameras, ims[i]):
                mask = load_mask(seq_dir, image_relpath)
                box = boxes.bb_of_mask(mask)
                if not boxes.area(box) > 0:
                    counts['empty mask'] += 1
                    continue
                relpath = str((seq_dir / image_relpath).relative_to(root.parent))
                example = Pose3DExample(relpath, None, box, camera, scene_name=seq_dir.name,
                                        mask=masks.encode(mask), parameters=params[i])
                tasks.append((f'{TRAIN}/{relpath}', example, crop_relpath(relpath)))
    logger.info('%d crop tasks; %s', len(tasks), ', '.join(f'{k} {v}' for k, v in counts.items()))
    if not tasks:
        raise FileNotFoundError(f'no usable ZJU-MoCap frames under {root}')
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None, skip_broken=None):
    """Crops of the selected frames x cameras, with the shipped person masks."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root,
                                skip_broken=skip_broken)


crop_stage.cli_options = [pipeline.SKIP_BROKEN_OPTION]


def make_dataset(data_root=None):
    """ZJU-MoCap: parametric only (neutral SMPL, Rh/Th folded in, world frame), person masks."""
    from posepile.datasets3d import TRAIN, Pose3DDataset
    from posepile.joint_info import JointInfo
    by_split = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo([], []), train_examples=by_split[TRAIN])


def assemble(data_root=None):
    """The dataset for get_dataset('zjumocap')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.zjumocap.main', 'ZJU-MoCap stages', {
        'crop': crop_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
