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

Two modes:

- `check`: a curated dataset. The schema says which columns exist and which
  hold numbers; the `DatasetSpec` says which are required.
- `check_without_schema`: a zero-code dataset (`--label COL --task T`) whose
  schema is drafted later from statistics. Only the CSV structure is checked
  and every header column is accepted.

Both check the label against the task (`LabelRule`): present in every row,
two values for binary, numbers for regression, enough rows of each class for
multiclass. The label is the one column a wrong value cannot be imputed for,
and a bad one otherwise surfaces only as a Transform or Trainer failure, or a
model that trains on nothing. Label values are tallied while streaming, with
a cap on distinct values, so memory stays bounded on any input size.
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
from pipeline.definition import input_formats

# ExampleValidator's name for a column that is in the data but not in the
# schema. Allow-listing it (GateConfig.allowed_anomalies / --allow-anomaly)
# also lets the preflight accept unknown columns, so one switch covers both.
NEW_COLUMN_ANOMALY = 'SCHEMA_NEW_COLUMN'
DEFAULT_MAX_PROBLEMS = 20
# Exit code of a run refused by this check (1 is a failed pipeline run).
EXIT_CODE = 3
# Fewest rows a multiclass label value may have. ExampleGen's hash split
# (SplitConfig 8/1/1) sends about 1 row in 10 to test and 1 in 10 to eval,
# and the model can only learn a class it has examples of in train. With 10
# rows a class expects 8 in train (all 10 miss train with probability
# 0.2**10, about 1e-7) and 1 in test, so the Evaluator has a chance to score
# it. It is a floor that catches typos and near-empty classes ('Adelie ' next
# to 'Adelie'), not a promise of useful per-class metrics.
MIN_ROWS_PER_CLASS = 10
# Distinct label values tallied at most. Keeps memory bounded on a column
# that is no class label at all (an ID, free text); passing it is refused.
MAX_DISTINCT_LABELS = 10_000
# How many lines, values or classes one message or summary lists.
_LISTED = 5
_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1
_BOM = '\ufeff'


@dataclasses.dataclass(frozen=True)
class Problem:
  """One reason the input cannot be used, with where and what to do."""
  path: str
  message: str
  line: Optional[int] = None
  column: Optional[str] = None
  # What `line` counts: lines of a text file, or records ('row') of a
  # Parquet, Avro or TFRecord file.
  unit: str = 'line'

  def __str__(self) -> str:
    where = self.path
    if self.line is not None:
      where += f', {self.unit} {self.line}'
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
class LabelRule:
  """What the label column must hold for the task.

  Attributes:
    label_key: The label column.
    task: One of `features.TASKS`.
    positive_values: Binary only: the label values that mean "positive".
      Leave empty when the label holds 0/1.
    classes: Multiclass only: every allowed label value (a curated dataset
      config). Empty accepts any value, as a zero-code run does.
    min_rows_per_class: Multiclass: the fewest rows a class may have.
  """
  label_key: str
  task: str
  positive_values: Tuple[str, ...] = ()
  classes: Tuple[str, ...] = ()
  min_rows_per_class: int = MIN_ROWS_PER_CLASS

  def __post_init__(self) -> None:
    # Flags and YAML hand over lists; keep the frozen rule hashable.
    object.__setattr__(self, 'positive_values', tuple(self.positive_values))
    object.__setattr__(self, 'classes', tuple(self.classes))
    if not self.label_key:
      raise ValueError('LabelRule needs a label column; pass --label COLUMN.')
    if self.task not in features.TASKS:
      raise ValueError(f'LabelRule for {self.label_key!r}: task must be one of '
                       f'{", ".join(features.TASKS)}, got {self.task!r}.')
    if self.positive_values and self.task != features.BINARY:
      raise ValueError(
          f'LabelRule for {self.label_key!r}: positive values only apply to '
          f'a binary task, not {self.task}; drop --positive-label.')
    if self.classes and self.task != features.MULTICLASS:
      raise ValueError(
          f'LabelRule for {self.label_key!r}: classes only apply to a '
          f'multiclass task, not {self.task}.')
    if self.min_rows_per_class < 1:
      raise ValueError(
          f'LabelRule for {self.label_key!r}: min_rows_per_class must be at '
          f'least 1, got {self.min_rows_per_class}.')

  @classmethod
  def from_spec(cls, spec: features.DatasetSpec) -> 'LabelRule':
    """The rule a DatasetSpec implies.

    A binary spec's `label_classes` only name the scores (negative,
    positive); the label values themselves are 0/1 or
    `label_positive_values`, so only a multiclass spec restricts values.
    """
    return cls(
        label_key=spec.label_key, task=spec.task,
        positive_values=spec.label_positive_values,
        classes=(spec.label_classes
                 if spec.task == features.MULTICLASS else ()))

  @property
  def is_classification(self) -> bool:
    return self.task != features.REGRESSION


