"""Request rows checked against the serving contract, then encoded.

A predict request carries raw rows as JSON (`{"instances": [{feature:
value, ...}, ...]}`, or TF Serving's columnar `{"inputs": {feature: [...]}}`;
serving/tf_serving.py reads those forms). Each row is checked against the model's contract
(models/serving_contract.py) before anything is scored, so a bad request
gets one message naming the row, the feature and the problem, instead of a
TensorFlow error or, worse, a silent default:

* a required feature (the dataset config's `required:`) that is absent,
  null or an empty string is refused; an optional one may be left out (or
  sent as null or "") and is treated as a gap in training is;
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
TOO_DEEP = 'too_deep'
UNKNOWN_LABEL = 'unknown_label'

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
  """
  values: List[Row]
  missing: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  unseen: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)


def kind(value: Any) -> str:
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
  if value is None:
    return 'null'
  return type(value).__name__


_SHOWN_CHARS = 60


def shown_text(text: str) -> str:
  """A name or message from a request, quoted and cut to 60 characters."""
  quoted = json.dumps(text[:_SHOWN_CHARS + 1])
  return quoted if len(quoted) <= _SHOWN_CHARS else (
      quoted[:_SHOWN_CHARS - 4] + '..."')


def shown(value: Any) -> str:
  """A JSON value as a message shows it: at most 60 characters.

  Written without recursion, and stopping once 60 characters are out, so
  that neither a value nested thousands deep nor a huge one costs more than
  those characters.
  """
  out: List[str] = []
  size = 0
  stack: List[Any] = [value]
  while stack and size <= _SHOWN_CHARS:
    item = stack.pop()
    if isinstance(item, _Raw):
      text = item.text
    elif isinstance(item, list):
      text = '['
      stack.append(_Raw(']'))
      # Only the first items can be shown; pushed last, popped first.
      for i in reversed(range(min(len(item), _SHOWN_CHARS))):
        stack.append(item[i])
        if i:
          stack.append(_Raw(', '))
    elif isinstance(item, dict):
      text = '{'
      stack.append(_Raw('}'))
      entries = []
      for entry in item.items():
        if len(entries) == _SHOWN_CHARS:
          break
        entries.append(entry)
      for i in reversed(range(len(entries))):
        key, entry = entries[i]
        stack.append(entry)
        stack.append(_Raw(shown_text(str(key)) + ': '))
        if i:
          stack.append(_Raw(', '))
    elif isinstance(item, float):
      text = repr(item)
    elif isinstance(item, str):
      text = shown_text(item)
    else:
      text = json.dumps(item) if isinstance(item, (bool, int)) or (
          item is None) else type(item).__name__
    out.append(text)
    size += len(text)
  text = ''.join(out)
  if stack or len(text) > _SHOWN_CHARS:
    return text[:_SHOWN_CHARS - 3] + '...'
  return text


@dataclasses.dataclass(frozen=True)
class _Raw:
  """Text `shown` writes as it is (brackets, separators)."""
  text: str


def quoted(name: str) -> str:
  """A feature name from a request, as a message quotes it (cut short)."""
  return repr(name) if len(name) <= _SHOWN_CHARS else (
      repr(name[:_SHOWN_CHARS]) + '...')


def _is_unicode(text: str) -> bool:
  """False for a string with a lone surrogate, which JSON's \\ud800 can
  carry but UTF-8 cannot encode."""
  try:
    text.encode('utf-8')
  except UnicodeEncodeError:
    return False
  return True


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
  prefix = f'{where}, feature {quoted(feature.name)} ({feature.dtype})'
  if isinstance(value, (list, dict, tuple)):
    raise RequestError(
        f'{prefix}: expected one value (a scalar), got {kind(value)} '
        f'{shown(value)}; send {_EXPECTED[feature.dtype]}, e.g. '
        f'"{feature.name}": {_example(feature)}.', WRONG_SHAPE)
  if feature.dtype == serving_contract.STRING:
    if isinstance(value, str):
      if not _is_unicode(value):
        raise RequestError(
            f'{prefix}: {shown(value)} is not valid Unicode (a lone '
            'surrogate, such as "\\ud800"); send UTF-8 text.', BAD_VALUE)
      return value
    raise RequestError(
        f'{prefix}: expected a string, got {kind(value)} {shown(value)}; '
        'quote the value.', WRONG_TYPE)
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise RequestError(
        f'{prefix}: expected {_EXPECTED[feature.dtype]}, got '
        f'{kind(value)} {shown(value)}.', WRONG_TYPE)
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
          f'{where} is {kind(instance)}, not an object; send each row as '
          '{"feature": value, ...}, the raw columns without the label.',
          BAD_INSTANCE)
    if strict:
      for name in instance:
        if name in self._features or name in self._ignored:
          continue
        if name == self.contract.label:
          raise RequestError(
              f'{where}: {quoted(name)} is the label, which the model '
              'predicts; leave it out of the request.', LABEL_SENT)
        raise RequestError(
            f'{where}: unknown feature {quoted(name)}; model '
            f'{self.contract.dataset!r} takes '
            f'{", ".join(sorted(self._features))}.', UNKNOWN_FEATURE)
    row: Row = {}
    missing, unseen = [], []
    for name, feature in self._features.items():
      value = instance.get(name)
      # An empty string is an empty cell, which training reads as missing
      # (CsvExampleGen, models/preprocessing.py): so it is one here too.
      if value is None or (value == '' and
                           feature.dtype == serving_contract.STRING):
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


def encode(rows: Sequence[Mapping[str, Any]],
           contract: serving_contract.Contract) -> List[bytes]:
  """Serialized tf.Examples of checked rows (missing features left out)."""
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
