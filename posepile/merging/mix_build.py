"""`posepile mix build NAME OUT/`: write a training mix as per-source Barecat shards in the union skeleton.

For each source of the mix (posepile.merging.mixes.MIXES), one at a time:
  the built dataset (get_dataset) -> split mapping -> joints renamed with the source's suffix and placed
  into the union skeleton (mix_joint_info; by name, missing joints NaN) -> filters -> Barecat export.
Filters, as the original (§2.12): huge8 and medium3 pass the merged training set through the plausibility
filter (defaults: bone ratio < 0.1 or > 3 and > 150 mm off the merged train mean, >= 4 joints in the box;
SURREAL always kept; Panoptic's 161029_piano1 not rejected wholesale: piano1=True); small5 is not
filtered; 2D mixes (but dense_multi) keep training examples with > 6 valid limb joints; the parametric mix
keeps examples with body-model parameters and drops their joints. The bone references are the mean train
bone lengths of the whole merged set, accumulated source by source in a first streaming pass (cached per
source under OUT/stats/).

Output folder:
  OUT/sources/<dataset>/{annotations,images}.barecat   one shard per source (posepile.storage.barecat_store)
  OUT/sources/<dataset>/mix_source.json                 written last: marks the shard finished
  OUT/skeleton_info.json                                {source: {suffix, indices, names, edges}, '': union}
  OUT/mix.json                                          entries, shares, union skeleton, counts, missing
  OUT/stream/annotations.barecat                        mixes with NLF section prefixes (huge2d2, dense_multi,
                                                        nlf_*): all sources in one archive, as NLF reads a stream
Image paths: in mixes whose entries carry NLF's section name (`prefix`), every image path starts with it
(mixes.image_path_in_mix; checked against NLF's bisect assignment); the shard's images are read through
OUT/sources/<dataset>/image_links/ (symlinks to the crop folders under DATA_ROOT).
Datasets a mix names that are not registered yet (or not built) are listed with their build command; the
build refuses unless --allow-missing, then builds the others.
Resumable: a finished shard whose union skeleton and bone references are unchanged is skipped; an
interrupted one resumes inside the Barecat export. Memory: one source at a time (--workers N: N at a time, in
forked processes, largest first), examples streamed; only a
1-byte keep flag per example of the current source is held.
"""
import argparse
import copy
import hashlib
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from posepile.datasets3d import SPLIT_NAMES, TEST, TRAIN, VALID
from posepile.merging import mixes

logger = logging.getLogger(__name__)

SOURCE_MARKER = 'mix_source.json'
IMAGE_LINKS = 'image_links'  # OUT/sources/<dataset>/image_links/: see ImageLinks


class MixBuildError(RuntimeError):
    pass


# ------------------------------------------------------------------------------------------------------
# What is there
def build_command(dataset):
    """The command that builds `dataset` (its recipe's main.sh), or a note that it has no recipe yet."""
    from posepile import registry
    if dataset in registry.DATASETS:
        module = registry.DATASETS[dataset].split(':')[0]
        folder = module.rsplit('.', 1)[0].replace('.', '/')
        return f'bash {folder}/main.sh'
    return f'bash posepile/ds/{dataset}/main.sh  (no recipe yet: {dataset!r} is not registered in posepile/registry.py)'


def entry_status(entry):
    """'ready' (built), 'unbuilt' (registered, not built) or 'unregistered'."""
    from posepile.datasets3d import cache_path
    if not mixes.is_registered(entry.dataset):
        return 'unregistered'
    return 'ready' if cache_path(entry.dataset).exists() else 'unbuilt'


def _digest(obj):
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _joint_info_digest(ji):
    return _digest([list(ji.names), [list(e) for e in ji.stick_figure_edges]])


