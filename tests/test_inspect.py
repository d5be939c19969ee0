"""The run read model, the lineage listing and the live progress lines.

The e2e tests compare what the CLI and the runner printed with what MLMD
recorded, read here straight through the MLMD API. The unit tests write a
small MLMD store the way LocalDagRunner writes one (a pipeline context, its
pipeline_run contexts, node contexts, executions that go from RUNNING to
COMPLETE or appear already CACHED, and artifacts linked by input and output
events), then check what `run_model` reads back and what `ProgressPrinter`
prints while following it.
"""

import io
import re
import subprocess
import sys
import time

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import pytest

from pipeline.inspection import lineage
from pipeline.inspection import run_model
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


def _run_ids(store):
  """Run ids of the test pipeline, oldest first, straight from MLMD."""
  runs = [c for c in store.get_contexts_by_type('pipeline_run')
          if any(p.name == PIPELINE_NAME
                 for p in store.get_parent_contexts_by_context(c.id))]
  return [c.name for c in sorted(
      runs, key=lambda c: (c.create_time_since_epoch, c.id))]


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
                      r'not evaluated|model unchanged, blessed in run \S+)',
                      line)
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
  store = run_model.open_store(e2e_run.metadata_path)
  run_ids = _run_ids(store)
  assert order == list(reversed(run_ids))  # newest first, all (<= limit)
  for run_id in run_ids:
    chain = runs[run_id]
    stages = [s for s in chain if not s.startswith('_')]
    assert stages == list(run_model.CHAIN), result.stdout
    nodes = _executions_by_node(store, run_id)
    trainer = _outputs_by_key(store, nodes['Trainer'].id)
    transform = _outputs_by_key(store, nodes['Transform'].id)
    example_gen = _outputs_by_key(store, nodes['CsvExampleGen'].id)
    assert chain['examples'][0] == f'#{example_gen["examples"]}'
    assert chain['transform'][0] == f'#{transform["transform_graph"]}'
    assert chain['model'][0] == f'#{trainer["model"]}'
    assert chain['data'][1].endswith('taxi_sample')
    run = run_model.find_run(store, PIPELINE_NAME, run_id)
    # An unchanged model's evaluation and push are the blessing run's.
    judged = run.blessed_by or run
    judged_nodes = _executions_by_node(store, judged.run_id)
    evaluator = _outputs_by_key(store, judged_nodes['Evaluator'].id)
    assert chain['evaluation'][0] == f'#{evaluator["evaluation"]}'
    assert chain['blessing'][0] == f'#{evaluator["blessing"]}'
    assert chain['push'][1] == (judged.pushed_destination or 'not pushed')
    if run.model_unchanged:
      assert 'Evaluator' not in nodes and 'Pusher' not in nodes
      assert chain['_verdict'] == (
          f'model unchanged, blessed in run {judged.run_id}')
      assert f'from run {judged.run_id}' in chain['evaluation'][2]
    else:
      assert chain['_verdict'] == ('BLESSED' if run.blessed
                                   else 'NOT BLESSED')
  first, second = (runs[r] for r in run_ids[:2])
  # The second run reused the first run's artifacts from cache, and its
  # model is the one the first run blessed: it was not evaluated again.
  for stage in ('examples', 'transform', 'model', 'evaluation', 'blessing'):
    assert second[stage][0] == first[stage][0]
  for stage in ('examples', 'transform', 'model'):
    assert 'cached' in second[stage][2]
  assert 'no baseline' in first['evaluation'][2]
  assert second['_verdict'] == f'model unchanged, blessed in run {run_ids[0]}'


