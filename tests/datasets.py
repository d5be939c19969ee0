"""Small public tabular datasets written as one CSV each, for tests.

The pipeline trains binary, multiclass and regression models on any CSV.
These helpers give tests three real datasets of each kind without a
download: they come from the CSV files that scikit-learn ships inside its
package (`sklearn/datasets/data/`), which `load_wine`, `load_diabetes` and
`load_breast_cancer` read from disk; none of them touches the network.
One more table is synthetic (`imbalanced_binary`): a rare label with gaps,
which public data small enough for a test rarely has.

Each function writes `data.csv` (a header row, then comma-separated rows)
into a folder and returns a `TabularCsv` that says what is in it. The output
is deterministic: the same bytes on every call. How cells are written:

- Column names are lowercase and use only [a-z0-9_], so they work as CSV
  headers and as TensorFlow feature keys.
- A feature column whose values are all whole numbers is written as
  integers (`127`), so schema inference sees an INT feature; other numbers
  are rounded to 6 significant digits and written as the shortest float that
  reads back the same (`0.000895`, `151.0`), which always keeps a `.` or an
  exponent, so they are inferred as FLOAT.
- A missing value is an empty cell.
"""

import csv
import dataclasses
import math
import os
import re
from typing import List
from typing import Sequence
from typing import Tuple
from typing import Union

import numpy as np
import pandas as pd
from sklearn import datasets as sk_datasets

CSV_NAME = 'data.csv'

# Seed of the generator that picks which wine cells are left empty.
_MISSING_SEED = 20240601
# Share of the rows left empty in each of `WINE_MISSING_COLUMNS`.
_MISSING_RATE = 0.05
# Wine feature columns that get missing cells: a float, an integer and a
# float feature, so both numeric kinds are exercised with gaps.
WINE_MISSING_COLUMNS = ('malic_acid', 'magnesium', 'hue')

# sklearn's wine classes 0/1/2 are classes 1/2/3 of the UCI wine data
# (Forina et al.): wines from the three Italian cultivars Barolo (59 rows),
# Grignolino (71) and Barbera (48), in that order.
_WINE_CULTIVARS = ('barolo', 'grignolino', 'barbera')
# Bands of color_intensity cut at its tertiles, palest first.
_COLOR_BANDS = ('pale', 'medium', 'deep')

PathLike = Union[str, 'os.PathLike[str]']


@dataclasses.dataclass(frozen=True)
class TabularCsv:
  """A dataset written as `<data_root>/data.csv`, and what tests need of it.

  Attributes:
    data_root: The folder holding data.csv.
    label: The label column.
    task: 'binary', 'multiclass' or 'regression'.
    rows: Data rows in the CSV (the header not counted).
    classes: For classification, the label values as written in the CSV,
      sorted; () for regression.
  """
  data_root: str
  label: str
  task: str
  rows: int
  classes: Tuple[str, ...]

  @property
  def csv_path(self) -> str:
    return os.path.join(self.data_root, CSV_NAME)


def wine_multiclass(folder: PathLike) -> TabularCsv:
  """Writes the UCI wine data (178 rows) as a 3-class task.

  The label `cultivar` is a string: 'barolo', 'grignolino' or 'barbera'.
  The 13 numeric features keep their values; `magnesium` and `proline` are
  integers. About 5% of the cells of each of `WINE_MISSING_COLUMNS` are
  empty, picked by a seeded generator. One string feature is added:
  `color_band`, the tertile of `color_intensity` ('pale', 'medium', 'deep';
  59 or 60 rows each). Colour depth tells the cultivars apart fairly well
  (Grignolino is pale, Barbera deep), so the vocabulary carries signal.

  Args:
    folder: Where to write data.csv; created if missing.

  Returns:
    What was written.
  """
  bunch = sk_datasets.load_wine(as_frame=True)
  frame = _sanitized(bunch.data)
  frame['color_band'] = pd.qcut(
      frame['color_intensity'], q=len(_COLOR_BANDS),
      labels=list(_COLOR_BANDS)).astype(str)
  frame['cultivar'] = [_WINE_CULTIVARS[t] for t in bunch.target]
  frame = _with_missing_cells(frame, WINE_MISSING_COLUMNS)
  return _write(folder, frame, label='cultivar', task='multiclass')


