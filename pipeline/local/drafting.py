"""Drafts a curated schema and a dataset config from a first look at the data.

A zero-config run (`--data-root DIR --label COL --task TASK`) profiles an
unseen CSV folder with CsvExampleGen, StatisticsGen and SchemaGen, then calls
`draft` to turn the statistics and SchemaGen's inferred schema into the two
files a committed dataset has: `schema.pbtxt` and `dataset.yaml`. The rest of
the run validates the data against the draft schema, so the draft must fit
the very statistics it was drafted from, every split of them, while still
being a contract: types, the label's presence, and string domains of
categoricals. No feature is required at serving time, however complete the
sample: the reviewer decides that (`required:` in dataset.yaml).

How CsvExampleGen encodes a CSV (what the statistics describe): every row is
a tf.Example holding every column; an empty cell is a feature that is present
with zero values. A column is INT when every non-empty cell parses as an
int64, FLOAT when as a float, BYTES otherwise.

Each column gets one treatment, and `Draft.config.notes` says why:

* the label: never a feature;
* ignored: every cell empty; constant (one distinct value); an ID (INT or
  BYTES with a distinct value in nearly every row); free text (BYTES with
  many distinct, long or nearly unique values);
* categorical: other BYTES columns;
* integer_categorical: INT columns with few possible values (codes);
* log: non-negative, strongly right-skewed numbers;
* numeric: other INT and FLOAT columns.

StatisticsGen counts distinct values of strings only, so INT columns are
judged by their range: `max - min + 1` bounds the number of distinct values,
and an INT ID is recognised as a row number (integers spread evenly over a
range about as long as the row count).

The draft never uses the `bucket` or `cyclical` groups: whether a number
relates to the label through neighbourhoods (coordinates) or has a period
(hour of day) is a judgement the data cannot make. A reviewer moves such
columns there in `dataset.yaml`, and may widen the drafted categorical
domains, before committing the pair under `schema/<name>/`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict
from typing import FrozenSet
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from models import features
from models import treatments
from pipeline.definition import config as config_lib
from pipeline.definition import dataset_config
from pipeline.facts import kinds
from pipeline.inspection import feature_stats

# An ID has a distinct value in at least this share of its non-empty cells...
ID_MIN_UNIQUE_RATIO = 0.95
# ...and at least this many of them: on a handful of rows everything is
# unique.
ID_MIN_ROWS = 20
# INT IDs are seen through their range only (StatisticsGen does not count
# distinct integers): a row number has integers spread evenly over min..max,
# and the range holds between ID_MIN_UNIQUE_RATIO and this many times as many
# integers as there are rows (up to half the numbers unused, e.g. dropped
# rows). A timestamp's range is far longer than the row count, so it stays a
# number. The evenness check needs more rows than a BYTES ID, since a short
# range (years, ages) can be covered evenly by chance.
INT_ID_MAX_RANGE_RATIO = 2.0
INT_ID_MIN_ROWS = 100
# Largest distance of a quantile from its place on a straight line from min
# to max, as a share of the range, for integers to count as evenly spread.
INT_ID_MAX_QUANTILE_DEVIATION = 0.1
# Free text: long values that mostly differ (descriptions, comments)...
FREE_TEXT_MIN_AVG_LENGTH = 30.0
FREE_TEXT_LONG_MIN_UNIQUE_RATIO = 0.2
# ...or short ones with too many distinct values for a vocabulary to learn
# from (names, addresses).
FREE_TEXT_MIN_UNIQUE_RATIO = 0.5
FREE_TEXT_MIN_UNIQUE = 100
# INT columns with at most this many possible values are codes: their order
# means nothing to the model (areas, ratings, flags).
INTEGER_CODES_MAX_VALUES = 20
# log1p scaling for non-negative numbers whose mean exceeds their median by
# this many standard deviations (a third of Pearson's second skewness
# coefficient; an exponential distribution scores 0.31, a uniform 0).
LOG_MIN_SKEW = 0.25
# Slices: categorical columns with this many distinct values, fewest first.
SLICE_MIN_VALUES = 2
SLICE_MAX_VALUES = 10
MAX_SLICES = 2
# An INT multiclass label's classes are its range min..max; beyond this many
# it is more likely a number than a class.
MAX_CLASSES = 100
# Training length: about this many epochs over the train split...
TRAIN_EPOCHS = 40
# ...clamped to this range (the upper end is the default data's best).
MIN_TRAIN_STEPS = 200
MAX_TRAIN_STEPS = 1600

SERVING = 'SERVING'
ENVIRONMENTS = ('TRAINING', SERVING)
_TRAIN_SPLIT = 'train'
_INT = kinds.INT
_FLOAT = kinds.FLOAT
_BYTES = kinds.BYTES
_STATS_KINDS = {
    statistics_pb2.FeatureNameStatistics.INT: _INT,
    statistics_pb2.FeatureNameStatistics.FLOAT: _FLOAT,
    statistics_pb2.FeatureNameStatistics.STRING: _BYTES,
    statistics_pb2.FeatureNameStatistics.BYTES: _BYTES,
}
_SCHEMA_KINDS = {schema_pb2.INT: _INT, schema_pb2.FLOAT: _FLOAT,
                 schema_pb2.BYTES: _BYTES}
_SCHEMA_TYPES = {kind: type_ for type_, kind in _SCHEMA_KINDS.items()}
_IGNORED = dataset_config.IGNORED


@dataclasses.dataclass(frozen=True)
class Draft:
  """A drafted contract for an unseen dataset, for a human to review.

  Attributes:
    schema: The curated schema draft; it validates cleanly against the
      statistics it was drafted from.
    config: The dataset config draft (path ''); `notes` hold the reason for
      every column's treatment, the label's included.
  """
  schema: schema_pb2.Schema
  config: dataset_config.DatasetConfig


@dataclasses.dataclass(frozen=True)
class _Column:
  """One column's statistics, merged over the splits.

  Counts cover every split. Distribution figures (mean, median, std, the
  quantiles, distinct strings, length) come from the decision split: train
  when there is one, else the first split.
  """
  name: str
  kind: str
  rows: int
  with_value: int
  optional: bool
  max_values: int
  minimum: float = 0.0
  maximum: float = 0.0
  mean: float = 0.0
  median: float = 0.0
  std: float = 0.0
  quantiles: Tuple[float, ...] = ()
  unique: int = 0
  decision_cells: int = 0
  avg_length: float = 0.0
  # Every distinct string of all splits, or None when a split saw more than
  # its rank histogram lists.
  values: Optional[FrozenSet[str]] = None

  @property
  def empty(self) -> int:
    return self.rows - self.with_value

  @property
  def int_range(self) -> int:
    """How many integers min..max holds: a bound on the distinct values."""
    return int(self.maximum - self.minimum) + 1

  @property
  def distinct(self) -> int:
    """Distinct values (BYTES), or an upper bound on them (numbers).

    Only INT ranges and BYTES counts are used for more than telling a
    constant column (1) from the others.
    """
    if self.kind == _BYTES:
      return len(self.values) if self.values is not None else self.unique
    if self.kind == _INT:
      return self.int_range
    return 1 if self.minimum == self.maximum else self.with_value


def suggested_train_steps(num_rows: int) -> int:
  """Training steps for a dataset of `num_rows` rows (all splits).

  About TRAIN_EPOCHS passes over the train split (its share of the default
  SplitConfig, 8 of 10 hash buckets) at the default batch size (128), clamped
  to [MIN_TRAIN_STEPS, MAX_TRAIN_STEPS]: tiny datasets still get enough steps
  for the optimizer to settle, large ones no more than the default data
  needed.
  """
  splits = config_lib.SplitConfig()
  train_share = splits.train / (splits.train + splits.eval + splits.test)
  batch = config_lib.TrainingConfig.per_replica_batch_size
  steps = math.ceil(TRAIN_EPOCHS * num_rows * train_share / batch)
  return max(MIN_TRAIN_STEPS, min(MAX_TRAIN_STEPS, steps))


def draft(statistics: statistics_pb2.DatasetFeatureStatisticsList,
          inferred_schema: schema_pb2.Schema,
          *, name: str, label: str, task: str,
          positive_label: Tuple[str, ...] = (),
          label_classes: Tuple[str, ...] = ()) -> Draft:
  """Drafts a curated schema and a dataset config from StatisticsGen output.

  Args:
    statistics: StatisticsGen's statistics, one dataset per split. Counts are
      summed over the splits; distributions are read from the dataset named
      `train` (or `Split-train`), else from the first one.
    inferred_schema: SchemaGen's schema of the same data; not modified.
    name: The dataset name for the config.
    label: The label column.
    task: One of models.features.TASKS.
    positive_label: Binary tasks: the label values that mean "positive";
      required unless the label holds 0 and 1.
    label_classes: Multiclass tasks: the classes in score order; by default
      the label's values, sorted (numbers by value).

  Returns:
    The schema and config drafts.

  Raises:
    ValueError: The label is absent, empty in some rows, constant, or does
      not fit the task; the message says what to pass or fix.
  """
  if task not in features.TASKS:
    raise ValueError(f'Unknown task {task!r}; use one of '
                     f'{", ".join(features.TASKS)}.')
  columns = _columns(statistics, inferred_schema)
  if label not in columns:
    raise ValueError(
        f'The label column {label!r} is not in the data. Its columns are: '
        f'{", ".join(columns)}. Pass one of them as --label.')
  label_column = columns[label]
  positives, classes, label_note = _label(
      label_column, task, tuple(positive_label), tuple(label_classes))

  groups: Dict[str, List[str]] = {group: [] for group in
                                  dataset_config.COLUMN_KEYS}
  notes: Dict[str, str] = {label: label_note}
  for column in columns.values():
    if column.name == label:
      continue
    group, reason = _treatment(column)
    groups[group].append(column.name)
    notes[column.name] = reason + _empty_note(column)

  spec = features.DatasetSpec(
      name=name, label_key=label, task=task,
      label_positive_values=positives, label_classes=classes,
      excluded_columns=tuple(groups[_IGNORED]),
      slice_features=_slices(columns, groups),
      **{treatment.spec_field: tuple(groups[treatment.key])
         for treatment in treatments.TREATMENTS})
  num_rows = sum(dataset.num_examples for dataset in statistics.datasets)
  config = dataset_config.DatasetConfig(
      spec=spec, notes=notes,
      training={'train_steps': suggested_train_steps(num_rows)})
  schema = _schema(inferred_schema, columns, spec, classes)
  return Draft(schema=schema, config=config)


# Reading the statistics.


def _decision_index(statistics: statistics_pb2.DatasetFeatureStatisticsList
                    ) -> int:
  """The train split's position when the datasets are named, else 0."""
  for i, dataset in enumerate(statistics.datasets):
    if dataset.name.lower().split('-')[-1] == _TRAIN_SPLIT:
      return i
  return 0


