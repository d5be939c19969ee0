"""ServingCheck: the candidate answers through the REST server before a push.

The Evaluator scores serialized test examples with `serving_default` in its
own process. A client does something else: it sends raw rows as JSON to the
REST server (`python -m serving`), which checks them against the serving
contract (`assets.extra/serving_contract.json`), encodes them as
tf.Examples and scores them. A model can pass the first and fail the
second: a SavedModel the server's loader refuses, a contract that does not
match the model (a feature missing from it, a wrong type), a graph that
fails on the server's batches. This component runs the second path before
the Pusher:

1. It copies the candidate's serving SavedModel into a temporary output dir
   (`<tmp>/serving_model/1/`) and starts the real server on it, in a fresh
   process: `python -m serving --output-dir <tmp> --port <free port>`. The
   component does not import `serving/` (tests/test_architecture.py); the
   subprocess runs the server's own code, as installed.
2. Meanwhile it takes the first `max_rows` rows of the test split (the rows
   the Evaluator judged) and scores their serialized examples with
   `serving_default` here: the Evaluator's way, the reference.
3. It turns the same rows into what a client sends (each contract feature
   and ignored column as one JSON value, no label, empty cells left out),
   POSTs them to `/v1/models/<name>:predict` over HTTP, and compares each
   row's answer with the reference: every numeric output (scores,
   probability, a regression's value), the classes, and a binary model's
   `decision` against the contract's threshold.
4. It stops the server and writes TFX's `InfraBlessing` (the
   InfraValidator's artifact: custom property `blessed` 1 or 0, and an
   `INFRA_BLESSED` or `INFRA_NOT_BLESSED` file), with `serving_check.json`
   beside it holding the details.

The Pusher takes that artifact as its `infra_blessing` input, so TFX's own
Pusher refuses a model the server cannot load, that errors, or whose
answers differ from `serving_default`'s by more than `tolerance` (scaled:
|a - b| / max(1, |b|)); the run goes on and says why. A model the
Evaluator did not bless is not checked (the Pusher refuses it anyway).
TFX's InfraValidator needs a Docker daemon or Kubernetes; this needs
neither, and works under every runner: the local and Airflow ones, the
Dataflow runner and Kubeflow V2, whose image carries the same package.

A gradient-boosted trees model loads here too: TF Decision Forests' ops are
registered before the reference load (models/forest_ops.py), and the server
registers them itself.
"""

# No `from __future__ import annotations`: TFX's @component reads the
# signature's annotations as types, not strings.
import dataclasses
import itertools
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any
from typing import Dict
from typing import Iterable
from typing import List
from typing import Mapping
from typing import Optional
from typing import Sequence
import urllib.error
import urllib.request

from absl import logging
import numpy as np
import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact
from tfx.types import standard_artifacts
from tfx.utils import io_utils
from tfx.utils import path_utils

from models import features
from models import forest_ops
from models import serving_contract
from pipeline.components import attributions
from pipeline.facts import components as component_ids

SERVING_CHECK = component_ids.SERVING_CHECK
# The name of the component's output parameter below.
OUTPUT_KEY = component_ids.SERVING_CHECK_KEY
# TFX's InfraValidator writes these (tfx/components/infra_validator/
# executor.py); the Pusher reads `blessed`.
BLESSED = 'blessed'
BLESSED_FILE = 'INFRA_BLESSED'
NOT_BLESSED_FILE = 'INFRA_NOT_BLESSED'
RESULT_FILE = 'serving_check.json'
CHECKED = component_ids.CHECKED_KEY
ROWS_CHECKED = component_ids.ROWS_CHECKED_KEY
MAX_DIFFERENCE = component_ids.MAX_DIFFERENCE_KEY
NOTE = component_ids.CHECK_NOTE_KEY

# `python -m serving`: the REST server (serving/server.py).
SERVER_MODULE = 'serving'
DEFAULT_MAX_ROWS = 200
# Scaled difference allowed between the server's answer and serving_default's.
# The server writes float32 values that read back exactly, so a sound model
# differs by 0; batches of other sizes may move the last bits.
DEFAULT_TOLERANCE = 1e-4
# The server imports TensorFlow and loads the model: seconds on an idle
# machine, minutes on a loaded one.
DEFAULT_START_TIMEOUT_S = 600
REQUEST_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 30.0
# Rows per request: several requests, each a batch, as clients send them.
ROWS_PER_REQUEST = 64
# A free port is chosen, then bound by the server: another process may take
# it in between; the server then exits 1 and is started again.
PORT_TRIES = 3
MAX_NOTE_CHARS = 600
SERVING_VERSION = 1


