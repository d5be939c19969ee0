"""Request rows checked against the serving contract, then encoded.

A predict request carries raw rows as JSON (`{"instances": [{feature:
value, ...}, ...]}`, or TF Serving's columnar `{"inputs": {feature: [...]}}`).
Each row is checked against the model's contract
(models/serving_contract.py) before anything is scored, so a bad request
gets one message naming the row, the feature and the problem, instead of a
TensorFlow error or, worse, a silent default:

* a required feature that is absent or null is refused; an optional one
  may be left out and gets the model's documented default;
* a value must be one JSON scalar of the feature's type: a number for
  `float`, a whole number for `int`, a string for `string`; lists, objects,
  booleans, NaN and infinities are refused;
* a feature the contract does not know is refused (a typo would otherwise
  be a silently missing feature); the label is refused too, and the
  contract's `ignored` columns are accepted and dropped.

The checked rows are encoded as serialized `tf.Example`s, the input of
`serving_default`. Checking also counts, per feature, the values that are
missing and the categories outside the training vocabulary.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
from typing import Any
from typing import Dict
from typing import List
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

from models import serving_contract

# The most rows one request may carry: memory per request stays bounded.
MAX_ROWS = 10_000
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_FLOAT32_MAX = 3.4028234663852886e38

# Problem kinds: the `problem` label of the error metric.
NOT_JSON = 'not_json'
BAD_BODY = 'bad_body'
EMPTY = 'empty'
TOO_MANY_ROWS = 'too_many_rows'
BAD_INSTANCE = 'bad_instance'
UNKNOWN_FEATURE = 'unknown_feature'
LABEL_SENT = 'label_sent'
MISSING_FEATURE = 'missing_feature'
WRONG_SHAPE = 'wrong_shape'
WRONG_TYPE = 'wrong_type'
BAD_VALUE = 'bad_value'
UNKNOWN_SIGNATURE = 'unknown_signature'
UNKNOWN_MODEL = 'unknown_model'
MODEL_ERROR = 'model_error'

Row = Dict[str, Any]


class RequestError(ValueError):
  """A request the contract cannot serve; HTTP 400 (404 for a model).

  Attributes:
    problem: One of the problem kinds above, for the metrics.
    status: The HTTP status to answer with.
  """

  def __init__(self, message: str, problem: str, status: int = 400):
    super().__init__(message)
    self.problem = problem
    self.status = status


@dataclasses.dataclass
class Rows:
  """Checked rows and what checking them observed.

  Attributes:
    values: One dict per row: feature -> typed value, absent when missing.
    missing: Feature -> rows without a value.
    unseen: Feature -> rows whose category training did not see.
    columnar: The request used TF Serving's columnar `inputs` form.
  """
  values: List[Row]
  missing: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  unseen: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  columnar: bool = False


def _kind(value: Any) -> str:
  """How a message names a JSON value's type."""
  if isinstance(value, bool):
    return 'a boolean'
  if isinstance(value, str):
    return 'a string'
  if isinstance(value, (int, float)):
    return 'a number'
  if isinstance(value, list):
    return 'a list'
  if isinstance(value, dict):
    return 'an object'
  return type(value).__name__


def _shown(value: Any) -> str:
  text = json.dumps(value) if not isinstance(value, float) else repr(value)
  return text if len(text) <= 60 else text[:57] + '...'


_EXPECTED = {serving_contract.FLOAT: 'a number',
             serving_contract.INT: 'a whole number',
             serving_contract.STRING: 'a string'}


