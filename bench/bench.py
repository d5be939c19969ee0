"""Side-by-side benchmark: this pipeline versus TFX's reference taxi pipeline.

Runs TFX's own `taxi_pipeline_native_keras.py` (copied from the installed
`tfx` package into a temporary directory, never committed) and this project's
`runners/local_runner.py` on the same 15,002 taxi rows and the same 1,000
train steps, alternating A B A B:

    reference fresh, project fresh, reference re-run, project re-run

per round. Each run is measured for wall time, the peak RSS of its largest
single process and of its whole process tree (psutil, every 0.2 s), and the
duration of each component as recorded in the run's MLMD store. The figures
are printed as a table of ratios (project / reference), and written as JSON
and a PNG bar plot.

    python -m bench.bench --rounds 2 --output-dir outputs/bench
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

import psutil

from pipeline.facts import files
from pipeline.inspection import run_model

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
PROJECT_DATA_ROOT = REPO_ROOT / 'data' / 'taxi'
PROJECT_RUNNER = REPO_ROOT / 'runners' / 'local_runner.py'
PROJECT_PIPELINE = 'tabular-taxi'
REFERENCE_PIPELINE = 'chicago_taxi_native_keras'
REFERENCE_SCRIPT = 'taxi_pipeline_native_keras.py'
REFERENCE_MODULE = 'taxi_utils_native_keras.py'
# The reference example hard-codes 1,000 train steps; the project gets the same.
TRAIN_STEPS = 1000
SAMPLE_SECONDS = 0.2
LOG_TAIL_LINES = 40
# Table rows, by component class; ExampleGen matches any '*ExampleGen'.
COMPONENTS = (run_model.EXAMPLE_GEN_SUFFIX, run_model.STATISTICS_GEN,
              run_model.TRANSFORM, run_model.TRAINER, run_model.EVALUATOR)
PIPELINES = ('reference', 'project')
KINDS = ('fresh', 'rerun')
KIND_LABELS = {'fresh': 'fresh', 'rerun': 're-run'}
PROGRESS_LABELS = {'fresh': 'fresh run', 'rerun': 'unchanged re-run'}
GIB = 1024 ** 3
# Issue #11's targets: (table row, the most the median ratio may be).
TARGETS = (
    ('fresh wall (s)', 0.5),
    ('re-run wall (s)', 0.4),
    ('fresh peak RSS largest (GB)', 1.2),
    ('re-run peak RSS largest (GB)', 1.2),
    ('fresh peak RSS tree (GB)', 1.0),
    ('re-run peak RSS tree (GB)', 1.0),
)


class RunFailed(RuntimeError):
  """A measured run exited non-zero; its figures must not be reported."""


@dataclasses.dataclass
class Measurement:
  """One measured pipeline run."""
  pipeline: str  # 'reference' or 'project'
  kind: str  # 'fresh' or 'rerun'
  round: int
  wall_s: float
  peak_rss_largest_bytes: int
  peak_rss_tree_bytes: int
  component_s: Dict[str, Optional[float]]
  log: str


def tfx_examples_dir() -> pathlib.Path:
  """The installed tfx package's chicago_taxi_pipeline example directory."""
  import tfx  # Imported here: only its location is needed.
  return (pathlib.Path(tfx.__file__).resolve().parent / 'examples' /
          'chicago_taxi_pipeline')


def prepare_reference_home(home: pathlib.Path) -> pathlib.Path:
  """Lays out the reference example under `home` as the script expects it.

  `$HOME/taxi/data/simple/data.csv` and `$HOME/taxi/taxi_utils_native_keras.py`
  are what the script reads; the script itself goes next to them.

  Returns:
    The path of the copied pipeline script.
  """
  examples = tfx_examples_dir()
  data_dir = home / 'taxi' / 'data' / 'simple'
  data_dir.mkdir(parents=True)
  shutil.copy(examples / 'data' / 'simple' / 'data.csv', data_dir)
  shutil.copy(examples / REFERENCE_MODULE, home / 'taxi')
  script = home / REFERENCE_SCRIPT
  shutil.copy(examples / REFERENCE_SCRIPT, script)
  return script


