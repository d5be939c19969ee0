"""The Airflow DAG, `runners/airflow_dag.py`: its settings, its shape, a run.

Importing Airflow creates `AIRFLOW_HOME` and configures logging, so this
process never imports it: the refusals of TABULAR_PIPELINE_ARGS happen
before Airflow is imported and are checked here, and the DAG is loaded the
way the scheduler loads it (Airflow's `DagBag` on runners/) in a
subprocess, with a temporary `AIRFLOW_HOME`.

The e2e test runs `airflow dags test` against a real Airflow metadata
database (SQLite, in a temporary `AIRFLOW_HOME`) and reads both stores
back: one successful Airflow task per component, and one pipeline run in
ML Metadata, blessed and pushed, that the run summary reads as it reads a
local run.
"""

import datetime
import json
import os
import pathlib
import shlex
import sqlite3
import subprocess
import sys
import types
from typing import Dict
from typing import List
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import pytest
from tfx.dsl.compiler import compiler
from tfx.proto.orchestration import pipeline_pb2

from models import keras_choice
from pipeline.airflow import dag as airflow_dag
from pipeline.definition import pipeline as pipeline_lib
from pipeline.inspection import run_model
from pipeline.orchestration import nodes
from pipeline.tracking import mlflow_log
from tests import pipeline_state
from tests.conftest import E2E_TRAIN_STEPS
from tests.conftest import PIPELINE_NAME
from tests.conftest import REPO_ROOT
from tests.conftest import SAMPLE_DATA

RUNNERS = REPO_ROOT / 'runners'
DAG_FILE = RUNNERS / 'airflow_dag.py'
# The Airflow CLI of the interpreter running the tests (.venv/bin/airflow).
AIRFLOW = pathlib.Path(sys.executable).parent / 'airflow'
LOGICAL_DATE = '2026-12-01'
# The e2e runs train on 2 simulated replicas of 128 (conftest.E2E_ARGS);
# --cpu-replicas is a process-level flag the DAG does not take, so one
# replica of 256 trains on the same global batch.
TRAIN_ARGS = ('--train-steps', str(E2E_TRAIN_STEPS),
              '--per-replica-batch-size', '256')

# Loads runners/ as the scheduler does; writes what it found to argv[2].
DAGBAG_SCRIPT = '''
import json, sys
from airflow.models import dagbag
bag = dagbag.DagBag(dag_folder=sys.argv[1], include_examples=False)
found = {"import_errors": dict(bag.import_errors), "dags": {}}
for dag_id, dag in bag.dags.items():
  found["dags"][dag_id] = {
      "schedule": dag.timetable.summary,
      "start_date": dag.start_date.isoformat(),
      "catchup": dag.catchup,
      "max_active_runs": dag.max_active_runs,
      "max_active_tasks": dag.max_active_tasks,
      "tasks": {t.task_id: {
          "upstream": sorted(t.upstream_task_ids),
          "operator": type(t).__name__,
          "launcher": (t.python_callable.keywords[
              "component_launcher_class"].__name__
                       if hasattr(t.python_callable, "keywords") else None),
      } for t in dag.tasks}}
with open(sys.argv[2], "w") as f:
  json.dump(found, f)
'''


def airflow_env(home: pathlib.Path, args: Optional[Sequence[str]]
                ) -> Dict[str, str]:
  """An environment for Airflow with its home in `home`, dags in runners/.

  Args:
    home: AIRFLOW_HOME: its config, its SQLite database, its logs.
    args: The runner flags for TABULAR_PIPELINE_ARGS; None leaves it unset.
  """
  # Without the Keras choice of this process (conftest): the DAG file must
  # make it, for itself and for every task process.
  env = {k: v for k, v in os.environ.items()
         if k not in (airflow_dag.ARGS_ENV_VAR, keras_choice.ENV_VAR)
         and not k.startswith('AIRFLOW')}
  env.update({
      'AIRFLOW_HOME': str(home),
      'AIRFLOW__CORE__DAGS_FOLDER': str(RUNNERS),
      'AIRFLOW__CORE__LOAD_EXAMPLES': 'False',
      # The DAG file imports TFX and TensorFlow, 15 s or more on two busy
      # cores; Airflow's default limit is 30 s.
      'AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT': '600',
  })
  if args is not None:
    env[airflow_dag.ARGS_ENV_VAR] = shlex.join(args)
  return env


