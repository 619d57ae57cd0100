"""The paper's scale, measured: synthetic BUILT datasets of the huge8 sources (annotations only) pushed
through `posepile status`, dataset open + iteration, the plausibility bone statistics, the annotation-only
mix build, random training reads through the PyTorch adapter and `posepile verify`.

    python bench/bench_scale.py [--total 13000000] [--sources huge8] [--out DIR] [--reads 100000]
                                [--image-reads 20000] [--workers 2] [--keep]

Data: the 28 training sources of huge8 plus its two validation entries (posepile.merging.mixes.MIXES['huge8']),
each with its declared skeleton (posepile.registry.joint_info), N examples in total split by the crop counts
of the original's recipes where known (original-posepile-facts.md: AIST 5 280 681, Panoptic 2 782 985, HUMBI
1 271 076, MoVi 562 691, BMHAD 527 458, MuCo 200 000, H36M 173 252, UMPM 166 833, Fit3D 147 314, ASPset
124 221, RICH 96 146, CHI3D 71 847, HumanSC3D 46 231), the rest of the 13 M proportional to the mix shares.
Every example: a perturbed per-source template pose (mm; a few % NaN joints in the detector-matched sources,
0.3 % glitched bones, 0.3 % boxes off the person), a per-example crop camera (256 px), a box, a COCO RLE
mask of a jagged person silhouette (~0.5 kB, as DeepLab masks of 256 px crops), SMPL parameters for the
body-model sources, and a unique image path `bench_images/<source>_downscaled/seqNNNNN/NNNNNN.jpg` that
resolves (symlinks) to a handful of shared 256 px JPEGs. Written with posepile.storage.annotations.save_dataset
into DIR/data/cache.

Random reads, 2 DataLoader workers, uniformly over all examples of the mix's source shards: `archive_reads`
(the Barecat reader's examples: key table, SQLite lookup, shard read, msgpack decode: what every loader pays),
`annotation_reads` (posepile.storage.torch items without the image: the same plus the crop camera and the
projected joints), `image_reads` (the items with the 256 px image: JPEG decode and perspective warp).

Each step runs in its own process; reported: wall time, peak RSS of the step's largest process (its VmHWM, sampled every 0.1 s),
peak RSS summed over the process tree (sampled every 0.1 s; DataLoader workers included) and the disk of
what the step wrote. Results: DIR/results.json (appended per run) and a table on stdout.
"""
import argparse
import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np

logger = logging.getLogger('bench_scale')

REPO = Path(__file__).resolve().parent.parent
SEED_TOTAL = 13_000_000
# Crops of the original's recipes (original-posepile-facts.md, "expected crop counts"; MuCo: muco_3dhp_200k)
KNOWN_COUNTS = {
    'aist': 5_280_681, 'panoptic': 2_782_985, 'humbi': 1_271_076, 'bml_movi': 562_691, 'bmhad': 527_458,
    'muco': 200_000, 'h36m_alljoints': 173_252, 'umpm': 166_833, 'fit3d': 147_314, 'aspset': 124_221,
    'rich_body': 96_146, 'chi3d': 71_847, 'humansc3d': 46_231,
    'tdhp': 2_929, 'mupots': 20_899,  # test sets (3DHP test frames, MuPoTS annotated people)
}
NAN_JOINT_RATE = {'panoptic': 0.08, 'aist': 0.02, 'jta': 0.1, 'tdoh': 0.05, 'sailvos': 0.05, 'umpm': 0.03,
                  'humbi': 0.05, 'gpa': 0.02}
WITH_PARAMETERS = {'surreal', 'agora', 'behave', 'rich_body', 'spec', 'humbi'}
FRAMES_PER_SEQUENCE = 1000
CROP_SIDE = 256
N_SHARED_JPEGS = 8
CHUNK = 4096


# ------------------------------------------------------------------------------------------------------
# Which sources, how many examples
def source_entries(mix_name):
    from posepile.merging import mixes
    return mixes.get_mix(mix_name)


