"""SynBody, HumanNeRF subset: readers of the raw release and the recipe's stages.

The release (Hugging Face dataset caizhongang/SynBody, folder HumanNeRF-subset/) is five zips, read IN PLACE under
$DATA_ROOT/synbody/HumanNeRF-subset (nothing is extracted; the original also reads the JPEGs straight from img.zip).
Members, per sequence <seq> (three digits, 000..099 in the release):

    camera_params.zip   <seq>/camera.json         {"camera00": {"K": 3x3, "R": 3x3, "T": 3 (metres)}, ..., "camera07"}
                                                  world-to-camera: X_cam = R X_world + T
    smpl.zip            <seq>/smpl_refit.npz      'smpl': pickled dict {global_orient (F, 3), body_pose (F, 69),
                                                  betas (F, 10) or (1, 10), transl (F, 3) m}, 'meta': pickled dict
                                                  {'gender': 'male' | 'female' | 'neutral'}; world frame
    mask.zip            <seq>/mask/<cc>/<ffff>.png    person mask of camera <cc> (camera<cc>), frame <ffff> (> 0)
    img.zip             <seq>/img/<cc>/<ffff>.jpg     the rendered image
    smplx.zip           <seq>/smplx.npz           SMPL-X fits (not used, as the original)

Evidence for this layout (no SynBody file is public here; /work/shared/realdata has none): the Hugging Face listing
of HumanNeRF-subset/ (the five zip names and sizes); the original's rules (../shared/docs/nlf-era-facts.md §1.1,
original-posepile-facts.md: 100 sequences x 8 cameras, K, R, T x 1000, gendered SMPL from smpl_refit.npz, masks ->
box, images from img.zip) with the member names and keys of its humannerf_subset.py, read as facts through the code
search (<seq>/camera.json with camera00..camera07, <seq>/smpl_refit.npz with pickled 'smpl' and 'meta' (gender),
<seq>/mask/<cc>/<ffff>.png next to them, <seq>/img/<cc>/<ffff>.jpg inside img.zip); and an independent user of the
real release (github foalengtoussaint/cup-task: cup_task/mv3d/dataset_synbody.py and its SynBody ground-truth
cache and smoke-test scripts: camera_params/<seq>/camera.json with K, R, T and P = K [R | T] in the fits' world
frame, camera 'cameraNN' <-> image folder NN, <seq>/img/<NN>/<ffff>.jpg, 300 frames per sequence, the 8 cameras
on a ring, smplx/<seq>/smplx.npz with pickled 'smplx' and 'meta' entries). Members may sit under one extra top
folder (e.g. camera_params/<seq>/camera.json); the readers accept either. What no evidence fixes is accepted in its
plausible forms only (betas (F, n) or (1, n); masks of 1, 3 or 4 channels, any colour channel > 0; any image
size); anything else, and any missing key, is a one-line SynBodyFormatError naming the zip member.

Cameras: pinhole (no distortion), T x 1000 -> mm. World up: the mean up direction of the cameras (-y of each upright
camera); the original hard-codes (0, -1, 0), the same for an upright rig in a y-down world.

Selection (as the original): every sequence with a fit, every frame F of the fit (frame index -> <ffff>), the
original's AdaptivePoseSampler2(100 mm, buffer 100) on the 24 joints of the gendered SMPL of each sequence, then
every camera of camera.json (the original: camera00..camera07); a view without a mask file is skipped (the
original prints "Missing mask" and goes on); the box is the mask's box (pixels > 0). Differences: an empty mask
drops the view (the original would keep it with a degenerate box); a single betas row serves every frame (the
original zips the frames with the betas rows, so with a (1, 10) array it would keep frame 0 only; the real shape is
unknown). Output: parametric only (world_coords None, JointInfo([], [])), parameters {'type': 'smpl', gender, pose
(72), shape (betas), trans (m)} in the world frame (the fits' frame, the cameras' world), the person mask in each
crop, crops under synbody_humannerf_downscaled/ (the original's folder; NLF's section name synbody_humannerf).
"""
import io
import json
import logging
import re
import zipfile
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'synbody'
RELEASE_DIR = 'HumanNeRF-subset'
CROP_DIR = 'synbody_humannerf_downscaled'
CAMERA_ZIP = 'camera_params.zip'
SMPL_ZIP = 'smpl.zip'
MASK_ZIP = 'mask.zip'
IMAGE_ZIP = 'img.zip'
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 100
WORLD_UP_FALLBACK = (0, -1, 0)  # the original's world_up
GENDERS = ('male', 'female', 'neutral')
SEQ = r'(?:^|/)([^/]+)/'
CAMERA_RE = re.compile(SEQ + r'camera\.json$')
SMPL_RE = re.compile(SEQ + r'smpl_refit\.npz$')
MASK_RE = re.compile(SEQ + r'mask/(\d+)/(\d+)\.png$')
IMAGE_RE = re.compile(SEQ + r'img/(\d+)/(\d+)\.jpg$')
CAMERA_KEY_RE = re.compile(r'camera(\d+)')


