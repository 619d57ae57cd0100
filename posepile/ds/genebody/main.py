"""GeneBody (Train40): readers of the raw release and the recipe's stages.

Raw layout under $DATA_ROOT/genebody (the GeneBody-Train40 download, as gnr's genebody/genebody.py reads it):

    GeneBody-Train40/genebody_split.npy          np.save'd dict {'train': [subjects], 'test': [subjects]}
    GeneBody-Train40/<subject>/annots.npy         {'cams': {'00': {K (3,3), D (5,) OpenCV, c2w (4,4) m, ...}, ...}}
    GeneBody-Train40/<subject>/image/<view>/<frame>.jpg      2448x2048 colour (views 00..47; some subjects lack a few)
    GeneBody-Train40/<subject>/mask/<view>/mask<frame>.png   person mask (> 128 is the person, as gnr)
    GeneBody-Train40/<subject>/param/<frame>.npy  {'smplx': {global_orient (1,3), body_pose (1,21,3), jaw/leye/reye
                                                   (1,3), left/right_hand_pose (15,3) full axis-angle, betas (1,10),
                                                   expression (1,10), transl (1,3), keypoints3d (1,55,3)},
                                                   'smplx_scale': float}

Cameras: world-to-camera = inv(c2w) (metres; stored in mm), K and the 5-term OpenCV distortion. The fits follow
GeneBody's own convention (gnr genebody.py: the mesh is `SMPLX(**smplx).vertices * smplx_scale`, smplx's defaults
use_pca=False, flat_hand_mean=False), i.e. X = s * SMPLX(pose, betas, transl): exactly posepile's scale convention
(posepile/bodymodels/transform.py), so `trans` = transl and `scale` = smplx_scale are stored unchanged; the hand
poses are full rotations to which the model's hand mean is added (posepile.bodymodels.hands, read from the SMPL-X
model file). The real param file's own `keypoints3d` is s * joints[:55] in the world frame (checked in the test).

Selection (as the original): the subjects of the split's 'train' list present under GeneBody-Train40, every frame
of image/00 (file order), the original's AdaptivePoseSampler2(100 mm, buffer 100) on the 55 scaled SMPL-X joints
of each subject, then every view; the box is the mask's box (an empty mask drops the view). Genders from
GeneBody's own table (gnr genebody/gender.py). Output: parametric only (world_coords None, JointInfo([], [])),
parameters {'type': 'smplx', gender, pose (165), shape (10), expression (10), trans (m), scale} in the world frame,
the person mask in each crop.
"""
import logging
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'genebody'
RELEASE_DIR = 'GeneBody-Train40'
WORLD_UP_FALLBACK = (0, -1, 0)
MASK_THRESHOLD = 128  # gnr: msk > 128
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 100
N_JOINTS = 55
# GeneBody's gender table (gnr genebody/gender.py)
GENDERS = dict(
    **{name: 'male' for name in (
        'abror', 'alejandro', 'aosilan', 'arslan', 'barlas', 'barry', 'camilo', 'dannier', 'dilshod', 'fenghaohan',
        'huajiangtao3', 'huajiangtao5', 'ivan', 'kamal_ejaz', 'kemal', 'mahaoran', 'rivera',
        'shchyerbina_oleksandrsongyujie', 'soufianou_boubacar_moumouni', 'sunyuxing', 'wangxiang', 'wuwenyan',
        'yaoqibin', 'zhanghao', 'zhuxuezhi', 'songyujie', 'rabbi')},
    **{name: 'female' for name in (
        'ahha', 'amanda', 'amaris', 'anastasia', 'fuzhizhi', 'fuzhizhi2', 'gaoxing', 'jinyutong', 'jinyutong2',
        'joseph_matanda', 'lihongyun', 'maria', 'natacha', 'quyuanning', 'Tichinah_jervier', 'xujiarui',
        'zhanghongwei', 'zhangzixiao', 'zhengxin', 'zhonglantai', 'zhuna', 'zhuna2', 'zhangziyu')})
POSE_PARTS = (('global_orient', 3), ('body_pose', 63), ('jaw_pose', 3), ('leye_pose', 3), ('reye_pose', 3),
              ('left_hand_pose', 45), ('right_hand_pose', 45))


class GeneBodyFormatError(InputError):
    """A raw GeneBody file is missing, unreadable or malformed (one line naming the file)."""


# ------------------------------------------------------------------------------------------------
# Readers
def _load(path):
    from posepile.bodymodels.files import load_object_npy
    return load_object_npy(path, GeneBodyFormatError)