def _columns(statistics: statistics_pb2.DatasetFeatureStatisticsList,
             inferred_schema: schema_pb2.Schema) -> Dict[str, _Column]:
  """Every column's merged statistics, in the order of the statistics."""
  if not statistics.datasets:
    raise ValueError('The statistics hold no dataset: StatisticsGen read no '
                     'rows. Check that --data-root holds CSV files with a '
                     'header row and data.')
  schema_types = {f.name: f.type for f in inferred_schema.feature}
  order = [_decision_index(statistics)] + [
      i for i in range(len(statistics.datasets))
      if i != _decision_index(statistics)]
  by_split = [{feature_stats.feature_name(f): f
               for f in statistics.datasets[i].features}
              for i in order]
  names: Dict[str, None] = {}
  for i in order:
    names.update((feature_stats.feature_name(f), None)
                 for f in statistics.datasets[i].features)
  columns = {}
  for name in names:
    seen = [(statistics.datasets[i].num_examples, split.get(name))
            for i, split in zip(order, by_split, strict=True)]
    stats_type = next(f.type for _, f in seen if f is not None)
    kind = _SCHEMA_KINDS.get(schema_types.get(name),
                             _STATS_KINDS.get(stats_type, _BYTES))
    columns[name] = _merge(name, kind, seen)
  return columns


