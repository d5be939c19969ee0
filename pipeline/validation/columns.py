"""The column checks, written once for every kind of input.

A reader describes what it read of one file (or one query's result) as
`Columns`; the driver then checks them here against the curated schema
and the label rule, and compares each file's columns with the first
file's. The checks are the same for every format; only the words differ
(a CSV header, a Parquet file's columns, a query's SELECT), so each reader
brings its `Wording`.
"""

from __future__ import annotations

import dataclasses
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

from models import features
from pipeline.facts import kinds
from pipeline.validation import contract
from pipeline.validation import problems
from pipeline.validation.problems import Collector
from pipeline.validation.problems import Problem


@dataclasses.dataclass
class Columns:
  """One file's columns, as ExampleGen will write them.

  Attributes:
    kinds: Column -> kinds.INT, FLOAT or BYTES, in the file's order; None
      for a column whose kind the file does not say (CSV text, an all-null
      column, a tf.Example feature that is always empty).
    unsupported: Column -> why no tf.Example feature holds it (dates,
      decimals, nested records), as the message says it.
    sparse: Columns may be absent from some rows or files without being
      wrong (tf.Examples): only kinds are compared across files.
  """
  kinds: Dict[str, Optional[str]] = dataclasses.field(default_factory=dict)
  unsupported: Dict[str, str] = dataclasses.field(default_factory=dict)
  sparse: bool = False

  @property
  def names(self) -> List[str]:
    """In the file's order; sorted for tf.Examples, whose order is none."""
    names = list(self.kinds) + [c for c in self.unsupported
                                if c not in self.kinds]
    return sorted(names) if self.sparse else names

  def signature(self) -> tuple:
    """Equal for files whose columns get the same problems."""
    return (frozenset(self.kinds.items()), frozenset(self.unsupported))


@dataclasses.dataclass
class Read:
  """What a reader got from one file or query.

  Attributes:
    columns: None when nothing could be read (already reported).
    rows: Rows read.
    complete: Read to the end; False when reading stopped at a problem,
      so the file's label problems were not all seen.
  """
  columns: Optional[Columns]
  rows: int
  complete: bool = True


@dataclasses.dataclass(frozen=True)
class Wording:
  """How the messages about one kind of input read.

  The templates are `str.format`ted with: what ('column', 'label column'),
  column, absent (`absent`), columns (the listed names), schema, anomaly,
  words (what the column holds: 'strings'), expected (the schema's kind),
  expected_words, first (the first file's name) and differences.
  """
  # Where a missing column is not: 'missing from the header'.
  absent: str
  # A file with no rows.
  empty: str
  # A file with nothing in it, not even columns; None: `empty`.
  empty_file: Optional[str] = None
  # A file whose columns differ from the first file's.
  differ: str = (
      'columns differ from those of {first} ({differences}); ExampleGen '
      'needs one schema across the files, so rewrite the file with the same '
      'columns and types.')
  # Column order matters (CSV headers).
  ordered: bool = False
  # The line the column messages point to (a CSV header's 1).
  line: Optional[int] = None
  no_label: str = (
      'label column is {absent}; pass --label with one of the columns '
      '({columns}), or add the column.')
  no_column: str = (
      'required {what} is {absent} (the curated schema {schema} or the '
      'DatasetSpec needs it); add the column, or pass --dataset/--schema for '
      'this data.')
  # The message names the missing column itself, not the problem's column.
  names_missing_column: bool = False
  unknown: str = (
      'column is not in the curated schema {schema}; remove it from the '
      'data, add it to the schema, or allow unknown columns with '
      '--allow-anomaly {anomaly} (the model then ignores it).')
  wrong_kind: str = (
      'column holds {words}, but the curated schema {schema} says {expected} '
      '({expected_words}), so ExampleValidator would refuse it: convert the '
      'column, or fix the schema.')
  text_label: str = (
      'label column holds strings; a regression label must be a number '
      'column: convert it, or pass --task binary/multiclass if the label is a '
      'category.')


def check(where: str, columns: Columns, expectations: contract.Expectations,
          allow_extra_columns: bool,
          label_rule: Optional[contract.LabelRule], wording: Wording,
          collector: Collector) -> None:
  """Label and required columns present, unknown ones allow-listed, kinds.

  Args:
    where: The file (or query) the messages name.
    columns: What it holds.
    expectations: The curated schema's columns, or the label alone.
    allow_extra_columns: Accept columns the schema does not know.
    label_rule: The label's rule; a regression label must be numbers.
    wording: The reader's words.
    collector: Gets the problems.
  """
  names = columns.names
  for column, reason in columns.unsupported.items():
    collector.add(Problem(where, reason, column=column))
  label = expectations.label_key
  text = dict(columns=problems.names(names), schema=expectations.schema_path,
              anomaly=contract.NEW_COLUMN_ANOMALY, absent=wording.absent)
  for column in sorted(expectations.required - set(names)):
    is_label = column == label
    template = (wording.no_column if expectations.curated else
                wording.no_label)
    collector.add(Problem(
        where, template.format(
            what='label column' if is_label else 'column', column=column,
            **text), line=wording.line,
        column=None if wording.names_missing_column else column))
  if expectations.curated and not allow_extra_columns:
    for column in names:
      if column not in expectations.known:
        collector.add(Problem(where, wording.unknown.format(**text),
                              line=wording.line, column=column))
  if expectations.curated:
    for column, kind in columns.kinds.items():
      expected = expectations.types.get(column)
      if kind and expected in kinds.WORDS and expected != kind:
        collector.add(Problem(where, wording.wrong_kind.format(
            words=kinds.WORDS[kind], expected=expected,
            expected_words=kinds.WORDS[expected], **text), column=column))
  if (label_rule is not None and label_rule.task == features.REGRESSION and
      columns.kinds.get(label) == kinds.BYTES):
    collector.add(Problem(where, wording.text_label.format(**text),
                          column=label))


def differences(columns: Columns, first: Columns, ordered: bool) -> List[str]:
  """How a file's columns differ from the first file's; [] when alike.

  Missing and extra columns (not for sparse tf.Examples), a column of
  another kind, and, when `ordered`, the same columns in another order.
  """
  found = []
  if not columns.sparse:
    missing = [c for c in first.names if c not in columns.names]
    extra = [c for c in columns.names if c not in first.names]
    if missing:
      found.append('missing ' + ', '.join(missing))
    if extra:
      found.append('extra ' + ', '.join(extra))
  for column, kind in columns.kinds.items():
    other = first.kinds.get(column)
    if kind and other and kind != other:
      found.append(f"'{column}' holds {kinds.WORDS[kind]} here, "
                   f'{kinds.WORDS[other]} there')
  if not found and ordered and columns.names != first.names:
    found.append('same columns in a different order')
  return found


def duplicates(names: Sequence[str]) -> List[str]:
  """Names that appear more than once, in order of their second showing."""
  seen = set()
  found = []
  for name in names:
    if name in seen and name not in found:
      found.append(name)
    seen.add(name)
  return found