def _tree_rss(root: psutil.Process) -> List[int]:
  """RSS of `root` and each live descendant, in bytes."""
  try:
    processes = [root] + root.children(recursive=True)
  except psutil.NoSuchProcess:
    return []
  sizes = []
  for process in processes:
    try:
      sizes.append(process.memory_info().rss)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
      continue  # Exited between listing and reading.
  return sizes


def run_measured(command: Sequence[str], cwd: pathlib.Path,
                 env: Dict[str, str], log_path: pathlib.Path,
                 timeline: Optional[List[Tuple[float, int, int]]] = None
                 ) -> tuple[float, int, int]:
  """Runs `command`, sampling the RSS of its process tree.

  Args:
    command: The command line.
    cwd: Its working directory.
    env: Its full environment.
    log_path: Where its stdout and stderr go.
    timeline: If given, gets one (epoch seconds, largest, tree) sample per
      poll, to attribute peaks to components afterwards.

  Returns:
    Wall seconds, peak RSS of the largest single process, and peak RSS of the
    whole tree (sum over the process and its descendants), both in bytes.

  Raises:
    RunFailed: The command exited non-zero; the message has the command and
      the last lines of its output.
  """
  peak_largest = peak_tree = 0
  start = time.monotonic()
  with open(log_path, 'wb') as log:
    process = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    watched = psutil.Process(process.pid)
    while process.poll() is None:
      sizes = _tree_rss(watched)
      if sizes:
        peak_largest = max(peak_largest, max(sizes))
        peak_tree = max(peak_tree, sum(sizes))
        if timeline is not None:
          timeline.append((time.time(), max(sizes), sum(sizes)))
      time.sleep(SAMPLE_SECONDS)
  wall = time.monotonic() - start
  if process.returncode != 0:
    lines = log_path.read_text(errors='replace').splitlines()
    tail = '\n'.join(lines[-LOG_TAIL_LINES:])
    raise RunFailed(
        f'Run failed with exit code {process.returncode}: '
        f'{" ".join(command)}\n  (cwd {cwd}, full log {log_path})\n'
        f'--- last {LOG_TAIL_LINES} lines ---\n{tail}')
  return wall, peak_largest, peak_tree


def component_seconds(metadata_path: pathlib.Path, pipeline_name: str
                      ) -> Dict[str, Optional[float]]:
  """Seconds per component class in the latest run of a pipeline.

  Durations are MLMD's last update minus creation time of each execution,
  summed over executions of the same class; None where none ran.
  """
  store = run_model.open_store(str(metadata_path))
  run = run_model.find_run(store, pipeline_name)
  totals: Dict[str, Optional[float]] = {name: None for name in COMPONENTS}
  for execution in run.executions:
    kind = execution.component_class
    if kind.endswith(run_model.EXAMPLE_GEN_SUFFIX):
      kind = run_model.EXAMPLE_GEN_SUFFIX
    if kind in totals:
      totals[kind] = (totals[kind] or 0.0) + execution.seconds
  return totals


def bench_round(round_index: int, work_dir: pathlib.Path
                ) -> List[Measurement]:
  """One round: reference fresh, project fresh, reference re-run, project
  re-run; each re-run reuses its fresh run's home or output directory."""
  ref_home = work_dir / f'round{round_index}-reference-home'
  ref_home.mkdir()
  script = prepare_reference_home(ref_home)
  ref_env = dict(os.environ, HOME=str(ref_home), TF_USE_LEGACY_KERAS='1')
  ref_command = [sys.executable, str(script)]
  ref_store = (ref_home / 'tfx' / 'metadata' / REFERENCE_PIPELINE /
               'metadata.db')

  project_out = work_dir / f'round{round_index}-project-output'
  project_command = [sys.executable, str(PROJECT_RUNNER),
                     '--data-root', str(PROJECT_DATA_ROOT),
                     '--output-dir', str(project_out),
                     '--train-steps', str(TRAIN_STEPS)]
  project_store = project_out / files.METADATA_FILE

  plan = [('reference', 'fresh', ref_command, ref_home, ref_env, ref_store,
           REFERENCE_PIPELINE),
          ('project', 'fresh', project_command, REPO_ROOT, dict(os.environ),
           project_store, PROJECT_PIPELINE)]
  plan += [(name, 'rerun', *rest) for name, _, *rest in plan]
  measurements = []
  for name, kind, command, cwd, env, store, pipeline_name in plan:
    log_path = work_dir / f'round{round_index}-{name}-{kind}.log'
    print(f'[round {round_index}] {name} {PROGRESS_LABELS[kind]} ... ',
          end='', flush=True)
    wall, largest, tree = run_measured(command, cwd, env, log_path)
    print(f'{wall:.1f} s, peak RSS {largest / GIB:.2f} GB largest, '
          f'{tree / GIB:.2f} GB tree', flush=True)
    measurements.append(Measurement(
        pipeline=name, kind=kind, round=round_index, wall_s=wall,
        peak_rss_largest_bytes=largest, peak_rss_tree_bytes=tree,
        component_s=component_seconds(store, pipeline_name),
        log=str(log_path)))
  return measurements


