"""A load on the REST server with two versions served: requests, errors,
p50 and p99.

    python -m bench.serving_load --output-dir outputs --requests 5000
        [--clients 8] [--canary-share 0.5] [--data data/taxi/data.csv]

It copies the newest pushed version of OUT/serving_model into a temporary
folder twice, as a stable and a canary version (OUT is not touched),
starts `python -m serving --canary-share S` there on a free port, and
sends N predict requests of 1 to 3 rows of the CSV (typed by the model's
serving contract, the label left out) from C clients, none addressed to a
version, so the server splits them. It prints the requests, the errors,
the latency p50 and p99 seen by the clients, the split between the
versions, and the server's own CPU time per request (its
`process_cpu_seconds_total`), which other load on the machine inflates
less than the latencies. Exit 0 with no error, 1 with errors, 2 bad flags.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any
from typing import Dict
from typing import Iterator
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / 'data' / 'taxi' / 'data.csv'
START_TIMEOUT_SECONDS = 600


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def typed_rows(path: pathlib.Path, contract: Dict[str, Any],
               limit: int = 2000) -> List[Dict[str, Any]]:
  """CSV rows as JSON rows: the contract's features, typed; empty cells and
  other columns (the label) left out; rows without a required one
  skipped."""
  types = {f['name']: f['dtype'] for f in contract['features']}
  required = [f['name'] for f in contract['features'] if f['required']]
  rows = []
  with open(path, newline='', encoding='utf-8') as f:
    for record in csv.DictReader(f):
      row: Dict[str, Any] = {}
      for name, dtype in types.items():
        text = (record.get(name) or '').strip()
        if not text:
          continue
        row[name] = (float(text) if dtype == 'float' else
                     int(float(text)) if dtype == 'int' else text)
      if all(name in row for name in required):
        rows.append(row)
      if len(rows) >= limit:
        break
  return rows


@contextlib.contextmanager
def two_versions(output_dir: pathlib.Path, share: float,
                 work: pathlib.Path) -> Iterator[Tuple[int, int, int]]:
  """A server on copies of the newest pushed version, as stable and
  canary; yields (port, stable, canary)."""
  source_dir = output_dir / 'serving_model'
  versions = sorted(int(p.name) for p in source_dir.iterdir()
                    if p.name.isdigit())
  if not versions:
    raise SystemExit(f'no pushed model under {source_dir}: run `make run` '
                     'first, or pass the --output-dir of a run that pushed.')
  stable, canary = versions[-1], versions[-1] + 1
  for version in (stable, canary):
    shutil.copytree(source_dir / str(stable),
                    work / 'serving_model' / str(version))
  # The labels a restarted server in canary mode reads back.
  (work / 'serving_labels.json').write_text(json.dumps(
      {'stable': stable, 'canary': canary, 'retired': {}}))
  port = _free_port()
  log = open(work / 'server.log', 'w')
  process = subprocess.Popen(
      [sys.executable, '-m', 'serving', '--output-dir', str(work), '--port',
       str(port), '--canary-share', str(share)], stdout=log,
      stderr=subprocess.STDOUT, cwd=str(REPO_ROOT), start_new_session=True)
  try:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
      if process.poll() is not None:
        raise SystemExit(f'the server exited {process.returncode}: see '
                         f'{work / "server.log"}')
      try:
        status, _, body = request(port, 'GET', '/admin/labels')
        if status == 200 and json.loads(body).get('canary') == canary:
          break
      except OSError:
        pass
      if time.monotonic() > deadline:
        raise SystemExit('the server did not serve both versions in time.')
      time.sleep(0.5)
    yield port, stable, canary
  finally:
    if process.poll() is None:
      os.killpg(process.pid, signal.SIGTERM)
      try:
        process.wait(timeout=30)
      except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log.close()


def request(port: int, method: str, path: str, body: Optional[bytes] = None,
            connection: Optional[http.client.HTTPConnection] = None
            ) -> Tuple[int, Dict[str, str], bytes]:
  own = connection is None
  connection = connection or http.client.HTTPConnection('127.0.0.1', port,
                                                        timeout=120)
  try:
    connection.request(method, path, body=body, headers={
        'Content-Type': 'application/json'} if body else {})
    answer = connection.getresponse()
    data = answer.read()
    return answer.status, {k.lower(): v for k, v in answer.getheaders()}, data
  finally:
    if own:
      connection.close()


def server_cpu_seconds(port: int) -> float:
  _, _, body = request(port, 'GET', '/metrics')
  for line in body.decode().splitlines():
    if line.startswith('process_cpu_seconds_total '):
      return float(line.split()[1])
  return float('nan')


def load(port: int, model: str, rows: List[Dict[str, Any]], requests: int,
         clients: int) -> Tuple[List[float], List[int], List[str], float]:
  """(latencies, statuses, versions, seconds) of `requests` predicts."""
  bodies = [json.dumps({'instances': rows[i:i + 1 + i % 3]}).encode()
            for i in range(min(len(rows) - 3, 1000))]
  latencies: List[float] = []
  statuses: List[int] = []
  versions: List[str] = []
  lock = threading.Lock()
  path = f'/v1/models/{model}:predict'

  def client(n: int) -> None:
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
    try:
      for i in range(n, requests, clients):
        start = time.perf_counter()
        try:
          status, headers, _ = request(port, 'POST', path,
                                       bodies[i % len(bodies)], connection)
        except OSError:
          status, headers = 0, {}
          connection.close()
          connection = http.client.HTTPConnection('127.0.0.1', port,
                                                  timeout=120)
        seconds = time.perf_counter() - start
        with lock:
          latencies.append(seconds)
          statuses.append(status)
          versions.append(headers.get('x-model-version', ''))
    finally:
      connection.close()

  threads = [threading.Thread(target=client, args=(n,))
             for n in range(clients)]
  started = time.perf_counter()
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  return latencies, statuses, versions, time.perf_counter() - started


def percentile(values: Sequence[float], q: float) -> float:
  ordered = sorted(values)
  return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m bench.serving_load',
      description=__doc__.splitlines()[0])
  parser.add_argument('--output-dir', required=True, type=pathlib.Path,
                      help='A pipeline output dir with a pushed model.')
  parser.add_argument('--requests', type=int, default=5000)
  parser.add_argument('--clients', type=int, default=8)
  parser.add_argument('--canary-share', type=float, default=0.5,
                      help='The canary\'s share of the requests (default: '
                      '%(default)s).')
  parser.add_argument('--data', type=pathlib.Path, default=DEFAULT_DATA,
                      help='CSV rows to send (default: %(default)s).')
  args = parser.parse_args(argv)
  if args.requests < 1 or args.clients < 1 or not (
      0 < args.canary_share < 1):
    parser.error('--requests and --clients must be >= 1 and --canary-share '
                 'between 0 and 1.')
  with tempfile.TemporaryDirectory(prefix='serving-load-') as folder:
    work = pathlib.Path(folder)
    with two_versions(args.output_dir.resolve(), args.canary_share,
                      work) as (port, stable, canary):
      contract = json.loads(
          (work / 'serving_model' / str(stable) / 'assets.extra' /
           'serving_contract.json').read_text())
      rows = typed_rows(args.data, contract)
      if len(rows) < 4:
        raise SystemExit(f'{args.data}: fewer than 4 rows with every '
                         'required feature.')
      model = contract['dataset']
      load(port, model, rows, 50, args.clients)  # Warm up.
      cpu_before = server_cpu_seconds(port)
      latencies, statuses, versions, seconds = load(
          port, model, rows, args.requests, args.clients)
      cpu = server_cpu_seconds(port) - cpu_before
  errors = sum(1 for s in statuses if s != 200)
  print(f'requests {len(statuses)}, errors {errors}, '
        f'p50 {statistics.median(latencies) * 1000:.1f} ms, '
        f'p99 {percentile(latencies, 0.99) * 1000:.1f} ms, '
        f'{len(statuses) / seconds:.0f} requests/s from {args.clients} '
        f'clients in {seconds:.1f} s')
  print(f'versions: stable {stable} {versions.count(str(stable))}, canary '
        f'{canary} {versions.count(str(canary))} (share '
        f'{args.canary_share:.0%}); server CPU {cpu / len(statuses) * 1000:.2f}'
        ' ms per request')
  return 1 if errors else 0


if __name__ == '__main__':
  sys.exit(main())