# ------------------------------------------------------------------------------------------------------
# One source in the union skeleton
class SourceView:
    """A source dataset seen through its mix entry: union-skeleton coordinates, target splits."""

    def __init__(self, entry, dataset, union_ji, is_3d, mix_name=None, image_links=None):
        self.entry = entry
        self.dataset = dataset
        self.union_ji = union_ji
        self.is_3d = is_3d
        self.parametric = mix_name in mixes.MIXES_PARAMETRIC
        self.section_names = [e.prefix for e in mixes.get_mix(mix_name)] if mix_name and entry.prefix else []
        self.image_links = image_links  # ImageLinks: the image root under the mix's image paths (prefixed mixes)
        if self.parametric:
            self.source_index = np.zeros(0, np.int64)
            self.present = self.source_index
            self.limb_union_indices = []
            return
        if is_3d or mix_name in mixes.MIXES_2D_SUFFIXED:
            indices, names = mixes.source_layout(entry, union_ji)
        else:
            indices, names = list(range(union_ji.n_joints)), list(union_ji.names)
        # the limb joints of this source in the union (2D filter: "> 6 valid limb joints")
        from posepile.merging.merge import BODY_JOINTS_2D
        self.limb_union_indices = [u for u, n in zip(indices, names) if n in BODY_JOINTS_2D]
        actual = dict(dataset.joint_info.ids)
        if entry.dataset in mixes.CONVERTED_TO_MUCO:
            for muco_name, raw_name in mixes.MUCO_ALIASES.items():
                if muco_name not in actual and raw_name in actual:
                    actual[muco_name] = actual[raw_name]
        absent = [n for n in names if n not in actual]
        if absent and entry.dataset not in ('tdhp', 'mupots') and is_3d:
            logger.warning('%s: built skeleton lacks declared joints %s (rebuild it?)', entry.dataset, absent)
        self.source_index = np.full(union_ji.n_joints, -1, np.int64)
        for u, name in zip(indices, names):
            self.source_index[u] = actual.get(name, -1)
        self.present = np.flatnonzero(self.source_index >= 0)
        if len(self.present) == 0:
            raise MixBuildError(f'{entry.dataset}: no joint of its built skeleton is in the mix skeleton')

    def segments(self, target_split):
        """Source example lists feeding `target_split`, in the entry's order."""
        return [self.dataset.examples[take] for take, use_as in self.entry.splits if use_as == target_split]

    def convert_coords(self, coords):
        result = np.full((self.union_ji.n_joints, coords.shape[-1]), np.nan, np.float32)
        result[self.present] = coords[self.source_index[self.present]]
        return result

    def convert(self, example):
        """The example with its joints placed into the union skeleton BY NAME: a dataset built in an older
        joint order (e.g. SURREAL with its pelvis first) enters the mix in the declared order, no rebuild.
        Parametric mixes drop the joints; prefixed mixes store the image under NLF's section name."""
        new = copy.copy(example)
        if self.entry.prefix:
            new.image_path = self.mix_image_path(example.image_path)
        if self.parametric:
            new.world_coords = None
            new.univ_coords = None
        elif self.is_3d:
            if example.world_coords is not None:  # parametric-only examples carry no joints
                new.world_coords = self.convert_coords(example.world_coords)
            if example.univ_coords is not None:
                new.univ_coords = self.convert_coords(example.univ_coords)
        else:
            new.coords = self.convert_coords(example.coords)
        return new


    def mix_image_path(self, image_path):
        new_path = mixes.image_path_in_mix(image_path, self.entry.prefix)
        section = mixes.nlf_section_of(new_path, self.section_names)
        if section != self.entry.prefix:
            raise MixBuildError(
                f'{self.entry.dataset}: image path {new_path!r} would fall into NLF section {section!r}, not '
                f'{self.entry.prefix!r} (rename its folder in mixes.IMAGE_DIR_RENAMES)')
        if self.image_links is not None:
            self.image_links.add(new_path, str(image_path))
        return new_path