def _merge(name: str, kind: str,
           seen: Sequence[Tuple[int, Optional[
               statistics_pb2.FeatureNameStatistics]]]) -> _Column:
  """One column's statistics over the splits; seen[0] is the decision split.

  A split whose statistics lack the column entirely counts as rows without
  it.
  """
  rows = with_value = max_values = 0
  optional = False
  for num_examples, feature in seen:
    if feature is None:
      rows += num_examples
      optional |= num_examples > 0
      continue
    common = feature_stats.common(feature)
    # Empty cells count as rows without a value (feature_stats).
    counted = feature_stats.presence(feature, num_examples)
    if counted.rows == 0:
      continue
    rows += counted.rows
    with_value += counted.with_value
    max_values = max(max_values, int(common.max_num_values))
    optional |= counted.missing > 0 or common.min_num_values == 0
  if max_values > 1:
    raise ValueError(
        f'Column {name!r} holds up to {max_values} values in one row; a CSV '
        'cell holds one. Drafting expects CsvExampleGen output: write a '
        'dataset config and schema by hand for other data.')
  present = [f for _, f in seen if f is not None]
  merged = _Column(name=name, kind=kind, rows=rows, with_value=with_value,
                   optional=optional, max_values=max_values)
  if kind in (_INT, _FLOAT):
    num = [f.num_stats for f in present
           if feature_stats.common(f).tot_num_values]
    if not num:
      return merged
    first = num[0]
    return dataclasses.replace(
        merged, minimum=min(n.min for n in num),
        maximum=max(n.max for n in num), mean=first.mean,
        median=first.median, std=first.std_dev,
        quantiles=_quantiles(first))
  strings = [f.string_stats for f in present]
  values: Optional[set] = set()
  for stats in strings:
    listed = {b.label for b in stats.rank_histogram.buckets}
    listed.update(v.value for v in stats.top_values)
    if values is not None and len(listed) >= stats.unique:
      values |= listed
    else:
      values = None
  decision = strings[0]
  return dataclasses.replace(
      merged, unique=int(decision.unique),
      decision_cells=int(decision.common_stats.tot_num_values),
      avg_length=decision.avg_length,
      values=frozenset(values) if values is not None else None)


