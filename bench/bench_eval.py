"""Scoring speed: 100k poses x 17 joints through root-relative MPJPE, PA-MPJPE, PCK@150 and both AUCs.

    python bench/bench_eval.py [--n 100000]
"""
import argparse
import time

import numpy as np

from posepile.eval import metrics


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--n', type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    gt = rng.normal(0, 300, (args.n, 17, 3))
    pred = gt + rng.normal(0, 40, gt.shape)
    start = time.perf_counter()
    gt_rel, pred_rel = metrics.root_relative(gt, 0), metrics.root_relative(pred, 0)
    d = metrics.mpjpe(pred_rel, gt_rel)
    pa = metrics.pa_mpjpe(pred_rel, gt_rel)
    scores = (np.mean(d), np.mean(pa), metrics.pck(d, 150), metrics.auc_3dhp(d), metrics.auc_continuous(d, 150),
              metrics.auc_3dpw(d))
    seconds = time.perf_counter() - start
    print(f'{args.n} poses scored in {seconds:.3f} s ({args.n / seconds / 1e6:.2f} M poses/s): '
          f'MPJPE {scores[0]:.1f}, PA {scores[1]:.1f}, PCK {scores[2]:.1f}, AUC {scores[3]:.1f}')


if __name__ == '__main__':
    main()
