"""Disk full while writing a dataset cache (issue 27): write() reports ENOSPC without a file name, which
used to reach the user as a bare `[Errno 28] No space left on device`. The error now names the cache being
written (as fileio.atomic_write does for single files), no temporary folder is left, and the previous
version of the cache stays loadable."""
import errno

import pytest

from posepile.datasets3d import TRAIN
from posepile.storage import annotations
from posepile.util import fileio
from posepile.util.errors import one_line, run_cli
from tests.test_storage import make_3d


def _disk_full_after(n_bytes):
    """A write() that takes n_bytes in total, then fails as a full disk does (ENOSPC, no file name)."""
    written = {'n': 0}

    def write(self, data):
        if written['n'] + len(data) > n_bytes:
            raise OSError(errno.ENOSPC, 'No space left on device')
        written['n'] += len(data)
        return len(data)
    return write


class _FullDisk:
    """Wraps a binary file object so that its writes hit a full disk after n_bytes."""

    def __init__(self, f, write):
        self._f, self._write = f, write

    def write(self, data):
        return self._write(self, bytes(data))

    def __getattr__(self, name):
        return getattr(self._f, name)


@pytest.mark.parametrize('fail_in', ['column', 'header'])
def test_disk_full_names_the_cache(tmp_path, monkeypatch, capsys, fail_in):
    path = tmp_path / 'cache' / 'toy.posepile'
    annotations.save_dataset(make_3d((2, 0, 0)), path)
    write = _disk_full_after(3000)
    if fail_in == 'column':
        monkeypatch.setattr(annotations._ColumnFiles, '_open', staticmethod(
            lambda column_path: _FullDisk(open(column_path, 'wb'), write)))
    else:  # atomic_write names its temporary file (inside the temporary folder) when the disk is full
        def save_json(obj, json_path, indent=None):
            raise OSError(errno.ENOSPC, 'No space left on device while writing', str(json_path))
        monkeypatch.setattr(fileio, 'save_json', save_json)

    with pytest.raises(OSError) as info:
        annotations.save_dataset(make_3d((50, 0, 0)), path)
    message = one_line(info.value)
    assert info.value.errno == errno.ENOSPC
    assert str(path) in message and 'No space left on device' in message and 'dataset cache' in message
    assert '.tmp' not in message  # the cache's own name, not the temporary folder's

    # through a command line: one line naming the cache
    def main(argv):
        annotations.save_dataset(make_3d((50, 0, 0)), path)
    assert run_cli(main, []) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and 'Errno 28' in lines[0]

    monkeypatch.undo()
    assert sorted(p.name for p in path.parent.iterdir()) == ['toy.posepile']  # no temporary folder left
    assert len(annotations.load_dataset(path).examples[TRAIN]) == 2  # the previous version is intact


def test_atomic_write_names_the_file_on_enospc(tmp_path, monkeypatch):
    target = tmp_path / 'out.bin'
    with pytest.raises(OSError) as info:
        with fileio.atomic_write(target) as f:
            _FullDisk(f, _disk_full_after(10)).write(b'y' * 100)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []
