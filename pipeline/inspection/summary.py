"""Reads one pipeline run back from MLMD and its artifacts, for humans.

Used by the runners to print the end-of-run summary and by tests to assert
on what really happened (executions, cache hits, blessing, push).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
import tensorflow_model_analysis as tfma
from tfx.utils import io_utils

from models import model_config
from pipeline.definition import evaluation
from pipeline.definition import pipeline as pipeline_ids
from pipeline.inspection import run_model as inspect_lib
from pipeline.inspection import schema_diff

HEADLINE_METRICS = ('auc', 'binary_accuracy', evaluation.custom_metrics
                    .MAJORITY_RATE_NAME, evaluation.custom_metrics
                    .ACCURACY_LIFT_NAME, 'precision', 'recall', 'example_count')
MAX_SLICES_SHOWN = 6
# TFX Evaluator's name for the model under evaluation when a baseline exists.
CANDIDATE = 'candidate'


@dataclasses.dataclass
class ComponentRun:
  component_id: str
  state: str
  seconds: float


@dataclasses.dataclass
class RunSummary:
  """What one run did and decided."""
  run_id: str
  components: List[ComponentRun]
  metrics: Dict[str, float] = dataclasses.field(default_factory=dict)
  slice_metrics: Dict[str, Dict[str, float]] = dataclasses.field(
      default_factory=dict)
  blessed: Optional[bool] = None
  blessing_reason: str = ''
  pushed_model: Optional[str] = None
  evaluation_uri: Optional[str] = None
  schema_uris: Dict[str, str] = dataclasses.field(default_factory=dict)
  schema_differences: Optional[List[str]] = None
  training_info: Optional[Dict] = None

  def component(self, component_id: str) -> Optional[ComponentRun]:
    for run in self.components:
      if run.component_id == component_id:
        return run
    return None


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
  """Opens an existing SQLite MLMD store read-write (as MLMD requires)."""
  if not os.path.isfile(metadata_path):
    raise FileNotFoundError(
        f'No metadata store at {metadata_path}. Run the pipeline first, or '
        'pass the --output-dir of an earlier run.')
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE)
  return metadata_store.MetadataStore(config)


def run_ids(store: metadata_store.MetadataStore, pipeline_name: str
            ) -> List[str]:
  """Run ids of a pipeline, oldest first."""
  runs = [c for c in store.get_contexts_by_type('pipeline_run')
          if _belongs_to(store, c, pipeline_name)]
  runs.sort(key=lambda c: (c.create_time_since_epoch, c.id))
  return [c.name for c in runs]


def _belongs_to(store, run_context, pipeline_name: str) -> bool:
  parents = store.get_parent_contexts_by_context(run_context.id)
  return any(p.type == 'pipeline' and p.name == pipeline_name
             for p in parents) or not parents


def _node_id(store, execution) -> str:
  for context in store.get_contexts_by_execution(execution.id):
    if context.type == 'node':
      return context.name.split('.', 1)[-1]
  return execution.type


def summarize(store: metadata_store.MetadataStore, pipeline_name: str,
              run_id: Optional[str] = None) -> RunSummary:
  """Summarizes `run_id`, or the latest run of the pipeline."""
  ids = run_ids(store, pipeline_name)
  if not ids:
    raise LookupError(f'No runs of pipeline {pipeline_name!r} in the store.')
  run_id = run_id or ids[-1]
  context = store.get_context_by_type_and_name('pipeline_run', run_id)
  if context is None:
    raise LookupError(f'No run {run_id!r} of pipeline {pipeline_name!r}.')
  executions = store.get_executions_by_context(context.id)
  executions.sort(key=lambda e: (e.create_time_since_epoch, e.id))
  summary = RunSummary(run_id=run_id, components=[])
  for execution in executions:
    seconds = max(0.0, (execution.last_update_time_since_epoch -
                        execution.create_time_since_epoch) / 1000.0)
    summary.components.append(ComponentRun(
        component_id=_node_id(store, execution),
        state=inspect_lib.STATE_NAMES.get(execution.last_known_state,
                                          'unknown'),
        seconds=seconds))
    _collect_outputs(store, execution, summary.components[-1].component_id,
                     summary)
  curated = summary.schema_uris.get(pipeline_ids.IMPORT_SCHEMA_GEN)
  inferred = summary.schema_uris.get(pipeline_ids.SCHEMA_GEN)
  if curated and inferred:
    summary.schema_differences = schema_diff.diff(_read_schema(curated),
                                                  _read_schema(inferred))
  return summary


def _read_training_info(model_run_uri: str) -> Optional[Dict]:
  path = os.path.join(model_run_uri, model_config.TRAINING_INFO_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def _read_schema(uri: str) -> schema_pb2.Schema:
  return io_utils.SchemaReader().read(os.path.join(uri, 'schema.pbtxt'))


def _collect_outputs(store, execution, component_id: str,
                     summary: RunSummary) -> None:
  """Fills metrics, blessing and push from an execution's output artifacts."""
  events = store.get_events_by_execution_ids([execution.id])
  output_ids = [e.artifact_id for e in events
                if e.type == metadata_store_pb2.Event.OUTPUT]
  if not output_ids:
    return
  types = {t.id: t.name for t in store.get_artifact_types()}
  for artifact in store.get_artifacts_by_id(output_ids):
    kind = types.get(artifact.type_id)
    if kind == 'Schema':
      summary.schema_uris[component_id] = artifact.uri
    elif kind == 'ModelRun':
      summary.training_info = _read_training_info(artifact.uri)
    elif kind == 'ModelEvaluation':
      summary.evaluation_uri = artifact.uri
      summary.metrics, summary.slice_metrics = read_metrics(artifact.uri)
    elif kind == 'ModelBlessing':
      blessed = artifact.custom_properties.get('blessed')
      if blessed is not None:
        summary.blessed = bool(blessed.int_value)
    elif kind == 'PushedModel':
      pushed = artifact.custom_properties.get('pushed')
      if pushed is not None and pushed.int_value:
        summary.pushed_model = artifact.custom_properties[
            'pushed_destination'].string_value
  if summary.evaluation_uri and summary.blessed is not None:
    summary.blessing_reason = blessing_reason(summary.evaluation_uri)


