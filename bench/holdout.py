"""Hold-out bench: the pipeline beside a default gradient-boosted tree.

What a user does to judge the pipeline on a table of their own, done the
same way for every dataset:

1. split the rows at random (seeded) into two thirds for the pipeline and
   one third held out, never seen by the pipeline;
2. run the pipeline zero-config on the two thirds
   (`runners/local_runner.py --data-root --label --task`), measuring its
   wall time and peak RSS;
3. score every held-out row through the model it produced, with
   `python -m serving.batch` (the pushed model; the Trainer's model when
   nothing was pushed, so an unblessed model is scored too);
4. train scikit-learn's `HistGradientBoostingClassifier` or `...Regressor`
   with default settings on the same two thirds (categorical columns as
   pandas categories, missing cells left missing), score the same third;
5. print one row per dataset: blessed or not and why, the model the
   pipeline chose, its decision threshold, and both hold-out scores.

The built-in suite is the data that ships with the installed packages
(scikit-learn's breast cancer, wine and diabetes tables, and the taxi
trips of TFX's example; the tfx wheel does not ship the penguins' CSV) and synthetic tables (`bench/synthetic.py`) with imbalanced
labels, skewed and categorical columns and gaps. Other CSV files are added
with `--csv` (repeatable, with `--label`, `--task`, ...), or replace the
suite with `--only-csv`.

    python -m bench.holdout --output-dir outputs/holdout
    python -m bench.holdout --only-csv --csv data.csv --label y --task binary \\
        --positive-label yes --output-dir outputs/holdout

Scores: binary AUC, accuracy at the model's decision threshold and log
loss; multiclass accuracy and log loss; regression RMSE and R-squared.
`hold-out >= HGB` compares AUC (binary), accuracy (multiclass) or RMSE
(regression).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import pathlib
import sys
from typing import Any
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

import numpy as np
import pandas as pd

from bench import bench
from bench import synthetic
from pipeline.facts import files

BINARY = synthetic.BINARY
MULTICLASS = synthetic.MULTICLASS
REGRESSION = synthetic.REGRESSION
HOLDOUT_SHARE = 1 / 3
SPLIT_SEED = 20261207
# HistGradientBoosting treats a column natively as categorical only up to
# its max_bins (255) levels; wider ones are given as ordinal codes.
MAX_NATIVE_LEVELS = 255
CONTRACT = pathlib.Path('assets.extra') / 'serving_contract.json'


@dataclasses.dataclass(frozen=True)
class Dataset:
  """One table of the suite.

  Attributes:
    name: Short name, used for folders.
    csv: The CSV file (header row).
    label: The label column.
    task: binary, multiclass or regression.
    positive_label: binary: the label value that is positive.
    drop: Columns removed before the split (ids, leaks).
    source: Where the data comes from, for the table's note.
  """
  name: str
  csv: pathlib.Path
  label: str
  task: str
  positive_label: Optional[str] = None
  drop: Sequence[str] = ()
  source: str = ''


@dataclasses.dataclass
class Result:
  """One dataset's figures."""
  name: str
  rows: int
  columns: int
  task: str
  majority_share: Optional[float]
  blessed: Optional[bool]
  why: str
  chosen_model: str
  eval_scores: Dict[str, Any]
  threshold: Optional[float]
  pipeline: Dict[str, float]
  hgb: Dict[str, float]
  wall_s: float
  peak_rss_gb: float

  @property
  def key_metric(self) -> str:
    return {BINARY: 'auc', MULTICLASS: 'accuracy',
            REGRESSION: 'rmse'}[self.task]

  @property
  def at_least_hgb(self) -> Optional[bool]:
    ours = self.pipeline.get(self.key_metric)
    theirs = self.hgb.get(self.key_metric)
    if ours is None or theirs is None:
      return None
    if self.task == REGRESSION:
      return ours <= theirs
    return ours >= theirs


# ---------------------------------------------------------------- the suite


