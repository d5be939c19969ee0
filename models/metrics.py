"""TFMA metrics that make the blessing gate mean "better than a constant".

Plain accuracy is misleading when one class dominates: on the taxi data,
always answering "no big tip" scores 0.775. And on a small test split a
lucky model can look better than it is. So the gate judges each task by how
much it beats the best constant answer *on the very rows being evaluated*,
and by the lower end of a one-sided confidence interval of that gain:

* Classification (binary and multiclass): accuracy minus the majority-class
  rate. A constant model's lift is at most 0. Its lower bound subtracts
  z * sqrt(p0 (1 - p0) / n), the standard error of the accuracy of a model
  that is right with the majority rate p0: a one-sided test of "better than
  the majority class".
* Regression: R-squared, 1 - MSE / Var(label), where Var is taken around the
  test mean, the best constant for these rows (so it is stricter than
  "beats the training mean"). Its lower bound comes from the paired
  per-row differences (y - mean)^2 - (y - prediction)^2.

Each metric is derived from one shared combiner per task, so TFMA runs one
pass however many of them an EvalConfig lists.
"""

from __future__ import annotations

import math
import statistics
from typing import Any
from typing import Dict
from typing import Iterable
from typing import List
from typing import Optional

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.metrics import metric_util

ACCURACY_NAME = 'accuracy'
MAJORITY_RATE_NAME = 'majority_class_rate'
ACCURACY_LIFT_NAME = 'accuracy_lift_over_majority'
LIFT_LOWER_BOUND_NAME = 'accuracy_lift_lower_bound'
R_SQUARED_NAME = 'r_squared'
R_SQUARED_LOWER_BOUND_NAME = 'r_squared_lower_bound'
RMSE_NAME = 'root_mean_squared_error'
MAE_NAME = 'mean_absolute_error'
LABEL_MEAN_NAME = 'label_mean'
DEFAULT_CONFIDENCE = 0.95
# Binary models output P(positive); this is the decision threshold.
BINARY_THRESHOLD = 0.5

_CLASS_COUNTS = '_class_counts'
_REGRESSION_PAIRS = '_regression_pairs'


def z_score(confidence: float) -> float:
  """One-sided normal quantile, e.g. 1.645 for 0.95."""
  return statistics.NormalDist().inv_cdf(confidence)


def predicted_class(prediction: np.ndarray) -> int:
  """The class a prediction votes for: P > 0.5, or the arg-max of scores."""
  values = np.asarray(prediction, dtype=np.float64).reshape(-1)
  if values.size == 1:
    return int(values[0] > BINARY_THRESHOLD)
  return int(np.argmax(values))


def classification_rates(correct: float, total: float,
                         class_counts: Dict[int, float],
                         confidence: float) -> Dict[str, float]:
  """Accuracy, majority rate, lift and its lower bound from counts."""
  if total <= 0:
    nan = float('nan')
    return {ACCURACY_NAME: nan, MAJORITY_RATE_NAME: nan,
            ACCURACY_LIFT_NAME: nan, LIFT_LOWER_BOUND_NAME: nan}
  accuracy = correct / total
  majority = max(class_counts.values()) / total
  lift = accuracy - majority
  margin = z_score(confidence) * math.sqrt(majority * (1 - majority) / total)
  return {ACCURACY_NAME: accuracy, MAJORITY_RATE_NAME: majority,
          ACCURACY_LIFT_NAME: lift, LIFT_LOWER_BOUND_NAME: lift - margin}


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


def _pairs(element: metric_types.StandardMetricInputs,
           key: metric_types.MetricKey, eval_config: Any):
  """(label, prediction) arrays of one example, as TFMA prepares them."""
  for label, prediction, _ in metric_util.to_label_prediction_example_weight(
      element, eval_config=eval_config, model_name=key.model_name,
      output_name=key.output_name, flatten=False, squeeze=False):
    yield (np.asarray(label, dtype=np.float64).reshape(-1),
           np.asarray(prediction, dtype=np.float64).reshape(-1))


