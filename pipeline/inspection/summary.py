"""What one pipeline run did and decided, for humans and tests.

`summarize(run)` turns a `run_model.Run` (the one read model of MLMD) into a
`RunSummary`: component states and durations, the Evaluator's metrics and
blessing reason, the push, the schema differences and the training set-up.
The artifacts' contents are read with the TFX, TFDV and TFMA loaders; this
module queries no MLMD of its own. The loaders below (`load_schema`,
`load_statistics`, `load_anomalies`) also serve the notebooks and the report.

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
from typing import Union

from ml_metadata.proto import metadata_store_pb2
import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.writers import eval_config_writer
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.types import artifact as tfx_artifact_lib
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from models import eval_split
from models import hyperparameters
from models import model_choice
from models import model_config as model_config_lib
from pipeline.components import anomaly_gate
from pipeline.components import span_range
from pipeline.definition import evaluation
from pipeline.facts import components as component_ids
from pipeline.facts import metadata_location
from pipeline.inspection import gate_verdict
from pipeline.inspection import run_model
from pipeline.inspection import schema_diff
from pipeline.inspection import tuning as tuning_view

_METRICS = evaluation.custom_metrics
# Shown when present, in this order; each task produces its own subset.
HEADLINE_METRICS = (
    'auc', _METRICS.AUC_LOWER_BOUND_NAME, _METRICS.MACRO_AUC_NAME,
    _METRICS.MACRO_AUC_LOWER_BOUND_NAME, 'binary_accuracy',
    _METRICS.ACCURACY_NAME, _METRICS.MAJORITY_RATE_NAME,
    _METRICS.LOG_LOSS_SKILL_NAME, _METRICS.LOG_LOSS_SKILL_LOWER_BOUND_NAME,
    _METRICS.R_SQUARED_NAME,
    _METRICS.R_SQUARED_LOWER_BOUND_NAME, _METRICS.RMSE_NAME, _METRICS.MAE_NAME,
    _METRICS.LABEL_MEAN_NAME, 'precision', 'recall', 'example_count')
# The metrics compared with the baseline and shown per slice.
PRIMARY_METRICS = ('auc', 'binary_accuracy', _METRICS.ACCURACY_NAME,
                   _METRICS.R_SQUARED_NAME, _METRICS.RMSE_NAME)
MAX_SLICES_SHOWN = 6
# TFX Evaluator's name for the model under evaluation when a baseline exists.
CANDIDATE = 'candidate'
OVERALL = 'Overall'
# Output key of both schema components (ImportSchemaGen and SchemaGen).
SCHEMA_KEY = 'schema'


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
  # The failed thresholds (or 'all thresholds met'), exactly.
  blessing_reason: str = ''
  # The same decision in one sentence a newcomer understands.
  blessing_sentence: str = ''
  pushed_model: Optional[str] = None
  evaluation_uri: Optional[str] = None
  schema_uris: Dict[str, str] = dataclasses.field(default_factory=dict)
  schema_differences: Optional[List[str]] = None
  training_info: Optional[Dict] = None
  # An unchanged re-run: the model is already the blessed baseline, so
  # Evaluator and Pusher were skipped. The evaluation and blessing shown are
  # those of the run that blessed it (`blessed_in_run`).
  model_unchanged: bool = False
  blessed_in_run: Optional[str] = None
  serving_model: Optional[str] = None
  # The span ExampleGen read (data in span-N folders, or a query's {SPAN});
  # the last of a range, whose first is `first_span`.
  span: Optional[int] = None
  first_span: Optional[int] = None
  # With --tune: the Tuner's search record (its trials and verdict).
  tuning: Optional[hyperparameters.SearchRecord] = None
  # ServingCheck's verdict before the push (for an unchanged model, that of
  # the run that pushed it); None when it did not run.
  serving_check: Optional[run_model.ServingCheckResult] = None

  @property
  def decision(self) -> Optional[Dict]:
    """A binary model's decision threshold, as the Trainer recorded it
    (models/decision.py: threshold, rule, eval precision and recall)."""
    return (self.training_info or {}).get(eval_split.DECISION_KEY)

  @property
  def chosen_model(self) -> Optional[model_choice.Choice]:
    """The model family the Trainer kept and the eval scores it compared
    (models/model_choice.py); None for runs before the families."""
    return model_choice.of_training_info(self.training_info)

  def span_flag(self) -> Optional[str]:
    """The span as --span writes it: '3', or '1-3' for a range; or None."""
    if self.span is None:
      return None
    return (f'{self.first_span}-{self.span}' if self.first_span is not None
            else str(self.span))

  def component(self, component_id: str) -> Optional[ComponentRun]:
    for run in self.components:
      if run.component_id == component_id:
        return run
    return None


def summarize(run: run_model.Run) -> RunSummary:
  """Summarizes one run read by `run_model` (e.g. `run_model.find_run`)."""
  summary = RunSummary(
      run_id=run.run_id,
      components=[ComponentRun(e.component_id, e.state, e.seconds)
                  for e in run.executions],
      blessed=run.blessed, pushed_model=run.pushed_destination,
      evaluation_uri=run.evaluation_uri, serving_check=run.serving_check)
  if run.model_run_uri:
    summary.training_info = _read_training_info(run.model_run_uri)
  if run.tuner_results_uri:
    summary.tuning = tuning_view.read_record(run.tuner_results_uri)
  earlier = run.blessed_by
  if run.model_unchanged:
    summary.model_unchanged = True
  if earlier is not None:
    summary.blessed_in_run = earlier.run_id
    summary.blessed = earlier.blessed
    summary.evaluation_uri = earlier.evaluation_uri
    summary.serving_model = earlier.pushed_destination
    summary.serving_check = earlier.serving_check
  if summary.evaluation_uri:
    summary.metrics, summary.slice_metrics = read_metrics(
        summary.evaluation_uri)
    if summary.blessed is not None:
      summary.blessing_reason = blessing_reason(summary.evaluation_uri)
      summary.blessing_sentence = blessing_sentence(
          summary.evaluation_uri, summary.blessed, summary.metrics)
  if summary.model_unchanged:
    summary.blessing_reason = (
        'model unchanged: already the blessed baseline' +
        (f', judged in run {earlier.run_id}: {summary.blessing_reason}'
         if earlier is not None else ''))
  example_gen = run.execution(run_model.EXAMPLE_GEN_SUFFIX)
  examples = example_gen.output('examples') if example_gen else None
  if examples is not None:
    # A custom property of Examples; TFX records span 0 for data without
    # spans: nothing to show then.
    span = (examples.custom_properties.get('span') or
            examples.properties.get('span'))
    summary.span = (span.int_value or None) if span is not None else None
    first = examples.custom_properties.get(span_range.FIRST_SPAN)
    summary.first_span = first.int_value if first is not None else None
  schemas = {}
  for execution in run.executions:
    schema = execution.output(SCHEMA_KEY)
    if schema is not None:
      summary.schema_uris[execution.component_id] = schema.uri
      schemas[execution.component_id] = schema
  curated = schemas.get(component_ids.IMPORT_SCHEMA_GEN)
  inferred = schemas.get(component_ids.SCHEMA_GEN)
  if curated is not None and inferred is not None:
    summary.schema_differences = schema_diff.diff(load_schema(curated),
                                                  load_schema(inferred))
  return summary


def summarize_latest(
    location: Union[str, metadata_location.MetadataLocation],
    pipeline_name: str, run_id: Optional[str] = None) -> RunSummary:
  """Opens a store (read-only) and summarizes `run_id`, or the latest run.

  Args:
    location: The store: a `metadata_location` location, or a SQLite path.
    pipeline_name: The run's pipeline.
    run_id: The run; None for the latest.
  """
  store = run_model.open_store(location)
  return summarize(run_model.find_run(store, pipeline_name, run_id))


# --- Artifact loaders: TFX, TFDV and TFMA readers over MLMD artifacts ---


def tfx_artifact(artifact: metadata_store_pb2.Artifact
                 ) -> tfx_artifact_lib.Artifact:
  """The TFX Artifact of an MLMD artifact, for TFX's artifact helpers.

  Raises:
    ValueError: Not a standard TFX artifact type.
  """
  for value in vars(standard_artifacts).values():
    if (isinstance(value, type) and
        issubclass(value, tfx_artifact_lib.Artifact) and
        value.TYPE_NAME == artifact.type):
      result = value()
      result.set_mlmd_artifact(artifact)
      return result
  raise ValueError(f'Artifact #{artifact.id} at {artifact.uri} has type '
                   f'{artifact.type!r}, not a standard TFX artifact type.')


def split_names(artifact: metadata_store_pb2.Artifact) -> List[str]:
  """The splits of a split artifact (Examples, ExampleStatistics, ...)."""
  return artifact_utils.decode_split_names(tfx_artifact(artifact).split_names)


def load_schema(artifact: metadata_store_pb2.Artifact) -> schema_pb2.Schema:
  """The schema a Schema artifact holds (SchemaGen's or ImportSchemaGen's)."""
  return io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
      artifact_utils.get_single_uri([tfx_artifact(artifact)])))


def load_statistics(artifact: metadata_store_pb2.Artifact
                    ) -> Dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
  """StatisticsGen's statistics, by split."""
  stats = tfx_artifact(artifact)
  return {split: stats_artifact_utils.load_statistics(stats, split).proto()
          for split in split_names(artifact)}


