"""Synthetic tabular data with a known signal, for benches and model checks.

A table has numeric columns (some normal, some heavy-tailed), categorical
columns (string codes, some with many levels and a skewed frequency) and
empty cells, and a label that depends on a few of them through interactions
and thresholds, the way real tabular labels do (so trees and networks both
have something to find, and neither is favoured by construction):

* a smooth part: a weighted sum of a few normal columns and of log1p of a
  few heavy-tailed ones;
* a rough part: a threshold on one column, an interaction of two others,
  and an effect per level of some categorical columns;
* noise, so no model reaches a perfect score.

Most columns carry no signal, as in wide real tables. Cells are left empty
at random (`missing_rate`), and one informative column is left empty more
often than the rest, so missing values matter.

The task decides the label: `regression` keeps the score; `binary` cuts it
at the quantile that gives `positive_rate`; `multiclass` cuts it into
`classes` bands with shares that halve from one class to the next, so the
classes are imbalanced. Everything is seeded: the same arguments give the
same bytes.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import List
from typing import Optional

import numpy as np
import pandas as pd

BINARY = 'binary'
MULTICLASS = 'multiclass'
REGRESSION = 'regression'
TASKS = (BINARY, MULTICLASS, REGRESSION)
LABEL = 'label'


@dataclasses.dataclass(frozen=True)
class TableSpec:
  """The shape of a synthetic table.

  Attributes:
    rows: Number of rows.
    numeric: Normal numeric columns.
    skewed: Heavy-tailed, non-negative numeric columns (lognormal).
    categorical: String-coded categorical columns.
    task: binary, multiclass or regression.
    positive_rate: binary: the share of positive labels.
    classes: multiclass: the number of classes.
    missing_rate: The share of empty cells in each feature column.
    seed: Seed of the generator.
  """
  rows: int = 5000
  numeric: int = 6
  skewed: int = 4
  categorical: int = 4
  task: str = BINARY
  positive_rate: float = 0.2
  classes: int = 4
  missing_rate: float = 0.05
  seed: int = 20261207

  def __post_init__(self):
    if self.task not in TASKS:
      raise ValueError(f'task must be one of {TASKS}, not {self.task!r}.')
    if min(self.numeric, self.skewed, self.categorical) < 2:
      raise ValueError('A table needs at least 2 columns of each kind, '
                       'so that the label has an interaction to find.')
    if not 0 < self.positive_rate < 1:
      raise ValueError('positive_rate must be in (0, 1).')
    if self.classes < 2:
      raise ValueError('multiclass needs at least 2 classes.')

  @property
  def columns(self) -> int:
    """Feature columns (the label not counted)."""
    return self.numeric + self.skewed + self.categorical


def mixed_widths(width: int, **kwargs) -> TableSpec:
  """A spec of `width` feature columns: 40% normal, 20% heavy-tailed and
  40% categorical, as mixed as real wide tables tend to be."""
  skewed = max(2, width // 5)
  categorical = max(2, (width * 2) // 5)
  numeric = max(2, width - skewed - categorical)
  return TableSpec(numeric=numeric, skewed=skewed, categorical=categorical,
                   **kwargs)


def _levels(rng: np.random.Generator, index: int) -> List[str]:
  """Level names of categorical column `index`: 3 to 40 levels."""
  count = int(rng.choice([3, 5, 8, 12, 40]))
  return [f'c{index}_{level}' for level in range(count)]


def make_table(spec: TableSpec) -> pd.DataFrame:
  """The table: feature columns `num_*`, `amt_*`, `cat_*`, then `label`."""
  rng = np.random.default_rng(spec.seed)
  n = spec.rows
  columns = {}
  numeric = rng.normal(size=(n, spec.numeric))
  for i in range(spec.numeric):
    columns[f'num_{i}'] = numeric[:, i] * (1 + i % 3) + i
  skewed = rng.lognormal(mean=2.0, sigma=1.2, size=(n, spec.skewed))
  for i in range(spec.skewed):
    columns[f'amt_{i}'] = np.round(skewed[:, i], 2)
  codes = []
  for i in range(spec.categorical):
    levels = _levels(rng, i)
    # Zipf-like frequencies: a few common levels, a tail of rare ones.
    weights = 1.0 / np.arange(1, len(levels) + 1)
    code = rng.choice(len(levels), size=n, p=weights / weights.sum())
    codes.append(code)
    columns[f'cat_{i}'] = np.array(levels, dtype=object)[code]

  # The signal uses the first columns of each kind; the rest are noise.
  score = (0.8 * numeric[:, 0] - 0.5 * numeric[:, 1]
           + 0.6 * np.log1p(skewed[:, 0]) - 0.4 * np.log1p(skewed[:, 1])
           + 1.0 * (numeric[:, 0] > 0.5) * (numeric[:, 1] < 0)
           + 0.7 * np.tanh(numeric[:, 1] * np.log1p(skewed[:, 0]) / 2))
  for i in range(2):
    effects = rng.normal(scale=0.8, size=codes[i].max() + 1)
    score = score + effects[codes[i]]
  score = score + rng.normal(scale=0.6, size=n)

  frame = pd.DataFrame(columns)
  for i, name in enumerate(frame.columns):
    # The first amount column is empty far more often than the others.
    rate = spec.missing_rate * (4 if name == 'amt_0' else 1)
    frame.loc[rng.random(n) < rate, name] = np.nan
    if i == 0:
      # An empty first column is a low score, so missingness is informative.
      score = np.where(frame[name].isna(), score - 0.5, score)
  frame[LABEL] = _label(score, spec)
  return frame


def _label(score: np.ndarray, spec: TableSpec) -> np.ndarray:
  if spec.task == REGRESSION:
    return np.round(10 * score + 50, 3)
  if spec.task == BINARY:
    cut = np.quantile(score, 1 - spec.positive_rate)
    return np.where(score > cut, 'yes', 'no').astype(object)
  shares = 0.5 ** np.arange(spec.classes)
  shares = shares / shares.sum()
  cuts = np.quantile(score, np.cumsum(shares)[:-1])
  names = np.array([f'k{k}' for k in range(spec.classes)], dtype=object)
  return names[np.searchsorted(cuts, score)]


def write_csv(spec: TableSpec, folder: pathlib.Path,
              name: str = 'data.csv') -> pathlib.Path:
  """Writes the table as `<folder>/<name>` (empty cells for missing)."""
  folder.mkdir(parents=True, exist_ok=True)
  path = folder / name
  make_table(spec).to_csv(path, index=False)
  return path


def positive_label(spec: TableSpec) -> Optional[str]:
  """The label value a binary table calls positive."""
  return 'yes' if spec.task == BINARY else None
