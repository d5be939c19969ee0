"""Export signatures: the serving contract of the pushed model.

`serving_default` takes serialized raw `tf.Example`s without the label and
answers as TF Serving's conventions expect, so a client written against TF
Serving or a Vertex endpoint works unchanged:

* classification (binary and multiclass): `classes`, the label values as
  strings, and `scores`, the probability of each class in the same order,
  both [batch, classes]. A binary model also returns `probability`,
  P(positive class) as [batch, 1]: the value the Evaluator's AUC and
  calibration read.
* regression: `outputs`, the predicted value, [batch, 1].

The Transform graph (vocabularies included) is embedded, so the SavedModel
is hermetic. `transform_features` (raw examples with the label in,
transformed features out) lets TFMA read the transformed label.
"""

from __future__ import annotations

from typing import Callable
from typing import Dict

import tensorflow as tf
import tensorflow_transform as tft

from models import features

CLASSES = 'classes'
SCORES = 'scores'
PROBABILITY = 'probability'
OUTPUTS = 'outputs'


def prediction_key(task: str) -> str:
  """The `serving_default` output the Evaluator scores."""
  return {features.BINARY: PROBABILITY, features.MULTICLASS: SCORES,
          features.REGRESSION: OUTPUTS}[task]


def _answer(prediction: tf.Tensor, spec: features.DatasetSpec
            ) -> Dict[str, tf.Tensor]:
  """Turns the Keras output into the task's named serving outputs."""
  if spec.task == features.REGRESSION:
    return {OUTPUTS: prediction}
  if spec.task == features.BINARY:
    scores = tf.concat([1.0 - prediction, prediction], axis=1)
  else:
    scores = prediction
  batch = tf.shape(scores)[0]
  classes = tf.tile(tf.constant([list(spec.classes)]), [batch, 1])
  answer = {CLASSES: classes, SCORES: scores}
  if spec.task == features.BINARY:
    answer[PROBABILITY] = prediction
  return answer


def make_signatures(model: tf.keras.Model,
                    tf_transform_output: tft.TFTransformOutput,
                    spec: features.DatasetSpec) -> Dict[str, Callable]:
  """Returns the signatures to pass to `model.save`."""
  # Tracking the layer on the model is what saves its assets with the model.
  model.tft_layer = tf_transform_output.transform_features_layer()
  raw_spec = tf_transform_output.raw_feature_spec()
  serving_spec = {k: v for k, v in raw_spec.items()
                  if k not in spec.serving_excluded_columns}
  model_inputs = set(model.input_names)

  @tf.function(input_signature=[
      tf.TensorSpec(shape=[None], dtype=tf.string, name='examples')])
  def serve_tf_examples(serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
    raw = tf.io.parse_example(serialized, serving_spec)
    transformed = model.tft_layer(raw)
    inputs = {k: v for k, v in transformed.items() if k in model_inputs}
    return _answer(model(inputs), spec)

  @tf.function(input_signature=[
      tf.TensorSpec(shape=[None], dtype=tf.string, name='examples')])
  def transform_features(serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
    raw = tf.io.parse_example(serialized, raw_spec)
    return model.tft_layer(raw)

  return {
      'serving_default': serve_tf_examples.get_concrete_function(),
      'transform_features': transform_features.get_concrete_function(),
  }
