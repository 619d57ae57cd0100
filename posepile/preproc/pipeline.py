"""Driver for sharded, resumable crop stages.

A crop stage takes tasks `(key, example, new_image_relpath)`, sorted by key. With `--shard i/n` (or a Slurm
array task) only every n-th task from i is handled. Each shard writes ONE result file, atomically and only
after all its crops exist; a rerun skips finished shards and, inside an unfinished shard, crops whose JPEG
is already complete (so killing a stage and rerunning it gives byte-identical outputs).
"""
import functools
import logging
from pathlib import Path

from posepile.util import fileio

logger = logging.getLogger(__name__)

RESULT_PATTERN = 'crops_shard-{:04d}-of-{:04d}.pkl'


def _crop_one(task, crop_options, data_root):
    from posepile.preproc.cropping import limit_threads_for_worker, make_efficient_example
    limit_threads_for_worker()
    key, example, relpath = task
    try:
        return key, make_efficient_example(example, relpath, data_root=data_root, **crop_options)
    except FileNotFoundError:
        raise
    except Exception as e:  # add the task key to whatever went wrong, keep the type for callers
        raise type(e)(f'crop task {key!r} ({relpath}): {e}') from e


def run_crop_stage(tasks, out_dir, shard=None, n_workers=None, data_root=None, **crop_options):
    """Crop this shard's tasks; returns the shard's result path. `crop_options` go to make_efficient_example.

    Result file: pickle list of (key, cropped example), in task order.
    """
    from posepile.util.parallel import parallel_map, parse_shard, shard_items
    if data_root is None:
        from posepile.paths import data_root as get_data_root
        data_root = get_data_root()
    index, count = parse_shard(shard)
    out_path = Path(out_dir) / RESULT_PATTERN.format(index, count)
    if out_path.exists():
        logger.info('%s exists: shard already finished', out_path)
        return out_path
    keys = [task[0] for task in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError('crop task keys must be unique')
    my_tasks = shard_items(sorted(tasks, key=lambda task: task[0]), index, count)
    worker = functools.partial(_crop_one, crop_options=crop_options, data_root=str(data_root))
    results = parallel_map(worker, my_tasks, n_workers=n_workers, desc=f'crops {index + 1}/{count}')
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    fileio.save_pickle(results, out_path)
    return out_path


def load_crop_results(out_dir, expected_shards=None):
    """All cropped examples of a crop stage, ordered by key: list of (key, example).

    Raises FileNotFoundError naming the missing shards when a shard has not finished.
    """
    out_dir = Path(out_dir)
    paths = sorted(out_dir.glob('crops_shard-*-of-*.pkl'))
    if not paths:
        raise FileNotFoundError(f'no crop results in {out_dir}: run the crop stage first')
    counts = {int(p.stem.split('-of-')[1]) for p in paths}
    if len(counts) != 1:
        raise ValueError(f'{out_dir} mixes results of different shard counts {sorted(counts)}: '
                         'delete the stale ones')
    count = counts.pop()
    if expected_shards is not None and count != expected_shards:
        raise ValueError(f'{out_dir}: results are for {count} shards, expected {expected_shards}')
    missing = [i for i in range(count) if not (out_dir / RESULT_PATTERN.format(i, count)).exists()]
    if missing:
        raise FileNotFoundError(f'{out_dir}: crop shards {missing} of {count} have not finished')
    results = []
    for path in paths:
        results.extend(fileio.load_pickle(path))
    return sorted(results, key=lambda item: item[0])
