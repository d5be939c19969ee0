"""The serving contract: the pushed model on its own scores raw examples.

Hermetic: the Transform output is moved away while the model is loaded and
called, so any hidden dependency on it fails the test. The scores must agree
with what the Evaluator measured on the same test rows.
"""

import pathlib
import shutil

import numpy as np
import pytest
from sklearn import metrics as sk_metrics
import tensorflow as tf

from pipeline.definition import dataset_config
from tests import pipeline_state

pytestmark = pytest.mark.e2e
SPEC = dataset_config.load_named('taxi').spec


def _without(example: tf.train.Example, keys) -> bytes:
  stripped = tf.train.Example()
  stripped.CopyFrom(example)
  for key in keys:
    if key in stripped.features.feature:
      del stripped.features.feature[key]
  return stripped.SerializeToString()


@pytest.fixture(scope='module')
def scored(e2e_run, tmp_path_factory):
  first = pipeline_state.summaries(e2e_run.metadata_path)[0]
  model_dir = pathlib.Path(first.pushed_model)
  examples = pipeline_state.split_examples(e2e_run.pipeline_root, 'test')
  labels = np.array([e.features.feature[SPEC.label_key].int64_list.value[0]
                     for e in examples])
  requests = tf.constant([_without(e, SPEC.serving_excluded_columns)
                          for e in examples])
  # Copy the model somewhere new and hide the Transform output.
  copy = tmp_path_factory.mktemp('hermetic') / 'model'
  shutil.copytree(model_dir, copy)
  transform_dir = e2e_run.pipeline_root / 'Transform'
  hidden = e2e_run.pipeline_root / 'Transform.hidden-by-test'
  transform_dir.rename(hidden)
  try:
    loaded = tf.saved_model.load(str(copy))
    serve = loaded.signatures['serving_default']
    answer = serve(examples=requests)
    scores = answer['probability'].numpy().ravel()
  finally:
    hidden.rename(transform_dir)
  return first, labels, scores, loaded, answer


def test_serving_takes_raw_examples_without_label(scored):
  _, labels, scores, loaded, _ = scored
  inputs = loaded.signatures['serving_default'].structured_input_signature
  assert list(inputs[1]) == ['examples']
  assert scores.shape == labels.shape
  assert np.all((scores >= 0) & (scores <= 1))


def test_served_scores_match_the_evaluator(scored):
  first, labels, scores, _, _ = scored
  served_auc = sk_metrics.roc_auc_score(labels, scores)
  assert served_auc == pytest.approx(first.metrics['auc'], abs=0.005)
  served_accuracy = np.mean((scores > 0.5) == (labels == 1))
  assert served_accuracy == pytest.approx(first.metrics['binary_accuracy'],
                                          abs=0.005)
  assert len(labels) == int(first.metrics['example_count'])


def test_answers_follow_tf_serving_classification_conventions(scored):
  """`classes` and `scores` per row, in the same order: (negative, positive)."""
  _, labels, probability, _, answer = scored
  classes = answer['classes'].numpy()
  scores = answer['scores'].numpy()
  assert classes.shape == scores.shape == (len(labels), 2)
  assert {tuple(row) for row in classes.tolist()} == {(b'0', b'1')}
  np.testing.assert_allclose(scores[:, 1], probability, rtol=1e-6)
  np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-6)


def test_transform_features_signature_exists_for_tfma(scored):
  _, _, _, loaded, _ = scored
  assert 'transform_features' in loaded.signatures
