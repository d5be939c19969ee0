"""Pushed model versions: finding, loading, and swapping in a new push.

The Pusher copies each blessed model into `OUT/serving_model/<version>/`,
with an integer version that grows with every push. The server serves the
highest version it can load; a version is servable when its folder holds a
SavedModel with `serving_default` and the serving contract
(models/serving_contract.py) agrees with that signature.

`ModelWatcher` polls the folder. A new version is loaded only once its
folder has stopped changing between two polls (the Pusher copies file by
file, not atomically), then loaded fully, then swapped in with one
reference assignment. A request takes the current model once, at its
start, so requests in flight finish on the model they started with, and
none waits for or fails during the swap. A version that cannot be loaded
is refused with its reason (the status endpoint shows it), the model
served before stays, and the version is retried only when its files
change.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

from absl import logging
import numpy as np

from models import serving_contract

SAVED_MODEL_FILE = 'saved_model.pb'
# Folder listing: (relative path, size, modification time in ns) per file.
Fingerprint = Tuple[Tuple[str, int, int], ...]


class NoServableModel(RuntimeError):
  """No pushed version can be served; the message says why for each."""


class LoadError(RuntimeError):
  """TensorFlow cannot load or run a version's SavedModel."""


def versions(serving_model_dir: str) -> List[Tuple[int, str]]:
  """(version, folder) of each pushed version, oldest first.

  Only folders named by a number count: a copy in progress under another
  name (`.1700000000.tmp`) is not a version.
  """
  if not os.path.isdir(serving_model_dir):
    return []
  found = []
  for name in os.listdir(serving_model_dir):
    path = os.path.join(serving_model_dir, name)
    if name.isdigit() and os.path.isdir(path):
      found.append((int(name), path))
  return sorted(found)


def fingerprint(folder: str) -> Fingerprint:
  """What changes while a folder is being written."""
  entries = []
  for root, _, files in os.walk(folder):
    for name in files:
      path = os.path.join(root, name)
      try:
        stat = os.stat(path)
      except FileNotFoundError:
        continue  # Renamed while listing: the next poll sees it.
      entries.append((os.path.relpath(path, folder), stat.st_size,
                      stat.st_mtime_ns))
  return tuple(sorted(entries))


