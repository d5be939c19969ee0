"""The pushed model under imperfect requests.

* Examples lacking optional features still score, through the documented
  defaults (models/preprocessing.py): a missing number is imputed with the
  training mean and flagged, a missing category becomes its own
  '__missing__' token, a missing coordinate falls in a dedicated bucket.
* Requests the contract cannot serve (a required feature absent, a feature
  of the wrong type, bytes that are not a tf.Example, a non-string tensor)
  raise an error that names the problem instead of returning a score.
"""

from google.protobuf import text_format
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2

from models import features
from pipeline.definition import dataset_config
import schema as schema_lib
from tests import pipeline_state

pytestmark = pytest.mark.e2e
SPEC = dataset_config.load_named('taxi').spec


def _schema() -> schema_pb2.Schema:
  schema = schema_pb2.Schema()
  with open(schema_lib.schema_path(SPEC.name), encoding='utf-8') as f:
    text_format.Parse(f.read(), schema)
  return schema


def _optional_and_required():
  """Serving inputs split by the schema's shape: a feature with one is
  parsed dense, so required (exactly the config's `required:`)."""
  optional, required = [], []
  for feature in _schema().feature:
    if feature.name in SPEC.serving_excluded_columns:
      continue
    (required if feature.HasField('shape') else optional).append(
        feature.name)
  return sorted(optional), sorted(required)


def _strip(example: tf.train.Example, keys) -> tf.train.Example:
  stripped = tf.train.Example()
  stripped.CopyFrom(example)
  for key in keys:
    if key in stripped.features.feature:
      del stripped.features.feature[key]
  return stripped


@pytest.fixture(scope='module')
def served(e2e_run):
  """(serving_default, raw test examples without label) of the pushed model."""
  versions = pipeline_state.pushed_versions(e2e_run.serving_model_dir)
  assert versions, 'the session run should have pushed a model'
  loaded = tf.saved_model.load(str(versions[-1]))
  examples = [_strip(e, SPEC.serving_excluded_columns) for e in
              pipeline_state.split_examples(e2e_run.pipeline_root, 'test')]
  return loaded.signatures['serving_default'], examples[:64]


def _score(serve, examples) -> np.ndarray:
  batch = tf.constant([e.SerializeToString() for e in examples])
  return serve(examples=batch)['probability'].numpy().ravel()


def test_optional_features_are_really_optional_in_the_schema():
  optional, required = _optional_and_required()
  assert {'company', 'trip_seconds', 'pickup_latitude',
          'trip_start_hour'} <= set(optional)
  assert required == sorted(SPEC.required_features) == ['fare',
                                                         'payment_type']


def test_examples_without_optional_features_still_score(served):
  serve, examples = served
  optional, _ = _optional_and_required()
  full = _score(serve, examples)
  bare = _score(serve, [_strip(e, optional) for e in examples])
  assert bare.shape == full.shape
  assert np.all(np.isfinite(bare)) and np.all((bare >= 0) & (bare <= 1))
  # The defaults are real inputs, not a constant fallback: scores still vary
  # with the features that are present.
  assert np.std(bare) > 0.01


def test_missing_category_is_the_documented_missing_token(served):
  serve, examples = served
  absent = [_strip(e, ['company']) for e in examples]
  token = []
  for example in absent:
    explicit = tf.train.Example()
    explicit.CopyFrom(example)
    explicit.features.feature['company'].bytes_list.value.append(
        features.MISSING_TOKEN.encode())
    token.append(explicit)
  np.testing.assert_allclose(_score(serve, absent), _score(serve, token),
                             rtol=1e-6)


def test_unknown_extra_feature_is_ignored(served):
  serve, examples = served
  extra = []
  for example in examples:
    copy = tf.train.Example()
    copy.CopyFrom(example)
    copy.features.feature['surge_multiplier'].float_list.value.append(2.0)
    extra.append(copy)
  np.testing.assert_allclose(_score(serve, extra), _score(serve, examples),
                             rtol=1e-6)


def test_empty_batch_scores_nothing(served):
  serve, _ = served
  outputs = serve(examples=tf.constant([], dtype=tf.string))['probability']
  assert outputs.shape[0] == 0


def test_missing_required_feature_is_a_clear_error(served):
  serve, examples = served
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'Feature: fare \(data type: float\) is required '
                     'but could not be found'):
    _score(serve, [_strip(e, ['fare']) for e in examples[:2]])


def test_wrongly_typed_feature_is_a_clear_error(served):
  serve, examples = served
  bad = _strip(examples[0], ['trip_miles'])
  bad.features.feature['trip_miles'].bytes_list.value.append(b'3 miles')
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"Key: trip_miles, Index: 0\.  Data types don't "
                     'match. Expected type: float, Actual type: string'):
    _score(serve, [bad])


def test_garbage_bytes_are_a_clear_error(served):
  serve, _ = served
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='Could not parse example input'):
    serve(examples=tf.constant([b'fare=12.5,payment_type=Cash']))


@pytest.mark.parametrize('bad_input, message', [
    ([12.5, 3.0], 'was expected to be a string tensor but is a float tensor'),
    ([[b'a', b'b']], 'Expected serialized to be a scalar or vector, got '
     r'shape: \[1,2\]'),
])
def test_wrong_tensor_for_the_signature_is_a_clear_error(served, bad_input,
                                                        message):
  serve, _ = served
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    serve(examples=tf.constant(bad_input))


def test_wrong_argument_name_is_a_clear_error(served):
  serve, examples = served
  batch = tf.constant([examples[0].SerializeToString()])
  with pytest.raises(TypeError, match='examples'):
    serve(inputs=batch)

