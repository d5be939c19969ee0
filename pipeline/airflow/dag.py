"""The runner flags, from one environment variable, turned into the DAG.

Airflow imports the DAG file (`runners/airflow_dag.py`) in its scheduler,
its DAG processor and every task process, so the flags come from the
environment: `TABULAR_PIPELINE_ARGS` holds the flags of
`runners/local_runner.py`, shell-quoted. Everything is checked before
Airflow, TFX or TensorFlow is imported, and a bad value raises
`AirflowConfigError`, whose message Airflow shows as the DAG's import
error. Nothing is written: the DAG file only builds the DAG.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
from typing import TYPE_CHECKING
from typing import Any
from typing import Dict
from typing import List
from typing import Mapping
from typing import NoReturn
from typing import Optional
from typing import Sequence
from typing import Tuple

from pipeline import flags as cli
from pipeline.definition import config as config_lib
from pipeline.facts import layout as layout_lib
from pipeline.facts import metadata_location
from pipeline.facts import tracking_location

if TYPE_CHECKING:
  from airflow import models as airflow_models

ARGS_ENV_VAR = 'TABULAR_PIPELINE_ARGS'
SCHEDULE = '@daily'
# Fixed, so that the schedule does not move with the file's parse time; with
# catchup off, a new DAG runs only the latest finished interval.
START_DATE = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
# Parallel tasks with a MySQL store; a SQLite store takes one writer at a
# time, so with it one task runs at a time, as in a local run.
MAX_PARALLEL_TASKS = 4
EXAMPLE = (f'{ARGS_ENV_VAR}="--output-dir /srv/tabular '
           f'--data-root {cli.DEFAULT_DATA_ROOT}"')


class AirflowConfigError(ValueError):
  """The DAG's configuration is unusable; the message says what to set."""


class _Parser(argparse.ArgumentParser):
  """Raises instead of exiting: Airflow must show the error, not die."""

  def error(self, message: str) -> NoReturn:
    raise AirflowConfigError(f'{ARGS_ENV_VAR}: {message}. Set it to the '
                             f'runner flags, e.g. {EXAMPLE}.')

  def exit(self, status: int = 0, message: Optional[str] = None) -> NoReturn:
    raise AirflowConfigError(
        f'{ARGS_ENV_VAR} asks argparse to exit ({message or "--help"}); '
        'see python runners/local_runner.py --help for the flags.')


def parser() -> argparse.ArgumentParser:
  """The flags of TABULAR_PIPELINE_ARGS.

  The local runner's, less its process-level ones (--cpu-replicas,
  --verbose); --output-dir is required, since the scheduler and the
  workers may run in any directory.
  """
  p = _Parser(prog=ARGS_ENV_VAR, description=__doc__.splitlines()[0])
  cli.add_common_flags(p)
  p.add_argument('--output-dir', required=True,
                 help='Absolute path: pipeline root, metadata DB and pushed '
                 'models all go here. It must exist.')
  cli.add_local_orchestration_flags(p)
  cli.add_tracking_flags(p)
  return p


def argv_from(environ: Mapping[str, str]) -> List[str]:
  """The runner flags in TABULAR_PIPELINE_ARGS.

  Raises:
    AirflowConfigError: The variable is missing, empty, or not valid shell
      syntax (an unclosed quote).
  """
  value = environ.get(ARGS_ENV_VAR, '')
  if not value.strip():
    raise AirflowConfigError(
        f'{ARGS_ENV_VAR} is not set. Set it, in the environment of the '
        'Airflow scheduler, DAG processor and workers, to the runner flags '
        f'of runners/local_runner.py, e.g. {EXAMPLE}.')
  try:
    return shlex.split(value)
  except ValueError as e:
    raise AirflowConfigError(
        f'{ARGS_ENV_VAR} is not valid shell syntax ({e}): {value!r}. Quote '
        f'it as in a shell command line, e.g. {EXAMPLE}.') from None


