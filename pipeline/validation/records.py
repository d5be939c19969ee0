"""Files that carry their own types: Parquet, Avro and TFRecord.

Each format's reader (`parquet_reader`, `avro_reader`, `tfrecord_reader`)
gives the columns of one file and the kind of tf.Example feature each
becomes, the columns a tf.Example cannot hold, and the label cell of every
row, streamed. This module turns that into what the driver checks: a file
that is not readable in its format (naming the row where reading stopped,
when known), a label with several values in one row, and the label of
every row for the tally. None of them imports TensorFlow: pyarrow.parquet
takes 0.6 s to import on two busy cores, fastavro 0.08 s,
`tf_example_records` 0.06 s; TensorFlow would be about 17 s.
"""

from __future__ import annotations

from typing import Any
from typing import Iterator
from typing import List
from typing import Optional
from typing import Tuple

from pipeline.definition import input_formats
from pipeline.validation import columns
from pipeline.validation import contract
from pipeline.validation import folder
from pipeline.validation import labels
from pipeline.validation import reader
from pipeline.validation.problems import Collector
from pipeline.validation.problems import Problem

_ROW = 'row'
# A label cell: the row's values for the label column ([] when missing).
LabelCells = Iterator[Tuple[int, List[Any]]]


class ReadError(ValueError):
  """The file cannot be read as its format.

  Attributes:
    row: 1-based row (record) where reading failed, when known.
  """

  def __init__(self, reason: str, row: Optional[int] = None):
    self.row = row
    super().__init__(reason)


def unsupported(kind: str) -> str:
  """Why a column of an Arrow or Avro type `kind` is refused."""
  return (f'has type {kind}, which ExampleGen cannot write into a '
          'tf.Example; convert the column to integers, floats or strings, or '
          'drop it.')


def cell(value: Any) -> List[Any]:
  """A row's label value as a list of values; [] for a missing one."""
  if value is None:
    return []
  if isinstance(value, (list, tuple)):
    return [v for v in value if v is not None]
  return [value]


class FileReader:
  """Reads one file: `label_cells` streams the rows, filling `columns`.

  For Parquet and Avro `columns` is known before the rows are read (it is
  the file's schema); for TFRecord it is complete once they have been.
  """

  def __init__(self, path: str, label_key: str):
    self.path = path
    self.label_key = label_key
    self.columns = columns.Columns()

  def label_cells(self) -> LabelCells:
    raise NotImplementedError


class RecordReader(reader.Reader):
  """One of the record formats, read file by file with `file_reader`."""

  def __init__(self, input_format: str, file_reader: type):
    self.name = input_formats.NAMES[input_format]
    self.file_reader = file_reader
    article = 'an' if self.name[0] in 'AEIOU' else 'a'
    self.files = folder.FileKind(
        files=f'{self.name} files', one=f'{article} {self.name} file',
        requirement='', reader=('ImportExampleGen' if input_format ==
                                input_formats.TFRECORD else 'ExampleGen'))
    self.wording = columns.Wording(
        absent=("missing from this file's columns" if input_format !=
                input_formats.TFRECORD else 'in no row of this file'),
        empty=(f'holds no rows (an empty {self.name} file); remove it or '
               'fill it.'))

  def read(self, where: str, expectations: contract.Expectations,
           collector: Collector, tally: Optional[labels.LabelTally]
           ) -> columns.Read:
    """Reads the file's rows into the tally."""
    file = self.file_reader(where, expectations.label_key)
    label_key = expectations.label_key
    rows = 0
    several: Optional[int] = None
    try:
      for row, values in file.label_cells():
        rows = row
        if tally is None or label_key not in file.columns.kinds:
          continue
        if len(values) > 1:
          several = several or row
          tally.complete = False
          continue
        tally.add(where, row, labels.label_text(values[0]) if values else '')
    except ReadError as e:
      collector.add(Problem(
          where, f'is not a readable {self.name} file ({e}); remove it from '
          'the data folder, or pass --format with the format the files are '
          'in.', line=e.row, unit=_ROW))
      return columns.Read(_found(file.columns, rows), rows, complete=False)
    if several is not None:
      collector.add(Problem(
          where, 'label holds more than one value in this row; a label is '
          'one value per row: fix those rows.', line=several,
          column=label_key, unit=_ROW))
    return columns.Read(_found(file.columns, rows), rows)


def _found(found: columns.Columns, rows: int) -> Optional[columns.Columns]:
  """The columns, or None for a file of which nothing was read."""
  return found if found.names or rows else None