def _quantiles(num: statistics_pb2.NumericStatistics) -> Tuple[float, ...]:
  """The boundaries of the quantiles histogram, min to max."""
  for histogram in num.histograms:
    if histogram.type == statistics_pb2.Histogram.QUANTILES:
      buckets = histogram.buckets
      if buckets:
        return tuple(b.low_value for b in buckets) + (buckets[-1].high_value,)
  return ()


# Treatments.


def _number(value: float) -> str:
  """A short human form: 3, 2.5, 0.0012, 1.2e+06."""
  return f'{value:.3g}' if not float(value).is_integer() or abs(
      value) >= 1e6 else str(int(value))


def _treatment(column: _Column) -> Tuple[str, str]:
  """(group, reason) for a column that is not the label."""
  if column.with_value == 0:
    return _IGNORED, 'all values missing: every cell is empty'
  if column.distinct <= 1:
    only = (f' ({sorted(column.values)[0]!r})' if column.values
            else f' ({_number(column.minimum)})' if column.kind != _BYTES
            else '')
    return _IGNORED, f'constant: one distinct value{only}'
  if column.kind == _BYTES:
    return _text_treatment(column)
  if column.kind == _INT and _is_row_number(column):
    return _IGNORED, (
        f'looks like an ID: integers {_number(column.minimum)} to '
        f'{_number(column.maximum)} spread evenly over {column.with_value} '
        'rows (a row number)')
  if column.kind == _INT and column.int_range <= INTEGER_CODES_MAX_VALUES:
    return treatments.INTEGER_CATEGORICAL.key, (
        f'integer codes, at most {column.int_range} distinct values '
        f'({_number(column.minimum)} to {_number(column.maximum)})')
  if (column.minimum >= 0 and column.std > 0 and
      column.mean - column.median > LOG_MIN_SKEW * column.std):
    return treatments.LOG.key, (
        f'log-scaled: non-negative, right-skewed (mean {_number(column.mean)}'
        f' > median {_number(column.median)})')
  return treatments.NUMERIC.key, (
      f'numeric: {column.kind.lower()} values from {_number(column.minimum)} '
      f'to {_number(column.maximum)} (median {_number(column.median)})')