@dataclasses.dataclass
class CheckResult:
  """What the check found.

  Attributes:
    passed: The model may be pushed.
    checked: False when the check did not run (the model was not blessed).
    rows: Rows sent to the server and compared.
    max_difference: The largest scaled difference over rows and outputs;
      None when nothing was compared.
    note: One line: what was checked, or why the push is blocked.
    worst_row: The row (in the split) of `max_difference`.
    seconds: How long the server took to answer its first status request,
      and the whole check.
  """
  passed: bool
  checked: bool
  rows: int = 0
  max_difference: Optional[float] = None
  note: str = ''
  worst_row: Optional[int] = None
  seconds: Dict[str, float] = dataclasses.field(default_factory=dict)


class CheckFailed(Exception):
  """The model cannot be pushed; the message says why, in one line."""


# --- Rows as a client sends them -------------------------------------------


def _value(feature: tf.train.Feature) -> Any:
  """A tf.Example feature's values as JSON: one value, a list, or None."""
  kind = feature.WhichOneof('kind')
  if kind is None:
    return None
  values = list(getattr(feature, kind).value)
  if kind == 'bytes_list':
    values = [v.decode('utf-8', 'replace') for v in values]
  if not values:
    return None  # An empty cell.
  return values[0] if len(values) == 1 else values


def raw_row(example: tf.train.Example,
            contract: serving_contract.Contract) -> Dict[str, Any]:
  """The JSON row a client sends for a test example.

  The contract's features and ignored columns, one value each; the label
  and columns the contract does not know are left out (a client is told
  the contract), and so are empty cells.
  """
  sent = {f.name for f in contract.features} | set(contract.ignored)
  row = {}
  for name, feature in sorted(example.features.feature.items()):
    if name not in sent:
      continue
    value = _value(feature)
    if value is not None:
      row[name] = value
  return row


# --- The reference: serving_default on serialized examples -----------------


def reference_outputs(model_dir: str, serialized: Sequence[bytes],
                      contract: serving_contract.Contract
                      ) -> Dict[str, np.ndarray]:
  """serving_default's outputs for the rows, in this process.

  Raises:
    CheckFailed: TensorFlow cannot load the model or score the rows.
  """
  forest_ops.register()  # A gradient-boosted trees model needs TF-DF's ops.
  try:
    loaded = tf.saved_model.load(model_dir)
    signature = loaded.signatures[contract.signature]
    outputs = signature(**{contract.input: tf.constant(list(serialized))})
  except (tf.errors.OpError, KeyError, OSError, ValueError,
          TypeError) as e:
    raise CheckFailed(
        f'{contract.signature} cannot score the test rows here, as the '
        f'Evaluator does: {type(e).__name__}: {_first_line(e)}') from None
  return {name: value.numpy() for name, value in outputs.items()}


# --- Comparing answers -----------------------------------------------------


def _scaled(served: np.ndarray, expected: np.ndarray) -> np.ndarray:
  return np.abs(served - expected) / np.maximum(1.0, np.abs(expected))


def _served_output(row: Any, name: str, contract: serving_contract.Contract,
                   where: str) -> Any:
  """One output of one answered row. TF Serving's row format: {output:
  value}, or with one output the value itself."""
  if len(contract.outputs) == 1:
    return row
  if not isinstance(row, Mapping) or name not in row:
    raise CheckFailed(f'{where}: the server\'s answer has no {name!r} '
                      f'(it answered {json.dumps(row)[:200]}).')
  return row[name]


