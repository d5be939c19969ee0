"""Logs a finished local run to MLflow, from the one MLMD read model.

    tracker = tracker_lib.start(layout.tracking, layout.root)  # before TFX
    ...                                                    # the pipeline runs
    mlflow_log.log_run(tracker, run, summary, config, metadata=location,
                       report_path=path)                   # after the report

One MLflow run per pipeline run, in the experiment named after the
pipeline:

- parameters: the config (dataset, task, data root, span and format,
  training settings, gate thresholds); URLs with their password masked;
- metrics: the Evaluator's, overall (`auc`) and per slice
  (`slice/payment_type:Cash/auc`), `blessed` (1 or 0), a binary
  model's `decision_threshold`, and the serving check's
  (`serving_check.passed`, `.rows`, `.max_difference`);
- tags: the gate decision, its reason and its plain sentence
  (`gate.sentence`), the decision rule, the serving check's line
  (`serving_check`), and the MLMD pipeline run id,
  store and artifact ids (`mlmd.run_id`, `mlmd.artifact.model`, ...);
- artifacts: the HTML report, the curated schema, the statistics and the
  model card.

A model this run pushed is logged under `model/` as an MLflow pyfunc model
(loader `serving.mlflow_model`, named here, never imported: raw rows in,
the REST server's predictions out) and becomes a new version of the
registered model named after the dataset, tagged with its push path and
given the alias `champion`. The MLflow run id goes back into MLMD as custom properties of the
pipeline run's context (`mlflow_run_id`, `mlflow_tracking_uri`,
`mlflow_model_version`).

MLflow itself runs in a worker process (`mlflow_worker`, started by
`tracker`) before TFX is imported, so that its import overlaps the run.
Nothing here imports MLflow, and nothing here fails the run: a logging
failure prints one warning line that names the store (password masked) and
the problem.
"""

from __future__ import annotations

import dataclasses
from importlib import metadata as package_metadata
import math
import os
import re
import sys
from typing import Any
from typing import Dict
from typing import List
from typing import Mapping
from typing import Optional
from typing import Tuple
from typing import Union

from ml_metadata import errors as mlmd_errors
from ml_metadata.proto import metadata_store_pb2

from pipeline.definition import config as config_lib
from pipeline.facts import components as component_ids
from pipeline.facts import metadata_location
from pipeline.facts import tracking_location as location_lib
from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from pipeline.tracking import mlflow_worker
from pipeline.tracking import tracker as tracker_lib

# MLflow's limits on names and values (mlflow.utils.validation).
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 5000
_NAME_CHARS = re.compile(r'[^\w\-. :/]')
# MLMD custom properties written on the pipeline run's context.
RUN_ID_PROPERTY = 'mlflow_run_id'
URI_PROPERTY = 'mlflow_tracking_uri'
VERSION_PROPERTY = 'mlflow_model_version'
PUSH_PATH_TAG = 'push_path'
# The pyfunc loader of a registered version: a module name, not an import
# (the pipeline never imports serving/; tests/test_architecture.py).
LOADER_MODULE = 'serving.mlflow_model'
# What that loader needs, pinned to the versions installed here; TF-DF (and
# its ydf) when installed, for a gradient-boosted trees model.
PYFUNC_PACKAGES = ('mlflow', 'tensorflow', 'tf-keras', 'numpy', 'pandas',
                   'protobuf', 'tensorflow-decision-forests', 'ydf')
SLICE_PREFIX = 'slice/'


# --- What is logged: plain values from the read model ----------------------


def metric_key(name: str) -> str:
  """An MLflow metric name: 'precision[class 2]' -> 'precision.class_2'."""
  name = re.sub(r'\[class (\w+)\]', r'.class_\1', name)
  return _NAME_CHARS.sub('_', name)


