"""The read model of pipeline runs: one place that reads MLMD.

A `Run` holds one pipeline run's executions, their states and durations,
and the artifacts each consumed and produced; from those it derives the
blessing, the push, the baseline and the lineage chain

    data -> examples -> transform -> model -> evaluation -> blessing -> push

with the MLMD artifact id and location of each link, read through the
executions' input and output events. `--tensorboard-logdir` prints the
Trainer's log directory of the newest run that has one, for TensorBoard.

Only the SQLite store of the output dir is read (read-only), so this works on
any output dir, for any pipeline name, without importing TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

STATE_NAMES = {
    metadata_store_pb2.Execution.COMPLETE: 'complete',
    metadata_store_pb2.Execution.CACHED: 'cached',
    metadata_store_pb2.Execution.FAILED: 'FAILED',
    metadata_store_pb2.Execution.RUNNING: 'running',
    metadata_store_pb2.Execution.CANCELED: 'canceled',
    metadata_store_pb2.Execution.NEW: 'new',
}
CHAIN = ('data', 'examples', 'transform', 'model', 'evaluation', 'blessing',
         'push')
METADATA_FILE = 'metadata.sqlite'
# The local runner's default output dir. Computed here rather than imported
# from pipeline.flags, which imports TensorFlow; this tool must start fast.
DEFAULT_OUTPUT_DIR = pathlib.Path(__file__).resolve().parents[2] / 'outputs'
# Stages are found by component class (the execution type's last part), not
# by node id, so that any pipeline's store can be read without importing it.
EXAMPLE_GEN_SUFFIX = 'ExampleGen'
STATISTICS_GEN = 'StatisticsGen'
EXAMPLE_VALIDATOR = 'ExampleValidator'
TRANSFORM = 'Transform'
TRAINER = 'Trainer'
EVALUATOR = 'Evaluator'
PUSHER = 'Pusher'


def open_readonly(metadata_path: str) -> metadata_store.MetadataStore:
  """Opens an existing SQLite MLMD store without write access."""
  if not os.path.isfile(metadata_path):
    raise FileNotFoundError(
        f'No metadata store at {metadata_path}. Run the pipeline first '
        '(python runners/local_runner.py --output-dir DIR), or pass the '
        '--output-dir of an earlier run.')
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
  return metadata_store.MetadataStore(config)


@dataclasses.dataclass
class Execution:
  """One component execution of a run, with its artifacts by event key."""
  component_id: str
  component_class: str
  state: str
  seconds: float
  proto: metadata_store_pb2.Execution
  inputs: Dict[str, List[metadata_store_pb2.Artifact]]
  outputs: Dict[str, List[metadata_store_pb2.Artifact]]


@dataclasses.dataclass
class Link:
  """One link of the chain: a stage, its artifact (if any) and a note."""
  stage: str
  artifact_id: Optional[int]
  location: str
  note: str = ''


@dataclasses.dataclass
class Run:
  """A pipeline run read back from MLMD."""
  pipeline_name: str
  run_id: str
  create_time_ms: int
  executions: List[Execution]

  def execution(self, component_class: str) -> Optional[Execution]:
    """The last execution of a component class ('Trainer'), or of any
    '*ExampleGen' for EXAMPLE_GEN_SUFFIX."""
    found = None
    for execution in self.executions:
      kind = execution.component_class
      if kind == component_class or (
          component_class == EXAMPLE_GEN_SUFFIX and kind.endswith(
              EXAMPLE_GEN_SUFFIX)):
        found = execution
    return found

  def count(self, state: str) -> int:
    return sum(1 for e in self.executions if e.state == state)

  @property
  def blessed(self) -> Optional[bool]:
    blessing = _first(self.execution(EVALUATOR), 'blessing',
                      outputs=True)
    if blessing is None or 'blessed' not in blessing.custom_properties:
      return None
    return bool(blessing.custom_properties['blessed'].int_value)

  @property
  def pushed_destination(self) -> Optional[str]:
    pushed = _first(self.execution(PUSHER), 'pushed_model',
                    outputs=True)
    if pushed is None:
      return None
    props = pushed.custom_properties
    if 'pushed' in props and props['pushed'].int_value:
      return props['pushed_destination'].string_value
    return None

  @property
  def model_run_uri(self) -> Optional[str]:
    """Trainer logs (TensorBoard) of this run; a cached Trainer's reused."""
    model_run = _first(self.execution(TRAINER), 'model_run',
                       outputs=True)
    return model_run.uri if model_run is not None else None

  def chain(self) -> List[Link]:
    """data -> examples -> transform -> model -> evaluation -> blessing ->
    push, following the artifacts each execution really consumed."""
    links: List[Link] = []
    example_gen = self.execution(EXAMPLE_GEN_SUFFIX)
    links.append(_data_link(example_gen))
    transform = self.execution(TRANSFORM)
    trainer = self.execution(TRAINER)
    evaluator = self.execution(EVALUATOR)
    pusher = self.execution(PUSHER)
    # Each link is what the next stage consumed when there is a next stage,
    # else what this stage produced; so a broken link shows up as a mismatch
    # in ids between neighbouring rows rather than being papered over.
    examples = (_first(transform, 'examples') or
                _first(example_gen, 'examples', outputs=True))
    links.append(_link('examples', examples, example_gen))
    graph = (_first(trainer, 'transform_graph') or
             _first(transform, 'transform_graph', outputs=True))
    links.append(_link('transform', graph, transform))
    model = _first(evaluator, 'model') or _first(trainer, 'model', outputs=True)
    links.append(_link('model', model, trainer))
    evaluation = _first(evaluator, 'evaluation', outputs=True)
    baseline = _first(evaluator, 'baseline_model')
    eval_link = _link('evaluation', evaluation, evaluator)
    eval_link.note = ', '.join(filter(None, [
        eval_link.note,
        f'baseline model #{baseline.id}' if baseline is not None
        else ('no baseline' if evaluator is not None else '')]))
    links.append(eval_link)
    blessing = _first(evaluator, 'blessing', outputs=True)
    blessed = self.blessed
    verdict = {True: 'BLESSED', False: 'NOT BLESSED', None: ''}[blessed]
    blessing_link = _link('blessing', blessing, evaluator)
    blessing_link.note = ', '.join(filter(None, [verdict, blessing_link.note]))
    links.append(blessing_link)
    pushed = _first(pusher, 'pushed_model', outputs=True)
    push_link = _link('push', pushed, pusher)
    if pushed is not None:
      push_link.location = self.pushed_destination or 'not pushed'
    links.append(push_link)
    return links


