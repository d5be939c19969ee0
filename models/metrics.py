"""TFMA metrics that make the blessing gate mean "better than a constant".

A model is worth serving when it knows something about the label that a
constant answer does not. The gate asks that of every task, on the test
rows, with the lower end of a one-sided confidence interval (z = 1.645 at
95%), so that on a small test split luck cannot pass for skill:

* Classification (binary and multiclass): **ranking, by AUC.** The AUC is
  the chance that a random row of a class gets a higher score for that
  class than a random row of another class. A constant model gives every
  row the same score: its AUC is exactly 0.5, whatever the class balance,
  and a useful model's is above 0.5 on a 50/50 label and on a 97/3 label
  alike. It is threshold-free, so a good ranker on a rare label is not
  refused because few of its scores pass 0.5, and it does not depend on
  calibration. Binary: `auc_lower_bound`. Multiclass: the mean of the
  one-vs-rest AUCs of the classes present (`macro_auc`,
  `macro_auc_lower_bound`).
* Regression: R-squared, 1 - MSE / Var(label), where Var is taken around
  the test mean, the best constant for these rows (so it is stricter than
  "beats the training mean"). Its lower bound comes from the paired
  per-row differences (y - mean)^2 - (y - prediction)^2.

Why AUC and not a log-loss (or Brier) skill score, which is reported
beside it (`log_loss_skill`, `log_loss_skill_lower_bound`): skill, 1 -
log loss / log loss of the test split's class priors, is also 0 for the
best constant, but it punishes miscalibration as hard as a wrong ranking.
A model that ranks well but is overconfident on a few rows (small data,
many epochs) has negative skill, and its decisions, taken at a threshold
chosen on the eval split (models/decision.py), are still good. Requiring
both would refuse such models; an OR of the two tests would let a useless
model through more often than the confidence level says. So the gate is
the ranking test, and the skill shows how far the probabilities can be
taken at face value.

The AUC's standard error is the larger of two:

* DeLong's (1988): from each row's placement, the share of the other
  class's rows it outranks. Distribution-free, and it shrinks as the AUC
  grows.
* The no-information one, Mann-Whitney's variance of U when the scores
  carry no information, with the correction for ties:
  (n0 n1 / 12) (n + 1 - sum(t^3 - t) / (n (n - 1))) / (n0 n1)^2.
  DeLong's error is 0 when the ranking is perfect, so on 1 positive among
  10 rows a lucky perfect ranking (a 1-in-10 chance) would pass; this one
  keeps the test an honest test of "better than chance" (for a macro mean,
  the mean of the classes' errors: an upper bound, whatever their
  correlation).

A constant model never passes, at any size: every row is tied, every
placement is exactly 0.5, so the AUC is exactly 0.5, both errors are 0
(all ties), and the gate asks for a bound strictly above 0.5. Scores that
differ by less than TIE_TOLERANCE (relative) count as ties, so a constant
model's float32 jitter between batches is not mistaken for a ranking.

Each task's metrics are derived from one shared combiner, so TFMA runs one
pass however many of them an EvalConfig lists. The combiners keep every
(label, prediction) pair of a slice in compact arrays (8 bytes per value):
ranks and per-row differences need them all.
"""

from __future__ import annotations

import array
import math
import statistics
from typing import Any
from typing import Dict
from typing import Iterable
from typing import Optional
from typing import Tuple

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.metrics import metric_util

ACCURACY_NAME = 'accuracy'
MAJORITY_RATE_NAME = 'majority_class_rate'
AUC_LOWER_BOUND_NAME = 'auc_lower_bound'
MACRO_AUC_NAME = 'macro_auc'
MACRO_AUC_LOWER_BOUND_NAME = 'macro_auc_lower_bound'
LOG_LOSS_SKILL_NAME = 'log_loss_skill'
LOG_LOSS_SKILL_LOWER_BOUND_NAME = 'log_loss_skill_lower_bound'
R_SQUARED_NAME = 'r_squared'
R_SQUARED_LOWER_BOUND_NAME = 'r_squared_lower_bound'
RMSE_NAME = 'root_mean_squared_error'
MAE_NAME = 'mean_absolute_error'
LABEL_MEAN_NAME = 'label_mean'
DEFAULT_CONFIDENCE = 0.95
# The AUC of a model that knows nothing: the gate's bound must exceed it.
CHANCE_AUC = 0.5
# Scores closer than this (relative) rank as ties: about 16 float32 steps.
TIE_TOLERANCE = 1e-6
# Probabilities are clipped to [EPSILON, 1 - EPSILON] before the log, as
# Keras' cross-entropy does (models/eval_split.py uses the same).
EPSILON = 1e-7

