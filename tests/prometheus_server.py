"""A real Prometheus (Debian's `prometheus`, 2.42) for the tests.

`running()` writes a test copy of the shipped scrape config
(serving/monitoring/prometheus.yml) that scrapes given targets every
second and evaluates the shipped rule file (by its path, unchanged) every
second, starts `prometheus` on a free port with its data in a temporary
folder, waits until it is ready, and stops it afterwards (SIGTERM, then
SIGKILL), also when the test fails. Nothing here uses the systemd service
the Debian package installs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import shutil
import signal
import subprocess
import time
from typing import Any
from typing import Dict
from typing import Iterator
from typing import List
from typing import Sequence
import urllib.error
import urllib.parse
import urllib.request

import yaml

from tests import mariadb_server
from tests.conftest import REPO_ROOT

MONITORING = REPO_ROOT / 'serving' / 'monitoring'
SHIPPED_CONFIG = MONITORING / 'prometheus.yml'
SHIPPED_RULES = MONITORING / 'alerts.yml'
# Generous: not asserted, only how long to wait on a loaded machine.
_START_WAIT_SECONDS = 120.0
_STOP_WAIT_SECONDS = 30.0


@dataclasses.dataclass
class PrometheusServer:
  """A running Prometheus.

  Attributes:
    process: The `prometheus` process.
    port: Its HTTP port on 127.0.0.1.
    log: Its output.
  """
  process: subprocess.Popen
  port: int
  log: pathlib.Path

  def api(self, path: str, **params: str) -> Any:
    """The `data` of a GET on Prometheus' HTTP API; fails on an error."""
    query = f'?{urllib.parse.urlencode(params)}' if params else ''
    url = f'http://127.0.0.1:{self.port}/api/v1/{path}{query}'
    try:
      with urllib.request.urlopen(url, timeout=60) as answer:
        body = json.loads(answer.read())
    except urllib.error.HTTPError as e:
      raise AssertionError(f'{url}: HTTP {e.code}: {e.read()[:500]!r}') from e
    assert body['status'] == 'success', body
    return body['data']

  def query(self, expression: str) -> List[Dict[str, Any]]:
    return self.api('query', query=expression)['result']

  def alerts(self) -> List[Dict[str, Any]]:
    return self.api('alerts')['alerts']

  def ready(self) -> bool:
    try:
      url = f'http://127.0.0.1:{self.port}/-/ready'
      with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status == 200
    except OSError:
      return False

  def output(self) -> str:
    return self.log.read_text(errors='replace')


def binary() -> str:
  path = shutil.which('prometheus')
  assert path, ('prometheus is missing: `make test` installs it (Debian '
                'package prometheus), or apt-get install prometheus')
  return path


def config_for(targets: Sequence[str], folder: pathlib.Path) -> pathlib.Path:
  """The shipped scrape config with 1 s intervals, the given targets and
  the shipped rule file, written to `folder`."""
  with open(SHIPPED_CONFIG, encoding='utf-8') as f:
    config = yaml.safe_load(f)
  config['global'].update(scrape_interval='1s', evaluation_interval='1s')
  config['rule_files'] = [str(SHIPPED_RULES)]
  [job] = config['scrape_configs']
  job['static_configs'] = [{'targets': list(targets)}]
  path = folder / 'prometheus.yml'
  path.write_text(yaml.safe_dump(config))
  return path


@contextlib.contextmanager
def running(targets: Sequence[str], folder: pathlib.Path
            ) -> Iterator[PrometheusServer]:
  """Prometheus scraping `targets` (host:port) with the shipped rules."""
  folder.mkdir(parents=True, exist_ok=True)
  config = config_for(targets, folder)
  port = mariadb_server.free_port()
  log = folder / 'prometheus.log'
  with open(log, 'w') as out:
    process = subprocess.Popen(
        [binary(), f'--config.file={config}',
         f'--storage.tsdb.path={folder / "data"}',
         f'--web.listen-address=127.0.0.1:{port}'],
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
  server = PrometheusServer(process, port, log)
  try:
    deadline = time.monotonic() + _START_WAIT_SECONDS
    while not server.ready():
      if process.poll() is not None:
        raise AssertionError(f'prometheus exited {process.returncode}:\n'
                             f'{server.output()[-3000:]}')
      assert time.monotonic() < deadline, (
          f'prometheus not ready:\n{server.output()[-3000:]}')
      time.sleep(0.2)
    yield server
  finally:
    if process.poll() is None:
      os.killpg(process.pid, signal.SIGTERM)
      try:
        process.wait(timeout=_STOP_WAIT_SECONDS)
      except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