def slice_key(slice_name: str, metric: str) -> str:
  """'payment_type=Cash', 'auc' -> 'slice/payment_type:Cash/auc'."""
  parts = [part.replace('=', ':', 1) for part in slice_name.split(', ')]
  return metric_key(SLICE_PREFIX + ' and '.join(parts) + '/' + metric)


def _finite(value: Any) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def metrics_of(summary: run_summary.RunSummary) -> Dict[str, float]:
  """The Evaluator's metrics, overall and per slice, and `blessed`.

  NaN values (AUC on a slice with one class) are left out: they say
  nothing, and not every MLflow store keeps them.
  """
  metrics = {metric_key(k): float(v) for k, v in summary.metrics.items()
             if _finite(v)}
  for slice_name, values in sorted(summary.slice_metrics.items()):
    metrics.update({slice_key(slice_name, k): float(v)
                    for k, v in values.items() if _finite(v)})
  if summary.blessed is not None:
    metrics['blessed'] = float(summary.blessed)
  threshold = (summary.decision or {}).get('threshold')
  if _finite(threshold):
    metrics['decision_threshold'] = float(threshold)
  check = summary.serving_check
  if check is not None and check.checked and not summary.model_unchanged:
    metrics['serving_check.passed'] = float(check.passed)
    if check.rows:
      metrics['serving_check.rows'] = float(check.rows)
    if _finite(check.max_difference):
      metrics['serving_check.max_difference'] = float(check.max_difference)
  choice = summary.chosen_model
  if choice is not None:
    # Each trained family's eval-split score (models/model_choice.py),
    # e.g. `eval_log_loss.dnn` and `eval_log_loss.gbt` under --model auto.
    metrics.update({metric_key(f'eval_{choice.metric}.{family}'): float(v)
                    for family, v in choice.scores.items() if _finite(v)})
  return metrics


def _flatten(prefix: str, value: Any, into: Dict[str, str]) -> None:
  if dataclasses.is_dataclass(value) and not isinstance(value, type):
    value = {f.name: getattr(value, f.name)
             for f in dataclasses.fields(value)}
  if isinstance(value, Mapping):
    for key, item in value.items():
      _flatten(f'{prefix}.{key}' if prefix else str(key), item, into)
    return
  if isinstance(value, (tuple, list)):
    value = ','.join(str(v) for v in value)
  into[prefix] = '' if value is None else str(value)


def params_of(config: config_lib.PipelineConfig,
              span: Optional[Union[int, str]] = None) -> Dict[str, str]:
  """The run's config as MLflow parameters; never a password.

  Args:
    config: The run's config.
    span: The span ExampleGen read (from MLMD), when the data has spans:
      its number, or 'A-B' for a range.
  """
  spec = config.dataset
  params = {
      'pipeline_name': config.pipeline_name,
      'dataset': spec.name,
      'task': spec.task,
      'label': spec.label_key,
      'classes': ','.join(spec.classes),
      'features': ','.join(spec.feature_columns),
      'slices': ','.join(spec.slice_features),
      'data_root': metadata_location.mask_url(config.data_root),
      'input_format': config.input_format,
      'schema_path': config.schema_path,
      'schema_sha256': config.schema_sha256,
      'enable_cache': str(config.enable_cache),
  }
  if span is not None:
    params['span'] = str(span)
  if config.sql is not None:
    params['sql_url'] = metadata_location.mask_url(config.sql.url)
    params['sql_query'] = config.sql.query
  _flatten('training', config.training, params)
  _flatten('gate', config.gate, params)
  tuning = getattr(config, 'tuning', None)  # --tune's budgets.
  if tuning is not None:
    _flatten('tuning', tuning, params)
  return {metric_key(k): v[:MAX_PARAM_VALUE] for k, v in params.items()}


