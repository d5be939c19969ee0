"""--tune: the search space, both budgets, failed trials, and what they feed.

The searches run the real KerasTuner loop (`models/tuning.py`) on a tiny
in-memory dataset, with few steps per trial: real Keras training, really
stopped. The time-budget tests use a fake clock (one that ticks at every
reading, or one the test sets), so they assert on trials, steps and the
recorded stop reason, never on wall time.

The documented margin (docs/running.md#tuning---tune): a search ends at the
latest one training batch after its deadline (a trial that finished its
steps before the deadline is still scored: one pass over the eval rows);
a budget shorter than the one-off start (the first model's build, trace
and Keras' autograph conversion) overruns by that start.
"""

import argparse
import ast
import json
import pathlib
import time

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf
from tfx.dsl.components.base import base_executor
from tfx.types import standard_artifacts

from models import features
from models import hyperparameters as hp_lib
from models import model as model_lib
from models import model_config as model_config_lib
from models import tuning
from pipeline import flags as cli
from pipeline.components import budgeted_tuner
from pipeline.definition import config as config_lib
from pipeline.definition import pipeline as pipeline_lib
from pipeline.inspection import report
from pipeline.inspection import tuning as tuning_view
from tests.conftest import SAMPLE_DATA

DENSE = ['x_xf', 'noise_xf']
CATEGORICAL = {'kind_xf': 4}
DEFAULT_MODEL = model_config_lib.ModelConfig()
DEFAULT_BATCH = 128
ROWS = 256


def _rows(seed: int):
  rng = np.random.default_rng(seed)
  batch = {name: rng.normal(size=(ROWS, 1)).astype(np.float32)
           for name in DENSE}
  batch['kind_xf'] = rng.integers(0, 4, size=(ROWS, 1)).astype(np.int64)
  labels = ((batch['x_xf'][:, 0] + (batch['kind_xf'][:, 0] == 2)) > 0.5
            ).astype(np.float32)[:, None]
  return batch, labels


def _data(fail_after=None) -> tuning.TrialData:
  """Binary data with a learnable rule; training may be made to fail.

  Args:
    fail_after: Training data for this many trials, then an error.
  """
  train_rows, eval_rows = _rows(0), _rows(1)
  calls = []

  def train(global_batch: int) -> tf.data.Dataset:
    calls.append(global_batch)
    if fail_after is not None and len(calls) > fail_after:
      raise ValueError(f'no data for trial {len(calls) - 1}')
    return tf.data.Dataset.from_tensor_slices(train_rows).shuffle(
        ROWS, seed=0).repeat().batch(global_batch)

  def evaluate() -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(eval_rows).batch(64)

  return tuning.TrialData(DENSE, CATEGORICAL, model_lib.BINARY_HEAD, train,
                          evaluate)


class TickClock:
  """A clock that advances `tick` seconds at every reading."""

  def __init__(self, tick: float = 1.0):
    self.tick = tick
    self.now = 0.0

  def __call__(self) -> float:
    self.now += self.tick
    return self.now


def _search(tmp_path, *, max_trials=3, steps=5, budget=1e6, clock=None,
            data=None, name='search') -> tuning.BudgetedTuner:
  deadline = tuning.Deadline(budget, clock or time.monotonic)
  tuner = tuning.build_tuner(
      data or _data(), features.BINARY, DEFAULT_MODEL, DEFAULT_BATCH,
      max_trials=max_trials, steps_per_trial=steps, deadline=deadline,
      seed=0, directory=str(tmp_path / name))
  tuner.search(verbose=0)
  return tuner


# --- The search space and the defaults. -----------------------------------


def test_search_space_holds_the_five_settings_with_the_defaults_as_default():
  defaults = hp_lib.default_values(DEFAULT_MODEL, DEFAULT_BATCH)
  assert defaults == {'hidden_units': '64,32', 'dropout': 0.3,
                      'learning_rate': 0.001, 'l2': 1e-4,
                      'per_replica_batch_size': 128}
  space = tuning.search_space(defaults)
  assert [hp.name for hp in space.space] == list(hp_lib.NAMES)
  assert space.values == defaults
  by_name = {hp.name: hp for hp in space.space}
  assert '128,64,32' in by_name['hidden_units'].values
  assert by_name['per_replica_batch_size'].values == [32, 64, 128, 256]
  assert (by_name['learning_rate'].min_value,
          by_name['learning_rate'].max_value) == hp_lib.LEARNING_RATE_RANGE


