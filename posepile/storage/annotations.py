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
                     extra_blob + extra_offsets (msgpack of `parameters` / `extra`, empty = None)
Loading memory-maps the arrays and builds examples lazily on access, so opening a dataset of millions of
examples takes milliseconds and little memory. Saving writes a temporary folder and renames it into
place; an older version is replaced only after the new one is complete.
"""
import copy
import json
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
SPLITS = (TRAIN, VALID, TEST)
DIST_MODELS = ('opencv', 'h36m')


class DatasetFileError(InputError):
    pass


# ------------------------------------------------------------------------------------------------------
# Packing helpers
def _pack_strings(strings):
    encoded = [s.encode('utf-8') for s in strings]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    blob = np.frombuffer(b''.join(encoded), np.uint8) if encoded else np.zeros(0, np.uint8)
    return blob, offsets


def _pack_bytes(items):
    offsets = np.zeros(len(items) + 1, np.int64)
    np.cumsum([len(b) for b in items], out=offsets[1:])
    blob = np.frombuffer(b''.join(items), np.uint8) if items else np.zeros(0, np.uint8)
    return blob, offsets


def _encode_msgpack(obj):
    from posepile.storage.barecat_store import pack
    return pack(obj)


def _decode_msgpack(data):
    from posepile.storage.barecat_store import unpack
    return unpack(data)


def _vocabulary_codes(values):
    vocab = sorted(set(values))
    index = {v: i for i, v in enumerate(vocab)}
    return vocab, np.array([index[v] for v in values], np.uint32)


def _columns(examples, is_3d, n_joints):
    n = len(examples)
    n_dims = 3 if is_3d else 2
    cols = {}
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
    for i, ex in enumerate(examples):
        if not isinstance(ex.image_path, (str, os.PathLike)):
            raise DatasetFileError(f'example {i}: image_path must be a path string, got '
                                   f'{type(ex.image_path).__name__} (crop the examples before saving)')
        values = ex.world_coords if is_3d else ex.coords
        if values is not None:
            coords[i] = values
        bbox[i] = ex.bbox
        cam = ex.camera
        if cam is not None:
            has_cam[i] = True
            cam_R[i], cam_t[i], cam_K[i], cam_up[i] = cam.R, cam.t, cam.intrinsic_matrix, cam.world_up
            cam_dist_model[i] = DIST_MODELS.index(cam.distortion_model)
            if cam.distortion_coeffs is not None:
                d = cam.distortion_coeffs
                cam_dist[i, :len(d)] = d
                cam_dist_n[i] = len(d)
        if ex.mask is not None:
            mask_size[i] = ex.mask['size']
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
            has_univ[i] = True
            univ[i] = ex.univ_coords
    cols.update(coords=coords, bbox=bbox, has_cam=has_cam, cam_R=cam_R, cam_t=cam_t, cam_K=cam_K,
                cam_up=cam_up, cam_dist=cam_dist, cam_dist_n=cam_dist_n, cam_dist_model=cam_dist_model,
                mask_size=mask_size)
    cols['image_path_blob'], cols['image_path_offsets'] = _pack_strings([str(e.image_path) for e in examples])
    cols['mask_counts_blob'], cols['mask_counts_offsets'] = _pack_bytes(mask_counts)
    cols['extra_blob'], cols['extra_offsets'] = _pack_bytes(extras)
    if univ is not None:
        cols['univ'] = univ
        cols['has_univ'] = has_univ
    return cols


# ------------------------------------------------------------------------------------------------------
# Save
def save_dataset(dataset, path):
    """Save a Pose3DDataset or Pose2DDataset to the folder `path` (atomically)."""
    path = Path(path)
    is_3d = isinstance(dataset, Pose3DDataset)
    if not is_3d and not isinstance(dataset, Pose2DDataset):
        raise TypeError(f'Cannot save {type(dataset).__name__}; expected Pose3DDataset or Pose2DDataset')
    examples = [ex for split in SPLITS for ex in dataset.examples[split]]
    n_joints = dataset.joint_info.n_joints
    columns = _columns(examples, is_3d, n_joints)
    header = {
        'schema_version': SCHEMA_VERSION,
        'kind': '3d' if is_3d else '2d',
        'joint_names': list(dataset.joint_info.names),
        'joint_edges': [list(map(int, e)) for e in dataset.joint_info.stick_figure_edges],
        'counts': [len(dataset.examples[s]) for s in SPLITS],
    }
    if is_3d:
        header['activity_vocab'], columns['activity'] = _vocabulary_codes([e.activity_name for e in examples])
        for attr in ('train_bones', 'trainval_bones'):
            value = getattr(dataset, attr, None)
            header[attr] = None if value is None else [None if np.isnan(v) else float(v) for v in value]
    header['scene_vocab'], columns['scene'] = _vocabulary_codes([e.scene_name for e in examples])
    header['columns'] = {name: [str(a.dtype), list(a.shape)] for name, a in columns.items()}

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp'))
    try:
        for name, array in columns.items():
            with open(tmp_dir / f'{name}.npy', 'wb') as f:
                np.save(f, array, allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
        # The header is written last: a folder without it is never a finished dataset.
        fileio.save_json(header, tmp_dir / 'header.json')
        _replace_dir(tmp_dir, path)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
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
            yield self._store.make_example(i)

    def __eq__(self, other):
        return list(self) == list(other)


class _ColumnStore:
    def __init__(self, path, header, columns):
        self.path = path
        self.header = header
        self.c = columns
        self.is_3d = header['kind'] == '3d'
        self.scene_vocab = header['scene_vocab']
        self.activity_vocab = header.get('activity_vocab')

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
            return Pose3DExample(image_path, coords, bbox, camera,
                                 activity_name=self.activity_vocab[int(c['activity'][i])], scene_name=scene,
                                 mask=mask, univ_coords=univ, parameters=extra)
        return Pose2DExample(image_path, coords, bbox, mask=mask, camera=camera, scene_name=scene, extra=extra)


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
        columns[name] = array
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
