"""The render stage shared by the scan-rendering recipes (thuman2, dfaust, hi4d_rerender): sharded by scan, resumable
by render, redone per scan when its inputs change.

A recipe gives a list of scan tasks (dicts with a unique 'key', sorted by key) and a module-level function
`render_scan(task, options, data_root)` returning that scan's examples (it calls `render_views` below). With
`--shard i/n` only every n-th scan from i is handled.

Fingerprints: a scan's fingerprint is that of its task, the stage options (default_options: n_views, image size,
backend, RENDER_VERSION) and the size and mtime of its input files: the task's 'inputs' (input_stamps(): mesh,
texture, fits, parameter files) and the stage's `shared_input_files` (body models, a shared UV mesh). Each finished
scan writes one result file `<out_dir>/<key>.pkl` (atomically, after all its views exist) holding its examples and
this fingerprint; a rerun skips scans whose result matches. A scan whose fingerprint changed is rendered again in
full (its old images are not reused: the camera is aimed with the mesh and the pixels come from the mesh and
texture); the other scans are not touched.

Resuming: `<out_dir>/<key>.views` is the scan's view ledger, its first line the fingerprint the views are rendered
with, then one line per finished view (image relpath, appended after the JPEG and mask PNG are written). Inside an
unfinished scan, a view in the ledger whose JPEG and mask both exist is not rendered again (the camera comes back
from the seed, the mask from the PNG), so a killed stage resumes at the next render and gives the same bytes; a
ledger of other inputs is started afresh, so no view of old inputs is ever reused. A broken scan (unreadable mesh
or texture) fails the stage naming its file, or with SKIP_BROKEN=1 is reported and left out (retried by the next
run).

Views: view v of scan `key` of dataset `name` uses the seed scene_seed(name, key, v): the same scene on every run,
machine and shard count. The image is the render composited over grey 127; the mask (alpha >= 128) is stored in
the example as COCO RLE and its box is the example's box (route (a) of nlf-era-facts: box of the mask).
"""
import contextvars
import functools
import logging
import os
from pathlib import Path

import numpy as np

from posepile.util import fileio

logger = logging.getLogger(__name__)

IMAGE_SIZE = (512, 512)
JPEG_QUALITY = 95
# part of every scan's fingerprint: bump it when a change to posepile.render changes the images of unchanged inputs
RENDER_VERSION = 1

# the ledger of the scan being rendered in this process (set by run_render_stage around render_scan)
_current_ledger = contextvars.ContextVar('posepile_render_ledger', default=None)


def default_options(n_views, image_size=IMAGE_SIZE, backend=None):
    """The options every render stage passes to render_views (part of each scan's fingerprint)."""
    from posepile import render
    return {'n_views': int(n_views), 'image_size': tuple(int(s) for s in image_size),
            'backend': render.resolve_backend(backend), 'render_version': RENDER_VERSION}


def input_stamps(paths, root):
    """[[path relative to `root` (posix), size, mtime_ns]] of input files, sorted (size and mtime None for a
    missing file): a scan task's 'inputs', so that a changed file changes the scan's fingerprint. Paths outside
    `root` are kept absolute. Cheap: no file is read."""
    from posepile.util.fingerprint import file_stamp
    root = Path(root)
    stamps = []
    for path in paths:
        path = Path(path)
        try:
            name = path.relative_to(root).as_posix()
        except ValueError:
            name = str(path)
        stamps.append([name, *(file_stamp(path) or [None, None])])
    return sorted(stamps)


def folder_files(folder, pattern='*'):
    """The files (not folders) of `folder` matching `pattern`, sorted; [] when it does not exist."""
    folder = Path(folder)
    return sorted(p for p in folder.glob(pattern) if p.is_file()) if folder.is_dir() else []


class ViewLedger:
    """The finished views of one scan under one fingerprint (`<out_dir>/<key>.views`, module docstring)."""

    def __init__(self, path, fingerprint):
        self.path = Path(path)
        lines = []
        try:
            lines = self.path.read_text().splitlines()
        except (OSError, UnicodeDecodeError):
            pass
        if lines and lines[0] == fingerprint:
            self.done = set(lines[1:])
        else:
            if lines:
                logger.info('%s: inputs or options changed since its views were rendered: rendering them again',
                            self.path)
            self.done = set()
            with fileio.atomic_write(self.path, 'w') as f:
                f.write(fingerprint + '\n')

    def __contains__(self, relpath):
        return str(relpath) in self.done

    def add(self, relpath):
        """Record a view whose files are complete (one appended line; a line cut by a kill is never a relpath
        that was not finished)."""
        with open(self.path, 'a') as f:
            f.write(f'{relpath}\n')
            f.flush()
            os.fsync(f.fileno())
        self.done.add(str(relpath))


