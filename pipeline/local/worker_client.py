"""The component worker process, from the run's side.

    worker = worker_client.NodeWorker.start(verbose, secrets)  # before TFX
    ...
    worker.launch(pipeline_ir_bytes, 'StatisticsGen')   # blocks until done
    worker.close()

`node_worker.py` is the process itself. This module imports neither TFX nor
TensorFlow, so the run can start the worker before its own imports.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from typing import Callable
from typing import Optional
from typing import Sequence
from typing import TextIO


class WorkerNodeError(RuntimeError):
  """A node failed in the worker: its error type and message, as one."""

  def __init__(self, node_id: str, error_type: str, message: str,
               worker_traceback: str = ''):
    super().__init__(f'{error_type}: {message}' if message else error_type)
    self.node_id = node_id
    self.error_type = error_type
    self.worker_traceback = worker_traceback


class NodeWorker:
  """One worker process; runs one node at a time."""

  def __init__(self, process: Optional[subprocess.Popen], failure: str = ''):
    self._process = process
    self._failure = failure
    self._lock = threading.Lock()

  @classmethod
  def start(cls, verbose: bool = False,
            secrets: Sequence[str] = (), log_path: Optional[str] = None,
            stderr: Optional[TextIO] = None) -> 'NodeWorker':
    """Starts the worker, which then imports TFX and TFDV.

    Call it from the thread that outlives the run (the main one): Linux
    ends the worker when the thread that started it ends.

    Args:
      verbose: Log at INFO level, everything on the terminal.
      secrets: Strings the worker masks in its logs.
      log_path: The run's log file (`run_log.py`): unless `verbose`, the
        worker sends the libraries' output there, as the run does.
      stderr: The terminal, for the worker's own project lines; None for
        this process's stderr.

    Never raises: a worker that cannot start is reported by `launch`.
    """
    try:
      # The worker's stderr is the run's terminal: its components' project
      # lines show as they would in this process (masked by the worker,
      # which gets the secrets).
      process = subprocess.Popen(
          [sys.executable, '-m', 'pipeline.local.node_worker'],
          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
          text=True, encoding='utf-8')
      process.stdin.write(json.dumps(
          {'verbose': verbose, 'secrets': [s for s in secrets if s],
           'log': log_path}) + '\n')
      process.stdin.flush()
    except OSError as e:
      return cls(None, f'cannot start the component worker: {e}')
    return cls(process)

  def launch(self, pipeline_ir: bytes, node_id: str,
             on_executor_start: Optional[Callable[[], None]] = None
             ) -> None:
    """Runs the node in the worker and waits for it.

    Args:
      pipeline_ir: The compiled pipeline, its run id filled in.
      node_id: The node to run.
      on_executor_start: Called, in this thread, when the worker says the
        node's executor starts (never for a cache hit), before its answer.

    Raises:
      WorkerNodeError: The node failed; its error is in the message.
      RuntimeError: The worker could not start, or died.
    """
    with self._lock:
      if self._process is None:
        raise RuntimeError(f'{node_id}: {self._failure or "worker closed"}')
      request = {'pipeline': base64.b64encode(pipeline_ir).decode('ascii'),
                 'node': node_id}
      try:
        self._process.stdin.write(json.dumps(request) + '\n')
        self._process.stdin.flush()
        answer = self._read_answer(on_executor_start)
      except OSError:  # A broken pipe: the worker is gone.
        answer = None
      if answer is None:
        code = self._process.wait()
        self._process = None
        self._failure = f'the component worker exited with code {code}'
        raise RuntimeError(f'{node_id}: {self._failure}')
      if 'error' in answer:
        raise WorkerNodeError(node_id, answer.get('error_type', 'Error'),
                              answer['error'], answer.get('traceback', ''))

  def _read_answer(self, on_executor_start: Optional[Callable[[], None]]
                   ) -> Optional[dict]:
    """The request's answer, after its `started` notes; None at EOF."""
    while True:
      line = self._process.stdout.readline()
      if not line:
        return None
      message = json.loads(line)
      if 'started' not in message:
        return message
      if on_executor_start is not None:
        on_executor_start()

  def close(self) -> None:
    """Stops the worker.

    It is killed, not asked to exit: no node is running in it once the lock
    is ours (each answer comes after the node's execution is recorded), and
    an interpreter holding TensorFlow takes seconds to tear itself down.
    """
    with self._lock:
      process, self._process = self._process, None
    if process is None:
      return
    process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
      try:
        stream.close()
      except OSError:  # A broken pipe: it has gone.
        pass
