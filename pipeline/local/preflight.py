"""Preflight check of the CSV folder, run before any pipeline component.

CsvExampleGen fails on a malformed file deep inside a Beam stack trace, or
worse, silently turns a stray word in a numeric column into a string column
that only shows up later as a type anomaly. This check streams every file
once, in the runner process, and reports each problem as one line that names
the file, line and column and says what to do.

Nothing here is specific to one dataset: expected columns and their types
come from the curated schema and the `DatasetSpec`. Distribution problems
(missing values, out-of-range numbers, unseen categories, drift) are left to
ExampleValidator and the anomaly gate, which see the whole dataset.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from typing import Dict
from typing import FrozenSet
from typing import Iterator
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from models import features

# ExampleValidator's name for a column that is in the data but not in the
# schema. Allow-listing it (GateConfig.allowed_anomalies / --allow-anomaly)
# also lets the preflight accept unknown columns, so one switch covers both.
NEW_COLUMN_ANOMALY = 'SCHEMA_NEW_COLUMN'
DEFAULT_MAX_PROBLEMS = 20
# Exit code of a run refused by this check (1 is a failed pipeline run).
EXIT_CODE = 3
_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1
_BOM = '\ufeff'


@dataclasses.dataclass(frozen=True)
class Problem:
  """One reason the input cannot be used, with where and what to do."""
  path: str
  message: str
  line: Optional[int] = None
  column: Optional[str] = None

  def __str__(self) -> str:
    where = self.path
    if self.line is not None:
      where += f', line {self.line}'
    if self.column is not None:
      where += f", column '{self.column}'"
    return f'{where}: {self.message}'


class InputCheckError(ValueError):
  """The data folder cannot be fed to the pipeline; see `problems`."""

  def __init__(self, problems: Sequence[Problem], truncated: bool = False):
    self.problems = list(problems)
    self.truncated = truncated
    more = len(self.problems) - 1
    suffix = ''
    if more or truncated:
      suffix = (f' (and {more}{"+" if truncated else ""} more problem'
                f'{"" if more == 1 and not truncated else "s"})')
    super().__init__(f'{self.problems[0]}{suffix}')


@dataclasses.dataclass(frozen=True)
class Expectations:
  """What the data folder must look like, from schema and DatasetSpec."""
  schema_path: str
  # Column -> 'INT' / 'FLOAT' / 'BYTES' for every schema feature.
  types: Dict[str, str]
  required: FrozenSet[str]
  label_key: str

  @property
  def known(self) -> FrozenSet[str]:
    return frozenset(self.types)


@dataclasses.dataclass
class Report:
  """What a clean folder contained."""
  files: List[str]
  rows: int
  columns: List[str]
  extra_columns: List[str]

  def summary(self) -> str:
    text = (f'Input check passed: {len(self.files)} file(s), {self.rows} rows, '
            f'{len(self.columns)} columns.')
    if self.extra_columns:
      text += (f' Allow-listed ({NEW_COLUMN_ANOMALY}), ignored by the model: '
               f'{", ".join(self.extra_columns)}.')
    return text


def load_expectations(schema_path: str,
                      dataset: features.DatasetSpec) -> Expectations:
  """Reads the curated schema and checks that it covers the DatasetSpec.

  Raises:
    InputCheckError: The schema does not parse, or lacks a column the
      DatasetSpec uses.
  """
  schema = schema_pb2.Schema()
  try:
    with open(schema_path, encoding='utf-8') as f:
      text_format.Parse(f.read(), schema)
  except (OSError, text_format.ParseError) as e:
    raise InputCheckError([Problem(
        schema_path, f'cannot read the curated schema ({e}); fix the file or '
        'pass --schema PATH.')]) from e
  types = {f.name: schema_pb2.FeatureType.Name(f.type) for f in schema.feature}
  required = {f.name for f in schema.feature
              if f.presence.min_fraction > 0 or f.presence.min_count > 0}
  spec_columns = (dataset.label_key,) + dataset.feature_columns
  missing = [c for c in spec_columns if c not in types]
  if missing:
    raise InputCheckError([Problem(
        schema_path, f"DatasetSpec '{dataset.name}' uses column(s) "
        f'{", ".join(missing)} that the curated schema does not define; add '
        'them to the schema or remove them from the DatasetSpec.')])
  return Expectations(schema_path=schema_path, types=types,
                      required=frozenset(required | set(spec_columns)),
                      label_key=dataset.label_key)


def check_folder(data_root: str, expectations: Expectations,
                 allow_extra_columns: bool = False,
                 max_problems: int = DEFAULT_MAX_PROBLEMS) -> Report:
  """Streams every file CsvExampleGen would read and validates it.

  Args:
    data_root: The folder passed as --data-root.
    expectations: From `load_expectations`.
    allow_extra_columns: Accept columns the schema does not know (the model
      ignores them); otherwise they stop the run.
    max_problems: Stop collecting after this many problems.

  Returns:
    What was read, when nothing is wrong.

  Raises:
    InputCheckError: Lists the problems, one line each.
  """
  collector = _Collector(max_problems)
  files = _list_inputs(data_root, collector)
  header: Optional[List[str]] = None
  header_file = ''
  rows = 0
  for path in files:
    if collector.full:
      break
    file_header, file_rows = _check_file(path, expectations, collector)
    rows += file_rows
    if file_header is None:
      continue
    if header is None:
      header, header_file = file_header, path
      _check_columns(path, header, expectations, allow_extra_columns,
                     collector)
    elif file_header != header:
      collector.add(Problem(
          path, 'header differs from the one in '
          f'{os.path.basename(header_file)} ({_header_diff(header, file_header)}'
          '); CsvExampleGen needs the same columns in the same order in every '
          'file, so rewrite the file with the same header.', line=1))
  if collector.problems:
    raise InputCheckError(collector.problems, collector.full)
  if header is not None and rows == 0:
    raise InputCheckError([Problem(
        data_root, 'the CSV files hold a header but no data rows; add data '
        'or point --data-root at the right folder.')])
  extra = [c for c in header or () if c not in expectations.known]
  return Report(files=files, rows=rows, columns=list(header or ()),
                extra_columns=extra)


def check(data_root: str, schema_path: str, dataset: features.DatasetSpec,
          allowed_anomalies: Sequence[str] = (),
          max_problems: int = DEFAULT_MAX_PROBLEMS) -> Report:
  """Preflight entry point: schema + DatasetSpec + the gate's allow-list."""
  return check_folder(
      data_root, load_expectations(schema_path, dataset),
      allow_extra_columns=NEW_COLUMN_ANOMALY in allowed_anomalies,
      max_problems=max_problems)