def _slice_name(slice_key: Tuple) -> str:
  if not slice_key:
    return 'Overall'
  return ', '.join(f'{k}={v}' for k, v in slice_key)


def read_metrics(evaluation_uri: str
                 ) -> Tuple[Dict[str, float], Dict[str, Dict[str, float]]]:
  """Returns overall metrics and metrics per slice from an Evaluator output."""
  # Read the metrics protos directly: loading a full EvalResult also loads
  # plots and warns once per slice. With a baseline, TFMA stores both models;
  # keep the candidate (whose metrics include the `*_diff` values).
  overall: Dict[str, float] = {}
  by_slice: Dict[str, Dict[str, float]] = {}
  for record in tfma.load_metrics(evaluation_uri):
    slice_key = tfma.slicer.deserialize_slice_key(record.slice_key)
    values = {}
    for entry in record.metric_keys_and_values:
      if entry.key.model_name not in ('', CANDIDATE):
        continue
      name = entry.key.name + ('_diff' if entry.key.is_diff else '')
      if entry.value.HasField('double_value'):
        values[name] = entry.value.double_value.value
      elif entry.value.HasField('bounded_value'):
        values[name] = entry.value.bounded_value.value.value
    if slice_key:
      by_slice[_slice_name(slice_key)] = values
    else:
      overall = values
  return overall, by_slice


def blessing_reason(evaluation_uri: str) -> str:
  """One readable line on why the model was or was not blessed."""
  result = tfma.load_validation_result(evaluation_uri)
  if result.validation_ok:
    return 'all thresholds met'
  failures = []
  for per_slice in result.metric_validations_per_slice:
    for failure in per_slice.failures:
      name = failure.metric_key.name
      if failure.metric_key.is_diff:
        name += ' change vs baseline'
      value = failure.metric_value.double_value.value
      failures.append(f'{name} = {value:.4f} fails {_threshold(failure)}')
  if result.missing_thresholds:
    failures.append('missing metrics for thresholds: ' + ', '.join(
        t.metric_key.name for t in result.missing_thresholds))
  return '; '.join(failures) or 'validation failed'


def _threshold(failure) -> str:
  threshold = failure.metric_threshold
  if threshold.HasField('value_threshold'):
    bound = threshold.value_threshold
    if bound.HasField('lower_bound'):
      return f'threshold >= {bound.lower_bound.value:.4g}'
    if bound.HasField('upper_bound'):
      return f'threshold <= {bound.upper_bound.value:.4g}'
  if threshold.HasField('change_threshold'):
    change = threshold.change_threshold
    if change.HasField('absolute'):
      return f'change threshold >= {change.absolute.value:.4g}'
  return 'threshold'


def format_summary(summary: RunSummary) -> str:
  """Multi-line text for the terminal."""
  lines = [f'Run {summary.run_id}']
  for run in summary.components:
    lines.append(f'  {run.component_id:<28} {run.state:<9} {run.seconds:7.1f}s')
  if summary.training_info:
    info = summary.training_info
    lines.append(f"Training: {info['replicas_in_sync']} replica(s) in sync on "
                 f"{', '.join(info['devices'])}; global batch "
                 f"{info['global_batch_size']}")
  if summary.metrics:
    shown = [f'{k}={summary.metrics[k]:.4f}' for k in HEADLINE_METRICS
             if k in summary.metrics and not math.isnan(summary.metrics[k])]
    lines.append('Eval metrics (test split): ' + ', '.join(shown))
    diffs = [f'{k}={summary.metrics[k + "_diff"]:+.4f}'
             for k in ('auc', 'binary_accuracy')
             if k + '_diff' in summary.metrics]
    if diffs:
      lines.append('  vs latest blessed model: ' + ', '.join(diffs))
  largest = sorted(summary.slice_metrics.items(),
                   key=lambda item: -item[1].get('example_count', 0))
  for name, values in largest[:MAX_SLICES_SHOWN]:
    # AUC is undefined on a slice that holds a single class.
    single_class = values.get(evaluation.custom_metrics.MAJORITY_RATE_NAME) == 1
    shown = [f'{k}={values[k]:.4f}' for k in ('auc', 'binary_accuracy')
             if k in values and not math.isnan(values[k]) and
             not (k == 'auc' and single_class)]
    lines.append(f"  slice {name}: n={values.get('example_count', 0):.0f} "
                 + ', '.join(shown))
  if summary.blessed is None:
    lines.append('Blessing: not evaluated (the run stopped earlier)')
  else:
    verdict = 'BLESSED' if summary.blessed else 'NOT BLESSED'
    lines.append(f'Blessing: {verdict} ({summary.blessing_reason})')
  lines.append('Pushed model: ' + (summary.pushed_model or 'none'))
  if summary.schema_differences is not None:
    if summary.schema_differences:
      lines.append('Schema: the data differs from the curated schema '
                   '(inferred vs schema/):')
      lines.extend(f'  - {line}' for line in summary.schema_differences)
    else:
      lines.append('Schema: the inferred schema matches the curated one')
  return '\n'.join(lines)
