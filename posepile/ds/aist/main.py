"""AIST++: readers of the camera settings and the 3D keypoint pickles, and the recipe's stages.

Raw layout under $DATA_ROOT/aist (fullset.zip's aist_plusplus_final/ renamed to annotations/):
    videos/<seq with cAll replaced by c01..c09>.mp4   the AIST Dance DB 10M refined videos, 60 fps
    annotations/keypoints3d/<seq>.pkl       {'keypoints3d', 'keypoints3d_optim': (N, 17, 3) float, cm, COCO-17
                                            order, world y up, 60 fps}; row i belongs to video frame i
    annotations/cameras/setting<k>.json     [{'name': 'c01', 'size': [W, H], 'matrix': 3x3 px, 'distortions': 5
                                            (OpenCV), 'rotation': Rodrigues vector (world -> camera),
                                            'translation': 3 (cm)}, ...]: X_cam = R X + t
    annotations/cameras/mapping.txt         '<seq> setting<k>' per line
    annotations/ignore_list.txt             sequences to leave out
    annotations/splits/pose_{train,val,test}.txt      the official pose splits (sequence names, cAll)
"""
import logging
import pickle
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

JOINT_NAMES = 'nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank,neck,pelv'
JOINT_EDGES = 'nose-neck-pelv-lhip-lkne-lank,rwri-relb-rsho-neck-lsho-lelb-lwri,lear-leye-reye-rear,pelv-rhip-rkne-rank'
N_COCO_JOINTS = 17
NAME = 'aist'
SPLITS = ('train', 'val', 'test')
SELECTION_THRESHOLD_MM = 100
BOX_EXPANSION = 1.15  # the box is the projected joints' box scaled by this
FURTHER_EXPANSION = 0.8  # the original's further_expansion_factor when cropping
FPS = 60
_VIDEO_CAMERA = re.compile(r'_(c\d{2})_')

logger = logging.getLogger(__name__)


class AISTFormatError(InputError):
    pass


# ------------------------------------------------------------------------------------------------
# Readers
def _array(path, name, value, shape):
    try:
        array = np.asarray(value, np.float64)
    except (ValueError, TypeError):
        array = np.zeros(0)
    if array.shape != shape or not np.all(np.isfinite(array)):
        raise AISTFormatError(f'{path}: camera {name!r} field has shape {array.shape} or non-finite values, '
                              f'expected {shape}')
    return array