def source_counts(mix_name, total):
    """{dataset: examples} summing to about `total`: known crop counts scaled, the rest by mix share."""
    entries = source_entries(mix_name)
    known = {e.dataset: KNOWN_COUNTS[e.dataset] for e in entries if e.dataset in KNOWN_COUNTS}
    rest = [e for e in entries if e.dataset not in KNOWN_COUNTS]
    remaining = max(SEED_TOTAL - sum(known.values()), 0)
    shares = sum(e.share for e in rest) or 1
    seed = {**known, **{e.dataset: remaining * e.share / shares for e in rest}}
    scale = total / sum(seed.values())
    return {e.dataset: max(1, int(round(seed[e.dataset] * scale))) for e in entries}


def source_joint_info(dataset):
    from posepile import registry
    from posepile.merging import mixes
    if dataset in ('tdhp', 'mupots'):
        return mixes.muco_joint_info()  # the mix reads their MuCo-28 conversion
    return registry.joint_info(dataset)


# ------------------------------------------------------------------------------------------------------
# Synthetic examples
def _silhouette_masks(n, rng):
    """COCO RLEs of jagged person-like silhouettes in a 256 px crop."""
    from posepile.util import masks
    result = []
    yy, xx = np.mgrid[:CROP_SIDE, :CROP_SIDE]
    for _ in range(n):
        phase = rng.uniform(0, 6.3, 2)  # a wavy outline, as a segmentation network's
        jitter = 3 * np.sin(yy[:, :1] / 7 + phase[0]) + 2 * np.sin(yy[:, :1] / 3.1 + phase[1])
        body = ((xx - 128 + jitter) / rng.uniform(35, 60)) ** 2 + ((yy - 140) / rng.uniform(90, 110)) ** 2 < 1
        head = ((xx - 128) ** 2 + (yy - 40) ** 2) < rng.uniform(18, 24) ** 2
        arms = (np.abs(yy - 95 - 0.3 * (xx - 128) + jitter) < 9) & (np.abs(xx - 128) < rng.uniform(70, 100))
        legs = (np.abs(np.abs(xx - 128 + jitter) - 25) < 12) & (yy > 180)
        result.append(masks.encode((body | head | arms | legs).astype(np.uint8)))
    return result


class SyntheticExamples:
    """A re-iterable, generator-backed example list of one split of one source (nothing held in memory)."""

    def __init__(self, dataset, joint_info, start, count, seed, masks_):
        self.dataset = dataset
        self.joint_info = joint_info
        self.start = start
        self.count = count
        self.seed = seed
        self.masks = masks_
        rng = np.random.default_rng(zlib.crc32(dataset.encode()))
        n_joints = joint_info.n_joints
        # a body-sized template pose (mm), y down, the pelvis at the origin
        self.template = np.stack([rng.uniform(-350, 350, n_joints), rng.uniform(-900, 900, n_joints),
                                  rng.uniform(-150, 150, n_joints)], axis=1)
        self.nan_rate = NAN_JOINT_RATE.get(dataset, 0.0)
        self.with_parameters = dataset in WITH_PARAMETERS

    def __len__(self):
        return self.count

    def __iter__(self):
        from posepile.datasets3d import Pose3DExample
        from posepile.util.camera import Camera
        n_joints = self.joint_info.n_joints
        for chunk_start in range(0, self.count, CHUNK):
            n = min(CHUNK, self.count - chunk_start)
            rng = np.random.default_rng([self.seed, chunk_start])
            depth = rng.uniform(2500, 7000, n)
            lateral = rng.uniform(-2000, 2000, n)
            coords = (self.template[None] + rng.normal(0, 25, (n, n_joints, 3))
                      + np.stack([lateral, np.zeros(n), depth], axis=1)[:, None])
            glitch = rng.random(n) < 0.003
            coords[glitch, rng.integers(0, n_joints, glitch.sum())] += 3000
            if self.nan_rate:
                coords[rng.random((n, n_joints)) < self.nan_rate] = np.nan
            focal = 200 * depth / 1800
            center = np.nanmean(coords, axis=1)
            cx = CROP_SIDE / 2 - focal * center[:, 0] / center[:, 2]
            cy = CROP_SIDE / 2 - focal * center[:, 1] / center[:, 2]
            u = focal[:, None] * coords[..., 0] / coords[..., 2] + cx[:, None]
            v = focal[:, None] * coords[..., 1] / coords[..., 2] + cy[:, None]
            x0, x1 = np.nanmin(u, axis=1), np.nanmax(u, axis=1)
            y0, y1 = np.nanmin(v, axis=1), np.nanmax(v, axis=1)
            boxes = np.stack([x0 - 0.05 * (x1 - x0), y0 - 0.05 * (y1 - y0), 1.1 * (x1 - x0), 1.1 * (y1 - y0)], 1)
            off = rng.random(n) < 0.003
            boxes[off, 0] += 2000
            angles = rng.uniform(-0.2, 0.2, n)
            mask_ids = rng.integers(0, len(self.masks), n)
            pose = rng.normal(0, 0.3, (n, 72)).astype(np.float32)
            shape = rng.normal(0, 1, (n, 10)).astype(np.float32)
            activities = rng.integers(0, 12, n)
            for k in range(n):
                i = self.start + chunk_start + k
                c, s = math.cos(angles[k]), math.sin(angles[k])
                camera = Camera(np.zeros(3), np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]]),
                                np.array([[focal[k], 0, cx[k]], [0, focal[k], cy[k]], [0, 0, 1]]),
                                world_up=(0, -1, 0))
                # world coordinates such that R @ X_world = the camera-frame coordinates generated above
                world = coords[k] @ camera.R
                parameters = None
                if self.with_parameters:
                    parameters = {'type': 'smpl', 'gender': 'neutral', 'pose': pose[k], 'shape': shape[k],
                                  'trans': (center[k] / 1000).astype(np.float32)}
                yield Pose3DExample(
                    f'bench_images/{self.dataset}_downscaled/seq{i // FRAMES_PER_SEQUENCE:05d}/'
                    f'{i % FRAMES_PER_SEQUENCE:06d}.jpg', world, boxes[k], camera,
                    activity_name=f'activity{activities[k]}', scene_name=f'scene{i // 50000}',
                    mask=self.masks[mask_ids[k]], parameters=parameters)