@pytest.mark.e2e
def test_tensorboard_logdir_is_the_latest_trainer_output(e2e_run):
  result = _inspect_cli('--output-dir', str(e2e_run.output_dir),
                        '--tensorboard-logdir')
  assert result.returncode == 0, result.stderr
  store = run_model.open_store(e2e_run.metadata_path)
  latest = _run_ids(store)[-1]
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
  store = run_model.open_store(e2e_run.metadata_path)
  run_ids = _run_ids(store)
  # The fixture's runs are the first ones in its store.
  for output, run_id in zip(e2e_run.outputs, run_ids[:len(e2e_run.outputs)],
                            strict=True):
    summary = run_summary.summarize(
        run_model.find_run(store, PIPELINE_NAME, run_id))
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
    # The total counts every node, also the Evaluator, ServingCheck, Pusher
    # and FeatureAttributions an unchanged re-run skips.
    skipped = 4 if summary.model_unchanged else 0
    assert {m.group(2) for m in events} == {
        str(len(summary.components) + skipped)}
  # The second run came from cache: the runner said so per component.
  second = run_model.find_run(store, PIPELINE_NAME, run_ids[1])
  assert second.component('Trainer').state == 'cached'


# --- A store written by the test, the way LocalDagRunner writes one ------

COMPLETE = metadata_store_pb2.Execution.COMPLETE
CACHED = metadata_store_pb2.Execution.CACHED
RUNNING = metadata_store_pb2.Execution.RUNNING
FAILED = metadata_store_pb2.Execution.FAILED


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
    [self.pipeline_id] = self.store.put_contexts([metadata_store_pb2.Context(
        type_id=self.types['pipeline'], name=pipeline_name)])
    self.run_id = None

  def start_run(self, name: str) -> None:
    [self.run_id] = self.store.put_contexts([metadata_store_pb2.Context(
        type_id=self.types['pipeline_run'], name=name)])
    self.store.put_parent_contexts([metadata_store_pb2.ParentContext(
        child_id=self.run_id, parent_id=self.pipeline_id)])

  def execution(self, node: str, state, component_class: str = 'Component',
                **properties: str) -> metadata_store_pb2.Execution:
    """An execution of `node` in the current run, of type
    'tfx.components.<component_class>'."""
    contexts = self.store.get_contexts_by_type('node')
    node_ctx = next((c for c in contexts
                     if c.name == f'{self.pipeline_name}.{node}'), None)
    if node_ctx is None:
      [node_id] = self.store.put_contexts([metadata_store_pb2.Context(
          type_id=self.types['node'], name=f'{self.pipeline_name}.{node}')])
    else:
      node_id = node_ctx.id
    execution = metadata_store_pb2.Execution(
        type_id=self.store.put_execution_type(metadata_store_pb2.ExecutionType(
            name=f'tfx.components.{component_class}')),
        last_known_state=state)
    for key, value in properties.items():
      execution.custom_properties[key].string_value = value
    [execution.id] = self.store.put_executions([execution])
    self.store.put_attributions_and_associations([], [
        metadata_store_pb2.Association(context_id=ctx, execution_id=execution.id)
        for ctx in (self.run_id, node_id)])
    return execution

  def finish(self, execution, state) -> None:
    execution.last_known_state = state
    self.store.put_executions([execution])

  def artifact(self, type_name: str, uri: str,
               **custom: object) -> metadata_store_pb2.Artifact:
    artifact = metadata_store_pb2.Artifact(
        type_id=self.store.put_artifact_type(
            metadata_store_pb2.ArtifactType(name=type_name)), uri=uri)
    for key, value in custom.items():
      if isinstance(value, int):
        artifact.custom_properties[key].int_value = value
      else:
        artifact.custom_properties[key].string_value = str(value)
    [artifact.id] = self.store.put_artifacts([artifact])
    return artifact

  def events(self, execution, inputs=None, outputs=None) -> None:
    """Input and output events: {key: artifact} each.

    Like TFX, one event per artifact and direction, naming every key it was
    passed under (the Evaluator's model can also be its baseline_model).
    """
    events = {}
    for kind, artifacts in ((metadata_store_pb2.Event.INPUT, inputs or {}),
                            (metadata_store_pb2.Event.OUTPUT, outputs or {})):
      for key, artifact in artifacts.items():
        event = events.setdefault((kind, artifact.id), metadata_store_pb2.Event(
            artifact_id=artifact.id, execution_id=execution.id, type=kind))
        event.path.steps.add().key = key
        event.path.steps.add().index = 0
    self.store.put_events(list(events.values()))


