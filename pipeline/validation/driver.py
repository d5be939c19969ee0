"""The input check's one driver, for every input format and a SQL query.

It lists the data folder's files (or takes the query), has the format's
reader (`READERS`) stream each one once, and checks what the reader found
the same way for every format: a file with no rows, files whose columns
differ, the label and required columns, columns the curated schema does
not know or types differently, and the label against the task
(`labels.LabelTally`). Each problem is one line naming the file (or
query), line or row, and column, with what to do; they are raised
together as one `InputCheckError`.

Two modes:

- `check`: a curated dataset. The schema says which columns exist and which
  hold numbers; the `DatasetSpec` says which are required.
- `check_without_schema`: a zero-config dataset (`--label COL --task T`)
  whose schema is drafted later from statistics. Only the structure and
  the label are checked, and every column is accepted.

Nothing here imports TensorFlow, so a bad input is refused in a fraction
of a second (`pipeline/local/run.py` runs it before TFX's import).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence
from typing import Set

from models import features
from pipeline.components import sql_rows
from pipeline.definition import input_formats
from pipeline.facts import kinds
from pipeline.facts import sql_url
from pipeline.validation import avro_reader
from pipeline.validation import columns
from pipeline.validation import contract
from pipeline.validation import csv_reader
from pipeline.validation import folder
from pipeline.validation import labels
from pipeline.validation import parquet_reader
from pipeline.validation import reader as reader_lib
from pipeline.validation import sql_reader
from pipeline.validation import tfrecord_reader
from pipeline.validation.problems import DEFAULT_MAX_PROBLEMS
from pipeline.validation.problems import Collector
from pipeline.validation.problems import InputCheckError
from pipeline.validation.problems import Problem

# The reader of each file format.
READERS: Dict[str, reader_lib.Reader] = {
    input_formats.CSV: csv_reader.CsvReader(),
    input_formats.PARQUET: parquet_reader.READER,
    input_formats.AVRO: avro_reader.READER,
    input_formats.TFRECORD: tfrecord_reader.READER,
}
_LISTED = 5


@dataclasses.dataclass
class Report:
  """What a clean input contained.

  Attributes:
    files: The files read, sorted; the query's description for SQL.
    rows: Data rows in all files.
    columns: The columns, in order of first appearance.
    extra_columns: Columns the curated schema does not know, allow-listed.
    label: The rule the label passed; None when no label rule was applied.
    label_counts: Classification: label value (as text) -> rows, most
      frequent first. {} for regression.
    file_kind: What the files are when not CSV ('Parquet', 'SQL').
    source: A query: how the messages name it (query and masked URL).
    fingerprint: A query: SHA-256 of the column names and every row.
    kinds: A query: column -> kinds.INT, FLOAT or BYTES; absent for an
      all-NULL column.
  """
  files: List[str]
  rows: int
  columns: List[str]
  extra_columns: List[str]
  label: Optional[contract.LabelRule] = None
  label_counts: Dict[str, int] = dataclasses.field(default_factory=dict)
  file_kind: str = ''
  source: str = ''
  fingerprint: str = ''
  kinds: Dict[str, str] = dataclasses.field(default_factory=dict)

  def summary(self) -> str:
    if self.source:
      text = (f'Input check passed: {self.source}: {self.rows} rows, '
              f'{len(self.columns)} columns.')
    else:
      kind = f'{self.file_kind} ' if self.file_kind else ''
      text = (f'Input check passed: {len(self.files)} {kind}file(s), '
              f'{self.rows} rows, {len(self.columns)} columns.')
    if self.label is not None:
      text += ' ' + self._label_summary(self.label)
    if self.extra_columns:
      text += (f' Allow-listed ({contract.NEW_COLUMN_ANOMALY}), ignored by '
               f'the model: {", ".join(self.extra_columns)}.')
    return text

  def feature_lists(self) -> Dict[str, str]:
    """A query: column -> its tf.train.Feature list, for the ExampleGen."""
    return {name: kinds.FEATURE_LISTS[kind]
            for name, kind in self.kinds.items()}

  def _label_summary(self, rule: contract.LabelRule) -> str:
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


def check(data_root: str, schema_path: str, dataset: features.DatasetSpec,
          allowed_anomalies: Sequence[str] = (),
          max_problems: int = DEFAULT_MAX_PROBLEMS,
          input_format: str = input_formats.CSV) -> Report:
  """A curated dataset's folder: schema + DatasetSpec + the gate's
  allow-list. The label is checked with `LabelRule.from_spec(dataset)`."""
  return check_folder(
      data_root, input_format,
      contract.load_expectations(schema_path, dataset),
      allow_extra_columns=contract.NEW_COLUMN_ANOMALY in allowed_anomalies,
      max_problems=max_problems,
      label_rule=contract.LabelRule.from_spec(dataset))


def check_without_schema(data_root: str, rule: contract.LabelRule,
                         max_problems: int = DEFAULT_MAX_PROBLEMS,
                         input_format: str = input_formats.CSV) -> Report:
  """A folder without a curated schema yet: the structure and the label.

  For CSV: readable UTF-8 text, header rules, the same header in every
  file, row lengths, quotes, at least one data row. Every column is
  accepted; column types are left to the schema drafted from statistics.
  """
  return check_folder(
      data_root, input_format, contract.Expectations.without_schema(
          rule.label_key), allow_extra_columns=True,
      max_problems=max_problems, label_rule=rule)


def check_sql(url: str, query: str, schema_path: str,
              dataset: features.DatasetSpec,
              allowed_anomalies: Sequence[str] = (),
              max_problems: int = DEFAULT_MAX_PROBLEMS) -> Report:
  """A curated dataset's query: as `check`, for `--sql-url` and `--query`.

  The report's `fingerprint` and `feature_lists()` go to the SQL ExampleGen.
  """
  return check_query(
      url, query, contract.load_expectations(schema_path, dataset),
      allow_extra_columns=contract.NEW_COLUMN_ANOMALY in allowed_anomalies,
      max_problems=max_problems,
      label_rule=contract.LabelRule.from_spec(dataset))


def check_folder(data_root: str, input_format: str,
                 expectations: contract.Expectations,
                 allow_extra_columns: bool = False,
                 max_problems: int = DEFAULT_MAX_PROBLEMS,
                 label_rule: Optional[contract.LabelRule] = None) -> Report:
  """Streams every file ExampleGen would read as `input_format`; validates.

  Args:
    data_root: The folder passed as --data-root.
    input_format: One of `input_formats.FORMATS`.
    expectations: From `contract.load_expectations`, or
      `contract.Expectations.without_schema`.
    allow_extra_columns: Accept columns the schema does not know (the model
      ignores them); otherwise they stop the run.
    max_problems: Stop collecting after this many problems.
    label_rule: Checks the label values against the task; None skips them.

  Returns:
    What was read, when nothing is wrong.

  Raises:
    InputCheckError: Lists the problems, one line each.
    ValueError: An unknown format, or `label_rule` and `expectations` name
      different labels.
  """
  try:
    reader = READERS[input_format]
  except KeyError:
    raise ValueError(f'No input check for input format {input_format!r}; '
                     f'use one of {", ".join(READERS)}.') from None
  collector = Collector(max_problems)
  files = folder.list_inputs(data_root, collector, reader.files)
  return _drive(reader, data_root, files, expectations, allow_extra_columns,
                label_rule, collector)


def check_query(url: str, query: str, expectations: contract.Expectations,
                allow_extra_columns: bool = False,
                max_problems: int = DEFAULT_MAX_PROBLEMS,
                label_rule: Optional[contract.LabelRule] = None,
                batch_rows: int = sql_rows.DEFAULT_BATCH_ROWS) -> Report:
  """Runs the query once, streaming, and validates what it returns.

  Raises:
    InputCheckError: Lists the problems, one line each.
  """
  source = sql_url.describe(url, query)
  reader = sql_reader.QueryReader(url, query, batch_rows)
  report = _drive(reader, source, [source], expectations,
                  allow_extra_columns, label_rule, Collector(max_problems))
  return dataclasses.replace(report, source=source,
                             fingerprint=reader.fingerprint,
                             kinds=reader.kinds)


def _drive(reader: reader_lib.Reader, root: str, sources: List[str],
           expectations: contract.Expectations, allow_extra_columns: bool,
           label_rule: Optional[contract.LabelRule],
           collector: Collector) -> Report:
  """Reads every source (file or query) with `reader`; checks it all."""
  if label_rule is not None and label_rule.label_key != expectations.label_key:
    raise ValueError(
        f'The label rule checks {label_rule.label_key!r} but the expectations '
        f'name {expectations.label_key!r} as the label; build both from the '
        'same DatasetSpec.')
  tally = None
  if label_rule is not None:
    # A numeric schema type already refuses non-numbers in every CSV row;
    # the label check would only repeat it.
    tally = labels.LabelTally(label_rule, unit=reader.unit, check_numbers=(
        reader.typed or
        expectations.types.get(label_rule.label_key) not in kinds.NUMERIC))
  label = expectations.label_key
  wording = reader.wording
  first: Optional[columns.Columns] = None
  first_source = ''
  # Columns already checked: a file with the same ones has the same
  # problems, reported once.
  checked: Set[tuple] = set()
  all_columns: List[str] = []
  rows = 0
  for source in sources:
    if collector.full:
      break
    read = reader.read(source, expectations, collector, tally)
    rows += read.rows
    found = read.columns
    if tally is not None:
      if not read.complete or collector.full:
        tally.discard_file()
      elif found is not None:
        if label in found.kinds:
          tally.end_file(source, collector)
        else:
          tally.discard_file()  # Reported with the columns.
      # Else nothing was in it: no rows, no labels.
    if read.complete and read.rows == 0:
      collector.add(Problem(source, wording.empty if found is not None else
                            wording.empty_file or wording.empty))
    if found is None:
      continue  # Nothing readable; already reported.
    all_columns += [c for c in found.names if c not in all_columns]
    if first is None:
      first, first_source = found, source
    else:
      differences = columns.differences(found, first, wording.ordered)
      if differences:
        collector.add(Problem(source, wording.differ.format(
            first=os.path.basename(first_source),
            differences='; '.join(differences)), line=wording.line))
    if found.signature() not in checked:
      checked.add(found.signature())
      columns.check(source, found, expectations, allow_extra_columns,
                    label_rule, wording, collector)
  if tally is not None and rows:
    tally.finish(root, collector)
  if collector.problems:
    raise InputCheckError(collector.problems, collector.full)
  extra = []
  if expectations.curated:
    extra = [c for c in all_columns if c not in expectations.known]
  return Report(files=sources, rows=rows, columns=all_columns,
                extra_columns=extra, label=label_rule,
                label_counts=tally.label_counts() if tally else {},
                file_kind=reader.name)
