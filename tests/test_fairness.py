"""Fairness: the indicators the Evaluator computes, and the slice gaps.

The fairness indicators of the EvalConfig run through TFMA's own metric
computations on hand-made rows, and must equal the rates counted by hand.
The gap between the best and the worst slice is checked on hand-made slice
metrics: tiny and one-class slices never define the best or the worst, the
direction of each metric is respected, and the fairness view of the report
groups and orders the slices.
"""

import math

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs

from models import features
from pipeline.definition import config as config_lib
from pipeline.definition import evaluation
from pipeline.inspection import analysis
from pipeline.inspection import slice_gaps

FPR = slice_gaps.FALSE_POSITIVE_RATE
FNR = slice_gaps.FALSE_NEGATIVE_RATE


# --- The fairness indicators of the EvalConfig -------------------------------


def _spec(task, **kwargs):
  return features.DatasetSpec(name='t', label_key='y', task=task,
                              numeric_features=('x',), slice_features=('g',),
                              **kwargs)


def _fairness_configs(config):
  return [(spec, metric) for spec in config.metrics_specs
          for metric in spec.metrics
          if evaluation.FAIRNESS_PREFIX in metric.config]


def _run_tfma(metric_configs, rows, binarize=None):
  """TFMA's computations of these metric configs over (label, prediction)
  rows, in memory: every combiner, then the derived metrics in order."""
  eval_config = tfma.EvalConfig(model_specs=[tfma.ModelSpec()])
  specs = [tfma.MetricsSpec(metrics=metric_configs, binarize=binarize)]
  computations = metric_specs.to_computations(specs, eval_config=eval_config)
  results = {}
  # Metrics share computations (a derived one may even reuse its
  # combiner's key); TFMA runs each once.
  done, derived = set(), set()
  for computation in computations:
    if (isinstance(computation, tfma.metrics.MetricComputation) and
        tuple(computation.keys) not in done):
      done.add(tuple(computation.keys))
      combiner = computation.combiner
      combiner.setup()
      accumulator = combiner.create_accumulator()
      for label, prediction in rows:
        accumulator = combiner.add_input(
            accumulator, tfma.metrics.StandardMetricInputs(
                label=np.array([label]), prediction=np.asarray(prediction),
                example_weight=np.array([1.0])))
      results.update(combiner.extract_output(accumulator))
  for computation in computations:
    if (isinstance(computation, tfma.metrics.DerivedMetricComputation) and
        tuple(computation.keys) not in derived):
      derived.add(tuple(computation.keys))
      results.update(computation.result(results))
  named = {}
  for key, value in results.items():
    if key.name.startswith(evaluation.FAIRNESS_PREFIX):
      suffix = (f'[class {key.sub_key.class_id}]' if key.sub_key else '')
      named[key.name + suffix] = value
  return named


def test_binary_fairness_indicators_equal_the_rates_counted_by_hand():
  config = evaluation.eval_config(_spec(features.BINARY),
                                  config_lib.GateConfig())
  pairs = _fairness_configs(config)
  names = {f'{rate}@{t:g}' for t in evaluation.FAIRNESS_THRESHOLDS
           for _, rate in evaluation.FAIRNESS_RATES}
  assert {metric_specs.metric_instance(m).name.split('/')[1]
          for _, m in pairs} == names
  # Reported, never gated.
  assert not any(m.per_slice_thresholds for _, m in pairs)
  rows = [(0, 0.1), (0, 0.6), (1, 0.4), (1, 0.9), (0, 0.3), (1, 0.8),
          (0, 0.7), (1, 0.2)]
  values = _run_tfma([m for _, m in pairs], rows)
  name = evaluation.fairness_metric_name
  # At 0.5: predicted positive are 0.6, 0.9, 0.8, 0.7: 2 of 4 negatives,
  # 2 of 4 positives missed, half of all rows predicted positive.
  assert values[name('false_positive_rate', 0.5)] == 0.5
  assert values[name('false_negative_rate', 0.5)] == 0.5
  assert values[name('positive_rate', 0.5)] == 0.5
  # At 0.25: only 0.1 and 0.2 are negative predictions.
  assert values[name('false_positive_rate', 0.25)] == 0.75
  assert values[name('false_negative_rate', 0.25)] == 0.25
  assert values[name('positive_rate', 0.25)] == 0.75
  assert values[name('false_positive_rate', 0.75)] == 0.0
  assert values[name('false_negative_rate', 0.75)] == 0.5


