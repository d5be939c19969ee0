"""TensorBoard serves the latest run's training curves, found through MLMD.

Runs exactly what `make tensorboard` runs: `python -m pipeline.inspection
--tensorboard-logdir` to find the Trainer's log dir, then the venv's
`tensorboard` on 127.0.0.1, and reads the curves back over its HTTP API.
"""

import json
import math
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from pipeline.inspection import run_model
from tests.conftest import PIPELINE_NAME
from tests.conftest import REPO_ROOT

STARTUP_DEADLINE_S = 240


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
    sock.bind(('127.0.0.1', 0))
    return sock.getsockname()[1]


def _get_json(url: str):
  with urllib.request.urlopen(url, timeout=30) as response:
    return json.loads(response.read().decode())


def _tensorboard_cmd() -> list:
  script = pathlib.Path(sys.executable).parent / 'tensorboard'
  return [str(script)] if script.exists() else [sys.executable, '-m',
                                                'tensorboard.main']


def _wait_for_tags(base: str, process: subprocess.Popen, log) -> dict:
  """Polls the tags route until TensorBoard has loaded the event files.

  TensorBoard answers HTTP before its first reload of the log dir finishes,
  so an empty answer just means 'not yet'.
  """
  deadline = time.monotonic() + STARTUP_DEADLINE_S
  while time.monotonic() < deadline:
    if process.poll() is not None:
      log.seek(0)
      pytest.fail(f'tensorboard exited {process.returncode}:\n'
                  f'{log.read()[-3000:]}')
    try:
      tags = _get_json(f'{base}/data/plugin/scalars/tags')
      if tags:
        return tags
    except (urllib.error.URLError, ConnectionError):
      pass  # Not listening yet.
    time.sleep(1)
  log.seek(0)
  pytest.fail(f'TensorBoard served no scalars within {STARTUP_DEADLINE_S} s:'
              f'\n{log.read()[-3000:]}')


@pytest.mark.e2e
def test_tensorboard_serves_training_scalars(e2e_run, tmp_path):
  found = subprocess.run(
      [sys.executable, '-m', 'pipeline.inspection', '--output-dir',
       str(e2e_run.output_dir), '--tensorboard-logdir'],
      capture_output=True, text=True, cwd=str(REPO_ROOT), timeout=120,
      check=False)
  assert found.returncode == 0, found.stderr
  logdir = found.stdout.strip()
  # The log dir comes from MLMD: the latest Trainer's ModelRun artifact.
  latest = run_model.find_run(run_model.open_store(e2e_run.metadata_path),
                              PIPELINE_NAME)
  assert logdir == latest.model_run_uri
  assert pathlib.Path(logdir).is_dir()
  assert pathlib.Path(logdir).is_relative_to(e2e_run.pipeline_root)

  port = _free_port()
  base = f'http://127.0.0.1:{port}'
  with open(tmp_path / 'tensorboard.log', 'w+') as log:
    process = subprocess.Popen(
        _tensorboard_cmd() + ['--logdir', logdir, '--host', '127.0.0.1',
                              '--port', str(port)],
        stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp_path))
    try:
      tags = _wait_for_tags(base, process, log)
      # Keras writes one run per phase, each with epoch_* scalars.
      assert {'train', 'validation'} <= set(tags), tags
      for run in ('train', 'validation'):
        assert {'epoch_loss', 'epoch_auc'} <= set(tags[run]), tags[run]
      curves = {}
      for run in ('train', 'validation'):
        for tag in ('epoch_loss', 'epoch_auc'):
          query = urllib.parse.urlencode({'run': run, 'tag': tag})
          points = _get_json(f'{base}/data/plugin/scalars/scalars?{query}')
          curves[run, tag] = points
          # [wall_time, step, value] per epoch, steps strictly increasing.
          steps = [p[1] for p in points]
          assert len(points) >= 2, (run, tag, points)
          assert steps == sorted(set(steps)), (run, tag, steps)
          assert all(math.isfinite(p[2]) for p in points), (run, tag, points)
      for run in ('train', 'validation'):
        aucs = [p[2] for p in curves[run, 'epoch_auc']]
        assert all(0.0 <= a <= 1.0 for a in aucs), aucs
        # The model learned something: better than chance by the end.
        assert aucs[-1] > 0.6, (run, aucs)
      assert (len(curves['train', 'epoch_loss']) ==
              len(curves['validation', 'epoch_loss']))
      # Training loss goes down over the run.
      train_loss = [p[2] for p in curves['train', 'epoch_loss']]
      assert train_loss[-1] < train_loss[0], train_loss
    finally:
      process.terminate()
      try:
        process.wait(timeout=20)
      except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)
  assert process.returncode is not None