@dataclasses.dataclass(frozen=True)
class Expectations:
  """What the data folder must look like, from schema and DatasetSpec.

  `schema_path` is '' when there is no curated schema yet: then `types` is
  empty, the label is the only required column, and any column is accepted.
  """
  schema_path: str
  # Column -> 'INT' / 'FLOAT' / 'BYTES' for every schema feature.
  types: Dict[str, str]
  required: FrozenSet[str]
  label_key: str

  @property
  def known(self) -> FrozenSet[str]:
    return frozenset(self.types)

  @property
  def curated(self) -> bool:
    return bool(self.schema_path)

  @classmethod
  def without_schema(cls, label_key: str) -> 'Expectations':
    """Structure checks only: the label is required, any column accepted."""
    return cls(schema_path='', types={}, required=frozenset({label_key}),
               label_key=label_key)


@dataclasses.dataclass
class Report:
  """What a clean folder contained.

  Attributes:
    files: The files read, sorted.
    rows: Data rows in all files.
    columns: The header.
    extra_columns: Columns the curated schema does not know, allow-listed.
    label: The rule the label passed; None when no label rule was applied.
    label_counts: Classification: label value (as text) -> rows, most
      frequent first. {} for regression.
    file_kind: What the files are when not CSV ('Parquet'), for the summary.
  """
  files: List[str]
  rows: int
  columns: List[str]
  extra_columns: List[str]
  label: Optional[LabelRule] = None
  label_counts: Dict[str, int] = dataclasses.field(default_factory=dict)
  file_kind: str = ''

  def summary(self) -> str:
    kind = f'{self.file_kind} ' if self.file_kind else ''
    text = (f'Input check passed: {len(self.files)} {kind}file(s), '
            f'{self.rows} rows, {len(self.columns)} columns.')
    if self.label is not None:
      text += ' ' + self._label_summary(self.label)
    if self.extra_columns:
      text += (f' Allow-listed ({NEW_COLUMN_ANOMALY}), ignored by the model: '
               f'{", ".join(self.extra_columns)}.')
    return text

  def _label_summary(self, rule: LabelRule) -> str:
    if not rule.is_classification:
      return f"Label '{rule.label_key}': a number in every row (regression)."
    shown = [f'{value} {rows}' for value, rows
             in list(self.label_counts.items())[:_LISTED]]
    more = len(self.label_counts) - len(shown)
    if more:
      shown.append(f'{more} more')
    positive = (f'; positive: {", ".join(rule.positive_values)}'
                if rule.positive_values else '')
    return (f"Label '{rule.label_key}': {len(self.label_counts)} classes "
            f'({", ".join(shown)}{positive}).')


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
                 max_problems: int = DEFAULT_MAX_PROBLEMS,
                 label_rule: Optional[LabelRule] = None) -> Report:
  """Streams every file CsvExampleGen would read and validates it.

  Args:
    data_root: The folder passed as --data-root.
    expectations: From `load_expectations`, or `Expectations.without_schema`.
    allow_extra_columns: Accept columns the schema does not know (the model
      ignores them); otherwise they stop the run.
    max_problems: Stop collecting after this many problems.
    label_rule: Checks the label values against the task; None skips them.

  Returns:
    What was read, when nothing is wrong.

  Raises:
    InputCheckError: Lists the problems, one line each.
    ValueError: `label_rule` and `expectations` name different labels.
  """
  if label_rule is not None and label_rule.label_key != expectations.label_key:
    raise ValueError(
        f'The label rule checks {label_rule.label_key!r} but the expectations '
        f'name {expectations.label_key!r} as the label; build both from the '
        'same DatasetSpec.')
  collector = Collector(max_problems)
  files = list_inputs(data_root, collector)
  tally = None
  if label_rule is not None:
    # A numeric schema type already refuses non-numbers in every row; the
    # label check would only repeat it.
    tally = LabelTally(label_rule, check_numbers=expectations.types.get(
        label_rule.label_key) not in ('INT', 'FLOAT'))
  header: Optional[List[str]] = None
  header_file = ''
  rows = 0
  for path in files:
    if collector.full:
      break
    file_header, file_rows = _check_file(path, expectations, collector, tally)
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
  if tally is not None and rows:
    tally.finish(data_root, collector)
  if collector.problems:
    raise InputCheckError(collector.problems, collector.full)
  if header is not None and rows == 0:
    raise InputCheckError([Problem(
        data_root, 'the CSV files hold a header but no data rows; add data '
        'or point --data-root at the right folder.')])
  extra = []
  if expectations.curated:
    extra = [c for c in header or () if c not in expectations.known]
  return Report(files=files, rows=rows, columns=list(header or ()),
                extra_columns=extra, label=label_rule,
                label_counts=tally.label_counts() if tally else {})


