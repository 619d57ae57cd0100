"""Fingerprints of stage inputs: a stage output records them, and a rerun redoes exactly the work whose
inputs or options changed (see posepile.preproc.pipeline and posepile.preproc.video_stage)."""
import hashlib
from pathlib import Path

import numpy as np


def file_stamp(path):
    """[size, mtime_ns] of a file, or None if it does not exist (cheap: no content read)."""
    try:
        stat = Path(path).stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return [stat.st_size, stat.st_mtime_ns]


def digest(*values):
    """Hex SHA-1 of a canonical form of the values (arrays, dicts, lists, scalars, and objects by their
    public attributes: caches whose names start with '_' and transient pixels are left out)."""
    h = hashlib.sha1()
    for value in values:
        _update(h, value)
    return h.hexdigest()


def _update(h, value):
    if isinstance(value, np.ndarray):
        h.update(f'A{value.dtype.str}{value.shape}'.encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, dict):
        h.update(f'D{len(value)}'.encode())
        for k in sorted(value, key=str):
            _update(h, str(k))
            _update(h, value[k])
    elif isinstance(value, (list, tuple)):
        h.update(f'L{len(value)}'.encode())
        for item in value:
            _update(h, item)
    elif value is None or isinstance(value, (bool, int, float, str, bytes, np.generic, Path)):
        h.update(repr(value).encode())
    else:
        names = getattr(type(value), '__slots__', None) or sorted(vars(value))
        h.update(type(value).__name__.encode())
        for name in names:
            if not name.startswith('_') and name != 'image':
                _update(h, name)
                _update(h, getattr(value, name, None))
