"""HuMMan v1.0 reconstruction subset (HuMMan-Recon): readers of the raw release and the recipe's stages.

The release zips are read IN PLACE under $DATA_ROOT/humman (nothing is extracted; the colour PNGs are cropped
straight from their zip members through posepile.util.image_sources, so the original's PNG -> JPEG conversion pass
is not needed). Members, as the HuMMan toolbox (humman_recon/README.md) lays them out after `unzip "*.zip"`:

    recon_kinect_color_part_{1,2,3}.zip   <seq>/kinect_color/kinect_<00k>/<frame:06d>.png   colour, 3 channels
    recon_kinect_mask.zip                 <seq>/kinect_mask/kinect_<00k>/<frame:06d>.png    matting mask (> 127)
    recon_smpl_params.zip                 <seq>/smpl_params/<frame:06d>.npz   global_orient (3,), body_pose (69,),
                                                                              betas (10,), transl (3,) m, world frame
    recon_cameras.zip                     <seq>/cameras.json   {"kinect_color_<00k>": {K, R, T (m)}, ...} world2cam

<seq> is p<person>_a<action>. The world frame is kinect_color_000's; X_cam = R X + T (T in metres; stored in mm).
Cameras are pinhole (no distortion), world up = the mean of the colour cameras' up directions (-y of each upright
camera). The SMPL fits are already world-frame: stored unchanged as {'type': 'smpl', 'gender': 'neutral', pose
(72), shape (10), trans (m)} (posepile/bodymodels/transform.py convention).

Selection: every sequence, the frames with SMPL fits, AdaptivePoseSampler2(100 mm, buffer 100) on the 24 SMPL
joints of each sequence, then every colour camera with an image; the box is the mask's box (an empty or missing mask
drops the view). Output: parametric only (world_coords None, JointInfo([], [])), the person mask in each crop.
"""
import io
import json
import logging
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'humman'
COLOR_ZIPS = 'recon_kinect_color_part_*.zip'
MASK_ZIP = 'recon_kinect_mask.zip'
SMPL_ZIP = 'recon_smpl_params.zip'
CAMERA_ZIP = 'recon_cameras.zip'
MASK_THRESHOLD = 127
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 100
SEQ = r'(?:^|/)(p\d+_a\d+)/'
COLOR_RE = re.compile(SEQ + r'kinect_color/kinect_(\d+)/(\d+)\.png$')
MASK_RE = re.compile(SEQ + r'kinect_mask/kinect_(\d+)/(\d+)\.png$')
SMPL_RE = re.compile(SEQ + r'smpl_params/(\d+)\.npz$')
CAMERA_RE = re.compile(SEQ + r'cameras\.json$')


class HuMManFormatError(InputError):
    """A raw HuMMan file is missing, unreadable or malformed (one line naming the file)."""


def _index(zip_path, pattern):
    """{match groups: member} of the zip's members matching `pattern`."""
    from posepile.util import image_sources
    result = {}
    for member in image_sources.zip_members(zip_path):
        match = pattern.search(member)
        if match:
            result[match.groups()] = member
    return result


def _array(name, value, key, size):
    array = np.asarray(value, np.float64).reshape(-1)
    if array.size != size or not np.all(np.isfinite(array)):
        raise HuMManFormatError(f'{name}: {key} has {array.size} values (expected {size} finite numbers)')
    return array


def load_cameras(zip_path, member):
    """{kinect id (int): Camera (mm)} of the colour cameras of one cameras.json."""
    from posepile.util import image_sources
    from posepile.util.camera import Camera
    name = image_sources.member_path(zip_path, member)
    try:
        data = json.loads(image_sources.read_zip_member(zip_path, member))
    except ValueError as e:
        raise HuMManFormatError(f'{name}: not valid JSON ({e})') from None
    raw = {}
    for key, cam in (data.items() if isinstance(data, dict) else []):
        match = re.fullmatch(r'kinect_color_(\d+)', key)
        if not match:
            continue
        if not isinstance(cam, dict) or not {'K', 'R', 'T'} <= cam.keys():
            raise HuMManFormatError(f'{name}: {key} lacks K, R or T')
        R = _array(name, cam['R'], f'{key}.R', 9).reshape(3, 3)
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) <= 0:
            raise HuMManFormatError(f'{name}: {key}.R is not a rotation matrix')
        T = _array(name, cam['T'], f'{key}.T', 3)
        if np.abs(T).max() > 50:
            raise HuMManFormatError(f'{name}: {key}.T {T.tolist()} is not in metres')
        raw[int(match.group(1))] = (R, T * 1000, _array(name, cam['K'], f'{key}.K', 9).reshape(3, 3))
    if not raw:
        raise HuMManFormatError(f'{name}: no kinect_color_* cameras')
    up = -np.mean([R[1] for R, _, _ in raw.values()], axis=0)
    up = up / np.linalg.norm(up)
    return {k: Camera(optical_center=-R.T @ T, rot_world_to_cam=R, intrinsic_matrix=K, world_up=up)
            for k, (R, T, K) in raw.items()}


