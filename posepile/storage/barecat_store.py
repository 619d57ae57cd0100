"""Barecat archives of a dataset: crops (JPEG bytes as stored) and compact per-example annotations.

Layout of an export folder OUT:
  OUT/images.barecat[-shard-*]       key = image_path (relative to DATA_ROOT), value = the JPEG bytes
  OUT/annotations.barecat[-shard-*]  key = '<split>/<index:09d>.msgpack', value = one example (msgpack)
                                     key = 'metadata.msgpack': skeleton, bone lengths, counts per split
Integer keys give O(1) random access to example i of a split without listing the archive. The metadata
entry is written last and marks a finished export; an interrupted export resumes by skipping the keys
already present. Every entry carries a CRC32C checksum (Barecat's), checked by `verify`.

Annotation encoding (all arrays little-endian):
  impath: str; bbox: float32 [4]; split: int
  joints: {'offset': float32 [C] or absent, 'rows': float16|float32 [K, C], 'i_rows': uint16 [K] (absent =
          all joints valid)} — rows are coordinates minus offset, float16 only when that loses < 1 mm (< 0.1 px
          for 2D), so 3D mm coordinates of a person usually fit float16 around the person's centre.
  univ: same encoding (3DHP/MuPoTS universal skeleton), optional
  cam: {'R': float32 [3,3] world→cam, 'loc': float64 [3] mm, 'K': float64 [3,3], 'dist': float64 [n] (absent
        if none), 'dist_model': str, 'up': float32 [3]}
  mask: {'size': [H, W], 'counts': str} COCO RLE, optional; activity, scene: str; parameters: dict, optional
"""
import argparse
import logging
import os
import sys
from pathlib import Path

import msgpack
import numpy as np

from posepile.datasets2d import Pose2DExample
from posepile.datasets3d import SPLIT_NAMES, TEST, TRAIN, VALID, Pose3DDataset, Pose3DExample
from posepile.joint_info import JointInfo
from posepile.util.camera import Camera

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
METADATA_KEY = 'metadata.msgpack'
SPLIT_KEYS = {TRAIN: 'train', VALID: 'valid', TEST: 'test'}


class BarecatStoreError(RuntimeError):
    pass


# ------------------------------------------------------------------------------------------------------
# msgpack with numpy arrays
_ND_EXT = 1


def _default(obj):
    if isinstance(obj, np.ndarray):
        header = msgpack.packb([obj.dtype.str, list(obj.shape)])
        return msgpack.ExtType(_ND_EXT, header + np.ascontiguousarray(obj).tobytes())
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f'Cannot serialise {type(obj).__name__}')


def _ext_hook(code, data):
    if code != _ND_EXT:
        return msgpack.ExtType(code, data)
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data)
    dtype, shape = next(unpacker)
    offset = unpacker.tell()
    return np.frombuffer(data, dtype=np.dtype(dtype), offset=offset).reshape(shape).copy()


def pack(obj):
    return msgpack.packb(obj, default=_default, use_bin_type=True)


def unpack(data):
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


# ------------------------------------------------------------------------------------------------------
# Example <-> dict
def encode_coords(coords, max_error):
    """Sparse, offset-compressed coordinates (NaN = invalid joint)."""
    coords = np.asarray(coords, np.float32)
    valid = np.all(np.isfinite(coords), axis=-1)
    rows = coords[valid]
    result = {}
    if not np.all(valid):
        result['i_rows'] = np.nonzero(valid)[0].astype(np.uint16)
    if len(rows) > 0:
        offset = np.float32(0.5) * (rows.min(axis=0) + rows.max(axis=0))
        deltas = rows - offset
        as_half = deltas.astype(np.float16)
        if np.all(np.isfinite(as_half)) and np.max(np.abs(as_half.astype(np.float32) - deltas)) < max_error:
            result['offset'] = offset.astype(np.float32)
            result['rows'] = as_half
        else:
            result['rows'] = rows
    else:
        result['rows'] = rows
    result['n'] = int(coords.shape[0])
    return result


