"""Export signatures: the serving contract of the pushed model.

* `serving_default`: serialized raw `tf.Example`s without the label in,
  `{'outputs': P(label = 1)}` out. The Transform graph (vocabularies
  included) is embedded, so the SavedModel is hermetic.
* `transform_features`: serialized raw `tf.Example`s (label included) in,
  transformed features out; TFMA uses it to read the label.
"""

from __future__ import annotations

from typing import Callable
from typing import Dict

import tensorflow as tf
import tensorflow_transform as tft

from models import features


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
    return {'outputs': model(inputs)}

  @tf.function(input_signature=[
      tf.TensorSpec(shape=[None], dtype=tf.string, name='examples')])
  def transform_features(serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
    raw = tf.io.parse_example(serialized, raw_spec)
    return model.tft_layer(raw)

  return {
      'serving_default': serve_tf_examples.get_concrete_function(),
      'transform_features': transform_features.get_concrete_function(),
  }
