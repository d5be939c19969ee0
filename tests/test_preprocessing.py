"""preprocessing_fn on a handful of real taxi rows, asserting output values."""

import csv
import math
import tempfile

from google.protobuf import text_format
import numpy as np
import pytest
from tensorflow_metadata.proto.v0 import schema_pb2
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import schema_utils

from models import features
from models import preprocessing
from pipeline.definition import dataset_config
import schema as schema_lib
from tests.conftest import SAMPLE_DATA

SPEC = dataset_config.load_named('taxi').spec
N_ROWS = 8


def _schema() -> schema_pb2.Schema:
  with open(schema_lib.schema_path(SPEC.name)) as f:
    return text_format.Parse(f.read(), schema_pb2.Schema())


def _rows():
  """First rows of the sample, plus one with optional columns blanked."""
  with open(SAMPLE_DATA / 'data.csv', newline='') as f:
    rows = [row for _, row in zip(range(N_ROWS - 1), csv.DictReader(f), strict=False)]
  blanked = dict(rows[0])
  for key in ('company', 'dropoff_latitude', 'trip_seconds'):
    blanked[key] = ''
  return rows + [blanked]


def _instances(rows, feature_spec):
  instances = []
  for row in rows:
    instance = {}
    for key, column in feature_spec.items():
      text = row[key]
      cast = {'int64': int, 'float32': float, 'string': str}[column.dtype.name]
      if column.dtype.name == 'int64' and text:
        text = str(int(float(text)))
      instance[key] = [cast(text)] if text != '' else []
    instances.append(instance)
  return instances


def _scalar(value) -> float:
  """Transformed values arrive as scalars or shape-[1] arrays."""
  array = np.ravel(value)
  assert array.size == 1, value
  return array[0].item()


def _transform(train_rows, new_rows=()):
  """Analyzes `train_rows`, then transforms them and `new_rows` (rows the
  analysis never saw, as a served request is)."""
  schema = _schema()
  feature_spec = schema_utils.schema_as_feature_spec(schema).feature_spec
  metadata = dataset_metadata.DatasetMetadata(schema)
  with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp):
    (outputs, _), transform_fn = (
        (_instances(train_rows, feature_spec), metadata)
        | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing.preprocessing_fn(
                inputs, {'dataset': SPEC.to_dict()})))
    served = []
    if new_rows:
      served, _ = (((_instances(new_rows, feature_spec), metadata),
                    transform_fn) | tft_beam.TransformDataset())
  return ([{k: _scalar(v) for k, v in o.items()} for o in outputs],
          [{k: _scalar(v) for k, v in o.items()} for o in served])


# Every optional feature of the taxi config left empty: only the required
# ones (fare, payment_type) and the label keep their values.
OPTIONAL = sorted(set(SPEC.feature_columns) - set(SPEC.required_features))


@pytest.fixture(scope='module')
def analyzed():
  """One analysis of the rows: their outputs, and a request's with every
  optional feature empty (row 1 bare)."""
  rows = _rows()
  bare = {k: (v if k not in OPTIONAL else '') for k, v in rows[1].items()}
  outputs, served = _transform(rows, [bare])
  return rows, outputs, served[0]


@pytest.fixture(scope='module')
def transformed(analyzed):
  rows, outputs, _ = analyzed
  return rows, outputs


@pytest.fixture(scope='module')
def served_without_optional(analyzed):
  return analyzed[2]


def test_label_is_copied_as_int(transformed):
  rows, outputs = transformed
  assert [o['big_tipper_xf'] for o in outputs] == [
      int(r['big_tipper']) for r in rows]


def test_log_features_are_log_scaled_and_standardized(transformed):
  rows, outputs = transformed
  logs = np.log1p([float(r['fare']) for r in rows])
  expected = (logs - logs.mean()) / logs.std()
  got = np.array([o['fare_xf'] for o in outputs])
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_missing_numeric_is_imputed_with_mean_and_flagged(transformed):
  rows, outputs = transformed
  blank = outputs[-1]
  assert blank['trip_seconds_missing_xf'] == 1.0
  assert blank['trip_seconds_xf'] == pytest.approx(0.0, abs=1e-6)
  assert all(o['trip_seconds_missing_xf'] == 0.0 for o in outputs[:-1])
  # A required column gets no missing flag at all.
  assert 'fare_missing_xf' not in blank


def test_every_optional_feature_can_be_missing_at_serving(
    served_without_optional):
  """Each treatment's missing path, for a row the analysis never saw."""
  out = served_without_optional
  assert {'trip_miles', 'trip_start_timestamp', 'pickup_latitude',
          'company', 'pickup_community_area', 'trip_start_hour'} <= set(
              OPTIONAL)
  # log and numeric: the training mean (z = 0). trip_seconds had a gap in
  # training, so its flag is learned and set; trip_miles and the timestamp
  # had none, so their flags stay 0 (a weight never trained is not used).
  for key in ('trip_miles', 'trip_seconds', 'trip_start_timestamp'):
    assert out[f'{key}_xf'] == pytest.approx(0.0, abs=1e-6), key
  assert out['trip_seconds_missing_xf'] == 1.0
  assert out['trip_miles_missing_xf'] == 0.0
  assert out['trip_start_timestamp_missing_xf'] == 0.0
  # bucket: the extra "missing" bucket.
  assert out['pickup_latitude_xf'] == SPEC.num_buckets
  # cyclical: the origin, which no real hour reaches.
  assert out['trip_start_hour_sin_xf'] == 0.0
  assert out['trip_start_hour_cos_xf'] == 0.0
  # categorical and integer_categorical: an id of the vocabulary range.
  for key in ('company', 'pickup_community_area', 'trip_start_hour'):
    assert 0 <= out[f'{key}_xf'] < 200 + SPEC.oov_buckets, key


