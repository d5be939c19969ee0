"""The custom TFMA metrics behind the blessing gate, on numpy fixtures.

The gate's classification rule is "the AUC's lower bound exceeds 0.5"
(models/metrics.py). These tests pin its three promises: a constant model
never passes, at any size or class balance; an informative model on a 97/3
label passes; and the standard errors are the textbook ones.
"""

import math

import numpy as np
import pytest
from sklearn import metrics as sk_metrics
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs

from models import metrics

STRICT = metrics.CHANCE_AUC + 1e-9  # evaluation.STRICT_EPSILON above 0.5.
SIZES = (10, 34, 200, 5000, 200_000)
POSITIVE_RATES = (0.03, 0.2, 0.5, 0.9)


def _labels(n, rate):
  """n labels with round(n * rate) positives (at least one of each)."""
  positives = min(max(1, round(n * rate)), n - 1)
  return np.r_[np.ones(positives, int), np.zeros(n - positives, int)]


@pytest.mark.parametrize('n', SIZES)
@pytest.mark.parametrize('rate', POSITIVE_RATES)
def test_a_constant_binary_model_never_passes(n, rate):
  y = _labels(n, rate)
  for constant in (0.0, 0.03, rate, 0.5, 0.97, 1.0):
    scores = metrics.classification_scores(y, np.full(n, constant), 0.95)
    assert scores[metrics.AUC_LOWER_BOUND_NAME] == 0.5
    assert not scores[metrics.AUC_LOWER_BOUND_NAME] > STRICT
    # The best constant for log loss is the rows' own base rate: skill 0.
    assert scores[metrics.LOG_LOSS_SKILL_NAME] <= 1e-12


@pytest.mark.parametrize('n', (10, 200, 5000))
def test_float32_jitter_of_a_constant_is_not_a_ranking(n):
  """Batches can round a constant output differently in the last bit."""
  y = _labels(n, 0.1)
  base = np.float32(0.2251)
  jittered = np.array([np.nextafter(base, np.float32(1)) if i % 3 else base
                       for i in range(n)], dtype=np.float32)
  scores = metrics.auc_scores(y, jittered.astype(np.float64), 0.95)
  assert scores['auc'] == 0.5 and scores['auc_standard_error'] == 0.0


@pytest.mark.parametrize('n', (30, 300, 5000))
@pytest.mark.parametrize('shares', ((0.9, 0.07, 0.03), (0.4, 0.3, 0.3)))
def test_a_constant_multiclass_model_never_passes(n, shares):
  y = np.repeat(np.arange(3), np.maximum(1, np.round(np.array(shares) * n)
                                         ).astype(int))
  for constant in ((0.9, 0.07, 0.03), (1 / 3, 1 / 3, 1 / 3), (0, 0, 1)):
    p = np.tile(constant, (y.size, 1))
    scores = metrics.classification_scores(y, p, 0.95)
    assert scores[metrics.MACRO_AUC_NAME] == 0.5
    assert not scores[metrics.MACRO_AUC_LOWER_BOUND_NAME] > STRICT
    assert scores[metrics.LOG_LOSS_SKILL_NAME] <= 1e-12
    assert scores[metrics.LOG_LOSS_SKILL_LOWER_BOUND_NAME] <= 1e-12


def test_an_informative_model_on_a_97_3_label_passes():
  """What the old gate (accuracy at 0.5 over the majority) refused."""
  rng = np.random.default_rng(7)
  y = (rng.random(3000) < 0.03).astype(int)
  logit = -4.0 + 2.0 * y + rng.normal(size=y.size)
  p = 1 / (1 + np.exp(-logit))
  scores = metrics.classification_scores(y, p, 0.95)
  # No row reaches 0.5 often enough to beat "always no".
  assert scores[metrics.ACCURACY_NAME] <= scores[metrics.MAJORITY_RATE_NAME]
  assert 0.85 < sk_metrics.roc_auc_score(y, p) < 0.95
  assert scores[metrics.AUC_LOWER_BOUND_NAME] > 0.8
  assert scores[metrics.LOG_LOSS_SKILL_LOWER_BOUND_NAME] > 0


def test_an_informative_imbalanced_multiclass_model_passes():
  rng = np.random.default_rng(3)
  y = rng.choice(3, size=1500, p=(0.9, 0.07, 0.03))
  logits = rng.normal(size=(y.size, 3)) + np.array([3.0, 0, -1.0])
  logits[np.arange(y.size), y] += 1.2
  p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
  scores = metrics.classification_scores(y, p, 0.95)
  assert scores[metrics.ACCURACY_NAME] <= scores[
      metrics.MAJORITY_RATE_NAME] + 0.01
  expected = np.mean([sk_metrics.roc_auc_score(y == c, p[:, c])
                      for c in range(3)])
  assert scores[metrics.MACRO_AUC_NAME] == pytest.approx(expected)
  assert scores[metrics.MACRO_AUC_LOWER_BOUND_NAME] > 0.75


