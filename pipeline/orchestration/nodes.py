"""One node of a compiled pipeline, run as LocalDagRunner runs it.

The TFX half of the Airflow launcher (`pipeline/airflow/launcher.py`) and of
the local concurrent runner (`pipeline/local/concurrent_runner.py`),
without Airflow: the pipeline run id of a DAG run, the IR with a run id
filled in, the body of LocalDagRunner's loop for one node, and the check
that the node's execution really succeeded.
"""

from __future__ import annotations

from typing import Callable
from typing import Dict
from typing import Optional

from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.compiler import constants
from tfx.orchestration import metadata
from tfx.orchestration.local import runner_utils
from tfx.orchestration.portable import data_types
from tfx.orchestration.portable import launcher as portable_launcher
from tfx.orchestration.portable import runtime_parameter_utils
from tfx.orchestration.portable.mlmd import execution_lib
from tfx.proto.orchestration import pipeline_pb2

from pipeline.orchestration import beam_dependencies


class NodeFailedError(RuntimeError):
  """The node's execution did not succeed, though the launcher returned."""


class RunIdReusedError(RuntimeError):
  """A new DAG run got the pipeline run id of an earlier one."""


def pipeline_run_id(airflow_run_id: str, dag_run_key: int) -> str:
  """The TFX pipeline run id of one Airflow DAG run.

  The Airflow run id alone is not unique: `airflow dags test` (and a
  backfill with --reset-dagruns) deletes a DAG run and creates one with the
  same run id. In one pipeline run, TFX reuses each node's successful
  execution, so the new DAG run would run nothing and still succeed. The DAG
  run's database key tells the two apart where the database never reuses a
  key (PostgreSQL, MySQL; SQLite reuses the highest key once it is deleted,
  which `check_not_reused` catches). It stays the same when tasks are
  cleared or retried, so a retried task continues its DAG run's pipeline
  run.

  Args:
    airflow_run_id: The DAG run's run id, such as
      'scheduled__2026-12-01T00:00:00+00:00'.
    dag_run_key: The DAG run's primary key in the Airflow database.
  """
  return f'{airflow_run_id}#{dag_run_key}'


