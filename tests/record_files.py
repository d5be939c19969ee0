"""Parquet, Avro and TFRecord inputs for the tests of the other formats.

The taxi rows in these formats ship inside the installed `tfx` package
(`tfx/components/testdata/external/`); the tests read them from there and
never copy them into the repository. Small files with one defect each are
written here, in a test's tmp dir, without TensorFlow.
"""

import gzip
import importlib.util
import os
import pathlib
import struct
from typing import Any
from typing import Dict
from typing import List
from typing import Sequence

import fastavro
import pyarrow as pa
from pyarrow import parquet as pq

from pipeline.validation import tf_example_records


def tfx_external_data() -> pathlib.Path:
  """TFX's test data folder, found without importing TFX."""
  spec = importlib.util.find_spec('tfx')
  [package_dir] = list(spec.submodule_search_locations)[:1]
  return pathlib.Path(package_dir) / 'components' / 'testdata' / 'external'


# TFX's taxi rows: folder under tfx_external_data(), the files to read, rows.
# The avro folder also holds the script that wrote the file, so a data root
# for Avro links only the data file (`taxi_folder`).
TAXI = {
    'parquet': ('parquet', ('data.parquet',), 10_000),
    'avro': ('avro', ('data.avro',), 10_000),
    'tfrecord': ('tfrecord', ('data_tfrecord-00000-of-00002.gz',
                              'data_tfrecord-00001-of-00002.gz'), 15_000),
}
# The label the tests use: TFX's taxi rows have no big_tipper column, so a
# zero-config regression on the tip.
TAXI_LABEL = 'tips'


def taxi_folder(input_format: str, tmp: pathlib.Path) -> pathlib.Path:
  """A data root holding only TFX's taxi files in `input_format`.

  The files are symbolic links into the installed package, not copies.
  """
  folder, names, _ = TAXI[input_format]
  source = tfx_external_data() / folder
  target = tmp / f'taxi-{input_format}'
  target.mkdir(parents=True, exist_ok=True)
  for name in names:
    link = target / name
    if not link.exists():
      os.symlink(source / name, link)
  return target


def write_parquet(path: pathlib.Path, columns: Dict[str, Sequence[Any]],
                  types: Dict[str, pa.DataType] = None) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  table = pa.table({name: pa.array(values, type=(types or {}).get(name))
                    for name, values in columns.items()})
  pq.write_table(table, path)
  return path


def write_avro(path: pathlib.Path, fields: Dict[str, Any],
               records: List[Dict[str, Any]]) -> pathlib.Path:
  """An Avro file; `fields` maps a field name to its Avro type."""
  path.parent.mkdir(parents=True, exist_ok=True)
  schema = {'type': 'record', 'name': 'Row', 'fields': [
      {'name': name, 'type': kind} for name, kind in fields.items()]}
  with open(path, 'wb') as f:
    fastavro.writer(f, fastavro.parse_schema(schema), records)
  return path


def example_bytes(features: Dict[str, Sequence[Any]]) -> bytes:
  """A serialized tf.Example: ints, floats or str/bytes per feature."""
  example = tf_example_records.Example()
  for name, values in features.items():
    feature = example.features.feature[name]
    if values and all(isinstance(v, int) for v in values):
      feature.int64_list.value.extend(values)
    elif values and all(isinstance(v, (int, float)) for v in values):
      feature.float_list.value.extend(values)
    elif values:
      feature.bytes_list.value.extend(
          v.encode() if isinstance(v, str) else v for v in values)
  return example.SerializeToString()


def frame(records: Sequence[bytes]) -> bytes:
  """TFRecord framing: length, its checksum, data, the data's checksum."""
  out = b''
  for data in records:
    length = struct.pack('<Q', len(data))
    out += (length + struct.pack('<I', tf_example_records.masked_crc(length))
            + data + struct.pack('<I', tf_example_records.masked_crc(data)))
  return out


def write_tfrecord(path: pathlib.Path,
                   examples: Sequence[Dict[str, Sequence[Any]]]
                   ) -> pathlib.Path:
  """Gzipped when the name ends in .gz, as ImportExampleGen reads it."""
  path.parent.mkdir(parents=True, exist_ok=True)
  data = frame([example_bytes(e) for e in examples])
  path.write_bytes(gzip.compress(data) if path.suffix == '.gz' else data)
  return path
