"""Reading the official SMPL, SMPL+H and SMPL-X model files without chumpy, torch or arbitrary unpickling.

Which files are searched (case-insensitively, first match wins), in `model_dir` and in `model_dir/<model_type>`:
- smpl:  SMPL_{FEMALE,MALE,NEUTRAL}.pkl, basicmodel_{f,m,neutral}_lbs_10_207_0_v1.1.0.pkl (SMPL v1.1.0),
  basicModel_{f,m,neutral}_lbs_10_207_0_v1.0.0.pkl (SMPL v1.0.0; the neutral one is SMPLify's), SMPL_*.npz.
- smplh: SMPLH_{female,male}.pkl (MANO package), SMPLH_{FEMALE,MALE,NEUTRAL}.npz/.pkl,
  {female,male,neutral}/model.npz (the extended SMPL+H model, 16 betas).
- smplx: SMPLX_{FEMALE,MALE,NEUTRAL}.npz, then .pkl.

What is trusted when reading a pickle (.pkl, or object arrays inside an .npz): `_RestrictedUnpickler` resolves only
numpy's array/scalar/dtype reconstructors, scipy.sparse matrix classes (replaced by a plain record of their
`data/indices/indptr/shape` state), chumpy classes (replaced by a plain record of their pickled state: `Ch` is read
from its stored value `x`, `Select` from `a`, `idxs`, `preferred_shape`), plain builtin containers and
`copyreg._reconstructor` for those records only. Any other global (os.system, builtins.eval, ...) raises
`BodyModelFormatError` before anything is called, so a file can at worst hold wrong numbers: the array contents and
sizes are trusted, no code in the file is ever run.
"""
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

GENDERS = {'f': 'female', 'female': 'female', 'm': 'male', 'male': 'male', 'n': 'neutral', 'neutral': 'neutral'}
MODEL_URLS = {'smpl': 'https://smpl.is.tue.mpg.de', 'smplh': 'https://mano.is.tue.mpg.de',
              'smplx': 'https://smpl-x.is.tue.mpg.de'}
REQUIRED_KEYS = ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights', 'kintree_table', 'f')


class BodyModelFormatError(ValueError):
    """A body-model file is unreadable or inconsistent; the one-line message names the file and the problem."""


class BodyModelNotFoundError(BodyModelFormatError, FileNotFoundError):
    """No file of the requested model type and gender; the message names the expected files and the website."""


def normalize_gender(gender):
    try:
        return GENDERS[str(gender).strip().lower()]
    except KeyError:
        raise BodyModelFormatError(f'unknown gender {gender!r}: use female, male or neutral (or f, m, n)') from None


def candidate_filenames(model_type, gender):
    """File names that hold the `model_type` model of `gender` ('female', 'male' or 'neutral'), preferred first."""
    g1, gu = {'female': 'f', 'male': 'm', 'neutral': 'neutral'}[gender], gender.upper()
    if model_type == 'smpl':
        return [f'SMPL_{gu}.pkl', f'basicmodel_{g1}_lbs_10_207_0_v1.1.0.pkl',
                f'basicModel_{g1}_lbs_10_207_0_v1.0.0.pkl', f'SMPL_{gu}.npz']
    if model_type == 'smplh':
        return [f'SMPLH_{gender}.pkl', f'SMPLH_{gu}.npz', f'{gender}/model.npz']
    if model_type == 'smplx':
        return [f'SMPLX_{gu}.npz', f'SMPLX_{gu}.pkl']
    raise BodyModelFormatError(f'unknown body model type {model_type!r}: use smpl, smplh or smplx')


def default_model_dir(model_type):
    """$DATA_ROOT/body_models/<model_type> (the layout the original PosePile expects)."""
    from posepile.paths import data_root
    return data_root() / 'body_models' / model_type


def find_model_file(model_type, gender, model_dir=None):
    """Path of the model file: `model_dir` itself if it is a file, else the first candidate name found
    (case-insensitively) in `model_dir` or `model_dir/<model_type>`; BodyModelNotFoundError otherwise."""
    model_dir = Path(default_model_dir(model_type) if model_dir is None else model_dir).expanduser()
    if model_dir.is_file():
        return model_dir
    names = candidate_filenames(model_type, gender)
    folders = [model_dir, model_dir / model_type]
    for name in names:
        for folder in folders:
            found = _find_case_insensitive(folder, name)
            if found is not None:
                return found
    raise BodyModelNotFoundError(
        f'no {model_type} {gender} model in {model_dir} (or its {model_type}/ subfolder): expected one of '
        f'{", ".join(names)}; register and download it at {MODEL_URLS[model_type]}')


