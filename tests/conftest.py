import os
from pathlib import Path

import pytest

from posepile.paths import realdata_root


@pytest.fixture(scope='session')
def realdata():
    """Folder of real sample files (../shared/realdata or $POSEPILE_REALDATA); skips when absent."""
    root = realdata_root()
    if root is None:
        pytest.skip('real sample data not found: set POSEPILE_REALDATA or place it at ../shared/realdata')
    return Path(root)


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """A fresh DATA_ROOT for one test."""
    root = tmp_path / 'data_root'
    root.mkdir()
    monkeypatch.setenv('DATA_ROOT', str(root))
    monkeypatch.delenv('POSEPILE_CACHE_DIR', raising=False)
    return root


def realdata_file(realdata, relpath):
    path = Path(realdata) / relpath
    if not path.exists():
        pytest.skip(f'real sample {relpath} not found under {realdata}')
    return path


REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault('OMP_NUM_THREADS', '1')