def render_views(mesh, dataset_name, scan_key, out_relpath, data_root, options, make_example, up=(0, 1, 0),
                 aim_vertices=None):
    """[make_example(view, camera, image_relpath, bbox, mask_rle)] for the options['n_views'] views of `mesh`
    (metres); images at data_root/out_relpath(view) (JPEG) with the mask next to it (<stem>_mask.png).
    `aim_vertices`: the vertices that set the view (camera aim and distance, lights), default all of the mesh.
    Inside run_render_stage, views in the scan's ledger whose files exist are reused (module docstring); called
    on its own, every view is rendered."""
    import cv2

    from posepile import render
    from posepile.util import improc, masks
    data_root = Path(data_root)
    aim = mesh.vertices if aim_vertices is None else aim_vertices
    ledger = _current_ledger.get()
    examples = []
    for view in range(options['n_views']):
        relpath = out_relpath(view)
        image_path = data_root / relpath
        mask_path = image_path.with_name(image_path.stem + '_mask.png')
        camera, lights = render.sample_scene(render.scene_seed(dataset_name, scan_key, view), aim,
                                             options['image_size'], up)
        reusable = ledger is not None and relpath in ledger and mask_path.exists() and image_path.exists()
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) if reusable else None
        if mask is None or mask.shape != tuple(options['image_size']):
            rgba = render.render(mesh, camera, lights, options['image_size'], backend=options['backend'])
            image, mask_bool = render.composite(rgba)
            improc.write_jpeg_atomic(image_path, image, quality=JPEG_QUALITY)
            with fileio.atomic_write(mask_path) as f:
                f.write(cv2.imencode('.png', mask_bool.astype(np.uint8) * 255)[1].tobytes())
            if ledger is not None:
                ledger.add(relpath)
            mask = mask_bool
        mask = np.asarray(mask) > 0
        if not mask.any():
            logger.warning('%s view %d of %s: the person is not in the image; left out', dataset_name, view, scan_key)
            continue
        rle = masks.encode(mask)
        bbox = masks.to_bbox(rle)  # COCO's box of the mask pixels
        examples.append(make_example(view, camera, relpath, bbox, rle))
    return examples


def _render_one(task_and_fingerprint, render_scan, options, data_root, out_dir, skip_broken):
    from posepile.util.errors import InputError
    task, fingerprint = task_and_fingerprint
    token = _current_ledger.set(ViewLedger(Path(out_dir) / f'{task["key"]}.views', fingerprint))
    try:
        return task['key'], render_scan(task, options, data_root), None
    except (InputError, OSError) as e:
        if skip_broken:
            return task['key'], None, f'scan {task["key"]}: {e}'
        raise
    finally:
        _current_ledger.reset(token)


def run_render_stage(tasks, render_scan, out_dir, data_root, options, shard=None, n_workers=None, skip_broken=None,
                     shared_input_files=()):
    """Render this shard's scans (module docstring); returns the number of scans rendered now.
    `shared_input_files`: files every scan's examples depend on (body model files, a shared UV mesh); their
    stamps are part of every scan's fingerprint."""
    from posepile.preproc.pipeline import skip_broken_default
    from posepile.util.fingerprint import digest
    from posepile.util.parallel import parallel_map, parse_shard, shard_items
    index, count = parse_shard(shard)
    keys = [task['key'] for task in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError('render task keys must be unique')
    out_dir = Path(out_dir)
    shared_stamps = input_stamps(shared_input_files, data_root)
    todo = []
    for task in shard_items(sorted(tasks, key=lambda t: t['key']), index, count):
        fingerprint = digest(task, options, shared_stamps)
        result_path = out_dir / f'{task["key"]}.pkl'
        if result_path.exists():
            try:
                if fileio.load_pickle(result_path).get('fingerprint') == fingerprint:
                    continue
            except ValueError as e:
                logger.warning('%s is unreadable (%s): rendering the scan again', result_path, e)
        todo.append((task, fingerprint))
    logger.info('render shard %d/%d: %d scans to render', index + 1, count, len(todo))
    worker = functools.partial(_render_one, render_scan=render_scan, options=options, data_root=str(data_root),
                               out_dir=str(out_dir), skip_broken=skip_broken_default(skip_broken))
    outcomes = parallel_map(worker, todo, n_workers=n_workers,
                            desc=f'renders {index + 1}/{count}')
    for (task, fingerprint), (key, examples, problem) in zip(todo, outcomes):
        if problem is not None:
            logger.warning('skipped (--skip-broken): %s', problem)
            continue
        fileio.save_pickle({'key': key, 'examples': examples, 'fingerprint': fingerprint},
                           out_dir / f'{key}.pkl')
    return len(todo)


def load_render_results(out_dir, expected_keys=None):
    """[(scan key, [examples])] of a render stage, by key; FileNotFoundError naming missing scans (when
    `expected_keys` is given) or an empty stage."""
    out_dir = Path(out_dir)
    paths = sorted(out_dir.glob('*.pkl')) if out_dir.is_dir() else []
    results = {}
    for path in paths:
        stored = fileio.load_pickle(path)
        results[stored['key']] = stored['examples']
    if expected_keys is not None:
        missing = sorted(set(expected_keys) - set(results))
        if missing:
            raise FileNotFoundError(f'{out_dir}: {len(missing)} scans not rendered yet (e.g. {missing[0]}): run the '
                                    'render stage (all shards) first')
    if not results:
        raise FileNotFoundError(f'no render results in {out_dir}: run the render stage first')
    return sorted(results.items())
