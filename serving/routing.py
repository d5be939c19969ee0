"""Two versions at once: the `stable` and `canary` labels, and the split.

A request that names a version (`/versions/<v>`) or a label
(`/labels/stable`, `/labels/canary`) goes there. An unaddressed request
goes to the canary with the configured share, else to stable.

The split is a counter, not a coin: after n unaddressed requests the
canary has had exactly floor(n * share) of them (the k-th canary request
is the one that takes the running count past k / share). So 2,000
requests at 10% give the canary exactly 200, in any interleaving of
concurrent clients, and a test of the split cannot flake. A random choice
would not do: at 10% of 2,000 its standard deviation is 13 requests, so
a +-2% (40 request) check would fail about once in 300 runs. The counter
also spreads the canary's requests evenly (every tenth at 10%), where
hashing request ids would clump them. It restarts whenever the share or
the canary changes, so a new share holds from that moment.

`Router` holds only references; swapping one is one assignment under a
lock, and a request keeps the model it picked until it is answered, so a
promotion or rollback fails no request in flight.
"""

from __future__ import annotations

import threading
from typing import Any
from typing import Dict
from typing import Optional
from typing import Tuple

STABLE = 'stable'
CANARY = 'canary'
LABELS = (STABLE, CANARY)
# The share is kept in parts per million: integer counting, no float drift.
_PARTS = 1_000_000


def check_share(share: float) -> float:
  """A canary share in [0, 1]; ValueError naming the value otherwise."""
  if not isinstance(share, (int, float)) or isinstance(share, bool) or not (
      0.0 <= share <= 1.0):
    raise ValueError(f'the canary share must be a number from 0 to 1 (0.1 '
                     f'sends 10% of requests to the canary), got {share!r}.')
  return float(share)


class Router:
  """The loaded versions by label, and the canary's share of traffic.

  Args:
    share: The canary's share of unaddressed requests, 0 to 1.
  """

  def __init__(self, share: float = 0.0):
    self._lock = threading.Lock()
    self._models: Dict[str, Any] = {}
    self._parts = round(check_share(share) * _PARTS)
    self._picked = 0
    self._to_canary = 0

  @property
  def share(self) -> float:
    return self._parts / _PARTS

  @share.setter
  def share(self, value: float) -> None:
    parts = round(check_share(value) * _PARTS)
    with self._lock:
      self._parts = parts
      self._restart()

  def _restart(self) -> None:
    self._picked = 0
    self._to_canary = 0

  def labels(self) -> Dict[str, Any]:
    """Label -> model, stable first."""
    with self._lock:
      return {label: self._models[label] for label in LABELS
              if label in self._models}

  def get(self, label: str) -> Optional[Any]:
    return self._models.get(label)

  def label_of(self, version: int) -> str:
    """The label a version holds; '' when it holds none."""
    for label, model in self.labels().items():
      if model.version == version:
        return label
    return ''

  def by_version(self, version: int) -> Optional[Any]:
    for model in self.labels().values():
      if model.version == version:
        return model
    return None

  def set(self, label: str, model: Optional[Any]) -> Optional[Any]:
    """Gives `label` to `model` (None: removes it); the model it had."""
    if label not in LABELS:
      raise ValueError(f'unknown label {label!r}; labels are {LABELS}.')
    with self._lock:
      previous = self._models.pop(label, None)
      if model is not None:
        self._models[label] = model
      if label == CANARY:
        self._restart()
      return previous

  def promote(self) -> Tuple[Any, Any]:
    """The canary becomes stable: (new stable, the stable it replaces)."""
    with self._lock:
      canary = self._models.pop(CANARY, None)
      if canary is None:
        raise LookupError('there is no canary to promote.')
      previous = self._models.get(STABLE)
      self._models[STABLE] = canary
      self._restart()
      return canary, previous

  def rollback(self) -> Any:
    """Removes the canary; returns it."""
    with self._lock:
      canary = self._models.pop(CANARY, None)
      if canary is None:
        raise LookupError('there is no canary to roll back.')
      self._restart()
      return canary

  def pick(self) -> Tuple[Any, str]:
    """(model, label) for an unaddressed request; see the module docstring.
    """
    with self._lock:
      canary = self._models.get(CANARY)
      stable = self._models.get(STABLE)
      if canary is None or stable is None:
        model = stable if stable is not None else canary
        if model is None:
          raise LookupError('no version is loaded.')
        return model, STABLE if stable is not None else CANARY
      self._picked += 1
      # The k-th canary request is the one where n * share reaches k.
      if (self._to_canary + 1) * _PARTS <= self._picked * self._parts:
        self._to_canary += 1
        return canary, CANARY
      return stable, STABLE
