"""Drafting a schema and dataset config from the statistics of unseen data.

The statistics are real TFDV statistics of rows encoded the way CsvExampleGen
encodes a CSV: each column typed INT, FLOAT or BYTES from its non-empty
cells, an empty cell a feature present with no values, a column of empty
cells an untyped feature. One TFDV statistics pass per split, in memory
(no Beam), keeps the tests to seconds.

The data has a train and an eval split, and some columns have empty cells
(and one category) only in eval: the case where a schema inferred from one
split rejects another, which the draft must not.
"""

import functools
import pathlib
import random
from typing import Dict
from typing import List
from typing import Tuple

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx_bsl.coders import example_coder

from models import features
from pipeline.definition import dataset_config
from pipeline.local import drafting

Rows = List[Dict[str, str]]
NUM_ROWS = 250
ADJECTIVES = ('quick', 'late', 'friendly', 'rude', 'careful', 'noisy')
SPECIES = ('Gentoo', 'Adelie', 'Chinstrap')


def _is_eval(i: int) -> bool:
  return i % 5 == 4


def _rows(label: str) -> Rows:
  """NUM_ROWS CSV rows (cells as text, '' empty) with one kind of label."""
  rng = random.Random(7)
  rows = []
  for i in range(NUM_ROWS):
    in_eval = _is_eval(i)
    color = rng.choice(('red', 'green', 'blue'))
    if in_eval and i % 10 == 9:
      color = 'purple'  # A category only the eval split has.
    if in_eval and i % 10 == 4:
      color = ''
    labels = {
        'binary_text': rng.choice(('yes', 'no')),
        'binary01': rng.choice(('0', '1')),
        'multiclass': rng.choice(SPECIES),
        'int_classes': str(rng.randint(1, 3)),
        'regression': f'{rng.uniform(10, 90):.2f}',
        'gappy': rng.choice(('yes', 'no', '')),
    }
    rows.append({
        'row_id': str(i + 1),
        'customer': f'C{rng.randrange(10**6):06d}-{i}',
        'comment': (f'Order {i}: the driver was {rng.choice(ADJECTIVES)} and '
                    f'the parcel {rng.choice(ADJECTIVES)}, thank you'),
        'country': 'NZ',
        'blank': '',
        'segment': rng.choice(('retail', 'business')),
        'color': color,
        'rating': str(rng.randint(1, 5)),
        'amount': f'{rng.expovariate(1 / 50):.2f}',
        'temperature': ('' if in_eval and i % 15 == 4
                        else f'{rng.gauss(20, 5):.1f}'),
        'visits': '' if i % 7 == 0 else str(int(rng.gauss(300, 50))),
        'label': labels[label],
    })
  return rows


def _cell_type(cells: List[str]) -> str:
  """CsvExampleGen's column type: INT, FLOAT or BYTES ('' when all empty)."""
  values = [c for c in cells if c]
  if not values:
    return ''
  for kind, parse in (('int', int), ('float', float)):
    try:
      for value in values:
        parse(value)
    except ValueError:
      continue
    return kind
  return 'bytes'


def _example(row: Dict[str, str], types: Dict[str, str]) -> bytes:
  """A row as CsvExampleGen writes it: an empty cell has no values."""
  feature = {}
  for column, cell in row.items():
    kind = types[column]
    if kind == 'int':
      feature[column] = tf.train.Feature(int64_list=tf.train.Int64List(
          value=[int(cell)] if cell else []))
    elif kind == 'float':
      feature[column] = tf.train.Feature(float_list=tf.train.FloatList(
          value=[float(cell)] if cell else []))
    elif kind == 'bytes':
      feature[column] = tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[cell.encode()] if cell else []))
    else:
      feature[column] = tf.train.Feature()
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