def test_multiclass_fairness_indicators_are_one_vs_rest_per_class():
  spec = _spec(features.MULTICLASS, label_classes=('a', 'b', 'c'))
  config = evaluation.eval_config(spec, config_lib.GateConfig())
  pairs = _fairness_configs(config)
  assert pairs and all(s.binarize.class_ids.values == [0, 1, 2]
                       for s, _ in pairs)
  rows = [(0, [0.8, 0.1, 0.1]), (1, [0.6, 0.3, 0.1]), (2, [0.1, 0.1, 0.8]),
          (0, [0.2, 0.7, 0.1])]
  values = _run_tfma([m for _, m in pairs], rows,
                     binarize=pairs[0][0].binarize)
  fpr = evaluation.fairness_metric_name('false_positive_rate', 0.5)
  fnr = evaluation.fairness_metric_name('false_negative_rate', 0.5)
  # Class 0: scored above 0.5 on rows 0 and 1; row 1 is not class 0 (1 of
  # 2 negatives), row 3 is class 0 but scored 0.2 (1 of 2 missed).
  assert values[f'{fpr}[class 0]'] == 0.5
  assert values[f'{fnr}[class 0]'] == 0.5
  assert values[f'{fnr}[class 1]'] == 1.0
  assert values[f'{fpr}[class 2]'] == 0.0


def test_regression_has_no_fairness_indicators():
  config = evaluation.eval_config(_spec(features.REGRESSION),
                                  config_lib.GateConfig())
  assert not _fairness_configs(config)


# --- Slice gaps ---------------------------------------------------------------


def _slice(auc, count, majority=0.7, skill=0.05, fpr=0.1, fnr=0.2):
  return {'auc': auc, 'example_count': count, 'majority_class_rate': majority,
          'log_loss_skill': skill, FPR: fpr, FNR: fnr}


OVERALL = {'auc': 0.9, 'log_loss_skill': 0.06, FPR: 0.1,
           FNR: 0.2, 'example_count': 500}


def test_tiny_and_one_class_slices_never_define_the_worst():
  by_slice = {
      'payment_type=Cash': _slice(0.95, 200, skill=0.0),
      'payment_type=Credit Card': _slice(0.80, 120, skill=0.12),
      # 3 rows with an awful AUC: noise, not the worst slice.
      'payment_type=Dispute': _slice(0.10, 3, skill=-0.6),
      # One class only: TFMA reports AUC 0; it must not count.
      'payment_type=No Charge': _slice(0.0, 40, majority=1.0, fpr=math.nan),
      # Big enough, but 2 rows of its rarer class: no AUC, no skill.
      'payment_type=Mobile': _slice(0.40, 50, majority=0.96, skill=-0.2),
  }
  gaps = {g.metric: g for g in slice_gaps.slice_gaps(
      ['payment_type'], OVERALL, by_slice)}
  auc = gaps['auc']
  assert (auc.best.name, auc.worst.name) == ('payment_type=Cash',
                                             'payment_type=Credit Card')
  assert auc.gap == pytest.approx(0.15)
  assert (auc.compared, auc.left_out) == (2, 3)
  assert auc.best.count == 200
  skill = gaps['log_loss_skill']
  # The log-loss skill needs both classes too: Mobile is left out.
  assert skill.worst.name == 'payment_type=Cash'
  assert skill.best.name == 'payment_type=Credit Card'
  assert skill.gap == pytest.approx(0.12)
  assert (skill.compared, skill.left_out) == (2, 3)
  # The multiclass gaps compare accuracy with no class rule.
  accuracy = slice_gaps.slice_gap(
      'payment_type', slice_gaps.MULTICLASS_GAPS[0],
      {name: {**values, 'accuracy': values['log_loss_skill']}
       for name, values in by_slice.items()})
  assert accuracy.worst.name == 'payment_type=Mobile'
  assert (accuracy.compared, accuracy.left_out) == (4, 1)


