"""MuPoTS-3D benchmark, following the official mpii_mupots_multiperson_eval.m.

Per frame, predictions are matched to the annotated people greedily in annotation order: for each person,
the unmatched prediction with the most joints (of the 13 from neck to left ankle) within 40 px in both x
and y of the annotated 2D pose (predicted joints at (0, 0) do not count) is taken, if that count is > 0.
Matched 3D predictions (and the ground truth, `univ_annot3` by default) are made pelvis-relative, and each
predicted bone is rescaled to the ground-truth length walking outward from the pelvis. PCK (< 150 mm) and
AUC (0:5:150) over the 14-joint groups are computed per sequence; the reported total is the mean over the
20 sequences. "All annotated" counts unmatched people as complete misses; "only matched" skips them.

A predicted bone of zero length cannot be rescaled: the official script divides 0 by 0, so that joint and
every joint below it become NaN and count as misses (they stay in the PCK/AUC denominators). That is the
default here. `--zero-bone-on-parent` instead puts such a joint on its parent (our variant; it can turn
those misses into hits, so its numbers are not comparable with published ones).

Variants: `--metric-gt` (annot3), `--absolute` (no root subtraction), `--no-rescale` (keep predicted bone
lengths), `--zero-bone-on-parent`.

    python -m posepile.ds.mupots.eval --pred-path preds.npz|PRED_DIR [--metric-gt] [--absolute] [--no-rescale]

Predictions, either
- an .npz with one row per predicted person: `image_path` (`mupots/MultiPersonTestSet/TS1/img_000000.jpg`,
  repeated for several people), `coords2d_pred` (N, 17, 2) px and `coords3d_pred_cam` (N, 17, 3) mm;
- the official layout: a folder with `preds_2d_kpt_mupots.mat` and `preds_3d_kpt_mupots.mat` whose fields
  `TS{ts}_img_{frame:06d}` hold (people, 17, 2|3) arrays.
Frames without any prediction count as having no detections (their number is reported).
"""
import argparse
import logging
import re
from pathlib import Path

import numpy as np

from posepile.ds.mupots import main as mupots
from posepile.ds.tdhp.eval import GROUPS14
from posepile.eval import metrics, report
from posepile.eval.predictions import PredictionError, check_pose_scale, read_prediction_arrays

logger = logging.getLogger(__name__)
MATCH_THRESHOLD_PX = 40
MATCH_JOINTS = list(range(1, 14))  # 1-based 2..14: neck ... left ankle
UNMATCHED_ERROR_MM = 1e5


def match_poses(gt_2d, pred_2d, threshold_px=MATCH_THRESHOLD_PX):
    """Greedy identity matching of the official script. gt_2d (G, 17, 2), pred_2d (P, 17, 2) px.
    Returns (G,) int: index of the matched prediction or -1."""
    gt_2d = np.asarray(gt_2d, np.float64).reshape(-1, 17, 2)
    pred_2d = np.asarray(pred_2d, np.float64).reshape(-1, 17, 2)
    result = np.full(len(gt_2d), -1, np.int64)
    used = np.zeros(len(pred_2d), bool)
    pred_visible = ~np.all(pred_2d[:, MATCH_JOINTS] == 0, axis=-1)  # (P, 13)
    for g, gt in enumerate(gt_2d):
        if np.all(used):
            break
        close = np.all(np.abs(pred_2d[:, MATCH_JOINTS] - gt[MATCH_JOINTS]) < threshold_px, axis=-1)
        counts = np.sum(close & pred_visible, axis=1)
        counts[used] = -1
        best = int(np.argmax(counts))  # first maximum, as MATLAB's max
        if counts[best] > 0:
            result[g] = best
            used[best] = True
    return result


def rescale_to_gt_bone_lengths(pred, gt, zero_bone_on_parent=False):
    """Each predicted bone keeps its direction but takes the GT length, outward from the pelvis.

    A zero-length predicted bone gives NaN for its joint and all joints below it, as the official script's
    0/0 does; with `zero_bone_on_parent` the joint is put on its parent instead."""
    result = pred.copy()
    for j in mupots.SAFE_TRAVERSAL_ORDER[1:]:
        parent = mupots.PARENTS[j]
        bone = pred[j] - pred[parent]
        length = np.linalg.norm(bone)
        gt_length = np.linalg.norm(gt[j] - gt[parent])
        if length > 0:
            result[j] = result[parent] + bone / length * gt_length
        else:
            result[j] = result[parent] if zero_bone_on_parent else np.nan
    return result


