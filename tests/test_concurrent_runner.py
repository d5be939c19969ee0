"""The local runner's scheduler and its component worker process.

`ConcurrentDagRunner` (pipeline/local/concurrent_runner.py) launches a node
once its upstream nodes are done, several at once, some in the component
worker (pipeline/local/node_worker.py). These tests run it on tiny real
TFX pipelines (tests/concurrent_components.py) with a real SQLite MLMD
store: no timing, only who ran, in which process, and what was recorded.
"""

from __future__ import annotations

import io
import os
import pathlib
import re
import threading
from typing import Dict
from typing import List
from typing import Tuple

import pytest
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline

from pipeline.inspection import run_model
from pipeline.local import concurrent_runner
from pipeline.local import progress
from pipeline.local import worker_client
from tests import concurrent_components as cc

NAME = 'concurrency-test'


# --- The scheduling rules, on plain graphs ---------------------------------


UPSTREAM = {'a': set(), 'b': {'a'}, 'c': {'a'}, 'd': {'b', 'c'}, 'e': {'d'},
            'f': set()}
ORDER = ['a', 'f', 'b', 'c', 'd', 'e']


def test_ready_nodes_are_those_whose_upstream_is_done():
  assert concurrent_runner.ready_nodes(UPSTREAM, set(), set(), set(),
                                       ORDER) == ['a', 'f']
  assert concurrent_runner.ready_nodes(UPSTREAM, {'a'}, {'a', 'f'}, set(),
                                       ORDER) == ['b', 'c']
  # d waits for both of its upstream nodes.
  assert concurrent_runner.ready_nodes(UPSTREAM, {'a', 'b'},
                                       {'a', 'b', 'c', 'f'}, set(),
                                       ORDER) == []
  # A node downstream of a failure never becomes ready.
  assert concurrent_runner.ready_nodes(
      UPSTREAM, {'a', 'b', 'c'}, {'a', 'b', 'c', 'f'}, {'d', 'e'},
      ORDER) == []


def test_a_failure_blocks_everything_downstream_and_nothing_else():
  assert concurrent_runner.downstream_of({'b'}, UPSTREAM) == {'d', 'e'}
  assert concurrent_runner.downstream_of({'a'}, UPSTREAM) == {
      'b', 'c', 'd', 'e'}
  assert concurrent_runner.downstream_of({'f'}, UPSTREAM) == set()
  assert concurrent_runner.downstream_of(set(), UPSTREAM) == set()


def test_the_run_error_prefers_the_named_nodes_then_the_first_failure():
  first, gate = ValueError('first'), RuntimeError('gate')
  errors = {'Transform': first, 'AnomalyGate': gate}  # In failure order.
  assert concurrent_runner.run_error(errors, ('AnomalyGate',)) is gate
  assert concurrent_runner.run_error(errors, ('DriftGate',)) is first
  assert concurrent_runner.run_error({}, ('AnomalyGate',)) is None


def test_at_least_one_node_at_a_time():
  with pytest.raises(ValueError, match='at least 1'):
    concurrent_runner.ConcurrentDagRunner(max_parallel_nodes=0)


# --- Real pipelines ---------------------------------------------------------


def _pipeline(root: pathlib.Path, components: List,
              enable_cache: bool = False) -> tfx_pipeline.Pipeline:
  return tfx_pipeline.Pipeline(
      pipeline_name=NAME, pipeline_root=str(root / 'pipeline_root'),
      components=components, enable_cache=enable_cache,
      metadata_connection_config=metadata.sqlite_metadata_connection_config(
          str(root / 'metadata.sqlite')))


def _board(root: pathlib.Path) -> pathlib.Path:
  board = root / 'board'
  board.mkdir(parents=True, exist_ok=True)
  return board


def _ran(board: pathlib.Path) -> Dict[str, int]:
  """Component -> the pid it ran in."""
  return {path.name: int(path.read_text()) for path in board.iterdir()}


def _states(root: pathlib.Path) -> Dict[str, str]:
  store = run_model.open_store(str(root / 'metadata.sqlite'))
  run = run_model.find_run(store, NAME)
  return {e.component_id: e.state for e in run.executions}


def _diamond(root: pathlib.Path, fail_left: str = '', fail_right: str = '',
             enable_cache: bool = False) -> tfx_pipeline.Pipeline:
  """Source -> Left, Right (side by side) -> After (needs Left)."""
  board = str(_board(root))
  source = cc.Source(board=board)
  left = cc.Step(board=board, me='Left', after=source.outputs['out'],
                 fail_with=fail_left).with_id('Left')
  right = cc.Step(board=board, me='Right', after=source.outputs['out'],
                  fail_with=fail_right).with_id('Right')
  after = cc.Step(board=board, me='After',
                  after=left.outputs['out']).with_id('After')
  return _pipeline(root, [source, left, right, after], enable_cache)


