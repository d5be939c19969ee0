"""The REST app: TF Serving's API over the pushed model, and /metrics.

| request | answer |
| --- | --- |
| `GET /v1/models/<name>` | `{"model_version_status": [{"version", "state", "status"}]}` |
| `GET /v1/models/<name>/metadata` | `{"model_spec", "metadata": {"signature_def", "raw_features", ...}}` |
| `POST /v1/models/<name>:predict` | `{"instances": [row, ...]}` -> `{"predictions": [{output: value}, ...]}`; `{"inputs": {feature: [...]}}` -> `{"outputs": {output: [...]}}` |
| `GET /metrics` | Prometheus text format (serving/metrics.py) |

`/versions/<version>` may follow the name, as in TF Serving; only the
version being served answers. Every predict answer carries the version
that scored it in the `X-Model-Version` header.

Errors are JSON, `{"error": "..."}`: 400 for a request the contract cannot
serve (serving/instances.py), 404 for an unknown model, version or path,
405 for a wrong method. A request is checked in full before it is scored.
"""

from __future__ import annotations

import asyncio
import contextlib
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

from serving import batching
from serving import instances as instances_lib
from serving import metrics as metrics_lib
from serving import model_store
from serving import request_log as request_log_lib

VERSION_HEADER = 'X-Model-Version'
# The largest request body read.
MAX_BODY_BYTES = 64 << 20
# Requests up to this size are checked on the event loop.
SMALL_REQUEST_BYTES = 64 * 1024
PREDICT = 'predict'
STATUS = 'status'
METADATA = 'metadata'
_DTYPES = {'string': 'DT_STRING', 'float32': 'DT_FLOAT', 'int64': 'DT_INT64',
           'float64': 'DT_DOUBLE', 'int32': 'DT_INT32'}


def _error(status: int, message: str,
           headers: Optional[Dict[str, str]] = None) -> responses.JSONResponse:
  return responses.JSONResponse({'error': message}, status_code=status,
                                headers=headers)


def _shape(dims: Optional[List[Optional[int]]]) -> Dict[str, Any]:
  if dims is None:
    return {'dim': [], 'unknown_rank': True}
  return {'dim': [{'size': str(-1 if d is None else d), 'name': ''}
                  for d in dims], 'unknown_rank': False}


def _tensors(tensors: Dict[str, Any]) -> Dict[str, Any]:
  return {name: {'dtype': _DTYPES.get(dtype, dtype), 'tensor_shape':
                 _shape(dims), 'name': name}
          for name, (dtype, dims) in sorted(tensors.items())}


def status_body(watcher: model_store.ModelWatcher,
                model: model_store.LoadedModel) -> Dict[str, Any]:
  """TF Serving's model status, plus refused newer versions."""
  entries = [{'version': str(model.version), 'state': 'AVAILABLE',
              'status': {'error_code': 'OK', 'error_message': ''}}]
  loading = watcher.loading
  if loading is not None and loading > model.version:
    entries.insert(0, {'version': str(loading), 'state': 'LOADING',
                       'status': {'error_code': 'OK', 'error_message': ''}})
  for version, reason in sorted(watcher.refused.items(), reverse=True):
    if version > model.version:
      entries.insert(0, {'version': str(version), 'state': 'END',
                         'status': {'error_code': 'FAILED_PRECONDITION',
                                    'error_message': reason}})
  return {'model_version_status': entries}


def metadata_body(model: model_store.LoadedModel) -> Dict[str, Any]:
  """TF Serving's metadata, plus the raw features a request may carry."""
  contract = model.contract
  info = model.signature_info
  return {
      'model_spec': {'name': model.name, 'signature_name': '',
                     'version': str(model.version)},
      'metadata': {
          'signature_def': {'signature_def': {contract.signature: {
              'inputs': _tensors(info['inputs']),
              'outputs': _tensors(info['outputs']),
              'method_name': 'tensorflow/serving/predict'}}},
          'task': contract.task,
          'label': contract.label,
          'classes': list(contract.classes),
          'raw_features': [
              {'name': f.name, 'dtype': f.dtype, 'required': f.required,
               'treatment': f.treatment,
               'vocabulary_size': (None if f.vocabulary is None
                                   else len(f.vocabulary))}
              for f in contract.features],
          'ignored_columns': list(contract.ignored),
      },
  }


