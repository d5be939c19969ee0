"""Wide-table bench: cost per component as the number of columns grows.

For each width it writes a synthetic table of mixed columns at run time
(`bench/synthetic.py`: 40% normal, 20% heavy-tailed, 40% categorical, 5%
empty cells, an informative binary label; never committed), runs the
pipeline zero-config on it once (`--data-root --label --task`), and reports
per component its wall time (MLMD) and the peak RSS of the largest process
and of the process tree while it ran (psutil samples, attributed to the
component by its MLMD start and end), then the whole run's figures.

    python -m bench.wide --widths 20 100 300 --rows 5000 \
        --output-dir outputs/bench-wide

A zero-config run profiles the data first (its own small pipeline, to draft
the schema and the dataset config); that part shows as `draft` in the table.
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
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

from bench import bench
from bench import scale
from bench import synthetic
from pipeline.facts import files
from pipeline.inspection import run_model

DEFAULT_WIDTHS = (20, 100, 300)
DEFAULT_ROWS = 5000
# Issue #28's bounds: the widest run under 4 GB of peak RSS.
MEMORY_BOUND_GB = 4.0
DRAFT = 'draft'


@dataclasses.dataclass
class ComponentCost:
  component: str
  seconds: Optional[float]
  peak_largest_gb: Optional[float]
  peak_tree_gb: Optional[float]


@dataclasses.dataclass
class WidthResult:
  width: int
  rows: int
  wall_s: float
  peak_largest_gb: float
  peak_tree_gb: float
  blessed: Optional[bool]
  components: List[ComponentCost]


def _runs(output_dir: pathlib.Path) -> List[run_model.Run]:
  """Every run in the output dir's store, oldest first (draft, then full)."""
  store = run_model.open_store(str(output_dir / files.METADATA_FILE))
  return run_model.recent_runs(store)[::-1]


def component_costs(runs: Sequence[run_model.Run],
                    timeline: Sequence[Tuple[float, int, int]]
                    ) -> List[ComponentCost]:
  """Seconds and peaks per component; the draft run's as one row."""
  costs = []
  for index, run in enumerate(runs):
    last = index == len(runs) - 1
    executions = run.executions if last else []
    if not last and run.executions:
      start = min(e.proto.create_time_since_epoch for e in run.executions)
      end = max(e.proto.last_update_time_since_epoch for e in run.executions)
      peak_largest, peak_tree = scale.peaks_between(timeline, start, end)
      costs.append(ComponentCost(DRAFT, (end - start) / 1000, peak_largest,
                                 peak_tree))
    for execution in executions:
      peak_largest, peak_tree = scale.peaks_between(
          timeline, execution.proto.create_time_since_epoch,
          execution.proto.last_update_time_since_epoch)
      costs.append(ComponentCost(execution.component_id, execution.seconds,
                                 peak_largest, peak_tree))
  return costs


def measure_width(width: int, rows: int, work_dir: pathlib.Path,
                  extra_args: Sequence[str]) -> WidthResult:
  """Writes the table, runs the pipeline once, reads back its figures."""
  spec = synthetic.mixed_widths(width, rows=rows)
  data_dir = work_dir / f'data-{width}'
  synthetic.write_csv(spec, data_dir)
  output_dir = work_dir / f'output-{width}'
  command = [sys.executable, str(bench.PROJECT_RUNNER),
             '--data-root', str(data_dir), '--label', synthetic.LABEL,
             '--task', spec.task, '--positive-label',
             synthetic.positive_label(spec), '--output-dir', str(output_dir),
             '--no-mlflow', *extra_args]
  timeline: List[Tuple[float, int, int]] = []
  print(f'[{width} columns] pipeline run ... ', end='', flush=True)
  wall, largest, tree = bench.run_measured(
      command, bench.REPO_ROOT, dict(os.environ),
      work_dir / f'run-{width}.log', timeline)
  print(f'{wall:.1f} s, peak RSS {largest / bench.GIB:.2f} GB largest, '
        f'{tree / bench.GIB:.2f} GB tree', flush=True)
  runs = _runs(output_dir)
  return WidthResult(
      width=spec.columns, rows=rows, wall_s=wall,
      peak_largest_gb=largest / bench.GIB, peak_tree_gb=tree / bench.GIB,
      blessed=runs[-1].blessed if runs else None,
      components=component_costs(runs, timeline))


def _cell(value: Optional[float], digits: int = 1) -> str:
  return '-' if value is None else f'{value:,.{digits}f}'


def format_results(results: Sequence[WidthResult]) -> str:
  lines = [f'{"columns":>8} {"component":<26} {"s":>7} {"RSS max GB":>11} '
           f'{"tree GB":>8}']
  for result in results:
    for c in result.components:
      lines.append(f'{result.width:>8} {c.component:<26} '
                   f'{_cell(c.seconds):>7} {_cell(c.peak_largest_gb, 2):>11} '
                   f'{_cell(c.peak_tree_gb, 2):>8}')
    within = result.peak_largest_gb <= MEMORY_BOUND_GB
    lines.append(
        f'{result.width:>8} whole run: {result.wall_s:.1f} s, peak RSS '
        f'{result.peak_largest_gb:.2f} GB largest '
        f'({"within" if within else "OVER"} {MEMORY_BOUND_GB:.0f} GB), '
        f'{result.peak_tree_gb:.2f} GB tree, '
        f'{"blessed" if result.blessed else "not blessed"}')
  return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--widths', type=int, nargs='+', default=DEFAULT_WIDTHS,
                      help='feature columns per table (default: 20 100 300)')
  parser.add_argument('--rows', type=int, default=DEFAULT_ROWS,
                      help='rows per table (default: %(default)s)')
  parser.add_argument('--output-dir', type=pathlib.Path,
                      default=bench.REPO_ROOT / 'outputs' / 'bench-wide',
                      help='where wide.json goes (default: '
                      'outputs/bench-wide)')
  parser.add_argument('--runner-arg', action='append', default=[],
                      help='an extra runner flag, e.g. '
                      '--runner-arg=--model=dnn (repeatable)')
  parser.add_argument('--keep-work-dir', action='store_true',
                      help='keep the data, runs and logs')
  args = parser.parse_args(argv)
  if any(width < 6 for width in args.widths):
    parser.error('--widths must be at least 6 (2 columns of each kind)')
  if args.rows < 100:
    parser.error('--rows must be at least 100')
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  output_dir = args.output_dir.resolve()
  output_dir.mkdir(parents=True, exist_ok=True)
  work_dir = pathlib.Path(tempfile.mkdtemp(prefix='tfx-bench-wide-'))
  print(f'Work directory (data, runs and logs): {work_dir}', flush=True)
  results = []
  try:
    for width in sorted(args.widths):
      results.append(measure_width(width, args.rows, work_dir,
                                   args.runner_arg))
  except bench.RunFailed as error:
    print(f'\nFAILED\n{error}', file=sys.stderr)
    print(f'Work directory kept for inspection: {work_dir}', file=sys.stderr)
    return 1
  if not args.keep_work_dir:
    shutil.rmtree(work_dir, ignore_errors=True)
  print()
  print(format_results(results))
  path = output_dir / 'wide.json'
  path.write_text(json.dumps(
      {'rows': args.rows, 'results': [dataclasses.asdict(r) for r in results]},
      indent=2))
  print(f'\nFigures: {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())

