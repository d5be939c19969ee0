"""The blessing gate: a constant never passes, a useful model always can.

Two tiers:

* The gate's own EvalConfig (pipeline/definition/evaluation.py), run by
  TFMA itself (`tfma.analyze_raw_data`) on predictions of a constant and of
  an informative model, per slice of a handful of cases: imbalanced (97/3)
  and balanced binary labels, an imbalanced multiclass label, small and
  large test splits. No model is trained, so every class balance and size
  costs seconds.
* End to end, the session's `useless_model_rerun` (tests/conftest.py):
  --drop-all-features on a copy of the blessed, pushed e2e outputs, so the
  model can only learn the base rate: not blessed, the push untouched, and
  the summary says why in one sentence. `task_runs` adds the same on an
  imbalanced binary table and on the multiclass task (tests/task_runs.py).
"""

import tempfile

import numpy as np
import pandas as pd
import pytest
import tensorflow_model_analysis as tfma

from models import features
from models import metrics
from pipeline.definition import config as config_lib
from pipeline.definition import evaluation
from pipeline.inspection import gate_verdict
from tests import pipeline_state
from tests import robustness

CASE = 'case'


def _gate_on_cases(spec, frame):
  """The failed gate metrics of every case, as the Evaluator judges them.

  The gate's metrics and value thresholds, moved from the overall slice to
  each `case` slice; the change thresholds are left out (no baseline).
  """
  specs = evaluation.eval_config(spec, config_lib.GateConfig()).metrics_specs
  for metrics_spec in specs:
    for metric in metrics_spec.metrics:
      for per_slice in metric.per_slice_thresholds:
        per_slice.threshold.ClearField('change_threshold')
        del per_slice.slicing_specs[:]
        per_slice.slicing_specs.add(feature_keys=[CASE])
  eval_config = tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(label_key='label',
                                  prediction_key='prediction')],
      metrics_specs=specs, slicing_specs=[tfma.SlicingSpec(
          feature_keys=[CASE])])
  with tempfile.TemporaryDirectory() as out:
    tfma.analyze_raw_data(frame, eval_config, output_path=out)
    result = tfma.load_validation_result(out)
  failed = {case: set() for case in frame[CASE].unique()}
  for per_slice in result.metric_validations_per_slice:
    [(_, case)] = tfma.slicer.deserialize_slice_key(per_slice.slice_key)
    failed[case] = {f.metric_key.name for f in per_slice.failures}
  return failed


def _binary_case(name, n, rate, informative, rng):
  y = (np.arange(n) < max(1, round(n * rate))).astype(int)
  if informative:
    p = 1 / (1 + np.exp(-(-4.0 + 2.5 * y + rng.normal(size=n))))
  else:
    p = np.full(n, rate)
  return pd.DataFrame({CASE: name, 'label': y, 'prediction': p})


def test_the_binary_gate_refuses_constants_and_blesses_rare_label_models():
  rng = np.random.default_rng(0)
  frame = pd.concat([
      _binary_case('constant_97_3_large', 3000, 0.03, False, rng),
      _binary_case('constant_97_3_small', 40, 0.03, False, rng),
      _binary_case('constant_50_50', 400, 0.5, False, rng),
      _binary_case('informative_97_3', 3000, 0.03, True, rng),
      _binary_case('informative_80_20', 300, 0.2, True, rng),
  ], ignore_index=True)
  spec = features.DatasetSpec(name='t', label_key='y',
                              numeric_features=('x',))
  failed = _gate_on_cases(spec, frame)
  for case in ('constant_97_3_large', 'constant_97_3_small',
               'constant_50_50'):
    assert metrics.AUC_LOWER_BOUND_NAME in failed[case], case
  assert failed['informative_97_3'] == set()
  assert failed['informative_80_20'] == set()