def compare(reference: Mapping[str, np.ndarray], answers: Sequence[Any],
            contract: serving_contract.Contract, tolerance: float,
            row_numbers: Optional[Sequence[int]] = None) -> CheckResult:
  """Compares the server's answered rows with serving_default's outputs.

  Args:
    reference: serving_default's outputs, [rows, ...] per output name.
    answers: The server's `predictions`, one per row, in order.
    contract: The model's serving contract (outputs, classes, threshold).
    tolerance: The largest scaled difference allowed.
    row_numbers: Each row's number in the split, for messages.

  Returns:
    A passed result, with the largest difference.

  Raises:
    CheckFailed: A row's answer is missing an output, or differs.
  """
  count = len(answers)
  numbers = list(row_numbers) if row_numbers is not None else list(
      range(count))
  for name in contract.outputs:
    if name not in reference:
      raise CheckFailed(f'serving_default returns {sorted(reference)}, not '
                        f'the contract\'s output {name!r}.')
    if len(reference[name]) != count:
      raise CheckFailed(f'the server answered {count} rows for '
                        f'{len(reference[name])} sent.')
  worst, worst_row, worst_text = 0.0, None, ''
  differing = 0
  wrong_decision = None
  for i, row in enumerate(answers):
    where = f'test row {numbers[i]}'
    row_differs = False
    for name in contract.outputs:
      expected = reference[name][i]
      served = _served_output(row, name, contract, where)
      if expected.dtype.kind in ('S', 'O', 'U'):
        wanted = [v.decode('utf-8', 'replace') if isinstance(v, bytes)
                  else str(v) for v in np.asarray(expected).reshape(-1)]
        if list(np.asarray(served, dtype=object).reshape(-1)) != wanted:
          raise CheckFailed(f'{where}: the server answered {name} '
                            f'{served!r}, serving_default {wanted!r}.')
        continue
      try:
        # The server writes each float32 as the shortest text that reads
        # back as it (TF Serving's way): read back as float32, a sound
        # model's answer is the very value.
        served_values = np.asarray(
            served, dtype=expected.dtype if expected.dtype.kind == 'f'
            else np.float64).astype(np.float64).reshape(-1)
      except (TypeError, ValueError):
        raise CheckFailed(f'{where}: the server\'s {name} is not numeric: '
                          f'{json.dumps(served)[:200]}.') from None
      expected_values = np.asarray(expected, dtype=np.float64).reshape(-1)
      if served_values.shape != expected_values.shape:
        raise CheckFailed(
            f'{where}: the server answered {served_values.size} values of '
            f'{name}, serving_default {expected_values.size}.')
      if not np.array_equal(np.isnan(served_values),
                            np.isnan(expected_values)):
        raise CheckFailed(f'{where}: {name} is NaN in one answer only.')
      finite = ~np.isnan(expected_values)
      if not finite.any():
        continue
      difference = float(np.max(_scaled(served_values[finite],
                                         expected_values[finite])))
      if difference > tolerance:
        row_differs = True
      if difference > worst:
        worst, worst_row = difference, numbers[i]
        worst_text = (f'{name} {_shown(served_values)} where '
                      f'serving_default gives {_shown(expected_values)}')
    if contract.task == features.BINARY and wrong_decision is None:
      wrong_decision = _decision_problem(row, reference, i, contract,
                                         tolerance, where)
    differing += row_differs
  if worst > tolerance:
    raise CheckFailed(
        f'{differing} of {count} test rows differ from serving_default by '
        f'more than {tolerance:g}; the most at test row {worst_row}: '
        f'{worst_text} (difference {worst:.3g}).')
  if wrong_decision is not None:
    raise CheckFailed(wrong_decision)
  return CheckResult(passed=True, checked=True, rows=count,
                     max_difference=worst, worst_row=worst_row)


def _decision_problem(row: Any, reference: Mapping[str, np.ndarray], i: int,
                      contract: serving_contract.Contract, tolerance: float,
                      where: str) -> Optional[str]:
  """What is wrong with a binary answer's `decision`, if anything: it is
  the positive class from the contract's threshold on P(positive) (a row
  within `tolerance` of the threshold may go either way)."""
  if not isinstance(row, Mapping) or 'decision' not in row:
    return (f'{where}: the server\'s answer has no decision for this '
            'binary model.')
  probability = float(np.asarray(reference['probability'][i]).reshape(-1)[0])
  threshold = contract.threshold()
  expected = contract.classes[int(probability >= threshold)]
  if row['decision'] != expected and abs(probability - threshold) > (
      tolerance):
    return (f'{where}: the server decided {row["decision"]!r}, but '
            f'P(positive) {probability:.6g} against the threshold '
            f'{threshold:.6g} gives {expected!r}.')
  return None


def _shown(values: np.ndarray) -> str:
  shown = ', '.join(f'{v:.6g}' for v in values[:4])
  return f'[{shown}{", ..." if values.size > 4 else ""}]'