def typed_value(feature: serving_contract.Feature, value: Any,
                where: str) -> Any:
  """The value as its feature's type; RequestError if it is not one.

  Args:
    feature: The contract's feature.
    value: A JSON value, not None.
    where: How the message names the row ('instance 3').
  """
  prefix = f'{where}, feature {feature.name!r} ({feature.dtype})'
  if isinstance(value, (list, dict, tuple)):
    raise RequestError(
        f'{prefix}: expected one value (a scalar), got {_kind(value)} '
        f'{_shown(value)}; send {_EXPECTED[feature.dtype]}, e.g. '
        f'"{feature.name}": {_example(feature)}.', WRONG_SHAPE)
  if feature.dtype == serving_contract.STRING:
    if isinstance(value, str):
      return value
    raise RequestError(
        f'{prefix}: expected a string, got {_kind(value)} {_shown(value)}; '
        'quote the value.', WRONG_TYPE)
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise RequestError(
        f'{prefix}: expected {_EXPECTED[feature.dtype]}, got '
        f'{_kind(value)} {_shown(value)}.', WRONG_TYPE)
  if isinstance(value, float) and not math.isfinite(value):
    raise RequestError(f'{prefix}: {value!r} is not a finite number.',
                       BAD_VALUE)
  if feature.dtype == serving_contract.FLOAT:
    if abs(value) > _FLOAT32_MAX:
      raise RequestError(f'{prefix}: {value!r} does not fit a 32-bit float.',
                         BAD_VALUE)
    return float(value)
  if isinstance(value, float):
    if not value.is_integer():
      raise RequestError(
          f'{prefix}: expected a whole number, got {value!r}.', WRONG_TYPE)
    value = int(value)
  if not _INT64_MIN <= value <= _INT64_MAX:
    raise RequestError(f'{prefix}: {value} does not fit a 64-bit integer.',
                       BAD_VALUE)
  return value


def _example(feature: serving_contract.Feature) -> str:
  if feature.vocabulary:
    return json.dumps(feature.vocabulary[0]) if (
        feature.dtype == serving_contract.STRING) else feature.vocabulary[0]
  return {serving_contract.FLOAT: '12.5', serving_contract.INT: '7',
          serving_contract.STRING: '"text"'}[feature.dtype]


class Checker:
  """Checks rows against one contract; built once per loaded model."""

  def __init__(self, contract: serving_contract.Contract):
    self.contract = contract
    self._features = {f.name: f for f in contract.features}
    self._ignored = frozenset(contract.ignored)
    self._vocabularies = {f.name: frozenset(f.vocabulary)
                          for f in contract.features
                          if f.vocabulary is not None}

  def check_row(self, instance: Any, where: str, strict: bool = True
                ) -> Tuple[Row, List[str], List[str]]:
    """One row: (typed values, missing features, unseen-category features).

    Args:
      instance: The row, a JSON object (dict).
      where: How messages name the row ('instance 3', 'data.csv row 7').
      strict: Refuse names the contract does not know (requests); batch
        sources carry other columns (the label, keys), which are skipped.

    Raises:
      RequestError: The row cannot be scored as sent.
    """
    if not isinstance(instance, dict):
      raise RequestError(
          f'{where} is {_kind(instance)}, not an object; send each row as '
          '{"feature": value, ...}, the raw columns without the label.',
          BAD_INSTANCE)
    if strict:
      for name in instance:
        if name in self._features or name in self._ignored:
          continue
        if name == self.contract.label:
          raise RequestError(
              f'{where}: {name!r} is the label, which the model predicts; '
              'leave it out of the request.', LABEL_SENT)
        raise RequestError(
            f'{where}: unknown feature {name!r}; model '
            f'{self.contract.dataset!r} takes '
            f'{", ".join(sorted(self._features))}.', UNKNOWN_FEATURE)
    row: Row = {}
    missing, unseen = [], []
    for name, feature in self._features.items():
      value = instance.get(name)
      if value is None:
        if feature.required:
          raise RequestError(
              f'{where}: missing required feature {name!r} '
              f'({feature.dtype}); every row needs '
              f'{", ".join(self.contract.required)}.', MISSING_FEATURE)
        missing.append(name)
        continue
      value = typed_value(feature, value, where)
      row[name] = value
      vocabulary = self._vocabularies.get(name)
      if vocabulary is not None and str(value) not in vocabulary:
        unseen.append(name)
    return row, missing, unseen

  def check_rows(self, instances: Sequence[Any], strict: bool = True,
                 names: Optional[Sequence[str]] = None) -> Rows:
    """Checks each row; `names[i]` (or 'instance i') names row i."""
    rows = Rows(values=[])
    for i, instance in enumerate(instances):
      where = names[i] if names is not None else f'instance {i}'
      row, missing, unseen = self.check_row(instance, where, strict)
      rows.values.append(row)
      rows.missing.update(missing)
      rows.unseen.update(unseen)
    return rows

  def check_request(self, body: bytes) -> Rows:
    """Parses and checks a predict request's body.

    Raises:
      RequestError: Not JSON, not a predict request, or a bad row.
    """
    try:
      request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
      raise RequestError(
          f'the request body is not JSON ({e}); send '
          '{"instances": [{"feature": value, ...}]}.', NOT_JSON) from None
    if not isinstance(request, dict):
      raise RequestError(
          f'the request body is {_kind(request)}, not an object; send '
          '{"instances": [{"feature": value, ...}]}.', BAD_BODY)
    signature = request.get('signature_name', self.contract.signature)
    if signature != self.contract.signature:
      raise RequestError(
          f'unknown signature_name {signature!r}; this model serves '
          f'{self.contract.signature!r} (or leave signature_name out).',
          UNKNOWN_SIGNATURE)
    has_instances, has_inputs = 'instances' in request, 'inputs' in request
    if has_instances == has_inputs:
      raise RequestError(
          'a predict request has exactly one of "instances" (a list of '
          'rows) or "inputs" (columns); got '
          + ('both.' if has_instances else
             f'keys {sorted(request)}.'), BAD_BODY)
    if has_inputs:
      instances = _rows_of_columns(request['inputs'])
    else:
      instances = request['instances']
      if not isinstance(instances, list):
        raise RequestError(
            f'"instances" is {_kind(instances)}; send a list of rows, '
            '[{"feature": value, ...}, ...].', WRONG_SHAPE)
    if not instances:
      raise RequestError('no rows to score: "instances" is empty; send at '
                         'least one row.', EMPTY)
    if len(instances) > MAX_ROWS:
      raise RequestError(
          f'{len(instances)} rows in one request; send at most {MAX_ROWS} '
          'per request.', TOO_MANY_ROWS)
    rows = self.check_rows(instances)
    rows.columnar = has_inputs
    return rows


