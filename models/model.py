"""The Keras model, built by a pure function of its input description.

A wide-and-deep binary classifier: every categorical input gets a linear
("wide") weight per value, which learns strong single-value rules such as
"paid by credit card" immediately, plus an embedding feeding the deep tower,
which learns interactions such as fare size within a payment type.
"""

from __future__ import annotations

import math
from typing import Dict
from typing import Mapping
from typing import Sequence

import tensorflow as tf

from models import model_config
from models.model_config import ModelConfig


def _zero(tensor: tf.Tensor) -> tf.Tensor:
  return tensor * tf.zeros_like(tensor)


def embedding_dim(cardinality: int) -> int:
  """A common rule of thumb: grows like the 4th root of the vocabulary."""
  return int(min(16, max(2, math.ceil(2.0 * cardinality ** 0.25))))


def build_model(dense_features: Sequence[str],
                categorical_cardinalities: Mapping[str, int],
                config: ModelConfig = model_config.DEFAULT) -> tf.keras.Model:
  """Builds and compiles the classifier.

  Args:
    dense_features: Names of float inputs, each of shape [batch, 1].
    categorical_cardinalities: Integer-id inputs and their number of ids.
    config: Layer sizes and optimizer settings.

  Returns:
    A compiled model mapping the named inputs to P(label = 1), shape [batch, 1].
  """
  if not dense_features and not categorical_cardinalities:
    raise ValueError('build_model needs at least one input feature.')
  inputs: Dict[str, tf.keras.Input] = {}
  regularizer = tf.keras.regularizers.L2(config.l2) if config.l2 else None
  deep_parts = []
  wide_parts = []

  def model_input(name: str, dtype: tf.DType) -> tf.Tensor:
    inputs[name] = tf.keras.Input(shape=(1,), name=name, dtype=dtype)
    if config.drop_all_features:
      return tf.keras.layers.Lambda(_zero, name=f'{name}_dropped')(
          inputs[name])
    return inputs[name]

  for name in sorted(dense_features):
    deep_parts.append(model_input(name, tf.float32))
  for name, cardinality in sorted(categorical_cardinalities.items()):
    if cardinality < 1:
      raise ValueError(f'Feature {name!r} has cardinality {cardinality}.')
    ids = model_input(name, tf.int64)
    embedded = tf.keras.layers.Embedding(
        cardinality, embedding_dim(cardinality), name=f'{name}_embedding',
        embeddings_regularizer=regularizer)(ids)
    deep_parts.append(tf.keras.layers.Flatten()(embedded))
    weight = tf.keras.layers.Embedding(
        cardinality, 1, name=f'{name}_wide',
        embeddings_regularizer=regularizer)(ids)
    wide_parts.append(tf.keras.layers.Flatten()(weight))

  deep = (tf.keras.layers.concatenate(deep_parts)
          if len(deep_parts) > 1 else deep_parts[0])
  for i, units in enumerate(config.hidden_units):
    deep = tf.keras.layers.Dense(units, activation='relu', name=f'deep_{i}',
                                 kernel_regularizer=regularizer)(deep)
    if config.dropout:
      deep = tf.keras.layers.Dropout(config.dropout)(deep)
  logit_parts = [tf.keras.layers.Dense(1, name='deep_logit')(deep)]
  logit_parts.extend(wide_parts)
  logit = (tf.keras.layers.add(logit_parts)
           if len(logit_parts) > 1 else logit_parts[0])
  probability = tf.keras.layers.Activation('sigmoid', name='probability')(logit)

  model = tf.keras.Model(inputs=inputs, outputs=probability)
  model.compile(
      optimizer=tf.keras.optimizers.Adam(learning_rate=config.learning_rate),
      loss=tf.keras.losses.BinaryCrossentropy(),
      metrics=[tf.keras.metrics.AUC(name='auc'),
               tf.keras.metrics.BinaryAccuracy(name='binary_accuracy')])
  return model