# How a TensorFlow error starts: where it was raised, not what is wrong.
_TF_NOISE = ('Graph execution error:', 'Detected at node',
             '<stack traces unavailable>', '[[', 'File "', '{{function_node')


def _first_line(error: BaseException) -> str:
  """The line of an error that says what is wrong."""
  text = getattr(error, 'message', None) or str(error)
  for line in text.splitlines():
    line = line.strip()
    if line and not line.startswith(_TF_NOISE):
      return line.split(' [[')[0]
  return text.strip() or repr(error)


# --- The server, in a fresh process ----------------------------------------


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
    sock.bind(('127.0.0.1', 0))
    return sock.getsockname()[1]


# `python -m serving`, after asking Linux for SIGTERM when the process that
# started it dies, so that a killed run leaves no server behind. Done in
# the new process itself: a `preexec_fn` runs between fork and exec, which
# may deadlock in a process with threads (the runners run components in
# threads). Elsewhere prctl does not exist and the server just runs.
_SERVER_BOOTSTRAP = (
    'import ctypes, runpy, signal, sys\n'
    'try:\n'
    '  ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n'
    'except (OSError, AttributeError):\n'
    '  pass  # Not Linux.\n'
    f'sys.argv[0] = {SERVER_MODULE!r}\n'
    f'runpy.run_module({SERVER_MODULE!r}, run_name="__main__", '
    'alter_sys=True)\n')


class Server:
  """`python -m serving` on a folder with the candidate as its one version.

  Args:
    output_dir: The folder whose `serving_model/` holds the model.
    log_path: Where the server's stdout and stderr go.
    port: Its port on 127.0.0.1.
  """

  def __init__(self, output_dir: str, log_path: str, port: int):
    self.output_dir = output_dir
    self.log_path = log_path
    self.port = port
    self.started = time.monotonic()
    with open(log_path, 'w', encoding='utf-8') as log:
      self.process = subprocess.Popen(
          [sys.executable, '-c', _SERVER_BOOTSTRAP, '--output-dir',
           output_dir, '--host', '127.0.0.1', '--port', str(port),
           # One version, never replaced: no need to look for new pushes.
           '--poll-seconds', '3600'],
          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
          env=dict(os.environ), start_new_session=True)

  @property
  def url(self) -> str:
    return f'http://127.0.0.1:{self.port}'

  def log_text(self) -> str:
    try:
      with open(self.log_path, encoding='utf-8', errors='replace') as f:
        return f.read()
    except OSError:
      return ''

  def last_line(self) -> str:
    """Its `SERVER FAILED:` line (exit 3: why no version can be served),
    else the last line it wrote."""
    lines = [line.strip() for line in self.log_text().splitlines()
             if line.strip()]
    failed = [line for line in lines if line.startswith('SERVER FAILED:')]
    return failed[-1] if failed else (lines[-1] if lines else 'no output')

  def exit_reason(self) -> str:
    return (f'the server (python -m {SERVER_MODULE}) exited with code '
            f'{self.process.returncode}: {self.last_line()}')

  def port_taken(self) -> bool:
    return (self.process.returncode == 1 and
            'address already in use' in self.log_text().lower())

  def wait_ready(self, model_name: str, timeout_s: float) -> float:
    """Waits until the status route lists the model AVAILABLE.

    Returns:
      Seconds since the start.

    Raises:
      CheckFailed: The server exited (it cannot load the model) or did not
        answer in time.
    """
    deadline = self.started + timeout_s
    status_url = f'{self.url}/v1/models/{model_name}'
    while True:
      if self.process.poll() is not None:
        raise CheckFailed(self.exit_reason())
      try:
        with urllib.request.urlopen(status_url, timeout=10) as answer:
          status = json.load(answer)
        states = [entry.get('state') for entry in
                  status.get('model_version_status', [])]
        if 'AVAILABLE' in states:
          return time.monotonic() - self.started
      except (urllib.error.URLError, ConnectionError, TimeoutError,
              ValueError):
        pass  # Not listening yet.
      if time.monotonic() > deadline:
        raise CheckFailed(
            f'the server (python -m {SERVER_MODULE}) did not serve the '
            f'model within {timeout_s:.0f} s; its last line: '
            f'{self.last_line()}')
      time.sleep(0.5)

  def predict(self, model_name: str, rows: List[Dict[str, Any]],
              first_row: int) -> List[Any]:
    """POSTs rows to :predict; the answered `predictions`.

    Raises:
      CheckFailed: The server refused the rows or failed.
    """
    body = json.dumps({'instances': rows}).encode('utf-8')
    request = urllib.request.Request(
        f'{self.url}/v1/models/{model_name}:predict', data=body,
        headers={'Content-Type': 'application/json'}, method='POST')
    span = f'test rows {first_row}-{first_row + len(rows) - 1}'
    try:
      with urllib.request.urlopen(request,
                                  timeout=REQUEST_TIMEOUT_S) as answer:
        result = json.load(answer)
    except urllib.error.HTTPError as e:
      text = e.read().decode('utf-8', 'replace')
      try:
        text = json.loads(text).get('error', text)
      except (ValueError, AttributeError):
        pass
      raise CheckFailed(f'the server answered HTTP {e.code} to {span}: '
                        f'{text}') from None
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
      reason = (self.exit_reason() if self.process.poll() is not None
                else f'{type(e).__name__}: {e}')
      raise CheckFailed(f'the server did not answer {span}: {reason}'
                        ) from None
    predictions = result.get('predictions') if isinstance(result,
                                                           dict) else None
    if not isinstance(predictions, list) or len(predictions) != len(rows):
      raise CheckFailed(f'the server answered {span} with '
                        f'{json.dumps(result)[:200]}, not one prediction '
                        'per row.')
    return predictions

  def stop(self) -> None:
    """SIGTERM to the server's process group; SIGKILL if it lingers."""
    if self.process.poll() is None:
      try:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(STOP_TIMEOUT_S)
      except subprocess.TimeoutExpired:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
      except ProcessLookupError:
        pass


