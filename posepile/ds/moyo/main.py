"""MOYO: readers of the raw release and the recipe's stages (parametric-only SMPL-X examples, NLF era).

Raw layout under $DATA_ROOT/moyo (downloaded with the official toolkit's scripts, github.com/sha2nkt/moyo_toolkit;
the camera and MoSh zips extracted, the image zips kept and read in place):

    moyo_toolkit/data/v_templates/220923_yogi_03596_minimal_simple_female/mesh.ply   the subject's rest mesh
    MOYO/<session dir>/cameras/<date>/<any>/cameras_param.json
        {"cam_<k>": {"focal": f, "princpt": [cx, cy], "position": optical centre (mm), "rotation": 3x3
         world-to-camera}} for the full-resolution sensor; the released images are half that size
    MOYO/<session dir>/mosh/<train|val>/<sequence>_stageii.pkl     MoSh++ fits at 60 fps: fullpose (N, 165), trans
                                                                   (N, 3) m
    MOYO/<session dir>/images/<train|val>/*.zip                    members <sequence>/<..._<k>>/<..._<frame>>.jpg
                                                                   at 30 fps; <sequence> starts with the session id
    with session dirs 20220923_20220926_with_hands (sessions 220923, 220926) and 20221004_with_com (221004).

Examples (the original's moyo/main.py): image frame i shows fit 2i (60 fps fits, 30 fps images); frames i < 50 and
those with 2 (i + 50) >= the number of fits are dropped (the T-pose at start and end); per image zip, in sorted
member order, one AdaptivePoseSampler2(100 mm, buffer 200) on the 55 SMPL-X joints in the camera frame relative to
the pelvis; box = the projected joints x1.05 (no detector). Camera: cameras_param.json scaled to the half-size
images. `parameters` = {'type': 'smplx', 'gender': 'female', pose (165 = fullpose as released), shape (128 betas
fitted by least squares to the subject's rest mesh, posepile.bodymodels.fitting), trans (m)} in the world frame;
`world_coords` None (JointInfo([], [])); train/val from the zip's folder. Masks: the segment stage.
"""
import logging
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
NAME = 'moyo'
N_BETAS = 128
SKIPPED_FRAMES = 50  # at the start and the end (T-pose)
FIT_FRAMES_PER_IMAGE = 2  # 60 fps fits, 30 fps images
IMAGE_SCALE = 0.5
BOX_EXPANSION = 1.05
SELECTION_THRESHOLD_MM = 100
SELECTION_BUFFER = 200
TEMPLATE_MESH = 'moyo_toolkit/data/v_templates/220923_yogi_03596_minimal_simple_female/mesh.ply'
SESSION_DIRS = {'220923': '20220923_20220926_with_hands', '220926': '20220923_20220926_with_hands',
                '221004': '20221004_with_com'}
SESSION_DATES = {'220923': '20220923', '220926': '20220926', '221004': '20221004'}


class MOYOFormatError(InputError):
    """A raw MOYO file is missing, unreadable or malformed (one line naming the file)."""


# ------------------------------------------------------------------------------------------------
# Readers
def load_cameras(path):
    """{'cam_<k>': Camera (mm)} of a cameras_param.json, scaled to the half-size released images."""
    from posepile.util import fileio
    from posepile.util.camera import Camera
    data = fileio.load_json(path, MOYOFormatError)
    if not isinstance(data, dict) or not data:
        raise MOYOFormatError(f'{path}: expected {{"cam_<k>": {{focal, princpt, position, rotation}}}}')
    cameras = {}
    for name, entry in data.items():
        try:
            focal = float(entry['focal'])
            principal = np.asarray(entry['princpt'], np.float64).reshape(2)
            centre_mm = np.asarray(entry['position'], np.float64).reshape(3)
            R = np.asarray(entry['rotation'], np.float64).reshape(3, 3)
        except (KeyError, TypeError, ValueError) as e:
            raise MOYOFormatError(f'{path}: camera {name}: missing or malformed {e}') from None
        if not (focal > 0 and np.all(np.isfinite(principal)) and np.all(np.isfinite(centre_mm))):
            raise MOYOFormatError(f'{path}: camera {name}: non-positive focal or non-finite values')
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) <= 0:
            raise MOYOFormatError(f'{path}: camera {name}: rotation is not a rotation matrix')
        camera = Camera(optical_center=centre_mm, rot_world_to_cam=R,
                        intrinsic_matrix=[[focal, 0, principal[0]], [0, focal, principal[1]], [0, 0, 1]],
                        world_up=(0, 0, 1))
        cameras[str(name)] = camera.scale_output(IMAGE_SCALE)
    return cameras


