"""Shared fixtures.

The end-to-end fixture runs `runners/local_runner.py` exactly as a user
would, in a subprocess, on the committed sample, once per test session; the
tests that inspect a finished run (MLMD, artifacts, TensorBoard, notebooks,
the report) all share it.
"""

import dataclasses
import os
import pathlib
import subprocess
import sys
from typing import List
from typing import Sequence

import pytest

from models import keras_choice

keras_choice.select_keras()

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO_ROOT / 'data' / 'taxi_sample'
LOCAL_RUNNER = REPO_ROOT / 'runners' / 'local_runner.py'
PIPELINE_NAME = 'tabular-taxi'
# Enough steps for the sample model to clear the gate comfortably.
E2E_TRAIN_STEPS = 600


def run_local_pipeline(output_dir: pathlib.Path,
                       extra_args: Sequence[str] = (),
                       data_root: pathlib.Path = SAMPLE_DATA,
                       timeout: int = 900,
                       check: bool = True) -> subprocess.CompletedProcess:
  """Runs the local runner in a subprocess; returns its result."""
  cmd = [sys.executable, str(LOCAL_RUNNER), '--data-root', str(data_root),
         '--output-dir', str(output_dir), *extra_args]
  result = subprocess.run(cmd, capture_output=True, text=True,
                          timeout=timeout, cwd=str(REPO_ROOT),
                          env=dict(os.environ))
  if check and result.returncode != 0:
    raise AssertionError(
        f'{" ".join(cmd)} exited {result.returncode}\n'
        f'--- stdout ---\n{result.stdout[-5000:]}\n'
        f'--- stderr ---\n{result.stderr[-5000:]}')
  return result


@dataclasses.dataclass
class E2ERun:
  """A finished pipeline on the sample: run twice, the second from cache."""
  output_dir: pathlib.Path
  outputs: List[subprocess.CompletedProcess]

  @property
  def metadata_path(self) -> str:
    return str(self.output_dir / 'metadata.sqlite')

  @property
  def serving_model_dir(self) -> pathlib.Path:
    return self.output_dir / 'serving_model'

  @property
  def pipeline_root(self) -> pathlib.Path:
    return self.output_dir / 'pipeline_root'


@pytest.fixture(scope='session')
def e2e_run(tmp_path_factory) -> E2ERun:
  """Runs the pipeline twice on the sample with 2 simulated CPU replicas."""
  output_dir = tmp_path_factory.mktemp('e2e') / 'outputs'
  args = ['--train-steps', str(E2E_TRAIN_STEPS), '--cpu-replicas', '2']
  first = run_local_pipeline(output_dir, args)
  second = run_local_pipeline(output_dir, args)
  return E2ERun(output_dir=output_dir, outputs=[first, second])
