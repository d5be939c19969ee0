"""Gradient-boosted trees and the model choice, unit tier.

Real TF Decision Forests training on small in-memory tables of transformed
features (the shapes and dtypes Transform writes): the forest, the Keras
model around it, its export and load in a fresh process, the `--model`
config, the auto choice on the eval split, the trees' tuning and the warm
start that refuses them. The pipeline runs are in tests/test_gbt_e2e.py.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import textwrap

from apache_beam.internal import pickler
import numpy as np
import pytest
from sklearn import metrics as sk_metrics
import tensorflow as tf
import tensorflow_model_analysis as tfma

from models import features
from models import forest_ops
from models import gbt
from models import hyperparameters as hp_lib
from models import model as model_lib
from models import model_choice
from models import model_config
from models import serving_contract
from models import tuning
from models import warm_start
from pipeline import flags as cli
from pipeline.definition import config as config_lib
from pipeline.definition import dataset_config
from pipeline.definition import pipeline as pipeline_lib
from pipeline.inspection import summary as run_summary
from pipeline.tracking import mlflow_log
from tests.conftest import REPO_ROOT

DENSE = ['x_xf', 'noise_xf']
CATEGORICAL = {'kind_xf': 6}
BINARY_SPEC = features.DatasetSpec(name='toy', label_key='y')
SMALL = model_config.GbtConfig(num_trees=40, validation_ratio=0.0)


def _rows(n: int, seed: int):
  """Transformed-like rows: y = 1 when x + (kind == 2) > 0.5."""
  rng = np.random.default_rng(seed)
  batch = {name: rng.normal(size=(n, 1)).astype(np.float32)
           for name in DENSE}
  batch['kind_xf'] = rng.integers(0, 6, size=(n, 1)).astype(np.int64)
  labels = ((batch['x_xf'][:, 0] + (batch['kind_xf'][:, 0] == 2)) > 0.5
            ).astype(np.int64)
  return batch, labels


def _trained(task=features.BINARY, spec=BINARY_SPEC, labels=None,
             drop_all_features=False, config=SMALL):
  batch, y = _rows(600, 0)
  if labels is not None:
    y = labels
  if drop_all_features:  # As gbt.training_dataset does.
    batch = {k: np.zeros_like(v) for k, v in batch.items()}
  forest = gbt.build_forest(config, task, DENSE, CATEGORICAL, seed=0,
                            num_threads=1)
  forest.fit(tf.data.Dataset.from_tensor_slices((batch, y)).batch(256))
  return gbt.serving_model(forest, DENSE, CATEGORICAL, spec,
                           drop_all_features)


@pytest.fixture(scope='module')
def binary_model():
  return _trained()


def test_the_trees_learn_the_rule_and_answer_like_the_dnn(binary_model):
  batch, labels = _rows(400, 1)
  assert sorted(binary_model.input_names) == sorted(DENSE + list(CATEGORICAL))
  p = binary_model(batch, training=False).numpy()
  assert p.shape == (400, 1) and p.dtype == np.float32
  assert np.all((p >= 0) & (p <= 1))
  assert sk_metrics.roc_auc_score(labels, p[:, 0]) > 0.95
  # Categorical ids split as sets: kind 2 alone moves P(positive) up.
  base = {k: np.zeros((2, 1), v.dtype) for k, v in batch.items()}
  base['kind_xf'] = np.array([[2], [3]], np.int64)
  p2, p3 = binary_model(base, training=False).numpy()[:, 0]
  assert p2 > 0.5 > p3


def test_a_class_no_training_row_holds_gets_probability_zero():
  spec = features.DatasetSpec(name='toy', label_key='y', task='multiclass',
                              label_classes=('a', 'b', 'c'))
  _, y = _rows(600, 0)  # Only classes 0 and 1 occur.
  model = _trained(features.MULTICLASS, spec, labels=y)
  scores = model(_rows(50, 2)[0], training=False).numpy()
  assert scores.shape == (50, 3)
  np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
  assert np.all(scores[:, 2] == 0)


def test_drop_all_features_leaves_only_the_base_rate():
  model = _trained(drop_all_features=True)
  p = model(_rows(300, 3)[0], training=False).numpy()[:, 0]
  assert np.ptp(p) < 1e-6
  assert p[0] == pytest.approx(_rows(600, 0)[1].mean(), abs=0.05)


_LOAD = textwrap.dedent('''
    import json, sys
    from models import keras_choice
    keras_choice.select_keras()
    import numpy as np
    import tensorflow as tf
    path = sys.argv[1]
    try:
      tf.saved_model.load(path)
      before = 'loaded'
    except Exception as e:  # The op is unknown without TF-DF.
      before = str(e)
    from models import forest_ops
    assert forest_ops.register()
    serve = tf.saved_model.load(path).signatures['serving_default']
    rows = json.loads(sys.argv[2])
    out = serve(**{k: tf.constant(v, dtype=tf.int64 if k == 'kind_xf'
                                  else tf.float32)
                   for k, v in rows.items()})
    print(json.dumps({'before': before,
                      'p': out['p'].numpy()[:, 0].tolist()}))
''')


def _dnn():
  """The real wide-and-deep DNN on the same inputs (untrained)."""
  return model_lib.build_model(DENSE, CATEGORICAL, model_config.ModelConfig(
      hidden_units=(4,)), model_lib.BINARY_HEAD)


def test_the_mean_model_averages_the_two_families(binary_model):
  dnn = _dnn()
  mean = gbt.mean_model((dnn, binary_model))
  assert sorted(mean.input_names) == sorted(binary_model.input_names)
  batch, _ = _rows(20, 6)
  np.testing.assert_allclose(
      mean(batch, training=False).numpy(),
      (dnn(batch, training=False).numpy() +
       binary_model(batch, training=False).numpy()) / 2, rtol=1e-6)


def test_the_exported_mean_loads_in_a_fresh_process_with_the_ops(
    binary_model, tmp_path):
  """The mean of the DNN and the trees, saved as run_fn saves a model:
  TF-DF's ops must be registered, and then nothing else is needed."""
  model = gbt.mean_model((_dnn(), binary_model))
  batch, _ = _rows(8, 4)

  @tf.function(input_signature=[
      tf.TensorSpec([None, 1], tf.float32, name='x_xf'),
      tf.TensorSpec([None, 1], tf.float32, name='noise_xf'),
      tf.TensorSpec([None, 1], tf.int64, name='kind_xf')])
  def serve(x_xf, noise_xf, kind_xf):
    return {'p': model({'x_xf': x_xf, 'noise_xf': noise_xf,
                        'kind_xf': kind_xf})}

  path = tmp_path / 'mean'
  model.save(str(path), save_format='tf', save_traces=False,
             signatures={'serving_default': serve})
  result = subprocess.run(
      [sys.executable, '-c', _LOAD, str(path),
       json.dumps({k: v.tolist() for k, v in batch.items()})],
      capture_output=True, text=True, cwd=str(REPO_ROOT), timeout=300,
      check=True)
  answer = json.loads(result.stdout.strip().splitlines()[-1])
  # Without TF-DF's ops the load fails on the first of them it meets
  # (which one depends on the graph's order).
  assert "Op type not registered 'SimpleML" in answer['before']
  np.testing.assert_allclose(
      answer['p'], model(batch, training=False).numpy()[:, 0], rtol=1e-5)


