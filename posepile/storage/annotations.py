"""A safe, fast on-disk format for whole datasets: columnar arrays, memory-mapped, no unpickling.

A dataset saved to `NAME.posepile` is a folder:
  header.json        schema version, kind ('3d'|'2d'), joint names and edges, bone lengths, counts per
                     split, string vocabularies (activity and scene names)
  <column>.npy       one array per field, all examples in split order (train, valid, test):
                     coords (N,J,3|2) float32 (NaN = invalid), univ (N,J,3) + has_univ (N,), bbox (N,4),
                     cam_R/cam_K (N,3,3) float64, cam_t/cam_up (N,3), cam_dist (N,8), cam_dist_n (N,)
                     (0 = no distortion), cam_dist_model (N,) (0 opencv, 1 h36m), has_cam (N,),
                     activity/scene (N,) codes into the vocabularies,
                     image_path_blob + image_path_offsets (UTF-8 strings), mask_counts_blob +
                     mask_counts_offsets + mask_size (N,2) (COCO RLE, size -1 = no mask),
                     extra_blob + extra_offsets (msgpack of `parameters` / `extra`, empty = None);
                     2D with DensePose points only: has_densepose (N,), densepose_offsets (N+1,) int64 into
                     densepose_imcoords (M,2) float32 px, densepose_i_faces (M,3) int32 SMPL vertex ids and
                     densepose_barycoords (M,3) float32
Loading memory-maps the arrays and builds examples lazily on access, so opening a dataset of millions of
examples takes milliseconds and little memory. Saving writes a temporary folder and renames it into
place; an older version is replaced only after the new one is complete.
"""
import copy
import json
import mmap
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from posepile.datasets2d import Pose2DDataset, Pose2DExample
from posepile.datasets3d import TEST, TRAIN, VALID, Pose3DDataset, Pose3DExample
from posepile.joint_info import JointInfo
from posepile.util import fileio
from posepile.util.camera import Camera
from posepile.util.errors import InputError

SCHEMA_VERSION = 1
# 3D headers say in which frame `parameters` are: 'world' (the frame of world_coords, posepile.bodymodels
# transform.py). Older caches without it hold camera-frame parameters: refused on load (rebuild).
PARAMETERS_FRAME = 'world'
SPLITS = (TRAIN, VALID, TEST)
DIST_MODELS = ('opencv', 'h36m', 'fisheye', 'fisheye624')  # stored as the index: append only


class DatasetFileError(InputError):
    pass


# ------------------------------------------------------------------------------------------------------
# Packing helpers
def _encode_msgpack(obj):
    from posepile.storage.barecat_store import pack
    return pack(obj)


def _decode_msgpack(data):
    from posepile.storage.barecat_store import unpack
    return unpack(data)


class _ColumnFiles:
    """The .npy column files of a dataset being saved, appended to chunk by chunk (bounded memory: a dataset of
    millions of examples is written without holding its columns in memory).

    Every column grows along its first axis; its header is written with the final shape when it is closed (the
    .npy header of a 1-D or 2-D array has the same length for any length, see `_npy_header`)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.files = {}
        self.dtypes = {}
        self.trailing = {}
        self.lengths = {}

    def append(self, name, array):
        array = np.asarray(array)
        f = self.files.get(name)
        if f is None:
            f = self.files[name] = self._open(self.folder / f'{name}.npy')
            self.dtypes[name] = array.dtype
            self.trailing[name] = array.shape[1:]
            self.lengths[name] = 0
            f.write(_npy_header(array.dtype, (0, *array.shape[1:])))
        if array.dtype != self.dtypes[name] or array.shape[1:] != self.trailing[name]:
            raise ValueError(f'column {name}: chunk of {array.dtype}{array.shape}, expected '
                             f'{self.dtypes[name]}(..., {self.trailing[name]})')
        f.write(np.ascontiguousarray(array).tobytes())
        self.lengths[name] += len(array)

    @staticmethod
    def _open(path):
        return open(path, 'wb')

    def has(self, name):
        return name in self.files

    def shape(self, name):
        return (self.lengths[name], *self.trailing[name])

    def close(self, sync=True):
        """Write the final headers; returns {name: [dtype str, shape list]} (the dataset header's `columns`)."""
        columns = {}
        for name, f in self.files.items():
            shape = self.shape(name)
            header = _npy_header(self.dtypes[name], shape)
            f.seek(0)
            f.write(header)
            f.flush()
            if sync:
                os.fsync(f.fileno())
            f.close()
            columns[name] = [str(self.dtypes[name]), list(shape)]
        self.files = {}
        return columns

    def abort(self):
        for f in self.files.values():
            f.close()
        self.files = {}

    def remove(self, name):
        self.files.pop(name).close()
        (self.folder / f'{name}.npy').unlink()


def _npy_header(dtype, shape):
    import io
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {'descr': np.lib.format.dtype_to_descr(np.dtype(dtype)), 'fortran_order': False,
                 'shape': tuple(int(x) for x in shape)})
    header = buffer.getvalue()
    if len(header) != 128:  # numpy pads headers to leave room for any length; never expected otherwise
        raise RuntimeError(f'unexpected .npy header length {len(header)} for shape {shape}')
    return header


