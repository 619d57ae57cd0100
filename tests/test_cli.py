import os
import subprocess
import sys

from posepile import registry


def _run(args, env_update=None, env_remove=()):
    env = dict(os.environ)
    for key in env_remove:
        env.pop(key, None)
    env.update(env_update or {})
    return subprocess.run([sys.executable, '-m', 'posepile.cli', *args], capture_output=True, text=True,
                          env=env)


def test_help_lists_subcommands():
    result = _run(['--help'])
    assert result.returncode == 0
    for word in ('list', 'build', 'export', 'verify', 'show', 'eval'):
        assert word in result.stdout


def test_list_without_data_root():
    result = _run(['list'], env_remove=('DATA_ROOT', 'POSEPILE_CACHE_DIR'))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 + len(registry.DATASETS)
    assert all(line.endswith('DATA_ROOT not set') for line in lines[1:])


def test_list_shows_built_datasets(tmp_path):
    (tmp_path / 'cache' / 'h36m.posepile').mkdir(parents=True)
    result = _run(['list'], env_update={'DATA_ROOT': str(tmp_path)}, env_remove=('POSEPILE_CACHE_DIR',))
    assert result.returncode == 0, result.stderr
    status = {line.split()[0]: line.split()[-1] for line in result.stdout.splitlines()[1:]}
    assert status['h36m'] == 'yes' and status['tdhp'] == 'no'


def test_unknown_dataset_is_a_clear_error(tmp_path):
    result = _run(['build', 'nonexistent'], env_update={'DATA_ROOT': str(tmp_path)})
    assert result.returncode != 0
    assert "Unknown dataset 'nonexistent'" in result.stderr