def test_auc_and_delong_variance_by_hand():
  # Positives 0.9, 0.8, 0.4; negatives 0.7, 0.3: 5 of 6 pairs right.
  # Placements: positives 1, 1, 1/2; negatives 2/3, 1. DeLong:
  # var(1, 1, .5)/3 + var(2/3, 1)/2 = (1/12)/3 + (1/18)/2 = 1/18.
  # Mann-Whitney without information: (n + 1) / (12 n0 n1) = 6/72 = 1/12.
  ranking = metrics._Ranking(np.array([True, True, True, False, False]),
                             np.array([0.9, 0.8, 0.4, 0.7, 0.3]))
  assert ranking.auc == pytest.approx(5 / 6)
  assert np.sum(ranking.influence ** 2) == pytest.approx(1 / 18)
  assert ranking.null_variance == pytest.approx(1 / 12)
  scores = metrics.auc_scores(np.array([1, 1, 1, 0, 0]),
                              np.array([0.9, 0.8, 0.4, 0.7, 0.3]), 0.95)
  assert scores['auc_standard_error'] == pytest.approx(math.sqrt(1 / 12))
  assert scores[metrics.AUC_LOWER_BOUND_NAME] == pytest.approx(
      5 / 6 - 1.644854 * math.sqrt(1 / 12), abs=1e-5)


def _pairwise_delong(y, s):
  """DeLong's variance the slow way: every (positive, negative) pair."""
  pos, neg = s[y == 1], s[y == 0]
  kernel = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] ==
                                                  neg[None, :])
  v10, v01 = kernel.mean(axis=1), kernel.mean(axis=0)
  return kernel.mean(), v10.var(ddof=1) / pos.size + v01.var(
      ddof=1) / neg.size


def _null_variance(y, s):
  """Mann-Whitney's variance of U / (n0 n1) under no information, ties
  corrected, from the tie counts directly."""
  n1, n0 = int(y.sum()), int(y.size - y.sum())
  n = n0 + n1
  _, ties = np.unique(s, return_counts=True)
  spread = (n + 1) - np.sum(ties ** 3 - ties) / (n * (n - 1))
  return n0 * n1 / 12 * spread / (n0 * n1) ** 2


@pytest.mark.parametrize('seed', range(4))
def test_auc_variances_match_their_definitions_with_ties(seed):
  rng = np.random.default_rng(seed)
  y = (rng.random(300) < 0.2).astype(int)
  s = np.round(rng.normal(size=300) + y, 1)  # Rounded: many ties.
  ranking = metrics._Ranking(y == 1, s)
  auc, delong = _pairwise_delong(y, s)
  assert ranking.auc == pytest.approx(auc)
  assert ranking.auc == pytest.approx(sk_metrics.roc_auc_score(y, s))
  assert np.sum(ranking.influence ** 2) == pytest.approx(delong)
  assert ranking.null_variance == pytest.approx(_null_variance(y, s))


def test_binary_is_the_two_class_macro_auc():
  rng = np.random.default_rng(5)
  y = (rng.random(400) < 0.3).astype(int)
  p = 1 / (1 + np.exp(-(y + rng.normal(size=400))))
  binary = metrics.auc_scores(y, p, 0.95)
  macro = metrics.macro_auc_scores(y, np.c_[1 - p, p], 0.95)
  assert macro[metrics.MACRO_AUC_NAME] == pytest.approx(binary['auc'])
  assert macro[metrics.MACRO_AUC_LOWER_BOUND_NAME] == pytest.approx(
      binary[metrics.AUC_LOWER_BOUND_NAME])


def test_a_small_test_split_needs_a_clear_signal():
  # A perfect ranking of 1 positive among 10 happens by chance 1 time in
  # 10, so it is no evidence at 95%; of 3 among 30, 1 time in 4,060.
  lucky = metrics.auc_scores(_labels(10, 0.1), np.linspace(1, 0, 10), 0.95)
  assert lucky['auc'] == 1.0
  assert lucky[metrics.AUC_LOWER_BOUND_NAME] < 0.5
  clear = metrics.auc_scores(_labels(30, 0.1), np.linspace(1, 0, 30), 0.95)
  assert clear[metrics.AUC_LOWER_BOUND_NAME] > 0.6


def test_a_single_class_has_no_auc_and_empty_input_no_pass():
  scores = metrics.classification_scores(np.zeros(20, int),
                                         np.linspace(0, 1, 20), 0.95)
  assert math.isnan(scores[metrics.AUC_LOWER_BOUND_NAME])
  empty = metrics.classification_scores(np.array([]), np.array([]), 0.95)
  assert all(math.isnan(v) for v in empty.values())
  regression = metrics.regression_scores(np.array([]), np.array([]), 0.95)
  assert math.isnan(regression[metrics.R_SQUARED_LOWER_BOUND_NAME])