def _text_treatment(column: _Column) -> Tuple[str, str]:
  """(group, reason) for a BYTES column with two or more distinct values."""
  # Decision-split figures: `unique` and the lengths describe that split.
  cells = max(1, column.decision_cells)
  ratio = column.unique / cells
  counted = f'{column.unique} distinct values in {cells} non-empty rows'
  if (column.avg_length > FREE_TEXT_MIN_AVG_LENGTH and
      ratio > FREE_TEXT_LONG_MIN_UNIQUE_RATIO):
    return _IGNORED, (f'free text: {counted}, {column.avg_length:.0f} '
                      'characters on average')
  if ratio >= ID_MIN_UNIQUE_RATIO and cells >= ID_MIN_ROWS:
    return _IGNORED, f'looks like an ID: {counted}'
  if ratio > FREE_TEXT_MIN_UNIQUE_RATIO and column.unique >= (
      FREE_TEXT_MIN_UNIQUE):
    return _IGNORED, f'free text: {counted}'
  return treatments.CATEGORICAL.key, (
      f'categorical: {column.distinct} distinct values')


def _is_row_number(column: _Column) -> bool:
  """Integers spread evenly over a range about as long as the row count."""
  if column.with_value < INT_ID_MIN_ROWS or len(column.quantiles) < 3:
    return False
  span = column.maximum - column.minimum
  if not (ID_MIN_UNIQUE_RATIO * column.with_value <= span + 1 <=
          INT_ID_MAX_RANGE_RATIO * column.with_value):
    return False
  steps = len(column.quantiles) - 1
  low = column.quantiles[0]
  width = column.quantiles[-1] - low
  if width <= 0:
    return False
  return all(abs(q - (low + width * i / steps)) <=
             INT_ID_MAX_QUANTILE_DEVIATION * width
             for i, q in enumerate(column.quantiles))


def _empty_note(column: _Column) -> str:
  if 0 < column.empty and column.with_value:
    return f'; empty in {column.empty} of {column.rows} rows'
  return ''


def _slices(columns: Dict[str, _Column],
            groups: Dict[str, List[str]]) -> Tuple[str, ...]:
  """Up to MAX_SLICES low-cardinality categoricals (vocabulary-encoded
  columns), fewest values first."""
  vocabulary = [name for treatment in treatments.TREATMENTS
                if treatment.output == treatments.VOCABULARY
                for name in groups[treatment.key]]
  candidates = [
      (columns[name].distinct, position, name)
      for position, name in enumerate(vocabulary)
      if SLICE_MIN_VALUES <= columns[name].distinct <= SLICE_MAX_VALUES]
  return tuple(name for _, _, name in sorted(candidates)[:MAX_SLICES])


# The label.


def _natural_key(value: str) -> Tuple[int, float, str]:
  """Numbers first, by value; then strings."""
  try:
    return (0, float(value), value)
  except ValueError:
    return (1, 0.0, value)


def _label_values(column: _Column, task: str) -> Optional[Tuple[str, ...]]:
  """The label's distinct values as strings, or None when not all are known.

  INT labels are known only by their range, so every integer min..max counts
  as a value; an unused one is a class the model never predicts.
  """
  if column.kind == _BYTES:
    if column.values is None:
      return None
    return tuple(sorted(column.values, key=_natural_key))
  if column.kind == _FLOAT:
    raise ValueError(
        f'The label {column.name!r} holds decimal numbers (from '
        f'{_number(column.minimum)} to {_number(column.maximum)}); a {task} '
        'label must be integer codes or text. Use --task regression, or '
        'write the classes as integers or words in the CSV.')
  if column.int_range > MAX_CLASSES:
    return None
  return tuple(str(v) for v in range(int(column.minimum),
                                     int(column.maximum) + 1))


