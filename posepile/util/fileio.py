"""Atomic file writing and small (de)serialisation helpers.

Every output of posepile is written to a temporary name in the destination folder and renamed into place
only when complete, so an interrupted run never leaves a half-written file under the final name.
"""
import contextlib
import json
import os
import pickle
import tempfile
from pathlib import Path


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode='wb', encoding=None):
    """Open a temporary file next to `path`; on success fsync and rename it to `path`.

    On any exception the temporary file is removed and `path` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp makes 0600 files; use normal permissions
    try:
        with os.fdopen(fd, mode, encoding=encoding if 'b' not in mode else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        if isinstance(e, OSError) and e.filename is None:  # e.g. ENOSPC from write(): name the file
            raise OSError(e.errno, f'{e.strerror} while writing', str(path)) from e
        raise


def write_bytes_atomic(path, data):
    with atomic_write(path, 'wb') as f:
        f.write(data)


def save_pickle(obj, path):
    with atomic_write(path, 'wb') as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)


def load_pickle(path):
    try:
        with open(path, 'rb') as f:
            return pickle.load(f)
    except (pickle.UnpicklingError, EOFError, AttributeError, ModuleNotFoundError, MemoryError, ValueError,
            TypeError, IndexError) as e:  # a corrupt header can ask for absurd allocations (MemoryError)
        from posepile.util.errors import InputError
        raise InputError(f'{path}: not a readable pickle ({type(e).__name__}: {e})') from e


def save_json(obj, path, indent=None):
    with atomic_write(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=indent)


def load_json(path, error_class=None, required_lists=()):
    """Parsed JSON of a file. Unparsable or non-UTF-8 content raises `error_class` (default InputError, e.g. a
    dataset's FormatError) with one line naming the file; a missing file raises FileNotFoundError.
    required_lists: top-level keys that must hold lists (e.g. COCO-style 'images', 'annotations')."""
    from posepile.util.errors import InputError
    error_class = error_class or InputError
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise error_class(f'{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}') from e
    except UnicodeDecodeError as e:
        raise error_class(f'{path}: not UTF-8 text (byte {e.start}: {e.reason}); corrupt JSON file?') from e
    except IsADirectoryError as e:
        raise error_class(f'{path}: a folder, not a JSON file') from e
    if required_lists and (not isinstance(data, dict) or
                           not all(isinstance(data.get(key), list) for key in required_lists)):
        raise error_class(f'{path}: expected a JSON object with the lists {", ".join(required_lists)}')
    return data


def load_npz(path, error_class=None):
    """{array name: ndarray} of an .npz, every array read in full here, so that a truncated or corrupt file
    (no zip directory, bad CRC, damaged compressed data) or one holding pickled objects raises `error_class`
    (default InputError) with one line naming the file, instead of a zipfile/zlib traceback later. A missing
    file raises FileNotFoundError."""
    import zipfile
    import zlib

    import numpy as np

    from posepile.util.errors import InputError
    error_class = error_class or InputError
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path}: file not found')
    if not zipfile.is_zipfile(path):  # np.load would blame "pickled data", which misleads
        raise error_class(f'{path}: not a .npz (zip) archive (truncated?)')
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: np.asarray(data[key]) for key in data.keys()}
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, KeyError) as e:
        reason = ' '.join(str(e).split()) or type(e).__name__
        if 'allow_pickle' in reason:
            raise error_class(f'{path}: holds object (pickled) arrays; only plain string and number arrays are '
                              'read') from e
        raise error_class(f'{path}: the .npz is damaged ({reason})') from e
