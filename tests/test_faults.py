"""A run killed with SIGKILL mid-Trainer, then run again.

The re-run must complete, reuse everything that had finished before the kill
(from the cache), reach the same blessing decision as an uninterrupted run,
and never feed the killed Trainer's partial output to anything.

The run trains the gate self-test model (--drop-all-features) on a copy of
the session's blessed output dir: only the Trainer's cache key changes, so
everything upstream is a cache hit, and the model can only learn the base
rate, so an uninterrupted run's decision is known: NOT BLESSED (see
tests/test_gate.py). A lost or partial model would make the Evaluator fail
rather than pass, and the lineage checks below catch it either way.
"""

import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Dict
from typing import List

from ml_metadata.proto import metadata_store_pb2
import pytest

from pipeline.inspection import summary as run_summary
from tests import robustness
from tests.conftest import LOCAL_RUNNER
from tests.conftest import PIPELINE_NAME
from tests.conftest import REPO_ROOT
from tests.conftest import SAMPLE_DATA
from tests.conftest import run_local_pipeline

pytestmark = pytest.mark.e2e

# Killed as soon as Keras starts fitting (the re-run then trains all steps).
ARGS = ['--train-steps', '100', '--drop-all-features']
UPSTREAM = ('CsvExampleGen', 'ImportSchemaGen', 'StatisticsGen', 'SchemaGen',
            'ExampleValidator', 'AnomalyGate', 'Transform')
START_TIMEOUT_S = 900


def _trainer_runs(output_dir: pathlib.Path) -> set:
  folder = output_dir / 'pipeline_root' / 'Trainer' / 'model_run'
  return set(os.listdir(folder)) if folder.is_dir() else set()


def _training_started(output_dir: pathlib.Path, run_id: str) -> bool:
  """Keras has begun fitting: its TensorBoard train log exists."""
  train_logs = (output_dir / 'pipeline_root' / 'Trainer' / 'model_run' /
                run_id / 'train')
  return train_logs.is_dir() and any(train_logs.iterdir())


def _start_and_kill_in_trainer(output_dir: pathlib.Path) -> str:
  """Starts a run; SIGKILLs its process group once Trainer is fitting.

  Returns:
    The killed Trainer execution's id (its model_run folder name).
  """
  before = _trainer_runs(output_dir)
  cmd = [sys.executable, str(LOCAL_RUNNER), '--data-root', str(SAMPLE_DATA),
         '--output-dir', str(output_dir), *ARGS]
  log = output_dir.parent / 'killed_run.log'
  with open(log, 'w') as out:
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                            cwd=str(REPO_ROOT), start_new_session=True)
    try:
      deadline = time.monotonic() + START_TIMEOUT_S
      started = None
      while started is None:
        assert proc.poll() is None, (
            f'run ended (exit {proc.returncode}) before Trainer started:\n'
            + log.read_text()[-3000:])
        assert time.monotonic() < deadline, 'Trainer never started'
        fresh = sorted(_trainer_runs(output_dir) - before)
        if fresh and _training_started(output_dir, fresh[-1]):
          started = fresh[-1]
        else:
          time.sleep(0.2)
    finally:
      # The run and anything it spawned: it started its own session.
      os.killpg(proc.pid, signal.SIGKILL)
      proc.wait()
  assert proc.returncode == -signal.SIGKILL
  return started


def _component_executions(store, component_id: str
                          ) -> List[metadata_store_pb2.Execution]:
  return [e for e in store.get_executions()
          if robustness._node_of(store, e) == component_id]  # pylint: disable=protected-access


def _artifacts(store, execution_id: int, event_type) -> Dict[int, object]:
  events = store.get_events_by_execution_ids([execution_id])
  ids = [e.artifact_id for e in events if e.type == event_type]
  return {a.id: a for a in store.get_artifacts_by_id(ids)}


@pytest.fixture(scope='module')
def killed_then_rerun(e2e_run, tmp_path_factory):
  output_dir = robustness.copy_outputs(
      e2e_run.output_dir, tmp_path_factory.mktemp('faults') / 'outputs')
  pushed_before = robustness.snapshot(output_dir).pushed
  killed_id = _start_and_kill_in_trainer(output_dir)
  store = run_summary.open_store(str(output_dir / 'metadata.sqlite'))
  killed_state = {e.id: e.last_known_state
                  for e in _component_executions(store, 'Trainer')}
  rerun = run_local_pipeline(output_dir, ARGS)
  return output_dir, pushed_before, int(killed_id), killed_state, rerun


def test_kill_left_trainer_unfinished_and_store_usable(killed_then_rerun):
  _, _, killed_id, killed_state, _ = killed_then_rerun
  # The store opened right after the kill; the Trainer had not finished.
  assert killed_state[killed_id] == metadata_store_pb2.Execution.RUNNING


def test_rerun_completes_and_reuses_finished_components(killed_then_rerun):
  output_dir, _, _, _, rerun = killed_then_rerun
  assert rerun.returncode == 0
  store = run_summary.open_store(str(output_dir / 'metadata.sqlite'))
  runs = run_summary.run_ids(store, PIPELINE_NAME)
  killed = robustness.executed(run_summary.summarize(store, PIPELINE_NAME,
                                                     runs[-2]))
  resumed = robustness.executed(run_summary.summarize(store, PIPELINE_NAME,
                                                      runs[-1]))
  for component in UPSTREAM:
    assert killed[component] in ('complete', 'cached'), killed
    assert resumed[component] == 'cached', resumed
  assert killed['Trainer'] == 'running'
  for component in ('Trainer', 'Evaluator', 'Pusher'):
    assert resumed[component] == 'complete', resumed


def test_rerun_reaches_the_uninterrupted_decision(killed_then_rerun):
  output_dir, pushed_before, _, _, rerun = killed_then_rerun
  summary = robustness.latest_summary(output_dir)
  assert summary.blessed is False
  assert 'accuracy_lift_over_majority' in summary.blessing_reason
  assert 'Blessing: NOT BLESSED' in rerun.stdout
  assert summary.pushed_model is None
  assert robustness.snapshot(output_dir).pushed == pushed_before


def test_partial_model_is_never_consumed(killed_then_rerun):
  output_dir, _, killed_id, _, _ = killed_then_rerun
  trainer_root = output_dir / 'pipeline_root' / 'Trainer'
  # The kill really left a half-made model: no SavedModel was written.
  killed_model = trainer_root / 'model' / str(killed_id)
  assert not (killed_model / 'Format-Serving' / 'saved_model.pb').exists()
  killed_dirs = [str(d) for d in trainer_root.glob(f'*/{killed_id}')]
  assert killed_dirs

  store = run_summary.open_store(str(output_dir / 'metadata.sqlite'))
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
