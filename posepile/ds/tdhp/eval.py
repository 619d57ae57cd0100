"""MPI-INF-3DHP test set benchmark (TS1-TS6, valid frames only).

Official protocol (default): ground truth `univ_annot3` (camera frame, universal skeleton), both poses made
root-relative at the pelvis; PCK (< 150 mm) and AUC (mean PCK over 0, 5, ..., 150 mm) over the 14 joints of
the commonly used joint groups (head top, neck, shoulders, elbows, wrists, hips, knees, ankles); MPJPE over
all 17 joints (pelvis included). Tables per sequence, per scene (GS = TS1-2, noGS = TS3-4, Outdoor = TS5-6,
frame-weighted), per activity, and the "All" row pooling every valid frame (the number papers report).

Variants: `--metric-gt` scores against `annot3` (metric skeleton, the original PosePile default);
`--groups17` uses the 17-joint groups of the unmodified official script (head with head top, spine, pelvis
in the hip group).

    python -m posepile.ds.tdhp.eval --pred-path preds.npz [--metric-gt] [--groups17] [--out r.json]

Predictions: .npz with `image_path` (`tdhp/TS1/imageSequence/img_000001.jpg`, 1-based as the image files;
`tdhp_downscaled/...` accepted) and `coords3d_pred_cam` (N, 17, 3) mm in the test camera's frame, or
`coords3d_pred_world` (converted with the test cameras from test_util/camera_calibration).
"""
import argparse
import logging
import re
from pathlib import Path

import numpy as np

from posepile.ds.tdhp import main as tdhp
from posepile.eval import metrics, report
from posepile.eval.predictions import load_predictions, read_prediction_arrays

logger = logging.getLogger(__name__)

# 0-based joint groups of the 17-joint test order
GROUPS14 = {'Head': [0], 'Neck': [1], 'Shoulder': [2, 5], 'Elbow': [3, 6], 'Wrist': [4, 7], 'Hip': [8, 11],
            'Knee': [9, 12], 'Ankle': [10, 13]}
GROUPS17 = {'Head': [0, 16], 'Neck': [1], 'Shoulder': [2, 5], 'Elbow': [3, 6], 'Wrist': [4, 7], 'Spine': [15],
            'Hip': [8, 11, 14], 'Knee': [9, 12], 'Ankle': [10, 13]}


def _normalize_path(path):
    return re.sub(r'^tdhp_downscaled/', 'tdhp/', path.replace('\\', '/'))


def test_items(root, gt_key='univ_annot3'):
    """Valid test frames: list of dicts (image_path, sequence, activity, gt_cam (17, 3) mm)."""
    items = []
    for sequence in tdhp.TEST_SEQUENCES:
        path = Path(root) / sequence / 'annot_data.mat'
        if not path.exists():
            raise FileNotFoundError(f'{path} not found: extract the MPI-INF-3DHP test set under {root}')
        annotations = tdhp.load_test_annotations(path)
        for i in np.flatnonzero(annotations['valid_frame']):
            items.append(dict(image_path=tdhp.test_image_relpath(sequence, int(i)), sequence=sequence,
                              activity=int(annotations['activity'][i]), gt_cam=annotations[gt_key][i]))
    return items


def scores(errors, groups):
    """PCK (%), AUC (%) over the group joints, MPJPE over all joints; errors (F, 17) mm."""
    joints = sorted(j for g in groups.values() for j in g)
    grouped = errors[:, joints]
    return {'n': len(errors), 'pck150': metrics.pck(grouped, 150), 'auc': metrics.auc_3dhp(grouped),
            'mpjpe': float(np.mean(np.where(np.isinf(errors), np.nan, errors)))}


