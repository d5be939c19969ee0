"""Gradient-boosted trees and the model choice, unit tier.

Real TF Decision Forests training on small in-memory tables of transformed
features (the shapes and dtypes Transform writes): the forest, the Keras
model around it, its export and load in a fresh process, the `--model`
config and the trees' `gbt:` settings, the two templates chosen on the
eval split, the refit on the train and eval rows, the auto choice on the
eval split, the trees' tuning and the warm start that refuses them. The
pipeline runs are in tests/test_gbt_e2e.py.
"""

import argparse
import dataclasses
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
import tensorflow_decision_forests as tfdf
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
from tests.conftest import SAMPLE_DATA

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


# --- Two templates, chosen on the eval split. -------------------------------


def _trained_as(template: str, model) -> gbt.Trained:
  return gbt.Trained(model=model, forest=None, template=template,
                     info={'trees': 1})


def test_the_template_with_the_better_eval_score_is_kept():
  batches = _split_rows(_eval_batches())
  reads = []

  def eval_dataset():
    reads.append(1)
    return batches

  first = _trained_as('benchmark_rank1@v1', _Constant(0.5))
  second = _trained_as('', _Constant(0.45))
  kept = gbt.keep_best_template([first, second], features.BINARY,
                                eval_dataset)
  assert kept is second and len(reads) == 2
  scores = kept.info['templates']
  assert list(scores) == ['benchmark_rank1@v1', '']
  assert scores['benchmark_rank1@v1'] == pytest.approx(np.log(2), rel=1e-6)
  assert scores[''] < scores['benchmark_rank1@v1']
  assert kept.info['template'] == ''
  assert json.loads(json.dumps(kept.info))['templates'] == scores
  # A tie keeps the configured (first) template; NaN beats nothing.
  tied = gbt.keep_best_template(
      [_trained_as('a', _Constant(0.3)), _trained_as('b', _Constant(0.3))],
      features.BINARY, lambda: batches)
  assert tied.template == 'a'


def test_a_single_template_is_kept_without_reading_the_eval_split():
  def unread():
    raise AssertionError('the eval split was read')

  only = _trained_as('benchmark_rank1@v1', _Constant(0.5))
  kept = gbt.keep_best_template([only], features.BINARY, unread)
  assert kept is only
  assert kept.info == {'trees': 1, 'template': 'benchmark_rank1@v1'}


def _setup(config, spec=BINARY_SPEC, drop_all_features=False):
  return gbt.Setup(spec, config, DENSE, CATEGORICAL, seed=0,
                   drop_all_features=drop_all_features, num_threads=1)


def _dataset(batch, labels):
  return tf.data.Dataset.from_tensor_slices((batch, labels)).batch(256)


def test_two_forests_grow_one_per_template_with_the_same_settings():
  config = dataclasses.replace(SMALL, num_trees=10)
  assert config.templates == ('benchmark_rank1@v1', '')
  grown = gbt.start(_setup(config), _dataset(*_rows(300, 0))).result()
  assert [t.template for t in grown] == ['benchmark_rank1@v1', '']
  for trained in grown:
    assert trained.info['settings'] == dataclasses.asdict(config)
    assert trained.info['trees'] == 10 and trained.info['rows'] == 300
    assert trained.info['seconds'] > 0
  # The templates grow different forests from the same rows and seed.
  batch, _ = _rows(50, 1)
  first, second = (t.model(batch, training=False).numpy() for t in grown)
  assert not np.allclose(first, second)


def test_a_named_or_tuned_template_grows_alone():
  named = model_config.GbtConfig.from_settings({'template': ''})
  assert named.templates == ('',) and named.alternative_template is None
  both = model_config.GbtConfig.from_settings(
      {'template': '', 'alternative_template': 'benchmark_rank1@v1'})
  assert both.templates == ('', 'benchmark_rank1@v1')
  assert model_config.GbtConfig(alternative_template=None).templates == (
      'benchmark_rank1@v1',)
  assert model_config.GbtConfig(template='').templates == ('',)
  # --tune searched `template`'s settings: the alternative does not grow.
  tuned, _ = hp_lib.apply({'num_trees': 50}, model_config.ModelConfig(), 128)
  assert tuned.gbt.templates == ('benchmark_rank1@v1',)
  dnn_tuned, _ = hp_lib.apply({'dropout': 0.1}, model_config.ModelConfig(),
                              128)
  assert dnn_tuned.gbt.templates == ('benchmark_rank1@v1', '')


# --- The refit on the train and eval rows. ----------------------------------


