"""A rare label end to end: blessed, a threshold below 0.5, constants refused.

`task_runs` (tests/task_runs.py) ran the one zero-config command on a
synthetic churn table with 4.6% positives and gaps in three columns
(`datasets.imbalanced_binary`), then the same with --drop-all-features;
and the multiclass task again with --drop-all-features, on a copy of its
outputs. The old gate, accuracy at 0.5 over the majority class, refused
models like the first; the gate now judges the ranking, and the Trainer
chooses the decision threshold on the eval split.
"""

import json
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow as tf

from models import metrics
from models import serving_contract
from tests import pipeline_state
from tests import task_runs as task_runs_lib

pytestmark = pytest.mark.e2e
IMBALANCED = task_runs_lib.IMBALANCED


def _evaluated(run):
  """The run's pipeline runs that reached the Evaluator, oldest first."""
  return [s for s in pipeline_state.summaries(run.metadata_path,
                                              run.pipeline_name)
          if s.component('Evaluator')]


def _run(task_runs, key):
  run = task_runs[key]
  assert run.first.returncode == 0, run.first.stderr[-3000:]
  return run


def test_a_model_of_a_rare_label_is_blessed(task_runs):
  run = _run(task_runs, IMBALANCED)
  first = _evaluated(run)[0]
  assert first.blessed, first.blessing_reason
  assert first.pushed_model
  assert first.metrics[metrics.MAJORITY_RATE_NAME] > 0.9
  assert first.metrics[metrics.AUC_LOWER_BOUND_NAME] > 0.5
  assert first.blessing_sentence.startswith(
      'Blessed: it ranks positives above negatives better than chance')
  assert first.blessing_sentence in run.first.stdout


def test_its_decision_threshold_is_chosen_on_the_eval_split(task_runs):
  run = _run(task_runs, IMBALANCED)
  first = _evaluated(run)[0]
  decision = first.decision
  assert 0 < decision['threshold'] < 0.5
  assert decision['rule'] == 'best F1 of the positive class on the eval split'
  assert decision['eval_positives'] > 0
  contract = serving_contract.read(first.pushed_model)
  assert contract.decision_threshold == decision['threshold']
  assert contract.decision_rule == decision['rule']
  assert (f"Decision threshold: P(positive) >= {decision['threshold']:.3g}"
          in run.first.stdout)
  page = (run.output_dir / 'report.html').read_text()
  assert 'id="decision-threshold"' in page


def _serve(model_dir: pathlib.Path, tmp_path: pathlib.Path, requests):
  """`serving_default` of a copy of the model alone (hermetic)."""
  copy = tmp_path / 'model'
  shutil.copytree(model_dir, copy)
  serve = tf.saved_model.load(str(copy)).signatures['serving_default']
  return {k: v.numpy() for k, v in serve(
      examples=tf.constant(requests)).items()}


def test_the_threshold_catches_positives_that_one_half_misses(task_runs,
                                                              tmp_path):
  run = _run(task_runs, IMBALANCED)
  first = _evaluated(run)[0]
  examples = pipeline_state.split_examples(run.output_dir / 'pipeline_root',
                                           'test')
  truth = np.array([e.features.feature['churned'].bytes_list.value[0] ==
                    b'yes' for e in examples])
  requests = []
  for example in examples:
    request = tf.train.Example()
    request.CopyFrom(example)
    del request.features.feature['churned']
    requests.append(request.SerializeToString())
  # Every feature is optional in a draft: an example with none scores too.
  requests.append(tf.train.Example().SerializeToString())
  outputs = _serve(pathlib.Path(first.pushed_model), tmp_path, requests)
  probability = outputs['probability'][:, 0]
  assert np.isfinite(probability).all()
  probability = probability[:-1]
  threshold = first.decision['threshold']
  caught = np.sum((probability >= threshold) & truth)
  assert caught > np.sum((probability >= 0.5) & truth)
  assert caught > 0


@pytest.mark.parametrize('task', (IMBALANCED, 'multiclass'))
def test_a_constant_model_is_not_blessed(task_runs, task):
  run = _run(task_runs, task + task_runs_lib.CONSTANT)
  latest = _evaluated(run)[-1]
  assert latest.blessed is False
  assert latest.pushed_model is None
  bound = (metrics.AUC_LOWER_BOUND_NAME if task == IMBALANCED
           else metrics.MACRO_AUC_LOWER_BOUND_NAME)
  assert latest.metrics[bound] <= 0.5
  assert bound in latest.blessing_reason
  assert 'is no better than a constant guess (0.5)' in (
      latest.blessing_sentence)
  assert latest.blessing_sentence in run.first.stdout
  # The model the first run pushed is still the only one.
  pushed = pipeline_state.pushed_versions(run.output_dir / 'serving_model')
  assert len(pushed) == 1
  contract = json.loads(
      (pushed[0] / 'assets.extra' / 'serving_contract.json').read_text())
  assert contract['task'] == ('binary' if task == IMBALANCED
                                   else 'multiclass')
