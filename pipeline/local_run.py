"""Runs a pipeline with LocalDagRunner and reports the outcome.

Kept out of the runner script so tests drive exactly what users run.
"""

from __future__ import annotations

import logging as std_logging
import os
import sys

from absl import logging
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from pipeline import cli
from pipeline import config as config_lib
from pipeline import input_check
from pipeline import pipeline as pipeline_lib
from pipeline import progress
from pipeline import report
from pipeline import run_lock
from pipeline import run_summary


def sqlite_config(path: str) -> metadata_store_pb2.ConnectionConfig:
  return tfx.orchestration.metadata.sqlite_metadata_connection_config(path)


def quiet_logs(verbose: bool) -> None:
  """Hides TFX's INFO-level protobuf dumps unless asked for."""
  level = logging.INFO if verbose else logging.WARNING
  logging.set_verbosity(level)
  for name in ('tensorflow', 'apache_beam', 'absl'):
    std_logging.getLogger(name).setLevel(
        std_logging.INFO if verbose else std_logging.WARNING)
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '0' if verbose else '2')


def simulate_cpu_devices(count: int) -> None:
  """Splits the CPU into `count` logical devices, before TF initializes.

  Lets MirroredStrategy run with several replicas on a machine without GPUs.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  cpus = tf.config.list_physical_devices('CPU')
  tf.config.set_logical_device_configuration(
      cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)


def run(config: config_lib.PipelineConfig, layout: cli.OutputLayout,
        verbose: bool = False, cpu_replicas: int = 0,
        lock_timeout_s: float = 0.0) -> int:
  """Runs the pipeline; prints the summary. Returns a process exit code.

  Exit codes: 0 done (blessed or not), 1 the pipeline failed (anomaly gate
  included), 3 the input check refused the data, 4 another run holds the
  output dir (it waits up to `lock_timeout_s` seconds; < 0 waits forever).
  """
  quiet_logs(verbose)
  try:
    if '://' in config.data_root:
      # Remote data (gs://, for Dataflow) is validated by ExampleValidator
      # and the anomaly gate only; the preflight reads local files.
      print(f'Input check skipped for remote data root {config.data_root}.',
            flush=True)
    else:
      print(input_check.check(config.data_root, config.schema_path,
                              config.dataset, config.gate.allowed_anomalies
                              ).summary(), flush=True)
    # Held until run() returns (or the process dies): one run per output dir.
    lock = run_lock.acquire(layout.root, lock_timeout_s)  # noqa: F841
  except run_lock.OutputDirLockedError as e:
    print(f'RUN FAILED: {e}', file=sys.stderr, flush=True)
    return run_lock.EXIT_CODE
  except input_check.InputCheckError as e:
    for problem in e.problems[1:]:
      print(f'  input problem: {problem}', file=sys.stderr)
    print(f'RUN FAILED: bad input, nothing was run: {e}', file=sys.stderr,
          flush=True)
    return input_check.EXIT_CODE
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
  store = run_summary.open_store(layout.metadata_path)
  try:
    summary = run_summary.summarize(store, config.pipeline_name)
    print(run_summary.format_summary(summary), flush=True)
    print('Report: ' + report.write_report(
        layout.metadata_path, config.pipeline_name, layout.root,
        summary.run_id), flush=True)
  except LookupError as e:
    print(f'No run recorded: {e}', flush=True)
  if error is not None:
    print(f'RUN FAILED: {type(error).__name__}: {error}', file=sys.stderr,
          flush=True)
    return 1
  return 0