def trained_params(summary: run_summary.RunSummary) -> Dict[str, str]:
  """The settings the Trainer really used, when they differ from the
  config's (`--tune` picks them): `trained.learning_rate`, ..."""
  found = (summary.training_info or {}).get('hyperparameters')
  params: Dict[str, str] = {}
  if isinstance(found, Mapping):
    _flatten('trained', found, params)
  choice = summary.chosen_model
  if choice is not None:  # The family kept: `--model auto` chooses it.
    params['trained.model'] = choice.chosen
  return {metric_key(k): v[:MAX_PARAM_VALUE] for k, v in params.items()}


def decision(summary: run_summary.RunSummary) -> str:
  """'BLESSED', 'NOT BLESSED', 'NOT EVALUATED' or 'MODEL UNCHANGED'."""
  if summary.model_unchanged:
    return 'MODEL UNCHANGED'
  return {True: 'BLESSED', False: 'NOT BLESSED', None: 'NOT EVALUATED'}[
      summary.blessed]


def mlmd_ids(run: run_model.Run) -> Dict[str, str]:
  """The MLMD artifact ids of the run's chain, by stage, as tags.

  For an unchanged model, evaluation, blessing and push are those of the
  run that blessed it (as `Run.chain` says).
  """
  tags = {f'mlmd.artifact.{link.stage}': str(link.artifact_id)
          for link in run.chain() if link.artifact_id is not None}
  for execution, key in ((run_model.STATISTICS_GEN, 'statistics'),
                         (run_model.EXAMPLE_VALIDATOR, 'anomalies')):
    found = run.execution(execution)
    artifact = found.output(key) if found else None
    if artifact is not None:
      tags[f'mlmd.artifact.{key}'] = str(artifact.id)
  schema = run.component(component_ids.IMPORT_SCHEMA_GEN)
  artifact = schema.output(run_summary.SCHEMA_KEY) if schema else None
  if artifact is not None:
    tags['mlmd.artifact.schema'] = str(artifact.id)
  baseline = (run.blessed_by or run).baseline_model
  if baseline is not None:
    tags['mlmd.artifact.baseline_model'] = str(baseline.id)
  return tags


def tags_of(run: run_model.Run, summary: run_summary.RunSummary,
            metadata: str) -> Dict[str, str]:
  """The gate decision and the MLMD ids that lead back to the run."""
  verdict = decision(summary)
  tags = {
      'mlmd.pipeline': run.pipeline_name,
      'mlmd.run_id': run.run_id,
      'mlmd.store': metadata,
      'gate.decision': verdict,
      'gate.reason': summary.blessing_reason or (
          'the run stopped before the Evaluator'),
      'gate.model_unchanged': str(summary.model_unchanged).lower(),
  }
  tags.update(mlmd_ids(run))
  if summary.blessing_sentence:
    tags['gate.sentence'] = summary.blessing_sentence
  if summary.decision:
    tags['decision.rule'] = str(summary.decision.get('rule', ''))
  if summary.serving_check is not None:
    tags['serving_check'] = run_summary.serving_check_text(
        summary.serving_check)
  if summary.blessed_in_run:
    tags['gate.blessed_in_run'] = summary.blessed_in_run
  if summary.pushed_model:
    tags['pushed_model'] = summary.pushed_model
  if summary.serving_model:
    tags['serving_model'] = summary.serving_model
  pushed = summary.pushed_model or (
      f'none new (serving {summary.serving_model})' if summary.serving_model
      else 'none')
  tags['mlflow.note.content'] = (
      f'Pipeline run `{run.run_id}` of `{run.pipeline_name}`: **{verdict}** '
      f'({tags["gate.reason"]}).\n\n{summary.blessing_sentence}\n\n'
      f'Pushed model: {pushed}.\n\nML Metadata: '
      f'{metadata}, pipeline run `{run.run_id}`.')
  return {k: v[:MAX_TAG_VALUE] for k, v in tags.items()}


def _files(folder: str) -> List[Tuple[str, str]]:
  """(file, its folder relative to `folder`) under a local folder."""
  found = []
  for root, _, names in os.walk(folder):
    for name in sorted(names):
      found.append((os.path.join(root, name),
                    os.path.relpath(root, folder).replace(os.sep, '/')))
  return found


