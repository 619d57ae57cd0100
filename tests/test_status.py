"""`posepile status` and posepile/ds/build_all.sh on a DATA_ROOT with some fake releases present (tdoh, surreal)
and the others absent: status before and after a build, a build that continues past a broken release and
summarises, the last error in the status, Slurm submission (with a stand-in sbatch), and the cheap readers."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from posepile import registry, status
from posepile.preproc import video_stage
from tests.fakes import surreal as fake_surreal
from tests.fakes import tdoh as fake_tdoh

REPO = Path(__file__).resolve().parent.parent


def _env(data_root, **extra):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', **extra)
    env.pop('POSEPILE_CACHE_DIR', None)
    env['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{env.get("PATH", "")}'  # recipes call `python`
    return env


def _status_json(data_root, *names):
    result = subprocess.run([sys.executable, '-m', 'posepile.cli', 'status', '--json', *names], cwd=REPO,
                            env=_env(data_root), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return {row['name']: row for row in json.loads(result.stdout)}


def _build_all(data_root, *names, **env):
    return subprocess.run(['bash', str(REPO / 'posepile/ds/build_all.sh'), *names], cwd=REPO,
                          env=_env(data_root, **env), capture_output=True, text=True, timeout=300)


def _write_tdoh(data_root, images=True):
    train = fake_tdoh.write_fake_release(data_root / 'tdoh', seed=1, n_images=5, split='trainset', images=images)
    test = fake_tdoh.write_fake_release(data_root / 'tdoh', seed=2, n_images=4, split='testset', images=images)
    return train, test


def test_status_and_build_all_on_some_fakes(data_root):
    train, test = _write_tdoh(data_root)
    fake_surreal.write_fake_release(data_root / 'surreal')

    before = _status_json(data_root)
    assert list(before) == list(registry.DATASETS)  # one row per registered dataset, in registry order
    for name in ('tdoh', 'surreal'):
        assert before[name]['raw']['present'] and before[name]['stages'] == []
        assert before[name]['built'] is None and before[name]['last_run'] is None
    assert not before['h36m']['raw']['present']
    assert str(data_root / 'h36m' / 'metadata.xml') in before['h36m']['raw']['expected']
    assert not any(row['raw']['present'] for name, row in before.items() if name not in ('tdoh', 'surreal'))
    assert not (data_root / 'cache').exists()  # a status query creates nothing

    # build one of them (an absent release named along is skipped and reported with where it is expected)
    result = _build_all(data_root, 'tdoh', 'h36m_alljoints')
    assert result.returncode == 0, result.stdout + result.stderr
    assert '1 succeeded, 0 failed, 1 skipped' in result.stdout
    assert 'succeeded  tdoh' in result.stdout
    assert f'skipped    h36m (expected {data_root / "h36m" / "metadata.xml"})' in result.stdout
    after = _status_json(data_root, 'tdoh', 'surreal', 'h36m_alljoints')
    assert after['tdoh']['built']['train'] == len(train) and after['tdoh']['built']['test'] == len(test)
    assert after['tdoh']['built']['valid'] == 0
    assert after['tdoh']['stages'] == [{'stage': 'crops', 'kind': 'shards', 'done': True, 'detail': 'shards 1/1'}]
    assert after['tdoh']['last_run']['state'] == 'ok' and after['tdoh']['last_run']['error'] is None
    assert after['surreal']['built'] is None and after['surreal']['last_run'] is None
    assert after['h36m_alljoints']['run'] == 'h36m'

    # break tdoh; without names every present release is built: surreal succeeds, tdoh fails, the run goes on
    (data_root / 'tdoh' / 'trainset' / 'annots.json').write_text('{"00000": [1, 2')
    result = _build_all(data_root)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith('build_all summary: 1 succeeded, 1 failed, ')
    assert '  succeeded  surreal' in lines
    failed = [line for line in lines if line.startswith('  FAILED     tdoh: ')]
    assert len(failed) == 1 and 'trainset/annots.json' in failed[0] and str(data_root / 'logs/tdoh.log') in failed[0]
    skipped = next(line for line in lines if line.startswith('  skipped    '))
    assert 'h36m' in skipped.split() and 'tdoh' not in skipped.split() and 'demo' in skipped.split()
    log = (data_root / 'logs' / 'tdoh.log').read_text().splitlines()
    assert log[-1].startswith('[build_all] tdoh: exit status 1')

    final = _status_json(data_root, 'tdoh', 'surreal')
    error = final['tdoh']['last_run']['error']
    assert final['tdoh']['last_run']['state'] == 'failed' and final['tdoh']['last_run']['exit_status'] == 1
    assert str(data_root / 'tdoh' / 'trainset' / 'annots.json') in error and error == log[-2]
    assert final['tdoh']['built']['train'] == len(train)  # the earlier build is still there
    surreal_row = final['surreal']
    assert surreal_row['last_run']['state'] == 'ok' and surreal_row['built']['train'] > 0
    stage_names = [s['stage'] for s in surreal_row['stages']]
    assert stage_names == ['selection.json', 'crops'], stage_names
    crops = surreal_row['stages'][1]
    assert crops['kind'] == 'videos' and crops['done'] and crops['detail'] == 'videos 2/2'

    text = subprocess.run([sys.executable, '-m', 'posepile.cli', 'status', 'tdoh', 'surreal', 'fit3d'], cwd=REPO,
                          env=_env(data_root), capture_output=True, text=True, timeout=120)
    assert text.returncode == 0, text.stderr
    rows = text.stdout.splitlines()
    assert rows[2].split()[:4] == ['tdoh', 'found', f'{len(train)}/0/{len(test)}', 'failed']
    assert rows[3].strip().startswith('last error: ') and error in rows[3]
    counts = f'{surreal_row["built"]["train"]}/0/{surreal_row["built"]["test"]}'
    assert rows[4].split()[:4] == ['surreal', 'found', counts, 'ok']
    assert rows[5].split()[:2] == ['fit3d', 'absent']
    assert rows[6].strip().startswith(f'expected: {data_root / "fit3d" / "fit3d_info.json"} or ')


def test_build_all_with_slurm_submits_one_job_per_recipe(data_root, tmp_path):
    """A stand-in sbatch records its arguments and runs the --wrap command into --output (as the job would)."""
    _write_tdoh(data_root, images=False)  # present, but its crops fail: no images
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    calls = tmp_path / 'sbatch_calls.txt'
    (bin_dir / 'sbatch').write_text(f'''#!/usr/bin/env bash
printf '%s\\n' "$@" >> {calls}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --output) output="$2"; shift 2 ;;
    --chdir) chdir="$2"; shift 2 ;;
    --wrap) wrap="$2"; shift 2 ;;
    *) shift ;;
  esac
done
(cd "$chdir" && bash -c "$wrap") > "$output" 2>&1
echo 4242
''')
    (bin_dir / 'sbatch').chmod(0o755)
    env = {'POSEPILE_SLURM': '1', 'POSEPILE_SLURM_OPTIONS': '--cpus-per-task=2 --time=10'}
    result = _build_all(data_root, 'tdoh', 'fit3d', PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}', **env)
    assert result.returncode == 0, result.stdout + result.stderr  # submitted; the jobs' outcomes come later
    assert 'submitted  tdoh (job 4242, log ' in result.stdout and 'skipped    fit3d' in result.stdout
    arguments = calls.read_text().splitlines()
    assert arguments[arguments.index('--output') + 1] == str(data_root / 'logs' / 'tdoh.log')
    assert arguments[arguments.index('--chdir') + 1] == str(REPO)
    assert '--cpus-per-task=2' in arguments and '--time=10' in arguments
    assert 'bash posepile/ds/tdoh/main.sh' in arguments[arguments.index('--wrap') + 1]
    row = _status_json(data_root, 'tdoh')['tdoh']
    assert row['last_run']['state'] == 'failed' and row['last_run']['error']


def test_imar_names_are_separate_runs_and_table_covers_registry(data_root, monkeypatch):
    plan = {item['run']: item for item in status.build_plan(['fit3d', 'h36m_alljoints', 'coco_single', 'demo'])}
    assert plan['fit3d']['module'] == 'imar' and plan['fit3d']['args'] == ['fit3d']
    assert plan['h36m']['datasets'] == ['h36m', 'h36m_alljoints'] and not plan['h36m']['present']
    assert plan['coco']['datasets'] == ['coco', 'coco_single']
    assert plan['demo']['present']  # generates its own release: runs when named
    assert not any(item['run'] == 'demo' for item in status.build_plan() if item['present'])
    for name, recipe in status.RECIPES.items():
        assert name in registry.DATASETS, name
        assert (REPO / 'posepile' / 'ds' / recipe.module / 'main.sh').is_file(), name
    # a registered name the table does not know: module from the registry, raw folder = its name
    monkeypatch.setitem(registry.DATASETS, 'newset', 'posepile.ds.newset.main:make_dataset')
    assert not status.raw_release('newset', data_root)['present']
    (data_root / 'newset' / 'posepile_work').mkdir(parents=True)
    assert not status.raw_release('newset', data_root)['present']
    (data_root / 'newset' / 'release.zip').write_bytes(b'x')
    assert status.raw_release('newset', data_root)['present']
    assert status.recipe_of('newset').module == 'newset'
    with pytest.raises(status.StatusError, match='unknown dataset'):
        status.recipe_of('nosuchset')


def test_partial_stages_and_unfinished_log(data_root):
    crops = data_root / 'surreal' / 'posepile_work' / 'crops'
    crops.mkdir(parents=True)
    (crops / video_stage.MANIFEST_NAME).write_text(json.dumps({'video_keys': ['a/1', 'b/2']}))
    video_stage.result_path(crops, 'a/1').parent.mkdir()
    video_stage.result_path(crops, 'a/1').write_bytes(b'')
    shards = data_root / 'mpii' / 'posepile_work' / 'crops'
    shards.mkdir(parents=True)
    (shards / 'crops_shard-0001-of-0003.pkl').write_bytes(b'')
    (data_root / 'mpii' / 'posepile_work' / 'crops_yolo').mkdir()
    assert status.stages('surreal', data_root) == [
        {'stage': 'crops', 'kind': 'videos', 'done': False, 'detail': 'videos 1/2'}]
    assert status.stages('mpii', data_root) == [
        {'stage': 'crops', 'kind': 'shards', 'done': False, 'detail': 'shards 1/3'}]
    assert [s['stage'] for s in status.stages('mpii_yolo', data_root)] == ['crops_yolo']
    (data_root / 'logs').mkdir()
    (data_root / 'logs' / 'mpii.log').write_text('[build_all] mpii: bash posepile/ds/mpii/main.sh (started x)\n'
                                                 'crops 1/1: 40%\n')
    assert status.last_run('mpii', data_root)['state'] == 'unfinished'
    assert status.last_run('surreal', data_root) is None