class ImageLinks:
    """A folder of symlinks under which the mix's (renamed) image paths resolve to the crops under DATA_ROOT:
    one link per first folder of the new paths (`3doh_downscaled` -> DATA_ROOT/tdoh_downscaled, or a prefix
    folder -> DATA_ROOT itself). The Barecat export reads the images through it (its `image_root`)."""

    def __init__(self, folder):
        from posepile.paths import data_root
        self.folder = Path(folder)
        self.data_root = Path(data_root())
        self.known = {}

    def add(self, new_path, old_path):
        if Path(old_path).is_absolute():
            return
        new_first = new_path.partition('/')[0]
        if new_path == old_path:
            target = self.data_root / new_first
        elif new_path == f'{new_first}/{old_path}':
            target = self.data_root
        else:
            target = self.data_root / old_path.partition('/')[0]
        known = self.known.get(new_first)
        if known is not None:
            if known != target:
                raise MixBuildError(f'image folder {new_first} of the mix maps to both {known} and {target}')
            return
        link = self.folder / new_first
        self.folder.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() and Path(os.readlink(link)) != target:
            link.unlink()
        if not link.is_symlink():
            link.symlink_to(target, target_is_directory=True)
        self.known[new_first] = target


class _KeptExamples:
    """Lazy list-like view: the kept examples of some source lists, converted on iteration."""

    def __init__(self, segments, keep_flags, convert):
        self.segments = segments
        self.keep_flags = keep_flags  # per segment: bool array or None (all kept)
        self.convert = convert

    def __len__(self):
        return sum(len(s) if k is None else int(np.count_nonzero(k)) for s, k in zip(self.segments,
                                                                                    self.keep_flags))

    def __iter__(self):
        for segment, keep in zip(self.segments, self.keep_flags):
            for i, example in enumerate(segment):
                if keep is None or keep[i]:
                    yield self.convert(example)


# ------------------------------------------------------------------------------------------------------
# Bone references of the merged training set (first pass)
def _bone_lengths(coords, edges):
    return np.linalg.norm(coords[..., edges[:, 0], :] - coords[..., edges[:, 1], :], axis=-1)


def source_bone_stats(view, union_edges, chunk=4096):
    """Sums and counts of valid bone lengths (mm) over the source's examples mapped to TRAIN, per union
    edge (edges with an endpoint outside the source stay at 0)."""
    sums = np.zeros(len(union_edges), np.float64)
    counts = np.zeros(len(union_edges), np.int64)
    inside = np.isin(union_edges, view.present).all(axis=1)
    edge_ids = np.flatnonzero(inside)
    if len(edge_ids) == 0:
        return sums, counts
    local = np.searchsorted(view.present, union_edges[edge_ids])
    sub_index = view.source_index[view.present]
    for segment in view.segments(TRAIN):
        array = segment.coords_array() if hasattr(segment, 'coords_array') else None  # a saved dataset: columns
        if array is not None and array.shape[1] > 0:
            for start in range(0, len(array), chunk):
                _accumulate(np.asarray(array[start:start + chunk], np.float64)[:, sub_index], local, edge_ids,
                            sums, counts)
                if start % (64 * chunk) == 0:
                    segment.release_pages()  # the pages read so far leave the resident set
            continue
        batch = []
        for example in segment:
            if example.world_coords is None:
                continue
            batch.append(np.asarray(example.world_coords, np.float64)[sub_index])
            if len(batch) == chunk:
                _accumulate(batch, local, edge_ids, sums, counts)
                batch = []
        if batch:
            _accumulate(batch, local, edge_ids, sums, counts)
    return sums, counts


def _accumulate(batch, local_edges, edge_ids, sums, counts):
    lengths = _bone_lengths(np.stack(batch), local_edges)
    valid = np.isfinite(lengths)
    sums[edge_ids] += np.where(valid, lengths, 0).sum(axis=0)
    counts[edge_ids] += valid.sum(axis=0)


def cached_bone_stats(out_dir, view, union_edges, union_digest):
    """source_bone_stats, cached in OUT/stats/<dataset>.npz keyed by the built dataset file and skeleton."""
    from posepile.datasets3d import cache_path
    path = cache_path(view.entry.dataset)
    stat = path.stat() if path.exists() else None
    key = _digest([str(path), stat and stat.st_size, stat and stat.st_mtime_ns, union_digest, view.entry.splits])
    stats_path = Path(out_dir) / 'stats' / f'{view.entry.dataset}.npz'
    if stats_path.exists():
        with np.load(stats_path) as f:
            if str(f['key']) == key:
                return f['sums'], f['counts']
    sums, counts = source_bone_stats(view, union_edges)
    stats_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = stats_path.with_suffix('.tmp.npz')
    np.savez(tmp, key=key, sums=sums, counts=counts)
    tmp.replace(stats_path)
    return sums, counts