def start_server(output_dir: str, log_path: str) -> Server:
  return Server(output_dir, log_path, _free_port())


# --- The check -------------------------------------------------------------


def check(model_dir: str, records: Iterable[bytes], *,
          max_rows: int = DEFAULT_MAX_ROWS,
          tolerance: float = DEFAULT_TOLERANCE,
          start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
          workdir: Optional[str] = None) -> CheckResult:
  """Serves the model with the REST server and compares its answers.

  Args:
    model_dir: The candidate's serving SavedModel (local or gs://).
    records: Serialized raw tf.Examples of the test split, label included.
    max_rows: At most this many rows (the first ones) are checked.
    tolerance: The largest scaled difference allowed.
    start_timeout_s: How long the server may take to serve the model.
    workdir: Where the copy of the model and the server's log go (a
      temporary folder, removed afterwards, when None).

  Returns:
    The result; `passed` is False, with the reason in `note`, when the
    model cannot be served, errors or answers differently.
  """
  started = time.monotonic()
  with tempfile.TemporaryDirectory(prefix='serving-check-') as temporary:
    folder = workdir or temporary
    try:
      result = _check(model_dir, records, folder, max_rows, tolerance,
                      start_timeout_s)
    except CheckFailed as e:
      result = CheckResult(passed=False, checked=True,
                           note=_cut(str(e)))
    result.seconds['total'] = round(time.monotonic() - started, 3)
    return result


def _check(model_dir: str, records: Iterable[bytes], folder: str,
           max_rows: int, tolerance: float,
           start_timeout_s: float) -> CheckResult:
  if max_rows < 1:
    raise ValueError(f'max_rows must be at least 1, got {max_rows}.')
  serialized = list(itertools.islice(records, max_rows))
  if not serialized:
    raise ValueError('the test split holds no rows to check the model on.')
  # The server serves <output-dir>/serving_model/<version>/ from local disk;
  # the model may be on gs://.
  local_model = os.path.join(folder, 'serving_model', str(SERVING_VERSION))
  io_utils.copy_dir(model_dir, local_model)
  try:
    contract = serving_contract.read(local_model)
  except serving_contract.ContractError as e:
    raise CheckFailed(f'no usable serving contract: {e}') from None
  server = start_server(folder, os.path.join(folder, 'server.log'))
  try:
    # The server imports TensorFlow and loads the model meanwhile.
    reference = reference_outputs(local_model, serialized, contract)
    rows = [raw_row(tf.train.Example.FromString(s), contract)
            for s in serialized]
    for attempt in range(PORT_TRIES):
      try:
        ready = server.wait_ready(contract.dataset, start_timeout_s)
        break
      except CheckFailed:
        if not server.port_taken() or attempt == PORT_TRIES - 1:
          raise
        server = start_server(folder, server.log_path)
    answers: List[Any] = []
    for start in range(0, len(rows), ROWS_PER_REQUEST):
      answers.extend(server.predict(
          contract.dataset, rows[start:start + ROWS_PER_REQUEST], start))
  finally:
    server.stop()
  result = compare(reference, answers, contract, tolerance)
  result.seconds['server_ready'] = round(ready, 3)
  decisions = (', decisions agree at threshold '
               f'{contract.threshold():.4g}'
               if contract.task == features.BINARY else '')
  result.note = (
      f'{result.rows} test rows sent as JSON to the REST server (python -m '
      f'{SERVER_MODULE}) answer as serving_default does: max difference '
      f'{result.max_difference:.3g} (tolerance {tolerance:g}){decisions}')
  return result