def test_register_is_idempotent_and_reports_tfdf():
  assert forest_ops.register() and forest_ops.register()


# --- The config: model: and --model. -------------------------------------


def test_model_config_families_and_old_dicts():
  assert model_config.ModelConfig().family == model_config.AUTO
  with pytest.raises(ValueError, match='dnn, gbt, auto'):
    model_config.ModelConfig(family='forest')
  # A dict written before the families is a DNN's.
  old = model_config.ModelConfig.from_dict({'hidden_units': [8]})
  assert old.family == model_config.DNN and old.trains_dnn
  assert not old.trains_gbt
  config = model_config.ModelConfig(
      family='gbt', gbt=model_config.GbtConfig(num_trees=7))
  assert model_config.ModelConfig.from_dict(config.to_dict()) == config
  with pytest.raises(ValueError, match='shrinkage'):
    model_config.GbtConfig(shrinkage=0)


def _config_file(tmp_path, extra: str) -> pathlib.Path:
  path = tmp_path / 'dataset.yaml'
  path.write_text('name: toy\nlabel: y\ntask: binary\n'
                  'columns: {numeric: [x]}\n' + extra)
  return path


def test_dataset_config_model_key(tmp_path):
  config = dataset_config.load(str(_config_file(tmp_path, 'model: gbt\n')))
  assert config.model == 'gbt'
  assert dataset_config.to_dict(config)['model'] == 'gbt'
  assert dataset_config.load(str(_config_file(tmp_path, ''))).model is None
  with pytest.raises(dataset_config.DatasetConfigError,
                     match=r'dataset\.yaml: `model` must be one of dnn, gbt, '
                     r"auto, got 'trees'"):
    dataset_config.load(str(_config_file(tmp_path, 'model: trees\n')))