def _write_run(runner: _FakeRunner, run_id: str, first=None,
               train_s: float = 0.0):
  """A whole run: ExampleGen -> Transform -> Trainer -> Evaluator -> Pusher.

  The first run trains, is blessed and pushed. With `first` (the artifacts of
  an earlier run) the run is a rerun: everything up to the Trainer is cached
  and reuses `first`'s artifacts, the Evaluator compares with `first`'s model
  as the baseline and does not bless, and the Pusher pushes nothing.

  Returns:
    The run's artifacts by name.
  """
  runner.start_run(run_id)
  state = CACHED if first else COMPLETE
  root = f'/artifacts/{run_id}'
  gen = runner.execution(
      'CsvExampleGen', state, 'CsvExampleGen', input_base='/data/taxi',
      input_fingerprint='split:single_split,num_files:1,total_bytes:42')
  made = dict(first) if first else {
      'examples': runner.artifact('Examples', f'{root}/examples'),
      'graph': runner.artifact('TransformGraph', f'{root}/graph'),
      'model': runner.artifact('Model', f'{root}/model'),
      'model_run': runner.artifact('ModelRun', f'{root}/model_run')}
  runner.events(gen, outputs={'examples': made['examples']})
  transform = runner.execution('Transform', state, 'Transform')
  runner.events(transform, inputs={'examples': made['examples']},
                outputs={'transform_graph': made['graph']})
  trainer = runner.execution('Trainer', RUNNING if not first else CACHED,
                             'Trainer')
  runner.events(trainer, inputs={'transform_graph': made['graph']},
                outputs={'model': made['model'],
                         'model_run': made['model_run']})
  if not first:
    time.sleep(train_s)
    runner.finish(trainer, COMPLETE)
  evaluator = runner.execution('Evaluator', COMPLETE, 'Evaluator')
  made['evaluation'] = runner.artifact('ModelEvaluation', f'{root}/eval')
  made['blessing'] = runner.artifact('ModelBlessing', f'{root}/blessing',
                                     blessed=0 if first else 1)
  runner.events(evaluator, inputs=dict(
      {'model': made['model']},
      **({'baseline_model': first['model']} if first else {})),
                outputs={'evaluation': made['evaluation'],
                         'blessing': made['blessing']})
  pusher = runner.execution('Pusher', COMPLETE, 'Pusher')
  pushed = {'pushed': 0} if first else {
      'pushed': 1, 'pushed_destination': '/serving/1'}
  made['pushed'] = runner.artifact('PushedModel', f'{root}/pushed', **pushed)
  runner.events(pusher, inputs={'model': made['model']},
                outputs={'pushed_model': made['pushed']})
  return made


@pytest.fixture
def two_runs(tmp_path):
  """A store with two runs of 'demo' (the second from cache) and one of
  another pipeline in between."""
  path = str(tmp_path / 'metadata.sqlite')
  runner = _FakeRunner(path)
  first = _write_run(runner, 'run-1', train_s=0.3)
  other = _FakeRunner(path, 'other')
  other.start_run('other-run')
  other.execution('Trainer', FAILED, 'Trainer')
  second = _write_run(runner, 'run-2', first=first)
  return path, first, second