class SynBodyFormatError(InputError):
    """A raw SynBody file is missing, unreadable or malformed (one line naming the file)."""


# ------------------------------------------------------------------------------------------------
# Readers
def _member_name(zip_path, member):
    from posepile.util import image_sources
    return image_sources.member_path(zip_path, member)


def _array(name, value, key, size=None):
    """Finite float64 array; `size` values in all (None: any > 0)."""
    try:
        array = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise SynBodyFormatError(f'{name}: {key} is not numeric') from None
    if (size is not None and array.size != size) or array.size == 0 or not np.all(np.isfinite(array)):
        expected = f'{size} finite numbers' if size is not None else 'finite numbers'
        raise SynBodyFormatError(f'{name}: {key} has {array.size} values (expected {expected})')
    return array


def load_cameras(zip_path, member):
    """{camera index (int): Camera (mm)} of one <seq>/camera.json ("cameraNN": {K, R, T (m)}, world-to-camera)."""
    from posepile.util import image_sources
    from posepile.util.camera import Camera
    name = _member_name(zip_path, member)
    try:
        data = json.loads(image_sources.read_zip_member(zip_path, member))
    except (ValueError, UnicodeDecodeError) as e:
        raise SynBodyFormatError(f'{name}: not valid JSON ({e})') from None
    if not isinstance(data, dict):
        raise SynBodyFormatError(f'{name}: expected {{"camera00": {{"K", "R", "T"}}, ...}}')
    raw = {}
    for key, cam in data.items():
        match = CAMERA_KEY_RE.fullmatch(str(key))
        if not match:
            continue
        if not isinstance(cam, dict):
            raise SynBodyFormatError(f'{name}: {key} is not a {{"K", "R", "T"}} object')
        missing = [k for k in ('K', 'R', 'T') if k not in cam]
        if missing:
            raise SynBodyFormatError(f'{name}: {key} lacks {", ".join(missing)}')
        R = _array(name, cam['R'], f'{key}.R', 9).reshape(3, 3)
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) <= 0:
            raise SynBodyFormatError(f'{name}: {key}.R is not a rotation matrix')
        T = _array(name, cam['T'], f'{key}.T', 3).reshape(3)
        if np.abs(T).max() > 100:
            raise SynBodyFormatError(f'{name}: {key}.T {T.tolist()} is not in metres')
        K = _array(name, cam['K'], f'{key}.K', 9).reshape(3, 3)
        if not (K[0, 0] > 0 and K[1, 1] > 0 and np.allclose(K[2], [0, 0, 1])):
            raise SynBodyFormatError(f'{name}: {key}.K is not an intrinsic matrix')
        raw[int(match.group(1))] = (R, T * 1000, K)
    if not raw:
        raise SynBodyFormatError(f'{name}: no "cameraNN" entries')
    up = -np.mean([R[1] for R, _, _ in raw.values()], axis=0)
    up = up / np.linalg.norm(up) if np.linalg.norm(up) > 0.5 else np.asarray(WORLD_UP_FALLBACK, np.float64)
    return {index: Camera(optical_center=-R.T @ T, rot_world_to_cam=R, intrinsic_matrix=K, world_up=up)
            for index, (R, T, K) in sorted(raw.items())}


def _read_npz(data, name):
    """{key: value} of npz bytes; pickled object entries through the restricted unpickler (arrays, builtins)."""
    import pickle

    from posepile.bodymodels.loading import BodyModelFormatError, _read_npz_member
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {Path(member).stem: _read_npz_member(archive, member) for member in archive.namelist()
                    if member.endswith('.npy')}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, pickle.UnpicklingError, BodyModelFormatError,
            TypeError, AttributeError, ImportError) as e:
        raise SynBodyFormatError(f'{name}: unreadable npz ({type(e).__name__}: {e})') from None


def _object(value):
    """The Python object of a 0-d array (the pickled dicts of smpl_refit.npz, a stored string), else the value."""
    if isinstance(value, np.ndarray) and value.shape == ():
        return value.item()
    return value


