"""FeatureAttributions: global permutation importance of the candidate model.

Which raw columns does the Trainer's model rely on? For each feature column
of the dataset, this component shuffles that column across the rows of the
test split (the rows the Evaluator judges), scores the shuffled rows with
the model's `serving_default` signature, and records how much the task's
primary metric drops: AUC (binary), accuracy (multiclass) or R-squared
(regression). A column the model ignores drops nothing; a column it leans on
drops a lot. The drop is in the metric's own units, so it reads as "without
this column the AUC would be 0.08 lower".

Choices, and why:

* **Raw columns through the serving signature.** Shuffling happens on the
  serialized raw `tf.Example`s, before the embedded Transform graph, so a
  column with two encodings (an hour is both a vocabulary id and sin/cos)
  counts once, as the column a client sends.
* **Bounded cost.** At most `max_rows` rows (default 2,000), drawn from the
  split with a seeded reservoir sample, scored in batches; each column is
  shuffled `repeats` times (default 3) and the mean drop is reported with
  its spread. The seed fixes the sample and every permutation, so a re-run
  on the same model gives the same numbers.
* **A budget of scored rows, so cost grows gently with width.** The work
  is columns x repeats x rows through the serving graph, so a wide table
  gets fewer rows: `rows_for` keeps columns x repeats x rows within
  `max_scored_rows` (default 100,000), but never below `MIN_ROWS` (500:
  an AUC on fewer rows is too noisy to rank columns by). The taxi table's
  17 columns keep up to 1,960 rows; 200 columns or more get 500. `rows` in
  the result says how many were used.
* **No gate.** The result is reported (run report, notebook), never
  judged. Nothing waits for it, the Pusher included, so it never blocks a
  push; the local runner runs it beside the Evaluator, in another process,
  so it does not delay one either.

Output: a `tabular.FeatureAttributions` artifact holding `attributions.json`
(`read` below parses it). A regression run also keeps the sample's labels
and predictions there, for the report's predicted-vs-actual and residual
plots: TFMA has no plot for a regression label whose range is not known
when the pipeline is defined.
"""

# No `from __future__ import annotations`: TFX's @component reads the
# signature's annotations as types, not strings.
import json
import os
import time
from typing import Callable
from typing import Dict
from typing import Iterable
from typing import List
from typing import Sequence

from absl import logging
import numpy as np
import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from models import features
from models import forest_ops
from models import signatures
from pipeline.facts import components as component_ids

FEATURE_ATTRIBUTIONS = component_ids.FEATURE_ATTRIBUTIONS
# The name of the component's output parameter below.
OUTPUT_KEY = component_ids.ATTRIBUTIONS_KEY
ATTRIBUTIONS_FILE = 'attributions.json'
METHOD = 'permutation_importance'
DEFAULT_MAX_ROWS = 2000
DEFAULT_REPEATS = 3
# Rows scored for the shuffles, all columns and repeats together (see
# `rows_for`), and the fewest rows a wide table's sample is cut to.
DEFAULT_MAX_SCORED_ROWS = 100_000
MIN_ROWS = 500
DEFAULT_SEED = 0
BATCH_SIZE = 1024
# The metric each task's importance is measured in (the Evaluator's primary
# metric of the task, with TFMA's names).
METRIC = {features.BINARY: 'auc', features.MULTICLASS: 'accuracy',
          features.REGRESSION: 'r_squared'}

PredictFn = Callable[[List[bytes]], np.ndarray]


class FeatureAttributionsArtifact(artifact.Artifact):
  """Global feature attributions of a model: `attributions.json`.

  Custom properties: `metric` (what the importances are drops of) and
  `top_feature`.
  """
  # '<namespace>.<Name>': the form Kubeflow V2 needs for a custom type.
  TYPE_NAME = 'tabular.FeatureAttributions'


# --- The computation: plain numpy and protos, testable without a pipeline ---


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
  """Area under the ROC curve (ties count half); NaN with one class."""
  labels = np.asarray(labels, dtype=np.float64).reshape(-1) > 0.5
  scores = np.asarray(scores, dtype=np.float64).reshape(-1)
  positives = int(labels.sum())
  negatives = labels.size - positives
  if positives == 0 or negatives == 0:
    return float('nan')
  # Mann-Whitney U from average ranks, so tied scores count half.
  order = np.argsort(scores, kind='mergesort')
  ranks = np.empty(scores.size, dtype=np.float64)
  sorted_scores = scores[order]
  boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
  starts = np.concatenate(([0], boundaries))
  ends = np.concatenate((boundaries, [scores.size]))
  for start, end in zip(starts, ends, strict=True):
    ranks[order[start:end]] = (start + end + 1) / 2.0
  u = ranks[labels].sum() - positives * (positives + 1) / 2.0
  return float(u / (positives * negatives))


