"""Ground truth for earlier predictions, and live quality per version.

Every scored row gets a prediction id, `<request id>-<row>`: the request id
is answered in the `X-Request-Id` header (a client may choose it by sending
that header). The server remembers the last `capacity` predictions, by
prediction id, and by key columns when the server is told which columns
identify a row (`--feedback-keys`, e.g. a trip id the client sends as an
ignored column).

Labels arrive later, at `POST /v1/models/<name>:feedback`:

    {"labels": [{"prediction_id": "9f1c0d7e-0", "label": "1"},
                {"keys": {"trip_id": "t-42"}, "label": 0}]}

Each label is joined with its prediction (and forgotten: a prediction is
labelled once) and added to that version's window: its last `window`
labelled predictions. Over the window the server computes live quality:

* classification: accuracy of the answered class (binary: the decision at
  the model's threshold) and AUC (binary: of P(positive); multiclass: the
  mean one-vs-rest AUC over the classes that occur);
* regression: RMSE.

The window counts labels, not time, so that a quiet hour and a busy one
are judged on equally many examples; `serving_live_labels` says how many
the window holds, and the alert rules wait for enough.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
from typing import Any
from typing import Deque
from typing import Dict
from typing import List
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

import numpy as np

from models import features
from models import serving_contract
from serving import instances as instances_lib

RequestError = instances_lib.RequestError
DEFAULT_CAPACITY = 100_000
DEFAULT_WINDOW = 1000
MAX_LABELS = instances_lib.MAX_ROWS
ACCURACY = 'accuracy'
AUC = 'auc'
RMSE = 'rmse'
# A request id a client may choose: short, and safe in a header and a URL.
_ID_CHARS = frozenset('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'
                      '0123456789-_.:')
MAX_ID_LENGTH = 128
Key = Tuple[Any, ...]


def metric_names(task: str) -> Tuple[str, ...]:
  """The live quality metrics of a task."""
  if task == features.REGRESSION:
    return (RMSE,)
  return (ACCURACY, AUC)


def valid_request_id(text: Optional[str]) -> bool:
  return bool(text) and len(text) <= MAX_ID_LENGTH and set(text) <= _ID_CHARS


def prediction_id(request_id: str, row: int) -> str:
  return f'{request_id}-{row}'


@dataclasses.dataclass(frozen=True)
class Prediction:
  """What a version answered for one row.

  Attributes:
    version: The version that scored it.
    scores: Binary: (P(positive),); multiclass: each class's score;
      regression: (value,).
    answered: Classification: the index of the class answered (binary:
      the decision); regression: -1.
  """
  version: int
  scores: Tuple[float, ...]
  answered: int = -1


def key_of(row: Mapping[str, Any], columns: Sequence[str]) -> Optional[Key]:
  """The key columns' values of a row; None when one is missing.

  A whole float is the integer it equals (12.0 and 12 are one key), so a
  key matches however a client's JSON writes it.
  """
  key = []
  for column in columns:
    value = row.get(column)
    if value is None or isinstance(value, (list, dict)):
      return None
    if isinstance(value, float) and value.is_integer():
      value = int(value)
    key.append(value)
  return tuple(key)


class PredictionMemory:
  """The last `capacity` predictions, by prediction id and by key.

  Thread-safe: requests of large bodies are answered in worker threads.
  """

  def __init__(self, capacity: int = DEFAULT_CAPACITY,
               key_columns: Sequence[str] = ()):
    if capacity < 1:
      raise ValueError(f'capacity must be >= 1, got {capacity}.')
    self.capacity = capacity
    self.key_columns = tuple(key_columns)
    self._lock = threading.Lock()
    self._by_id: 'collections.OrderedDict[str, Tuple[Prediction, Optional[Key]]]' = (
        collections.OrderedDict())
    self._by_key: Dict[Key, str] = {}

  def __len__(self) -> int:
    return len(self._by_id)

  def remember(self, request_id: str, predictions: Sequence[Prediction],
               keys: Sequence[Optional[Key]]) -> None:
    """Keeps one request's predictions (row i: `prediction_id(id, i)`)."""
    with self._lock:
      for i, (prediction, key) in enumerate(zip(predictions, keys,
                                                strict=True)):
        pid = prediction_id(request_id, i)
        self._forget(pid)
        self._by_id[pid] = (prediction, key)
        if key is not None:
          self._by_key[key] = pid  # The newest prediction for the key.
      while len(self._by_id) > self.capacity:
        oldest, (_, key) = self._by_id.popitem(last=False)
        if key is not None and self._by_key.get(key) == oldest:
          del self._by_key[key]

  def _forget(self, pid: str) -> Optional[Prediction]:
    entry = self._by_id.pop(pid, None)
    if entry is None:
      return None
    prediction, key = entry
    if key is not None and self._by_key.get(key) == pid:
      del self._by_key[key]
    return prediction

  def take(self, pid: str) -> Optional[Prediction]:
    """The prediction of an id, forgotten; None when unknown or labelled."""
    with self._lock:
      return self._forget(pid)

  def take_by_key(self, key: Key) -> Optional[Prediction]:
    """The newest prediction of a key, forgotten; None when unknown."""
    with self._lock:
      pid = self._by_key.get(key)
      return None if pid is None else self._forget(pid)


