"""TFX Trainer entry point: `run_fn` trains the model family and exports it.

The wide-and-deep DNN trains under MirroredStrategy; with `--model gbt` or
`auto` gradient-boosted trees grow beside it (`models/gbt.py`: one forest
per template, the better on the eval split kept), and `auto` keeps the
DNN, the trees or their mean, whichever scores best on the eval split
(`models/model_choice.py`). Then the decision threshold is chosen on the
kept model's eval predictions. When the kept model holds trees, they grow
again on the train and eval splits together (`gbt.refit`: more rows, now
that the eval split has made its choices; the test split stays unseen),
and the model is exported with the refit trees.

Referenced by module path (`models.train.run_fn`), so Trainer imports the
installed package rather than a copied module file.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

from absl import logging
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer import fn_args_utils

from models import checkpoints
from models import data_input
from models import eval_split
from models import features
from models import gbt
from models import hyperparameters as hp_lib
from models import keras_choice
from models import model as model_lib
from models import model_choice
from models import model_config as model_config_lib
from models import serving_contract
from models import signatures
from models import treatments
from models import warm_start


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
  for key in spec.columns_with_output(treatments.VOCABULARY):
    categorical[features.transformed_name(key)] = (
        tf_transform_output.vocabulary_size_by_name(key) + spec.oov_buckets)
  for key in spec.columns_with_output(treatments.BUCKETS):
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


def _write_training_info(model_run_dir: str,
                         strategy: tf.distribute.Strategy,
                         global_batch: int,
                         extra: Optional[Dict[str, Any]] = None) -> None:
  """Records the devices used (and how training went) next to the logs."""
  tf.io.gfile.makedirs(model_run_dir)
  info = {
      'replicas_in_sync': strategy.num_replicas_in_sync,
      'devices': list(strategy.extended.worker_devices),
      'global_batch_size': global_batch,
      **(extra or {}),
  }
  with tf.io.gfile.GFile(os.path.join(model_run_dir,
                                      model_config_lib.TRAINING_INFO_FILE),
                         'w') as f:
    json.dump(info, f, indent=2)


# Steps between validation passes and TensorBoard points.
STEPS_PER_EPOCH = 100


class StopAtStep(tf.keras.callbacks.Callback):
  """Stops training once the optimizer has taken exactly `steps` steps.

  Keras trains whole epochs of `steps_per_epoch`; this ends the last,
  partial epoch early, so `--train-steps N` means N, not N rounded down.
  It counts batches in Python and reads the optimizer's step counter (a
  device read that costs more than a batch on CPU) only at the start,
  after a checkpoint may have been restored, and when the count says the
  end is reached.
  """

  def __init__(self, steps: int):
    super().__init__()
    self.steps = steps
    self._step = 0

  def _iterations(self) -> int:
    return int(self.model.optimizer.iterations.numpy())

  def on_train_begin(self, logs=None):
    del logs  # Unused.
    self._step = self._iterations()

  def on_train_batch_end(self, batch, logs=None):
    del batch, logs  # Unused.
    self._step += 1
    if self._step >= self.steps:
      self._step = self._iterations()
      if self._step >= self.steps:
        self.model.stop_training = True


def fit_exact_steps(model: tf.keras.Model, train_ds: tf.data.Dataset,
                    steps: int, callbacks=(), **fit_kwargs
                    ) -> tf.keras.callbacks.History:
  """Fits for exactly `steps` optimizer steps, validating every epoch.

  Args:
    model: A compiled model.
    train_ds: A repeated dataset (it must not run out).
    steps: Optimizer steps to take, >= 1.
    callbacks: Extra Keras callbacks.
    **fit_kwargs: Passed to `model.fit` (validation data, verbosity).

  Returns:
    The Keras history.
  """
  if steps < 1:
    raise ValueError(f'train steps must be >= 1, got {steps}.')
  steps_per_epoch = min(steps, STEPS_PER_EPOCH)
  epochs = -(-steps // steps_per_epoch)  # Ceiling: the last may be partial.
  fit_kwargs.setdefault('verbose', 2)
  return model.fit(train_ds, steps_per_epoch=steps_per_epoch, epochs=epochs,
                   callbacks=[*callbacks, StopAtStep(steps)], **fit_kwargs)


def model_head(spec: features.DatasetSpec, fn_args: fn_args_utils.FnArgs,
               tf_transform_output: tft.TFTransformOutput) -> model_lib.Head:
  """The task's head; a regression head learns the label's scale first."""
  if spec.task == features.MULTICLASS:
    return model_lib.Head(spec.task, num_classes=len(spec.classes))
  if spec.task == features.REGRESSION:
    mean, std = label_moments(fn_args.train_files, fn_args.data_accessor,
                              tf_transform_output, spec.transformed_label_key)
    return model_lib.Head(spec.task, num_classes=1, label_mean=mean,
                          label_std=std)
  return model_lib.Head(spec.task)


def label_moments(files: List[str], data_accessor: fn_args_utils.DataAccessor,
                  tf_transform_output: tft.TFTransformOutput,
                  label_key: str) -> Tuple[float, float]:
  """Mean and standard deviation of the training labels, in one pass.

  A constant label gets a standard deviation of 1, so the model still
  trains (and the gate then refuses it: R-squared is undefined).
  """
  dataset = data_input.input_fn(files, data_accessor, tf_transform_output,
                                label_key, batch_size=1024, shuffle=False,
                                num_epochs=1)
  count, total, squares = 0.0, 0.0, 0.0
  for _, labels in dataset:
    values = tf.cast(tf.reshape(labels, [-1]), tf.float64)
    count += float(tf.size(values))
    total += float(tf.reduce_sum(values))
    squares += float(tf.reduce_sum(values * values))
  if count == 0:
    raise ValueError(f'No training rows in {files}.')
  mean = total / count
  variance = max(squares / count - mean * mean, 0.0)
  std = variance ** 0.5
  return mean, std if std > 1e-12 else 1.0


def train_dnn(fn_args: fn_args_utils.FnArgs, spec: features.DatasetSpec,
              training: Dict[str, Any],
              model_config: model_config_lib.ModelConfig,
              strategy: tf.distribute.Strategy, train_ds: tf.data.Dataset,
              eval_ds: tf.data.Dataset, dense: List[str],
              categorical: Dict[str, int],
              tf_transform_output: tft.TFTransformOutput
              ) -> Tuple[tf.keras.Model, Dict[str, Any]]:
  """Trains the wide-and-deep DNN under `strategy`.

  Returns:
    The model, and for training_info.json how its training went (resumed
    from a checkpoint, warm-started).
  """
  head = model_head(spec, fn_args, tf_transform_output)
  logging.info('Model head: %s', head)
  with strategy.scope():
    model = model_lib.build_model(dense, categorical, model_config, head)
  # With --warm-start: an earlier blessed model's weights, mapped by token
  # and bucket. A checkpoint restored by fit below wins over them.
  warm = warm_start.apply(model, training, spec, model_config,
                          fn_args.transform_output)

  # A re-run after a kill continues from the last epoch's checkpoint.
  backup = checkpoints.backup_dir(fn_args, strategy.num_replicas_in_sync)
  recorder = checkpoints.ResumeRecorder()
  fit_exact_steps(
      model, train_ds, fn_args.train_steps,
      validation_data=eval_ds,
      validation_steps=fn_args.eval_steps,
      callbacks=[checkpoints.backup_and_restore(backup), recorder,
                 tf.keras.callbacks.TensorBoard(
                     log_dir=fn_args.model_run_dir, update_freq='epoch')])
  resumed = checkpoints.resume_info(recorder, model)
  if resumed['resumed_from_step']:
    logging.info('Resumed from the checkpoint at step %d in %s; trained %d '
                 'steps.', resumed['resumed_from_step'], backup,
                 resumed['steps_trained'])
  return model, {**resumed, **warm}


def run_fn(fn_args: fn_args_utils.FnArgs) -> None:
  """Trains the model and saves it with its serving signatures."""
  keras_choice.require_legacy_keras()
  spec = features.DatasetSpec.from_dict(fn_args.custom_config['dataset'])
  training = fn_args.custom_config['training']
  model_config = model_config_lib.ModelConfig.from_dict(training['model'])
  per_replica_batch = int(training['per_replica_batch_size'])
  # With --tune: the Tuner's best settings replace the configured ones.
  tuned = hp_lib.values_of(fn_args.hyperparameters)
  model_config, per_replica_batch = hp_lib.apply(tuned, model_config,
                                                 per_replica_batch)
  # Same data, code and config give the same model (on CPU).
  tf.keras.utils.set_random_seed(int(training['seed']))
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)

  strategy = distribution_strategy()
  global_batch = per_replica_batch * strategy.num_replicas_in_sync
  logging.info('Global batch size %d = %d per replica x %d replicas',
               global_batch, per_replica_batch,
               strategy.num_replicas_in_sync)

  train_ds = data_input.input_fn(
      fn_args.train_files, fn_args.data_accessor, tf_transform_output,
      spec.transformed_label_key, global_batch)
  eval_ds = data_input.input_fn(
      fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
      spec.transformed_label_key, global_batch, shuffle=False)

  dense, categorical = model_inputs(tf_transform_output, spec)
  tree_setup = gbt.Setup(spec, model_config.gbt, dense, categorical,
                         seed=int(training['seed']),
                         drop_all_features=model_config.drop_all_features)

  def eval_pass() -> tf.data.Dataset:
    """One pass over the eval split, the same order every time."""
    return data_input.input_fn(
        fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
        spec.transformed_label_key, global_batch, shuffle=False,
        num_epochs=1)

  def tree_rows(files: List[str]) -> tf.data.Dataset:
    """One pass over `files`, as the trees read them."""
    return gbt.training_dataset(files, fn_args.data_accessor,
                                tf_transform_output, spec, tree_setup.inputs,
                                model_config.drop_all_features)

  # --model gbt or auto: the trees grow in a thread while the DNN trains
  # (models/gbt.py); auto then keeps the DNN, the trees or their mean,
  # whichever scores best on the eval split (models/model_choice.py).
  started = time.monotonic(), time.process_time()
  trees = (gbt.start(tree_setup, tree_rows(fn_args.train_files))
           if model_config.trains_gbt else None)
  trained: Dict[str, tf.keras.Model] = {}
  info: Dict[str, Any] = {'hyperparameters': tuned}
  if model_config.trains_dnn:
    trained[model_config_lib.DNN], dnn_info = train_dnn(
        fn_args, spec, training, model_config, strategy, train_ds, eval_ds,
        dense, categorical, tf_transform_output)
    info.update(dnn_info)
  if trees is not None:
    forest = gbt.keep_best_template(trees.result(), spec.task, eval_pass)
    gbt.write_curves(forest, fn_args.model_run_dir)
    trained[model_config_lib.GBT] = forest.model
    info[model_config_lib.GBT] = forest.info
  # Wall and CPU seconds of the training, both families together: with
  # auto, CPU above wall is the cores the two used side by side.
  info['training_seconds'] = {
      'wall': round(time.monotonic() - started[0], 3),
      'cpu': round(time.process_time() - started[1], 3)}
  choice, chosen = model_choice.choose(
      spec.task, model_config.family, trained, eval_pass,
      mean_of=gbt.mean_model)
  model = chosen.model
  info[model_choice.KEY] = choice.to_dict()
  logging.info('Model: %s', choice.note())
  # Binary: the decision threshold, on the kept model's eval predictions
  # that the choice computed.
  decision = eval_split.binary_decision(chosen.labels, chosen.predictions,
                                        spec)
  if choice.needs_forest_ops and model_config.gbt.refit:
    # The eval split has made its choices: the kept trees grow again on
    # the train and eval rows, and replace the first ones in the export.
    refit = gbt.refit(tree_setup, forest,
                      tree_rows(fn_args.train_files + fn_args.eval_files))
    info[model_config_lib.GBT] = refit.info
    model = model_choice.with_trees(choice, trained, refit.model,
                                    gbt.mean_model)
  _write_training_info(fn_args.model_run_dir, strategy, global_batch,
                       {**info, **eval_split.decision_info(decision)})

  # Without the traced call functions of every layer, which only a Keras
  # revival of the model reads: every reader here (TFMA as `tf_generic`,
  # the REST server, FeatureAttributions, the contract tests) calls the
  # signatures, and warm start reads the checkpoint and the object graph.
  model.save(fn_args.serving_model_dir, save_format='tf', save_traces=False,
             signatures=signatures.make_signatures(
                 model, tf_transform_output, spec))
  # What a request may carry, for the REST server (serving/).
  serving_contract.write(fn_args.serving_model_dir, spec, tf_transform_output,
                         decision, choice)
