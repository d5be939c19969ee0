"""Helpers for the bad-input, fault and concurrency tests.

They build data folders from the committed sample, copy a finished output
dir, and snapshot what must survive a bad run: the pushed models (hashed
byte for byte), the metadata store's runs, and what each run executed.
"""

import csv
import dataclasses
import itertools
import pathlib
import shutil
import subprocess
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

from ml_metadata.proto import metadata_store_pb2

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
  store = run_summary.open_store(metadata_path)
  return sum(1 for e in store.get_executions()
             if _node_of(store, e) == 'Trainer')


def _node_of(store, execution: metadata_store_pb2.Execution) -> str:
  for context in store.get_contexts_by_execution(execution.id):
    if context.type == 'node':
      return context.name.split('.', 1)[-1]
  return ''


def snapshot(output_dir: pathlib.Path) -> OutputState:
  metadata_path = str(output_dir / 'metadata.sqlite')
  store = run_summary.open_store(metadata_path)
  return OutputState(
      pushed=pipeline_state.tree_digest(output_dir / 'serving_model'),
      run_ids=run_summary.run_ids(store, PIPELINE_NAME),
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
  store = run_summary.open_store(str(output_dir / 'metadata.sqlite'))
  return run_summary.summarize(store, PIPELINE_NAME)


def executed(summary: run_summary.RunSummary) -> Dict[str, str]:
  """Component id -> state for one run."""
  return {c.component_id: c.state for c in summary.components}
