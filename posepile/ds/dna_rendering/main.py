"""DNA-Rendering: readers of the SMC (HDF5) files, read in place, and the recipe's stages (NLF era: 131 3D
keypoints plus SMPL-X parameters; the keypoint stream of NLF's mix).

Raw layout under $DATA_ROOT/dna_rendering (the release's parts; h5py reads the files, nothing is extracted):

    dna_rendering_part<k>_main/<seq>.smc                HDF5, attrs actor_id, gender, ...;
        Camera_5mp/<camera 0..47>/color/<frame>         JPEG bytes (1-D uint8); group attrs num_device, num_frame,
        Camera_12mp/<camera 48..59>/color/<frame>         resolution
    dna_rendering_part<k>_annotations/<seq>_annots.smc  HDF5:
        Camera_Parameter/<camera:02d>/{K (3, 3), D (5,), RT (4, 4) camera-to-world, m}
        Mask/<camera>/mask/<frame>                      encoded mask image bytes (channel max > 127 = person)
        Keypoints_3D/keypoints3d                        (N, 144, 3 or 4) m: the SMPL-X joint set incl. landmarks
        SMPLx/{fullpose (N, 55, 3), betas (N, 10), expression (N, 10), transl (N, 3), scale}

Examples (the original's dna_rendering/main.py): every camera; per camera one AdaptivePoseSampler2(100 mm, buffer
200) over the frames on the 55 SMPL-X joints in that camera's frame; `world_coords` = the 131 keypoints the
original selects of the 144 (the 12 SMPL-X body joints hips, knees, ankles, shoulders, elbows, wrists, then the
hand, face-contour, feet and face points from index 25 on), mm, where a point with another within 0.5 mm is set
to NaN (both of such a pair); box = the box of the released mask (> 127), which is stored too; `parameters` =
{'type': 'smplx', gender (the main file's attrs), pose (165), shape (betas), expression, trans (m)} in the world
frame (the SMC `scale` is not applied: as the original, "not aligned with the images"); crops named
dna_rendering_downscaled/<part>_<seq>/<camera:02d>/<frame:06d>.jpg. Then the plausibility filter (the original's
filter_dataset_by_plausibility; posepile.preproc.plausibility defaults). Everything is training data.
"""
import logging
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'dna_rendering'
N_5MP_CAMERAS = 48
KEYPOINT_SELECTION = [1, 2, 4, 5, 7, 8, *range(16, 22), *range(25, 144)]
N_KEYPOINTS_RELEASED = 144
NEAR_DUPLICATE_M = 5e-4
MASK_THRESHOLD = 127
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 200
WORLD_UP = (0, -1, 0)
JOINT_NAMES = (
    'lhip,rhip,lkne,rkne,lank,rank,lsho,rsho,lelb,relb,lwri,rwri,lhan5,lhan6,lhan7,lhan9,lhan10,lhan11,lhan17,lhan18,'
    'lhan19,lhan13,lhan14,lhan15,lhan1,lhan2,lhan3,rhan5,rhan6,rhan7,rhan9,rhan10,rhan11,rhan17,rhan18,rhan19,rhan13,'
    'rhan14,rhan15,rhan1,rhan2,rhan3,nose,reye,leye,rear,lear,ltoe,ltoe2,lhee,rtoe,rtoe2,rhee,lhan4,lhan8,lhan12,'
    'lhan16,lhan20,rhan4,rhan8,rhan12,rhan16,rhan20,rface9,rface10,rface11,rface12,rface13,lface13,lface12,lface11,'
    'lface10,lface9,nose1,nose2,nose3,nose4,rface14,rface15,nose5,lface15,lface14,reye1,reye2,reye3,reye4,reye5,'
    'reye6,leye4,leye3,leye2,leye1,leye6,leye5,rmouth1,rmouth2,rmouth3,mouth1,lmouth3,lmouth2,lmouth1,lmouth4,'
    'lmouth5,mouth2,rmouth5,rmouth4,rmouth6,rmouth7,mouth3,lmouth7,lmouth6,lmouth8,mouth4,rmouth8,rface1,rface2,'
    'rface3,rface4,rface5,rface6,rface7,rface8,chin,lface8,lface7,lface6,lface5,lface4,lface3,lface2,lface1')
