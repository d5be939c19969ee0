"""The project's one Keras decision: tf-keras (Keras 2), not Keras 3.

TF 2.16 ships Keras 3 as `tf.keras` by default, but the TFX 1.16 family
(tf.Transform's `TransformFeaturesLayer`, TFMA's model loading) is built on
Keras 2. Setting `TF_USE_LEGACY_KERAS=1` before TensorFlow is imported makes
`tf.keras` resolve to the `tf_keras` package everywhere in the process and in
the Beam worker processes it starts.

Entry points (runners, tests, the container image) call `select_keras()` or
set the variable; library code only checks the choice with
`require_legacy_keras()`.
"""

from __future__ import annotations

import os
import sys

ENV_VAR = 'TF_USE_LEGACY_KERAS'
ENV_VALUE = '1'
_LEGACY_KERAS_PACKAGE = 'tf_keras'
# Libraries written for graph mode that AutoGraph's own rules do not name.
_GRAPH_MODE_PACKAGES = (_LEGACY_KERAS_PACKAGE, 'tensorflow_transform')


def select_keras() -> None:
  """Selects tf-keras for this process and its children.

  Raises:
    RuntimeError: TensorFlow was already imported with another choice, so the
      setting can no longer take effect.
  """
  if os.environ.get(ENV_VAR) != ENV_VALUE and 'tensorflow' in sys.modules:
    raise RuntimeError(
        f'TensorFlow was imported before {ENV_VAR}={ENV_VALUE} was set; '
        'call models.keras_choice.select_keras() before importing TensorFlow.')
  os.environ[ENV_VAR] = ENV_VALUE


def require_legacy_keras() -> None:
  """Fails with a clear message when `tf.keras` is not tf-keras.

  Also keeps AutoGraph out of tf-keras' own code (`skip_autograph_of_keras`).
  """
  import tensorflow as tf
  if not tf.keras.__name__.startswith('tf_keras'):
    raise RuntimeError(
        f'tf.keras is {tf.keras.__name__}, but this project needs tf-keras. '
        f'Set {ENV_VAR}={ENV_VALUE} before TensorFlow is imported (the '
        'runners and `make` do this).')
  skip_autograph_of_keras()


def skip_autograph_of_keras() -> None:
  """AutoGraph leaves tf-keras' and tf.Transform's code as it is.

  TensorFlow's AutoGraph rules skip the `tensorflow` and `keras` packages,
  whose code is written for graph mode, but not `tf_keras`, the same Keras
  2 under its new name. So the first `fit`, `evaluate` or load of a Keras
  model in a process rewrote the Python source of every Keras layer,
  metric, loss and optimizer it reached: about 20 s of CPU on the sample,
  in the Trainer, each Tuner trial's process and the Evaluator.
  `tensorflow_transform`, also graph-mode code, was rewritten each time
  Transform traced the `preprocessing_fn` and each time the Trainer traced
  a signature around `TransformFeaturesLayer`. Our own code (a
  `preprocessing_fn`, a custom layer, a signature) is still converted.
  Idempotent.
  """
  from tensorflow.python.autograph.core import config as autograph_config
  for package in _GRAPH_MODE_PACKAGES:
    rules = autograph_config.CONVERSION_RULES
    if not any(isinstance(rule, autograph_config.DoNotConvert) and
               rule.matches(package) for rule in rules):
      autograph_config.CONVERSION_RULES = (
          autograph_config.DoNotConvert(package), *rules)
