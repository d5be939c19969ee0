"""Runs each Airflow task's component the way LocalDagRunner runs it.

`AirflowDagRunner` builds one Airflow task per component and, by default,
runs each through TFX's legacy launcher and drivers (`base_component_launcher`,
`base_driver`), not through the compiled pipeline (IR) that LocalDagRunner
and Kubeflow run. That launcher cannot run this pipeline:

- **Output artifact names collide.** The legacy driver names every output
  artifact `<output key>:<run id>`, and MLMD allows a name once per artifact
  type. SchemaGen and the curated schema's ImportSchemaGen both write a
  `Schema` under the key `schema`, so whichever ran second would fail with
  `AlreadyExistsError: Given node already exists` (TFX issue 4977).
- **An unchanged model fails the run.** When the Trainer's model is the
  blessed baseline, ModelChangeCheck (and Evaluator) get the same artifact as
  `model` and `baseline_model`. The legacy store writes one INPUT event per
  key, MLMD refuses the second (`Given event already exists`), and the
  legacy driver fails on an `AssertionError` (TFX issue 5193).
- **`Cond` is ignored.** Only the compiler reads conditionals, so Evaluator
  and Pusher would run for every model.
- **Its MLMD records differ.** Runs are 'run' contexts without a parent
  pipeline, not 'pipeline_run' and 'node' contexts, so the run summary,
  report and lineage CLI (`pipeline.inspection.run_model`) would find no run.

So `pipeline_config()` keeps the runner's DAG and tasks and swaps the
launcher, through the runner's own extension point
(`supported_launcher_classes`, component configs): each task runs its node of
the compiled pipeline with TFX's portable launcher, as LocalDagRunner does
(`nodes.py`), in the pipeline run of its DAG run (`nodes.pipeline_run_id`).
Caching, resolvers, conditionals and the MLMD records are then those of a
local run. A node that its `Cond` skips ends its task as skipped
(`AirflowSkipException`), and Airflow then skips the tasks downstream. A
retried or cleared task continues its DAG run's pipeline run; a first try
of a node that already completed in it means that a new DAG run got an
earlier one's id, and fails (`nodes.check_not_reused`).
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import List
from typing import Mapping
from typing import Optional

from airflow import exceptions as airflow_exceptions
from airflow.operators import python as python_operator
from tfx import types
from tfx.dsl.compiler import compiler
from tfx.dsl.components.base import executor_spec as executor_spec_lib
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.orchestration.airflow import airflow_dag_runner
from tfx.orchestration.config import base_component_config
from tfx.orchestration.launcher import base_component_launcher
from tfx.orchestration.portable import data_types as portable_data_types
from tfx.proto.orchestration import pipeline_pb2

from pipeline.orchestration import nodes


class CompiledPipeline(base_component_config.BaseComponentConfig):
  """The compiled pipeline (IR), as every task's component config."""

  def __init__(self, ir: pipeline_pb2.Pipeline):
    super().__init__()
    self.ir = ir


class CompiledNodeLauncher(base_component_launcher.BaseComponentLauncher):
  """Launches the task's node of the compiled pipeline (see the module doc)."""

  @classmethod
  def can_launch(cls, component_executor_spec: executor_spec_lib.ExecutorSpec,
                 component_config: Optional[
                     base_component_config.BaseComponentConfig]) -> bool:
    del component_executor_spec  # The compiled pipeline has the executor.
    return isinstance(component_config, CompiledPipeline)

  def launch(self) -> portable_data_types.ExecutionInfo:
    """Runs the node, in the pipeline run of the current DAG run.

    Raises:
      airflow.exceptions.AirflowSkipException: The node was skipped (its
        `Cond` is false), as LocalDagRunner would skip it.
      nodes.NodeFailedError: Its execution failed without an exception.
      nodes.RunIdReusedError: A first try, but the node already completed
        in this pipeline run: the DAG run reuses an earlier one's id.
    """
    node_id = self._component_info.component_id
    context = python_operator.get_current_context()
    dag_run = context['dag_run']
    ir = nodes.for_run(self._component_config.ir,
                       nodes.pipeline_run_id(dag_run.run_id, dag_run.id))
    if context['ti'].try_number <= 1:
      nodes.check_not_reused(ir, node_id)
    info = nodes.run_node(ir, node_id)
    if info is None or info.execution_id is None:
      raise airflow_exceptions.AirflowSkipException(
          f'{node_id} is skipped: its inputs resolved to nothing in pipeline '
          f'run {ir.runtime_spec.pipeline_run_id.field_value.string_value}: '
          'a false Cond, as when ModelChangeCheck finds that the model '
          'already is the blessed baseline.')
    nodes.check_succeeded(nodes.connection_config(ir), info.execution_id,
                          node_id)
    return info

  def _run_executor(self, execution_id: int,
                    input_dict: Dict[str, List[types.Artifact]],
                    output_dict: Dict[str, List[types.Artifact]],
                    exec_properties: Dict[str, Any]) -> None:
    raise NotImplementedError('launch() runs the compiled node instead.')


def pipeline_config(pipeline: tfx_pipeline.Pipeline,
                    dag_settings: Mapping[str, Any]
                    ) -> airflow_dag_runner.AirflowPipelineConfig:
  """The AirflowDagRunner config that runs `pipeline`'s compiled nodes.

  Args:
    pipeline: The pipeline the runner will turn into a DAG.
    dag_settings: Keyword arguments of the `airflow.models.DAG`.
  """
  return airflow_dag_runner.AirflowPipelineConfig(
      airflow_dag_config=dict(dag_settings),
      supported_launcher_classes=[CompiledNodeLauncher],
      default_component_configs=[
          CompiledPipeline(compiler.Compiler().compile(pipeline))])