def load_dagbag(tmp_path: pathlib.Path, args: Optional[Sequence[str]]
                ) -> Dict:
  """What Airflow's DagBag finds in runners/, read in a subprocess."""
  out = tmp_path / 'dagbag.json'
  result = subprocess.run(
      [sys.executable, '-c', DAGBAG_SCRIPT, str(RUNNERS), str(out)],
      env=airflow_env(tmp_path / 'airflow_home', args), cwd=str(tmp_path),
      capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-5000:]
  return json.loads(out.read_text())


def good_args(output_dir: pathlib.Path) -> List[str]:
  return ['--data-root', str(SAMPLE_DATA), '--output-dir', str(output_dir),
          *TRAIN_ARGS]


def pipeline_upstreams(args: Sequence[str]) -> Dict[str, List[str]]:
  """Component id -> its upstream component ids, from `create_pipeline`."""
  config, layout = airflow_dag.config_from(args, {})
  pipeline = pipeline_lib.create_pipeline(
      config, layout.metadata_location.connection_config())
  return {c.id: sorted(u.id for u in c.upstream_nodes)
          for c in pipeline.components}


def dag_upstreams(args: Sequence[str]) -> Dict[str, List[str]]:
  """Task id -> its upstream task ids: the components', then RunEnd's,
  which comes after every component that has no downstream one."""
  upstreams = pipeline_upstreams(args)
  inner = {u for ups in upstreams.values() for u in ups}
  return {**upstreams,
          airflow_dag.RUN_END_TASK: sorted(set(upstreams) - inner)}


def env_with(value: Optional[str]) -> Mapping[str, str]:
  return {} if value is None else {airflow_dag.ARGS_ENV_VAR: value}


# --- The refusals: before the DAG code imports Airflow or TFX. ------------


@pytest.mark.parametrize('value', [None, '', '   '])
def test_a_missing_or_empty_variable_says_what_to_set(value):
  with pytest.raises(airflow_dag.AirflowConfigError) as e:
    airflow_dag.dag_from_environment(env_with(value))
  message = str(e.value)
  assert message.startswith('TABULAR_PIPELINE_ARGS is not set. Set it, in '
                            'the environment of the Airflow scheduler')
  assert 'e.g. TABULAR_PIPELINE_ARGS="--output-dir /srv/tabular' in message


def test_bad_quoting_is_refused_with_the_value():
  value = "--output-dir '/srv/tabular"
  with pytest.raises(airflow_dag.AirflowConfigError) as e:
    airflow_dag.dag_from_environment(env_with(value))
  assert str(e.value).startswith(
      'TABULAR_PIPELINE_ARGS is not valid shell syntax (No closing '
      'quotation): "--output-dir \'/srv/tabular". Quote it as in a shell '
      'command line')


@pytest.mark.parametrize('flag', ['--output-dir', '--data-root',
                                  '--dataset-config', '--schema'])
def test_a_relative_path_is_refused_with_its_absolute_form(tmp_path, flag):
  args = {'--output-dir': str(tmp_path), '--data-root': str(SAMPLE_DATA)}
  args[flag] = 'outputs/taxi'
  with pytest.raises(airflow_dag.AirflowConfigError) as e:
    airflow_dag.config_from([a for kv in args.items() for a in kv], {})
  assert str(e.value) == (
      f'TABULAR_PIPELINE_ARGS: {flag} outputs/taxi is relative; the Airflow '
      'scheduler and workers may start in other directories. Give an '
      f'absolute path, e.g. {flag} {os.path.abspath("outputs/taxi")}.')


def test_a_missing_output_dir_is_refused_and_not_created(tmp_path):
  missing = tmp_path / 'not' / 'there'
  with pytest.raises(airflow_dag.AirflowConfigError) as e:
    airflow_dag.config_from(['--output-dir', str(missing)], {})
  assert str(e.value).startswith(
      f'TABULAR_PIPELINE_ARGS: --output-dir {missing} does not exist. Create '
      f'it (mkdir -p {missing}): the metadata store '
      f'{missing}/metadata.sqlite is created inside it')
  assert not missing.parent.exists()


