"""A SQL query's rows, read once through the ExampleGen's own reader.

The query runs through `sql_rows.stream`, as the SQL ExampleGen runs it,
so what the check accepted is what ExampleGen reads. The messages name
the query and the URL (password masked). Besides the checks every input
gets, it refuses a URL that is not one, a server that cannot be reached or
refuses the login, a query that fails (with the server's reason), two
columns of one name, and a column whose values no tf.Example feature holds
(dates, timestamps, JSON), with the CAST that fixes it.

What it read becomes part of the run: the rows' SHA-256 is the SQL
ExampleGen's cache key (an unchanged table hits the cache, a changed one is
read again), and each column's kind makes a NULL the same typed empty value
list that CsvExampleGen writes for an empty cell.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
from typing import Any
from typing import Dict
from typing import List
from typing import Optional

from pipeline.components import sql_rows
from pipeline.facts import kinds
from pipeline.validation import columns
from pipeline.validation import contract
from pipeline.validation import labels
from pipeline.validation import reader
from pipeline.validation.problems import Collector
from pipeline.validation.problems import InputCheckError
from pipeline.validation.problems import Problem

_TEMPORAL = (datetime.date, datetime.time, datetime.timedelta)


def _unsupported(value: Any) -> str:
  if isinstance(value, _TEMPORAL):
    fix = ('CAST it in the query, e.g. CAST(col AS text), or '
           'EXTRACT(EPOCH FROM col) for a number')
  else:
    fix = 'CAST it to a number or to text in the query'
  return (f'holds {type(value).__name__} values (e.g. {value!r}), which a '
          f'tf.Example cannot hold; {fix}.')


class QueryReader(reader.Reader):
  """One query; after `read`, `fingerprint` and `kinds` describe its rows.

  Attributes:
    fingerprint: SHA-256 of the column names and every row, in order.
    kinds: Column -> kinds.INT, FLOAT or BYTES; absent for an all-NULL
      column.
  """
  name = 'SQL'
  unit = 'row'
  typed = True
  files = None
  wording = columns.Wording(
      absent='', names_missing_column=True,
      empty='returns no rows; check the WHERE clause (and --span), or load '
      'the table first.',
      no_column='returns no {what} {column!r} (columns: {columns}); select '
      'it, or pass --dataset/--schema for this data.',
      no_label='returns no {what} {column!r} (columns: {columns}); select '
      'it, or pass --dataset/--schema for this data.',
      unknown='returns a column that is not in the curated schema {schema}; '
      'leave it out of the SELECT, add it to the schema, or allow unknown '
      'columns with --allow-anomaly {anomaly} (the model then ignores it).',
      wrong_kind='returns {words}, but the curated schema {schema} says '
      '{expected} ({expected_words}), so ExampleValidator would refuse it: '
      'CAST it in the query, or fix the schema.',
      text_label='returns strings for the label; a regression label must be '
      'a number: CAST it in the query, or pass --task binary/multiclass if '
      'the label is a category.')

  def __init__(self, url: str, query: str,
               batch_rows: int = sql_rows.DEFAULT_BATCH_ROWS):
    self.url = url
    self.query = query
    self.batch_rows = batch_rows
    self.fingerprint = ''
    self.kinds: Dict[str, str] = {}

  def read(self, where: str, expectations: contract.Expectations,
           collector: Collector, tally: Optional[labels.LabelTally]
           ) -> columns.Read:
    """Streams the rows, hashing them and learning each column's kind.

    Raises:
      InputCheckError: The URL, the server or the query failed; nothing
        was read.
    """
    digest = hashlib.sha256()
    found: Dict[str, str] = {}
    unsupported: Dict[str, Any] = {}
    names: List[str] = []
    rows = 0
    try:
      with contextlib.closing(sql_rows.stream(
          self.url, self.query, self.batch_rows)) as batches:
        for batch in batches:
          if not names:
            names = list(batch.columns)
            digest.update(repr(names).encode())
            repeated = columns.duplicates(names)
            for name in repeated:
              collector.add(Problem(
                  where, 'returns two columns of this name; a tf.Example has '
                  'one feature per name: give one of them another name with '
                  'AS.', column=name))
            if repeated:
              return columns.Read(None, 0, complete=False)
          label = expectations.label_key
          label_index = names.index(label) if label in names else None
          for row in batch.rows:
            rows += 1
            digest.update(repr(tuple(row)).encode())
            for name, value in zip(names, row, strict=True):
              if value is None or name in unsupported:
                continue
              kind = kinds.kind_of(value)
              if kind is None:
                unsupported[name] = value
              elif name not in found:
                found[name] = kind
            if tally is not None and label_index is not None:
              value = row[label_index]
              tally.add(where, rows, '' if value is None else
                        labels.label_text(value))
    except sql_rows.SqlSourceError as e:
      raise InputCheckError([Problem(str(e), 'nothing was read.')]) from None
    self.fingerprint = digest.hexdigest()
    self.kinds = found
    return columns.Read(columns.Columns(
        kinds={name: found.get(name) for name in names},
        unsupported={name: _unsupported(value)
                     for name, value in unsupported.items()}), rows)
