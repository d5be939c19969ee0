"""The label check: the label column, streamed, against the task's rule.

Present in every row, two values for binary, numbers for regression, enough
rows of each class for multiclass. The label is the one column a wrong value
cannot be imputed for, and a bad one otherwise surfaces only as a Transform
or Trainer failure, or a model that trains on nothing. Values are tallied
while streaming, with a cap on distinct values, so memory stays bounded on
any input size.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

from models import features
from pipeline.facts import kinds
from pipeline.validation import contract
from pipeline.validation import problems
from pipeline.validation.problems import Collector
from pipeline.validation.problems import Problem

# Distinct label values tallied at most. Keeps memory bounded on a column
# that is no class label at all (an ID, free text); passing it is refused.
MAX_DISTINCT_LABELS = 10_000
_LISTED = problems.LISTED


def label_text(value: Any) -> str:
  """A typed label value as the tally sees it: how it reads as CSV text."""
  value = kinds.plain(value)
  if isinstance(value, bytes):
    return value.decode('utf-8', errors='replace')
  if isinstance(value, bool):
    return str(int(value))
  if isinstance(value, float):
    return '' if math.isnan(value) else repr(value)
  return str(value)


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

  def __init__(self, rule: contract.LabelRule, check_numbers: bool,
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
      if self.check_numbers and not contract.parses_as(value, kinds.FLOAT):
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
          path, f'label is empty in {problems.rows_word(self._empty_rows)} '
          f'({self.unit}(s) {lines}); rows without a label cannot train or '
          'evaluate: fill in the label or drop those rows.',
          line=self._empty_lines[0], column=label, unit=self.unit))
    if self._bad_number is not None:
      line, value = self._bad_number
      others = self._bad_numbers - 1
      more = f' (and {others} more in this file)' if others else ''
      collector.add(Problem(
          path, f'label value {value[:40]!r} is not a finite number{more}; a '
          'regression label must be a number in every row: fix or drop those '
          'rows, or pass --task binary/multiclass if the label is a '
          'category.', line=line, column=label, unit=self.unit))
    self._forget_file()

  def discard_file(self) -> None:
    """Forgets one file's row problems, already reported another way.

    For a file whose label column turned out to be missing, or that could
    not be read to the end: the whole-dataset checks are then skipped.
    """
    self.complete = False
    self._forget_file()

  def _forget_file(self) -> None:
    self._empty_lines, self._empty_rows = [], 0
    self._bad_number, self._bad_numbers = None, 0

  @property
  def _here(self) -> str:
    return 'on this line' if self.unit == 'line' else f'in this {self.unit}'

  def label_counts(self) -> Dict[str, int]:
    """Label text -> rows, most frequent first; {} for regression."""
    ordered = sorted(self.values.items(), key=lambda item: -item[1].rows)
    return {value: seen.rows for value, seen in ordered}

  def finish(self, source: str, collector: Collector) -> None:
    """Reports the problems only the whole label column shows."""
    if self.rule.task == features.BINARY:
      self._finish_binary(source, collector)
    elif self.rule.task == features.MULTICLASS:
      self._finish_multiclass(source, collector)

  def _counts(self) -> List[Tuple[str, int]]:
    return [(value, seen.rows) for value, seen in self.values.items()]

  def _finish_binary(self, source: str, collector: Collector) -> None:
    rule, label = self.rule, self.rule.label_key
    seen_text = problems.values_seen(self._counts())
    if len(self.values) > 2:
      value, third = list(self.values.items())[2]
      collector.add(Problem(
          third.path, f'label value {value[:40]!r} is a third distinct value '
          f'(values seen: {seen_text}); a binary label holds exactly two '
          'values: fix or drop the odd rows, or pass --task multiclass.',
          line=third.line, column=label, unit=self.unit))
      return
    if not rule.positive_values:
      odd = [(v, seen) for v, seen in self.values.items()
             if not _is_zero_or_one(v)]
      if odd:
        _, first = odd[0]
        choices = ' or '.join(repr(v[:40]) for v in self.values)
        collector.add(Problem(
            first.path, f'label values are {seen_text}, not 0/1, so the '
            'model cannot tell which one is positive: pass --positive-label '
            f'VALUE with VALUE {choices}.', line=first.line, column=label,
            unit=self.unit))
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
          source, f'no row holds the positive label value ({wanted}); the '
          f'values seen are {seen_text}: pass --positive-label with one of '
          'them (matched exactly, case included).', column=label))
    elif not positive or positive == self.labelled:
      collector.add(Problem(
          source, f'every row holds the same label ({seen_text}); a binary '
          'model needs rows of both classes: add rows of the other class or '
          'pick another --label.', column=label))

  def _finish_multiclass(self, source: str, collector: Collector) -> None:
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
              seen.path, f'label value {value[:40]!r} '
              f'({problems.rows_word(seen.rows)}) is not one of the classes '
              f'the dataset config lists ({problems.names(rule.classes)}): '
              'fix or drop those rows, or add the class to the config.',
              line=seen.line, column=label, unit=self.unit))
    if not self.complete or not self.labelled:
      return
    classes = rule.classes or tuple(self.values)
    present = [c for c in classes if c in self.values]
    if len(present) < 2:
      counts = [(c, self.values[c].rows) for c in present]
      collector.add(Problem(
          source, f'label holds {len(present)} class(es) '
          f'({problems.values_seen(counts) or "none"}); a multiclass model '
          'needs at least 2: add rows of other classes or pick another '
          '--label.', column=label))
      return
    for name in classes:
      seen = self.values.get(name)
      if seen is None:
        collector.add(Problem(
            source, f'class {name[:40]!r} of the dataset config has no '
            f'rows; each class needs at least {rule.min_rows_per_class}: add '
            'rows of it or remove it from the config.', column=label))
      elif seen.rows < rule.min_rows_per_class:
        collector.add(Problem(
            seen.path, f'class {name[:40]!r} has only '
            f'{problems.rows_word(seen.rows)} (the first {self._here}), '
            f'fewer than the {rule.min_rows_per_class} a class needs: the '
            'split sends about 1 row in 10 to test, and the model needs '
            'examples of each class in train. Add rows of it, drop them, or '
            'merge it into another class.', line=seen.line, column=label,
            unit=self.unit))