def artifacts_of(run: run_model.Run, report_path: Optional[str],
                 extra: Tuple[str, ...] = ()) -> List[Tuple[str, str]]:
  """(local file, artifact folder) pairs: report, schema, statistics.

  Artifacts on a remote file system (gs://) are left out: they stay where
  the tags' MLMD ids point.
  """
  pairs = []
  if report_path and os.path.isfile(report_path):
    pairs.append((report_path, 'report'))
  schema = run.component(component_ids.IMPORT_SCHEMA_GEN)
  stats = run.execution(run_model.STATISTICS_GEN)
  for folder, artifact in (
      ('schema', schema.output(run_summary.SCHEMA_KEY) if schema else None),
      ('statistics', stats.output('statistics') if stats else None)):
    if artifact is not None and os.path.isdir(artifact.uri):
      for path, sub in _files(artifact.uri):
        pairs.append((path, folder if sub == '.' else f'{folder}/{sub}'))
  pairs.extend((path, 'model_card') for path in extra if os.path.isfile(path))
  return pairs


def request_for(run: run_model.Run, summary: run_summary.RunSummary,
                config: config_lib.PipelineConfig, *, metadata: str,
                report_path: Optional[str] = None,
                extra_artifacts: Tuple[str, ...] = (),
                failed: bool = False) -> Dict[str, Any]:
  """What the worker logs for one pipeline run (JSON-compatible).

  Args:
    run: The run, read back from MLMD.
    summary: Its summary.
    config: The config it ran with.
    metadata: The MLMD store, as shown (password masked).
    report_path: The run's HTML report.
    extra_artifacts: More files to log under `model_card/`.
    failed: A component failed: the MLflow run ends FAILED.
  """
  request: Dict[str, Any] = {
      'experiment': run.pipeline_name,
      'run_name': run.run_id,
      'start_time_ms': run.create_time_ms or None,
      'status': 'FAILED' if failed else mlflow_worker.FINISHED,
      'params': {**params_of(config, summary.span_flag()),
                 **trained_params(summary)},
      'metrics': metrics_of(summary),
      'tags': tags_of(run, summary, metadata),
      'artifacts': artifacts_of(run, report_path, extra_artifacts),
      'model': None,
  }
  pushed = summary.pushed_model
  if pushed and not summary.model_unchanged and os.path.isdir(pushed):
    version_tags = {PUSH_PATH_TAG: pushed, 'mlmd.run_id': run.run_id,
                    'mlmd.pipeline': run.pipeline_name}
    version_tags.update({k: v for k, v in mlmd_ids(run).items()
                         if k in ('mlmd.artifact.model', 'mlmd.artifact.push',
                                  'mlmd.artifact.blessing')})
    request['model'] = {
        'name': config.dataset.name,
        'path': pushed,
        'loader_module': LOADER_MODULE,
        'pip_requirements': pip_requirements(),
        'metadata': {'dataset': config.dataset.name,
                     'task': config.dataset.task,
                     'label': config.dataset.label_key,
                     'mlmd_run_id': run.run_id},
        'tags': version_tags,
        'description': (f'Pushed to {pushed} by pipeline run {run.run_id} '
                        f'of {run.pipeline_name}.'),
        'model_description': (
            f'The {config.dataset.name} models of pipeline '
            f'{run.pipeline_name} ({config.dataset.task}, label '
            f'{config.dataset.label_key}): one version per pushed model.'),
    }
  return request


def serve_command(tracking: location_lib.TrackingLocation, name: str,
                  version: str, port: int = 5001) -> str:
  """`mlflow models serve` for a registered version of a local store.

  MLflow starts its scoring server as `uvicorn` from PATH, so the command
  puts this environment's scripts first.
  """
  scripts = os.path.dirname(sys.executable)
  return (f'PATH={scripts}:$PATH MLFLOW_TRACKING_URI={tracking.uri} mlflow '
          f'models serve -m models:/{name}/{version} --env-manager local '
          f'--port {port}')


