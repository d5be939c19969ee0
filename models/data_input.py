"""Reads Transform's materialized examples as batched `tf.data` datasets."""

from __future__ import annotations

from typing import List
from typing import Optional

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer import fn_args_utils
from tfx_bsl.public import tfxio


def input_fn(file_pattern: List[str],
             data_accessor: fn_args_utils.DataAccessor,
             tf_transform_output: tft.TFTransformOutput,
             label_key: str,
             batch_size: int,
             shuffle: bool = True,
             num_epochs: Optional[int] = None) -> tf.data.Dataset:
  """Returns (features, label) batches of transformed examples.

  Args:
    file_pattern: Files of transformed tf.Examples.
    data_accessor: TFX accessor that turns files into datasets.
    tf_transform_output: Wraps the Transform graph and transformed schema.
    label_key: Transformed label feature.
    batch_size: Global batch size (per-replica batch x replicas).
    shuffle: Shuffle examples; off for evaluation datasets.
    num_epochs: Passes over the files; None repeats forever.
  """
  return data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(
          batch_size=batch_size, label_key=label_key, shuffle=shuffle,
          num_epochs=num_epochs),
      tf_transform_output.transformed_metadata.schema).prefetch(
          tf.data.AUTOTUNE)