class _ClassCountsCombiner(beam.CombineFn):
  """Counts rows, correct answers and rows per true class."""

  def __init__(self, key: metric_types.MetricKey, eval_config: Any):
    self._key = key
    self._eval_config = eval_config

  def create_accumulator(self) -> List[Any]:
    return [0.0, 0.0, {}]  # total, correct, {class id: rows}

  def add_input(self, accumulator, element):
    for label, prediction in _pairs(element, self._key, self._eval_config):
      truth = int(round(label[0]))
      accumulator[0] += 1
      accumulator[1] += float(predicted_class(prediction) == truth)
      accumulator[2][truth] = accumulator[2].get(truth, 0.0) + 1
    return accumulator

  def merge_accumulators(self, accumulators: Iterable[List[Any]]):
    total, correct, counts = 0.0, 0.0, {}
    for a_total, a_correct, a_counts in accumulators:
      total += a_total
      correct += a_correct
      for label, count in a_counts.items():
        counts[label] = counts.get(label, 0.0) + count
    return [total, correct, counts]

  def extract_output(self, accumulator):
    return {self._key: tuple(accumulator[:2]) + (dict(accumulator[2]),)}


class _RegressionPairsCombiner(beam.CombineFn):
  """Keeps every (label, prediction) pair of the slice.

  The R-squared bound needs the spread of per-row gains around the slice's
  own mean, which power sums lose to cancellation for large labels. Sixteen
  bytes a row is small next to what TFMA already holds per example.
  """

  def __init__(self, key: metric_types.MetricKey, eval_config: Any):
    self._key = key
    self._eval_config = eval_config

  def create_accumulator(self):
    return ([], [])

  def add_input(self, accumulator, element):
    for label, prediction in _pairs(element, self._key, self._eval_config):
      accumulator[0].append(float(label[0]))
      accumulator[1].append(float(prediction[0]))
    return accumulator

  def merge_accumulators(self, accumulators):
    labels, predictions = [], []
    for a_labels, a_predictions in accumulators:
      labels.extend(a_labels)
      predictions.extend(a_predictions)
    return (labels, predictions)

  def extract_output(self, accumulator):
    return {self._key: (np.asarray(accumulator[0]),
                        np.asarray(accumulator[1]))}


def _derived_computations(base: str, combiner_cls, derive):
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
      return {key: derive(name, metrics[base_key], confidence)}

    return [
        metric_types.MetricComputation(
            keys=[base_key], preprocessors=None,
            combiner=combiner_cls(base_key, eval_config)),
        metric_types.DerivedMetricComputation(keys=[key], result=result),
    ]

  return computations


def _from_counts(name: str, counts, confidence: float) -> float:
  total, correct, per_class = counts
  return classification_rates(correct, total, per_class, confidence)[name]


def _from_pairs(name: str, pairs, confidence: float) -> float:
  return regression_scores(pairs[0], pairs[1], confidence)[name]


_CLASSIFICATION = metric_util.merge_per_key_computations(
    _derived_computations(_CLASS_COUNTS, _ClassCountsCombiner, _from_counts))
_REGRESSION = metric_util.merge_per_key_computations(
    _derived_computations(_REGRESSION_PAIRS, _RegressionPairsCombiner,
                          _from_pairs))


class _ClassificationMetric(metric_types.Metric):
  """One of the lift metrics; all share one counting pass."""

  NAME = ''

  def __init__(self, name: str = '', confidence: float = DEFAULT_CONFIDENCE):
    super().__init__(_CLASSIFICATION, name=name or self.NAME,
                     confidence=confidence)


class Accuracy(_ClassificationMetric):
  """Share of rows whose predicted class is the true one."""
  NAME = ACCURACY_NAME


class MajorityClassRate(_ClassificationMetric):
  """Share of the most common class: the accuracy of a constant model."""
  NAME = MAJORITY_RATE_NAME


class AccuracyLiftOverMajority(_ClassificationMetric):
  """Accuracy minus the majority-class rate; at most 0 for a constant."""
  NAME = ACCURACY_LIFT_NAME


class AccuracyLiftLowerBound(_ClassificationMetric):
  """The lift minus its one-sided confidence margin; the gated value."""
  NAME = LIFT_LOWER_BOUND_NAME


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


for _metric in (Accuracy, MajorityClassRate, AccuracyLiftOverMajority,
                AccuracyLiftLowerBound, RSquared, RSquaredLowerBound,
                RootMeanSquaredError, MeanAbsoluteError, LabelMean):
  metric_types.register_metric(_metric)
