"""The custom TFMA metrics behind the blessing gate."""

import math

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs

from models import metrics


@pytest.mark.parametrize('counts', [
    {0: 775, 1: 225},          # the taxi balance
    {0: 10, 1: 90},
    {0: 50, 1: 30, 2: 20},     # three classes
])
def test_constant_models_have_no_lift(counts):
  total = sum(counts.values())
  for constant in counts:  # Always answering one class.
    rates = metrics.classification_rates(counts[constant], total, counts, 0.95)
    assert rates[metrics.ACCURACY_LIFT_NAME] <= 1e-12
    assert rates[metrics.LIFT_LOWER_BOUND_NAME] < 0


def test_lift_and_its_lower_bound():
  rates = metrics.classification_rates(900, 1000, {0: 775, 1: 225}, 0.95)
  assert rates[metrics.MAJORITY_RATE_NAME] == pytest.approx(0.775)
  assert rates[metrics.ACCURACY_LIFT_NAME] == pytest.approx(0.125)
  margin = 1.6449 * math.sqrt(0.775 * 0.225 / 1000)
  assert rates[metrics.LIFT_LOWER_BOUND_NAME] == pytest.approx(
      0.125 - margin, abs=1e-4)


def test_small_test_split_needs_a_clear_signal():
  # 34 rows, 60% majority: perfect answers pass, two lucky extra hits don't.
  counts = {0: 20, 1: 14}
  perfect = metrics.classification_rates(34, 34, counts, 0.95)
  lucky = metrics.classification_rates(22, 34, counts, 0.95)
  assert perfect[metrics.LIFT_LOWER_BOUND_NAME] > 0.2
  assert lucky[metrics.ACCURACY_LIFT_NAME] > 0
  assert lucky[metrics.LIFT_LOWER_BOUND_NAME] < 0


def test_empty_input_is_nan_not_a_pass():
  rates = metrics.classification_rates(0, 0, {}, 0.95)
  assert math.isnan(rates[metrics.LIFT_LOWER_BOUND_NAME])
  scores = metrics.regression_scores(np.array([]), np.array([]), 0.95)
  assert math.isnan(scores[metrics.R_SQUARED_LOWER_BOUND_NAME])


def test_constant_regression_has_no_skill():
  rng = np.random.default_rng(0)
  y = rng.normal(50, 10, size=400)
  for constant in (y.mean(), 40.0, 60.0):
    scores = metrics.regression_scores(y, np.full_like(y, constant), 0.95)
    assert scores[metrics.R_SQUARED_NAME] <= 1e-12
    assert scores[metrics.R_SQUARED_LOWER_BOUND_NAME] <= 1e-12


def test_regression_scores_match_their_definitions():
  rng = np.random.default_rng(1)
  x = rng.normal(size=300)
  y = 3 * x + rng.normal(size=300) + 1e5  # A large offset: no cancellation.
  prediction = 3 * x + 1e5
  scores = metrics.regression_scores(y, prediction, 0.95)
  residual = y - prediction
  assert scores[metrics.R_SQUARED_NAME] == pytest.approx(
      1 - np.mean(residual ** 2) / np.var(y))
  assert scores[metrics.RMSE_NAME] == pytest.approx(
      np.sqrt(np.mean(residual ** 2)))
  assert scores[metrics.MAE_NAME] == pytest.approx(np.mean(np.abs(residual)))
  assert 0.6 < scores[metrics.R_SQUARED_LOWER_BOUND_NAME] < scores[
      metrics.R_SQUARED_NAME]


def test_predicted_class_thresholds_binary_and_argmaxes_multiclass():
  assert metrics.predicted_class(np.array([0.7])) == 1
  assert metrics.predicted_class(np.array([0.5])) == 0
  assert metrics.predicted_class(np.array([0.1, 0.2, 0.7])) == 2


def _evaluate(metric_classes, inputs, confidence=0.95):
  """Runs the metrics through TFMA's own computation on in-memory inputs."""
  eval_config = tfma.EvalConfig(model_specs=[tfma.ModelSpec()])
  computations = []
  for cls in metric_classes:
    computations.extend(cls(confidence=confidence).computations(
        eval_config=eval_config))
  combiners = [c for c in computations
               if isinstance(c, tfma.metrics.MetricComputation)]
  derived = [c for c in computations
             if isinstance(c, tfma.metrics.DerivedMetricComputation)]
  assert len({tuple(c.keys) for c in combiners}) == 1  # One shared pass.
  combiner = combiners[0].combiner
  accumulator = combiner.create_accumulator()
  for label, prediction in inputs:
    accumulator = combiner.add_input(
        accumulator, tfma.metrics.StandardMetricInputs(
            label=np.array([label]), prediction=np.asarray(prediction),
            example_weight=np.array([1.0])))
  merged = combiner.merge_accumulators([accumulator,
                                        combiner.create_accumulator()])
  base = combiner.extract_output(merged)
  results = {}
  for computation in derived:
    results.update({k.name: v for k, v in computation.result(base).items()})
  return results


def test_classification_metrics_through_tfma_multiclass():
  inputs = [(0, [0.8, 0.1, 0.1]), (1, [0.1, 0.8, 0.1]), (2, [0.1, 0.1, 0.8]),
            (0, [0.1, 0.8, 0.1]), (0, [0.6, 0.3, 0.1])]
  results = _evaluate([metrics.Accuracy, metrics.MajorityClassRate,
                       metrics.AccuracyLiftOverMajority], inputs)
  assert results == pytest.approx({'accuracy': 0.8,
                                   'majority_class_rate': 0.6,
                                   'accuracy_lift_over_majority': 0.2})


def test_regression_metrics_through_tfma():
  inputs = [(1.0, [1.5]), (2.0, [2.0]), (3.0, [2.5]), (4.0, [4.0])]
  results = _evaluate([metrics.RSquared, metrics.RootMeanSquaredError,
                       metrics.MeanAbsoluteError], inputs)
  assert results['r_squared'] == pytest.approx(1 - 0.125 / 1.25)
  assert results['mean_absolute_error'] == pytest.approx(0.25)


def test_metrics_are_registered_for_eval_configs():
  """The Evaluator builds them from `class_name` and `module`."""
  config = tfma.MetricConfig(class_name='AccuracyLiftLowerBound',
                             module=metrics.__name__,
                             config='{"confidence": 0.9}')
  metric = metric_specs.metric_instance(config)
  assert metric.name == metrics.LIFT_LOWER_BOUND_NAME
  assert metric.get_config()['confidence'] == 0.9
