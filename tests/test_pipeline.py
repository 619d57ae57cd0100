"""Stages are resumable: killing a crop stage halfway and rerunning it gives byte-identical outputs."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from posepile.preproc.pipeline import load_crop_results
from posepile.util import parallel

REPO = Path(__file__).resolve().parent.parent
N_TASKS = 24


def _run(data_root, *extra, wait=True):
    cmd = [sys.executable, '-m', 'tests.crop_stage_job', str(data_root), str(N_TASKS), *extra]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    if wait:
        subprocess.run(cmd, cwd=REPO, check=True, env=env, capture_output=True)
        return None
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _tree_bytes(root):
    """Every file's bytes, except temp files a SIGKILL may orphan (hidden '.name.XXXX.tmp', never read), with
    the crop results compared by content (their input fingerprints hold the source files' mtimes, which
    differ between two separately generated trees)."""
    import pickle
    files = {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob('*'))
             if p.is_file() and not (p.name.startswith('.') and p.name.endswith('.tmp'))
             and p.parent.name != 'results'}
    if (Path(root) / 'results').exists():
        files['results'] = pickle.dumps(load_crop_results(Path(root) / 'results'))
    return files


def test_sigkill_halfway_then_rerun_is_byte_identical(tmp_path):
    reference, interrupted = tmp_path / 'reference', tmp_path / 'interrupted'
    _run(reference)
    process = _run(interrupted, wait=False)
    deadline = time.time() + 120
    while time.time() < deadline:
        crops = list((interrupted / 'crops').glob('*.jpg')) if (interrupted / 'crops').exists() else []
        if len(crops) >= N_TASKS // 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    n_done = len(list((interrupted / 'crops').glob('*.jpg')))
    assert 0 < n_done < N_TASKS, f'kill came too late or too early ({n_done} crops)'
    assert not (interrupted / 'results').exists() or not list((interrupted / 'results').glob('*.pkl'))
    _run(interrupted)
    assert _tree_bytes(interrupted) == _tree_bytes(reference)
    results = load_crop_results(interrupted / 'results')
    assert [key for key, _ in results] == [f'{i:04d}' for i in range(N_TASKS)]


def test_shards_cover_all_tasks_and_missing_shards_are_named(tmp_path):
    _run(tmp_path, '0/3')
    with pytest.raises(FileNotFoundError, match=r'\[1, 2\]'):
        load_crop_results(tmp_path / 'results')
    _run(tmp_path, '1/3')
    _run(tmp_path, '2/3')
    results = load_crop_results(tmp_path / 'results')
    assert len(results) == N_TASKS
    assert len(list((tmp_path / 'crops').glob('*.jpg'))) == N_TASKS


def test_parse_shard_and_slurm_environment(monkeypatch):
    monkeypatch.delenv('SLURM_ARRAY_TASK_ID', raising=False)
    assert parallel.parse_shard() == (0, 1)
    assert parallel.parse_shard('2/5') == (2, 5)
    for bad in ('5/5', '-1/3', 'x', '1/0'):
        with pytest.raises(ValueError):
            parallel.parse_shard(bad)
    monkeypatch.setenv('SLURM_ARRAY_TASK_ID', '3')
    monkeypatch.setenv('SLURM_ARRAY_TASK_COUNT', '4')
    assert parallel.parse_shard() == (3, 4)
    monkeypatch.setenv('SLURM_ARRAY_TASK_MIN', '1')
    monkeypatch.setenv('SLURM_ARRAY_TASK_ID', '4')
    assert parallel.parse_shard() == (3, 4)


def test_shard_items_partition_and_parallel_map_order():
    items = list(range(23))
    shards = [parallel.shard_items(items, i, 4) for i in range(4)]
    assert sorted(x for s in shards for x in s) == items
    assert parallel.parallel_map(abs, [-3, 1, -2, 5, -8], n_workers=2) == [3, 1, 2, 5, 8]
    assert parallel.parallel_map(abs, [-1], n_workers=0) == [1]


def test_a_changed_source_image_is_cropped_again_and_only_it(tmp_path):
    import numpy as np

    from posepile.datasets3d import Pose3DExample
    from posepile.preproc.pipeline import run_crop_stage
    from posepile.util import improc
    from posepile.util.camera import Camera
    camera = Camera(intrinsic_matrix=[[200, 0, 99.5], [0, 200, 79.5], [0, 0, 1]], world_up=(0, -1, 0))
    tasks = []
    for i in range(3):
        improc.write_jpeg_atomic(tmp_path / 'src' / f'{i}.jpg', np.full((160, 200, 3), 50 + 10 * i, np.uint8))
        example = Pose3DExample(f'src/{i}.jpg', np.zeros((2, 3)) + [0, 0, 3000], [60, 30, 80, 100], camera)
        tasks.append((f'{i}', example, f'crops/{i}.jpg'))
    run_crop_stage(tasks, tmp_path / 'results', n_workers=1, data_root=tmp_path)
    mtimes = {i: (tmp_path / 'crops' / f'{i}.jpg').stat().st_mtime_ns for i in range(3)}
    time.sleep(0.01)
    improc.write_jpeg_atomic(tmp_path / 'src' / '1.jpg', np.full((160, 200, 3), 200, np.uint8))  # fixed input
    run_crop_stage(tasks, tmp_path / 'results', n_workers=1, data_root=tmp_path)
    assert improc.imread_rgb(tmp_path / 'crops' / '1.jpg').mean() > 150
    assert [(tmp_path / 'crops' / f'{i}.jpg').stat().st_mtime_ns == mtimes[i] for i in range(3)] == \
        [True, False, True]
    # changed options redo the shard; unchanged inputs skip it entirely
    run_crop_stage(tasks, tmp_path / 'results', n_workers=1, data_root=tmp_path)
    assert (tmp_path / 'crops' / '0.jpg').stat().st_mtime_ns == mtimes[0]
    run_crop_stage(tasks, tmp_path / 'results', n_workers=1, data_root=tmp_path, horizontal_flip=True)
    assert (tmp_path / 'crops' / '0.jpg').stat().st_mtime_ns != mtimes[0]
