"""Pushed model versions: finding, loading, labelling, swapping in a push.

The Pusher copies each blessed model into `OUT/serving_model/<version>/`,
with an integer version that grows with every push. The server serves the
highest version it can load (label `stable`), and in canary mode a newer
push beside it (label `canary`, serving/routing.py); a version is
servable when its folder holds a SavedModel with `serving_default` and the
serving contract (models/serving_contract.py) agrees with that signature.

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
import datetime
import json
import os
import tempfile
import threading
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

from absl import logging
import numpy as np

from models import forest_ops
from models import serving_contract
from serving import routing
from serving import tf_serving

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
    signature_defs: Every SignatureDef of the SavedModel, as TF Serving's
      metadata API prints them (serving/tf_serving.py).
  """
  name: str
  version: int
  path: str
  contract: serving_contract.Contract
  signature: Callable[..., Dict[str, Any]]
  signature_info: Dict[str, Dict[str, Tuple[str, List[Optional[int]]]]]
  saved_model: Any
  signature_defs: Dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def decision_threshold(self) -> float:
    """P(positive) from which a binary model answers the positive class:
    the contract's `decision_threshold` (chosen by the Trainer), 0.5 for a
    model pushed before contracts carried one."""
    threshold = getattr(self.contract, 'decision_threshold', None)
    return 0.5 if threshold is None else float(threshold)

  def predict(self, serialized: List[bytes]) -> Dict[str, np.ndarray]:
    """Scores serialized tf.Examples; output name -> [rows, ...] array."""
    import tensorflow as tf
    outputs = self.signature(**{
        self.contract.input: tf.constant(serialized, dtype=tf.string)})
    return {name: value.numpy() for name, value in outputs.items()}

  def signature_input(self, name: str) -> str:
    """The one input of signature `name`; LookupError when it has another
    kind of input (this server feeds signatures serialized tf.Examples)."""
    function = self.saved_model.signatures[name]
    _, inputs = function.structured_input_signature
    if len(inputs) != 1:
      raise LookupError(f'signature {name!r} takes {len(inputs)} inputs; '
                        'this server runs signatures of one input.')
    (key, spec), = inputs.items()
    if spec.dtype.name != 'string':
      raise LookupError(f'signature {name!r} takes {spec.dtype.name} input '
                        f'{key!r}; this server feeds serialized tf.Examples '
                        '(strings).')
    return key

  def run_signature(self, name: str, serialized: List[bytes]
                    ) -> Dict[str, np.ndarray]:
    """Runs signature `name` (not batched with other requests)."""
    import tensorflow as tf
    function = self.saved_model.signatures[name]
    outputs = function(**{self.signature_input(name): tf.constant(
        serialized, dtype=tf.string)})
    return {key: value.numpy() for key, value in outputs.items()}


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
  import tensorflow as tf
  # A gradient-boosted trees model needs TF Decision Forests' ops; without
  # TF-DF installed this does nothing, and DNN models load as before.
  forest_ops.register()
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
                      signature_info=info, saved_model=saved_model,
                      signature_defs=tf_serving.signature_defs(path))
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


# TF Serving's version states (GetModelStatusResponse).
AVAILABLE = 'AVAILABLE'
LOADING = 'LOADING'
END = 'END'
STATE_FORMAT_VERSION = 1