_CLASSIFICATION_PAIRS = '_classification_pairs'
_REGRESSION_PAIRS = '_regression_pairs'


def z_score(confidence: float) -> float:
  """One-sided normal quantile, e.g. 1.645 for 0.95."""
  return statistics.NormalDist().inv_cdf(confidence)


# --- Ranking: AUC, its standard errors, the macro mean. -------------------


def _tie_groups(scores: np.ndarray) -> Tuple[np.ndarray, int]:
  """Each row's tie group (0 = lowest scores) and the number of groups.

  Neighbours in score order closer than TIE_TOLERANCE times the larger
  magnitude join one group; chains join too.
  """
  order = np.argsort(scores, kind='stable')
  ordered = scores[order]
  if ordered.size < 2:
    return np.zeros(ordered.size, dtype=np.int64), int(ordered.size)
  gaps = ordered[1:] - ordered[:-1]
  scale = np.maximum(np.abs(ordered[1:]), np.abs(ordered[:-1]))
  starts = gaps > TIE_TOLERANCE * scale
  group_sorted = np.concatenate([[0], np.cumsum(starts)])
  groups = np.empty_like(group_sorted)
  groups[order] = group_sorted
  return groups, int(group_sorted[-1]) + 1


class _Ranking:
  """One class against the rest: its AUC and what its error is made of.

  Attributes:
    auc: Share of (positive, negative) pairs ranked right, ties half.
    influence: Per row, its DeLong component: (placement - auc) /
      sqrt(m (m - 1)), m the size of its group (positives or negatives).
      The sum of their squares is DeLong's variance.
    null_variance: The AUC's variance when the scores carry no information
      (Mann-Whitney, with the tie correction).
  """

  def __init__(self, positive: np.ndarray, scores: np.ndarray):
    n1 = int(positive.sum())
    n0 = int(positive.size - n1)
    groups, count = _tie_groups(scores)
    pos = np.bincount(groups, weights=positive, minlength=count)
    neg = np.bincount(groups, weights=~positive, minlength=count)
    pos_below = np.cumsum(pos) - pos
    neg_below = np.cumsum(neg) - neg
    # Placement of a positive: the negatives it outranks (ties half); of a
    # negative: the positives that outrank it (ties half). Both average to
    # the AUC. Counts are whole numbers: exact in float64.
    placement = np.where(
        positive, (neg_below[groups] + 0.5 * neg[groups]) / max(n0, 1),
        (n1 - pos_below[groups] - 0.5 * pos[groups]) / max(n1, 1))
    self.auc = float(np.mean(placement[positive]))
    size = np.where(positive, n1, n0).astype(np.float64)
    scale = np.sqrt(size * (size - 1))
    self.influence = np.where(scale > 0, (placement - self.auc) /
                              np.where(scale > 0, scale, 1.0), 0.0)
    n = n0 + n1
    tied = float(np.sum((pos + neg) ** 3 - (pos + neg)))
    spread = max((n + 1) - tied / (n * (n - 1)), 0.0)
    self.null_variance = spread / (12.0 * n0 * n1)


def auc_scores(labels: np.ndarray, scores: np.ndarray,
               confidence: float) -> Dict[str, float]:
  """Binary AUC (positive = label 1) with its lower confidence bound.

  Returns:
    {'auc': .., 'auc_standard_error': .., AUC_LOWER_BOUND_NAME: ..}; NaN
    when the rows hold a single class.
  """
  positive = np.asarray(labels).reshape(-1) == 1
  values = np.asarray(scores, dtype=np.float64).reshape(-1)
  if positive.all() or not positive.any():
    nan = float('nan')
    return {'auc': nan, 'auc_standard_error': nan, AUC_LOWER_BOUND_NAME: nan}
  ranking = _Ranking(positive, values)
  error = math.sqrt(max(float(np.sum(ranking.influence ** 2)),
                        ranking.null_variance))
  return {'auc': ranking.auc, 'auc_standard_error': error,
          AUC_LOWER_BOUND_NAME: ranking.auc - z_score(confidence) * error}


