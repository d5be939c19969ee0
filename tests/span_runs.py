"""Data in spans, run by run: span 1, a normal span 2, a drifted span 3.

The sequence a scheduled pipeline meets, on one output dir:

1. `span-1/` (the sample) and `span-2/` exist; `--span 1` reads span 1,
   which becomes the drift baseline (there is none yet).
2. No `--span`: the latest span, 2, a fresh random draw of the same taxi
   trips. The drift gate compares it with span 1 and accepts it.
3. `span-3/` arrives: span 2's rows with most card payments turned to cash
   (every value still in the schema's domain). The drift gate stops the run
   before Transform and names the feature and the baseline span.
4. The same again: span 3 is still refused, since refused data never
   becomes the baseline.
5. `--span 1-2`: spans 1 and 2 read together into one Examples artifact
   of span 2, compared by the drift gate with span 2 and accepted.

Every run has `--warm-start`: span 1 finds no earlier model and starts
cold, span 2 and the range 1-2 start from span 1's blessed model.

Few training steps: the blessing is not what these runs test, except for
span 1's, which span 2 warm-starts from. They start in
a thread at collection time (`conftest.pytest_collection_finish`), like the
task runs, and overlap the unit tests.
"""

import csv
import dataclasses
import pathlib
import random
import subprocess
from typing import List

from tests import robustness

TRAIN_STEPS = '100'
# Span 1 seeds span 2's warm start, so it must be blessed.
SPAN_1_TRAIN_STEPS = '300'
# Rows of the normal span, drawn from the full taxi data.
SPAN_ROWS = 2000
_SEED = 20261203
FULL_DATA = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'taxi'


@dataclasses.dataclass
class SpanRuns:
  """The four runs, in order, and where they wrote."""
  data_root: pathlib.Path
  output_dir: pathlib.Path
  results: List[subprocess.CompletedProcess]


def _normal_span(folder: pathlib.Path) -> None:
  """A seeded random draw of the full data: the same kind of trips."""
  with open(FULL_DATA / 'data.csv', encoding='utf-8', newline='') as f:
    header, *rows = list(csv.reader(f))
  robustness.write_csv(folder / 'data.csv', header,
                       random.Random(_SEED).sample(rows, SPAN_ROWS))


def _drifted_span(normal: pathlib.Path, folder: pathlib.Path) -> None:
  """The normal span with 4 in 5 card payments turned to cash."""
  with open(normal / 'data.csv', encoding='utf-8', newline='') as f:
    header, *rows = list(csv.reader(f))
  i = header.index('payment_type')
  for n, row in enumerate(rows):
    if row[i] == 'Credit Card' and n % 5:
      row[i] = 'Cash'
  robustness.write_csv(folder / 'data.csv', header, rows)


def run_spans(root: pathlib.Path) -> SpanRuns:
  """The four runs of the module doc, under `root`."""
  from tests import conftest
  data_root, output_dir = root / 'spans', root / 'out'
  (data_root / 'span-1').mkdir(parents=True)
  (data_root / 'span-1' / 'data.csv').write_bytes(
      (conftest.SAMPLE_DATA / 'data.csv').read_bytes())
  _normal_span(data_root / 'span-2')

  def run(*flags: str, steps: str = TRAIN_STEPS
          ) -> subprocess.CompletedProcess:
    return conftest.run_local_pipeline(
        output_dir, ['--train-steps', steps, *flags],
        data_root=data_root, check=False)

  # --warm-start throughout: span 1 has no earlier model and starts cold,
  # span 2 starts from span 1's (tests/test_warm_start.py), which must be
  # blessed for that: 100 steps give AUC 0.85, below the gate's 0.90.
  results = [run('--span', '1', '--warm-start', steps=SPAN_1_TRAIN_STEPS),
             run('--warm-start')]
  _drifted_span(data_root / 'span-2', data_root / 'span-3')
  results += [run('--warm-start'), run('--warm-start')]
  results.append(run('--span', '1-2', '--warm-start'))
  return SpanRuns(data_root, output_dir, results)
