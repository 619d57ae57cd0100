"""Training-time access: random reads from a Barecat export vs the same crops as files, and the memory
of a Barecat loader over 1M examples.

    python bench/bench_barecat.py [--n-images 20000] [--n-annotations 1000000] [--reads 20000]
                                  [--schema original|posepile]

Both read paths return the JPEG bytes of a random crop (decoding costs the same either way and is left
out); the file read includes open/close, the Barecat read an index lookup in its SQLite index plus one
pread from the shard. Page cache is warm for both (as in training after the first epoch). The memory
check opens the 1M-example annotation archive with posepile's reader, decodes 20k random examples and
reports the process's peak RSS. --schema picks the export layout (default: the original PosePile layout,
whose reader maps example i to its key through the key table; 'posepile': the older numbered keys).
"""
import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_dataset(root, n, with_images):
    from posepile.datasets3d import Pose3DDataset, Pose3DExample
    from posepile.joint_info import JointInfo
    from posepile.util import improc
    from posepile.util.camera import Camera
    rng = np.random.default_rng(0)
    camera = Camera(intrinsic_matrix=[[500, 0, 127.5], [0, 500, 127.5], [0, 0, 1]], world_up=(0, -1, 0))
    ji = JointInfo('pelv,rhip,rkne,rank,lhip,lkne,lank,spin,neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri',
                   'htop-head-neck-spin-pelv-lhip-lkne-lank,pelv-rhip-rkne-rank,neck-lsho-lelb-lwri,neck-rsho-relb-rwri')
    jpeg = None
    examples = []
    for i in range(n):
        relpath = f'crops/{i // 1000:04d}/{i:07d}.jpg'
        if with_images:
            if i < 64 or jpeg is None:
                small = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
                import cv2
                jpeg = improc.encode_jpeg(cv2.resize(small, (256, 256), interpolation=cv2.INTER_CUBIC), 95)
            path = Path(root) / relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(jpeg)
        coords = rng.normal(0, 300, (17, 3)).astype(np.float32) + [0, 0, 4000]
        examples.append(Pose3DExample(relpath, coords, [60, 40, 130, 170], camera))
    return Pose3DDataset(ji, examples)


def random_reads(root, export_dir, n, n_reads):
    from posepile.storage.barecat_store import _reader
    random.seed(0)
    indices = [random.randrange(n) for _ in range(n_reads)]
    paths = [f'crops/{i // 1000:04d}/{i:07d}.jpg' for i in indices]
    start = time.perf_counter()
    total = 0
    for p in paths:
        with open(Path(root) / p, 'rb') as f:
            total += len(f.read())
    files_rate = n_reads / (time.perf_counter() - start)
    reader = _reader(Path(export_dir) / 'images.barecat')
    for p in paths[:100]:
        reader[p]
    start = time.perf_counter()
    for p in paths:
        total += len(reader[p])
    barecat_rate = n_reads / (time.perf_counter() - start)
    return files_rate, barecat_rate


def memory_child(export_dir, n):
    from posepile.storage.barecat_store import BarecatDataset
    start = time.perf_counter()
    dataset = BarecatDataset(export_dir, load_images=False)
    examples = dataset.examples[0]
    assert len(examples) == n
    rng = random.Random(0)
    for _ in range(20000):
        assert examples[rng.randrange(n)].world_coords.shape == (17, 3)
    seconds = time.perf_counter() - start
    # VmHWM, not ru_maxrss: after fork+exec ru_maxrss still counts the parent's size at the fork
    status = dict(line.split(':', 1) for line in open('/proc/self/status')
                  if line.startswith(('RssAnon', 'RssFile', 'VmHWM')))
    rss_mib = int(status['VmHWM'].split()[0]) / 1024
    anon_mib = int(status['RssAnon'].split()[0]) / 1024
    file_mib = int(status['RssFile'].split()[0]) / 1024
    print(f'{rss_mib:.0f} {seconds:.2f} {anon_mib:.0f} {file_mib:.0f}')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--n-images', type=int, default=20000)
    parser.add_argument('--n-annotations', type=int, default=1_000_000)
    parser.add_argument('--reads', type=int, default=20000)
    parser.add_argument('--schema', choices=['original', 'posepile'], default='original')
    parser.add_argument('--memory-child', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return
    from posepile.storage.barecat_store import export_dataset
    with tempfile.TemporaryDirectory(dir=os.environ.get('BENCH_TMP')) as tmp:
        dataset = make_dataset(tmp, args.n_images, with_images=True)
        export_dataset(dataset, Path(tmp) / 'export', image_root=tmp, schema=args.schema)
        files_rate, barecat_rate = random_reads(tmp, Path(tmp) / 'export', args.n_images, args.reads)
        print(f'{args.schema} layout')
        print(f'random reads of 256x256 JPEG crops ({args.n_images} crops, {args.reads} reads, warm cache):')
        print(f'  files in folders: {files_rate:9.0f} reads/s')
        print(f'  Barecat:          {barecat_rate:9.0f} reads/s  ({barecat_rate / files_rate:.2f}x the files; '
              f'target >= 10000/s and faster than files)')

        start = time.perf_counter()
        big = make_dataset(tmp, args.n_annotations, with_images=False)
        built = time.perf_counter() - start
        start = time.perf_counter()
        export_dataset(big, Path(tmp) / 'big', include_images=False, schema=args.schema)
        exported = time.perf_counter() - start
        del big
        out = subprocess.run([sys.executable, __file__, '--memory-child', str(Path(tmp) / 'big'),
                              str(args.n_annotations)], capture_output=True, text=True, check=True).stdout.split()
        print(f'{args.n_annotations} annotations: built in {built:.0f} s, exported in {exported:.0f} s; a fresh '
              f'process opening them and decoding 20000 random examples in {out[1]} s: peak RSS {out[0]} MiB, '
              f'of which private (anonymous) {out[2]} MiB and file-backed pages (the memory-mapped archive and '
              f'its index, shared and reclaimable page cache) {out[3]} MiB')


if __name__ == '__main__':
    main()
