"""Runs an accepted pipeline, components side by side, and reports the outcome.

Imported by `pipeline.local.run` only after the preflight accepted the input
and the run lock is held, because importing TFX takes most of a refusal's
time otherwise.
"""

from __future__ import annotations

import os
import sys
from typing import Callable
from typing import Optional

from google.protobuf import text_format
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline

from models import keras_choice
from models import treatments
from pipeline.definition import config as config_lib
from pipeline.definition import dataset_config
from pipeline.definition import draft_request as draft_lib
from pipeline.definition import pipeline as pipeline_lib
from pipeline.facts import commands
from pipeline.facts import files
from pipeline.facts import layout as layout_lib
from pipeline.facts import metadata_location
from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from pipeline.local import concurrent_runner
from pipeline.local import drafting
from pipeline.local import progress
from pipeline.local import warm_start_source
from pipeline.local import worker_client
from pipeline.tracking import run_end
from pipeline.tracking import tracker as tracker_lib


def sqlite_config(path: str) -> metadata_store_pb2.ConnectionConfig:
  return metadata.sqlite_metadata_connection_config(path)


def connection_config(layout: layout_lib.OutputLayout
                      ) -> metadata_store_pb2.ConnectionConfig:
  """The run's MLMD config: the MySQL store, or the output dir's SQLite."""
  if layout.metadata is not None:
    return layout.metadata.connection_config()
  return sqlite_config(layout.metadata_path)


def simulate_cpu_devices(count: int) -> None:
  """Splits the CPU into `count` logical devices, before TF initializes.

  Lets MirroredStrategy run with several replicas on a machine without GPUs.
  """
  import tensorflow as tf
  cpus = tf.config.list_physical_devices('CPU')
  tf.config.set_logical_device_configuration(
      cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)


# Nodes the component worker runs, on another core, while this process
# runs Transform: StatisticsGen and Transform both read the examples, and
# neither waits for the other.
WORKER_NODES = (pipeline_lib.STATISTICS_GEN, pipeline_lib.FEATURE_ATTRIBUTIONS)
# A gate's verdict explains a failed run better than an error of a node
# that ran beside it on the same rejected data (Transform).
ERROR_PRECEDENCE = (pipeline_lib.ANOMALY_GATE, pipeline_lib.DRIFT_GATE)


def _run_dag(pipeline: tfx_pipeline.Pipeline, layout: layout_lib.OutputLayout,
             worker: Optional[worker_client.NodeWorker] = None
             ) -> Optional[Exception]:
  """Runs a pipeline with progress lines; returns its error, if any."""
  # One line per component start and finish, from the runner's events.
  printer = progress.ProgressPrinter(
      layout.metadata_location, pipeline.pipeline_info.pipeline_name,
      total=len(pipeline.components))
  try:
    concurrent_runner.ConcurrentDagRunner(
        worker=worker, worker_nodes=WORKER_NODES,
        error_precedence=ERROR_PRECEDENCE, listener=printer).run(pipeline)
  except Exception as e:
    # Reported by the caller, after the summary of what did run.
    return e
  finally:
    printer.close()
  return None


def draft_dataset(config: config_lib.PipelineConfig,
                  layout: layout_lib.OutputLayout, draft: draft_lib.DraftRequest
                  ) -> dataset_config.DatasetConfig:
  """Profiles the data and writes the draft schema and dataset config.

  Runs ExampleGen, StatisticsGen and SchemaGen (the full run reuses them
  from the cache), so the drafts describe the data exactly as ExampleGen
  encodes it, empty cells included.

  Returns:
    The drafted config, read back from the file it was written to.
  """
  print('Zero-config run: profiling the data to draft a schema and a '
        'dataset config.', flush=True)
  error = _run_dag(pipeline_lib.create_pipeline(
      config, connection_config(layout), profile_only=True), layout)
  if error is not None:
    raise RuntimeError('profiling the data failed: '
                       + layout.metadata_location.scrub(str(error))
                       ) from error
  run = run_model.find_run(run_model.open_store(layout.metadata_location),
                           config.pipeline_name)
  stats_by_split = run_summary.load_statistics(
      run.component(pipeline_lib.STATISTICS_GEN).output('statistics'))
  statistics = statistics_pb2.DatasetFeatureStatisticsList()
  for split, split_stats in sorted(stats_by_split.items()):
    for dataset in split_stats.datasets:
      statistics.datasets.add().CopyFrom(dataset)
      statistics.datasets[-1].name = split
  inferred = run_summary.load_schema(
      run.component(pipeline_lib.SCHEMA_GEN).output('schema'))
  result = drafting.draft(statistics, inferred, name=draft.name,
                          label=draft.label, task=draft.task,
                          positive_label=draft.positive_label)
  folder = layout.draft_dir
  config_path = os.path.join(folder, files.DATASET_CONFIG_FILE)
  schema_path = os.path.join(folder, files.SCHEMA_FILE)
  _keep_previous(config_path)
  _keep_previous(schema_path)
  dataset_config.dump(result.config, config_path, header=(
      f'Drafted from {config.data_root} by a zero-config run.\n'
      'Review it, then commit it with schema.pbtxt (docs/own-data.md).\n'
      'Every feature may be missing in a request; list those a request '
      'must carry\nunder `required:` and give them a shape in '
      'schema.pbtxt.'))
  with open(schema_path, 'w', encoding='utf-8') as f:
    f.write(text_format.MessageToString(result.schema))
  drafted = dataset_config.load(config_path)
  print(describe_draft(drafted), flush=True)
  print(f'Draft dataset config: {config_path}\nDraft schema: {schema_path}',
        flush=True)
  return drafted


