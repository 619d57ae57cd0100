"""Evaluate 3D pose predictions on the demo test set.

Protocol (the common single-person 3D protocol applied to the demo): per test example, predicted and true
world coordinates (mm) are made root-relative at the pelvis; reported are MPJPE (mm), PA-MPJPE (mm,
after a similarity Procrustes alignment per example), PCK (% of joints within 150 mm) and AUC (% , PCK
averaged over the thresholds 0, 5, ..., 150 mm as in MPI-INF-3DHP), overall and per camera.

    python -m posepile.ds.demo.eval --pred-path preds.npz [--out-json results.json]

The predictions file is an .npz with `image_path` (N,) and `coords3d_pred_world` (N, 17, 3) in mm (or
`coords3d_pred_cam` in the example's camera frame).
"""
import argparse
import logging

import numpy as np

from posepile.datasets3d import TEST, get_dataset
from posepile.eval import metrics, report
from posepile.eval.predictions import load_predictions

ROOT_JOINT = 'pelv'


def evaluate(dataset, predictions):
    """Metrics dict (overall and per camera) for `predictions` {image_path: (J, 3) world mm}."""
    examples = dataset.examples[TEST]
    root = dataset.joint_info.ids[ROOT_JOINT]
    gt = np.stack([ex.world_coords for ex in examples]).astype(np.float64)
    pred = np.stack([predictions[ex.image_path] for ex in examples]).astype(np.float64)
    gt_rel = gt - gt[:, root:root + 1]
    pred_rel = pred - pred[:, root:root + 1]
    dists = metrics.mpjpe(pred_rel, gt_rel)
    pa_dists = metrics.mpjpe(metrics.procrustes_align(pred_rel, gt_rel, scale=True), gt_rel)
    cameras = np.array([ex.scene_name for ex in examples])

    def summarize(selector):
        return {'n': int(selector.sum()),
                'mpjpe_mm': float(np.nanmean(dists[selector])),
                'pa_mpjpe_mm': float(np.nanmean(pa_dists[selector])),
                'pck150': float(metrics.pck(dists[selector], 150)),
                'auc': float(metrics.auc_3dhp(dists[selector]))}

    results = summarize(np.ones(len(examples), bool))
    results['per_camera'] = {name: summarize(cameras == name) for name in sorted(set(cameras))}
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pred-path', required=True)
    parser.add_argument('--out-json', default=None)
    args = parser.parse_args(argv)
    dataset = get_dataset('demo')
    examples = dataset.examples[TEST]
    predictions = load_predictions(args.pred_path, [ex.image_path for ex in examples],
                                   dataset.joint_info.n_joints, cameras=[ex.camera for ex in examples])
    results = evaluate(dataset, predictions)
    columns = ['n', 'mpjpe_mm', 'pa_mpjpe_mm', 'pck150', 'auc']
    rows = [('all', *[results[c] for c in columns])]
    rows += [(name, *[r[c] for c in columns]) for name, r in results['per_camera'].items()]
    report.print_table('Demo test set (root-relative at the pelvis)', rows, ['subset', *columns])
    if args.out_json:
        report.write_json(args.out_json, results)
    return results


if __name__ == '__main__':
    import sys

    from posepile.util.errors import run_cli
    logging.basicConfig(level=logging.INFO)
    sys.exit(run_cli(main, prog=f'python -m {__spec__.name}'))
