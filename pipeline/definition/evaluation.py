"""TFMA EvalConfig: the metrics, slices and blessing thresholds of a task.

Every task is gated on whether the model beats the best constant answer on
the test rows, judged by the lower end of a one-sided confidence interval
(see `models.metrics`), so a constant model is never blessed, at any class
balance, and a small test split needs a clear signal:

* binary: the AUC's lower bound above 0.5 (it ranks positives above
  negatives better than chance) and the AUC at least `min_auc`; no
  threshold is involved, so a useful model on a rare label passes. The
  decision threshold is the Trainer's (models/decision.py), not the gate's.
* multiclass: the same for the mean one-vs-rest AUC of the classes;
* regression: R-squared, the share of the variance around the test mean the
  model explains; RMSE and MAE are reported.

Reported beside them: accuracy (binary: at 0.5), the majority-class rate,
and the log-loss skill against the test split's class priors with its
lower bound (how far the probabilities can be taken at face value).

The task's primary metric (AUC, accuracy, R-squared) may also not drop by
more than `max_metric_drop` against the latest blessed model.

Classification also gets fairness indicators on every slice, reported and
never gated: the false positive, false negative and predicted positive rates
at a few decision thresholds (one-vs-rest per class for multiclass), named
as the Fairness Indicators add-on names them
(`fairness_indicators_metrics/false_positive_rate@0.5`). They are TFMA's own
confusion-matrix metrics, computed in the same pass from one small confusion
matrix per threshold.
"""

from __future__ import annotations

import json
from typing import List

from google.protobuf import wrappers_pb2
import tensorflow_model_analysis as tfma

from models import features
from models import metrics as custom_metrics
from models import signatures
from pipeline.definition import config as config_lib

METRICS_MODULE = custom_metrics.__name__
TEST_SPLIT = 'test'
# TFMA's lower bounds are inclusive; a tiny epsilon makes "bound > margin"
# strict, so a margin of 0 still rejects a constant model.
STRICT_EPSILON = 1e-9
PRIMARY_METRIC = {
    features.BINARY: 'auc',
    features.MULTICLASS: custom_metrics.ACCURACY_NAME,
    features.REGRESSION: custom_metrics.R_SQUARED_NAME,
}


# Decision thresholds of the fairness indicators: binary models at three
# thresholds, multiclass one-vs-rest at 0.5 only (classes x rates grow fast).
FAIRNESS_THRESHOLDS = (0.25, 0.5, 0.75)
MULTICLASS_FAIRNESS_THRESHOLDS = (0.5,)
FAIRNESS_PREFIX = 'fairness_indicators_metrics'
# (TFMA metric class, the Fairness Indicators name of its rate).
FAIRNESS_RATES = (('FallOut', 'false_positive_rate'),
                  ('MissRate', 'false_negative_rate'),
                  ('PredictedPositiveRate', 'positive_rate'))


def fairness_metric_name(rate: str, threshold: float) -> str:
  """'fairness_indicators_metrics/false_positive_rate@0.5'."""
  return f'{FAIRNESS_PREFIX}/{rate}@{threshold:g}'


def _fairness_indicators(thresholds) -> List[tfma.MetricConfig]:
  """One TFMA rate metric per (rate, threshold); rates at one threshold
  share TFMA's confusion matrix computation at that threshold."""
  return [tfma.MetricConfig(class_name=class_name, config=json.dumps({
      'thresholds': [threshold],
      'name': fairness_metric_name(rate, threshold)}))
          for threshold in thresholds for class_name, rate in FAIRNESS_RATES]


def _lower_bound(value: float) -> tfma.MetricThreshold:
  return tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(lower_bound={'value': value}))


def _no_drop(gate: config_lib.GateConfig,
             value_threshold: float = None) -> tfma.MetricThreshold:
  """No worse than the baseline by more than `max_metric_drop`."""
  threshold = tfma.MetricThreshold(
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.HIGHER_IS_BETTER,
          absolute={'value': -gate.max_metric_drop}))
  if value_threshold is not None:
    threshold.value_threshold.lower_bound.value = value_threshold
  return threshold


def _overall_only(threshold: tfma.MetricThreshold
                  ) -> List[tfma.PerSliceMetricThreshold]:
  """Gates on the whole test split; slices are reported, not gated, because
  small slices (a rare payment type) are too noisy to decide a blessing."""
  return [tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()],
                                       threshold=threshold)]


