"""The Airflow and SQL pipeline runs, started at collection time.

Like the task and span runs: each is a real pipeline run of a few minutes
on about one core, so it runs in a background chain
(`conftest.pytest_collection_finish`) while other tests use the other core,
and its test only reads what it left.
"""

import dataclasses
import os
import pathlib
import subprocess
import sys
from typing import List
from typing import Sequence


@dataclasses.dataclass
class AirflowRun:
  """`airflow db migrate` and `airflow dags test`, in a fresh AIRFLOW_HOME."""
  home: pathlib.Path
  output_dir: pathlib.Path
  args: List[str]
  results: List[subprocess.CompletedProcess]
  default_home_created: bool


def run_airflow_dag(root: pathlib.Path) -> AirflowRun:
  # pylint: disable-next=g-import-not-at-top
  from tests import test_airflow_runner as t
  default_home = pathlib.Path.home() / 'airflow'
  existed = default_home.exists()
  home, output_dir = root / 'airflow_home', root / 'outputs'
  output_dir.mkdir(parents=True)
  args = t.good_args(output_dir)
  env = t.airflow_env(home, args)
  results = []
  for cmd, timeout in (([str(t.AIRFLOW), 'db', 'migrate'], 300),
                       ([str(t.AIRFLOW), 'dags', 'test', t.PIPELINE_NAME,
                         t.LOGICAL_DATE], 1800)):
    results.append(subprocess.run(cmd, env=env, cwd=str(root),
                                  capture_output=True, text=True,
                                  timeout=timeout))
    if results[-1].returncode != 0:
      break
  return AirflowRun(home, output_dir, args, results,
                    default_home.exists() and not existed)


@dataclasses.dataclass
class SqlRuns:
  """Two runs from a PostgreSQL table of the sample rows."""
  output_dir: pathlib.Path
  port: int
  password: str
  results: List[subprocess.CompletedProcess]


def _runner(args: Sequence[str]) -> subprocess.CompletedProcess:
  # pylint: disable-next=g-import-not-at-top
  from tests import conftest
  return subprocess.run([sys.executable, str(conftest.LOCAL_RUNNER), *args],
                        capture_output=True, text=True, timeout=1800,
                        cwd=str(conftest.REPO_ROOT), env=dict(os.environ))


def run_sql(root: pathlib.Path) -> SqlRuns:
  """The table, a first run, and an unchanged re-run."""
  # pylint: disable=g-import-not-at-top
  from tests import conftest
  from tests import postgres_server
  from tests import test_sql_source as t
  # pylint: enable=g-import-not-at-top
  output_dir = root / 'outputs'
  with postgres_server.running() as server:
    t.load_sample(server)
    args = ['--output-dir', str(output_dir), '--sql-url',
            server.url(t.DATABASE), '--query', t.SELECT_ALL,
            *conftest.E2E_ARGS]
    results = [_runner(args)]
    if results[0].returncode == 0:
      results.append(_runner(args))
    return SqlRuns(output_dir, server.port, server.password, results)
