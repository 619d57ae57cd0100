"""MuPoTS-3D: readers of the test set (MultiPersonTestSet/TS{1..20}/annot.mat, v5 MATLAB)."""
from pathlib import Path

import numpy as np
from posepile.util.errors import InputError

SEQUENCES = tuple(f'TS{i}' for i in range(1, 21))
JOINT_NAMES = 'htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,pelv,spin,head'
ROOT_INDEX = 14
# MATLAB's o1 parents (1-based) and the outward traversal used to rescale bones, as 0-based indices
PARENTS = [p - 1 for p in (2, 16, 2, 3, 4, 2, 6, 7, 15, 9, 10, 15, 12, 13, 15, 15, 2)]
SAFE_TRAVERSAL_ORDER = [j - 1 for j in (15, 16, 2, 1, 17, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)]


class MuPoTSFormatError(InputError):
    pass


def load_annotations(annot_mat_path):
    """Per frame a list of valid people: dicts with annot2 (17, 2) px, annot3 and univ_annot3 (17, 3) mm
    (camera frame), in annotation order."""
    import scipy.io
    path = Path(annot_mat_path)
    try:
        cells = scipy.io.loadmat(str(path), squeeze_me=False, struct_as_record=False)['annotations']
    except (OSError, ValueError, KeyError, NotImplementedError) as e:
        raise MuPoTSFormatError(f'{path}: cannot read annotations ({e})') from e
    frames = []
    for f in range(cells.shape[0]):
        people = []
        for p in range(cells.shape[1]):
            entry = cells[f, p]
            entry = entry[0, 0] if isinstance(entry, np.ndarray) else entry
            try:
                valid = bool(np.asarray(entry.isValidFrame).reshape(-1)[0])
                if not valid:
                    continue
                people.append(dict(
                    person=p, annot2=np.asarray(entry.annot2, np.float64).reshape(2, 17).T,
                    annot3=np.asarray(entry.annot3, np.float64).reshape(3, 17).T,
                    univ_annot3=np.asarray(entry.univ_annot3, np.float64).reshape(3, 17).T))
            except AttributeError as e:
                raise MuPoTSFormatError(f'{path}: annotation of frame {f}, person {p} lacks a field ({e})') \
                    from None
        frames.append(people)
    return frames


def image_relpath(sequence, frame_index):
    """0-based frame index, as in the image file names."""
    return f'mupots/MultiPersonTestSet/{sequence}/img_{frame_index:06d}.jpg'


# ------------------------------------------------------------------------------------------------
# Intrinsics (not shipped): least squares from the (annot2, annot3) pairs
def fit_intrinsics(points2d, points3d):
    """fx, fy, cx, cy minimising the squared reprojection error of camera-frame points (N, 3) mm onto
    their pixels (N, 2). Linear: u = fx x/z + cx, v = fy y/z + cy. Returns (K 3x3, RMS residual px)."""
    points2d = np.asarray(points2d, np.float64).reshape(-1, 2)
    points3d = np.asarray(points3d, np.float64).reshape(-1, 3)
    ok = np.all(np.isfinite(points2d), 1) & np.all(np.isfinite(points3d), 1) & (points3d[:, 2] > 1)
    x = points3d[ok, 0] / points3d[ok, 2]
    y = points3d[ok, 1] / points3d[ok, 2]
    if ok.sum() < 3:
        raise MuPoTSFormatError('too few valid points to fit the intrinsics')
    (fx, cx), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), points2d[ok, 0], rcond=None)
    (fy, cy), *_ = np.linalg.lstsq(np.stack([y, np.ones_like(y)], 1), points2d[ok, 1], rcond=None)
    residual = np.hypot(fx * x + cx - points2d[ok, 0], fy * y + cy - points2d[ok, 1])
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]]), float(np.sqrt(np.mean(residual ** 2)))


# ------------------------------------------------------------------------------------------------
# The recipe's stages
import logging  # noqa: E402

from posepile.preproc import pipeline  # noqa: E402

