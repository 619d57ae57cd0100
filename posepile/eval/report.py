"""Result tables printed to the terminal and JSON result files."""
import json
import math

from posepile.util.fileio import atomic_write


def _format(value, decimals):
    if isinstance(value, float):
        return 'nan' if math.isnan(value) else f'{value:.{decimals}f}'
    return str(value)


def format_table(title, rows, columns, decimals=1):
    """Fixed-width text table: `rows` are sequences aligned with `columns`."""
    cells = [[_format(v, decimals) for v in row] for row in rows]
    widths = [max(len(str(c)), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [title, '  '.join(str(c).rjust(w) for c, w in zip(columns, widths))]
    lines.append('  '.join('-' * w for w in widths))
    lines += ['  '.join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return '\n'.join(lines)


def print_table(title, rows, columns, decimals=1):
    print(format_table(title, rows, columns, decimals))


def write_json(path, results):
    with atomic_write(path, 'w', encoding='utf-8') as f:
        json.dump(results, f, indent=1, sort_keys=True)
