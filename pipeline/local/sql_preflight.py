"""Preflight check of a SQL source: the query's rows, read once, streamed.

The contract of the file checks (`preflight`, `record_preflight`) for
`--sql-url URL --query SQL`, in the runner process and before TensorFlow
is imported. The query runs once, through the same streaming reader as the
ExampleGen (`sql_rows`), and each problem is one line naming the URL
(password masked), the query, and the row or column. It refuses:

- a URL that is not one, a server that cannot be reached or refuses the
  login, and a query that fails, with the server's reason;
- a query that returns no rows;
- a result with two columns of one name (a tf.Example has one feature per
  name);
- a column whose values no tf.Example feature holds (dates, timestamps,
  JSON), with the CAST that fixes it;
- a missing label or required column, a column the curated schema does not
  know (unless allow-listed), and a column whose type differs from the
  curated schema's;
- a label the task cannot use, with the CSV check's rules (`LabelTally`).

What it read becomes part of the run: the rows' SHA-256 is the SQL
ExampleGen's cache key (an unchanged table hits the cache, a changed one is
read again), and each column's kind makes a NULL the same typed empty value
list that CsvExampleGen writes for an empty cell.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import hashlib
from typing import Any
from typing import Dict
from typing import List
from typing import Optional

from models import features
from pipeline.components import sql_rows
from pipeline.local import preflight
from pipeline.local import record_preflight

INT = 'INT'
FLOAT = 'FLOAT'
BYTES = 'BYTES'
# The tf.train.Feature list of each kind (`sql_example_gen.KINDS`).
FEATURE_LISTS = {INT: 'int64_list', FLOAT: 'float_list', BYTES: 'bytes_list'}
_WORDS = {INT: 'integers', FLOAT: 'floats', BYTES: 'strings'}
_ROW = 'row'
_TEMPORAL = (datetime.date, datetime.time, datetime.timedelta)


def kind_of(value: Any) -> Optional[str]:
  """INT, FLOAT or BYTES for a value ExampleGen writes, else None."""
  if isinstance(value, (list, tuple)):
    kinds = {kind_of(v) for v in value if v is not None}
    return kinds.pop() if len(kinds) == 1 else None
  if isinstance(value, (bool, int)):
    return INT
  if isinstance(value, (float, decimal.Decimal)):
    return FLOAT
  if isinstance(value, (str, bytes, memoryview)):
    return BYTES
  return None


def _fix_for(value: Any) -> str:
  if isinstance(value, _TEMPORAL):
    return ('CAST it in the query, e.g. CAST(col AS text), or '
            'EXTRACT(EPOCH FROM col) for a number')
  return 'CAST it to a number or to text in the query'


@dataclasses.dataclass
class QueryReport(preflight.Report):
  """What a clean query returned.

  Attributes:
    source: The query and the masked URL, as the messages name them.
    fingerprint: SHA-256 of the column names and every row, in order.
    kinds: Column -> INT, FLOAT or BYTES; absent for an all-NULL column.
  """
  source: str = ''
  fingerprint: str = ''
  kinds: Dict[str, str] = dataclasses.field(default_factory=dict)

  def summary(self) -> str:
    text = (f'Input check passed: {self.source}: {self.rows} rows, '
            f'{len(self.columns)} columns.')
    if self.label is not None:
      text += ' ' + self._label_summary(self.label)
    if self.extra_columns:
      text += (f' Allow-listed ({preflight.NEW_COLUMN_ANOMALY}), ignored by '
               f'the model: {", ".join(self.extra_columns)}.')
    return text

  def feature_lists(self) -> Dict[str, str]:
    """Column -> its tf.train.Feature list, for the ExampleGen."""
    return {name: FEATURE_LISTS[kind] for name, kind in self.kinds.items()}


def describe(url: str, query: str) -> str:
  """How the messages name a query: 'query 'SELECT ...' on postgresql://…'."""
  return f'query {sql_rows.quoted(query)} on {sql_rows.masked(url)}'


def check(url: str, query: str, expectations: preflight.Expectations,
          allow_extra_columns: bool = False,
          max_problems: int = preflight.DEFAULT_MAX_PROBLEMS,
          label_rule: Optional[preflight.LabelRule] = None,
          batch_rows: int = sql_rows.DEFAULT_BATCH_ROWS) -> QueryReport:
  """Runs the query once, streaming, and validates what it returns.

  Raises:
    preflight.InputCheckError: Lists the problems, one line each.
  """
  source = describe(url, query)
  collector = preflight.Collector(max_problems)
  tally = None
  if label_rule is not None:
    tally = preflight.LabelTally(label_rule, check_numbers=True, unit=_ROW)
  label = expectations.label_key
  digest = hashlib.sha256()
  kinds: Dict[str, str] = {}
  unsupported: Dict[str, Any] = {}
  columns: List[str] = []
  rows = 0
  try:
    for batch in sql_rows.stream(url, query, batch_rows):
      if not columns:
        columns = list(batch.columns)
        digest.update(repr(columns).encode())
        _check_names(source, columns, collector)
        if collector.problems:
          break
      label_index = columns.index(label) if label in columns else None
      for row in batch.rows:
        rows += 1
        digest.update(repr(tuple(row)).encode())
        for name, value in zip(columns, row, strict=True):
          if value is None or name in unsupported:
            continue
          kind = kind_of(value)
          if kind is None:
            unsupported[name] = value
          elif name not in kinds:
            kinds[name] = kind
        if tally is not None and label_index is not None:
          value = row[label_index]
          tally.add(source, rows, '' if value is None else
                    record_preflight.label_text(_plain(value)))
  except sql_rows.SqlSourceError as e:
    raise preflight.InputCheckError([preflight.Problem(
        str(e), 'nothing was read.')]) from None
  if columns and not rows:
    collector.add(preflight.Problem(
        source, 'returns no rows; check the WHERE clause (and --span), or '
        'load the table first.'))
  for name, value in unsupported.items():
    collector.add(preflight.Problem(
        source, f'holds {type(value).__name__} values (e.g. {value!r}), '
        f'which a tf.Example cannot hold; {_fix_for(value)}.', column=name))
  if rows:
    _check_columns(source, columns, kinds, expectations, allow_extra_columns,
                   label_rule, collector)
    if tally is not None and label in columns:
      tally.end_file(source, collector)
      tally.finish(source, collector)
  if collector.problems:
    raise preflight.InputCheckError(collector.problems, collector.full)
  extra = []
  if expectations.curated:
    extra = [c for c in columns if c not in expectations.known]
  return QueryReport(
      files=[source], rows=rows, columns=columns, extra_columns=extra,
      label=label_rule, label_counts=tally.label_counts() if tally else {},
      file_kind='SQL', source=source, fingerprint=digest.hexdigest(),
      kinds=kinds)


def _plain(value: Any) -> Any:
  return float(value) if isinstance(value, decimal.Decimal) else value


def _check_names(source: str, columns: List[str],
                 collector: preflight.Collector) -> None:
  seen = set()
  for name in columns:
    if name in seen:
      collector.add(preflight.Problem(
          source, 'returns two columns of this name; a tf.Example has one '
          'feature per name: give one of them another name with AS.',
          column=name))
    seen.add(name)


def _check_columns(source: str, columns: List[str], kinds: Dict[str, str],
                   expectations: preflight.Expectations,
                   allow_extra_columns: bool,
                   label_rule: Optional[preflight.LabelRule],
                   collector: preflight.Collector) -> None:
  """Label and required columns returned, unknown ones allow-listed, types."""
  label = expectations.label_key
  listed = ', '.join(columns[:10])
  for column in sorted(expectations.required - set(columns)):
    what = 'label column' if column == label else 'column'
    collector.add(preflight.Problem(
        source, f'returns no {what} {column!r} (columns: {listed}); '
        'select it, or pass --dataset/--schema for this data.'))
  if expectations.curated:
    for column in columns:
      if column not in expectations.known and not allow_extra_columns:
        collector.add(preflight.Problem(
            source, 'returns a column that is not in the curated schema '
            f'{expectations.schema_path}; leave it out of the SELECT, add it '
            'to the schema, or allow unknown columns with --allow-anomaly '
            f'{preflight.NEW_COLUMN_ANOMALY} (the model then ignores it).',
            column=column))
    for column, kind in kinds.items():
      expected = expectations.types.get(column)
      if expected in _WORDS and expected != kind:
        collector.add(preflight.Problem(
            source, f'returns {_WORDS[kind]}, but the curated schema '
            f'{expectations.schema_path} says {expected} '
            f'({_WORDS[expected]}), so ExampleValidator would refuse it: '
            'CAST it in the query, or fix the schema.', column=column))
  if (label_rule is not None and
      label_rule.task == features.REGRESSION and
      kinds.get(label) == BYTES):
    collector.add(preflight.Problem(
        source, 'returns strings for the label; a regression label must be '
        'a number: CAST it in the query, or pass --task binary/multiclass if '
        'the label is a category.', column=label))