NAME = 'mupots'
logger = logging.getLogger(__name__)
BOX_EXPANSION = 1.1


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def load_occlusion(path, n_frames, n_people):
    """occlusion_labels{frame, person} (1x17) as a (frames, people, 17) bool array, or None if absent."""
    import scipy.io
    if not Path(path).exists():
        return None
    try:
        cells = scipy.io.loadmat(str(path))['occlusion_labels']
    except (OSError, ValueError, KeyError) as e:
        raise MuPoTSFormatError(f'{path}: cannot read occlusion labels ({e})') from e
    result = np.zeros((n_frames, n_people, 17), bool)
    for f in range(min(n_frames, cells.shape[0])):
        for p in range(min(n_people, cells.shape[1])):
            result[f, p] = np.asarray(cells[f, p]).reshape(-1)[:17].astype(bool)
    return result


def calibrate_stage(data_root=None):
    """Fit and save the intrinsics of every sequence; logs the RMS residual in px."""
    from posepile.util import fileio
    out_path = work_dir(data_root) / 'intrinsics.json'
    if out_path.exists():
        return fileio.load_json(out_path)
    result = {}
    for sequence in SEQUENCES:
        path = raw_root(data_root) / 'MultiPersonTestSet' / sequence / 'annot.mat'
        frames = load_annotations(path)
        points2d = [p['annot2'] for people in frames for p in people]
        points3d = [p['annot3'] for people in frames for p in people]
        K, rms = fit_intrinsics(np.concatenate(points2d), np.concatenate(points3d))
        result[sequence] = {'intrinsic_matrix': K.tolist(), 'rms_residual_px': rms}
        logger.info('%s: fx %.1f fy %.1f cx %.1f cy %.1f, RMS residual %.3f px', sequence, K[0, 0], K[1, 1],
                    K[0, 2], K[1, 2], rms)
    fileio.save_json(result, out_path)
    return result


def make_crop_tasks(data_root=None):
    from posepile.datasets3d import Pose3DExample
    from posepile.util import boxes
    from posepile.util.camera import Camera
    root = raw_root(data_root)
    intrinsics = calibrate_stage(data_root)
    tasks = []
    for sequence in SEQUENCES:
        folder = root / 'MultiPersonTestSet' / sequence
        frames = load_annotations(folder / 'annot.mat')
        n_people = max((p['person'] for people in frames for p in people), default=-1) + 1
        occlusion = load_occlusion(folder / 'occlusion.mat', len(frames), n_people)
        camera = Camera(intrinsic_matrix=intrinsics[sequence]['intrinsic_matrix'], world_up=(0, -1, 0))
        for frame, people in enumerate(frames):
            relpath = image_relpath(sequence, frame)
            if people and not (root.parent / relpath).exists():
                raise FileNotFoundError(f'{root.parent / relpath} not found: extract MultiPersonTestSet.zip')
            for person in people:
                box = boxes.expand(boxes.bb_of_points(person['annot2']), BOX_EXPANSION)
                parameters = None
                if occlusion is not None:
                    parameters = {'occluded_joints': occlusion[frame, person['person']]}
                example = Pose3DExample(relpath, person['annot3'], box, camera, scene_name=sequence,
                                        univ_coords=person['univ_annot3'], parameters=parameters)
                crop = f'mupots_downscaled/{sequence}/img_{frame:06d}_{person["person"]}.jpg'
                tasks.append((f'{sequence}/{frame:06d}/{person["person"]}', example, crop))
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Crops of every annotated person in every frame."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard, n_workers, data_root)


def make_dataset(data_root=None):
    """MuPoTS-3D as a TEST split: every annotated person in every frame, camera frame = world (mm), the
    fitted intrinsics, `univ_coords` holding univ_annot3, occlusion labels in `parameters`."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    edges = 'htop-head-neck-spin-pelv-lhip-lkne-lank,pelv-rhip-rkne-rank,neck-lsho-lelb-lwri,neck-rsho-relb-rwri'
    examples = pipeline.examples_by_split(NAME, data_root, split_of_key=lambda key: 2)[2]
    return Pose3DDataset(JointInfo(JOINT_NAMES, edges), None, None, examples)


def assemble(data_root=None):
    """The dataset for get_dataset('mupots')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.mupots.main', 'MuPoTS-3D stages', {
        'calibrate': calibrate_stage,
        'crop': crop_stage,
        'assemble': assemble,
    })


if __name__ == '__main__':
    main()