class _Collector:
  """Gathers problems up to a limit, so a huge bad file stays cheap."""

  def __init__(self, limit: int):
    self.limit = max(1, limit)
    self.problems: List[Problem] = []

  @property
  def full(self) -> bool:
    return len(self.problems) >= self.limit

  def add(self, problem: Problem) -> None:
    if not self.full:
      self.problems.append(problem)


def _list_inputs(data_root: str, collector: _Collector) -> List[str]:
  """The files CsvExampleGen's default pattern ('*') would read, sorted."""
  if not os.path.exists(data_root):
    raise InputCheckError([Problem(
        data_root, 'data folder does not exist; pass --data-root with a folder '
        'of CSV files.')])
  if not os.path.isdir(data_root):
    raise InputCheckError([Problem(
        data_root, 'is a file, not a folder; pass its parent folder as '
        '--data-root.')])
  entries = sorted(os.listdir(data_root))
  if not entries:
    raise InputCheckError([Problem(
        data_root, 'data folder is empty; put one or more CSV files with a '
        'header row in it.')])
  files = []
  for name in entries:
    path = os.path.join(data_root, name)
    if os.path.isdir(path):
      collector.add(Problem(
          path, 'is a folder; CsvExampleGen reads every entry of --data-root '
          'as a CSV file, so move sub-folders out of it.'))
    else:
      files.append(path)
  if not files and not collector.problems:
    raise InputCheckError([Problem(
        data_root, 'no CSV files in the data folder; add CSV files with a '
        'header row.')])
  return files


def _decoded_lines(path: str, collector: _Collector
                   ) -> Iterator[Tuple[int, str]]:
  """Yields (line number, text) and stops at the first undecodable line."""
  with open(path, 'rb') as f:
    for number, raw in enumerate(f, start=1):
      if b'\x00' in raw:
        collector.add(Problem(
            path, 'contains NUL bytes, so it is a binary file, not CSV; '
            'remove it from the data folder.', line=number))
        return
      try:
        yield number, raw.decode('utf-8')
      except UnicodeDecodeError as e:
        collector.add(Problem(
            path, f'is not valid UTF-8 (byte 0x{raw[e.start]:02x} at byte '
            f'{e.start + 1} of the line); re-save the file as UTF-8 or remove '
            'it from the data folder.', line=number))
        return