def _first(execution: Optional[Execution], key: str, outputs: bool = False
           ) -> Optional[metadata_store_pb2.Artifact]:
  if execution is None:
    return None
  artifacts = (execution.outputs if outputs else execution.inputs).get(key)
  return artifacts[0] if artifacts else None


def _data_link(example_gen: Optional[Execution]) -> Link:
  """The input data: ExampleGen's input_base and what it fingerprinted."""
  if example_gen is None:
    return Link('data', None, '-', 'no ExampleGen ran')
  props = example_gen.proto.custom_properties
  base = props['input_base'].string_value if 'input_base' in props else '?'
  note = ''
  if 'input_fingerprint' in props:
    # e.g. 'split:single_split,num_files:1,total_bytes:260207,...'
    fields = dict(part.split(':', 1) for part in
                  props['input_fingerprint'].string_value.split(',')
                  if ':' in part)
    if 'num_files' in fields and 'total_bytes' in fields:
      note = f'{fields["num_files"]} file(s), {fields["total_bytes"]} bytes'
  return Link('data', None, base, note)


def _state_note(execution: Optional[Execution]) -> str:
  if execution is None:
    return 'did not run'
  return '' if execution.state == 'complete' else execution.state


def _link(stage: str, artifact: Optional[metadata_store_pb2.Artifact],
          producer: Optional[Execution]) -> Link:
  if artifact is None:
    return Link(stage, None, '-', _state_note(producer))
  return Link(stage, artifact.id, artifact.uri, _state_note(producer))


def node_id(contexts: Sequence[metadata_store_pb2.Context],
            execution: metadata_store_pb2.Execution) -> str:
  """The component id of an execution, from its 'node' context."""
  for context in contexts:
    if context.type == 'node':
      return context.name.split('.', 1)[-1]
  return execution.type.rsplit('.', 1)[-1]


def read_run(store: metadata_store.MetadataStore,
             run_context: metadata_store_pb2.Context,
             pipeline_name: str) -> Run:
  """Reads one pipeline_run context: its executions and their artifacts."""
  executions = store.get_executions_by_context(run_context.id)
  executions.sort(key=lambda e: (e.create_time_since_epoch, e.id))
  events = store.get_events_by_execution_ids([e.id for e in executions])
  artifacts = {a.id: a for a in store.get_artifacts_by_id(
      sorted({e.artifact_id for e in events}))}
  result = Run(pipeline_name=pipeline_name, run_id=run_context.name,
               create_time_ms=run_context.create_time_since_epoch,
               executions=[])
  for execution in executions:
    inputs: Dict[str, List[metadata_store_pb2.Artifact]] = {}
    outputs: Dict[str, List[metadata_store_pb2.Artifact]] = {}
    for event in events:
      if event.execution_id != execution.id:
        continue
      if event.type == metadata_store_pb2.Event.INPUT:
        target = inputs
      elif event.type == metadata_store_pb2.Event.OUTPUT:
        target = outputs
      else:
        continue
      # One event can name several keys: the Evaluator gets the same model
      # as 'model' and 'baseline_model' when the candidate is the baseline.
      for step in event.path.steps:
        if step.HasField('key'):
          target.setdefault(step.key, []).append(artifacts[event.artifact_id])
    seconds = max(0.0, (execution.last_update_time_since_epoch -
                        execution.create_time_since_epoch) / 1000.0)
    result.executions.append(Execution(
        component_id=node_id(store.get_contexts_by_execution(execution.id),
                              execution),
        component_class=execution.type.rsplit('.', 1)[-1],
        state=STATE_NAMES.get(execution.last_known_state, 'unknown'),
        seconds=seconds, proto=execution, inputs=inputs, outputs=outputs))
  return result


def recent_runs(store: metadata_store.MetadataStore,
                pipeline_name: Optional[str] = None,
                limit: Optional[int] = None) -> List[Run]:
  """Runs in the store, newest first, optionally of one pipeline only."""
  found = []
  for context in store.get_contexts_by_type('pipeline_run'):
    parents = [p for p in store.get_parent_contexts_by_context(context.id)
               if p.type == 'pipeline']
    name = parents[0].name if parents else '?'
    if pipeline_name is None or name == pipeline_name:
      found.append((context, name))
  found.sort(key=lambda cn: (cn[0].create_time_since_epoch, cn[0].id),
             reverse=True)
  if limit is not None:
    found = found[:limit]
  return [read_run(store, context, name) for context, name in found]


def latest_model_run_uri(store: metadata_store.MetadataStore,
                         pipeline_name: Optional[str] = None) -> str:
  """Trainer log dir of the newest run that trained (or reused) a model."""
  for run in recent_runs(store, pipeline_name):
    if run.model_run_uri:
      return run.model_run_uri
  raise LookupError(
      'No Trainer output in the metadata store'
      + (f' for pipeline {pipeline_name!r}' if pipeline_name else '')
      + '. Run the pipeline until the Trainer has finished.')
