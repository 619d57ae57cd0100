"""Reading pickled pandas DataFrames (AGORA's `*_withjv.pkl` tables) without pandas and without running
arbitrary code.

`load_table(path)` returns a `Table`: {column name: list of the column's per-row values}. The unpickler only
resolves the globals a DataFrame pickle of pandas 1.x/2.x is made of, and maps every pandas name to an inert
stand-in defined here that merely stores what it is given:

- pandas.core.frame.DataFrame, pandas.core.internals.managers.BlockManager (pandas <= 1.2: NEWOBJ + the
  "0.14.1" state tuple; pandas >= 1.3: reduced from (blocks, axes)), pandas._libs.internals._unpickle_block,
  pandas.core.indexes.base._new_Index with Index / RangeIndex / Int64Index / ... as its class argument;
- numpy's array, dtype and scalar reconstruction (numpy.core / numpy._core multiarray._reconstruct, scalar,
  numeric._frombuffer, numpy.ndarray, numpy.dtype) and builtins.slice.

Any other global (os.system, eval, a pandas extension array, ...) raises PandasPickleError naming it.
What remains trusted: numpy's own reconstruction of arrays, dtypes and scalars from the pickled bytes (as
with np.load(allow_pickle=True) on an array of plain values), and the pickle machinery of CPython itself.
"""
import io
import pickle

import numpy as np


class PandasPickleError(ValueError):
    pass


class _Stored:
    """Inert stand-in for a pandas class: keeps its constructor arguments and pickled state."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state):
        self.state = state


class _DataFrame(_Stored):
    pass


class _BlockManager(_Stored):
    pass


class _IndexClass:
    """Marks an Index class passed to _new_Index."""

    def __init__(self, name):
        self.name = name


def _unpickle_block(values, placement, ndim=2):
    return ('block', values, placement)


def _new_index(cls, d):
    if isinstance(cls, _IndexClass) and cls.name == 'RangeIndex':
        return list(range(int(d.get('start', 0)), int(d['stop']), int(d.get('step', 1))))
    if 'data' not in d:
        raise PandasPickleError(f'an index without data ({sorted(d)})')
    return list(np.asarray(d['data']).tolist())


_INDEX_CLASSES = ('Index', 'RangeIndex', 'Int64Index', 'UInt64Index', 'Float64Index', 'NumericIndex')


def _allowed_globals():
    allowed = {('pandas.core.frame', 'DataFrame'): _DataFrame,
               ('pandas.core.internals.managers', 'BlockManager'): _BlockManager,
               ('pandas.core.internals', 'BlockManager'): _BlockManager,
               ('pandas._libs.internals', '_unpickle_block'): _unpickle_block,
               ('pandas.core.internals.blocks', '_unpickle_block'): _unpickle_block,
               ('pandas.core.indexes.base', '_new_Index'): _new_index,
               ('numpy', 'ndarray'): np.ndarray, ('numpy', 'dtype'): np.dtype,
               ('builtins', 'slice'): slice}
    for module in ('pandas.core.indexes.base', 'pandas.core.indexes.range', 'pandas.core.indexes.numeric'):
        for name in _INDEX_CLASSES:
            allowed[(module, name)] = _IndexClass(name)
    from numpy._core import multiarray, numeric  # numpy >= 2 (older pickles name numpy.core.*)
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        allowed[(module, '_reconstruct')] = multiarray._reconstruct
        allowed[(module, 'scalar')] = multiarray.scalar
    for module in ('numpy.core.numeric', 'numpy._core.numeric'):
        allowed[(module, '_frombuffer')] = numeric._frombuffer
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file):
        super().__init__(file)
        self._allowed = _allowed_globals()

    def find_class(self, module, name):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise PandasPickleError(f'refusing global {module}.{name} (not part of a plain DataFrame)') from None


class Table(dict):
    """{column: list of per-row values} with the row labels in `index`; len() is the number of ROWS (as a
    DataFrame's), `columns` the column names in order."""

    def __init__(self, columns, index):
        super().__init__(columns)
        self.index = list(index)

    def __len__(self):
        return len(self.index)

    @property
    def columns(self):
        return list(self.keys())


def _manager_parts(manager):
    """(axes, [(values, placement)]) of a pickled BlockManager in either pandas layout."""
    if manager.state is None:  # pandas >= 1.3: BlockManager(blocks, axes)
        blocks, axes = manager.args[:2]
        return list(axes), [(b[1], b[2]) for b in blocks]
    state = manager.state
    if not (isinstance(state, tuple) and len(state) >= 4 and isinstance(state[3], dict) and '0.14.1' in state[3]):
        raise PandasPickleError('unsupported BlockManager state (pandas < 0.14.1?)')
    state = state[3]['0.14.1']
    return list(state['axes']), [(b['values'], b['mgr_locs']) for b in state['blocks']]


def _positions(placement, n_columns):
    if isinstance(placement, slice):
        return list(range(n_columns))[placement]
    return [int(p) for p in np.asarray(placement).ravel()]


def table_from_frame(frame):
    if not isinstance(frame, _DataFrame) or not isinstance(frame.state, dict):
        raise PandasPickleError(f'not a pickled DataFrame (got {type(frame).__name__})')
    manager = frame.state.get('_mgr', frame.state.get('_data'))
    if not isinstance(manager, _BlockManager):
        raise PandasPickleError('the DataFrame has no BlockManager')
    axes, blocks = _manager_parts(manager)
    if len(axes) != 2:
        raise PandasPickleError(f'{len(axes)} axes, expected 2')
    column_names, index = axes
    n_rows = len(index)
    columns = {}
    for values, placement in blocks:
        values = np.asarray(values)
        if values.ndim == 1:
            values = values[np.newaxis]
        positions = _positions(placement, len(column_names))
        if values.shape != (len(positions), n_rows):
            raise PandasPickleError(f'a block of shape {values.shape} for {len(positions)} columns x {n_rows} rows')
        for position, row_values in zip(positions, values):
            columns[column_names[position]] = list(row_values)
    if len(columns) != len(column_names):
        raise PandasPickleError(f'the blocks cover {len(columns)} of {len(column_names)} columns')
    return Table({name: columns[name] for name in column_names}, index)


def loads_table(data):
    try:
        frame = _RestrictedUnpickler(io.BytesIO(data)).load()
    except PandasPickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise PandasPickleError(f'not a readable pickle ({type(e).__name__}: {e})') from None
    return table_from_frame(frame)


def load_table(path):
    """The DataFrame pickled at `path` as a Table; PandasPickleError (one line naming the file) otherwise."""
    try:
        with open(path, 'rb') as f:
            return loads_table(f.read())
    except PandasPickleError as e:
        raise PandasPickleError(f'{path}: {e}') from None
