"""Lineage listing (`python -m pipeline.inspection`) and the live progress lines.

The e2e tests compare what the CLI and the runner printed with what MLMD
recorded, read here straight through the MLMD API. The progress unit tests
drive `ProgressPrinter` against a small MLMD store written by the test, the
way LocalDagRunner writes one: a pipeline_run context, then executions that
go from RUNNING to COMPLETE, or appear already CACHED.
"""

import io
import re
import subprocess
import sys
import threading
import time

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import pytest

from pipeline.inspection import run_model as inspect_lib
from pipeline.inspection import summary as run_summary
from pipeline.local import progress
from tests.conftest import PIPELINE_NAME
from tests.conftest import REPO_ROOT

PROGRESS_LINE = re.compile(
    r'^\[\s*(\d+)/(\d+)\] (\S+)\s+(started|complete|cached|FAILED)'
    r'(?:\s+(\d+\.\d)s)?$')
CHAIN_LINE = re.compile(r'^\s+(?:-> )?\s*(\w+)\s+(#\d+)?\s*(\S+)(?:\s+\[(.*)\])?$')


def _inspect_cli(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, '-m', 'pipeline.inspection', *args],
                        capture_output=True, text=True, cwd=str(REPO_ROOT),
                        timeout=120, check=False)


def _outputs_by_key(store, execution_id: int):
  events = store.get_events_by_execution_ids([execution_id])
  result = {}
  for event in events:
    if event.type == metadata_store_pb2.Event.OUTPUT:
      result[event.path.steps[0].key] = event.artifact_id
  return result


def _executions_by_node(store, run_id: str):
  context = store.get_context_by_type_and_name('pipeline_run', run_id)
  found = {}
  for execution in store.get_executions_by_context(context.id):
    for ctx in store.get_contexts_by_execution(execution.id):
      if ctx.type == 'node':
        found[ctx.name.split('.', 1)[1]] = execution
  return found


def _parse_runs(stdout: str):
  """{run_id: {stage: (artifact_ref, location, note)}} from the CLI output."""
  runs = {}
  current = None
  for line in stdout.splitlines():
    header = re.match(r'^Run (\S+)\s+pipeline (\S+)\s+(BLESSED|NOT BLESSED|'
                      r'not evaluated)', line)
    if header:
      current = runs.setdefault(header.group(1), {'_verdict': header.group(3)})
      continue
    match = CHAIN_LINE.match(line)
    if match and current is not None:
      current[match.group(1)] = (match.group(2), match.group(3),
                                 match.group(4) or '')
  return runs, [r for r in re.findall(r'^Run (\S+)', stdout, re.MULTILINE)]


@pytest.mark.e2e
def test_lineage_listing_matches_mlmd(e2e_run):
  result = _inspect_cli('--output-dir', str(e2e_run.output_dir))
  assert result.returncode == 0, result.stderr
  runs, order = _parse_runs(result.stdout)
  store = run_summary.open_store(e2e_run.metadata_path)
  run_ids = run_summary.run_ids(store, PIPELINE_NAME)
  assert order == list(reversed(run_ids))  # newest first, all (<= limit)
  for run_id in run_ids:
    chain = runs[run_id]
    stages = [s for s in chain if not s.startswith('_')]
    assert stages == list(inspect_lib.CHAIN), result.stdout
    nodes = _executions_by_node(store, run_id)
    trainer = _outputs_by_key(store, nodes['Trainer'].id)
    transform = _outputs_by_key(store, nodes['Transform'].id)
    example_gen = _outputs_by_key(store, nodes['CsvExampleGen'].id)
    evaluator = _outputs_by_key(store, nodes['Evaluator'].id)
    assert chain['examples'][0] == f'#{example_gen["examples"]}'
    assert chain['transform'][0] == f'#{transform["transform_graph"]}'
    assert chain['model'][0] == f'#{trainer["model"]}'
    assert chain['evaluation'][0] == f'#{evaluator["evaluation"]}'
    assert chain['blessing'][0] == f'#{evaluator["blessing"]}'
    summary = run_summary.summarize(store, PIPELINE_NAME, run_id)
    assert chain['_verdict'] == ('BLESSED' if summary.blessed
                                 else 'NOT BLESSED')
    assert chain['push'][1] == (summary.pushed_model or 'not pushed')
    assert chain['data'][1].endswith('taxi_sample')
  first, second = (runs[r] for r in run_ids[:2])
  # The second run reused the first run's artifacts from cache...
  for stage in ('examples', 'transform', 'model'):
    assert second[stage][0] == first[stage][0]
    assert 'cached' in second[stage][2]
  # ...and was evaluated against the model the first run blessed.
  assert 'no baseline' in first['evaluation'][2]
  assert f'baseline model {first["model"][0]}' in second['evaluation'][2]