def macro_auc_scores(labels: np.ndarray, probabilities: np.ndarray,
                     confidence: float) -> Dict[str, float]:
  """The mean one-vs-rest AUC of the classes present, with its bound.

  A class absent from the rows, or the only one in them, has no AUC and
  is left out of the mean. The mean's DeLong variance sums the squares of
  the per-row mean of the classes' components (their covariance
  included); the no-information error is the mean of the classes'.
  """
  y = np.asarray(labels).reshape(-1).astype(np.int64)
  p = np.asarray(probabilities, dtype=np.float64)
  rankings = []
  for class_id in range(p.shape[1] if p.ndim == 2 else 0):
    positive = y == class_id
    if positive.any() and not positive.all():
      rankings.append(_Ranking(positive, p[:, class_id]))
  if not rankings:
    nan = float('nan')
    return {MACRO_AUC_NAME: nan, MACRO_AUC_LOWER_BOUND_NAME: nan}
  auc = float(np.mean([r.auc for r in rankings]))
  influence = np.mean([r.influence for r in rankings], axis=0)
  null_error = float(np.mean([math.sqrt(r.null_variance) for r in rankings]))
  error = max(math.sqrt(float(np.sum(influence ** 2))), null_error)
  return {MACRO_AUC_NAME: auc,
          MACRO_AUC_LOWER_BOUND_NAME: auc - z_score(confidence) * error}


# --- Probabilities: log-loss skill against the test split's priors. -------


def _true_class_probability(labels: np.ndarray,
                            probabilities: np.ndarray) -> np.ndarray:
  """P the model gave each row's true class (clipped, renormalized)."""
  y = labels.astype(np.int64)
  p = np.asarray(probabilities, dtype=np.float64)
  if p.ndim == 1:
    p = np.clip(p, EPSILON, 1 - EPSILON)
    return np.where(y == 1, p, 1 - p)
  # Renormalized after clipping, so the clipped scores are still a
  # distribution and a constant model's skill stays <= 0.
  clipped = np.clip(p, EPSILON, None)
  clipped = clipped / clipped.sum(axis=1, keepdims=True)
  return clipped[np.arange(y.size), y]


def log_loss_skill(labels: np.ndarray, probabilities: np.ndarray,
                   confidence: float) -> Dict[str, float]:
  """1 - log loss / log loss of the rows' own class priors, with a bound.

  The priors (the classes' shares in these rows) are the best constant
  for log loss, so a constant model's skill is at most 0: the mean paired
  difference log q(y) - log prior(y) is minus a KL divergence. The bound
  subtracts z times the paired differences' standard error.
  """
  y = np.asarray(labels).reshape(-1).astype(np.int64)
  n = y.size
  counts = np.bincount(y, minlength=1).astype(np.float64)
  priors = counts / max(n, 1)
  present = priors[priors > 0]
  prior_loss = float(-np.sum(present * np.log(present)))
  if n < 2 or prior_loss <= 0:
    nan = float('nan')
    return {LOG_LOSS_SKILL_NAME: nan, LOG_LOSS_SKILL_LOWER_BOUND_NAME: nan}
  gain = (np.log(_true_class_probability(y, probabilities)) -
          np.log(priors[y]))
  skill = float(gain.mean()) / prior_loss
  half_width = z_score(confidence) * float(gain.std(ddof=1)) / math.sqrt(n)
  return {LOG_LOSS_SKILL_NAME: skill,
          LOG_LOSS_SKILL_LOWER_BOUND_NAME: skill - half_width / prior_loss}


def classification_scores(labels: np.ndarray, predictions: np.ndarray,
                          confidence: float) -> Dict[str, float]:
  """Every classification metric of this module, from one slice's rows.

  Args:
    labels: [n] 0/1 (binary) or class ids (multiclass).
    predictions: [n] P(positive) (binary) or [n, k] class probabilities.
    confidence: One-sided confidence level of the bounds.
  """
  y = np.asarray(labels).reshape(-1).astype(np.int64)
  p = np.asarray(predictions, dtype=np.float64)
  nan = float('nan')
  if y.size == 0:
    return {name: nan for name in (
        ACCURACY_NAME, MAJORITY_RATE_NAME, AUC_LOWER_BOUND_NAME,
        MACRO_AUC_NAME, MACRO_AUC_LOWER_BOUND_NAME, LOG_LOSS_SKILL_NAME,
        LOG_LOSS_SKILL_LOWER_BOUND_NAME)}
  binary = p.ndim == 1
  predicted = (p > 0.5).astype(np.int64) if binary else np.argmax(p, axis=1)
  scores = {
      ACCURACY_NAME: float(np.mean(predicted == y)),
      MAJORITY_RATE_NAME: float(np.bincount(y).max() / y.size),
  }
  if binary:
    auc = auc_scores(y, p, confidence)
    scores[AUC_LOWER_BOUND_NAME] = auc[AUC_LOWER_BOUND_NAME]
    scores[MACRO_AUC_NAME] = auc['auc']
    scores[MACRO_AUC_LOWER_BOUND_NAME] = auc[AUC_LOWER_BOUND_NAME]
  else:
    scores.update(macro_auc_scores(y, p, confidence))
    scores[AUC_LOWER_BOUND_NAME] = scores[MACRO_AUC_LOWER_BOUND_NAME]
  scores.update(log_loss_skill(y, p, confidence))
  return scores


