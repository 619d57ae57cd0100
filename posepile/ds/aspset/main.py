"""ASPset-510: camera JSON reader."""

import numpy as np

from posepile.util.camera import Camera
from posepile.util.errors import InputError

JOINT_NAMES = 'rank,rkne,rhip,rwri,relb,rsho,lank,lkne,lhip,lwri,lelb,lsho,htop,head,neck,spin,pelv'
JOINT_EDGES = 'htop-head-neck-spin-pelv-rhip-rkne-rank,neck-rsho-relb-rwri'


class ASPsetFormatError(InputError):
    pass


def camera_from_matrices(intrinsic_3x4, extrinsic_4x4):
    """World is y-down (mm); the extrinsic maps world to camera."""
    intrinsic = np.asarray(intrinsic_3x4, np.float64)
    extrinsic = np.asarray(extrinsic_4x4, np.float64)
    if intrinsic.shape != (3, 4) or extrinsic.shape != (4, 4):
        raise ValueError(f'expected a 3x4 intrinsic and a 4x4 extrinsic, got {intrinsic.shape} and '
                         f'{extrinsic.shape}')
    return Camera(extrinsic_matrix=extrinsic, intrinsic_matrix=intrinsic[:, :3], world_up=(0, -1, 0))


def load_camera(json_path):
    """Camera from cameras/<subj>/<subj>-<view>.json (`intrinsic_matrix` 3x4, `extrinsic_matrix` 4x4)."""
    from posepile.util import fileio
    data = fileio.load_json(json_path, ASPsetFormatError)
    try:
        return camera_from_matrices(data['intrinsic_matrix'], data['extrinsic_matrix'])
    except (KeyError, ValueError, TypeError) as e:
        raise ASPsetFormatError(f'{json_path}: not a valid ASPset camera file ({type(e).__name__}: {e})') from e


# ------------------------------------------------------------------------------------------------
# Splits and mocap
CAMERA_NAMES = ('left', 'mid', 'right')
ROOT_INDEX = 16  # pelvis
MOCAP_FPS = 50
SHIPPED_BOX_EXPANSION = 1.1  # the original expands the boxes CSV's boxes by 1.1 about the centre
TEST_FRAME_STEP = 5  # the test split is evaluated at 10 fps


SPLITS_COLUMNS = ('subject_id', 'clip_id', 'split', 'camera_id')


def load_splits(root):
    """List of (subject, clip, split, [cameras]) from splits.csv ('all' means left, mid, right); the file is
    looked for at the release root and in data/ (where the aspset510 repository keeps it).

    Rows are `subject_id,clip_id,split[,camera_id]`. The official file has no header row (the official
    reader takes every row as a clip); a first row naming the columns is accepted too, detected by its
    content. Without a camera column every camera is used."""
    import csv
    candidates = [Path(root) / 'splits.csv', Path(root) / 'data' / 'splits.csv']
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        raise FileNotFoundError(f'{candidates[0]} not found: run the ASPset-510 download step first')
    with open(path, newline='') as f:
        table = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    columns = list(SPLITS_COLUMNS)
    first_line = 1
    if table and {'subject_id', 'clip_id', 'split'} <= {cell.strip() for cell in table[0]}:
        columns = [cell.strip() for cell in table[0]]
        table, first_line = table[1:], 2
    rows = []
    for i, cells in enumerate(table):
        if len(cells) < 3 or len(cells) > len(columns):
            raise ASPsetFormatError(f'{path}: line {i + first_line} has {len(cells)} fields, expected '
                                    f'subject_id,clip_id,split[,camera_id]')
        row = dict(zip(columns, (cell.strip() for cell in cells)))
        if row.get('split') not in ('train', 'val', 'test'):
            raise ASPsetFormatError(f'{path}: line {i + first_line}: split {row.get("split")!r} is not '
                                    'train, val or test')
        camera = row.get('camera_id', 'all')
        cameras = list(CAMERA_NAMES) if camera == 'all' else [camera]
        rows.append((row['subject_id'], row['clip_id'], row['split'], cameras))
    return rows


def split_folder(split):
    return 'test' if split == 'test' else 'trainval'


def load_mocap(path):
    """(N, 17, 3) world joints in mm from a joints_3d .c3d file (ezc3d: points (4, 17, N))."""
    import ezc3d

    from posepile.util import c3d
    from posepile.util.validation import check_coords_mm, check_count
    promised = c3d.check_complete(path, ASPsetFormatError).n_frames
    try:
        points = np.asarray(ezc3d.c3d(str(path))['data']['points'])
    except Exception as e:  # ezc3d raises plain RuntimeError/IndexError on bad files
        raise ASPsetFormatError(f'{path}: cannot read the c3d file ({e})') from e
    if points.ndim != 3 or points.shape[:2] != (4, 17):
        raise ASPsetFormatError(f'{path}: expected points of shape (4, 17, N), got {points.shape}')
    check_count(points.shape[2], promised, path, 'mocap frames')
    return check_coords_mm(np.transpose(points[:3], (2, 1, 0)), path, 'mocap points')


def frame_relpath(split, subject, clip, camera, frame_index):
    """Path relative to DATA_ROOT of a full frame of a clip video (written only with --keep-frames; the
    examples' source name); index = 50 fps mocap row."""
    return f'aspset/{split_folder(split)}/frames/{subject}/{subject}-{clip}-{camera}/frame_{frame_index:06d}.jpg'


# ------------------------------------------------------------------------------------------------
# The recipe's stages
import logging  # noqa: E402
from pathlib import Path  # noqa: E402

from posepile.preproc import pipeline  # noqa: E402