class ModelWatcher:
  """Serves the pushed versions: `stable`, optionally a `canary`.

  Without canary mode a newer push replaces the served version (TF
  Serving's latest-version policy). In canary mode (`canary=True`) a newer
  push becomes the canary, beside stable, until `promote` or `rollback`;
  a still newer push replaces the canary. A rolled back version is
  retired: never loaded again, also after a restart, because the labels
  and the retired versions are kept in `state_path` (JSON), which a
  restart in canary mode reads back.

  Args:
    serving_model_dir: `OUT/serving_model`.
    poll_seconds: How often to look for a new version.
    on_load: Called with (model, None) after a version is loaded, or (None,
      refusal text) when one is refused; for metrics and logs.
    canary: New pushes become the canary.
    canary_share: The canary's share of unaddressed requests.
    state_path: Where the labels are kept; None: nowhere.
    on_labels: Called after any label change (load, promote, rollback).
  """

  def __init__(self, serving_model_dir: str, poll_seconds: float,
               on_load: Optional[Callable[[Optional[LoadedModel],
                                           Optional[str]], None]] = None,
               canary: bool = False, canary_share: float = 0.0,
               state_path: Optional[str] = None,
               on_labels: Optional[Callable[[], None]] = None):
    self.serving_model_dir = serving_model_dir
    self.poll_seconds = poll_seconds
    self.canary = canary
    self.state_path = state_path
    self.router = routing.Router(canary_share)
    self._on_load = on_load or (lambda model, refusal: None)
    self._on_labels = on_labels or (lambda: None)
    self._refused: Dict[int, Refusal] = {}
    self._retired: Dict[int, str] = {}
    self._unloaded: Dict[int, str] = {}
    self._seen: Dict[int, Fingerprint] = {}
    self.loading: Optional[int] = None
    # Label changes come from the poll thread and from admin requests.
    self._change = threading.RLock()
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None

  @property
  def current(self) -> LoadedModel:
    """The stable model; read it once per request."""
    model = self.router.get(routing.STABLE)
    if model is None:
      raise NoServableModel('no model loaded yet; call load_newest() first.')
    return model

  @property
  def refused(self) -> Dict[int, str]:
    """Version -> why it is not served."""
    return {v: r.reason for v, r in sorted(self._refused.items())}

  @property
  def retired(self) -> Dict[int, str]:
    """Rolled back version -> when and why; never loaded again."""
    return dict(sorted(self._retired.items()))

  def status(self) -> List[Tuple[int, str, str, str]]:
    """(version, state, error code, message) of every version this server
    has loaded, refused, retired or is loading; newest first, as TF
    Serving lists them."""
    entries: Dict[int, Tuple[str, str, str]] = {}
    for version in self._unloaded:
      entries[version] = (END, 'OK', '')
    for version, reason in self._retired.items():
      entries[version] = (END, 'CANCELLED', reason)
    for version, refusal in self._refused.items():
      entries[version] = (END, 'FAILED_PRECONDITION', refusal.reason)
    for model in self.router.labels().values():
      entries[model.version] = (AVAILABLE, 'OK', '')
    loading = self.loading
    if loading is not None:
      entries[loading] = (LOADING, 'OK', '')
    return [(v, *entries[v]) for v in sorted(entries, reverse=True)]

  def _try_load(self, version: int, path: str, files: Fingerprint
                ) -> Optional[LoadedModel]:
    self.loading = version
    try:
      model = load(path, version)
    except (serving_contract.ContractError, LoadError) as e:
      reason = str(e)
    except Exception as e:
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
    self._unloaded.pop(version, None)
    self._on_load(model, None)
    return model

  def _load_first(self, candidates: List[Tuple[int, str]]
                  ) -> Optional[LoadedModel]:
    for version, path in candidates:
      model = self._try_load(version, path, fingerprint(path))
      if model is not None:
        return model
    return None

  def load_newest(self) -> LoadedModel:
    """At start: loads stable (and in canary mode the canary) and returns
    stable: the newest servable version, or in canary mode the labels kept
    in `state_path` while they can be loaded.

    Raises:
      NoServableModel: None can; the message gives each version's reason.
    """
    state = self._read_state()
    self._retired = {int(v): str(r)
                     for v, r in state.get('retired', {}).items()}
    found = [(v, p) for v, p in versions(self.serving_model_dir)
             if v not in self._retired]
    if not found:
      retired = (f' (versions {sorted(self._retired)} were rolled back; '
                 f'see {self.state_path})' if self._retired else '')
      raise NoServableModel(
          f'no pushed model under {self.serving_model_dir}{retired}: run the '
          'pipeline until a model is blessed and pushed (make run), or '
          'pass the --output-dir of such a run.')
    paths = dict(found)
    newest_first = list(reversed(found))
    stable = canary = None
    if self.canary:
      kept = state.get(routing.STABLE)
      if kept in paths:
        stable = self._load_first([(kept, paths[kept])])
      kept_canary = state.get(routing.CANARY)
      if kept_canary in paths and kept_canary != kept:
        canary = self._load_first([(kept_canary, paths[kept_canary])])
    if stable is None:
      stable = self._load_first(newest_first)
    if stable is None:
      reasons = '; '.join(f'version {v}: {r}'
                          for v, r in self.refused.items())
      raise NoServableModel(
          f'no servable model under {self.serving_model_dir}: {reasons}')
    with self._change:
      self.router.set(routing.STABLE, stable)
      if canary is not None:
        self.router.set(routing.CANARY, canary)
      self._labels_changed()
    logging.info('Serving %s version %d from %s%s', stable.name,
                 stable.version, stable.path,
                 f'; canary version {canary.version}' if canary else '')
    return stable

  def _newest_known(self) -> int:
    known = [m.version for m in self.router.labels().values()]
    known += list(self._retired)
    return max(known, default=-1)

  def poll(self) -> Optional[LoadedModel]:
    """Looks once for a newer version; loads and labels it when ready.

    A version is ready once its files are the same as at the previous poll.
    Returns the new model, or None when nothing was loaded.
    """
    newest = self._newest_known()
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
        self._add(model)
        return model
    return None

  def _add(self, model: LoadedModel) -> None:
    """A newly loaded version: the canary in canary mode, else stable."""
    label = routing.CANARY if self.canary else routing.STABLE
    with self._change:
      previous = self.router.set(label, model)
      if previous is not None:
        self._unloaded[previous.version] = ''
      self._labels_changed()
    if previous is None:
      logging.info('Serving %s version %d as %s (%s)', model.name,
                   model.version, label, model.path)
    else:
      logging.info('Swapped %s version %d for version %d as %s (%s)',
                   model.name, previous.version, model.version, label,
                   model.path)

  def promote(self) -> Tuple[LoadedModel, Optional[LoadedModel]]:
    """The canary becomes stable; (new stable, the stable it replaced).

    Raises:
      LookupError: There is no canary.
    """
    with self._change:
      stable, previous = self.router.promote()
      if previous is not None:
        self._unloaded[previous.version] = ''
      self._labels_changed()
    logging.info('Promoted version %d to stable%s', stable.version,
                 f' (replacing {previous.version})' if previous else '')
    return stable, previous

  def rollback(self) -> LoadedModel:
    """Removes the canary and retires its version; returns it.

    Raises:
      LookupError: There is no canary.
    """
    with self._change:
      canary = self.router.rollback()
      self._retired[canary.version] = (
          f'rolled back at {_now()}; it is not loaded again (remove it '
          f'from the "retired" list in {self.state_path} and restart to '
          'serve it again)')
      self._labels_changed()
    logging.info('Rolled back canary version %d', canary.version)
    return canary

  def _labels_changed(self) -> None:
    self._write_state()
    self._on_labels()

  def _read_state(self) -> Dict[str, Any]:
    if not self.state_path or not os.path.isfile(self.state_path):
      return {}
    try:
      with open(self.state_path, encoding='utf-8') as f:
        state = json.load(f)
      if not isinstance(state, dict) or not isinstance(
          state.get('retired', {}), dict):
        raise ValueError('not an object with a "retired" object')
    except (OSError, ValueError) as e:
      logging.warning('Ignoring the serving labels in %s (%s); serving the '
                      'newest version.', self.state_path, e)
      return {}
    return state

  def _write_state(self) -> None:
    if not self.state_path:
      return
    labels = self.router.labels()
    state = {'format_version': STATE_FORMAT_VERSION,
             routing.STABLE: getattr(labels.get(routing.STABLE), 'version',
                                     None),
             routing.CANARY: getattr(labels.get(routing.CANARY), 'version',
                                     None),
             'retired': {str(v): r for v, r in self.retired.items()}}
    folder = os.path.dirname(self.state_path) or '.'
    try:
      os.makedirs(folder, exist_ok=True)
      fd, temporary = tempfile.mkstemp(dir=folder, suffix='.tmp')
      with os.fdopen(fd, 'w', encoding='utf-8') as f:
        json.dump(state, f, indent=1, sort_keys=True)
      os.replace(temporary, self.state_path)  # Atomic: never half written.
    except OSError as e:
      logging.warning('Cannot keep the serving labels in %s: %s',
                      self.state_path, e)

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


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime(
      '%Y-%m-%dT%H:%M:%SZ')