# --- Regression. -----------------------------------------------------------


def regression_scores(labels: np.ndarray, predictions: np.ndarray,
                      confidence: float) -> Dict[str, float]:
  """R-squared (and its lower bound), RMSE, MAE and the label mean."""
  y = np.asarray(labels, dtype=np.float64)
  n = y.size
  if n == 0:
    nan = float('nan')
    return {R_SQUARED_NAME: nan, R_SQUARED_LOWER_BOUND_NAME: nan,
            RMSE_NAME: nan, MAE_NAME: nan, LABEL_MEAN_NAME: nan}
  error = y - np.asarray(predictions, dtype=np.float64)
  mean = float(y.mean())
  spread = (y - mean) ** 2
  variance = float(spread.mean())
  gain = spread - error ** 2  # Per row: how much better than the mean.
  if variance > 0 and n > 1:
    r_squared = float(gain.mean()) / variance
    half_width = z_score(confidence) * float(gain.std(ddof=1)) / math.sqrt(n)
    lower = r_squared - half_width / variance
  else:
    # A constant label: nothing to explain, and nothing to bless.
    r_squared = lower = float('nan')
  return {R_SQUARED_NAME: r_squared, R_SQUARED_LOWER_BOUND_NAME: lower,
          RMSE_NAME: math.sqrt(float((error ** 2).mean())),
          MAE_NAME: float(np.abs(error).mean()), LABEL_MEAN_NAME: mean}


# --- TFMA plumbing: one combiner per task, metrics derived from it. -------


def _pairs(element: metric_types.StandardMetricInputs,
           key: metric_types.MetricKey, eval_config: Any):
  """(label, prediction) arrays of one example, as TFMA prepares them."""
  for label, prediction, _ in metric_util.to_label_prediction_example_weight(
      element, eval_config=eval_config, model_name=key.model_name,
      output_name=key.output_name, flatten=False, squeeze=False):
    yield (np.asarray(label, dtype=np.float64).reshape(-1),
           np.asarray(prediction, dtype=np.float64).reshape(-1))


class _PairsCombiner(beam.CombineFn):
  """Keeps every (label, prediction) pair of the slice, compactly.

  The accumulator is (labels, predictions, width): two `array.array('d')`
  and the prediction's width (1 for a probability or a value, k for class
  scores), so a row costs 8 bytes per value, not a Python object each.
  """

  def __init__(self, key: metric_types.MetricKey, eval_config: Any):
    self._key = key
    self._eval_config = eval_config

  def create_accumulator(self):
    return (array.array('d'), array.array('d'), 0)

  def add_input(self, accumulator, element):
    labels, predictions, width = accumulator
    for label, prediction in _pairs(element, self._key, self._eval_config):
      if width and prediction.size != width:
        raise ValueError(
            f'Metric {self._key.name}: a prediction of {prediction.size} '
            f'values after ones of {width}; every row must give the same '
            'number of scores.')
      width = prediction.size
      labels.append(float(label[0]))
      predictions.extend(prediction.tolist())
    return (labels, predictions, width)

  def merge_accumulators(self, accumulators: Iterable[Any]):
    labels, predictions, width = self.create_accumulator()
    for a_labels, a_predictions, a_width in accumulators:
      labels.extend(a_labels)
      predictions.extend(a_predictions)
      width = width or a_width
    return (labels, predictions, width)

  def extract_output(self, accumulator):
    labels, predictions, width = accumulator
    values = np.frombuffer(predictions, dtype=np.float64).copy()
    if width > 1:
      values = values.reshape(-1, width)
    return {self._key: (np.frombuffer(labels, dtype=np.float64).copy(),
                        values)}