@pytest.mark.e2e
def test_tensorboard_logdir_is_the_latest_trainer_output(e2e_run):
  result = _inspect_cli('--output-dir', str(e2e_run.output_dir),
                        '--tensorboard-logdir')
  assert result.returncode == 0, result.stderr
  store = run_summary.open_store(e2e_run.metadata_path)
  latest = run_summary.run_ids(store, PIPELINE_NAME)[-1]
  trainer = _executions_by_node(store, latest)['Trainer']
  [model_run] = store.get_artifacts_by_id(
      [_outputs_by_key(store, trainer.id)['model_run']])
  assert result.stdout.strip() == model_run.uri


def test_inspect_cli_explains_a_missing_store(tmp_path):
  result = _inspect_cli('--output-dir', str(tmp_path / 'nothing'))
  assert result.returncode == 1
  assert 'No metadata store at' in result.stderr
  assert 'Run the pipeline first' in result.stderr


@pytest.mark.e2e
def test_runner_printed_one_start_and_finish_line_per_component(e2e_run):
  store = run_summary.open_store(e2e_run.metadata_path)
  run_ids = run_summary.run_ids(store, PIPELINE_NAME)
  # The fixture's runs are the first ones in its store.
  for output, run_id in zip(e2e_run.outputs, run_ids[:len(e2e_run.outputs)],
                            strict=True):
    summary = run_summary.summarize(store, PIPELINE_NAME, run_id)
    events = [PROGRESS_LINE.match(line) for line in output.stdout.splitlines()]
    events = [m for m in events if m]
    finished = {m.group(3): m.group(4) for m in events
                if m.group(4) != 'started'}
    started = [m.group(3) for m in events if m.group(4) == 'started']
    # Exactly one finish line per component, with MLMD's final state.
    assert finished == {c.component_id: c.state
                        for c in summary.components}, output.stdout[-4000:]
    assert len(finished) == len([m for m in events
                                 if m.group(4) != 'started'])
    # A start line for each component that really ran, none for cache hits.
    assert sorted(started) == sorted(c.component_id for c in summary.components
                                     if c.state != 'cached')
    assert {m.group(2) for m in events} == {str(len(summary.components))}
  # The second run came from cache: the runner said so per component.
  second = run_summary.summarize(store, PIPELINE_NAME, run_ids[1])
  assert second.component('Trainer').state == 'cached'


# --- ProgressPrinter against a store written by the test ----------------


class _FakeRunner:
  """Writes MLMD records the way LocalDagRunner does, in miniature."""

  def __init__(self, path: str, pipeline_name: str = 'demo'):
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
    self.store = metadata_store.MetadataStore(config)
    self.pipeline_name = pipeline_name
    self.types = {}
    for name in ('pipeline', 'pipeline_run', 'node'):
      self.types[name] = self.store.put_context_type(
          metadata_store_pb2.ContextType(name=name))
    self.execution_type = self.store.put_execution_type(
        metadata_store_pb2.ExecutionType(name='demo.Component'))
    [self.pipeline_id] = self.store.put_contexts([metadata_store_pb2.Context(
        type_id=self.types['pipeline'], name=pipeline_name)])
    self.run_id = None

  def start_run(self, name: str) -> None:
    [self.run_id] = self.store.put_contexts([metadata_store_pb2.Context(
        type_id=self.types['pipeline_run'], name=name)])
    self.store.put_parent_contexts([metadata_store_pb2.ParentContext(
        child_id=self.run_id, parent_id=self.pipeline_id)])

  def execution(self, node: str, state) -> metadata_store_pb2.Execution:
    contexts = self.store.get_contexts_by_type('node')
    node_ctx = next((c for c in contexts
                     if c.name == f'{self.pipeline_name}.{node}'), None)
    if node_ctx is None:
      [node_id] = self.store.put_contexts([metadata_store_pb2.Context(
          type_id=self.types['node'], name=f'{self.pipeline_name}.{node}')])
    else:
      node_id = node_ctx.id
    execution = metadata_store_pb2.Execution(
        type_id=self.execution_type, last_known_state=state)
    [execution.id] = self.store.put_executions([execution])
    self.store.put_attributions_and_associations([], [
        metadata_store_pb2.Association(context_id=ctx, execution_id=execution.id)
        for ctx in (self.run_id, node_id)])
    return execution

  def finish(self, execution, state) -> None:
    execution.last_known_state = state
    self.store.put_executions([execution])