JOINT_EDGES = (
    'rhip-rkne-rank-rhee,rank-rtoe,rank-rtoe2,nose-reye-rear,rsho-relb-rwri-rhan1-rhan2-rhan3-rhan4,'
    'rwri-rhan5-rhan6-rhan7-rhan8,rwri-rhan9-rhan10-rhan11-rhan12,rwri-rhan13-rhan14-rhan15-rhan16,'
    'rwri-rhan17-rhan18-rhan19-rhan20,nose1-nose2-nose3-nose4-nose5,rface14-rface15-nose5,'
    'reye1-reye2-reye3-reye4-reye5-reye6-reye1,mouth2-rmouth5-rmouth4-rmouth1-rmouth2-rmouth3-mouth1,'
    'mouth4-rmouth8-rmouth6-rmouth7-mouth3,rface1-rface2-rface3-rface4-rface5-rface6-rface7-rface8-chin,'
    'rface9-rface10-rface11-rface12-rface13')


class DNARenderingFormatError(InputError):
    """A raw DNA-Rendering file is missing, unreadable or malformed (one line naming the file)."""


def joint_info():
    from posepile.joint_info import JointInfo
    return JointInfo(JOINT_NAMES, JOINT_EDGES)


# ------------------------------------------------------------------------------------------------
# Readers (h5py through posepile.util.image_sources: each file opened once per process)
def _h5(path):
    from posepile.util.image_sources import ImageSourceError, open_hdf5
    try:
        return open_hdf5(path)
    except (ImageSourceError, OSError) as e:
        reason = str(e).removeprefix(f'{path}: ')  # ImageSourceError already names the file
        raise DNARenderingFormatError(f'{path}: not a readable SMC/HDF5 file ({reason})') from None


def _array(path, handle, key, shape=None):
    try:
        value = np.asarray(handle[key][()])
    except KeyError:
        raise DNARenderingFormatError(f'{path}: no {key}') from None
    if shape is not None and (value.ndim != len(shape) or any(e is not None and a != e
                                                              for a, e in zip(value.shape, shape))):
        raise DNARenderingFormatError(f'{path}: {key} has shape {value.shape}, expected '
                                      f'({", ".join("N" if e is None else str(e) for e in shape)})')
    return value


def load_cameras(annots_path):
    """{camera id (int): Camera (mm)} of Camera_Parameter/<id>/{K, D, RT}: RT is camera-to-world (m), so the
    world-to-camera rotation is RT[:3, :3]^T and the optical centre RT[:3, 3] x 1000."""
    from posepile.util.camera import Camera
    handle = _h5(annots_path)
    if 'Camera_Parameter' not in handle:
        raise DNARenderingFormatError(f'{annots_path}: no Camera_Parameter group')
    cameras = {}
    for name in sorted(handle['Camera_Parameter'].keys()):
        K = _array(annots_path, handle, f'Camera_Parameter/{name}/K', (3, 3)).astype(np.float64)
        D = _array(annots_path, handle, f'Camera_Parameter/{name}/D').astype(np.float64).reshape(-1)
        RT = _array(annots_path, handle, f'Camera_Parameter/{name}/RT', (4, 4)).astype(np.float64)
        R = RT[:3, :3]
        if not (np.all(np.isfinite(K)) and np.all(np.isfinite(RT)) and np.all(np.isfinite(D))) or \
                not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) <= 0:
            raise DNARenderingFormatError(f'{annots_path}: camera {name}: non-finite values or RT rotation is '
                                          f'not a rotation matrix')
        cameras[int(name)] = Camera(optical_center=RT[:3, 3] * 1000, rot_world_to_cam=R.T, intrinsic_matrix=K,
                                    distortion_coeffs=D, world_up=WORLD_UP)
    return cameras


