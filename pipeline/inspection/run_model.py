"""The read model of pipeline runs: the one module that reads MLMD.

A `Run` holds one pipeline run's executions, their states and durations,
and the artifacts each consumed and produced; from those it derives the
blessing, the push, the baseline and the lineage chain

    data -> examples -> transform -> model -> evaluation -> blessing -> push

with the MLMD artifact id and location of each link, read through the
executions' input and output events.

Everything else that looks at a run (the end-of-run summary, the report, the
live progress lines, the lineage CLI, the notebooks and the tests) gets its
runs, executions and artifacts from here, and reads the artifacts' contents
with the TFX, TFDV and TFMA loaders. This module imports no TensorFlow, so
`python -m pipeline.inspection` starts fast, and it reads any pipeline's
store without importing that pipeline.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Dict
from typing import Iterator
from typing import List
from typing import Optional
from typing import Sequence
from typing import Union

from ml_metadata import errors as mlmd_errors
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.facts import components as component_ids
from pipeline.facts import metadata_location
from pipeline.inspection import native_stderr

Artifact = metadata_store_pb2.Artifact
Context = metadata_store_pb2.Context

# The one map from MLMD execution states to the words users see.
STATE_NAMES = {
    metadata_store_pb2.Execution.COMPLETE: 'complete',
    metadata_store_pb2.Execution.CACHED: 'cached',
    metadata_store_pb2.Execution.FAILED: 'FAILED',
    metadata_store_pb2.Execution.RUNNING: 'running',
    metadata_store_pb2.Execution.CANCELED: 'canceled',
    metadata_store_pb2.Execution.NEW: 'new',
}
UNKNOWN_STATE = 'unknown'
# States an execution does not leave again.
FINAL_STATES = frozenset(('complete', 'cached', 'FAILED', 'canceled'))
CHAIN = ('data', 'examples', 'transform', 'model', 'evaluation', 'blessing',
         'push')
# MLMD context types TFX writes: the pipeline, each run of it, each node.
PIPELINE_CONTEXT = 'pipeline'
RUN_CONTEXT = 'pipeline_run'
NODE_CONTEXT = 'node'
# The local runner's default output dir. Inspection reads any store and does
# not import the runners' flag module (tests/test_architecture.py).
DEFAULT_OUTPUT_DIR = pathlib.Path(__file__).resolve().parents[2] / 'outputs'
# Stages are found by component class (the execution type's last part), not
# by node id, so that any pipeline's store can be read without importing it.
# For these components the class is the pipeline's id (tests/test_facts.py).
EXAMPLE_GEN_SUFFIX = component_ids.EXAMPLE_GEN_SUFFIX
STATISTICS_GEN = component_ids.STATISTICS_GEN
EXAMPLE_VALIDATOR = component_ids.EXAMPLE_VALIDATOR
TRANSFORM = component_ids.TRANSFORM
TRAINER = component_ids.TRAINER
TUNER = component_ids.TUNER  # With --tune.
EVALUATOR = component_ids.EVALUATOR
PUSHER = component_ids.PUSHER
MODEL_CHANGE_CHECK = component_ids.MODEL_CHANGE_CHECK
MODEL_CHANGE_KEY = component_ids.MODEL_CHANGE_KEY
IS_NEW = component_ids.IS_NEW
FEATURE_ATTRIBUTIONS = component_ids.FEATURE_ATTRIBUTIONS
ATTRIBUTIONS_KEY = component_ids.ATTRIBUTIONS_KEY
SERVING_CHECK = component_ids.SERVING_CHECK
SERVING_CHECK_KEY = component_ids.SERVING_CHECK_KEY


def open_store(location: Union[str, metadata_location.MetadataLocation],
               readonly: bool = True) -> metadata_store.MetadataStore:
  """Opens an existing MLMD store: a SQLite file or a MySQL database.

  Args:
    location: Where the store is: a `metadata_location` location, or the
      path of a SQLite file, e.g. `<output-dir>/metadata.sqlite`.
    readonly: Open without write access (the default). Read-write opens an
      existing SQLite store only; it never creates one. For MySQL, a reader
      never creates a missing database; read-write creates the database and
      MLMD's tables when they are missing.

  Raises:
    FileNotFoundError: No SQLite file at that path.
    metadata_location.MetadataStoreError: The MySQL server cannot be
      reached, refused the login, or has no such database; the message
      names the URL with its password masked.
  """
  if isinstance(location, str):
    location = metadata_location.SqliteLocation(location)
  if isinstance(location, metadata_location.MySqlLocation):
    return _open_mysql(location, readonly)
  if not os.path.isfile(location.path):
    raise FileNotFoundError(
        f'No metadata store at {location.path}. Run the pipeline first '
        '(python runners/local_runner.py --output-dir DIR), or pass the '
        '--output-dir of an earlier run.')
  config = location.connection_config(readonly=readonly)
  if not readonly:
    mode = metadata_store_pb2.SqliteMetadataSourceConfig
    config.sqlite.connection_mode = mode.READWRITE  # Never creates one.
  return metadata_store.MetadataStore(config)


def _open_mysql(location: metadata_location.MySqlLocation, readonly: bool
                ) -> metadata_store.MetadataStore:
  """MLMD on MySQL, with errors that say what is wrong and hide the password.

  MLMD logs a misleading line of its own on stderr for every failed
  connection (about MySQL 8 authentication plugins), from C++; it is kept
  back while connecting and shown only when the connection succeeds
  (then it holds whatever else was written meanwhile).
  """
  metadata_location.probe(location)
  config = location.connection_config(readonly=readonly)
  with native_stderr.held() as held:
    try:
      store = metadata_store.MetadataStore(config)
    # RuntimeError: MLMD's error for a failed connection; StatusError: a
    # refused query, e.g. a schema version this MLMD does not know.
    except (RuntimeError, mlmd_errors.StatusError) as e:
      held.discard()
      raise metadata_location.MetadataStoreError(
          _mysql_error(location, str(e), readonly)) from None
  return store


def _mysql_error(location: metadata_location.MySqlLocation, detail: str,
                 readonly: bool) -> str:
  """The one-line explanation of a failed MySQL connection."""
  detail = location.scrub(detail).strip()
  if 'Unknown database' in detail:
    return (f'the MySQL server at {location.address} has no database '
            f'{location.database!r} ({location}). Check the name'
            + ('; a pipeline run creates it.' if readonly else
               f', or create it: CREATE DATABASE `{location.database}`.'))
  if 'mysql_real_connect failed' in detail:
    # Reachable (probed), but the login failed: MLMD's message is empty.
    return (f'the MySQL server at {location.address} refused the login of '
            f'user {location.user!r} ({location}). Check the user and the '
            'password (in the URL, or in MYSQL_PWD when the URL has none), '
            'and that the user may connect from this host.')
  return (f'cannot open the metadata store {location}: {detail}. Check that '
          f'user {location.user!r} may create and use database '
          f'{location.database!r}.')


def state_name(execution: metadata_store_pb2.Execution) -> str:
  """'complete', 'cached', 'FAILED', 'running', ... for an execution."""
  return STATE_NAMES.get(execution.last_known_state, UNKNOWN_STATE)


def duration_seconds(execution: metadata_store_pb2.Execution) -> float:
  """Seconds from an execution's creation to its last update (>= 0).

  For a finished execution that is its run time, exact to the millisecond
  whenever the store is read.
  """
  return max(0.0, (execution.last_update_time_since_epoch -
                   execution.create_time_since_epoch) / 1000.0)


def component_class(execution: metadata_store_pb2.Execution) -> str:
  """'Trainer' for an execution of type 'tfx.components.trainer...Trainer'."""
  return execution.type.rsplit('.', 1)[-1]


def node_id(contexts: Sequence[Context],
            execution: metadata_store_pb2.Execution) -> str:
  """The component id of an execution, from its 'node' context.

  Args:
    contexts: The execution's contexts (`store.get_contexts_by_execution`).
    execution: The execution; its class stands in if no node context exists.
  """
  for context in contexts:
    if context.type == NODE_CONTEXT:
      return context.name.split('.', 1)[-1]
  return component_class(execution)


@dataclasses.dataclass
class Execution:
  """One component execution of a run, with its artifacts by event key."""
  component_id: str
  component_class: str
  state: str
  seconds: float
  proto: metadata_store_pb2.Execution
  inputs: Dict[str, List[Artifact]]
  outputs: Dict[str, List[Artifact]]

  @property
  def finished(self) -> bool:
    return self.state in FINAL_STATES

  def input(self, key: str) -> Optional[Artifact]:
    """The first artifact consumed under `key` ('examples'), or None."""
    artifacts = self.inputs.get(key)
    return artifacts[0] if artifacts else None

  def output(self, key: str) -> Optional[Artifact]:
    """The first artifact produced under `key` ('model'), or None."""
    artifacts = self.outputs.get(key)
    return artifacts[0] if artifacts else None


@dataclasses.dataclass
class Link:
  """One link of the chain: a stage, its artifact (if any) and a note."""
  stage: str
  artifact_id: Optional[int]
  location: str
  note: str = ''


@dataclasses.dataclass(frozen=True)
class ServingCheckResult:
  """ServingCheck's verdict on a candidate (pipeline/components/
  serving_check.py): served by the REST server, the answers compared with
  serving_default's.

  Attributes:
    passed: The Pusher may push it (the InfraBlessing's `blessed`).
    checked: False when it was skipped: the Evaluator did not bless it.
    rows: Test rows compared.
    max_difference: The largest difference found; None if none compared.
    note: One line: what was checked, or why the push was blocked.
    artifact_id: The InfraBlessing's MLMD id.
  """
  passed: bool
  checked: bool
  rows: int
  max_difference: Optional[float]
  note: str
  artifact_id: int


@dataclasses.dataclass
class Run:
  """A pipeline run read back from MLMD; executions oldest first."""
  pipeline_name: str
  run_id: str
  create_time_ms: int
  executions: List[Execution]
  # For a run whose model was unchanged: the earlier run that evaluated and
  # blessed that model (see `model_unchanged`).
  blessed_by: Optional['Run'] = None

  def execution(self, component_class_name: str) -> Optional[Execution]:
    """The last execution of a component class ('Trainer'), or of any
    '*ExampleGen' for EXAMPLE_GEN_SUFFIX."""
    found = None
    for execution in self.executions:
      kind = execution.component_class
      if kind == component_class_name or (
          component_class_name == EXAMPLE_GEN_SUFFIX and kind.endswith(
              EXAMPLE_GEN_SUFFIX)):
        found = execution
    return found

  def component(self, component_id: str) -> Optional[Execution]:
    """The last execution of a component id ('ImportSchemaGen'), or None."""
    found = None
    for execution in self.executions:
      if execution.component_id == component_id:
        found = execution
    return found

  def count(self, state: str) -> int:
    """How many executions ended in (or are in) `state`."""
    return sum(1 for e in self.executions if e.state == state)

  @property
  def model_unchanged(self) -> bool:
    """The Trainer's model was already the blessed baseline, so Evaluator
    and Pusher were skipped (an unchanged re-run)."""
    change = _output(self.execution(MODEL_CHANGE_CHECK), MODEL_CHANGE_KEY)
    if change is None or IS_NEW not in change.custom_properties:
      return False
    return not change.custom_properties[IS_NEW].int_value

  @property
  def blessed(self) -> Optional[bool]:
    """The Evaluator's verdict; None when no blessing was recorded."""
    blessing = _output(self.execution(EVALUATOR), 'blessing')
    if blessing is None or 'blessed' not in blessing.custom_properties:
      return None
    return bool(blessing.custom_properties['blessed'].int_value)

  @property
  def pushed_destination(self) -> Optional[str]:
    """Where the Pusher copied the model; None when nothing was pushed."""
    pushed = _output(self.execution(PUSHER), 'pushed_model')
    if pushed is None:
      return None
    props = pushed.custom_properties
    if 'pushed' in props and props['pushed'].int_value:
      return props['pushed_destination'].string_value
    return None

  @property
  def model_run_uri(self) -> Optional[str]:
    """Trainer logs (TensorBoard) of this run; a cached Trainer's reused."""
    model_run = _output(self.execution(TRAINER), 'model_run')
    return model_run.uri if model_run is not None else None

  @property
  def tuner_results_uri(self) -> Optional[str]:
    """The Tuner's trial results (with --tune); a cached Tuner's reused."""
    results = _output(self.execution(TUNER), 'tuner_results')
    return results.uri if results is not None else None

  @property
  def evaluation_uri(self) -> Optional[str]:
    """The Evaluator's output (TFMA metrics, validation result), if any."""
    evaluation = _output(self.execution(EVALUATOR), 'evaluation')
    return evaluation.uri if evaluation is not None else None

  @property
  def attributions_uri(self) -> Optional[str]:
    """FeatureAttributions' output (attributions.json), if it ran."""
    found = _output(self.execution(FEATURE_ATTRIBUTIONS), ATTRIBUTIONS_KEY)
    return found.uri if found is not None else None

  @property
  def serving_check(self) -> Optional['ServingCheckResult']:
    """What ServingCheck found before the push; None when it did not run."""
    found = _output(self.execution(SERVING_CHECK), SERVING_CHECK_KEY)
    if found is None or 'blessed' not in found.custom_properties:
      return None
    props = found.custom_properties
    difference = props.get(component_ids.MAX_DIFFERENCE_KEY)
    return ServingCheckResult(
        passed=bool(props['blessed'].int_value),
        checked=bool(_int_property(found, component_ids.CHECKED_KEY)),
        rows=_int_property(found, component_ids.ROWS_CHECKED_KEY),
        max_difference=(difference.double_value if difference is not None
                        else None),
        note=_string_property(found, component_ids.CHECK_NOTE_KEY),
        artifact_id=found.id)

  @property
  def baseline_model(self) -> Optional[Artifact]:
    """The blessed model the Evaluator compared with; None without one."""
    evaluator = self.execution(EVALUATOR)
    return evaluator.input('baseline_model') if evaluator else None

  def chain(self) -> List[Link]:
    """data -> examples -> transform -> model -> evaluation -> blessing ->
    push, following the artifacts each execution really consumed."""
    example_gen = self.execution(EXAMPLE_GEN_SUFFIX)
    transform = self.execution(TRANSFORM)
    trainer = self.execution(TRAINER)
    # An unchanged model's evaluation, blessing and push are those of the
    # run that blessed it; this run skipped Evaluator and Pusher.
    judged = self.blessed_by or self
    evaluator = judged.execution(EVALUATOR)
    pusher = judged.execution(PUSHER)
    links = [_data_link(example_gen)]
    # Each link is what the next stage consumed when there is a next stage,
    # else what this stage produced; so a broken link shows up as a mismatch
    # in ids between neighbouring rows rather than being papered over.
    examples = (_input(transform, 'examples') or
                _output(example_gen, 'examples'))
    links.append(_link('examples', examples, example_gen))
    graph = (_input(trainer, 'transform_graph') or
             _output(transform, 'transform_graph'))
    links.append(_link('transform', graph, transform))
    model = _input(evaluator, 'model') or _output(trainer, 'model')
    links.append(_link('model', model, trainer))
    baseline = judged.baseline_model
    eval_link = _link('evaluation', _output(evaluator, 'evaluation'),
                      evaluator)
    eval_link.note = ', '.join(filter(None, [
        eval_link.note,
        f'baseline model #{baseline.id}' if baseline is not None
        else ('no baseline' if evaluator is not None else '')]))
    links.append(eval_link)
    verdict = {True: 'BLESSED', False: 'NOT BLESSED', None: ''}[
        judged.blessed]
    blessing_link = _link('blessing', _output(evaluator, 'blessing'),
                          evaluator)
    blessing_link.note = ', '.join(filter(None, [verdict, blessing_link.note]))
    links.append(blessing_link)
    pushed = _output(pusher, 'pushed_model')
    push_link = _link('push', pushed, pusher)
    if pushed is not None:
      push_link.location = judged.pushed_destination or 'not pushed'
    links.append(push_link)
    if judged is not self:
      for link in links[-3:]:
        link.note = ', '.join(filter(None, [
            link.note, f'model unchanged: from run {judged.run_id}']))
    return links


def _input(execution: Optional[Execution], key: str) -> Optional[Artifact]:
  return execution.input(key) if execution is not None else None


def _output(execution: Optional[Execution], key: str) -> Optional[Artifact]:
  return execution.output(key) if execution is not None else None


def _data_link(example_gen: Optional[Execution]) -> Link:
  """The input data: ExampleGen's input_base and what it fingerprinted."""
  if example_gen is None:
    return Link('data', None, '-', 'no ExampleGen ran')
  props = example_gen.proto.custom_properties
  base = props['input_base'].string_value if 'input_base' in props else '?'
  note = ''
  if 'input_fingerprint' in props:
    note = fingerprint_note(props['input_fingerprint'].string_value)
  return Link('data', None, base, note)


def fingerprint_note(fingerprint: str) -> str:
  """'N file(s), B bytes' from ExampleGen's input fingerprint; '' if absent.

  One span: 'split:single_split,num_files:1,total_bytes:260207,...'. A range
  of spans (--span A-B) records one such line per span, 'span 1: split:...',
  and the note counts them all.
  """
  files = size = 0
  found = False
  for line in fingerprint.splitlines():
    fields = dict(part.split(':', 1) for part in line.split(',')
                  if ':' in part)
    try:
      files += int(fields['num_files'])
      size += int(fields['total_bytes'])
    except (KeyError, ValueError):
      continue
    found = True
  return f'{files} file(s), {size} bytes' if found else ''


def _state_note(execution: Optional[Execution]) -> str:
  if execution is None:
    return 'did not run'
  return '' if execution.state == 'complete' else execution.state


def _link(stage: str, artifact: Optional[Artifact],
          producer: Optional[Execution]) -> Link:
  if artifact is None:
    return Link(stage, None, '-', _state_note(producer))
  return Link(stage, artifact.id, artifact.uri, _state_note(producer))


# --- Run discovery --------------------------------------------------------


def run_contexts(store: metadata_store.MetadataStore,
                 pipeline_name: Optional[str] = None,
                 since_ms: Optional[int] = None) -> List[Context]:
  """The pipeline_run contexts in a store, oldest first.

  Args:
    store: An open MLMD store.
    pipeline_name: Only runs of this pipeline (the children of its
      'pipeline' context); None for the runs of every pipeline.
    since_ms: Only runs created at or after this time (ms since the epoch).
  """
  if pipeline_name is None:
    contexts = store.get_contexts_by_type(RUN_CONTEXT)
  else:
    pipeline = store.get_context_by_type_and_name(PIPELINE_CONTEXT,
                                                  pipeline_name)
    if pipeline is None:
      return []
    contexts = [c for c in store.get_children_contexts_by_context(pipeline.id)
                if c.type == RUN_CONTEXT]
  if since_ms is not None:
    contexts = [c for c in contexts if c.create_time_since_epoch >= since_ms]
  return sorted(contexts, key=lambda c: (c.create_time_since_epoch, c.id))


def pipeline_of(store: metadata_store.MetadataStore,
                run_context: Context) -> Optional[str]:
  """The name of the pipeline a pipeline_run context belongs to, if known."""
  for parent in store.get_parent_contexts_by_context(run_context.id):
    if parent.type == PIPELINE_CONTEXT:
      return parent.name
  return None


def run_ids(store: metadata_store.MetadataStore, pipeline_name: str
            ) -> List[str]:
  """The ids of a pipeline's runs, oldest first."""
  return [context.name for context in run_contexts(store, pipeline_name)]


def read_run(store: metadata_store.MetadataStore,
             context_or_run_id: Union[Context, str],
             pipeline_name: Optional[str] = None) -> Run:
  """Reads one run: its executions, their states and their artifacts.

  Args:
    store: An open MLMD store.
    context_or_run_id: The run's pipeline_run context, or its name (the run
      id).
    pipeline_name: The run's pipeline; None to read it from the store.

  Raises:
    LookupError: No pipeline_run of that id.
  """
  context = context_or_run_id
  if isinstance(context, str):
    context = store.get_context_by_type_and_name(RUN_CONTEXT, context)
    if context is None:
      raise LookupError(f'No run {context_or_run_id!r} in the store.')
  if pipeline_name is None:
    pipeline_name = pipeline_of(store, context) or '?'
  executions = store.get_executions_by_context(context.id)
  executions.sort(key=lambda e: (e.create_time_since_epoch, e.id))
  events = store.get_events_by_execution_ids([e.id for e in executions])
  artifacts = {a.id: a for a in store.get_artifacts_by_id(
      sorted({e.artifact_id for e in events}))}
  run = Run(pipeline_name=pipeline_name, run_id=context.name,
            create_time_ms=context.create_time_since_epoch, executions=[])
  events_of: Dict[int, List[metadata_store_pb2.Event]] = {}
  for event in events:
    events_of.setdefault(event.execution_id, []).append(event)
  for execution in executions:
    inputs: Dict[str, List[Artifact]] = {}
    outputs: Dict[str, List[Artifact]] = {}
    for event in events_of.get(execution.id, ()):
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
    run.executions.append(Execution(
        component_id=node_id(store.get_contexts_by_execution(execution.id),
                             execution),
        component_class=component_class(execution),
        state=state_name(execution), seconds=duration_seconds(execution),
        proto=execution, inputs=inputs, outputs=outputs))
  if run.model_unchanged:
    run.blessed_by = _blessing_run(store, run)
  return run


def _blessing_run(store: metadata_store.MetadataStore, run: Run
                  ) -> Optional[Run]:
  """The latest earlier run whose Evaluator blessed `run`'s model."""
  model = _output(run.execution(TRAINER), 'model')
  if model is None:
    return None
  consumers = sorted({event.execution_id for event in
                      store.get_events_by_artifact_ids([model.id])
                      if event.type == metadata_store_pb2.Event.INPUT})
  for execution in reversed(store.get_executions_by_id(consumers)):
    if (component_class(execution) != EVALUATOR or
        state_name(execution) != 'complete'):
      continue
    for context in store.get_contexts_by_execution(execution.id):
      if context.type == RUN_CONTEXT and context.name != run.run_id:
        earlier = read_run(store, context, run.pipeline_name)
        judged = _input(earlier.execution(EVALUATOR), 'model')
        if earlier.blessed and judged is not None and judged.id == model.id:
          return earlier
  return None


def find_run(store: metadata_store.MetadataStore, pipeline_name: str,
             run_id: Optional[str] = None) -> Run:
  """One run of a pipeline: `run_id`, or the latest when None.

  Raises:
    LookupError: The pipeline has no runs, or no run `run_id`.
  """
  if run_id is None:
    contexts = run_contexts(store, pipeline_name)
    if not contexts:
      raise LookupError(
          f'No runs of pipeline {pipeline_name!r} in the store.')
    return read_run(store, contexts[-1], pipeline_name)
  context = store.get_context_by_type_and_name(RUN_CONTEXT, run_id)
  if context is None or pipeline_of(store, context) != pipeline_name:
    raise LookupError(f'No run {run_id!r} of pipeline {pipeline_name!r}.')
  return read_run(store, context, pipeline_name)


def recent_runs(store: metadata_store.MetadataStore,
                pipeline_name: Optional[str] = None,
                limit: Optional[int] = None) -> List[Run]:
  """Runs in the store, newest first, optionally of one pipeline only."""
  contexts = run_contexts(store, pipeline_name)[::-1]
  if limit is not None:
    contexts = contexts[:limit]
  return [read_run(store, context, pipeline_name) for context in contexts]


def latest_model_run_uri(store: metadata_store.MetadataStore,
                         pipeline_name: Optional[str] = None) -> str:
  """Trainer log dir of the newest run that trained (or reused) a model.

  Raises:
    LookupError: No run has a Trainer output.
  """
  for context in reversed(run_contexts(store, pipeline_name)):
    uri = read_run(store, context, pipeline_name).model_run_uri
    if uri:
      return uri
  raise LookupError(
      'No Trainer output in the metadata store'
      + (f' for pipeline {pipeline_name!r}' if pipeline_name else '')
      + '. Run the pipeline until the Trainer has finished.')


@dataclasses.dataclass(frozen=True)
class BlessedModel:
  """A model an Evaluator blessed, and what it was trained on.

  Attributes:
    run_id: The run whose Evaluator blessed it.
    model: The Model artifact.
    transform_graph: The Transform output its Trainer read.
    span: The span of its Examples (0 for data without spans).
    data_fingerprint: What identifies its input data: ExampleGen's
      `input_fingerprint` of the files (count, bytes, mtimes), or the SQL
      source's `rows_fingerprint`.
    trainer_config: Its Trainer's custom_config (JSON text).
  """
  run_id: str
  model: Artifact
  transform_graph: Optional[Artifact]
  span: int
  data_fingerprint: str
  trainer_config: str


def blessed_models(store: metadata_store.MetadataStore, pipeline_name: str
                   ) -> Iterator[BlessedModel]:
  """The models a pipeline's runs blessed, newest run first, lazily.

  A run whose model was unchanged (the Evaluator skipped) blessed nothing
  new and is passed over.
  """
  for context in reversed(run_contexts(store, pipeline_name)):
    run = read_run(store, context, pipeline_name)
    evaluator = run.execution(EVALUATOR)
    model = _input(evaluator, 'model')
    trainer = run.execution(TRAINER)
    if not run.blessed or model is None or trainer is None:
      continue
    example_gen = run.execution(EXAMPLE_GEN_SUFFIX)
    examples = (_input(run.execution(TRANSFORM), 'examples') or
                _output(example_gen, 'examples'))
    yield BlessedModel(
        run_id=run.run_id, model=model,
        transform_graph=trainer.input('transform_graph'),
        span=_int_property(examples, 'span'),
        data_fingerprint=(_string_property(examples, 'input_fingerprint') or
                          _string_property(
                              example_gen.proto if example_gen else None,
                              'rows_fingerprint')),
        trainer_config=_string_property(trainer.proto, 'custom_config'))


def _int_property(item, name: str) -> int:
  if item is None:
    return 0
  for properties in (item.properties, item.custom_properties):
    if name in properties:
      return properties[name].int_value
  return 0


def _string_property(item, name: str) -> str:
  if item is None:
    return ''
  for properties in (item.properties, item.custom_properties):
    if name in properties:
      return properties[name].string_value
  return ''
