"""Driver for sharded, resumable crop stages.

A crop stage takes tasks `(key, example, new_image_relpath)`, sorted by key. With `--shard i/n` (or a Slurm
array task) only every n-th task from i is handled. Each shard writes ONE result file, atomically and only
after all its crops exist; a rerun skips finished shards and, inside an unfinished shard, crops whose JPEG
is already complete (so killing a stage and rerunning it gives byte-identical outputs).
"""
import functools
import logging
from pathlib import Path

import numpy as np

from posepile.util import fileio

logger = logging.getLogger(__name__)

RESULT_PATTERN = 'crops_shard-{:04d}-of-{:04d}.pkl'


def skip_broken_default(skip_broken=None):
    """An explicit value, else the SKIP_BROKEN=1 environment setting that every main.sh passes through."""
    import os
    return bool(skip_broken) if skip_broken is not None else os.environ.get('SKIP_BROKEN', '0') == '1'


def _crop_one(job, crop_options, data_root, skip_broken=False):
    from posepile.preproc.cropping import CropError, limit_threads_for_worker, make_efficient_example
    from posepile.util.errors import InputError
    limit_threads_for_worker()
    (key, example, relpath), reuse_existing = job
    try:
        return key, make_efficient_example(example, relpath, data_root=data_root, skip_existing=reuse_existing,
                                           **crop_options)
    except (InputError, CropError, OSError) as e:
        if skip_broken:  # reported and left out; the fingerprint retries it once its input changes
            return key, None, f'crop task {key!r} ({relpath}): {e}'
        if isinstance(e, FileNotFoundError):
            raise
        raise type(e)(f'crop task {key!r} ({relpath}): {e}') from e
    except Exception as e:  # add the task key to whatever went wrong, keep the type for callers
        raise type(e)(f'crop task {key!r} ({relpath}): {e}') from e


def task_fingerprint(task, data_root, crop_options):
    """What a crop depends on: the example's annotations, the crop path and options, and the source
    image file's size and mtime (an in-memory image by its pixels)."""
    from posepile.util import image_sources
    from posepile.util.fingerprint import digest, file_stamp
    key, example, relpath = task
    source = example.image if example.image is not None else example.image_path
    if isinstance(source, (np.ndarray, bytes)):
        stamp = digest(source)
    elif image_sources.is_member_path(source):  # '<zip or HDF5>::<member>': the container's stamp
        stamp = image_sources.source_stamp(source, data_root)
    else:
        path = Path(source)
        stamp = file_stamp(path if path.is_absolute() else Path(data_root) / path)
    return digest(key, relpath, crop_options, example, stamp)


