"""TFRecord files of `tf.train.Example`s, read without importing TensorFlow.

`from tensorflow.core.example import example_pb2` runs TensorFlow's package
`__init__`, which takes most of a refused run's time (about 17 s against
0.07 s for this module's imports on two busy cores, measured with
`python -X importtime`). The input check only needs the records' framing and
the `tf.train.Example` wire format, so this module reads both itself:

- the TFRecord framing (each record is a little-endian uint64 length, the
  masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the
  data), with the checksums verified by `google_crc32c`;
- the `Example` / `Features` / `Feature` messages, declared here as a
  descriptor in a private pool and parsed by the protobuf runtime. The wire
  format is what matters: the field numbers and types below are those of
  `tensorflow/core/example/{example,feature}.proto`.

Compression follows the file name, as Beam's `ReadFromTFRecord` (and so
ImportExampleGen) decides it: `.gz` is gzip, anything else uncompressed.
"""

from __future__ import annotations

import gzip
import struct
from typing import Any
from typing import BinaryIO
from typing import Dict
from typing import Iterator
from typing import List
from typing import Tuple

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message
from google.protobuf import message_factory
import google_crc32c

from pipeline.facts import kinds

# Kinds of a `tf.train.Feature`, named as the oneof's fields are.
BYTES = kinds.FEATURE_LISTS[kinds.BYTES]
FLOAT = kinds.FEATURE_LISTS[kinds.FLOAT]
INT64 = kinds.FEATURE_LISTS[kinds.INT]
_HEADER = struct.Struct('<QI')
_FOOTER = struct.Struct('<I')
_MASK_DELTA = 0xa282ead8
_PACKAGE = 'validation.tf'


class RecordError(ValueError):
  """The file is not a readable TFRecord file of tf.Examples.

  Attributes:
    record: 1-based number of the record that could not be read.
  """

  def __init__(self, record: int, reason: str):
    self.record = record
    super().__init__(reason)


def masked_crc(data: bytes) -> int:
  """TFRecord's checksum: CRC-32C, rotated right by 15 bits, plus a delta."""
  crc = google_crc32c.value(data)
  return ((((crc >> 15) | (crc << 17)) & 0xffffffff) + _MASK_DELTA
          ) & 0xffffffff


def _field(name: str, number: int, kind: int, label: int,
           type_name: str = '', oneof: int = -1
           ) -> descriptor_pb2.FieldDescriptorProto:
  field = descriptor_pb2.FieldDescriptorProto(
      name=name, number=number, type=kind, label=label)
  if type_name:
    field.type_name = f'.{_PACKAGE}.{type_name}'
  if oneof >= 0:
    field.oneof_index = oneof
  return field


def _example_class() -> Any:
  """The `Example` message class, built from a descriptor declared here."""
  fd = descriptor_pb2.FieldDescriptorProto
  file_proto = descriptor_pb2.FileDescriptorProto(
      name='validation_tf_example.proto', package=_PACKAGE, syntax='proto3')
  # proto3: repeated numbers are packed, as TensorFlow writes them.
  for name, kind in (('BytesList', fd.TYPE_BYTES),
                     ('FloatList', fd.TYPE_FLOAT),
                     ('Int64List', fd.TYPE_INT64)):
    file_proto.message_type.add(name=name).field.append(
        _field('value', 1, kind, fd.LABEL_REPEATED))
  feature = file_proto.message_type.add(name='Feature')
  feature.oneof_decl.add(name='kind')
  for number, (name, type_name) in enumerate(
      ((BYTES, 'BytesList'), (FLOAT, 'FloatList'), (INT64, 'Int64List')),
      start=1):
    feature.field.append(_field(name, number, fd.TYPE_MESSAGE,
                                fd.LABEL_OPTIONAL, type_name, oneof=0))
  features = file_proto.message_type.add(name='Features')
  entry = features.nested_type.add(name='FeatureEntry')
  entry.options.map_entry = True
  entry.field.append(_field('key', 1, fd.TYPE_STRING, fd.LABEL_OPTIONAL))
  entry.field.append(_field('value', 2, fd.TYPE_MESSAGE, fd.LABEL_OPTIONAL,
                            'Feature'))
  features.field.append(_field('feature', 1, fd.TYPE_MESSAGE,
                               fd.LABEL_REPEATED, 'Features.FeatureEntry'))
  file_proto.message_type.add(name='Example').field.append(
      _field('features', 1, fd.TYPE_MESSAGE, fd.LABEL_OPTIONAL, 'Features'))
  pool = descriptor_pool.DescriptorPool()
  pool.Add(file_proto)
  return message_factory.MessageFactory(pool).GetPrototype(
      pool.FindMessageTypeByName(f'{_PACKAGE}.Example'))


