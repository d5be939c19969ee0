"""Live progress of a pipeline run: one line per component start and finish.

LocalDagRunner's own INFO log is mostly protobuf dumps, so the local runner
hides it and prints lines such as these instead:

    [ 7/11] Transform                    started
    [ 7/11] Transform                    complete    58.2s
    [ 3/11] StatisticsGen                cached       0.0s

The lines are driven by the runner's events, not by what the metadata
store shows at some moment. `ConcurrentDagRunner` calls a `RunListener`:

- `run_started(run_id)` once, before any node is launched;
- `executor_started(node_id)` just before a node's executor runs. TFX's
  portable launcher calls its executor only when the node really runs, so a
  cache hit never gets this call (`nodes.executor_operators_reporting`);
  for a node in the component worker, the worker sends it before it runs
  the executor, and the runner passes it on before it reads the answer;
- `node_finished(node_id)` once the launcher has returned or raised. The
  launcher publishes the execution's final state (complete, cached or
  FAILED) before it returns, so the printer then reads the node's
  executions in this run from MLMD (through `pipeline.inspection.run_model`,
  the one reader) and prints each final state with MLMD's duration.

Why this is deterministic. The earlier printer polled MLMD and printed
`started` for any execution it found RUNNING. But the launcher registers
every execution as RUNNING before it looks up the cache and only then
publishes a hit as CACHED, so a poll that fell in that window printed
`started` for a cache hit, on busy machines only. Now a `started` line
requires the executor call, which a cache hit never makes, whatever the
scheduling; and a node's finish line is printed by the thread that launched
it, after its own `started` line and after its final state is in MLMD, so
the order and the state do not depend on timing either. Two nodes' lines
may interleave in any order, as they run side by side.

A node that is not cached but never calls an executor (a resolver or an
importer, which TFX runs itself; a node that failed while resolving its
inputs) gets its `started` line just before its finish line. A node whose
inputs resolved to nothing (a false `Cond`) has no execution and no line.

The display never stops the run: a failure to read the store is retried
briefly, then reported as one warning, and the run goes on.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from typing import Dict
from typing import List
from typing import Optional
from typing import Protocol
from typing import Set
from typing import TextIO
from typing import Union

from absl import logging
from ml_metadata import errors as mlmd_errors
from ml_metadata import metadata_store

from pipeline.facts import metadata_location
from pipeline.inspection import run_model

STARTED = 'started'
# Width of the component-id column; the longest stock id is 26 characters.
_ID_WIDTH = 28
# Reads of the store when a node finished: a SQLite store can be locked by a
# writer for a moment; MySQL can drop a connection. Pauses between tries, s.
_READ_RETRY_PAUSES_S = (0.1, 0.3, 1.0, 3.0)


class RunListener(Protocol):
  """What `ConcurrentDagRunner` tells about a run as it goes (any thread)."""

  def run_started(self, run_id: str) -> None:
    """Before any node is launched; `run_id` is the pipeline run's id."""

  def executor_started(self, node_id: str) -> None:
    """The node's executor is about to run (never for a cache hit)."""

  def node_finished(self, node_id: str) -> None:
    """The node's launch returned or raised; MLMD has its final state."""


def format_line(index: int, total: int, component_id: str, event: str,
                seconds: Optional[float] = None) -> str:
  """One progress line.

  Args:
    index: 1-based position of the component in the order it was seen.
    total: Number of components in the pipeline (0 if unknown).
    component_id: The node id, e.g. 'Transform'.
    event: 'started', or a final state: 'complete', 'cached', 'FAILED'...
    seconds: Duration, for final states.

  Returns:
    The line, without a newline.
  """
  width = len(str(total)) if total else 2
  counter = f'[{index:>{width}}/{total}]' if total else f'[{index:>{width}}]'
  line = f'{counter} {component_id:<{_ID_WIDTH}} {event:<9}'
  if seconds is not None:
    line += f' {seconds:7.1f}s'
  return line.rstrip()


