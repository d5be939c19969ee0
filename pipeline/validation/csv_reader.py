"""CSV files, read as CsvExampleGen reads them.

CsvExampleGen fails on a malformed file deep inside a Beam stack trace, or
worse, silently turns a stray word in a numeric column into a string column
that only shows up later as a type anomaly. This reader streams a file line
by line and reports each problem as one line that names the file, line and
column: undecodable text, a bad header, a row with the wrong number of
values, an unclosed quote, and a value the curated schema's INT or FLOAT
column cannot hold.
"""

from __future__ import annotations

import csv
import os
from typing import Iterator
from typing import List
from typing import Optional
from typing import Tuple

from pipeline.facts import kinds
from pipeline.validation import columns
from pipeline.validation import contract
from pipeline.validation import folder
from pipeline.validation import labels
from pipeline.validation import reader
from pipeline.validation.problems import Collector
from pipeline.validation.problems import Problem

_BOM = '\ufeff'
_KIND_WORDS = {kinds.INT: 'an integer', kinds.FLOAT: 'a finite number'}


class CsvReader(reader.Reader):
  """A CSV file with a header row."""
  name = ''
  unit = 'line'
  typed = False
  files = folder.FileKind()
  wording = columns.Wording(
      absent='missing from the header',
      empty='has a header but no data rows; remove the file or add rows.',
      empty_file='file is empty (no header row); remove it or fill it.',
      differ=('header differs from the one in {first} ({differences}); '
              'CsvExampleGen needs the same columns in the same order in '
              'every file, so rewrite the file with the same header.'),
      ordered=True, line=1)

  def read(self, where: str, expectations: contract.Expectations,
           collector: Collector, tally: Optional[labels.LabelTally]
           ) -> columns.Read:
    """Checks one file; feeds the label of every well-formed row to `tally`,
    and tells it when rows could not be read, so that it skips the
    whole-dataset label checks."""
    path = where
    if os.path.getsize(path) == 0:
      return columns.Read(None, 0)  # wording.empty_file
    lines = _decoded_lines(path, collector)
    first = next(lines, None)
    header = None
    if first is not None and first[1] is not None:
      header = _check_header(path, first[1], collector)
    if header is None:
      return columns.Read(None, 0, complete=False)  # Reported.
    found = columns.Columns(kinds=dict.fromkeys(header))
    numeric = [(i, name, expectations.types[name])
               for i, name in enumerate(header)
               if expectations.types.get(name) in kinds.NUMERIC]
    label_index = None
    if tally is not None and tally.rule.label_key in header:
      label_index = header.index(tally.rule.label_key)
    rows = 0
    pending: List[str] = []
    start = 0
    for number, text in lines:
      if text is None:
        # Undecodable line; already reported.
        return columns.Read(found, rows, complete=False)
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
        return columns.Read(found, rows, complete=False)
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
        if value and not contract.parses_as(value, kind):
          collector.add(Problem(
              path, f"value {value[:40]!r} is not {_KIND_WORDS[kind]} as the "
              'schema requires; fix the value or leave the cell empty if it '
              'is unknown.', line=start, column=name))
    if pending:
      collector.add(Problem(
          path, 'a quoted value is never closed; add the missing double '
          'quote.', line=start))
      if tally is not None:
        tally.complete = False
    return columns.Read(found, rows)


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
  repeated = columns.duplicates(header)
  for name in repeated:
    collector.add(Problem(
        path, 'column name appears more than once in the header; rename or '
        'drop the duplicate column.', line=1, column=name))
  return None if repeated else header