@pytest.mark.parametrize('argv, expected', [
    ([], 'TABULAR_PIPELINE_ARGS: the following arguments are required: '
         '--output-dir. Set it to the runner flags, e.g. '
         'TABULAR_PIPELINE_ARGS="--output-dir /srv/tabular'),
    (['--cpu-replicas', '2'], 'TABULAR_PIPELINE_ARGS: unrecognized '
                              'arguments: --cpu-replicas 2'),
    (['--help'], 'TABULAR_PIPELINE_ARGS asks argparse to exit'),
    (['--lock-timeout', '5'], 'TABULAR_PIPELINE_ARGS: --lock-timeout '
                              'applies to local runs'),
    (['--sql-url', 'postgresql://u@db/x', '--query', 'SELECT 1'],
     'TABULAR_PIPELINE_ARGS: --sql-url is not supported by the Airflow DAG'),
    (['--warm-start'], 'TABULAR_PIPELINE_ARGS: --warm-start is not '
                       'supported by the Airflow DAG'),
    (['--label', 'tips', '--task', 'regression'],
     'TABULAR_PIPELINE_ARGS: --label and --draft-only (a zero-config run) '
     'draft the dataset config on this machine: run runners/local_runner.py '
     '--label ... first'),
    (['--draft-only'],
     'TABULAR_PIPELINE_ARGS: --label and --draft-only (a zero-config run) '
     'draft the dataset config on this machine'),
    (['--beam-workers', '-1'], 'TABULAR_PIPELINE_ARGS: --beam-workers must '
                               'be >= 0, got -1.'),
])
def test_flags_a_dag_cannot_use_are_refused_by_name(tmp_path, capsys, argv,
                                                    expected):
  if argv:
    argv = ['--output-dir', str(tmp_path), *argv]
  with pytest.raises(airflow_dag.AirflowConfigError) as e:
    airflow_dag.config_from(argv, {})
  assert str(e.value).startswith(expected)
  capsys.readouterr()  # --help prints the flags.


