"""TF Serving's REST formats: request bodies parsed, answers built.

Written against TF Serving's REST documentation
(tensorflow_serving/g3doc/api_rest.md) and the handler that implements it
(model_servers/http_rest_api_handler.cc, util/json_tensor.cc), so that a
client moves between this server and TF Serving (or a Vertex endpoint)
unchanged:

* `:predict` takes `{"instances": [...]}` (rows) or `{"inputs": ...}`
  (columns), never both, and an optional `signature_name`. The model's
  `serving_default` has one input, `examples`: serialized `tf.Example`s,
  sent as `{"b64": "<base64>"}` values (`{"instances": [{"b64": ...}]}`,
  `{"instances": [{"examples": {"b64": ...}}]}` or `{"inputs": [...]}`),
  exactly as TF Serving takes them. This server also takes raw rows,
  `{"instances": [{"fare": 8.25, ...}]}`, checked against the serving
  contract (serving/instances.py); TF Serving itself cannot.
* The answer is `{"predictions": [...]}` for rows, `{"outputs": ...}` for
  columns. With several outputs each row is an object of output name to
  value; with one output the name is dropped and each row is that
  output's value (TF Serving's rule), e.g. `[[3.5], [4.0]]` for a
  regression model's `outputs` of shape [batch, 1].
* `:classify` and `:regress` take `{"examples": [{feature: value|list}],
  "context": {feature: value|list}}`; context features go into every
  example and may not appear in one. Answers: `{"results": [[[label,
  score], ...], ...]}` and `{"results": [value, ...]}`.
* Floats are written as TF Serving writes them: a 32-bit float with six
  significant digits when they read back as the same float, else nine
  (0.176, 0.816885471); NaN and infinities as `NaN`, `Infinity`; a string
  output whose name ends in `_bytes` as `{"b64": ...}`.
* Metadata is TF Serving's `GetModelMetadataResponse` as JSON: every
  signature of the SavedModel's MetaGraphDef, printed with protobuf's JSON
  printer as TF Serving prints it (field names kept, defaults included).

A body is refused with a 400 before anything is scored: not UTF-8, not
JSON, nested too deep for the parser, or not of these shapes; the message
says what to send. Nothing here imports TensorFlow at import time.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import struct
from typing import Any
from typing import Dict
from typing import List
from typing import Mapping
from typing import Optional
from typing import Tuple

import numpy as np

from serving import instances as instances_lib

RequestError = instances_lib.RequestError
DEFAULT_SIGNATURE = 'serving_default'
B64 = 'b64'
# TF Serving: a string output named like this holds bytes, sent as base64.
BYTES_SUFFIX = '_bytes'
PREDICT = 'predict'
CLASSIFY = 'classify'
REGRESS = 'regress'
# TF Serving's signature method names.
METHOD_NAMES = {PREDICT: 'tensorflow/serving/predict',
                CLASSIFY: 'tensorflow/serving/classify',
                REGRESS: 'tensorflow/serving/regress'}
_SEND_PREDICT = ('send {"instances": [{"feature": value, ...}]} or '
                 '{"instances": [{"b64": "<base64 tf.Example>"}]}')


def parse_body(body: bytes, hint: str = _SEND_PREDICT) -> Dict[str, Any]:
  """The JSON object of a request body; RequestError (400) otherwise.

  Never a 500: invalid UTF-8, JSON the parser refuses (including numbers
  of over 4,300 digits) and nesting deeper than the parser's recursion
  limit (about 1,000 levels) are each a 400 naming the problem.
  """
  if not body:
    raise RequestError(f'the request body is empty; {hint}.',
                       instances_lib.NOT_JSON)
  try:
    text = body.decode('utf-8')
  except UnicodeDecodeError as e:
    raise RequestError(
        f'the request body is not UTF-8 text (byte 0x{body[e.start]:02x} at '
        f'offset {e.start}); send JSON encoded as UTF-8.',
        instances_lib.NOT_JSON) from None
  try:
    request = json.loads(text)
  except RecursionError:
    raise RequestError(
        'the request body nests arrays or objects too deeply for the JSON '
        f'parser; a request is an object of rows or columns: {hint}.',
        instances_lib.TOO_DEEP) from None
  except ValueError as e:
    raise RequestError(
        f'the request body is not JSON ({str(e)[:200]}); {hint}.',
        instances_lib.NOT_JSON) from None
  if not isinstance(request, dict):
    raise RequestError(
        f'the request body is {instances_lib.kind(request)}, not an object; '
        f'{hint}.', instances_lib.BAD_BODY)
  return request


def signature_name(request: Mapping[str, Any]) -> str:
  """The request's `signature_name`; '' when absent (the default)."""
  name = request.get('signature_name', '')
  if not isinstance(name, str):
    raise RequestError(
        'the request\'s "signature_name" is '
        f'{instances_lib.kind(name)}; \'signature_name\' key must be a string '
        'value (or leave it out for serving_default).',
        instances_lib.BAD_BODY)
  return name