def diabetes_regression(folder: PathLike) -> TabularCsv:
  """Writes the diabetes data (442 rows, unscaled) as a regression task.

  The label `progression` is sklearn's target, a measure of disease
  progression one year after baseline (25 to 346). It is written as a float
  (`151.0`) because a regression label is real-valued, though every value
  is whole. The features are age, sex, bmi, bp and the blood serum
  measurements s1..s6, in their original units; `age`, `sex` (coded 1 or
  2), `s1` and `s6` are integers.

  Args:
    folder: Where to write data.csv; created if missing.

  Returns:
    What was written.
  """
  bunch = sk_datasets.load_diabetes(as_frame=True, scaled=False)
  frame = _sanitized(bunch.data)
  frame['progression'] = bunch.target.astype(float)
  return _write(folder, frame, label='progression', task='regression',
                float_columns=('progression',))


def breast_cancer_binary(folder: PathLike) -> TabularCsv:
  """Writes the Wisconsin breast cancer data (569 rows) as a binary task.

  The label `malignant` is 1 for a malignant tumour (212 rows) and 0 for a
  benign one (357). sklearn's target is the other way round (0 = malignant,
  1 = benign), so it is inverted here. The 30 float features are renamed
  like `mean radius` -> `mean_radius`.

  Args:
    folder: Where to write data.csv; created if missing.

  Returns:
    What was written.
  """
  bunch = sk_datasets.load_breast_cancer(as_frame=True)
  if list(bunch.target_names) != ['malignant', 'benign']:
    raise ValueError(
        f'sklearn breast cancer target names are {list(bunch.target_names)}, '
        "expected ['malignant', 'benign']; check how the label is inverted.")
  frame = _sanitized(bunch.data)
  frame['malignant'] = (1 - bunch.target).astype(int)
  return _write(folder, frame, label='malignant', task='binary')


# Seed and size of the synthetic imbalanced table.
_CHURN_SEED = 20261207
CHURN_ROWS = 3000


def imbalanced_binary(folder: PathLike) -> TabularCsv:
  """Writes a synthetic churn table with a rare label and gaps (3,000 rows).

  The label `churned` is 'yes' in 137 of the rows (4.6%; 'no' otherwise),
  so always answering 'no' scores 95% accuracy, and a model that ranks well
  rarely gives a row more than 0.5. It depends, through a logistic link
  with noise, on `support_calls` (integer codes 0..9), `monthly_spend`
  (heavy-tailed, empty in 8% of the rows), `plan` ('basic', 'plus', 'pro';
  empty in 5%) and `satisfaction` (normal, empty in 5%); `region` (six
  values) and `tenure_months` (0..119) carry no signal. Seeded: the same
  bytes on every call.

  Args:
    folder: Where to write data.csv; created if missing.

  Returns:
    What was written; pass `--positive-label yes`.
  """
  rng = np.random.default_rng(_CHURN_SEED)
  n = CHURN_ROWS
  calls = rng.poisson(1.5, size=n).clip(0, 9)
  spend = np.round(rng.lognormal(3.5, 0.8, size=n), 2)
  plan = rng.choice(('basic', 'plus', 'pro'), size=n, p=(0.6, 0.3, 0.1))
  satisfaction = np.round(rng.normal(0.0, 1.0, size=n), 3)
  logit = (-6.3 + 0.9 * calls + 0.6 * (np.log(spend) - 3.5) -
           0.9 * satisfaction + 1.0 * (plan == 'basic') +
           rng.normal(0.0, 0.5, size=n))
  churned = rng.random(n) < 1 / (1 + np.exp(-logit))
  frame = pd.DataFrame({
      'tenure_months': rng.integers(0, 120, size=n),
      'support_calls': calls,
      'monthly_spend': spend.astype(object),
      'plan': plan.astype(object),
      'region': rng.choice(('north', 'south', 'east', 'west', 'centre',
                            'islands'), size=n),
      'satisfaction': satisfaction.astype(object),
      'churned': np.where(churned, 'yes', 'no'),
  })
  for column, rate in (('monthly_spend', 0.08), ('plan', 0.05),
                       ('satisfaction', 0.05)):
    frame.loc[rng.random(n) < rate, column] = None
  return _write(folder, frame, label='churned', task='binary',
                float_columns=('monthly_spend', 'satisfaction'))


