"""MuPoTS-3D: readers of the test set (MultiPersonTestSet/TS{1..20}/annot.mat, v5 MATLAB)."""
import logging
from pathlib import Path

import numpy as np
from posepile.util.errors import InputError

SEQUENCES = tuple(f'TS{i}' for i in range(1, 21))
JOINT_NAMES = 'htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,pelv,spin,head'
ROOT_INDEX = 14
# MATLAB's o1 parents (1-based) and the outward traversal used to rescale bones, as 0-based indices
PARENTS = [p - 1 for p in (2, 16, 2, 3, 4, 2, 6, 7, 15, 9, 10, 15, 12, 13, 15, 15, 2)]
SAFE_TRAVERSAL_ORDER = [j - 1 for j in (15, 16, 2, 1, 17, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)]


logger = logging.getLogger(__name__)


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
MAX_CALIBRATION_RMS_PX = 5.0
DISAGREEING_JOINT_RMS_PX = 5.0  # a joint whose annot2 is farther than this (RMS) from its projection
MAX_JOINTS_LEFT_OUT = 3


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


def joint_rms_residuals(K, points2d, points3d):
    """(J,) RMS distance px, over all people, between annot2 and the pinhole projection of annot3.
    points2d (N, J, 2) px, points3d (N, J, 3) mm; NaN or behind-camera points are ignored."""
    with np.errstate(invalid='ignore', divide='ignore'):
        projected = points3d[..., :2] / points3d[..., 2:] * np.diag(K)[:2] + K[:2, 2]
        distance = np.linalg.norm(projected - points2d, axis=-1)
    distance[~(points3d[..., 2] > 1)] = np.nan
    with np.errstate(invalid='ignore'):
        return np.sqrt(np.nanmean(distance ** 2, axis=0))


def robust_fit_intrinsics(points2d, points3d):
    """Intrinsics from the joints whose 2D and 3D annotations agree. points2d (N, 17, 2) px, points3d
    (N, 17, 3) mm. Fits on all joints, then repeatedly leaves out the joint of largest RMS residual while it
    exceeds 5 px (at most 3 joints; the 2D spine of TS1/TS2 is ~200 px off, TS7's partly) and refits.
    Returns (K, RMS residual px over the kept joints, sorted indices of the joints left out)."""
    points2d = np.asarray(points2d, np.float64)
    points3d = np.asarray(points3d, np.float64)
    kept = list(range(points2d.shape[1]))
    left_out = []
    while True:
        K, rms = fit_intrinsics(points2d[:, kept], points3d[:, kept])
        per_joint = joint_rms_residuals(K, points2d, points3d)
        worst = max(kept, key=lambda j: np.nan_to_num(per_joint[j], nan=-1))
        if len(left_out) >= MAX_JOINTS_LEFT_OUT or not per_joint[worst] > DISAGREEING_JOINT_RMS_PX:
            return K, rms, sorted(left_out)
        kept.remove(worst)
        left_out.append(worst)


def calibrate_sequence(annot_mat_path):
    """(K 3x3, RMS residual px) of one sequence (TS<k>/annot.mat), fitted on the joints whose annot2 agrees
    with the projection of annot3 (see robust_fit_intrinsics); the joints left out are logged. Raises
    MuPoTSFormatError if the RMS stays above 5 px (2D and 3D that do not correspond)."""
    K, rms, _ = _calibrate(annot_mat_path)
    return K, rms


def _calibrate(annot_mat_path):
    path = Path(annot_mat_path)
    sequence = path.parent.name
    people = [p for frame in load_annotations(path) for p in frame]
    if not people:
        raise MuPoTSFormatError(f'{path}: no valid annotated person to fit the intrinsics')
    points2d = np.stack([p['annot2'] for p in people])
    points3d = np.stack([p['annot3'] for p in people])
    try:
        K, rms, left_out = robust_fit_intrinsics(points2d, points3d)
    except MuPoTSFormatError as e:
        raise MuPoTSFormatError(f'{path}: {e}') from None
    names = [JOINT_NAMES.split(',')[j] for j in left_out]
    if not rms <= MAX_CALIBRATION_RMS_PX:
        raise MuPoTSFormatError(
            f'{path}: annot2 does not match the pinhole projection of annot3 (intrinsics fit RMS {rms:.1f} px > '
            f'{MAX_CALIBRATION_RMS_PX:g} px, joints left out: {",".join(names) or "none"}); are the 2D and 3D '
            f'annotations of the same frames?')
    logger.info('%s: fx %.2f fy %.2f cx %.2f cy %.2f, RMS residual %.3f px over %d people, joints left out '
                '(2D disagrees with 3D): %s', sequence, K[0, 0], K[1, 1], K[0, 2], K[1, 2], rms, len(people),
                ','.join(names) or 'none')
    return K, rms, left_out


# ------------------------------------------------------------------------------------------------
# The recipe's stages
from posepile.preproc import pipeline  # noqa: E402

NAME = 'mupots'
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
    """Fit and save the intrinsics of every sequence (calibrate_sequence: the joints whose 2D annotation
    disagrees with the 3D one are left out); logs the RMS residual in px."""
    from posepile.util import fileio
    out_path = work_dir(data_root) / 'intrinsics.json'
    if out_path.exists():
        return fileio.load_json(out_path)
    result = {}
    for sequence in SEQUENCES:
        K, rms, left_out = _calibrate(raw_root(data_root) / 'MultiPersonTestSet' / sequence / 'annot.mat')
        result[sequence] = {'intrinsic_matrix': K.tolist(), 'rms_residual_px': rms, 'joints_left_out': left_out}
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
        # the box: annot2 of the joints whose 2D agrees with the 3D (the wrong 2D spine of TS1/TS2 lies above
        # the head and would stretch the box)
        left_out = intrinsics[sequence].get('joints_left_out', [])
        agreeing_joints = [j for j in range(len(JOINT_NAMES.split(','))) if j not in left_out]
        for frame, people in enumerate(frames):
            relpath = image_relpath(sequence, frame)
            if people and not (root.parent / relpath).exists():
                raise FileNotFoundError(f'{root.parent / relpath} not found: extract MultiPersonTestSet.zip')
            for person in people:
                box = boxes.expand(boxes.bb_of_points(person['annot2'][agreeing_joints]), BOX_EXPANSION)
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
