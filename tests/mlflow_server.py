"""A real `mlflow server` for the tests, on 127.0.0.1, in a temp dir.

`start()` launches `mlflow server` (one gunicorn worker, a SQLite backend
and proxied artifacts in the directory) on a free port and returns at once,
so that the server comes up while other tests run; `wait_ready()` then
waits for its /health endpoint, and `stop()` ends the server's whole
process group. It is the venv's own `mlflow` (MLflow 2.22.2 from the lock).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests import mariadb_server

# How long to wait for a start on a loaded machine; not asserted.
START_WAIT_SECONDS = 240.0
STOP_WAIT_SECONDS = 30.0
MLFLOW = pathlib.Path(sys.executable).parent / 'mlflow'


@dataclasses.dataclass
class MlflowServer:
  """A started server.

  Attributes:
    root: Its directory: the SQLite store, the artifacts and the log.
    port: Its TCP port on 127.0.0.1.
    process: The `mlflow server` process (leader of its process group).
    started: time.monotonic() at start.
  """
  root: pathlib.Path
  port: int
  process: subprocess.Popen
  started: float

  @property
  def url(self) -> str:
    return f'http://127.0.0.1:{self.port}'

  @property
  def backend_uri(self) -> str:
    return f'sqlite:///{self.root / "mlflow.db"}'

  @property
  def log(self) -> pathlib.Path:
    return self.root / 'server.log'

  def _log_tail(self) -> str:
    if not self.log.exists():
      return ''
    return self.log.read_text(encoding='utf-8', errors='replace')[-3000:]

  def wait_ready(self, timeout: float = START_WAIT_SECONDS) -> float:
    """Waits until /health answers; returns the seconds since start.

    Raises:
      RuntimeError: The server exited, or did not answer in time; the
        message holds the end of its log.
    """
    deadline = time.monotonic() + timeout
    while True:
      if self.process.poll() is not None:
        raise RuntimeError(
            f'mlflow server exited {self.process.returncode} while '
            f'starting:\n{self._log_tail()}')
      try:
        with urllib.request.urlopen(f'{self.url}/health', timeout=5) as r:
          if r.status == 200:
            return time.monotonic() - self.started
      except (urllib.error.URLError, ConnectionError, TimeoutError):
        pass  # Not listening yet.
      if time.monotonic() > deadline:
        raise RuntimeError(f'mlflow server did not answer on {self.url} '
                           f'within {timeout:.0f} s:\n{self._log_tail()}')
      time.sleep(0.5)

  def stop(self) -> None:
    """SIGTERM to the server and its gunicorn workers; SIGKILL if stuck."""
    if self.process.poll() is None:
      try:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(STOP_WAIT_SECONDS)
      except subprocess.TimeoutExpired:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
      except ProcessLookupError:
        pass
    try:
      os.killpg(self.process.pid, signal.SIGKILL)  # Stray workers.
    except ProcessLookupError:
      pass


def start(root: pathlib.Path) -> MlflowServer:
  """Starts `mlflow server` in `root` on a free port; does not wait."""
  root.mkdir(parents=True, exist_ok=True)
  port = mariadb_server.free_port()
  cmd = [str(MLFLOW), 'server',
         '--backend-store-uri', f'sqlite:///{root / "mlflow.db"}',
         '--artifacts-destination', str(root / 'artifacts'),
         '--host', '127.0.0.1', '--port', str(port), '--workers', '1']
  with open(root / 'server.log', 'w', encoding='utf-8') as log:
    process = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, cwd=str(root),
        start_new_session=True,
        preexec_fn=mariadb_server._die_with_parent)
  return MlflowServer(root=root, port=port, process=process,
                      started=time.monotonic())
