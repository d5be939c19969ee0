"""Shared fixtures.

A full pipeline run costs a minute or more on two cores, so every run is
started once per test session and shared by all the tests that can read what
they need from it. The runs, all through `runners/local_runner.py` in a
subprocess, exactly as a user starts it:

- `e2e_run`: the committed sample, once, then the same run twice more,
  started at the same moment (`concurrent_runs`): the run lock serializes
  them, the first re-run finds everything up to the Trainer in the cache and
  the second is cached entirely. The tests of MLMD, artifacts, TensorBoard,
  notebooks, the report, the serving contract and the served model all read
  it. The first run logs to `mlflow_server`, a real `mlflow server` started
  at collection time; the re-runs log to the output dir's MLflow store.
- `task_runs`: the multiclass and regression tasks, zero-config, on
  datasets scikit-learn ships (tests/task_runs.py).
- `useless_model_rerun`: on a copy of the e2e outputs, the gate self-test
  model (--drop-all-features) on data with an allow-listed extra column,
  SIGKILLed in the Trainer after its first checkpoint and run again. Fault
  recovery and checkpoint resume (test_faults), the
  blessing gate (test_gate) and allow-listed anomalies (test_bad_inputs).
- `concurrent_runs`: those two --verbose re-runs, with fake credentials in
  their environment. The run lock (test_concurrency) and secrets in logs and
  metadata (test_secrets).

`task_runs` starts in a thread at collection time and `useless_model_rerun`
as soon as `e2e_run` is done (tests/background.py); unit tests run first
and the tests that wait for the killed run last, so each background run
overlaps tests that do not need it.

Runs that must stop before the pipeline starts (refused input, a locked
output dir) call the runner's `main()` in this process instead
(`local_runner_in_process`); tests/test_runners.py keeps the checks of the
real script's exit code in a subprocess.
"""

import atexit
import contextlib
import dataclasses
import importlib.util
import json
import logging as std_logging
import os
import pathlib
import subprocess
import sys
import types
from typing import TYPE_CHECKING
from typing import Callable
from typing import Dict
from typing import Iterator
from typing import List
from typing import Sequence
from unittest import mock

from absl import logging
import pytest

from models import keras_choice
from tests import background
from tests import installed_package

if TYPE_CHECKING:
  # Not imported at run time: they import this module.
  from tests import background_runs
  from tests import mlflow_server as mlflow_server_lib
  from tests import robustness
  from tests import span_runs as span_runs_lib
  from tests import task_runs as task_runs_lib

keras_choice.select_keras()

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO_ROOT / 'data' / 'taxi_sample'
LOCAL_RUNNER = REPO_ROOT / 'runners' / 'local_runner.py'
PIPELINE_NAME = 'tabular-taxi'
# The fewest steps that clear the gate with margin on the sample with two
# replicas (global batch 256): 300 steps measured AUC 0.922 on the test
# split, against taxi's min_auc of 0.90.
E2E_TRAIN_STEPS = 300
E2E_ARGS = ('--train-steps', str(E2E_TRAIN_STEPS), '--cpu-replicas', '2')
# The runs that are not about MLflow tracking leave it out.
NO_MLFLOW = ('--no-mlflow',)


def run_local_pipeline(output_dir: pathlib.Path,
                       extra_args: Sequence[str] = (),
                       data_root: pathlib.Path = SAMPLE_DATA,
                       timeout: int = 900,
                       check: bool = True) -> subprocess.CompletedProcess:
  """Runs the local runner in a subprocess; returns its result.

  Without `--mlflow-uri` in `extra_args`, the run does not log to MLflow
  (`--no-mlflow`): only the e2e fixture's runs are about tracking, and
  the worker's import and new store cost seconds of CPU in every run.
  """
  if '--mlflow-uri' not in extra_args:
    extra_args = (*extra_args, *NO_MLFLOW)
  cmd = [sys.executable, str(LOCAL_RUNNER), '--data-root', str(data_root),
         '--output-dir', str(output_dir), *extra_args]
  result = subprocess.run(cmd, capture_output=True, text=True,
                          timeout=timeout, cwd=str(REPO_ROOT),
                          env=dict(os.environ))
  if check and result.returncode != 0:
    raise AssertionError(
        f'{" ".join(cmd)} exited {result.returncode}\n'
        f'--- stdout ---\n{result.stdout[-5000:]}\n'
        f'--- stderr ---\n{result.stderr[-5000:]}')
  return result