# --- Quality measures. -------------------------------------------------------


def auc(positive: np.ndarray, scores: np.ndarray) -> Optional[float]:
  """Area under the ROC curve (ties count half); None without both classes.

  The Mann-Whitney statistic: the chance that a random positive scores
  above a random negative.
  """
  positive = positive.astype(bool)
  n_pos = int(positive.sum())
  n_neg = len(positive) - n_pos
  if not n_pos or not n_neg:
    return None
  order = np.argsort(scores, kind='mergesort')
  sorted_scores = scores[order]
  ranks = np.empty(len(scores), dtype=np.float64)
  # Average ranks of ties, 1-based.
  _, first, counts = np.unique(sorted_scores, return_index=True,
                               return_counts=True)
  for start, count in zip(first, counts, strict=True):
    ranks[order[start:start + count]] = start + (count + 1) / 2.0
  return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) /
               (n_pos * n_neg))


def quality(task: str, labels: Sequence[Any],
            predictions: Sequence[Prediction]) -> Dict[str, float]:
  """The live metrics of labelled predictions (see the module docstring).

  Args:
    task: The contract's task.
    labels: Class indices (classification) or values (regression).
    predictions: The matching predictions.
  """
  if not labels:
    return {}
  if task == features.REGRESSION:
    truth = np.asarray(labels, dtype=np.float64)
    predicted = np.array([p.scores[0] for p in predictions])
    return {RMSE: float(np.sqrt(np.mean((truth - predicted) ** 2)))}
  truth = np.asarray(labels, dtype=np.int64)
  answered = np.array([p.answered for p in predictions])
  out = {ACCURACY: float(np.mean(answered == truth))}
  if task == features.BINARY:
    value = auc(truth == 1, np.array([p.scores[0] for p in predictions]))
  else:
    scores = np.array([p.scores for p in predictions])
    per_class = [auc(truth == k, scores[:, k])
                 for k in range(scores.shape[1])]
    known = [v for v in per_class if v is not None]
    value = float(np.mean(known)) if known else None
  if value is not None:
    out[AUC] = value
  return out


class LiveQuality:
  """Each version's window of labelled predictions and its metrics."""

  def __init__(self, task: str, window: int = DEFAULT_WINDOW):
    if window < 1:
      raise ValueError(f'the quality window must be >= 1, got {window}.')
    self.task = task
    self.window = window
    self._lock = threading.Lock()
    self._windows: Dict[int, Deque[Tuple[Any, Prediction]]] = {}

  def add(self, labelled: Sequence[Tuple[Any, Prediction]]
          ) -> Dict[int, Tuple[Dict[str, float], int]]:
    """Adds (label, prediction) pairs; returns the changed versions'
    (metrics, labels in window)."""
    changed = set()
    with self._lock:
      for label, prediction in labelled:
        window = self._windows.setdefault(
            prediction.version, collections.deque(maxlen=self.window))
        window.append((label, prediction))
        changed.add(prediction.version)
      pairs = {v: list(self._windows[v]) for v in changed}
    return {v: (quality(self.task, [label for label, _ in entries],
                        [p for _, p in entries]), len(entries))
            for v, entries in pairs.items()}

  def forget(self, version: int) -> None:
    with self._lock:
      self._windows.pop(version, None)