def load_fits(path):
    """(fullpose (N, 165), trans (N, 3) m) float64 of a MoSh++ stageii pickle (restricted unpickler: numpy arrays
    and builtins only, no code in the file runs)."""
    import pickle

    from posepile.bodymodels.loading import BodyModelFormatError, restricted_load
    try:
        with open(path, 'rb') as f:
            data = restricted_load(f)
        fullpose = np.asarray(data['fullpose'], np.float64)
        trans = np.asarray(data['trans'], np.float64)
    except FileNotFoundError:
        raise
    except (OSError, BodyModelFormatError, pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError,
            IndexError) as e:
        raise MOYOFormatError(f'{path}: cannot read the fits ({type(e).__name__}: {e})') from None
    if fullpose.ndim != 2 or fullpose.shape[1] != 165 or trans.shape != (len(fullpose), 3):
        raise MOYOFormatError(f'{path}: fullpose {fullpose.shape} / trans {trans.shape}, expected (N, 165), (N, 3)')
    if not (np.all(np.isfinite(fullpose)) and np.all(np.isfinite(trans))):
        raise MOYOFormatError(f'{path}: non-finite fullpose or trans')
    return fullpose, trans


def parse_member(member):
    """(sequence, session id, camera name 'cam_<k>', image frame index) of an image zip member, or None."""
    parts = member.split('/')
    if len(parts) < 3 or not member.lower().endswith('.jpg'):
        return None
    name = parts[-1].rsplit('.', 1)[0]
    frame, camera = re.search(r'(\d+)$', name), re.search(r'(\d+)$', parts[-2])
    if frame is None or camera is None:
        return None
    return parts[0], name.split('_')[0], f'cam_{int(camera.group(1))}', int(frame.group(1))


def fit_index(image_frame, n_fits):
    """The fit index of an image frame (2i), or None for the dropped T-pose frames (i < 50, or 2 (i + 50) >= the
    number of fits)."""
    if image_frame < SKIPPED_FRAMES or n_fits <= (image_frame + SKIPPED_FRAMES) * FIT_FRAMES_PER_IMAGE:
        return None
    return image_frame * FIT_FRAMES_PER_IMAGE


# ------------------------------------------------------------------------------------------------
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def body_model_dir(data_root=None):
    return raw_root(data_root).parent / 'body_models'


def image_zips(root):
    """[(phase 'train'|'val', zip path)] of MOYO/*/images/{train,val}/*.zip, sorted."""
    found = [(p.parent.name, p) for p in sorted(Path(root).glob('MOYO/*/images/*/*.zip'))
             if p.parent.name in ('train', 'val')]
    if not found:
        raise FileNotFoundError(f'no image zips under {root}/MOYO/<session>/images/{{train,val}}/: download them '
                                f'with the toolkit (step 1 of main.sh)')
    return found


def subject_betas(root, model):
    """The 128 betas of the subject's rest mesh (least squares, posepile.bodymodels.fitting)."""
    from posepile.bodymodels.fitting import betas_of_template, read_ply_vertices
    from posepile.bodymodels.loading import BodyModelFormatError
    path = Path(root) / TEMPLATE_MESH
    if not path.exists():
        raise FileNotFoundError(f'{path} not found: clone the toolkit into {root}/moyo_toolkit (step 1 of main.sh)')
    try:
        betas, info = betas_of_template(model, read_ply_vertices(path), N_BETAS)
    except BodyModelFormatError as e:
        raise MOYOFormatError(f'{path}: {e}' if str(path) not in str(e) else str(e)) from None
    logger.info('subject betas: %d fitted to %s (residual RMS %.2f mm, max %.2f mm)', N_BETAS, path,
                info['rms_m'] * 1000, info['max_m'] * 1000)
    return betas


class _Sessions:
    """Cameras and fits of each session, loaded on first use."""

    def __init__(self, root):
        self.root, self.cameras, self.fits = Path(root), {}, {}

    def session_cameras(self, session):
        if session not in self.cameras:
            if session not in SESSION_DIRS:
                raise MOYOFormatError(f'unknown MOYO session {session!r} (known: {", ".join(SESSION_DIRS)})')
            pattern = f'MOYO/{SESSION_DIRS[session]}/cameras/{SESSION_DATES[session]}/*/cameras_param.json'
            paths = sorted(self.root.glob(pattern))
            if not paths:
                raise FileNotFoundError(f'{self.root}/{pattern} not found: extract the cameras zip (main.sh step 1)')
            self.cameras[session] = load_cameras(paths[0])
        return self.cameras[session]

    def sequence_fits(self, session, phase, sequence):
        key = (session, phase, sequence)
        if key not in self.fits:
            path = self.root / 'MOYO' / SESSION_DIRS[session] / 'mosh' / phase / f'{sequence}_stageii.pkl'
            try:
                self.fits[key] = load_fits(path)
            except FileNotFoundError:
                logger.warning('%s not found: its images are skipped', path)
                self.fits[key] = None
        return self.fits[key]


