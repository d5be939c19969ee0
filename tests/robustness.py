"""Helpers for the bad-input, fault and concurrency tests.

They build data folders from the committed sample, copy a finished output
dir, snapshot what must survive a bad run: the pushed models (hashed
byte for byte), the metadata store's runs, and what each run executed; and
they kill a run in the middle of its Trainer.
"""

import csv
import dataclasses
import itertools
import os
import pathlib
import shutil
import signal
import subprocess
import time
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

from ml_metadata.proto import metadata_store_pb2

from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from tests import pipeline_state
from tests.conftest import PIPELINE_NAME
from tests.conftest import SAMPLE_DATA

Row = List[str]


def sample_table(limit: Optional[int] = None
                 ) -> Tuple[List[str], List[Row]]:
  """Header and rows of the committed 2,000-row sample (first `limit`)."""
  with open(SAMPLE_DATA / 'data.csv', newline='', encoding='utf-8') as f:
    reader = csv.reader(f)
    header = next(reader)
    rows = list(itertools.islice(reader, limit))
  return header, rows


def write_csv(path: pathlib.Path, header: Sequence[str],
              rows: Sequence[Sequence[str]]) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, 'w', newline='', encoding='utf-8') as f:
    writer = csv.writer(f, lineterminator='\n')
    writer.writerow(header)
    writer.writerows(rows)
  return path


def mutate_column(folder: pathlib.Path, column: str,
                  change: Callable[[int, str], str],
                  limit: Optional[int] = None) -> pathlib.Path:
  """Writes the sample with `change(row_index, value)` applied to a column."""
  header, rows = sample_table(limit)
  i = header.index(column)
  for n, row in enumerate(rows):
    row[i] = change(n, row[i])
  write_csv(folder / 'data.csv', header, rows)
  return folder


@dataclasses.dataclass
class OutputState:
  """What a bad run must leave untouched."""
  pushed: Dict[str, str]
  run_ids: List[str]
  trainer_executions: int


def trainer_execution_count(metadata_path: str) -> int:
  store = run_model.open_store(metadata_path)
  return sum(1 for e in store.get_executions()
             if _node_of(store, e) == 'Trainer')


def _node_of(store, execution: metadata_store_pb2.Execution) -> str:
  for context in store.get_contexts_by_execution(execution.id):
    if context.type == 'node':
      return context.name.split('.', 1)[-1]
  return ''


def snapshot(output_dir: pathlib.Path) -> OutputState:
  metadata_path = str(output_dir / 'metadata.sqlite')
  store = run_model.open_store(metadata_path)
  return OutputState(
      pushed=pipeline_state.tree_digest(output_dir / 'serving_model'),
      run_ids=[c.name for c in run_model.run_contexts(store, PIPELINE_NAME)],
      trainer_executions=trainer_execution_count(metadata_path))


def copy_outputs(source: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
  shutil.copytree(source, target)
  return target


def failure_line(result: subprocess.CompletedProcess) -> str:
  """The single 'RUN FAILED:' line a failed run prints on stderr."""
  lines = [line for line in result.stderr.splitlines()
           if line.startswith('RUN FAILED:')]
  assert len(lines) == 1, (
      f'expected exactly one RUN FAILED line, got {lines}\n--- stdout ---\n'
      f'{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}')
  return lines[0]


def latest_summary(output_dir: pathlib.Path) -> run_summary.RunSummary:
  return run_summary.summarize_latest(str(output_dir / 'metadata.sqlite'),
                                      PIPELINE_NAME)


def executed(summary: run_summary.RunSummary) -> Dict[str, str]:
  """Component id -> state for one run."""
  return {c.component_id: c.state for c in summary.components}


# --- Killing a run mid-Trainer (fault tests). ------------------------------

TRAINER_START_TIMEOUT_S = 900


def _trainer_runs(output_dir: pathlib.Path) -> set:
  folder = output_dir / 'pipeline_root' / 'Trainer' / 'model_run'
  return set(os.listdir(folder)) if folder.is_dir() else set()


def _training_started(output_dir: pathlib.Path, run_id: str) -> bool:
  """Keras has begun fitting: its TensorBoard train log exists."""
  train_logs = (output_dir / 'pipeline_root' / 'Trainer' / 'model_run' /
                run_id / 'train')
  return train_logs.is_dir() and any(train_logs.iterdir())


def trainer_checkpoints(output_dir: pathlib.Path) -> List[pathlib.Path]:
  """The Trainer's saved backups (models/checkpoints.py), if any."""
  return sorted((output_dir / 'pipeline_root' / 'Trainer' /
                 'checkpoints').glob('*/chief/checkpoint'))


def start_and_kill_in_trainer(cmd: Sequence[str], output_dir: pathlib.Path,
                              log: pathlib.Path, cwd: pathlib.Path,
                              after_checkpoint: bool = False
                              ) -> Tuple[int, str]:
  """Starts a run; SIGKILLs its process group once the Trainer is fitting.

  Args:
    cmd: The runner command line; its --output-dir must be `output_dir`.
    output_dir: The run's output dir.
    log: Where the run's stdout and stderr go.
    cwd: The run's working directory.
    after_checkpoint: Wait until the Trainer has saved its first
      checkpoint, too (the run must train more than one epoch).

  Returns:
    The killed Trainer execution's id (its model_run folder name), and the
    run's log.
  """
  before = _trainer_runs(output_dir)
  with open(log, 'w') as out:
    proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT,
                            cwd=str(cwd), start_new_session=True)
    try:
      deadline = time.monotonic() + TRAINER_START_TIMEOUT_S
      started = None
      while started is None:
        assert proc.poll() is None, (
            f'run ended (exit {proc.returncode}) before Trainer started:\n'
            + log.read_text()[-3000:])
        assert time.monotonic() < deadline, 'Trainer never started'
        fresh = sorted(_trainer_runs(output_dir) - before)
        if (fresh and _training_started(output_dir, fresh[-1]) and
            (not after_checkpoint or trainer_checkpoints(output_dir))):
          started = fresh[-1]
        else:
          time.sleep(0.2)
    finally:
      # The run and anything it spawned: it started its own session.
      os.killpg(proc.pid, signal.SIGKILL)
      proc.wait()
  assert proc.returncode == -signal.SIGKILL
  return int(started), log.read_text()
