"""Runs the pipeline on this machine: preflight, run lock, then the DAG.

Kept out of the runner scripts so that tests drive exactly what users run.
Nothing here imports TensorFlow or TFX until the input has been accepted:
a refused input costs a fraction of a second, not the TFX import time.
"""

from __future__ import annotations

import dataclasses
import logging as std_logging
import os
import sys
from typing import Callable
from typing import List
from typing import Optional

from absl import logging

from pipeline.definition import config as config_lib
from pipeline.definition import dataset_config
from pipeline.definition import draft_request as draft_lib
from pipeline.definition import spans as spans_lib
from pipeline.facts import layout as layout_lib
from pipeline.facts import metadata_location
from pipeline.facts import sql_url
from pipeline.inspection import run_model
from pipeline.local import malloc_arenas
from pipeline.local import run_lock
from pipeline.local import run_log
from pipeline.local import secret_filter
from pipeline.local import worker_client
from pipeline.tracking import tracker as tracker_lib
from pipeline.validation import contract as input_contract
from pipeline.validation import driver as input_check
from pipeline.validation import problems as input_problems

# Exit code of a run whose metadata store (--metadata-url) cannot be used.
METADATA_EXIT_CODE = 5


def quiet_logs(verbose: bool) -> None:
  """Hides TFX's INFO-level protobuf dumps unless asked for."""
  level = logging.INFO if verbose else logging.WARNING
  logging.set_verbosity(level)
  for name in ('tensorflow', 'apache_beam', 'absl'):
    std_logging.getLogger(name).setLevel(
        std_logging.INFO if verbose else std_logging.WARNING)
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '0' if verbose else '2')


ConfigFor = Callable[[dataset_config.DatasetConfig], config_lib.PipelineConfig]