def load_smplx(annots_path):
    """dict fullpose (N, 165), betas (N, b), expression (N, e), transl (N, 3) float64 of SMPLx/."""
    handle = _h5(annots_path)
    fullpose = _array(annots_path, handle, 'SMPLx/fullpose').astype(np.float64)
    n = len(fullpose)
    fullpose = fullpose.reshape(n, -1)
    result = {'fullpose': fullpose, 'betas': _array(annots_path, handle, 'SMPLx/betas', (n, None)),
              'expression': _array(annots_path, handle, 'SMPLx/expression', (n, None)),
              'transl': _array(annots_path, handle, 'SMPLx/transl', (n, 3))}
    if fullpose.shape[1] != 165:
        raise DNARenderingFormatError(f'{annots_path}: SMPLx/fullpose has {fullpose.shape[1]} values per frame, '
                                      f'expected 165 (55 x 3)')
    result = {k: np.asarray(v, np.float64) for k, v in result.items()}
    if not all(np.all(np.isfinite(v)) for v in result.values()):
        raise DNARenderingFormatError(f'{annots_path}: non-finite SMPLx values')
    return result


def load_keypoints(annots_path):
    """(N, 131, 3) mm: the selected keypoints of Keypoints_3D/keypoints3d, a point within 0.5 mm of another
    (of the 144) set to NaN first."""
    handle = _h5(annots_path)
    points = _array(annots_path, handle, 'Keypoints_3D/keypoints3d', (None, N_KEYPOINTS_RELEASED, None))
    if points.shape[2] < 3:
        raise DNARenderingFormatError(f'{annots_path}: Keypoints_3D/keypoints3d has {points.shape[2]} values per '
                                      f'point, expected x, y, z[, confidence]')
    xyz = points[..., :3].astype(np.float64)
    distances = np.linalg.norm(xyz[:, :, np.newaxis] - xyz[:, np.newaxis], axis=-1)
    distances[:, np.arange(N_KEYPOINTS_RELEASED), np.arange(N_KEYPOINTS_RELEASED)] = np.inf
    xyz[np.any(distances < NEAR_DUPLICATE_M, axis=2)] = np.nan
    return xyz[:, KEYPOINT_SELECTION] * 1000


def load_mask(annots_path, camera_id, frame):
    """Boolean (H, W) person mask: the encoded Mask/<camera>/mask/<frame> image, channel maximum > 127."""
    import cv2
    from posepile.util.image_sources import ImageSourceError, read_hdf5_bytes
    key = f'Mask/{camera_id}/mask/{frame}'
    try:
        data = read_hdf5_bytes(annots_path, key)
    except (ImageSourceError, KeyError) as e:
        raise DNARenderingFormatError(f'{annots_path}: cannot read {key} ({e})') from None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DNARenderingFormatError(f'{annots_path}: {key} is not a decodable image')
    return (image.max(axis=2) if image.ndim == 3 else image) > MASK_THRESHOLD


def load_gender(main_path):
    from posepile.bodymodels.loading import BodyModelFormatError, normalize_gender
    value = _h5(main_path).attrs.get('gender')
    value = value.decode() if isinstance(value, bytes) else value
    try:
        return normalize_gender(value)
    except BodyModelFormatError:
        raise DNARenderingFormatError(f'{main_path}: gender attribute {value!r} is not female/male/neutral') from None


# ------------------------------------------------------------------------------------------------
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def body_model_dir(data_root=None):
    return raw_root(data_root).parent / 'body_models'


def sequences(root):
    """[(part number, main path, annotation path)] of dna_rendering_part<k>_main/*.smc, sorted."""
    found = []
    for main_path in sorted(Path(root).glob('dna_rendering_part*_main/*.smc')):
        part = re.search(r'part(\d+)', main_path.parent.name)
        annots = main_path.parent.parent / main_path.parent.name.replace('main', 'annotations') / \
            f'{main_path.stem}_annots.smc'
        if not annots.exists():
            raise FileNotFoundError(f'{annots} not found (the annotation SMC of {main_path})')
        found.append((int(part.group(1)), main_path, annots))
    if not found:
        raise FileNotFoundError(f'no dna_rendering_part*_main/*.smc under {root}: download the release there (see '
                                f'main.sh)')
    return found


def camera_group(camera_id):
    return 'Camera_5mp' if camera_id < N_5MP_CAMERAS else 'Camera_12mp'