def load_fit(zip_path, member):
    """World-frame parameter dict of one smpl_params/<frame>.npz member."""
    from posepile.util import image_sources
    name = image_sources.member_path(zip_path, member)
    try:
        with np.load(io.BytesIO(image_sources.read_zip_member(zip_path, member)), allow_pickle=False) as data:
            values = {k: np.asarray(data[k]) for k in ('global_orient', 'body_pose', 'betas', 'transl')}
    except KeyError as e:
        raise HuMManFormatError(f'{name}: no {e.args[0]}') from None
    except (ValueError, OSError) as e:
        raise HuMManFormatError(f'{name}: unreadable npz ({e})') from None
    pose = np.concatenate([_array(name, values['global_orient'], 'global_orient', 3),
                           _array(name, values['body_pose'], 'body_pose', 69)])
    betas = _array(name, values['betas'], 'betas', np.asarray(values['betas']).size)
    trans = _array(name, values['transl'], 'transl', 3)
    return {'type': 'smpl', 'gender': 'neutral', 'pose': pose.astype(np.float32),
            'shape': betas.astype(np.float32), 'trans': trans.astype(np.float32)}


def load_mask(zip_path, member):
    import cv2

    from posepile.util import image_sources
    data = image_sources.read_zip_member(zip_path, member)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise HuMManFormatError(f'{image_sources.member_path(zip_path, member)}: cannot decode the mask')
    return image > MASK_THRESHOLD


# ------------------------------------------------------------------------------------------------
# The raw tree and stages
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def body_model_dir(data_root=None):
    return raw_root(data_root).parent / 'body_models'


def release_zips(root):
    """(colour zips, mask zip, SMPL zip, camera zip) paths; FileNotFoundError naming what is missing."""
    root = Path(root)
    colors = sorted(root.glob(COLOR_ZIPS))
    missing = [name for name, ok in ((COLOR_ZIPS, colors), (MASK_ZIP, (root / MASK_ZIP).exists()),
                                     (SMPL_ZIP, (root / SMPL_ZIP).exists()),
                                     (CAMERA_ZIP, (root / CAMERA_ZIP).exists())) if not ok]
    if missing:
        raise FileNotFoundError(f'{root}: {", ".join(missing)} not found (download them into it, step 1 of main.sh)')
    return colors, root / MASK_ZIP, root / SMPL_ZIP, root / CAMERA_ZIP


def selected_frames(joints_mm):
    from posepile.util.sampling import select_frames
    return select_frames(joints_mm, SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)


def crop_relpath(seq, kinect, frame):
    return f'{NAME}_downscaled/{seq}/kinect_{kinect}/{frame}.jpg'


def make_crop_tasks(data_root=None):
    """(key 'train/<seq>/<kinect>/<frame>', example, crop relpath) per selected frame x camera with a mask."""
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from posepile.datasets3d import TRAIN, Pose3DExample
    from posepile.util import boxes, image_sources, masks
    root = raw_root(data_root)
    colors, mask_zip, smpl_zip, camera_zip = release_zips(root)
    images = {}
    for color_zip in colors:
        for (seq, kinect, frame), member in _index(color_zip, COLOR_RE).items():
            images[(seq, kinect, frame)] = image_sources.member_path(color_zip.relative_to(root.parent), member)
    mask_members = _index(mask_zip, MASK_RE)
    fits = _index(smpl_zip, SMPL_RE)
    camera_members = {groups[0]: member for groups, member in _index(camera_zip, CAMERA_RE).items()}
    model = bodymodels.load('smpl', 'neutral', body_model_dir(data_root))
    tasks, counts = [], {'sequences': 0, 'frames': 0, 'selected': 0, 'no mask': 0, 'empty mask': 0}
    for seq in sorted({s for s, _ in fits}):
        if seq not in camera_members:
            raise HuMManFormatError(f'{camera_zip}: no {seq}/cameras.json for the SMPL fits of {seq}')
        cameras = load_cameras(camera_zip, camera_members[seq])
        frames = sorted(f for s, f in fits if s == seq)
        params = [load_fit(smpl_zip, fits[(seq, f)]) for f in frames]
        kept = selected_frames(np.stack([parameter_joints_mm(p, model) for p in params]))
        counts['sequences'] += 1
        counts['frames'] += len(frames)
        counts['selected'] += len(kept)
        for i in kept:
            for kinect_id, camera in sorted(cameras.items()):
                kinect = f'{kinect_id:03d}'
                image = images.get((seq, kinect, frames[i]))
                if image is None:
                    continue
                if (seq, kinect, frames[i]) not in mask_members:
                    counts['no mask'] += 1
                    continue
                mask = load_mask(mask_zip, mask_members[(seq, kinect, frames[i])])
                box = boxes.bb_of_mask(mask)
                if not boxes.area(box) > 0:
                    counts['empty mask'] += 1
                    continue
                example = Pose3DExample(image, None, box, camera, scene_name=seq, mask=masks.encode(mask),
                                        parameters=params[i])
                tasks.append((f'{TRAIN}/{seq}/{kinect}/{frames[i]}', example, crop_relpath(seq, kinect, frames[i])))
    logger.info('%d crop tasks; %s', len(tasks), ', '.join(f'{k} {v}' for k, v in counts.items()))
    if not tasks:
        raise FileNotFoundError(f'no usable HuMMan frames in the zips under {root}')
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None, skip_broken=None):
    """Crops of the selected frames x Kinects, read in place from the release zips, with the matting masks."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root,
                                skip_broken=skip_broken)


crop_stage.cli_options = [pipeline.SKIP_BROKEN_OPTION]


def make_dataset(data_root=None):
    """HuMMan-Recon: parametric only (neutral SMPL, world frame), person masks."""
    from posepile.datasets3d import TRAIN, Pose3DDataset
    from posepile.joint_info import JointInfo
    by_split = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo([], []), train_examples=by_split[TRAIN])


def assemble(data_root=None):
    """The dataset for get_dataset('humman')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.humman.main', 'HuMMan stages', {
        'crop': crop_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