# ------------------------------------------------------------------------------------------------------
# Filters (second pass)
def plausibility_flags(view, segment, union_edges, reference_mm, always_plausible, report):
    """Keep flags of one TRAIN segment under the original's default plausibility rules."""
    from posepile.preproc.plausibility import implausible_bones, joints_in_box_count
    inside = np.isin(union_edges, view.present).all(axis=1) & np.isfinite(reference_mm)
    local = np.searchsorted(view.present, union_edges[inside])
    reference = reference_mm[inside]
    sub_index = view.source_index[view.present]
    from posepile.preproc.plausibility import column_plausibility_flags
    columns = None if always_plausible else column_plausibility_flags(segment, sub_index, local, reference)
    if columns is not None:  # a saved dataset: vectorised over its columns, same rules
        few, bad = columns
        report['dropped_few_joints_in_box'] += int(few.sum())
        report['dropped_implausible_bone'] += int(bad.sum())
        return ~(few | bad)
    keep = np.ones(len(segment), bool)
    for i, example in enumerate(segment):
        if always_plausible or example.world_coords is None:
            continue
        in_mix = copy.copy(example)  # only the joints that enter the mix (e.g. HUMBI's *_coco) count
        in_mix.world_coords = np.asarray(example.world_coords)[sub_index]
        if joints_in_box_count(in_mix) < 4:
            keep[i] = False
            report['dropped_few_joints_in_box'] += 1
        elif np.any(implausible_bones(in_mix.world_coords, local, reference)):
            keep[i] = False
            report['dropped_implausible_bone'] += 1
    return keep


def limb_joint_flags(view, segment, report):
    """2D: keep training examples with > 6 valid limb joints (of the 12 of the common skeleton, or of the
    source's own 12 in a suffixed mix)."""
    source_limbs = view.source_index[view.limb_union_indices]
    keep = np.ones(len(segment), bool)
    for i, example in enumerate(segment):
        coords = np.asarray(example.coords)
        valid = sum(1 for j in source_limbs if j >= 0 and np.all(np.isfinite(coords[j])))
        if valid < mixes.MIN_VALID_LIMB_JOINTS_2D:
            keep[i] = False
            report['dropped_few_limb_joints'] += 1
    return keep


def parameter_flags(segment, report):
    """Parametric mixes: keep the training examples that carry body-model parameters with a pose (NLF's
    parametric loader requires `parameters['pose']`)."""
    keep = np.ones(len(segment), bool)
    for i, example in enumerate(segment):
        parameters = getattr(example, 'parameters', None)
        if not parameters or parameters.get('pose') is None:
            keep[i] = False
            report['dropped_no_parameters'] += 1
    return keep


# ------------------------------------------------------------------------------------------------------
# Export of one source
def export_source(view, shard_dir, name, reference_mm, union_edges, fingerprint, include_images, shard_size):
    from posepile.datasets2d import Pose2DDataset
    from posepile.datasets3d import Pose3DDataset
    from posepile.storage.barecat_store import export_dataset
    entry = view.entry
    report = {'dropped_few_joints_in_box': 0, 'dropped_implausible_bone': 0, 'dropped_few_limb_joints': 0,
              'dropped_no_parameters': 0}
    examples = {}
    for split in (TRAIN, VALID, TEST):
        segments = view.segments(split)
        flags = []
        for segment in segments:
            if split != TRAIN:
                flags.append(None)
            elif name in mixes.MIXES_PARAMETRIC:
                flags.append(parameter_flags(segment, report))
            elif name in mixes.LIMB_FILTERED_2D:
                flags.append(limb_joint_flags(view, segment, report))
            elif name in mixes.PLAUSIBILITY_FILTERED:
                flags.append(plausibility_flags(view, segment, union_edges, reference_mm,
                                                entry.dataset == 'surreal', report))
            else:
                flags.append(None)
        examples[split] = _KeptExamples(segments, flags, view.convert)
    merged = (Pose3DDataset(view.union_ji, compute_bone_lengths=False) if view.is_3d
              else Pose2DDataset(view.union_ji))
    merged.examples = examples
    counts = {SPLIT_NAMES[s]: len(examples[s]) for s in (TRAIN, VALID, TEST)}
    merged.source_counts = [{'dataset': entry.dataset, 'suffix': entry.suffix, 'share': entry.share, **counts}]
    image_root = view.image_links.folder if view.image_links is not None else None
    export_dataset(merged, shard_dir, image_root=image_root, shard_size_limit=shard_size,
                   include_images=include_images)
    marker = {'dataset': entry.dataset, 'suffix': entry.suffix, 'share': entry.share,
              'splits': [list(s) for s in entry.splits], 'fingerprint': fingerprint, 'counts': counts,
              **{k: v for k, v in report.items() if v}}
    _write_json(shard_dir / SOURCE_MARKER, marker)
    return marker


