"""TFRecord files and tf.train.Example protobufs without TensorFlow.

A TFRecord file is a sequence of records, each
    uint64 little-endian  length of the data
    uint32 little-endian  masked CRC-32C of those 8 length bytes
    bytes                 the data (here a serialized tf.train.Example)
    uint32 little-endian  masked CRC-32C of the data
with masked_crc(x) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2^32). Both CRCs are verified.

tf.train.Example (protobuf wire format):
    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }   (each entry: string key = 1; Feature value = 2)
    Feature   { oneof: BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1; }   packed (one length-delimited run) or unpacked (fixed32 each)
    Int64List { repeated int64 value = 1; }   packed or unpacked varints (two's complement)
`parse_example` returns {name: list of bytes | float32 array | int64 array}. `encode_example` and
`write_records` produce the same formats (used to write test fixtures).
"""
import struct
from pathlib import Path

import numpy as np

_MASK_DELTA = 0xa282ead8
_LENGTH_HEADER = struct.Struct('<QI')
_CRC = struct.Struct('<I')


class TFRecordError(ValueError):
    """A malformed TFRecord file or tf.train.Example; the message names the file and record."""


def _make_crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = None


def _crc32c_python(data):
    """Table-driven CRC-32C (Castagnoli), the fallback when no compiled implementation is installed."""
    global _TABLE
    if _TABLE is None:
        _TABLE = _make_crc32c_table()
    table = _TABLE
    crc = 0xFFFFFFFF
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _pick_crc32c():
    try:
        import crc32c as crc32c_package
        return crc32c_package.crc32c
    except ImportError:
        pass
    try:
        import google_crc32c
        return lambda data: google_crc32c.value(bytes(data))
    except ImportError:
        return _crc32c_python


crc32c = _pick_crc32c()


