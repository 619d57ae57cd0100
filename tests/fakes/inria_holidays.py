"""A fake INRIA Holidays release: jpg/<id>.jpg as extracted from jpg1.tar.gz / jpg2.tar.gz (the dataset page
names the archives and the jpg/ folder with 6-digit ids, e.g. jpg/100000.jpg), some with an EXIF Orientation tag
(the real photos are often stored sideways with the tag; the APP1 segment is written here byte by byte).
Each photo has a red marker in its STORED top-left corner, so the displayed orientation can be checked."""
import struct
import tarfile
from pathlib import Path

import numpy as np

from posepile.util import improc

# id -> (stored width, stored height, EXIF orientation or None)
PHOTOS = {'100000': (300, 200, None), '100001': (300, 200, 6), '100100': (240, 320, 3), '100101': (320, 240, 8),
          '100200': (200, 200, 1)}


def exif_app1(orientation, little_endian=True):
    endian = '<' if little_endian else '>'
    tiff = (b'II' if little_endian else b'MM') + struct.pack(endian + 'HI', 42, 8)
    tiff += struct.pack(endian + 'H', 1) + struct.pack(endian + 'HHIHH', 0x0112, 3, 1, orientation, 0)
    tiff += struct.pack(endian + 'I', 0)
    payload = b'Exif\x00\x00' + tiff
    return b'\xff\xe1' + struct.pack('>H', len(payload) + 2) + payload


def photo(width, height):
    image = np.full((height, width, 3), (40, 90, 140), np.uint8)
    image[:height // 4, :width // 4] = (230, 20, 20)  # the marker: stored top-left
    return image


def write_fake_release(root, as_archives=True):
    """Writes root/jpg1.tar.gz + jpg2.tar.gz (or root/jpg/ directly). Returns PHOTOS."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, (name, (width, height, orientation)) in enumerate(PHOTOS.items()):
        data = improc.encode_jpeg(photo(width, height), 95)
        if orientation is not None:
            data = data[:2] + exif_app1(orientation, little_endian=i % 2 == 0) + data[2:]
        files[f'jpg/{name}.jpg'] = data
    if not as_archives:
        for relpath, data in files.items():
            (root / relpath).parent.mkdir(parents=True, exist_ok=True)
            (root / relpath).write_bytes(data)
        return PHOTOS
    names = sorted(files)
    for archive, part in (('jpg1.tar.gz', names[:3]), ('jpg2.tar.gz', names[3:])):
        with tarfile.open(root / archive, 'w:gz') as tar:
            for relpath in part:
                import io
                info = tarfile.TarInfo(relpath)
                info.size = len(files[relpath])
                tar.addfile(info, io.BytesIO(files[relpath]))
    return PHOTOS