def test_format_line():
  assert (progress.format_line(3, 11, 'Transform', 'started') ==
          '[ 3/11] Transform                    started')
  assert (progress.format_line(10, 11, 'Trainer', 'complete', 74.84) ==
          '[10/11] Trainer                      complete     74.8s')
  assert PROGRESS_LINE.match(progress.format_line(1, 11, 'Pusher', 'cached',
                                                  0.0))


def test_progress_follows_a_run(tmp_path):
  path = str(tmp_path / 'metadata.sqlite')
  runner = _FakeRunner(path)
  runner.start_run('old-run')  # Before the printer started: not followed.
  runner.finish(runner.execution('OldNode', metadata_store_pb2.Execution
                                 .RUNNING), metadata_store_pb2.Execution.COMPLETE)
  time.sleep(1.1)  # The printer follows runs created after it starts.

  out = io.StringIO()
  printer = progress.ProgressPrinter(path, 'demo', total=3, interval=3600,
                                     out=out)
  lines = printer.lines
  printer.start()
  try:
    printer.poll()
    assert not lines  # no run yet
    runner.start_run('new-run')
    gen = runner.execution('ExampleGen', metadata_store_pb2.Execution.RUNNING)
    printer.poll()
    assert lines == ['[1/3] ExampleGen                   started']
    runner.finish(gen, metadata_store_pb2.Execution.COMPLETE)
    runner.execution('Transform', metadata_store_pb2.Execution.CACHED)
    trainer = runner.execution('Trainer', metadata_store_pb2.Execution.RUNNING)
    printer.poll()
    printer.poll()  # Nothing new: nothing printed twice.
    assert [line.split()[1:3] for line in lines[1:]] == [
        ['ExampleGen', 'complete'], ['Transform', 'cached'],
        ['Trainer', 'started']]
    assert all(PROGRESS_LINE.match(line) for line in lines)
    runner.finish(trainer, metadata_store_pb2.Execution.FAILED)
  finally:
    printer.stop()  # The last look happens on stop.
  assert lines[-1].split()[1:3] == ['Trainer', 'FAILED']
  assert not any('OldNode' in line for line in lines)
  assert out.getvalue() == ''.join(line + '\n' for line in lines)


def test_progress_waits_for_a_usable_store(tmp_path, monkeypatch):
  """No store, then an unreadable file, then the real store: the printer
  keeps polling quietly, raises nothing, and follows the run in the end."""
  escaped = []
  monkeypatch.setattr(threading, 'excepthook', escaped.append)
  path = tmp_path / 'metadata.sqlite'
  printer = progress.ProgressPrinter(str(path), 'demo', total=1,
                                     interval=0.05, out=io.StringIO())
  printer.start()
  try:
    time.sleep(0.3)  # No store yet.
    path.write_bytes(b'not a database yet' * 100)
    time.sleep(0.3)  # A file MLMD cannot open.
    assert printer.lines == []
    path.unlink()
    runner = _FakeRunner(str(path))
    runner.start_run('run')
    runner.execution('ExampleGen', metadata_store_pb2.Execution.CACHED)
  finally:
    printer.stop()
  assert [line.split()[1:3] for line in printer.lines] == [
      ['ExampleGen', 'cached']]
  assert escaped == []