def _statistics(rows: Rows) -> statistics_pb2.DatasetFeatureStatisticsList:
  """StatisticsGen's output: one dataset per split, train first."""
  types = {c: _cell_type([r[c] for r in rows]) for c in rows[0]}
  splits = {'train': [r for i, r in enumerate(rows) if not _is_eval(i)],
            'eval': [r for i, r in enumerate(rows) if _is_eval(i)]}
  decoder = example_coder.ExamplesToRecordBatchDecoder()
  result = statistics_pb2.DatasetFeatureStatisticsList()
  for name, split_rows in splits.items():
    batch = decoder.DecodeBatch([_example(r, types) for r in split_rows])
    stats = stats_impl.generate_statistics_in_memory(
        batch, tfdv.StatsOptions())
    dataset = result.datasets.add()
    dataset.CopyFrom(stats.datasets[0])
    dataset.name = name
  return result


def _split(stats: statistics_pb2.DatasetFeatureStatisticsList,
           name: str) -> statistics_pb2.DatasetFeatureStatisticsList:
  result = statistics_pb2.DatasetFeatureStatisticsList()
  result.datasets.add().CopyFrom(
      next(d for d in stats.datasets if d.name == name))
  return result


def _schema_gen(stats: statistics_pb2.DatasetFeatureStatisticsList
                ) -> schema_pb2.Schema:
  """What SchemaGen writes: inferred from the first split, then updated."""
  schema = tfdv.infer_schema(_split(stats, 'train'), infer_feature_shape=True)
  return tfdv.update_schema(schema, _split(stats, 'eval'),
                            infer_feature_shape=True)


def _anomaly_types(anomalies: anomalies_pb2.Anomalies
                   ) -> Dict[str, List[str]]:
  names = anomalies_pb2.AnomalyInfo.Type.Name
  found = {column: sorted(names(r.type) for r in info.reason)
           for column, info in anomalies.anomaly_info.items()}
  if anomalies.HasField('dataset_anomaly_info'):
    found['<dataset>'] = [names(r.type)
                          for r in anomalies.dataset_anomaly_info.reason]
  return found


@functools.lru_cache(maxsize=None)
def _profiled(label: str) -> Tuple[statistics_pb2.DatasetFeatureStatisticsList,
                                   schema_pb2.Schema]:
  """Statistics and SchemaGen's schema of `_rows(label)`; never mutated."""
  stats = _statistics(_rows(label))
  return stats, _schema_gen(stats)


def _draft(label: str, task: str, **kwargs) -> drafting.Draft:
  stats, schema = _profiled(label)
  return drafting.draft(stats, schema, name='shop', label='label', task=task,
                        **kwargs)


@pytest.fixture(scope='module')
def binary() -> drafting.Draft:
  return _draft('binary_text', features.BINARY, positive_label=('yes',))


def _feature(schema: schema_pb2.Schema, name: str) -> schema_pb2.Feature:
  return next(f for f in schema.feature if f.name == name)


def _string_domain(schema: schema_pb2.Schema, name: str) -> List[str]:
  feature = _feature(schema, name)
  domain = next(d for d in schema.string_domain if d.name == feature.domain)
  return list(domain.value)


# Column treatments.


@pytest.mark.parametrize('column,group,reason', [
    ('row_id', 'excluded_columns', 'looks like an ID'),
    ('customer', 'excluded_columns', 'looks like an ID'),
    ('comment', 'excluded_columns', 'free text'),
    ('country', 'excluded_columns', 'constant: one distinct value'),
    ('blank', 'excluded_columns', 'all values missing'),
    ('segment', 'categorical_features', 'categorical: 2 distinct values'),
    ('color', 'categorical_features', 'categorical: 4 distinct values'),
    ('rating', 'integer_categorical_features', 'integer codes'),
    ('amount', 'log_features', 'log-scaled: non-negative, right-skewed'),
    ('temperature', 'numeric_features', 'numeric'),
    ('visits', 'numeric_features', 'numeric'),
])
def test_each_kind_of_column_gets_its_treatment_and_reason(
    binary: drafting.Draft, column: str, group: str, reason: str) -> None:
  spec = binary.config.spec
  assert column in getattr(spec, group)
  assert binary.config.notes[column].startswith(reason), (
      binary.config.notes[column])