def test_unusual_defaults_are_added_to_the_space():
  model = model_config_lib.ModelConfig(hidden_units=(100, 50), dropout=0.25,
                                   learning_rate=0.05, l2=0.01)
  defaults = hp_lib.default_values(model, 100)
  space = tuning.search_space(defaults)
  assert space.values == defaults
  by_name = {hp.name: hp for hp in space.space}
  assert '100,50' in by_name['hidden_units'].values
  assert 0.25 in by_name['dropout'].values
  assert 0.01 in by_name['l2'].values
  assert 100 in by_name['per_replica_batch_size'].values
  assert by_name['learning_rate'].max_value == 0.05


def test_the_same_seed_proposes_the_same_trials(tmp_path):
  defaults = hp_lib.default_values(DEFAULT_MODEL, DEFAULT_BATCH)

  def proposals(name):
    oracle = tuning.BudgetedOracle(
        tuning.objective_for(features.BINARY), 4,
        tuning.search_space(defaults), tuning.Deadline(1e6), seed=0)
    oracle._set_project_dir(str(tmp_path), name)
    # One tuner id per trial: each asks for a new one without ending any.
    return [oracle.create_trial(f'tuner{i}').hyperparameters.values
            for i in range(4)]

  first = proposals('a')
  assert first == proposals('b')
  assert first[0] == defaults
  assert len({json.dumps(v, sort_keys=True) for v in first}) == 4


@pytest.fixture(scope='module')
def two_trials(tmp_path_factory) -> tuning.BudgetedTuner:
  """A search that ran its trial budget: 2 trials of 5 steps."""
  return _search(tmp_path_factory.mktemp('two'), max_trials=2, steps=5)


def test_the_defaults_are_the_first_trial_and_the_trial_budget_holds(
    two_trials):
  record = two_trials.search_record()
  assert [t.trial_id for t in record.trials] == ['0', '1']
  first, second = record.trials
  assert first.is_defaults and not second.is_defaults
  assert first.values == record.default_values == hp_lib.default_values(
      DEFAULT_MODEL, DEFAULT_BATCH)
  assert second.values != first.values
  assert [t.status for t in record.trials] == [hp_lib.COMPLETED] * 2
  assert [t.steps for t in record.trials] == [5, 5]
  assert all(0 <= t.score <= 1 for t in record.trials)  # Eval AUC.
  assert record.stop_reason == hp_lib.STOP_TRIALS
  assert (record.metric, record.direction) == ('auc', 'max')
  # Setup (the warm-up included) is the time before the first trial.
  assert 0 < record.setup_seconds <= record.seconds - sum(
      t.seconds for t in record.trials) + 0.01
  best = record.best
  assert best.score == max(t.score for t in record.trials)
  # What TFX's executor writes as best_hyperparameters: the best trial's.
  assert two_trials.get_best_hyperparameters()[0].values == best.values
  assert record.chosen_values == best.values
  assert record.beat_defaults == (best is second)


# --- The time budget. -----------------------------------------------------


def test_a_trial_running_at_the_deadline_is_stopped(tmp_path):
  """Fake time: 1 s per clock reading, and readings after every batch."""
  clock = TickClock(1.0)
  budget = 20.0
  tuner = _search(tmp_path, max_trials=5, steps=10_000, budget=budget,
                  clock=clock)
  record = tuner.search_record()
  [only] = record.trials
  assert only.is_defaults and only.status == hp_lib.STOPPED
  # Training was cut: far fewer steps than asked, at most one per tick.
  assert 1 <= only.steps <= budget
  assert only.score is None
  assert 'stopped at the time budget (20 s)' in only.message
  assert record.stop_reason == hp_lib.STOP_TIME
  assert record.best is None and record.beat_defaults is None
  # Nothing completed: the Trainer falls back to the defaults.
  assert tuner.get_best_hyperparameters()[0].values == record.default_values
  assert 'no trial completed' in record.verdict()
  # Ended within the budget plus the margin: one batch (one tick) and the
  # readings that close the trial and the search (two ticks).
  assert budget <= record.seconds <= budget + 3 * clock.tick


