"""`posepile status`: per registered dataset, whether its raw release is there, which stages are done, how many
examples per split the built dataset has and how its last build ended; and the plan `posepile/ds/build_all.sh`
follows. Everything here is read without loading any data: globs on the raw folders, the file names in each
recipe's posepile_work/, the header of the cached dataset and the tail of the build logs.

The table RECIPES says, per registered name, which recipe folder builds it (posepile/ds/<module>/main.sh and
its arguments), which raw folder it reads ($DATA_ROOT/<raw>, as `pipeline.raw_root(raw)`) and which globs in
that folder prove that a release was downloaded (any one matching suffices: the archives before extraction or
the files the recipe reads after it). Names sharing one recipe run (h36m and h36m_alljoints, coco and
coco_single) share one log, named after the run ($DATA_ROOT/logs/<run>.log). A registered name missing from the
table gets the defaults: module from the registry, raw folder = its name, present when that folder holds
anything besides posepile_work/.

build_all.sh ends every log with a line `[build_all] <run>: exit status N (<date>)`; the status of the last run
and its error (the last line before a non-zero trailer: the recipes end a failure with one line naming the file
and the problem) are read from there.
"""
import argparse
import dataclasses
import itertools
import json
import logging
import re
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

SPLIT_NAMES = ('train', 'valid', 'test')
LOG_DIR = 'logs'
MAX_FILES_COUNTED = 10000  # a stage folder of plain files is counted up to this
TRAILER_RE = re.compile(r'^\[build_all\] (?P<run>\S+): exit status (?P<status>\d+)')


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a registered dataset is built and where its raw release is.

    module: the recipe folder posepile/ds/<module>/ (main.sh, main.py). raw: the raw folder under DATA_ROOT.
    markers: globs relative to the raw folder (a leading '../' makes one relative to DATA_ROOT); any match
    means the release is present. run: the recipe run that builds the dataset (its log name; default the
    dataset name). args: arguments of main.sh. work: globs of the posepile_work/ entries that belong to this
    dataset (default all). generated: the recipe makes its own raw release (built only when named). notes:
    'module:function' giving lines about the raw folder (Panoptic: listed sequences absent, unlisted ones).
    """
    module: str
    raw: str
    markers: tuple
    run: str = None
    args: tuple = ()
    work: tuple = None
    generated: bool = False
    notes: str = None


_H36M = ('metadata.xml', 'S*/MyPoseFeatures/D3_Positions/*.cdf', 'archives/*.tgz', 'archives/*.tar.gz')
_TDHP = ('S*/Seq*/annot.mat', 'TS*/annot_data.mat', 'archives/*.zip')
_COCO = ('annotations/person_keypoints_*.json', 'annotations_trainval2017.zip')
_MPII = ('mpii_human_pose_v1_u12_1.mat', 'mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat',
         'archives/mpii_human_pose_v1_u12_2.zip')


def _imar(name):
    return Recipe('imar', name, (f'{name}_info.json', 'train/*', '*/train/*', f'archives/{name}_train.*'),
                  args=(name,))


RECIPES = {
    'h36m': Recipe('h36m', 'h36m', _H36M),
    'h36m_alljoints': Recipe('h36m', 'h36m', _H36M, run='h36m'),
    'tdhp': Recipe('tdhp', 'tdhp', _TDHP),
    'tdhp_full': Recipe('tdhp', 'tdhp', _TDHP, run='tdhp'),
    'mupots': Recipe('mupots', 'mupots', ('MultiPersonTestSet/*/annot.mat', 'archives/*.zip')),
    'tdpw': Recipe('tdpw', 'tdpw', ('sequenceFiles/*/*.pkl', 'archives/sequenceFiles.zip')),
    'panoptic': Recipe('panoptic', 'panoptic', ('*/calibration_*.json',),
                       notes='posepile.ds.panoptic.main:status_notes'),
    'surreal': Recipe('surreal', 'surreal', ('cmu/*/run*/*/*_info.mat',)),
    'aspset': Recipe('aspset', 'aspset', ('splits.csv', 'data/splits.csv', '*/joints_3d/*/*.c3d')),
    'tdoh': Recipe('tdoh', 'tdoh', ('*/annots.json', 'archives/*.zip', 'archives/*.tar.gz')),
    'humbi': Recipe('humbi', 'humbi', ('subject_*/body', '*/subject_*/body', 'archives/*')),
    'tdpeople': Recipe('tdpeople', 'tdpeople', ('skeleton/*', 'rgb/*', 'archives/*')),
    'gpa': Recipe('gpa', 'gpa', ('xyz_gpa12_mdp_cntind_crop_cam_c2g.json',)),
    'sailvos': Recipe('sailvos', 'sailvos', ('*/*/*_2d.txt', 'archives/*')),
    'coco': Recipe('coco', 'coco', _COCO),
    'coco_single': Recipe('coco', 'coco', _COCO, run='coco'),
    'mpii': Recipe('mpii', 'mpii', _MPII, work=('crops',)),
    'mpii_yolo': Recipe('mpii_yolo', 'mpii', _MPII, work=('crops_yolo', 'person_detections.pkl')),
    'mpii_yolo_alljoints': Recipe('mpii_yolo', 'mpii', _MPII, run='mpii_yolo',
                                  work=('crops_yolo', 'person_detections.pkl')),
    'posetrack': Recipe('posetrack', 'posetrack', ('annotations/*/*.json', 'posetrack_data/annotations/*/*.json')),
    'jrdb': Recipe('jrdb', 'jrdb', ('train_dataset/calibration/cameras.yaml', 'train_dataset/labels/*/*.json')),
    'aic': Recipe('aic', 'aic', ('annotations/aic_train.json', 'AI_Challenger.tar.gz')),
    'halpe': Recipe('halpe', 'halpe', ('halpe_train_v1.json',)),
    'coco_wb': Recipe('coco_wb', 'coco_wb', ('coco_wholebody_*_v1.0.json',
                                             '../coco/annotations/coco_wholebody_*_v1.0.json')),
    'densepose_coco': Recipe('densepose_coco', 'densepose_coco', ('densepose_coco_2014_train.json',)),
    'densepose_posetrack': Recipe('densepose_posetrack', 'densepose_posetrack',
                                  ('densepose_posetrack_*2017.json',)),
    'densepose_posetrack_like_coco': Recipe('densepose_posetrack', 'densepose_posetrack',
                                            ('densepose_posetrack_*2017.json',), run='densepose_posetrack'),
    'demo': Recipe('demo', 'demo', ('calibration.json',), generated=True),
    'totalcapture': Recipe('totalcapture', 'totalcapture', ('calibration.cal', 'vicon/*', 'archives/vicon/*')),
    'aist': Recipe('aist', 'aist', ('annotations/keypoints3d/*.pkl', 'aist_plusplus_final', 'archives/*.zip')),
    'fit3d': _imar('fit3d'),
    'chi3d': _imar('chi3d'),
    'humansc3d': _imar('humansc3d'),
    'hspace': Recipe('hspace', 'hspace', ('2021_01/train/*.tfrecord',)),
    'human4d': Recipe('human4d', 'human4d', ('S*/device_repository.json',)),
    'muco': Recipe('muco', 'muco', ('../tdhp/S*/Seq*/annot.mat',)),  # composited from the 3DHP training set
    'rich': Recipe('rich', 'rich', ('scan_calibration/*', 'train_body/*', 'archives/*')),
    'rich_body': Recipe('rich', 'rich', ('scan_calibration/*', 'train_body/*', 'archives/*'), run='rich'),
    'jta': Recipe('jta', 'jta', ('annotations/*/*.json', 'archives/*')),
    'ikea': Recipe('ikea', 'ikea', ('Calibration/camera_parameters.pkl', 'archives/*')),
    'bmhad': Recipe('bmhad', 'bmhad', ('Calibration', 'archives/*')),
    'bml_movi': Recipe('bml_movi', 'bml_movi', ('Calib/Extrinsics_*.npz', 'archives/*')),
    'umpm': Recipe('umpm', 'umpm', ('Groundtruth/*_vm.c3d', 'archives/*')),
    'mads': Recipe('mads', 'mads', ('multi_view_data', 'archives/*')),
    'behave': Recipe('behave', 'behave', ('split.json', 'sequences/*', 'archives/*')),
    'agora': Recipe('agora', 'agora', ('SMPLX/*_withjv.pkl', 'archives/*')),
    'spec': Recipe('spec', 'spec', ('annotations/*.npz', 'spec-syn/annotations/*.npz', 'archives/*')),
    'intercap': Recipe('intercap', 'intercap', ('Res_Individuals/*/*/*/res_1.pkl', 'archives/*.zip')),
    'hi4d': Recipe('hi4d', 'hi4d', ('*/*/meta.npz', 'archives/*')),
    'moyo': Recipe('moyo', 'moyo', ('MOYO/*/images/*/*.zip', 'archives/*/*.zip')),
    'arctic': Recipe('arctic', 'arctic', ('raw_seqs/*/*.smplx.npy', 'archives/raw_seqs.zip')),
    'dna_rendering': Recipe('dna_rendering', 'dna_rendering', ('dna_rendering_part*_main/*.smc',)),
    'thuman2': Recipe('thuman2', 'thuman2', ('THuman2.0_Release/*/*.obj', 'THuman2.0_Release.zip')),
    'dfaust': Recipe('dfaust', 'dfaust', ('registrations_*.hdf5', 'registrations_*.zip')),
    'hi4d_rerender': Recipe('hi4d_rerender', 'hi4d', ('*/*/frames/mesh-f*.obj', 'archives/*'), work=('rerender',)),
    'genebody': Recipe('genebody', 'genebody', ('GeneBody-Train40/genebody_split.npy',
                                                'GeneBody-Train40/*/annots.npy', 'archives/*')),
    'zjumocap': Recipe('zjumocap', 'zjumocap', ('CoreView_*/annots.npy', 'archives/CoreView_*')),
    'humman': Recipe('humman', 'humman', ('recon_smpl_params.zip', 'recon_kinect_color_part_*.zip')),
    'egohumans': Recipe('egohumans', 'egohumans', ('*/*/processed_data/poses3d/*.npy', '*/*.tar.gz')),
    'egoexo4d': Recipe('egoexo4d', 'egoexo4d', ('annotations/ego_pose/*/body/automatic/*.json',)),
    'synbody': Recipe('synbody', 'synbody', ('HumanNeRF-subset/smpl.zip', 'HumanNeRF-subset/img.zip')),
    'freeman': Recipe('freeman', 'freeman', ('30FPS/train.txt', 'archives/*')),
    'mri': Recipe('mri', 'mri', ('**/subject*_all_labels.cpl', 'archives/*')),
    'bedlam': Recipe('bedlam', 'bedlam', ('all_npz_12_training/*_6fps.npz', 'archives/*')),
    'sloper4d': Recipe('sloper4d', 'sloper4d', ('*/*_labels.pkl', 'archives/*')),
    'egobody': Recipe('egobody', 'egobody', ('data_splits.csv', 'kinect_color.zip', 'egocentric_color.zip')),
}


class StatusError(ValueError):
    pass


def recipe_of(name):
    """The Recipe of a registered name (the table entry, or defaults derived from the registry)."""
    from posepile import registry
    if name in RECIPES:
        return RECIPES[name]
    if name not in registry.DATASETS:
        raise StatusError(f'unknown dataset {name!r}; registered: {", ".join(sorted(registry.DATASETS))}')
    module = registry.DATASETS[name].split(':')[0]
    parts = module.split('.')
    folder = parts[2] if len(parts) > 3 and parts[:2] == ['posepile', 'ds'] else name
    return Recipe(folder, name, ())


def run_name(name):
    recipe = recipe_of(name)
    return recipe.run or name


def _glob(base, data_root, pattern):
    if pattern.startswith('../'):
        base, pattern = Path(data_root), pattern[3:]
    return next(base.glob(pattern), None)  # the first match (lazily: release folders can be huge)


def raw_release(name, data_root):
    """{'present': bool, 'expected': the raw folder with its marker globs, 'found': a matching path or None}."""
    from posepile.preproc import pipeline
    recipe = recipe_of(name)
    root = pipeline.raw_root(recipe.raw, data_root)
    found = None
    if recipe.markers:
        if root.is_dir() or any(m.startswith('../') for m in recipe.markers):
            found = next((p for p in (_glob(root, data_root, m) for m in recipe.markers) if p is not None), None)
        expected = [str(root / m) if not m.startswith('../') else str(Path(data_root) / m[3:])
                    for m in recipe.markers]
    else:  # not in the table: anything besides the recipe's own outputs
        if root.is_dir():
            found = next((p for p in sorted(root.iterdir()) if p.name != 'posepile_work'), None)
        expected = [str(root / '*')]
    return {'present': found is not None, 'raw_root': str(root), 'expected': expected,
            'found': None if found is None else str(found)}


# ------------------------------------------------------------------------------------------------------------
# Stages, from the names of the files in posepile_work/
def _belongs(path, recipe):
    return recipe.work is None or any(path.match(pattern) for pattern in recipe.work)


def _crop_dir_state(path):
    """One stage folder: a one-pass video stage (videos.json + per-video results), crop shards, or files."""
    from posepile.preproc import pipeline, video_stage
    from posepile.util import fileio
    if video_stage.is_video_stage_dir(path):
        try:
            keys = fileio.load_json(path / video_stage.MANIFEST_NAME)['video_keys']
        except (OSError, ValueError, KeyError, TypeError) as e:
            return {'kind': 'videos', 'done': False, 'detail': f'unreadable manifest ({e})'}
        n_done = sum(video_stage.result_path(path, key).exists() for key in keys)
        return {'kind': 'videos', 'done': n_done == len(keys), 'detail': f'videos {n_done}/{len(keys)}'}
    shards = sorted(path.glob('crops_shard-*-of-*.pkl'))
    if shards or any(path.glob('crops_shard-*.started')):
        counts = sorted({int(p.stem.split('-of-')[1]) for p in shards})
        n_total = counts[-1] if counts else 0
        n_done = sum(path.joinpath(pipeline.RESULT_PATTERN.format(i, n_total)).exists() for i in range(n_total))
        detail = f'shards {n_done}/{n_total}' if n_total else 'shards 0/?'
        if len(counts) > 1:
            detail += f' (stale results for {counts[:-1]} shards)'
        return {'kind': 'shards', 'done': bool(n_total) and n_done == n_total, 'detail': detail}
    n_files = sum(1 for _ in itertools.islice((p for p in path.rglob('*') if p.is_file()), MAX_FILES_COUNTED))
    more = '+' if n_files == MAX_FILES_COUNTED else ''
    return {'kind': 'files', 'done': n_files > 0, 'detail': f'{n_files}{more} files'}


def stages(name, data_root):
    """[{'stage': entry name, 'kind', 'done', 'detail'}] for the posepile_work/ entries of this dataset (a recipe
    run's work folder is shared by the datasets it builds), oldest first."""
    from posepile.preproc import pipeline
    recipe = recipe_of(name)
    work = pipeline.work_dir(recipe.raw, data_root)
    result = []
    if work.is_dir():
        for path in sorted(work.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name)):  # stage order
            if not _belongs(path, recipe) or path.name.startswith('.') or path.name.endswith(('.started', '.tmp')):
                continue
            if path.is_dir():
                result.append({'stage': path.name, **_crop_dir_state(path)})
            else:
                result.append({'stage': path.name, 'kind': 'file', 'done': True, 'detail': None})
    return result