def describe_draft(drafted: dataset_config.DatasetConfig) -> str:
  """One line per column: its treatment and why."""
  spec = drafted.spec
  lines = [f'Label {spec.label_key!r}, task {spec.task}' + (
      f', classes {", ".join(spec.classes)}' if spec.is_classification
      else '')]
  groups = {c: treatment.key for treatment in treatments.PRIMARY
            for c in spec.columns(treatment)}
  groups.update({c: 'ignored' for c in spec.excluded_columns})
  for column, group in groups.items():
    note = drafted.notes.get(column, '')
    lines.append(f'  {column:<28} {group:<20} {note}'.rstrip())
  return '\n'.join(lines)


def _keep_previous(path: str) -> None:
  """An earlier draft (maybe hand-edited) is renamed, never overwritten."""
  if os.path.exists(path):
    os.replace(path, path + '.previous')


def execute(config: config_lib.PipelineConfig, layout: layout_lib.OutputLayout,
            cpu_replicas: int = 0,
            draft: Optional[draft_lib.DraftRequest] = None,
            config_for: Optional[Callable[[dataset_config.DatasetConfig],
                                          config_lib.PipelineConfig]] = None,
            tracker: Optional[tracker_lib.Tracker] = None,
            worker: Optional[worker_client.NodeWorker] = None) -> int:
  """Runs the DAG, then prints the summary and writes the report.

  Then it writes the pushed model's card and logs the run to MLflow through
  `tracker`, an MLflow worker already started (one is started here when
  None and the layout logs to MLflow). `worker`, a component worker
  already started, runs `WORKER_NODES`; None runs them here.

  Returns:
    0 when the run finished (blessed or not), 1 when a component failed.
  """
  if cpu_replicas > 1:
    simulate_cpu_devices(cpu_replicas)
  # The Evaluator loads Keras models in this process (the Trainer does the
  # same in run_fn, for the runs where it is not taken from the cache).
  keras_choice.skip_autograph_of_keras()
  os.makedirs(layout.root, exist_ok=True)
  if draft is not None:
    try:
      drafted = draft_dataset(config, layout, draft)
    except (RuntimeError, ValueError) as e:
      print(f'RUN FAILED: {e}', file=sys.stderr, flush=True)
      return 1
    if draft.draft_only:
      print('Stopped after the drafts (--draft-only). Review them, then '
            f'train with: {commands.COMMANDS["tabular-run"]} --data-root '
            f'{draft.data_root} --format {draft.input_format} '
            f'--dataset-config {os.path.join(layout.draft_dir, files.DATASET_CONFIG_FILE)} '
            f'--output-dir {layout.root}', flush=True)
      return 0
    config = config_for(drafted)
  # --warm-start: the blessed model to start from, fixed before the run.
  config = warm_start_source.resolve(config, layout)
  pipeline = pipeline_lib.create_pipeline(config, connection_config(layout))
  if tracker is None:  # run.py starts it sooner, before TFX's import.
    tracker = tracker_lib.start(layout.tracking, layout.root)
  error = _run_dag(pipeline, layout, worker)
  location = layout.metadata_location
  try:
    run = run_model.find_run(run_model.open_store(location),
                             config.pipeline_name)
    run_end.finish(run, config, location, layout.root, tracker,
                   failed=error is not None)
  except LookupError as e:
    print(f'No run recorded: {e}', flush=True)
  except metadata_location.MetadataStoreError as e:
    # The MySQL server went away during the run.
    print(f'RUN FAILED: cannot read the run back: {e}', file=sys.stderr,
          flush=True)
    return 1
  finally:
    tracker_lib.close(tracker)
  if error is not None:
    print(f'RUN FAILED: {type(error).__name__}: '
          f'{location.scrub(str(error))}', file=sys.stderr, flush=True)
    return 1
  return 0