def sanitize_name(name: str) -> str:
  """'od280/od315_of_diluted_wines' -> 'od280_od315_of_diluted_wines'."""
  key = re.sub(r'[^a-z0-9_]+', '_', name.lower()).strip('_')
  if not key or key[0].isdigit():
    raise ValueError(f'Column {name!r} gives the key {key!r}, which does not '
                     'start with a letter; rename the column.')
  return key


def _sanitized(features: pd.DataFrame) -> pd.DataFrame:
  """A copy of `features` with column names made into clean keys."""
  names = [sanitize_name(str(c)) for c in features.columns]
  if len(set(names)) != len(names):
    raise ValueError(f'Sanitized column names collide: {names}')
  frame = features.copy()
  frame.columns = names
  return frame


def _with_missing_cells(frame: pd.DataFrame,
                        columns: Sequence[str]) -> pd.DataFrame:
  """A copy of `frame` with `_MISSING_RATE` of the rows of `columns` empty.

  Each column loses exactly round(rate * rows) cells, at rows drawn without
  replacement by one generator seeded with `_MISSING_SEED`, column by column
  in the given order, so the same cells go missing on every call.
  """
  rng = np.random.default_rng(_MISSING_SEED)
  count = round(_MISSING_RATE * len(frame))
  frame = frame.copy()
  for column in columns:
    rows = np.sort(rng.choice(len(frame), size=count, replace=False))
    frame[column] = frame[column].astype(object)
    frame.loc[rows, column] = None
  return frame


def _write(folder: PathLike, frame: pd.DataFrame, label: str, task: str,
           float_columns: Sequence[str] = ()) -> TabularCsv:
  """Writes `frame` to `<folder>/data.csv` and describes it.

  Args:
    folder: Created if missing.
    frame: Rows to write, the label among the columns.
    label: The label column.
    task: 'binary', 'multiclass' or 'regression'.
    float_columns: Numeric columns written as floats even when every value
      is whole.

  Returns:
    What was written.
  """
  data_root = os.fspath(folder)
  os.makedirs(data_root, exist_ok=True)
  formats = {c: _column_format(frame[c], c in float_columns)
             for c in frame.columns}
  lines: List[List[str]] = []
  for record in frame.to_dict(orient='records'):
    lines.append([_cell(record[c], formats[c]) for c in frame.columns])
  with open(os.path.join(data_root, CSV_NAME), 'w', newline='',
            encoding='utf-8') as f:
    writer = csv.writer(f, lineterminator='\n')
    writer.writerow(list(frame.columns))
    writer.writerows(lines)
  label_index = list(frame.columns).index(label)
  classes: Tuple[str, ...] = ()
  if task != 'regression':
    classes = tuple(sorted({line[label_index] for line in lines}))
  return TabularCsv(data_root=data_root, label=label, task=task,
                    rows=len(lines), classes=classes)


def _column_format(column: pd.Series, force_float: bool) -> str:
  """'str', 'int' or 'float': how the cells of `column` are written."""
  present = [v for v in column if not _is_missing(v)]
  if any(isinstance(v, str) for v in present):
    return 'str'
  if not force_float and all(float(v).is_integer() for v in present):
    return 'int'
  return 'float'


def _cell(value: object, kind: str) -> str:
  """One CSV cell: empty when missing, else `value` written as `kind`."""
  if _is_missing(value):
    return ''
  if kind == 'str':
    return str(value)
  if kind == 'int':
    return str(int(value))
  # Shortest repr of the value rounded to 6 significant digits: no 1e-17
  # noise, and always a '.' or an exponent, so it reads back as a float.
  return repr(float(f'{float(value):.6g}'))


def _is_missing(value: object) -> bool:
  return value is None or (isinstance(value, float) and math.isnan(value))