def _find_case_insensitive(folder, relpath):
    path = folder
    for part in Path(relpath).parts:
        if not path.is_dir():
            return None
        exact = path / part
        if exact.exists():
            path = exact
            continue
        matches = [p for p in path.iterdir() if p.name.lower() == part.lower()]
        if not matches:
            return None
        path = sorted(matches)[0]
    return path if path.is_file() else None


# ------------------------------------------------------------------------------------------------
# Restricted unpickling
class _Record:
    """Stands in for a chumpy or scipy.sparse object: keeps the pickled state, runs nothing."""

    def __init__(self, *args):
        self._args = args

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict state, slot state)
        if not isinstance(state, dict):
            raise BodyModelFormatError(f'unexpected pickled state of {type(self).__name__}')
        self.__dict__.update(state)


class _ChumpyRecord(_Record):
    qualname = 'chumpy'


class _SparseRecord(_Record):
    pass


def _chumpy_class(name):
    return type(f'chumpy.{name}', (_ChumpyRecord,), {'qualname': name})


def _safe_reconstructor(cls, base, state):
    """copyreg._reconstructor limited to the stand-in records (protocol 0/1 pickles of objects)."""
    if not (isinstance(cls, type) and issubclass(cls, _Record) and base is object and state is None):
        raise pickle.UnpicklingError(f'refusing to reconstruct {cls!r} from {base!r}')
    return object.__new__(cls)


def _numpy_global(name):
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    return getattr(multiarray, name)


_SAFE_BUILTINS = {'object': object, 'set': set, 'frozenset': frozenset, 'slice': slice, 'complex': complex,
                  'bytearray': bytearray, 'list': list, 'dict': dict, 'tuple': tuple, 'int': int, 'float': float,
                  'str': str, 'bytes': bytes, 'bool': bool}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module in ('numpy.core.multiarray', 'numpy._core.multiarray') and name in ('_reconstruct', 'scalar'):
            return _numpy_global(name)
        if module == 'numpy' and name in ('ndarray', 'dtype'):
            return getattr(np, name)
        if module == 'numpy.dtypes' and name.endswith('DType') and hasattr(np.dtypes, name):
            return getattr(np.dtypes, name)
        if module.split('.')[0] == 'chumpy':
            return _chumpy_class(name)
        if module.startswith('scipy.sparse') and name.endswith(('_matrix', '_array')):
            return type(name, (_SparseRecord,), {})
        if module in ('copyreg', 'copy_reg') and name == '_reconstructor':
            return _safe_reconstructor
        if module == 'collections' and name == 'OrderedDict':
            from collections import OrderedDict
            return OrderedDict
        if module == '_codecs' and name == 'encode':  # bytes in protocol-2 pickles written by Python 3
            import codecs
            return codecs.encode
        if module in ('builtins', '__builtin__') and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        raise pickle.UnpicklingError(f'refusing to load the global {module}.{name}')


def restricted_load(file):
    """Unpickle from a binary file object with `_RestrictedUnpickler` (latin1 for Python 2 pickles)."""
    return _RestrictedUnpickler(file, encoding='latin1').load()


def to_dense(value, key='value'):
    """A numpy array from an ndarray, a chumpy record (Ch, Select) or a scipy.sparse record."""
    if isinstance(value, _ChumpyRecord):
        state = value.__dict__
        if 'x' in state:
            return to_dense(state['x'], key)
        if {'a', 'idxs'} <= state.keys():
            result = to_dense(state['a'], key).ravel()[to_dense(state['idxs'], key).astype(np.int64)]
            shape = state.get('preferred_shape')
            return result.reshape(shape) if shape is not None else result
        raise BodyModelFormatError(f'{key} is a chumpy {value.qualname} expression, not a stored array')
    if isinstance(value, _SparseRecord):
        import scipy.sparse
        state = value.__dict__
        shape = state.get('_shape', state.get('shape'))
        fmt = state.get('format', type(value).__name__[:3])
        if fmt == 'coo':
            row, col = state['coords'] if 'coords' in state else (state['row'], state['col'])
            matrix = scipy.sparse.coo_matrix((state['data'], (row, col)), shape=shape)
        else:
            matrix = getattr(scipy.sparse, f'{fmt}_matrix')((state['data'], state['indices'], state['indptr']),
                                                             shape=shape)
        return matrix.toarray()
    if hasattr(value, 'toarray'):
        return value.toarray()
    if isinstance(value, np.ndarray) and value.dtype.hasobject and value.ndim == 0:  # an object saved in an .npz
        return to_dense(value.item(), key)
    return np.asarray(value)


