"""ARCTIC: readers of the raw release and the recipe's stages (parametric-only SMPL-X examples, NLF era).

Raw layout under $DATA_ROOT/arctic (the official downloader of github.com/zc-alexfan/arctic; annotations extracted,
images kept in their per-sequence zips and read in place):

    meta/misc.json                       {"s01": {"gender", "intris_mat": 8 x 3x3 (allocentric views 1..8),
                                          "world2cam": 8 x 4x4 (m), "ioi_offset": image index - mocap index,
                                          "image_size": ...}, ...}
    meta/subject_vtemplates/s01.obj      the subject's rest mesh (SMPL-X topology, m)
    splits_json/protocol_p1.json         {"train": ["s01/box_grab_01", ...], "val": [...], "test": [...]}
    raw_seqs/<subject>/<seq>.smplx.npy   a pickled dict: transl (N, 3) m, global_orient (N, 3), body_pose (N, 63),
                                          jaw_pose, leye_pose, reye_pose (N, 3), left_hand_pose, right_hand_pose
                                          (N, 45 full rotations; the toolkit's SMPL-X uses flat_hand_mean=True)
    images_zips/<subject>/<seq>.zip      members [<prefix>/]<view 0..8>/<image index:05d>.jpg (view 0 = ego)

Examples (the original's arctic/main.py): sequences of protocol_p1's train and val lists; the 8 allocentric views;
per view one AdaptivePoseSampler2(100 mm, buffer 100) over the mocap frames on the 55 SMPL-X joints; mocap frame i
is image i + ioi_offset of the subject (the toolkit's rule; the original assumed i + 1); box = the projected joints'
box x1.1 (the original then required the best YOLO detection at IoU >= 0.1; no detector here: images stay in the
zips); betas: 16, least squares to the subject's rest mesh (posepile.bodymodels.fitting). `parameters` =
{'type': 'smplx', gender (misc.json), pose (165: the parts concatenated, hands as released), shape, trans (m)}
in the world frame; `world_coords` None (JointInfo([], [])). Masks: the segment stage.
"""
import logging
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'arctic'
N_VIEWS = 8
N_BETAS = 16
BOX_EXPANSION = 1.1
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 100
POSE_PARTS = {'global_orient': 3, 'body_pose': 63, 'jaw_pose': 3, 'leye_pose': 3, 'reye_pose': 3,
              'left_hand_pose': 45, 'right_hand_pose': 45}
WORLD_UP = (0, 0, 1)


class ARCTICFormatError(InputError):
    """A raw ARCTIC file is missing, unreadable or malformed (one line naming the file)."""


# ------------------------------------------------------------------------------------------------
# Readers
def load_misc(path):
    """{subject: {'gender', 'cameras': [Camera (mm)] x 8, 'ioi_offset': int}} of meta/misc.json."""
    from posepile.bodymodels.loading import BodyModelFormatError, normalize_gender
    from posepile.util import fileio
    from posepile.util.camera import Camera
    data = fileio.load_json(path, ARCTICFormatError)
    if not isinstance(data, dict) or not data:
        raise ARCTICFormatError(f'{path}: expected {{"s01": {{gender, intris_mat, world2cam, ioi_offset}}, ...}}')
    result = {}
    for subject, entry in data.items():
        try:
            gender = normalize_gender(entry['gender'])
            intrinsics = np.asarray(entry['intris_mat'], np.float64)
            extrinsics = np.asarray(entry['world2cam'], np.float64)
            offset = int(entry['ioi_offset'])
        except (KeyError, TypeError, ValueError, BodyModelFormatError) as e:
            raise ARCTICFormatError(f'{path}: {subject}: missing or malformed {e}') from None
        if intrinsics.shape != (N_VIEWS, 3, 3) or extrinsics.shape != (N_VIEWS, 4, 4) or \
                not (np.all(np.isfinite(intrinsics)) and np.all(np.isfinite(extrinsics))):
            raise ARCTICFormatError(f'{path}: {subject}: intris_mat {intrinsics.shape} / world2cam '
                                    f'{extrinsics.shape}, expected ({N_VIEWS}, 3, 3) / ({N_VIEWS}, 4, 4) finite')
        cameras = []
        for K, world2cam in zip(intrinsics, extrinsics):
            R, t_m = world2cam[:3, :3], world2cam[:3, 3]
            if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) <= 0:
                raise ARCTICFormatError(f'{path}: {subject}: world2cam rotation is not a rotation matrix')
            cameras.append(Camera(optical_center=-R.T @ t_m * 1000, rot_world_to_cam=R, intrinsic_matrix=K,
                                  world_up=WORLD_UP))
        result[str(subject)] = {'gender': gender, 'cameras': cameras, 'ioi_offset': offset}
    return result


