"""The gate's decision in one sentence a newcomer understands.

The Evaluator's validation result lists failed thresholds by metric key
(`auc_lower_bound = 0.4961 fails threshold > 0.5`). That is exact, and it
stays in the summary and the report, but it does not say what it means.
`sentence` says it in words, from the overall metrics and the failures:

    Blessed: it ranks positives above negatives better than chance (AUC
    0.93, at least 0.91 with 95% confidence) and does not fall behind the
    last blessed model.

    Not blessed: its AUC lower bound 0.49 is no better than a constant
    guess (0.5).

Pure functions of plain values: `summary.py` reads the Evaluator's output
and calls them. The task is read from which metrics exist (`auc` for
binary, `macro_auc` for multiclass, `r_squared` for regression).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping
from typing import Optional
from typing import Sequence

from models import metrics as custom_metrics

BINARY = 'binary'
MULTICLASS = 'multiclass'
REGRESSION = 'regression'
# The metric a baseline comparison is on, per task (evaluation.py's
# PRIMARY_METRIC, by value: inspection never imports the definition's TFMA
# config for this).
_COMPARED = {BINARY: 'auc', MULTICLASS: custom_metrics.ACCURACY_NAME,
             REGRESSION: custom_metrics.R_SQUARED_NAME}
_WORDS = {'auc': 'AUC', custom_metrics.MACRO_AUC_NAME: 'mean one-vs-rest AUC',
          custom_metrics.ACCURACY_NAME: 'accuracy',
          custom_metrics.R_SQUARED_NAME: 'R²'}


@dataclasses.dataclass(frozen=True)
class Failure:
  """One failed threshold of the Evaluator's validation result.

  Attributes:
    metric: The metric key's name ('auc_lower_bound').
    is_diff: A change against the baseline model, not a value.
    value: The value (or change) that failed.
    threshold: The bound it had to meet (a lower bound, or the change's
      allowed minimum, e.g. -0.01); None when not known.
  """
  metric: str
  is_diff: bool
  value: float
  threshold: Optional[float] = None


def task_of(metrics: Mapping[str, float]) -> Optional[str]:
  """'binary', 'multiclass' or 'regression', from the metrics present."""
  if custom_metrics.R_SQUARED_NAME in metrics:
    return REGRESSION
  if custom_metrics.MACRO_AUC_NAME in metrics:
    return MULTICLASS
  if 'auc' in metrics or custom_metrics.AUC_LOWER_BOUND_NAME in metrics:
    return BINARY
  return None


def _number(value: float, near: Optional[float] = None) -> str:
  """Two decimals; three when two would hide the distance to `near`."""
  if near is not None and abs(value - near) < 0.01:
    return f'{value:.3f}'
  return f'{value:.2f}'


def _percent(confidence: float) -> str:
  return f'{100 * confidence:g}%'


def _claim(task: str, metrics: Mapping[str, float], confidence: float
           ) -> str:
  """What a blessed model showed, with its number and bound."""
  nan = float('nan')
  level = _percent(confidence)
  if task == REGRESSION:
    value = _number(metrics.get(custom_metrics.R_SQUARED_NAME, nan))
    bound = _number(
        metrics.get(custom_metrics.R_SQUARED_LOWER_BOUND_NAME, nan), 0.0)
    return ('it explains more of the label\'s variation than a constant '
            f'guess (R² {value}, at least {bound} with {level} confidence)')
  if task == MULTICLASS:
    value = _number(metrics.get(custom_metrics.MACRO_AUC_NAME, nan))
    bound = _number(
        metrics.get(custom_metrics.MACRO_AUC_LOWER_BOUND_NAME, nan), 0.5)
    return ('it ranks each class above the others better than chance (mean '
            f'one-vs-rest AUC {value}, at least {bound} with {level} '
            'confidence)')
  value = _number(metrics.get('auc', nan))
  bound = _number(metrics.get(custom_metrics.AUC_LOWER_BOUND_NAME, nan), 0.5)
  return ('it ranks positives above negatives better than chance (AUC '
          f'{value}, at least {bound} with {level} confidence)')


def _why_not(failure: Failure) -> str:
  """One failed threshold in words."""
  name, value, bound = failure.metric, failure.value, failure.threshold
  if failure.is_diff:
    words = _WORDS.get(name, name)
    allowed = f', more than the {-bound:g} allowed' if bound is not None else ''
    return (f'its {words} is {abs(value):.3f} below the last blessed '
            f"model's{allowed}")
  if name in (custom_metrics.AUC_LOWER_BOUND_NAME,
              custom_metrics.MACRO_AUC_LOWER_BOUND_NAME):
    words = 'AUC' if name == custom_metrics.AUC_LOWER_BOUND_NAME else (
        'mean one-vs-rest AUC')
    return (f'its {words} lower bound {_number(value, 0.5)} is no better '
            'than a constant guess (0.5)')
  if name == custom_metrics.R_SQUARED_LOWER_BOUND_NAME:
    if bound is None or round(bound, 6) <= 0:
      return (f'its R² lower bound {_number(value, 0.0)} shows no more '
              'skill than a constant guess (0)')
    return (f'its R² lower bound {_number(value, bound)} is below the '
            f'{round(bound, 6):g} the gate asks for')
  if name in ('auc', custom_metrics.MACRO_AUC_NAME):
    shown = f' the {round(bound, 6):g}' if bound is not None else ' the bar'
    return (f'its {_WORDS[name]} {_number(value, bound)} is below{shown} '
            'the gate asks for')
  if name == 'example_count':
    needed = f', fewer than the {bound:.0f} needed' if bound else ''
    return f'it was judged on only {value:.0f} test rows{needed}'
  return f'{name} = {value:.4g} fails its threshold'


def sentence(blessed: Optional[bool], metrics: Mapping[str, float],
             failures: Sequence[Failure] = (),
             missing: bool = False,
             confidence: float = custom_metrics.DEFAULT_CONFIDENCE) -> str:
  """Why the model was or was not blessed, in one sentence.

  Args:
    blessed: The Evaluator's verdict; None when it did not run.
    metrics: The overall metrics of the candidate (with `*_diff` entries
      when a baseline was compared).
    failures: The failed thresholds, in any order.
    missing: A metric a threshold names was not computed.
    confidence: The confidence level of the lower bounds.
  """
  if blessed is None:
    return 'Not evaluated: the run stopped before the Evaluator.'
  task = task_of(metrics)
  if blessed:
    if task is None:
      return 'Blessed: every threshold of the gate was met.'
    compared = f'{_COMPARED[task]}_diff' in metrics
    tail = (' and does not fall behind the last blessed model' if compared
            else '; there was no earlier blessed model to compare with')
    return f'Blessed: {_claim(task, metrics, confidence)}{tail}.'
  # The "better than a constant" bounds first: they are the reason a
  # newcomer most needs to read.
  order = {custom_metrics.AUC_LOWER_BOUND_NAME: 0,
           custom_metrics.MACRO_AUC_LOWER_BOUND_NAME: 0,
           custom_metrics.R_SQUARED_LOWER_BOUND_NAME: 0,
           'example_count': 1}
  reasons = [_why_not(f) for f in sorted(
      failures, key=lambda f: (f.is_diff, order.get(f.metric, 2)))]
  if missing:
    reasons.append('the Evaluator did not compute every metric the gate '
                   'needs')
  if not reasons:
    return 'Not blessed: the Evaluator\'s validation failed.'
  if len(reasons) == 2:
    joined = ' and '.join(reasons)
  else:
    joined = '; '.join(reasons[:-1] + [f'and {reasons[-1]}'] if len(
        reasons) > 1 else reasons)
  return f'Not blessed: {joined}.'