class _Vocabulary:
    """Codes in order of first appearance while writing; remapped to the sorted vocabulary at the end."""

    def __init__(self):
        self.index = {}

    def codes(self, values):
        index = self.index
        return np.array([index.setdefault(v, len(index)) for v in values], np.uint32)

    def finish(self, path):
        """Sorted vocabulary; rewrites the codes in the .npy file at `path` accordingly."""
        vocab = sorted(self.index)
        first_seen = list(self.index)
        remap = np.array([vocab.index(v) for v in first_seen], np.uint32) if first_seen else np.zeros(0, np.uint32)
        if np.any(remap != np.arange(len(remap))):
            codes = np.load(path, mmap_mode='r+')
            for start in range(0, len(codes), 1 << 20):
                codes[start:start + (1 << 20)] = remap[codes[start:start + (1 << 20)]]
            codes.flush()
            del codes
        return vocab


_CHUNK = 4096  # examples converted to column chunks at a time
_RELEASE_EVERY = 65536  # examples iterated between releases of the mapped pages (LazyExampleList.release_pages)


def _chunk_columns(examples, first_index, is_3d, n_joints):
    """Columns of a chunk of examples (index of the first one: `first_index`, for messages)."""
    n = len(examples)
    n_dims = 3 if is_3d else 2
    coords = np.full((n, n_joints, n_dims), np.nan, np.float32)
    bbox = np.zeros((n, 4), np.float32)
    has_cam = np.zeros(n, bool)
    cam_R = np.zeros((n, 3, 3))
    cam_t = np.zeros((n, 3))
    cam_K = np.zeros((n, 3, 3))
    cam_up = np.zeros((n, 3))
    cam_dist = np.zeros((n, 8))
    cam_dist_n = np.zeros(n, np.uint8)
    cam_dist_model = np.zeros(n, np.uint8)
    mask_size = np.full((n, 2), -1, np.int32)
    mask_counts = []
    extras = []
    has_univ = np.zeros(n, bool)
    univ = None
    for k, ex in enumerate(examples):
        i = first_index + k
        if not isinstance(ex.image_path, (str, os.PathLike)):
            raise DatasetFileError(f'example {i}: image_path must be a path string, got '
                                   f'{type(ex.image_path).__name__} (crop the examples before saving)')
        values = ex.world_coords if is_3d else ex.coords
        if values is not None:
            coords[k] = values
        bbox[k] = ex.bbox
        cam = ex.camera
        if cam is not None:
            has_cam[k] = True
            cam_R[k], cam_t[k], cam_K[k], cam_up[k] = cam.R, cam.t, cam.intrinsic_matrix, cam.world_up
            cam_dist_model[k] = DIST_MODELS.index(cam.distortion_model)
            if cam.distortion_coeffs is not None:
                d = cam.distortion_coeffs
                cam_dist[k, :len(d)] = d
                cam_dist_n[k] = len(d)
        if ex.mask is not None:
            mask_size[k] = ex.mask['size']
            counts = ex.mask['counts']
            if isinstance(counts, list):
                raise DatasetFileError(f'example {i}: uncompressed RLE masks are not supported; '
                                       f'use posepile.util.masks.encode')
            mask_counts.append(counts.encode('ascii') if isinstance(counts, str) else bytes(counts))
        else:
            mask_counts.append(b'')
        extra = ex.parameters if is_3d else ex.extra
        extras.append(b'' if extra is None else _encode_msgpack(extra))
        if is_3d and ex.univ_coords is not None:
            if univ is None:
                univ = np.full((n, n_joints, 3), np.nan, np.float32)
            has_univ[k] = True
            univ[k] = ex.univ_coords
    cols = dict(coords=coords, bbox=bbox, has_cam=has_cam, cam_R=cam_R, cam_t=cam_t, cam_K=cam_K,
                cam_up=cam_up, cam_dist=cam_dist, cam_dist_n=cam_dist_n, cam_dist_model=cam_dist_model,
                mask_size=mask_size)
    blobs = {'image_path': [str(e.image_path).encode('utf-8') for e in examples], 'mask_counts': mask_counts,
             'extra': extras}
    return cols, blobs, (univ, has_univ)