def accuracy(labels: np.ndarray, scores: np.ndarray) -> float:
  """Share of rows whose highest-scored class is the label."""
  labels = np.asarray(labels).reshape(-1).astype(np.int64)
  if labels.size == 0:
    return float('nan')
  predicted = np.argmax(np.asarray(scores).reshape(labels.size, -1), axis=1)
  return float(np.mean(predicted == labels))


def r_squared(labels: np.ndarray, predictions: np.ndarray) -> float:
  """1 - MSE / Var(label around these rows' mean), as the gate defines it."""
  labels = np.asarray(labels, dtype=np.float64).reshape(-1)
  predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
  variance = np.mean((labels - labels.mean()) ** 2) if labels.size else 0.0
  if variance <= 0:
    return float('nan')
  return float(1.0 - np.mean((labels - predictions) ** 2) / variance)


SCORERS = {'auc': auc, 'accuracy': accuracy, 'r_squared': r_squared}


def rows_for(columns: int, repeats: int, max_rows: int,
             max_scored_rows: int) -> int:
  """The sample size: `max_rows`, cut so that columns x repeats x rows
  stays within `max_scored_rows`, but not below `MIN_ROWS` (nor above
  `max_rows`)."""
  if max_scored_rows < 1:
    raise ValueError(
        f'max_scored_rows must be at least 1, got {max_scored_rows}.')
  shuffles = max(columns, 1) * max(repeats, 1)
  return min(max_rows, max(MIN_ROWS, max_scored_rows // shuffles))


def reservoir_sample(records: Iterable[bytes], max_rows: int,
                     seed: int) -> List[bytes]:
  """At most `max_rows` records, each equally likely, in a fixed order.

  One pass, memory bounded by `max_rows` (Algorithm R); the same records
  and seed give the same sample. Fewer records than `max_rows`: all, in
  their order.
  """
  if max_rows < 1:
    raise ValueError(f'max_rows must be at least 1, got {max_rows}.')
  rng = np.random.default_rng(seed)
  sample: List[bytes] = []
  for seen, record in enumerate(records):
    if seen < max_rows:
      sample.append(record)
    else:
      slot = int(rng.integers(0, seen + 1))
      if slot < max_rows:
        sample[slot] = record
  return sample


def _varint(value: int) -> bytes:
  """Protocol buffers' base-128 varint."""
  out = bytearray()
  while True:
    byte, value = value & 0x7F, value >> 7
    if not value:
      out.append(byte)
      return bytes(out)
    out.append(byte | 0x80)


class EncodedRows:
  """Rows kept as the serialized entries of their feature maps.

  A serialized `tf.train.Example` is its `features` field (number 1)
  around the concatenated entries of the feature map, one field each, in
  any order. So a row with one column taken from another row is a join of
  bytes, not a proto copy and serialization: 17 columns x 3 repeats on
  1,453 rows took 2 s that way on the taxi data.
  """

  def __init__(self, examples: Sequence[tf.train.Example]):
    self._entries = [
        {name: tf.train.Features(feature={name: value}).SerializeToString()
         for name, value in sorted(example.features.feature.items())}
        for example in examples]

  def shuffled(self, feature: str, permutation: np.ndarray) -> List[bytes]:
    """Serialized rows where row i has row permutation[i]'s value of
    `feature` (or none, where that row has none); the other columns stay."""
    result = []
    for entries, source in zip(self._entries, permutation, strict=True):
      body = b''.join(entry for name, entry in entries.items()
                      if name != feature)
      body += self._entries[source].get(feature, b'')
      result.append(b'\x0a' + _varint(len(body)) + body)
    return result


def shuffled_column(examples: Sequence[tf.train.Example], feature: str,
                    permutation: np.ndarray) -> List[bytes]:
  """Serialized copies of `examples` where row i has row permutation[i]'s
  value of `feature` (or none, where that row has none); the other columns
  stay."""
  return EncodedRows(examples).shuffled(feature, permutation)


def permutation_importance(
    predict: PredictFn, labels: np.ndarray, serialized: Sequence[bytes],
    columns: Sequence[str], metric: str, repeats: int = DEFAULT_REPEATS,
    seed: int = DEFAULT_SEED) -> Dict:
  """The drop of `metric` when each column is shuffled across the rows.

  Args:
    predict: Serialized examples -> the model's predictions (one row each:
      P(positive), the class scores, or the value).
    labels: The rows' labels, as the model's metric expects them (0/1, a
      class index, or a number).
    serialized: The rows, serialized raw `tf.Example`s.
    columns: The raw columns to shuffle, one at a time.
    metric: 'auc', 'accuracy' or 'r_squared'.
    repeats: Shuffles per column; the importance is their mean drop.
    seed: Fixes every permutation.

  Returns:
    {'metric', 'baseline', 'repeats', 'seed', 'features': [{'feature',
    'importance', 'spread', 'drops'}, ...] from the largest importance}.
    'spread' is the standard deviation of the drops (0 for one repeat).
  """
  if repeats < 1:
    raise ValueError(f'repeats must be at least 1, got {repeats}.')
  score = SCORERS[metric]
  labels = np.asarray(labels)
  baseline = score(labels, predict(list(serialized)))
  examples = EncodedRows([tf.train.Example.FromString(s)
                          for s in serialized])
  rng = np.random.default_rng(seed)
  rows = []
  for column in columns:
    drops = []
    for _ in range(repeats):
      permutation = rng.permutation(len(serialized))
      shuffled = examples.shuffled(column, permutation)
      drops.append(baseline - score(labels, predict(shuffled)))
    rows.append({'feature': column, 'importance': float(np.mean(drops)),
                 'spread': float(np.std(drops)),
                 'drops': [float(d) for d in drops]})
  rows.sort(key=lambda r: (-_sortable(r['importance']), r['feature']))
  return {'metric': metric, 'baseline': float(baseline), 'repeats': repeats,
          'seed': seed, 'features': rows}


def _sortable(value: float) -> float:
  return value if np.isfinite(value) else -np.inf


# --- The model and the data ----------------------------------------------


def split_records(examples: artifact.Artifact, split: str) -> Iterable[bytes]:
  """The serialized records of one split of an Examples artifact."""
  splits = artifact_utils.decode_split_names(examples.split_names)
  if split not in splits:
    raise ValueError(f'No split {split!r} in the examples at {examples.uri} '
                     f'(it has {splits}).')
  uri = artifact_utils.get_split_uri([examples], split)
  paths = sorted(tf.io.gfile.glob(os.path.join(uri, '*')))
  if not paths:
    raise FileNotFoundError(f'No files in split {split!r} at {uri}.')
  dataset = tf.data.TFRecordDataset(paths, compression_type='GZIP')
  for record in dataset.as_numpy_iterator():
    yield record


class ServedModel:
  """A SavedModel's `serving_default` and `transform_features`, in batches."""

  def __init__(self, path: str, spec: features.DatasetSpec,
               batch_size: int = BATCH_SIZE):
    forest_ops.register()  # A gradient-boosted trees model needs TF-DF's ops.
    loaded = tf.saved_model.load(path)
    self._loaded = loaded  # Keeps the functions' variables alive.
    self._serve = loaded.signatures['serving_default']
    self._transform = loaded.signatures['transform_features']
    self._spec = spec
    self._batch_size = batch_size

  def _batches(self, serialized: Sequence[bytes]):
    for start in range(0, len(serialized), self._batch_size):
      yield tf.constant(list(serialized[start:start + self._batch_size]))

  def labels(self, serialized: Sequence[bytes]) -> np.ndarray:
    """The transformed label: 0/1, a class index, or the number."""
    key = self._spec.transformed_label_key
    parts = [self._transform(examples=batch)[key].numpy().reshape(-1)
             for batch in self._batches(serialized)]
    return np.concatenate(parts)

  def predict(self, serialized: Sequence[bytes]) -> np.ndarray:
    """P(positive) [n], class scores [n, classes], or the value [n]."""
    key = signatures.prediction_key(self._spec.task)
    parts = [self._serve(examples=batch)[key].numpy()
             for batch in self._batches(serialized)]
    values = np.concatenate(parts)
    return values if self._spec.task == features.MULTICLASS else (
        values.reshape(-1))


def compute(model_path: str, records: Iterable[bytes],
                 spec: features.DatasetSpec, max_rows: int = DEFAULT_MAX_ROWS,
                 repeats: int = DEFAULT_REPEATS,
                 seed: int = DEFAULT_SEED,
                 max_scored_rows: int = DEFAULT_MAX_SCORED_ROWS) -> Dict:
  """Permutation importance of a serving model on a bounded sample.

  Args:
    model_path: A SavedModel with `serving_default` and
      `transform_features` (models/signatures.py).
    records: Serialized raw `tf.Example`s with the label.
    spec: The dataset: task, label and feature columns.
    max_rows: At most this many rows are scored.
    repeats: Shuffles per column.
    seed: Fixes the sample and the permutations.
    max_scored_rows: Rows scored for all shuffles together; a wide table's
      sample is cut to fit (`rows_for`).

  Returns:
    `permutation_importance`'s result plus 'method', 'task', 'rows',
    'classes', 'seconds' and, for regression, 'sample' (labels and
    predictions).
  """
  started = time.monotonic()
  rows = rows_for(len(spec.feature_columns), repeats, max_rows,
                  max_scored_rows)
  sample = reservoir_sample(records, rows, seed)
  if not sample:
    raise ValueError('No rows to compute feature attributions on: the split '
                     'is empty.')
  model = ServedModel(model_path, spec)
  labels = model.labels(sample)
  result = permutation_importance(
      model.predict, labels, sample, spec.feature_columns,
      METRIC[spec.task], repeats=repeats, seed=seed)
  result.update(method=METHOD, task=spec.task, rows=len(sample),
                classes=list(spec.classes))
  if spec.task == features.REGRESSION:
    result['sample'] = {'labels': [float(v) for v in labels],
                        'predictions': [float(v) for v in
                                        model.predict(sample)]}
  result['seconds'] = round(time.monotonic() - started, 3)
  return result


def write(result: Dict, uri: str) -> str:
  path = os.path.join(uri, ATTRIBUTIONS_FILE)
  tf.io.gfile.makedirs(uri)
  with tf.io.gfile.GFile(path, 'w') as f:
    f.write(json.dumps(result, indent=1, allow_nan=True) + '\n')
  return path


def read(uri: str) -> Dict:
  """The result a FeatureAttributions artifact at `uri` holds.

  Raises:
    FileNotFoundError: No attributions file there.
    ValueError: The file is not one this component wrote.
  """
  path = os.path.join(uri, ATTRIBUTIONS_FILE)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f'No {ATTRIBUTIONS_FILE} at {uri}.')
  with tf.io.gfile.GFile(path) as f:
    result = json.load(f)
  if result.get('method') != METHOD or 'features' not in result:
    raise ValueError(f'{path} is not a feature attributions file written by '
                     f'{FEATURE_ATTRIBUTIONS}.')
  return result


@component
def FeatureAttributions(
    model: InputArtifact[standard_artifacts.Model],
    examples: InputArtifact[standard_artifacts.Examples],
    attributions: OutputArtifact[FeatureAttributionsArtifact],
    dataset: Parameter[str],
    split: Parameter[str] = 'test',
    max_rows: Parameter[int] = DEFAULT_MAX_ROWS,
    repeats: Parameter[int] = DEFAULT_REPEATS,
    seed: Parameter[int] = DEFAULT_SEED,
    max_scored_rows: Parameter[int] = DEFAULT_MAX_SCORED_ROWS,
) -> None:
  """Writes the permutation importance of each feature column.

  Args:
    model: The Trainer's model (its serving SavedModel is scored).
    examples: ExampleGen's examples; `split` is read.
    attributions: Gets `attributions.json`.
    dataset: The `DatasetSpec.to_dict()`, as JSON.
    split: The split to measure on: the Evaluator's test split.
    max_rows: At most this many rows (a seeded sample).
    repeats: Shuffles per column.
    seed: Fixes the sample and the permutations.
    max_scored_rows: Rows scored for all shuffles together (a wide
      table's sample is cut to fit, down to MIN_ROWS).
  """
  spec = features.DatasetSpec.from_dict(json.loads(dataset))
  result = compute(
      path_utils.serving_model_path(model.uri),
      split_records(examples, split), spec, max_rows=max_rows,
      repeats=repeats, seed=seed, max_scored_rows=max_scored_rows)
  result['split'] = split
  write(result, attributions.uri)
  attributions.set_string_custom_property('metric', result['metric'])
  if result['features']:
    attributions.set_string_custom_property(
        'top_feature', result['features'][0]['feature'])
  logging.info('%s: %d columns on %d %s rows in %.1f s; top: %s',
               FEATURE_ATTRIBUTIONS, len(result['features']), result['rows'],
               split, result['seconds'],
               ', '.join(f"{r['feature']} {r['importance']:+.4f}"
                         for r in result['features'][:5]))