def for_run(ir: pipeline_pb2.Pipeline, run_id: str) -> pipeline_pb2.Pipeline:
  """A copy of the compiled pipeline with its pipeline run id filled in."""
  run = pipeline_pb2.Pipeline()
  run.CopyFrom(ir)
  runtime_parameter_utils.substitute_runtime_parameter(
      run, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
  return run


def node_of(ir: pipeline_pb2.Pipeline, node_id: str
            ) -> pipeline_pb2.PipelineNode:
  """The compiled node with this id.

  Raises:
    LookupError: The pipeline has no such node.
  """
  for node in ir.nodes:
    if node.pipeline_node.node_info.id == node_id:
      return node.pipeline_node
  raise LookupError(f'The compiled pipeline {ir.pipeline_info.id} has no '
                    f'node {node_id}.')


def connection_config(ir: pipeline_pb2.Pipeline
                      ) -> metadata_store_pb2.ConnectionConfig:
  """The MLMD connection of the pipeline's local deployment config."""
  deployment = runner_utils.extract_local_deployment_config(ir)
  config = deployment.metadata_connection_config
  return getattr(config, config.WhichOneof('connection_config'))


def executor_operators_reporting(on_start: Callable[[], None]
                                 ) -> Dict[type, type]:
  """The launcher's executor operators, each calling `on_start` first.

  The portable launcher calls an operator's `run_executor` only when the
  executor really runs: never for a cache hit, a skipped node or a system
  node (a resolver or an importer). `on_start` therefore says "the executor
  starts now", which MLMD's states cannot: a cache hit is RUNNING there too
  until the launcher publishes it as CACHED.
  """
  def reporting(operator_class: type) -> type:
    class Reporting(operator_class):
      def run_executor(self, *args, **kwargs):
        on_start()
        return super().run_executor(*args, **kwargs)
    return Reporting
  return {spec: reporting(operator) for spec, operator
          in portable_launcher.DEFAULT_EXECUTOR_OPERATORS.items()}


def run_node(ir: pipeline_pb2.Pipeline, node_id: str,
             on_executor_start: Optional[Callable[[], None]] = None
             ) -> Optional[data_types.ExecutionInfo]:
  """Runs one node of a compiled pipeline whose run id is filled in.

  The body of LocalDagRunner's loop over the nodes, for one node: inputs
  are resolved from MLMD (the baseline resolver and the `Cond` included),
  the cache is consulted, and the records are those of a local run.

  Args:
    ir: The compiled pipeline, its run id filled in.
    node_id: The node to run.
    on_executor_start: Called just before the node's executor runs, in
      this thread; never for a cache hit (`executor_operators_reporting`).

  Returns:
    The portable launcher's result. Its `execution_id` is None when the
    node was skipped: its inputs resolved to nothing, which is what a false
    `Cond` does.
  """
  # A DirectRunner node needs no sdist of TFX for its (in-process) workers.
  beam_dependencies.skip_for_direct_runner()
  deployment = runner_utils.extract_local_deployment_config(ir)
  return portable_launcher.Launcher(
      pipeline_node=node_of(ir, node_id),
      mlmd_connection=metadata.Metadata(connection_config(ir)),
      pipeline_info=ir.pipeline_info,
      pipeline_runtime_spec=ir.runtime_spec,
      executor_spec=runner_utils.extract_executor_spec(deployment, node_id),
      custom_driver_spec=runner_utils.extract_custom_driver_spec(
          deployment, node_id),
      custom_executor_operators=(
          executor_operators_reporting(on_executor_start)
          if on_executor_start is not None else None)).launch()


def check_succeeded(config: metadata_store_pb2.ConnectionConfig,
                    execution_id: int, node_id: str) -> None:
  """Raises unless the execution completed or was taken from the cache.

  The portable launcher records some failures (an input resolution error,
  more than one input dict) as a failed execution and returns instead of
  raising; LocalDagRunner leaves them to the run summary, but an Airflow
  task must fail.

  Raises:
    NodeFailedError: The execution failed, or is still running.
  """
  with metadata.Metadata(config) as m:
    [execution] = m.store.get_executions_by_id([execution_id])
  if execution_lib.is_execution_successful(execution):
    return
  state = metadata_store_pb2.Execution.State.Name(execution.last_known_state)
  result = execution_lib.get_execution_result(
      execution, ignore_parse_errors=True)
  message = result.result_message if result else ''
  detail = f': {message}' if message else ''
  raise NodeFailedError(f'{node_id}: its execution {execution_id} ended '
                        f'{state} in ML Metadata{detail}')


def run_and_check(ir: pipeline_pb2.Pipeline, node_id: str,
                  on_executor_start: Optional[Callable[[], None]] = None
                  ) -> None:
  """`run_node`, then `check_succeeded` unless the node was skipped.

  Raises:
    NodeFailedError: The launcher returned, but the execution failed.
  """
  info = run_node(ir, node_id, on_executor_start)
  if info is not None and info.execution_id is not None:
    check_succeeded(connection_config(ir), info.execution_id, node_id)


def completed_execution(ir: pipeline_pb2.Pipeline, node_id: str
                        ) -> Optional[int]:
  """A successful execution of the node in the IR's pipeline run, if any."""
  wanted = {constants.PIPELINE_RUN_CONTEXT_TYPE_NAME: None,
            constants.NODE_CONTEXT_TYPE_NAME: None}
  for spec in node_of(ir, node_id).contexts.contexts:
    if spec.type.name in wanted:
      wanted[spec.type.name] = spec.name.field_value.string_value
  with metadata.Metadata(connection_config(ir)) as m:
    executions = None
    for type_name, name in wanted.items():
      context = m.store.get_context_by_type_and_name(type_name, name)
      if context is None:
        return None
      ids = {e.id for e in m.store.get_executions_by_context(context.id)
             if execution_lib.is_execution_successful(e)}
      executions = ids if executions is None else executions & ids
  return min(executions) if executions else None


def check_not_reused(ir: pipeline_pb2.Pipeline, node_id: str) -> None:
  """Refuses a first try of a node that already completed in its run.

  Only a new DAG run with the run id and key of an earlier one gets there
  (`pipeline_run_id`): a cleared or retried task is on a later try.

  Raises:
    RunIdReusedError: The node completed in this pipeline run before.
  """
  done = completed_execution(ir, node_id)
  if done is None:
    return
  run_id = ir.runtime_spec.pipeline_run_id.field_value.string_value
  raise RunIdReusedError(
      f'{node_id}: pipeline run {run_id} already ran it (execution {done} '
      'in ML Metadata), so TFX would reuse that execution and run nothing. '
      'This DAG run has the run id and database key of an earlier one: '
      '`airflow dags test` again on the same logical date, or after the '
      'Airflow database was reset. Use another logical date, or trigger a '
      'new DAG run (airflow dags trigger).')