def test_independent_nodes_run_at_the_same_time(tmp_path):
  """Each Rendezvous waits for the other: one after the other, the first
  would fail; side by side, both finish."""
  board = str(_board(tmp_path))
  source = cc.Source(board=board)
  one = cc.Rendezvous(board=board, me='One', partner='Two',
                      after=source.outputs['out']).with_id('One')
  two = cc.Rendezvous(board=board, me='Two', partner='One',
                      after=source.outputs['out']).with_id('Two')
  concurrent_runner.ConcurrentDagRunner().run(
      _pipeline(tmp_path, [source, one, two]))
  assert set(_ran(tmp_path / 'board')) == {'Source', 'One', 'Two'}
  assert _states(tmp_path) == {'Source': 'complete', 'One': 'complete',
                               'Two': 'complete'}


def test_a_failed_node_stops_its_branch_but_not_the_others(tmp_path):
  with pytest.raises(ValueError, match='left broke'):
    concurrent_runner.ConcurrentDagRunner().run(
        _diamond(tmp_path, fail_left='left broke'))
  # Right, beside the failure, ran to its end; After, below it, never ran.
  assert set(_ran(tmp_path / 'board')) == {'Source', 'Left', 'Right'}
  states = _states(tmp_path)
  assert states['Right'] == 'complete' and states['Left'] == 'FAILED'
  assert 'After' not in states


def test_a_preferred_nodes_error_is_the_one_raised(tmp_path):
  with pytest.raises(ValueError, match='right broke'):
    concurrent_runner.ConcurrentDagRunner(error_precedence=('Right',)).run(
        _diamond(tmp_path, fail_left='left broke', fail_right='right broke'))


# --- The component worker process -------------------------------------------


@pytest.fixture(scope='module')
def worker():
  started = worker_client.NodeWorker.start(secrets=['hunter2-secret'])
  yield started
  started.close()


def test_worker_nodes_run_in_the_worker_process(tmp_path, worker):
  concurrent_runner.ConcurrentDagRunner(
      worker=worker, worker_nodes=['Right']).run(_diamond(tmp_path))
  ran = _ran(tmp_path / 'board')
  assert set(ran) == {'Source', 'Left', 'Right', 'After'}
  assert ran['Right'] != os.getpid()
  assert ran['Source'] == ran['Left'] == ran['After'] == os.getpid()
  # Recorded in the same store and the same pipeline run as the others.
  assert set(_states(tmp_path).values()) == {'complete'}


def test_a_node_that_fails_in_the_worker_raises_its_error_here(tmp_path,
                                                                worker):
  with pytest.raises(worker_client.WorkerNodeError) as raised:
    concurrent_runner.ConcurrentDagRunner(
        worker=worker, worker_nodes=['Right']).run(
            _diamond(tmp_path, fail_right='no such column: fare'))
  assert raised.value.node_id == 'Right'
  assert raised.value.error_type == 'ValueError'
  assert str(raised.value) == 'ValueError: no such column: fare'
  assert 'concurrent_components.py' in raised.value.worker_traceback
  # The worker is still there for the next node.
  concurrent_runner.ConcurrentDagRunner(
      worker=worker, worker_nodes=['Right']).run(
          _diamond(tmp_path / 'again'))
  assert _states(tmp_path / 'again')['Right'] == 'complete'


def test_a_worker_that_died_is_named_with_its_exit_code(tmp_path):
  dying = worker_client.NodeWorker.start()
  try:
    dying._process.kill()
    with pytest.raises(RuntimeError,
                       match=r'Right: the component worker exited with code'):
      concurrent_runner.ConcurrentDagRunner(
          worker=dying, worker_nodes=['Right']).run(_diamond(tmp_path))
    # Left, beside it, ran; After, below Left, too: only Right's branch
    # stopped.
    assert set(_ran(tmp_path / 'board')) == {'Source', 'Left', 'After'}
  finally:
    dying.close()


def test_close_ends_the_worker_process():
  started = worker_client.NodeWorker.start()
  process = started._process
  assert process.poll() is None
  started.close()
  assert process.poll() is not None
  with pytest.raises(RuntimeError, match='worker closed'):
    started.launch(b'', 'Any')