def built_counts(name):
    """{split name: count, 'path', 'kind', 'joints'} of the cached dataset (from its header.json only), or None
    when not built. The cache is where get_dataset looks: $POSEPILE_CACHE_DIR or $DATA_ROOT/cache."""
    import os

    from posepile.datasets3d import cache_path
    from posepile.paths import data_root
    from posepile.util import fileio
    folder = os.environ.get('POSEPILE_CACHE_DIR')
    cache_folder = Path(folder).expanduser() if folder else data_root() / 'cache'
    if not cache_folder.is_dir():  # nothing built (and cache_path would create the folder)
        return None
    path = cache_path(name)
    header_path = path / 'header.json'
    if header_path.is_file():
        try:
            header = fileio.load_json(header_path)
            return {'path': str(path), 'kind': header.get('kind'), 'joints': len(header.get('joint_names', [])),
                    **dict(zip(SPLIT_NAMES, header['counts']))}
        except (OSError, ValueError, KeyError, TypeError) as e:
            return {'path': str(path), 'error': f'{header_path}: unreadable header ({e})'}
    if path.is_file():  # a pickle: counting would mean loading it
        return {'path': str(path)}
    return None


def log_path(name, data_root):
    return Path(data_root) / LOG_DIR / f'{run_name(name)}.log'