def zip_tasks(root, phase, zip_path, sessions, model, betas, counts):
    """Crop tasks of one image zip: the sampler over its members in sorted order."""
    from posepile.datasets3d import TRAIN, VALID, Pose3DExample
    from posepile.util import boxes
    from posepile.util.image_sources import member_path, zip_members
    from posepile.util.sampling import select_frames
    candidates = []  # (member, camera, parameters, joints in camera frame minus pelvis)
    for member in sorted(zip_members(zip_path)):
        parsed = parse_member(member)
        if parsed is None:
            continue
        sequence, session, camera_name, image_frame = parsed
        fits = sessions.sequence_fits(session, phase, sequence)
        if fits is None:
            counts['no fits'] += 1
            continue
        index = fit_index(image_frame, len(fits[0]))
        if index is None:
            counts['T-pose frames'] += 1
            continue
        cameras = sessions.session_cameras(session)
        if camera_name not in cameras:
            raise MOYOFormatError(f'{zip_path}::{member}: no {camera_name} in the session {session} cameras')
        candidates.append((member, cameras[camera_name], fits[0][index], fits[1][index]))
    if not candidates:
        return []
    joints_mm = model(np.stack([c[2] for c in candidates]), betas, np.stack([c[3] for c in candidates]),
                      return_vertices=False)['joints'] * 1000
    relative = np.stack([camera.world_to_camera(j) for (_, camera, _, _), j in zip(candidates, joints_mm)])
    relative -= relative[:, :1]
    kept = select_frames(relative, SELECTION_THRESHOLD_MM, buffer_size=SELECTION_BUFFER, check_validity=True,
                         nan_unchanged=True)
    counts['candidates'] += len(candidates)
    counts['selected'] += len(kept)
    container = str(zip_path.relative_to(root.parent))
    split = TRAIN if phase == 'train' else VALID
    tasks = []
    for i in kept:
        member, camera, pose, trans = candidates[i]
        box = boxes.expand(boxes.bb_of_points(camera.world_to_image(joints_mm[i])), BOX_EXPANSION)
        parameters = {'type': 'smplx', 'gender': 'female', 'pose': pose.astype(np.float32),
                      'shape': betas.astype(np.float32), 'trans': trans.astype(np.float32)}
        example = Pose3DExample(member_path(container, member), None, box, camera, parameters=parameters,
                                scene_name=member.split('/')[0])
        new_relpath = f'{NAME}_downscaled/{phase}/{member}'
        tasks.append((f'{split}/{new_relpath}', example, new_relpath))
    return tasks


def make_crop_tasks(data_root=None):
    """(key 'split/crop relpath', example, crop relpath) of the selected image-zip members."""
    from posepile import bodymodels
    root = raw_root(data_root)
    zips = image_zips(root)
    model = bodymodels.load('smplx', 'female', body_model_dir(data_root))
    betas = subject_betas(root, model)
    sessions = _Sessions(root)
    counts = dict.fromkeys(['candidates', 'selected', 'T-pose frames', 'no fits'], 0)
    tasks = []
    for phase, zip_path in zips:
        tasks += zip_tasks(root, phase, zip_path, sessions, model, betas, counts)
    logger.info('%d crop tasks; %s', len(tasks), ', '.join(f'{k} {v}' for k, v in counts.items()))
    if not tasks:
        raise FileNotFoundError(f'no usable MOYO images under {root}')
    return tasks


# ------------------------------------------------------------------------------------------------
# Stages
def crop_stage(shard=None, n_workers=None, data_root=None, skip_broken=None):
    """Crops of the selected frames, read from the image zips in place."""
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
    """MOYO: parametric-only SMPL-X examples (female, 128 betas) in the world frame, train and val, masks."""
    from posepile.datasets3d import TRAIN, VALID, Pose3DDataset
    from posepile.joint_info import JointInfo
    by_split = pipeline.examples_with_masks(NAME, data_root)
    return Pose3DDataset(JointInfo([], []), train_examples=by_split[TRAIN], valid_examples=by_split[VALID])


def assemble(data_root=None):
    """The dataset for get_dataset('moyo')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.moyo.main', 'MOYO stages', {
        'crop': crop_stage, 'segment': segment_stage, 'assemble': assemble})


if __name__ == '__main__':
    main()