# --- The runners, in this process. ----------------------------------------


def load_runner(name: str) -> types.ModuleType:
  """Imports `runners/<name>.py`: runners/ holds scripts, not a package."""
  spec = importlib.util.spec_from_file_location(
      name, REPO_ROOT / 'runners' / f'{name}.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@contextlib.contextmanager
def _process_settings_restored() -> Iterator[None]:
  """Undoes what a runner's main() sets for its process: env, log levels."""
  verbosity = logging.get_verbosity()
  loggers = {name: std_logging.getLogger(name).level
             for name in ('tensorflow', 'apache_beam', 'absl')}
  try:
    with mock.patch.dict(os.environ):
      yield
  finally:
    logging.set_verbosity(verbosity)
    for name, level in loggers.items():
      std_logging.getLogger(name).setLevel(level)


def _pipeline_must_not_start(*unused_args, **unused_kwargs) -> int:
  raise AssertionError('the runner started the pipeline; this in-process '
                       'call expected it to refuse before that')


@pytest.fixture
def local_runner_in_process(capsys, monkeypatch
                            ) -> Callable[..., subprocess.CompletedProcess]:
  """Calls `runners/local_runner.py`'s main() here, for runs it refuses.

  Returns a function (output_dir, extra_args=(), data_root=SAMPLE_DATA) ->
  CompletedProcess with main()'s exit code and what it printed. The
  pipeline itself (pipeline.local.dag) is replaced by a stub that fails the
  test: a refusal must come before it.
  """
  dag_stub = types.ModuleType('pipeline.local.dag')
  dag_stub.execute = _pipeline_must_not_start
  monkeypatch.setitem(sys.modules, 'pipeline.local.dag', dag_stub)
  import pipeline.local
  monkeypatch.setattr(pipeline.local, 'dag', dag_stub, raising=False)
  runner = load_runner('local_runner')

  def run(output_dir: pathlib.Path, extra_args: Sequence[str] = (),
          data_root: pathlib.Path = SAMPLE_DATA
          ) -> subprocess.CompletedProcess:
    argv = ['--data-root', str(data_root), '--output-dir', str(output_dir),
            *extra_args]
    capsys.readouterr()  # Only this call's output.
    with _process_settings_restored():
      code = runner.main(argv)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out, err)

  return run


# --- The sdist that Dataflow workers and the pipeline image install. ------


@pytest.fixture(scope='session')
def sdist(tmp_path_factory) -> pathlib.Path:
  """Built from setup.py once per session, as Dataflow's stager does."""
  return installed_package.build_sdist(tmp_path_factory.mktemp('sdist'))


@pytest.fixture(scope='session')
def installed_sdist(sdist, tmp_path_factory
                    ) -> installed_package.InstalledPackage:
  """The sdist installed once, in a venv that cannot see this checkout."""
  return installed_package.install(sdist, tmp_path_factory.mktemp('install'))


# --- Shared pipeline runs. -------------------------------------------------


@dataclasses.dataclass
class E2ERun:
  """A finished pipeline on the sample: run once, then twice from cache.

  Attributes:
    output_dir: The runs' output dir.
    outputs: The three runs' results, in the order they ran.
    concurrent: The two re-runs, as started together.
  """
  output_dir: pathlib.Path
  outputs: List[subprocess.CompletedProcess]
  concurrent: 'ConcurrentRuns'

  @property
  def metadata_path(self) -> str:
    return str(self.output_dir / 'metadata.sqlite')

  @property
  def serving_model_dir(self) -> pathlib.Path:
    return self.output_dir / 'serving_model'

  @property
  def pipeline_root(self) -> pathlib.Path:
    return self.output_dir / 'pipeline_root'


