"""The decision threshold of a binary model, chosen on the eval split.

A binary model answers P(positive). Turning that into a yes/no needs a
threshold, and 0.5 is rarely the right one: on a label with 3% positives a
model that ranks well may never give a row more than 0.5, and then every
decision at 0.5 is "no" (recall 0). So the Trainer chooses the threshold
on the eval split (validation rows, never the Evaluator's test rows) with a
rule the dataset config names, and records it with the model:
`decision_threshold` and `decision_rule` in the serving contract
(`models/serving_contract.py`), which the REST server, batch predictions
and the report read. The rules:

* `f1` (the default): the threshold that maximises F1 of the positive
  class, the harmonic mean of precision and recall. It needs no costs, and
  it does not reward answering "no" to everything, which accuracy does on
  imbalanced data.
* `cost`: the threshold that minimises the total cost of the eval rows'
  mistakes, `false_positive_cost` per false alarm plus
  `false_negative_cost` per missed positive (dataset config:
  `decision: {rule: cost, false_positive_cost: 1, false_negative_cost: 5}`).
  Only the ratio matters.

A row is positive when P(positive) >= threshold. The threshold is placed
halfway between two neighbouring eval scores, so a score a hair away from
an eval row's does not flip its decision, and it always lies strictly
inside (0, 1). When the eval split cannot decide (no rows, or a single
class), the threshold is 0.5 and the rule says why.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from typing import Dict
from typing import Mapping

import numpy as np

F1 = 'f1'
COST = 'cost'
RULES = (F1, COST)
DEFAULT_THRESHOLD = 0.5
# Keeps a threshold strictly inside (0, 1).
_MARGIN = 1e-6


@dataclasses.dataclass(frozen=True)
class DecisionRule:
  """How the threshold is chosen (the dataset config's `decision:`).

  Attributes:
    rule: 'f1' or 'cost'.
    false_positive_cost: `cost` only: the cost of one false alarm.
    false_negative_cost: `cost` only: the cost of one missed positive.
  """
  rule: str = F1
  false_positive_cost: float = 1.0
  false_negative_cost: float = 1.0

  def __post_init__(self) -> None:
    if self.rule not in RULES:
      raise ValueError(f'decision rule must be one of {", ".join(RULES)}, '
                       f'got {self.rule!r}.')
    for name in ('false_positive_cost', 'false_negative_cost'):
      value = getattr(self, name)
      if not value > 0:
        raise ValueError(f'decision {name} must be > 0, got {value}.')
    if self.rule == F1 and (self.false_positive_cost,
                            self.false_negative_cost) != (1.0, 1.0):
      raise ValueError('decision costs apply to `rule: cost` only; set '
                       '`rule: cost` or leave the costs out.')

  def describe(self) -> str:
    """'best F1 on the eval split', 'least cost on the eval split (...)'."""
    if self.rule == F1:
      return 'best F1 of the positive class on the eval split'
    return (f'least cost on the eval split (a false positive costs '
            f'{self.false_positive_cost:g}, a false negative '
            f'{self.false_negative_cost:g})')

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values: Mapping[str, Any]) -> 'DecisionRule':
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
      raise ValueError(f'unknown decision key(s) {unknown}; known: rule, '
                       'false_positive_cost, false_negative_cost.')
    kwargs = dict(values)
    for name in ('false_positive_cost', 'false_negative_cost'):
      if name in kwargs:
        value = kwargs[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
          raise ValueError(f'decision {name} must be a number, got '
                           f'{value!r}.')
        kwargs[name] = float(value)
    if 'rule' in kwargs:
      kwargs['rule'] = str(kwargs['rule'])
    return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class Decision:
  """A chosen threshold and what it does on the eval split.

  Attributes:
    threshold: Positive when P(positive) >= threshold; in (0, 1).
    rule: How it was chosen, in words ('best F1 ... on the eval split').
    eval_rows: Eval rows it was chosen on.
    eval_positives: Positive rows among them.
    precision: Precision of the positive class at the threshold, on them.
    recall: Recall of the positive class at the threshold, on them.
  """
  threshold: float
  rule: str
  eval_rows: int = 0
  eval_positives: int = 0
  precision: float = float('nan')
  recall: float = float('nan')

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


def choose(labels: np.ndarray, probabilities: np.ndarray,
           rule: DecisionRule = DecisionRule()) -> Decision:
  """Chooses the threshold on eval labels (0/1) and P(positive).

  Candidates are every cut between two neighbouring distinct scores, plus
  "every row positive" and "no row positive"; the rule's best wins, the
  highest threshold among equals (fewer alarms for the same score).
  """
  y = np.asarray(labels).reshape(-1).astype(np.int64)
  p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
  if y.size != p.size:
    raise ValueError(f'{y.size} labels but {p.size} probabilities.')
  positives = int(y.sum())
  base = dict(eval_rows=int(y.size), eval_positives=positives)
  if y.size == 0 or positives in (0, y.size):
    why = ('no eval rows' if y.size == 0 else
           'the eval split holds a single class')
    return Decision(DEFAULT_THRESHOLD,
                    f'0.5: the rule ({rule.describe()}) could not be '
                    f'applied, {why}', **base)
  order = np.argsort(-p, kind='stable')
  scores, truth = p[order], y[order]
  # Cutting after position i (0-based) makes the i + 1 highest scores
  # positive; only cuts between distinct scores are possible.
  true_pos = np.cumsum(truth)
  predicted = np.arange(1, y.size + 1)
  distinct = np.append(scores[:-1] > scores[1:], True)
  tp = np.concatenate([[0], true_pos[distinct]])
  flagged = np.concatenate([[0], predicted[distinct]])
  fp = flagged - tp
  fn = positives - tp
  if rule.rule == F1:
    # F1 = 2 TP / (2 TP + FP + FN); 0 when nothing is flagged.
    value = 2.0 * tp / np.maximum(2.0 * tp + fp + fn, 1.0)
  else:
    value = -(rule.false_positive_cost * fp + rule.false_negative_cost * fn)
  best = int(np.flatnonzero(value == value.max())[0])
  cut_scores = np.concatenate([[np.inf], scores[distinct]])
  lowest_in = cut_scores[best]  # The lowest score flagged (inf: none).
  next_index = int(flagged[best])  # Position of the first unflagged row.
  highest_out = scores[next_index] if next_index < y.size else -np.inf
  if np.isinf(lowest_in):
    threshold = (highest_out + 1.0) / 2.0
  elif np.isinf(highest_out):
    threshold = lowest_in / 2.0
  else:
    threshold = (lowest_in + highest_out) / 2.0
  threshold = float(min(max(threshold, _MARGIN), 1.0 - _MARGIN))
  flagged_rows = p >= threshold
  hits = int(np.sum(flagged_rows & (y == 1)))
  precision = hits / int(flagged_rows.sum()) if flagged_rows.any() else float(
      'nan')
  return Decision(threshold, rule.describe(), precision=precision,
                  recall=hits / positives, **base)