def _rows_of_columns(inputs: Any) -> List[Row]:
  """TF Serving's columnar form, {feature: [value per row]}, as rows."""
  if not isinstance(inputs, dict):
    raise RequestError(
        f'"inputs" is {_kind(inputs)}; send an object of feature: [one '
        'value per row].', WRONG_SHAPE)
  lengths = {}
  for name, column in inputs.items():
    if not isinstance(column, list):
      raise RequestError(
          f'inputs[{name!r}] is {_kind(column)}; in the columnar form each '
          'feature holds a list, one value per row.', WRONG_SHAPE)
    lengths[name] = len(column)
  if len(set(lengths.values())) > 1:
    raise RequestError(
        'the columns of "inputs" differ in length '
        f'({", ".join(f"{k}: {v}" for k, v in sorted(lengths.items()))}); '
        'each needs one value per row.', WRONG_SHAPE)
  count = next(iter(lengths.values()), 0)
  return [{name: column[i] for name, column in inputs.items()}
          for i in range(count)]


def encode(rows: Sequence[Mapping[str, Any]],
           contract: serving_contract.Contract) -> List[bytes]:
  """Serialized tf.Examples of checked rows (missing features left out)."""
  # pylint: disable=g-import-not-at-top
  from tensorflow.core.example import example_pb2
  dtypes = {f.name: f.dtype for f in contract.features}
  serialized = []
  for row in rows:
    example = example_pb2.Example()
    feature_map = example.features.feature
    for name, value in row.items():
      dtype = dtypes[name]
      if dtype == serving_contract.FLOAT:
        feature_map[name].float_list.value.append(value)
      elif dtype == serving_contract.INT:
        feature_map[name].int64_list.value.append(value)
      else:
        feature_map[name].bytes_list.value.append(value.encode('utf-8'))
    serialized.append(example.SerializeToString())
  return serialized
