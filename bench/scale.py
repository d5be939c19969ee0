"""Scale bench: the pipeline on the taxi rows replicated to 150 k and 1.5 M.

For each size it writes the CSV at run time (the 15,002 taxi rows of
`data/taxi/data.csv`, repeated, into a temporary directory; never
committed), runs `runners/local_runner.py` on it once, and reports per Beam
component:

- its wall time (MLMD), the rows it processed and rows per second;
- the peak RSS of the largest process and of the process tree while it ran
  (psutil samples, attributed to the component by its MLMD start and end);
- a floor for the same work done by the stack's fastest in-process path:
  pyarrow's CSV reader plus tfx-bsl's RecordBatch-to-tf.Example encoder for
  ExampleGen, and TFDV's in-memory statistics (no Beam) for StatisticsGen.

It also checks that StatisticsGen and the Evaluator saw every row: the
examples in the statistics of all splits add up to the rows written, and
the Evaluator's example count equals the test split's.

    python -m bench.scale --rows 150000 1500000 --output-dir outputs/bench-scale
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple
import warnings

from bench import bench
from pipeline.facts import components as component_ids
from pipeline.facts import files
from pipeline.inspection import run_model

TAXI_CSV = bench.PROJECT_DATA_ROOT / 'data.csv'
DEFAULT_ROWS = (150_000, 1_500_000)
BEAM_COMPONENTS = (run_model.EXAMPLE_GEN_SUFFIX, run_model.STATISTICS_GEN,
                   run_model.TRANSFORM, run_model.EVALUATOR)
MEMORY_BOUND_GB = 4.0
TEST_SPLIT = 'test'


@dataclasses.dataclass
class ComponentFigures:
  component: str
  seconds: Optional[float]
  rows: Optional[int]
  peak_largest_gb: Optional[float]
  peak_tree_gb: Optional[float]
  floor_rows_per_s: Optional[float] = None

  @property
  def rows_per_s(self) -> Optional[float]:
    if not self.seconds or not self.rows:
      return None
    return self.rows / self.seconds


@dataclasses.dataclass
class SizeResult:
  rows: int
  wall_s: float
  peak_largest_gb: float
  peak_tree_gb: float
  statistics_rows: int
  evaluator_rows: Optional[int]
  test_rows: int
  components: List[ComponentFigures]


def write_replicated_csv(rows: int, path: pathlib.Path) -> pathlib.Path:
  """The taxi rows, repeated (the last copy cut short) up to `rows` rows."""
  lines = TAXI_CSV.read_text(encoding='utf-8').splitlines(keepends=True)
  header, body = lines[0], lines[1:]
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(header)
    left = rows
    while left > 0:
      chunk = body[:left]
      f.writelines(chunk)
      left -= len(chunk)
  return path


def _as_list_array(column):
  """A pyarrow column as the list array a tf.Example feature needs."""
  import numpy as np
  import pyarrow as pa
  column = column.combine_chunks()
  if pa.types.is_null(column.type) or pa.types.is_string(column.type):
    column = column.cast(pa.binary())
  elif pa.types.is_integer(column.type):
    column = column.cast(pa.int64())
  elif pa.types.is_floating(column.type):
    column = column.cast(pa.float32())
  valid = np.asarray(column.is_valid(), dtype=np.int32)
  offsets = np.concatenate([[0], np.cumsum(valid)]).astype(np.int32)
  return pa.ListArray.from_arrays(pa.array(offsets), column.drop_null())


def example_gen_floor(csv_path: pathlib.Path) -> float:
  """Rows/s of pyarrow's CSV reader plus tfx-bsl's tf.Example encoder."""
  import pyarrow as pa
  from pyarrow import csv as pa_csv
  from tfx_bsl.coders import example_coder
  start = time.monotonic()
  table = pa_csv.read_csv(str(csv_path))
  encoder = example_coder.RecordBatchToExamplesEncoder()
  rows = 0
  for batch in table.to_batches(max_chunksize=65536):
    lists = pa.RecordBatch.from_arrays(
        [_as_list_array(pa.chunked_array([c])) for c in batch.columns],
        batch.schema.names)
    rows += len(encoder.encode(lists))
  return rows / (time.monotonic() - start)


def statistics_gen_floor(csv_path: pathlib.Path) -> float:
  """Rows/s of TFDV's in-memory statistics over the same table (no Beam)."""
  from pyarrow import csv as pa_csv
  import tensorflow_data_validation as tfdv
  start = time.monotonic()
  frame = pa_csv.read_csv(str(csv_path)).to_pandas()
  tfdv.generate_statistics_from_dataframe(frame, n_jobs=1)
  return len(frame) / (time.monotonic() - start)