def _folder_check(input_format: str):
  """`check_folder` for CSV, or the one of the other formats."""
  if input_format == input_formats.CSV:
    return check_folder
  # pylint: disable-next=g-import-not-at-top
  from pipeline.local import record_preflight  # It imports this module.
  return record_preflight.checker(input_format)


def check(data_root: str, schema_path: str, dataset: features.DatasetSpec,
          allowed_anomalies: Sequence[str] = (),
          max_problems: int = DEFAULT_MAX_PROBLEMS,
          input_format: str = input_formats.CSV) -> Report:
  """Preflight entry point: schema + DatasetSpec + the gate's allow-list.

  The label is checked with `LabelRule.from_spec(dataset)`. Files of an
  `input_format` other than CSV are checked by `record_preflight`.
  """
  return _folder_check(input_format)(
      data_root, load_expectations(schema_path, dataset),
      allow_extra_columns=NEW_COLUMN_ANOMALY in allowed_anomalies,
      max_problems=max_problems, label_rule=LabelRule.from_spec(dataset))


def check_without_schema(data_root: str, rule: LabelRule,
                         max_problems: int = DEFAULT_MAX_PROBLEMS,
                         input_format: str = input_formats.CSV) -> Report:
  """Preflight entry point for a dataset without a curated schema yet.

  Checks the CSV structure (readable UTF-8 text, header rules, the same
  header in every file, row lengths, quotes, at least one data row) and the
  label against `rule`. Every header column is accepted; column types are
  left to the schema drafted from statistics. Other formats: the same
  checks, by `record_preflight`.
  """
  return _folder_check(input_format)(
      data_root, Expectations.without_schema(rule.label_key),
      allow_extra_columns=True, max_problems=max_problems, label_rule=rule)


class Collector:
  """Gathers problems up to a limit, so a huge bad file stays cheap.

  Public for the preflight of the other input formats (record_preflight).
  """

  def __init__(self, limit: int):
    self.limit = max(1, limit)
    self.problems: List[Problem] = []

  @property
  def full(self) -> bool:
    return len(self.problems) >= self.limit

  def add(self, problem: Problem) -> None:
    if not self.full:
      self.problems.append(problem)


@dataclasses.dataclass(frozen=True)
class FileKind:
  """How the folder messages name the input files and their reader."""
  files: str = 'CSV files'
  one: str = 'a CSV file'
  requirement: str = ' with a header row'
  reader: str = 'CsvExampleGen'


CSV_FILES = FileKind()


def list_inputs(data_root: str, collector: Collector,
                kind: FileKind = CSV_FILES) -> List[str]:
  """The files ExampleGen's default pattern ('*') would read, sorted."""
  if not os.path.exists(data_root):
    raise InputCheckError([Problem(
        data_root, 'data folder does not exist; pass --data-root with a folder '
        f'of {kind.files}.')])
  if not os.path.isdir(data_root):
    raise InputCheckError([Problem(
        data_root, 'is a file, not a folder; pass its parent folder as '
        '--data-root.')])
  entries = sorted(os.listdir(data_root))
  if not entries:
    raise InputCheckError([Problem(
        data_root, f'data folder is empty; put one or more {kind.files}'
        f'{kind.requirement} in it.')])
  files = []
  for name in entries:
    path = os.path.join(data_root, name)
    if os.path.isdir(path):
      collector.add(Problem(
          path, f'is a folder; {kind.reader} reads every entry of '
          f'--data-root as {kind.one}, so move sub-folders out of it.'))
    else:
      files.append(path)
  if not files and not collector.problems:
    raise InputCheckError([Problem(
        data_root, f'no {kind.files} in the data folder; add {kind.files}'
        f'{kind.requirement}.')])
  return files


