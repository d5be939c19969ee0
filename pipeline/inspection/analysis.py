"""Fairness, attributions and plots of a run's model, as views for the report.

Three parts of the report (`report.py`) and of the TFMA notebook:

* **Fairness** (`fairness_view`): per slice column, the best and worst
  slice and their gap on the task's metrics (`slice_gaps`), and the
  fairness indicators (false positive, false negative and predicted
  positive rates at a few thresholds) of every slice, from the Evaluator's
  metrics.
* **Attributions** (`attributions_view`): the FeatureAttributions
  component's permutation importance, one row per raw column, from its
  `attributions.json` (found through `run_model.Run.attributions_uri`).
* **Plots** (`plots_view`): the pictures of `plots.py`, from TFMA's plot
  output (and, for regression, the rows FeatureAttributions scored).

Each view is frozen plain values; the builders read artifacts, the
template only formats.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

from pipeline.components import attributions as attributions_lib
from pipeline.inspection import plots as plots_lib
from pipeline.inspection import slice_gaps

# Short column titles of the fairness indicators.
_RATE_TITLES = {'false_positive_rate': 'FPR', 'false_negative_rate': 'FNR',
                'positive_rate': 'positive rate'}
METRIC_TITLES = {'auc': 'AUC', 'accuracy': 'accuracy',
                 'macro_auc': 'mean AUC', 'log_loss_skill': 'log-loss skill',
                 'r_squared': 'R²', 'mean_absolute_error': 'MAE'}


def is_fairness_metric(name: str) -> bool:
  """Whether a metric is one of the fairness indicators."""
  return name.startswith(slice_gaps.FAIRNESS_PREFIX)


def metric_title(name: str) -> str:
  """'FPR @0.5' for 'fairness_indicators_metrics/false_positive_rate@0.5',
  'FPR @0.5 [class 2]' per class; other names as METRIC_TITLES has them."""
  if name.startswith(slice_gaps.FAIRNESS_PREFIX):
    rate, _, rest = name[len(slice_gaps.FAIRNESS_PREFIX):].partition('@')
    threshold, bracket, class_part = rest.partition('[')
    title = f'{_RATE_TITLES.get(rate, rate)} @{threshold}'
    return title + (f' [{class_part}' if bracket else '')
  return METRIC_TITLES.get(name, name)


# --- Fairness ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FairnessSlice:
  """One slice's row of a fairness table."""
  name: str
  count: Optional[float]
  values: Mapping[str, float]
  large_enough: bool  # Enough rows to enter the gaps.


@dataclasses.dataclass(frozen=True)
class FairnessTable:
  """The fairness indicators of every slice of one slice column."""
  feature: str
  slices: Tuple[FairnessSlice, ...]


@dataclasses.dataclass(frozen=True)
class FairnessView:
  """Slice gaps and fairness indicators of one evaluation."""
  min_examples: int
  min_class_examples: int
  gaps: Tuple[slice_gaps.SliceGap, ...]
  # The largest gap of the task's primary metric; None when no slice
  # column has two slices big enough.
  largest: Optional[slice_gaps.SliceGap]
  columns: Tuple[str, ...]  # Fairness indicator metric names.
  tables: Tuple[FairnessTable, ...]

  @property
  def titles(self) -> Tuple[str, ...]:
    return tuple(metric_title(c) for c in self.columns)


def _slice_value(name: str) -> Tuple[int, float, str]:
  value = name.partition('=')[2]
  try:
    return (0, float(value), '')
  except ValueError:
    return (1, 0.0, value)