def _check_paths(args: argparse.Namespace) -> None:
  """Every local path must be absolute: tasks may start anywhere.

  Raises:
    AirflowConfigError: A relative path, named with its flag.
  """
  paths = {'--output-dir': args.output_dir, '--data-root': args.data_root,
           '--dataset-config': args.dataset_config, '--schema': args.schema}
  for flag, path in paths.items():
    if path and '://' not in path and not os.path.isabs(path):
      raise AirflowConfigError(
          f'{ARGS_ENV_VAR}: {flag} {path} is relative; the Airflow '
          'scheduler and workers may start in other directories. Give an '
          f'absolute path, e.g. {flag} {os.path.abspath(path)}.')


def layout_from(args: argparse.Namespace,
                environ: Mapping[str, str]) -> layout_lib.OutputLayout:
  """Where the DAG's runs write and keep their metadata.

  Raises:
    AirflowConfigError: The output dir is missing (with the SQLite store,
      which lives in it), or --metadata-url is malformed.
  """
  try:
    layout = cli.output_layout(args, os.path.normpath(args.output_dir),
                               environ)
  except (metadata_location.MetadataUrlError,
          tracking_location.TrackingUriError) as e:
    raise AirflowConfigError(f'{ARGS_ENV_VAR}: {e}') from None
  if layout.metadata is None and not os.path.isdir(layout.root):
    raise AirflowConfigError(
        f'{ARGS_ENV_VAR}: --output-dir {layout.root} does not exist. Create '
        f'it (mkdir -p {layout.root}): the metadata store '
        f'{layout.metadata_path} is created inside it, and the DAG file '
        'writes nothing.')
  return layout


def config_from(argv: Sequence[str], environ: Mapping[str, str]
                ) -> Tuple[config_lib.PipelineConfig, layout_lib.OutputLayout]:
  """The pipeline config and output layout the runner flags describe.

  Args:
    argv: The runner flags, as the local runner takes them.
    environ: The environment (MYSQL_PWD).

  Raises:
    AirflowConfigError: Bad flags or config; the message says which flag
      to change.
  """
  args = parser().parse_args(list(argv))
  if args.lock_timeout != 0:
    raise AirflowConfigError(
        f'{ARGS_ENV_VAR}: --lock-timeout applies to local runs; the DAG runs '
        'one DAG run at a time (max_active_runs=1). Drop it.')
  if getattr(args, 'sql_url', None):
    raise AirflowConfigError(
        f'{ARGS_ENV_VAR}: --sql-url is not supported by the Airflow DAG: '
        'the SQL source needs the local runner\'s input check, which reads '
        'the rows before the run. Run it with runners/local_runner.py.')
  if getattr(args, 'warm_start', False):
    raise AirflowConfigError(
        f'{ARGS_ENV_VAR}: --warm-start is not supported by the Airflow DAG: '
        'the model to start from is chosen from ML Metadata before a run, '
        'and the DAG\'s config is built whenever Airflow parses the DAG '
        'file, in every task process. Drop it, or warm-start with '
        'runners/local_runner.py (docs/running.md#warm-start---warm-start).')
  _check_paths(args)
  layout = layout_from(args, environ)
  try:
    config = cli.build_config(
        args, pipeline_root=layout.pipeline_root,
        serving_model_dir=layout.serving_model_dir,
        beam_pipeline_args=cli.direct_runner_args(args.beam_workers))
  except (ValueError, OSError) as e:
    raise AirflowConfigError(f'{ARGS_ENV_VAR}: {e}') from e
  return config, layout


def dag_settings(config: config_lib.PipelineConfig,
                 layout: layout_lib.OutputLayout) -> Dict[str, Any]:
  """The keyword arguments of the `airflow.models.DAG`."""
  return {
      'schedule': SCHEDULE,
      'start_date': START_DATE,
      'catchup': False,
      # Runs share the output dir, the cache and the blessed baseline.
      'max_active_runs': 1,
      'max_active_tasks': (1 if layout.metadata is None
                           else MAX_PARALLEL_TASKS),
      'description': f'TFX pipeline {config.pipeline_name} on '
                     f'{config.data_root}, into {layout.root}',
      'tags': ['tfx', config.dataset.name],
  }