def _decoded_lines(path: str, collector: Collector
                   ) -> Iterator[Tuple[int, Optional[str]]]:
  """Yields (line number, text), stopping at the first undecodable line.

  That line is reported and yielded as (line number, None), so the caller
  knows that the rest of the file was not read.
  """
  with open(path, 'rb') as f:
    for number, raw in enumerate(f, start=1):
      if b'\x00' in raw:
        collector.add(Problem(
            path, 'contains NUL bytes, so it is a binary file, not CSV; '
            'remove it from the data folder.', line=number))
        yield number, None
        return
      try:
        text = raw.decode('utf-8')
      except UnicodeDecodeError as e:
        collector.add(Problem(
            path, f'is not valid UTF-8 (byte 0x{raw[e.start]:02x} at byte '
            f'{e.start + 1} of the line); re-save the file as UTF-8 or remove '
            'it from the data folder.', line=number))
        yield number, None
        return
      yield number, text


def _check_file(path: str, expectations: Expectations, collector: Collector,
                tally: Optional[LabelTally] = None
                ) -> Tuple[Optional[List[str]], int]:
  """Checks one file; returns its header (None if unusable) and row count.

  Feeds the label of every well-formed row to `tally`, and tells it when
  rows could not be read, so that it skips the whole-dataset label checks.
  """
  if os.path.getsize(path) == 0:
    collector.add(Problem(
        path, 'file is empty (no header row); remove it or fill it.'))
    return None, 0
  lines = _decoded_lines(path, collector)
  first = next(lines, None)
  if first is None or first[1] is None:
    if tally is not None:
      tally.complete = False
    return None, 0  # Undecodable first line; already reported.
  header = _check_header(path, first[1], collector)
  if header is None:
    if tally is not None:
      tally.complete = False
    return None, 0
  checks = [(i, name, expectations.types.get(name))
            for i, name in enumerate(header)]
  numeric = [(i, name, kind) for i, name, kind in checks
             if kind in ('INT', 'FLOAT')]
  label_index = None
  if tally is not None:
    if tally.rule.label_key in header:
      label_index = header.index(tally.rule.label_key)
    else:
      tally.complete = False  # Reported as a header problem.
  rows = 0
  pending: List[str] = []
  start = 0
  for number, text in lines:
    if text is None:
      if tally is not None:
        tally.complete = False
      break  # Undecodable line; already reported.
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
      if tally is not None:
        tally.complete = False
      break
    cells = next(csv.reader([record]), [])
    rows += 1
    if len(cells) != len(header):
      collector.add(Problem(
          path, f'has {len(cells)} values but the header has {len(header)} '
          'columns; fix or delete this row (a stray comma or a missing '
          'quote is the usual cause).', line=start))
      if tally is not None:
        tally.complete = False
      continue
    if label_index is not None:
      tally.add(path, start, cells[label_index])
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
    if tally is not None:
      tally.complete = False
  if tally is not None:
    tally.end_file(path, collector)
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


def _check_header(path: str, text: str, collector: Collector
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
                   allow_extra_columns: bool, collector: Collector) -> None:
  """Required columns present; unknown ones only when allow-listed."""
  if not expectations.curated:
    if expectations.label_key not in header:
      collector.add(Problem(
          path, 'label column is missing from the header; pass --label with '
          f'one of the columns ({_names(header)}), or add the column.',
          line=1, column=expectations.label_key))
    return
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


def _names(values: Sequence[str], limit: int = 10) -> str:
  """'a, b, c' for a short list, 'a, b, ... (and 7 more)' for a long one."""
  shown = ', '.join(values[:limit])
  more = len(values) - limit
  return f'{shown} (and {more} more)' if more > 0 else shown


def _rows_word(count: int) -> str:
  return f'{count} row{"" if count == 1 else "s"}'


def _values_seen(counts: Sequence[Tuple[str, int]]) -> str:
  """"'yes' (500 rows), 'no' (3 rows)", most frequent first, capped."""
  ordered = sorted(counts, key=lambda item: -item[1])
  shown = [f'{value[:40]!r} ({_rows_word(rows)})'
           for value, rows in ordered[:_LISTED]]
  more = len(ordered) - len(shown)
  if more:
    shown.append(f'and {more} more')
  return ', '.join(shown)


