"""Preflight check of a folder of Parquet, Avro or TFRecord files.

The same contract as the CSV check (`preflight`), for files that carry
their own types: every file in `--data-root` is read once, as a stream, in
the runner process and before TensorFlow is imported, and each problem is
one line naming the file, row and column, with what to do. It refuses:

- a file that is not readable in the format (not that format at all,
  truncated, a bad checksum, a corrupt page), naming the row where reading
  stopped when it is known;
- a file with no rows;
- a column type no tf.Example feature holds (dates, decimals, nested
  records), which would stop ExampleGen's conversion;
- files whose columns or column types differ (tf.Examples may omit features,
  so TFRecord files only have to agree on each feature's type);
- a missing label or required column, a column the curated schema does not
  know (unless allow-listed), and a column whose type differs from the
  curated schema's;
- a label the task cannot use, with the CSV check's rules (`LabelTally`),
  plus: a label with several values in one row, and a text label for
  regression.

Rows are counted with the label, so the summary's row count is what
ExampleGen will read.
"""

from __future__ import annotations

import math
import os
from typing import Any
from typing import Callable
from typing import List
from typing import Optional

from models import features
from pipeline.definition import input_formats
from pipeline.local import preflight
from pipeline.local import record_readers

_ROW = 'row'
_KIND_WORDS = {record_readers.INT: 'integers', record_readers.FLOAT: 'floats',
               record_readers.BYTES: 'strings'}


def _file_kind(input_format: str) -> preflight.FileKind:
  name = input_formats.NAMES[input_format]
  reader = ('ImportExampleGen' if input_format == input_formats.TFRECORD
            else 'ExampleGen')
  article = 'an' if name[0] in 'AEIOU' else 'a'
  return preflight.FileKind(files=f'{name} files', one=f'{article} {name} file',
                            requirement='', reader=reader)


def checker(input_format: str) -> Callable[..., preflight.Report]:
  """`check_folder` for `input_format`, with `preflight.check_folder`'s args.

  Raises:
    ValueError: CSV or an unknown format.
  """
  if input_format not in record_readers.READERS:
    raise ValueError(f'No record preflight for input format {input_format!r}.')

  def check(data_root: str, expectations: preflight.Expectations,
            allow_extra_columns: bool = False,
            max_problems: int = preflight.DEFAULT_MAX_PROBLEMS,
            label_rule: Optional[preflight.LabelRule] = None
            ) -> preflight.Report:
    return check_folder(data_root, input_format, expectations,
                        allow_extra_columns, max_problems, label_rule)

  return check


def label_text(value: Any) -> str:
  """A label value as the label tally sees it: how it reads as CSV text."""
  if isinstance(value, bytes):
    return value.decode('utf-8', errors='replace')
  if isinstance(value, bool):
    return str(int(value))
  if isinstance(value, float):
    return '' if math.isnan(value) else repr(value)
  return str(value)


def check_folder(data_root: str, input_format: str,
                 expectations: preflight.Expectations,
                 allow_extra_columns: bool = False,
                 max_problems: int = preflight.DEFAULT_MAX_PROBLEMS,
                 label_rule: Optional[preflight.LabelRule] = None
                 ) -> preflight.Report:
  """Streams every file ExampleGen would read as `input_format`; validates.

  Args: as `preflight.check_folder`, plus the format.

  Returns:
    What was read, when nothing is wrong.

  Raises:
    preflight.InputCheckError: Lists the problems, one line each.
  """
  name = input_formats.NAMES[input_format]
  collector = preflight.Collector(max_problems)
  files = preflight.list_inputs(data_root, collector, _file_kind(input_format))
  tally = None
  if label_rule is not None:
    # Numbers arrive typed; text labels are refused for regression below.
    tally = preflight.LabelTally(label_rule, check_numbers=True, unit=_ROW)
  label_key = expectations.label_key
  first: Optional[record_readers.FileColumns] = None
  first_file = ''
  all_columns: List[str] = []
  rows = 0
  for path in files:
    if collector.full:
      break
    reader = record_readers.READERS[input_format](path, label_key)
    file_rows = _read_rows(reader, name, collector, tally)
    rows += file_rows
    columns = reader.columns
    all_columns += [c for c in columns.names if c not in all_columns]
    if tally is not None and (
        label_key not in columns.kinds or collector.full):
      tally.discard_file()
    if not columns.names and not file_rows:
      continue  # Unreadable, or empty; already reported.
    _check_types(path, columns, collector)
    if first is None:
      first, first_file = columns, path
    else:
      _compare(path, columns, first, first_file, collector)
    _check_columns(path, columns, expectations, allow_extra_columns,
                   label_rule, collector)
  if tally is not None and rows:
    tally.finish(data_root, collector)
  if collector.problems:
    raise preflight.InputCheckError(collector.problems, collector.full)
  extra = []
  if expectations.curated:
    extra = [c for c in all_columns if c not in expectations.known]
  return preflight.Report(
      files=files, rows=rows, columns=all_columns, extra_columns=extra,
      label=label_rule, label_counts=tally.label_counts() if tally else {},
      file_kind=name)


