"""Result tables printed to the terminal and JSON result files."""
import json
import math
import numbers

import numpy as np

from posepile.util.fileio import atomic_write


def _format(value, decimals):
    if isinstance(value, (bool, np.bool_)) or isinstance(value, numbers.Integral):
        return str(value)
    if isinstance(value, numbers.Real):  # float, np.float32, np.float64, ...
        value = float(value)
        return 'nan' if math.isnan(value) else f'{value:.{decimals}f}'
    return str(value)


def format_table(title, rows, columns, decimals=1):
    """Fixed-width text table under `title`: `rows` are sequences of cells aligned with `columns`.
    Real numbers are printed with `decimals` decimals (NaN as 'nan'), integers and text as they are."""
    cells = [[_format(v, decimals) for v in row] for row in rows]
    for i, row in enumerate(cells):
        if len(row) != len(columns):
            raise ValueError(f'table {title!r}: row {i} has {len(row)} cells for {len(columns)} columns')
    widths = [max(len(str(c)), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [title, '  '.join(str(c).rjust(w) for c, w in zip(columns, widths)),
             '  '.join('-' * w for w in widths)]
    lines += ['  '.join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return '\n'.join(lines)


def print_table(title, rows, columns, decimals=1):
    """Print format_table(...) to stdout (the CLI's result output)."""
    print(format_table(title, rows, columns, decimals))


def _to_json(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f'cannot write {type(value).__name__} to JSON')


def write_json(path, results):
    """Write `results` (dicts, lists, numbers incl. numpy scalars/arrays) as JSON, atomically.
    NaN is written as NaN (Python's json reads it back)."""
    with atomic_write(path, 'w', encoding='utf-8') as f:
        json.dump(results, f, indent=1, sort_keys=True, default=_to_json)