def _read_npz_member(archive, name):
    with archive.open(name) as raw:
        file = io.BytesIO(raw.read())
    version = np.lib.format.read_magic(file)
    if version == (1, 0):
        dtype = np.lib.format.read_array_header_1_0(file)[2]
    elif version == (2, 0):
        dtype = np.lib.format.read_array_header_2_0(file)[2]
    else:
        dtype = np.lib.format._read_array_header(file, version)[2]
    if dtype.hasobject:
        return restricted_load(file)
    file.seek(0)
    return np.lib.format.read_array(file, allow_pickle=False)


def read_model_file(path):
    """Dict of the REQUIRED_KEYS (and J_regressor-free extras ignored) as dense numpy arrays."""
    path = Path(path)
    try:
        if path.suffix.lower() == '.npz':
            with zipfile.ZipFile(path) as archive:
                members = {os.path.splitext(n)[0]: n for n in archive.namelist()}
                data = {k: _read_npz_member(archive, members[k]) for k in REQUIRED_KEYS if k in members}
        else:
            with open(path, 'rb') as f:
                data = restricted_load(f)
    except BodyModelFormatError as e:
        raise BodyModelFormatError(f'{path}: {e}') from None
    except (OSError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, TypeError,
            AttributeError, ImportError, KeyError, IndexError) as e:
        raise BodyModelFormatError(f'{path}: cannot read the body model ({type(e).__name__}: {e})') from None
    if not isinstance(data, dict):
        raise BodyModelFormatError(f'{path}: expected a dict of model arrays, found {type(data).__name__}')
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise BodyModelFormatError(f'{path}: the model lacks {", ".join(missing)}')
    try:
        return {k: to_dense(data[k], k) for k in REQUIRED_KEYS}
    except BodyModelFormatError as e:
        raise BodyModelFormatError(f'{path}: {e}') from None
    except (KeyError, ValueError, TypeError, IndexError) as e:
        raise BodyModelFormatError(f'{path}: cannot convert the model arrays ({type(e).__name__}: {e})') from None


def kintree_parents(kintree_table, path):
    """Parent index per joint (-1 for the root) from the 2 x J kintree_table (row 0 parent ids, row 1 joint ids;
    the root's parent id is any id that is not a joint, e.g. 4294967295 in the official files)."""
    table = np.asarray(kintree_table).astype(np.int64)
    if table.ndim != 2 or table.shape[0] != 2:
        raise BodyModelFormatError(f'{path}: kintree_table has shape {table.shape}, expected (2, n_joints)')
    column_of_id = {int(i): col for col, i in enumerate(table[1])}
    if len(column_of_id) != table.shape[1]:
        raise BodyModelFormatError(f'{path}: kintree_table has repeated joint ids')
    parents = np.array([column_of_id.get(int(p), -1) for p in table[0]], np.int64)
    if np.count_nonzero(parents < 0) != 1:
        raise BodyModelFormatError(f'{path}: kintree_table has {np.count_nonzero(parents < 0)} roots, expected 1')
    depth = joint_depths(parents)
    if depth is None:
        raise BodyModelFormatError(f'{path}: kintree_table has a cycle')
    return parents


def joint_depths(parents):
    """Depth of each joint in the tree (root 0), or None if `parents` has a cycle."""
    depth = np.full(len(parents), -1, np.int64)
    for start in range(len(parents)):
        chain, j = [], start
        while j >= 0 and depth[j] < 0:
            if j in chain:
                return None
            chain.append(j)
            j = parents[j]
        base = -1 if j < 0 else depth[j]
        for k, joint in enumerate(reversed(chain)):
            depth[joint] = base + 1 + k
    return depth