def load_fits(zip_path, member):
    """(gender, [world-frame parameter dict per frame]) of one <seq>/smpl_refit.npz."""
    from posepile.util import image_sources
    name = _member_name(zip_path, member)
    entries = _read_npz(image_sources.read_zip_member(zip_path, member), name)
    missing = [k for k in ('smpl', 'meta') if k not in entries]
    if missing:
        raise SynBodyFormatError(f'{name}: no {" or ".join(repr(k) for k in missing)} entry')
    smpl, meta = _object(entries['smpl']), _object(entries['meta'])
    if not isinstance(smpl, dict):
        raise SynBodyFormatError(f'{name}: "smpl" is {type(smpl).__name__}, expected a dict')
    if not isinstance(meta, dict) or 'gender' not in meta:
        raise SynBodyFormatError(f'{name}: "meta" has no "gender"')
    gender = _object(meta['gender'])
    gender = gender.decode() if isinstance(gender, bytes) else str(gender)
    if gender not in GENDERS:
        raise SynBodyFormatError(f'{name}: meta gender {gender!r} is not one of {", ".join(GENDERS)}')
    missing = [k for k in ('global_orient', 'body_pose', 'betas', 'transl') if k not in smpl]
    if missing:
        raise SynBodyFormatError(f'{name}: "smpl" lacks {", ".join(missing)}')
    orient = _array(name, smpl['global_orient'], 'smpl.global_orient')
    n_frames = orient.size // 3
    orient = _array(name, orient, 'smpl.global_orient', n_frames * 3).reshape(n_frames, 3)
    body = _array(name, smpl['body_pose'], 'smpl.body_pose', n_frames * 69).reshape(n_frames, 69)
    trans = _array(name, smpl['transl'], 'smpl.transl', n_frames * 3).reshape(n_frames, 3)
    betas = _array(name, smpl['betas'], 'smpl.betas')
    betas = betas.reshape(-1, betas.shape[-1]) if betas.ndim else betas.reshape(1, 1)
    if len(betas) not in (1, n_frames):
        raise SynBodyFormatError(f'{name}: smpl.betas has {len(betas)} rows for {n_frames} frames '
                                 f'(expected 1 or {n_frames})')
    if np.abs(trans).max() > 100:
        raise SynBodyFormatError(f'{name}: smpl.transl is not in metres (max |value| {np.abs(trans).max():.1f})')
    betas = np.broadcast_to(betas, (n_frames, betas.shape[1]))
    pose = np.concatenate([orient, body], axis=1)
    return gender, [{'type': 'smpl', 'gender': gender, 'pose': pose[i].astype(np.float32),
                     'shape': betas[i].astype(np.float32), 'trans': trans[i].astype(np.float32)}
                    for i in range(n_frames)]


def load_mask(zip_path, member):
    """Boolean person mask (any colour channel > 0, as the original's box of the nonzero pixels)."""
    import cv2

    from posepile.util import image_sources
    data = image_sources.read_zip_member(zip_path, member)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SynBodyFormatError(f'{_member_name(zip_path, member)}: cannot decode the mask')
    if image.ndim == 3:
        image = image[..., :3].max(axis=2)
    return image > 0


# ------------------------------------------------------------------------------------------------
# The raw tree and stages
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def body_model_dir(data_root=None):
    return raw_root(data_root).parent / 'body_models'


def release_zips(data_root=None):
    """{zip name: path} of the four zips the recipe reads; FileNotFoundError naming the missing ones."""
    release = raw_root(data_root) / RELEASE_DIR
    paths = {name: release / name for name in (CAMERA_ZIP, SMPL_ZIP, MASK_ZIP, IMAGE_ZIP)}
    missing = [name for name, path in paths.items() if not path.exists()]
    if missing:
        raise FileNotFoundError(f'{release}: {", ".join(missing)} not found (download them into it, step 1 of '
                                f'main.sh)')
    return paths


def _index(zip_path, pattern):
    """{match groups: member} of the zip's members matching `pattern` (numeric groups as ints)."""
    from posepile.util import image_sources
    result = {}
    for member in image_sources.zip_members(zip_path):
        match = pattern.search(member)
        if match:
            seq, *numbers = match.groups()
            result[(seq, *map(int, numbers))] = member
    return result


def selected_frames(joints_mm):
    from posepile.util.sampling import select_frames
    return select_frames(joints_mm, SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)