def split_counts(run: run_model.Run) -> Dict[str, int]:
  """Examples per split, from StatisticsGen's output."""
  from pipeline.inspection import summary
  statistics = run.component(component_ids.STATISTICS_GEN).output('statistics')
  return {split: int(stats.datasets[0].num_examples)
          for split, stats in summary.load_statistics(statistics).items()}


def evaluator_count(run: run_model.Run) -> Optional[int]:
  """The Evaluator's overall example_count, if it ran."""
  from pipeline.inspection import summary
  if not run.evaluation_uri:
    return None
  overall, _ = summary.read_metrics(run.evaluation_uri)
  count = overall.get('example_count')
  return int(count) if count is not None else None


def peaks_between(timeline: Sequence[Tuple[float, int, int]], start_ms: int,
                  end_ms: int) -> Tuple[Optional[float], Optional[float]]:
  inside = [(largest, tree) for t, largest, tree in timeline
            if start_ms / 1000 <= t <= end_ms / 1000]
  if not inside:
    return None, None
  return (max(s[0] for s in inside) / bench.GIB,
          max(s[1] for s in inside) / bench.GIB)


def measure_size(rows: int, work_dir: pathlib.Path, train_steps: int,
                 beam_workers: int) -> SizeResult:
  """Writes the data, runs the pipeline once, and reads back its figures."""
  csv_path = write_replicated_csv(rows, work_dir / f'data-{rows}' / 'data.csv')
  output_dir = work_dir / f'output-{rows}'
  command = [sys.executable, str(bench.PROJECT_RUNNER),
             '--data-root', str(csv_path.parent), '--output-dir',
             str(output_dir), '--train-steps', str(train_steps),
             '--beam-workers', str(beam_workers)]
  timeline: List[Tuple[float, int, int]] = []
  print(f'[{rows} rows] pipeline run ... ', end='', flush=True)
  wall, largest, tree = bench.run_measured(
      command, bench.REPO_ROOT, dict(os.environ),
      work_dir / f'run-{rows}.log', timeline)
  print(f'{wall:.1f} s, peak RSS {largest / bench.GIB:.2f} GB largest, '
        f'{tree / bench.GIB:.2f} GB tree', flush=True)
  store = run_model.open_store(str(output_dir / files.METADATA_FILE))
  run = run_model.find_run(store, bench.PROJECT_PIPELINE)
  counts = split_counts(run)
  train_eval = counts.get('train', 0) + counts.get('eval', 0)
  processed = {run_model.EXAMPLE_GEN_SUFFIX: rows,
               run_model.STATISTICS_GEN: sum(counts.values()),
               run_model.TRANSFORM: train_eval,
               run_model.EVALUATOR: counts.get(TEST_SPLIT)}
  print(f'[{rows} rows] floors ... ', end='', flush=True)
  floors = {run_model.EXAMPLE_GEN_SUFFIX: example_gen_floor(csv_path),
            run_model.STATISTICS_GEN: statistics_gen_floor(csv_path)}
  print('done', flush=True)
  figures = []
  for component in BEAM_COMPONENTS:
    execution = run.execution(component)
    if execution is None:
      figures.append(ComponentFigures(component, None, None, None, None))
      continue
    proto = execution.proto
    peak_largest, peak_tree = peaks_between(
        timeline, proto.create_time_since_epoch,
        proto.last_update_time_since_epoch)
    figures.append(ComponentFigures(
        component, execution.seconds, processed[component], peak_largest,
        peak_tree, floors.get(component)))
  return SizeResult(
      rows=rows, wall_s=wall, peak_largest_gb=largest / bench.GIB,
      peak_tree_gb=tree / bench.GIB, statistics_rows=sum(counts.values()),
      evaluator_rows=evaluator_count(run), test_rows=counts.get(TEST_SPLIT, 0),
      components=figures)