def _tail_lines(path, max_bytes=65536):
    with open(path, 'rb') as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - max_bytes))
        text = f.read().decode('utf-8', errors='replace')
    lines = [line.rstrip() for line in text.replace('\r', '\n').splitlines()]
    return [line for line in lines if line.strip()]


def last_run(name, data_root):
    """{'log', 'state' ('ok' | 'failed' | 'unfinished'), 'exit_status', 'error': the last line of a failed
    run} from the build log of the dataset's recipe run, or None without a log."""
    path = log_path(name, data_root)
    if not path.is_file():
        return None
    lines = _tail_lines(path)
    trailer_index = next((i for i in range(len(lines) - 1, -1, -1) if TRAILER_RE.match(lines[i])), None)
    if trailer_index is None or trailer_index != len(lines) - 1:
        return {'log': str(path), 'state': 'unfinished', 'exit_status': None, 'error': None,
                'last_line': lines[-1] if lines else None}
    status = int(TRAILER_RE.match(lines[trailer_index])['status'])
    before = [line for line in lines[:trailer_index] if not TRAILER_RE.match(line)]
    error = (before[-1] if before else f'exit status {status}') if status else None
    return {'log': str(path), 'state': 'failed' if status else 'ok', 'exit_status': status, 'error': error}


def raw_notes(name, data_root):
    """The recipe's lines about its raw folder (Recipe.notes), or []."""
    import importlib
    from posepile.preproc import pipeline
    recipe = recipe_of(name)
    if not recipe.notes:
        return []
    module_name, function_name = recipe.notes.split(':')
    return getattr(importlib.import_module(module_name), function_name)(pipeline.raw_root(recipe.raw, data_root))


