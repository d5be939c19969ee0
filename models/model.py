"""The Keras model, built by a pure function of its input description.

A wide-and-deep model: every categorical input gets a linear ("wide") weight
per value and output, which learns strong single-value rules such as "paid
by credit card" immediately, plus an embedding feeding the deep tower, which
learns interactions such as fare size within a payment type.

The head follows the task: a sigmoid for binary labels, a softmax over the
classes for multiclass, and a linear output for regression. A regression
model learns the standardized label and un-standardizes its output, so the
same optimizer settings suit labels of any scale.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict
from typing import Mapping
from typing import Sequence

import tensorflow as tf

from models import features
from models import model_config as model_config_lib


def _zero(tensor: tf.Tensor) -> tf.Tensor:
  return tensor * tf.zeros_like(tensor)


def embedding_dim(cardinality: int) -> int:
  """A common rule of thumb: grows like the 4th root of the vocabulary."""
  return int(min(16, max(2, math.ceil(2.0 * cardinality ** 0.25))))


@dataclasses.dataclass(frozen=True)
class Head:
  """What the model predicts.

  Attributes:
    task: One of `features.TASKS`.
    num_classes: Classes of a multiclass task (2 for binary, 1 for
      regression: the width of the output).
    label_mean: Regression: mean of the training labels.
    label_std: Regression: their standard deviation (> 0).
  """
  task: str = features.BINARY
  num_classes: int = 2
  label_mean: float = 0.0
  label_std: float = 1.0

  def __post_init__(self) -> None:
    if self.task == features.MULTICLASS and self.num_classes < 2:
      raise ValueError(f'A multiclass head needs >= 2 classes, got '
                       f'{self.num_classes}.')
    if self.task == features.REGRESSION and not self.label_std > 0:
      raise ValueError(f'label_std must be > 0, got {self.label_std}.')

  @property
  def outputs(self) -> int:
    return self.num_classes if self.task == features.MULTICLASS else 1


BINARY_HEAD = Head()


def build_model(dense_features: Sequence[str],
                categorical_cardinalities: Mapping[str, int],
                config: model_config_lib.ModelConfig = model_config_lib.DEFAULT,
                head: Head = BINARY_HEAD) -> tf.keras.Model:
  """Builds and compiles the model.

  Args:
    dense_features: Names of float inputs, each of shape [batch, 1].
    categorical_cardinalities: Integer-id inputs and their number of ids.
    config: Layer sizes and optimizer settings.
    head: The task and what its output needs.

  Returns:
    A compiled model mapping the named inputs to P(label = 1) [batch, 1]
    (binary), class probabilities [batch, classes] (multiclass) or the
    predicted value [batch, 1] (regression).
  """
  if not dense_features and not categorical_cardinalities:
    raise ValueError('build_model needs at least one input feature.')
  width = head.outputs
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
        cardinality, width, name=f'{name}_wide',
        embeddings_regularizer=regularizer)(ids)
    wide_parts.append(tf.keras.layers.Flatten()(weight))

  deep = (tf.keras.layers.concatenate(deep_parts)
          if len(deep_parts) > 1 else deep_parts[0])
  for i, units in enumerate(config.hidden_units):
    deep = tf.keras.layers.Dense(units, activation='relu', name=f'deep_{i}',
                                 kernel_regularizer=regularizer)(deep)
    if config.dropout:
      deep = tf.keras.layers.Dropout(config.dropout)(deep)
  logit_parts = [tf.keras.layers.Dense(width, name='deep_logit')(deep)]
  logit_parts.extend(wide_parts)
  logit = (tf.keras.layers.add(logit_parts)
           if len(logit_parts) > 1 else logit_parts[0])
  output, loss, metrics = _head(logit, head)
  model = tf.keras.Model(inputs=inputs, outputs=output)
  model.compile(
      optimizer=tf.keras.optimizers.Adam(learning_rate=config.learning_rate),
      loss=loss, metrics=metrics)
  return model


def _head(logit: tf.Tensor, head: Head):
  """The output layer, loss and training metrics of the task."""
  if head.task == features.MULTICLASS:
    output = tf.keras.layers.Activation('softmax', name='scores')(logit)
    return output, tf.keras.losses.SparseCategoricalCrossentropy(), [
        tf.keras.metrics.SparseCategoricalAccuracy(name='accuracy')]
  if head.task == features.REGRESSION:
    # The network predicts the standardized label; undo that in the graph
    # so the saved model answers in the label's own units.
    output = tf.keras.layers.Rescaling(
        head.label_std, offset=head.label_mean, name='value')(logit)
    return output, tf.keras.losses.MeanSquaredError(), [
        tf.keras.metrics.RootMeanSquaredError(name='rmse'),
        tf.keras.metrics.MeanAbsoluteError(name='mae')]
  output = tf.keras.layers.Activation('sigmoid', name='probability')(logit)
  return output, tf.keras.losses.BinaryCrossentropy(), [
      tf.keras.metrics.AUC(name='auc'),
      tf.keras.metrics.BinaryAccuracy(name='binary_accuracy')]