@pytest.fixture(scope='session')
def e2e_run(request, tmp_path_factory, mlflow_server) -> E2ERun:
  """Runs the sample once, then twice at once, with 2 simulated replicas.

  The first run logs to the session's MLflow server (`--mlflow-uri`), the
  re-runs to the output dir's own MLflow store (the default).
  Once it is done, `useless_model_rerun` starts on a copy of it in the
  background, if a selected test needs it.
  """
  root = tmp_path_factory.mktemp('e2e')
  output_dir = root / 'outputs'
  first = run_local_pipeline(output_dir,
                             (*E2E_ARGS, '--mlflow-uri', mlflow_server.url))
  pair = _run_two_at_once(output_dir, root)
  # Store order: the run that had to wait for the lock ran second.
  waited = [i for i, r in enumerate(pair.results)
            if 'Waiting for run PID' in r.stderr]
  later = waited[0] if len(waited) == 1 else 1
  ordered = [pair.results[1 - later], pair.results[later]]
  run = E2ERun(output_dir=output_dir, outputs=[first, *ordered],
               concurrent=pair)
  if _needed(request.session, _USELESS_FIXTURE):
    _background[_USELESS_FIXTURE] = background.Background(
        _USELESS_FIXTURE, _killed_then_rerun, run,
        tmp_path_factory.mktemp('useless'))
  return run


# The extra column of `useless_model_rerun`'s data, and the anomaly type
# (input_check.NEW_COLUMN_ANOMALY) that lets it through.
EXTRA_COLUMN = 'dispatch_note'
NEW_COLUMN_ANOMALY = 'SCHEMA_NEW_COLUMN'
# Two epochs (models/train.py STEPS_PER_EPOCH): killed once the Trainer has
# saved its first checkpoint, so the re-run resumes instead of restarting.
USELESS_MODEL_TRAIN_STEPS = 200
USELESS_MODEL_ARGS = ('--train-steps', str(USELESS_MODEL_TRAIN_STEPS),
                      '--drop-all-features', '--allow-anomaly',
                      NEW_COLUMN_ANOMALY, *NO_MLFLOW)


@dataclasses.dataclass
class KilledThenRerun:
  """A run SIGKILLed in the Trainer, then the same run again, to the end.

  Attributes:
    output_dir: A copy of the e2e outputs, the two runs added.
    data_root: The sample plus the allow-listed extra column.
    before: robustness.snapshot of the copy before either run.
    versions_before: The pushed model folders before either run.
    killed_id: The killed Trainer execution's id.
    killed_state: Its MLMD state, read right after the kill.
    killed_log: The killed run's stdout and stderr, interleaved.
    rerun: The second run's result.
  """
  output_dir: pathlib.Path
  data_root: pathlib.Path
  before: 'robustness.OutputState'
  versions_before: List[pathlib.Path]
  killed_id: int
  killed_state: int
  killed_log: str
  rerun: subprocess.CompletedProcess


@pytest.fixture(scope='session')
def useless_model_rerun(e2e_run) -> KilledThenRerun:
  """The gate self-test model, killed mid-Trainer, then run to the end.

  Started in the background when `e2e_run` finished (see `_killed_then_rerun`).
  """
  return _background[_USELESS_FIXTURE].result()


def _killed_then_rerun(e2e_run: E2ERun, root: pathlib.Path
                       ) -> KilledThenRerun:
  """The gate self-test model, killed mid-Trainer, then run to the end.

  On a copy of the blessed, pushed e2e outputs, with data the previous runs
  never saw (the sample plus an allow-listed extra column): the killed run
  executes ExampleGen to Transform afresh, so the re-run shows what a
  resumed run reuses. The model only learns the base rate, so the decision
  is known: NOT BLESSED, nothing pushed.
  """
  from pipeline.inspection import run_model
  from tests import pipeline_state
  from tests import robustness  # It imports this module.
  header, rows = robustness.sample_table()
  data = robustness.write_csv(
      root / 'data' / 'data.csv', header + [EXTRA_COLUMN],
      [r + [f'note {i % 7}'] for i, r in enumerate(rows)]).parent
  output_dir = robustness.copy_outputs(e2e_run.output_dir, root / 'outputs')
  before = robustness.snapshot(output_dir)
  versions_before = pipeline_state.pushed_versions(
      output_dir / 'serving_model')
  cmd = [sys.executable, str(LOCAL_RUNNER), '--data-root', str(data),
         '--output-dir', str(output_dir), *USELESS_MODEL_ARGS]
  killed_id, killed_log = robustness.start_and_kill_in_trainer(
      cmd, output_dir, root / 'killed_run.log', cwd=REPO_ROOT,
      after_checkpoint=True)
  store = run_model.open_store(str(output_dir / 'metadata.sqlite'))
  [killed] = store.get_executions_by_id([killed_id])
  rerun = run_local_pipeline(output_dir, USELESS_MODEL_ARGS, data_root=data)
  return KilledThenRerun(
      output_dir=output_dir, data_root=data, before=before,
      versions_before=versions_before, killed_id=killed_id,
      killed_state=killed.last_known_state, killed_log=killed_log,
      rerun=rerun)


