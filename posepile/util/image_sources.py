"""Images read in place from the containers releases ship them in (zip archives, HDF5 / SMC files), and PNG -> JPEG
conversion, without extracting the release.

A *member path* names an image inside a container: `<container path>::<member>`, e.g.
    'humman/recon/p000438_a000040.zip::p000438_a000040/kinect_color/kinect_000/000000.png'
    'dna_rendering/main/0012_11.smc::Camera_5mp/25/color/000000'
The container path is relative to the data root (or absolute); the member is the zip member name, or the HDF5
dataset key (a dataset holding the encoded image bytes as a 1-D uint8 array, as in DNA-Rendering's SMC files).
Such a string can be an example's `image_path`: the crop stage (posepile/preproc/cropping.py) reads the bytes with
`read_image_bytes`, takes the size from the encoded header and decodes JPEGs at reduced scale, and its fingerprint
(posepile/preproc/pipeline.py) stamps the container file (size, mtime) plus the member name.

Containers are opened once per process and kept open (`open_zip`, `open_hdf5`; small LRU caches keyed by the path
and modification time), so reading many members costs one central-directory parse, not one per image. Errors are
one-line `ImageSourceError`s (an InputError) naming the container and the member.
"""
import functools
import threading
import zipfile
import zlib
from pathlib import Path

import numpy as np

from posepile.util.errors import InputError

MEMBER_SEPARATOR = '::'
HDF5_SUFFIXES = ('.smc', '.h5', '.hdf5', '.hdf')
_LOCK = threading.Lock()


class ImageSourceError(InputError):
    pass


# ------------------------------------------------------------------------------------------------
# Member paths
def member_path(container, member):
    """'<container>::<member>' (the container as given: relative to the data root, or absolute)."""
    return f'{container}{MEMBER_SEPARATOR}{member}'


def is_member_path(path):
    return isinstance(path, str) and MEMBER_SEPARATOR in path


def split_member_path(path):
    """(container path string, member string) of a member path; ValueError otherwise."""
    container, sep, member = str(path).partition(MEMBER_SEPARATOR)
    if not sep or not container or not member:
        raise ValueError(f'{path!r} is not a member path "<container>{MEMBER_SEPARATOR}<member>"')
    return container, member


def resolve_container(path, data_root=None):
    """Absolute Path of the container of a member path (relative paths are under `data_root`, default
    posepile.paths.data_root())."""
    container = Path(split_member_path(path)[0])
    if container.is_absolute():
        return container
    if data_root is None:
        from posepile.paths import data_root as get_data_root
        data_root = get_data_root()
    return Path(data_root) / container


def is_hdf5_container(path):
    return Path(path).suffix.lower() in HDF5_SUFFIXES


