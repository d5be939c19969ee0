"""One feature's statistics, read one way for everyone who reads them.

The run report's statistics table, the serving monitor's summary and
schema drafting all ask StatisticsGen's output (TFDV's
`FeatureNameStatistics`) the same questions: the feature's name, its common
statistics, and how many rows hold no value.

The last one has a trap. An empty CSV cell (and a NULL of the SQL, Parquet
and Avro sources) becomes a tf.Example feature with an empty value list,
as CsvExampleGen writes it, and TFDV counts such a feature as present:
`num_missing` counts only rows without the feature. Measured with TFDV
1.16.1 on four rows, two of them blank: num_missing 0, num_non_missing 4,
min_num_values 0, tot_num_values 2. So a feature of at most one value per
row holds a value in exactly `tot_num_values` rows; for a multi-valued one
the common statistics cannot tell an empty list from a full one, and only
absent rows count as missing (`Presence.exact` is False).
"""

from __future__ import annotations

import dataclasses

from tensorflow_metadata.proto.v0 import statistics_pb2

_STATS = ('num_stats', 'string_stats', 'bytes_stats', 'struct_stats')


def feature_name(feature: statistics_pb2.FeatureNameStatistics) -> str:
  """'a.b' for a feature at path a/b; the legacy `name` without a path."""
  return '.'.join(feature.path.step) or feature.name


def common(feature: statistics_pb2.FeatureNameStatistics
           ) -> statistics_pb2.CommonStatistics:
  """The feature's common statistics, whatever its type; empty without."""
  which = feature.WhichOneof('stats')
  if which in _STATS:
    return getattr(feature, which).common_stats
  return statistics_pb2.CommonStatistics()


@dataclasses.dataclass(frozen=True)
class Presence:
  """How many rows of a split hold a value of one feature.

  Attributes:
    rows: Rows of the split.
    with_value: Rows that hold at least one value.
    exact: False for a multi-valued feature, whose rows with an empty list
      the statistics do not count: they are taken to hold a value.
  """
  rows: int
  with_value: int
  exact: bool = True

  @property
  def missing(self) -> int:
    """Rows without a value: the feature absent, or its list empty."""
    return self.rows - self.with_value

  @property
  def missing_share(self) -> float:
    """`missing` over `rows`; 0.0 for a split without rows."""
    return self.missing / self.rows if self.rows else 0.0


def presence(feature: statistics_pb2.FeatureNameStatistics,
             num_examples: int) -> Presence:
  """Rows with and without a value of `feature`, in a split of
  `num_examples` rows."""
  stats = common(feature)
  rows = max(int(num_examples),
             int(stats.num_non_missing + stats.num_missing))
  if stats.max_num_values <= 1:
    # At most one value per row: the values are the rows that hold one.
    return Presence(rows, int(stats.tot_num_values))
  return Presence(rows, int(stats.num_non_missing), exact=False)
