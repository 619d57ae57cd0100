"""The render stage shared by the scan-rendering recipes (thuman2, dfaust, hi4d_rerender): sharded by scan, resumable
by render.

A recipe gives a list of scan tasks (dicts with a unique 'key', sorted by key) and a module-level function
`render_scan(task, options)` returning that scan's examples (it calls `render_views` below). With `--shard i/n`
only every n-th scan from i is handled. Each finished scan writes one result file `<out_dir>/<key>.pkl`
(atomically, after all its views exist) holding its examples and the fingerprint of its task and options; a rerun
skips scans whose result matches. Inside an unfinished scan, a view whose JPEG and mask PNG both exist is not
rendered again (the camera comes back from the seed, the mask from the PNG), so a killed stage resumes at the next
render and gives the same bytes. A broken scan (unreadable mesh or texture) fails the stage naming its file, or
with SKIP_BROKEN=1 is reported and left out (retried by the next run).

Views: view v of scan `key` of dataset `name` uses the seed scene_seed(name, key, v): the same scene on every run,
machine and shard count. The image is the render composited over grey 127; the mask (alpha >= 128) is stored in
the example as COCO RLE and its box is the example's box (route (a) of nlf-era-facts: box of the mask).
"""
import functools
import logging
from pathlib import Path

import numpy as np

from posepile.util import fileio

logger = logging.getLogger(__name__)

IMAGE_SIZE = (512, 512)
JPEG_QUALITY = 95


def default_options(n_views, image_size=IMAGE_SIZE, backend=None):
    """The options every render stage passes to render_views (part of each scan's fingerprint)."""
    from posepile import render
    return {'n_views': int(n_views), 'image_size': tuple(int(s) for s in image_size),
            'backend': render.resolve_backend(backend)}


def render_views(mesh, dataset_name, scan_key, out_relpath, data_root, options, make_example, up=(0, 1, 0),
                 aim_vertices=None):
    """[make_example(view, camera, image_relpath, bbox, mask_rle)] for the options['n_views'] views of `mesh`
    (metres); images at data_root/out_relpath(view) (JPEG) with the mask next to it (<stem>_mask.png).
    `aim_vertices`: the vertices that set the view (camera aim and distance, lights), default all of the mesh."""
    import cv2

    from posepile import render
    from posepile.util import improc, masks
    data_root = Path(data_root)
    aim = mesh.vertices if aim_vertices is None else aim_vertices
    examples = []
    for view in range(options['n_views']):
        relpath = out_relpath(view)
        image_path = data_root / relpath
        mask_path = image_path.with_name(image_path.stem + '_mask.png')
        camera, lights = render.sample_scene(render.scene_seed(dataset_name, scan_key, view), aim,
                                             options['image_size'], up)
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) if mask_path.exists() and image_path.exists() \
            else None
        if mask is None or mask.shape != tuple(options['image_size']):
            rgba = render.render(mesh, camera, lights, options['image_size'], backend=options['backend'])
            image, mask_bool = render.composite(rgba)
            improc.write_jpeg_atomic(image_path, image, quality=JPEG_QUALITY)
            with fileio.atomic_write(mask_path) as f:
                f.write(cv2.imencode('.png', mask_bool.astype(np.uint8) * 255)[1].tobytes())
            mask = mask_bool
        mask = np.asarray(mask) > 0
        if not mask.any():
            logger.warning('%s view %d of %s: the person is not in the image; left out', dataset_name, view, scan_key)
            continue
        rle = masks.encode(mask)
        bbox = masks.to_bbox(rle)  # COCO's box of the mask pixels
        examples.append(make_example(view, camera, relpath, bbox, rle))
    return examples


def _render_one(task, render_scan, options, data_root, skip_broken):
    from posepile.util.errors import InputError
    try:
        return task['key'], render_scan(task, options, data_root), None
    except (InputError, OSError) as e:
        if skip_broken:
            return task['key'], None, f'scan {task["key"]}: {e}'
        raise


def run_render_stage(tasks, render_scan, out_dir, data_root, options, shard=None, n_workers=None, skip_broken=None):
    """Render this shard's scans (module docstring); returns the number of scans rendered now."""
    from posepile.preproc.pipeline import skip_broken_default
    from posepile.util.fingerprint import digest
    from posepile.util.parallel import parallel_map, parse_shard, shard_items
    index, count = parse_shard(shard)
    keys = [task['key'] for task in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError('render task keys must be unique')
    out_dir = Path(out_dir)
    todo = []
    for task in shard_items(sorted(tasks, key=lambda t: t['key']), index, count):
        fingerprint = digest(task, options)
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
                               skip_broken=skip_broken_default(skip_broken))
    outcomes = parallel_map(worker, [task for task, _ in todo], n_workers=n_workers,
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
