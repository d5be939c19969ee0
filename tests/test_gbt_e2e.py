"""Gradient-boosted trees end to end: `--model gbt`, and `auto` zero-config.

`gbt_run` runs the committed sample with `--model gbt` on a copy of the
e2e fixture's outputs, as a user switching the family would: ExampleGen to
Transform come from the cache, the Trainer grows the trees (a forest per
template; the better on the eval split grows again on the train and eval
splits), the Evaluator judges them against the blessed DNN (TFMA loads
them through models/forest_ops.py), FeatureAttributions permutes their
inputs. The
trees are then served hermetically, in a fresh process that registers TF
Decision Forests' ops and nothing else, with the Transform output moved
away, as tests/test_contract.py does for the DNN.

`--model auto` is the default of a zero-config run, so the multiclass and
regression runs of tests/task_runs.py trained both families and scored
them and their mean; their choice is checked here.
"""

import json
import math
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn import metrics as sk_metrics
import tensorflow_decision_forests as tfdf

from models import model_choice
from models import serving_contract
from pipeline.definition import dataset_config
from pipeline.inspection import run_model
from serving import model_store
from tests import conftest
from tests import pipeline_state
from tests import robustness

pytestmark = pytest.mark.e2e
SPEC = dataset_config.load_named('taxi').spec
GBT_ARGS = (*conftest.E2E_ARGS, '--model', 'gbt')


@pytest.fixture(scope='module')
def gbt_run(e2e_run, tmp_path_factory):
  """(output dir, the run's result) of `--model gbt` on the e2e outputs."""
  output_dir = robustness.copy_outputs(
      e2e_run.output_dir, tmp_path_factory.mktemp('gbt') / 'outputs')
  result = conftest.run_local_pipeline(output_dir, GBT_ARGS)
  return output_dir, result


def _latest(output_dir: pathlib.Path):
  store = run_model.open_store(str(output_dir / 'metadata.sqlite'))
  return run_model.find_run(store, conftest.PIPELINE_NAME)


def _trainer_model(run) -> pathlib.Path:
  model = run.execution(run_model.TRAINER).output('model')
  return pathlib.Path(model.uri) / 'Format-Serving'


def _exported_rows(model: pathlib.Path) -> int:
  """Rows the forest inside a SavedModel was trained on, read from its
  assets, where TF-DF keeps the YDF model (beside Transform's
  vocabularies)."""
  return tfdf.inspector.make_inspector(
      str(model / 'assets')).dataspec.created_num_rows


def test_the_trainer_grows_trees_and_records_them(gbt_run):
  output_dir, result = gbt_run
  summary = robustness.latest_summary(output_dir)
  states = robustness.executed(summary)
  assert states['Transform'] == 'cached'
  assert states['Trainer'] == 'complete'
  assert states['FeatureAttributions'] == 'complete'
  choice = summary.chosen_model
  assert (choice.requested, choice.chosen) == ('gbt', 'gbt')
  assert list(choice.scores) == ['gbt']
  assert math.isfinite(choice.scores['gbt'])
  trees = summary.training_info['gbt']
  assert 0 < trees['trees'] <= trees['settings']['num_trees']
  # Two templates grew on the train split; the eval split kept the better.
  assert set(trees['templates']) == {'benchmark_rank1@v1', ''}
  assert all(math.isfinite(v) for v in trees['templates'].values())
  assert trees['templates'][trees['template']] == min(
      trees['templates'].values())
  # Then the kept forest grew again on the train and eval splits, as many
  # trees as early stopping kept, and that forest is the exported one.
  root = output_dir / 'pipeline_root'
  train_rows = len(pipeline_state.split_examples(root, 'train'))
  eval_rows = len(pipeline_state.split_examples(root, 'eval'))
  assert trees['rows'] == train_rows
  assert trees['refit']['rows'] == train_rows + eval_rows
  assert trees['refit']['trees'] == trees['trees']
  assert _exported_rows(_trainer_model(_latest(output_dir))) == (
      train_rows + eval_rows)
  assert 'resumed_from_step' not in summary.training_info  # No DNN trained.
  assert 'Training: gradient-boosted trees: ' in result.stdout
  assert f'  model: {choice.note()}' in result.stdout
  # The Evaluator judged the trees against the blessed DNN.
  assert summary.metrics['auc'] > 0.85
  assert 'auc_diff' in summary.metrics


_SERVE = textwrap.dedent('''
    import json, sys
    from models import keras_choice
    keras_choice.select_keras()
    import tensorflow as tf
    path, requests = sys.argv[1], sys.argv[2]
    try:
      tf.saved_model.load(path)
      unregistered = 'loaded'
    except Exception as e:  # The op is unknown without TF-DF.
      unregistered = str(e).splitlines()[0]
    from models import forest_ops
    assert forest_ops.register()
    loaded = tf.saved_model.load(path)
    with open(requests, 'rb') as f:
      rows = [bytes.fromhex(line) for line in f.read().decode().split()]
    answer = loaded.signatures['serving_default'](examples=tf.constant(rows))
    print(json.dumps({
        'unregistered': unregistered,
        'signatures': sorted(loaded.signatures),
        'inputs': sorted(loaded.signatures['serving_default']
                         .structured_input_signature[1]),
        **{k: v.numpy().tolist() for k, v in answer.items()
           if k != 'classes'},
        'classes': sorted({tuple(c.decode() for c in row)
                           for row in answer['classes'].numpy().tolist()}),
    }))
''')


