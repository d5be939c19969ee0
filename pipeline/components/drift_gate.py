"""DriftGate: stops the run when today's data drifted from the last accepted data.

TFX 1.16's ExampleValidator calls `tfdv.validate_statistics` with statistics
and schema only, so the `drift_comparator`s in the curated schema are never
evaluated by it. This gate evaluates them: it compares the new statistics with
the statistics of the last run whose data passed this gate, and fails the
execution on a comparator anomaly that is not allow-listed.

The baseline is "last *accepted* data", not "last run's data": each passing
execution copies the statistics it accepted into its `accepted_statistics`
output, and the next run resolves the latest of those. A run stopped for drift
therefore never becomes the baseline, so re-running the same drifted data
stops again instead of passing against itself. Allow-listing the anomaly type
(`--allow-anomaly COMPARATOR_L_INFTY_HIGH`) accepts the new data once, and it
becomes the new baseline.

`add_to_pipeline` wires the gate between the anomaly gate and Transform.
"""

import os
from typing import Dict
from typing import List
from typing import Sequence
from typing import Tuple

from absl import logging
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.components.common import resolver
from tfx.types import artifact_utils
from tfx.types import channel
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from pipeline.components import anomaly_gate

DRIFT_GATE = 'DriftGate'
BASELINE_RESOLVER = 'AcceptedStatisticsResolver'
ACCEPTED_STATISTICS = 'accepted_statistics'
SCHEMA_FILE = 'schema.pbtxt'
# Splits compared by default. Train is the largest, so sampling noise is
# smallest there; eval/test are a tenth of the data each.
DEFAULT_SPLITS = 'train'
DRIFT_ANOMALY_TYPES = frozenset(
    anomalies_pb2.AnomalyInfo.Type.Name(t) for t in (
        anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH,
        anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
        anomalies_pb2.AnomalyInfo.COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH,
        anomalies_pb2.AnomalyInfo.COMPARATOR_LOW_NUM_EXAMPLES,
        anomalies_pb2.AnomalyInfo.COMPARATOR_HIGH_NUM_EXAMPLES,
    ))


class DataDriftError(RuntimeError):
  """The data moved away from the last accepted data beyond the schema's
  comparator thresholds, and that anomaly type is not allow-listed."""


def read_statistics(artifact: standard_artifacts.ExampleStatistics,
                    split: str
                    ) -> statistics_pb2.DatasetFeatureStatisticsList:
  """Reads one split of a StatisticsGen (or DriftGate) output artifact."""
  splits = artifact_utils.decode_split_names(artifact.split_names)
  if split not in splits:
    raise FileNotFoundError(
        f'No statistics for split {split!r} in {artifact.uri} (it has '
        f'{splits}); check the splits the DriftGate compares.')
  return stats_artifact_utils.load_statistics(artifact, split).proto()


def read_schema(uri: str) -> schema_pb2.Schema:
  return io_utils.SchemaReader().read(os.path.join(uri, SCHEMA_FILE))


def drift_lines(current: statistics_pb2.DatasetFeatureStatisticsList,
                previous: statistics_pb2.DatasetFeatureStatisticsList,
                schema: schema_pb2.Schema, split: str
                ) -> List[Tuple[str, str]]:
  """(anomaly type, readable line) for each comparator over its threshold.

  Only the schema's drift comparators count here; the schema's other
  constraints are ExampleValidator's job.
  """
  anomalies = tfdv.validate_statistics(current, schema,
                                       previous_statistics=previous)
  return [(kind, line)
          for kind, line in anomaly_gate.reasons(split, anomalies)
          if kind in DRIFT_ANOMALY_TYPES]


def check(current: Dict[str, statistics_pb2.DatasetFeatureStatisticsList],
          previous: Dict[str, statistics_pb2.DatasetFeatureStatisticsList],
          schema: schema_pb2.Schema, allowed: Sequence[str] = ()
          ) -> List[str]:
  """Compares split by split; returns the allow-listed lines.

  Raises:
    DataDriftError: A comparator anomaly outside `allowed`; one line.
  """
  blocking: List[str] = []
  kinds: List[str] = []
  tolerated: List[str] = []
  for split in sorted(current):
    if split not in previous:
      continue
    for kind, line in drift_lines(current[split], previous[split], schema,
                                  split):
      if kind in allowed:
        tolerated.append(line)
      else:
        blocking.append(line)
        kinds.append(kind)
  if blocking:
    accept = ' '.join(f'--allow-anomaly {k}' for k in sorted(set(kinds)))
    raise DataDriftError(
        'Data drifted from the last accepted data, which stops the run '
        f'before training ({len(blocking)}): ' + '; '.join(blocking) +
        '. Check the new data; if the change is real and expected, accept it '
        f'once with {accept} (it then becomes the baseline), or loosen the '
        'drift_comparator threshold in the curated schema.')
  return tolerated


