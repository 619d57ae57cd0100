"""Human3.6M benchmark: MPJPE and PA-MPJPE of 3D pose predictions on the test subjects.

Protocol (PosePile/MeTRAbs convention, the default): subjects S9 and S11, all 4 cameras, every 64th frame
(0, 64, ...), the 17 standard joints, world coordinates made root-relative at the pelvis. MPJPE is the
mean over all test poses (pose-weighted); PA-MPJPE aligns each pose by a similarity transform (proper
rotation). Also printed: per-activity means for the 15 activities and their unweighted average (the
"action-wise average" of VideoPose3D), labelled as such.

    python -m posepile.ds.h36m.eval --pred-path preds.npz [--only-S11] [--out results.json]

Predictions: .npz with `image_path` (the test frames' paths, `h36m/S9/Images/<action>.<camera>/
frame_<i:06d>.jpg`, as listed by posepile.ds.h36m.main.test_poses; `h36m_downscaled/...` crop paths are
accepted too) and `coords3d_pred_world` (N, 17 or 25, 3) in mm.
"""
import argparse
import logging
import re

import numpy as np

from posepile.ds.h36m import main as h36m
from posepile.eval import metrics, report
from posepile.eval.predictions import load_predictions


def _normalize_path(path):
    return re.sub(r'^h36m_downscaled/', 'h36m/', path.replace('\\', '/'))


def evaluate(items, predictions):
    """items: from h36m.test_poses; predictions: {image_path: (17, 3) mm world}. Returns the results dict."""
    gt = np.stack([it['world_coords'] for it in items]).astype(np.float64)
    pred = np.stack([predictions[it['image_path']] for it in items]).astype(np.float64)
    gt_rel = metrics.root_relative(gt, 0)
    pred_rel = metrics.root_relative(pred, 0)
    errors = {'mpjpe': np.mean(metrics.mpjpe(pred_rel, gt_rel), axis=1),
              'pa_mpjpe': np.mean(metrics.pa_mpjpe(pred_rel, gt_rel), axis=1)}
    activities = np.array([it['activity'] for it in items])
    per_activity = {}
    for activity in h36m.ACTIVITIES:
        selected = activities == activity
        if np.any(selected):
            per_activity[activity] = {'n': int(selected.sum()),
                                      **{k: float(np.mean(v[selected])) for k, v in errors.items()}}
    results = {
        'protocol': 'H36M S9+S11 (PosePile/MeTRAbs): every 64th frame, 4 cameras, 17 joints, root-relative',
        'n': len(items),
        'mpjpe_mm': float(np.mean(errors['mpjpe'])),
        'pa_mpjpe_mm': float(np.mean(errors['pa_mpjpe'])),
        'actionwise_mpjpe_mm': float(np.mean([a['mpjpe'] for a in per_activity.values()])),
        'actionwise_pa_mpjpe_mm': float(np.mean([a['pa_mpjpe'] for a in per_activity.values()])),
        'per_activity': per_activity,
    }
    return results


def main(argv=None):
    from posepile.paths import data_root
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pred-path', required=True)
    parser.add_argument('--only-S11', action='store_true', help='test on S11 only (Sun et al. protocol 1)')
    parser.add_argument('--frame-step', type=int, default=h36m.TEST_FRAME_STEP)
    parser.add_argument('--out', default=None, help='also write the results as JSON')
    args = parser.parse_args(argv)
    subjects = ('S11',) if args.only_S11 else h36m.TEST_SUBJECTS
    items = h36m.test_poses(data_root() / 'h36m', subjects, args.frame_step)
    predictions = load_predictions(args.pred_path, [it['image_path'] for it in items], (17, 25),
                                   coord_key='coords3d_pred_world', normalize_path=_normalize_path)
    predictions = {k: (v[h36m.JOINTS17_OF_25] if len(v) == 25 else v) for k, v in predictions.items()}
    results = evaluate(items, predictions)
    results['subjects'] = list(subjects)
    results['frame_step'] = args.frame_step
    rows = [(a, r['n'], r['mpjpe'], r['pa_mpjpe']) for a, r in results['per_activity'].items()]
    rows.append(('All (mean over poses)', results['n'], results['mpjpe_mm'], results['pa_mpjpe_mm']))
    rows.append(('Action-wise average', len(results['per_activity']), results['actionwise_mpjpe_mm'],
                 results['actionwise_pa_mpjpe_mm']))
    title = (f'Human3.6M {"+".join(subjects)}, every {args.frame_step}th frame, 4 cameras, 17 joints, '
             f'root-relative (mm)')
    report.print_table(title, rows, ['activity', 'n', 'MPJPE', 'PA-MPJPE'])
    if args.out:
        report.write_json(args.out, results)
    return results


if __name__ == '__main__':
    import sys

    from posepile.util.errors import run_cli
    logging.basicConfig(level=logging.INFO)
    sys.exit(run_cli(main, prog=f'python -m {__spec__.name}'))
