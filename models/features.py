"""Feature configuration: which columns are which kind of feature, and the label.

The pipeline is dataset-agnostic. Everything it knows about a particular CSV
lives in a `DatasetSpec`; the Chicago taxi spec below is just the default.
Specs travel to Transform and Trainer through `custom_config`, so they are
converted to and from plain JSON-compatible dicts.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Tuple

from models import decision as decision_lib
from models import treatments

TRANSFORMED_SUFFIX = '_xf'
MISSING_SUFFIX = '_missing'
# Token that stands in for an absent categorical value. It gets its own
# vocabulary entry, so "missing" is learned as its own category instead of
# being confused with a real one.
MISSING_TOKEN = '__missing__'

BINARY = 'binary'
MULTICLASS = 'multiclass'
REGRESSION = 'regression'
TASKS = (BINARY, MULTICLASS, REGRESSION)
# The model card's text when a dataset config leaves `intended_use` or
# `limitations` out.
NOT_STATED = 'Not stated in the dataset config.'
# DatasetSpec fields that document the data for people (the model card):
# not in `to_dict`, so editing them changes no cache key and retrains
# nothing, and not compared.
DOCUMENTATION_FIELDS = ('intended_use', 'limitations')


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """Describes one tabular dataset: its label, task and column treatments.

  Attributes:
    name: Short dataset name, used in pipeline names, model names and logs.
    label_key: Column holding the label.
    task: 'binary', 'multiclass' or 'regression'.
    label_positive_values: Binary tasks with a string (or non-0/1) label: the
      values that mean "positive". Leave empty when the label holds 0/1.
    label_classes: Classification tasks: the label values as strings, in the
      order of the model's scores. Binary: (negative, positive), default
      ('0', '1'). Multiclass: every class; a label outside it is an error.
    log_features, numeric_features, bucket_features, cyclical_features,
      categorical_features, integer_categorical_features: The columns of
      each column treatment: one field per entry of `treatments.TREATMENTS`
      (its `spec_field`), in its order; the entry describes the treatment.
      A treatment with a parameter (cyclical's period) holds (column,
      value) pairs. A column sits in at most one group that is not an extra
      encoding.
    excluded_columns: Columns present in the data that must never be model
      inputs, e.g. because they leak the label.
    slice_features: Raw columns the Evaluator slices metrics by.
    vocab_top_k: Largest vocabulary kept per categorical feature.
    oov_buckets: Hash buckets for values outside the vocabulary.
    num_buckets: Quantile buckets per bucketized feature.
    required_features: Feature columns a serving request must carry; a
      request without one is refused. Every other feature is optional: a
      missing value gets the treatment's missing-value handling, as a gap
      in training does (models/preprocessing.py).
    decision_rule: Binary tasks: how the Trainer chooses the decision
      threshold on the eval split, 'f1' or 'cost' (models/decision.py).
    false_positive_cost: With `decision_rule` 'cost': one false alarm's cost.
    false_negative_cost: With `decision_rule` 'cost': one missed positive's.
    intended_use: What the model is for and who should use it (the model
      card's text; no effect on the pipeline).
    limitations: Known limits and risks of the model and its data (the
      model card's text; no effect on the pipeline).
  """

  name: str
  label_key: str
  task: str = BINARY
  label_positive_values: Tuple[str, ...] = ()
  label_classes: Tuple[str, ...] = ()
  # One field per column treatment (models/treatments.py), in its order.
  log_features: Tuple[str, ...] = ()
  numeric_features: Tuple[str, ...] = ()
  bucket_features: Tuple[str, ...] = ()
  cyclical_features: Tuple[Tuple[str, int], ...] = ()
  categorical_features: Tuple[str, ...] = ()
  integer_categorical_features: Tuple[str, ...] = ()
  excluded_columns: Tuple[str, ...] = ()
  slice_features: Tuple[str, ...] = ()
  vocab_top_k: int = 200
  oov_buckets: int = 5
  num_buckets: int = 10
  required_features: Tuple[str, ...] = ()
  decision_rule: str = decision_lib.F1
  false_positive_cost: float = 1.0
  false_negative_cost: float = 1.0
  intended_use: str = dataclasses.field(default=NOT_STATED, compare=False)
  limitations: str = dataclasses.field(default=NOT_STATED, compare=False)

  def __post_init__(self) -> None:
    if self.task not in TASKS:
      raise ValueError(f'DatasetSpec {self.name!r}: task must be one of '
                       f'{", ".join(TASKS)}, got {self.task!r}.')
    classes = self.label_classes
    if len(set(classes)) != len(classes):
      raise ValueError(f'DatasetSpec {self.name!r}: label_classes repeat a '
                       f'value: {list(classes)}.')
    if self.task == MULTICLASS and len(classes) < 2:
      raise ValueError(
          f'DatasetSpec {self.name!r}: a multiclass task needs label_classes '
          f'with at least 2 classes, got {list(classes)}.')
    if self.task == BINARY and classes and len(classes) != 2:
      raise ValueError(
          f'DatasetSpec {self.name!r}: a binary task has exactly 2 '
          f'label_classes (negative, positive), got {list(classes)}.')
    if self.task != BINARY and self.label_positive_values:
      raise ValueError(
          f'DatasetSpec {self.name!r}: label_positive_values only applies to '
          f'binary tasks, not {self.task}.')
    if self.task == REGRESSION and classes:
      raise ValueError(f'DatasetSpec {self.name!r}: a regression task has no '
                       'label_classes.')
    features = self._primary_features
    duplicates = sorted({f for f in features if features.count(f) > 1})
    if duplicates:
      raise ValueError(
          f'DatasetSpec {self.name!r}: features listed in more than one group: '
          f'{duplicates}. Put each column in exactly one group.')
    forbidden = ({self.label_key, *self.excluded_columns} &
                 set(self.feature_columns))
    if forbidden:
      raise ValueError(
          f'DatasetSpec {self.name!r}: {sorted(forbidden)} is the label or an '
          'excluded column and must not also be a feature.')
    not_features = sorted(set(self.required_features) -
                          set(self.feature_columns))
    if not_features:
      raise ValueError(
          f'DatasetSpec {self.name!r}: required {not_features} are not '
          'feature columns; `required` lists columns the model reads.')
    try:
      rule = self.decision
    except ValueError as e:
      raise ValueError(f'DatasetSpec {self.name!r}: {e}') from None
    if self.task != BINARY and rule != decision_lib.DecisionRule():
      raise ValueError(
          f'DatasetSpec {self.name!r}: a decision rule applies to binary '
          f'tasks only, not {self.task}.')
    for treatment in treatments.TREATMENTS:
      parameter = treatment.parameter
      if parameter is None:
        continue
      for feature, value in self.entries(treatment):
        if value <= parameter.greater_than:
          raise ValueError(
              f'DatasetSpec {self.name!r}: {treatment.key} feature '
              f'{feature!r} needs a {parameter.name} > '
              f'{parameter.greater_than}, got {value}.')

  def columns(self, treatment: treatments.Treatment) -> Tuple[str, ...]:
    """The columns `treatment` encodes, in the dataset config's order."""
    return tuple(column for column, _ in self.entries(treatment))

  def entries(self, treatment: treatments.Treatment
              ) -> Tuple[Tuple[str, Optional[int]], ...]:
    """(column, parameter) for each column `treatment` encodes; the
    parameter is None for a treatment without one."""
    values = getattr(self, treatment.spec_field)
    if treatment.parameter is None:
      return tuple((column, None) for column in values)
    return tuple((column, value) for column, value in values)

  def columns_with_output(self, output: str) -> Tuple[str, ...]:
    """The columns whose treatment gives the model `output` (e.g.
    `treatments.VOCABULARY`), in the registry's order."""
    return tuple(column for treatment in treatments.TREATMENTS
                 if treatment.output == output
                 for column in self.columns(treatment))

  @property
  def _primary_features(self) -> Tuple[str, ...]:
    return tuple(column for treatment in treatments.PRIMARY
                 for column in self.columns(treatment))

  @property
  def feature_columns(self) -> Tuple[str, ...]:
    """All raw columns used as model inputs, in a stable order: the primary
    groups', then those only an extra encoding reads."""
    primary = self._primary_features
    extra = tuple(column for treatment in treatments.EXTRA
                  for column in self.columns(treatment)
                  if column not in primary)
    return primary + extra

  @property
  def decision(self) -> decision_lib.DecisionRule:
    """How the decision threshold is chosen (binary tasks)."""
    return decision_lib.DecisionRule(
        self.decision_rule, float(self.false_positive_cost),
        float(self.false_negative_cost))

  @property
  def serving_excluded_columns(self) -> Tuple[str, ...]:
    """Columns a serving request does not carry: the label and excluded ones."""
    return (self.label_key,) + self.excluded_columns

  @property
  def transformed_label_key(self) -> str:
    return transformed_name(self.label_key)

  @property
  def is_classification(self) -> bool:
    return self.task != REGRESSION

  @property
  def classes(self) -> Tuple[str, ...]:
    """Class names in score order; () for regression."""
    if self.task == BINARY:
      return self.label_classes or ('0', '1')
    return self.label_classes

  def to_dict(self) -> Dict[str, Any]:
    """Returns a JSON-compatible dict, for TFX `custom_config`.

    Without the DOCUMENTATION_FIELDS: they are not model inputs.
    """
    values = dataclasses.asdict(self)
    for name in DOCUMENTATION_FIELDS:
      del values[name]
    return values

  @classmethod
  def from_dict(cls, values: Mapping[str, Any]) -> 'DatasetSpec':
    """Inverse of `to_dict`; turns JSON lists back into tuples."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
      raise ValueError(f'Unknown DatasetSpec fields: {sorted(unknown)}')
    kwargs = {}
    for key, value in values.items():
      treatment = treatments.BY_SPEC_FIELD.get(key)
      if treatment is not None and treatment.parameter is not None:
        value = tuple((str(f), int(p)) for f, p in value)
      elif isinstance(value, list):
        value = tuple(value)
      kwargs[key] = value
    return cls(**kwargs)


def sorted_classes(values) -> Tuple[str, ...]:
  """Label values in a stable, natural order: numbers by value, then text."""
  def key(value: str):
    try:
      return (0, float(value), value)
    except ValueError:
      return (1, 0.0, value)
  return tuple(sorted({str(v) for v in values}, key=key))


def transformed_name(key: str) -> str:
  return key + TRANSFORMED_SUFFIX


def missing_indicator_name(key: str) -> str:
  return key + MISSING_SUFFIX + TRANSFORMED_SUFFIX
