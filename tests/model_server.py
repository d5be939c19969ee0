"""The REST server (`python -m serving`) as a real process, for the tests.

`running()` starts it on a free port on 127.0.0.1 in its own session,
waits until the model answers (or leaves that to `wait_ready`), and stops
it afterwards (SIGTERM, then SIGKILL), also when the test fails. `instance_of` turns a raw tf.Example
from ExampleGen into the JSON row a client sends; `loaded_model` loads a
pushed version once per session, for the outputs of its own
`serving_default`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import http.client
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Any
from typing import Dict
from typing import Iterator
from typing import Optional
from typing import Sequence
from typing import Tuple

from tests import mariadb_server
from tests.conftest import REPO_ROOT

# How long to wait for TensorFlow's import and the model's load on a
# loaded machine; not asserted.
_START_WAIT_SECONDS = 300.0
_STOP_WAIT_SECONDS = 30.0


@dataclasses.dataclass
class ModelServer:
  """A running server.

  Attributes:
    process: The `python -m serving` process.
    port: Its port on 127.0.0.1.
    output_dir: The --output-dir it serves.
    log: Its stdout and stderr.
  """
  process: subprocess.Popen
  port: int
  output_dir: pathlib.Path
  log: pathlib.Path

  def request(self, method: str, path: str, body: Optional[bytes] = None,
              connection: Optional[http.client.HTTPConnection] = None
              ) -> Tuple[int, Dict[str, str], bytes]:
    """(status, headers, body) of one request."""
    own = connection is None
    connection = connection or self.connection()
    try:
      connection.request(method, path, body=body,
                         headers={'Content-Type': 'application/json'}
                         if body is not None else {})
      response = connection.getresponse()
      data = response.read()
      headers = {k.lower(): v for k, v in response.getheaders()}
      return response.status, headers, data
    finally:
      if own:
        connection.close()

  def json(self, method: str, path: str, payload: Any = None,
           raw: Optional[bytes] = None) -> Tuple[int, Any]:
    body = raw if raw is not None else (
        None if payload is None else json.dumps(payload).encode())
    status, _, data = self.request(method, path, body)
    return status, json.loads(data)

  def connection(self) -> http.client.HTTPConnection:
    return http.client.HTTPConnection('127.0.0.1', self.port, timeout=120)

  def output(self) -> str:
    return self.log.read_text(errors='replace')

  def ready(self, model: str = 'taxi') -> bool:
    try:
      status, _, _ = self.request('GET', f'/v1/models/{model}')
    except OSError:
      return False
    return status == 200

  def wait_ready(self, model: str = 'taxi') -> None:
    """Waits until `model` answers; fails with the log if it exits."""
    deadline = time.monotonic() + _START_WAIT_SECONDS
    while not self.ready(model):
      if self.process.poll() is not None:
        raise AssertionError(f'the server exited {self.process.returncode} '
                             f'before serving:\n{self.output()[-4000:]}')
      if time.monotonic() > deadline:
        raise AssertionError('the server did not answer within '
                             f'{_START_WAIT_SECONDS:.0f} s:\n'
                             f'{self.output()[-4000:]}')
      time.sleep(0.25)


def command(output_dir: pathlib.Path, port: int,
            extra_args: Sequence[str] = ()) -> list:
  return [sys.executable, '-m', 'serving', '--output-dir', str(output_dir),
          '--port', str(port), *extra_args]


@contextlib.contextmanager
def running(output_dir: pathlib.Path, log: pathlib.Path,
            extra_args: Sequence[str] = (), wait: bool = True
            ) -> Iterator[ModelServer]:
  """Starts the server and stops it after; `wait`: until it answers."""
  port = mariadb_server.free_port()
  with open(log, 'w') as out:
    process = subprocess.Popen(
        command(output_dir, port, extra_args), stdout=out,
        stderr=subprocess.STDOUT, cwd=str(REPO_ROOT),
        env=dict(os.environ), start_new_session=True)
  server = ModelServer(process, port, output_dir, log)
  try:
    if wait:
      server.wait_ready()
    yield server
  finally:
    if process.poll() is None:
      os.killpg(process.pid, signal.SIGTERM)
      try:
        process.wait(timeout=_STOP_WAIT_SECONDS)
      except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@functools.lru_cache(maxsize=None)
def loaded_model(version_dir: str) -> Any:
  """A pushed version loaded once per test session (model_store.load)."""
  from serving import model_store
  return model_store.load(version_dir, int(os.path.basename(version_dir)))


def serialized_without(examples: Sequence[Any], excluded: Sequence[str]
                       ) -> list:
  """The examples serialized without the `excluded` features."""
  out = []
  for example in examples:
    stripped = type(example)()
    stripped.CopyFrom(example)
    for key in excluded:
      if key in stripped.features.feature:
        del stripped.features.feature[key]
    out.append(stripped.SerializeToString())
  return out


def instance_of(example: Any, excluded: Sequence[str]) -> Dict[str, Any]:
  """The JSON row of a raw tf.Example: one value per feature, empty ones
  (a CSV's empty cells) left out, as are the `excluded` columns."""
  row = {}
  for name, feature in example.features.feature.items():
    if name in excluded:
      continue
    kind = feature.WhichOneof('kind')
    values = list(getattr(feature, kind).value) if kind else []
    if not values:
      continue
    value = values[0]
    row[name] = value.decode('utf-8') if isinstance(value, bytes) else value
  return row