def evaluate(items, predictions_cam, groups=GROUPS14):
    gt = np.stack([it['gt_cam'] for it in items])
    pred = np.stack([predictions_cam[it['image_path']] for it in items])
    root = tdhp.TEST_ROOT_INDEX
    # a NaN predicted joint is a miss for PCK/AUC (and makes the MPJPE NaN), as in the official script
    errors = metrics.joint_distances(metrics.root_relative(pred, root), metrics.root_relative(gt, root),
                                     nan_prediction_is_miss=True)
    sequences = np.array([it['sequence'] for it in items])
    activities = np.array([it['activity'] for it in items])
    results = {'all': scores(errors, groups)}
    results['per_sequence'] = {s: scores(errors[sequences == s], groups) for s in tdhp.TEST_SEQUENCES
                               if np.any(sequences == s)}
    results['per_scene'] = {}
    for scene, members in tdhp.SCENES.items():
        parts = [results['per_sequence'][s] for s in members if s in results['per_sequence']]
        n = sum(p['n'] for p in parts)
        results['per_scene'][scene] = {'n': n, **{k: sum(p[k] * p['n'] for p in parts) / n
                                                  for k in ('pck150', 'auc', 'mpjpe')}}
    results['per_activity'] = {tdhp.ACTIVITY_NAMES[a - 1]: scores(errors[activities == a], groups)
                               for a in range(1, 8) if np.any(activities == a)}
    return results


def _to_camera_frame(root, items, predictions, key):
    if key == 'coords3d_pred_cam':
        return predictions
    cameras = {s: tdhp.test_camera(root, s) for s in tdhp.TEST_SEQUENCES}
    return {it['image_path']: cameras[it['sequence']].world_to_camera(predictions[it['image_path']])
            for it in items}


def main(argv=None):
    from posepile.paths import data_root
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pred-path', required=True)
    parser.add_argument('--metric-gt', action='store_true', help='score against annot3 instead of univ_annot3')
    parser.add_argument('--groups17', action='store_true', help='the unmodified official 17-joint groups')
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    root = data_root() / 'tdhp'
    gt_key = 'annot3' if args.metric_gt else 'univ_annot3'
    items = test_items(root, gt_key)
    arrays = read_prediction_arrays(args.pred_path)
    key = 'coords3d_pred_cam' if 'coords3d_pred_cam' in arrays else 'coords3d_pred_world'
    predictions = load_predictions(args.pred_path, [it['image_path'] for it in items], 17, coord_key=key,
                                   normalize_path=_normalize_path, allow_nan=True,
                                   arrays=arrays)
    n_with_nan = sum(bool(np.isnan(p).any()) for p in predictions.values())
    if n_with_nan:
        logger.warning('%d predictions have NaN joints: they count as misses in PCK/AUC and make the MPJPE '
                       'NaN, as in the official script', n_with_nan)
    predictions = _to_camera_frame(root, items, predictions, key)
    groups = GROUPS17 if args.groups17 else GROUPS14
    results = evaluate(items, predictions, groups)
    variant = (f'GT {gt_key}, PCK/AUC over {"17 joints (official groups)" if args.groups17 else "14 joints"}'
               f', MPJPE over 17 joints, root-relative at the pelvis')
    results['variant'] = variant
    columns = ['subset', 'frames', 'PCK@150', 'AUC', 'MPJPE']
    rows = [(s, r['n'], r['pck150'], r['auc'], r['mpjpe']) for s, r in results['per_sequence'].items()]
    rows += [(s, r['n'], r['pck150'], r['auc'], r['mpjpe']) for s, r in results['per_scene'].items()]
    rows += [(a, r['n'], r['pck150'], r['auc'], r['mpjpe']) for a, r in results['per_activity'].items()]
    rows.append(('All', results['all']['n'], results['all']['pck150'], results['all']['auc'],
                 results['all']['mpjpe']))
    report.print_table(f'MPI-INF-3DHP test set ({variant})', rows, columns)
    if args.out:
        report.write_json(args.out, results)
    return results


if __name__ == '__main__':
    import sys

    from posepile.util.errors import run_cli
    logging.basicConfig(level=logging.INFO)
    sys.exit(run_cli(main, prog=f'python -m {__spec__.name}'))