class LatestIfAnyStrategy(resolver.ResolverStrategy):
  """The newest artifact of each channel, or none on a first run.

  TFX's LatestArtifactStrategy fails input resolution when there is nothing
  to resolve, which would fail every first run of a new output dir.
  """

  def resolve_artifacts(self, store, input_dict):  # pylint: disable=unused-argument
    return {key: sorted(artifacts, key=lambda a: a.id)[-1:]
            for key, artifacts in input_dict.items()}


@component
def DriftGate(  # pylint: disable=invalid-name
    statistics: InputArtifact[
        standard_artifacts.ExampleStatistics],
    schema: InputArtifact[
        standard_artifacts.Schema],
    accepted_statistics: OutputArtifact[
        standard_artifacts.ExampleStatistics],
    baseline_statistics: InputArtifact[
        standard_artifacts.ExampleStatistics] = None,
    allowed_anomaly_types: Parameter[str] = '',
    splits: Parameter[str] = DEFAULT_SPLITS,
) -> None:
  """Fails on drift beyond the schema's comparators; else records a baseline.

  Args:
    statistics: This run's StatisticsGen output.
    schema: The curated schema, with `drift_comparator`s.
    accepted_statistics: A copy of `statistics`, written only when they pass;
      the next run's baseline.
    baseline_statistics: The latest earlier `accepted_statistics`; absent on
      the first run, which then passes and becomes the baseline.
    allowed_anomaly_types: Comma-separated anomaly types to tolerate.
    splits: Comma-separated split names to compare.

  Raises:
    DataDriftError: Blocking drift; the message lists it on one line.
  """
  allowed = [a.strip() for a in allowed_anomaly_types.split(',') if a.strip()]
  wanted = [s.strip() for s in splits.split(',') if s.strip()]
  available = artifact_utils.decode_split_names(statistics.split_names)
  if baseline_statistics is None:
    logging.warning('DriftGate: no accepted statistics from an earlier run; '
                    'this run becomes the drift baseline.')
  else:
    base_splits = set(artifact_utils.decode_split_names(
        baseline_statistics.split_names))
    compared = [s for s in wanted if s in available and s in base_splits]
    tolerated = check(
        {s: read_statistics(statistics, s) for s in compared},
        {s: read_statistics(baseline_statistics, s) for s in compared},
        read_schema(schema.uri), allowed)
    for line in tolerated:
      logging.warning('DriftGate: allow-listed drift, continuing: %s', line)
  accepted_statistics.split_names = statistics.split_names
  for split in available:
    source = artifact_utils.get_split_uri([statistics], split)
    target = artifact_utils.get_split_uri([accepted_statistics], split)
    io_utils.copy_dir(source, target)


def add_to_pipeline(components: List, statistics_gen, import_schema_gen,
                    after, before, allowed_anomaly_types: Sequence[str],
                    strategy_class=LatestIfAnyStrategy) -> None:
  """Appends the baseline resolver and the gate; orders it after/before.

  Args:
    components: The pipeline's component list; two nodes are appended.
    statistics_gen: Provides this run's statistics.
    import_schema_gen: Provides the curated schema.
    after: Node that must succeed first (the anomaly gate), so that data
      with schema anomalies never becomes the baseline.
    before: Node that must wait for the gate (Transform).
    allowed_anomaly_types: GateConfig.allowed_anomalies.
    strategy_class: How the baseline is resolved. KubeflowV2DagRunner only
      compiles TFX's LatestArtifactStrategy (and LatestBlessedModelStrategy),
      so a Vertex pipeline must pass that one.
  """
  baseline = resolver.Resolver(
      strategy_class=strategy_class,
      statistics=channel.Channel(
          type=standard_artifacts.ExampleStatistics,
          producer_component_id=DRIFT_GATE,
          output_key=ACCEPTED_STATISTICS),
  ).with_id(BASELINE_RESOLVER)
  gate = DriftGate(
      statistics=statistics_gen.outputs['statistics'],
      schema=import_schema_gen.outputs['schema'],
      baseline_statistics=baseline.outputs['statistics'],
      allowed_anomaly_types=','.join(allowed_anomaly_types),
  ).with_id(DRIFT_GATE)
  gate.add_upstream_node(after)
  before.add_upstream_node(gate)
  components.extend([baseline, gate])
