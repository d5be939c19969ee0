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
from typing import Dict
from typing import List
from typing import Optional
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
  from tests import test_airflow_runner as airflow_test
  default_home = pathlib.Path.home() / 'airflow'
  existed = default_home.exists()
  home, output_dir = root / 'airflow_home', root / 'outputs'
  output_dir.mkdir(parents=True)
  args = airflow_test.good_args(output_dir)
  env = airflow_test.airflow_env(home, args)
  airflow = str(airflow_test.AIRFLOW)
  results = []
  for cmd, timeout in (([airflow, 'db', 'migrate'], 300),
                       ([airflow, 'dags', 'test', airflow_test.PIPELINE_NAME,
                         airflow_test.LOGICAL_DATE], 1800)):
    results.append(subprocess.run(cmd, env=env, cwd=str(root),
                                  capture_output=True, text=True,
                                  timeout=timeout))
    if results[-1].returncode != 0:
      break
  return AirflowRun(home, output_dir, args, results,
                    default_home.exists() and not existed)


@dataclasses.dataclass
class SqlRuns:
  """Two runs from a PostgreSQL table, with ML Metadata in MariaDB.

  One pair of runs proves two features: the SQL source (`--sql-url`,
  `--query`) and the shared metadata store (`--metadata-url`). Both servers
  are stopped when the runs are done, so what the tests need from them
  (the runs read back, the lineage CLI's answers, a dump of the MLMD
  database) is read here, while they are up.

  Attributes:
    output_dir: The runs' output dir.
    port: The PostgreSQL server's port.
    password: The PostgreSQL password (in $SQL_PASSWORD, never a flag).
    results: The first run (MLMD password in the URL) and, if it passed,
      the unchanged re-run (`--verbose`, MLMD password in $MYSQL_PWD).
    metadata_url: The MariaDB store's URL, password included.
    metadata_shown: The same URL as the runs must print it, masked.
    metadata_password: The MariaDB password.
    summaries: The runs as read back from the MariaDB store, oldest first.
    lineage: The lineage CLI over TCP, then over the unix socket.
    dump: Every row of the MLMD database (mysqldump).
  """
  output_dir: pathlib.Path
  port: int
  password: str
  results: List[subprocess.CompletedProcess]
  metadata_url: str = ''
  metadata_shown: str = ''
  metadata_password: str = ''
  summaries: list = dataclasses.field(default_factory=list)
  lineage: List[subprocess.CompletedProcess] = dataclasses.field(
      default_factory=list)
  dump: str = ''


def _runner(args: Sequence[str], env: Optional[Dict[str, str]] = None
            ) -> subprocess.CompletedProcess:
  from tests import conftest
  return subprocess.run([sys.executable, str(conftest.LOCAL_RUNNER), *args,
                         *conftest.NO_MLFLOW],
                        capture_output=True, text=True, timeout=1800,
                        cwd=str(conftest.REPO_ROOT),
                        env={**os.environ, **(env or {})})


# The MLMD database of the SQL runs, in their MariaDB server.
METADATA_DATABASE = 'mlmd_e2e'


def run_sql(root: pathlib.Path) -> SqlRuns:
  """The table, a first run and an unchanged re-run, MLMD in MariaDB."""
  from pipeline.facts import metadata_location
  from tests import conftest
  from tests import mariadb_server
  from tests import pipeline_state
  from tests import postgres_server
  from tests import test_sql_source as sql_test
  output_dir = root / 'outputs'
  with postgres_server.running() as server, \
      mariadb_server.running() as mariadb:
    sql_test.load_sample(server)
    store_url = mariadb.url(METADATA_DATABASE)
    source = ['--output-dir', str(output_dir), '--sql-url',
              server.url(sql_test.DATABASE), '--query',
              sql_test.SELECT_ALL, *conftest.E2E_ARGS]
    results = [_runner([*source, '--metadata-url', store_url])]
    if results[0].returncode == 0:
      # The password in $MYSQL_PWD instead of the URL; --verbose, so that
      # TFX logs its connection config and the filter must mask it.
      bare_url = (f'mysql://{mariadb.user}@127.0.0.1:{mariadb.port}/'
                  f'{METADATA_DATABASE}')
      results.append(_runner([*source, '--metadata-url', bare_url,
                              '--verbose'],
                             env={'MYSQL_PWD': mariadb.password}))
    runs = SqlRuns(
        output_dir, server.port, server.password, results,
        metadata_url=store_url,
        metadata_shown=(f'mysql://{mariadb.user}:***@127.0.0.1:'
                        f'{mariadb.port}/{METADATA_DATABASE}'),
        metadata_password=mariadb.password)
    if len(results) == 2:
      runs.summaries = pipeline_state.summaries(
          metadata_location.parse_url(store_url))
      # The lineage CLI as a user runs it, over TCP and over the socket.
      runs.lineage = [subprocess.run(
          [sys.executable, '-m', 'pipeline.inspection', '--metadata-url',
           url, '--pipeline-name', conftest.PIPELINE_NAME],
          capture_output=True, text=True, timeout=300,
          cwd=str(conftest.REPO_ROOT))
                      for url in (store_url,
                                  mariadb.socket_url(METADATA_DATABASE))]
      runs.dump = mariadb.dump(METADATA_DATABASE)
    return runs
