"""Where data lives. Nothing here runs at import time: DATA_ROOT is read only when a function is called."""
import os
from pathlib import Path


class DataRootError(RuntimeError):
    pass


def data_root():
    """The root folder of raw releases and built datasets, from the DATA_ROOT environment variable."""
    value = os.environ.get('DATA_ROOT')
    if not value:
        raise DataRootError(
            'DATA_ROOT is not set. Point it at a writable folder for raw releases and built datasets, '
            'e.g. `export DATA_ROOT=$HOME/data/posepile`.')
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataRootError(f'DATA_ROOT={value} does not exist or is not a directory. Create it first.')
    return path


def cache_dir():
    """Built datasets are cached here: $POSEPILE_CACHE_DIR, default $DATA_ROOT/cache."""
    value = os.environ.get('POSEPILE_CACHE_DIR')
    path = Path(value).expanduser() if value else data_root() / 'cache'
    path.mkdir(parents=True, exist_ok=True)
    return path


def realdata_root():
    """Folder of real sample files used by tests ($POSEPILE_REALDATA or ../shared/realdata), or None."""
    value = os.environ.get('POSEPILE_REALDATA')
    if value:
        path = Path(value)
        return path if path.is_dir() else None
    path = Path(__file__).resolve().parent.parent.parent / 'shared' / 'realdata'
    return path if path.is_dir() else None


def abs_image_path(path):
    """Image paths are stored relative to DATA_ROOT; absolute paths pass through."""
    path = Path(path)
    return path if path.is_absolute() else data_root() / path