def fairness_view(slice_features: Sequence[str],
                  overall: Mapping[str, float],
                  by_slice: Mapping[str, Mapping[str, float]],
                  min_examples: int = slice_gaps.MIN_SLICE_EXAMPLES,
                  min_class_examples: int = slice_gaps.MIN_CLASS_EXAMPLES
                  ) -> FairnessView:
  """The fairness view of one evaluation's metrics.

  Args:
    slice_features: The slice columns (single-column slicing specs).
    overall: The Overall slice's metrics.
    by_slice: Metrics by slice name ('payment_type=Cash').
    min_examples: Fewest rows of a slice in a gap.
    min_class_examples: Fewest rows of the rarer class, for AUC and rates.
  """
  gaps = slice_gaps.slice_gaps(slice_features, overall, by_slice,
                               min_examples, min_class_examples)
  metrics = slice_gaps.gap_metrics(overall)
  primary = metrics[0].name if metrics else None
  tables = []
  for feature in slice_features:
    names = sorted((n for n in by_slice if n.startswith(f'{feature}=')),
                   key=_slice_value)
    counts = {n: by_slice[n].get(slice_gaps.EXAMPLE_COUNT) for n in names}
    tables.append(FairnessTable(feature, tuple(
        FairnessSlice(name=n, count=counts[n], values=dict(by_slice[n]),
                      large_enough=(counts[n] is not None and
                                    counts[n] >= min_examples))
        for n in names)))
  return FairnessView(
      min_examples=min_examples, min_class_examples=min_class_examples,
      gaps=gaps,
      largest=slice_gaps.largest_gap(gaps, primary) if primary else None,
      columns=slice_gaps.fairness_columns(by_slice), tables=tuple(tables))


# --- Attributions -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AttributionRow:
  """One raw column: the mean drop of the metric when it is shuffled."""
  feature: str
  importance: float
  spread: float
  # Bar length, 0-100: the importance as a share of the largest one.
  width: float


@dataclasses.dataclass(frozen=True)
class AttributionsView:
  """The FeatureAttributions output of a run."""
  uri: str
  metric: str
  baseline: float
  rows: int
  repeats: int
  seed: int
  seconds: float
  split: str
  features: Tuple[AttributionRow, ...]

  @property
  def metric_title(self) -> str:
    return metric_title(self.metric)

  def top(self, count: int = 5) -> Tuple[AttributionRow, ...]:
    return self.features[:count]


def attributions_view(result: Mapping, uri: str) -> AttributionsView:
  """The view of a FeatureAttributions result (`attributions.read`)."""
  rows = result['features']
  largest = max((r['importance'] for r in rows
                 if math.isfinite(r['importance'])), default=0.0)
  return AttributionsView(
      uri=uri, metric=result['metric'], baseline=result['baseline'],
      rows=result['rows'], repeats=result['repeats'], seed=result['seed'],
      seconds=result.get('seconds', math.nan),
      split=result.get('split', 'test'),
      features=tuple(AttributionRow(
          feature=r['feature'], importance=r['importance'],
          spread=r['spread'],
          width=(100.0 * max(0.0, r['importance']) / largest
                 if largest > 0 and math.isfinite(r['importance']) else 0.0))
                     for r in rows))


def read_attributions(uri: Optional[str]) -> Optional[Mapping]:
  """The FeatureAttributions result at `uri`; None without a uri."""
  if not uri:
    return None
  return attributions_lib.read(uri)


# --- Plots ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PlotsView:
  """The evaluation's pictures, and where their data came from."""
  plots: Tuple[plots_lib.Plot, ...]
  note: str


def plots_view(evaluation_uri: str, overall: Mapping[str, float],
               attributions: Optional[Mapping] = None,
               model_name: str = plots_lib.CANDIDATE,
               decision_threshold: float = plots_lib.DECISION_THRESHOLD
               ) -> PlotsView:
  """The pictures of an evaluation (Overall slice, the candidate model).

  Args:
    evaluation_uri: The Evaluator's output.
    overall: Its Overall metrics.
    attributions: The FeatureAttributions result of the same model, if
      any: class names, and the scored rows that regression plots need.
    model_name: 'candidate' (with a baseline) or '' (without).
    decision_threshold: A binary model's decision threshold.
  """
  attributions = attributions or {}
  regression = 'r_squared' in overall
  pictures = plots_lib.evaluation_plots(
      plots_lib.read_tfma_plots(evaluation_uri, model_name), overall,
      classes=tuple(attributions.get('classes', ())),
      regression_sample=attributions.get('sample') if regression else None,
      decision_threshold=decision_threshold)
  if regression:
    note = ('TFMA has no plot for a regression label whose range is unknown '
            'when the pipeline is defined, so these are drawn from the test '
            'rows the FeatureAttributions component scored.'
            if pictures else 'No regression plots: the FeatureAttributions '
            'component did not run for this model.')
  else:
    note = ('Drawn from TFMA\'s plot output of the Evaluator (test split, '
            'all rows).')
  return PlotsView(plots=pictures, note=note)