def write_sources(mix_name, total, data_root):
    """Write the synthetic built datasets into data_root/cache; returns {dataset: count}."""
    from posepile.datasets3d import TEST, TRAIN, VALID, Pose3DDataset, cache_path
    from posepile.storage import annotations
    counts = source_counts(mix_name, total)
    masks_ = _silhouette_masks(64, np.random.default_rng(0))
    _write_images(data_root, counts)
    for entry in source_entries(mix_name):
        name, n = entry.dataset, counts[entry.dataset]
        path = cache_path(name)
        if path.exists() and annotations.describe(path)['counts'] == _split_counts(entry, n):
            continue
        ji = source_joint_info(name)
        split_n = _split_counts(entry, n)
        dataset = Pose3DDataset(ji, compute_bone_lengths=False)
        start = 0
        for split, key in ((TRAIN, 'train'), (VALID, 'valid'), (TEST, 'test')):
            dataset.examples[split] = SyntheticExamples(name, ji, start, split_n[key], seed=split, masks_=masks_)
            start += split_n[key]
        t0 = time.time()
        annotations.save_dataset(dataset, path)
        logger.info('wrote %s: %d examples, %d joints (%.0f s)', name, n, ji.n_joints, time.time() - t0)
    return counts


def _split_counts(entry, n):
    from posepile.datasets3d import TEST, VALID
    takes = {take for take, _ in entry.splits}
    if takes == {TEST}:
        return {'train': 0, 'valid': 0, 'test': n}
    if VALID in takes:
        n_valid = n // 10
        return {'train': n - n_valid, 'valid': n_valid, 'test': 0}
    return {'train': n, 'valid': 0, 'test': 0}


def _write_images(data_root, counts):
    """bench_images/_frames/NNNNNN.jpg: hard links to a few shared JPEGs; every sequence folder a symlink to it."""
    root = Path(data_root) / 'bench_images'
    frames = root / '_frames'
    if not (frames / f'{FRAMES_PER_SEQUENCE - 1:06d}.jpg').exists():
        frames.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        shared = []
        for j in range(N_SHARED_JPEGS):
            image = (rng.random((CROP_SIDE, CROP_SIDE, 3)) * 60 + 40 * j).astype(np.uint8)
            path = frames / f'shared{j}.jpg'
            _cv2_write(image, path)
            shared.append(path)
        for i in range(FRAMES_PER_SEQUENCE):
            link = frames / f'{i:06d}.jpg'
            if not link.exists():
                os.link(shared[i % N_SHARED_JPEGS], link)
    for dataset, n in counts.items():
        folder = root / f'{dataset}_downscaled'
        folder.mkdir(parents=True, exist_ok=True)
        for seq in range(math.ceil(n / FRAMES_PER_SEQUENCE)):
            link = folder / f'seq{seq:05d}'
            if not link.is_symlink():
                link.symlink_to('../_frames', target_is_directory=True)


