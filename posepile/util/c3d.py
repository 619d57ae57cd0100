"""The C3D header, read from the raw bytes, to check that a motion-capture file is complete before it is
decoded: ezc3d silently shortens its own copy of the frame count to what a truncated file holds (so a cut
file reads as fewer frames), and can crash the process on some truncated files."""
import dataclasses
import struct
from pathlib import Path

from posepile.util.errors import InputError

_PROCESSORS = {84: '<', 85: '<', 86: '>'}  # Intel, DEC, MIPS (big-endian)
_SCALE_SIGN_BYTE = {84: 15, 85: 13, 86: 12}  # where the scale factor's sign bit is (its float layout)


@dataclasses.dataclass(frozen=True)
class C3DHeader:
    first_frame: int
    n_frames: int  # what the header promises (16-bit frame numbers: files of > 65535 frames cannot say)
    n_points: int
    n_analog: int  # analog samples per 3D frame
    required_bytes: int  # the file size that holds all promised frames


def read_header(path, error_class=InputError):
    path = Path(path)
    with open(path, 'rb') as f:
        header = f.read(512)
        if len(header) < 512 or header[1] != 0x50 or header[0] < 2:
            raise error_class(f'{path}: not a C3D file (bad header)')
        f.seek((header[0] - 1) * 512 + 3)
        processor = f.read(1)
    if len(processor) != 1 or processor[0] not in _PROCESSORS:
        raise error_class(f'{path}: not a C3D file (unknown processor type)')
    order = _PROCESSORS[processor[0]]
    n_points, n_analog, first, last = struct.unpack(order + '4H', header[2:10])
    data_start_block = struct.unpack(order + 'H', header[16:18])[0]
    bytes_per_value = 4 if header[_SCALE_SIGN_BYTE[processor[0]]] & 0x80 else 2  # float if scale < 0
    n_frames = last - first + 1
    required = (data_start_block - 1) * 512 + max(n_frames, 0) * (4 * n_points + n_analog) * bytes_per_value
    return C3DHeader(first, n_frames, n_points, n_analog, required)


def check_complete(path, error_class=InputError):
    """The header of a C3D file whose size covers every frame it promises; else `error_class` naming the
    file (a truncated download, or a file that is not C3D)."""
    header = read_header(path, error_class)
    size = Path(path).stat().st_size
    if header.n_frames > 0 and size < header.required_bytes:
        raise error_class(f'{path}: truncated C3D: the header promises {header.n_frames} frames '
                          f'({header.required_bytes} bytes), the file has {size} bytes')
    return header