def builtin_suite(data_dir: pathlib.Path) -> List[Dataset]:
  """Writes the built-in tables under `data_dir` and describes them."""
  from sklearn import datasets as sk_datasets  # Only the bench needs it.
  suite = []

  def from_sklearn(name: str, loader, task: str, classes=None,
                   positive=None) -> None:
    frame = loader(as_frame=True).frame
    frame.columns = [c.replace(' ', '_').replace('(', '').replace(')', '')
                     for c in frame.columns]
    if classes is not None:
      frame['target'] = [classes[int(t)] for t in frame['target']]
    path = data_dir / name / 'data.csv'
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    suite.append(Dataset(name, path, 'target', task, positive,
                         source=f'scikit-learn {loader.__name__}'))

  from_sklearn('breast_cancer', sk_datasets.load_breast_cancer, BINARY,
               classes=('malignant', 'benign'), positive='malignant')
  from_sklearn('wine', sk_datasets.load_wine, MULTICLASS,
               classes=('barolo', 'grignolino', 'barbera'))
  from_sklearn('diabetes', sk_datasets.load_diabetes, REGRESSION)

  suite.append(Dataset(
      'taxi', bench.PROJECT_DATA_ROOT / 'data.csv', 'big_tipper', BINARY,
      positive_label='1', drop=('tips',), source='TFX chicago_taxi_pipeline'))

  tables = {
      'synthetic_binary_3pct': synthetic.TableSpec(
          rows=6000, task=BINARY, positive_rate=0.03),
      'synthetic_multiclass': synthetic.TableSpec(
          rows=6000, task=MULTICLASS, classes=4),
      'synthetic_regression': synthetic.TableSpec(
          rows=6000, task=REGRESSION),
  }
  for name, spec in tables.items():
    path = synthetic.write_csv(spec, data_dir / name)
    suite.append(Dataset(name, path, synthetic.LABEL, spec.task,
                         synthetic.positive_label(spec),
                         source='bench/synthetic.py'))
  return suite


# ---------------------------------------------------------------- splitting


def split(frame: pd.DataFrame, seed: int = SPLIT_SEED):
  """Two thirds for the pipeline, one third held out, at random."""
  order = np.random.default_rng(seed).permutation(len(frame))
  cut = int(round(len(frame) * (1 - HOLDOUT_SHARE)))
  return (frame.iloc[order[:cut]].reset_index(drop=True),
          frame.iloc[order[cut:]].reset_index(drop=True))


def binary_truth(labels: pd.Series, positive: Optional[str]) -> np.ndarray:
  """1 for the positive label, 0 otherwise (labels compared as text)."""
  text = labels.astype(str)
  if positive is None:
    positive = '1'
  return (text == str(positive)).to_numpy(dtype=np.int64)


# ---------------------------------------------------------------- scores


def scores(task: str, truth: np.ndarray, predictions: np.ndarray,
           threshold: float = 0.5,
           classes: Optional[Sequence[str]] = None) -> Dict[str, float]:
  """Hold-out scores of one model.

  Args:
    task: binary, multiclass or regression.
    truth: binary 0/1; multiclass class names; regression values.
    predictions: binary P(positive); multiclass [n, k] probabilities in the
      order of `classes`; regression values.
    threshold: binary: the decision threshold.
    classes: multiclass: the class names of the probability columns.
  """
  from sklearn import metrics  # Only the bench needs it.
  if task == REGRESSION:
    error = np.asarray(truth, float) - np.asarray(predictions, float)
    return {'rmse': float(np.sqrt(np.mean(error ** 2))),
            'r2': float(metrics.r2_score(truth, predictions))}
  if task == BINARY:
    p = np.clip(np.asarray(predictions, float), 1e-7, 1 - 1e-7)
    return {'auc': float(metrics.roc_auc_score(truth, p)),
            'accuracy': float(np.mean((p >= threshold) == truth)),
            'accuracy_at_0.5': float(np.mean((p >= 0.5) == truth)),
            'log_loss': float(metrics.log_loss(truth, p, labels=[0, 1]))}
  probabilities = np.clip(np.asarray(predictions, float), 1e-7, 1.0)
  probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
  names = np.asarray(classes, dtype=object)
  predicted = names[np.argmax(probabilities, axis=1)]
  index = {name: i for i, name in enumerate(classes)}
  known = np.array([t in index for t in truth])
  rows = np.arange(len(truth))[known]
  picked = probabilities[rows, [index[t] for t in np.asarray(truth)[known]]]
  # A class the model never saw counts as probability 1e-7.
  log_loss = float(-(np.log(picked).sum() + (~known).sum() * math.log(1e-7))
                   / len(truth))
  return {'accuracy': float(np.mean(predicted == np.asarray(truth))),
          'log_loss': log_loss}