def load_anomalies(artifact: metadata_store_pb2.Artifact
                   ) -> Dict[str, anomalies_pb2.Anomalies]:
  """ExampleValidator's anomalies, by split."""
  return anomaly_gate.read_anomalies(tfx_artifact(artifact))


def gbt_note(info: Dict) -> str:
  """'gradient-boosted trees: 68 trees in 2.1 s (2 threads)', then which
  template was kept and the refit, where models/gbt.py recorded them:
  '; template benchmark_rank1@v1 kept (eval 0.2540; '' 0.2860); refit on
  1798 train+eval rows: 84 trees in 1.3 s'."""
  note = (f"gradient-boosted trees: {info.get('trees')} trees in "
          f"{info.get('seconds', 0.0):.1f} s ({info.get('threads')} threads)")
  scores = info.get('templates') or {}
  if len(scores) > 1:
    kept = info.get('template')
    others = '; '.join(f'{name or "YDF defaults"} {_score(score)}'
                       for name, score in scores.items() if name != kept)
    note += (f"; template {kept or 'YDF defaults'} kept (eval "
             f"{_score(scores.get(kept))}; {others})")
  refit = info.get('refit')
  if refit:
    note += (f"; refit on {refit.get('rows')} train+eval rows: "
             f"{refit.get('trees')} trees in {refit.get('seconds', 0.0):.1f} s")
  return note


