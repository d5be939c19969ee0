"""Training checkpoints that let a killed Trainer resume instead of restart.

Each Trainer execution gets fresh output folders, so a checkpoint kept in
them would be lost to the run that follows a kill. The backup folder is
keyed instead on what determines the training: the transformed data, the
transform graph, the custom config (dataset, training settings and code
version), the step counts and the number of replicas. A re-run with the same
inputs finds the backup of the killed one and continues from its last
checkpoint; anything else trains from scratch. Keras deletes the backup once
training finishes.

The backup holds the weights, the optimizer state and the step and epoch
counters, not the input pipeline's position: a resumed run reads its data
from the start of the (seeded) shuffle again, so its model is as good as an
uninterrupted run's but not bit-identical to it.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any
from typing import Dict

import tensorflow as tf

CHECKPOINTS_DIR = 'checkpoints'


def backup_key(fn_args: Any, replicas: int) -> str:
  """A hash of everything that shapes the training; the same on a re-run."""
  inputs = {
      'train_files': list(fn_args.train_files),
      'eval_files': list(fn_args.eval_files),
      'transform_output': fn_args.transform_output,
      'custom_config': fn_args.custom_config,
      'train_steps': fn_args.train_steps,
      'eval_steps': fn_args.eval_steps,
      'replicas': replicas,
  }
  text = json.dumps(inputs, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def backup_dir(fn_args: Any, replicas: int) -> str:
  """`<pipeline root>/Trainer/checkpoints/<key>`, beside `model_run/<id>`."""
  trainer_root = os.path.dirname(os.path.dirname(
      fn_args.model_run_dir.rstrip('/')))
  return os.path.join(trainer_root, CHECKPOINTS_DIR,
                      backup_key(fn_args, replicas))


class ResumeRecorder(tf.keras.callbacks.Callback):
  """Notes the optimizer step training started from (0, or a checkpoint's).

  It must come after `BackupAndRestore` in the callback list, which restores
  the state in its own `on_train_begin`.
  """

  def __init__(self):
    super().__init__()
    self.start_step = 0

  def on_train_begin(self, logs=None):
    del logs  # Unused.
    self.start_step = int(self.model.optimizer.iterations.numpy())


def resume_info(recorder: ResumeRecorder, model: tf.keras.Model
                ) -> Dict[str, int]:
  """What this execution trained: where it started and how many steps."""
  end = int(model.optimizer.iterations.numpy())
  return {'resumed_from_step': recorder.start_step,
          'steps_trained': end - recorder.start_step}


def backup_and_restore(directory: str
                       ) -> tf.keras.callbacks.BackupAndRestore:
  """Keras' own backup callback, saving at the end of every epoch."""
  return tf.keras.callbacks.BackupAndRestore(
      backup_dir=directory, save_freq='epoch', delete_checkpoint=True)