def _args(*argv):
  parser = argparse.ArgumentParser()
  cli.add_common_flags(parser)
  return parser.parse_args(list(argv))


def test_the_flag_wins_over_the_config_and_auto_is_the_default(tmp_path):
  config = dataset_config.load(str(_config_file(tmp_path, 'model: dnn\n')))
  assert cli.model_family(_args(), config) == 'dnn'
  assert cli.model_family(_args('--model', 'gbt'), config) == 'gbt'
  plain = dataset_config.load(str(_config_file(tmp_path, '')))
  assert cli.model_family(_args(), plain) == model_config.DEFAULT_FAMILY
  # The committed taxi config names the DNN (docs/own-data.md).
  assert dataset_config.load_named('taxi').model == 'dnn'


def test_warm_start_with_trees_is_refused_naming_the_source(tmp_path):
  config = dataset_config.load(str(_config_file(tmp_path, 'model: gbt\n')))
  with pytest.raises(cli.FlagError, match=r'`model: gbt` in .*dataset\.yaml'
                     r'.*always train from scratch'):
    cli.model_family(_args('--warm-start'), config)
  with pytest.raises(cli.FlagError, match='--model gbt'):
    cli.model_family(_args('--warm-start', '--model', 'gbt'), config)
  # auto warm-starts its DNN.
  assert cli.model_family(_args('--warm-start', '--model', 'auto'),
                          config) == 'auto'


def test_the_trainer_gets_the_family_in_its_custom_config():
  training = config_lib.TrainingConfig(
      model=model_config.ModelConfig(family='gbt'))
  model = training.trainer_custom_config()['model']
  assert model['family'] == 'gbt'
  assert model['gbt']['num_trees'] == model_config.GbtConfig().num_trees


# --- The auto choice. ------------------------------------------------------


class _Constant:
  """A model that answers `value` for every row."""

  def __init__(self, value: float):
    self.value = value

  def __call__(self, inputs, training=False):
    del training
    rows = len(next(iter(inputs.values())))
    return np.full((rows, 1), self.value, np.float32)


def _eval_batches():
  batch, labels = _rows(200, 5)
  return [(batch, labels[:100]), ({k: v[100:] for k, v in batch.items()},
                                  labels[100:])]


def _split_rows(batches):
  return [({k: v[:100] for k, v in b.items()}, y) for b, y in batches]


def test_auto_keeps_the_family_with_the_lower_log_loss(binary_model):
  batches = _split_rows(_eval_batches())
  choice, chosen = model_choice.choose(
      features.BINARY, model_config.AUTO,
      {'dnn': _Constant(0.5), 'gbt': binary_model}, lambda: batches)
  assert choice.chosen == 'gbt' and chosen.model is binary_model
  assert choice.metric == 'log_loss' and not choice.higher_is_better
  assert choice.scores['gbt'] < choice.scores['dnn'] == pytest.approx(
      np.log(2), rel=1e-6)
  assert choice.eval_rows == 200 == len(chosen.predictions)
  assert choice.note().startswith('gbt, chosen by auto: eval log_loss ')
  assert f'(dnn {choice.scores["dnn"]:.4f})' in choice.note()
  assert model_choice.Choice.from_dict(
      json.loads(json.dumps(choice.to_dict()))) == choice


