"""Parquet files, through pyarrow, as Beam's reader in ExampleGen reads them:
the schema from the footer, then every row, every column decoded."""

from __future__ import annotations

from typing import Optional
from typing import Tuple

from pipeline.definition import input_formats
from pipeline.facts import kinds
from pipeline.validation import records

# Rows per batch read from a Parquet file.
_BATCH_ROWS = 65_536


def _arrow_kind(arrow_type) -> Tuple[Optional[str], bool]:
  """(kind, supported) of an Arrow column type."""
  import pyarrow as pa  # Imported when a Parquet folder is checked.
  types = pa.types
  if types.is_list(arrow_type) or types.is_large_list(arrow_type):
    return _arrow_kind(arrow_type.value_type)
  if types.is_dictionary(arrow_type):  # pandas' categoricals.
    return _arrow_kind(arrow_type.value_type)
  if types.is_null(arrow_type):
    return None, True
  if types.is_integer(arrow_type) or types.is_boolean(arrow_type):
    return kinds.INT, True
  if types.is_floating(arrow_type):
    return kinds.FLOAT, True
  if (types.is_string(arrow_type) or types.is_large_string(arrow_type) or
      types.is_binary(arrow_type) or types.is_large_binary(arrow_type)):
    return kinds.BYTES, True
  return None, False


class ParquetFile(records.FileReader):
  """One Parquet file."""

  def label_cells(self) -> records.LabelCells:
    import pyarrow as pa
    from pyarrow import parquet as pq
    try:
      parquet = pq.ParquetFile(self.path)
    except (pa.ArrowException, OSError) as e:
      raise records.ReadError(str(e)) from e
    for field in parquet.schema_arrow:
      kind, supported = _arrow_kind(field.type)
      if supported:
        self.columns.kinds[field.name] = kind
      else:
        self.columns.unsupported[field.name] = records.unsupported(
            str(field.type))
    names = parquet.schema_arrow.names
    label_index = (names.index(self.label_key) if self.label_key in names
                   else None)
    row = 0
    try:
      # Every column is decoded, so that a corrupt page anywhere shows here.
      for batch in parquet.iter_batches(batch_size=_BATCH_ROWS):
        if label_index is None:
          cells = [None] * batch.num_rows
        else:
          cells = batch.column(label_index).to_pylist()
        for value in cells:
          row += 1
          yield row, records.cell(value)
    except (pa.ArrowException, OSError) as e:
      raise records.ReadError(str(e), row + 1) from e


READER = records.RecordReader(input_formats.PARQUET, ParquetFile)