@dataclasses.dataclass(frozen=True)
class LoadedModel:
  """One loaded version, ready to score.

  Attributes:
    name: The model name in URLs: the dataset's name.
    version: The pushed version number.
    path: Its folder.
    contract: Its serving contract.
    signature: `serving_default`, a concrete function.
    signature_info: Inputs and outputs: name -> (dtype name, shape list).
    saved_model: The loaded object; holds the variables the signature uses.
  """
  name: str
  version: int
  path: str
  contract: serving_contract.Contract
  signature: Callable[..., Dict[str, Any]]
  signature_info: Dict[str, Dict[str, Tuple[str, List[Optional[int]]]]]
  saved_model: Any

  def predict(self, serialized: List[bytes]) -> Dict[str, np.ndarray]:
    """Scores serialized tf.Examples; output name -> [rows, ...] array."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    outputs = self.signature(**{
        self.contract.input: tf.constant(serialized, dtype=tf.string)})
    return {name: value.numpy() for name, value in outputs.items()}


def _tensor_info(spec: Any) -> Tuple[str, List[Optional[int]]]:
  shape = spec.shape
  dims = None if shape.rank is None else list(shape.as_list())
  return spec.dtype.name, dims


def load(path: str, version: int) -> LoadedModel:
  """Loads one version fully, checking it against its contract.

  Raises:
    serving_contract.ContractError: No usable contract, or one that does
      not match the SavedModel's signature.
    LoadError: TensorFlow cannot load the SavedModel or run its signature.
  """
  contract = serving_contract.read(path)  # Cheap: refuse before loading.
  if not os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
    raise serving_contract.ContractError(
        f'{path} has no {SAVED_MODEL_FILE}; it is not a SavedModel.')
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    saved_model = tf.saved_model.load(path)
  except (tf.errors.OpError, OSError, ValueError) as e:
    raise LoadError(f'TensorFlow cannot load the SavedModel in {path}: '
                    f'{str(e).splitlines()[0] if str(e) else e!r}') from None
  signature = saved_model.signatures.get(contract.signature)
  if signature is None:
    raise serving_contract.ContractError(
        f'{path} has no signature {contract.signature!r} (it has '
        f'{sorted(saved_model.signatures)}).')
  _, inputs = signature.structured_input_signature
  outputs = signature.structured_outputs
  if set(inputs) != {contract.input} or set(outputs) != set(
      contract.outputs):
    raise serving_contract.ContractError(
        f'{path}: signature {contract.signature!r} takes {sorted(inputs)} '
        f'and returns {sorted(outputs)}, but its contract says '
        f'[{contract.input!r}] and {sorted(contract.outputs)}; re-run the '
        'pipeline to push a consistent model.')
  info = {'inputs': {k: _tensor_info(v) for k, v in inputs.items()},
          'outputs': {k: _tensor_info(v) for k, v in outputs.items()}}
  # One call on an empty batch runs the graph once (tables, lazy setup),
  # so the first request after a swap is not the slow one.
  model = LoadedModel(name=contract.dataset, version=version, path=path,
                      contract=contract, signature=signature,
                      signature_info=info, saved_model=saved_model)
  try:
    model.predict([])
  except tf.errors.OpError as e:
    raise LoadError(f'{path}: {contract.signature!r} fails on an empty '
                    f'batch: {e.message}') from None
  return model


@dataclasses.dataclass
class Refusal:
  """Why a version is not served, and the files that reason holds for."""
  reason: str
  fingerprint: Fingerprint


class ModelWatcher:
  """Serves the newest loadable version and swaps in newer ones.

  Args:
    serving_model_dir: `OUT/serving_model`.
    poll_seconds: How often to look for a new version.
    on_load: Called with (model, None) after a swap, or (None, refusal
      text) when a version is refused; for metrics and logs.
  """

  def __init__(self, serving_model_dir: str, poll_seconds: float,
               on_load: Optional[Callable[[Optional[LoadedModel],
                                           Optional[str]], None]] = None):
    self.serving_model_dir = serving_model_dir
    self.poll_seconds = poll_seconds
    self._on_load = on_load or (lambda model, refusal: None)
    self._current: Optional[LoadedModel] = None
    self._refused: Dict[int, Refusal] = {}
    self._seen: Dict[int, Fingerprint] = {}
    self.loading: Optional[int] = None
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None

  @property
  def current(self) -> LoadedModel:
    """The model new requests get; read it once per request."""
    model = self._current
    if model is None:
      raise NoServableModel('no model loaded yet; call load_newest() first.')
    return model

  @property
  def refused(self) -> Dict[int, str]:
    """Version -> why it is not served."""
    return {v: r.reason for v, r in sorted(self._refused.items())}

  def _try_load(self, version: int, path: str, files: Fingerprint
                ) -> Optional[LoadedModel]:
    self.loading = version
    try:
      model = load(path, version)
    except (serving_contract.ContractError, LoadError) as e:
      reason = str(e)
    except Exception as e:  # pylint: disable=broad-except
      # Loading runs code from the files (Keras objects, TF graphs): any
      # error refuses this version, and the server goes on serving.
      reason = f'{path} cannot be loaded: {type(e).__name__}: {e}'
    else:
      reason = None
    finally:
      self.loading = None
    if reason is not None:
      self._refused[version] = Refusal(reason, files)
      logging.warning('Not serving version %d: %s', version, reason)
      self._on_load(None, reason)
      return None
    self._refused.pop(version, None)
    return model

  def load_newest(self) -> LoadedModel:
    """At start: loads the newest version that can be served.

    Raises:
      NoServableModel: None can; the message gives each version's reason.
    """
    found = versions(self.serving_model_dir)
    if not found:
      raise NoServableModel(
          f'no pushed model under {self.serving_model_dir}: run the '
          'pipeline until a model is blessed and pushed (make run), or '
          'pass the --output-dir of such a run.')
    for version, path in reversed(found):
      model = self._try_load(version, path, fingerprint(path))
      if model is not None:
        self._swap(model)
        return model
    reasons = '; '.join(f'version {v}: {r}' for v, r in self.refused.items())
    raise NoServableModel(
        f'no servable model under {self.serving_model_dir}: {reasons}')

  def _swap(self, model: LoadedModel) -> None:
    previous = self._current
    self._current = model  # One reference assignment: atomic.
    self._on_load(model, None)
    if previous is None:
      logging.info('Serving %s version %d from %s', model.name,
                   model.version, model.path)
    else:
      logging.info('Swapped %s version %d for version %d (%s)', model.name,
                   previous.version, model.version, model.path)

  def poll(self) -> Optional[LoadedModel]:
    """Looks once for a newer version; loads and swaps it in when ready.

    A version is ready once its files are the same as at the previous poll.
    Returns the new model, or None when nothing was swapped.
    """
    current = self._current
    newest = current.version if current is not None else -1
    for version, path in reversed(versions(self.serving_model_dir)):
      if version <= newest:
        break
      files = fingerprint(path)
      refusal = self._refused.get(version)
      if refusal is not None and refusal.fingerprint == files:
        continue  # Refused, and unchanged since.
      settled = self._seen.get(version) == files
      self._seen[version] = files
      if not settled:
        return None  # Still being written (or first seen): next poll.
      model = self._try_load(version, path, files)
      if model is not None:
        self._seen.pop(version, None)
        self._swap(model)
        return model
    return None

  def _run(self) -> None:
    while not self._stop.wait(self.poll_seconds):
      try:
        self.poll()
      except OSError as e:  # The folder vanished or is unreadable: retry.
        logging.warning('Cannot look for new versions in %s: %s',
                        self.serving_model_dir, e)

  def start(self) -> None:
    """Polls in a daemon thread until `stop`."""
    if self._thread is None:
      self._thread = threading.Thread(target=self._run, name='model-watcher',
                                      daemon=True)
      self._thread.start()

  def stop(self) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join(timeout=max(1.0, 2 * self.poll_seconds))
      self._thread = None