def test_auto_keeps_the_mean_when_it_scores_best():
  """Two opposite constants: each is confidently wrong on one class, their
  mean (0.5) is not; the mean is built only once it is kept."""
  batches = _split_rows(_eval_batches())
  built = []

  def mean_of(models):
    built.append(models)
    return 'the mean'

  low, high = _Constant(0.1), _Constant(0.9)
  choice, chosen = model_choice.choose(
      features.BINARY, model_config.AUTO, {'dnn': low, 'gbt': high},
      lambda: batches, mean_of=mean_of)
  assert choice.chosen == model_choice.ENSEMBLE
  assert built == [(low, high)] and chosen.model == 'the mean'
  assert choice.scores['ensemble'] == pytest.approx(np.log(2), rel=1e-6)
  assert choice.scores['ensemble'] < min(choice.scores['dnn'],
                                         choice.scores['gbt'])
  np.testing.assert_allclose(chosen.predictions, 0.5, rtol=1e-6)
  assert choice.needs_forest_ops
  assert choice.note() == (
      f'ensemble, chosen by auto: eval log_loss {np.log(2):.4f} '
      f'(dnn {choice.scores["dnn"]:.4f}, gbt {choice.scores["gbt"]:.4f})')
  # Not kept: never built.
  built.clear()
  choice, _ = model_choice.choose(
      features.BINARY, model_config.AUTO,
      {'dnn': _Constant(0.5), 'gbt': _Constant(0.9)}, lambda: batches,
      mean_of=mean_of)
  assert choice.chosen == 'dnn' and not built


def test_a_tie_keeps_the_dnn_and_nan_never_wins():
  batches = _split_rows(_eval_batches())
  choice, _ = model_choice.choose(
      features.BINARY, model_config.AUTO,
      {'dnn': _Constant(0.3), 'gbt': _Constant(0.3)}, lambda: batches)
  assert choice.chosen == 'dnn'
  assert model_choice.better(1.0, float('nan'), False)
  assert not model_choice.better(float('nan'), 1.0, False)


def test_a_single_family_is_scored_and_reported_as_configured():
  batches = _split_rows(_eval_batches())
  choice, _ = model_choice.choose(features.BINARY, model_config.GBT,
                                  {'gbt': _Constant(0.3)}, lambda: batches)
  assert choice.chosen == 'gbt' and choice.others == ()
  assert choice.note().startswith('gbt, as configured (gbt): eval log_loss')


def test_the_summary_shows_the_choice():
  choice = model_choice.Choice(
      requested='auto', chosen='gbt', metric='log_loss',
      higher_is_better=False, scores={'dnn': 0.35, 'gbt': 0.3})
  info = {'replicas_in_sync': 2, 'devices': ['cpu:0', 'cpu:1'],
          'global_batch_size': 256, model_choice.KEY: choice.to_dict(),
          'gbt': {'trees': 68, 'seconds': 2.5, 'threads': 2}}
  summary = run_summary.RunSummary(run_id='r', components=[],
                                   training_info=info)
  text = run_summary.format_summary(summary)
  assert 'Training: gradient-boosted trees: 68 trees in 2.5 s (2 threads)' in (
      text)
  assert ('  model: gbt, chosen by auto: eval log_loss 0.3000 '
          '(dnn 0.3500)') in text
  # MLflow: the family kept, and each family's eval score.
  assert mlflow_log.trained_params(summary)['trained.model'] == 'gbt'
  metrics = mlflow_log.metrics_of(summary)
  assert (metrics['eval_log_loss.dnn'], metrics['eval_log_loss.gbt']) == (
      0.35, 0.3)


# --- Tuning the trees. -----------------------------------------------------


def _tuning_data() -> tuning.GbtTrialData:
  train_rows, eval_rows = _rows(400, 0), _rows(200, 1)
  return tuning.GbtTrialData(
      DENSE, CATEGORICAL, BINARY_SPEC,
      lambda: tf.data.Dataset.from_tensor_slices(train_rows).batch(256),
      lambda: tf.data.Dataset.from_tensor_slices(eval_rows).batch(64))


def test_tuning_the_trees_starts_with_their_defaults(tmp_path):
  model = model_config.ModelConfig(family='gbt', gbt=SMALL)
  tuner = tuning.build_gbt_tuner(
      _tuning_data(), model, 128, max_trials=2,
      deadline=tuning.Deadline(1e6), seed=0, directory=str(tmp_path))
  tuner.search(verbose=0)
  record = tuner.search_record()
  first, second = record.trials
  assert first.is_defaults and first.values == hp_lib.gbt_default_values(
      model)
  assert set(second.values) == set(hp_lib.GBT_NAMES)
  assert [t.status for t in record.trials] == [hp_lib.COMPLETED] * 2
  assert record.metric == 'auc' and first.score > 0.9
  assert 0 < first.steps <= SMALL.num_trees  # Trees grown.
  tuned, _ = hp_lib.apply(second.values, model, 128)
  assert tuned.gbt.num_trees == second.values['num_trees']
  assert tuned.family == 'gbt'