# The `tf.train.Example` message class, wire-compatible with TensorFlow's.
Example = _example_class()


def open_records(path: str) -> BinaryIO:
  """The file's bytes, decompressed as ImportExampleGen would read them."""
  if path.endswith('.gz'):
    return gzip.open(path, 'rb')
  return open(path, 'rb')


def _read_exactly(f: BinaryIO, size: int, record: int, what: str) -> bytes:
  data = f.read(size)
  if len(data) != size:
    raise RecordError(record, f'the file ends inside record {record} ({what}'
                      f': {len(data)} of {size} bytes); it is truncated or '
                      'not a TFRecord file')
  return data


def records(f: BinaryIO) -> Iterator[bytes]:
  """Yields each record's bytes, checking the framing and the checksums.

  Raises:
    RecordError: Truncated data, a bad checksum, or bytes that are not
      TFRecord framing at all.
  """
  number = 0
  while True:
    number += 1
    try:
      head = f.read(_HEADER.size)
    except (OSError, EOFError) as e:  # gzip: not gzip data, or truncated.
      raise RecordError(number, f'cannot be decompressed ({e})') from e
    if not head:
      return
    if len(head) != _HEADER.size:
      raise RecordError(number, f'the file ends inside the header of record '
                        f'{number}; it is truncated or not a TFRecord file')
    length, length_crc = _HEADER.unpack(head)
    if masked_crc(head[:8]) != length_crc:
      raise RecordError(number, f'record {number} has a bad length checksum, '
                        'so the file is corrupt or not a TFRecord file')
    try:
      data = _read_exactly(f, length, number, 'data')
      (data_crc,) = _FOOTER.unpack(_read_exactly(f, _FOOTER.size, number,
                                                 'checksum'))
    except (OSError, EOFError) as e:
      raise RecordError(number, f'cannot be decompressed ({e})') from e
    if masked_crc(data) != data_crc:
      raise RecordError(number, f'record {number} has a bad data checksum, '
                        'so the file is corrupt')
    yield data


Values = List[Any]


def parse_example(data: bytes, record: int
                  ) -> Dict[str, Tuple[str, Values]]:
  """One serialized tf.Example: feature name -> (kind, values).

  A feature with no kind set (an empty `tf.train.Feature()`, how ExampleGen
  writes a missing value) has kind '' and no values.

  Raises:
    RecordError: The bytes are not a tf.Example.
  """
  example = Example()
  try:
    example.ParseFromString(data)
  except message.DecodeError as e:
    raise RecordError(record, f'record {record} is not a tf.train.Example '
                      f'({e})') from e
  # A SequenceExample parses as an Example whose features are its context;
  # its feature lists (field 2) are left over as an unknown field.
  unknown = sorted({field.field_number for field in example.UnknownFields()})
  if unknown == [2]:
    raise RecordError(record, f'record {record} is a tf.train.'
                      'SequenceExample (it has feature lists), not a '
                      'tf.train.Example')
  if unknown:
    raise RecordError(record, f'record {record} has fields a '
                      f'tf.train.Example does not have (numbers {unknown}), '
                      'so it is another kind of record')
  parsed = {}
  for name, feature in example.features.feature.items():
    kind = feature.WhichOneof('kind') or ''
    values = list(getattr(feature, kind).value) if kind else []
    parsed[name] = (kind, values)
  return parsed
