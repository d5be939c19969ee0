"""TF Decision Forests' TensorFlow ops, registered before a model is loaded.

A gradient-boosted trees model (`models/gbt.py`) is a SavedModel whose
graph calls TF-DF's inference op (`SimpleMLInferenceOpWithHandle`). Plain
TensorFlow does not know it: loading such a model in a process that has
not imported `tensorflow_decision_forests` fails with "Op type not
registered 'SimpleMLInferenceOpWithHandle'". So every process that loads a
pushed model calls `register()` first: the REST server, batch predictions
and the monitor (`serving/model_store.py`), FeatureAttributions, and the
Evaluator, whose TFMA loads the model through `custom_eval_shared_model`
below (`pipeline/definition/pipeline.py` names this module as the
Evaluator's `module_path`, so it reaches every orchestrator and Beam
worker).

`register()` is cheap once TensorFlow is imported, and a no-op without
TF-DF installed, so a DNN-only install still serves DNN models. Nothing
here imports TensorFlow at import time.
"""

from __future__ import annotations

import importlib
from typing import Any
from typing import Callable

_MODULE = 'tensorflow_decision_forests'
_registered = False


def register() -> bool:
  """Imports TF-DF once, which registers its ops; False if not installed."""
  global _registered
  if _registered:
    return True
  try:
    importlib.import_module(_MODULE)
  except ModuleNotFoundError as e:
    if e.name != _MODULE:
      raise
    return False
  _registered = True
  return True


class WithForestOps:
  """A model constructor that registers the ops first, in whichever process
  calls it: TFMA pickles the constructor to its Beam workers, and this class
  is pickled by reference, so a worker imports this module to call it."""

  def __init__(self, construct_fn: Callable[[], Any]):
    self.construct_fn = construct_fn

  def __call__(self) -> Any:
    register()
    return self.construct_fn()


def custom_eval_shared_model(eval_saved_model_path: str, model_name: str,
                             eval_config: Any, **kwargs: Any) -> Any:
  """TFX Evaluator's hook: TFMA's default shared model, with TF-DF's ops.

  The Evaluator calls this (found through its `module_path`) for the
  candidate and the baseline model alike.
  """
  register()
  # Imported here: the REST server calls register() without TFMA.
  import tensorflow_model_analysis as tfma
  shared = tfma.default_eval_shared_model(
      eval_saved_model_path=eval_saved_model_path, model_name=model_name,
      eval_config=eval_config, **kwargs)
  loader = shared.model_loader
  if loader is not None and not isinstance(loader.construct_fn,
                                           WithForestOps):
    loader.construct_fn = WithForestOps(loader.construct_fn)
  return shared
