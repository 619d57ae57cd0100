"""3DOH50K test set: MPJPE and PA-MPJPE over the 14 LSP joints, root = midpoint of the hips.

Ground truth: testset/annots.json, `lsp_joints_3d` multiplied by 1000/7 (mm), camera frame.

    python -m posepile.ds.tdoh.eval --pred-path preds.npz [--out r.json]

Predictions: .npz with `image_path` (`tdoh/testset/images/<id>.jpg`) and `coords3d_pred_cam` (N, 14, 3) mm.
"""
import argparse
import logging
import re

import numpy as np

from posepile.ds.tdoh import main as tdoh
from posepile.eval import metrics, report
from posepile.eval.predictions import load_predictions


def _normalize_path(path):
    return re.sub(r'^tdoh_downscaled/', 'tdoh/', path.replace('\\', '/'))


def hip_centred(coords):
    coords = np.asarray(coords, np.float64)
    return coords - coords[..., list(tdoh.HIP_INDICES), :].mean(axis=-2, keepdims=True)


def evaluate(gt, pred):
    gt_rel, pred_rel = hip_centred(gt), hip_centred(pred)
    return {'n': len(gt), 'mpjpe_mm': float(np.mean(metrics.joint_distances(pred_rel, gt_rel))),
            'pa_mpjpe_mm': float(np.mean(metrics.pa_mpjpe(pred_rel, gt_rel)))}


def main(argv=None):
    from posepile.paths import data_root
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pred-path', required=True)
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    annotations = tdoh.load_annotations(data_root() / 'tdoh' / 'testset' / 'annots.json')
    ids = sorted(annotations)
    paths = [tdoh.image_relpath('testset', i) for i in ids]
    predictions = load_predictions(args.pred_path, paths, 14, coord_key='coords3d_pred_cam',
                                   normalize_path=_normalize_path)
    results = evaluate(np.stack([annotations[i]['joints_mm'] for i in ids]), np.stack([predictions[p] for p in paths]))
    report.print_table('3DOH50K test set (14 joints, hip-centred, mm)',
                       [('all', results['n'], results['mpjpe_mm'], results['pa_mpjpe_mm'])],
                       ['subset', 'n', 'MPJPE', 'PA-MPJPE'])
    if args.out:
        report.write_json(args.out, results)
    return results


if __name__ == '__main__':
    import sys

    from posepile.util.errors import run_cli
    logging.basicConfig(level=logging.INFO)
    sys.exit(run_cli(main, prog=f'python -m {__spec__.name}'))