def _cv2_write(image, path):
    import cv2
    cv2.imwrite(str(path), image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])


# ------------------------------------------------------------------------------------------------------
# Steps (each runs in its own process: `bench_scale.py --step NAME ...`)
def step_iterate(args):
    from posepile.datasets3d import get_dataset
    t0 = time.time()
    dataset = get_dataset(args.source)
    opened = time.time() - t0
    n = 0
    for example in dataset.iter_examples():
        n += 1
    return {'examples': n, 'open_s': opened}


def step_bones(args):
    from posepile.datasets3d import get_dataset
    dataset = get_dataset(args.source)
    dataset.update_bones()
    return {'examples': sum(len(v) for v in dataset.examples.values()),
            'finite_bones': int(np.isfinite(dataset.train_bones).sum())}


def step_reads(args, load_images):
    import torch
    from torch.utils.data import ConcatDataset, DataLoader, RandomSampler
    from posepile.storage.torch import TorchPoseDataset
    sources = sorted(p for p in (Path(args.mix) / 'sources').iterdir() if (p / 'mix_source.json').exists())
    parts = [TorchPoseDataset(p, load_images=load_images) for p in sources]
    parts = [p for p in parts if len(p)]
    dataset = ConcatDataset(parts)
    n_reads = args.image_reads if load_images else args.reads
    sampler = RandomSampler(dataset, replacement=True, num_samples=n_reads,
                            generator=torch.Generator().manual_seed(0))
    loader = DataLoader(dataset, batch_size=64, sampler=sampler, num_workers=args.workers,
                        persistent_workers=False)
    t0 = time.time()
    n = 0
    for batch in loader:
        n += len(batch['coords2d'])
    elapsed = time.time() - t0
    return {'examples': n, 'examples_per_s': n / elapsed, 'mix_examples': len(dataset)}


class _ArchiveExamples:
    """The mix's examples as the Barecat reader returns them (index lookup, read, msgpack decode, example
    object): what any training loader does before its augmentation."""

    def __init__(self, mix):
        from posepile.storage.barecat_store import BarecatDataset
        sources = sorted(p for p in (Path(mix) / 'sources').iterdir() if (p / 'mix_source.json').exists())
        self.stores = [BarecatDataset(p, load_images=False) for p in sources]
        self.ends = np.cumsum([len(s.examples[0]) for s in self.stores])

    def __len__(self):
        return int(self.ends[-1])

    def __getitem__(self, index):
        i = int(np.searchsorted(self.ends, index, side='right'))
        start = int(self.ends[i - 1]) if i else 0
        example = self.stores[i].examples[0][index - start]
        return int(np.isfinite(example.world_coords).all(axis=1).sum())


def step_archive_reads(args):
    import torch
    from torch.utils.data import DataLoader, RandomSampler
    dataset = _ArchiveExamples(args.mix)
    sampler = RandomSampler(dataset, replacement=True, num_samples=args.reads,
                            generator=torch.Generator().manual_seed(0))
    loader = DataLoader(dataset, batch_size=64, sampler=sampler, num_workers=args.workers)
    t0 = time.time()
    n = sum(len(batch) for batch in loader)
    elapsed = time.time() - t0
    return {'examples': n, 'examples_per_s': n / elapsed, 'mix_examples': len(dataset)}


def step_verify(args):
    from posepile.storage.barecat_store import verify
    sources = sorted(p for p in (Path(args.mix) / 'sources').iterdir() if (p / 'mix_source.json').exists())
    problems = []
    for source in sources:
        problems += verify(source, decode_images=False)
    return {'shards': len(sources), 'problems': len(problems), 'first_problem': problems[:1]}


STEPS = {'iterate': step_iterate, 'bones': step_bones, 'archive_reads': step_archive_reads,
         'annotation_reads': lambda a: step_reads(a, False), 'image_reads': lambda a: step_reads(a, True),
         'verify': step_verify}