def decode_coords(encoded, n_dims):
    n = encoded['n']
    rows = encoded['rows'].astype(np.float32)
    if 'offset' in encoded:
        rows = rows + encoded['offset']
    if 'i_rows' not in encoded:
        return rows.reshape(n, n_dims)
    result = np.full((n, n_dims), np.nan, np.float32)
    result[encoded['i_rows'].astype(np.int64)] = rows
    return result


def encode_camera(camera):
    result = {'R': camera.R.astype(np.float32), 'loc': camera.t, 'K': camera.intrinsic_matrix,
              'up': camera.world_up.astype(np.float32), 'dist_model': camera.distortion_model}
    if camera.distortion_coeffs is not None:
        result['dist'] = camera.distortion_coeffs
    return result


def decode_camera(d):
    R = d['R'].astype(np.float64)
    # Re-orthonormalise: float32 storage leaves ~1e-7 drift.
    u, _, vt = np.linalg.svd(R)
    return Camera(d['loc'], u @ vt, d['K'], d.get('dist'), world_up=d['up'].astype(np.float64),
                  distortion_model=d.get('dist_model', 'opencv'))


def encode_example(example, split):
    is_3d = isinstance(example, Pose3DExample)
    result = {'impath': str(example.image_path), 'bbox': np.asarray(example.bbox, np.float32),
              'split': int(split)}
    if is_3d:
        result['joints'] = encode_coords(example.world_coords, max_error=1.0)
        if example.univ_coords is not None:
            result['univ'] = encode_coords(example.univ_coords, max_error=1.0)
        result['activity'] = example.activity_name
        result['scene'] = example.scene_name
        if example.parameters is not None:
            result['parameters'] = example.parameters
    else:
        result['joints'] = encode_coords(example.coords, max_error=0.1)
        result['scene'] = example.scene_name
        if example.extra is not None:
            result['extra'] = example.extra
    if example.camera is not None:
        result['cam'] = encode_camera(example.camera)
    if example.mask is not None:
        result['mask'] = {'size': list(example.mask['size']), 'counts': _counts_str(example.mask['counts'])}
    return result


def _counts_str(counts):
    return counts.decode('ascii') if isinstance(counts, bytes) else counts


def decode_example(d, is_3d):
    camera = decode_camera(d['cam']) if 'cam' in d else None
    if is_3d:
        univ = decode_coords(d['univ'], 3) if 'univ' in d else None
        return Pose3DExample(
            d['impath'], decode_coords(d['joints'], 3), d['bbox'], camera,
            activity_name=d.get('activity', 'unknown'), scene_name=d.get('scene', 'unknown'),
            mask=d.get('mask'), univ_coords=univ, parameters=d.get('parameters'))
    return Pose2DExample(d['impath'], decode_coords(d['joints'], 2), d['bbox'], mask=d.get('mask'),
                         camera=camera, scene_name=d.get('scene', 'unknown'), extra=d.get('extra'))


# ------------------------------------------------------------------------------------------------------
# Export
def _open_writer(path, shard_size_limit):
    import barecat
    return barecat.Barecat(path, readonly=False, shard_size_limit=shard_size_limit, exist_ok=True)