def is_b64(value: Any) -> bool:
  """TF Serving's binary value: an object with one key, "b64", a string."""
  return (isinstance(value, dict) and len(value) == 1 and
          isinstance(value.get(B64), str))


def decode_b64(value: Mapping[str, str], where: str) -> bytes:
  """The bytes of a {"b64": ...} value; padding may be left out."""
  text = value[B64]
  try:
    return base64.b64decode(text + '=' * (-len(text) % 4), validate=True)
  except (binascii.Error, ValueError):
    raise RequestError(
        f'{where}: the "b64" value is not base64 '
        f'({instances_lib.shown(text)}); encode the bytes with standard '
        'base64 (A-Z, a-z, 0-9, +, /).', instances_lib.BAD_VALUE) from None


@dataclasses.dataclass
class PredictInput:
  """A parsed `:predict` body.

  Attributes:
    signature: The signature to run ('' for serving_default).
    columnar: The request used `inputs` (answer with `outputs`).
    rows: Raw feature rows (this server's form), to check and encode.
    serialized: Or serialized tf.Examples (TF Serving's form).
  """
  signature: str
  columnar: bool
  rows: Optional[List[Any]] = None
  serialized: Optional[List[bytes]] = None


def _serialized(value: Any, where: str) -> bytes:
  """One value of the `examples` input: {"b64": ...} or a string."""
  if is_b64(value):
    return decode_b64(value, where)
  if isinstance(value, str):
    try:
      return value.encode('utf-8')
    except UnicodeEncodeError:
      raise RequestError(
          f'{where} is a string that is not valid Unicode (a lone '
          'surrogate); send the bytes as {"b64": "<base64>"}.',
          instances_lib.BAD_VALUE) from None
  raise RequestError(
      f'{where} is {instances_lib.kind(value)} '
      f'{instances_lib.shown(value)}; the examples input takes serialized '
      'tf.Examples, each as {"b64": "<base64>"}.', instances_lib.WRONG_SHAPE)


def _check_count(count: int, key: str) -> None:
  if not count:
    raise RequestError(f'no rows to score: "{key}" is empty; send at least '
                       'one row.', instances_lib.EMPTY)
  if count > instances_lib.MAX_ROWS:
    raise RequestError(
        f'{count} rows in one request; send at most {instances_lib.MAX_ROWS} '
        'per request.', instances_lib.TOO_MANY_ROWS)


def parse_predict(request: Mapping[str, Any], input_name: str
                  ) -> PredictInput:
  """Reads a `:predict` body (see the module docstring for its forms).

  Args:
    request: The parsed JSON object.
    input_name: The signature's one input (`examples`).
  """
  signature = signature_name(request)
  has_instances, has_inputs = 'instances' in request, 'inputs' in request
  if has_instances == has_inputs:
    keys = sorted(request)[:20]
    raise RequestError(
        'a predict request has exactly one of "instances" (a list of rows) '
        'or "inputs" (columns); got '
        + ('both.' if has_instances else
           f'keys {instances_lib.shown(keys)}.'), instances_lib.BAD_BODY)
  if has_instances:
    instances = request['instances']
    if not isinstance(instances, list):
      raise RequestError(
          f'"instances" is {instances_lib.kind(instances)}; send a list of '
          'rows, [{"feature": value, ...}, ...].', instances_lib.WRONG_SHAPE)
    _check_count(len(instances), 'instances')
    first = instances[0]
    named = isinstance(first, dict) and set(first) == {input_name}
    if is_b64(first) or isinstance(first, str) or named:
      serialized = []
      for i, value in enumerate(instances):
        where = f'instance {i}'
        if named:
          if not isinstance(value, dict) or set(value) != {input_name}:
            raise RequestError(
                f'{where} is not {{"{input_name}": {{"b64": ...}}}} like '
                'instance 0; send every instance in one form.',
                instances_lib.WRONG_SHAPE)
          value = value[input_name]
        serialized.append(_serialized(value, where))
      return PredictInput(signature, False, serialized=serialized)
    if not isinstance(first, dict):
      raise RequestError(
          f'instance 0 is {instances_lib.kind(first)}, not an object; send '
          'each row as {"feature": value, ...}, the raw columns without the '
          'label, or each serialized tf.Example as {"b64": "<base64>"}.',
          instances_lib.BAD_INSTANCE)
    return PredictInput(signature, False, rows=instances)
  inputs = request['inputs']
  if isinstance(inputs, dict) and set(inputs) == {input_name}:
    inputs = inputs[input_name]
    if not isinstance(inputs, list):
      raise RequestError(
          f'inputs["{input_name}"] is {instances_lib.kind(inputs)}; send a '
          'list of serialized tf.Examples, [{"b64": "<base64>"}, ...].',
          instances_lib.WRONG_SHAPE)
  if isinstance(inputs, list):
    _check_count(len(inputs), 'inputs')
    return PredictInput(signature, True, serialized=[
        _serialized(v, f'inputs[{i}]') for i, v in enumerate(inputs)])
  if is_b64(inputs) or not isinstance(inputs, dict):
    raise RequestError(
        f'"inputs" is {instances_lib.kind(inputs)}; send an object of '
        'feature: [one value per row], or a list of serialized tf.Examples '
        '[{"b64": "<base64>"}, ...].', instances_lib.WRONG_SHAPE)
  rows = rows_of_columns(inputs)
  _check_count(len(rows), 'inputs')
  return PredictInput(signature, True, rows=rows)