def _write_json(path, obj):
    tmp = Path(str(path) + '.tmp')
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=False))
    tmp.replace(path)


def finished_marker(shard_dir, fingerprint):
    path = shard_dir / SOURCE_MARKER
    if not path.exists():
        return None
    marker = json.loads(path.read_text())
    return marker if marker.get('fingerprint') == fingerprint else None


# ------------------------------------------------------------------------------------------------------
# The whole mix
def _export_task(task):
    entry, shard_dir, fingerprint = task
    name, reference, union_edges, include_images, shard_size = _POOL_STATE['args']
    logger.info('%s: exporting', entry.dataset)
    return entry.dataset, export_source(_POOL_STATE['open_view'](entry), shard_dir, name, reference, union_edges,
                                        fingerprint, include_images, shard_size)


_POOL_STATE = {}  # what forked export workers inherit (the view opener is a closure: not picklable)


def _export_all(todo, open_view, args, workers):
    """Yield (dataset, marker) of every (entry, shard_dir, fingerprint) in `todo`: one source at a time, or in
    `workers` forked processes, largest source first (each holds one source; the parent only waits)."""
    _POOL_STATE.update(open_view=open_view, args=args)
    if workers <= 1 or len(todo) <= 1:
        yield from map(_export_task, todo)
        return
    import multiprocessing
    from posepile.datasets3d import cache_path
    from posepile.storage.annotations import describe

    def size(task):
        try:
            return sum(describe(cache_path(task[0].dataset))['counts'].values())
        except (OSError, ValueError, KeyError):
            return 0
    with multiprocessing.get_context('fork').Pool(workers, maxtasksperchild=1) as pool:
        yield from pool.imap_unordered(_export_task, sorted(todo, key=size, reverse=True))


