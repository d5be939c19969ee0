"""What the input must hold: the curated schema's columns and the label rule.

Nothing here is specific to one dataset: expected columns and their types
come from the curated schema and the `DatasetSpec`, and the label's rule
from the task. A zero-config run (no curated schema yet) expects only the
label (`Expectations.without_schema`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict
from typing import FrozenSet
from typing import Tuple

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from models import features
from pipeline.facts import kinds
from pipeline.validation import problems

# ExampleValidator's name for a column that is in the data but not in the
# schema. Allow-listing it (GateConfig.allowed_anomalies / --allow-anomaly)
# also lets the input check accept unknown columns, so one switch covers both.
NEW_COLUMN_ANOMALY = 'SCHEMA_NEW_COLUMN'
# Fewest rows a multiclass label value may have. ExampleGen's hash split
# (SplitConfig 8/1/1) sends about 1 row in 10 to test and 1 in 10 to eval,
# and the model can only learn a class it has examples of in train. With 10
# rows a class expects 8 in train (all 10 miss train with probability
# 0.2**10, about 1e-7) and 1 in test, so the Evaluator has a chance to score
# it. It is a floor that catches typos and near-empty classes ('Adelie ' next
# to 'Adelie'), not a promise of useful per-class metrics.
MIN_ROWS_PER_CLASS = 10
_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1


@dataclasses.dataclass(frozen=True)
class LabelRule:
  """What the label column must hold for the task.

  Attributes:
    label_key: The label column.
    task: One of `features.TASKS`.
    positive_values: Binary only: the label values that mean "positive".
      Leave empty when the label holds 0/1.
    classes: Multiclass only: every allowed label value (a curated dataset
      config). Empty accepts any value, as a zero-code run does.
    min_rows_per_class: Multiclass: the fewest rows a class may have.
  """
  label_key: str
  task: str
  positive_values: Tuple[str, ...] = ()
  classes: Tuple[str, ...] = ()
  min_rows_per_class: int = MIN_ROWS_PER_CLASS

  def __post_init__(self) -> None:
    # Flags and YAML hand over lists; keep the frozen rule hashable.
    object.__setattr__(self, 'positive_values', tuple(self.positive_values))
    object.__setattr__(self, 'classes', tuple(self.classes))
    if not self.label_key:
      raise ValueError('LabelRule needs a label column; pass --label COLUMN.')
    if self.task not in features.TASKS:
      raise ValueError(f'LabelRule for {self.label_key!r}: task must be one of '
                       f'{", ".join(features.TASKS)}, got {self.task!r}.')
    if self.positive_values and self.task != features.BINARY:
      raise ValueError(
          f'LabelRule for {self.label_key!r}: positive values only apply to '
          f'a binary task, not {self.task}; drop --positive-label.')
    if self.classes and self.task != features.MULTICLASS:
      raise ValueError(
          f'LabelRule for {self.label_key!r}: classes only apply to a '
          f'multiclass task, not {self.task}.')
    if self.min_rows_per_class < 1:
      raise ValueError(
          f'LabelRule for {self.label_key!r}: min_rows_per_class must be at '
          f'least 1, got {self.min_rows_per_class}.')

  @classmethod
  def from_spec(cls, spec: features.DatasetSpec) -> 'LabelRule':
    """The rule a DatasetSpec implies.

    A binary spec's `label_classes` only name the scores (negative,
    positive); the label values themselves are 0/1 or
    `label_positive_values`, so only a multiclass spec restricts values.
    """
    return cls(
        label_key=spec.label_key, task=spec.task,
        positive_values=spec.label_positive_values,
        classes=(spec.label_classes
                 if spec.task == features.MULTICLASS else ()))

  @property
  def is_classification(self) -> bool:
    return self.task != features.REGRESSION


@dataclasses.dataclass(frozen=True)
class Expectations:
  """What the input must look like, from schema and DatasetSpec.

  `schema_path` is '' when there is no curated schema yet: then `types` is
  empty, the label is the only required column, and any column is accepted.
  """
  schema_path: str
  # Column -> kinds.INT / FLOAT / BYTES for every schema feature.
  types: Dict[str, str]
  required: FrozenSet[str]
  label_key: str

  @property
  def known(self) -> FrozenSet[str]:
    return frozenset(self.types)

  @property
  def curated(self) -> bool:
    return bool(self.schema_path)

  @classmethod
  def without_schema(cls, label_key: str) -> 'Expectations':
    """Structure checks only: the label is required, any column accepted."""
    return cls(schema_path='', types={}, required=frozenset({label_key}),
               label_key=label_key)


def load_expectations(schema_path: str,
                      dataset: features.DatasetSpec) -> Expectations:
  """Reads the curated schema and checks that it covers the DatasetSpec.

  Raises:
    problems.InputCheckError: The schema does not parse, or lacks a column
      the DatasetSpec uses.
  """
  schema = schema_pb2.Schema()
  try:
    with open(schema_path, encoding='utf-8') as f:
      text_format.Parse(f.read(), schema)
  except (OSError, text_format.ParseError) as e:
    raise problems.InputCheckError([problems.Problem(
        schema_path, f'cannot read the curated schema ({e}); fix the file or '
        'pass --schema PATH.')]) from e
  types = {f.name: schema_pb2.FeatureType.Name(f.type) for f in schema.feature}
  required = {f.name for f in schema.feature
              if f.presence.min_fraction > 0 or f.presence.min_count > 0}
  spec_columns = (dataset.label_key,) + dataset.feature_columns
  missing = [c for c in spec_columns if c not in types]
  if missing:
    raise problems.InputCheckError([problems.Problem(
        schema_path, f"DatasetSpec '{dataset.name}' uses column(s) "
        f'{", ".join(missing)} that the curated schema does not define; add '
        'them to the schema or remove them from the DatasetSpec.')])
  return Expectations(schema_path=schema_path, types=types,
                      required=frozenset(required | set(spec_columns)),
                      label_key=dataset.label_key)


def parses_as(value: str, kind: str) -> bool:
  """Whether CSV text is a value of `kind` (INT or FLOAT).

  Mirrors CsvExampleGen's type inference: Python's int and float parsing,
  int64 integers, finite floats.
  """
  try:
    number = int(value)
  except ValueError:
    if kind == kinds.INT:
      return False
    try:
      return math.isfinite(float(value))
    except ValueError:
      return False
  return _INT64_MIN <= number <= _INT64_MAX