def hgb_scores(dataset: Dataset, train: pd.DataFrame,
               holdout: pd.DataFrame) -> Dict[str, float]:
  """A default HistGradientBoosting model trained and scored on the split."""
  from sklearn import ensemble  # Only the bench needs it.
  features = [c for c in train.columns if c != dataset.label]
  x_train, x_test = train[features].copy(), holdout[features].copy()
  native = []
  for column in features:
    if x_train[column].dtype == object:
      levels = pd.Index(x_train[column].dropna().unique())
      if len(levels) <= MAX_NATIVE_LEVELS:
        dtype = pd.CategoricalDtype(levels)
        x_train[column] = x_train[column].astype(dtype)
        x_test[column] = x_test[column].astype(dtype)
        native.append(column)
      else:
        codes = {value: i for i, value in enumerate(levels)}
        x_train[column] = x_train[column].map(codes).astype(float)
        x_test[column] = x_test[column].map(codes).astype(float)
  kwargs = {'categorical_features': 'from_dtype', 'random_state': 0}
  if dataset.task == REGRESSION:
    model = ensemble.HistGradientBoostingRegressor(**kwargs)
    model.fit(x_train, train[dataset.label].astype(float))
    return scores(REGRESSION, holdout[dataset.label].astype(float).to_numpy(),
                  model.predict(x_test))
  model = ensemble.HistGradientBoostingClassifier(**kwargs)
  if dataset.task == BINARY:
    y = binary_truth(train[dataset.label], dataset.positive_label)
    model.fit(x_train, y)
    return scores(BINARY,
                  binary_truth(holdout[dataset.label], dataset.positive_label),
                  model.predict_proba(x_test)[:, 1])
  model.fit(x_train, train[dataset.label].astype(str))
  return scores(MULTICLASS, holdout[dataset.label].astype(str).to_numpy(),
                model.predict_proba(x_test),
                classes=[str(c) for c in model.classes_])


# ---------------------------------------------------------------- the run


def _model_dir(output_dir: pathlib.Path) -> Optional[pathlib.Path]:
  """The pushed model, else the newest model the Trainer wrote."""
  pushed = output_dir / files.SERVING_MODEL_DIR
  if pushed.is_dir():
    versions = sorted((p for p in pushed.iterdir() if p.name.isdigit()),
                      key=lambda p: int(p.name))
    if versions:
      return versions[-1]
  pattern = f'{files.PIPELINE_ROOT_DIR}/**/Format-Serving'
  trained = sorted(output_dir.glob(pattern), key=lambda p: p.stat().st_mtime)
  return trained[-1] if trained else None


def _contract(model_dir: pathlib.Path) -> Dict[str, Any]:
  path = model_dir / CONTRACT
  return json.loads(path.read_text()) if path.exists() else {}


def _score_holdout(model_dir: pathlib.Path, holdout_csv: pathlib.Path,
                   work: pathlib.Path, env: Dict[str, str]) -> pd.DataFrame:
  """Scores the held-out rows with `python -m serving.batch`.

  serving.batch reads models from `<output-dir>/serving_model/<version>`;
  an unpushed model is linked into such a layout of its own.
  """
  layout = work / 'scoring'
  version_dir = layout / files.SERVING_MODEL_DIR / '1'
  version_dir.parent.mkdir(parents=True, exist_ok=True)
  if not version_dir.exists():
    version_dir.symlink_to(model_dir.resolve(), target_is_directory=True)
  out = work / 'holdout_scores.csv'
  bench.run_measured(
      [sys.executable, '-m', 'serving.batch', '--output-dir', str(layout),
       '--data-root', str(holdout_csv.parent), '--out', str(out),
       '--no-progress'],
      cwd=bench.REPO_ROOT, env=env, log_path=work / 'batch.log')
  return pd.read_csv(out)


def pipeline_predictions(task: str, scored: pd.DataFrame,
                         contract: Dict[str, Any]):
  """The batch output as the arrays `scores` takes."""
  if task == REGRESSION:
    return scored['prediction'].to_numpy(float), None
  if task == BINARY:
    return scored['probability'].to_numpy(float), None
  classes = [str(c) for c in contract.get('classes', [])] or sorted(
      c[len('score_'):] for c in scored.columns if c.startswith('score_'))
  matrix = scored[[f'score_{c}' for c in classes]].to_numpy(float)
  return matrix, classes


