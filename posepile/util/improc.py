"""Image I/O: JPEG decoding at reduced scale in the DCT domain, encoding, header-only sizes, gamma LUTs."""
import struct
from pathlib import Path

import cv2
import numpy as np

from posepile.util.errors import InputError
from posepile.util.fileio import write_bytes_atomic

_REDUCED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                  8: cv2.IMREAD_REDUCED_COLOR_8}


class ImageDecodeError(InputError):
    pass


def check_complete(data, name):
    """Raise ImageDecodeError if encoded image bytes are cut short: a JPEG without its end-of-image marker
    near the end (decoders would silently fill the missing part with grey), a PNG without its IEND chunk."""
    if data[:2] == b'\xff\xd8':
        if data.rfind(b'\xff\xd9', max(0, len(data) - 4096)) < 0:
            raise ImageDecodeError(f'{name}: truncated JPEG (no end-of-image marker; {len(data)} bytes)')
    elif data[:8] == b'\x89PNG\r\n\x1a\n':
        if data.rfind(b'IEND', max(0, len(data) - 64)) < 0:
            raise ImageDecodeError(f'{name}: truncated PNG (no IEND chunk; {len(data)} bytes)')


def choose_decode_scale(output_scale):
    """Largest power-of-two reduction (1, 2, 4, 8) that still leaves at least `1/output_scale` headroom.

    A decode at 1/k is used only when the final image is at most 1/k of the source size, so the later
    resampling never has to upsample what the DCT-domain reduction dropped.
    """
    for k in (8, 4, 2):
        if output_scale <= 1 / k:
            return k
    return 1


def decode_jpeg(path_or_bytes, scale_denominator=1, strict=False):
    """RGB uint8 image from a JPEG file or bytes, decoded at 1/scale_denominator (1, 2, 4, 8) in the
    DCT domain by libjpeg-turbo (fast: the skipped resolution is never computed). `strict` (for raw inputs)
    refuses truncated files instead of decoding them with a grey lower part."""
    flag = _REDUCED_FLAGS[scale_denominator]
    if strict and not isinstance(path_or_bytes, (bytes, bytearray, memoryview, np.ndarray)):
        name = str(path_or_bytes)
        try:
            with open(name, 'rb') as f:
                data = f.read()
        except FileNotFoundError:
            raise FileNotFoundError(name) from None
        check_complete(data, name)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
        if image is None:
            raise ImageDecodeError(f'{name}: cannot decode image')
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview, np.ndarray)):
        buf = np.frombuffer(path_or_bytes, np.uint8) if not isinstance(path_or_bytes, np.ndarray) \
            else path_or_bytes
        image = cv2.imdecode(buf, flag)
        name = '<bytes>'
    else:
        name = str(path_or_bytes)
        image = cv2.imread(name, flag)
        if image is None and not Path(name).exists():
            raise FileNotFoundError(name)
    if image is None:
        raise ImageDecodeError(f'{name}: cannot decode image')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def imread_rgb(path, scale_denominator=1, strict=False):
    return decode_jpeg(path, scale_denominator, strict)


def encode_jpeg(rgb, quality=95):
    ok, buf = cv2.imencode('.jpg', cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError('JPEG encoding failed')
    return buf.tobytes()


def write_jpeg_atomic(path, rgb, quality=95):
    write_bytes_atomic(path, encode_jpeg(rgb, quality))


def is_readable_image(path):
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError:
        return False
    if not data.endswith(b'\xff\xd9') and data[:2] == b'\xff\xd8':
        return False
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8) is not None


def image_size_from_header(path):
    """(height, width) read from a JPEG or PNG header without decoding the pixels (`path` may also be the
    encoded bytes themselves)."""
    import contextlib
    import io
    opened = io.BytesIO(path) if isinstance(path, (bytes, bytearray)) else open(path, 'rb')
    if isinstance(path, (bytes, bytearray)):
        path = '<bytes>'
    with contextlib.closing(opened) as f:
        head = f.read(26)
        if head[:8] == b'\x89PNG\r\n\x1a\n':
            width, height = struct.unpack('>II', head[16:24])
            return height, width
        if head[:2] != b'\xff\xd8':
            raise ImageDecodeError(f'{path}: not a JPEG or PNG file')
        f.seek(2)
        while True:
            marker = f.read(2)
            if len(marker) < 2 or marker[0] != 0xFF:
                raise ImageDecodeError(f'{path}: JPEG header ended before the frame size')
            code = marker[1]
            if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
                continue
            length = struct.unpack('>H', f.read(2))[0]
            if 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC):
                _, height, width = struct.unpack('>BHH', f.read(5))
                return height, width
            f.seek(length - 2, 1)