def _read_rows(reader: record_readers.FileReader, name: str,
               collector: preflight.Collector,
               tally: Optional[preflight.LabelTally]) -> int:
  """Reads the file's rows into the tally; returns how many were read."""
  path, label_key = reader.path, reader.label_key
  rows = 0
  several: Optional[int] = None
  try:
    for row, values in reader.label_cells():
      rows = row
      if tally is None or label_key not in reader.columns.kinds:
        continue
      if len(values) > 1:
        several = several or row
        tally.complete = False
        continue
      tally.add(path, row, label_text(values[0]) if values else '')
  except record_readers.ReadError as e:
    collector.add(preflight.Problem(
        path, f'is not a readable {name} file ({e}); remove it from the data '
        'folder, or pass --format with the format the files are in.',
        line=e.row, unit=_ROW))
    if tally is not None:
      tally.discard_file()
    return rows
  if several is not None:
    collector.add(preflight.Problem(
        path, 'label holds more than one value in this row; a label is one '
        'value per row: fix those rows.', line=several, column=label_key,
        unit=_ROW))
  if tally is not None and label_key in reader.columns.kinds:
    tally.end_file(path, collector)
  if rows == 0:
    collector.add(preflight.Problem(
        path, f'holds no rows (an empty {name} file); remove it or fill it.'))
  return rows


def _check_types(path: str, columns: record_readers.FileColumns,
                 collector: preflight.Collector) -> None:
  for column, kind in columns.unsupported.items():
    collector.add(preflight.Problem(
        path, f'has type {kind}, which ExampleGen cannot write into a '
        'tf.Example; convert the column to integers, floats or strings, or '
        'drop it.', column=column))


def _compare(path: str, columns: record_readers.FileColumns,
             first: record_readers.FileColumns, first_file: str,
             collector: preflight.Collector) -> None:
  """One schema across files: the same columns, each of one type."""
  differences = []
  if not columns.sparse:
    missing = [c for c in first.names if c not in columns.names]
    extra = [c for c in columns.names if c not in first.names]
    if missing:
      differences.append('missing ' + ', '.join(missing))
    if extra:
      differences.append('extra ' + ', '.join(extra))
  for column, kind in columns.kinds.items():
    other = first.kinds.get(column)
    if kind and other and kind != other:
      differences.append(f"'{column}' holds {_KIND_WORDS[kind]} here, "
                         f'{_KIND_WORDS[other]} there')
  if differences:
    collector.add(preflight.Problem(
        path, f'columns differ from those of {os.path.basename(first_file)} '
        f'({"; ".join(differences)}); ExampleGen needs one schema across '
        'the files, so rewrite the file with the same columns and types.'))


def _check_columns(path: str, columns: record_readers.FileColumns,
                   expectations: preflight.Expectations,
                   allow_extra_columns: bool,
                   label_rule: Optional[preflight.LabelRule],
                   collector: preflight.Collector) -> None:
  """Label and required columns present, unknown ones allow-listed, types."""
  names = columns.names
  where = 'in no row of this file' if columns.sparse else (
      "missing from this file's columns")
  label = expectations.label_key
  if not expectations.curated:
    if label not in names:
      collector.add(preflight.Problem(
          path, f'label column is {where}; pass --label with one of the '
          f'columns ({", ".join(names[:10])}), or add the column.',
          column=label))
  else:
    for column in sorted(expectations.required - set(names)):
      what = 'label column' if column == label else 'column'
      collector.add(preflight.Problem(
          path, f'required {what} is {where} (the curated schema '
          f'{expectations.schema_path} or the DatasetSpec needs it); add the '
          'column, or pass --dataset/--schema for this data.', column=column))
    for column in names:
      if column not in expectations.known and not allow_extra_columns:
        collector.add(preflight.Problem(
            path, 'column is not in the curated schema '
            f'{expectations.schema_path}; remove it from the data, add it to '
            'the schema, or allow unknown columns with --allow-anomaly '
            f'{preflight.NEW_COLUMN_ANOMALY} (the model then ignores it).',
            column=column))
    for column, kind in columns.kinds.items():
      expected = expectations.types.get(column)
      if kind and expected in _KIND_WORDS and expected != kind:
        collector.add(preflight.Problem(
            path, f'column holds {_KIND_WORDS[kind]}, but the curated schema '
            f'{expectations.schema_path} says {expected} '
            f'({_KIND_WORDS[expected]}), so ExampleValidator would refuse '
            'it: convert the column, or fix the schema.', column=column))
  if (label_rule is not None and label_rule.task == features.REGRESSION and
      columns.kinds.get(label) == record_readers.BYTES):
    collector.add(preflight.Problem(
        path, 'label column holds strings; a regression label must be a '
        'number column: convert it, or pass --task binary/multiclass if the '
        'label is a category.', column=label))
