"""TFMA EvalConfig: the metrics, slices and blessing thresholds.

The gate combines a ranking metric (AUC) with a decision metric (accuracy
lift over the majority class at threshold 0.5). A model that ranks well but
classifies like a constant, or a constant model on imbalanced data, fails.
"""

from __future__ import annotations

from typing import List

import tensorflow_model_analysis as tfma

from models import features
from models import metrics as custom_metrics
from pipeline.definition import config as config_lib

METRICS_MODULE = custom_metrics.__name__
TEST_SPLIT = 'test'


def _lower_bound(value: float) -> tfma.MetricThreshold:
  return tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(lower_bound={'value': value}))


def _overall_only(threshold: tfma.MetricThreshold
                  ) -> List[tfma.PerSliceMetricThreshold]:
  """Gates on the whole test split; slices are reported, not gated, because
  small slices (a rare payment type) are too noisy to decide a blessing."""
  return [tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()],
                                       threshold=threshold)]


def eval_config(spec: features.DatasetSpec,
                gate: config_lib.GateConfig) -> tfma.EvalConfig:
  """Builds the Evaluator's config from the dataset spec and gate settings."""
  auc_threshold = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(
          lower_bound={'value': gate.min_auc}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.HIGHER_IS_BETTER,
          absolute={'value': -gate.max_auc_drop}))
  # TFMA's lower bounds are inclusive; a tiny epsilon makes "lift > margin"
  # strict, so a margin of 0 still rejects a constant model.
  lift_threshold = _lower_bound(gate.min_accuracy_lift + 1e-9)
  metric_configs = [
      tfma.MetricConfig(
          class_name='ExampleCount',
          per_slice_thresholds=_overall_only(
              _lower_bound(gate.min_example_count))),
      tfma.MetricConfig(class_name='AUC',
                        per_slice_thresholds=_overall_only(auc_threshold)),
      tfma.MetricConfig(class_name='BinaryAccuracy'),
      tfma.MetricConfig(class_name='AccuracyLiftOverMajority',
                        module=METRICS_MODULE,
                        per_slice_thresholds=_overall_only(lift_threshold)),
      tfma.MetricConfig(class_name='MajorityClassRate', module=METRICS_MODULE),
      tfma.MetricConfig(class_name='Precision'),
      tfma.MetricConfig(class_name='Recall'),
      tfma.MetricConfig(class_name='BinaryCrossentropy'),
      tfma.MetricConfig(class_name='CalibrationPlot'),
      tfma.MetricConfig(class_name='ConfusionMatrixPlot'),
  ]
  slicing_specs = [tfma.SlicingSpec()] + [
      tfma.SlicingSpec(feature_keys=[key]) for key in spec.slice_features]
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(
          signature_name='serving_default',
          label_key=spec.transformed_label_key,
          preprocessing_function_names=['transform_features'])],
      metrics_specs=[tfma.MetricsSpec(metrics=metric_configs)],
      slicing_specs=slicing_specs)
