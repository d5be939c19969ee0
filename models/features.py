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

TRANSFORMED_SUFFIX = '_xf'
MISSING_SUFFIX = '_missing'
# Token that stands in for an absent categorical value. It gets its own
# vocabulary entry, so "missing" is learned as its own category instead of
# being confused with a real one.
MISSING_TOKEN = '__missing__'


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """Describes one tabular dataset with a binary label.

  Attributes:
    name: Short dataset name, used in pipeline names and logs.
    label_key: Column holding the label.
    label_positive_values: For a string label, the values that mean "positive".
      Leave empty when the label column already holds 0/1 integers.
    log_features: Non-negative, heavy-tailed numbers; log1p-scaled, then
      z-scored.
    numeric_features: Other numbers; z-scored.
    bucket_features: Numbers whose relationship to the label is not monotone
      (coordinates); cut into quantile buckets and embedded.
    cyclical_features: Integer features with a period (hour of day), as
      (column, period) pairs; encoded as sin/cos so that 23:00 sits next to
      00:00. This is an extra encoding: the column may also appear in one of
      the other groups.
    categorical_features: String columns; vocabulary-encoded.
    integer_categorical_features: Integer codes (area ids); vocabulary-encoded
      like strings because their numeric order means nothing.
    excluded_columns: Columns present in the data that must never be model
      inputs, e.g. because they leak the label.
    slice_features: Raw columns the Evaluator slices metrics by.
    vocab_top_k: Largest vocabulary kept per categorical feature.
    oov_buckets: Hash buckets for values outside the vocabulary.
    num_buckets: Quantile buckets per bucketized feature.
  """

  name: str
  label_key: str
  label_positive_values: Tuple[str, ...] = ()
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

  def __post_init__(self) -> None:
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
    for feature, period in self.cyclical_features:
      if period <= 1:
        raise ValueError(
            f'DatasetSpec {self.name!r}: cyclical feature {feature!r} needs a '
            f'period > 1, got {period}.')

  @property
  def _primary_features(self) -> Tuple[str, ...]:
    return (self.log_features + self.numeric_features + self.bucket_features +
            self.categorical_features + self.integer_categorical_features)

  @property
  def feature_columns(self) -> Tuple[str, ...]:
    """All raw columns used as model inputs, in a stable order."""
    cyclical = tuple(f for f, _ in self.cyclical_features
                     if f not in self._primary_features)
    return self._primary_features + cyclical

  @property
  def serving_excluded_columns(self) -> Tuple[str, ...]:
    """Columns a serving request does not carry: the label and excluded ones."""
    return (self.label_key,) + self.excluded_columns

  @property
  def transformed_label_key(self) -> str:
    return transformed_name(self.label_key)

  def to_dict(self) -> Dict[str, Any]:
    """Returns a JSON-compatible dict, for TFX `custom_config`."""
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values: Mapping[str, Any]) -> 'DatasetSpec':
    """Inverse of `to_dict`; turns JSON lists back into tuples."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
      raise ValueError(f'Unknown DatasetSpec fields: {sorted(unknown)}')
    kwargs = {}
    for key, value in values.items():
      if key == 'cyclical_features':
        value = tuple((str(f), int(p)) for f, p in value)
      elif isinstance(value, list):
        value = tuple(value)
      kwargs[key] = value
    return cls(**kwargs)


def transformed_name(key: str) -> str:
  return key + TRANSFORMED_SUFFIX


def missing_indicator_name(key: str) -> str:
  return key + MISSING_SUFFIX + TRANSFORMED_SUFFIX


# The Chicago taxi trips that ship with TFX; label: tip > 20% of the fare.
TAXI = DatasetSpec(
    name='taxi',
    label_key='big_tipper',
    log_features=('fare', 'trip_miles', 'trip_seconds'),
    numeric_features=('trip_start_timestamp',),
    bucket_features=('pickup_latitude', 'pickup_longitude',
                     'dropoff_latitude', 'dropoff_longitude'),
    cyclical_features=(('trip_start_hour', 24), ('trip_start_day', 7),
                       ('trip_start_month', 12)),
    categorical_features=('payment_type', 'company'),
    integer_categorical_features=('pickup_community_area',
                                  'dropoff_community_area',
                                  'trip_start_hour', 'trip_start_day'),
    # `tips` defines the label, so it would leak it. Pickup census tracts are
    # absent in all but one row of the default data.
    excluded_columns=('tips', 'pickup_census_tract', 'dropoff_census_tract'),
    slice_features=('payment_type', 'trip_start_hour'),
)

DATASETS: Dict[str, DatasetSpec] = {TAXI.name: TAXI}


def get_dataset(name: str, overrides: Optional[Mapping[str, Any]] = None
               ) -> DatasetSpec:
  """Looks up a registered dataset spec by name."""
  if name not in DATASETS:
    raise ValueError(
        f'Unknown dataset {name!r}. Known: {sorted(DATASETS)}. Register a '
        'DatasetSpec in models/features.py for a new CSV.')
  spec = DATASETS[name]
  return dataclasses.replace(spec, **overrides) if overrides else spec