def run_dataset(dataset: Dataset, work_root: pathlib.Path,
                runner_args: Sequence[str]) -> Result:
  """Splits, runs the pipeline, scores the hold-out, runs the HGB model."""
  work = work_root / dataset.name
  frame = pd.read_csv(dataset.csv, low_memory=False)
  # --drop applies to every --csv that has the column (parse_args refused
  # one that none has).
  frame = frame.drop(columns=[c for c in dataset.drop if c in frame])
  train, holdout = split(frame)
  data_root = work / 'data'
  holdout_dir = work / 'holdout'
  data_root.mkdir(parents=True, exist_ok=True)
  holdout_dir.mkdir(parents=True, exist_ok=True)
  train.to_csv(data_root / 'data.csv', index=False)
  holdout_csv = holdout_dir / 'data.csv'
  holdout.to_csv(holdout_csv, index=False)

  output_dir = work / 'output'
  command = [sys.executable, str(bench.REPO_ROOT / 'runners' /
                                 'local_runner.py'),
             '--data-root', str(data_root), '--label', dataset.label,
             '--task', dataset.task, '--output-dir', str(output_dir),
             '--no-mlflow', *runner_args]
  if dataset.positive_label is not None:
    command += ['--positive-label', str(dataset.positive_label)]
  env = dict(os.environ)
  wall, peak_largest, _ = bench.run_measured(
      command, cwd=bench.REPO_ROOT, env=env, log_path=work / 'run.log')
  log = (work / 'run.log').read_text(errors='replace')

  model_dir = _model_dir(output_dir)
  if model_dir is None:
    raise bench.RunFailed(f'{dataset.name}: the run wrote no model; see '
                          f'{work / "run.log"}')
  contract = _contract(model_dir)
  threshold = contract.get('decision_threshold')
  scored = _score_holdout(model_dir, holdout_csv, work, env)
  predictions, classes = pipeline_predictions(dataset.task, scored, contract)
  if dataset.task == BINARY:
    truth = binary_truth(holdout[dataset.label], dataset.positive_label)
    ours = scores(BINARY, truth, predictions,
                  threshold if threshold is not None else 0.5)
    majority = max(truth.mean(), 1 - truth.mean())
  elif dataset.task == MULTICLASS:
    truth = holdout[dataset.label].astype(str).to_numpy()
    ours = scores(MULTICLASS, truth, predictions, classes=classes)
    majority = float(frame[dataset.label].astype(str).value_counts(
        normalize=True).iloc[0])
  else:
    truth = holdout[dataset.label].astype(float).to_numpy()
    ours = scores(REGRESSION, truth, predictions)
    majority = None
  pushed_dir = output_dir / files.SERVING_MODEL_DIR
  pushed = pushed_dir.is_dir() and any(pushed_dir.iterdir())
  return Result(
      name=dataset.name, rows=len(frame), columns=frame.shape[1] - 1,
      task=dataset.task, majority_share=majority, blessed=pushed,
      why=_verdict_line(log), chosen_model=str(contract.get('model', 'dnn')),
      eval_scores=dict(contract.get('candidates', {})), threshold=threshold,
      pipeline=ours, hgb=hgb_scores(dataset, train, holdout), wall_s=wall,
      peak_rss_gb=peak_largest / bench.GIB)


def _verdict_line(log: str) -> str:
  """The summary's blessing line, as the run printed it."""
  for line in reversed(log.splitlines()):
    text = line.strip()
    if text.startswith(('BLESSED', 'NOT BLESSED', 'Blessed', 'Not blessed')):
      return text
  return ''


# ---------------------------------------------------------------- output


def _fmt(value: Optional[float], digits: int = 4) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return '-'
  return f'{value:.{digits}f}'


