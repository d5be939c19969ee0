"""LocalDagRunner that launches independent components at the same time.

TFX 1.16's LocalDagRunner launches the nodes one after another, in
topological order (its source carries a TODO for parallel execution), so a
local run keeps one core busy. `ConcurrentDagRunner` launches each node as
soon as every node upstream of it has finished, from a small pool of
threads, with TFX's own portable `launcher.Launcher`, the call
LocalDagRunner makes. What a node does and records in MLMD, the cache and
the conditionals stay TFX's; only the order and the overlap are chosen
here. MLMD's SQLite store takes writes from several connections (its busy
handler waits and retries), and every launcher opens its own.

Threads alone gain nothing for two Python-heavy nodes: one interpreter lock
serializes them (StatisticsGen beside Transform took 26 s where Transform
alone took 20 s). The nodes named in `worker_nodes` therefore run in a
component worker process (`node_worker.py`) on another core; the others
run in this process.

A `listener` (`pipeline/local/progress.py`'s printer) hears when the run
starts, when a node's executor really starts (never for a cache hit: the
launcher's executor operators report it, here or in the worker) and when a
node's launch has ended; each node's calls come from the thread that
launches it, in that order.

A failed node stops its branch, not the run at once: the nodes downstream
of it never start, and the others go on to the end, as in Airflow or
Kubeflow. A gate that fails beside a Transform that fails then still gets
to say why. The error raised is that of the first node in
`error_precedence` that failed, or else the first to fail.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import functools
from typing import Dict
from typing import Iterable
from typing import List
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Set

from absl import logging
from tfx.orchestration.portable import tfx_runner
from tfx.proto.orchestration import pipeline_pb2

from pipeline.local import progress
from pipeline.local import worker_client
from pipeline.orchestration import nodes

# Nodes in flight at once. The pipeline's widest point holds two heavy nodes
# (Transform beside StatisticsGen) and a few light ones.
MAX_PARALLEL_NODES = 4


def downstream_of(failed: Iterable[str],
                  upstream: Mapping[str, Set[str]]) -> Set[str]:
  """Every node that depends, directly or not, on a node in `failed`."""
  blocked: Set[str] = set()
  frontier = set(failed)
  while frontier:
    frontier = {node for node, ups in upstream.items()
                if ups & frontier and node not in blocked}
    blocked |= frontier
  return blocked


def ready_nodes(upstream: Mapping[str, Set[str]], done: Set[str],
                started: Set[str], blocked: Set[str],
                order: Sequence[str]) -> List[str]:
  """Nodes to start now, in `order`: not started, not downstream of a
  failure, and all their upstream nodes done."""
  return [node for node in order
          if node not in started and node not in blocked
          and upstream[node] <= done]


def run_error(errors: Mapping[str, BaseException],
              precedence: Sequence[str]) -> Optional[BaseException]:
  """The error a run reports: a preferred node's, else the first to fail
  (`errors` is in the order the nodes failed)."""
  for node in precedence:
    if node in errors:
      return errors[node]
  return next(iter(errors.values()), None)


class ConcurrentDagRunner(tfx_runner.IrBasedRunner):
  """Runs a pipeline on this machine, independent nodes side by side."""

  def __init__(self, max_parallel_nodes: int = MAX_PARALLEL_NODES,
               worker: Optional[worker_client.NodeWorker] = None,
               worker_nodes: Iterable[str] = (),
               error_precedence: Sequence[str] = (),
               listener: Optional[progress.RunListener] = None):
    """Args:
      max_parallel_nodes: Nodes in flight at once.
      worker: A started component worker; None runs every node here.
      worker_nodes: Ids of the nodes the worker runs.
      error_precedence: Node ids whose errors explain a failed run best,
        in order (the data gates'); they win over other nodes' errors.
      listener: Told of the run's start, each executor's start and each
        node's end (see the module docstring); None tells no one.
    """
    if max_parallel_nodes < 1:
      raise ValueError(
          f'max_parallel_nodes must be at least 1, not {max_parallel_nodes}')
    self._max_parallel_nodes = max_parallel_nodes
    self._worker = worker
    self._worker_nodes = (frozenset(worker_nodes) if worker is not None
                          else frozenset())
    self._error_precedence = tuple(error_precedence)
    self._listener = listener

  def run_with_ir(self, pipeline: pipeline_pb2.Pipeline,
                  run_options: Optional[pipeline_pb2.RunOptions] = None
                  ) -> None:
    """Runs every node once its upstream nodes have finished.

    Raises:
      ValueError: `run_options` was given (partial runs are
        LocalDagRunner's).
      Exception: A node's error (see the module docstring), once no node
        is running any more.
    """
    if run_options is not None:
      raise ValueError('ConcurrentDagRunner does not do partial runs; use '
                       'LocalDagRunner with run_options.')
    run_id = datetime.datetime.now().isoformat()
    run = nodes.for_run(pipeline, run_id)
    kept = [node.pipeline_node for node in run.nodes
            if not node.pipeline_node.execution_options.HasField('skip')]
    order = [node.node_info.id for node in kept]  # Topological, as compiled.
    upstream = {node.node_info.id: set(node.upstream_nodes) & set(order)
                for node in kept}
    # The worker gets the IR as this process runs it: the same run id.
    run_ir = run.SerializeToString() if self._worker_nodes else b''

    listener = self._listener
    if listener is not None:
      listener.run_started(run_id)

    def launch(node_id: str) -> None:
      on_start = (functools.partial(listener.executor_started, node_id)
                  if listener is not None else None)
      try:
        if node_id in self._worker_nodes:
          logging.info('Component %s is running in the worker.', node_id)
          self._worker.launch(run_ir, node_id, on_executor_start=on_start)
        else:
          logging.info('Component %s is running.', node_id)
          nodes.run_and_check(run, node_id, on_executor_start=on_start)
        logging.info('Component %s is finished.', node_id)
      finally:
        # After the launcher published the final state, failed or not.
        if listener is not None:
          listener.node_finished(node_id)

    done: Set[str] = set()
    started: Set[str] = set()
    errors: Dict[str, BaseException] = {}  # In the order they failed.
    running: Dict[concurrent.futures.Future, str] = {}
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=self._max_parallel_nodes,
        thread_name_prefix='component') as pool:
      while True:
        blocked = downstream_of(errors, upstream)
        # The pool runs at most max_parallel_nodes; the rest wait in it.
        for node_id in ready_nodes(upstream, done, started, blocked, order):
          started.add(node_id)
          running[pool.submit(launch, node_id)] = node_id
        if not running:
          break
        finished, _ = concurrent.futures.wait(
            running, return_when=concurrent.futures.FIRST_COMPLETED)
        for future in finished:
          node_id = running.pop(future)
          error = future.exception()
          if error is None:
            done.add(node_id)
          else:
            logging.info('Component %s failed: %s', node_id, error)
            errors[node_id] = error
    error = run_error(errors, self._error_precedence)
    if error is not None:
      raise error
