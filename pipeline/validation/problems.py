"""What the input check reports: problems, one line each, and their limit.

Every check of the package adds `Problem`s to one `Collector`; the driver
raises them together as an `InputCheckError`, whose message is the first
problem and how many more there are.
"""

from __future__ import annotations

import dataclasses
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

DEFAULT_MAX_PROBLEMS = 20
# Exit code of a run refused by the input check (1 is a failed pipeline run).
EXIT_CODE = 3
# How many lines, values or classes one message or summary lists.
LISTED = 5


@dataclasses.dataclass(frozen=True)
class Problem:
  """One reason the input cannot be used, with where and what to do."""
  path: str
  message: str
  line: Optional[int] = None
  column: Optional[str] = None
  # What `line` counts: lines of a text file, or records ('row') of a
  # Parquet, Avro or TFRecord file or a query's result.
  unit: str = 'line'

  def __str__(self) -> str:
    where = self.path
    if self.line is not None:
      where += f', {self.unit} {self.line}'
    if self.column is not None:
      where += f", column '{self.column}'"
    return f'{where}: {self.message}'


class InputCheckError(ValueError):
  """The input cannot be fed to the pipeline; see `problems`."""

  def __init__(self, problems: Sequence[Problem], truncated: bool = False):
    self.problems = list(problems)
    self.truncated = truncated
    more = len(self.problems) - 1
    suffix = ''
    if more or truncated:
      suffix = (f' (and {more}{"+" if truncated else ""} more problem'
                f'{"" if more == 1 and not truncated else "s"})')
    super().__init__(f'{self.problems[0]}{suffix}')


class Collector:
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


def names(values: Sequence[str], limit: int = 10) -> str:
  """'a, b, c' for a short list, 'a, b, ... (and 7 more)' for a long one."""
  shown = ', '.join(values[:limit])
  more = len(values) - limit
  return f'{shown} (and {more} more)' if more > 0 else shown


def rows_word(count: int) -> str:
  return f'{count} row{"" if count == 1 else "s"}'


def values_seen(counts: Sequence[Tuple[str, int]]) -> str:
  """"'yes' (500 rows), 'no' (3 rows)", most frequent first, capped."""
  ordered = sorted(counts, key=lambda item: -item[1])
  shown = [f'{value[:40]!r} ({rows_word(rows)})'
           for value, rows in ordered[:LISTED]]
  more = len(ordered) - len(shown)
  if more:
    shown.append(f'and {more} more')
  return ', '.join(shown)
