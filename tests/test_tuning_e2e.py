"""--tune end to end, on the regression task run (tests/task_runs.py).

That zero-config run passes `--tune --tune-trials 2 --tune-steps 50`, so no
pipeline run is added for these tests: its Tuner searched two trials (the
defaults, then a random one) before its Trainer. They check, from ML
Metadata and the artifacts, that the search ran its two trials, that the
Trainer consumed the Tuner's best settings and trained with them, and that
the printed summary and the HTML report show the trials and whether tuning
beat the defaults.
"""

import html
import json
import os

import pytest
import tensorflow as tf

from models import hyperparameters as hp_lib
from pipeline.inspection import report
from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from pipeline.inspection import tuning as tuning_view
from tests import task_runs as task_runs_lib

pytestmark = pytest.mark.e2e


@pytest.fixture(scope='module')
def tuned(task_runs):
  """The tuned task's run, its full pipeline run read back, its record."""
  run = task_runs[task_runs_lib.TUNED_TASK]
  assert run.first.returncode == 0, run.first.stderr[-3000:]
  store = run_model.open_store(run.metadata_path)
  full = [r for r in run_model.recent_runs(store, run.pipeline_name)
          if r.execution(run_model.TRAINER)][0]
  record = tuning_view.read_record(full.tuner_results_uri)
  tuner = full.component('Tuner')
  print(f'\nTuner: {tuner.seconds:.1f} s for {len(record.trials)} trials '
        f'({", ".join(f"{t.seconds:.1f} s" for t in record.trials)}); '
        f'{record.verdict()}')
  return run, full, record


def test_the_tuner_ran_the_defaults_and_one_more_trial(tuned):
  _, full, record = tuned
  ids = [e.component_id for e in full.executions]
  assert ids.index('Tuner') < ids.index('Trainer')
  assert full.component('Tuner').state == 'complete'
  assert len(record.trials) == task_runs_lib.TUNE_TRIALS == 2
  assert record.stop_reason == hp_lib.STOP_TRIALS
  assert record.steps_per_trial == task_runs_lib.TUNE_STEPS
  assert [t.is_defaults for t in record.trials] == [True, False]
  assert record.trials[0].values == record.default_values
  assert record.trials[1].values != record.default_values
  assert (record.metric, record.direction) == ('rmse', 'min')
  for trial in record.trials:
    assert trial.status == hp_lib.COMPLETED, trial.message
    assert trial.steps == task_runs_lib.TUNE_STEPS
    assert trial.score > 0
  # TFX's own results file lists the completed trials, best first.
  with tf.io.gfile.GFile(os.path.join(full.tuner_results_uri,
                                      'tuner_results.json')) as f:
    results = json.load(f)
  assert [r['trial_id'] for r in results] == [record.best.trial_id] + [
      t.trial_id for t in record.trials if t is not record.best]


def test_the_trainer_trained_with_the_best_settings(tuned):
  _, full, record = tuned
  tuner, trainer = full.component('Tuner'), full.component('Trainer')
  best = tuner.output('best_hyperparameters')
  # The Trainer consumed the very artifact the Tuner wrote.
  assert trainer.input('hyperparameters').id == best.id
  [name] = tf.io.gfile.listdir(best.uri)
  with tf.io.gfile.GFile(os.path.join(best.uri, name)) as f:
    written = hp_lib.values_of(json.load(f))
  assert written == record.chosen_values == record.best.values
  info = run_summary.summarize(full).training_info
  assert info['hyperparameters'] == record.chosen_values
  # One replica: the global batch is the tuned per-replica batch.
  assert info['global_batch_size'] == record.chosen_values[
      hp_lib.BATCH_SIZE]


def test_the_summary_and_the_report_show_the_trials(tuned):
  run, full, record = tuned
  verdict = record.verdict()
  assert ('tuning beat the defaults' in verdict) != (
      hp_lib.NO_IMPROVEMENT in verdict)
  out = run.first.stdout
  assert (f'Tuning: 2 trial(s) of {task_runs_lib.TUNE_STEPS} steps in '
          f'{record.seconds:.1f} s (setup {record.setup_seconds:.1f} s); '
          'budget 2 trials') in out
  for trial in record.trials:
    assert f' trial {trial.trial_id:<3} completed {trial.score:8.4f}' in out
  assert f'  {verdict}\n' in out
  assert 'Trainer trained with: ' + hp_lib.describe(
      record.chosen_values) in out
  with open(report.report_paths(str(run.output_dir), full.run_id)[0],
            encoding='utf-8') as f:
    page = f.read()
  assert html.escape(verdict, quote=False) + '.</p>' in page
  assert f'<tr id="trial-{record.best.trial_id}"><td><b>' in page
  for trial in record.trials:
    assert f'<tr id="trial-{trial.trial_id}">' in page
