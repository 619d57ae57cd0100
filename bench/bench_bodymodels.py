"""Speed of posepile.bodymodels on one core: parameter sets per second, joints only and with vertices.

A toy model with SMPL's real sizes (6890 vertices, 24 joints with SMPL's kinematic tree, 10 betas, 207 pose blend
shapes, random arrays; 4 non-zero skinning weights per vertex stored densely as in the official files), written to a
temporary folder as SMPL_NEUTRAL.pkl and read back with posepile.bodymodels.load. Random poses (0.3 rad per axis).

    python bench/bench_bodymodels.py [--sets 100000] [--vertex-sets 2000]
"""
import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'NUMBA_NUM_THREADS'):
    os.environ[_var] = '1'  # before numpy is imported: one core

import argparse  # noqa: E402
import pickle  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


def write_smpl_sized_model(folder, seed=0):
    rng = np.random.default_rng(seed)
    n_vertices, n_joints = 6890, 24
    v_template = rng.normal(0, 0.3, (n_vertices, 3))
    weights = np.zeros((n_vertices, n_joints))
    for v in range(n_vertices):
        weights[v, rng.choice(n_joints, 4, replace=False)] = rng.dirichlet(np.ones(4))
    regressor = rng.random((n_joints, n_vertices)) * (rng.random((n_joints, n_vertices)) < 0.01)
    regressor /= regressor.sum(1, keepdims=True)
    model = {'v_template': v_template, 'shapedirs': rng.normal(0, 0.01, (n_vertices, 3, 10)),
             'posedirs': rng.normal(0, 0.01, (n_vertices, 3, 207)), 'J_regressor': regressor, 'weights': weights,
             'kintree_table': np.array([[2 ** 32 - 1] + SMPL_PARENTS[1:], range(n_joints)], np.int64),
             'f': rng.integers(0, n_vertices, (13776, 3)).astype(np.uint32)}
    with open(Path(folder) / 'SMPL_NEUTRAL.pkl', 'wb') as f:
        pickle.dump(model, f, protocol=2)


def rate(function, n_sets, repeats=3):
    best = min(_timed(function) for _ in range(repeats))
    return n_sets / best, best


def _timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--sets', type=int, default=100_000)
    parser.add_argument('--vertex-sets', type=int, default=2000)
    args = parser.parse_args()
    from posepile import bodymodels

    with tempfile.TemporaryDirectory() as folder:
        write_smpl_sized_model(folder)
        start = time.perf_counter()
        model = bodymodels.load('smpl', 'neutral', folder)
        load_seconds = time.perf_counter() - start
    rng = np.random.default_rng(1)
    pose = rng.normal(0, 0.3, (args.sets, 72))
    betas = rng.normal(0, 1, (args.sets, 10))
    trans = rng.normal(0, 1, (args.sets, 3))
    print(f'{model!r}, loaded in {load_seconds:.2f} s')
    per_second, seconds = rate(lambda: model(pose, betas, trans, return_vertices=False), args.sets)
    print(f'joints only: {args.sets} parameter sets in {seconds:.2f} s = {per_second:,.0f} sets/s')
    k = args.vertex_sets
    per_second, seconds = rate(lambda: model(pose[:k], betas[:k], trans[:k]), k)
    print(f'with vertices: {k} parameter sets in {seconds:.2f} s = {per_second:,.0f} sets/s')


if __name__ == '__main__':
    main()
