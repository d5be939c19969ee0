"""The Tuner's search in a run (--tune): its record, as text and as a view.

The Tuner writes its search record (`models/hyperparameters.py`) into its
`tuner_results` artifact, which `run_model.Run.tuner_results_uri` finds in
MLMD. The run summary prints it (`format_lines`) and the HTML report shows
it as a table (`view_of`): each trial's settings, eval metric, status,
steps and time, the best trial, why the search stopped, and whether tuning
beat the defaults ("tuning did not improve on the defaults" when not).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any
from typing import List
from typing import Mapping
from typing import Optional
from typing import Tuple

import tensorflow as tf

from models import hyperparameters as hp_lib

_DASH = '–'
BETTER = {'max': 'higher is better', 'min': 'lower is better'}


def read_record(tuner_results_uri: str) -> Optional[hp_lib.SearchRecord]:
  """The search record in a `tuner_results` artifact; None without one
  (a Tuner run by TFX's own executor writes none)."""
  path = os.path.join(tuner_results_uri, hp_lib.RECORD_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return hp_lib.SearchRecord.from_json(f.read())


def headline(record: hp_lib.SearchRecord) -> str:
  """The record's first line: trials, times, budgets, stop, metric."""
  # A search over the gradient-boosted trees grows each trial's forest to
  # the end: its trials have no fixed number of steps.
  trials = (f'{len(record.trials)} trial(s) of gradient-boosted trees'
            if hp_lib.NUM_TREES in record.default_values else
            f'{len(record.trials)} trial(s) of {record.steps_per_trial} steps')
  return (f'{trials} '
          f'in {record.seconds:.1f} s (setup {record.setup_seconds:.1f} s); '
          f'budget {record.max_trials} trials, '
          f'{record.time_budget_s:g} s; stopped by the {record.stop_reason}; '
          f'eval {record.metric}, {BETTER[record.direction]}')


def _score(value: Optional[float]) -> str:
  return _DASH if value is None else f'{value:.4f}'


def format_lines(record: hp_lib.SearchRecord,
                 used: Optional[Mapping[str, Any]] = None) -> List[str]:
  """The search for the terminal: one line per trial, then the verdict.

  Args:
    record: The search record.
    used: The settings the Trainer recorded it trained with, if known.
  """
  best = record.best
  lines = ['Tuning: ' + headline(record)]
  for trial in record.trials:
    mark = '*' if trial is best else ' '
    notes = [n for n in ('defaults' if trial.is_defaults else '',
                         trial.message) if n]
    lines.append(
        f'  {mark} trial {trial.trial_id:<3} {trial.status:<9} '
        f'{_score(trial.score):>8} {trial.seconds:6.1f}s  '
        f'{hp_lib.describe(trial.values)}'
        + (f' ({"; ".join(notes)})' if notes else ''))
  lines.append(f'  {record.verdict()}')
  if used:
    lines.append(f'  Trainer trained with: {hp_lib.describe(used)}')
  return lines


@dataclasses.dataclass(frozen=True)
class TrialRow:
  """One trial in the report's table."""
  trial_id: str
  settings: Tuple[str, ...]  # In `TuningView.setting_names` order.
  status: str
  score: Optional[float]
  steps: int
  seconds: float
  is_best: bool
  is_defaults: bool
  message: str

  @property
  def status_css(self) -> str:
    return {hp_lib.COMPLETED: 'pass', hp_lib.FAILED: 'fail'}.get(
        self.status, 'muted')


@dataclasses.dataclass(frozen=True)
class TuningView:
  """The Tuner's search, for the report."""
  headline: str
  metric: str
  verdict: str
  beat_defaults: Optional[bool]
  setting_names: Tuple[str, ...]
  rows: Tuple[TrialRow, ...]

  @property
  def verdict_css(self) -> str:
    return {True: 'pass', False: 'muted'}.get(self.beat_defaults, 'muted')


def _setting(value: Any) -> str:
  return f'{value:.3g}' if isinstance(value, float) else str(value)


def view_of(record: Optional[hp_lib.SearchRecord]) -> Optional[TuningView]:
  """The report's view of a search record; None for a run without one."""
  if record is None:
    return None
  best = record.best
  # The searched family's settings: the DNN's or the trees'.
  names = tuple(n for n in hp_lib.NAMES + hp_lib.GBT_NAMES
                if n in record.default_values) or hp_lib.NAMES
  return TuningView(
      headline=headline(record), metric=record.metric,
      verdict=record.verdict(), beat_defaults=record.beat_defaults,
      setting_names=names,
      rows=tuple(TrialRow(
          trial_id=t.trial_id,
          settings=tuple(_setting(t.values[n]) if n in t.values else _DASH
                         for n in names),
          status=t.status, score=t.score, steps=t.steps, seconds=t.seconds,
          is_best=t is best, is_defaults=t.is_defaults, message=t.message)
                 for t in record.trials))