def test_groups_hold_exactly_the_expected_columns(
    binary: drafting.Draft) -> None:
  spec = binary.config.spec
  assert set(spec.excluded_columns) == {'row_id', 'customer', 'comment',
                                        'country', 'blank'}
  assert spec.categorical_features == ('color', 'segment')
  assert spec.integer_categorical_features == ('rating',)
  assert spec.log_features == ('amount',)
  assert set(spec.numeric_features) == {'temperature', 'visits'}
  assert spec.bucket_features == () and spec.cyclical_features == ()


def test_an_uneven_integer_range_is_not_an_id(binary: drafting.Draft) -> None:
  # visits: about 300 +- 50 over ~210 rows, so its range could hold one
  # value per row, but the values bunch in the middle: a number, not an ID.
  assert 'visits' in binary.config.spec.numeric_features


def test_reasons_give_the_evidence(binary: drafting.Draft) -> None:
  notes = binary.config.notes
  assert 'integers 1 to 250 spread evenly over 250 rows' in notes['row_id']
  assert "('NZ')" in notes['country']
  assert 'at most 5 distinct values (1 to 5)' in notes['rating']
  assert 'mean' in notes['amount'] and 'median' in notes['amount']
  # Empty cells are counted where a column has some.
  assert notes['color'].endswith('empty in 25 of 250 rows')
  assert 'empty' not in notes['segment']


def test_every_column_has_a_note_and_the_label_is_not_a_feature(
    binary: drafting.Draft) -> None:
  stats, _ = _profiled('binary_text')
  columns = {f.path.step[0] for f in stats.datasets[0].features}
  assert set(binary.config.notes) == columns
  spec = binary.config.spec
  assert 'label' not in spec.feature_columns
  assert 'label' not in spec.excluded_columns
  assert binary.config.notes['label'] == 'label: binary, positive: yes'


def test_slices_are_the_lowest_cardinality_categoricals(
    binary: drafting.Draft) -> None:
  # segment (2 values), color (4), rating (at most 5): the first two.
  assert binary.config.spec.slice_features == ('segment', 'color')


def test_training_steps_follow_the_data_size(binary: drafting.Draft) -> None:
  assert binary.config.training == {
      'train_steps': drafting.suggested_train_steps(NUM_ROWS)}
  assert binary.config.gate == {}
  assert binary.config.path == ''


@pytest.mark.parametrize('rows,steps', [
    (0, drafting.MIN_TRAIN_STEPS),
    (250, drafting.MIN_TRAIN_STEPS),
    (1000, 250),  # 40 epochs x 800 train rows / batch 128.
    (4000, 1000),
    (10**6, drafting.MAX_TRAIN_STEPS),
])
def test_suggested_train_steps(rows: int, steps: int) -> None:
  assert drafting.suggested_train_steps(rows) == steps


# The schema draft: a contract that fits the data it came from.


def test_schema_inferred_from_one_split_rejects_the_other() -> None:
  """Why drafting rewrites presence: without it the run stops on clean data.

  The eval split has empty cells in `color` and `temperature` (and a color
  train lacks). TFDV's schema inferred from train demands a value in every
  row: with shapes as a shape, without as `value_count {min: 1}`.
  """
  stats, _ = _profiled('binary_text')
  train, eval_ = _split(stats, 'train'), _split(stats, 'eval')
  with_shape = tfdv.infer_schema(train, infer_feature_shape=True)
  found = _anomaly_types(tfdv.validate_statistics(eval_, with_shape))
  assert 'INVALID_FEATURE_SHAPE' in found['temperature']
  assert 'INVALID_FEATURE_SHAPE' in found['color']
  assert 'ENUM_TYPE_UNEXPECTED_STRING_VALUES' in found['color']
  without_shape = tfdv.infer_schema(train, infer_feature_shape=False)
  found = _anomaly_types(tfdv.validate_statistics(eval_, without_shape))
  assert found['temperature'] == ['FEATURE_TYPE_LOW_NUMBER_VALUES']
  assert 'FEATURE_TYPE_LOW_NUMBER_VALUES' in found['color']