# ------------------------------------------------------------------------------------------------------
# Measuring
def measure(name, command, env, out_path=None, result_file=None):
    """Run `command`; wall time, the child's ru_maxrss, the tree's sampled peak RSS, disk of out_path."""
    import psutil
    t0 = time.time()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_tree = [0]
    peak_anon = [0]  # the largest RssAnon seen (kB): memory that is not a mapped file's page cache
    high_water = {}  # pid -> VmHWM (kB): the process's own peak RSS since its exec (ru_maxrss of a forked
    done = threading.Event()  # child would include the parent's pages at fork time)

    def sample():
        try:
            parent = psutil.Process(process.pid)
        except psutil.Error:
            return
        while not done.is_set():
            try:
                tree = [parent] + parent.children(recursive=True)
                peak_tree[0] = max(peak_tree[0], sum(p.memory_info().rss for p in tree))
                for p in tree:
                    hwm_kb, anon_kb = _vm_hwm_kb(p.pid, with_anon=True)
                    high_water[p.pid] = max(high_water.get(p.pid, 0), hwm_kb)
                    peak_anon[0] = max(peak_anon[0], anon_kb)
            except psutil.Error:
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout_chunks, stderr_chunks = [], []
    readers = [threading.Thread(target=lambda: stdout_chunks.append(process.stdout.read())),
               threading.Thread(target=lambda: stderr_chunks.append(process.stderr.read()))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(process.pid, 0)  # CPU times of the step and its waited-for children
    process.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join()
    done.set()
    elapsed = time.time() - t0
    row = {'step': name, 'seconds': round(elapsed, 2), 'cpu_s': round(usage.ru_utime + usage.ru_stime, 2), 'peak_rss_mb': round(max(high_water.values(), default=0) / 1024, 1),
           'peak_tree_rss_mb': round(peak_tree[0] / 2 ** 20, 1), 'peak_anon_mb': round(peak_anon[0] / 1024, 1), 'exit': process.returncode}
    if out_path is not None:
        row['disk_mb'] = round(disk_bytes(out_path) / 2 ** 20, 1)
    if result_file is not None and Path(result_file).exists():
        row.update(json.loads(Path(result_file).read_text()))
    if process.returncode != 0:
        row['error'] = (''.join(stderr_chunks).strip().splitlines() or ['?'])[-1][:300]
    return row


def _vm_hwm_kb(pid, with_anon=False):
    """VmHWM (kB) of a process: its peak resident set since exec; with_anon: also its current RssAnon."""
    values = {}
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith(('VmHWM:', 'RssAnon:')):
                    values[line.split(':')[0]] = int(line.split()[1])
    except OSError:
        pass
    if with_anon:
        return values.get('VmHWM', 0), values.get('RssAnon', 0)
    return values.get('VmHWM', 0)


def disk_bytes(path):
    path = Path(path)
    if path.is_file():
        return path.stat().st_blocks * 512
    total = 0
    for root, dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def rerun_steps(args):
    """Run only the steps named in --only on an earlier run's data and mix; replace their rows in its report."""
    out = Path(args.out).resolve()
    history = out / 'results.json'
    runs = json.loads(history.read_text())
    report = runs[-1]
    data_root = out / 'data'
    env = {**os.environ, 'DATA_ROOT': str(data_root), 'POSEPILE_CACHE_DIR': str(data_root / 'cache'),
           'PYTHONPATH': str(REPO)}
    result = out / 'step_result.json'
    for name in args.only:
        result.unlink(missing_ok=True)
        command = [sys.executable, str(Path(__file__).resolve()), '--step', name, '--out', str(out), '--result',
                   str(result), '--source', report['largest_source'], '--mix', str(out / f'mix_{report["mix"]}'),
                   '--reads', str(args.reads), '--image-reads', str(args.image_reads), '--workers', str(args.workers)]
        row = measure(name, command, env, None, result)
        report['rows'] = [row if r['step'] == name else r for r in report['rows']]
    report['rerun'] = {'steps': args.only, 'time': time.strftime('%Y-%m-%d %H:%M:%S'), 'loadavg': os.getloadavg()}
    history.write_text(json.dumps(runs, indent=1))
    print(format_rows(report))


def run(args):
    out = Path(args.out).resolve()
    data_root = out / 'data'
    data_root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, 'DATA_ROOT': str(data_root), 'POSEPILE_CACHE_DIR': str(data_root / 'cache'),
           'PYTHONPATH': str(REPO)}
    os.environ.update(DATA_ROOT=env['DATA_ROOT'], POSEPILE_CACHE_DIR=env['POSEPILE_CACHE_DIR'])
    load = os.getloadavg()
    t0 = time.time()
    counts = write_sources(args.sources, args.total, data_root)
    largest = max(counts, key=counts.get)
    rows = [{'step': 'write sources (save_dataset)', 'seconds': round(time.time() - t0, 2),
             'cpu_s': round(time.process_time(), 2), 'peak_rss_mb': round(_vm_hwm_kb(os.getpid()) / 1024, 1),
             'disk_mb': round(disk_bytes(data_root / 'cache') / 2 ** 20, 1)}]
    python = sys.executable
    me = str(Path(__file__).resolve())
    mix_dir = out / f'mix_{args.sources}'
    result = out / 'step_result.json'

    def step(name, extra=(), out_path=None):
        logger.info('step %s', name)
        result.unlink(missing_ok=True)
        command = [python, me, '--step', name, '--out', str(out), '--result', str(result), '--source', largest,
                   '--mix', str(mix_dir), '--reads', str(args.reads), '--image-reads', str(args.image_reads),
                   '--workers', str(args.workers), *extra]
        return measure(name, command, env, out_path, result)

    rows.append(measure('posepile status', [python, '-m', 'posepile.cli', 'status'], env))
    rows.append({**step('iterate'), 'source': largest, 'source_examples': counts[largest]})
    rows.append({**step('bones'), 'source': largest})
    if mix_dir.exists() and not args.keep:
        import shutil
        shutil.rmtree(mix_dir)
    rows.append(measure(f'posepile mix build {args.sources} --annotations-only',
                        [python, '-m', 'posepile.cli', 'mix', 'build', args.sources, str(mix_dir),
                         '--annotations-only', '--workers', str(args.workers)], env, out_path=mix_dir))
    rows[-1]['sqlite_index_mb'] = round(sum(disk_bytes(p) for p in mix_dir.glob('sources/*/*-sqlite-index'))
                                        / 2 ** 20, 1)
    if args.reads:
        rows.append(step('archive_reads'))
        rows.append(step('annotation_reads'))
    if args.image_reads:
        rows.append(step('image_reads'))
    rows.append(step('verify'))
    report = {'total': sum(counts.values()), 'requested_total': args.total, 'mix': args.sources,
              'largest_source': largest, 'counts': counts, 'loadavg_before': load,
              'loadavg_after': os.getloadavg(), 'cpus': os.cpu_count(), 'rows': rows,
              'cache_disk_mb': rows[0]['disk_mb'], 'time': time.strftime('%Y-%m-%d %H:%M:%S')}
    history = out / 'results.json'
    previous = json.loads(history.read_text()) if history.exists() else []
    history.write_text(json.dumps(previous + [report], indent=1))
    print(format_rows(report))
    return report