def _label(column: _Column, task: str, positive_label: Tuple[str, ...],
           label_classes: Tuple[str, ...]
           ) -> Tuple[Tuple[str, ...], Tuple[str, ...], str]:
  """(label_positive_values, label_classes, note) for the DatasetSpec."""
  name = column.name
  if column.empty:
    raise ValueError(
        f'The label {name!r} is empty in {column.empty} of {column.rows} '
        'rows. A row without a label can be neither trained nor evaluated on: '
        'remove those rows from the CSV files.')
  if column.distinct <= 1:
    raise ValueError(
        f'The label {name!r} has a single value, so there is nothing to '
        'predict. Check --label.')
  if task == features.REGRESSION:
    if column.kind == _BYTES:
      raise ValueError(
          f'The label {name!r} holds text (e.g. '
          f'{", ".join(sorted(column.values or ())[:3])}); a regression label '
          'must be a number. Use --task binary or --task multiclass.')
    if positive_label or label_classes:
      raise ValueError('--positive-label and classes apply to classification '
                       f'tasks only, not to the regression label {name!r}.')
    return (), (), (
        f'label: regression target from {_number(column.minimum)} to '
        f'{_number(column.maximum)}')
  values = _label_values(column, task)
  if task == features.MULTICLASS:
    classes = _multiclass(name, values, label_classes)
    return (), classes, f'label: multiclass, {len(classes)} classes'

  positives, classes = _binary(name, values, positive_label)
  shown = ', '.join(positives) if positives else '1'
  return positives, classes, f'label: binary, positive: {shown}'


def _multiclass(name: str, values: Optional[Tuple[str, ...]],
                label_classes: Tuple[str, ...]) -> Tuple[str, ...]:
  if not label_classes:
    if values is None:
      raise ValueError(
          f'The label {name!r} has too many distinct values to list them as '
          'classes. Write a dataset config with `classes:` (--dataset-config '
          'FILE), or use --task regression if it is a number.')
    return values
  if values is not None:
    unknown = [v for v in values if v not in label_classes]
    if unknown:
      raise ValueError(
          f'The label {name!r} holds {unknown}, which the classes '
          f'{list(label_classes)} do not list. Add them to the classes, or '
          'remove those rows.')
  return tuple(label_classes)


def _binary(name: str, values: Optional[Tuple[str, ...]],
            positive_label: Tuple[str, ...]
            ) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
  shown = (f'holds {", ".join(values)}' if values is not None
           else 'has too many distinct values to list')
  if values is not None and set(values) == {'0', '1'} and (
      positive_label in ((), ('1',))):
    return (), ()
  if not positive_label:
    raise ValueError(
        f'The binary label {name!r} {shown}, not 0 and 1. Pass '
        '--positive-label VALUE (repeatable) to say which value means '
        '"positive".')
  if values is None:
    return positive_label, ()
  unknown = [p for p in positive_label if p not in values]
  negatives = [v for v in values if v not in positive_label]
  if unknown or not negatives:
    problem = (f'--positive-label {", ".join(unknown)} is not among them'
               if unknown else 'every one of them is positive')
    raise ValueError(f'The binary label {name!r} {shown}: {problem}. Pass '
                     'values that occur, leaving at least one negative.')
  positive = '|'.join(positive_label)
  negative = '|'.join(negatives) if len(negatives) == 1 else f'not {positive}'
  return positive_label, (negative, positive)


# The schema.


