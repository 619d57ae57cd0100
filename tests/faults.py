"""Fault injection for recipe tests: every recipe test calls `check_fault_is_reported_and_repaired` with the
faults that matter for its raw formats, so each recipe is held to the bad-input contract:

- a broken input never yields a silent build: the recipe exits non-zero, and the last line on stderr names
  the broken file (no traceback unless POSEPILE_DEBUG=1);
- fixing the input and rerunning repairs the build: the outputs are byte-identical to a clean build's.

Faults are functions of a path that damage the file in place: `truncate`, `corrupt`, `remove`, or a custom
edit (e.g. writing inf into a JSON or a wrong joint count).
"""
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def truncate(fraction=0.5):
    def fault(path):
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[:int(len(data) * fraction)])
    fault.__name__ = f'truncate({fraction})'
    return fault


def corrupt(n_bytes=64, at=0.5, seed=0):
    """Overwrite n_bytes in the middle of the file with random bytes (same size, wrong content)."""
    def fault(path):
        data = bytearray(Path(path).read_bytes())
        start = min(len(data) - 1, int(len(data) * at))
        noise = np.random.default_rng(seed).integers(0, 256, n_bytes, dtype=np.uint8).tobytes()
        data[start:start + n_bytes] = noise[:len(data) - start]
        Path(path).write_bytes(bytes(data))
    fault.__name__ = f'corrupt({n_bytes})'
    return fault


def remove(path):
    Path(path).unlink()


def replace_text(old, new):
    def fault(path):
        text = Path(path).read_text()
        assert old in text, f'{old!r} not in {path}'
        Path(path).write_text(text.replace(old, new, 1))
    fault.__name__ = f'replace_text({old!r} -> {new!r})'
    return fault


def run_recipe(recipe, data_root, env_extra=None, timeout=900):
    """bash posepile/ds/<recipe>/main.sh with DATA_ROOT = data_root and the test's python first on PATH."""
    import sys
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1',
               PATH=f'{Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}')
    env.pop('POSEPILE_CACHE_DIR', None)
    env.pop('POSEPILE_DEBUG', None)
    env.update(env_extra or {})
    script = recipe if str(recipe).endswith('.sh') else REPO / 'posepile' / 'ds' / recipe / 'main.sh'
    return subprocess.run(['bash', str(script)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def output_bytes(data_root, patterns=('*_downscaled/**/*.jpg', 'cache/**/*')):
    """{relative path: bytes} of a build's outputs: crops and the cached datasets."""
    root = Path(data_root)
    files = {}
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                files[str(path.relative_to(root))] = path.read_bytes()
    return files


def assert_one_line_failure(result, *names):
    """Exit status non-zero; the last stderr line names each of `names`; no Python traceback."""
    assert result.returncode != 0, f'the recipe exited 0 despite the fault\n{result.stderr[-2000:]}'
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, 'no error message on stderr'
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert any(all(name in line for name in names) for line in lines[-3:]), \
        f'the last lines do not name {names}:\n' + '\n'.join(lines[-3:])


def check_fault_is_reported_and_repaired(recipe, write_release, target, fault, tmp_path, reference=None,
                                         names=None, env_extra=None, output_patterns=None):
    """Build a clean release (or use `reference`: the outputs of one), then the same release with `fault`
    applied to `target` (relative to the data root): the recipe must fail naming the file; after the file is
    restored, a rerun must give outputs byte-identical to the clean build. Returns the clean outputs.

    write_release(data_root) writes the fake release (deterministically) into data_root. output_patterns: globs
    (relative to the data root) of the outputs compared, for recipes whose products are not crops or cached
    datasets (default: output_bytes' patterns); a clean build without any output fails the check.
    """
    patterns = output_patterns or ('*_downscaled/**/*.jpg', 'cache/**/*')
    if reference is None:
        clean = Path(tmp_path) / 'clean'
        clean.mkdir()
        write_release(clean)
        result = run_recipe(recipe, clean, env_extra)
        assert result.returncode == 0, result.stderr[-3000:]
        reference = output_bytes(clean, patterns)
        assert reference, f'the clean build wrote nothing matching {patterns}: nothing to compare'
    faulty = Path(tmp_path) / f'faulty_{fault.__name__}'.replace('(', '_').replace(')', '').replace(' ', '')
    faulty.mkdir()
    write_release(faulty)
    path = faulty / target
    backup = faulty.parent / (faulty.name + '.backup')
    shutil.copy2(path, backup)
    fault(path)
    result = run_recipe(recipe, faulty, env_extra)
    assert_one_line_failure(result, *(names or [Path(target).name]))
    shutil.copy(backup, path)  # the fixed file (a new mtime, as after a real fix)
    result = run_recipe(recipe, faulty, env_extra)
    assert result.returncode == 0, result.stderr[-3000:]
    repaired = output_bytes(faulty, patterns)
    assert repaired.keys() == reference.keys(), sorted(set(repaired) ^ set(reference))[:10]
    assert [k for k in reference if repaired[k] != reference[k]] == []
    return reference


def check_damage_after_a_build_is_noticed(recipe, write_release, target, fault, tmp_path, names=None,
                                          env_extra=None, output_patterns=None):
    """A finished build, then `fault` applied to `target` (relative to the data root): the rerun must not reuse
    outputs made from the old file but fail naming it; after the file is restored (a new mtime), a rerun must
    give outputs byte-identical to the first build's. Returns those outputs."""
    patterns = output_patterns or ('*_downscaled/**/*.jpg', 'cache/**/*')
    root = Path(tmp_path) / 'built'
    root.mkdir()
    write_release(root)
    result = run_recipe(recipe, root, env_extra)
    assert result.returncode == 0, result.stderr[-3000:]
    reference = output_bytes(root, patterns)
    assert reference, f'the build wrote nothing matching {patterns}: nothing to compare'
    path = root / target
    backup = Path(tmp_path) / 'backup'
    shutil.copy2(path, backup)
    fault(path)
    result = run_recipe(recipe, root, env_extra)
    assert_one_line_failure(result, *(names or [Path(target).name]))
    shutil.copy(backup, path)
    result = run_recipe(recipe, root, env_extra)
    assert result.returncode == 0, result.stderr[-3000:]
    repaired = output_bytes(root, patterns)
    assert repaired.keys() == reference.keys(), sorted(set(repaired) ^ set(reference))[:10]
    assert [k for k in reference if repaired[k] != reference[k]] == []
    return reference