def format_rows(report):
    lines = [f'{report["total"]} examples ({report["mix"]}; largest source {report["largest_source"]}: '
             f'{report["counts"][report["largest_source"]]}); load average before {report["loadavg_before"][0]:.1f}, '
             f'after {report["loadavg_after"][0]:.1f}',
             f'{"step":<44} {"s":>8} {"CPU s":>8} {"RSS MB":>8} {"anon MB":>8} {"tree MB":>8} {"disk MB":>9}  notes']
    for row in report['rows']:
        notes = {k: v for k, v in row.items()
                 if k not in ('step', 'seconds', 'cpu_s', 'peak_rss_mb', 'peak_tree_rss_mb', 'disk_mb', 'exit',
                              'peak_anon_mb')}
        lines.append(f'{row["step"]:<44} {row.get("seconds", ""):>8} {row.get("cpu_s", ""):>8} '
                     f'{row.get("peak_rss_mb", ""):>8} {row.get("peak_anon_mb", ""):>8} '
                     f'{row.get("peak_tree_rss_mb", ""):>8} {row.get("disk_mb", ""):>9}  '
                     + ' '.join(f'{k}={v:.0f}' if isinstance(v, float) else f'{k}={v}' for k, v in notes.items()))
    return '\n'.join(lines)


def summarize(result_dirs, target=SEED_TOTAL):
    """Markdown: per step and size wall s / CPU s / peak RSS MB / disk MB, the exponent of CPU time between
    consecutive sizes, and a linear fit (fixed + per-example CPU cost) extrapolated to `target` examples."""
    reports = []
    for d in result_dirs:
        runs = json.loads((Path(d) / 'results.json').read_text())
        report = dict(runs[-1])
        # a rerun finds the sources written: their writing is measured by the first run in that folder
        report['rows'] = [runs[0]['rows'][0]] + runs[-1]['rows'][1:]
        reports.append(report)
    reports.sort(key=lambda r: r['total'])
    steps = [row['step'] for row in reports[-1]['rows']]
    sizes = [r['total'] for r in reports]
    lines = ['| step | ' + ' | '.join(f'{n:,} ex.: wall s / CPU s / RSS MB (anon) / disk MB' for n in sizes)
             + ' | CPU exponent | fit: fixed s + µs/ex. | at 13 M (CPU s, RSS MB) |',
             '|' + '---|' * (len(sizes) + 4)]
    for step in steps:
        rows = [next((x for x in r['rows'] if x['step'] == step), {}) for r in reports]
        cells = [f'{x.get("seconds", "-")} / {x.get("cpu_s", "-")} / {x.get("peak_rss_mb", "-")} '
                 f'({x.get("peak_anon_mb", "-")}) / {x.get("disk_mb", "-")}' for x in rows]
        cpu = [x.get('cpu_s') for x in rows]
        rss = [x.get('peak_rss_mb') for x in rows]
        exponents = [f'{math.log(c2 / c1) / math.log(n2 / n1):.2f}' if c1 and c2 else '-'
                     for (n1, c1), (n2, c2) in zip(zip(sizes, cpu), zip(sizes[1:], cpu[1:]))]
        fit, at_target = '-', '-'
        if all(cpu) and len(sizes) >= 2 and 'reads' not in step:
            slope, intercept = np.polyfit(sizes, cpu, 1)
            rss_slope, rss_intercept = np.polyfit(sizes, rss, 1) if all(rss) else (0, 0)
            fit = f'{intercept:.1f} + {slope * 1e6:.1f}'
            at_target = f'{intercept + slope * target:.0f} s, {rss_intercept + rss_slope * target:.0f} MB'
        lines.append(f'| {step} | ' + ' | '.join(cells) + f' | {", ".join(exponents)} | {fit} | {at_target} |')
    notes = [f'{r["total"]:,} examples: load average {r["loadavg_before"][0]:.1f} before, {r["loadavg_after"][0]:.1f} '
             f'after ({r["cpus"]} CPUs); {r["time"]}' for r in reports]
    return '\n'.join(lines + [''] + notes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--total', type=int, default=SEED_TOTAL, help='examples in all sources together')
    parser.add_argument('--sources', default='huge8', help='the mix whose sources are written and built')
    parser.add_argument('--out', default='/tmp/posepile_bench_scale')
    parser.add_argument('--reads', type=int, default=100_000, help='random annotation reads (0: skip)')
    parser.add_argument('--image-reads', type=int, default=20_000, help='random reads with the image (0: skip)')
    parser.add_argument('--workers', type=int, default=2, help='DataLoader workers and mix build processes')
    parser.add_argument('--keep', action='store_true', help='reuse an existing mix build (resume)')
    parser.add_argument('--only', nargs='+', choices=sorted(STEPS), help='rerun these steps on an earlier --out')
    parser.add_argument('--summarize', nargs='+', metavar='OUT', help='markdown table of earlier runs (their --out)')
    parser.add_argument('--step', choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument('--source', help=argparse.SUPPRESS)
    parser.add_argument('--mix', help=argparse.SUPPRESS)
    parser.add_argument('--result', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    if args.summarize:
        print(summarize(args.summarize))
        return 0
    if args.step:
        result = STEPS[args.step](args)
        Path(args.result).write_text(json.dumps(result))
        return 0
    if args.only:
        rerun_steps(args)
        return 0
    run(args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
