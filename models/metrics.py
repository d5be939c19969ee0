"""TFMA metrics that make the blessing gate meaningful on imbalanced labels.

Plain accuracy is misleading when one class dominates: on the taxi data,
always answering "no big tip" scores 0.775. `AccuracyLiftOverMajority` is
accuracy at threshold 0.5 minus the majority-class rate of the very rows being
evaluated, so a threshold of "lift > margin" can never be met by a constant
model, whatever the class balance of the eval data.
"""

from __future__ import annotations

from tensorflow_model_analysis.metrics import confusion_matrix_metrics
from tensorflow_model_analysis.metrics import metric_types

ACCURACY_LIFT_NAME = 'accuracy_lift_over_majority'
MAJORITY_RATE_NAME = 'majority_class_rate'


def _rates(tp: float, tn: float, fp: float, fn: float):
  total = tp + tn + fp + fn
  if total <= 0:
    return float('nan'), float('nan')
  accuracy = (tp + tn) / total
  majority = max(tp + fn, tn + fp) / total
  return accuracy, majority


class AccuracyLiftOverMajority(confusion_matrix_metrics.ConfusionMatrixMetric):
  """Binary accuracy minus the majority-class rate (threshold 0.5)."""

  def _default_name(self) -> str:
    return ACCURACY_LIFT_NAME

  def result(self, tp: float, tn: float, fp: float, fn: float) -> float:
    accuracy, majority = _rates(tp, tn, fp, fn)
    return accuracy - majority


class MajorityClassRate(confusion_matrix_metrics.ConfusionMatrixMetric):
  """Share of the most common label: the accuracy of a constant model."""

  def _default_name(self) -> str:
    return MAJORITY_RATE_NAME

  def result(self, tp: float, tn: float, fp: float, fn: float) -> float:
    return _rates(tp, tn, fp, fn)[1]


metric_types.register_metric(AccuracyLiftOverMajority)
metric_types.register_metric(MajorityClassRate)