@pytest.mark.parametrize('inferred', ['schema_gen', 'train_only'])
@pytest.mark.parametrize('label,task,kwargs', [
    ('binary_text', features.BINARY, {'positive_label': ('yes',)}),
    ('binary01', features.BINARY, {}),
    ('multiclass', features.MULTICLASS, {}),
    ('int_classes', features.MULTICLASS, {}),
    ('regression', features.REGRESSION, {}),
])
def test_draft_schema_validates_every_split_without_anomalies(
    inferred: str, label: str, task: str, kwargs: Dict) -> None:
  stats, schema_gen = _profiled(label)
  schema = (schema_gen if inferred == 'schema_gen' else
            tfdv.infer_schema(_split(stats, 'train'), infer_feature_shape=True))
  draft = drafting.draft(stats, schema, name='shop', label='label', task=task,
                         **kwargs)
  for split in ('train', 'eval'):
    for environment in (None, 'TRAINING'):
      anomalies = tfdv.validate_statistics(
          _split(stats, split), draft.schema, environment=environment)
      assert _anomaly_types(anomalies) == {}, (split, environment)
  # The input schema is left as it was.
  assert not schema.default_environment


def test_draft_schema_is_still_a_contract(binary: drafting.Draft) -> None:
  schema = binary.schema
  assert list(schema.default_environment) == ['TRAINING', 'SERVING']
  # No feature is required, not even one with a value in every row of the
  # sample (segment): at most one value, read sparse, served when missing.
  segment = _feature(schema, 'segment')
  assert segment.type == schema_pb2.BYTES
  assert not binary.config.spec.required_features
  for name in ('segment', 'color', 'temperature', 'visits'):
    optional = _feature(schema, name)
    assert (optional.value_count.min, optional.value_count.max) == (0, 1)
    assert optional.presence.min_count == 0
    assert not optional.presence.min_fraction
    assert not optional.HasField('shape')
  assert _feature(schema, 'temperature').type == schema_pb2.FLOAT
  assert _feature(schema, 'rating').type == schema_pb2.INT
  # Categoricals keep their string domain, with every split's values.
  assert sorted(_string_domain(schema, 'color')) == [
      'blue', 'green', 'purple', 'red']
  assert sorted(_string_domain(schema, 'segment')) == ['business', 'retail']
  # Numbers and ignored columns have no domain; ignored ones and the label
  # are not part of a serving request.
  for name in ('rating', 'amount', 'row_id', 'customer', 'comment',
               'country', 'blank'):
    assert _feature(schema, name).WhichOneof('domain_info') is None, name
  for name in ('row_id', 'customer', 'comment', 'country', 'blank', 'label'):
    assert list(_feature(schema, name).not_in_environment) == ['SERVING']
  assert not _feature(schema, 'color').not_in_environment
  assert sorted(_string_domain(schema, 'label')) == ['no', 'yes']
  # Only the label, which is never served, must be in every row.
  label = _feature(schema, 'label')
  assert label.presence.min_fraction == 1.0
  assert [d.size for d in label.shape.dim] == [1]
  assert [f.name for f in schema.feature if f.HasField('shape')] == ['label']
  referenced = {f.domain for f in schema.feature if f.HasField('domain')}
  assert {d.name for d in schema.string_domain} == referenced


def test_a_serving_request_without_label_and_ignored_columns_is_valid(
    binary: drafting.Draft) -> None:
  """The serving environment expects exactly the model's inputs."""
  spec = binary.config.spec
  serving = [{c: v for c, v in row.items()
              if c not in spec.serving_excluded_columns}
             for row in _rows('binary_text')[:20]]
  types = {c: _cell_type([r[c] for r in serving]) for c in serving[0]}
  batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(
      [_example(r, types) for r in serving])
  stats = stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions())
  anomalies = tfdv.validate_statistics(stats, binary.schema,
                                       environment='SERVING')
  assert _anomaly_types(anomalies) == {}


# The label.


def test_multiclass_classes_are_the_label_values_sorted() -> None:
  draft = _draft('multiclass', features.MULTICLASS)
  assert draft.config.spec.label_classes == ('Adelie', 'Chinstrap', 'Gentoo')
  assert draft.config.spec.label_positive_values == ()
  assert draft.config.notes['label'] == 'label: multiclass, 3 classes'
  assert sorted(_string_domain(draft.schema, 'label')) == [
      'Adelie', 'Chinstrap', 'Gentoo']