def dataset_status(name, data_root):
    stage_list = stages(name, data_root)
    return {'name': name, 'module': recipe_of(name).module, 'run': run_name(name),
            'raw': raw_release(name, data_root), 'stages': stage_list, 'built': built_counts(name),
            'last_run': last_run(name, data_root), 'notes': raw_notes(name, data_root)}


def status(names=None, data_root=None):
    """Status of the given (default: all registered) datasets, as a list of dicts."""
    from posepile import registry
    from posepile.paths import data_root as get_data_root
    data_root = Path(data_root or get_data_root())
    names = list(names) if names else list(registry.DATASETS)
    for name in names:
        recipe_of(name)
    return [dataset_status(name, data_root) for name in names]


# ------------------------------------------------------------------------------------------------------------
# Rendering
def _stages_text(row):
    parts = []
    for stage in row['stages']:
        mark = '' if stage['done'] else ' (partial)'
        parts.append(f'{stage["stage"]}[{stage["detail"]}]{mark}' if stage['detail'] else stage['stage'])
    if row['built'] is not None:
        parts.append('built')
    return ', '.join(parts) or '-'


def _counts_text(built):
    if built is None:
        return '-'
    if 'error' in built:
        return 'unreadable'
    if 'train' not in built:
        return '?'
    return '/'.join(str(built[s]) for s in SPLIT_NAMES)