def test_the_multiclass_gate_refuses_constants_on_imbalanced_classes():
  rng = np.random.default_rng(1)
  frames = []
  for name, n, informative in (('constant_large', 3000, False),
                               ('constant_small', 60, False),
                               ('informative', 3000, True)):
    y = rng.choice(3, size=n, p=(0.9, 0.07, 0.03))
    if informative:
      logits = rng.normal(size=(n, 3)) + np.array([3.0, 0.0, -1.0])
      logits[np.arange(n), y] += 1.2
      p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    else:
      p = np.tile([0.9, 0.07, 0.03], (n, 1))
    frames.append(pd.DataFrame({CASE: name, 'label': y,
                                'prediction': list(p)}))
  spec = features.DatasetSpec(name='t', label_key='y', task='multiclass',
                              label_classes=('a', 'b', 'c'),
                              numeric_features=('x',))
  failed = _gate_on_cases(spec, pd.concat(frames, ignore_index=True))
  assert metrics.MACRO_AUC_LOWER_BOUND_NAME in failed['constant_large']
  assert metrics.MACRO_AUC_LOWER_BOUND_NAME in failed['constant_small']
  assert failed['informative'] == set()


def test_the_sentence_says_why_in_plain_words():
  blessed = gate_verdict.sentence(
      True, {'auc': 0.931, 'auc_lower_bound': 0.912, 'auc_diff': 0.004})
  assert blessed == (
      'Blessed: it ranks positives above negatives better than chance (AUC '
      '0.93, at least 0.91 with 95% confidence) and does not fall behind '
      'the last blessed model.')
  refused = gate_verdict.sentence(
      False, {'auc': 0.52, 'auc_lower_bound': 0.4949},
      [gate_verdict.Failure('auc', False, 0.52, 0.9),
       gate_verdict.Failure('auc_lower_bound', False, 0.4949, 0.5 + 1e-9)])
  assert refused == (
      'Not blessed: its AUC lower bound 0.495 is no better than a constant '
      'guess (0.5) and its AUC 0.52 is below the 0.9 the gate asks for.')
  behind = gate_verdict.sentence(
      False, {'macro_auc': 0.9, 'accuracy': 0.8, 'accuracy_diff': -0.03},
      [gate_verdict.Failure('accuracy', True, -0.03, -0.01)])
  assert behind == ('Not blessed: its accuracy is 0.030 below the last '
                    "blessed model's, more than the 0.01 allowed.")
  regression = gate_verdict.sentence(
      True, {'r_squared': 0.52, 'r_squared_lower_bound': 0.41}, (), False,
      0.9)
  assert 'R² 0.52, at least 0.41 with 90% confidence' in regression
  assert 'no earlier blessed model' in regression


@pytest.mark.e2e
def test_useless_model_is_not_blessed(useless_model_rerun):
  latest = robustness.latest_summary(useless_model_rerun.output_dir)
  stdout = useless_model_rerun.rerun.stdout
  assert latest.blessed is False
  assert latest.metrics['auc'] == pytest.approx(0.5, abs=1e-3)
  assert latest.metrics[metrics.AUC_LOWER_BOUND_NAME] <= 0.5
  assert 'auc_lower_bound' in latest.blessing_reason
  assert latest.blessing_sentence.startswith(
      'Not blessed: its AUC lower bound 0.50')
  assert 'Blessing: NOT BLESSED' in stdout
  # One readable line naming the failed metric, its value and threshold...
  line = next(x for x in stdout.splitlines() if 'NOT BLESSED' in x)
  assert 'auc = ' in line and 'threshold >= 0.9' in line
  # ...and the same in plain words on the next.
  assert f'  {latest.blessing_sentence}' in stdout


@pytest.mark.e2e
def test_nothing_pushed_and_previous_push_byte_identical(useless_model_rerun):
  serving_model_dir = useless_model_rerun.output_dir / 'serving_model'
  latest = robustness.latest_summary(useless_model_rerun.output_dir)
  assert latest.pushed_model is None
  assert (pipeline_state.pushed_versions(serving_model_dir) ==
          useless_model_rerun.versions_before)
  assert (pipeline_state.tree_digest(serving_model_dir) ==
          useless_model_rerun.before.pushed)
  assert useless_model_rerun.before.pushed