def _write_columns(examples, n_total, is_3d, n_joints, files):
    """Write all columns of `examples` (an iterable of n_total examples, iterated once) into `files`.
    Returns the vocabularies {'activity': _Vocabulary, 'scene': _Vocabulary} (3D has activity)."""
    vocabularies = {'scene': _Vocabulary()}
    if is_3d:
        vocabularies['activity'] = _Vocabulary()
    blob_ends = {name: 0 for name in ('image_path', 'mask_counts', 'extra')}
    for name in blob_ends:
        files.append(f'{name}_offsets', np.zeros(1, np.int64))
    n_done = 0
    has_densepose = False
    iterator = iter(examples)
    while True:
        chunk = []
        for ex in iterator:
            chunk.append(ex)
            if len(chunk) == _CHUNK:
                break
        if not chunk:
            break
        cols, blobs, (univ, has_univ) = _chunk_columns(chunk, n_done, is_3d, n_joints)
        for name, array in cols.items():
            files.append(name, array)
        for name, items in blobs.items():
            sizes = np.fromiter((len(b) for b in items), np.int64, len(items))
            files.append(f'{name}_offsets', blob_ends[name] + np.cumsum(sizes))
            blob_ends[name] += int(sizes.sum())
            files.append(f'{name}_blob', np.frombuffer(b''.join(items), np.uint8))
        if is_3d:
            if univ is not None and not files.has('univ'):  # the first example with univ: earlier ones NaN
                files.append('univ', np.zeros((0, n_joints, 3), np.float32))
                for start in range(0, n_done, _CHUNK):
                    files.append('univ', np.full((min(_CHUNK, n_done - start), n_joints, 3), np.nan, np.float32))
            if files.has('univ'):
                files.append('univ', univ if univ is not None else
                             np.full((len(chunk), n_joints, 3), np.nan, np.float32))
            files.append('has_univ', has_univ)
            files.append('activity', vocabularies['activity'].codes([e.activity_name for e in chunk]))
        files.append('scene', vocabularies['scene'].codes([e.scene_name for e in chunk]))
        if not is_3d:
            has_densepose |= _append_densepose(chunk, n_done, files)
        n_done += len(chunk)
    if n_done != n_total:
        raise DatasetFileError(f'the dataset lists {n_total} examples but yielded {n_done}')
    if n_done == 0:  # columns of an empty dataset, with their shapes
        cols, blobs, _ = _chunk_columns([], 0, is_3d, n_joints)
        for name, array in cols.items():
            files.append(name, array)
        for name in blobs:
            files.append(f'{name}_blob', np.zeros(0, np.uint8))
        if is_3d:
            files.append('has_univ', np.zeros(0, bool))
            files.append('activity', np.zeros(0, np.uint32))
        files.append('scene', np.zeros(0, np.uint32))
    if is_3d and not files.has('univ'):
        files.remove('has_univ')
    if not is_3d:
        for name in ('has_densepose', 'densepose_offsets', 'densepose_imcoords', 'densepose_i_faces',
                     'densepose_barycoords'):
            if files.has(name) and not has_densepose:
                files.remove(name)
    return vocabularies