def test_a_trees_trial_past_the_deadline_is_stopped(tmp_path):
  model = model_config.ModelConfig(family='gbt', gbt=SMALL)
  now = [0.0]
  deadline = tuning.Deadline(10.0, clock=lambda: now[0])
  tuner = tuning.build_gbt_tuner(
      _tuning_data(), model, 128, max_trials=3, deadline=deadline, seed=0,
      directory=str(tmp_path))
  original = tuner.data.train

  def train_then_expire():
    now[0] = 11.0  # The budget runs out while the trial trains.
    return original()

  tuner.data = tuning.GbtTrialData(DENSE, CATEGORICAL, BINARY_SPEC,
                                   train_then_expire, tuner.data.eval)
  tuner.search(verbose=0)
  record = tuner.search_record()
  assert [t.status for t in record.trials] == [hp_lib.STOPPED]
  assert record.trials[0].message.startswith('stopped at the time budget')
  assert record.stop_reason == hp_lib.STOP_TIME


def test_apply_refuses_unknown_and_bad_tree_settings():
  with pytest.raises(ValueError, match='Unknown tuned settings'):
    hp_lib.apply({'trees': 3}, model_config.ModelConfig(), 128)
  with pytest.raises(ValueError, match='subsample'):
    hp_lib.apply({'subsample': 1.5}, model_config.ModelConfig(), 128)


# --- Warm start and the trees. ---------------------------------------------


def test_a_dnn_does_not_warm_start_from_trees(tmp_path):
  folder = tmp_path / 'model'
  (folder / serving_contract.ASSETS_EXTRA).mkdir(parents=True)
  pathlib.Path(serving_contract.contract_path(str(folder))).write_text(
      json.dumps({'model': 'gbt'}))
  assert warm_start.model_family(str(folder)) == 'gbt'
  assert warm_start.model_family(str(tmp_path / 'none')) is None
  source = warm_start.Source(model_uri=str(folder), run_id='r1')
  outcome = warm_start.warm_start(None, source, BINARY_SPEC,
                                  model_config.ModelConfig(), str(tmp_path))
  assert not outcome.warm
  assert outcome.cold_because == (
      'the model blessed in run r1 is gradient-boosted trees '
      "(models/model_choice.py): only a DNN's weights seed a DNN")


def test_background_training_raises_the_threads_error():
  forest = gbt.build_forest(SMALL, features.BINARY, DENSE, CATEGORICAL,
                            seed=0, num_threads=1)
  forest.compile()
  # Labels the trees cannot use: the error surfaces from result().
  broken = tf.data.Dataset.from_tensor_slices(
      ({'x_xf': np.zeros((4, 1), np.float32)}, np.zeros(4, np.int64))
  ).batch(4)
  background = gbt.Background(forest, broken, lambda f: None)
  with pytest.raises(Exception, match='noise_xf'):  # TF-DF's error type.
    background.result()


def test_the_evaluators_loader_registers_the_ops_in_any_process(
    binary_model, tmp_path):
  """TFX's Evaluator calls `custom_eval_shared_model` (module_path
  models.forest_ops); TFMA pickles the loader to its Beam workers, where
  the wrapper registers the ops before it loads."""
  assert pipeline_lib.EVALUATOR_MODULE == forest_ops.__name__
  path = tmp_path / 'trees'
  binary_model.save(str(path), save_format='tf', save_traces=False)
  eval_config = tfma.EvalConfig(model_specs=[tfma.ModelSpec(
      name='candidate', model_type='tf_generic')])
  shared = forest_ops.custom_eval_shared_model(
      eval_saved_model_path=str(path), model_name='candidate',
      eval_config=eval_config, add_metrics_callbacks=None)
  construct = shared.model_loader.construct_fn
  assert isinstance(construct, forest_ops.WithForestOps)
  revived = pickler.loads(pickler.dumps(construct))
  assert isinstance(revived, forest_ops.WithForestOps)
  assert revived() is not None  # Loads the trees' SavedModel.