def format_results(results: Sequence[Result]) -> str:
  """The table: one row per dataset."""
  header = (f'{"dataset":<24}{"rows":>7}{"cols":>5} {"task":<11}'
            f'{"majority":>9} {"blessed":<8}{"model":<6}{"thresh":>7}'
            f' {"metric":<9}{"pipeline":>9}{"HGB":>9} {">=HGB":<6}'
            f'{"wall s":>7}{"RSS GB":>7}')
  lines = [header]
  for r in results:
    metric = r.key_metric
    lines.append(
        f'{r.name:<24}{r.rows:>7}{r.columns:>5} {r.task:<11}'
        f'{_fmt(r.majority_share, 3):>9} '
        f'{("yes" if r.blessed else "no"):<8}{r.chosen_model:<6}'
        f'{_fmt(r.threshold, 3):>7} {metric:<9}'
        f'{_fmt(r.pipeline.get(metric)):>9}{_fmt(r.hgb.get(metric)):>9} '
        f'{("yes" if r.at_least_hgb else "no"):<6}'
        f'{r.wall_s:>7.0f}{r.peak_rss_gb:>7.2f}')
  won = sum(bool(r.at_least_hgb) for r in results)
  blessed = sum(bool(r.blessed) for r in results)
  lines.append(f'Pipeline at least as good as default HGB on {won} of '
               f'{len(results)}; blessed {blessed} of {len(results)}.')
  return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n\n')[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--output-dir', default='outputs/holdout',
                      help='Where the runs, scores and results.json go.')
  parser.add_argument('--csv', action='append', default=[],
                      help='A CSV file to add to the suite (repeatable; '
                      'each needs --label and --task in the same order).')
  parser.add_argument('--label', action='append', default=[])
  parser.add_argument('--task', action='append', default=[],
                      choices=synthetic.TASKS)
  parser.add_argument('--positive-label', action='append', default=[],
                      help='binary: the positive label, in --csv order '
                      '(use - for a 0/1 label).')
  parser.add_argument('--drop', action='append', default=[],
                      help='COLUMN to drop from every --csv (ids, leaks).')
  parser.add_argument('--only-csv', action='store_true',
                      help='Run only the --csv tables, not the built-in '
                      'suite.')
  parser.add_argument('--only', action='append', default=[],
                      help='Run only the named datasets (repeatable).')
  parser.add_argument('--runner-arg', action='append', default=[],
                      help='An extra flag for the runner, e.g. '
                      '--runner-arg=--model=gbt (repeatable).')
  args = parser.parse_args(argv)
  if not (len(args.csv) == len(args.label) == len(args.task)):
    parser.error('each --csv needs one --label and one --task.')
  headers = {csv: _header(csv, parser) for csv in args.csv}
  for column in args.drop:
    if not any(column in header for header in headers.values()):
      parser.error(f'--drop {column}: no --csv has that column (columns: '
                   f'{", ".join(sorted(set().union(*headers.values())))}).')
  return args


def _header(csv: str, parser: argparse.ArgumentParser) -> List[str]:
  """The column names of `csv`, or a usage error naming the file."""
  try:
    return list(pd.read_csv(csv, nrows=0).columns)
  except (OSError, ValueError) as e:
    parser.error(f'--csv {csv}: cannot read its header: {e}')
    raise  # Unreachable: parser.error exits.


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  output_dir = pathlib.Path(args.output_dir).resolve()
  output_dir.mkdir(parents=True, exist_ok=True)
  suite = [] if args.only_csv else builtin_suite(output_dir / 'data')
  positives = args.positive_label + ['-'] * len(args.csv)
  for i, (csv, label, task) in enumerate(zip(args.csv, args.label,
                                             args.task, strict=True)):
    positive = positives[i] if task == BINARY else None
    suite.append(Dataset(
        pathlib.Path(csv).stem, pathlib.Path(csv).resolve(), label, task,
        None if positive in (None, '-') else positive, tuple(args.drop),
        source=csv))
  if args.only:
    suite = [d for d in suite if d.name in args.only]
  results = []
  for dataset in suite:
    print(f'{dataset.name}: running', flush=True)
    try:
      result = run_dataset(dataset, output_dir / 'runs', args.runner_arg)
    except bench.RunFailed as e:
      print(f'{dataset.name}: FAILED\n{e}', file=sys.stderr)
      return 1
    results.append(result)
    print(format_results([result]).splitlines()[1], flush=True)
  print(format_results(results))
  (output_dir / 'results.json').write_text(json.dumps(
      [dataclasses.asdict(r) for r in results], indent=1, default=str))
  return 0


if __name__ == '__main__':
  sys.exit(main())