def _cell(value: Optional[float], digits: int = 1) -> str:
  return '-' if value is None else f'{value:,.{digits}f}'


def format_results(results: Sequence[SizeResult]) -> str:
  lines = [f'{"rows":>10} {"component":<14} {"s":>8} {"rows":>10} '
           f'{"rows/s":>10} {"floor rows/s":>13} {"RSS max GB":>11} '
           f'{"tree GB":>8}']
  for result in results:
    for c in result.components:
      lines.append(
          f'{result.rows:>10,} {c.component:<14} {_cell(c.seconds):>8} '
          f'{_cell(c.rows, 0):>10} {_cell(c.rows_per_s, 0):>10} '
          f'{_cell(c.floor_rows_per_s, 0):>13} '
          f'{_cell(c.peak_largest_gb, 2):>11} {_cell(c.peak_tree_gb, 2):>8}')
    ok = result.statistics_rows == result.rows
    eval_ok = result.evaluator_rows == result.test_rows
    lines.append(
        f'{result.rows:>10,} whole run: {result.wall_s:.1f} s, peak RSS '
        f'{result.peak_largest_gb:.2f} GB largest '
        f'({"within" if result.peak_largest_gb <= MEMORY_BOUND_GB else "OVER"}'
        f' {MEMORY_BOUND_GB:.0f} GB), {result.peak_tree_gb:.2f} GB tree; '
        f'StatisticsGen counted {result.statistics_rows:,} rows '
        f'({"all" if ok else "MISMATCH"}), Evaluator '
        f'{result.evaluator_rows if result.evaluator_rows is not None else "-"}'
        f' of {result.test_rows:,} test rows '
        f'({"all" if eval_ok else "MISMATCH"})')
  if len(results) >= 2:
    small, large = results[0], results[-1]
    lines.append(f'Cost per row, {large.rows:,} vs {small.rows:,} rows '
                 '(<= 1.00 means no worse at scale):')
    for a, b in zip(small.components, large.components, strict=True):
      if a.rows_per_s and b.rows_per_s:
        lines.append(f'  {a.component:<14} {a.rows_per_s / b.rows_per_s:.2f}')
  return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--rows', type=int, nargs='+', default=DEFAULT_ROWS,
                      help='data sizes, in rows (default: 150000 1500000)')
  parser.add_argument('--train-steps', type=int, default=bench.TRAIN_STEPS,
                      help='Trainer steps (default: %(default)s)')
  parser.add_argument('--beam-workers', type=int, default=1,
                      help='the runner\'s --beam-workers (default: 1, '
                      'in-process; 0 is one worker process per core)')
  parser.add_argument('--output-dir', type=pathlib.Path,
                      default=bench.REPO_ROOT / 'outputs' / 'bench-scale',
                      help='where scale.json goes (default: '
                      'outputs/bench-scale)')
  parser.add_argument('--keep-work-dir', action='store_true',
                      help='keep the data, runs and logs')
  args = parser.parse_args(argv)
  if any(rows < 1 for rows in args.rows):
    parser.error('--rows must be positive')
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  # The floors import TensorFlow in this process: keep its banner and the
  # Google client libraries' version notices out of the figures.
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  warnings.filterwarnings('ignore', category=FutureWarning)
  output_dir = args.output_dir.resolve()
  output_dir.mkdir(parents=True, exist_ok=True)
  work_dir = pathlib.Path(tempfile.mkdtemp(prefix='tfx-bench-scale-'))
  print(f'Work directory (data, runs and logs): {work_dir}', flush=True)
  results = []
  try:
    for rows in sorted(args.rows):
      results.append(measure_size(rows, work_dir, args.train_steps,
                                  args.beam_workers))
  except bench.RunFailed as error:
    print(f'\nFAILED\n{error}', file=sys.stderr)
    print(f'Work directory kept for inspection: {work_dir}', file=sys.stderr)
    return 1
  if not args.keep_work_dir:
    shutil.rmtree(work_dir, ignore_errors=True)
  print()
  print(format_results(results))
  path = output_dir / 'scale.json'
  path.write_text(json.dumps({
      'train_steps': args.train_steps, 'beam_workers': args.beam_workers,
      'results': [dataclasses.asdict(r) for r in results]}, indent=2))
  print(f'\nFigures: {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