@dataclasses.dataclass
class _Node:
  index: int
  started: bool = False
  finished: Set[int] = dataclasses.field(default_factory=set)


class ProgressPrinter:
  """Prints component progress from a runner's events (a `RunListener`).

      printer = ProgressPrinter(location, 'tabular-taxi', total=11)
      try:
        ConcurrentDagRunner(listener=printer).run(pipeline)
      finally:
        printer.close()

  `location` is a `metadata_location` location, or a SQLite file's path.
  Its methods may be called from any thread; each line is written whole.
  """

  def __init__(self,
               location: Union[str, metadata_location.MetadataLocation],
               pipeline_name: str, total: int = 0,
               out: Optional[TextIO] = None):
    if isinstance(location, str):
      location = metadata_location.SqliteLocation(location)
    self._location = location
    self._pipeline_name = pipeline_name
    self._total = total
    self._out = out
    self._lock = threading.Lock()
    self._store: Optional[metadata_store.MetadataStore] = None
    self._run_id: Optional[str] = None
    self._nodes: Dict[str, _Node] = {}
    self.lines: List[str] = []

  # --- RunListener ---------------------------------------------------------

  def run_started(self, run_id: str) -> None:
    with self._lock:
      self._run_id = run_id
      self._nodes.clear()

  def executor_started(self, node_id: str) -> None:
    with self._lock:
      node = self._node(node_id)
      if not node.started:
        node.started = True
        self._emit(format_line(node.index, self._total, node_id, STARTED))

  def node_finished(self, node_id: str) -> None:
    with self._lock:
      if self._run_id is None:
        return
      try:
        executions = self._executions(node_id)
      except Exception as e:
        # A display helper must never take the run down with it; the
        # summary after the run reads the store again anyway.
        logging.warning('Progress: cannot read how %s ended: %s: %s',
                        node_id, type(e).__name__, e)
        return
      for execution in executions:
        node = self._node(node_id)
        if execution.proto.id in node.finished:
          continue
        node.finished.add(execution.proto.id)
        # Ran without an executor call (a resolver, an input error): its
        # start line now, so that every run execution has one.
        if execution.state != 'cached' and not node.started:
          node.started = True
          self._emit(format_line(node.index, self._total, node_id, STARTED))
        self._emit(format_line(node.index, self._total, node_id,
                               execution.state, execution.seconds))

  # ---------------------------------------------------------------------

  def close(self) -> None:
    """Lets go of the metadata store."""
    with self._lock:
      self._store = None

  def _node(self, node_id: str) -> _Node:
    node = self._nodes.get(node_id)
    if node is None:
      node = self._nodes[node_id] = _Node(index=len(self._nodes) + 1)
    return node

  def _executions(self, node_id: str) -> List[run_model.Execution]:
    """The node's executions in this run, oldest first.

    Retried a few times: a SQLite store may be locked by a writer for a
    moment, and a MySQL server may have dropped the connection.
    """
    for pause in (*_READ_RETRY_PAUSES_S, None):
      try:
        if self._store is None:
          self._store = run_model.open_store(self._location)
        run = run_model.read_run(self._store, self._run_id,
                                 self._pipeline_name)
        return [e for e in run.executions if e.component_id == node_id]
      except (mlmd_errors.StatusError,
              metadata_location.MetadataStoreError) as e:
        self._store = None
        if pause is None:
          raise
        logging.debug('Progress: store not readable yet: %s', e)
        time.sleep(pause)
    return []  # Not reached: the last try returns or raises.

  def _emit(self, line: str) -> None:
    self.lines.append(line)
    # One write, newline included: print() writes the line and its end
    # separately, and a component printing from another thread (Keras'
    # epoch lines) could land between the two, on the progress line.
    out = self._out or sys.stdout
    out.write(line + '\n')
    out.flush()