def _schema(inferred: schema_pb2.Schema, columns: Dict[str, _Column],
            spec: features.DatasetSpec,
            classes: Tuple[str, ...]) -> schema_pb2.Schema:
  """SchemaGen's schema with presence, shapes and domains fitted to `columns`.

  Only the label is required (`presence.min_fraction: 1`, a shape): it is
  never served, and a row without it cannot be trained on. Every other
  column is optional, `value_count {min: 0 max: 1}`, and read sparse,
  even when the sample had no gaps in it: a sample without gaps does not
  show that a request, or the next data, always has a value, and the
  model handles a gap (models/preprocessing.py). A reviewer who wants a
  request without a column refused lists it under `required:` in
  dataset.yaml and gives it a shape here.
  """
  schema = schema_pb2.Schema()
  schema.CopyFrom(inferred)
  domains = {d.name: d for d in schema.string_domain}
  known = {f.name for f in schema.feature}
  for name, column in columns.items():
    if name not in known:
      schema.feature.add(name=name, type=_SCHEMA_TYPES[column.kind])
  # SchemaGen infers string domains of text columns only, so of the
  # vocabulary-encoded columns those are the categorical ones.
  categorical = set(spec.columns_with_output(treatments.VOCABULARY))
  excluded = set(spec.excluded_columns)
  for feature in schema.feature:
    column = columns.get(feature.name)
    if column is None:
      continue
    inferred_values = _domain_values(feature, domains)
    for field in ('presence', 'value_count', 'shape', 'domain_info'):
      feature.ClearField(field)
    _set_presence(feature, required=feature.name == spec.label_key)
    if feature.name == spec.label_key:
      feature.not_in_environment.append(SERVING)
      if column.kind == _BYTES:
        extra = classes if spec.task == features.MULTICLASS else ()
        _set_domain(schema, feature, inferred_values or (), column, extra)
      elif spec.is_classification:
        _keep_numeric_domain(feature, inferred)
    elif feature.name in categorical and inferred_values is not None:
      _set_domain(schema, feature, inferred_values, column)
    elif feature.name in excluded:
      feature.not_in_environment.append(SERVING)
  used = {f.domain for f in schema.feature if f.HasField('domain')}
  kept = [d for d in schema.string_domain if d.name in used]
  del schema.string_domain[:]
  schema.string_domain.extend(kept)
  del schema.default_environment[:]
  schema.default_environment.extend(ENVIRONMENTS)
  return schema


def _set_presence(feature: schema_pb2.Feature, required: bool) -> None:
  if not required:
    feature.value_count.min = 0
    feature.value_count.max = 1
    feature.presence.min_count = 0
  else:
    feature.presence.min_fraction = 1.0
    feature.presence.min_count = 1
    feature.shape.dim.add(size=1)


def _domain_values(feature: schema_pb2.Feature,
                   domains: Dict[str, schema_pb2.StringDomain]
                   ) -> Optional[Tuple[str, ...]]:
  """The string domain SchemaGen inferred for `feature`, if any."""
  if feature.HasField('string_domain'):
    return tuple(feature.string_domain.value)
  if feature.HasField('domain') and feature.domain in domains:
    return tuple(domains[feature.domain].value)
  return None


def _set_domain(schema: schema_pb2.Schema, feature: schema_pb2.Feature,
                inferred: Tuple[str, ...], column: _Column,
                extra: Tuple[str, ...] = ()) -> None:
  """Gives `feature` a top-level string domain.

  It holds the inferred values, then every value seen in any split (a
  schema inferred from one split may lack another's), then `extra` (a
  multiclass label's classes). With none of them the feature gets none.
  """
  values = list(inferred)
  for value in sorted(column.values or (), key=_natural_key) + list(extra):
    if value not in values:
      values.append(value)
  if not values:
    return
  domain_name = feature.name
  for domain in schema.string_domain:
    if domain.name == domain_name:
      del domain.value[:]
      domain.value.extend(values)
      break
  else:
    schema.string_domain.add(name=domain_name, value=values)
  feature.domain = domain_name


def _keep_numeric_domain(feature: schema_pb2.Feature,
                         inferred: schema_pb2.Schema) -> None:
  """A classification label keeps the int/bool domain SchemaGen inferred."""
  for original in inferred.feature:
    if original.name == feature.name:
      which = original.WhichOneof('domain_info')
      if which in ('int_domain', 'bool_domain'):
        getattr(feature, which).CopyFrom(getattr(original, which))
      return