def test_no_trial_starts_that_would_not_fit_in_the_time_left(tmp_path):
  """The oracle refuses a trial when the time left is below the average."""
  now = [0.0]
  oracle = tuning.BudgetedOracle(
      tuning.objective_for(features.BINARY), 10,
      tuning.search_space(hp_lib.default_values(DEFAULT_MODEL,
                                                DEFAULT_BATCH)),
      tuning.Deadline(100.0, lambda: now[0]), seed=0)
  oracle._set_project_dir(str(tmp_path), 'oracle')
  running = keras_tuner.engine.trial.TrialStatus.RUNNING
  assert oracle.create_trial('a').status == running
  oracle.trial_seconds.extend([30.0, 10.0])  # Two trials, 20 s on average.
  now[0] = 79.0  # 21 s left: another fits.
  assert oracle.create_trial('b').status == running
  assert oracle.stop_reason is None
  now[0] = 81.0  # 19 s left: it would not.
  assert oracle.create_trial('c').status == (
      keras_tuner.engine.trial.TrialStatus.STOPPED)
  assert oracle.stop_reason == hp_lib.STOP_TIME
  assert len(oracle.trials) == 2


# --- Failed trials. -------------------------------------------------------


def test_a_failed_trial_is_recorded_and_the_search_goes_on(tmp_path):
  # Trial 1 fails; the search goes on to trial 2.
  data = _data(fail_after=1)
  tuner = _search(tmp_path, max_trials=3, steps=3, data=data)
  record = tuner.search_record()
  assert [t.status for t in record.trials] == [
      hp_lib.COMPLETED, hp_lib.FAILED, hp_lib.FAILED]
  assert record.trials[1].message == 'ValueError: no data for trial 1'
  assert record.trials[1].score is None
  assert record.stop_reason == hp_lib.STOP_TRIALS
  assert not record.all_failed
  assert record.best is record.trials[0]
  assert tuner.get_best_hyperparameters()[0].values == record.default_values


def _executor_outputs(tmp_path):
  best = standard_artifacts.HyperParameters()
  best.uri = str(tmp_path / 'best')
  results = standard_artifacts.TunerResults()
  results.uri = str(tmp_path / 'results')
  for artifact in (best, results):
    tf.io.gfile.makedirs(artifact.uri)
  return {'best_hyperparameters': [best], 'tuner_results': [results]}


def _run_executor(tmp_path, monkeypatch, tuner):
  monkeypatch.setattr(budgeted_tuner.tuner_executor, 'search',
                      lambda *args, **kwargs: tuner)
  outputs = _executor_outputs(tmp_path)
  executor = budgeted_tuner.Executor(base_executor.BaseExecutor.Context(
      tmp_dir=str(tmp_path / 'tmp'), unique_id='1'))
  executor.Do({}, outputs, {})
  return outputs


def test_the_executor_writes_the_best_settings_and_the_record(
    two_trials, tmp_path, monkeypatch):
  tuner = two_trials
  outputs = _run_executor(tmp_path, monkeypatch, tuner)
  best_dir = outputs['best_hyperparameters'][0].uri
  # The Trainer reads the only file in that folder.
  [name] = tf.io.gfile.listdir(best_dir)
  with tf.io.gfile.GFile(f'{best_dir}/{name}') as f:
    best = json.load(f)
  record = tuning_view.read_record(outputs['tuner_results'][0].uri)
  assert record == tuner.search_record()
  assert hp_lib.values_of(best) == record.chosen_values
  assert len(record.trials) == 2