def _check_file(path: str, expectations: Expectations, collector: _Collector
                ) -> Tuple[Optional[List[str]], int]:
  """Checks one file; returns its header (None if unusable) and row count."""
  if os.path.getsize(path) == 0:
    collector.add(Problem(
        path, 'file is empty (no header row); remove it or fill it.'))
    return None, 0
  lines = _decoded_lines(path, collector)
  first = next(lines, None)
  if first is None:
    return None, 0  # Undecodable first line; already reported.
  header = _check_header(path, first[1], collector)
  if header is None:
    return None, 0
  checks = [(i, name, expectations.types.get(name))
            for i, name in enumerate(header)]
  numeric = [(i, name, kind) for i, name, kind in checks
             if kind in ('INT', 'FLOAT')]
  rows = 0
  pending: List[str] = []
  start = 0
  for number, text in lines:
    if not pending:
      start = number
    pending.append(text)
    record = ''.join(pending)
    if record.count('"') % 2:
      continue  # A quoted field spans lines, as CsvExampleGen allows.
    pending = []
    if not record.strip('\r\n'):
      continue  # Blank lines are skipped by CsvExampleGen too.
    if collector.full:
      break
    cells = next(csv.reader([record]), [])
    rows += 1
    if len(cells) != len(header):
      collector.add(Problem(
          path, f'has {len(cells)} values but the header has {len(header)} '
          'columns; fix or delete this row (a stray comma or a missing '
          'quote is the usual cause).', line=start))
      continue
    for i, name, kind in numeric:
      value = cells[i]
      if value and not _parses_as(value, kind):
        collector.add(Problem(
            path, f"value {value[:40]!r} is not {_KIND_WORDS[kind]} as the "
            f'schema requires; fix the value or leave the cell empty if it '
            'is unknown.', line=start, column=name))
  if pending:
    collector.add(Problem(
        path, 'a quoted value is never closed; add the missing double quote.',
        line=start))
  if rows == 0:
    collector.add(Problem(
        path, 'has a header but no data rows; remove the file or add rows.'))
  return header, rows


_KIND_WORDS = {'INT': 'an integer', 'FLOAT': 'a finite number'}


def _parses_as(value: str, kind: str) -> bool:
  """Mirrors CsvExampleGen's type inference (Python int/float parsing)."""
  try:
    number = int(value)
  except ValueError:
    if kind == 'INT':
      return False
    try:
      return math.isfinite(float(value))
    except ValueError:
      return False
  return _INT64_MIN <= number <= _INT64_MAX


def _check_header(path: str, text: str, collector: _Collector
                  ) -> Optional[List[str]]:
  """Validates the header line; returns the column names or None."""
  if text.startswith(_BOM):
    collector.add(Problem(
        path, 'starts with a UTF-8 byte-order mark, which would become part '
        'of the first column name; save the file as UTF-8 without BOM.',
        line=1))
    return None
  stripped = text.strip()
  if not stripped:
    collector.add(Problem(
        path, 'first line is blank; the first line must be the header row.',
        line=1))
    return None
  # CsvExampleGen splits the header on commas without any quoting rules.
  header = stripped.split(',')
  if '"' in stripped:
    collector.add(Problem(
        path, 'header contains double quotes; CsvExampleGen reads the header '
        'as plain comma-separated names, so remove the quotes.', line=1))
    return None
  blank = [i + 1 for i, name in enumerate(header) if not name.strip()]
  if blank:
    collector.add(Problem(
        path, f'header has an empty column name at position(s) {blank}; name '
        'every column (or remove a trailing comma).', line=1))
    return None
  seen = set()
  duplicates = []
  for name in header:
    if name in seen and name not in duplicates:
      duplicates.append(name)
    seen.add(name)
  for name in duplicates:
    collector.add(Problem(
        path, 'column name appears more than once in the header; rename or '
        'drop the duplicate column.', line=1, column=name))
  return None if duplicates else header


def _check_columns(path: str, header: List[str], expectations: Expectations,
                   allow_extra_columns: bool, collector: _Collector) -> None:
  """Required columns present; unknown ones only when allow-listed."""
  for name in sorted(expectations.required - set(header)):
    what = ('label column' if name == expectations.label_key else 'column')
    collector.add(Problem(
        path, f'required {what} is missing from the header (the curated '
        f'schema {expectations.schema_path} or the DatasetSpec needs it); add '
        'the column, or pass --dataset/--schema for this data.', line=1,
        column=name))
  if allow_extra_columns:
    return
  for name in header:
    if name not in expectations.known:
      collector.add(Problem(
          path, 'column is not in the curated schema '
          f'{expectations.schema_path}; remove it from the data, add it to '
          f'the schema, or allow unknown columns with --allow-anomaly '
          f'{NEW_COLUMN_ANOMALY} (the model then ignores it).', line=1,
          column=name))


def _header_diff(expected: List[str], actual: List[str]) -> str:
  missing = [c for c in expected if c not in actual]
  extra = [c for c in actual if c not in expected]
  parts = []
  if missing:
    parts.append('missing ' + ', '.join(missing))
  if extra:
    parts.append('extra ' + ', '.join(extra))
  if not parts:
    parts.append('same columns in a different order')
  return '; '.join(parts)
