"""Every recipe, by construction: the structure of posepile/ds/<name>/, the one error type, and the first
fault any user meets — running a recipe before its raw release is in place ends non-zero with one line
naming where the release is expected (never an empty 'successful' build, never a traceback)."""
import importlib
import re
from pathlib import Path

import pytest

from posepile import registry
from posepile.util.errors import InputError
from tests import faults

DS = Path(__file__).resolve().parent.parent / 'posepile' / 'ds'
RECIPES = sorted(p.parent.name for p in DS.glob('*/main.sh') if p.parent.name != 'demo')


def test_every_registered_dataset_has_a_recipe_a_fake_and_a_test():
    folders = {target.split(':')[0].split('.')[2] for target in registry.DATASETS.values()}
    tests = Path(__file__).resolve().parent
    for folder in folders - {'demo'}:
        assert (DS / folder / 'main.sh').exists(), folder
        assert (tests / 'fakes' / f'{folder}.py').exists(), f'tests/fakes/{folder}.py missing'
        assert list(tests.glob(f'test_{folder}*recipe*.py')), f'tests/test_{folder}_recipe.py missing'


@pytest.mark.parametrize('folder', RECIPES)
def test_recipe_structure_and_error_type(folder):
    script = (DS / folder / 'main.sh').read_text()
    assert script.startswith('#!/usr/bin/env bash')
    assert 'set -euo pipefail' in script and 'check_data_root' in script and 'functions.sh' in script
    assert re.search(r'https?://', script), 'main.sh names the official URL'
    assert '|| true' not in script, 'errors must propagate'
    module = importlib.import_module(f'posepile.ds.{folder}.main')
    errors = [v for k, v in vars(module).items() if k.endswith('FormatError') and isinstance(v, type)]
    assert all(issubclass(e, InputError) for e in errors), errors


@pytest.mark.parametrize('folder', RECIPES)
def test_recipe_without_its_raw_release_fails_in_one_line(folder, tmp_path):
    (tmp_path / folder).mkdir()
    result = faults.run_recipe(folder, tmp_path, timeout=300)
    faults.assert_one_line_failure(result, str(tmp_path))


@pytest.mark.parametrize('folder', RECIPES)
def test_skip_broken_defaults_to_the_environment(folder):
    """SKIP_BROKEN=1 reaches every stage: a skip_broken parameter defaults to None (the environment setting)."""
    import inspect
    module = importlib.import_module(f'posepile.ds.{folder}.main')
    for name, function in vars(module).items():
        if inspect.isfunction(function) and function.__module__ == module.__name__:
            parameter = inspect.signature(function).parameters.get('skip_broken')
            assert parameter is None or parameter.default is None, f'{folder}.{name}: skip_broken default'