NAME = 'aspset'
logger = logging.getLogger(__name__)
SELECTION_THRESHOLD_MM = 100
SPLIT_IDS = {'train': 0, 'val': 1, 'test': 2}


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def load_boxes(path):
    """Per-frame person boxes [x, y, w, h] from a boxes csv (header, then l,t,r,b per frame)."""
    try:
        values = np.loadtxt(path, delimiter=',', skiprows=1, ndmin=2)
    except (OSError, ValueError) as e:
        raise ASPsetFormatError(f'{path}: cannot read boxes ({e})') from e
    if values.shape[1] != 4:
        raise ASPsetFormatError(f'{path}: expected 4 columns l,t,r,b, got {values.shape[1]}')
    return np.stack([values[:, 0], values[:, 1], values[:, 2] - values[:, 0], values[:, 3] - values[:, 1]], 1)


def _clip_jobs(root):
    for subject, clip, split, cameras in load_splits(root):
        for camera in cameras:
            yield subject, clip, split, camera


def select_frames_stage(data_root=None):
    """Train/val: adaptive selection (a joint moved >= 100 mm) on the 50 fps mocap; test: every 5th frame."""
    from posepile.util.sampling import select_frames
    out_path = work_dir(data_root) / 'selection.json'
    inputs = sorted(raw_root(data_root).glob('**/*.c3d')) + sorted(raw_root(data_root).glob('**/splits.csv'))
    cached = pipeline.load_stage_json(out_path, inputs, [SELECTION_THRESHOLD_MM, TEST_FRAME_STEP])
    if cached is not None:
        return cached
    root = raw_root(data_root)
    selection = {}
    for subject, clip, split, _ in load_splits(root):
        mocap = load_mocap(root / split_folder(split) / 'joints_3d' / subject / f'{subject}-{clip}.c3d')
        frames = (range(0, len(mocap), TEST_FRAME_STEP) if split == 'test'
                  else select_frames(mocap, SELECTION_THRESHOLD_MM))
        selection[f'{subject}-{clip}'] = [int(f) for f in frames]
    pipeline.save_stage_json(selection, out_path, inputs, [SELECTION_THRESHOLD_MM, TEST_FRAME_STEP])
    return selection


def make_video_tasks(data_root=None):
    """One VideoTask per clip video (frame i = 50 fps mocap row i): the selected frames with the shipped
    person box of that frame, expanded x1.1."""
    from posepile.datasets3d import Pose3DExample
    from posepile.util import boxes as boxlib
    from posepile.preproc.video_stage import PersonTask, VideoTask
    root = raw_root(data_root)
    selection = select_frames_stage(data_root)
    tasks = []
    for subject, clip, split, camera_name in _clip_jobs(root):
        folder = root / split_folder(split)
        mocap = load_mocap(folder / 'joints_3d' / subject / f'{subject}-{clip}.c3d')
        camera = load_camera(folder / 'cameras' / subject / f'{subject}-{camera_name}.json')
        camera.world_up = np.array([0.0, -1.0, 0.0])  # the mocap world is y-down
        boxes_xywh = load_boxes(folder / 'boxes' / subject / f'{subject}-{clip}-{camera_name}.csv')
        people = {}
        for frame in selection[f'{subject}-{clip}']:
            if frame >= len(boxes_xywh):
                raise ASPsetFormatError(f'{subject}-{clip}-{camera_name}: no box for frame {frame} '
                                        f'({len(boxes_xywh)} boxes for {len(mocap)} mocap frames)')
            relpath = frame_relpath(split, subject, clip, camera_name, frame)
            # The shipped box expanded x1.1 about its centre, as the original (its crops frame the whole person)
            box = boxlib.expand(boxes_xywh[frame], SHIPPED_BOX_EXPANSION)
            example = Pose3DExample(relpath, mocap[frame], box, camera, scene_name=subject,
                                    activity_name=clip)
            people[frame] = [PersonTask(f'{SPLIT_IDS[split]}/{subject}-{clip}-{camera_name}/{frame:06d}', example,
                                        relpath.replace('aspset/', 'aspset_downscaled/', 1))]
        pattern = frame_relpath(split, subject, clip, camera_name, 0).replace('frame_000000', 'frame_{:06d}')
        tasks.append(VideoTask(f'{subject}-{clip}-{camera_name}',
                               str(folder / 'videos' / subject / f'{subject}-{clip}-{camera_name}.mkv'), people,
                               frame_relpath_pattern=pattern))
    return tasks


@pipeline.cli_options(pipeline.SKIP_BROKEN_OPTION, pipeline.KEEP_FRAMES_OPTION,
                      ('--segmenter', dict(dest='segmenter_spec', default=None,
                                           help='also segment the crops (e.g. grabcut), as the original; '
                                                'default: no masks')))
def video_stage(shard=None, n_workers=None, skip_broken=None, keep_frames=False, segmenter_spec=None,
                data_root=None):
    """Crops around the shipped person boxes (x1.1), one pass per clip video, optionally segmented."""
    pipeline.dataset_video_stage(NAME, make_video_tasks(data_root), shard, n_workers, data_root,
                                 skip_broken=skip_broken, keep_frames=keep_frames, segmenter_spec=segmenter_spec)


def make_dataset(data_root=None):
    """ASPset-510: train (adaptive 100 mm), val (adaptive), test (10 fps); 17 joints, mm; shipped boxes."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    edges = 'htop-head-neck-spin-pelv-rhip-rkne-rank,neck-rsho-relb-rwri,pelv-lhip-lkne-lank,neck-lsho-lelb-lwri'
    return Pose3DDataset(JointInfo(JOINT_NAMES, edges), splits[0], splits[1], splits[2])


def assemble(data_root=None):
    """The dataset for get_dataset('aspset')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.aspset.main', 'ASPset-510 stages', {
        'select-frames': select_frames_stage,
        'video': video_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