def _array(path, value, key, size):
    try:
        array = np.asarray(value, np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise GeneBodyFormatError(f'{path}: {key} is not numeric') from None
    if array.size != size or not np.all(np.isfinite(array)):
        raise GeneBodyFormatError(f'{path}: {key} has {array.size} values (expected {size} finite numbers)')
    return array


def load_cameras(path):
    """{view: Camera (mm)} of annots.npy: world-to-camera = inv(c2w), K, the 5-term OpenCV D; world up = the
    mean of the cameras' up directions (-y of each camera, as the cameras stand upright)."""
    from posepile.util.camera import Camera
    annots = _load(path)
    cams = annots.get('cams') if isinstance(annots, dict) else None
    if not isinstance(cams, dict) or not cams:
        raise GeneBodyFormatError(f'{path}: no "cams" dict')
    raw = {}
    for view, cam in cams.items():
        if not isinstance(cam, dict) or not {'K', 'c2w'} <= cam.keys():
            raise GeneBodyFormatError(f'{path}: camera {view!r} lacks K or c2w')
        c2w = _array(path, cam['c2w'], f'cams[{view!r}].c2w', 16).reshape(4, 4)
        rotation = c2w[:3, :3]
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4) or np.linalg.det(rotation) <= 0:
            raise GeneBodyFormatError(f'{path}: cams[{view!r}].c2w has no proper rotation')
        K = _array(path, cam['K'], f'cams[{view!r}].K', 9).reshape(3, 3)
        D = _array(path, cam.get('D', np.zeros(5)), f'cams[{view!r}].D', np.asarray(cam.get('D', np.zeros(5))).size)
        raw[str(view)] = (rotation.T, c2w[:3, 3] * 1000, K, D)
    ups = np.array([-r[1] for r, _, _, _ in raw.values()])
    up = ups.mean(0)
    up = up / np.linalg.norm(up) if np.linalg.norm(up) > 0.5 else np.asarray(WORLD_UP_FALLBACK, np.float64)
    return {view: Camera(optical_center=centre, rot_world_to_cam=r, intrinsic_matrix=K, distortion_coeffs=D,
                         world_up=up) for view, (r, centre, K, D) in raw.items()}


def load_fit(path):
    """(smplx dict of float64 arrays, scale float) of param/<frame>.npy."""
    data = _load(path)
    if not isinstance(data, dict) or not isinstance(data.get('smplx'), dict) or 'smplx_scale' not in data:
        raise GeneBodyFormatError(f'{path}: expected {{"smplx": {{...}}, "smplx_scale": s}}')
    smplx = data['smplx']
    fit = {key: _array(path, smplx.get(key), key, size) for key, size in POSE_PARTS if key in smplx}
    missing = [key for key, _ in POSE_PARTS if key not in smplx] + [k for k in ('betas', 'transl') if k not in smplx]
    if missing:
        raise GeneBodyFormatError(f'{path}: smplx lacks {", ".join(missing)}')
    betas = np.asarray(smplx['betas'], np.float64).reshape(-1)
    fit['betas'] = _array(path, betas, 'betas', betas.size)
    fit['transl'] = _array(path, smplx['transl'], 'transl', 3)
    expression = np.asarray(smplx.get('expression', np.zeros(0)), np.float64).reshape(-1)
    fit['expression'] = _array(path, expression, 'expression', expression.size)
    scale = float(np.asarray(data['smplx_scale'], np.float64).reshape(-1)[0])
    if not (np.isfinite(scale) and 0.2 < scale < 5):
        raise GeneBodyFormatError(f'{path}: smplx_scale {scale} is implausible')
    if np.abs(fit['transl']).max() > 100:
        raise GeneBodyFormatError(f'{path}: transl {fit["transl"].tolist()} is not in metres')
    return fit, scale


def world_parameters(fit, scale, gender, hand_pca):
    """The fit as a world-frame parameter dict: full 165-D pose (hands: the released full rotations plus the
    model's hand mean, smplx's use_pca=False / flat_hand_mean=False), betas, expression, transl, scale."""
    from posepile.bodymodels import hands
    pose = hands.smplx_full_pose(fit['global_orient'], fit['body_pose'], fit['jaw_pose'], fit['leye_pose'],
                                 fit['reye_pose'], fit['left_hand_pose'].reshape(15, 3),
                                 fit['right_hand_pose'].reshape(15, 3), hand_pca=hand_pca, use_pca=False)
    result = {'type': 'smplx', 'gender': gender, 'pose': pose.astype(np.float32),
              'shape': fit['betas'].astype(np.float32), 'trans': fit['transl'].astype(np.float32),
              'scale': float(scale)}
    if fit['expression'].size:
        result['expression'] = fit['expression'].astype(np.float32)
    return result


def load_mask(path):
    """Boolean person mask (> 128) of a mask PNG."""
    import cv2
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise GeneBodyFormatError(f'{path}: cannot read the mask')
    return image > MASK_THRESHOLD


# ------------------------------------------------------------------------------------------------
# The raw tree and stages
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def body_model_dir(data_root=None):
    return raw_root(data_root).parent / 'body_models'


def release_dir(data_root=None):
    path = raw_root(data_root) / RELEASE_DIR
    if not path.is_dir():
        raise FileNotFoundError(f'{path} not found: download GeneBody-Train40 into it (step 1 of main.sh)')
    return path