# Fake credentials, in the environment of `concurrent_runs`.
FAKE_KEY_ID = 'canarykeyid0123456789abcdef'
FAKE_KEY_BODY = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7canary'


def fake_credentials(folder: pathlib.Path) -> Dict[str, str]:
  """Environment variables holding credentials of every common kind."""
  adc = folder / 'adc.json'
  adc.write_text(json.dumps({
      'type': 'service_account', 'project_id': 'canary-project',
      'private_key_id': FAKE_KEY_ID,
      'private_key': ('-----BEGIN ' + 'PRIVATE KEY-----\\n' + FAKE_KEY_BODY +
                      '\\n-----END PRIVATE KEY-----\\n'),
      'client_email': 'canary@canary-project.iam.gserviceaccount.com'}))
  return {
      'GOOGLE_APPLICATION_CREDENTIALS': str(adc),
      'AWS_SECRET_ACCESS_KEY': 'canaryAwsSecret' + 'x9Q2' * 6,
      'GITHUB_TOKEN': 'gh' + 'p_canary' + 'Z' * 30,
      'HF_TOKEN': 'hf_canary' + 'Y' * 30,
  }


@dataclasses.dataclass
class ConcurrentRuns:
  """Two identical runs started at once on one output dir.

  Attributes:
    output_dir: A copy of the e2e outputs, the two runs added.
    before: robustness.snapshot of the copy before the runs.
    credentials: The fake credentials in both runs' environment.
    pids: The two processes' ids, in start order.
    results: Their exit codes and output, in start order.
  """
  output_dir: pathlib.Path
  before: 'robustness.OutputState'
  credentials: Dict[str, str]
  pids: List[int]
  results: List[subprocess.CompletedProcess]


def _run_two_at_once(outputs: pathlib.Path, root: pathlib.Path
                     ) -> ConcurrentRuns:
  """Two --verbose runs of the e2e config, started at the same moment.

  Both wait for the lock as long as it takes (--lock-timeout -1), and both
  have fake credentials in their environment.
  """
  from tests import robustness
  before = robustness.snapshot(outputs)
  credentials = fake_credentials(root)
  cmd = [sys.executable, str(LOCAL_RUNNER), '--data-root', str(SAMPLE_DATA),
         '--output-dir', str(outputs), *E2E_ARGS, '--lock-timeout', '-1',
         '--verbose']
  # Output to files, not pipes: the verbose logs would fill a pipe that is
  # not being read while the other process is waited for.
  logs = [(root / f'run{i}.out', root / f'run{i}.err') for i in range(2)]
  procs = []
  for out_path, err_path in logs:
    with open(out_path, 'w') as out, open(err_path, 'w') as err:
      procs.append(subprocess.Popen(cmd, stdout=out, stderr=err,
                                    cwd=str(REPO_ROOT),
                                    env={**os.environ, **credentials}))
  results = []
  for proc, (out_path, err_path) in zip(procs, logs, strict=True):
    proc.wait(timeout=1200)
    results.append(subprocess.CompletedProcess(
        cmd, proc.returncode, out_path.read_text(), err_path.read_text()))
  return ConcurrentRuns(output_dir=outputs, before=before,
                        credentials=credentials,
                        pids=[p.pid for p in procs], results=results)


@pytest.fixture(scope='session')
def concurrent_runs(e2e_run) -> ConcurrentRuns:
  """The e2e fixture's two re-runs, started together (see `e2e_run`)."""
  return e2e_run.concurrent


# --- Runs in the background. ----------------------------------------------

_TASK_RUNS_FIXTURE = 'task_runs'
_SPAN_RUNS_FIXTURE = 'span_runs'
_AIRFLOW_RUN_FIXTURE = 'airflow_run'
_SQL_RUNS_FIXTURE = 'sql_runs'
_USELESS_FIXTURE = 'useless_model_rerun'
# Fixture name -> its computation, running or done.
_background: Dict[str, background.Background] = {}
# Fixture name -> the chain of background runs that computes it.
_chained: Dict[str, background.Chain] = {}