def export_dataset(dataset, out_dir, image_root=None, shard_size_limit='2G', include_images=True):
    """Write `dataset` (in-memory Pose3DDataset/Pose2DDataset) into Barecat archives under `out_dir`.

    Resumable: entries already present are skipped; the metadata entry is written last.
    Returns the metadata dict.
    """
    from tqdm import tqdm
    from posepile.paths import data_root
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    image_root = Path(image_root) if image_root is not None else None
    is_3d = isinstance(dataset, Pose3DDataset)
    ann = _open_writer(out_dir / 'annotations.barecat', shard_size_limit)
    images = _open_writer(out_dir / 'images.barecat', shard_size_limit) if include_images else None
    try:
        if METADATA_KEY in ann:
            # A finished export being refreshed: drop the marker first so a crash cannot leave stale metadata.
            del ann[METADATA_KEY]
        counts = {}
        n_total = sum(len(v) for v in dataset.examples.values())
        progress = tqdm(total=n_total, desc='barecat export', unit='ex', mininterval=2,
                        disable=True if n_total < 1000 else None)
        for split in (TRAIN, VALID, TEST):
            examples = dataset.examples[split]
            counts[SPLIT_KEYS[split]] = len(examples)
            for index, example in enumerate(examples):
                key = f'{SPLIT_KEYS[split]}/{index:09d}.msgpack'
                if key not in ann:
                    ann[key] = pack(encode_example(example, split))
                if images is not None:
                    impath = str(example.image_path)
                    if impath not in images:
                        root = image_root if image_root is not None else data_root()
                        source = Path(impath) if Path(impath).is_absolute() else root / impath
                        try:
                            images[impath] = source.read_bytes()
                        except FileNotFoundError:
                            raise BarecatStoreError(
                                f'Image of {split_name(split)} example {index} not found: {source}') from None
                progress.update()
        progress.close()
        metadata = {
            'schema_version': SCHEMA_VERSION,
            'kind': '3d' if is_3d else '2d',
            'joint_names': list(dataset.joint_info.names),
            'joint_edges': [list(e) for e in dataset.joint_info.stick_figure_edges],
            'counts': counts,
            'has_images': include_images,
        }
        if getattr(dataset, 'source_counts', None) is not None:
            metadata['source_counts'] = dataset.source_counts
        if is_3d:
            for attr in ('train_bones', 'trainval_bones'):
                value = getattr(dataset, attr, None)
                if value is not None:
                    metadata[attr] = np.asarray(value, np.float32)
        ann[METADATA_KEY] = pack(metadata)
    finally:
        ann.close()
        if images is not None:
            images.close()
    return metadata


def split_name(split):
    return SPLIT_NAMES[split]


# ------------------------------------------------------------------------------------------------------
# Reading
_handles = {}


def _reader(path):
    """A read-only Barecat handle owned by this process (reopened after fork)."""
    import barecat
    key = (str(path), os.getpid())
    handle = _handles.get(key)
    if handle is None:
        if not Path(path).exists():
            raise BarecatStoreError(f'Barecat archive not found: {path}')
        try:
            handle = barecat.Barecat(path, readonly=True)
        except Exception as e:
            raise BarecatStoreError(f'Cannot open Barecat archive {path}: {e}') from e
        _handles[key] = handle
    return handle


class BarecatExampleList:
    """List-like lazy view of one split: len() and [i] decode example i on access."""

    def __init__(self, store, split):
        self.store = store
        self.split = split
        self.length = store.metadata['counts'][SPLIT_KEYS[split]]

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.length))]
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(index)
        return self.store.get_example(self.split, index)

    def __iter__(self):
        for i in range(self.length):
            yield self[i]