def _noisy_classes(n: int, seed: int):
  """Three classes from x, a third of them relabelled at random: the loss
  on YDF's held-out rows stops improving long before 200 iterations."""
  batch, _ = _rows(n, seed)
  rng = np.random.default_rng(seed + 100)
  classes = np.digitize(batch['x_xf'][:, 0], [-0.5, 0.5]).astype(np.int64)
  noise = rng.random(n) < 0.33
  return batch, np.where(noise, rng.integers(0, 3, n), classes)


MULTICLASS_SPEC = features.DatasetSpec(
    name='toy', label_key='y', task='multiclass',
    label_classes=('low', 'mid', 'high'))


@pytest.fixture(scope='module')
def refit_run():
  """An early-stopped multiclass forest, then its refit on more rows."""
  config = model_config.GbtConfig(num_trees=200, validation_ratio=0.2,
                                  template='', alternative_template=None)
  setup = _setup(config, MULTICLASS_SPEC)
  first, = gbt.start(setup, _dataset(*_noisy_classes(600, 0))).result()
  first = gbt.keep_best_template([first], features.MULTICLASS, list)
  refit = gbt.refit(setup, first, _dataset(*_noisy_classes(900, 1)))
  return first, refit


def test_the_refit_grows_as_many_trees_as_early_stopping_kept(refit_run):
  first, refit = refit_run
  # Early stopping kept fewer than the ceiling; one tree per class and
  # iteration, so the refit asks for a third as many iterations.
  assert 0 < first.info['trees'] < 3 * 200
  assert first.info['trees'] % 3 == 0
  assert gbt.iterations(first.forest) == first.info['trees'] // 3
  # The template is the kept forest's, whatever the config named first.
  refit_config = gbt.refit_config(
      model_config.GbtConfig(num_trees=200, validation_ratio=0.2,
                             template='benchmark_rank1@v1'), first)
  assert (refit_config.num_trees, refit_config.validation_ratio,
          refit_config.template, refit_config.templates) == (
              first.info['trees'] // 3, 0.0, '', ('',))
  assert refit.info['refit']['trees'] == first.info['trees']
  assert gbt.forest_info(refit.forest)['trees'] == first.info['trees']


def test_the_refit_reads_every_row_it_is_given_and_records_it(refit_run):
  first, refit = refit_run
  assert first.info['rows'] == 600
  assert refit.info['refit']['rows'] == 900  # Nothing held out.
  assert refit.info['refit']['seconds'] > 0
  # The first fit's record stays: its trees, rows and template.
  assert {k: refit.info[k] for k in first.info} == first.info
  assert refit.template == first.template == ''
  assert refit.forest is not first.forest
  batch, _ = _rows(40, 2)
  scores = refit.model(batch, training=False).numpy()
  assert scores.shape == (40, 3)
  assert not np.allclose(scores, first.model(batch, training=False).numpy())
  assert json.loads(json.dumps(refit.info)) == refit.info


def test_the_refit_of_a_featureless_model_stays_featureless():
  config = dataclasses.replace(SMALL, num_trees=5, alternative_template=None)
  setup = _setup(config, drop_all_features=True)
  zeros = {k: np.zeros_like(v) for k, v in _rows(300, 0)[0].items()}
  first, = gbt.start(setup, _dataset(zeros, _rows(300, 0)[1])).result()
  more = {k: np.zeros_like(v) for k, v in _rows(400, 1)[0].items()}
  refit = gbt.refit(setup, gbt.keep_best_template([first], 'binary', list),
                    _dataset(more, _rows(400, 1)[1]))
  p = refit.model(_rows(200, 3)[0], training=False).numpy()[:, 0]
  assert np.ptp(p) < 1e-6
  assert p[0] == pytest.approx(_rows(400, 1)[1].mean(), abs=0.05)


def _exported_rows(path: pathlib.Path) -> int:
  """Rows the one forest inside a SavedModel was trained on, read from its
  assets, where TF-DF keeps the YDF model."""
  return tfdf.inspector.make_inspector(
      str(path / 'assets')).dataspec.created_num_rows


def test_the_kept_model_gets_the_refit_trees_and_keeps_its_dnn(
    refit_run, tmp_path):
  first, refit = refit_run
  dnn = model_lib.build_model(DENSE, CATEGORICAL, model_config.ModelConfig(
      hidden_units=(4,)), model_lib.Head('multiclass', num_classes=3))
  models = {'dnn': dnn, 'gbt': first.model}
  gbt_choice = model_choice.Choice(
      requested='gbt', chosen='gbt', metric='log_loss',
      higher_is_better=False, scores={'gbt': 1.0})
  assert model_choice.with_trees(gbt_choice, {'gbt': first.model},
                                 refit.model, gbt.mean_model) is refit.model
  mean_choice = model_choice.Choice(
      requested='auto', chosen='ensemble', metric='log_loss',
      higher_is_better=False, scores={'dnn': 1.0, 'gbt': 1.0,
                                      'ensemble': 0.9})
  gbt.mean_model((dnn, first.model))  # As `choose` builds it.
  mean = model_choice.with_trees(mean_choice, models, refit.model,
                                 gbt.mean_model)
  batch, _ = _rows(20, 6)
  np.testing.assert_allclose(
      mean(batch, training=False).numpy(),
      (dnn(batch, training=False).numpy() +
       refit.model(batch, training=False).numpy()) / 2, rtol=1e-5)
  # Exported, the mean holds the refit forest: the one trained on 900 rows.
  mean.save(str(tmp_path / 'mean'), save_format='tf', save_traces=False)
  assert _exported_rows(tmp_path / 'mean') == 900
  dnn_choice = model_choice.Choice(
      requested='dnn', chosen='dnn', metric='log_loss',
      higher_is_better=False, scores={'dnn': 1.0})
  with pytest.raises(ValueError, match='holds no trees'):
    model_choice.with_trees(dnn_choice, {'dnn': dnn}, refit.model,
                            gbt.mean_model)


# --- The trees' settings in dataset.yaml. -----------------------------------


def test_dataset_config_gbt_settings(tmp_path):
  config = dataset_config.load(str(_config_file(
      tmp_path, "gbt: {refit: false, template: '', num_trees: 50}\n")))
  assert config.gbt == {'refit': False, 'template': '', 'num_trees': 50}
  assert dataset_config.to_dict(config)['gbt'] == config.gbt
  settings = model_config.GbtConfig.from_settings(config.gbt)
  assert (settings.refit, settings.templates, settings.num_trees) == (
      False, ('',), 50)
  assert dataset_config.load(str(_config_file(tmp_path, ''))).gbt == {}
  assert model_config.GbtConfig.from_settings({}) == model_config.GbtConfig()
  for text, message in (
      ('gbt: {trees: 5}\n', r"unknown key\(s\) \['trees'\] in `gbt`"),
      ("gbt: {num_trees: '50'}\n", '`gbt.num_trees` must be an integer'),
      ('gbt: {refit: yes please}\n', '`gbt.refit` must be true or false'),
      ('gbt: {template: 3}\n', '`gbt.template` must be a YDF template'),
      ('gbt: {shrinkage: 2}\n', r'gbt shrinkage must be in \(0, 1\]'),
      ('gbt: [refit]\n', '`gbt` maps')):
    with pytest.raises(dataset_config.DatasetConfigError,
                       match=r'dataset\.yaml: ' + message):
      dataset_config.load(str(_config_file(tmp_path, text)))


def test_the_trainer_gets_the_gbt_settings_of_the_dataset_config(tmp_path):
  config = dataset_config.load(str(_config_file(
      tmp_path, "model: gbt\ngbt: {refit: false, template: ''}\n")))
  pipeline = cli.build_config(
      _args('--data-root', str(SAMPLE_DATA)), pipeline_root=str(tmp_path / 'r'),
      serving_model_dir=str(tmp_path / 's'), dataset=config)
  model = model_config.ModelConfig.from_dict(
      pipeline.training.trainer_custom_config()['model'])
  assert model.family == 'gbt'
  assert (model.gbt.refit, model.gbt.templates) == (False, ('',))
  # The default: two templates, refit.
  plain = cli.build_config(
      _args('--data-root', str(SAMPLE_DATA)), pipeline_root=str(tmp_path / 'r'),
      serving_model_dir=str(tmp_path / 's'),
      dataset=dataset_config.load(str(_config_file(tmp_path, ''))))
  assert plain.training.model.gbt == model_config.GbtConfig()
  assert plain.training.model.gbt.refit


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
  background = gbt.Background({SMALL.template: forest}, broken,
                              lambda template, f: None)
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


def test_the_summary_names_the_template_kept_and_the_refit():
  info = {'trees': 90, 'seconds': 4.0, 'threads': 2,
          'template': '', 'templates': {'benchmark_rank1@v1': 0.31, '': 0.29},
          'refit': {'rows': 1798, 'trees': 90, 'seconds': 1.3}}
  assert run_summary.gbt_note(info) == (
      'gradient-boosted trees: 90 trees in 4.0 s (2 threads); template YDF '
      'defaults kept (eval 0.2900; benchmark_rank1@v1 0.3100); refit on 1798 '
      'train+eval rows: 90 trees in 1.3 s')