def _custom(class_name: str, gate: config_lib.GateConfig,
            threshold: tfma.MetricThreshold = None) -> tfma.MetricConfig:
  config = tfma.MetricConfig(
      class_name=class_name, module=METRICS_MODULE,
      config=json.dumps({'confidence': gate.confidence}))
  if threshold is not None:
    config.per_slice_thresholds.extend(_overall_only(threshold))
  return config


def _metric_configs(spec: features.DatasetSpec,
                    gate: config_lib.GateConfig) -> List[tfma.MetricsSpec]:
  count = tfma.MetricConfig(
      class_name='ExampleCount',
      per_slice_thresholds=_overall_only(
          _lower_bound(gate.min_example_count)))
  # Better than chance, strictly: a constant model's bound is exactly 0.5.
  beats_chance = _lower_bound(custom_metrics.CHANCE_AUC + STRICT_EPSILON)
  reported = [
      _custom('MajorityClassRate', gate),
      _custom('LogLossSkill', gate),
      _custom('LogLossSkillLowerBound', gate),
  ]
  if spec.task == features.BINARY:
    return [tfma.MetricsSpec(metrics=[
        count,
        tfma.MetricConfig(class_name='AUC', per_slice_thresholds=_overall_only(
            _no_drop(gate, gate.min_auc))),
        _custom('AucLowerBound', gate, beats_chance),
        tfma.MetricConfig(class_name='BinaryAccuracy'),
        *reported,
        tfma.MetricConfig(class_name='Precision'),
        tfma.MetricConfig(class_name='Recall'),
        tfma.MetricConfig(class_name='BinaryCrossentropy'),
        tfma.MetricConfig(class_name='CalibrationPlot'),
        tfma.MetricConfig(class_name='ConfusionMatrixPlot'),
        *_fairness_indicators(FAIRNESS_THRESHOLDS),
    ])]
  if spec.task == features.MULTICLASS:
    per_class = tfma.BinarizationOptions(
        class_ids={'values': list(range(len(spec.classes)))})
    return [
        tfma.MetricsSpec(metrics=[
            count,
            _custom('MacroAucLowerBound', gate, beats_chance),
            _custom('MacroAuc', gate, _lower_bound(gate.min_auc)),
            _custom('Accuracy', gate, _no_drop(gate)),
            *reported,
            tfma.MetricConfig(class_name='MultiClassConfusionMatrixPlot'),
        ]),
        # One-vs-rest metrics for each class, keyed by class id.
        tfma.MetricsSpec(binarize=per_class, metrics=[
            tfma.MetricConfig(class_name='Precision'),
            tfma.MetricConfig(class_name='Recall'),
            *_fairness_indicators(MULTICLASS_FAIRNESS_THRESHOLDS),
        ]),
    ]
  return [tfma.MetricsSpec(metrics=[
      count,
      _custom('RSquaredLowerBound', gate,
              _lower_bound(gate.min_r_squared + STRICT_EPSILON)),
      _custom('RSquared', gate, _no_drop(gate)),
      _custom('RootMeanSquaredError', gate),
      _custom('MeanAbsoluteError', gate),
      _custom('LabelMean', gate),
  ])]


def eval_config(spec: features.DatasetSpec,
                gate: config_lib.GateConfig) -> tfma.EvalConfig:
  """Builds the Evaluator's config from the dataset spec and gate settings."""
  slicing_specs = [tfma.SlicingSpec()] + [
      tfma.SlicingSpec(feature_keys=[key]) for key in spec.slice_features]
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(
          # The serving signature is all TFMA calls. Without a type, TFMA
          # loads the whole Keras model once just to find out that it is
          # one, then revives it as Keras again in each worker: about 3.5 s
          # of the Evaluator's time on the taxi data, for the same metrics.
          model_type='tf_generic',
          signature_name='serving_default',
          prediction_key=signatures.prediction_key(spec.task),
          label_key=spec.transformed_label_key,
          preprocessing_function_names=['transform_features'])],
      metrics_specs=_metric_configs(spec, gate),
      slicing_specs=slicing_specs,
      # Only the metrics above: TFMA's defaults would add the model's own
      # compiled metrics (just `loss` beyond these), for which every
      # Evaluator worker loads the whole Keras model once more (a third of
      # the Evaluator's time on the sample).
      options=tfma.Options(
          include_default_metrics=wrappers_pb2.BoolValue(value=False)))