def test_the_tuner_fails_only_when_every_trial_failed(tmp_path, monkeypatch):
  tuner = _search(tmp_path, max_trials=3, steps=3, data=_data(fail_after=0))
  record = tuner.search_record()
  assert record.all_failed and len(record.trials) == 3
  with pytest.raises(budgeted_tuner.AllTrialsFailedError,
                     match=r'All 3 tuning trial\(s\) failed; trial 0 '
                     r'\(hidden_units=64,32 .*no data for trial 0'):
    _run_executor(tmp_path, monkeypatch, tuner)


# --- The Trainer applies the best settings. -------------------------------


def test_run_fn_settings_come_from_the_tuners_best_hyperparameters(tmp_path):
  space = tuning.search_space(hp_lib.default_values(DEFAULT_MODEL,
                                                    DEFAULT_BATCH))
  space.values.update({'hidden_units': '128,64,32', 'dropout': 0.1,
                       'learning_rate': 0.003, 'l2': 0.0,
                       'per_replica_batch_size': 32})
  # What the Trainer gets as fn_args.hyperparameters: the JSON TFX wrote.
  config = json.loads(json.dumps(space.get_config()))
  tuned, batch = hp_lib.apply(hp_lib.values_of(config), DEFAULT_MODEL,
                              DEFAULT_BATCH)
  assert tuned == model_config_lib.ModelConfig(
      hidden_units=(128, 64, 32), dropout=0.1, learning_rate=0.003, l2=0.0)
  assert batch == 32
  model = model_lib.build_model(DENSE, CATEGORICAL, tuned)
  layers = {layer.name: layer for layer in model.layers}
  assert [layers[f'deep_{i}'].units for i in range(3)] == [128, 64, 32]
  assert 'deep_3' not in layers
  assert {layer.rate for layer in model.layers
          if isinstance(layer, tf.keras.layers.Dropout)} == {0.1}
  assert layers['deep_0'].kernel_regularizer is None
  assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.003)
  # Without a Tuner: the configured settings, unchanged.
  assert hp_lib.apply(hp_lib.values_of(None), DEFAULT_MODEL,
                      DEFAULT_BATCH) == (DEFAULT_MODEL, DEFAULT_BATCH)


@pytest.mark.parametrize('values, message', [
    ({'units': '64'}, "Unknown tuned settings ['units']"),
    ({'hidden_units': '64,x'}, 'layer sizes like "64,32"'),
    ({'dropout': 1.0}, 'dropout must be in [0, 1)'),
    ({'learning_rate': 0.0}, 'learning_rate must be > 0'),
    ({'per_replica_batch_size': 0}, 'per_replica_batch_size must be >= 1'),
])
def test_bad_tuned_settings_are_refused_by_name(values, message):
  with pytest.raises(ValueError) as error:
    hp_lib.apply(values, DEFAULT_MODEL, DEFAULT_BATCH)
  assert message in str(error.value)


# --- Config, flags and wiring. --------------------------------------------


def test_tuning_config_validates_and_derives_the_steps_per_trial():
  assert config_lib.TuningConfig().trial_steps(1600) == 400
  assert config_lib.TuningConfig().trial_steps(300) == 100
  assert config_lib.TuningConfig().trial_steps(60) == 60
  assert config_lib.TuningConfig(steps_per_trial=7).trial_steps(300) == 7
  for bad in ({'max_trials': 0}, {'time_budget_s': 0},
              {'time_budget_s': float('inf')}, {'steps_per_trial': 0}):
    with pytest.raises(ValueError, match=next(iter(bad))):
      config_lib.TuningConfig(**bad)


def _parse(argv):
  parser = argparse.ArgumentParser()
  cli.add_common_flags(parser)
  return parser.parse_args(['--data-root', str(SAMPLE_DATA), *argv])


def _config(argv, tmp_path) -> config_lib.PipelineConfig:
  return cli.build_config(_parse(argv),
                          pipeline_root=str(tmp_path / 'root'),
                          serving_model_dir=str(tmp_path / 'serving'))