def test_multiclass_integer_label_classes_in_numeric_order() -> None:
  draft = _draft('int_classes', features.MULTICLASS)
  assert draft.config.spec.label_classes == ('1', '2', '3')


def test_multiclass_given_classes_win() -> None:
  given = ('Gentoo', 'Adelie', 'Chinstrap', 'Emperor')
  draft = _draft('multiclass', features.MULTICLASS, label_classes=given)
  assert draft.config.spec.label_classes == given
  # The domain lists every class, the one the data lacks too.
  assert sorted(_string_domain(draft.schema, 'label')) == sorted(given)


def test_multiclass_given_classes_must_cover_the_data() -> None:
  with pytest.raises(ValueError, match=r"\['Chinstrap'\].*do not list"):
    _draft('multiclass', features.MULTICLASS,
           label_classes=('Adelie', 'Gentoo'))


def test_binary_text_label_needs_a_positive_label() -> None:
  with pytest.raises(ValueError) as raised:
    _draft('binary_text', features.BINARY)
  message = str(raised.value)
  assert "'label'" in message and 'no, yes' in message
  assert '--positive-label VALUE' in message


def test_binary_positive_label_sets_the_classes(
    binary: drafting.Draft) -> None:
  assert binary.config.spec.label_positive_values == ('yes',)
  assert binary.config.spec.label_classes == ('no', 'yes')


def test_binary_positive_label_must_occur() -> None:
  with pytest.raises(ValueError, match='--positive-label maybe is not among'):
    _draft('binary_text', features.BINARY, positive_label=('maybe',))


def test_binary_zero_one_label_needs_nothing() -> None:
  draft = _draft('binary01', features.BINARY)
  assert draft.config.spec.label_positive_values == ()
  assert draft.config.spec.label_classes == ()
  assert draft.config.spec.classes == ('0', '1')
  # SchemaGen's 0/1 domain stays on the label.
  assert _feature(draft.schema, 'label').HasField('bool_domain')


def test_regression_label() -> None:
  draft = _draft('regression', features.REGRESSION)
  label = _feature(draft.schema, 'label')
  assert label.type == schema_pb2.FLOAT
  assert label.WhichOneof('domain_info') is None
  assert draft.config.notes['label'].startswith('label: regression target')
  with pytest.raises(ValueError, match='a regression label must be a number'):
    _draft('binary_text', features.REGRESSION)


def test_decimal_label_is_refused_for_classification() -> None:
  with pytest.raises(ValueError, match='holds decimal numbers.*--task '
                     'regression'):
    _draft('regression', features.MULTICLASS)


def test_label_with_empty_cells_is_refused() -> None:
  with pytest.raises(ValueError, match=r"'label' is empty in \d+ of 250 rows"):
    _draft('gappy', features.BINARY, positive_label=('yes',))


def test_unknown_label_names_the_columns() -> None:
  stats, schema = _profiled('binary01')
  with pytest.raises(ValueError) as raised:
    drafting.draft(stats, schema, name='shop', label='target',
                   task=features.BINARY)
  message = str(raised.value)
  assert "'target'" in message
  assert 'amount' in message and 'visits' in message


# The config file.


@pytest.mark.parametrize('label,task,kwargs', [
    ('binary_text', features.BINARY, {'positive_label': ('yes',)}),
    ('multiclass', features.MULTICLASS, {}),
    ('regression', features.REGRESSION, {}),
])
def test_config_round_trips_through_yaml_structure(
    label: str, task: str, kwargs: Dict) -> None:
  config = _draft(label, task, **kwargs).config
  parsed = dataset_config.parse(dataset_config.to_dict(config))
  assert parsed.spec == config.spec
  assert parsed == config


def test_config_survives_the_yaml_file(tmp_path: pathlib.Path,
                                       binary: drafting.Draft) -> None:
  path = dataset_config.dump(binary.config, str(tmp_path / 'dataset.yaml'),
                             header='Drafted from the data; review it.')
  loaded = dataset_config.load(path)
  assert loaded.spec == binary.config.spec
  assert loaded.notes == binary.config.notes
  assert loaded.training == binary.config.training