def test_error_rates_are_better_when_lower():
  by_slice = {'hour=1': _slice(0.9, 60, fpr=0.05, fnr=0.3),
              'hour=2': _slice(0.9, 60, fpr=0.25, fnr=0.1),
              'hour=3': _slice(0.9, 60, fpr=0.15, fnr=0.2)}
  gaps = {g.metric: g for g in slice_gaps.slice_gaps(['hour'], OVERALL,
                                                     by_slice)}
  assert gaps[FPR].direction == slice_gaps.LOWER
  assert (gaps[FPR].best.name, gaps[FPR].worst.name) == ('hour=1', 'hour=2')
  assert (gaps[FNR].best.name, gaps[FNR].worst.name) == ('hour=2', 'hour=1')
  assert gaps[FPR].gap == pytest.approx(0.2)
  # Equal AUCs: a gap of 0, the larger slice... all the same size: by name.
  assert gaps['auc'].gap == 0.0


def test_fewer_than_two_big_slices_give_no_gap_and_crosses_are_ignored():
  by_slice = {'hour=1': _slice(0.9, 60), 'hour=2': _slice(0.5, 29),
              'hour=1, company=Acme': _slice(0.1, 500)}
  gap = slice_gaps.slice_gap('hour', slice_gaps.BINARY_GAPS[0], by_slice)
  assert gap.gap is None and gap.best is None
  assert (gap.compared, gap.left_out) == (1, 1)
  # A lower minimum lets the 29-row slice in.
  gap = slice_gaps.slice_gap('hour', slice_gaps.BINARY_GAPS[0], by_slice,
                             min_examples=20)
  assert gap.gap == pytest.approx(0.4)


def test_the_metrics_follow_the_task():
  assert [m.name for m in slice_gaps.gap_metrics({'auc': 0.9})] == [
      'auc', 'log_loss_skill', FPR, FNR]
  assert [m.name for m in slice_gaps.gap_metrics({'accuracy': 0.9})] == [
      'accuracy', 'macro_auc', 'log_loss_skill']
  assert [m.name for m in slice_gaps.gap_metrics(
      {'r_squared': 0.5, 'mean_absolute_error': 3.0})] == [
          'r_squared', 'mean_absolute_error']
  by_slice = {'g=a': {'r_squared': 0.6, 'mean_absolute_error': 2.0,
                      'example_count': 40},
              'g=b': {'r_squared': 0.2, 'mean_absolute_error': 5.0,
                      'example_count': 40}}
  gaps = slice_gaps.slice_gaps(['g'], {'r_squared': 0.5,
                                       'mean_absolute_error': 3.0}, by_slice)
  assert [(g.metric, g.best.name, g.gap) for g in gaps] == [
      ('r_squared', 'g=a', pytest.approx(0.4)),
      ('mean_absolute_error', 'g=a', pytest.approx(3.0))]


def test_largest_gap_is_the_primary_metrics_largest():
  by_slice = {'a=1': _slice(0.9, 50), 'a=2': _slice(0.8, 50),
              'b=1': _slice(0.95, 50), 'b=2': _slice(0.6, 50),
              'b=3': _slice(0.7, 50)}
  gaps = slice_gaps.slice_gaps(['a', 'b'], OVERALL, by_slice)
  largest = slice_gaps.largest_gap(gaps)
  assert (largest.feature, largest.metric) == ('b', 'auc')
  assert (largest.best.name, largest.worst.name) == ('b=1', 'b=2')
  assert slice_gaps.largest_gap(gaps, 'no_such_metric') is None


def test_fairness_view_orders_slices_and_marks_the_small_ones():
  by_slice = {'hour=10': _slice(0.9, 60), 'hour=9': _slice(0.8, 10),
              'hour=2': _slice(0.7, 60)}
  view = analysis.fairness_view(['hour'], OVERALL, by_slice)
  [table] = view.tables
  assert [s.name for s in table.slices] == ['hour=2', 'hour=9', 'hour=10']
  assert [s.large_enough for s in table.slices] == [True, False, True]
  assert view.columns == (FNR, FPR)
  assert view.titles == ('FNR @0.5', 'FPR @0.5')
  assert view.largest.gap == pytest.approx(0.2)
  assert analysis.metric_title(
      'fairness_indicators_metrics/positive_rate@0.25[class 2]') == (
          'positive rate @0.25 [class 2]')