def load_sequence(path):
    """(pose (N, 165) float64, transl (N, 3) m) of a raw_seqs/<subject>/<seq>.smplx.npy (a pickled dict in an .npy,
    read with posepile's restricted unpickler: numpy arrays and builtins only, no code in the file runs)."""
    import pickle

    from posepile.bodymodels.loading import BodyModelFormatError, restricted_load
    try:
        with open(path, 'rb') as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            _, _, dtype = read_header(f)
            data = restricted_load(f) if dtype.hasobject else None
    except FileNotFoundError:
        raise ARCTICFormatError(f'{path}: not found') from None
    except (OSError, ValueError, BodyModelFormatError, pickle.UnpicklingError, EOFError, TypeError) as e:
        raise ARCTICFormatError(f'{path}: cannot read the SMPL-X sequence ({type(e).__name__}: {e})') from None
    if isinstance(data, np.ndarray) and data.dtype == object and data.size == 1:
        data = data.item()
    if not isinstance(data, dict):
        raise ARCTICFormatError(f'{path}: expected a pickled dict of SMPL-X arrays')
    parts = []
    for key, size in (*POSE_PARTS.items(), ('transl', 3)):
        try:
            value = np.asarray(data[key], np.float64)
        except KeyError:
            raise ARCTICFormatError(f'{path}: no {key}') from None
        if value.ndim != 2 or value.shape[1] != size or not np.all(np.isfinite(value)):
            raise ARCTICFormatError(f'{path}: {key} has shape {value.shape}, expected (N, {size}) finite')
        parts.append(value)
    if len({len(p) for p in parts}) != 1:
        raise ARCTICFormatError(f'{path}: the arrays have different frame counts')
    return np.concatenate(parts[:-1], axis=1), parts[-1]


# ------------------------------------------------------------------------------------------------
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def body_model_dir(data_root=None):
    return raw_root(data_root).parent / 'body_models'


def load_split(path):
    """(train sequence ids, val sequence ids) of protocol_p1.json."""
    from posepile.util import fileio
    data = fileio.load_json(path, ARCTICFormatError)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ('train', 'val')):
        raise ARCTICFormatError(f'{path}: expected {{"train": [...], "val": [...]}}')
    return [str(s) for s in data['train']], [str(s) for s in data['val']]


def zip_members_by_view_and_image(zip_path):
    """{(view, image index): member} of an image zip ([prefix/]<view>/<index>.jpg)."""
    from posepile.util.image_sources import zip_members
    result = {}
    for member in zip_members(zip_path):
        parts = member.rsplit('/', 2)
        if len(parts) >= 2 and parts[-1].lower().endswith('.jpg') and parts[-2].isdigit() and \
                parts[-1][:-4].isdigit():
            result[int(parts[-2]), int(parts[-1][:-4])] = member
    return result


class _Subjects:
    """Model, betas (16, least squares to the rest mesh) of each subject, on first use."""

    def __init__(self, root, misc, data_root):
        self.root, self.misc, self.data_root, self.loaded = Path(root), misc, data_root, {}

    def __call__(self, subject):
        if subject not in self.loaded:
            from posepile import bodymodels
            from posepile.bodymodels.fitting import betas_of_template, read_obj_vertices
            from posepile.bodymodels.loading import BodyModelFormatError
            if subject not in self.misc:
                raise ARCTICFormatError(f'{self.root}/meta/misc.json: no entry for subject {subject}')
            model = bodymodels.load('smplx', self.misc[subject]['gender'], body_model_dir(self.data_root))
            path = self.root / 'meta' / 'subject_vtemplates' / f'{subject}.obj'
            try:
                betas, info = betas_of_template(model, read_obj_vertices(path), N_BETAS)
            except BodyModelFormatError as e:
                raise ARCTICFormatError(f'{path}: {e}' if str(path) not in str(e) else str(e)) from None
            logger.info('%s: %d betas of %s (residual RMS %.2f mm)', subject, N_BETAS, path, info['rms_m'] * 1000)
            self.loaded[subject] = (model, betas)
        return self.loaded[subject]