def crop_relpath(seq, camera, frame):
    return f'{CROP_DIR}/{seq}/img/{camera:02d}/{frame:04d}.jpg'


def make_crop_tasks(data_root=None):
    """(key 'train/<seq>/<cc>/<ffff>', example, crop relpath) per selected frame x camera with a non-empty mask."""
    from posepile import bodymodels
    from posepile.datasets3d import TRAIN, Pose3DExample
    from posepile.util import boxes, masks
    zips = release_zips(data_root)
    data_parent = raw_root(data_root).parent
    image_zip_relpath = zips[IMAGE_ZIP].relative_to(data_parent)
    camera_members = {seq: m for (seq,), m in _index(zips[CAMERA_ZIP], CAMERA_RE).items()}
    fit_members = {seq: m for (seq,), m in _index(zips[SMPL_ZIP], SMPL_RE).items()}
    mask_members = _index(zips[MASK_ZIP], MASK_RE)
    image_members = _index(zips[IMAGE_ZIP], IMAGE_RE)
    if not fit_members:
        raise SynBodyFormatError(f'{zips[SMPL_ZIP]}: no <seq>/smpl_refit.npz members')
    models = {}
    tasks = []
    counts = {'sequences': 0, 'frames': 0, 'selected': 0, 'views': 0, 'no mask': 0, 'empty mask': 0}
    for seq in sorted(fit_members):
        if seq not in camera_members:
            raise SynBodyFormatError(f'{zips[CAMERA_ZIP]}: no {seq}/camera.json for {seq}/smpl_refit.npz')
        cameras = load_cameras(zips[CAMERA_ZIP], camera_members[seq])
        gender, params = load_fits(zips[SMPL_ZIP], fit_members[seq])
        if gender not in models:
            models[gender] = bodymodels.load('smpl', gender, body_model_dir(data_root))
        model = models[gender]
        joints_mm = model(np.stack([p['pose'] for p in params]), np.stack([p['shape'] for p in params]),
                          np.stack([p['trans'] for p in params]), return_vertices=False)['joints'] * 1000
        kept = selected_frames(joints_mm)
        counts['sequences'] += 1
        counts['frames'] += len(params)
        counts['selected'] += len(kept)
        for frame in kept:
            for camera_index, camera in cameras.items():
                counts['views'] += 1
                mask_member = mask_members.get((seq, camera_index, int(frame)))
                if mask_member is None:
                    logger.debug('%s: no mask of %s camera %02d frame %04d', zips[MASK_ZIP], seq, camera_index,
                                 frame)
                    counts['no mask'] += 1
                    continue
                mask = load_mask(zips[MASK_ZIP], mask_member)
                box = boxes.bb_of_mask(mask)
                if not boxes.area(box) > 0:
                    counts['empty mask'] += 1
                    continue
                member = image_members.get((seq, camera_index, int(frame)),
                                           f'{seq}/img/{camera_index:02d}/{frame:04d}.jpg')  # absent: the crop
                image_path = _member_name(image_zip_relpath, member)  # stage names it (or skips, SKIP_BROKEN=1)
                example = Pose3DExample(image_path, None, box, camera, scene_name=seq, mask=masks.encode(mask),
                                        parameters=params[frame])
                tasks.append((f'{TRAIN}/{seq}/{camera_index:02d}/{frame:04d}', example,
                              crop_relpath(seq, camera_index, frame)))
    logger.info('%d crop tasks; %s', len(tasks), ', '.join(f'{k} {v}' for k, v in counts.items()))
    if counts['no mask']:
        logger.warning('%d selected views have no mask in %s (skipped, as the original)', counts['no mask'],
                       zips[MASK_ZIP])
    if not tasks:
        raise FileNotFoundError(f'no usable SynBody views in the zips under {zips[IMAGE_ZIP].parent}')
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None, skip_broken=None):
    """Crops of the selected frames x cameras, read in place from img.zip, with the released masks."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root,
                                skip_broken=skip_broken)


crop_stage.cli_options = [pipeline.SKIP_BROKEN_OPTION]


def make_dataset(data_root=None):
    """SynBody HumanNeRF subset: parametric only (gendered SMPL refits, world frame), person masks."""
    from posepile.datasets3d import TRAIN, Pose3DDataset
    from posepile.joint_info import JointInfo
    by_split = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo([], []), train_examples=by_split[TRAIN])


def assemble(data_root=None):
    """The dataset for get_dataset('synbody')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.synbody.main', 'SynBody (HumanNeRF subset) stages', {
        'crop': crop_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
