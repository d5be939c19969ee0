"""DriftGate: stops the run when today's data drifted from the last accepted data.

TFX 1.16's ExampleValidator calls `tfdv.validate_statistics` with statistics
and schema only, so the `drift_comparator`s in the curated schema are never
evaluated by it. This gate evaluates them: it compares the new statistics with
the statistics of the last run whose data passed this gate, and fails the
execution on a comparator anomaly that is not allow-listed. With data in
spans, that is the last accepted span.

The baseline is "last *accepted* data", not "last run's data": each passing
execution copies the statistics it accepted into its `accepted_statistics`
output and records that output in a baseline record, a small JSON file
under the pipeline root (`baseline_record_path`). The next run reads the
record. A run stopped for drift never becomes the baseline, so re-running
the same drifted data stops again instead of passing against itself.
Allow-listing the anomaly type (`--allow-anomaly COMPARATOR_L_INFTY_HIGH`)
accepts the new data once, and it becomes the new baseline.

Why a record and not a Resolver node: KubeflowV2DagRunner compiles a
Resolver's latest-artifact strategy into a query by artifact type alone,
so on Vertex it would resolve the newest ExampleStatistics of any
component, StatisticsGen's of this very run included, and the gate would
compare the data with itself. The record means the same thing under every
orchestrator (local, Airflow, Vertex) and is read and written with
`tf.io.gfile`, so a gs:// pipeline root works too.

`add_to_pipeline` wires the gate between the anomaly gate and training.
"""

import datetime
import json
import os
from typing import Any
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

from absl import logging
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from pipeline.components import anomaly_gate
from pipeline.facts import components as component_ids
from pipeline.facts import files

ACCEPTED_STATISTICS = 'accepted_statistics'
# Under the pipeline root: one baseline record per pipeline name.
BASELINE_DIR = 'drift_baseline'
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
  return io_utils.SchemaReader().read(os.path.join(uri, files.SCHEMA_FILE))


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
          schema: schema_pb2.Schema, allowed: Sequence[str] = (),
          baseline_name: str = 'the last accepted data'
          ) -> List[str]:
  """Compares split by split; returns the allow-listed lines.

  Args:
    current: This run's statistics per split.
    previous: The baseline's statistics per split.
    schema: The curated schema, with its drift comparators.
    allowed: Anomaly types to tolerate.
    baseline_name: How the message names the baseline.

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
        f'Data drifted from {baseline_name}, which stops the run '
        f'before training ({len(blocking)}): ' + '; '.join(blocking) +
        '. Check the new data; if the change is real and expected, accept it '
        f'once with {accept} (it then becomes the baseline), or loosen the '
        'drift_comparator threshold in the curated schema.')
  return tolerated


def baseline_record_path(pipeline_root: str, pipeline_name: str) -> str:
  """Where a pipeline's baseline record lives."""
  return os.path.join(pipeline_root, BASELINE_DIR, f'{pipeline_name}.json')


def _span_of(artifact: Any) -> Optional[int]:
  """The artifact's span; None for TFX's 0 of data without spans."""
  # Examples carry it as a custom property, statistics as a property.
  span = None
  if artifact.has_property('span'):
    span = artifact.span
  elif artifact.has_custom_property('span'):
    span = artifact.get_int_custom_property('span')
  return span or None


def read_baseline(record_path: str
                  ) -> Optional[standard_artifacts.ExampleStatistics]:
  """The accepted statistics the record names, or None before any.

  Raises:
    FileNotFoundError: The record names statistics that are gone; says how
      to start a new baseline.
    ValueError: The record is not one this gate wrote.
  """
  if not tf.io.gfile.exists(record_path):
    return None
  with tf.io.gfile.GFile(record_path, 'r') as f:
    text = f.read()
  try:
    record = json.loads(text)
    uri, split_names = record['uri'], record['split_names']
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(
        f'The drift baseline record {record_path} is damaged ({e}); delete '
        'it to make the next accepted data the baseline.') from None
  if not tf.io.gfile.isdir(uri):
    raise FileNotFoundError(
        f'The drift baseline record {record_path} names statistics at {uri}, '
        'which no longer exist; delete the record to make this run\'s data '
        'the new baseline.')
  baseline = standard_artifacts.ExampleStatistics()
  baseline.uri = uri
  baseline.split_names = split_names
  if record.get('span') is not None:
    baseline.span = int(record['span'])
  return baseline