def test_the_worker_masks_secrets_in_its_logs(tmp_path, capfd):
  """What a node logs in the worker goes through the secrets' filter."""
  started = worker_client.NodeWorker.start(secrets=['s3cr3t-pw'])
  try:
    board = str(_board(tmp_path))
    source = cc.Source(board=board)
    talker = cc.Step(board=board, me='Talker', after=source.outputs['out'],
                     log='mysql://u:s3cr3t-pw@db/mlmd').with_id('Talker')
    concurrent_runner.ConcurrentDagRunner(
        worker=started, worker_nodes=['Talker']).run(
            _pipeline(tmp_path, [source, talker]))
  finally:
    started.close()
  logs = capfd.readouterr().err
  assert 'Talker says: mysql://u:***@db/mlmd' in logs, logs[-2000:]
  assert 's3cr3t-pw' not in logs


# --- Progress events -------------------------------------------------------


class _Recorder:
  """A RunListener that records the runner's calls and passes them on to
  the real progress printer."""

  def __init__(self, printer: progress.ProgressPrinter):
    self.printer = printer
    self.calls: List[Tuple[str, str]] = []
    self._lock = threading.Lock()

  def run_started(self, run_id: str) -> None:
    with self._lock:
      self.calls.append(('run', run_id))
    self.printer.run_started(run_id)

  def executor_started(self, node_id: str) -> None:
    with self._lock:
      self.calls.append(('started', node_id))
    self.printer.executor_started(node_id)

  def node_finished(self, node_id: str) -> None:
    with self._lock:
      self.calls.append(('finished', node_id))
    self.printer.node_finished(node_id)


def _run_with_progress(root: pathlib.Path, worker) -> _Recorder:
  recorder = _Recorder(progress.ProgressPrinter(
      str(root / 'metadata.sqlite'), NAME, total=4, out=io.StringIO()))
  concurrent_runner.ConcurrentDagRunner(
      worker=worker, worker_nodes=['Right'], listener=recorder).run(
          _diamond(root, enable_cache=True))
  recorder.printer.close()
  return recorder


def _progress(recorder: _Recorder) -> Dict[str, List[str]]:
  """Node -> its progress events, in order ('started', 'complete', ...)."""
  events: Dict[str, List[str]] = {}
  for line in recorder.printer.lines:
    node, event = re.match(r'\[\s*\d+/4\] (\S+)\s+(\S+)', line).groups()
    events.setdefault(node, []).append(event)
  return events


def test_progress_starts_only_executors_that_run(tmp_path, worker):
  """A first run and an unchanged re-run, Right in the worker: starts come
  from the executors, here and in the worker, and the re-run's cache hits
  get only their `cached` line."""
  nodes = {'Source', 'Left', 'Right', 'After'}
  first = _run_with_progress(tmp_path, worker)
  assert first.calls[0][0] == 'run'
  for node in nodes:
    # Each node's start comes before its end, whichever thread ran it.
    assert [kind for kind, n in first.calls if n == node] == [
        'started', 'finished'], first.calls
  assert _progress(first) == {node: ['started', 'complete']
                              for node in nodes}
  ran = _ran(tmp_path / 'board')

  again = _run_with_progress(tmp_path, worker)
  assert again.calls[0][0] == 'run' and again.calls[0] != first.calls[0]
  assert sorted(n for kind, n in again.calls if kind == 'finished') == sorted(
      nodes)
  assert not [n for kind, n in again.calls if kind == 'started']
  assert _progress(again) == {node: ['cached'] for node in nodes}
  assert _ran(tmp_path / 'board') == ran  # No executor ran again.
  assert set(_states(tmp_path).values()) == {'cached'}


def test_a_quiet_worker_sends_the_libraries_output_to_the_log(tmp_path):
  """The worker of a default run: TensorFlow's import and a node's library
  log lines go to the run's log file; its terminal stays empty."""
  log = tmp_path / 'logs' / 'run.log'
  terminal = tmp_path / 'terminal'
  with open(terminal, 'w', encoding='utf-8') as stderr:
    started = worker_client.NodeWorker.start(log_path=str(log),
                                             stderr=stderr)
  try:
    board = str(_board(tmp_path))
    source = cc.Source(board=board)
    talker = cc.Step(board=board, me='Talker', after=source.outputs['out'],
                     log='a library line').with_id('Talker')
    concurrent_runner.ConcurrentDagRunner(
        worker=started, worker_nodes=['Talker']).run(
            _pipeline(tmp_path, [source, talker]))
  finally:
    started.close()
  assert terminal.read_text(encoding='utf-8') == ''
  assert 'Talker says: a library line' in log.read_text(encoding='utf-8')