def metric_rows(measurements: Sequence[Measurement]
                ) -> Dict[str, Dict[tuple, Optional[float]]]:
  """Table rows: metric name -> {(pipeline, round): value}.

  Times are in seconds, memory in GB.
  """
  rows: Dict[str, Dict[tuple, Optional[float]]] = collections.OrderedDict()
  labels = [KIND_LABELS[kind] for kind in KINDS]
  for label in labels:
    rows[f'{label} wall (s)'] = {}
  for label in labels:
    for component in COMPONENTS:
      rows[f'{label} {component} (s)'] = {}
  for label in labels:
    rows[f'{label} peak RSS largest (GB)'] = {}
    rows[f'{label} peak RSS tree (GB)'] = {}
  for m in measurements:
    key = (m.pipeline, m.round)
    label = KIND_LABELS[m.kind]
    rows[f'{label} wall (s)'][key] = m.wall_s
    for component in COMPONENTS:
      rows[f'{label} {component} (s)'][key] = m.component_s.get(component)
    rows[f'{label} peak RSS largest (GB)'][key] = (
        m.peak_rss_largest_bytes / GIB)
    rows[f'{label} peak RSS tree (GB)'][key] = m.peak_rss_tree_bytes / GIB
  return rows


def _ratio(project: Optional[float], reference: Optional[float]
           ) -> Optional[float]:
  if project is None or not reference:
    return None
  return project / reference


def _median(values: Sequence[Optional[float]]) -> Optional[float]:
  present = [v for v in values if v is not None]
  return statistics.median(present) if present else None


def summarize(measurements: Sequence[Measurement], rounds: int
              ) -> Dict[str, Dict[str, object]]:
  """Per metric: reference, project and ratio for each round, and medians.

  The median ratio is the median of the per-round ratios (each round pairs
  runs made back to back), not the ratio of the medians.
  """
  summary: Dict[str, Dict[str, object]] = collections.OrderedDict()
  for metric, values in metric_rows(measurements).items():
    per_round = []
    for r in range(1, rounds + 1):
      ref, proj = values.get(('reference', r)), values.get(('project', r))
      per_round.append({'reference': ref, 'project': proj,
                        'ratio': _ratio(proj, ref)})
    summary[metric] = {
        'rounds': per_round,
        'median': {
            'reference': _median([p['reference'] for p in per_round]),
            'project': _median([p['project'] for p in per_round]),
            'ratio': _median([p['ratio'] for p in per_round]),
        },
    }
  return summary


def format_table(summary: Dict[str, Dict[str, object]], rounds: int) -> str:
  """The summary as a fixed-width text table."""
  def cell(value: Optional[float], ratio: bool = False) -> str:
    if value is None:
      return '-'
    return f'{value:.2f}' if ratio else f'{value:.1f}' if value >= 10 else (
        f'{value:.2f}')

  groups = [f'round {r}' for r in range(1, rounds + 1)] + ['median']
  metric_width = max(len(m) for m in summary) + 2
  header1 = ' ' * metric_width + ''.join(f'{g:^27}' for g in groups)
  header2 = f'{"":<{metric_width}}' + ''.join(
      f'{"ref":>9}{"project":>9}{"ratio":>9}' for _ in groups)
  lines = [header1, header2, '-' * len(header2)]
  for metric, entry in summary.items():
    cells = list(entry['rounds']) + [entry['median']]
    lines.append(f'{metric:<{metric_width}}' + ''.join(
        f'{cell(c["reference"]):>9}{cell(c["project"]):>9}'
        f'{cell(c["ratio"], ratio=True):>9}' for c in cells))
  lines.append('ratio = project / reference; the median ratio is the median '
               'of the per-round ratios.')
  return '\n'.join(lines)