def sequence_tasks(root, part, main_path, annots_path, models, counts):
    from posepile.datasets3d import TRAIN, Pose3DExample
    from posepile.util import boxes, masks
    from posepile.util.image_sources import member_path
    from posepile.util.sampling import select_frames
    gender = load_gender(main_path)
    model = models(gender)
    cameras = load_cameras(annots_path)
    smplx = load_smplx(annots_path)
    keypoints = load_keypoints(annots_path)
    n_frames = len(smplx['fullpose'])
    if len(keypoints) != n_frames:
        raise DNARenderingFormatError(f'{annots_path}: {len(keypoints)} keypoint frames but {n_frames} SMPL-X frames')
    joints_mm = model(smplx['fullpose'], smplx['betas'], smplx['transl'], return_vertices=False)['joints'] * 1000
    main_handle = _h5(main_path)
    container = str(main_path.relative_to(root.parent))
    out_id = f'{part}_{main_path.stem}'
    tasks = []
    for camera_id, camera in cameras.items():
        group = camera_group(camera_id)
        color_key = f'{group}/{camera_id}/color'
        if color_key not in main_handle:
            counts['camera without images'] += 1
            continue
        in_camera = np.stack([camera.world_to_camera(j) for j in joints_mm])
        kept = select_frames(in_camera, SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER, check_validity=True,
                             nan_unchanged=True)
        counts['frames x cameras'] += n_frames
        for frame in kept:
            if str(frame) not in main_handle[color_key]:
                counts['missing image'] += 1
                continue
            mask = load_mask(annots_path, camera_id, frame)
            if not mask.any():
                counts['empty mask'] += 1
                continue
            parameters = {'type': 'smplx', 'gender': gender, 'pose': smplx['fullpose'][frame].astype(np.float32),
                          'shape': smplx['betas'][frame].astype(np.float32),
                          'expression': smplx['expression'][frame].astype(np.float32),
                          'trans': smplx['transl'][frame].astype(np.float32)}
            example = Pose3DExample(member_path(container, f'{color_key}/{frame}'), keypoints[frame],
                                    boxes.bb_of_mask(mask), camera, mask=masks.encode(mask), parameters=parameters,
                                    scene_name=out_id)
            new_relpath = f'{NAME}_downscaled/{out_id}/{camera_id:02d}/{frame:06d}.jpg'
            tasks.append((f'{TRAIN}/{new_relpath}', example, new_relpath))
        counts['selected'] += len(kept)
    return tasks


def make_crop_tasks(data_root=None):
    """(key 'train/crop relpath', example, crop relpath) per selected frame x camera of every sequence."""
    from posepile import bodymodels
    root = raw_root(data_root)
    loaded = {}

    def models(gender):
        if gender not in loaded:
            loaded[gender] = bodymodels.load('smplx', gender, body_model_dir(data_root))
        return loaded[gender]

    counts = dict.fromkeys(['frames x cameras', 'selected', 'missing image', 'empty mask', 'camera without images'],
                           0)
    tasks = []
    for part, main_path, annots_path in sequences(root):
        tasks += sequence_tasks(root, part, main_path, annots_path, models, counts)
    logger.info('%d crop tasks; %s', len(tasks), ', '.join(f'{k} {v}' for k, v in counts.items()))
    if not tasks:
        raise FileNotFoundError(f'no usable DNA-Rendering views under {root}')
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None, skip_broken=None):
    """Crops of the selected frames x cameras, JPEG bytes read from the SMC files in place, with the masks."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root,
                                skip_broken=skip_broken)


crop_stage.cli_options = [pipeline.SKIP_BROKEN_OPTION]


def make_dataset(data_root=None):
    """DNA-Rendering: 131 keypoints in mm, SMPL-X parameters in the world frame, masks; plausibility-filtered."""
    from posepile.datasets3d import TRAIN, Pose3DDataset
    from posepile.preproc.plausibility import filter_by_plausibility
    by_split = pipeline.examples_by_split(NAME, data_root)
    dataset = Pose3DDataset(joint_info(), train_examples=by_split[TRAIN])
    dataset, report = filter_by_plausibility(dataset)
    logger.info('plausibility: %s', report)
    return dataset


def assemble(data_root=None):
    """The dataset for get_dataset('dna_rendering')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.dna_rendering.main', 'DNA-Rendering stages', {
        'crop': crop_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