def _append_densepose(chunk, first_index, files):
    """DensePose points of a chunk of 2D examples, concatenated, with per-example offsets (N+1 in all).
    Returns whether any example of the chunk has DensePose."""
    from posepile.datasets2d import DensePose
    parts = [DensePose.make(getattr(ex, 'densepose', None)) for ex in chunk]
    if not files.has('densepose_offsets'):
        files.append('densepose_offsets', np.zeros(1, np.int64))
        files.densepose_end = 0
    sizes = np.array([0 if d is None else d.n_points for d in parts], np.int64)
    files.append('has_densepose', np.array([d is not None for d in parts], bool))
    files.append('densepose_offsets', files.densepose_end + np.cumsum(sizes))
    files.densepose_end += int(sizes.sum())
    present = [d for d in parts if d is not None]
    for name, width, dtype in (('imcoords', 2, np.float32), ('i_faces', 3, np.int32), ('barycoords', 3, np.float32)):
        values = (np.concatenate([getattr(d, name) for d in present]).reshape(-1, width) if present
                  else np.zeros((0, width), dtype))
        files.append(f'densepose_{name}', values)
    return bool(present)


# ------------------------------------------------------------------------------------------------------
# Save
def save_dataset(dataset, path):
    """Save a Pose3DDataset or Pose2DDataset to the folder `path` (atomically).

    The examples are read once, split by split, and written in chunks: memory stays bounded for any size when
    the example lists are lazy (e.g. a generator-backed sequence with len())."""
    path = Path(path)
    is_3d = isinstance(dataset, Pose3DDataset)
    if not is_3d and not isinstance(dataset, Pose2DDataset):
        raise TypeError(f'Cannot save {type(dataset).__name__}; expected Pose3DDataset or Pose2DDataset')
    n_joints = dataset.joint_info.n_joints
    counts = [len(dataset.examples[s]) for s in SPLITS]
    header = {
        'schema_version': SCHEMA_VERSION,
        'kind': '3d' if is_3d else '2d',
        'joint_names': list(dataset.joint_info.names),
        'joint_edges': [list(map(int, e)) for e in dataset.joint_info.stick_figure_edges],
        'counts': counts,
    }
    if is_3d:
        header['parameters_frame'] = PARAMETERS_FRAME
        for attr in ('train_bones', 'trainval_bones'):
            value = getattr(dataset, attr, None)
            header[attr] = None if value is None else [None if np.isnan(v) else float(v) for v in value]

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp'))
    files = _ColumnFiles(tmp_dir)
    try:
        examples = (ex for split in SPLITS for ex in dataset.examples[split])
        vocabularies = _write_columns(examples, sum(counts), is_3d, n_joints, files)
        columns = files.close()
        if is_3d:
            header['activity_vocab'] = vocabularies['activity'].finish(tmp_dir / 'activity.npy')
        header['scene_vocab'] = vocabularies['scene'].finish(tmp_dir / 'scene.npy')
        header['columns'] = columns
        # The header is written last: a folder without it is never a finished dataset.
        fileio.save_json(header, tmp_dir / 'header.json')
        _replace_dir(tmp_dir, path)
    except BaseException as e:
        files.abort()
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if isinstance(e, OSError) and (e.filename is None or str(e.filename).startswith(str(tmp_dir))):
            # e.g. ENOSPC from write() names no file, or only the temporary one: name the cache being written
            if e.errno is None:
                raise OSError(f'{path}: {e} while writing the dataset cache') from e
            raise OSError(e.errno, f'{e.strerror} while writing the dataset cache', str(path)) from e
        raise
    return path