def test_run_model_reads_states_durations_and_outputs(two_runs):
  path, first, _ = two_runs
  store = run_model.open_store(path)
  run = run_model.find_run(store, 'demo', 'run-1')
  assert (run.run_id, run.pipeline_name) == ('run-1', 'demo')
  assert [(e.component_id, e.component_class, e.state)
          for e in run.executions] == [
              ('CsvExampleGen', 'CsvExampleGen', 'complete'),
              ('Transform', 'Transform', 'complete'),
              ('Trainer', 'Trainer', 'complete'),
              ('Evaluator', 'Evaluator', 'complete'),
              ('Pusher', 'Pusher', 'complete')]
  assert run.count('complete') == 5 and run.count('cached') == 0
  # Durations are MLMD's timestamps: the Trainer ran from put to finish.
  trainer = run.component('Trainer')
  assert trainer.seconds >= 0.3, trainer.seconds
  assert trainer.seconds == run_model.duration_seconds(trainer.proto)
  assert run.component('Pusher').seconds < 0.3
  assert trainer.input('transform_graph').id == first['graph'].id
  assert trainer.output('model').id == first['model'].id
  assert trainer.output('no such key') is None
  assert trainer.input('examples') is None
  assert run.execution(run_model.EXAMPLE_GEN_SUFFIX).component_id == (
      'CsvExampleGen')
  assert run.component('SchemaGen') is None
  assert run.blessed is True
  assert run.pushed_destination == '/serving/1'
  assert run.model_run_uri == '/artifacts/run-1/model_run'
  assert run.evaluation_uri == '/artifacts/run-1/eval'
  assert run.baseline_model is None


def test_run_model_reads_a_cached_rerun_and_its_chain(two_runs):
  path, first, second = two_runs
  store = run_model.open_store(path)
  run = run_model.find_run(store, 'demo')  # The latest run of 'demo'.
  assert run.run_id == 'run-2'
  assert run.count('cached') == 3 and run.count('complete') == 2
  assert run.component('Trainer').state == 'cached'
  assert run.blessed is False
  assert run.pushed_destination is None
  assert run.baseline_model.id == first['model'].id
  # The cached Trainer's reused logs are this run's logs too.
  assert run.model_run_uri == '/artifacts/run-1/model_run'
  chain = {link.stage: link for link in run.chain()}
  assert list(chain) == list(run_model.CHAIN)
  assert chain['data'].location == '/data/taxi'
  assert chain['data'].note == '1 file(s), 42 bytes'
  assert [chain[s].artifact_id for s in
          ('examples', 'transform', 'model', 'evaluation', 'blessing',
           'push')] == [first['examples'].id, first['graph'].id,
                        first['model'].id, second['evaluation'].id,
                        second['blessing'].id, second['pushed'].id]
  assert chain['model'].note == 'cached'
  assert chain['evaluation'].note == f'baseline model #{first["model"].id}'
  assert chain['blessing'].note == 'NOT BLESSED'
  assert chain['push'].location == 'not pushed'
  text = lineage.format_run(run)
  assert text.startswith('Run run-2  pipeline demo  NOT BLESSED  '
                         '(2 complete, 3 cached)')


def test_run_discovery(two_runs):
  path, _, _ = two_runs
  store = run_model.open_store(path)
  assert [c.name for c in run_model.run_contexts(store, 'demo')] == [
      'run-1', 'run-2']
  assert [c.name for c in run_model.run_contexts(store)] == [
      'run-1', 'other-run', 'run-2']
  assert run_model.run_contexts(store, 'no-such-pipeline') == []
  [_, other, latest] = run_model.run_contexts(store)
  assert [c.name for c in run_model.run_contexts(
      store, since_ms=other.create_time_since_epoch)][-1] == 'run-2'
  assert run_model.run_contexts(
      store, 'demo', since_ms=latest.create_time_since_epoch + 1) == []
  assert [r.run_id for r in run_model.recent_runs(store)] == [
      'run-2', 'other-run', 'run-1']
  assert [(r.run_id, r.pipeline_name) for r in run_model.recent_runs(
      store, limit=2)] == [('run-2', 'demo'), ('other-run', 'other')]
  assert run_model.read_run(store, 'other-run').component(
      'Trainer').state == 'FAILED'
  # The newest run with Trainer logs: run-2 reuses run-1's.
  assert run_model.latest_model_run_uri(store) == '/artifacts/run-1/model_run'
  with pytest.raises(LookupError, match='for pipeline'):
    run_model.latest_model_run_uri(store, 'other')
  with pytest.raises(LookupError, match="No run 'other-run' of pipeline"):
    run_model.find_run(store, 'demo', 'other-run')
  with pytest.raises(LookupError, match='No runs of pipeline'):
    run_model.find_run(store, 'no-such-pipeline')
  with pytest.raises(LookupError):
    run_model.read_run(store, 'no-such-run')


