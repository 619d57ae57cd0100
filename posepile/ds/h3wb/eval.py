"""H3WB benchmark (Human3.6M 3D WholeBody, 133 COCO-WholeBody keypoints), the tasks and MPJPE variants of the
official leaderboard script (wholebody3d/wholebody3d test_leaderboard.py).

Tasks and their ground truth (JSON files of the release, `{id: {"keypoints_3d": {"0": {"x", "y", "z"}, ...}}}`, mm):
- `2d`  (2D -> 3D):  2Dto3D_test_3d.json, sample ids (i // 4) * 8 + i % 4 for i < the file's length;
- `i2d` (incomplete 2D -> 3D): I2Dto3D_test_3d.json, ids (i // 4) * 8 + i % 4 + 4;
- `rgb` (RGB -> 3D): RGBto3D_test_3d.json, ids 0 .. length - 1;
- `--cv K` (K = 1..5): the official 5-fold cross-validation on 2Dto3D_train.json (RGBto3D_train.json for rgb):
  ids [(L // 5) (K - 1), (L // 5) K).
Metrics (mm) on prediction - GT differences, every pose first aligned at its mid-hip (keypoints 11 and 12,
0-based):
- MPJPE all 133, body (keypoints 0-22), face (23-90), hands (91-132), pelvis-aligned;
- face nose-aligned (face keypoints relative to keypoint 0, the body's nose);
- hands wrist-aligned (left hand 91-111 relative to 91, right 112-132 relative to 112; the mean of the two).
Every mean is over all samples and keypoints of the group. The official script computes in float32 (torch);
here float64 (differences of order 1e-7 relative).

    python -m posepile.ds.h3wb.eval --pred-path preds.json|preds.npz --task 2d|i2d|rgb [--cv K] [--json-dir DIR]

Predictions: the official submission JSON (the ground truth's layout, one entry per sample id), or an .npz with
`sample_id` (N,) and `coords3d_pred_cam` (N, 133, 3) mm in the frame of the ground truth.
"""
import argparse
import json
import logging
from pathlib import Path

import numpy as np

from posepile.eval import report
from posepile.eval.predictions import PredictionError, check_pose_scale, load_predictions, read_prediction_arrays
from posepile.util.errors import InputError

logger = logging.getLogger(__name__)
N_KEYPOINTS = 133
LEFT_HIP, RIGHT_HIP, NOSE, LEFT_HAND_ROOT, RIGHT_HAND_ROOT = 11, 12, 0, 91, 112
BODY, FACE, HANDS = slice(0, 23), slice(23, 91), slice(91, 133)
LEFT_HAND, RIGHT_HAND = slice(91, 112), slice(112, 133)
TEST_FILES = {'2d': '2Dto3D_test_3d.json', 'i2d': 'I2Dto3D_test_3d.json', 'rgb': 'RGBto3D_test_3d.json'}
TRAIN_FILES = {'2d': '2Dto3D_train.json', 'i2d': '2Dto3D_train.json', 'rgb': 'RGBto3D_train.json'}


class H3WBFormatError(InputError):
    pass


def read_keypoint_json(path, error=H3WBFormatError):
    """{sample id (str): (133, 3) float64} from a file in the release's JSON layout."""
    path = Path(path)
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except FileNotFoundError as e:
        raise error(f'{path}: file not found') from e
    except (OSError, ValueError) as e:
        raise error(f'{path}: not readable JSON ({type(e).__name__}: {e})') from e
    if not isinstance(data, dict):
        raise error(f'{path}: expected an object keyed by sample id, found {type(data).__name__}')
    return data


