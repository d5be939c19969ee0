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

Few training steps: the blessing is not what these runs test. They start in
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
  from tests import conftest  # pylint: disable=g-import-not-at-top
  data_root, output_dir = root / 'spans', root / 'out'
  (data_root / 'span-1').mkdir(parents=True)
  (data_root / 'span-1' / 'data.csv').write_bytes(
      (conftest.SAMPLE_DATA / 'data.csv').read_bytes())
  _normal_span(data_root / 'span-2')

  def run(*flags: str) -> subprocess.CompletedProcess:
    return conftest.run_local_pipeline(
        output_dir, ['--train-steps', TRAIN_STEPS, *flags],
        data_root=data_root, check=False)

  results = [run('--span', '1'), run()]
  _drifted_span(data_root / 'span-2', data_root / 'span-3')
  results += [run(), run()]
  return SpanRuns(data_root, output_dir, results)
