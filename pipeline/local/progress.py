"""Live progress of a pipeline run: one line per component start and finish.

LocalDagRunner's own INFO log is mostly protobuf dumps, so the local runner
hides it. Instead, a background thread polls the run's metadata store (the
SQLite file read-only, or the MySQL database; about once a second) and
prints lines such as

    [ 7/11] Transform                    started
    [ 7/11] Transform                    complete    58.2s
    [ 3/11] StatisticsGen                cached       0.0s

The run, its executions, their states and durations come from
`pipeline.inspection.run_model`, the one reader of MLMD; durations are the
executions' MLMD timestamps, so they are exact even though the store is only
polled. The display is best effort: a locked or half-created store is retried
on the next poll, and any other failure stops the display with a warning; it
never stops the run.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from typing import Dict
from typing import List
from typing import Optional
from typing import TextIO
from typing import Union

from absl import logging
from ml_metadata import errors as mlmd_errors
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.inspection import metadata_location
from pipeline.inspection import run_model

STARTED = 'started'
# Width of the component-id column; the longest stock id is 26 characters.
_ID_WIDTH = 28


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
class _Seen:
  index: int
  component_id: str
  started: bool = False
  finished: bool = False


class ProgressPrinter:
  """Polls an MLMD store in a daemon thread and prints component progress.

  Use as a context manager around the runner call:

      with ProgressPrinter(location, 'tabular-taxi', total=11):
        LocalDagRunner().run(pipeline)

  `location` is a `metadata_location` location, or a SQLite file's path.
  Only the pipeline run that starts after `start()` is followed.
  """

  def __init__(self,
               location: Union[str, metadata_location.MetadataLocation],
               pipeline_name: str, total: int = 0,
               interval: float = 1.0, out: Optional[TextIO] = None):
    if isinstance(location, str):
      location = metadata_location.SqliteLocation(location)
    self._location = location
    self._pipeline_name = pipeline_name
    self._total = total
    self._interval = interval
    self._out = out
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None
    self._store: Optional[metadata_store.MetadataStore] = None
    self._not_before_ms = 0
    self._run_context: Optional[metadata_store_pb2.Context] = None
    self._seen: Dict[int, _Seen] = {}
    self.lines: List[str] = []

  def start(self) -> 'ProgressPrinter':
    # Runs created from now on are ours; LocalDagRunner creates its
    # pipeline_run context after this call returns. 1 s of slack absorbs
    # timestamp rounding, far less than a pipeline's start-up time.
    self._not_before_ms = int(time.time() * 1000) - 1000
    self._thread = threading.Thread(target=self._loop, name='pipeline-progress',
                                    daemon=True)
    self._thread.start()
    return self

  def stop(self, timeout: float = 10.0) -> None:
    """Prints what finished since the last poll, then stops the thread."""
    if self._thread is None:
      return
    self._stop.set()
    self._thread.join(timeout)
    self._thread = None
    self._store = None

  def __enter__(self) -> 'ProgressPrinter':
    return self.start()

  def __exit__(self, *exc_info) -> None:
    self.stop()

  def _loop(self) -> None:
    try:
      while True:
        stopping = self._stop.wait(self._interval)
        self._poll_guarded()
        if stopping:
          return
    except Exception as e:  # pylint: disable=broad-except
      # A display helper must never take the run down with it; say why the
      # lines stopped and let the run finish (its summary follows anyway).
      logging.warning('Progress display stopped: %s: %s', type(e).__name__, e)

  def _poll_guarded(self) -> None:
    try:
      self.poll()
    except (mlmd_errors.StatusError,
            metadata_location.MetadataStoreError) as e:
      # Store locked by a writer, not initialized yet, or a MySQL server
      # that dropped the connection: try next time.
      logging.debug('Progress poll skipped: %s', e)
      self._store = None

  def poll(self) -> None:
    """One look at the store; prints lines for new starts and finishes."""
    if self._store is None:
      local_file = self._location.local_file
      if local_file is not None and not os.path.isfile(local_file):
        return
      try:
        self._store = run_model.open_store(self._location)
      except RuntimeError as e:
        # MLMD's connection error: the runner has created the file but not
        # its tables yet (a read-only connection cannot). Try next time.
        logging.debug('Progress: store not ready: %s', e)
        return
    store = self._store
    if self._run_context is None:
      # The newest run of our pipeline created after `start()`, if any.
      runs = run_model.run_contexts(store, self._pipeline_name,
                                    since_ms=self._not_before_ms)
      if not runs:
        return
      self._run_context = runs[-1]
    run = run_model.read_run(store, self._run_context, self._pipeline_name)
    for execution in run.executions:
      seen = self._seen.get(execution.proto.id)
      if seen is None:
        seen = _Seen(index=len(self._seen) + 1,
                     component_id=execution.component_id)
        self._seen[execution.proto.id] = seen
      # A cached component never really starts; it gets its finish line only.
      if not seen.started and execution.state != 'cached':
        seen.started = True
        self._emit(format_line(seen.index, self._total, seen.component_id,
                               STARTED))
      if execution.finished and not seen.finished:
        seen.finished = True
        self._emit(format_line(seen.index, self._total, seen.component_id,
                               execution.state, execution.seconds))

  def _emit(self, line: str) -> None:
    self.lines.append(line)
    # One write, newline included: print() writes the line and its end
    # separately, and a component printing from another thread (Keras'
    # epoch lines) could land between the two, on the progress line.
    out = self._out or sys.stdout
    out.write(line + '\n')
    out.flush()

