"""Rows to score in batches: CSV, Parquet, Avro, TFRecord files or SQL.

Each source yields `Batch`es of at most `batch_rows` rows, as dicts of
Python values, with where each row came from (for messages), so memory
stays bounded whatever the size of the input. The format of a folder is
told from its file names as the pipeline's ExampleGen does
(pipeline/definition/input_formats.py), or given.

CSV is read with pyarrow's streaming reader with the pipeline's empty-cell
rule (an empty cell is a missing value, as CsvExampleGen writes it) and the
model's types for its features (other columns stay text). Parquet is read
with pyarrow, Avro with fastavro, TFRecord files of tf.Examples with
TensorFlow; a SQL query's rows through the SQL source's streamed reader
(pipeline/components/sql_rows.py).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any
from typing import Dict
from typing import Iterator
from typing import List
from typing import Optional

from models import serving_contract
from pipeline.definition import input_formats
from pipeline.facts import kinds

DEFAULT_BATCH_ROWS = 1024
_CSV_BLOCK_BYTES = 8 << 20


class SourceError(ValueError):
  """The input cannot be read; the message names the file and the fix."""


@dataclasses.dataclass
class Batch:
  """Rows of one file (or query), in order.

  Attributes:
    rows: One dict per row: column -> Python value (None when missing).
    columns: The source's columns, in its order.
    source: The file (or query) the rows came from.
    first_row: 1-based number of the first row in that source.
  """
  rows: List[Dict[str, Any]]
  columns: List[str]
  source: str
  first_row: int

  def where(self, i: int) -> str:
    return f'{self.source} row {self.first_row + i}'


def input_files(data_root: str) -> List[str]:
  """The files of a folder (or the one file), sorted; hidden ones skipped."""
  if os.path.isfile(data_root):
    return [data_root]
  if not os.path.isdir(data_root):
    raise SourceError(f'--data-root {data_root} is neither a folder nor a '
                      'file.')
  files = sorted(os.path.join(data_root, name)
                 for name in os.listdir(data_root)
                 if not name.startswith(('.', '_')) and
                 os.path.isfile(os.path.join(data_root, name)))
  if not files:
    raise SourceError(f'--data-root {data_root} holds no files.')
  return files


def detect_format(files: List[str], data_root: str) -> str:
  try:
    return input_formats.detect([os.path.basename(f) for f in files],
                                data_root)
  except input_formats.FormatDetectionError as e:
    raise SourceError(str(e)) from None


def _plain(value: Any) -> Any:
  """A database or Avro value as JSON would hold it."""
  value = kinds.plain(value)
  if isinstance(value, bytes):
    return value.decode('utf-8', errors='replace')
  return value


def _csv_batches(path: str, contract: serving_contract.Contract,
                 batch_rows: int) -> Iterator[Batch]:
  import pyarrow as pa
  from pyarrow import csv as pa_csv
  with open(path, encoding='utf-8', newline='') as f:
    header_line = f.readline()
  if not header_line.strip():
    raise SourceError(f'{path} is empty; a CSV file starts with a header '
                      'line.')
  import csv
  header = next(csv.reader([header_line]))
  types = {serving_contract.FLOAT: pa.float64(),
           serving_contract.INT: pa.int64(),
           serving_contract.STRING: pa.string()}
  dtypes = {f.name: f.dtype for f in contract.features}
  column_types = {name: types[dtypes[name]] if name in dtypes else
                  pa.string() for name in header}
  try:
    reader = pa_csv.open_csv(
        path, read_options=pa_csv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
        convert_options=pa_csv.ConvertOptions(
            column_types=column_types, null_values=[''],
            strings_can_be_null=True, quoted_strings_can_be_null=True))
    row = 1
    for record_batch in reader:
      for offset in range(0, record_batch.num_rows, batch_rows):
        part = record_batch.slice(offset, batch_rows)
        yield Batch(part.to_pylist(), header, path, row)
        row += part.num_rows
  except pa.ArrowInvalid as e:
    raise SourceError(f'{path}: {e}. Each feature column needs values of the '
                      'model\'s type (see GET /v1/models/<name>/metadata).'
                      ) from None


def _parquet_batches(path: str, batch_rows: int) -> Iterator[Batch]:
  import pyarrow as pa
  from pyarrow import parquet as pq
  try:
    parquet = pq.ParquetFile(path)
    columns = list(parquet.schema_arrow.names)
    row = 1
    for record_batch in parquet.iter_batches(batch_size=batch_rows):
      yield Batch(record_batch.to_pylist(), columns, path, row)
      row += record_batch.num_rows
  except (pa.ArrowInvalid, OSError) as e:
    raise SourceError(f'{path} is not a readable Parquet file: {e}'
                      ) from None


def _avro_batches(path: str, batch_rows: int) -> Iterator[Batch]:
  import fastavro
  with open(path, 'rb') as f:
    try:
      reader = fastavro.reader(f)
      fields = reader.writer_schema.get('fields', [])
      columns = [field['name'] for field in fields]
      rows: List[Dict[str, Any]] = []
      row = 1
      for record in reader:
        rows.append({k: _plain(v) for k, v in record.items()})
        if len(rows) == batch_rows:
          yield Batch(rows, columns, path, row)
          row += len(rows)
          rows = []
      if rows:
        yield Batch(rows, columns, path, row)
    except (ValueError, EOFError, StopIteration) as e:
      raise SourceError(f'{path} is not a readable Avro file: {e}') from None


def _example_row(example: Any) -> Dict[str, Any]:
  row = {}
  for name, feature in example.features.feature.items():
    kind = feature.WhichOneof('kind')
    values = list(getattr(feature, kind).value) if kind else []
    if kind == 'bytes_list':
      values = [v.decode('utf-8', errors='replace') for v in values]
    row[name] = values[0] if len(values) == 1 else (values or None)
  return row


def _tfrecord_batches(path: str, batch_rows: int) -> Iterator[Batch]:
  import tensorflow as tf
  compression = 'GZIP' if path.endswith('.gz') else ''
  dataset = tf.data.TFRecordDataset(path, compression_type=compression)
  rows: List[Dict[str, Any]] = []
  columns: List[str] = []
  row = 1
  try:
    for record in dataset.as_numpy_iterator():
      example = tf.train.Example.FromString(record)
      values = _example_row(example)
      if not columns:
        columns = sorted(values)
      rows.append(values)
      if len(rows) == batch_rows:
        yield Batch(rows, columns, path, row)
        row += len(rows)
        rows = []
  except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
    raise SourceError(f'{path} is not a readable TFRecord file of '
                      f'tf.Examples: {e.message}') from None
  if rows:
    yield Batch(rows, columns, path, row)


def file_batches(data_root: str, contract: serving_contract.Contract,
                 file_format: Optional[str] = None,
                 batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[Batch]:
  """The rows of every file of `data_root`, in batches.

  Args:
    data_root: A folder of files of one format, or one file.
    contract: The model's contract: the CSV reader types its features.
    file_format: One of input_formats.FORMATS; None to detect it.
    batch_rows: Rows per batch at most.
  """
  files = input_files(data_root)
  file_format = file_format or detect_format(files, data_root)
  for path in files:
    if file_format == input_formats.CSV:
      yield from _csv_batches(path, contract, batch_rows)
    elif file_format == input_formats.PARQUET:
      yield from _parquet_batches(path, batch_rows)
    elif file_format == input_formats.AVRO:
      yield from _avro_batches(path, batch_rows)
    else:
      yield from _tfrecord_batches(path, batch_rows)


def total_rows(data_root: str, file_format: Optional[str]) -> Optional[int]:
  """Rows in the input when cheap to know (Parquet metadata), else None."""
  files = input_files(data_root)
  if (file_format or detect_format(files, data_root)) != input_formats.PARQUET:
    return None
  from pyarrow import parquet as pq
  return sum(pq.ParquetFile(path).metadata.num_rows for path in files)


def sql_batches(url: str, query: str, batch_rows: int = DEFAULT_BATCH_ROWS
                ) -> Iterator[Batch]:
  """The rows of a SQL query, through the SQL source's streamed reader.

  Raises:
    SourceError: The database or the query fails (password masked).
  """
  from pipeline.components import sql_rows
  from pipeline.facts import sql_url
  row = 1
  try:
    for batch in sql_rows.stream(url, query, batch_rows):
      columns = list(batch.columns)
      rows = [{c: _plain(v) for c, v in zip(columns, values, strict=True)}
              for values in batch.rows]
      if rows:
        yield Batch(rows, columns, f'query {sql_url.quoted(query)}', row)
        row += len(rows)
  except sql_rows.SqlSourceError as e:
    raise SourceError(str(e)) from None
