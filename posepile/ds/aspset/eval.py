"""ASPset-510 benchmark, following the official evaluator (anibali/aspset-510 evaluation.py).

For every (subject, clip, camera) of the chosen split (default: test), every 5th frame of the 50 fps mocap
(10 fps) for the test split, every frame otherwise; 17 joints in the camera's frame, mm. Reported, pooled
over all frames: MPJPE (absolute), root-relative MPJPE (pelvis), PA-MPJPE (similarity Procrustes), and
PCK@150 (<=) in the same three variants.

Procrustes: by default exactly as the official evaluator (posekit's point_set_registration): the scale is
taken from all singular values before the reflection is removed, which differs from the least-squares
scale for poses whose best orthogonal fit is a reflection (e.g. mirrored predictions).
`--least-squares-scale` uses the least-squares similarity scale instead (as VideoPose3D and 3DPW do).

    python -m posepile.ds.aspset.eval --pred-path preds.npz [--split test|val|train] [--least-squares-scale]
        [--out r.json]

Predictions: .npz with `image_path` (`aspset/test/frames/<subj>/<subj>-<clip>-<cam>/frame_%06d.jpg`, the
index being the 50 fps mocap frame) and `coords3d_pred_cam` (N, 17, 3) mm in that camera's frame, or
`coords3d_pred_world` (the mocap world frame). Not covered: the official `--univ` rescaling.
"""
import argparse
import logging
import re
from pathlib import Path

import numpy as np

from posepile.ds.aspset import main as aspset
from posepile.eval import metrics, report
from posepile.eval.predictions import load_predictions, read_prediction_arrays


def _normalize_path(path):
    return re.sub(r'^aspset_downscaled/', 'aspset/', path.replace('\\', '/'))


def ground_truth(root, split='test'):
    """List of dicts (image_path, clip key, gt_cam (17, 3) mm, camera)."""
    items = []
    step = aspset.TEST_FRAME_STEP if split == 'test' else 1
    for subject, clip, row_split, cameras in aspset.load_splits(root):
        if row_split != split:
            continue
        mocap = aspset.load_mocap(Path(root) / aspset.split_folder(split) / 'joints_3d' / subject /
                                  f'{subject}-{clip}.c3d')
        for camera_name in cameras:
            camera = aspset.load_camera(Path(root) / aspset.split_folder(split) / 'cameras' / subject /
                                        f'{subject}-{camera_name}.json')
            for i in range(0, len(mocap), step):
                items.append(dict(image_path=aspset.frame_relpath(split, subject, clip, camera_name, i),
                                  clip=f'{subject}-{clip}-{camera_name}', camera=camera,
                                  gt_cam=camera.world_to_camera(mocap[i])))
    return items


def evaluate(items, predictions_cam, least_squares_scale=False):
    gt = np.stack([it['gt_cam'] for it in items])
    pred = np.stack([predictions_cam[it['image_path']] for it in items])
    root = aspset.ROOT_INDEX
    gt_rel, pred_rel = metrics.root_relative(gt, root), metrics.root_relative(pred, root)
    variants = {'absolute': metrics.joint_distances(pred, gt),
                'root_relative': metrics.joint_distances(pred_rel, gt_rel),
                'procrustes': metrics.joint_distances(metrics.procrustes_align(
                    pred_rel, gt_rel, scale_before_reflection_fix=not least_squares_scale), gt_rel)}
    results = {'n_frames': len(items)}
    for name, d in variants.items():
        results[name] = {'mpjpe': float(np.mean(d)), 'pck150': float(metrics.pck(d, 150, inclusive=True))}
    return results


def main(argv=None):
    from posepile.paths import data_root
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pred-path', required=True)
    parser.add_argument('--split', default='test', choices=['train', 'val', 'test'])
    parser.add_argument('--least-squares-scale', action='store_true',
                        help='Procrustes with the least-squares scale instead of the official evaluator\'s '
                             '(which takes the scale before removing a reflection; differs for mirrored poses)')
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    items = ground_truth(data_root() / 'aspset', args.split)
    arrays = read_prediction_arrays(args.pred_path)
    key = 'coords3d_pred_cam' if 'coords3d_pred_cam' in arrays else 'coords3d_pred_world'
    predictions = load_predictions(args.pred_path, [it['image_path'] for it in items], 17, coord_key=key,
                                   normalize_path=_normalize_path, arrays=arrays)
    if key == 'coords3d_pred_world':
        predictions = {it['image_path']: it['camera'].world_to_camera(predictions[it['image_path']])
                       for it in items}
    results = evaluate(items, predictions, args.least_squares_scale)
    results['split'] = args.split
    results['procrustes_scale'] = 'least squares' if args.least_squares_scale else 'official (posekit)'

    rows = [(name.replace('_', '-'), results[name]['mpjpe'], results[name]['pck150'])
            for name in ('absolute', 'root_relative', 'procrustes')]
    report.print_table(f'ASPset-510 {args.split} split ({results["n_frames"]} frames'
                       f'{", 10 fps" if args.split == "test" else ""}; Procrustes scale: '
                       f'{results["procrustes_scale"]})', rows, ['variant', 'MPJPE', 'PCK@150'])
    if args.out:
        report.write_json(args.out, results)
    return results


if __name__ == '__main__':
    import sys

    from posepile.util.errors import run_cli
    logging.basicConfig(level=logging.INFO)
    sys.exit(run_cli(main, prog=f'python -m {__spec__.name}'))