def build_mix(name, out_dir, allow_missing=False, include_images=True, shard_size='2G', workers=1):
    """Build mix `name` into `out_dir`. Returns the summary dict (also written to OUT/mix.json).

    Raises MixBuildError listing the missing datasets (with their build commands) unless allow_missing.
    """
    from posepile.datasets3d import get_dataset
    from posepile.datasets2d import Pose2DDataset
    entries = mixes.get_mix(name)
    out_dir = Path(out_dir)
    status = {e.dataset: entry_status(e) for e in entries}
    missing = {d: build_command(d) for d, s in status.items() if s != 'ready'}
    if missing and not allow_missing:
        raise MixBuildError(f'mix {name!r}: {len(missing)} dataset(s) not built:\n' + _missing_text(missing)
                            + '\n(or pass --allow-missing to build the mix from the others)')
    union_ji = mixes.mix_joint_info(name, allow_missing=True)
    union_edges = np.array(union_ji.stick_figure_edges, np.int64).reshape(-1, 2)
    union_digest = _joint_info_digest(union_ji)
    ready = [e for e in entries if status[e.dataset] == 'ready']
    out_dir.mkdir(parents=True, exist_ok=True)

    def open_view(entry):
        dataset = get_dataset(entry.dataset)
        links = ImageLinks(out_dir / 'sources' / entry.dataset / IMAGE_LINKS) if entry.prefix else None
        return SourceView(entry, dataset, union_ji, not isinstance(dataset, Pose2DDataset), name, links)

    reference = None
    if name in mixes.PLAUSIBILITY_FILTERED:
        sums = np.zeros(len(union_edges), np.float64)
        counts = np.zeros(len(union_edges), np.int64)
        for entry in ready:
            s, c = cached_bone_stats(out_dir, open_view(entry), union_edges, union_digest)
            sums += s
            counts += c
        with np.errstate(invalid='ignore', divide='ignore'):
            reference = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    reference_digest = None if reference is None else _digest(np.round(reference, 3).tolist())

    sources = {}
    todo = []
    for entry in ready:
        shard_dir = out_dir / 'sources' / entry.dataset
        fingerprint = _digest([union_digest, reference_digest, entry.suffix, entry.splits, name])
        marker = finished_marker(shard_dir, fingerprint)
        if marker is not None:
            logger.info('%s: finished shard found, skipped', entry.dataset)
        else:
            if (shard_dir / SOURCE_MARKER).exists():
                logger.warning('%s: shard built for another skeleton or bone reference; rebuilding', entry.dataset)
                shutil.rmtree(shard_dir)
            todo.append((entry, shard_dir, fingerprint))
        sources[entry.dataset] = marker
    task_args = (name, reference, union_edges, include_images, shard_size)
    for dataset, marker in _export_all(todo, open_view, task_args, workers):
        sources[dataset] = marker

    registered = [e for e in entries if status[e.dataset] != 'unregistered']
    _write_json(out_dir / 'skeleton_info.json', mixes.skeleton_info(name, union_ji, registered))
    stream = None
    if any(e.prefix for e in entries) and sources:
        stream = write_stream_archive(out_dir, name, union_ji, [e for e in ready if e.dataset in sources],
                                      shard_size)
    summary = {
        'mix': name,
        'batch_size': mixes.batch_size(name),
        'entries': [{'dataset': e.dataset, 'splits': [list(s) for s in e.splits], 'suffix': e.suffix,
                     'share': e.share, 'status': status[e.dataset]} for e in entries],
        'joint_names': list(union_ji.names),
        'joint_edges': [list(e) for e in union_ji.stick_figure_edges],
        'missing': missing,
        'sources': sources,
    }
    if stream is not None:
        summary['stream'] = stream
    if reference is not None:
        summary['train_bone_reference_mm'] = [None if not np.isfinite(v) else float(v) for v in reference]
    _write_json(out_dir / 'mix.json', summary)
    return summary


class _Chained:
    """List-like concatenation of example lists (len and iteration)."""

    def __init__(self, parts):
        self.parts = parts

    def __len__(self):
        return sum(len(p) for p in self.parts)

    def __iter__(self):
        for part in self.parts:
            yield from part


def write_stream_archive(out_dir, name, union_ji, entries, shard_size):
    """OUT/stream/annotations.barecat: every finished source shard of the mix in one archive (the original
    layout, mix order), as NLF reads a stream (`FLAGS.dataset3d`, `dataset3d_kp`, `dataset2d`, `dataset_dense`
    point at one archive each; NLF splits it into sections by image-path prefix). Annotations only: the
    crops are in the source shards' images.barecat (and under DATA_ROOT).
    Returns {path, counts, sections: {prefix: training examples}}."""
    from posepile.datasets2d import Pose2DDataset
    from posepile.datasets3d import Pose3DDataset
    from posepile.storage.barecat_store import BarecatDataset, export_dataset
    shards = [BarecatDataset(out_dir / 'sources' / e.dataset, load_images=False) for e in entries]
    is_3d = not mixes.is_2d(name)
    merged = Pose3DDataset(union_ji, compute_bone_lengths=False) if is_3d else Pose2DDataset(union_ji)
    merged.examples = {split: _Chained([shard.examples[split] for shard in shards])
                       for split in (TRAIN, VALID, TEST)}
    merged.source_counts = [{'dataset': e.dataset, 'prefix': e.prefix, 'share': e.share,
                             **{SPLIT_NAMES[s]: len(shard.examples[s]) for s in (TRAIN, VALID, TEST)}}
                            for e, shard in zip(entries, shards)]
    stream_dir = out_dir / 'stream'
    logger.info('%s: writing the stream archive %s', name, stream_dir / 'annotations.barecat')
    export_dataset(merged, stream_dir, shard_size_limit=shard_size, include_images=False)
    return {'path': str(stream_dir / 'annotations.barecat'),
            'counts': {SPLIT_NAMES[s]: len(merged.examples[s]) for s in (TRAIN, VALID, TEST)},
            'sections': {e.prefix: len(shard.examples[TRAIN]) for e, shard in zip(entries, shards)}}


