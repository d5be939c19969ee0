"""Runs an accepted pipeline with LocalDagRunner and reports the outcome.

Imported by `pipeline.local.run` only after the preflight accepted the input
and the run lock is held, because importing TFX takes most of a refusal's
time otherwise.
"""

from __future__ import annotations

import os
import sys

from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from pipeline import flags as cli
from pipeline.definition import config as config_lib
from pipeline.definition import pipeline as pipeline_lib
from pipeline.inspection import report
from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from pipeline.local import progress


def sqlite_config(path: str) -> metadata_store_pb2.ConnectionConfig:
  return tfx.orchestration.metadata.sqlite_metadata_connection_config(path)


def simulate_cpu_devices(count: int) -> None:
  """Splits the CPU into `count` logical devices, before TF initializes.

  Lets MirroredStrategy run with several replicas on a machine without GPUs.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  cpus = tf.config.list_physical_devices('CPU')
  tf.config.set_logical_device_configuration(
      cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)


def execute(config: config_lib.PipelineConfig, layout: cli.OutputLayout,
            cpu_replicas: int = 0) -> int:
  """Runs the DAG, then prints the summary and writes the report.

  Returns:
    0 when the run finished (blessed or not), 1 when a component failed.
  """
  if cpu_replicas > 1:
    simulate_cpu_devices(cpu_replicas)
  os.makedirs(layout.root, exist_ok=True)
  pipeline = pipeline_lib.create_pipeline(
      config, sqlite_config(layout.metadata_path))
  error = None
  # One line per component start and finish, read from MLMD as it goes.
  watcher = progress.ProgressPrinter(
      layout.metadata_path, config.pipeline_name,
      total=len(pipeline.components)).start()
  try:
    tfx.orchestration.LocalDagRunner().run(pipeline)
  except Exception as e:  # pylint: disable=broad-except
    # Report below, after the summary of what did run; never swallow.
    error = e
  finally:
    watcher.stop()
  try:
    run = run_model.find_run(run_model.open_store(layout.metadata_path),
                             config.pipeline_name)
    summary = run_summary.summarize(run)
    print(run_summary.format_summary(summary), flush=True)
    view = report.view_of(run, summary, layout.metadata_path)
    print('Report: ' + report.write_report(view, layout.root), flush=True)
  except LookupError as e:
    print(f'No run recorded: {e}', flush=True)
  if error is not None:
    print(f'RUN FAILED: {type(error).__name__}: {error}', file=sys.stderr,
          flush=True)
    return 1
  return 0