def train_subjects(release):
    """Subjects of genebody_split.npy's 'train' list present on disk (absent ones are logged)."""
    split_path = Path(release) / 'genebody_split.npy'
    split = _load(split_path)
    if not isinstance(split, dict) or not isinstance(split.get('train'), (list, tuple, np.ndarray)):
        raise GeneBodyFormatError(f'{split_path}: expected {{"train": [...], "test": [...]}}')
    names = [str(s) for s in split['train']]
    present = [s for s in names if (Path(release) / s / 'annots.npy').exists()]
    if len(present) < len(names):
        logger.warning('%d of %d train subjects are absent from %s: %s', len(names) - len(present), len(names),
                       release, ', '.join(sorted(set(names) - set(present))))
    unknown = [s for s in present if s not in GENDERS]
    if unknown:
        raise GeneBodyFormatError(f'{split_path}: subjects {unknown} are not in the gender table')
    return present


def subject_frames(subject_dir):
    """Frame names (without suffix) of image/00, sorted (gnr's get_frames)."""
    folder = Path(subject_dir) / 'image' / '00'
    if not folder.is_dir():
        raise GeneBodyFormatError(f'{folder}: no images of view 00')
    return sorted(p.stem for p in folder.iterdir() if p.suffix.lower() in ('.jpg', '.jpeg', '.png'))


def selected_frames(joints_mm):
    from posepile.util.sampling import select_frames
    return select_frames(joints_mm, SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)


def model_joints_mm(model, parameter_list):
    """(N, 55, 3) world mm: scale * SMPL-X joints of each parameter dict."""
    if not parameter_list:
        return np.zeros((0, N_JOINTS, 3))
    expression = [p.get('expression', np.zeros(0)) for p in parameter_list]
    n_expr = min(len(e) for e in expression)
    out = model(np.stack([p['pose'] for p in parameter_list]), np.stack([p['shape'] for p in parameter_list]),
                np.stack([p['trans'] for p in parameter_list]),
                expression=np.stack([e[:n_expr] for e in expression]) if n_expr else None, return_vertices=False)
    scales = np.array([p.get('scale', 1.0) for p in parameter_list])
    return out['joints'][:, :N_JOINTS] * scales[:, None, None] * 1000


def crop_relpath(image_relpath):
    return image_relpath.replace(f'{NAME}/', f'{NAME}_downscaled/', 1)


def make_crop_tasks(data_root=None, attach_masks_for=None):
    """(key 'train/relpath', example, crop relpath) per selected frame x view with a non-empty mask."""
    from posepile import bodymodels
    from posepile.bodymodels import hands
    from posepile.datasets3d import TRAIN, Pose3DExample
    from posepile.util import boxes, masks
    release = release_dir(data_root)
    tasks, counts = [], {'subjects': 0, 'frames': 0, 'selected': 0, 'empty mask': 0}
    models = {}
    for subject in train_subjects(release):
        subject_dir = release / subject
        gender = GENDERS[subject]
        if gender not in models:
            model = bodymodels.load('smplx', gender, body_model_dir(data_root))
            models[gender] = (model, hands.hand_pca(model.path))
        model, hand_pca = models[gender]
        cameras = load_cameras(subject_dir / 'annots.npy')
        frames = subject_frames(subject_dir)
        params = [world_parameters(*load_fit(subject_dir / 'param' / f'{frame}.npy'), gender, hand_pca)
                  for frame in frames]
        kept = selected_frames(model_joints_mm(model, params)) if frames else []
        counts['subjects'] += 1
        counts['frames'] += len(frames)
        counts['selected'] += len(kept)
        views = sorted(p.name for p in (subject_dir / 'image').iterdir() if p.is_dir())
        for view in views:
            if view not in cameras:
                raise GeneBodyFormatError(f'{subject_dir / "annots.npy"}: no camera for image view {view}')
            for i in kept:
                image = subject_dir / 'image' / view / f'{frames[i]}.jpg'
                mask = load_mask(subject_dir / 'mask' / view / f'mask{frames[i]}.png')
                box = boxes.bb_of_mask(mask)
                if not boxes.area(box) > 0:
                    counts['empty mask'] += 1
                    continue
                relpath = str(image.relative_to(raw_root(data_root).parent))
                example = Pose3DExample(relpath, None, box, cameras[view], scene_name=subject,
                                        mask=masks.encode(mask), parameters=params[i])
                tasks.append((f'{TRAIN}/{relpath}', example, crop_relpath(relpath)))
    logger.info('%d crop tasks; %s', len(tasks), ', '.join(f'{k} {v}' for k, v in counts.items()))
    if not tasks:
        raise FileNotFoundError(f'no usable GeneBody frames under {release}')
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None, skip_broken=None):
    """Crops of the selected frames x views, with the shipped person masks."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root,
                                skip_broken=skip_broken)


crop_stage.cli_options = [pipeline.SKIP_BROKEN_OPTION]


def make_dataset(data_root=None):
    """GeneBody Train40: parametric only (SMPL-X with scale, world frame), person masks."""
    from posepile.datasets3d import TRAIN, Pose3DDataset
    from posepile.joint_info import JointInfo
    by_split = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo([], []), train_examples=by_split[TRAIN])


def assemble(data_root=None):
    """The dataset for get_dataset('genebody')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.genebody.main', 'GeneBody stages', {
        'crop': crop_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