def run(config: Optional[config_lib.PipelineConfig],
        layout: layout_lib.OutputLayout,
        verbose: bool = False, cpu_replicas: int = 0,
        lock_timeout_s: float = 0.0,
        draft: Optional[draft_lib.DraftRequest] = None,
        config_for: Optional[ConfigFor] = None) -> int:
  """Runs the pipeline; prints the summary. Returns a process exit code.

  Exit codes: 0 done (blessed or not), 1 the pipeline failed (anomaly gate
  included), 3 the input check refused the data, 4 another run holds the
  output dir (it waits up to `lock_timeout_s` seconds; < 0 waits forever),
  5 the MySQL metadata store (`layout.metadata`) cannot be reached or
  refused the login.

  A zero-config run (`draft`, with `config` None) checks the CSV structure
  and the label only, then drafts the schema and dataset config from the
  data, and runs the pipeline with the configs `config_for` builds.
  """
  quiet_logs(verbose)
  malloc_arenas.limit()  # Before TensorFlow's threads and the components'.
  if (draft is None) == (config is None) or (draft and config_for is None):
    raise ValueError('Pass a config, or a draft request with config_for.')
  try:
    if layout.metadata is not None:
      _check_metadata_store(layout.metadata)
    if draft is not None:
      checked = input_check.check_without_schema(
          draft.data_root, input_contract.LabelRule(
              draft.label, draft.task, positive_values=draft.positive_label),
          input_format=draft.input_format)
      print(checked.summary(), flush=True)
      config = config_for(dataset_config.DatasetConfig(
          spec=draft.provisional_spec(list(checked.label_counts))))
    elif config.sql is not None:
      checked = input_check.check_sql(
          config.sql.url, config.sql.query, config.schema_path,
          config.dataset, config.gate.allowed_anomalies)
      print(checked.summary(), flush=True)
      # What was read is the ExampleGen's cache key and column kinds.
      config = dataclasses.replace(config, sql=dataclasses.replace(
          config.sql, rows_fingerprint=checked.fingerprint,
          kinds=checked.feature_lists()))
    elif '://' in config.data_root:
      # Remote data (gs://, for Dataflow) is validated by ExampleValidator
      # and the anomaly gate only; the preflight reads local files.
      print(f'Input check skipped for remote data root {config.data_root} '
            f'(read as {config.input_format}; --format sets it).', flush=True)
    else:
      if config.spans is not None:
        # The span ExampleGen's driver will read: the same rule.
        print(spans_lib.describe(config.data_root, config.spans), flush=True)
      folders = spans_lib.input_folders(config.data_root, config.spans)
      for folder in folders:
        # A range of spans: each folder is checked, and named.
        named = f'{os.path.basename(folder)}: ' if len(folders) > 1 else ''
        print(named + input_check.check(
            folder, config.schema_path, config.dataset,
            config.gate.allowed_anomalies,
            input_format=config.input_format).summary(), flush=True)
    # Held until run() returns (or the process dies): one run per output dir.
    lock = run_lock.acquire(layout.root, lock_timeout_s)
  except metadata_location.MetadataStoreError as e:
    print(f'RUN FAILED: metadata store, nothing was run: {e}',
          file=sys.stderr, flush=True)
    return METADATA_EXIT_CODE
  except run_lock.OutputDirLockedError as e:
    print(f'RUN FAILED: {e}', file=sys.stderr, flush=True)
    return run_lock.EXIT_CODE
  except input_problems.InputCheckError as e:
    for problem in e.problems[1:]:
      print(f'  input problem: {problem}', file=sys.stderr)
    print(f'RUN FAILED: bad input, nothing was run: {e}', file=sys.stderr,
          flush=True)
    return input_problems.EXIT_CODE
  # From here on, the libraries' output goes to the run's log file, and
  # only the project's lines to the terminal (unless verbose).
  log = run_log.install(run_log.log_path(layout.root), verbose)
  # MLflow's import (seconds of CPU) overlaps TFX's and the run, in a worker
  # process (pipeline/tracking/tracker.py); None with --no-mlflow.
  tracker = tracker_lib.start(layout.tracking, layout.root)
  # The component worker too: it imports TFX and TFDV while this process
  # does, and runs StatisticsGen beside Transform (pipeline/local/dag.py).
  worker = (worker_client.NodeWorker.start(
      verbose, _secrets(layout), log_path=log.path, stderr=log.terminal)
            if _cores() >= 2 else None)
  try:
    # TFX logs the MLMD connection config, password included, at INFO.
    with secret_filter.masked_logs(_scrubber(layout)):
      from pipeline.local import dag  # TFX and TensorFlow: only from here on.
      return dag.execute(config, layout, cpu_replicas=cpu_replicas,
                         draft=draft, config_for=config_for, tracker=tracker,
                         worker=worker)
  finally:
    if worker is not None:
      worker.close()
    tracker_lib.close(tracker)
    print(f'Log: {log.path}', flush=True)
    log.close()
    lock.release()


def _cores() -> int:
  """CPUs this process may use."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # Not Linux.
    return os.cpu_count() or 1


def _secrets(layout: layout_lib.OutputLayout) -> List[str]:
  """The passwords a log line must never show: the MySQL store's and the
  SQL source's."""
  secrets = [os.environ.get(sql_url.PASSWORD_ENV) or '']
  if layout.metadata is not None:
    secrets.extend(layout.metadata.secrets)  # Each form a log may show.
  return [secret for secret in secrets if secret]


def _scrubber(layout: layout_lib.OutputLayout) -> Callable[[str], str]:
  """Masks the metadata store's password and the SQL source's."""
  return secret_filter.replacer(_secrets(layout))


def _check_metadata_store(location: metadata_location.MySqlLocation) -> None:
  """Connects once before anything runs; creates the database if missing.

  Raises:
    metadata_location.MetadataStoreError: Unreachable, login refused, or
      no right to create the database; the message masks the password.
  """
  with secret_filter.masked_logs(location.scrub):  # MLMD logs its config.
    run_model.open_store(location, readonly=False)
  print(f'Metadata store: {location}', flush=True)