def test_open_store_is_read_only_and_explains_a_missing_file(two_runs,
                                                             tmp_path):
  path, _, _ = two_runs
  store = run_model.open_store(path)
  with pytest.raises(Exception, match='(?i)read.?only|readonly'):
    store.put_context_type(metadata_store_pb2.ContextType(name='new_type'))
  run_model.open_store(path, readonly=False).put_context_type(
      metadata_store_pb2.ContextType(name='new_type'))
  with pytest.raises(FileNotFoundError, match='Run the pipeline first'):
    run_model.open_store(str(tmp_path / 'missing.sqlite'))


def test_state_names_and_durations():
  execution = metadata_store_pb2.Execution(
      last_known_state=CACHED, create_time_since_epoch=10_000,
      last_update_time_since_epoch=12_500)
  assert run_model.state_name(execution) == 'cached'
  assert run_model.duration_seconds(execution) == 2.5
  execution.last_update_time_since_epoch = 9_000  # Clock skew: never < 0.
  assert run_model.duration_seconds(execution) == 0.0
  assert run_model.state_name(metadata_store_pb2.Execution()) == 'unknown'
  assert {run_model.STATE_NAMES[s] for s in (COMPLETE, CACHED, FAILED)} <= (
      run_model.FINAL_STATES)
  assert 'running' not in run_model.FINAL_STATES


def test_summary_of_a_run(two_runs):
  path, _, _ = two_runs
  store = run_model.open_store(path)
  run = run_model.read_run(store, 'other-run')
  summary = run_summary.summarize(run)
  assert summary.run_id == 'other-run'
  assert [(c.component_id, c.state) for c in summary.components] == [
      ('Trainer', 'FAILED')]
  assert summary.blessed is None and summary.pushed_model is None
  text = run_summary.format_summary(summary)
  assert 'Blessing: not evaluated (the run stopped earlier)' in text
  assert 'Pushed model: none' in text
  assert run_model.run_ids(store, 'demo') == ['run-1', 'run-2']


def test_format_line():
  assert (progress.format_line(3, 11, 'Transform', 'started') ==
          '[ 3/11] Transform                    started')
  assert (progress.format_line(10, 11, 'Trainer', 'complete', 74.84) ==
          '[10/11] Trainer                      complete     74.8s')
  assert PROGRESS_LINE.match(progress.format_line(1, 11, 'Pusher', 'cached',
                                                  0.0))


def _progress(lines):
  """(component, event) of each progress line; every line must parse."""
  parsed = [PROGRESS_LINE.match(line) for line in lines]
  assert all(parsed), lines
  return [(m.group(3), m.group(4)) for m in parsed]