def write_baseline(record_path: str,
                   accepted: standard_artifacts.ExampleStatistics) -> None:
  """Points the record at `accepted`; the old record stays whole until then."""
  record = {'uri': accepted.uri, 'split_names': accepted.split_names,
            'span': _span_of(accepted),
            'accepted_at': datetime.datetime.now(
                datetime.timezone.utc).isoformat(timespec='seconds')}
  tf.io.gfile.makedirs(os.path.dirname(record_path))
  temporary = f'{record_path}.tmp'
  with tf.io.gfile.GFile(temporary, 'w') as f:
    f.write(json.dumps(record, indent=1) + '\n')
  tf.io.gfile.rename(temporary, record_path, overwrite=True)


def _described(baseline: standard_artifacts.ExampleStatistics) -> str:
  span = _span_of(baseline)
  return ('the last accepted data' if span is None else
          f'the last accepted data (span {span})')


@component
def DriftGate(
    statistics: InputArtifact[
        standard_artifacts.ExampleStatistics],
    schema: InputArtifact[
        standard_artifacts.Schema],
    accepted_statistics: OutputArtifact[
        standard_artifacts.ExampleStatistics],
    baseline_record: Parameter[str],
    examples: InputArtifact[standard_artifacts.Examples] = None,
    allowed_anomaly_types: Parameter[str] = '',
    splits: Parameter[str] = DEFAULT_SPLITS,
) -> None:
  """Fails on drift beyond the schema's comparators; else records a baseline.

  Args:
    statistics: This run's StatisticsGen output.
    schema: The curated schema, with `drift_comparator`s.
    accepted_statistics: A copy of `statistics`, written only when they pass;
      the baseline record then names it.
    baseline_record: Path of the baseline record (`baseline_record_path`).
      Without one (a first run) the data passes and becomes the baseline.
    examples: The examples of `statistics`, for their span (StatisticsGen
      does not copy it); not read.
    allowed_anomaly_types: Comma-separated anomaly types to tolerate.
    splits: Comma-separated split names to compare.

  Raises:
    DataDriftError: Blocking drift; the message lists it on one line.
  """
  allowed = [a.strip() for a in allowed_anomaly_types.split(',') if a.strip()]
  wanted = [s.strip() for s in splits.split(',') if s.strip()]
  available = artifact_utils.decode_split_names(statistics.split_names)
  baseline = read_baseline(baseline_record)
  if baseline is None:
    logging.warning('DriftGate: no accepted statistics from an earlier run; '
                    'this run becomes the drift baseline.')
  else:
    base_splits = set(artifact_utils.decode_split_names(baseline.split_names))
    compared = [s for s in wanted if s in available and s in base_splits]
    tolerated = check(
        {s: read_statistics(statistics, s) for s in compared},
        {s: read_statistics(baseline, s) for s in compared},
        read_schema(schema.uri), allowed, baseline_name=_described(baseline))
    for line in tolerated:
      logging.warning('DriftGate: allow-listed drift, continuing: %s', line)
    accepted_statistics.set_string_custom_property('baseline_uri',
                                                   baseline.uri)
  accepted_statistics.split_names = statistics.split_names
  span = _span_of(examples) if examples is not None else None
  if span is not None:
    accepted_statistics.span = span
  for split in available:
    source = artifact_utils.get_split_uri([statistics], split)
    target = artifact_utils.get_split_uri([accepted_statistics], split)
    io_utils.copy_dir(source, target)
  write_baseline(baseline_record, accepted_statistics)


def add_to_pipeline(components: List, example_gen, statistics_gen,
                    import_schema_gen, after, before,
                    allowed_anomaly_types: Sequence[str],
                    baseline_record: str) -> None:
  """Appends the gate; orders it after/before.

  Args:
    components: The pipeline's component list; the gate is appended.
    example_gen: Provides the examples' span.
    statistics_gen: Provides this run's statistics.
    import_schema_gen: Provides the curated schema.
    after: Node that must succeed first (the anomaly gate), so that data
      with schema anomalies never becomes the baseline.
    before: Node that must wait for the gate (the Tuner or the Trainer).
    allowed_anomaly_types: GateConfig.allowed_anomalies.
    baseline_record: `baseline_record_path(pipeline root, name)`.
  """
  gate = DriftGate(
      statistics=statistics_gen.outputs['statistics'],
      schema=import_schema_gen.outputs['schema'],
      examples=example_gen.outputs['examples'],
      baseline_record=baseline_record,
      allowed_anomaly_types=','.join(allowed_anomaly_types),
  ).with_id(component_ids.DRIFT_GATE)
  gate.add_upstream_node(after)
  before.add_upstream_node(gate)
  components.append(gate)
