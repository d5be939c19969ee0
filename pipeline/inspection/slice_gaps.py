"""The gap between the best and the worst slice, per slice column.

The Evaluator reports every metric on every slice of the dataset's slice
columns (`slices:` in the dataset config). This module reads those numbers
(as `summary.read_metrics` returns them) and, for each slice column and each
metric worth comparing, names the best and the worst slice and the gap
between them. It is plain Python over plain numbers, so the report, the
notebook and the tests share it.

Which metrics are compared, by task (recognised by its metrics):

* binary: AUC (the primary metric, and what the gate decides on), the
  log-loss skill against the slice's own class priors, and the fairness
  indicators' false positive and false negative rates at threshold 0.5;
* multiclass: accuracy (primary), the mean one-vs-rest AUC (the gate's)
  and the log-loss skill;
* regression: R-squared (primary) and the mean absolute error.

The gate's lower bounds are not compared: they shrink with a slice's size,
so a small slice would always look worst. The point values are.

Tiny slices do not define "worst". A slice enters a gap only with at least
`MIN_SLICE_EXAMPLES` (30) test rows, and for AUC and the error rates also
with at least `MIN_CLASS_EXAMPLES` (5) rows of its rarer class: AUC is
undefined on one class, and a rate over two rows is noise. A slice left out
is still in the slice table; the gap says how many were left out. Slices are
reported, never gated.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

MIN_SLICE_EXAMPLES = 30
MIN_CLASS_EXAMPLES = 5
HIGHER = 'higher'
LOWER = 'lower'
EXAMPLE_COUNT = 'example_count'
MAJORITY_RATE = 'majority_class_rate'
# pipeline.definition.evaluation.fairness_metric_name(rate, 0.5); repeated
# here so that this module imports nothing.
FALSE_POSITIVE_RATE = 'fairness_indicators_metrics/false_positive_rate@0.5'
FALSE_NEGATIVE_RATE = 'fairness_indicators_metrics/false_negative_rate@0.5'
FAIRNESS_PREFIX = 'fairness_indicators_metrics/'
# ', <column>=' inside a slice name: a cross of slice columns.
_CROSS = re.compile(r', [^,=]+=')


@dataclasses.dataclass(frozen=True)
class GapMetric:
  """A metric to compare across slices, and which way is better."""
  name: str
  direction: str  # HIGHER or LOWER is better.
  # Needs both classes in the slice (AUC, error rates of one class).
  needs_both_classes: bool = False


BINARY_GAPS = (GapMetric('auc', HIGHER, True),
               GapMetric('log_loss_skill', HIGHER, True),
               GapMetric(FALSE_POSITIVE_RATE, LOWER, True),
               GapMetric(FALSE_NEGATIVE_RATE, LOWER, True))
MULTICLASS_GAPS = (GapMetric('accuracy', HIGHER),
                   GapMetric('macro_auc', HIGHER),
                   GapMetric('log_loss_skill', HIGHER))
REGRESSION_GAPS = (GapMetric('r_squared', HIGHER),
                   GapMetric('mean_absolute_error', LOWER))


@dataclasses.dataclass(frozen=True)
class SliceValue:
  """One slice's value of a metric: 'payment_type=Cash', 0.91, 129 rows."""
  name: str
  value: float
  count: float


@dataclasses.dataclass(frozen=True)
class SliceGap:
  """Best and worst slice of one slice column on one metric.

  `best` and `worst` are None when fewer than two slices qualify; then
  `gap` is None too.
  """
  feature: str
  metric: str
  direction: str
  best: Optional[SliceValue]
  worst: Optional[SliceValue]
  compared: int  # Slices that qualified.
  left_out: int  # Slices too small, one-class or without a value.

  @property
  def gap(self) -> Optional[float]:
    if self.best is None or self.worst is None:
      return None
    return abs(self.best.value - self.worst.value)


def gap_metrics(overall: Mapping[str, float]) -> Tuple[GapMetric, ...]:
  """The metrics to compare for the task whose overall metrics these are."""
  if 'auc' in overall:
    return BINARY_GAPS
  if 'r_squared' in overall:
    return REGRESSION_GAPS
  if 'accuracy' in overall:
    return MULTICLASS_GAPS
  return ()


