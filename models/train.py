"""TFX Trainer entry point: `run_fn` trains under MirroredStrategy and exports.

Referenced by module path (`models.train.run_fn`), so Trainer imports the
installed package rather than a copied module file.
"""

from __future__ import annotations

import json
import os
from typing import Dict
from typing import List
from typing import Tuple

from absl import logging
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from models import data_input
from models import features
from models import keras_choice
from models import model as model_lib
from models import signatures


def model_inputs(tf_transform_output: tft.TFTransformOutput,
                 spec: features.DatasetSpec
                 ) -> Tuple[List[str], Dict[str, int]]:
  """Splits transformed features into dense floats and categorical ids.

  Returns:
    The dense feature names and a map from categorical feature name to its
    number of distinct ids (vocabulary + OOV buckets, or buckets + missing).
  """
  feature_spec = tf_transform_output.transformed_feature_spec()
  dense, categorical = [], {}
  for name, column in feature_spec.items():
    if name == spec.transformed_label_key:
      continue
    if column.dtype == tf.float32:
      dense.append(name)
    else:
      categorical[name] = None
  for key in spec.categorical_features + spec.integer_categorical_features:
    categorical[features.transformed_name(key)] = (
        tf_transform_output.vocabulary_size_by_name(key) + spec.oov_buckets)
  for key in spec.bucket_features:
    # num_buckets quantile buckets plus one for "missing".
    categorical[features.transformed_name(key)] = spec.num_buckets + 1
  unknown = sorted(k for k, v in categorical.items() if v is None)
  if unknown:
    raise ValueError(f'No cardinality known for integer features {unknown}.')
  return sorted(dense), categorical


def distribution_strategy() -> tf.distribute.Strategy:
  """MirroredStrategy over every visible GPU, or the CPU(s) when none."""
  gpus = tf.config.list_logical_devices('GPU')
  devices = [d.name for d in gpus] or [
      d.name for d in tf.config.list_logical_devices('CPU')]
  strategy = tf.distribute.MirroredStrategy(devices=devices)
  logging.info('MirroredStrategy: %d replica(s) in sync on %s',
               strategy.num_replicas_in_sync, devices)
  return strategy


TRAINING_INFO_FILE = 'training_info.json'


def _write_training_info(model_run_dir: str,
                         strategy: tf.distribute.Strategy,
                         global_batch: int) -> None:
  """Records the devices used next to the TensorBoard logs."""
  tf.io.gfile.makedirs(model_run_dir)
  info = {
      'replicas_in_sync': strategy.num_replicas_in_sync,
      'devices': list(strategy.extended.worker_devices),
      'global_batch_size': global_batch,
  }
  with tf.io.gfile.GFile(os.path.join(model_run_dir, TRAINING_INFO_FILE),
                         'w') as f:
    json.dump(info, f, indent=2)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains the model and saves it with its serving signatures."""
  keras_choice.require_legacy_keras()
  spec = features.DatasetSpec.from_dict(fn_args.custom_config['dataset'])
  training = fn_args.custom_config['training']
  model_config = model_lib.ModelConfig.from_dict(training['model'])
  per_replica_batch = int(training['per_replica_batch_size'])
  # Same data, code and config give the same model (on CPU).
  tf.keras.utils.set_random_seed(int(training['seed']))
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)

  strategy = distribution_strategy()
  global_batch = per_replica_batch * strategy.num_replicas_in_sync
  logging.info('Global batch size %d = %d per replica x %d replicas',
               global_batch, per_replica_batch,
               strategy.num_replicas_in_sync)
  _write_training_info(fn_args.model_run_dir, strategy, global_batch)

  train_ds = data_input.input_fn(
      fn_args.train_files, fn_args.data_accessor, tf_transform_output,
      spec.transformed_label_key, global_batch)
  eval_ds = data_input.input_fn(
      fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
      spec.transformed_label_key, global_batch, shuffle=False)

  dense, categorical = model_inputs(tf_transform_output, spec)
  with strategy.scope():
    model = model_lib.build_model(dense, categorical, model_config)

  steps_per_epoch = max(1, min(fn_args.train_steps, 100))
  epochs = max(1, fn_args.train_steps // steps_per_epoch)
  model.fit(
      train_ds,
      steps_per_epoch=steps_per_epoch,
      epochs=epochs,
      validation_data=eval_ds,
      validation_steps=fn_args.eval_steps,
      callbacks=[tf.keras.callbacks.TensorBoard(
          log_dir=fn_args.model_run_dir, update_freq='epoch')],
      verbose=2)

  model.save(fn_args.serving_model_dir, save_format='tf',
             signatures=signatures.make_signatures(
                 model, tf_transform_output, spec))