def load_npz_predictions(path):
    """{image_path: (coords2d (P, 17, 2), coords3d (P, 17, 3))}."""
    data = read_prediction_arrays(path)
    try:
        paths = [re.sub(r'^mupots_downscaled/', 'mupots/', str(p)) for p in data['image_path']]
        coords2d = np.asarray(data['coords2d_pred'], np.float64)
        coords3d = np.asarray(data['coords3d_pred_cam'], np.float64)
    except (ValueError, TypeError, KeyError) as e:
        raise PredictionError(f'{path}: cannot read MuPoTS predictions (need image_path, coords2d_pred, '
                              f'coords3d_pred_cam): {e}') from e
    if coords2d.shape != (len(paths), 17, 2) or coords3d.shape != (len(paths), 17, 3):
        raise PredictionError(f'{path}: coords2d_pred {coords2d.shape} / coords3d_pred_cam {coords3d.shape} '
                              f'must be ({len(paths)}, 17, 2|3)')
    if not (np.all(np.isfinite(coords2d)) and np.all(np.isfinite(coords3d))):
        raise PredictionError(f'{path}: NaN or inf values')
    check_pose_scale(coords3d, path, paths)
    result = {}
    for i, p in enumerate(paths):
        result.setdefault(p, []).append(i)
    return {p: (coords2d[idx], coords3d[idx]) for p, idx in result.items()}


def load_official_predictions(folder):
    import scipy.io
    folder = Path(folder)
    try:
        preds2d = scipy.io.loadmat(str(folder / 'preds_2d_kpt_mupots.mat'))
        preds3d = scipy.io.loadmat(str(folder / 'preds_3d_kpt_mupots.mat'))
    except (OSError, ValueError, scipy.io.matlab.MatReadError) as e:
        raise PredictionError(f'{folder}: cannot read preds_2d_kpt_mupots.mat / preds_3d_kpt_mupots.mat ({e})') \
            from e
    result = {}
    for key, value in preds2d.items():
        match = re.fullmatch(r'TS(\d+)_img_(\d+)', key)
        if not match:
            continue
        if key not in preds3d:
            raise PredictionError(f'{folder}: {key} is in the 2D file but not in the 3D file')
        path = mupots.image_relpath(f'TS{int(match.group(1))}', int(match.group(2)))
        result[path] = (np.asarray(value, np.float64).reshape(-1, 17, 2),
                        np.asarray(preds3d[key], np.float64).reshape(-1, 17, 3))
    if result:
        check_pose_scale(np.concatenate([c3 for _, c3 in result.values()]), folder / 'preds_3d_kpt_mupots.mat')
    return result


