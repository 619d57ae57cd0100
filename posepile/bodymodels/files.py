"""Reading released fit files that are pickled numpy objects (`np.save` of a dict: GeneBody's annots.npy and
param/*.npy, ZJU-MoCap's annots.npy and new_params/*.npy) without running arbitrary pickles: the .npy header is
parsed by numpy, the object payload by posepile.bodymodels.loading's restricted unpickler (numpy arrays, scalars
and builtin containers only)."""
import pickle
from pathlib import Path

import numpy as np

from posepile.bodymodels.loading import BodyModelFormatError, restricted_load


def load_object_npy(path, error_class=BodyModelFormatError):
    """The object stored in an .npy file (e.g. the dict of `np.save(path, dict)`; `.item()` applied to a 0-d
    object array) or a plain array; `error_class` (one line naming the file) when missing or unreadable."""
    path = Path(path)
    try:
        with open(path, 'rb') as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                shape, _, dtype = np.lib.format._read_array_header(f, version)
            if not dtype.hasobject:
                f.seek(0)
                return np.lib.format.read_array(f, allow_pickle=False)
            value = restricted_load(f)
    except FileNotFoundError:
        raise error_class(f'{path}: file not found') from None
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, BodyModelFormatError, TypeError,
            AttributeError, ImportError) as e:
        raise error_class(f'{path}: cannot read the .npy ({type(e).__name__}: {e})') from None
    if isinstance(value, np.ndarray) and value.dtype.hasobject and value.shape == () and shape == ():
        return value.item()
    return value