# --- The feedback request. ---------------------------------------------------


def typed_label(value: Any, contract: serving_contract.Contract,
                where: str) -> Any:
  """A label as the quality measures take it: the class's index, or a
  float; RequestError (400) for a value the model cannot have predicted."""
  if contract.task == features.REGRESSION:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
        not math.isfinite(value)):
      raise RequestError(
          f'{where}: the label of a regression model is a finite number, '
          f'got {instances_lib.kind(value)} {instances_lib.shown(value)}.',
          instances_lib.WRONG_TYPE)
    return float(value)
  text = None
  if isinstance(value, str):
    text = value
  elif isinstance(value, int) and not isinstance(value, bool):
    text = str(value)
  elif isinstance(value, float) and value.is_integer():
    text = str(int(value))
  if text is None or text not in contract.classes:
    raise RequestError(
        f'{where}: label {instances_lib.shown(value)} is not a class of '
        f'model {contract.dataset!r}; send one of '
        f'{", ".join(contract.classes)}.', instances_lib.BAD_VALUE)
  return contract.classes.index(text)


@dataclasses.dataclass
class LabelItem:
  """One label of a feedback request: by prediction id or by key."""
  label: Any
  prediction_id: Optional[str] = None
  key: Optional[Key] = None


def parse_feedback(request: Mapping[str, Any],
                   contract: serving_contract.Contract,
                   key_columns: Sequence[str]) -> List[LabelItem]:
  """Reads `{"labels": [{"prediction_id"|"keys": ..., "label": ...}]}`.

  Raises:
    RequestError: Not of that shape, or a label the model cannot have
      predicted; nothing of the request is applied then.
  """
  send = ('send {"labels": [{"prediction_id": "<X-Request-Id>-<row>", '
          '"label": ...}]}')
  labels = request.get('labels')
  if not isinstance(labels, list):
    raise RequestError(
        f'"labels" is {instances_lib.kind(labels)}; {send}.',
        instances_lib.BAD_BODY)
  if not labels:
    raise RequestError(f'"labels" is empty; {send}.', instances_lib.EMPTY)
  if len(labels) > MAX_LABELS:
    raise RequestError(f'{len(labels)} labels in one request; send at most '
                       f'{MAX_LABELS}.', instances_lib.TOO_MANY_ROWS)
  items = []
  for i, entry in enumerate(labels):
    where = f'labels[{i}]'
    if not isinstance(entry, dict) or 'label' not in entry:
      raise RequestError(
          f'{where} is {instances_lib.kind(entry)} '
          f'{instances_lib.shown(entry)}; each label is an object with '
          '"label" and "prediction_id" (or "keys").', instances_lib.BAD_BODY)
    label = typed_label(entry['label'], contract, where)
    if 'prediction_id' in entry:
      pid = entry['prediction_id']
      if not isinstance(pid, str):
        raise RequestError(
            f'{where}: "prediction_id" is {instances_lib.kind(pid)}; send '
            'the X-Request-Id of the prediction, a dash and the row '
            '("9f1c0d7e-0").', instances_lib.BAD_VALUE)
      items.append(LabelItem(label, prediction_id=pid))
    elif 'keys' in entry:
      if not key_columns:
        raise RequestError(
            f'{where}: this server matches labels by prediction id only; '
            'start it with --feedback-keys COLUMN,... to match by keys.',
            instances_lib.BAD_BODY)
      keys = entry['keys']
      key = key_of(keys, key_columns) if isinstance(keys, dict) else None
      if key is None or set(keys) != set(key_columns):
        raise RequestError(
            f'{where}: "keys" must hold exactly the key columns '
            f'{", ".join(key_columns)}, one value each; got '
            f'{instances_lib.shown(keys)}.', instances_lib.BAD_VALUE)
      items.append(LabelItem(label, key=key))
    else:
      raise RequestError(
          f'{where} has neither "prediction_id" nor "keys"; {send}.',
          instances_lib.BAD_BODY)
  return items