def evaluate(root, predictions, gt_key='univ_annot3', relative=True, rescale=True, zero_bone_on_parent=False):
    known_paths = set()
    per_sequence = {}
    n_frames_without = 0
    for sequence in mupots.SEQUENCES:
        path = Path(root) / 'MultiPersonTestSet' / sequence / 'annot.mat'
        if not path.exists():
            raise FileNotFoundError(f'{path} not found: extract MultiPersonTestSet under {Path(root)}')
        errors_matched, n_annotated = [], 0
        for frame, people in enumerate(mupots.load_annotations(path)):
            image_path = mupots.image_relpath(sequence, frame)
            known_paths.add(image_path)
            if image_path not in predictions:
                n_frames_without += 1
                pred2d, pred3d = np.zeros((0, 17, 2)), np.zeros((0, 17, 3))
            else:
                pred2d, pred3d = predictions[image_path]
            if not people:
                continue
            matches = match_poses(np.stack([p['annot2'] for p in people]), pred2d)
            for person, m in zip(people, matches):
                n_annotated += 1
                if m < 0:
                    continue
                gt = person[gt_key]
                pred = pred3d[m]
                if relative:
                    gt = gt - gt[mupots.ROOT_INDEX]
                    pred = pred - pred[mupots.ROOT_INDEX]
                if rescale:
                    pred = rescale_to_gt_bone_lengths(pred, gt, zero_bone_on_parent)
                # a NaN predicted joint (from rescaling) is a miss, as in the official script
                errors_matched.append(metrics.joint_distances(pred, gt, nan_prediction_is_miss=True))
        joints = sorted(j for g in GROUPS14.values() for j in g)
        matched = np.array(errors_matched).reshape(-1, 17)[:, joints]
        unmatched = np.full((n_annotated - len(matched), len(joints)), UNMATCHED_ERROR_MM)
        all_annotated = np.concatenate([matched, unmatched])
        per_sequence[sequence] = {
            'n_annotated': n_annotated, 'n_matched': len(matched),
            'pck_all': metrics.pck(all_annotated, 150), 'auc_all': metrics.auc_3dhp(all_annotated),
            'pck_matched': metrics.pck(matched, 150) if len(matched) else float('nan'),
            'auc_matched': metrics.auc_3dhp(matched) if len(matched) else float('nan')}
    unknown = sorted(set(predictions) - known_paths)
    if unknown:
        raise PredictionError(f'predictions for images not in the test set, e.g. {unknown[:5]}')
    if n_frames_without:
        logger.warning('%d test frames have no predictions (counted as no detections)', n_frames_without)
    results = {'per_sequence': per_sequence, 'frames_without_predictions': n_frames_without}
    for key in ('pck_all', 'auc_all', 'pck_matched', 'auc_matched'):
        results[key] = float(np.nanmean([s[key] for s in per_sequence.values()]))
    n_annotated = sum(s['n_annotated'] for s in per_sequence.values())
    results['recall'] = sum(s['n_matched'] for s in per_sequence.values()) / max(1, n_annotated)
    return results


def main(argv=None):
    from posepile.paths import data_root
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pred-path', required=True)
    parser.add_argument('--metric-gt', action='store_true', help='annot3 instead of univ_annot3')
    parser.add_argument('--absolute', action='store_true', help='no root subtraction')
    parser.add_argument('--no-rescale', action='store_true', help='keep the predicted bone lengths')
    parser.add_argument('--zero-bone-on-parent', action='store_true',
                        help='not official: a zero-length predicted bone puts its joint on the parent instead '
                             'of making it and its descendants NaN misses (the official 0/0)')
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    pred_path = Path(args.pred_path)
    predictions = load_official_predictions(pred_path) if pred_path.is_dir() else load_npz_predictions(pred_path)
    gt_key = 'annot3' if args.metric_gt else 'univ_annot3'
    results = evaluate(data_root() / 'mupots', predictions, gt_key, not args.absolute, not args.no_rescale,
                       args.zero_bone_on_parent)
    variant = (f'GT {gt_key}, {"absolute" if args.absolute else "root-relative"}, '
               f'{"no bone rescaling" if args.no_rescale else "bones rescaled to GT"}')
    if args.zero_bone_on_parent and not args.no_rescale:
        variant += ', zero-length bones on the parent (NOT the official rule)'

    results['variant'] = variant
    rows = [(s, r['n_annotated'], r['n_matched'], r['pck_all'], r['auc_all'], r['pck_matched'], r['auc_matched'])
            for s, r in results['per_sequence'].items()]
    rows.append(('Mean of sequences', sum(r['n_annotated'] for r in results['per_sequence'].values()),
                 sum(r['n_matched'] for r in results['per_sequence'].values()), results['pck_all'],
                 results['auc_all'], results['pck_matched'], results['auc_matched']))
    report.print_table(f'MuPoTS-3D ({variant})', rows,
                       ['sequence', 'annotated', 'matched', 'PCK all', 'AUC all', 'PCK matched', 'AUC matched'])
    if args.out:
        report.write_json(args.out, results)
    return results


if __name__ == '__main__':
    import sys

    from posepile.util.errors import run_cli
    logging.basicConfig(level=logging.INFO)
    sys.exit(run_cli(main, prog=f'python -m {__spec__.name}'))