def pip_requirements(packages: Tuple[str, ...] = PYFUNC_PACKAGES
                     ) -> List[str]:
  """'name==version' of each package installed here, in order."""
  pinned = []
  for name in packages:
    try:
      pinned.append(f'{name}=={package_metadata.version(name)}')
    except package_metadata.PackageNotFoundError:
      continue  # TF-DF is optional: DNN models need none of it.
  return pinned


# --- The run's end ----------------------------------------------------------


def record_in_mlmd(location: metadata_location.MetadataLocation,
                   run: run_model.Run, logged: tracker_lib.Logged,
                   tracking: location_lib.TrackingLocation) -> None:
  """Custom properties on the pipeline run's context: MLflow run, store,
  model version, so that MLMD readers find the MLflow side."""
  store = run_model.open_store(location, readonly=False)
  context = store.get_context_by_type_and_name(run_model.RUN_CONTEXT,
                                               run.run_id)
  if context is None:
    raise LookupError(f'no pipeline run {run.run_id!r} in {location}')
  properties = context.custom_properties
  properties[RUN_ID_PROPERTY].string_value = logged.run_id
  properties[URI_PROPERTY].string_value = str(tracking)
  if logged.model_version:
    properties[VERSION_PROPERTY].string_value = str(logged.model_version)
  store.put_contexts([context])


def recorded_run_id(context: metadata_store_pb2.Context) -> Optional[str]:
  """The MLflow run id recorded on a pipeline run's context, if any."""
  value = context.custom_properties.get(RUN_ID_PROPERTY)
  return value.string_value if value is not None else None


def log_run(tracker: Optional[tracker_lib.Tracker], run: run_model.Run,
            summary: run_summary.RunSummary,
            config: config_lib.PipelineConfig, *,
            metadata: metadata_location.MetadataLocation,
            report_path: Optional[str] = None,
            extra_artifacts: Tuple[str, ...] = (),
            failed: bool = False) -> Optional[tracker_lib.Logged]:
  """Logs the run and prints one line: where it went, or a warning.

  Never raises for a logging problem, and changes none of the run's
  outputs; the tracker is closed afterwards.

  Returns:
    What MLflow recorded; None when logging is off or failed.
  """
  if tracker is None:
    return None
  tracking = tracker.location
  try:
    logged = tracker.log(request_for(
        run, summary, config, metadata=str(metadata),
        report_path=report_path, extra_artifacts=extra_artifacts,
        failed=failed))
  except tracker_lib.TrackingError as e:
    print(f'WARNING: MLflow logging to {tracking} failed: {e}. The run and '
          'its outputs are unaffected (--no-mlflow turns logging off).',
          file=sys.stderr, flush=True)
    return None
  finally:
    tracker.close()
  line = (f'MLflow: run {logged.run_id} (experiment {run.pipeline_name}) '
          f'in {tracking}')
  if logged.model_version:
    line += (f'; registered model {config.dataset.name} version '
             f'{logged.model_version} (alias {mlflow_worker.CHAMPION})')
  print(f'{line} [{logged.seconds_waited:.1f} s at the end of the run]',
        flush=True)
  if tracking.is_local:
    print(f'  Browse it: {tracking.ui_command()}', flush=True)
    if logged.model_version:
      print('  Serve it: ' + serve_command(
          tracking, config.dataset.name, logged.model_version), flush=True)
  try:
    record_in_mlmd(metadata, run, logged, tracking)
  except (LookupError, OSError, RuntimeError, mlmd_errors.StatusError) as e:
    print(f'WARNING: could not record MLflow run {logged.run_id} in ML '
          f'Metadata ({metadata}): {metadata.scrub(str(e))}',
          file=sys.stderr, flush=True)
  return logged