@pytest.fixture(scope='module')
def served(gbt_run, e2e_run, tmp_path_factory):
  """The trees on raw test rows, in a fresh process, Transform hidden."""
  output_dir, _ = gbt_run
  run = _latest(output_dir)
  examples = pipeline_state.split_examples(
      output_dir / 'pipeline_root', 'test')
  labels = np.array([e.features.feature[SPEC.label_key].int64_list.value[0]
                     for e in examples])
  folder = tmp_path_factory.mktemp('served')
  requests = folder / 'requests.hex'
  lines = []
  for example in examples:
    for key in SPEC.serving_excluded_columns:
      if key in example.features.feature:
        del example.features.feature[key]
    lines.append(example.SerializeToString().hex())
  requests.write_text('\n'.join(lines))
  copy = folder / 'model'
  shutil.copytree(_trainer_model(run), copy)
  transform = output_dir / 'pipeline_root' / 'Transform'
  hidden = output_dir / 'pipeline_root' / 'Transform.hidden-by-test'
  transform.rename(hidden)
  try:
    result = subprocess.run(
        [sys.executable, '-c', _SERVE, str(copy), str(requests)],
        capture_output=True, text=True, cwd=str(conftest.REPO_ROOT),
        timeout=600, check=True)
  finally:
    hidden.rename(transform)
  answer = json.loads(result.stdout.strip().splitlines()[-1])
  return robustness.latest_summary(output_dir), labels, answer, copy


def test_the_trees_need_tfdfs_ops_and_nothing_else(served):
  _, _, answer, copy = served
  # Without TF-DF the load fails on the first of its ops it meets (which
  # one depends on the graph's order).
  assert "Op type not registered 'SimpleML" in answer['unregistered']
  assert answer['signatures'] == ['serving_default', 'transform_features']
  assert answer['inputs'] == ['examples']
  assert serving_contract.read(str(copy)).model == 'gbt'


def test_served_trees_match_the_evaluator(served):
  summary, labels, answer, _ = served
  probability = np.array(answer['probability'])[:, 0]
  assert sk_metrics.roc_auc_score(labels, probability) == pytest.approx(
      summary.metrics['auc'], abs=0.005)
  assert len(labels) == int(summary.metrics['example_count'])


def test_served_trees_follow_tf_serving_conventions(served):
  _, labels, answer, _ = served
  scores = np.array(answer['scores'])
  assert answer['classes'] == [['0', '1']]
  assert scores.shape == (len(labels), 2)
  np.testing.assert_allclose(scores[:, 1],
                             np.array(answer['probability'])[:, 0],
                             rtol=1e-6)
  np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-6)


def test_the_rest_servers_loader_serves_the_trees(gbt_run):
  """serving/model_store.py: the REST server's, batch predictions' and the
  monitor's loader."""
  output_dir, _ = gbt_run
  folder = _trainer_model(_latest(output_dir))
  loaded = model_store.load(str(folder), 1)
  assert loaded.contract.model == 'gbt'
  assert loaded.contract.candidates.keys() == {'gbt'}
  examples = pipeline_state.split_examples(output_dir / 'pipeline_root',
                                           'test')[:5]
  for example in examples:
    for key in SPEC.serving_excluded_columns:
      if key in example.features.feature:
        del example.features.feature[key]
  answer = loaded.predict([e.SerializeToString() for e in examples])
  assert answer['probability'].shape == (5, 1)
  assert answer['scores'].shape == (5, 2)
  assert np.all((answer['probability'] >= 0) & (answer['probability'] <= 1))


# --- --model auto, zero-config (tests/task_runs.py). -----------------------


@pytest.mark.parametrize('task', ('multiclass', 'regression'))
def test_auto_trains_both_and_keeps_the_better_on_the_eval_split(
    task_runs, task):
  run = task_runs[task]
  assert run.first.returncode == 0, run.first.stderr[-3000:]
  first = [s for s in pipeline_state.summaries(run.metadata_path,
                                               run.pipeline_name)
           if s.component('Evaluator')][0]
  choice = first.chosen_model
  assert choice.requested == 'auto'
  assert list(choice.scores) == ['dnn', 'gbt', 'ensemble']
  assert all(math.isfinite(v) for v in choice.scores.values())
  assert choice.metric == ('root_mean_squared_error' if task == 'regression'
                           else 'log_loss')
  # The best eval score; a tie keeps the earlier (simpler) candidate.
  order = list(choice.scores)
  best = min(order, key=lambda f: (choice.scores[f], order.index(f)))
  assert choice.chosen == best
  contract = serving_contract.read(first.pushed_model)
  assert contract.model == choice.chosen
  assert contract.candidates == pytest.approx(choice.scores)
  assert f'  model: {choice.note()}' in run.first.stdout
  assert model_choice.of_training_info(first.training_info) == choice