def run_crop_stage(tasks, out_dir, shard=None, n_workers=None, data_root=None, skip_broken=None, **crop_options):
    """Crop this shard's tasks; returns the shard's result path. `crop_options` go to make_efficient_example.

    Result file: pickle {'results': [(key, cropped example)] in task order, 'fingerprints': {key: hex}}.
    A finished shard whose fingerprints all match is skipped; otherwise the shard is redone, rendering again
    exactly the crops whose inputs changed (or that a killed run started from other inputs).
    A broken input (truncated image, box outside the image, missing file) fails the stage naming the task and
    file, or with skip_broken (default: $SKIP_BROKEN == 1) is left out and listed in the result's 'skipped'.
    """
    from posepile.util.parallel import parallel_map, parse_shard, shard_items
    if data_root is None:
        from posepile.paths import data_root as get_data_root
        data_root = get_data_root()
    index, count = parse_shard(shard)
    out_path = Path(out_dir) / RESULT_PATTERN.format(index, count)
    keys = [task[0] for task in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError('crop task keys must be unique')
    my_tasks = shard_items(sorted(tasks, key=lambda task: task[0]), index, count)
    fingerprints = {task[0]: task_fingerprint(task, data_root, crop_options) for task in my_tasks}
    previous = {}
    if out_path.exists():
        try:
            stored = fileio.load_pickle(out_path)
            previous = stored.get('fingerprints', {}) if isinstance(stored, dict) else {}
        except ValueError as e:
            logger.warning('%s is unreadable (%s): redoing the shard', out_path, e)
        if previous == fingerprints:
            logger.info('%s exists: shard already finished', out_path)
            return out_path
        logger.info('%s: inputs or options of %d crops changed: redoing them', out_path,
                    sum(previous.get(k) != fp for k, fp in fingerprints.items()))
    started_path = out_path.with_name(out_path.name + '.started')
    if started_path.exists():
        try:
            started = fileio.load_pickle(started_path)
        except ValueError:
            started = {}
        previous = previous or started
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    fileio.save_pickle(fingerprints, started_path)
    jobs = [(task, previous.get(task[0]) == fingerprints[task[0]]) for task in my_tasks]
    skip_broken = skip_broken_default(skip_broken)
    worker = functools.partial(_crop_one, crop_options=crop_options, data_root=str(data_root),
                               skip_broken=skip_broken)
    outcomes = parallel_map(worker, jobs, n_workers=n_workers, desc=f'crops {index + 1}/{count}')
    results = [o for o in outcomes if len(o) == 2]
    skipped = [o[2] for o in outcomes if len(o) == 3]
    for message in skipped:
        logger.warning('skipped (--skip-broken): %s', message)
    for key, _, _ in (o for o in outcomes if len(o) == 3):
        fingerprints[key] = 'broken:' + fingerprints[key]  # retried when rerun (never matches)
    fileio.save_pickle({'results': results, 'fingerprints': fingerprints, 'skipped': skipped}, out_path)
    started_path.unlink(missing_ok=True)
    return out_path


def load_crop_results(out_dir, expected_shards=None):
    """All cropped examples of a crop stage, ordered by key: list of (key, example).

    Raises FileNotFoundError naming the missing shards when a shard has not finished. Reads the results of
    a one-pass video stage (posepile.preproc.video_stage) as well.
    """
    from posepile.preproc import video_stage
    out_dir = Path(out_dir)
    if video_stage.is_video_stage_dir(out_dir):
        return video_stage.load_video_stage_results(out_dir)
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
        stored = fileio.load_pickle(path)
        results.extend(stored['results'] if isinstance(stored, dict) else stored)
    return sorted(results, key=lambda item: item[0])


# ------------------------------------------------------------------------------------------------
# What every dataset recipe shares: its folders, its crop stage, its splits and its stage command line
def raw_root(name, data_root=None):
    """$DATA_ROOT/<name>: where the raw release of dataset `name` lives."""
    from posepile.paths import data_root as get_data_root
    return Path(data_root or get_data_root()) / name


def work_dir(name, data_root=None):
    """$DATA_ROOT/<name>/posepile_work: the recipe's stage outputs."""
    return raw_root(name, data_root) / 'posepile_work'


def dataset_crop_stage(name, tasks, shard=None, n_workers=None, data_root=None, subdir='crops', skip_broken=None,
                       **crop_options):
    """The crop stage of dataset `name` (results in posepile_work/<subdir>, image paths relative to DATA_ROOT)."""
    return run_crop_stage(tasks, work_dir(name, data_root) / subdir, shard=shard, n_workers=n_workers,
                          data_root=raw_root(name, data_root).parent, skip_broken=skip_broken, **crop_options)


SKIP_BROKEN_OPTION = ('--skip-broken', dict(
    action='store_true', default=None,
    help='skip broken or missing inputs (reported and listed) instead of failing; default: $SKIP_BROKEN == 1'))
KEEP_FRAMES_OPTION = ('--keep-frames', dict(
    action='store_true', help='also write the selected full frames as JPEGs (inspection, external detectors)'))
DETECTOR_OPTION = ('--detector', dict(
    dest='detector_spec', default=None,
    help='person detector spec (hog, darknet:CFG,WEIGHTS, onnx:MODEL, tf:DIR); default $POSEPILE_DETECTOR'))


def configured_detector(detector_spec=None):
    """The person detector a stage should use: the explicit spec, else $POSEPILE_DETECTOR, else None (no
    detection: boxes from the ground truth)."""
    import os
    return detector_spec or os.environ.get('POSEPILE_DETECTOR') or None


def boxes_from_detections(people, detections, box_rule):
    """The detection association of the image-crop recipes, by the video stage's BoxRule (one rule for both).

    people: per person (image key, GT box [x, y, w, h] px, projected joints (J, 2) px or None; NaN = not
    counted; needed with box_rule.min_joints_inside); detections: {image key: (N, 5)} as the detection stage
    writes (an image without an entry has no detection). The people of one image are matched together.
    Returns the chosen boxes (float32 (4,), or None = the person is dropped) in the order of `people`.
    """
    from posepile.preproc.video_stage import choose_frame_boxes
    by_image = {}
    for index, (image, _, _) in enumerate(people):
        by_image.setdefault(image, []).append(index)
    result = [None] * len(people)
    for image, indices in by_image.items():
        joints2d = [people[i][2] for i in indices] if box_rule.min_joints_inside is not None else None
        chosen = choose_frame_boxes([people[i][1] for i in indices], detections.get(image, np.zeros((0, 5))),
                                    box_rule, joints2d)
        for i, box in zip(indices, chosen):
            result[i] = box
    return result


def dataset_video_stage(name, tasks, shard=None, n_workers=None, data_root=None, subdir='crops', **options):
    """The one-pass video stage of dataset `name` (posepile.preproc.video_stage.run_video_stage; results in
    posepile_work/<subdir>, paths relative to DATA_ROOT). `options` go to run_video_stage."""
    from posepile.preproc.video_stage import run_video_stage
    return run_video_stage(tasks, work_dir(name, data_root) / subdir, data_root=raw_root(name, data_root).parent,
                           shard=shard, n_workers=n_workers, **options)


def inputs_fingerprint(input_paths, options=None):
    """Fingerprint of a small stage's input files (their size and mtime) and options."""
    from posepile.util.fingerprint import digest, file_stamp
    paths = sorted(str(p) for p in input_paths)
    return digest([(p, file_stamp(p)) for p in paths], options)


def load_stage_json(out_path, input_paths, options=None):
    """The value a small stage (e.g. frame selection) saved with save_stage_json, or None when it must be
    recomputed: missing, unreadable, written by an older version, or its inputs or options changed since."""
    out_path = Path(out_path)
    if not out_path.exists():
        return None
    try:
        stored = fileio.load_json(out_path)
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get('inputs_fingerprint') != inputs_fingerprint(input_paths, options):
        logger.info('%s: inputs or options changed since it was written: recomputing it', out_path)
        return None
    return stored['value']


def save_stage_json(value, out_path, input_paths, options=None):
    fileio.save_json({'inputs_fingerprint': inputs_fingerprint(input_paths, options), 'value': value}, out_path)
    return value


def recipe_crop_results(name, data_root=None, subdir='crops'):
    """(key, example) pairs of a recipe's crop stage; a clear error when the stage has not run."""
    crops = work_dir(name, data_root) / subdir
    if not crops.exists():
        raise FileNotFoundError(f'{crops} not found: run the crop stage of posepile/ds/{name}/main.sh first')
    return load_crop_results(crops)


def examples_by_split(name, data_root=None, subdir='crops', split_of_key=None):
    """{split: [examples]} from a recipe's crop results; by default the split is the key's first component."""
    result = {0: [], 1: [], 2: []}
    for key, example in recipe_crop_results(name, data_root, subdir):
        result[split_of_key(key) if split_of_key else int(key.split('/')[0])].append(example)
    return result


def segment_crops(name, segmenter_spec=None, n_workers=None, data_root=None):
    """The segment stage of the parametric-only crop recipes (InterCap, MOYO, ARCTIC): a person mask for every
    crop of recipe `name` (posepile_work/crops), box-initialised since the examples have no joints, saved as
    posepile_work/masks.json {crop key: COCO RLE}. `segmenter_spec`: a posepile.preproc.segmentation spec, default
    $POSEPILE_SEGMENTER or 'grabcut'. Redone when the crop results or the segmenter change."""
    import os

    from posepile.preproc.segmentation import segment_examples_parallel
    segmenter_spec = segmenter_spec or os.environ.get('POSEPILE_SEGMENTER') or 'grabcut'
    work = work_dir(name, data_root)
    inputs, options, out_path = sorted((work / 'crops').glob('*.pkl')), {'segmenter': segmenter_spec}, \
        work / 'masks.json'
    if load_stage_json(out_path, inputs, options) is not None:
        logger.info('%s is up to date', out_path)
        return
    results = recipe_crop_results(name, data_root)
    rles = segment_examples_parallel([example for _, example in results], segmenter_spec, None,
                                     data_root=raw_root(name, data_root).parent, n_workers=n_workers)
    save_stage_json({key: rle for (key, _), rle in zip(results, rles)}, out_path, inputs, options)
    logger.info('%d crops segmented with %s', len(rles), segmenter_spec)


def examples_with_masks(name, data_root=None):
    """{split: [examples]} of recipe `name`'s crops with the masks of its segment stage (segment_crops) attached;
    the split is the crop key's first component. A clear error when the segment stage has not run or missed a
    crop."""
    from posepile.util import fileio
    path = work_dir(name, data_root) / 'masks.json'
    if not path.exists():
        raise FileNotFoundError(f'{path} not found: run the segment stage of posepile/ds/{name}/main.sh first')
    person_masks = fileio.load_json(path)['value']
    by_split = {0: [], 1: [], 2: []}
    for key, example in recipe_crop_results(name, data_root):
        if key not in person_masks:
            raise FileNotFoundError(f'{path} has no mask for {key}: rerun the segment stage')
        example.mask = person_masks[key]
        by_split[int(key.split('/')[0])].append(example)
    return by_split


def run_stages(argv, prog, description, stages):
    """A recipe's command line: `python -m posepile.ds.<name>.main <stage> [options]`.

    `stages` maps stage names to functions. A function with a `shard` parameter gets `--shard i/n`, with
    `n_workers` gets `--workers N`; further options come from a `cli_options` attribute on the function:
    a list of (flag, argparse kwargs) whose dest matches a parameter name.
    From the command line (argv None) a failure ends as one line naming the file and the problem, exit
    status 1 (the traceback with --verbose or POSEPILE_DEBUG=1); called with argv, exceptions propagate.
    """
    import argparse
    import inspect
    import logging
    import sys

    from posepile.util.errors import run_cli
    from posepile.util.parallel import add_shard_argument
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument('--verbose', action='store_true', help='debug logging, and tracebacks on errors')
    sub = parser.add_subparsers(dest='stage', required=True)
    for stage_name, function in stages.items():
        p = sub.add_parser(stage_name, help=(function.__doc__ or '').strip().split('\n')[0])
        parameters = inspect.signature(function).parameters
        if 'shard' in parameters:
            add_shard_argument(p)
        if 'n_workers' in parameters:
            p.add_argument('--workers', dest='n_workers', type=int, default=None)
        for flag, kwargs in getattr(function, 'cli_options', ()):
            p.add_argument(flag, **kwargs)

    def run(arguments, verbose=False):
        args = vars(parser.parse_args(arguments))
        verbose = args.pop('verbose') or verbose
        logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                            format='%(asctime)s %(name)s: %(message)s')
        function = stages[args.pop('stage')]
        return function(**args)

    if argv is not None:
        return run(argv)
    arguments = sys.argv[1:]
    stage = next((a for a in arguments if a in stages), '')

    def run_from_command_line(remaining):
        # run_cli takes --verbose out of the arguments (it decides about tracebacks); logging follows it too
        run(remaining, verbose='--verbose' in arguments)
        return 0

    status = run_cli(run_from_command_line, arguments, prog=f'{prog} {stage}'.strip())
    if status:
        sys.exit(status)


def cli_options(*options):
    """Decorator attaching extra command-line options (flag, argparse kwargs) to a stage function."""
    def decorate(function):
        function.cli_options = list(options)
        return function
    return decorate


def save_datasets(builders):
    """Build and cache datasets: {registered name: builder function}."""
    from posepile.datasets3d import save_to_cache
    for dataset_name, builder in builders.items():
        dataset = builder()
        save_to_cache(dataset_name, dataset)
        logger.info('%s: %s', dataset_name, dataset)