def test_progress_never_starts_a_cache_hit(tmp_path):
  """The race of a busy machine, played in its worst order, step by step.

  TFX's launcher registers a cache hit as RUNNING and publishes it as
  CACHED a moment later. The old printer polled MLMD and printed `started`
  when a poll fell in between. Here another node finishes exactly in that
  window, and the printer reads the store right then: the cache hit still
  gets no start line, because only the runner's executor-start event
  prints one, and a cache hit has no executor call.
  """
  path = str(tmp_path / 'metadata.sqlite')
  runner = _FakeRunner(path)
  runner.start_run('old-run')  # Another run of the pipeline: not followed.
  runner.finish(runner.execution('OldNode', RUNNING), COMPLETE)
  out = io.StringIO()
  printer = progress.ProgressPrinter(path, 'demo', total=6, out=out)
  printer.run_started('new-run')
  runner.start_run('new-run')
  gen = runner.execution('ExampleGen', RUNNING)
  printer.executor_started('ExampleGen')
  assert printer.lines == ['[1/6] ExampleGen                   started']
  # The cache hit, registered RUNNING and not yet published as CACHED...
  gate = runner.execution('AnomalyGate', RUNNING)
  # ... while ExampleGen finishes and the printer reads the store.
  runner.finish(gen, COMPLETE)
  printer.node_finished('ExampleGen')
  assert _progress(printer.lines) == [('ExampleGen', 'started'),
                                      ('ExampleGen', 'complete')]
  runner.finish(gate, CACHED)
  printer.node_finished('AnomalyGate')
  # A node TFX runs without an executor (a resolver): started, then its end.
  runner.execution('Resolver', COMPLETE)
  printer.node_finished('Resolver')
  trainer = runner.execution('Trainer', RUNNING)
  printer.executor_started('Trainer')
  runner.finish(trainer, FAILED)
  printer.node_finished('Trainer')
  printer.node_finished('Trainer')  # Nothing new: nothing printed twice.
  printer.node_finished('Pusher')  # Skipped (no execution): no line.
  printer.close()
  assert _progress(printer.lines) == [
      ('ExampleGen', 'started'), ('ExampleGen', 'complete'),
      ('AnomalyGate', 'cached'),
      ('Resolver', 'started'), ('Resolver', 'complete'),
      ('Trainer', 'started'), ('Trainer', 'FAILED')]
  # Indexes in the order the nodes were first printed; finals have times.
  parsed = [PROGRESS_LINE.match(line) for line in printer.lines]
  assert [m.group(1) for m in parsed] == ['1', '1', '2', '3', '3', '4', '4']
  assert {m.group(2) for m in parsed} == {'6'}
  assert [m.group(5) is not None for m in parsed] == [
      False, True, True, False, True, False, True]
  assert not any('OldNode' in line for line in printer.lines)
  assert out.getvalue() == ''.join(line + '\n' for line in printer.lines)


def test_progress_survives_an_unreadable_store(tmp_path, monkeypatch):
  """A store it cannot read: one warning, no line, no exception; it
  reads the store again at the next node's end."""
  monkeypatch.setattr(progress, '_READ_RETRY_PAUSES_S', (0.0,))
  path = tmp_path / 'metadata.sqlite'
  path.write_bytes(b'not a database' * 100)
  printer = progress.ProgressPrinter(str(path), 'demo', total=1,
                                     out=io.StringIO())
  printer.run_started('run')
  printer.node_finished('ExampleGen')
  assert printer.lines == []
  path.unlink()
  runner = _FakeRunner(str(path))
  runner.start_run('run')
  runner.execution('ExampleGen', CACHED)
  printer.node_finished('ExampleGen')
  assert _progress(printer.lines) == [('ExampleGen', 'cached')]


def test_the_data_note_counts_every_span_of_a_range():
  one = 'split:single_split,num_files:1,total_bytes:42,xor_checksum:7'
  assert run_model.fingerprint_note(one) == '1 file(s), 42 bytes'
  # --span 1-2: one fingerprint line per span.
  two = ('span 1: split:single_split,num_files:1,total_bytes:195405,'
         'xor_checksum:1\n'
         'span 2: split:single_split,num_files:2,total_bytes:194566,'
         'xor_checksum:1')
  assert run_model.fingerprint_note(two) == '3 file(s), 389971 bytes'
  assert run_model.fingerprint_note('') == ''
  assert run_model.fingerprint_note('split:single_split') == ''
