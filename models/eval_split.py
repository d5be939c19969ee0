"""A trained model's predictions on the eval split, and a proper score of them.

The Trainer reads the eval split (the Trainer's `eval_files`: validation
during training, never the Evaluator's test split) to take decisions that
must not look at the test rows:

* the binary decision threshold (`models/decision.py`);
* which model family to keep when several were trained (`--model auto`).

`predict_eval_split` runs a model once over the transformed eval split, as
`models/data_input.py` builds it: a dataset of (features, label) batches.
`eval_score` turns the labels and predictions into one proper score per
task, so two models compare on the same footing whatever their family:

* binary and multiclass: log loss (mean negative log-likelihood of the
  true class), lower is better. A proper scoring rule: it rewards honest
  probabilities, not just the ranking or the arg-max.
* regression: RMSE, lower is better.

`binary_decision` chooses a binary model's decision threshold from its
eval predictions (`models/decision.py`), and `decision_info` is what the
Trainer records of it in training_info.json for the summary, the report
and the model card.

Nothing here depends on the model being Keras: any callable that maps the
transformed feature dict to the task's output works (a Keras model, a
TF-DF model, a `tf.function`). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import math
from typing import Any
from typing import Callable
from typing import Dict
from typing import Iterable
from typing import Mapping
from typing import Optional
from typing import Tuple

import numpy as np

from models import decision as decision_lib
from models import features

LOG_LOSS = 'log_loss'
RMSE = 'root_mean_squared_error'
# Probabilities are clipped to [EPSILON, 1 - EPSILON] before the log, as
# Keras' own cross-entropy does, so one overconfident row costs a large but
# finite amount.
EPSILON = 1e-7


def predict_eval_split(model: Callable[..., Any],
                       eval_dataset: Iterable[Tuple[Mapping[str, Any], Any]]
                       ) -> Tuple[np.ndarray, np.ndarray]:
  """Scores every row of `eval_dataset` once.

  Args:
    model: Maps a dict of transformed features to the task's output: P(the
      positive class) [batch, 1] (binary), class probabilities [batch, k]
      (multiclass) or the predicted value [batch, 1] (regression). Inputs
      the model does not name (`model.input_names`, when it has them) are
      left out, so the transformed label and unused features never reach
      it.
    eval_dataset: A finite dataset of (features, label) batches, e.g.
      `data_input.input_fn(..., shuffle=False, num_epochs=1)`. It must not
      repeat: this reads it to the end.

  Returns:
    (labels, predictions): labels [n]; predictions [n] for binary (P of
    the positive class) and regression, [n, k] for multiclass.

  Raises:
    ValueError: The dataset yielded no rows.
  """
  names = getattr(model, 'input_names', None)
  wanted = set(names) if names else None
  labels, outputs = [], []
  for batch, label in eval_dataset:
    inputs = ({k: v for k, v in batch.items() if k in wanted}
              if wanted is not None else batch)
    prediction = model(inputs, training=False)
    outputs.append(np.asarray(prediction, dtype=np.float64))
    labels.append(np.asarray(label).reshape(-1))
  if not labels:
    raise ValueError('The eval split yielded no rows: the Trainer cannot '
                     'score the model on it. Check that the eval split of '
                     'the examples is not empty.')
  label_array = np.concatenate(labels)
  prediction_array = np.concatenate(outputs, axis=0)
  if prediction_array.ndim == 2 and prediction_array.shape[1] == 1:
    prediction_array = prediction_array[:, 0]
  return label_array, prediction_array


def log_loss(labels: np.ndarray, predictions: np.ndarray) -> float:
  """Mean negative log-likelihood of the true class.

  Args:
    labels: [n] 0/1 (binary) or class ids (multiclass).
    predictions: [n] P(positive) (binary) or [n, k] class probabilities.
  """
  y = np.asarray(labels).reshape(-1)
  p = np.asarray(predictions, dtype=np.float64)
  if p.ndim == 1:
    p = np.clip(p, EPSILON, 1 - EPSILON)
    true = np.where(y.astype(np.int64) == 1, p, 1 - p)
  else:
    clipped = np.clip(p, EPSILON, None)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    true = clipped[np.arange(y.size), y.astype(np.int64)]
  return float(-np.mean(np.log(true)))


def eval_score(task: str, labels: np.ndarray, predictions: np.ndarray
               ) -> Tuple[str, float, bool]:
  """A proper score of predictions on the eval split.

  Args:
    task: One of `features.TASKS`.
    labels: From `predict_eval_split`.
    predictions: From `predict_eval_split`.

  Returns:
    (metric name, value, higher_is_better): ('log_loss', x, False) for
    classification, ('root_mean_squared_error', x, False) for regression.
    NaN when there are no rows.
  """
  if task not in features.TASKS:
    raise ValueError(f'Unknown task {task!r}; expected one of '
                     f'{", ".join(features.TASKS)}.')
  y = np.asarray(labels).reshape(-1)
  if y.size == 0:
    name = RMSE if task == features.REGRESSION else LOG_LOSS
    return name, float('nan'), False
  if task == features.REGRESSION:
    error = y.astype(np.float64) - np.asarray(
        predictions, dtype=np.float64).reshape(-1)
    return RMSE, math.sqrt(float(np.mean(error ** 2))), False
  return LOG_LOSS, log_loss(y, predictions), False


# The training info key (models/train.py writes training_info.json) under
# which the decision threshold is recorded for the summary and the report.
DECISION_KEY = 'decision'


def binary_decision(labels: np.ndarray, probabilities: np.ndarray,
                    spec: features.DatasetSpec
                    ) -> Optional[decision_lib.Decision]:
  """A binary model's decision threshold, chosen on its eval predictions.

  Args:
    labels: The eval split's labels (`predict_eval_split`).
    probabilities: The model's P(positive) on the same rows, as
      `model_choice.choose` returns them with the kept model, so the
      eval split is not read again.
    spec: The dataset; its `decision` says which rule chooses.

  Returns:
    The threshold and what it does on the eval rows; None for a multiclass
    or regression task.
  """
  if spec.task != features.BINARY:
    return None
  return decision_lib.choose(labels, probabilities, spec.decision)


def decision_info(decision: Optional[decision_lib.Decision]
                  ) -> Dict[str, Any]:
  """{'decision': {...}} for training_info.json; {} without a threshold."""
  return {DECISION_KEY: decision.to_dict()} if decision else {}