def sequence_tasks(root, seq_id, split, misc, subjects, counts):
    from posepile.datasets3d import Pose3DExample
    from posepile.util import boxes
    from posepile.util.image_sources import member_path
    from posepile.util.sampling import select_frames
    subject = seq_id.split('/')[0]
    model, betas = subjects(subject)
    info = misc[subject]
    poses, transl = load_sequence(root / 'raw_seqs' / f'{seq_id}.smplx.npy')
    joints_mm = model(poses, betas, transl, return_vertices=False)['joints'] * 1000
    zip_path = root / 'images_zips' / f'{seq_id}.zip'
    if not zip_path.exists():
        raise FileNotFoundError(f'{zip_path} not found: download the image zips (step 1 of main.sh)')
    members = zip_members_by_view_and_image(zip_path)
    container = str(zip_path.relative_to(root.parent))
    tasks = []
    # one sampler per view on the world joints (the original's): the same frames for every view
    kept = select_frames(joints_mm, SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)
    for i_view, camera in enumerate(info['cameras'], start=1):
        counts['frames x views'] += len(joints_mm)
        for i in kept:
            image_index = i + info['ioi_offset']
            member = members.get((i_view, image_index))
            if member is None:
                counts['missing image'] += 1
                continue
            box = boxes.expand(boxes.bb_of_points(camera.world_to_image(joints_mm[i])), BOX_EXPANSION)
            parameters = {'type': 'smplx', 'gender': info['gender'], 'pose': poses[i].astype(np.float32),
                          'shape': betas.astype(np.float32), 'trans': transl[i].astype(np.float32)}
            example = Pose3DExample(member_path(container, member), None, box, camera, parameters=parameters,
                                    scene_name=seq_id, activity_name=seq_id.split('/')[1].rsplit('_', 1)[0])
            new_relpath = f'{NAME}_downscaled/{seq_id}/{i_view}/{image_index:05d}.jpg'
            tasks.append((f'{split}/{new_relpath}', example, new_relpath))
        counts['selected'] += len(kept)
    return tasks


def make_crop_tasks(data_root=None):
    """(key 'split/crop relpath', example, crop relpath) of the selected frames x 8 allocentric views."""
    from posepile.datasets3d import TRAIN, VALID
    root = raw_root(data_root)
    split_path = root / 'splits_json' / 'protocol_p1.json'
    if not split_path.exists():
        raise FileNotFoundError(f'{split_path} not found: download and extract the ARCTIC annotations (step 1 of '
                                f'main.sh)')
    train, val = load_split(split_path)
    misc = load_misc(root / 'meta' / 'misc.json')
    subjects = _Subjects(root, misc, data_root)
    counts = dict.fromkeys(['frames x views', 'selected', 'missing image'], 0)
    tasks = []
    for split, seq_ids in ((TRAIN, train), (VALID, val)):
        for seq_id in seq_ids:
            tasks += sequence_tasks(root, seq_id, split, misc, subjects, counts)
    logger.info('%d crop tasks; %s', len(tasks), ', '.join(f'{k} {v}' for k, v in counts.items()))
    if not tasks:
        raise FileNotFoundError(f'no usable ARCTIC views under {root}')
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None, skip_broken=None):
    """Crops of the selected frames x views, read from the image zips in place."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root,
                                skip_broken=skip_broken)


crop_stage.cli_options = [pipeline.SKIP_BROKEN_OPTION]


@pipeline.cli_options(('--segmenter', dict(dest='segmenter_spec', default=None,
                                             help='grabcut, onnx:MODEL or tf:DIR; default $POSEPILE_SEGMENTER or '
                                                  'grabcut')))
def segment_stage(segmenter_spec=None, n_workers=None, data_root=None):
    """A person mask for every crop (the original's stage 2), to posepile_work/masks.json."""
    pipeline.segment_crops(NAME, segmenter_spec, n_workers, data_root)


def make_dataset(data_root=None):
    """ARCTIC: parametric-only SMPL-X examples in the world frame, train and val of protocol p1, masks."""
    from posepile.datasets3d import TRAIN, VALID, Pose3DDataset
    from posepile.joint_info import JointInfo
    by_split = pipeline.examples_with_masks(NAME, data_root)
    return Pose3DDataset(JointInfo([], []), train_examples=by_split[TRAIN], valid_examples=by_split[VALID])


def assemble(data_root=None):
    """The dataset for get_dataset('arctic')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.arctic.main', 'ARCTIC stages', {
        'crop': crop_stage, 'segment': segment_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