def test_flags_build_the_tuning_config(tmp_path):
  assert _config([], tmp_path).tuning is None
  assert _config(['--tune'], tmp_path).tuning == config_lib.TuningConfig()
  assert _config(['--tune', '--tune-trials', '2', '--tune-time-budget', '90',
                  '--tune-steps', '50'], tmp_path).tuning == (
                      config_lib.TuningConfig(max_trials=2, time_budget_s=90,
                                              steps_per_trial=50))
  with pytest.raises(cli.FlagError,
                     match='--tune-trials, --tune-steps go with --tune'):
    _config(['--tune-trials', '2', '--tune-steps', '9'], tmp_path)


@pytest.mark.parametrize('flag, value', [('--tune-trials', '0'),
                                         ('--tune-time-budget', '-5'),
                                         ('--tune-time-budget', 'inf'),
                                         ('--tune-steps', 'many')])
def test_bad_tuning_flags_are_refused_by_name(flag, value, capsys):
  with pytest.raises(SystemExit):
    _parse(['--tune', flag, value])
  assert f'argument {flag}: must be a positive' in capsys.readouterr().err


def test_the_tuner_feeds_the_trainer_only_with_tune(tmp_path):
  plain = pipeline_lib.create_pipeline(_config([], tmp_path))
  assert pipeline_lib.TUNER not in [c.id for c in plain.components]
  trainer = next(c for c in plain.components if c.id == 'Trainer')
  assert trainer.inputs.get('hyperparameters') is None

  config = _config(['--tune', '--tune-trials', '3', '--train-steps', '300'],
                   tmp_path)
  tuned = pipeline_lib.create_pipeline(config)
  ids = [c.id for c in tuned.components]
  assert ids.index(pipeline_lib.TUNER) == ids.index(pipeline_lib.TRAINER) - 1
  tuner = tuned.components[ids.index(pipeline_lib.TUNER)]
  trainer = tuned.components[ids.index(pipeline_lib.TRAINER)]
  # TFX's Tuner component, with the executor that keeps the record.
  assert type(tuner).__module__ == 'tfx.components.tuner.component'
  assert tuner.executor_spec.executor_class is budgeted_tuner.Executor
  assert tuner.exec_properties['tuner_fn'] == 'models.tuning.tuner_fn'
  assert json.loads(tuner.exec_properties['train_args'])['num_steps'] == 100
  assert json.loads(tuner.exec_properties['custom_config'])['tuning'] == {
      'max_trials': 3, 'time_budget_s': 600.0}
  # The gates hold back the first training node: the Tuner.
  assert {u.id for u in tuner.upstream_nodes} == {
      'Transform', 'AnomalyGate', 'DriftGate'}
  assert 'AnomalyGate' not in {u.id for u in trainer.upstream_nodes}
  assert trainer.inputs['hyperparameters'].producer_component_id == 'Tuner'
  assert trainer.inputs['hyperparameters'].output_key == (
      'best_hyperparameters')


def test_the_tuners_cache_key_changes_only_with_its_inputs(tmp_path):
  """TFX caches on exec properties and inputs: same flags, same key."""
  def properties(argv):
    pipeline = pipeline_lib.create_pipeline(_config(argv, tmp_path))
    tuner = next(c for c in pipeline.components
                 if c.id == pipeline_lib.TUNER)
    return json.dumps(tuner.exec_properties, sort_keys=True, default=str)

  flags = ['--tune', '--tune-trials', '3']
  assert properties(flags) == properties(flags)
  assert properties(flags) != properties(flags + ['--tune-time-budget', '60'])
  assert properties(flags) != properties(['--tune', '--tune-trials', '4'])


# --- What the summary and the report show. --------------------------------


