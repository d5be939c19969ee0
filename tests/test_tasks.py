"""Multiclass and regression, end to end, with no code or config written.

Each task ran the one zero-config command on a dataset the repository does
not hold (tests/task_runs.py): drafts written, blessed, pushed. The pushed
model is checked hermetically, as in test_contract.py: its Transform output
is moved away while it serves.
"""

import pathlib
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
import yaml

from models import forest_ops
from pipeline.components import attributions
from pipeline.inspection import run_model
from tests import pipeline_state

pytestmark = pytest.mark.e2e
TASKS = ('multiclass', 'regression')


def _task(task_runs, task):
  run = task_runs[task]
  assert run.first.returncode == 0, run.first.stderr[-3000:]
  return run


def _evaluated(run):
  """The runs that reached the Evaluator; the profiling run did not."""
  return [s for s in pipeline_state.summaries(run.metadata_path,
                                              run.pipeline_name)
          if s.component('Evaluator')]


@pytest.mark.parametrize('task', TASKS)
def test_zero_config_run_writes_and_prints_its_drafts(task_runs, task):
  run = _task(task_runs, task)
  config_path = run.draft_dir / 'dataset.yaml'
  schema_path = run.draft_dir / 'schema.pbtxt'
  assert f'Draft dataset config: {config_path}' in run.first.stdout
  assert f'Draft schema: {schema_path}' in run.first.stdout
  drafted = yaml.safe_load(config_path.read_text())
  assert drafted['label'] == run.data.label
  assert drafted['task'] == task
  if task == 'multiclass':
    assert tuple(drafted['classes']) == run.data.classes
  assert run.data.label not in str(drafted['columns'])
  assert f'name: "{run.data.label}"' in schema_path.read_text()


@pytest.mark.parametrize('task', TASKS)
def test_zero_config_run_is_blessed_and_pushed(task_runs, task):
  run = _task(task_runs, task)
  profile, first = pipeline_state.summaries(run.metadata_path,
                                           run.pipeline_name)[:2]
  # The profiling run ran only what the drafts need; the full run reused it.
  assert sorted(c.component_id for c in profile.components) == [
      'CsvExampleGen', 'SchemaGen', 'StatisticsGen']
  assert first.component('StatisticsGen').state == 'cached'
  assert first.blessed, first.blessing_reason
  assert first.pushed_model
  if task == 'multiclass':
    assert first.metrics['macro_auc_lower_bound'] > 0.5
  else:
    assert first.metrics['r_squared_lower_bound'] > 0
  assert first.blessing_sentence.startswith('Blessed: ')
  assert first.decision is None  # A threshold is for binary models only.


def _serve_hermetically(run, tmp_path):
  """The pushed model, Transform output hidden, on raw test rows."""
  first = _evaluated(run)[0]
  pipeline_root = run.output_dir / 'pipeline_root'
  examples = pipeline_state.split_examples(pipeline_root, 'test')
  label = run.data.label
  requests = []
  for example in examples:
    request = tf.train.Example()
    request.CopyFrom(example)
    del request.features.feature[label]
    requests.append(request.SerializeToString())
  copy = tmp_path / 'model'
  shutil.copytree(pathlib.Path(first.pushed_model), copy)
  transform = pipeline_root / 'Transform'
  hidden = pipeline_root / 'Transform.hidden-by-test'
  transform.rename(hidden)
  try:
    # --model auto (the zero-config default) may have kept the trees.
    forest_ops.register()
    serve = tf.saved_model.load(str(copy)).signatures['serving_default']
    outputs = {k: v.numpy() for k, v in serve(
        examples=tf.constant(requests)).items()}
  finally:
    hidden.rename(transform)
  return first, examples, outputs


def test_multiclass_serves_classes_and_scores(task_runs, tmp_path):
  run = _task(task_runs, 'multiclass')
  first, examples, outputs = _serve_hermetically(run, tmp_path)
  assert set(outputs) == {'classes', 'scores'}
  classes, scores = outputs['classes'], outputs['scores']
  n = len(examples)
  assert classes.shape == scores.shape == (n, len(run.data.classes))
  assert [c.decode() for c in classes[0]] == list(run.data.classes)
  np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
  truth = [e.features.feature[run.data.label].bytes_list.value[0].decode()
           for e in examples]
  answered = [c.decode() for c in classes[np.arange(n), scores.argmax(1)]]
  accuracy = np.mean([a == t for a, t in zip(answered, truth, strict=True)])
  assert accuracy == pytest.approx(first.metrics['accuracy'], abs=1e-6)


def test_regression_serves_outputs(task_runs, tmp_path):
  run = _task(task_runs, 'regression')
  first, examples, outputs = _serve_hermetically(run, tmp_path)
  assert set(outputs) == {'outputs'}
  predicted = outputs['outputs']
  assert predicted.shape == (len(examples), 1)
  truth = np.array([e.features.feature[run.data.label].float_list.value[0]
                    for e in examples])
  residual = truth - predicted[:, 0]
  r_squared = 1 - np.mean(residual ** 2) / np.var(truth)
  assert r_squared == pytest.approx(first.metrics['r_squared'], abs=1e-4)
  rmse = np.sqrt(np.mean(residual ** 2))
  assert rmse == pytest.approx(first.metrics['root_mean_squared_error'],
                               rel=1e-4)


PLOTS = {'multiclass': ['confusion'],
         'regression': ['predicted_vs_actual', 'residuals']}
PRIMARY = {'multiclass': 'accuracy', 'regression': 'r_squared'}


@pytest.mark.parametrize('task', TASKS)
def test_report_shows_plots_fairness_and_attributions(task_runs, task):
  """The report of each task's run: its own plots (TFMA's multiclass
  confusion matrix; predicted vs actual and residuals for regression), the
  fairness section, and the attributions its artifact holds, measured in
  the task's primary metric, equal to the Evaluator's on the same rows."""
  run = _task(task_runs, task)
  latest = run_model.find_run(run_model.open_store(run.metadata_path),
                              run.pipeline_name)
  first = _evaluated(run)[0]
  page = (run.output_dir / 'report.html').read_text()
  assert re.findall(r'id="plot-([a-z_]+)"', page) == PLOTS[task]
  assert len(re.findall(r'<img src="data:image/png;base64,', page)) == len(
      PLOTS[task])
  assert 'id="fairness"' in page
  result = attributions.read(latest.attributions_uri)
  metric = PRIMARY[task]
  assert result['metric'] == metric
  assert result['baseline'] == pytest.approx(first.metrics[metric],
                                             abs=1e-4)
  assert re.findall(r'id="attribution-([^"]+)"', page) == [
      r['feature'] for r in result['features']]
  if task == 'regression':
    assert len(result['sample']['labels']) == first.metrics['example_count']