def _cut(text: str) -> str:
  text = ' '.join(text.split())
  return text if len(text) <= MAX_NOTE_CHARS else (
      text[:MAX_NOTE_CHARS - 3] + '...')


def not_blessed() -> CheckResult:
  return CheckResult(
      passed=False, checked=False,
      note='skipped: the Evaluator did not bless the model, so it is not '
      'pushed anyway')


# --- The artifact ----------------------------------------------------------


def record(result: CheckResult, blessing: artifact.Artifact) -> None:
  """Writes the InfraBlessing: marker file, details, custom properties."""
  uri = blessing.uri
  tf.io.gfile.makedirs(uri)
  marker = BLESSED_FILE if result.passed else NOT_BLESSED_FILE
  io_utils.write_string_file(os.path.join(uri, marker), '')
  details = dataclasses.asdict(result)
  if details['max_difference'] is not None and not math.isfinite(
      details['max_difference']):
    details['max_difference'] = None
  io_utils.write_string_file(os.path.join(uri, RESULT_FILE),
                             json.dumps(details, indent=1) + '\n')
  blessing.set_int_custom_property(BLESSED, int(result.passed))
  blessing.set_int_custom_property(CHECKED, int(result.checked))
  blessing.set_int_custom_property(ROWS_CHECKED, result.rows)
  if result.max_difference is not None:
    blessing.set_float_custom_property(MAX_DIFFERENCE,
                                       float(result.max_difference))
  blessing.set_string_custom_property(NOTE, result.note)


def read(uri: str) -> Dict[str, Any]:
  """The details a ServingCheck's blessing at `uri` holds."""
  with tf.io.gfile.GFile(os.path.join(uri, RESULT_FILE)) as f:
    return json.load(f)


@component
def ServingCheck(
    model: InputArtifact[standard_artifacts.Model],
    examples: InputArtifact[standard_artifacts.Examples],
    model_blessing: InputArtifact[standard_artifacts.ModelBlessing],
    blessing: OutputArtifact[standard_artifacts.InfraBlessing],
    split: Parameter[str] = 'test',
    max_rows: Parameter[int] = DEFAULT_MAX_ROWS,
    tolerance: Parameter[float] = DEFAULT_TOLERANCE,
    start_timeout_seconds: Parameter[int] = DEFAULT_START_TIMEOUT_S,
) -> None:
  """Serves the candidate with the REST server and compares its answers.

  Args:
    model: The Trainer's model (its serving SavedModel is served).
    examples: ExampleGen's examples; the first `max_rows` of `split`.
    model_blessing: The Evaluator's; an unblessed model is not checked.
    blessing: Gets `blessed` (1 or 0) and what the check found; the
      Pusher's `infra_blessing`.
    split: The split to send: the Evaluator's test split.
    max_rows: At most this many rows.
    tolerance: The largest scaled difference allowed.
    start_timeout_seconds: How long the server may take to serve the model.
  """
  if model_blessing.get_int_custom_property(BLESSED) != 1:
    result = not_blessed()
  else:
    result = check(path_utils.serving_model_path(model.uri),
                   attributions.split_records(examples, split),
                   max_rows=max_rows, tolerance=tolerance,
                   start_timeout_s=start_timeout_seconds)
  record(result, blessing)
  if result.passed:
    logging.info('ServingCheck passed: %s', result.note)
  else:
    logging.warning('ServingCheck: not pushed: %s', result.note)
