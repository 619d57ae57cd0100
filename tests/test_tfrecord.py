import numpy as np
import pytest

from posepile.util import tfrecord


def test_crc32c_known_value_and_fallback():
    assert tfrecord.crc32c(b'123456789') == 0xE3069283
    assert tfrecord._crc32c_python(b'123456789') == 0xE3069283
    data = bytes(range(256)) * 3
    assert tfrecord._crc32c_python(data) == tfrecord.crc32c(data)


def test_known_tfrecord_bytes():
    # the first record header of a TFRecord holding b'hello' as written by TensorFlow
    record = tfrecord.encode_record(b'hello')
    assert record[:8] == (5).to_bytes(8, 'little')
    header_crc = tfrecord.crc32c(record[:8])
    masked = (((header_crc >> 15) | (header_crc << 17)) + 0xa282ead8) & 0xFFFFFFFF
    assert int.from_bytes(record[8:12], 'little') == masked


@pytest.mark.parametrize('packed', [True, False])
def test_example_round_trip(tmp_path, packed):
    features = {'image/rgb': b'\x00\x01binary', 'many': [b'a', b'bc'],
                'floats': np.array([1.5, -2.25, 3e6], np.float32), 'ints': np.array([0, 7, -3, 2 ** 40]),
                'empty_floats': np.zeros(0, np.float32)}
    path = tmp_path / 'x.tfrecord'
    tfrecord.write_records(path, [tfrecord.encode_example(features, packed), tfrecord.encode_example({})])
    parsed = list(tfrecord.iter_examples(path))
    assert len(parsed) == 2 and parsed[1] == {}
    first = parsed[0]
    assert first['image/rgb'] == [features['image/rgb']] and first['many'] == [b'a', b'bc']
    np.testing.assert_array_equal(first['floats'], features['floats'])
    np.testing.assert_array_equal(first['ints'], [0, 7, -3, 2 ** 40])
    assert first['ints'].dtype == np.int64


def test_protobuf_reference_encoding():
    """Bytes built by hand from the protobuf spec: Example{features{feature{key:'a' value{int64_list{1,300}}}}}."""
    int64_list = b'\x0a\x03\x01\xac\x02'  # packed: field 1, length 3, varints 1 and 300
    feature = b'\x1a' + bytes([len(int64_list)]) + int64_list
    entry = b'\x0a\x01a' + b'\x12' + bytes([len(feature)]) + feature
    features = b'\x0a' + bytes([len(entry)]) + entry
    example = b'\x0a' + bytes([len(features)]) + features
    assert tfrecord.encode_example({'a': np.array([1, 300])}) == example
    np.testing.assert_array_equal(tfrecord.parse_example(example)['a'], [1, 300])


def test_corrupt_byte_names_file_and_record(tmp_path):
    path = tmp_path / 'c.tfrecord'
    tfrecord.write_records(path, [b'first', b'second', b'third'])
    data = bytearray(path.read_bytes())
    data[len(tfrecord.encode_record(b'first')) + 12 + 2] ^= 0xFF  # inside the data of record 1
    path.write_bytes(bytes(data))
    records = tfrecord.iter_records(path)
    assert next(records) == b'first'
    with pytest.raises(tfrecord.TFRecordError, match=r'c\.tfrecord: record 1: CRC mismatch in the data') as info:
        next(records)
    assert '\n' not in str(info.value)
    path.write_bytes(tfrecord.encode_record(b'abc')[:-2])
    with pytest.raises(tfrecord.TFRecordError, match='record 0: truncated'):
        list(tfrecord.iter_records(path))


def _example_class():
    """tf.train.Example built from its .proto definition with the protobuf runtime (no TensorFlow)."""
    descriptor_pb2 = pytest.importorskip('google.protobuf.descriptor_pb2')
    from google.protobuf import descriptor_pool, message_factory
    f = descriptor_pb2.FileDescriptorProto(name='posepile_test_example.proto', package='tfx', syntax='proto3')
    types = descriptor_pb2.FieldDescriptorProto
    label, optional = types.LABEL_REPEATED, types.LABEL_OPTIONAL
    for name, type_ in (('BytesList', types.TYPE_BYTES), ('FloatList', types.TYPE_FLOAT),
                        ('Int64List', types.TYPE_INT64)):
        message = f.message_type.add(name=name)
        message.field.add(name='value', number=1, type=type_, label=label)
    feature = f.message_type.add(name='Feature')
    feature.oneof_decl.add(name='kind')
    for number, (field, type_name) in enumerate(
            (('bytes_list', 'BytesList'), ('float_list', 'FloatList'), ('int64_list', 'Int64List')), 1):
        feature.field.add(name=field, number=number, type=types.TYPE_MESSAGE, label=optional,
                          type_name=f'.tfx.{type_name}', oneof_index=0)
    features = f.message_type.add(name='Features')
    entry = features.nested_type.add(name='FeatureEntry')
    entry.options.map_entry = True
    entry.field.add(name='key', number=1, type=types.TYPE_STRING, label=optional)
    entry.field.add(name='value', number=2, type=types.TYPE_MESSAGE, label=optional, type_name='.tfx.Feature')
    features.field.add(name='feature', number=1, type=types.TYPE_MESSAGE, label=label,
                       type_name='.tfx.Features.FeatureEntry')
    example = f.message_type.add(name='Example')
    example.field.add(name='features', number=1, type=types.TYPE_MESSAGE, label=optional, type_name='.tfx.Features')
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName('tfx.Example'))


def test_against_the_protobuf_runtime():
    Example = _example_class()
    message = Example()
    message.features.feature['img'].bytes_list.value.append(b'\x89PNG')
    message.features.feature['f'].float_list.value.extend([0.5, -1.25])
    message.features.feature['i'].int64_list.value.extend([3, -9, 2 ** 50])
    parsed = tfrecord.parse_example(message.SerializeToString())
    assert parsed['img'] == [b'\x89PNG']
    np.testing.assert_array_equal(parsed['f'], [0.5, -1.25])
    np.testing.assert_array_equal(parsed['i'], [3, -9, 2 ** 50])
    for packed in (True, False):
        ours = Example.FromString(tfrecord.encode_example(
            {'a': np.array([1.5], np.float32), 'b': np.array([-4, 5]), 'c': [b'x', b'yz']}, packed=packed))
        assert list(ours.features.feature['a'].float_list.value) == [1.5]
        assert list(ours.features.feature['b'].int64_list.value) == [-4, 5]
        assert list(ours.features.feature['c'].bytes_list.value) == [b'x', b'yz']