def test_a_refusal_imports_neither_airflow_nor_tensorflow(tmp_path):
  """Checked in a fresh process: this one may have imported TF already."""
  script = (
      'import sys\n'
      'from pipeline.airflow import dag\n'
      'try:\n'
      '  dag.dag_from_environment({})\n'
      'except dag.AirflowConfigError:\n'
      '  pass\n'
      'print(sorted(m for m in ("airflow", "tfx", "tensorflow") '
      'if m in sys.modules))\n')
  home = tmp_path / 'airflow_home'
  result = subprocess.run([sys.executable, '-c', script],
                          env=airflow_env(home, None), cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == '[]'
  assert not home.exists()


# --- The DAG, as Airflow loads it. -----------------------------------------


def test_without_the_variable_airflow_shows_the_message(tmp_path):
  found = load_dagbag(tmp_path, None)
  assert found['dags'] == {}
  assert list(found['import_errors']) == [str(DAG_FILE)]
  assert ('AirflowConfigError: TABULAR_PIPELINE_ARGS is not set'
          in found['import_errors'][str(DAG_FILE)])


@pytest.fixture(scope='module')
def loaded_dag(tmp_path_factory) -> Dict:
  """The DAG from good flags, as the DagBag loads it; and its output dir."""
  root = tmp_path_factory.mktemp('dagbag')
  output_dir = root / 'outputs'
  output_dir.mkdir()
  args = good_args(output_dir)
  found = load_dagbag(root, args)
  return {'found': found, 'args': args, 'output_dir': output_dir}


def test_the_dag_file_loads_as_one_dag(loaded_dag):
  found = loaded_dag['found']
  assert found['import_errors'] == {}
  assert list(found['dags']) == [PIPELINE_NAME]
  # The DAG file writes nothing, not even the metadata store.
  assert list(loaded_dag['output_dir'].iterdir()) == []


def test_one_task_per_component_with_the_pipeline_dependencies(loaded_dag):
  tasks = loaded_dag['found']['dags'][PIPELINE_NAME]['tasks']
  expected = dag_upstreams(loaded_dag['args'])
  assert {task_id: task['upstream'] for task_id, task in tasks.items()
          } == expected
  assert 'Transform' in tasks['Trainer']['upstream']
  assert {'ModelChangeCheck', 'Trainer'} <= set(tasks['Evaluator']['upstream'])
  assert 'Evaluator' in tasks['Pusher']['upstream']
  assert 'FeatureAttributions' in tasks['RunEnd']['upstream']
  # TFX's operator, running the compiled node (pipeline/airflow/launcher.py);
  # then the summary, report, card and MLflow (pipeline/tracking/run_end.py).
  kinds = {task_id: (t['operator'], t['launcher'])
           for task_id, t in tasks.items()}
  assert kinds.pop(airflow_dag.RUN_END_TASK) == ('PythonOperator', None)
  assert set(kinds.values()) == {('AirflowComponent', 'CompiledNodeLauncher')}


def test_tune_adds_a_tuner_task_before_the_trainer(loaded_dag, tmp_path):
  """The DAG file's config with --tune: one more node, hence one more task.

  test_one_task_per_component_with_the_pipeline_dependencies proves that
  the DagBag has one task per node of `create_pipeline`, with its
  upstreams; a second DagBag load for --tune would cost another
  subprocess that imports Airflow, TFX and TensorFlow.
  """
  output_dir = tmp_path / 'outputs'
  output_dir.mkdir()
  args = good_args(output_dir) + ['--tune', '--tune-trials', '2']
  upstreams = dag_upstreams(args)
  plain = loaded_dag['found']['dags'][PIPELINE_NAME]['tasks']
  assert set(upstreams) == set(plain) | {'Tuner'}
  # Nothing is tuned or trained on data the gates stopped.
  assert upstreams['Tuner'] == ['AnomalyGate', 'DriftGate', 'Transform']
  assert 'Tuner' in upstreams['Trainer']


def test_the_dag_runs_daily_one_run_at_a_time(loaded_dag):
  dag = loaded_dag['found']['dags'][PIPELINE_NAME]
  assert dag['schedule'] == '0 0 * * *'  # @daily: at midnight (UTC).
  assert dag['start_date'] == '2026-01-01T00:00:00+00:00'
  assert dag['catchup'] is False
  assert dag['max_active_runs'] == 1
  # The SQLite store takes one writer at a time.
  assert dag['max_active_tasks'] == 1


# --- The TFX side of each task, without Airflow. ---------------------------


def compiled_run(output_dir: pathlib.Path, run_id: str
                 ) -> Tuple[pipeline_pb2.Pipeline, pipeline_pb2.Pipeline]:
  """The compiled pipeline of `good_args`, and its copy for one run id."""
  config, layout = airflow_dag.config_from(good_args(output_dir), {})
  ir = compiler.Compiler().compile(pipeline_lib.create_pipeline(
      config, layout.metadata_location.connection_config()))
  return ir, nodes.for_run(ir, run_id)


def test_each_dag_run_is_its_own_pipeline_run(tmp_path):
  airflow_run_id = f'scheduled__{LOGICAL_DATE}T00:00:00+00:00'
  # `airflow dags test` replaces a DAG run by another of the same run id.
  first, second = (nodes.pipeline_run_id(airflow_run_id, key)
                   for key in (1, 2))
  assert first == f'{airflow_run_id}#1' and first != second
  ir, run = compiled_run(tmp_path, first)
  assert run.runtime_spec.pipeline_run_id.field_value.string_value == first
  assert ir.runtime_spec.pipeline_run_id.HasField('runtime_parameter')
  for node in run.nodes:
    [run_context] = [c for c in node.pipeline_node.contexts.contexts
                     if c.type.name == 'pipeline_run']
    assert run_context.name.field_value.string_value == first
  assert nodes.node_of(run, 'Trainer').node_info.id == 'Trainer'
  with pytest.raises(LookupError, match='has no node Tuner'):
    nodes.node_of(run, 'Tuner')
  assert nodes.connection_config(run).sqlite.filename_uri == str(
      tmp_path / 'metadata.sqlite')


def _put_execution(run: pipeline_pb2.Pipeline, node_id: str, state: int,
                   message: str = '') -> int:
  """An execution of the node in the run's contexts, in its MLMD store."""
  store = metadata_store.MetadataStore(nodes.connection_config(run))
  contexts = []
  for spec in nodes.node_of(run, node_id).contexts.contexts:
    name = spec.name.field_value.string_value
    context = store.get_context_by_type_and_name(spec.type.name, name)
    if context is None:
      type_id = store.put_context_type(
          metadata_store_pb2.ContextType(name=spec.type.name))
      context = metadata_store_pb2.Context(type_id=type_id, name=name)
      [context.id] = store.put_contexts([context])
    contexts.append(context)
  execution = metadata_store_pb2.Execution(
      type_id=store.put_execution_type(
          metadata_store_pb2.ExecutionType(name=node_id)),
      last_known_state=state)
  if message:
    execution.custom_properties['__execution_result__'].string_value = (
        json.dumps({'code': 3, 'resultMessage': message}))
  execution_id, _, _ = store.put_execution(execution, [], contexts)
  return execution_id


def test_a_failed_execution_fails_its_task(tmp_path):
  _, run = compiled_run(tmp_path, 'manual__2026-12-01T00:00:00+00:00#1')
  config = nodes.connection_config(run)
  state = metadata_store_pb2.Execution
  for ok in (state.COMPLETE, state.CACHED):
    nodes.check_succeeded(config, _put_execution(run, 'Trainer', ok),
                          'Trainer')
  failed = _put_execution(run, 'Trainer', state.FAILED, 'two input dicts')
  with pytest.raises(nodes.NodeFailedError) as e:
    nodes.check_succeeded(config, failed, 'Trainer')
  assert str(e.value) == (f'Trainer: its execution {failed} ended FAILED in '
                          'ML Metadata: two input dicts')
  running = _put_execution(run, 'Trainer', state.RUNNING)
  with pytest.raises(nodes.NodeFailedError, match='ended RUNNING'):
    nodes.check_succeeded(config, running, 'Trainer')


def test_a_new_dag_run_with_an_old_run_id_is_refused(tmp_path):
  """SQLite reuses a deleted DAG run's key: `dags test` twice on one date."""
  run_id = 'manual__2026-12-01T00:00:00+00:00#1'
  _, run = compiled_run(tmp_path, run_id)
  state = metadata_store_pb2.Execution
  nodes.check_not_reused(run, 'Trainer')  # No store, no run yet.
  # A failed or killed execution is what a retry continues.
  _put_execution(run, 'Trainer', state.FAILED)
  _put_execution(run, 'Trainer', state.RUNNING)
  nodes.check_not_reused(run, 'Trainer')
  _, other_run = compiled_run(tmp_path, 'manual__2026-12-02T00:00:00+00:00#2')
  done = _put_execution(other_run, 'Trainer', state.COMPLETE)
  nodes.check_not_reused(run, 'Trainer')  # Another run's.
  nodes.check_not_reused(other_run, 'Transform')  # Another node's.
  with pytest.raises(nodes.RunIdReusedError) as e:
    nodes.check_not_reused(other_run, 'Trainer')
  assert str(e.value).startswith(
      'Trainer: pipeline run manual__2026-12-02T00:00:00+00:00#2 already ran '
      f'it (execution {done} in ML Metadata), so TFX would reuse that '
      'execution and run nothing.')
  assert 'Use another logical date, or trigger a new DAG run' in str(e.value)


# --- A real run: `airflow dags test`. --------------------------------------


def _parse_time(value: str) -> datetime.datetime:
  return datetime.datetime.fromisoformat(value)


@pytest.mark.e2e
def test_airflow_dags_test_runs_each_component_as_a_task(airflow_run):
  """`airflow db migrate` and `dags test` (`background_runs.run_airflow_dag`,
  started at collection time), as a user runs them."""
  for result in airflow_run.results:
    assert result.returncode == 0, (
        f'{" ".join(result.args)} exited {result.returncode}\n--- stdout '
        f'---\n{result.stdout[-5000:]}\n--- stderr ---\n'
        f'{result.stderr[-5000:]}')
  assert len(airflow_run.results) == 2
  assert not airflow_run.default_home_created
  home, output_dir, args = (airflow_run.home, airflow_run.output_dir,
                            airflow_run.args)

  upstreams = dag_upstreams(args)
  components = pipeline_upstreams(args)
  with sqlite3.connect(home / 'airflow.db') as db:
    [(dag_run_key, airflow_run_id, run_state)] = db.execute(
        'SELECT id, run_id, state FROM dag_run WHERE dag_id = ?',
        (PIPELINE_NAME,)).fetchall()
    rows = db.execute(
        'SELECT task_id, state, end_date FROM task_instance '
        'WHERE dag_id = ? AND run_id = ?',
        (PIPELINE_NAME, airflow_run_id)).fetchall()
  assert run_state == 'success'
  states = {task_id: state for task_id, state, _ in rows}
  assert len(rows) == len(states)
  assert states == {component: 'success' for component in upstreams}
  # Each task ended after its upstream tasks (`dags test` records no start).
  ended = {task_id: _parse_time(end) for task_id, _, end in rows}
  for task_id, upstream in upstreams.items():
    for before in upstream:
      assert ended[before] < ended[task_id], (before, task_id)

  # ML Metadata holds the run as a local run's: the run summary reads it.
  [summary] = pipeline_state.summaries(str(output_dir / 'metadata.sqlite'))
  assert summary.run_id == f'{airflow_run_id}#{dag_run_key}'
  assert {c.component_id: c.state for c in summary.components} == {
      component: 'complete' for component in components}
  assert summary.blessed is True, summary.blessing_reason
  assert summary.training_info['steps_trained'] == E2E_TRAIN_STEPS
  pushed = pathlib.Path(summary.pushed_model)
  assert pipeline_state.pushed_versions(output_dir / 'serving_model') == [
      pushed]
  assert (pushed / 'saved_model.pb').is_file()
  # RunEnd, as a local run ends: the report, the card, the MLflow run and
  # its registered version, both recorded on the MLMD run's context.
  assert (output_dir / 'report.html').is_file()
  assert (pushed / 'model_card.html').is_file()
  assert (pushed / 'model_card.json').is_file()
  store = run_model.open_store(str(output_dir / 'metadata.sqlite'))
  context = store.get_context_by_type_and_name(run_model.RUN_CONTEXT,
                                               summary.run_id)
  assert mlflow_log.recorded_run_id(context)
  assert context.custom_properties[
      mlflow_log.VERSION_PROPERTY].string_value == '1'
  assert (output_dir / 'mlflow.db').is_file()


def _dag_run(**states: str) -> types.SimpleNamespace:
  """A stand-in for Airflow's DagRun: its ids and its task instances."""
  instances = [types.SimpleNamespace(task_id=task_id, state=state)
               for task_id, state in states.items()]
  return types.SimpleNamespace(run_id='manual__2026-12-04T00:00:00+00:00',
                               id=7, get_task_instances=lambda: instances)


def test_run_end_fails_the_dag_run_when_a_component_task_failed(
    tmp_path, capsys):
  """Airflow judges a DAG run by its last task, RunEnd (`all_done`): it
  must fail when a component did, naming it, or the DAG run would pass."""
  output_dir = tmp_path / 'outputs'
  output_dir.mkdir()
  dag_run = _dag_run(CsvExampleGen='success', DriftGate='failed',
                     Transform='upstream_failed', RunEnd='running')
  with pytest.raises(airflow_dag.ComponentTasksFailedError) as e:
    airflow_dag.end_of_run(good_args(output_dir), dag_run=dag_run)
  assert str(e.value) == (
      'Pipeline run manual__2026-12-04T00:00:00+00:00#7 failed: task(s) '
      "DriftGate failed (1 task(s) after them did not run); the failed "
      "task's log says why.")
  # Nothing reached ML Metadata here, so there is nothing to report.
  assert 'No run recorded for pipeline run manual__' in capsys.readouterr().out


def test_run_end_without_a_failure_or_a_run_passes(tmp_path, capsys):
  output_dir = tmp_path / 'outputs'
  output_dir.mkdir()
  airflow_dag.end_of_run(good_args(output_dir),
                         dag_run=_dag_run(CsvExampleGen='success'))
  assert 'No run recorded' in capsys.readouterr().out