def _finite(value) -> bool:
  return isinstance(value, (int, float)) and math.isfinite(value)


def qualifies(values: Mapping[str, float], metric: GapMetric,
              min_examples: int = MIN_SLICE_EXAMPLES,
              min_class_examples: int = MIN_CLASS_EXAMPLES) -> bool:
  """Whether one slice's value of `metric` may define a best or a worst."""
  count = values.get(EXAMPLE_COUNT)
  if not _finite(count) or count < min_examples:
    return False
  if not _finite(values.get(metric.name)):
    return False
  if metric.needs_both_classes:
    majority = values.get(MAJORITY_RATE)
    if not _finite(majority):
      return False
    if count * (1.0 - majority) < min_class_examples - 1e-9:
      return False
  return True


def slice_gap(feature: str, metric: GapMetric,
              by_slice: Mapping[str, Mapping[str, float]],
              min_examples: int = MIN_SLICE_EXAMPLES,
              min_class_examples: int = MIN_CLASS_EXAMPLES) -> SliceGap:
  """The gap of one slice column ('payment_type') on one metric.

  Args:
    feature: The slice column; its slices are named '<feature>=<value>'.
    metric: What to compare.
    by_slice: Metrics by slice name, as `summary.read_metrics` returns.
    min_examples: Fewest test rows a compared slice has.
    min_class_examples: Fewest rows of the rarer class, for metrics that
      need both classes.
  """
  prefix = f'{feature}='
  # Single-column slices only: not a cross such as 'a=x, b=y'.
  names = sorted(n for n in by_slice if n.startswith(prefix) and
                 not _CROSS.search(n[len(prefix):]))
  compared = [SliceValue(n, float(by_slice[n][metric.name]),
                         float(by_slice[n][EXAMPLE_COUNT]))
              for n in names if qualifies(by_slice[n], metric, min_examples,
                                          min_class_examples)]
  best = worst = None
  if len(compared) >= 2:
    # Ties: the larger slice, then the name, decides; stable across runs.
    ordered = sorted(compared, key=lambda s: (s.value, -s.count, s.name))
    low, high = ordered[0], ordered[-1]
    best, worst = (high, low) if metric.direction == HIGHER else (low, high)
  return SliceGap(feature=feature, metric=metric.name,
                  direction=metric.direction, best=best, worst=worst,
                  compared=len(compared), left_out=len(names) - len(compared))


def slice_gaps(features: Sequence[str],
               overall: Mapping[str, float],
               by_slice: Mapping[str, Mapping[str, float]],
               min_examples: int = MIN_SLICE_EXAMPLES,
               min_class_examples: int = MIN_CLASS_EXAMPLES
               ) -> Tuple[SliceGap, ...]:
  """Every slice column's gap on every metric of the task, column by column.

  Args:
    features: The slice columns (the EvalConfig's single-column slicing
      specs).
    overall: The Overall slice's metrics; they tell the task.
    by_slice: Metrics by slice name.
    min_examples: See `slice_gap`.
    min_class_examples: See `slice_gap`.
  """
  return tuple(slice_gap(feature, metric, by_slice, min_examples,
                         min_class_examples)
               for feature in features for metric in gap_metrics(overall)
               if metric.name in overall)


def largest_gap(gaps: Sequence[SliceGap], metric: Optional[str] = None
                ) -> Optional[SliceGap]:
  """The largest gap (of `metric`, or of the task's primary metric)."""
  if metric is None and gaps:
    metric = gaps[0].metric  # gap_metrics lists the primary metric first.
  found = [g for g in gaps if g.metric == metric and g.gap is not None]
  return max(found, key=lambda g: g.gap, default=None)


def fairness_columns(by_slice: Mapping[str, Mapping[str, float]]
                     ) -> Tuple[str, ...]:
  """The fairness indicator metrics present, by rate, then threshold."""
  names = {name for values in by_slice.values() for name in values
           if name.startswith(FAIRNESS_PREFIX) and not name.endswith('_diff')}

  def key(name: str):
    rate, _, rest = name[len(FAIRNESS_PREFIX):].partition('@')
    threshold, _, class_part = rest.partition('[')
    try:
      number = float(threshold)
    except ValueError:
      number = math.inf
    return (class_part, rate, number, name)

  return tuple(sorted(names, key=key))