def masked_crc(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


# ------------------------------------------------------------------------------------------------
# The record container
def iter_records(path):
    """Yields the data (bytes) of each record of a TFRecord file, after checking both CRCs.

    Raises TFRecordError '<path>: record <i>: <problem>' for a truncated file or a CRC mismatch.
    """
    path = Path(path)
    with open(path, 'rb') as f:
        index = 0
        while True:
            header = f.read(_LENGTH_HEADER.size)
            if not header:
                return
            if len(header) < _LENGTH_HEADER.size:
                raise TFRecordError(f'{path}: record {index}: truncated length header')
            length, length_crc = _LENGTH_HEADER.unpack(header)
            if masked_crc(header[:8]) != length_crc:
                raise TFRecordError(f'{path}: record {index}: CRC mismatch in the length header (corrupt file)')
            data = f.read(length)
            footer = f.read(_CRC.size)
            if len(data) < length or len(footer) < _CRC.size:
                raise TFRecordError(f'{path}: record {index}: truncated data ({len(data)} of {length} bytes)')
            if masked_crc(data) != _CRC.unpack(footer)[0]:
                raise TFRecordError(f'{path}: record {index}: CRC mismatch in the data (corrupt file)')
            yield data
            index += 1


def encode_record(data):
    """The bytes of one TFRecord record holding `data`."""
    header = struct.pack('<Q', len(data))
    return header + _CRC.pack(masked_crc(header)) + bytes(data) + _CRC.pack(masked_crc(data))


def write_records(path, records):
    """Writes the byte strings `records` as a TFRecord file."""
    with open(path, 'wb') as f:
        for data in records:
            f.write(encode_record(data))


# ------------------------------------------------------------------------------------------------
# Protobuf wire format
def _read_varint(buffer, pos):
    result = shift = 0
    while True:
        if pos >= len(buffer):
            raise ValueError('truncated varint')
        byte = buffer[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError('varint longer than 10 bytes')


def _iter_fields(buffer):
    """Yields (field number, wire type, value) of a message: value is an int for varints (0), a memoryview
    for length-delimited fields (2) and the raw 4 / 8 bytes for fixed32 (5) / fixed64 (1)."""
    pos, end = 0, len(buffer)
    while pos < end:
        key, pos = _read_varint(buffer, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _read_varint(buffer, pos)
        elif wire_type == 2:
            length, pos = _read_varint(buffer, pos)
            if pos + length > end:
                raise ValueError(f'field {number} runs past the end of its message')
            value, pos = buffer[pos:pos + length], pos + length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            if pos + size > end:
                raise ValueError(f'field {number} runs past the end of its message')
            value, pos = buffer[pos:pos + size], pos + size
        else:
            raise ValueError(f'unsupported wire type {wire_type} (field {number})')
        yield number, wire_type, value


def _to_int64(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def _parse_bytes_list(buffer):
    return [bytes(v) for n, t, v in _iter_fields(buffer) if n == 1 and t == 2]


def _parse_float_list(buffer):
    parts = []
    for number, wire_type, value in _iter_fields(buffer):
        if number != 1:
            continue
        if wire_type == 2:
            if len(value) % 4:
                raise ValueError(f'packed float list of {len(value)} bytes (not a multiple of 4)')
            parts.append(np.frombuffer(value, '<f4'))
        elif wire_type == 5:
            parts.append(np.frombuffer(value, '<f4'))
        else:
            raise ValueError(f'float list value with wire type {wire_type}')
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def _parse_int64_list(buffer):
    values = []
    for number, wire_type, value in _iter_fields(buffer):
        if number != 1:
            continue
        if wire_type == 0:
            values.append(_to_int64(value))
        elif wire_type == 2:
            pos = 0
            while pos < len(value):
                v, pos = _read_varint(value, pos)
                values.append(_to_int64(v))
        else:
            raise ValueError(f'int64 list value with wire type {wire_type}')
    return np.array(values, np.int64)


_LIST_PARSERS = {1: _parse_bytes_list, 2: _parse_float_list, 3: _parse_int64_list}


def _parse_feature(buffer):
    result = []  # protobuf semantics: the last oneof member wins
    for number, wire_type, value in _iter_fields(buffer):
        if number in _LIST_PARSERS and wire_type == 2:
            result = _LIST_PARSERS[number](value)
    return result


def _parse_map_entry(buffer):
    key, feature = '', []
    for number, wire_type, value in _iter_fields(buffer):
        if number == 1 and wire_type == 2:
            key = bytes(value).decode('utf-8')
        elif number == 2 and wire_type == 2:
            feature = _parse_feature(value)
    return key, feature


def parse_example(data):
    """{feature name: list of bytes (BytesList) | float32 array (FloatList) | int64 array (Int64List)} of a
    serialized tf.train.Example. Raises ValueError on malformed wire data."""
    features = {}
    buffer = memoryview(data)
    for number, wire_type, value in _iter_fields(buffer):
        if number == 1 and wire_type == 2:
            for n, t, entry in _iter_fields(value):
                if n == 1 and t == 2:
                    key, feature = _parse_map_entry(entry)
                    features[key] = feature
    return features


def iter_examples(path):
    """Yields the parsed tf.train.Example of each record of a TFRecord file (see parse_example)."""
    for index, data in enumerate(iter_records(path)):
        try:
            yield parse_example(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise TFRecordError(f'{path}: record {index}: not a valid tf.train.Example ({e})') from None


def _varint(value):
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number, payload):
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _encode_feature(value, packed):
    if isinstance(value, (bytes, str)) or (isinstance(value, list) and value and
                                           isinstance(value[0], (bytes, str))):
        items = [value] if isinstance(value, (bytes, str)) else value
        items = [v.encode() if isinstance(v, str) else v for v in items]
        return _field(1, b''.join(_field(1, v) for v in items))
    array = np.asarray(value).reshape(-1)
    if np.issubdtype(array.dtype, np.floating):
        floats = array.astype('<f4')
        body = _field(1, floats.tobytes()) if packed else b''.join(
            _varint(1 << 3 | 5) + f.tobytes() for f in floats)
        return _field(2, body)
    ints = [int(v) for v in array]
    body = _field(1, b''.join(_varint(v) for v in ints)) if packed else b''.join(
        _varint(1 << 3 | 0) + _varint(v) for v in ints)
    return _field(3, body)


def encode_example(features, packed=True):
    """Serialized tf.train.Example of {name: bytes | str | list of bytes | float array | int array}
    (float dtypes become a FloatList, integer dtypes an Int64List; packed or unpacked repeated fields)."""
    entries = b''.join(_field(1, _field(1, name.encode('utf-8')) + _field(2, _encode_feature(value, packed)))
                       for name, value in features.items())
    return _field(1, entries)
