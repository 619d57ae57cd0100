"""Parallel execution: shard selection for job arrays and an ordered local process pool."""
import multiprocessing
import os
import re
import threading

_SHARD_RE = re.compile(r'^\s*(\d+)\s*/\s*(\d+)\s*$')


def parse_shard(spec=None):
    """(index, count) from 'i/n' (0-based i). Without a spec, a Slurm array task's
    SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT are used when set, else (0, 1)."""
    if spec is None:
        task_id = os.environ.get('SLURM_ARRAY_TASK_ID')
        if task_id is None:
            return 0, 1
        count = os.environ.get('SLURM_ARRAY_TASK_COUNT')
        if count is None:
            raise ValueError('SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not')
        spec = f'{int(task_id) - int(os.environ.get("SLURM_ARRAY_TASK_MIN", 0))}/{count}'
    if isinstance(spec, tuple):
        index, count = spec
    else:
        match = _SHARD_RE.match(str(spec))
        if not match:
            raise ValueError(f'shard must look like "i/n" (e.g. "0/4"), got {spec!r}')
        index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 0 <= index < count:
        raise ValueError(f'shard index must be in [0, {count}) and count >= 1, got {index}/{count}')
    return index, count


def shard_items(items, index, count):
    """The shard's share of a list the caller sorted: items[index::count] (every item in exactly one)."""
    return list(items)[index::count]


def add_shard_argument(parser):
    parser.add_argument(
        '--shard', default=None,
        help='process only shard i of n ("i/n", 0-based); default: the Slurm array task, else all')


def default_n_workers():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _init_worker():
    import cv2
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm
    cv2.setNumThreads(1)
    threadpool_limits(1)  # one BLAS thread per worker process: the workers already fill the cores
    # A tqdm made in a worker (even a disabled one) would create tqdm's multiprocessing lock, a named
    # semaphore; the pool terminates its workers without running their exit handlers, so the resource
    # tracker would report it as leaked after our last line. A thread lock is all a worker needs.
    tqdm.set_lock(threading.RLock())


def parallel_map(fn, items, n_workers=None, desc=None, chunksize=1):
    """[fn(x) for x in items] with a local process pool (spawn start method: safe with OpenCV/threads).

    n_workers 0 or 1 runs in this process. Results keep the input order. Shows a tqdm progress bar.
    """
    from tqdm import tqdm
    items = list(items)
    if n_workers is None:
        n_workers = int(os.environ.get('POSEPILE_WORKERS', default_n_workers()))
    n_workers = min(n_workers, len(items))
    if n_workers <= 1:
        return [fn(item) for item in tqdm(items, desc=desc, mininterval=2, disable=None)]
    context = multiprocessing.get_context('spawn')
    # tqdm would otherwise create a multiprocessing lock (a named semaphore) that the spawn resource
    # tracker reports as leaked at exit; the bar is only updated from this process anyway.
    tqdm.set_lock(threading.RLock())
    with context.Pool(n_workers, initializer=_init_worker) as pool:
        return list(tqdm(pool.imap(fn, items, chunksize=chunksize), total=len(items), desc=desc,
                         mininterval=2, disable=None))