def _is_zero_or_one(value: str) -> bool:
  """'0', '1', '0.0', '1.0': what the binary head casts to 0/1 directly."""
  try:
    return float(value) in (0.0, 1.0)
  except ValueError:
    return False


@dataclasses.dataclass
class _FirstSeen:
  """Rows holding one label value, and where it first appears."""
  rows: int
  path: str
  line: int


class LabelTally:
  """Streams the label column and reports what the task cannot use.

  Problems tied to rows (empty labels, a non-number for regression, a third
  binary value, a value outside the configured classes) are reported always.
  Problems about the whole dataset (too few classes, no positive row) need
  every row: they are skipped when some rows could not be read (`complete`
  is False), since those rows were reported already and may hold the
  missing classes.
  """

  def __init__(self, rule: LabelRule, check_numbers: bool,
               unit: str = 'line'):
    self.rule = rule
    self.check_numbers = check_numbers
    # What the positions passed to `add` count (`Problem.unit`).
    self.unit = unit
    self.complete = True
    # Classification only: label text -> tally, in order of first appearance.
    self.values: Dict[str, _FirstSeen] = {}
    # Where the first value past MAX_DISTINCT_LABELS appears.
    self.overflow: Optional[Tuple[str, int]] = None
    self.labelled = 0
    self._empty_lines: List[int] = []
    self._empty_rows = 0
    self._bad_number: Optional[Tuple[int, str]] = None
    self._bad_numbers = 0

  def add(self, path: str, line: int, value: str) -> None:
    if not value.strip():
      self._empty_rows += 1
      if len(self._empty_lines) < _LISTED:
        self._empty_lines.append(line)
      return
    self.labelled += 1
    if not self.rule.is_classification:
      # Distinct values are not counted for regression: there can be as
      # many as rows.
      if self.check_numbers and not _parses_as(value, 'FLOAT'):
        self._bad_numbers += 1
        if self._bad_number is None:
          self._bad_number = (line, value)
      return
    seen = self.values.get(value)
    if seen is not None:
      seen.rows += 1
    elif len(self.values) < MAX_DISTINCT_LABELS:
      self.values[value] = _FirstSeen(1, path, line)
    elif self.overflow is None:
      self.overflow = (path, line)

  def end_file(self, path: str, collector: Collector) -> None:
    """Reports the row problems of one file, then starts the next."""
    label = self.rule.label_key
    if self._empty_rows:
      lines = ', '.join(str(n) for n in self._empty_lines)
      if self._empty_rows > len(self._empty_lines):
        lines += ', ...'
      collector.add(Problem(
          path, f'label is empty in {_rows_word(self._empty_rows)} ({self.unit}(s) '
          f'{lines}); rows without a label cannot train or evaluate: fill in '
          'the label or drop those rows.', line=self._empty_lines[0],
          column=label, unit=self.unit))
    if self._bad_number is not None:
      line, value = self._bad_number
      others = self._bad_numbers - 1
      more = f' (and {others} more in this file)' if others else ''
      collector.add(Problem(
          path, f'label value {value[:40]!r} is not a finite number{more}; a '
          'regression label must be a number in every row: fix or drop those '
          'rows, or pass --task binary/multiclass if the label is a '
          'category.', line=line, column=label,
          unit=self.unit))
    self._empty_lines, self._empty_rows = [], 0
    self._bad_number, self._bad_numbers = None, 0

  @property
  def _here(self) -> str:
    return 'on this line' if self.unit == 'line' else f'in this {self.unit}'

  def discard_file(self) -> None:
    """Forgets one file's row problems, already reported another way.

    For a file whose label column turned out to be missing, or that could
    not be read to the end: the whole-dataset checks are then skipped.
    """
    self.complete = False
    self._empty_lines, self._empty_rows = [], 0
    self._bad_number, self._bad_numbers = None, 0

  def label_counts(self) -> Dict[str, int]:
    """Label text -> rows, most frequent first; {} for regression."""
    ordered = sorted(self.values.items(), key=lambda item: -item[1].rows)
    return {value: seen.rows for value, seen in ordered}

  def finish(self, data_root: str, collector: Collector) -> None:
    """Reports the problems only the whole label column shows."""
    if self.rule.task == features.BINARY:
      self._finish_binary(data_root, collector)
    elif self.rule.task == features.MULTICLASS:
      self._finish_multiclass(data_root, collector)

  def _counts(self) -> List[Tuple[str, int]]:
    return [(value, seen.rows) for value, seen in self.values.items()]

  def _finish_binary(self, data_root: str, collector: Collector) -> None:
    rule, label = self.rule, self.rule.label_key
    if len(self.values) > 2:
      value, third = list(self.values.items())[2]
      collector.add(Problem(
          third.path, f'label value {value[:40]!r} is a third distinct value '
          f'(values seen: {_values_seen(self._counts())}); a binary label '
          'holds exactly two values: fix or drop the odd rows, or pass --task '
          'multiclass.', line=third.line, column=label,
          unit=self.unit))
      return
    if not rule.positive_values:
      odd = [(v, seen) for v, seen in self.values.items()
             if not _is_zero_or_one(v)]
      if odd:
        _, first = odd[0]
        choices = ' or '.join(repr(v[:40]) for v in self.values)
        collector.add(Problem(
            first.path, f'label values are {_values_seen(self._counts())}, '
            'not 0/1, so the model cannot tell which one is positive: pass '
            f'--positive-label VALUE with VALUE {choices}.', line=first.line,
            column=label, unit=self.unit))
        return
    if not self.complete or not self.labelled:
      return
    if rule.positive_values:
      positive = sum(seen.rows for v, seen in self.values.items()
                     if v in rule.positive_values)
    else:
      positive = sum(seen.rows for v, seen in self.values.items()
                     if float(v) == 1.0)
    if rule.positive_values and not positive:
      wanted = ', '.join(repr(v[:40]) for v in rule.positive_values)
      collector.add(Problem(
          data_root, f'no row holds the positive label value ({wanted}); the '
          f'values seen are {_values_seen(self._counts())}: pass '
          '--positive-label with one of them (matched exactly, case '
          'included).', column=label))
    elif not positive or positive == self.labelled:
      collector.add(Problem(
          data_root, f'every row holds the same label '
          f'({_values_seen(self._counts())}); a binary model needs rows of '
          'both classes: add rows of the other class or pick another '
          '--label.', column=label))

  def _finish_multiclass(self, data_root: str, collector: Collector) -> None:
    rule, label = self.rule, self.rule.label_key
    if self.overflow is not None:
      path, line = self.overflow
      collector.add(Problem(
          path, f'label has more than {MAX_DISTINCT_LABELS:,} distinct values, '
          'too many to be classes (is it an ID or a measurement?): pass '
          '--task regression for a number, or another --label.', line=line,
          column=label, unit=self.unit))
      return
    if rule.classes:
      for value, seen in self.values.items():
        if value not in rule.classes:
          collector.add(Problem(
              seen.path, f'label value {value[:40]!r} ({_rows_word(seen.rows)}) '
              f'is not one of the classes the dataset config lists '
              f'({_names(rule.classes)}): fix or drop those rows, or add the '
              'class to the config.', line=seen.line, column=label,
              unit=self.unit))
    if not self.complete or not self.labelled:
      return
    classes = rule.classes or tuple(self.values)
    present = [c for c in classes if c in self.values]
    if len(present) < 2:
      counts = [(c, self.values[c].rows) for c in present]
      collector.add(Problem(
          data_root, f'label holds {len(present)} class(es) '
          f'({_values_seen(counts) or "none"}); a multiclass model needs at '
          'least 2: add rows of other classes or pick another --label.',
          column=label))
      return
    for name in classes:
      seen = self.values.get(name)
      if seen is None:
        collector.add(Problem(
            data_root, f'class {name[:40]!r} of the dataset config has no '
            f'rows; each class needs at least {rule.min_rows_per_class}: add '
            'rows of it or remove it from the config.', column=label))
      elif seen.rows < rule.min_rows_per_class:
        collector.add(Problem(
            seen.path, f'class {name[:40]!r} has only '
            f'{_rows_word(seen.rows)} (the first {self._here}), fewer '
            f'than the {rule.min_rows_per_class} a class needs: the split sends '
            'about 1 row in 10 to test, and the model needs examples of each '
            'class in train. Add rows of it, drop them, or merge it into '
            'another class.', line=seen.line, column=label,
            unit=self.unit))