def _needed(session, fixture: str) -> bool:
  return any(fixture in getattr(item, 'fixturenames', ())
             for item in session.items)


def pytest_collection_modifyitems(config, items) -> None:
  """Unit tests first, then e2e tests, and last those of the killed run.

  The background runs then overlap the tests that do not wait for them.
  """
  del config  # Unused.
  items.sort(key=lambda item: (
      item.get_closest_marker('e2e') is not None,
      _USELESS_FIXTURE in getattr(item, 'fixturenames', ())))


def _chains():
  """The background runs, chain by chain, in the order their tests run."""
  from tests import background_runs
  from tests import span_runs as span_runs_lib
  from tests import task_runs as task_runs_lib
  return [[(_AIRFLOW_RUN_FIXTURE, background_runs.run_airflow_dag),
           (_TASK_RUNS_FIXTURE, task_runs_lib.run_tasks)],
          [(_SPAN_RUNS_FIXTURE, span_runs_lib.run_spans),
           (_SQL_RUNS_FIXTURE, background_runs.run_sql)]]


def pytest_collection_finish(session) -> None:
  """Starts the background runs at once, those a selected test needs."""
  _start_mlflow_server(session)
  for n, chain in enumerate(_chains()):
    steps = []
    for fixture, fn in chain:
      if _needed(session, fixture):
        root = pathlib.Path(session.config._tmp_path_factory.mktemp(fixture))
        steps.append((fixture, fn, (root,)))
    if steps:
      runs = background.Chain(f'background-{n}', steps)
      for fixture, _, _ in steps:
        _chained[fixture] = runs


@pytest.fixture(scope='session')
def task_runs() -> Dict[str, 'task_runs_lib.TaskRun']:
  """The multiclass and regression runs, started at collection time."""
  return _chained[_TASK_RUNS_FIXTURE].result(_TASK_RUNS_FIXTURE)


@pytest.fixture(scope='session')
def airflow_run() -> 'background_runs.AirflowRun':
  """`airflow dags test` on the sample, started at collection time."""
  return _chained[_AIRFLOW_RUN_FIXTURE].result(_AIRFLOW_RUN_FIXTURE)


@pytest.fixture(scope='session')
def sql_runs() -> 'background_runs.SqlRuns':
  """Two runs from a PostgreSQL table, started at collection time."""
  return _chained[_SQL_RUNS_FIXTURE].result(_SQL_RUNS_FIXTURE)


@pytest.fixture(scope='session')
def span_runs() -> 'span_runs_lib.SpanRuns':
  """Spans 1, 2 and the drifted 3, run at collection time."""
  return _chained[_SPAN_RUNS_FIXTURE].result(_SPAN_RUNS_FIXTURE)


_MLFLOW_SERVER_FIXTURE = 'mlflow_server'
# The server started at collection time, until its fixture takes it.
_mlflow_servers: List['mlflow_server_lib.MlflowServer'] = []


def _start_mlflow_server(session) -> None:
  """Starts `mlflow server` when a selected test needs it; no waiting."""
  from tests import mlflow_server as mlflow_server_lib
  if _needed(session, _MLFLOW_SERVER_FIXTURE):
    root = pathlib.Path(
        session.config._tmp_path_factory.mktemp('mlflow_server'))
    _mlflow_servers.append(mlflow_server_lib.start(root))
    atexit.register(_mlflow_servers[-1].stop)


@pytest.fixture(scope='session')
def mlflow_server(tmp_path_factory
                  ) -> Iterator['mlflow_server_lib.MlflowServer']:
  """A real `mlflow server` on 127.0.0.1 (tests/mlflow_server.py), started
  at collection time; stopped at the end of the session."""
  from tests import mlflow_server as mlflow_server_lib
  server = (_mlflow_servers.pop() if _mlflow_servers else
            mlflow_server_lib.start(tmp_path_factory.mktemp('mlflow_server')))
  try:
    print(f'\nmlflow server ready {server.wait_ready():.1f} s after its '
          'start')
    yield server
  finally:
    server.stop()