def _replace_dir(new_dir, final_path):
    if final_path.exists():
        old = final_path.with_name(f'.{final_path.name}.old-{os.getpid()}')
        os.rename(final_path, old)
        os.rename(new_dir, final_path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(new_dir, final_path)


# ------------------------------------------------------------------------------------------------------
# Load
class LazyExampleList:
    """List-like view of one split; examples are built from the memory-mapped columns on access."""

    def __init__(self, store, start, stop):
        self._store = store
        self._start = start
        self._stop = stop

    def __len__(self):
        return self._stop - self._start

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(index)
        return self._store.make_example(self._start + index)

    def __iter__(self):
        for i in range(self._start, self._stop):
            if (i - self._start) % _RELEASE_EVERY == _RELEASE_EVERY - 1:
                self.release_pages()
            yield self._store.make_example(i)

    def release_pages(self):
        """Unmap the pages of the columns read so far from this process (they stay in the page cache): a pass
        over millions of examples would otherwise keep every page it touched in its resident set."""
        self._store.release_pages()

    def column(self, name):
        """Rows of this split of a stored column (memory-mapped; see the module docstring), or None."""
        array = self._store.c.get(name)
        return None if array is None else array[self._start:self._stop]

    def example(self, index):
        """Example `index` of this split (as [index], without the bounds checks)."""
        return self._store.make_example(self._start + index)

    def coords_array(self):
        """The joints of this split as one memory-mapped (N, J, 3|2) float32 array (world_coords in mm for 3D,
        coords in px for 2D; NaN = invalid): for vectorised statistics without building examples."""
        return self._store.c['coords'][self._start:self._stop]

    def __eq__(self, other):
        return list(self) == list(other)


class _ColumnStore:
    def __init__(self, path, header, columns):
        self.path = path
        self.header = header
        self.c = columns
        self.mmaps = [m for m in (getattr(a.base, '_mmap', None) for a in columns.values()) if m is not None]
        self.is_3d = header['kind'] == '3d'
        self.scene_vocab = header['scene_vocab']
        self.activity_vocab = header.get('activity_vocab')

    def release_pages(self):
        for m in self.mmaps:
            try:
                m.madvise(mmap.MADV_DONTNEED)
            except (AttributeError, OSError, ValueError):  # not on this platform, or closed
                pass

    def _string(self, name, i):
        offsets = self.c[f'{name}_offsets']
        return bytes(self.c[f'{name}_blob'][offsets[i]:offsets[i + 1]])

    def make_example(self, i):
        c = self.c
        camera = None
        if c['has_cam'][i]:
            n_dist = int(c['cam_dist_n'][i])
            camera = Camera(c['cam_t'][i], c['cam_R'][i], c['cam_K'][i],
                            c['cam_dist'][i, :n_dist] if n_dist else None, world_up=c['cam_up'][i],
                            distortion_model=DIST_MODELS[int(c['cam_dist_model'][i])])
        mask = None
        if c['mask_size'][i, 0] >= 0:
            mask = {'size': [int(x) for x in c['mask_size'][i]],
                    'counts': self._string('mask_counts', i).decode('ascii')}
        extra_bytes = self._string('extra', i)
        extra = _decode_msgpack(extra_bytes) if extra_bytes else None
        image_path = self._string('image_path', i).decode('utf-8')
        coords = np.array(c['coords'][i])
        bbox = np.array(c['bbox'][i])
        scene = self.scene_vocab[int(c['scene'][i])]
        if self.is_3d:
            univ = np.array(c['univ'][i]) if 'has_univ' in c and c['has_univ'][i] else None
            return Pose3DExample(image_path, coords if coords.shape[0] else None, bbox, camera,  # 0 joints: None
                                 activity_name=self.activity_vocab[int(c['activity'][i])], scene_name=scene,
                                 mask=mask, univ_coords=univ, parameters=extra)
        densepose = None
        if 'has_densepose' in c and c['has_densepose'][i]:
            start, stop = c['densepose_offsets'][i:i + 2]
            densepose = (np.array(c['densepose_imcoords'][start:stop]), np.array(c['densepose_i_faces'][start:stop]),
                         np.array(c['densepose_barycoords'][start:stop]))
        return Pose2DExample(image_path, coords, bbox, mask=mask, camera=camera, scene_name=scene, extra=extra,
                             densepose=densepose)


def load_dataset(path, mmap=True):
    """Open a dataset saved by `save_dataset` (or a pickle, for interoperability)."""
    path = Path(path)
    if path.is_file():
        if path.suffix == '.pkl':
            return load_dataset_pickle(path)
        raise DatasetFileError(f'{path}: expected a .posepile folder')
    header_path = path / 'header.json'
    if not header_path.exists():
        raise DatasetFileError(
            f'{path}: no header.json; not a posepile dataset folder (or its save did not finish)')
    try:
        header = fileio.load_json(header_path)
    except ValueError as e:
        raise DatasetFileError(str(e)) from e
    if header.get('schema_version') != SCHEMA_VERSION:
        raise DatasetFileError(f'{path}: schema version {header.get("schema_version")}, expected '
                               f'{SCHEMA_VERSION}')
    columns = {}
    for name, (dtype, shape) in header['columns'].items():
        file = path / f'{name}.npy'
        try:
            array = np.load(file, mmap_mode='r' if mmap else None, allow_pickle=False)
        except FileNotFoundError:
            raise DatasetFileError(f'{path}: column file {file.name} is missing') from None
        except ValueError as e:
            raise DatasetFileError(f'{file}: unreadable or truncated ({e})') from e
        if str(array.dtype) != dtype or list(array.shape) != shape:
            raise DatasetFileError(f'{file}: has {array.dtype}{list(array.shape)}, header says {dtype}{shape}')
        # a plain ndarray view of the memory map: indexing the np.memmap subclass is several times slower
        columns[name] = array.view(np.ndarray) if isinstance(array, np.memmap) else array
    if (header['kind'] == '3d' and header.get('parameters_frame') != PARAMETERS_FRAME
            and 'extra_offsets' in columns and np.any(np.diff(columns['extra_offsets']) > 0)):
        # built before body-model parameters moved to the world frame (they were in each crop camera's frame)
        raise DatasetFileError(
            f'{path}: its body-model parameters are in the old camera-frame convention; rebuild it (rerun the '
            f"recipe's assemble stage: the crops are reused)")
    store = _ColumnStore(path, header, columns)
    joint_info = JointInfo(header['joint_names'], header['joint_edges'])
    bounds = np.concatenate([[0], np.cumsum(header['counts'])])
    lists = [LazyExampleList(store, int(bounds[k]), int(bounds[k + 1])) for k in range(3)]
    if store.is_3d:
        dataset = Pose3DDataset(joint_info, compute_bone_lengths=False)
        for attr in ('train_bones', 'trainval_bones'):
            value = header.get(attr)
            setattr(dataset, attr, None if value is None else np.array(
                [np.nan if v is None else v for v in value], np.float32))
    else:
        dataset = Pose2DDataset(joint_info)
    dataset.examples = dict(zip(SPLITS, lists))
    return dataset


def materialize(dataset):
    """Turn lazy split views into plain lists (for code that mutates the example lists)."""
    dataset.examples = {split: list(examples) for split, examples in dataset.examples.items()}
    return dataset


# ------------------------------------------------------------------------------------------------------
# Pickle, for interoperability
def save_dataset_pickle(dataset, path):
    if any(isinstance(v, LazyExampleList) for v in dataset.examples.values()):
        dataset = copy.copy(dataset)
        dataset.examples = {split: list(examples) for split, examples in dataset.examples.items()}
    fileio.save_pickle(dataset, path)


def load_dataset_pickle(path):
    return fileio.load_pickle(path)


def describe(path):
    header = json.loads((Path(path) / 'header.json').read_text())
    return {'kind': header['kind'], 'joints': len(header['joint_names']),
            'counts': dict(zip(('train', 'valid', 'test'), header['counts']))}