def _record(scores, statuses=None):
  statuses = statuses or [hp_lib.COMPLETED] * len(scores)
  defaults = hp_lib.default_values(DEFAULT_MODEL, DEFAULT_BATCH)
  trials = []
  for i, (score, status) in enumerate(zip(scores, statuses, strict=True)):
    values = dict(defaults, dropout=0.1 * i) if i else dict(defaults)
    trials.append(hp_lib.Trial(
        trial_id=str(i), values=values, status=status,
        score=score if status == hp_lib.COMPLETED else None,
        seconds=10.0 + i, steps=100, is_defaults=i == 0,
        message='' if status == hp_lib.COMPLETED else 'boom'))
  return hp_lib.SearchRecord(
      metric='rmse', direction='min', max_trials=4, time_budget_s=240,
      steps_per_trial=100, default_values=defaults, trials=tuple(trials),
      stop_reason=hp_lib.STOP_TRIALS, seconds=50.0, setup_seconds=17.0)


def test_the_summary_says_whether_tuning_beat_the_defaults():
  better = _record([55.0, 60.0, 52.5])
  assert better.beat_defaults and better.best.trial_id == '2'
  lines = tuning_view.format_lines(better, used=better.chosen_values)
  assert lines[0] == ('Tuning: 3 trial(s) of 100 steps in 50.0 s (setup '
                      '17.0 s); budget 4 trials, 240 s; stopped by the trial '
                      'budget; eval rmse, lower is better')
  assert lines[1].startswith('    trial 0   completed  55.0000   10.0s  '
                             'hidden_units=64,32 dropout=0.3')
  assert lines[1].endswith('(defaults)')
  assert lines[3].startswith('  * trial 2   completed  52.5000')
  assert lines[4] == ('  tuning beat the defaults: eval rmse 52.5000 (trial '
                      '2) vs 55.0000 (defaults); the Trainer uses trial 2')
  assert lines[5].startswith('  Trainer trained with: hidden_units=64,32 '
                             'dropout=0.2')

  worse = _record([55.0, 60.0, 55.0, None],
                  [hp_lib.COMPLETED] * 3 + [hp_lib.FAILED])
  assert worse.beat_defaults is False and worse.best.trial_id == '0'
  assert worse.verdict() == ('tuning did not improve on the defaults: eval '
                             'rmse 55.0000 (defaults) was not beaten; the '
                             'Trainer uses the defaults')
  text = '\n'.join(tuning_view.format_lines(worse))
  assert '    trial 3   failed           –   13.0s' in text
  assert '(boom)' in text
  assert hp_lib.SearchRecord.from_json(worse.to_json()) == worse


def test_the_report_shows_the_trials():
  record = _record([55.0, 52.5, None],
                   [hp_lib.COMPLETED, hp_lib.COMPLETED, hp_lib.STOPPED])
  view = report.ReportView(
      pipeline_name='p', run_id='r', generated='now', metadata_path='m',
      verdict=report.verdict(None, ''), tuning=tuning_view.view_of(record))
  page = report.render(view)
  assert '<h2>Tuning (TFX Tuner, eval split)</h2>' in page
  assert ('<p class="pass" id="tuning-verdict">tuning beat the defaults: eval '
          'rmse 52.5000 (trial 1) vs 55.0000 (defaults); the Trainer uses '
          'trial 1.</p>') in page
  assert '<th>eval rmse</th>' in page
  assert '<tr id="trial-1"><td><b>1 (best)</b></td>' in page
  assert '<td>64,32</td><td>0.1</td>' in page
  assert '<span class="muted">stopped</span>' in page
  assert '<td>defaults</td>' in page
  assert 'id="tuning"' not in report.render(report.ReportView(
      pipeline_name='p', run_id='r', generated='now', metadata_path='m',
      verdict=report.verdict(None, '')))


def test_the_record_module_imports_no_tensorflow():
  """The report and summary read a record without TF or KerasTuner."""
  source = (pathlib.Path(hp_lib.__file__)).read_text(encoding='utf-8')
  imported = {alias.name if isinstance(node, ast.Import) else node.module
              for node in ast.walk(ast.parse(source))
              if isinstance(node, (ast.Import, ast.ImportFrom))
              for alias in node.names}
  third_party = {m.split('.')[0] for m in imported} - {
      '__future__', 'dataclasses', 'json', 'math', 'typing', 'models'}
  assert not third_party, third_party
  assert {m for m in imported if m.startswith('models')} == {'models'}
