"""A run killed with SIGKILL mid-Trainer, then run again.

The re-run must complete, reuse everything that had finished before the kill
(from the cache), reach the same blessing decision as an uninterrupted run,
and never feed the killed Trainer's partial output to anything.

The runs are the session's `useless_model_rerun` (tests/conftest.py): the
gate self-test model (--drop-all-features) on a copy of the blessed output
dir, with data the earlier runs never saw, so the killed run executes
ExampleGen to Transform itself. The model can only learn the base rate, so
an uninterrupted run's decision is known: NOT BLESSED (tests/test_gate.py).
The kill comes after the Trainer's first checkpoint, so the re-run resumes
from it and trains only the remaining steps.
A lost or partial model would make the Evaluator fail rather than pass, and
the lineage checks below catch it either way.
"""

import json
import os
from typing import Dict
from typing import List

from ml_metadata.proto import metadata_store_pb2
import pytest

from models import model_config as model_config_lib
from models import train
from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from tests import conftest
from tests import robustness
from tests.conftest import PIPELINE_NAME

pytestmark = pytest.mark.e2e

UPSTREAM = ('CsvExampleGen', 'ImportSchemaGen', 'StatisticsGen', 'SchemaGen',
            'ExampleValidator', 'AnomalyGate', 'Transform')
# New data: these really ran in the killed run, none came from the cache.
FRESH_IN_KILLED_RUN = ('CsvExampleGen', 'StatisticsGen', 'SchemaGen',
                       'ExampleValidator', 'AnomalyGate', 'Transform')


def _component_executions(store, component_id: str
                          ) -> List[metadata_store_pb2.Execution]:
  return [e for e in store.get_executions()
          if robustness._node_of(store, e) == component_id]


def _artifacts(store, execution_id: int, event_type) -> Dict[int, object]:
  events = store.get_events_by_execution_ids([execution_id])
  ids = [e.artifact_id for e in events if e.type == event_type]
  return {a.id: a for a in store.get_artifacts_by_id(ids)}


def test_kill_left_trainer_unfinished_and_store_usable(useless_model_rerun):
  # The store opened right after the kill; the Trainer had not finished.
  assert useless_model_rerun.killed_state == (
      metadata_store_pb2.Execution.RUNNING)


def test_rerun_completes_and_reuses_finished_components(useless_model_rerun):
  output_dir = useless_model_rerun.output_dir
  assert useless_model_rerun.rerun.returncode == 0
  store = run_model.open_store(str(output_dir / 'metadata.sqlite'))
  runs = run_model.run_ids(store, PIPELINE_NAME)
  killed = robustness.executed(run_summary.summarize(run_model.find_run(store, PIPELINE_NAME, runs[-2])))
  resumed = robustness.executed(run_summary.summarize(run_model.find_run(store, PIPELINE_NAME, runs[-1])))
  for component in UPSTREAM:
    assert killed[component] in ('complete', 'cached'), killed
    assert resumed[component] == 'cached', resumed
  for component in FRESH_IN_KILLED_RUN:
    assert killed[component] == 'complete', killed
  assert killed['Trainer'] == 'running'
  for component in ('Trainer', 'Evaluator', 'Pusher'):
    assert resumed[component] == 'complete', resumed


def test_rerun_reaches_the_uninterrupted_decision(useless_model_rerun):
  output_dir = useless_model_rerun.output_dir
  summary = robustness.latest_summary(output_dir)
  assert summary.blessed is False
  assert 'auc_lower_bound' in summary.blessing_reason
  assert 'Blessing: NOT BLESSED' in useless_model_rerun.rerun.stdout
  assert summary.pushed_model is None
  assert (robustness.snapshot(output_dir).pushed ==
          useless_model_rerun.before.pushed)


def test_partial_model_is_never_consumed(useless_model_rerun):
  output_dir = useless_model_rerun.output_dir
  killed_id = useless_model_rerun.killed_id
  trainer_root = output_dir / 'pipeline_root' / 'Trainer'
  # The kill really left a half-made model: no SavedModel was written.
  killed_model = trainer_root / 'model' / str(killed_id)
  assert not (killed_model / 'Format-Serving' / 'saved_model.pb').exists()
  killed_dirs = [str(d) for d in trainer_root.glob(f'*/{killed_id}')]
  assert killed_dirs

  store = run_model.open_store(str(output_dir / 'metadata.sqlite'))
  # TFX registers output artifacts only when an execution succeeds, so the
  # killed one has none that a later run could resolve ...
  events = store.get_events_by_execution_ids([killed_id])
  assert not [e for e in events if e.type in (
      metadata_store_pb2.Event.OUTPUT,
      metadata_store_pb2.Event.PENDING_OUTPUT)], events
  # ... and no artifact at all points into its folders.
  inside = [a.uri for a in store.get_artifacts()
            if any(a.uri == d or a.uri.startswith(d + os.sep)
                   for d in killed_dirs)]
  assert not inside, f'partial output registered in MLMD: {inside}'

  trainer = max(_component_executions(store, 'Trainer'), key=lambda e: e.id)
  assert trainer.id != killed_id
  assert trainer.last_known_state == metadata_store_pb2.Execution.COMPLETE
  models = {a.id for a in _artifacts(
      store, trainer.id, metadata_store_pb2.Event.OUTPUT).values()
            if a.uri.split(os.sep)[-2] == 'model'}
  evaluator = max(_component_executions(store, 'Evaluator'),
                  key=lambda e: e.id)
  evaluated = _artifacts(store, evaluator.id, metadata_store_pb2.Event.INPUT)
  assert models and models <= set(evaluated), (
      'the Evaluator did not judge the re-run Trainer\'s complete model')


def _training_info(output_dir, execution_id: int) -> Dict:
  path = (output_dir / 'pipeline_root' / 'Trainer' / 'model_run' /
          str(execution_id) / model_config_lib.TRAINING_INFO_FILE)
  return json.loads(path.read_text())


def test_rerun_resumes_from_the_killed_trainers_checkpoint(
    useless_model_rerun):
  """The re-run continued from the checkpoint, it did not start over."""
  output_dir = useless_model_rerun.output_dir
  store = run_model.open_store(str(output_dir / 'metadata.sqlite'))
  trainer = max(_component_executions(store, 'Trainer'), key=lambda e: e.id)
  assert trainer.id != useless_model_rerun.killed_id
  info = _training_info(output_dir, trainer.id)
  steps = conftest.USELESS_MODEL_TRAIN_STEPS
  # The kill came after the first epoch's checkpoint, before the last one.
  assert train.STEPS_PER_EPOCH <= info['resumed_from_step'] < steps, info
  assert info['resumed_from_step'] % train.STEPS_PER_EPOCH == 0, info
  assert info['steps_trained'] == steps - info['resumed_from_step'], info
  assert (f"resumed from the checkpoint at step {info['resumed_from_step']} "
          f"of a killed run; trained {info['steps_trained']} more steps"
          in useless_model_rerun.rerun.stdout)
  # Keras deletes the backup once training has finished.
  assert not robustness.trainer_checkpoints(output_dir)