class BarecatDataset:
    """A dataset exported by `export_dataset`, opened lazily; the same interface as the in-memory one.

    Safe with multiple processes: each process opens its own handles on first access.
    `examples[split][i].image` holds the decoded RGB crop (from the images archive).
    """

    def __init__(self, out_dir, load_images=True):
        self.path = Path(out_dir)
        self.annotations_path = self.path / 'annotations.barecat'
        self.images_path = self.path / 'images.barecat'
        try:
            raw = _reader(self.annotations_path)[METADATA_KEY]
        except KeyError:
            raise BarecatStoreError(
                f'{self.annotations_path} has no {METADATA_KEY}: the export did not finish; rerun it') from None
        self.metadata = unpack(raw)
        if self.metadata.get('schema_version') != SCHEMA_VERSION:
            raise BarecatStoreError(
                f'{self.annotations_path}: schema version {self.metadata.get("schema_version")}, '
                f'expected {SCHEMA_VERSION}')
        self.is_3d = self.metadata['kind'] == '3d'
        self.load_images = load_images and self.metadata.get('has_images', True)
        self.joint_info = JointInfo(self.metadata['joint_names'], self.metadata['joint_edges'])
        self.train_bones = self.metadata.get('train_bones')
        self.trainval_bones = self.metadata.get('trainval_bones')
        self.examples = {split: BarecatExampleList(self, split) for split in (TRAIN, VALID, TEST)}

    def __getstate__(self):
        return {'out_dir': self.path, 'load_images': self.load_images}

    def __setstate__(self, state):
        self.__init__(state['out_dir'], state['load_images'])

    def get_example(self, split, index):
        key = f'{SPLIT_KEYS[split]}/{index:09d}.msgpack'
        try:
            raw = _reader(self.annotations_path)[key]
        except KeyError:
            raise BarecatStoreError(f'{self.annotations_path}: entry {key} is missing') from None
        try:
            example = decode_example(unpack(raw), self.is_3d)
        except Exception as e:
            raise BarecatStoreError(f'{self.annotations_path}: entry {key} does not decode: {e}') from e
        if self.load_images:
            example.image = self.read_image(example.image_path)
        return example

    def read_image_bytes(self, image_path):
        try:
            return _reader(self.images_path)[str(image_path)]
        except KeyError:
            raise BarecatStoreError(f'{self.images_path}: image entry {image_path} is missing') from None

    def read_image(self, image_path):
        from posepile.util import improc
        data = self.read_image_bytes(image_path)
        try:
            return improc.decode_jpeg(data)
        except Exception as e:
            raise BarecatStoreError(f'{self.images_path}: image entry {image_path} does not decode: {e}') from e

    def iter_examples(self):
        for split in (TRAIN, VALID, TEST):
            yield from self.examples[split]

    def __repr__(self):
        counts = ', '.join(f'{k}={v}' for k, v in self.metadata['counts'].items())
        return f'BarecatDataset({self.path}, {self.joint_info.n_joints} joints, {counts})'


def open_dataset(out_dir, load_images=True):
    return BarecatDataset(out_dir, load_images=load_images)