def check_targets(summary: Dict[str, Dict[str, object]]
                  ) -> List[Tuple[str, float, Optional[float], bool]]:
  """(row, target, median ratio, met) for each target in TARGETS."""
  results = []
  for metric, most in TARGETS:
    ratio = summary[metric]['median']['ratio']
    results.append((metric, most, ratio, ratio is not None and ratio <= most))
  return results


def format_targets(results: Sequence[Tuple[str, float, Optional[float], bool]]
                   ) -> str:
  lines = ['Targets (median ratio, project / reference):']
  for metric, most, ratio, met in results:
    shown = '-' if ratio is None else f'{ratio:.2f}'
    lines.append(f'  {metric:<30} <= {most:.2f}   {shown:>5}   '
                 f'{"met" if met else "NOT MET"}')
  return '\n'.join(lines)


def write_plot(summary: Dict[str, Dict[str, object]], path: pathlib.Path
               ) -> None:
  """Bar plot of the median wall time per component, both pipelines side by
  side, one panel for the fresh run and one for the re-run."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  labels = list(COMPONENTS) + ['total wall']
  figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
  for axis, kind in zip(axes, KINDS, strict=True):
    label = KIND_LABELS[kind]
    metrics = [f'{label} {c} (s)' for c in COMPONENTS] + [f'{label} wall (s)']
    positions = range(len(labels))
    width = 0.4
    for offset, pipeline in ((-width / 2, 'reference'),
                             (width / 2, 'project')):
      heights = [summary[m]['median'][pipeline] or 0.0 for m in metrics]
      axis.bar([p + offset for p in positions], heights, width,
               label='TFX reference' if pipeline == 'reference'
               else 'this project')
    axis.set_xticks(list(positions))
    axis.set_xticklabels(labels, rotation=30, ha='right')
    axis.set_title(f'{label}, median over rounds')
    axis.set_ylabel('seconds')
    axis.legend()
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--rounds', type=int, default=2,
                      help='rounds of A B A B runs (default: 2)')
  parser.add_argument('--output-dir', type=pathlib.Path,
                      default=REPO_ROOT / 'outputs' / 'bench',
                      help='where bench.json and bench.png go '
                      '(default: outputs/bench)')
  parser.add_argument('--keep-work-dir', action='store_true',
                      help='keep the runs\' temporary directories and logs')
  args = parser.parse_args(argv)
  if args.rounds < 1:
    parser.error('--rounds must be at least 1')
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  output_dir = args.output_dir.resolve()
  output_dir.mkdir(parents=True, exist_ok=True)
  work_dir = pathlib.Path(tempfile.mkdtemp(prefix='tfx-bench-'))
  print(f'Work directory (runs and logs): {work_dir}', flush=True)
  measurements: List[Measurement] = []
  failed = False
  try:
    for round_index in range(1, args.rounds + 1):
      measurements += bench_round(round_index, work_dir)
  except RunFailed as error:
    failed = True
    print(f'\nFAILED\n{error}', file=sys.stderr)
    print(f'Work directory kept for inspection: {work_dir}', file=sys.stderr)
    return 1
  finally:
    if not failed and not args.keep_work_dir:
      shutil.rmtree(work_dir, ignore_errors=True)

  summary = summarize(measurements, args.rounds)
  print()
  print(format_table(summary, args.rounds))
  targets = check_targets(summary)
  print()
  print(format_targets(targets))
  json_path = output_dir / 'bench.json'
  png_path = output_dir / 'bench.png'
  json_path.write_text(json.dumps({
      'train_steps': TRAIN_STEPS,
      'rounds': args.rounds,
      'sample_seconds': SAMPLE_SECONDS,
      'summary': summary,
      'targets': [{'metric': m, 'at_most': most, 'ratio': ratio, 'met': met}
                  for m, most, ratio, met in targets],
      'runs': [dataclasses.asdict(m) for m in measurements],
  }, indent=2))
  write_plot(summary, png_path)
  print(f'\nFigures: {json_path}\nPlot:    {png_path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
