"""The MLflow worker process, from the run's side: start it early, use it once.

    tracker = tracker_lib.start(layout.tracking, layout.root)  # before TFX
    ...
    logged = tracker.log(request)     # mlflow_log.request_for(...)

Importing MLflow costs about 4 to 5 s of CPU, so the local run starts the
worker (`mlflow_worker.py`) right after it takes the run lock, before it
imports TFX: the import, and the creation of a new store, overlap TFX's
import and the pipeline. This module imports neither MLflow nor TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from typing import Any
from typing import Dict
from typing import Mapping
from typing import Optional

from pipeline.facts import tracking_location as location_lib
from pipeline.tracking import mlflow_worker

# MLflow's HTTP client retries a refused connection 7 times with growing
# pauses (about 2 minutes); a run should not wait that long for a server
# that is down. The user's own settings win.
HTTP_SETTINGS = {
    'MLFLOW_HTTP_REQUEST_MAX_RETRIES': '2',
    'MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR': '1',
    'MLFLOW_HTTP_REQUEST_TIMEOUT': '30',
}
# The longest a run waits at its end for the worker (import, store, upload).
LOG_TIMEOUT_S = 300.0
# How long a worker with nothing to log gets to finish what it does (such as
# creating a new store's tables) before it is killed.
CLOSE_WAIT_S = 30.0


@dataclasses.dataclass(frozen=True)
class Logged:
  """What MLflow recorded for a run."""
  run_id: str
  experiment_id: str
  artifact_uri: str
  model_version: Optional[str]
  seconds_waited: float
  # The worker's: importing MLflow, opening the store, logging; its CPU.
  worker_seconds: Mapping[str, float] = dataclasses.field(
      default_factory=dict)


class TrackingError(RuntimeError):
  """Logging to MLflow failed; the message is one line, password masked."""


class Tracker:
  """An MLflow worker process for one run: started early, used once."""

  def __init__(self, location: location_lib.TrackingLocation,
               process: Optional[subprocess.Popen], stderr,
               failure: str = ''):
    self.location = location
    self._process = process
    self._stderr = stderr
    self._failure = failure
    self._answered = False

  @classmethod
  def start(cls, location: location_lib.TrackingLocation,
            workdir: str) -> 'Tracker':
    """Starts the worker, which imports MLflow and opens the store.

    Args:
      location: The tracking store.
      workdir: The worker's current directory, the output dir: MLflow's
        client creates `./mlruns` there when it opens a database store.

    Never raises: a worker that cannot start is reported by `log`.
    """
    env = dict(os.environ)
    for key, value in HTTP_SETTINGS.items():
      env.setdefault(key, value)
    stderr = tempfile.TemporaryFile(mode='w+', encoding='utf-8')
    process = None
    try:
      # -I: the worker needs nothing of this project, and its folder must
      # not shadow other modules.
      process = subprocess.Popen(
          [sys.executable, '-I', mlflow_worker.__file__],
          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
          text=True, encoding='utf-8', env=env, cwd=workdir)
      process.stdin.write(json.dumps({
          'uri': location.uri,
          'artifact_location': location.artifact_location}) + '\n')
      process.stdin.flush()
    except OSError as e:
      if process is not None:
        process.kill()
        process.wait()
      stderr.close()
      return cls(location, None, None, 'cannot start the MLflow worker: '
                 + mlflow_worker.one_line(e))
    return cls(location, process, stderr)

  def log(self, request: Dict[str, Any],
          timeout_s: float = LOG_TIMEOUT_S) -> Logged:
    """Sends the request and waits for the answer.

    Raises:
      TrackingError: The store is unreachable, MLflow refused something,
        or the worker died or timed out.
    """
    if self._process is None:
      raise TrackingError(self.location.scrub(self._failure))
    started = time.monotonic()
    try:
      self._process.stdin.write(json.dumps(request) + '\n')
      self._process.stdin.close()
    except OSError:  # A broken pipe: the worker is gone.
      out = ''
    else:
      out = self._read_answer(timeout_s)
    waited = time.monotonic() - started
    if out is None:
      self.close(stop=True)
      raise TrackingError(f'no answer within {timeout_s:.0f} s')
    answer = _last_json_line(out)
    if answer is None:
      self._process.wait()
      raise TrackingError(self.location.scrub(
          f'the MLflow worker exited with code {self._process.returncode} '
          f'without an answer{self._stderr_tail()}'))
    self._answered = True
    if 'error' in answer:
      raise TrackingError(self.location.scrub(answer['error']))
    return Logged(run_id=answer['run_id'],
                  experiment_id=answer['experiment_id'],
                  artifact_uri=answer['artifact_uri'],
                  model_version=answer.get('model_version'),
                  seconds_waited=waited,
                  worker_seconds=answer.get('seconds') or {})

  def _read_answer(self, timeout_s: float) -> Optional[str]:
    """The worker's answer line; '' when it exited without one, None when
    it did not answer in time."""
    deadline = time.monotonic() + timeout_s
    stdout = self._process.stdout
    while True:
      remaining = deadline - time.monotonic()
      if remaining <= 0:
        return None
      ready, _, _ = select.select([stdout], [], [], remaining)
      if ready:
        # A line is written and flushed at once; '' at the end of output.
        line = stdout.readline()
        if not line or _last_json_line(line) is not None:
          return line

  def _stderr_tail(self) -> str:
    if self._stderr is None:
      return ''
    self._stderr.seek(0)
    lines = [line.strip() for line in self._stderr.read().splitlines()
             if line.strip()]
    return f': {lines[-1][:300]}' if lines else ''

  def close(self, stop: bool = False) -> None:
    """Ends the worker and frees its files.

    Args:
      stop: End it now. Otherwise it gets the end of its input and a few
        seconds to finish what it does (it may be creating the store's
        tables, which must not be cut short); after an answer, nothing is
        left to do, and it is stopped.
    """
    process, self._process = self._process, None
    if process is not None:
      if process.poll() is None:
        try:
          if stop or self._answered:
            process.terminate()
          elif not process.stdin.closed:
            process.stdin.close()  # End of input: nothing (more) to log.
          process.wait(timeout=CLOSE_WAIT_S)
        except (OSError, subprocess.TimeoutExpired):
          process.kill()
          process.wait()
      for stream in (process.stdin, process.stdout):
        if stream is not None and not stream.closed:
          stream.close()
    if self._stderr is not None:
      self._stderr.close()
      self._stderr = None


def _last_json_line(text: Optional[str]) -> Optional[Dict[str, Any]]:
  for line in reversed((text or '').splitlines()):
    try:
      value = json.loads(line)
    except ValueError:
      continue
    if isinstance(value, dict):
      return value
  return None


def start(location: Optional[location_lib.TrackingLocation],
          workdir: str) -> Optional[Tracker]:
  """A started worker for the run, or None when logging is off.

  Args:
    location: The tracking store; None when logging is off.
    workdir: The output dir (see `Tracker.start`); it must exist.
  """
  return Tracker.start(location, workdir) if location is not None else None


def close(tracker: Optional[Tracker]) -> None:
  if tracker is not None:
    tracker.close()