def _score(value: Optional[float]) -> str:
  return 'n/a' if value is None else f'{value:.4f}'


def warm_start_note(training_info: Optional[Dict]) -> str:
  """What --warm-start did ('from the model blessed in run ...', or 'none,
  started cold: ...'); '' without it. Written by models/warm_start.py."""
  return ((training_info or {}).get('warm_start') or {}).get('note', '')


def _read_training_info(model_run_uri: str) -> Optional[Dict]:
  # The file models/ writes next to the Trainer's logs; not a TFX artifact.
  path = os.path.join(model_run_uri, model_config_lib.TRAINING_INFO_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def slice_name(slice_key: Tuple) -> str:
  """'Overall' or 'feature=value, ...' for a deserialized TFMA slice key."""
  if not slice_key:
    return OVERALL
  return ', '.join(f'{k}={v}' for k, v in slice_key)


def metric_name(key) -> str:
  """'auc', 'auc_diff', or 'precision[class 2]' for a per-class metric."""
  name = key.name
  if key.HasField('sub_key') and key.sub_key.HasField('class_id'):
    name += f'[class {key.sub_key.class_id.value}]'
  return name + ('_diff' if key.is_diff else '')


def read_metrics(evaluation_uri: str, model_name: str = CANDIDATE
                 ) -> Tuple[Dict[str, float], Dict[str, Dict[str, float]]]:
  """Returns overall metrics and metrics per slice from an Evaluator output.

  Args:
    evaluation_uri: The Evaluator's output.
    model_name: With a baseline, TFMA stores both models: 'candidate' (whose
      metrics include the `*_diff` values) or 'baseline'. A single-model
      evaluation names its model ''.
  """
  # Read the metrics protos directly: loading a full EvalResult also loads
  # plots and warns once per slice.
  overall: Dict[str, float] = {}
  by_slice: Dict[str, Dict[str, float]] = {}
  for record in tfma.load_metrics(evaluation_uri):
    slice_key = tfma.slicer.deserialize_slice_key(record.slice_key)
    values = {}
    for entry in record.metric_keys_and_values:
      if entry.key.model_name not in ('', model_name):
        continue
      name = metric_name(entry.key)
      if entry.value.HasField('double_value'):
        values[name] = entry.value.double_value.value
      elif entry.value.HasField('bounded_value'):
        values[name] = entry.value.bounded_value.value.value
    if slice_key:
      by_slice[slice_name(slice_key)] = values
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
    # A flag in this TFMA version: which metrics is not recorded.
    failures.append('a metric a threshold names was not computed')
  return '; '.join(failures) or 'validation failed'


def _confidence(evaluation_uri: str) -> float:
  """The confidence level the gate's bounds used (its metric config)."""
  eval_config, _, _, _ = eval_config_writer.load_eval_run(evaluation_uri)
  for spec in eval_config.metrics_specs:
    for metric in spec.metrics:
      if metric.module == _METRICS.__name__ and metric.config:
        return float(json.loads(metric.config).get(
            'confidence', _METRICS.DEFAULT_CONFIDENCE))
  return _METRICS.DEFAULT_CONFIDENCE


def blessing_sentence(evaluation_uri: str, blessed: Optional[bool],
                      metrics: Dict[str, float]) -> str:
  """Why the model was or was not blessed, in one plain sentence."""
  result = tfma.load_validation_result(evaluation_uri)
  failures = []
  for per_slice in result.metric_validations_per_slice:
    for failure in per_slice.failures:
      threshold = failure.metric_threshold
      bound = None
      if threshold.HasField('value_threshold') and (
          threshold.value_threshold.HasField('lower_bound')):
        bound = threshold.value_threshold.lower_bound.value
      elif threshold.HasField('change_threshold') and (
          threshold.change_threshold.HasField('absolute')):
        bound = threshold.change_threshold.absolute.value
      failures.append(gate_verdict.Failure(
          failure.metric_key.name, failure.metric_key.is_diff,
          failure.metric_value.double_value.value, bound))
  return gate_verdict.sentence(blessed, metrics, failures,
                               bool(result.missing_thresholds),
                               _confidence(evaluation_uri))


def decision_text(decision: Optional[Dict]) -> str:
  """'0.31 (best F1 ...; on the eval split: precision 0.71, recall
  0.64)', or '' without a recorded threshold."""
  if not decision:
    return ''
  text = f"{decision['threshold']:.3g} ({decision['rule']}"
  precision, recall = decision.get('precision'), decision.get('recall')
  if precision is not None and recall is not None and not (
      math.isnan(precision) or math.isnan(recall)):
    text += (f'; on the eval split: precision {precision:.2f}, recall '
             f'{recall:.2f}')
  return text + ')'


def _threshold(failure) -> str:
  threshold = failure.metric_threshold
  if threshold.HasField('value_threshold'):
    bound = threshold.value_threshold
    if bound.HasField('lower_bound'):
      return 'threshold ' + lower_bound_text(bound.lower_bound.value, '>=')
    if bound.HasField('upper_bound'):
      return f'threshold <= {bound.upper_bound.value:.4g}'
  if threshold.HasField('change_threshold'):
    change = threshold.change_threshold
    if change.HasField('absolute'):
      return f'change threshold >= {change.absolute.value:.4g}'
  return 'threshold'


def lower_bound_text(value: float, at_least: str = '≥') -> str:
  """'≥ 0.9', or '> 0' for a strict bound (the gate adds STRICT_EPSILON)."""
  margin = round(value, 6)
  if 0 < value - margin <= 2 * evaluation.STRICT_EPSILON:
    return f'> {margin:.4g}'
  return f'{at_least} {value:.4g}'


def serving_check_text(check: run_model.ServingCheckResult) -> str:
  """ServingCheck's verdict in one line: 'passed: 200 test rows ...',
  'BLOCKED the push: ...' or 'skipped: ...'."""
  if not check.checked:
    return check.note or 'skipped'
  if check.passed:
    return f'passed: {check.note}'
  return f'BLOCKED the push: {check.note}'


def format_summary(summary: RunSummary) -> str:
  """Multi-line text for the terminal."""
  spans = ''
  if summary.span is not None:
    spans = (f' (span {summary.span})' if summary.first_span is None else
             f' (spans {summary.span_flag()})')
  lines = [f'Run {summary.run_id}{spans}']
  for run in summary.components:
    lines.append(f'  {run.component_id:<28} {run.state:<9} {run.seconds:7.1f}s')
  if summary.training_info:
    info = summary.training_info
    choice = summary.chosen_model
    if choice is None or choice.requested != model_config_lib.GBT:
      lines.append(f"Training: {info['replicas_in_sync']} replica(s) in sync "
                   f"on {', '.join(info['devices'])}; global batch "
                   f"{info['global_batch_size']}")
    if info.get(model_config_lib.GBT):
      lines.append('Training: ' + gbt_note(info[model_config_lib.GBT]))
    if choice is not None:
      lines.append(f'  model: {choice.note()}')
    if info.get('resumed_from_step'):
      lines.append(f"  resumed from the checkpoint at step "
                   f"{info['resumed_from_step']} of a killed run; trained "
                   f"{info['steps_trained']} more steps")
    if warm_start_note(info):
      lines.append(f'  warm start: {warm_start_note(info)}')
  if summary.tuning is not None:
    lines.extend(tuning_view.format_lines(
        summary.tuning, (summary.training_info or {}).get('hyperparameters')))
  if summary.metrics:
    shown = [f'{k}={summary.metrics[k]:.4f}' for k in HEADLINE_METRICS
             if k in summary.metrics and not math.isnan(summary.metrics[k])]
    lines.append('Eval metrics (test split): ' + ', '.join(shown))
    # The fairness indicators per class are the report's, not this line's.
    per_class = [f'{k}={v:.4f}' for k, v in summary.metrics.items()
                 if '[class ' in k and not k.endswith('_diff') and
                 not k.startswith(evaluation.FAIRNESS_PREFIX)]
    if per_class:
      lines.append('  per class: ' + ', '.join(per_class))
    diffs = [f'{k}={summary.metrics[k + "_diff"]:+.4f}'
             for k in PRIMARY_METRICS
             if k + '_diff' in summary.metrics]
    if diffs:
      lines.append('  vs latest blessed model: ' + ', '.join(diffs))
  largest = sorted(summary.slice_metrics.items(),
                   key=lambda item: -item[1].get('example_count', 0))
  for name, values in largest[:MAX_SLICES_SHOWN]:
    # AUC is undefined on a slice that holds a single class.
    single_class = values.get(evaluation.custom_metrics.MAJORITY_RATE_NAME) == 1
    shown = [f'{k}={values[k]:.4f}' for k in PRIMARY_METRICS
             if k in values and not math.isnan(values[k]) and
             not (k == 'auc' and single_class)]
    lines.append(f"  slice {name}: n={values.get('example_count', 0):.0f} "
                 + ', '.join(shown))
  if summary.model_unchanged:
    lines.append('Model unchanged: the Trainer\'s model is already the '
                 'blessed baseline; Evaluator, Pusher and FeatureAttributions '
                 'skipped, nothing new pushed.')
  if summary.blessed is None:
    lines.append('Blessing: not evaluated (the run stopped earlier)')
  else:
    verdict = 'BLESSED' if summary.blessed else 'NOT BLESSED'
    lines.append(f'Blessing: {verdict} ({summary.blessing_reason})')
    if summary.blessing_sentence:
      lines.append(f'  {summary.blessing_sentence}')
  if decision_text(summary.decision):
    lines.append('Decision threshold: P(positive) >= '
                 + decision_text(summary.decision))
  if summary.serving_check is not None:
    judged = (f' (run {summary.blessed_in_run})' if summary.model_unchanged
              and summary.blessed_in_run else '')
    lines.append(f'Serving check{judged}: '
                 + serving_check_text(summary.serving_check))
  if summary.model_unchanged:
    lines.append('Pushed model: none new' + (
        f' (serving {summary.serving_model}, pushed in run '
        f'{summary.blessed_in_run})' if summary.serving_model else ''))
  else:
    lines.append('Pushed model: ' + (summary.pushed_model or 'none'))
  if summary.schema_differences is not None:
    if summary.schema_differences:
      lines.append('Schema: the data differs from the curated schema '
                   '(inferred vs schema/):')
      lines.extend(f'  - {line}' for line in summary.schema_differences)
    else:
      lines.append('Schema: the inferred schema matches the curated one')
  return '\n'.join(lines)