def _missing_text(missing):
    return '\n'.join(f'  {dataset:<20} {command}' for dataset, command in missing.items())


def format_report(summary):
    lines = [f'mix {summary["mix"]}: {len(summary["joint_names"])} joints in the union skeleton',
             f'{"source":<16} {"share":>5} {"train":>9} {"valid":>7} {"test":>7}  notes']
    for entry in summary['entries']:
        marker = summary['sources'].get(entry['dataset'])
        if marker is None:
            continue
        c = marker['counts']
        notes = ', '.join(f'{k}={v}' for k, v in marker.items() if k.startswith('dropped'))
        lines.append(f'{entry["dataset"]:<16} {entry["share"]:>5} {c["train"]:>9} {c["valid"]:>7} {c["test"]:>7}'
                     f'  {notes}')
    if summary.get('stream'):
        stream = summary['stream']
        lines.append(f'stream archive (NLF sections by image-path prefix): {stream["path"]} {stream["counts"]}')
    if summary['missing']:
        lines.append(f'not built ({len(summary["missing"])}), build with:')
        lines.append(_missing_text(summary['missing']))
    return '\n'.join(lines)


# ------------------------------------------------------------------------------------------------------
# CLI
def main(argv=None):
    parser = argparse.ArgumentParser(prog='posepile mix', description='The training mixes of the paper.')
    sub = parser.add_subparsers(dest='action', metavar='ACTION', required=True)
    p = sub.add_parser('build', help='write a mix as per-source Barecat shards: posepile mix build NAME OUT/')
    p.add_argument('name', choices=sorted(mixes.MIXES))
    p.add_argument('out', help='output folder')
    p.add_argument('--allow-missing', action='store_true', help='build from the datasets that are built')
    p.add_argument('--no-images', '--annotations-only', dest='no_images', action='store_true',
                   help='annotation shards and skeleton info only, no image archives')
    p.add_argument('--shard-size', default='2G', help='Barecat shard size limit, e.g. 500M, 2G')
    p.add_argument('--workers', type=int, default=1, help='sources exported in parallel processes (largest first)')
    p = sub.add_parser('list', help='the mixes, their sources, shares and build status')
    p.add_argument('name', nargs='?', choices=sorted(mixes.MIXES))
    args = parser.parse_args(argv)
    from posepile.paths import DataRootError
    if args.action == 'list':
        return _list(args.name)
    try:
        summary = build_mix(args.name, args.out, allow_missing=args.allow_missing,
                            include_images=not args.no_images, shard_size=args.shard_size, workers=args.workers)
    except (MixBuildError, DataRootError) as e:
        print(f'posepile mix build: {e}', file=sys.stderr)
        return 2
    print(format_report(summary))
    return 0


def _list(name):
    for mix_name in [name] if name else list(mixes.MIXES):
        entries = mixes.get_mix(mix_name)
        print(f'{mix_name}: {len([e for e in entries if e.share])} training sources, '
              f'shares sum to {sum(e.share for e in entries)}')
        for e in entries:
            try:
                status = entry_status(e)
            except Exception as error:  # DATA_ROOT unset: show the mix anyway
                status = f'? ({error.__class__.__name__})'
            splits = ' '.join(f'{SPLIT_NAMES[a]}->{SPLIT_NAMES[b]}' for a, b in e.splits)
            prefix = f'  prefix {e.prefix:<18}' if e.prefix else ''
            print(f'  {e.dataset:<20} share {e.share:>2}  suffix {e.suffix or "-":<9}{prefix} {splits:<28} {status}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