def _derived_computations(base: str, derive):
  """A create-computations function: one shared base pass, one derived key.

  TFMA runs a base computation once however many metrics list it, because
  it de-duplicates computations by combiner and key.
  """

  def computations(name: str, confidence: float = DEFAULT_CONFIDENCE,
                   eval_config=None, model_name: str = '',
                   output_name: str = '',
                   sub_key: Optional[metric_types.SubKey] = None,
                   example_weighted: bool = False
                   ) -> metric_types.MetricComputations:
    base_key = metric_types.MetricKey(
        name=base, model_name=model_name, output_name=output_name,
        sub_key=sub_key, example_weighted=example_weighted)
    key = metric_types.MetricKey(
        name=name, model_name=model_name, output_name=output_name,
        sub_key=sub_key, example_weighted=example_weighted)

    def result(metrics: Dict[metric_types.MetricKey, Any]
               ) -> Dict[metric_types.MetricKey, float]:
      labels, predictions = metrics[base_key]
      return {key: derive(labels, predictions, confidence)[name]}

    return [
        metric_types.MetricComputation(
            keys=[base_key], preprocessors=None,
            combiner=_PairsCombiner(base_key, eval_config)),
        metric_types.DerivedMetricComputation(keys=[key], result=result),
    ]

  return computations


_CLASSIFICATION = metric_util.merge_per_key_computations(
    _derived_computations(_CLASSIFICATION_PAIRS, classification_scores))
_REGRESSION = metric_util.merge_per_key_computations(
    _derived_computations(_REGRESSION_PAIRS, regression_scores))


class _ClassificationMetric(metric_types.Metric):
  """One of the classification metrics; all share one pass."""

  NAME = ''

  def __init__(self, name: str = '', confidence: float = DEFAULT_CONFIDENCE):
    super().__init__(_CLASSIFICATION, name=name or self.NAME,
                     confidence=confidence)


class Accuracy(_ClassificationMetric):
  """Share of rows whose arg-max class (binary: P > 0.5) is the true one."""
  NAME = ACCURACY_NAME


class MajorityClassRate(_ClassificationMetric):
  """Share of the most common class: the accuracy of a constant model."""
  NAME = MAJORITY_RATE_NAME


class AucLowerBound(_ClassificationMetric):
  """Binary: AUC minus its one-sided confidence margin; the gated value."""
  NAME = AUC_LOWER_BOUND_NAME


class MacroAuc(_ClassificationMetric):
  """Multiclass: the mean one-vs-rest AUC of the classes present."""
  NAME = MACRO_AUC_NAME


class MacroAucLowerBound(_ClassificationMetric):
  """Multiclass: the mean AUC minus its margin; the gated value."""
  NAME = MACRO_AUC_LOWER_BOUND_NAME


class LogLossSkill(_ClassificationMetric):
  """1 - log loss / the log loss of the test split's class priors."""
  NAME = LOG_LOSS_SKILL_NAME


class LogLossSkillLowerBound(_ClassificationMetric):
  """The log-loss skill minus its one-sided confidence margin."""
  NAME = LOG_LOSS_SKILL_LOWER_BOUND_NAME


class _RegressionMetric(metric_types.Metric):
  """One of the regression scores; all share one pass."""

  NAME = ''

  def __init__(self, name: str = '', confidence: float = DEFAULT_CONFIDENCE):
    super().__init__(_REGRESSION, name=name or self.NAME,
                     confidence=confidence)


class RSquared(_RegressionMetric):
  """1 - MSE / Var(label): 0 for the best constant, 1 for a perfect fit."""
  NAME = R_SQUARED_NAME


class RSquaredLowerBound(_RegressionMetric):
  """R-squared minus its one-sided confidence margin; the gated value."""
  NAME = R_SQUARED_LOWER_BOUND_NAME


class RootMeanSquaredError(_RegressionMetric):
  NAME = RMSE_NAME


class MeanAbsoluteError(_RegressionMetric):
  NAME = MAE_NAME


class LabelMean(_RegressionMetric):
  """Mean label of the slice: the best constant prediction for it."""
  NAME = LABEL_MEAN_NAME


for _metric in (Accuracy, MajorityClassRate, AucLowerBound, MacroAuc,
                MacroAucLowerBound, LogLossSkill, LogLossSkillLowerBound,
                RSquared, RSquaredLowerBound, RootMeanSquaredError,
                MeanAbsoluteError, LabelMean):
  metric_types.register_metric(_metric)