def load_camera_setting(setting_json):
    """{camera name: (Camera, image shape (height, width))}; translations cm in the file, mm in the cameras."""
    import cv2

    from posepile.util.camera import Camera
    path = Path(setting_json)
    from posepile.util import fileio
    entries = fileio.load_json(path, AISTFormatError)
    if not isinstance(entries, list) or not entries:
        raise AISTFormatError(f'{path}: expected a non-empty list of cameras')
    result = {}
    for i, entry in enumerate(entries):
        missing = [k for k in ('name', 'size', 'matrix', 'distortions', 'rotation', 'translation')
                   if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise AISTFormatError(f'{path}: camera {i} lacks {", ".join(missing)}')
        name = str(entry['name'])
        rvec = _array(path, f'{name}.rotation', entry['rotation'], (3,))
        translation_cm = _array(path, f'{name}.translation', entry['translation'], (3,))
        width, height = _array(path, f'{name}.size', entry['size'], (2,)).astype(int)
        extrinsics = np.eye(4)
        extrinsics[:3, :3] = cv2.Rodrigues(rvec)[0]
        extrinsics[:3, 3] = translation_cm * 10
        camera = Camera(extrinsic_matrix=extrinsics,
                        intrinsic_matrix=_array(path, f'{name}.matrix', entry['matrix'], (3, 3)),
                        distortion_coeffs=_array(path, f'{name}.distortions', entry['distortions'], (5,)),
                        world_up=(0, 1, 0))
        result[name] = (camera, (int(height), int(width)))
    return result


def load_cameras(setting_json):
    """{camera name ('c01', ...): Camera (mm)} of an AIST++ camera setting file."""
    return {name: camera for name, (camera, _) in load_camera_setting(setting_json).items()}


def load_keypoints(path):
    """(N, 19, 3) float32 world joints in mm: keypoints3d_optim (cm) and neck / pelvis (means of the shoulders /
    hips)."""
    path = Path(path)
    try:
        with open(path, 'rb') as f:
            content = pickle.load(f)
        coords = np.asarray(content['keypoints3d_optim'], np.float64)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as e:
        raise AISTFormatError(f'{path}: cannot read keypoints3d_optim ({e!r})') from None
    if coords.ndim != 3 or coords.shape[1:] != (N_COCO_JOINTS, 3) or len(coords) == 0:
        raise AISTFormatError(f'{path}: keypoints3d_optim has shape {coords.shape}, expected (N, 17, 3)')
    if np.any(np.isinf(coords)) or np.all(np.isnan(coords)):
        raise AISTFormatError(f'{path}: keypoints3d_optim has infinite values or no finite ones')
    coords_mm = coords * 10
    neck = coords_mm[:, 5:7].mean(axis=1, keepdims=True)
    pelvis = coords_mm[:, 11:13].mean(axis=1, keepdims=True)
    return np.concatenate([coords_mm, neck, pelvis], axis=1).astype(np.float32)


def _read_lines(path):
    try:
        return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise AISTFormatError(f'{path}: cannot read ({e})') from None


def load_mapping(path):
    """{sequence name: setting name} from cameras/mapping.txt."""
    result = {}
    for line_number, line in enumerate(_read_lines(path), 1):
        parts = line.split()
        if len(parts) != 2:
            raise AISTFormatError(f'{path}: line {line_number} should be "<sequence> <setting>", got {line[:60]!r}')
        result[parts[0]] = parts[1]
    return result


def load_splits(annotation_root):
    """{sequence name: split index (0 train, 1 val, 2 test)} from splits/pose_{train,val,test}.txt."""
    result = {}
    for index, split in enumerate(SPLITS):
        for sequence in _read_lines(Path(annotation_root) / 'splits' / f'pose_{split}.txt'):
            result.setdefault(sequence, index)
    return result


def box_of(camera, joints_mm):
    """[x, y, w, h] px: the projected joints' box x1.15."""
    from posepile.util import boxes
    return boxes.expand(boxes.bb_of_points(camera.world_to_image(joints_mm)), BOX_EXPANSION)


def video_info(path):
    """(frame count from the header, average frame rate, (height, width)) of a video; a count of 0 in the
    header is counted by decoding."""
    import av

    from posepile.util.video import VideoReadError, count_frames
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            n, rate = int(stream.frames or 0), float(stream.average_rate or 0)
            shape = (int(stream.height), int(stream.width))
    except (av.error.FFmpegError, OSError, IndexError) as e:
        raise VideoReadError(path, -1, e) from e
    return (n if n > 0 else count_frames(path)), rate, shape


# ------------------------------------------------------------------------------------------------
# Stages
def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def _checked_frame_count(video, imshape, camera_label):
    """Frames of a video, after checking it is 60 fps (frame i = keypoint row i) and of the camera's size."""
    n_frames, rate, shape = video_info(video)
    if abs(rate - FPS) > 0.5:
        raise AISTFormatError(f'{video}: {rate:.2f} fps, expected {FPS} (frame i must be keypoint row i)')
    if shape != tuple(imshape):
        raise AISTFormatError(f'{video}: frames are {shape[0]}x{shape[1]}, camera {camera_label} says '
                              f'{imshape[0]}x{imshape[1]}')
    return n_frames


def _plan_sequence(root, sequence, settings, mapping, split):
    """[(video relpath, camera name, split index, selected frames)] for one sequence's videos."""
    from posepile.util.sampling import select_frames
    annotations = root / 'annotations'
    if sequence not in mapping:
        raise AISTFormatError(f'{annotations / "cameras/mapping.txt"}: no camera setting for {sequence}')
    if mapping[sequence] not in settings:
        settings[mapping[sequence]] = load_camera_setting(annotations / 'cameras' / f'{mapping[sequence]}.json')
    setting = settings[mapping[sequence]]
    poses = load_keypoints(annotations / 'keypoints3d' / f'{sequence}.pkl')
    selected = select_frames(poses, SELECTION_THRESHOLD_MM)  # the same for all cameras (world pose)
    plan = []
    for video in sorted((root / 'videos').glob(sequence.replace('_cAll_', '_c*_') + '.mp4')):
        match = _VIDEO_CAMERA.search(video.name)
        if match is None:
            logger.warning('%s: no camera c01-c09 in the name, ignored', video)
            continue
        camera_name = match.group(1)
        if camera_name not in setting:
            raise AISTFormatError(f'{annotations / "cameras" / mapping[sequence]}.json: no camera {camera_name} '
                                  f'(needed by {video.name})')
        n_frames = _checked_frame_count(video, setting[camera_name][1], f'{mapping[sequence]} {camera_name}')
        if n_frames < len(poses):
            logger.info('%s: %d frames for %d keypoint rows: the rest is unused', video.name, n_frames, len(poses))
        frames = [int(f) for f in selected if f < n_frames]
        plan.append((video.relative_to(root).as_posix(), camera_name, split, frames))
    return plan


def select_stage(data_root=None):
    """Per sequence (not ignored): adaptive selection on the world pose (100 mm); per video the selected frames
    (those the video has), checking the video is 60 fps. Written to posepile_work/selection.json."""
    from tqdm import tqdm

    from posepile.util import fileio
    root = raw_root(data_root)
    annotations = root / 'annotations'
    if not (annotations / 'keypoints3d').is_dir():
        raise FileNotFoundError(f'{annotations / "keypoints3d"} not found: unzip fullset.zip (main.sh step 1)')
    mapping = load_mapping(annotations / 'cameras' / 'mapping.txt')
    ignored = set(_read_lines(annotations / 'ignore_list.txt'))
    splits = load_splits(annotations)
    settings, plan, not_in_splits = {}, [], []
    for path in tqdm(sorted((annotations / 'keypoints3d').glob('*.pkl')), desc='AIST++ sequences', disable=None):
        sequence = path.stem
        if sequence in ignored:
            continue
        if sequence not in splits:
            not_in_splits.append(sequence)
            continue
        plan += _plan_sequence(root, sequence, settings, mapping, splits[sequence])
    if not_in_splits:
        logger.warning('%d sequences are in no pose split and were left out (e.g. %s)', len(not_in_splits),
                       not_in_splits[0])
    out_path = work_dir(data_root) / 'selection.json'
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fileio.save_json(plan, out_path)
    logger.info('%d videos, %d crops selected', len(plan), sum(len(p[3]) for p in plan))


def make_video_tasks(data_root=None):
    """One VideoTask per video: the selected frames with box = projected joints x1.15."""
    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.video_stage import PersonTask, VideoTask
    from posepile.util import fileio
    root = raw_root(data_root)
    annotations = root / 'annotations'
    selection_path = work_dir(data_root) / 'selection.json'
    if not selection_path.exists():
        raise FileNotFoundError(f'{selection_path} not found: run the "select" stage first')
    mapping = load_mapping(annotations / 'cameras' / 'mapping.txt')
    settings, tasks, poses_cache = {}, [], {}
    for video_relpath, camera_name, split, frames in fileio.load_json(selection_path):
        video_id = Path(video_relpath).stem
        sequence = video_id.replace(f'_{camera_name}_', '_cAll_')
        setting_name = mapping[sequence]
        if setting_name not in settings:
            settings[setting_name] = load_cameras(annotations / 'cameras' / f'{setting_name}.json')
        if sequence not in poses_cache:
            poses_cache = {sequence: load_keypoints(annotations / 'keypoints3d' / f'{sequence}.pkl')}
        poses, camera = poses_cache[sequence], settings[setting_name][camera_name]
        people = {}
        for frame in frames:
            example = Pose3DExample(f'{NAME}/{video_relpath}/{frame:06d}', poses[frame],
                                    box_of(camera, poses[frame]), camera)
            people[frame] = [PersonTask(f'{split}/{video_id}/{frame:06d}', example,
                                        f'{NAME}_downscaled/videos/{video_id}/{frame:06d}.jpg')]
        tasks.append(VideoTask(video_id, str(root / video_relpath), people))
    return tasks


@pipeline.cli_options(pipeline.SKIP_BROKEN_OPTION,
                      ('--segmenter', dict(dest='segmenter_spec', default='grabcut',
                                           help='segmenter of the crops (the original segmented every crop)')))
def video_stage(shard=None, n_workers=None, skip_broken=None, segmenter_spec='grabcut', data_root=None):
    """One pass per video: crops of the selected frames (box = joints x1.15, further expansion 0.8), segmented."""
    from posepile.joint_info import JointInfo
    edges = JointInfo(JOINT_NAMES, JOINT_EDGES).stick_figure_edges
    pipeline.dataset_video_stage(NAME, make_video_tasks(data_root), shard, n_workers, data_root,
                                 skip_broken=skip_broken, segmenter_spec=segmenter_spec, joint_edges=edges,
                                 further_expansion_factor=FURTHER_EXPANSION)


def make_dataset(data_root=None):
    """AIST++ with the official pose splits (train / val / test), 19 joints in mm, every crop with a mask."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    unmasked = [ex.image_path for split in splits.values() for ex in split if ex.mask is None]
    if unmasked:
        raise ValueError(f'{len(unmasked)} AIST++ crops have no mask (e.g. {unmasked[0]}): rerun the video stage '
                         'with a segmenter')
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0], splits[1], splits[2])


def assemble(data_root=None):
    """The dataset for get_dataset('aist')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.aist.main', 'AIST++ stages', {
        'select': select_stage,
        'video': video_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
