"""The REST app: TF Serving's REST API over the served versions, feedback,
the admin endpoints and /metrics.

| request | answer |
| --- | --- |
| `GET /v1/models/<name>` | `{"model_version_status": [{"version", "state", "status"}, ...]}`, newest first |
| `GET /v1/models/<name>/metadata` | `{"model_spec", "metadata": {"signature_def": {"signature_def": {...}}, "serving_contract": {...}}}` |
| `POST /v1/models/<name>:predict` | `{"instances": [...]}` -> `{"predictions": [...]}`; `{"inputs": ...}` -> `{"outputs": ...}` |
| `POST /v1/models/<name>:classify` | `{"examples": [...], "context": {...}}` -> `{"results": [[[label, score], ...], ...]}` |
| `POST /v1/models/<name>:regress` | the same -> `{"results": [value, ...]}` |
| `POST /v1/models/<name>:feedback` | `{"labels": [{"prediction_id", "label"}, ...]}` -> `{"matched", "unmatched"}` |
| `GET /admin/labels`, `POST /admin/promote`, `/admin/rollback`, `/admin/canary_share` | the labels; from 127.0.0.1 only (serving/admin.py) |
| `GET /metrics` | Prometheus text format (serving/metrics.py) |

`/versions/<v>` or `/labels/<stable|canary>` may follow the name, as in TF
Serving; without either, predict, classify and regress are split between
stable and the canary (serving/routing.py), metadata answers for stable
and status lists every version. The request and answer shapes are TF
Serving's (serving/tf_serving.py). Every scoring answer carries the
version that scored it (`X-Model-Version`), its label (`X-Model-Label`)
and the request id its prediction ids are made of (`X-Request-Id`). A
binary model's answers add the decision at the model's threshold: a
`decision` value per predict row (a column in the columnar form), a
`decisions` list beside classify's `results`.

Errors are `{"error": "..."}`: 400 for a request that cannot be served
(TF Serving's code for a bad argument), 404 for an unknown model, version
or path, 405 for a wrong method, 413 for a body over 64 MB. A request is
checked in full before anything is scored; no body gets a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import re
import secrets
import time
from typing import Any
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

from absl import logging
import fastapi
from fastapi import responses
from fastapi.exceptions import RequestValidationError
import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from models import features
from serving import batching
from serving import feedback as feedback_lib
from serving import instances as instances_lib
from serving import metrics as metrics_lib
from serving import model_store
from serving import request_log as request_log_lib
from serving import routing
from serving import tf_serving

RequestError = instances_lib.RequestError
VERSION_HEADER = 'X-Model-Version'
LABEL_HEADER = 'X-Model-Label'
REQUEST_ID_HEADER = 'X-Request-Id'
# The largest request body read.
MAX_BODY_BYTES = 64 << 20
# Requests up to this size are parsed on the event loop.
SMALL_REQUEST_BYTES = 64 * 1024
PREDICT = tf_serving.PREDICT
CLASSIFY = tf_serving.CLASSIFY
REGRESS = tf_serving.REGRESS
FEEDBACK = 'feedback'
STATUS = 'status'
METADATA = 'metadata'
OTHER = 'other'
SCORING = (PREDICT, CLASSIFY, REGRESS)
POST_METHODS = (*SCORING, FEEDBACK)
# TF Serving's URL patterns (model_servers/http_rest_api_util.cc), except
# that a version may be any text here, so that a wrong one is named.
_POST_PATH = re.compile(
    r'/v1/models/([^/:]+)(?:/versions/([^/:]+)|/labels/([^/:]+))?'
    r':([A-Za-z_]+)', re.IGNORECASE)
_GET_PATH = re.compile(
    r'/v1/models(?:/([^/:]+))?(?:/versions/([^/:]+)|/labels/([^/:]+))?'
    r'(?:/(metadata))?', re.IGNORECASE)
_HINTS = {
    PREDICT: 'send {"instances": [{"feature": value, ...}]} or {"instances": '
             '[{"b64": "<base64 tf.Example>"}]}',
    CLASSIFY: 'send {"examples": [{"feature": value, ...}]}',
    REGRESS: 'send {"examples": [{"feature": value, ...}]}',
    FEEDBACK: 'send {"labels": [{"prediction_id": "...", "label": ...}]}',
}


class JsonAnswer(responses.Response):
  """JSON as TF Serving writes it: NaN and Infinity allowed, UTF-8."""
  media_type = 'application/json'

  def render(self, content: Any) -> bytes:
    # A lone surrogate from a request cannot be UTF-8: written as \\udXXX.
    return json.dumps(content, ensure_ascii=False, allow_nan=True,
                      separators=(',', ':')).encode('utf-8',
                                                    'backslashreplace')


def error_answer(status: int, message: str,
                 headers: Optional[Dict[str, str]] = None) -> JsonAnswer:
  return JsonAnswer({'error': message}, status_code=status, headers=headers)


async def read_body(request: fastapi.Request) -> bytes:
  """The request body, refused (413) beyond MAX_BODY_BYTES.

  A body sent without Content-Length (chunked) is read chunk by chunk and
  refused once it passes the limit, not after.
  """
  too_big = RequestError(
      f'request body over {MAX_BODY_BYTES >> 20} MB; send at most '
      f'{instances_lib.MAX_ROWS} rows per request.',
      instances_lib.TOO_MANY_ROWS, status=413)
  declared = request.headers.get('content-length', '')
  if declared.isdigit():
    if int(declared) > MAX_BODY_BYTES:
      raise too_big
    # The HTTP parser ends the body at the declared length.
    return await request.body()
  chunks, size = [], 0
  async for chunk in request.stream():
    size += len(chunk)
    if size > MAX_BODY_BYTES:
      raise too_big
    chunks.append(chunk)
  return b''.join(chunks)


def _task_error(model: model_store.LoadedModel, endpoint: str) -> None:
  """TF Serving's refusal of classify on a regression signature and of
  regress on a classification one; None when the task fits."""
  task = model.contract.task
  outputs = ', '.join(sorted(model.contract.outputs))
  if endpoint == CLASSIFY and task == features.REGRESSION:
    raise RequestError(
        'Expected classification signature outputs to contain at least one '
        f'of "classes" or "scores" (serving_default answers {outputs}); '
        f'model {model.name!r} is a regression model: use :regress or '
        ':predict.', instances_lib.UNKNOWN_SIGNATURE)
  if endpoint == REGRESS and task != features.REGRESSION:
    raise RequestError(
        f'Expected one output Tensor (serving_default answers {outputs}); '
        f'model {model.name!r} is a {task} classification model: use '
        ':classify or :predict.', instances_lib.UNKNOWN_SIGNATURE)


_TF_NOISE = ('Graph execution error:', 'Detected at node',
             '<stack traces unavailable>', '[[', 'File "', '{{function_node')


def tf_error(message: str) -> str:
  """The line of a TensorFlow error that says what is wrong.

  A graph's error starts with where it was raised ("Graph execution error:
  Detected at node ..."); TF Serving answers with the op's own message,
  e.g. "Could not parse example input, value: 'hello'".
  """
  for line in message.splitlines():
    line = line.strip()
    if line and not line.startswith(_TF_NOISE):
      return line.split(' [[')[0][:500]
  return message.strip()[:500]


def _example_row(serialized: bytes, where: str) -> Dict[str, Any]:
  """A serialized tf.Example as a row: one value per feature (a list for
  several, absent for none); bytes as text."""
  from google.protobuf import message
  from tensorflow.core.example import example_pb2
  try:
    example = example_pb2.Example.FromString(serialized)
  except message.DecodeError as e:
    raise RequestError(
        f'{where}: the bytes are not a serialized tf.Example ({e}); send '
        'tf.train.Example(...).SerializeToString(), base64-encoded.',
        instances_lib.BAD_VALUE) from None
  row: Dict[str, Any] = {}
  for name, feature in example.features.feature.items():
    kind = feature.WhichOneof('kind')
    values = list(getattr(feature, kind).value) if kind else []
    if kind == 'bytes_list':
      values = [v.decode('utf-8', 'replace') for v in values]
    if values:
      row[name] = values[0] if len(values) == 1 else values
  return row


@dataclasses.dataclass
class Job:
  """A checked scoring request.

  Attributes:
    endpoint: predict, classify or regress.
    signature: The signature to run.
    columnar: Answer in the columnar form.
    serialized: The tf.Examples to score.
    rows: The rows as checked against the contract; None for examples the
      contract could not read (the model decides, as in TF Serving).
    sent: Each row as sent (raw rows, or the examples' features).
  """
  endpoint: str
  signature: str
  columnar: bool
  serialized: List[bytes]
  rows: Optional[instances_lib.Rows]
  sent: List[Dict[str, Any]]


class Server:
  """The handlers' state: the watcher (versions and labels), the batcher,
  metrics, the request log, and the predictions awaiting labels.

  Args:
    watcher: The model watcher, its first version loaded.
    metrics: The server's metrics.
    request_log: Where scored rows are logged; None: nowhere.
    batcher: Scores concurrent requests together.
    memory: The predictions that labels may be joined with.
    quality_window: Labelled predictions per version in live quality.
    on_labels_changed: Called after an admin action changed the labels.
  """

  def __init__(self, watcher: model_store.ModelWatcher,
               metrics: metrics_lib.ServingMetrics,
               request_log: Optional[request_log_lib.RequestLog] = None,
               batcher: Optional[batching.Batcher] = None,
               memory: Optional[feedback_lib.PredictionMemory] = None,
               quality_window: int = feedback_lib.DEFAULT_WINDOW):
    self.watcher = watcher
    self.batcher = batcher or batching.Batcher()
    self.metrics = metrics
    self.request_log = request_log
    self.memory = memory or feedback_lib.PredictionMemory()
    self.quality = feedback_lib.LiveQuality(watcher.current.contract.task,
                                            quality_window)
    self._checkers: Dict[int, instances_lib.Checker] = {}
    # Request ids: random per process, then a counter. (uuid4 per request
    # reads os.urandom, which lets the batcher thread in early and halves
    # the rows per model call under load.)
    self._id_prefix = secrets.token_hex(8)
    self._ids = itertools.count()

  @property
  def router(self) -> routing.Router:
    return self.watcher.router

  def checker(self, model: model_store.LoadedModel) -> instances_lib.Checker:
    """The row checker of a version, built once."""
    checker = self._checkers.get(model.version)
    if checker is None or checker.contract is not model.contract:
      checker = instances_lib.Checker(model.contract)
      served = {m.version for m in self.router.labels().values()}
      self._checkers = {v: c for v, c in self._checkers.items()
                        if v in served}
      self._checkers[model.version] = checker
    return checker

  # --- Which version answers. ----------------------------------------------

  def _model_named(self, name: str) -> model_store.LoadedModel:
    stable = self.watcher.current
    if name != stable.name:
      raise RequestError(
          f'model {name!r} not found; this server serves {stable.name!r} '
          f'(GET /v1/models/{stable.name}).', instances_lib.UNKNOWN_MODEL,
          status=404)
    return stable

  def _served_versions(self) -> str:
    return ', '.join(f'{m.version} ({label})'
                     for label, m in self.router.labels().items())

  def resolve(self, name: str, version: Optional[str], label: Optional[str],
              endpoint: str) -> Tuple[model_store.LoadedModel, str]:
    """(model, its label) for a request; RequestError for another one."""
    stable = self._model_named(name)
    if version is not None:
      if not version.isdigit():
        raise RequestError(
            f'Failed to convert version: {version} to numeric; a version is '
            f'a whole number ({self._served_versions()}).',
            instances_lib.UNKNOWN_MODEL)
      model = self.router.by_version(int(version))
      if model is None:
        raise RequestError(
            f'Servable not found for request: Specific({name}, {version}); '
            f'version {version} of model {name!r} is not served: this server '
            f'serves {self._served_versions()} (leave /versions/... out to '
            'be routed).', instances_lib.UNKNOWN_MODEL, status=404)
      return model, self.router.label_of(model.version)
    if label is not None:
      model = self.router.get(label) if label in routing.LABELS else None
      if model is None:
        labels = ', '.join(self.router.labels())
        raise RequestError(
            f'Unrecognized servable version label: {label}; model {name!r} '
            f'has the labels {labels}.', instances_lib.UNKNOWN_LABEL)
      return model, label
    if endpoint in SCORING:
      return self.router.pick()
    return stable, routing.STABLE

  # --- Status and metadata. ------------------------------------------------

  def status_answer(self, name: str, version: Optional[str],
                    label: Optional[str]) -> Dict[str, Any]:
    """TF Serving's GetModelStatusResponse: one version or all of them."""
    self._model_named(name)
    entries = self.watcher.status()
    if label is not None:
      model, _ = self.resolve(name, None, label, STATUS)
      version = str(model.version)
    if version is not None:
      entries = [e for e in entries if str(e[0]) == version]
      if not entries:
        raise RequestError(
            f'Could not find version {version} of model {name}; see GET '
            f'/v1/models/{name} for its versions.',
            instances_lib.UNKNOWN_MODEL, status=404)
    return {'model_version_status': [tf_serving.status_entry(*e)
                                     for e in entries]}

  @staticmethod
  def metadata_answer(model: model_store.LoadedModel) -> Dict[str, Any]:
    """TF Serving's metadata, plus the serving contract's summary."""
    contract = model.contract
    binary = contract.task == features.BINARY
    summary = {
        'task': contract.task,
        'label': contract.label,
        'classes': list(contract.classes),
        'decision_threshold': model.decision_threshold if binary else None,
        'decision_rule': getattr(contract, 'decision_rule', None),
        'raw_features': [
            {'name': f.name, 'dtype': f.dtype, 'required': f.required,
             'treatment': f.treatment,
             'vocabulary_size': (None if f.vocabulary is None
                                 else len(f.vocabulary))}
            for f in contract.features],
        'ignored_columns': list(contract.ignored),
    }
    return tf_serving.metadata_answer(
        model.name, model.version, model.signature_defs,
        {'serving_contract': summary})

  # --- Scoring. ------------------------------------------------------------

  def _signature(self, model: model_store.LoadedModel, name: str) -> str:
    name = name or model.contract.signature
    if name.startswith('__') or name not in model.signature_defs:
      usable = ', '.join(sorted(s for s in model.signature_defs
                                if not s.startswith('__')))
      raise RequestError(
          f'Serving signature name: "{name}" not found in signature def; '
          f'model {model.name!r} has {usable} (or leave signature_name out '
          'for serving_default).', instances_lib.UNKNOWN_SIGNATURE)
    return name

  def parse(self, endpoint: str, model: model_store.LoadedModel,
            body: bytes) -> Job:
    """Reads and checks a scoring request; RequestError (400) if bad."""
    request = tf_serving.parse_body(body, _HINTS[endpoint])
    contract = model.contract
    checker = self.checker(model)
    if endpoint != PREDICT:
      signature, sent = tf_serving.parse_examples(request, endpoint)
      if (signature or contract.signature) != contract.signature:
        self._signature(model, signature)  # 400 when it does not exist.
        raise RequestError(
            f'signature {signature!r} cannot {endpoint}; this server '
            f'{endpoint}s with {contract.signature} (leave signature_name '
            'out).', instances_lib.UNKNOWN_SIGNATURE)
      _task_error(model, endpoint)
      rows = checker.check_rows(sent, names=[f'example {i}'
                                             for i in range(len(sent))])
      return Job(endpoint, contract.signature, False,
                 instances_lib.encode(rows.values, contract), rows, sent)
    parsed = tf_serving.parse_predict(request, contract.input)
    signature = self._signature(model, parsed.signature)
    if signature != contract.signature:
      if parsed.serialized is None:
        raise RequestError(
            f'raw rows are scored by {contract.signature} only; to run '
            f'signature {signature!r} send serialized tf.Examples, '
            '{"instances": [{"b64": "<base64>"}]}.',
            instances_lib.UNKNOWN_SIGNATURE)
      try:
        model.signature_input(signature)
      except LookupError as e:
        raise RequestError(str(e), instances_lib.UNKNOWN_SIGNATURE) from None
      return Job(endpoint, signature, parsed.columnar, parsed.serialized,
                 None, [])
    if parsed.rows is not None:
      rows = checker.check_rows(parsed.rows)
      return Job(endpoint, signature, parsed.columnar,
                 instances_lib.encode(rows.values, contract), rows,
                 parsed.rows)
    where = 'inputs[{}]' if parsed.columnar else 'instance {}'
    sent = [_example_row(s, where.format(i))
            for i, s in enumerate(parsed.serialized)]
    try:
      # TF Serving's form: what the contract cannot read still goes to the
      # model, which decides, as it would in TF Serving.
      rows = checker.check_rows(sent, strict=False,
                                names=[where.format(i)
                                       for i in range(len(sent))])
    except RequestError:
      rows = None
    return Job(endpoint, signature, parsed.columnar, parsed.serialized, rows,
               sent)

  async def _outputs(self, model: model_store.LoadedModel,
                     job: Job) -> Dict[str, np.ndarray]:
    import tensorflow as tf
    try:
      if job.signature == model.contract.signature:
        return await asyncio.wrap_future(
            self.batcher.submit(model, job.serialized))
      return await run_in_threadpool(model.run_signature, job.signature,
                                     job.serialized)
    except tf.errors.InvalidArgumentError as e:
      raise RequestError(f'the model refused the rows: {tf_error(e.message)}',
                         instances_lib.MODEL_ERROR) from None

  @staticmethod
  def _decisions(model: model_store.LoadedModel,
                 outputs: Dict[str, np.ndarray]) -> Optional[List[int]]:
    """Binary: the index of the class decided at the threshold."""
    if model.contract.task != features.BINARY:
      return None
    probability = outputs['probability'].reshape(-1)
    return (probability >= model.decision_threshold).astype(int).tolist()

  def _remember(self, model: model_store.LoadedModel, job: Job,
                outputs: Dict[str, np.ndarray], decided: Optional[List[int]],
                request_id: str) -> None:
    task = model.contract.task
    if task == features.REGRESSION:
      values = outputs['outputs'].reshape(-1).tolist()
      kept = [feedback_lib.Prediction(model.version, (v,)) for v in values]
    elif task == features.BINARY:
      probability = outputs['probability'].reshape(-1).tolist()
      kept = [feedback_lib.Prediction(model.version, (p,), d)
              for p, d in zip(probability, decided, strict=True)]
    else:
      scores = outputs['scores']
      kept = [feedback_lib.Prediction(model.version, tuple(row.tolist()),
                                      int(np.argmax(row))) for row in scores]
    columns = self.memory.key_columns
    keys = [feedback_lib.key_of(row, columns) if columns else None
            for row in (job.sent or [{}] * len(kept))]
    self.memory.remember(request_id, kept, keys)

  def answer(self, model: model_store.LoadedModel, label: str, job: Job,
             outputs: Dict[str, np.ndarray], request_id: str
             ) -> Dict[str, Any]:
    """Records the scored rows (metrics, log, memory); the answer."""
    if job.signature != model.contract.signature:
      return ({'outputs': tf_serving.columns(outputs)} if job.columnar else
              {'predictions': tf_serving.predictions(outputs)})
    version = str(model.version)
    rows = job.rows
    self.metrics.scored(model.contract, version, outputs,
                        rows.missing if rows else {},
                        rows.unseen if rows else {})
    decided = self._decisions(model, outputs)
    classes = model.contract.classes
    decisions = (None if decided is None else
                 [classes[d] for d in decided])
    self._remember(model, job, outputs, decided, request_id)
    if self.request_log is not None:
      self._log(model, label, job, outputs, decisions, request_id)
    if job.endpoint == CLASSIFY:
      answer: Dict[str, Any] = {
          'results': tf_serving.classify_results(outputs)}
      if decisions is not None:
        answer['decisions'] = decisions
      return answer
    if job.endpoint == REGRESS:
      return {'results': tf_serving.regress_results(outputs)}
    if job.columnar:
      columns = tf_serving.columns(outputs)
      if decisions is not None:
        columns['decision'] = decisions
      return {'outputs': columns}
    predicted = tf_serving.predictions(outputs)
    if decisions is not None:
      for row, decision in zip(predicted, decisions, strict=True):
        row['decision'] = decision
    return {'predictions': predicted}

  def _log(self, model: model_store.LoadedModel, label: str, job: Job,
           outputs: Dict[str, np.ndarray], decisions: Optional[List[str]],
           request_id: str) -> None:
    now = request_log_lib.timestamp(request_log_lib.utc_now())
    columns = {name: tf_serving.tensor_json(name, value)
               for name, value in outputs.items()}
    values = job.rows.values if job.rows is not None else job.sent
    records = []
    for i, row in enumerate(values):
      prediction = {name: column[i] for name, column in columns.items()}
      if decisions is not None:
        prediction['decision'] = decisions[i]
      records.append({
          'time': now, 'model': model.name, 'version': model.version,
          'label': label, 'endpoint': job.endpoint,
          'prediction_id': feedback_lib.prediction_id(request_id, i),
          'features': row, 'prediction': prediction})
    self.request_log.write(records)

  async def score(self, endpoint: str, model: model_store.LoadedModel,
                  label: str, body: bytes, request_id: str
                  ) -> Dict[str, Any]:
    """Checks, scores (with concurrent requests) and records one request.

    A small request is parsed on the event loop (about 0.1 ms a row); a
    large one in a worker thread, so that it holds up no other request.
    """
    small = len(body) <= SMALL_REQUEST_BYTES
    if small:
      job = self.parse(endpoint, model, body)
    else:
      job = await run_in_threadpool(self.parse, endpoint, model, body)
    outputs = await self._outputs(model, job)
    if small:
      return self.answer(model, label, job, outputs, request_id)
    return await run_in_threadpool(self.answer, model, label, job, outputs,
                                   request_id)

  # --- Feedback. -----------------------------------------------------------

  def feedback(self, body: bytes) -> Dict[str, Any]:
    """Joins labels with their predictions; updates live quality."""
    stable = self.watcher.current
    request = tf_serving.parse_body(body, _HINTS[FEEDBACK])
    items = feedback_lib.parse_feedback(request, stable.contract,
                                        self.memory.key_columns)
    matched, unmatched = [], []
    for i, item in enumerate(items):
      prediction = (self.memory.take(item.prediction_id)
                    if item.prediction_id is not None else
                    self.memory.take_by_key(item.key))
      if prediction is None:
        unmatched.append(i)
      else:
        matched.append((item.label, prediction))
    counts: Dict[int, int] = {}
    for _, prediction in matched:
      counts[prediction.version] = counts.get(prediction.version, 0) + 1
    for version, count in counts.items():
      self.metrics.feedback_received(str(version), 'matched', count)
    if unmatched:
      self.metrics.feedback_received('none', 'unmatched', len(unmatched))
    for version, (values, count) in self.quality.add(matched).items():
      self.metrics.live(version, values, count)
    return {'matched': len(matched), 'unmatched': len(unmatched),
            'unmatched_labels': unmatched}

  # --- One request. --------------------------------------------------------

  async def handle(self, endpoint: str, name: str, version: Optional[str],
                   label: Optional[str], request: fastapi.Request
                   ) -> responses.Response:
    """Runs one model endpoint, counting it in the metrics."""
    start = time.perf_counter()
    served = 'none'
    headers: Dict[str, str] = {}
    try:
      if endpoint in SCORING:
        model, model_label = self.resolve(name, version, label, endpoint)
        served = str(model.version)
        headers[VERSION_HEADER] = served
        if model_label:
          headers[LABEL_HEADER] = model_label
        request_id = request.headers.get(REQUEST_ID_HEADER)
        if not feedback_lib.valid_request_id(request_id):
          request_id = f'{self._id_prefix}{next(self._ids):x}'
        headers[REQUEST_ID_HEADER] = request_id
        body = await read_body(request)
        answer = await self.score(endpoint, model, model_label, body,
                                  request_id)
      elif endpoint == FEEDBACK:
        self._model_named(name)
        if version is not None or label is not None:
          raise RequestError(
              'feedback takes no /versions/ or /labels/: the prediction id '
              f'says which version answered; POST /v1/models/{name}:feedback.',
              instances_lib.BAD_BODY)
        body = await read_body(request)
        if len(body) <= SMALL_REQUEST_BYTES:
          answer = self.feedback(body)
        else:
          answer = await run_in_threadpool(self.feedback, body)
      elif endpoint == METADATA:
        model, _ = self.resolve(name, version, label, endpoint)
        served = headers[VERSION_HEADER] = str(model.version)
        answer = self.metadata_answer(model)
      else:
        answer = self.status_answer(name, version, label)
      response = JsonAnswer(answer, headers=headers)
      problem = ''
    except RequestError as e:
      response = error_answer(e.status, str(e), headers=headers)
      problem = e.problem
    except RecursionError:
      # Belt and braces: the parser refuses deep nesting (tf_serving.py),
      # and nothing here recurses into a request's values.
      response = error_answer(400, 'the request nests arrays or objects too '
                              f'deeply; {_HINTS.get(endpoint, "")}.',
                              headers=headers)
      problem = instances_lib.TOO_DEEP
    except Exception:
      # A bug, not a bad request: counted, then answered 500 (below).
      self.metrics.request(served, endpoint, 500,
                           time.perf_counter() - start, 'internal')
      raise
    self.metrics.request(served, endpoint, response.status_code,
                         time.perf_counter() - start, problem)
    return response

  async def dispatch(self, request: fastapi.Request) -> responses.Response:
    """Routes /v1/models/... as TF Serving's handler parses its URLs."""
    path = request.url.path
    method = request.method
    post = _POST_PATH.fullmatch(path)
    get = _GET_PATH.fullmatch(path)
    if method == 'POST' and post:
      name, version, label, verb = post.groups()
      verb = verb.lower()
      if verb in POST_METHODS:
        return await self.handle(verb, name, version, label, request)
      self.metrics.request('none', OTHER, 400, 0.0, instances_lib.BAD_BODY)
      return error_answer(
          400, f'Malformed request: POST {_cut(path)}; the methods are '
          ':predict, :classify, :regress and :feedback.')
    if method == 'GET' and get:
      name, version, label, metadata = get.groups()
      if not name:
        return error_answer(400, 'Missing model name in request; GET '
                            '/v1/models/<name>.')
      return await self.handle(METADATA if metadata else STATUS, name,
                               version, label, request)
    if post or get:
      verb = 'POST' if post else 'GET'
      what = (f'{_cut(path)} takes POST with a JSON body, '
              '{"instances": [...]}.' if post else
              f'{_cut(path)} takes GET: status and metadata are read with '
              'GET; predict, classify, regress and feedback are POST.')
      self.metrics.request('none', OTHER, 405, 0.0, 'wrong_method')
      return error_answer(405, what, headers={'Allow': verb})
    self.metrics.request('none', OTHER, 404, 0.0, 'no_such_path')
    return error_answer(404, _NO_SUCH_PATH)

  # --- Admin. --------------------------------------------------------------

  def labels_answer(self) -> Dict[str, Any]:
    labels = self.router.labels()
    return {'model': self.watcher.current.name,
            **{label: (labels[label].version if label in labels else None)
               for label in routing.LABELS},
            'canary_share': self.router.share,
            'canary_mode': self.watcher.canary,
            'retired': {str(v): r for v, r in self.watcher.retired.items()}}

  def admin(self, action: str, body: bytes) -> Dict[str, Any]:
    """promote, rollback or canary_share; RequestError (409) if it cannot
    be done now."""
    if action == 'canary_share':
      request = tf_serving.parse_body(body, 'send {"share": 0.1}')
      try:
        self.router.share = request.get('share')
      except ValueError as e:
        raise RequestError(str(e), instances_lib.BAD_VALUE) from None
      self.metrics.label_change('canary_share')
      logging.info('Canary share set to %s', self.router.share)
      return self.labels_answer()
    try:
      if action == 'promote':
        self.watcher.promote()
      else:
        rolled_back = self.watcher.rollback()
        self.quality.forget(rolled_back.version)
    except LookupError as e:
      raise RequestError(f'cannot {action}: {e} (GET /admin/labels)',
                         instances_lib.BAD_BODY, status=409) from None
    self.metrics.label_change(action)
    return self.labels_answer()

  def render_metrics(self) -> Tuple[bytes, str]:
    self.metrics.labels(self.router.labels(), self.router.share)
    return self.metrics.render()


_NO_SUCH_PATH = (
    'no such path; the model endpoints are GET /v1/models/<name>[/versions/'
    '<v>|/labels/<label>][/metadata] and POST /v1/models/<name>[...]:'
    '(predict|classify|regress|feedback), and GET /metrics.')
_LOCAL_CLIENTS = ('127.0.0.1', '::1', 'localhost')


def _cut(path: str) -> str:
  return path if len(path) <= 120 else path[:117] + '...'


def create_app(server: Server) -> fastapi.FastAPI:
  """The FastAPI app over one `Server`."""
  @contextlib.asynccontextmanager
  async def lifespan(unused_app: fastapi.FastAPI):
    server.batcher.start()
    try:
      yield
    finally:
      server.batcher.stop()

  app = fastapi.FastAPI(title='Tabular model server', docs_url=None,
                        redoc_url=None, openapi_url=None, lifespan=lifespan)

  @app.api_route('/v1/models', methods=['GET', 'POST', 'PUT', 'DELETE',
                                        'PATCH'])
  @app.api_route('/v1/models/{rest:path}',
                 methods=['GET', 'POST', 'PUT', 'DELETE', 'PATCH'])
  async def models(request: fastapi.Request):
    return await server.dispatch(request)

  @app.get('/metrics')
  async def metrics():
    body, content_type = server.render_metrics()
    return responses.Response(body, media_type=content_type)

  def _admin_client(request: fastapi.Request) -> Optional[JsonAnswer]:
    host = request.client.host if request.client else ''
    if host in _LOCAL_CLIENTS or host.startswith('127.'):
      return None
    return error_answer(403, f'the admin endpoints answer only requests from '
                        f'this machine (127.0.0.1), not {host}.')

  @app.get('/admin/labels')
  async def admin_labels(request: fastapi.Request):
    return _admin_client(request) or JsonAnswer(server.labels_answer())

  @app.post('/admin/{action}')
  async def admin_action(action: str, request: fastapi.Request):
    refused = _admin_client(request)
    if refused is not None:
      return refused
    if action not in ('promote', 'rollback', 'canary_share'):
      return error_answer(404, f'no admin action {action!r}; the actions '
                          'are promote, rollback and canary_share.')
    try:
      body = await read_body(request)
      return JsonAnswer(server.admin(action, body))
    except RequestError as e:
      return error_answer(e.status, str(e))

  @app.exception_handler(HTTPException)
  async def http_error(request: fastapi.Request, exc: HTTPException):
    del request  # Unused.
    message = exc.detail
    if exc.status_code == 404:
      message = _NO_SUCH_PATH
    elif exc.status_code == 405:
      message = ('method not allowed here; predict, classify, regress, '
                 'feedback and the admin actions are POST, status, metadata '
                 'and /metrics are GET.')
    return error_answer(exc.status_code, str(message))

  @app.exception_handler(RequestValidationError)
  async def validation_error(request: fastapi.Request,
                             exc: RequestValidationError):
    del request  # Unused.
    return error_answer(400, f'bad request: {exc.errors()}')

  @app.exception_handler(Exception)
  async def internal_error(request: fastapi.Request, exc: Exception):
    logging.exception('Unexpected error on %s %s', request.method,
                      request.url.path)
    return error_answer(500, f'internal error ({type(exc).__name__}: {exc}); '
                        'see the server log.')

  return app