def keypoints_of(path, data, sample_id, error=H3WBFormatError):
    entry = data.get(str(sample_id))
    if entry is None:
        raise error(f'{path}: no entry for sample id {sample_id}')
    try:
        points = entry['keypoints_3d']
        return np.array([[points[str(j)]['x'], points[str(j)]['y'], points[str(j)]['z']]
                         for j in range(N_KEYPOINTS)], np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise error(f'{path}: sample {sample_id} has no complete "keypoints_3d" with {N_KEYPOINTS} x/y/z entries '
                    f'({type(e).__name__}: {e})') from e


def sample_ids(task, length, cv=0):
    """The ids the leaderboard scores for a GT file of `length` entries."""
    if cv:
        fold = length // 5
        return list(range(fold * (cv - 1), fold * cv))
    if task == '2d':
        return [(i // 4) * 8 + i % 4 for i in range(length)]
    if task == 'i2d':
        return [(i // 4) * 8 + i % 4 + 4 for i in range(length)]
    return list(range(length))


def ground_truth(json_dir, task, cv=0):
    """(ids, (N, 133, 3) mm) of the task's GT file."""
    path = Path(json_dir) / (TRAIN_FILES if cv else TEST_FILES)[task]
    data = read_keypoint_json(path)
    ids = sample_ids(task, len(data), cv)
    return ids, np.stack([keypoints_of(path, data, i) for i in ids]) if ids else np.zeros((0, N_KEYPOINTS, 3))


def load_predictions_file(path, ids):
    """(N, 133, 3) mm in the order of ids, from the official JSON or an .npz."""
    path = Path(path)
    if path.suffix.lower() == '.json':
        data = read_keypoint_json(path, PredictionError)
        coords = np.stack([keypoints_of(path, data, i, PredictionError) for i in ids]) if ids else \
            np.zeros((0, N_KEYPOINTS, 3))
        if not np.all(np.isfinite(coords)):
            raise PredictionError(f'{path}: NaN or inf in the predicted keypoints')
        check_pose_scale(coords, path, [str(i) for i in ids])
        return coords
    arrays = read_prediction_arrays(path)
    if 'sample_id' not in arrays:
        raise PredictionError(f'{path}: missing array "sample_id" (found {sorted(arrays)})')
    try:
        file_ids = [str(int(x)) for x in np.asarray(arrays['sample_id']).ravel()]
    except (ValueError, TypeError) as e:
        raise PredictionError(f'{path}: "sample_id" must be integers ({e})') from e
    arrays = {**arrays, 'image_path': np.array(file_ids)}
    predictions = load_predictions(path, [str(i) for i in ids], N_KEYPOINTS, coord_key='coords3d_pred_cam',
                                   arrays=arrays)
    return np.stack([predictions[str(i)] for i in ids]) if ids else np.zeros((0, N_KEYPOINTS, 3))


def _mean_norm(diff):
    return float(np.mean(np.linalg.norm(diff, axis=-1)))


def evaluate(pred, gt):
    """The leaderboard's six numbers (mm) for pred, gt (N, 133, 3)."""
    diff = np.asarray(pred, np.float64) - np.asarray(gt, np.float64)
    diff = diff - (diff[:, LEFT_HIP:LEFT_HIP + 1] + diff[:, RIGHT_HIP:RIGHT_HIP + 1]) / 2
    left = diff[:, LEFT_HAND] - diff[:, LEFT_HAND_ROOT:LEFT_HAND_ROOT + 1]
    right = diff[:, RIGHT_HAND] - diff[:, RIGHT_HAND_ROOT:RIGHT_HAND_ROOT + 1]
    return {'n_samples': len(diff),
            'MPJPE all (pelvis-aligned)': _mean_norm(diff),
            'MPJPE body (pelvis-aligned)': _mean_norm(diff[:, BODY]),
            'MPJPE face (pelvis-aligned)': _mean_norm(diff[:, FACE]),
            'MPJPE face (nose-aligned)': _mean_norm(diff[:, FACE] - diff[:, NOSE:NOSE + 1]),
            'MPJPE hands (pelvis-aligned)': _mean_norm(diff[:, HANDS]),
            'MPJPE hands (wrist-aligned)': (_mean_norm(left) + _mean_norm(right)) / 2}


def main(argv=None):
    from posepile.paths import data_root
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pred-path', required=True)
    parser.add_argument('--task', choices=sorted(TEST_FILES), required=True)
    parser.add_argument('--cv', type=int, default=0, choices=range(6),
                        help='cross-validation fold 1..5 on the training file (0: the test set)')
    parser.add_argument('--json-dir', default=None, help='folder of the H3WB JSON files, default $DATA_ROOT/h3wb/json')
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    json_dir = Path(args.json_dir) if args.json_dir else data_root() / 'h3wb' / 'json'
    ids, gt = ground_truth(json_dir, args.task, args.cv)
    results = evaluate(load_predictions_file(args.pred_path, ids), gt)
    where = f'cross-validation fold {args.cv} of the training set' if args.cv else 'test set'
    keys = [k for k in results if k.startswith('MPJPE')]
    report.print_table(f'H3WB task {args.task}, {where}: {results["n_samples"]} samples (mm)',
                       [[results[k] for k in keys]], [k.replace('MPJPE ', '') for k in keys], decimals=2)
    if args.out:
        report.write_json(args.out, results)
    return results


if __name__ == '__main__':
    import sys

    from posepile.util.errors import run_cli
    logging.basicConfig(level=logging.INFO)
    sys.exit(run_cli(main, prog=f'python -m {__spec__.name}'))