def test_transform_refuses_a_schema_that_disagrees_with_required():
  import tensorflow as tf  # As the label tests below: imported when used.
  dense = tf.constant([[1.0]])
  sparse = tf.sparse.from_dense(tf.constant([[1.0]]))
  spec = features.DatasetSpec(name='t', label_key='y',
                              numeric_features=('a', 'b'),
                              required_features=('a',))
  preprocessing.check_required(spec, {'a': dense, 'b': sparse})
  with pytest.raises(ValueError, match=r"gives \['b'\] a shape.*not list "
                     'them under `required:`'):
    preprocessing.check_required(spec, {'a': dense, 'b': dense})
  with pytest.raises(ValueError, match=r"lists \['a'\] under `required:`, "
                     'but the curated schema gives them no shape'):
    preprocessing.check_required(spec, {'a': sparse, 'b': sparse})


def test_cyclical_hour_encoding(transformed):
  rows, outputs = transformed
  for row, out in zip(rows, outputs, strict=True):
    angle = 2 * math.pi * int(row['trip_start_hour']) / 24
    assert out['trip_start_hour_sin_xf'] == pytest.approx(math.sin(angle),
                                                          abs=1e-5)
    assert out['trip_start_hour_cos_xf'] == pytest.approx(math.cos(angle),
                                                          abs=1e-5)


def test_categorical_ids_follow_values_and_missing_is_its_own_id(transformed):
  rows, outputs = transformed
  ids = {}
  for row, out in zip(rows, outputs, strict=True):
    value = row['company'] or features.MISSING_TOKEN
    ids.setdefault(value, set()).add(out['company_xf'])
  assert all(len(v) == 1 for v in ids.values()), ids
  distinct = [next(iter(v)) for v in ids.values()]
  assert len(set(distinct)) == len(distinct)
  assert features.MISSING_TOKEN in ids


def test_missing_coordinate_gets_the_extra_bucket(transformed):
  _, outputs = transformed
  assert outputs[-1]['dropoff_latitude_xf'] == SPEC.num_buckets
  assert all(0 <= o['dropoff_latitude_xf'] < SPEC.num_buckets
             for o in outputs[:-1] if o is not outputs[-1])


def test_excluded_columns_never_reach_the_model(transformed):
  _, outputs = transformed
  for column in SPEC.excluded_columns:
    assert not any(key.startswith(column) for key in outputs[0])


def test_gaps_do_not_shift_the_numeric_statistics(transformed):
  # The blanked row's trip_seconds is absent; the mean and variance come
  # from the values present only, so the others score as if it were not there.
  rows, outputs = transformed
  present = np.log1p([float(r['trip_seconds']) for r in rows[:-1]])
  expected = (present - present.mean()) / present.std()
  got = np.array([o['trip_seconds_xf'] for o in outputs[:-1]])
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def _label_spec(task, **kwargs):
  return features.DatasetSpec(name='t', label_key='y', task=task,
                              numeric_features=('x',), **kwargs)


def test_multiclass_label_becomes_the_class_index():
  import tensorflow as tf
  spec = _label_spec('multiclass', label_classes=('barolo', 'barbera', 'x'))
  raw = tf.constant([['barbera'], ['barolo'], ['x'], ['unknown']])
  index = preprocessing.transform_label(raw, spec).numpy()
  assert index.tolist() == [1, 0, 2, -1]


def test_integer_multiclass_labels_match_their_text():
  import tensorflow as tf
  spec = _label_spec('multiclass', label_classes=('0', '1', '2'))
  raw = tf.SparseTensor(indices=[[0, 0], [1, 0], [2, 0]],
                        values=tf.constant([2, 0, 1], tf.int64),
                        dense_shape=[3, 1])
  assert preprocessing.transform_label(raw, spec).numpy().tolist() == [2, 0, 1]


def test_binary_string_label_uses_the_positive_value():
  import tensorflow as tf
  spec = _label_spec('binary', label_positive_values=('M',),
                     label_classes=('B', 'M'))
  raw = tf.constant([['M'], ['B'], ['M']])
  assert preprocessing.transform_label(raw, spec).numpy().tolist() == [1, 0, 1]


def test_regression_label_stays_a_number():
  import tensorflow as tf
  raw = tf.constant([[151], [75]], tf.int64)
  values = preprocessing.transform_label(raw, _label_spec('regression'))
  assert values.dtype == tf.float32
  assert values.numpy().tolist() == [151.0, 75.0]


def test_large_values_with_a_small_spread_keep_their_digits():
  """Census tract ids (1.7e10, spread 3e4) z-score to float precision: in
  float32 x - mean kept too few digits, and a served row's score changed
  with the other rows of its request."""
  import tensorflow as tf  # Only this test builds its own schema.
  spec = features.DatasetSpec(name='t', label_key='y', task='regression',
                              numeric_features=('x',))
  metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec({
          'x': tf.io.VarLenFeature(tf.float32),
          'y': tf.io.FixedLenFeature([1], tf.float32)}))
  rng = np.random.default_rng(7)
  # Multiples of 2048 near 1.7e10: each is exact in float32.
  values = 17031080960.0 + 2048.0 * rng.integers(0, 40, size=64)
  rows = [{'x': [v], 'y': [0.0]} for v in values]
  with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp):
    (outputs, _), _ = (
        (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing.preprocessing_fn(
                inputs, {'dataset': spec.to_dict()})))
  got = np.array([_scalar(o['x_xf']) for o in outputs])
  expected = (values - values.mean()) / values.std()
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
