"""End to end: the real LocalDagRunner on the committed sample, run twice."""

import json
import pathlib

import pytest

from models import model_config as model_config_lib
from pipeline.definition import pipeline as pipeline_lib
from tests import pipeline_state

pytestmark = pytest.mark.e2e

ALL_COMPONENTS = [
    pipeline_lib.EXAMPLE_GEN, pipeline_lib.STATISTICS_GEN,
    pipeline_lib.SCHEMA_GEN, pipeline_lib.IMPORT_SCHEMA_GEN,
    pipeline_lib.EXAMPLE_VALIDATOR, pipeline_lib.ANOMALY_GATE,
    pipeline_lib.DRIFT_GATE, pipeline_lib.TRANSFORM, pipeline_lib.TRAINER,
    pipeline_lib.BASELINE_RESOLVER, pipeline_lib.MODEL_CHANGE_CHECK,
    pipeline_lib.EVALUATOR, pipeline_lib.SERVING_CHECK, pipeline_lib.PUSHER,
    pipeline_lib.FEATURE_ATTRIBUTIONS,
]
# Unchanged data, schema, code and config: all of these must come from cache
# on the second run. Its model is then the blessed baseline itself, so the
# Evaluator and Pusher are skipped.
CACHEABLE = [
    pipeline_lib.EXAMPLE_GEN, pipeline_lib.STATISTICS_GEN,
    pipeline_lib.SCHEMA_GEN, pipeline_lib.IMPORT_SCHEMA_GEN,
    pipeline_lib.EXAMPLE_VALIDATOR, pipeline_lib.ANOMALY_GATE,
    pipeline_lib.DRIFT_GATE, pipeline_lib.TRANSFORM, pipeline_lib.TRAINER,
]


@pytest.fixture(scope='module')
def runs(e2e_run):
  runs = pipeline_state.summaries(e2e_run.metadata_path)
  assert len(runs) >= 2
  return runs[:2]


def test_first_run_executes_every_component(runs):
  first = runs[0]
  states = {c.component_id: c.state for c in first.components}
  assert sorted(states) == sorted(ALL_COMPONENTS)
  assert all(state == 'complete' for state in states.values()), states


def test_first_run_is_blessed_and_pushed(runs, e2e_run):
  first = runs[0]
  assert first.blessed is True, first.blessing_reason
  assert first.metrics['auc'] >= 0.9
  assert first.metrics['auc_lower_bound'] > 0.5
  assert first.blessing_sentence.startswith('Blessed: it ranks positives')
  assert 0 < first.decision['threshold'] < 1
  assert first.pushed_model
  pushed = pathlib.Path(first.pushed_model)
  assert pushed.parent == e2e_run.serving_model_dir
  assert (pushed / 'saved_model.pb').is_file()
  assert (pushed / 'variables').is_dir()


def test_metrics_are_sliced_by_payment_type_and_hour(runs):
  slices = runs[0].slice_metrics
  assert 'payment_type=Credit Card' in slices
  assert any(name.startswith('trip_start_hour=') for name in slices)
  assert slices['payment_type=Credit Card']['example_count'] > 0


def test_second_run_reuses_the_cache(runs):
  second = runs[1]
  states = {c.component_id: c.state for c in second.components}
  for component in CACHEABLE:
    assert states.get(component) == 'cached', (component, states)
  assert second.blessed is True


def test_unchanged_rerun_skips_evaluator_and_pusher(runs, e2e_run):
  first, second = runs
  states = {c.component_id: c.state for c in second.components}
  assert states[pipeline_lib.MODEL_CHANGE_CHECK] == 'complete', states
  assert pipeline_lib.EVALUATOR not in states, states
  assert pipeline_lib.PUSHER not in states, states
  assert pipeline_lib.SERVING_CHECK not in states, states
  assert pipeline_lib.FEATURE_ATTRIBUTIONS not in states, states
  assert second.model_unchanged and not first.model_unchanged
  # It reports the evaluation and push of the run that blessed the model.
  assert second.blessed_in_run == first.run_id
  assert second.evaluation_uri == first.evaluation_uri
  assert second.metrics == first.metrics
  assert second.pushed_model is None
  assert second.serving_model == first.pushed_model
  # One pushed version: the first run's. No re-run pushed again.
  versions = pipeline_state.pushed_versions(e2e_run.serving_model_dir)
  assert [str(v) for v in versions] == [first.pushed_model]
  out = e2e_run.outputs[1].stdout
  assert 'Model unchanged' in out and 'nothing new pushed' in out
  assert f'judged in run {first.run_id}' in out
  assert f'Pushed model: none new (serving {first.pushed_model}' in out


def test_runner_prints_a_human_summary(e2e_run):
  out = e2e_run.outputs[0].stdout
  assert 'Blessing: BLESSED' in out
  assert 'auc=' in out and 'binary_accuracy=' in out
  assert 'Pushed model: ' + str(e2e_run.serving_model_dir) in out
  for component in ALL_COMPONENTS:
    assert component in out


def test_training_ran_with_two_replicas_in_sync(e2e_run):
  infos = list((e2e_run.pipeline_root / 'Trainer' / 'model_run').glob(
      f'*/{model_config_lib.TRAINING_INFO_FILE}'))
  assert len(infos) == 1
  info = json.loads(infos[0].read_text())
  assert info['replicas_in_sync'] == 2
  assert len(info['devices']) == 2
  assert info['global_batch_size'] == 2 * 128


def test_tensorboard_logs_are_in_model_run(e2e_run):
  events = list((e2e_run.pipeline_root / 'Trainer' / 'model_run').glob(
      '*/train/events.out.tfevents.*'))
  assert events