# ------------------------------------------------------------------------------------------------
# Cached container handles (one per process, reopened when the file changes)
def open_zip(path):
    """A cached read-only zipfile.ZipFile of `path` (ImageSourceError if it is missing or not a zip)."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ImageSourceError(f'{path}: zip archive not found') from None
    return _open_zip_cached(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _open_zip_cached(path, _mtime_ns, _size):
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ImageSourceError(f'{path}: not a readable zip archive ({type(e).__name__}: {e})') from None


def open_hdf5(path):
    """A cached read-only h5py.File of `path` (ImageSourceError if missing or not HDF5). Needs h5py."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ImageSourceError(f'{path}: HDF5 file not found') from None
    return _open_hdf5_cached(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _open_hdf5_cached(path, _mtime_ns, _size):
    import h5py
    try:
        return h5py.File(path, 'r')
    except OSError as e:
        raise ImageSourceError(f'{path}: not a readable HDF5 file ({e})') from None


def zip_members(path):
    """Sorted names of the files (not folders) in a zip archive."""
    return sorted(info.filename for info in open_zip(path).infolist() if not info.is_dir())


def read_zip_member(path, member):
    """Bytes of `member` of the zip archive `path` (ImageSourceError naming both when absent or corrupt)."""
    archive = open_zip(path)
    try:
        with _LOCK:
            return archive.read(member)
    except KeyError:
        raise ImageSourceError(f'{path}: no member {member!r} in the zip archive') from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
        raise ImageSourceError(f'{path}: member {member!r} is corrupt ({type(e).__name__}: {e})') from None


def read_hdf5_array(path, key):
    """The HDF5 dataset `key` of file `path` as a numpy array (ImageSourceError naming both when absent)."""
    handle = open_hdf5(path)
    try:
        with _LOCK:
            return np.asarray(handle[key][()])
    except KeyError:
        raise ImageSourceError(f'{path}: no dataset {key!r} in the HDF5 file') from None
    except (OSError, TypeError, ValueError) as e:
        raise ImageSourceError(f'{path}: dataset {key!r} is unreadable ({type(e).__name__}: {e})') from None


def read_hdf5_bytes(path, key):
    """Encoded bytes stored as a 1-D uint8 (or opaque/bytes) HDF5 dataset, e.g. a JPEG frame in an SMC file."""
    value = read_hdf5_array(path, key)
    if value.dtype == np.uint8:
        return value.reshape(-1).tobytes()
    if value.dtype.kind in ('S', 'V', 'O') and value.size == 1:
        item = value.reshape(-1)[0]
        return bytes(item) if not isinstance(item, np.void) else item.tobytes()
    raise ImageSourceError(f'{path}: dataset {key!r} holds {value.dtype} {value.shape}, not encoded image bytes')


def hdf5_attrs(path, key='/'):
    """The attributes of the HDF5 group/dataset `key` as a plain dict (numpy scalars kept)."""
    handle = open_hdf5(path)
    try:
        return dict(handle[key].attrs)
    except KeyError:
        raise ImageSourceError(f'{path}: no group {key!r} in the HDF5 file') from None


# ------------------------------------------------------------------------------------------------
# Image bytes
def read_image_bytes(path, data_root=None):
    """Encoded bytes of an image given as a member path (zip member or HDF5 dataset) or a plain file path;
    truncated JPEG/PNG data is an ImageDecodeError naming the source."""
    from posepile.util import improc
    if is_member_path(path):
        container = resolve_container(path, data_root)
        member = split_member_path(path)[1]
        data = read_hdf5_bytes(container, member) if is_hdf5_container(container) else \
            read_zip_member(container, member)
        name = member_path(container, member)
    else:
        file = Path(path)
        if not file.is_absolute() and data_root is not None:
            file = Path(data_root) / file
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(str(file)) from None
        name = str(file)
    improc.check_complete(data, name)
    return data


def source_stamp(path, data_root=None):
    """What a crop of a member-path image depends on: the container's stamp (size, mtime) and the member."""
    from posepile.util.fingerprint import file_stamp
    return file_stamp(resolve_container(path, data_root)), split_member_path(path)[1]


def decode_image(data, name='<bytes>', scale_denominator=1):
    """RGB uint8 image of encoded bytes (JPEG at 1/scale_denominator in the DCT domain; PNG etc. at full size
    when scale_denominator is 1); ImageDecodeError naming `name` when undecodable."""
    from posepile.util import improc
    try:
        return improc.decode_jpeg(data, scale_denominator)
    except improc.ImageDecodeError:
        raise improc.ImageDecodeError(f'{name}: cannot decode image') from None


def png_to_jpeg_bytes(data, quality=95, name='<bytes>'):
    """JPEG bytes (quality `quality`) of encoded PNG (or any decodable) bytes; 16-bit and alpha dropped to RGB8."""
    import cv2
    from posepile.util import improc
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise improc.ImageDecodeError(f'{name}: cannot decode image')
    return improc.encode_jpeg(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), quality)


def convert_zip_images_to_jpeg(zip_path, out_dir, members=None, quality=95, skip_existing=True):
    """Write each image member of a zip (default: all *.png) as a JPEG under `out_dir`, keeping the member's
    relative path with the suffix replaced by .jpg, without extracting the archive. Returns the written paths."""
    from posepile.util import improc
    from posepile.util.fileio import write_bytes_atomic
    zip_path, out_dir = Path(zip_path), Path(out_dir)
    if members is None:
        members = [m for m in zip_members(zip_path) if m.lower().endswith('.png')]
    written = []
    for member in members:
        out_path = out_dir / Path(member).with_suffix('.jpg')
        if not (skip_existing and improc.is_readable_image(out_path)):
            data = read_zip_member(zip_path, member)
            improc.check_complete(data, member_path(zip_path, member))
            write_bytes_atomic(out_path, png_to_jpeg_bytes(data, quality, member_path(zip_path, member)))
        written.append(out_path)
    return written