def test_log_loss_skill_matches_its_definition():
  y = np.array([1, 0, 0, 1, 0])
  p = np.array([0.8, 0.3, 0.1, 0.6, 0.4])
  loss = -np.mean(np.log(np.where(y == 1, p, 1 - p)))
  prior = -(0.4 * np.log(0.4) + 0.6 * np.log(0.6))
  scores = metrics.log_loss_skill(y, p, 0.95)
  assert scores[metrics.LOG_LOSS_SKILL_NAME] == pytest.approx(
      1 - loss / prior)
  gains = np.log(np.where(y == 1, p, 1 - p)) - np.log(
      np.where(y == 1, 0.4, 0.6))
  assert scores[metrics.LOG_LOSS_SKILL_LOWER_BOUND_NAME] == pytest.approx(
      (gains.mean() - 1.644854 * gains.std(ddof=1) / np.sqrt(5)) / prior,
      abs=1e-5)


def test_a_well_ranked_overconfident_model_passes_on_auc_not_skill():
  """Why the gate is the ranking test (models/metrics.py's docstring)."""
  rng = np.random.default_rng(11)
  y = (rng.random(400) < 0.1).astype(int)
  p = np.clip(1 / (1 + np.exp(-(-3 + 2.5 * y + rng.normal(size=400)) * 8)),
              0, 1)
  scores = metrics.classification_scores(y, p, 0.95)
  assert scores[metrics.AUC_LOWER_BOUND_NAME] > 0.75
  assert scores[metrics.LOG_LOSS_SKILL_NAME] < 0


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


def _evaluate(metric_classes, inputs, confidence=0.95):
  """Runs the metrics through TFMA's own computation on in-memory inputs,
  the rows split over two accumulators and merged, as Beam does."""
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
  halves = []
  for part in (inputs[::2], inputs[1::2]):
    accumulator = combiner.create_accumulator()
    for label, prediction in part:
      accumulator = combiner.add_input(
          accumulator, tfma.metrics.StandardMetricInputs(
              label=np.array([label]), prediction=np.asarray(prediction),
              example_weight=np.array([1.0])))
    halves.append(accumulator)
  base = combiner.extract_output(combiner.merge_accumulators(halves))
  results = {}
  for computation in derived:
    results.update({k.name: v for k, v in computation.result(base).items()})
  return results


def test_classification_metrics_through_tfma_multiclass():
  inputs = [(0, [0.8, 0.1, 0.1]), (1, [0.1, 0.8, 0.1]), (2, [0.1, 0.1, 0.8]),
            (0, [0.1, 0.8, 0.1]), (0, [0.6, 0.3, 0.1])]
  results = _evaluate([metrics.Accuracy, metrics.MajorityClassRate,
                       metrics.MacroAuc, metrics.MacroAucLowerBound], inputs)
  y = np.array([label for label, _ in inputs])
  p = np.array([prediction for _, prediction in inputs])
  expected = metrics.classification_scores(y, p, 0.95)
  assert results == pytest.approx({
      'accuracy': 0.8, 'majority_class_rate': 0.6,
      'macro_auc': expected['macro_auc'],
      'macro_auc_lower_bound': expected['macro_auc_lower_bound']})


def test_classification_metrics_through_tfma_binary():
  rng = np.random.default_rng(2)
  y = (rng.random(200) < 0.25).astype(int)
  p = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(size=200))))
  rows = [(label, [prob]) for label, prob in zip(y, p, strict=True)]
  results = _evaluate([metrics.AucLowerBound, metrics.LogLossSkill,
                       metrics.LogLossSkillLowerBound], rows)
  expected = metrics.classification_scores(y, p, 0.95)
  assert results == pytest.approx({
      name: expected[name] for name in (
          'auc_lower_bound', 'log_loss_skill', 'log_loss_skill_lower_bound')})


def test_regression_metrics_through_tfma():
  inputs = [(1.0, [1.5]), (2.0, [2.0]), (3.0, [2.5]), (4.0, [4.0])]
  results = _evaluate([metrics.RSquared, metrics.RootMeanSquaredError,
                       metrics.MeanAbsoluteError], inputs)
  assert results['r_squared'] == pytest.approx(1 - 0.125 / 1.25)
  assert results['mean_absolute_error'] == pytest.approx(0.25)


def test_metrics_are_registered_for_eval_configs():
  """The Evaluator builds them from `class_name` and `module`."""
  config = tfma.MetricConfig(class_name='AucLowerBound',
                             module=metrics.__name__,
                             config='{"confidence": 0.9}')
  metric = metric_specs.metric_instance(config)
  assert metric.name == metrics.AUC_LOWER_BOUND_NAME
  assert metric.get_config()['confidence'] == 0.9