def _row_values(value: np.ndarray) -> Any:
  """A row of an output as JSON: strings decoded, shapes kept."""
  if value.dtype.kind in ('S', 'O'):
    return np.vectorize(lambda v: v.decode('utf-8') if isinstance(
        v, bytes) else str(v), otypes=[object])(value).tolist()
  return value.tolist()


def predictions(outputs: Dict[str, np.ndarray]) -> List[Dict[str, Any]]:
  """TF Serving's row format: one {output: value} per row."""
  columns = {name: _row_values(value) for name, value in outputs.items()}
  count = len(next(iter(columns.values())))
  return [{name: column[i] for name, column in columns.items()}
          for i in range(count)]


async def _body(request: fastapi.Request) -> bytes:
  """The request body, refused (413) beyond MAX_BODY_BYTES."""
  declared = request.headers.get('content-length', '')
  too_big = instances_lib.RequestError(
      f'request body over {MAX_BODY_BYTES >> 20} MB; send at most '
      f'{instances_lib.MAX_ROWS} rows per request.',
      instances_lib.TOO_MANY_ROWS, status=413)
  if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
    raise too_big
  body = await request.body()
  if len(body) > MAX_BODY_BYTES:
    raise too_big
  return body


class Server:
  """The handlers' state: the model watcher, the batcher, metrics and the
  request log. `create_app` starts and stops the batcher with the app."""

  def __init__(self, watcher: model_store.ModelWatcher,
               metrics: metrics_lib.ServingMetrics,
               request_log: Optional[request_log_lib.RequestLog] = None,
               batcher: Optional[batching.Batcher] = None):
    self.watcher = watcher
    self.batcher = batcher or batching.Batcher()
    self.metrics = metrics
    self.request_log = request_log
    self._checkers: Dict[int, instances_lib.Checker] = {}

  def checker(self, model: model_store.LoadedModel) -> instances_lib.Checker:
    """The row checker of a version, built once."""
    checker = self._checkers.get(model.version)
    if checker is None or checker.contract is not model.contract:
      checker = instances_lib.Checker(model.contract)
      self._checkers = {model.version: checker}  # Only the newest is used.
    return checker

  def resolve(self, name: str, version: Optional[str]
              ) -> model_store.LoadedModel:
    """The model a URL names; RequestError (404) for another one."""
    model = self.watcher.current
    if name.endswith(':predict'):
      raise instances_lib.RequestError(
          f'{name} takes POST with a JSON body, {{"instances": [...]}}.',
          instances_lib.BAD_BODY, status=405)
    if name != model.name:
      raise instances_lib.RequestError(
          f'model {name!r} not found; this server serves {model.name!r} '
          f'(GET /v1/models/{model.name}).', instances_lib.UNKNOWN_MODEL,
          status=404)
    if version is not None and version != str(model.version):
      raise instances_lib.RequestError(
          f'version {version} of model {name!r} is not served; the served '
          f'version is {model.version} (leave /versions/... out to get the '
          'newest).', instances_lib.UNKNOWN_MODEL, status=404)
    return model

  def _check(self, model: model_store.LoadedModel, body: bytes
             ) -> Tuple[instances_lib.Rows, List[bytes]]:
    rows = self.checker(model).check_request(body)
    return rows, instances_lib.encode(rows.values, model.contract)

  def _answer(self, model: model_store.LoadedModel,
              rows: instances_lib.Rows, outputs: Dict[str, np.ndarray]
              ) -> Dict[str, Any]:
    """Records the scored rows (metrics, log) and builds the answer."""
    version = str(model.version)
    self.metrics.scored(model.contract, version, outputs, rows.missing,
                        rows.unseen)
    rows_out = predictions(outputs)
    if self.request_log is not None:
      now = request_log_lib.timestamp(request_log_lib.utc_now())
      self.request_log.write([
          {'time': now, 'model': model.name, 'version': model.version,
           'features': values, 'prediction': prediction}
          for values, prediction in zip(rows.values, rows_out, strict=True)])
    if rows.columnar:
      return {'outputs': {name: [row[name] for row in rows_out]
                          for name in outputs}}
    return {'predictions': rows_out}

  async def score(self, model: model_store.LoadedModel, body: bytes
                  ) -> Dict[str, Any]:
    """Checks, scores (with concurrent requests) and logs one request.

    A small request is checked on the event loop (about 0.1 ms a row); a
    large one in a worker thread, so that it holds up no other request.
    """
    small = len(body) <= SMALL_REQUEST_BYTES
    if small:
      rows, serialized = self._check(model, body)
    else:
      rows, serialized = await run_in_threadpool(self._check, model, body)
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    try:
      outputs = await asyncio.wrap_future(
          self.batcher.submit(model, serialized))
    except tf.errors.InvalidArgumentError as e:
      raise instances_lib.RequestError(
          f'the model refused the rows: {e.message.splitlines()[0]}',
          instances_lib.MODEL_ERROR) from None
    if small:
      return self._answer(model, rows, outputs)
    return await run_in_threadpool(self._answer, model, rows, outputs)

  async def handle(self, endpoint: str, name: str, version: Optional[str],
                   request: fastapi.Request) -> responses.Response:
    """Runs one model endpoint, counting it in the metrics."""
    start = time.perf_counter()
    served = 'none'
    try:
      model = self.resolve(name, version)
      served = str(model.version)
      if endpoint == PREDICT:
        body = await _body(request)
        answer = await self.score(model, body)
      elif endpoint == METADATA:
        answer = metadata_body(model)
      else:
        answer = status_body(self.watcher, model)
      response = responses.JSONResponse(
          answer, headers={VERSION_HEADER: served})
      problem = ''
    except instances_lib.RequestError as e:
      response = _error(e.status, str(e), headers={VERSION_HEADER: served})
      problem = e.problem
    except Exception:
      # A bug, not a bad request: counted, then answered 500 (below).
      self.metrics.request(served, endpoint, 500,
                           time.perf_counter() - start, 'internal')
      raise
    self.metrics.request(served, endpoint, response.status_code,
                         time.perf_counter() - start, problem)
    return response


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

  # The predict routes come first: `{name}` alone would also match
  # 'taxi:predict'.
  @app.post('/v1/models/{name}:predict')
  async def predict(name: str, request: fastapi.Request):
    return await server.handle(PREDICT, name, None, request)

  @app.post('/v1/models/{name}/versions/{version}:predict')
  async def predict_version(name: str, version: str,
                            request: fastapi.Request):
    return await server.handle(PREDICT, name, version, request)

  @app.get('/v1/models/{name}/metadata')
  async def metadata(name: str, request: fastapi.Request):
    return await server.handle(METADATA, name, None, request)

  @app.get('/v1/models/{name}/versions/{version}/metadata')
  async def metadata_version(name: str, version: str,
                             request: fastapi.Request):
    return await server.handle(METADATA, name, version, request)

  @app.get('/v1/models/{name}/versions/{version}')
  async def status_version(name: str, version: str,
                           request: fastapi.Request):
    return await server.handle(STATUS, name, version, request)

  @app.get('/v1/models/{name}')
  async def status(name: str, request: fastapi.Request):
    return await server.handle(STATUS, name, None, request)

  @app.get('/metrics')
  async def metrics():
    body, content_type = server.metrics.render()
    return responses.Response(body, media_type=content_type)

  @app.exception_handler(HTTPException)
  async def http_error(request: fastapi.Request, exc: HTTPException):
    del request  # Unused.
    message = exc.detail
    if exc.status_code == 404:
      message = ('no such path; the model endpoints are /v1/models/<name>, '
                 '/v1/models/<name>/metadata and POST '
                 '/v1/models/<name>:predict, and /metrics.')
    elif exc.status_code == 405:
      message = ('method not allowed here; predict is POST, status, '
                 'metadata and /metrics are GET.')
    return _error(exc.status_code, str(message))

  @app.exception_handler(RequestValidationError)
  async def validation_error(request: fastapi.Request,
                             exc: RequestValidationError):
    del request  # Unused.
    return _error(400, f'bad request: {exc.errors()}')

  @app.exception_handler(Exception)
  async def internal_error(request: fastapi.Request, exc: Exception):
    logging.exception('Unexpected error on %s %s', request.method,
                      request.url.path)
    return _error(500, f'internal error ({type(exc).__name__}: {exc}); '
                  'see the server log.')

  return app