def rows_of_columns(inputs: Mapping[str, Any]) -> List[Dict[str, Any]]:
  """TF Serving's columnar form, {feature: [value per row]}, as rows."""
  lengths = {}
  for name, column in inputs.items():
    if not isinstance(column, list):
      raise RequestError(
          f'inputs[{instances_lib.shown(name)}] is '
          f'{instances_lib.kind(column)}; in the columnar form each feature '
          'holds a list, one value per row.', instances_lib.WRONG_SHAPE)
    lengths[name] = len(column)
  if len(set(lengths.values())) > 1:
    shown = ', '.join(f'{instances_lib.shown_text(k)}: {v}'
                      for k, v in sorted(lengths.items())[:10])
    raise RequestError(
        f'the columns of "inputs" differ in length ({shown}); each needs '
        'one value per row.', instances_lib.WRONG_SHAPE)
  count = next(iter(lengths.values()), 0)
  if count > instances_lib.MAX_ROWS:
    _check_count(count, 'inputs')
  return [{name: column[i] for name, column in inputs.items()}
          for i in range(count)]


def _example_value(value: Any, where: str) -> Any:
  """A classify/regress example's `<value>|<list>` as the row's value.

  A one-element list is its element and an empty list a missing value; a
  longer list stays a list (the contract refuses it: one value per
  feature). {"b64": ...} is decoded to text.
  """
  if isinstance(value, list):
    if not value:
      return None
    if len(value) == 1:
      value = value[0]
  if is_b64(value):
    try:
      return decode_b64(value, where).decode('utf-8')
    except UnicodeDecodeError:
      raise RequestError(
          f'{where}: the "b64" value is not UTF-8 text; this model\'s string '
          'features are text.', instances_lib.BAD_VALUE) from None
  return value


def _example(value: Any, where: str) -> Dict[str, Any]:
  if not isinstance(value, dict) or is_b64(value):
    raise RequestError(
        f'{where} is {instances_lib.kind(value)}; Example must be JSON '
        'object: send {"feature": value or [value], ...}.',
        instances_lib.BAD_INSTANCE)
  return {name: _example_value(v, f'{where}, feature '
                               f'{instances_lib.shown_text(name)}')
          for name, v in value.items()}


def parse_examples(request: Mapping[str, Any], method: str
                   ) -> Tuple[str, List[Dict[str, Any]]]:
  """Reads a `:classify` or `:regress` body: (signature, rows).

  Each row is one example with the context's features added.
  """
  signature = signature_name(request)
  context: Dict[str, Any] = {}
  if 'context' in request:
    context = _example(request['context'], 'context')
  if 'examples' not in request:
    raise RequestError(
        f'When method is {method}, key \'examples\' is expected and was not '
        'found; send {"examples": [{"feature": value, ...}, ...]} (and '
        'optionally "context": {...} for features shared by all).',
        instances_lib.BAD_BODY)
  examples = request['examples']
  if not isinstance(examples, list):
    raise RequestError(
        f'"examples" is {instances_lib.kind(examples)}; Expecting '
        '\'examples\' value to be an list/array of objects.',
        instances_lib.WRONG_SHAPE)
  _check_count(len(examples), 'examples')
  rows = []
  for i, value in enumerate(examples):
    row = _example(value, f'example {i}')
    both = sorted(set(row) & set(context))
    if both:
      raise RequestError(
          f'example {i}: feature {instances_lib.shown_text(both[0])} is also '
          'in "context"; features that appear in context must not appear in '
          'examples.', instances_lib.BAD_INSTANCE)
    rows.append({**context, **row})
  return signature, rows


# --- Answers. ---------------------------------------------------------------