def create_dag(argv: Sequence[str], environ: Mapping[str, str]
               ) -> 'airflow_models.DAG':
  """Builds the Airflow DAG from the runner flags.

  Args:
    argv: The runner flags, as the local runner takes them.
    environ: The environment (MYSQL_PWD).

  Returns:
    The DAG: its id is the pipeline name, one task per component.

  Raises:
    AirflowConfigError: Bad flags or config; nothing of TFX was imported.
  """
  config, layout = config_from(argv, environ)
  # Airflow, TFX and TensorFlow: only once the flags are known to be good.
  from tfx.orchestration.airflow import airflow_dag_runner

  from pipeline.airflow import launcher
  from pipeline.definition import pipeline as pipeline_lib
  pipeline = pipeline_lib.create_pipeline(
      config, layout.metadata_location.connection_config())
  runner = airflow_dag_runner.AirflowDagRunner(
      launcher.pipeline_config(pipeline, dag_settings(config, layout)))
  dag = runner.run(pipeline)
  _add_run_end(dag, argv)
  return dag


# The DAG's last task: the run summary, report, model card and MLflow.
RUN_END_TASK = 'RunEnd'


def _add_run_end(dag: 'airflow_models.DAG', argv: Sequence[str]) -> None:
  """Adds `RUN_END_TASK` after every component task, run when all are done.

  It runs whatever they ended in (Airflow's `all_done`), so that a failed
  or skipped component's run still gets its summary, report and MLflow run.
  """
  from airflow.operators import python as python_operator
  from airflow.utils import trigger_rule
  last = [task for task in dag.tasks if not task.downstream_list]
  end = python_operator.PythonOperator(
      task_id=RUN_END_TASK, python_callable=end_of_run, op_args=[list(argv)],
      trigger_rule=trigger_rule.TriggerRule.ALL_DONE, dag=dag)
  for task in last:
    task.set_downstream(end)


class ComponentTasksFailedError(RuntimeError):
  """RunEnd fails when a component task failed, and so does the DAG run."""


def end_of_run(argv: Sequence[str], dag_run: Any = None,
               **unused_context: Any) -> None:
  """The run's summary, report, model card and MLflow run, as a local run
  ends (`pipeline/tracking/run_end.py`), in the DAG run's pipeline run.

  Airflow judges a DAG run by its last tasks, so RunEnd fails when a
  component task failed: the DAG run then fails too, as it would without
  RunEnd.

  Raises:
    ComponentTasksFailedError: A component task failed; it is named.
  """
  from pipeline.inspection import run_model
  from pipeline.orchestration import nodes
  from pipeline.tracking import run_end
  from pipeline.tracking import tracker as tracker_lib
  states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()
            if ti.task_id != RUN_END_TASK}
  failed = sorted(t for t, state in states.items() if state == 'failed')
  not_run = sum(state == 'upstream_failed' for state in states.values())
  config, layout = config_from(argv, os.environ)
  location = layout.metadata_location
  run_id = nodes.pipeline_run_id(dag_run.run_id, dag_run.id)
  try:
    run = run_model.find_run(run_model.open_store(location),
                             config.pipeline_name, run_id)
  except (LookupError, FileNotFoundError) as e:  # No run, or no store yet.
    print(f'No run recorded for pipeline run {run_id}: {e}', flush=True)
    run = None
  if run is not None:
    tracker = tracker_lib.start(layout.tracking, layout.root)
    try:
      run_end.finish(run, config, location, layout.root, tracker,
                     failed=bool(failed))
    finally:
      tracker_lib.close(tracker)
  if failed:
    raise ComponentTasksFailedError(
        f'Pipeline run {run_id} failed: task(s) {", ".join(failed)} failed'
        + (f' ({not_run} task(s) after them did not run)' if not_run else '')
        + '; the failed task\'s log says why.')


def dag_from_environment(environ: Mapping[str, str]) -> 'airflow_models.DAG':
  """The DAG that TABULAR_PIPELINE_ARGS describes.

  Raises:
    AirflowConfigError: The variable is missing or unusable.
  """
  return create_dag(argv_from(environ), environ)