# Gamma-correct resampling: average in linear light, not on gamma-encoded values.
_GAMMA = 2.2
_TO_LINEAR_LUT = ((np.arange(256, dtype=np.float32) / 255) ** _GAMMA).astype(np.float32)


def to_linear(rgb_uint8):
    """uint8 sRGB-like -> float32 linear light in [0, 1] (a table lookup, no per-pixel pow)."""
    return _TO_LINEAR_LUT[rgb_uint8]


def from_linear(linear, gamma_power=1 / _GAMMA):
    """float32 linear light -> uint8, via a 4096-entry table (error < 0.5 level)."""
    table = (np.clip(np.linspace(0, 1, 4096, dtype=np.float32) ** gamma_power, 0, 1) * 255 + 0.5).astype(
        np.uint8)
    idx = np.clip(linear * 4095 + 0.5, 0, 4095).astype(np.int32)
    return table[idx]


# MPI-INF-3DHP colour correction of the original PosePile's training crops: a gamma lift (the crop re-encoded
# from linear light with power 0.67 / 2.2 instead of 1 / 2.2, i.e. the [0, 1] gamma-encoded image raised to
# 0.67, truncated to 8 bit) then a shift of OpenCV's 8-bit Lab a and b channels in proportion to lightness,
# a -= (110 - 128) * L / 255 * 1.1 and b -= (145 - 128) * L / 255 * 1.1, which removes the studio's
# green-yellow cast. Lab is computed from RGB order. Uniform RGB -> RGB: (110, 140, 105) -> (161, 164, 163),
# (128, 128, 128) -> (173, 153, 183), (30, 40, 25) -> (64, 71, 63).
WHITE_BALANCE_3DHP_A, WHITE_BALANCE_3DHP_B, WHITE_BALANCE_3DHP_GAIN = 110, 145, 1.1
GAMMA_LIFT_3DHP = 0.67
_GAMMA_LIFT_3DHP_LUT = ((np.arange(256) / 255) ** GAMMA_LIFT_3DHP * 255).astype(np.uint8)


def white_balance_3dhp(rgb_uint8):
    """The original's colour correction of MPI-INF-3DHP training crops (uint8 RGB in and out): gamma lift
    (power 0.67 on the [0, 1] gamma-encoded values) and the lightness-proportional Lab a/b shift toward
    neutral for the reference chromaticity a=110, b=145 with gain 1.1 (see the constants above)."""
    lifted = _GAMMA_LIFT_3DHP_LUT[np.asarray(rgb_uint8, np.uint8)]
    lab = cv2.cvtColor(np.ascontiguousarray(lifted), cv2.COLOR_RGB2LAB).astype(np.float32)
    lightness_gain = lab[..., 0] * np.float32(WHITE_BALANCE_3DHP_GAIN / 255)
    lab[..., 1] -= (WHITE_BALANCE_3DHP_A - 128) * lightness_gain
    lab[..., 2] -= (WHITE_BALANCE_3DHP_B - 128) * lightness_gain
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


# 16-bit linear light: exact enough for averaging (65535 levels) and fast in OpenCV's integer paths.
_TO_LINEAR16_LUT = np.round((np.arange(256) / 255) ** _GAMMA * 65535).astype(np.uint16)
_FROM_LINEAR16_LUT = np.round(np.clip(np.arange(65536) / 65535, 0, 1) ** (1 / _GAMMA) * 255).astype(np.uint8)


def downscale_gamma_correct(rgb_uint8, factor):
    """Average `factor` x `factor` pixel blocks in linear light (16-bit), uint8 in and out; the image is
    first cropped to a multiple of the factor. Averaging gamma-encoded values instead would darken fine
    bright-dark detail. Integer factors make this a plain box filter, the fastest antialiasing there is."""
    height = rgb_uint8.shape[0] // factor * factor
    width = rgb_uint8.shape[1] // factor * factor
    linear = cv2.LUT(np.ascontiguousarray(rgb_uint8[:height, :width]), _TO_LINEAR16_LUT)
    small = cv2.resize(linear, (width // factor, height // factor), interpolation=cv2.INTER_AREA)
    return _FROM_LINEAR16_LUT[small]