def tensor_json(name: str, value: np.ndarray) -> List[Any]:
  """A [batch, ...] output as JSON values, as TF Serving writes them."""
  if value.dtype.kind in ('S', 'O', 'U'):
    flat = value.reshape(-1)
    if name.endswith(BYTES_SUFFIX):
      items = [{B64: base64.b64encode(bytes(v)).decode('ascii')}
               for v in flat]
    else:
      items = [v.decode('utf-8', 'replace') if isinstance(v, bytes)
               else str(v) for v in flat]
    return np.array(items, dtype=object).reshape(value.shape).tolist()
  if value.dtype == np.float32:
    return _float32_json(value)
  # A double's text, as TF Serving writes it, reads back as that double.
  return value.tolist()


_FLOAT32 = struct.Struct('<f')


def _float32_json(value: np.ndarray) -> List[Any]:
  """float32 values as the doubles TF Serving's text of them reads as.

  TF Serving (WriteDecimal in util/json_tensor.cc) writes a float with six
  significant digits when those read back as the same float, else with
  nine; a client parsing its JSON gets the doubles of that text (0.176,
  0.816885471), which this returns, so answers compare equal as doubles.
  (A Python loop: for the few values of a request it costs a tenth of
  numpy's string functions, and half for a large one.)
  """
  out = []
  round_trip = _FLOAT32.pack
  read = _FLOAT32.unpack
  for number in value.reshape(-1).tolist():
    text = float('%.6g' % number)
    if number == number and read(round_trip(text))[0] != number:
      text = float('%.9g' % number)
    out.append(text)
  if value.ndim == 1:
    return out
  return np.array(out, dtype=np.float64).reshape(value.shape).tolist()


def predictions(outputs: Mapping[str, np.ndarray]) -> List[Any]:
  """TF Serving's row format: one {output: value} per row, or with one
  output, the value itself."""
  names = sorted(outputs)
  columns = {name: tensor_json(name, outputs[name]) for name in names}
  if len(names) == 1:
    return columns[names[0]]
  count = len(columns[names[0]])
  return [{name: columns[name][i] for name in names} for i in range(count)]


def columns(outputs: Mapping[str, np.ndarray]) -> Any:
  """TF Serving's columnar format: {output: [...]}, or one output's list."""
  names = sorted(outputs)
  if len(names) == 1:
    return tensor_json(names[0], outputs[names[0]])
  return {name: tensor_json(name, outputs[name]) for name in names}


def classify_results(outputs: Mapping[str, np.ndarray]) -> List[Any]:
  """`:classify`'s results: per example, [label, score] per class."""
  scores = tensor_json('scores', outputs['scores'])
  labels = tensor_json('classes', outputs['classes'])
  return [[[label, score] for label, score in zip(row_labels, row_scores,
                                                   strict=True)]
          for row_labels, row_scores in zip(labels, scores, strict=True)]


def regress_results(outputs: Mapping[str, np.ndarray],
                    output: str = 'outputs') -> List[float]:
  """`:regress`'s results: one value per example."""
  return tensor_json(output, outputs[output].reshape(-1))


# --- Status and metadata. ---------------------------------------------------


def status_entry(version: int, state: str, error_code: str = 'OK',
                 error_message: str = '') -> Dict[str, Any]:
  """One `model_version_status` entry of `GetModelStatusResponse`."""
  return {'version': str(version), 'state': state,
          'status': {'error_code': error_code,
                     'error_message': error_message}}


def signature_defs(saved_model_dir: str) -> Dict[str, Any]:
  """Every SignatureDef of a SavedModel's (first) MetaGraphDef, as the JSON
  TF Serving's metadata API prints (names kept, default values included).
  """
  from google.protobuf import json_format
  from tensorflow.core.protobuf import saved_model_pb2
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(saved_model_dir, 'saved_model.pb'), 'rb') as f:
    saved_model.ParseFromString(f.read())
  meta_graph = saved_model.meta_graphs[0]
  return {name: json_format.MessageToDict(
      signature, including_default_value_fields=True,
      preserving_proto_field_name=True)
          for name, signature in meta_graph.signature_def.items()}


def metadata_answer(name: str, version: int,
                    signatures: Mapping[str, Any],
                    extra: Optional[Mapping[str, Any]] = None
                    ) -> Dict[str, Any]:
  """`GetModelMetadataResponse` as TF Serving's REST API prints it.

  `extra` goes under `metadata` beside `signature_def`: the response's
  `metadata` is a map of named entries, of which TF Serving fills only
  `signature_def`; a client reads that entry and ignores others.
  """
  metadata: Dict[str, Any] = {'signature_def': {
      'signature_def': dict(signatures)}}
  if extra:
    metadata.update(extra)
  return {'model_spec': {'name': name, 'signature_name': '',
                         'version': str(version)},
          'metadata': metadata}