# ------------------------------------------------------------------------------------------------------
# Verification
def verify(out_dir, decode_images=True):
    """Check every entry's checksum, that every annotation and image decodes, and the counts.

    Returns a list of problems (empty when all is well); each names the archive/shard and the entry.
    """
    import barecat
    from tqdm import tqdm
    out_dir = Path(out_dir)
    problems = []
    archives = {}
    for name in ('annotations.barecat', 'images.barecat'):
        path = out_dir / name
        if not path.exists():
            if name == 'annotations.barecat':
                return [f'{path}: missing']
            continue
        try:
            archives[name] = barecat.Barecat(path, readonly=True)
        except Exception as e:
            problems.append(f'{path}: cannot open ({e})')
    if 'annotations.barecat' not in archives:
        return problems

    for name, archive in archives.items():
        path = out_dir / name
        shard_paths = sorted(path.parent.glob(f'{path.name}-shard-*'))
        shard_sizes = {int(p.name.rsplit('-', 1)[1]): p.stat().st_size for p in shard_paths}
        for info in tqdm(list(archive.index.iter_all_fileinfos()), desc=f'verify {name}',
                         disable=archive.num_files < 1000):
            shard_file = f'{path.name}-shard-{info.shard:05d}'
            if info.shard not in shard_sizes:
                problems.append(f'{shard_file}: missing shard (needed by entry {info.path})')
                continue
            if info.offset + info.size > shard_sizes[info.shard]:
                problems.append(f'{shard_file}: truncated; entry {info.path} extends past its end')
                continue
            try:
                ok = archive.check_crc32c(info)
            except Exception as e:
                problems.append(f'{shard_file}: entry {info.path} unreadable ({e})')
                continue
            if not ok:
                problems.append(f'{shard_file}: entry {info.path} fails its CRC32C checksum')

    ann = archives['annotations.barecat']
    if METADATA_KEY not in ann:
        problems.append(f'{out_dir / "annotations.barecat"}: no {METADATA_KEY} (unfinished export)')
        return problems
    try:
        metadata = unpack(ann[METADATA_KEY])
    except Exception as e:
        problems.append(f'{out_dir / "annotations.barecat"}: {METADATA_KEY} does not decode ({e})')
        return problems
    is_3d = metadata['kind'] == '3d'
    images = archives.get('images.barecat')
    bad_entries = {p.split('entry ')[1].split(' ')[0] for p in problems if 'entry ' in p}
    for split_key, count in metadata['counts'].items():
        present = set(ann.index.iterglob_paths(f'{split_key}/*.msgpack'))
        if len(present) != count:
            problems.append(f'annotations.barecat: split {split_key} has {len(present)} entries, '
                            f'metadata says {count}')
        for i in tqdm(range(count), desc=f'decode {split_key}', disable=count < 1000):
            key = f'{split_key}/{i:09d}.msgpack'
            if key not in present:
                problems.append(f'annotations.barecat: entry {key} is missing')
                continue
            if key in bad_entries:
                continue
            try:
                example = decode_example(unpack(ann[key]), is_3d)
            except Exception as e:
                problems.append(f'annotations.barecat: entry {key} does not decode ({e})')
                continue
            if images is not None and metadata.get('has_images', True):
                impath = str(example.image_path)
                if impath not in images:
                    problems.append(f'images.barecat: image {impath} of {key} is missing')
                elif decode_images and impath not in bad_entries:
                    try:
                        _check_jpeg(images[impath])
                    except Exception as e:
                        problems.append(f'images.barecat: entry {impath} does not decode ({e})')
    for archive in archives.values():
        archive.close()
    return problems


def _check_jpeg(data):
    import cv2
    buf = np.frombuffer(data, np.uint8)
    # Reduced-size decoding still entropy-decodes the whole stream, so corruption is detected cheaply.
    image = cv2.imdecode(buf, cv2.IMREAD_REDUCED_GRAYSCALE_8)
    if image is None or not data.endswith(b'\xff\xd9'):
        raise ValueError('not a complete JPEG')


# ------------------------------------------------------------------------------------------------------
# CLI
def main_export(argv=None):
    parser = argparse.ArgumentParser(prog='posepile export', description='Export a built dataset.')
    parser.add_argument('dataset', help='registered name, or a .posepile/.pkl file')
    parser.add_argument('--to', choices=['barecat'], default='barecat')
    parser.add_argument('out', help='output folder')
    parser.add_argument('--shard-size', default='2G', help='Barecat shard size limit, e.g. 500M, 2G')
    parser.add_argument('--no-images', action='store_true', help='annotations only')
    args = parser.parse_args(argv)
    from posepile.datasets3d import get_dataset
    dataset = get_dataset(args.dataset)
    metadata = export_dataset(dataset, args.out, shard_size_limit=args.shard_size,
                              include_images=not args.no_images)
    print(f'exported {metadata["counts"]} to {args.out}')


def main_verify(argv=None):
    parser = argparse.ArgumentParser(prog='posepile verify', description='Verify a Barecat export.')
    parser.add_argument('out', help='export folder (with annotations.barecat)')
    parser.add_argument('--no-decode-images', action='store_true')
    args = parser.parse_args(argv)
    problems = verify(args.out, decode_images=not args.no_decode_images)
    for problem in problems:
        print(problem)
    if problems:
        print(f'{len(problems)} problem(s) found in {args.out}')
        sys.exit(1)
    print(f'{args.out}: all entries verified')