def _run_text(last):
    return '-' if last is None else last['state']


def format_table(rows):
    lines = [f'{"dataset":<15} {"raw release":<12} {"train/valid/test":<17} {"last build":<11} stages',
             '-' * 90]
    for row in rows:
        raw, last = row['raw'], row['last_run']
        raw_text = 'found' if raw['present'] else 'absent'
        lines.append(f'{row["name"]:<15} {raw_text:<12} {_counts_text(row["built"]):<17} {_run_text(last):<11} '
                     f'{_stages_text(row)}')
        if not raw['present']:
            more = len(raw['expected']) - 2
            lines.append(f'{"":<15} expected: {" or ".join(raw["expected"][:2])}'
                         + (f' (or {more} more)' if more > 0 else ''))
        lines.extend(f'{"":<15} {note}' for note in row.get('notes', []))
        if last and last['state'] == 'failed':
            lines.append(f'{"":<15} last error: {last["error"]}  [{last["log"]}]')
    return '\n'.join(lines)


# ------------------------------------------------------------------------------------------------------------
# The plan build_all.sh follows
def build_plan(names=None, data_root=None):
    """Recipe runs for build_all.sh: [{'run', 'module', 'args', 'present', 'datasets', 'expected'}], one per
    recipe run, in registry order. Without names: every run whose raw release is present (generated releases
    only when named); with names: those runs (a name may be a dataset or a run name; absent releases are
    listed with present False so that the caller reports them as skipped)."""
    from posepile import registry
    from posepile.paths import data_root as get_data_root
    data_root = Path(data_root or get_data_root())
    runs = {}
    for name in registry.DATASETS:
        runs.setdefault(run_name(name), []).append(name)
    if names:
        wanted = []
        for name in names:
            run = name if name in runs else run_name(name)
            if run not in wanted:
                wanted.append(run)
    else:
        wanted = list(runs)
    plan = []
    for run in wanted:
        datasets = runs.get(run, [run])
        main = recipe_of(datasets[0])
        release = raw_release(datasets[0], data_root)
        present = release['present'] or (bool(names) and main.generated)
        plan.append({'run': run, 'module': main.module, 'args': list(main.args), 'present': present,
                     'datasets': datasets, 'expected': release['expected']})
    return plan


def _print_plan(plan):
    """One line per run, tab-separated: run, present (1/0), module, first expected path, main.sh arguments
    (space-separated, last: bash's `read` merges empty tab-separated fields)."""
    for item in plan:
        print('\t'.join([item['run'], '1' if item['present'] else '0', item['module'],
                         item['expected'][0] if item['expected'] else '-', ' '.join(item['args'])]))


def main(argv=None):
    """`posepile status [NAMES...] [--json]`."""
    parser = argparse.ArgumentParser(
        prog='posepile status', description='Per registered dataset: raw release found, stages done, examples '
        'per split, last build error (logs of posepile/ds/build_all.sh in $DATA_ROOT/logs).')
    parser.add_argument('names', nargs='*', help='datasets to show (default: all registered)')
    parser.add_argument('--json', action='store_true', help='machine-readable output')
    parser.add_argument('--build-plan', action='store_true', help=argparse.SUPPRESS)  # for build_all.sh
    args = parser.parse_args(argv)
    if args.build_plan:
        _print_plan(build_plan(args.names))
        return 0
    rows = status(args.names)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(format_table(rows))
    return 0


if __name__ == '__main__':
    from posepile.util.errors import run_cli
    sys.exit(run_cli(main, prog='posepile status'))
