"""The SQL source: `--sql-url URL --query SQL` against a real PostgreSQL.

The server is Debian's `postgres`, started once per session in a temporary
directory (tests/postgres_server.py) with a password login, and loaded with
the sample taxi rows, typed as the CSV reader types them. The tests cover:

- the flags and the URL handling, without a server;
- the streaming reader: bounded batches, a literal `%`, and flat memory
  over a million rows;
- the preflight's refusals, each naming the URL (password masked) and the
  query, and what it reads for the run (the rows' fingerprint and kinds);
- the ExampleGen's examples, byte-identical to the CSV reader's;
- one pipeline run from the table, and an unchanged re-run from cache.
"""

import argparse
import collections
import os
import pathlib
import re
import subprocess
import sys
import textwrap
from typing import Iterator
from typing import Sequence
from urllib import parse

import pytest

from pipeline import flags as cli
from pipeline.components import sql_rows
from pipeline.facts import sql_url
from pipeline.validation import contract
from pipeline.validation import driver as input_check
from pipeline.validation import problems as input_problems
from tests import postgres_server
from tests.conftest import LOCAL_RUNNER
from tests.conftest import REPO_ROOT
from tests.conftest import SAMPLE_DATA
from tests.test_e2e import CACHEABLE

DATABASE = 'taxi'
TABLE = 'trips'
SELECT_ALL = f'SELECT * FROM {TABLE}'
SAMPLE_ROWS = 2000
# A password no test server has, for the refusals.
CANARY = 'Canary:pw@/' + 'k3Z8' * 3


def _sample_csv() -> Sequence[str]:
  return sorted(str(p) for p in SAMPLE_DATA.glob('*.csv'))


def load_sample(server: postgres_server.PostgresServer) -> None:
  """The sample rows in `taxi.trips`, typed as the CSV reader types them."""
  from pipeline.components import arrow_csv_example_gen as arrow_gen
  server.create_database(DATABASE)
  files = _sample_csv()
  loaded = postgres_server.load_csv(server, DATABASE, TABLE, list(files),
                                    arrow_gen.infer_kinds(files))
  assert loaded == SAMPLE_ROWS


@pytest.fixture(scope='session')
def postgres() -> Iterator[postgres_server.PostgresServer]:
  """One server for the session, holding the sample rows in `taxi.trips`."""
  with postgres_server.running() as server:
    load_sample(server)
    yield server


def _taxi_expectations() -> contract.Expectations:
  from pipeline.definition import dataset_config
  taxi = dataset_config.load_named('taxi')
  return contract.load_expectations(taxi.schema_path, taxi.spec)


def _taxi_rule() -> contract.LabelRule:
  from pipeline.definition import dataset_config
  return contract.LabelRule.from_spec(dataset_config.load_named('taxi').spec)


def _check(url: str, query: str, **kwargs) -> input_check.Report:
  return input_check.check_query(url, query, _taxi_expectations(),
                             label_rule=_taxi_rule(), **kwargs)


def _refusal(url: str, query: str) -> str:
  with pytest.raises(input_problems.InputCheckError) as raised:
    _check(url, query)
  return str(raised.value)


def _assert_no_password(text: str, password: str) -> None:
  for secret in (password, parse.quote(password, safe='')):
    assert secret not in text, 'the password was shown'


# --- Flags and URLs, without a server. --------------------------------------


def _flags(*argv: str) -> argparse.Namespace:
  parser = argparse.ArgumentParser()
  cli.add_common_flags(parser)
  return parser.parse_args(list(argv))


@pytest.mark.parametrize('argv, problem', [
    (['--query', 'SELECT 1'], '--query goes with --sql-url URL.'),
    (['--sql-url', 'postgresql://u@h/db'], '--sql-url needs --query SQL'),
    (['--sql-url', 'postgresql://u@h/db', '--query', '  '],
     '--sql-url needs --query SQL'),
    (['--sql-url', 'postgresql://u@h/db', '--query',
      'SELECT * FROM t WHERE day = {SPAN}'], 'pass --span N'),
    (['--sql-url', 'postgresql://u@h/db', '--query', 'SELECT 1', '--span',
      '2'], 'the query has no {SPAN}'),
    (['--sql-url', 'not a url', '--query', 'SELECT 1'],
     'is not a database URL'),
    (['--sql-url', 'postgresql://u:p@ss@h/db', '--query', 'SELECT 1'],
     'postgresql://u:***@h/db: the password holds "@"; percent-encode it'),
])
def test_bad_sql_flags_are_refused(argv, problem):
  with pytest.raises(cli.FlagError) as raised:
    cli.sql_source(_flags(*argv))
  assert problem in str(raised.value)


def test_the_password_leaves_the_url_and_the_span_fills_the_query():
  quoted = parse.quote(CANARY, safe='')
  source, password = cli.sql_source(_flags(
      '--sql-url', f'postgresql://reader:{quoted}@db.example.com:5433/trips',
      '--query', 'SELECT * FROM t WHERE day = {SPAN}', '--span', '7'))
  assert password == CANARY
  assert source.url == 'postgresql://reader@db.example.com:5433/trips'
  assert source.query == 'SELECT * FROM t WHERE day = 7'
  assert source.span == 7


def test_label_drafting_is_refused_with_a_sql_source():
  args = _flags('--sql-url', 'postgresql://u@h/db', '--query', 'SELECT 1',
                '--label', 'tips', '--task', 'binary')
  with pytest.raises(cli.FlagError) as raised:
    cli.draft_request(args)
  assert 'with --sql-url' in str(raised.value)


@pytest.mark.parametrize('url, shown', [
    ('postgresql://u:hunter22@h:5432/db', 'postgresql://u:***@h:5432/db'),
    ('postgresql://u@h/db', 'postgresql://u@h/db'),
    ('postgresql://u:p@ss@h/db', 'postgresql://u:***@h/db'),
    ('no url', 'no url'),
])
def test_urls_are_shown_with_the_password_masked(url, shown):
  assert sql_url.masked(url) == shown


def test_a_bad_url_is_named_masked():
  with pytest.raises(sql_url.SqlSourceError) as raised:
    sql_url.split_password(f'postgresql//u:{CANARY}@h/db')
  _assert_no_password(str(raised.value), CANARY)
  assert 'is not a database URL' in str(raised.value)


def test_a_url_for_a_missing_driver_says_what_to_install():
  with pytest.raises(input_problems.InputCheckError) as raised:
    _check('oracle+cx_oracle://u@h/db', 'SELECT 1 FROM dual')
  assert 'cannot use --sql-url oracle+cx_oracle://u@h/db' in str(raised.value)
  assert 'SQLAlchemy driver' in str(raised.value)


# --- The streaming reader. -------------------------------------------------


def test_rows_arrive_in_bounded_batches(postgres):
  batches = list(sql_rows.stream(postgres.url(DATABASE),
                                 f'{SELECT_ALL} ORDER BY trip_start_timestamp',
                                 batch_rows=300))
  sizes = [len(b.rows) for b in batches]
  assert sum(sizes) == SAMPLE_ROWS
  assert max(sizes) == 300 and len(batches) == 7
  assert batches[0].columns[:3] == ('pickup_community_area', 'fare',
                                    'trip_start_month')


def test_a_percent_sign_in_the_query_is_a_literal(postgres):
  [batch] = sql_rows.stream(
      postgres.url(DATABASE),
      f"SELECT count(*) FROM {TABLE} WHERE trip_seconds % 2 = 0 "
      "AND payment_type LIKE 'C%'")
  [(count,)] = batch.rows
  assert 0 < count < SAMPLE_ROWS


def test_no_rows_still_give_the_columns(postgres):
  [batch] = sql_rows.stream(postgres.url(DATABASE),
                            f'{SELECT_ALL} WHERE fare < 0')
  assert batch.rows == [] and 'fare' in batch.columns


_MEMORY_PROBE = textwrap.dedent('''
    import resource, sys
    from pipeline.components import sql_rows

    def rss_mb():
      return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    list(sql_rows.stream(sys.argv[1], 'SELECT 1'))  # Driver loaded, used.
    before, rows = rss_mb(), 0
    for batch in sql_rows.stream(sys.argv[1], sys.argv[2], 5000):
      rows += len(batch.rows)
    print(rows, before, rss_mb())
''')


def test_memory_stays_flat_over_a_million_rows(postgres):
  """Peak RSS before the query vs after it: fetched whole (no server-side
  cursor), these 1M rows of three columns add about 110 MB here; streamed,
  about 4 MB."""
  query = ("SELECT g, g * 1.5 AS x, md5(g::text) AS s "
           "FROM generate_series(1, 1000000) AS g")
  result = subprocess.run(
      [sys.executable, '-c', _MEMORY_PROBE, postgres.url(DATABASE), query],
      capture_output=True, text=True, timeout=600, cwd=str(REPO_ROOT),
      check=True)
  rows, before, peak = result.stdout.split()
  assert int(rows) == 1_000_000
  growth = float(peak) - float(before)
  assert growth < 30, f'peak RSS grew {growth:.0f} MB over the 1M rows'


# --- The preflight. ---------------------------------------------------------


def test_a_clean_table_passes_with_its_fingerprint_and_kinds(postgres):
  url = postgres.url(DATABASE)
  report = _check(url, SELECT_ALL)
  assert report.rows == SAMPLE_ROWS
  assert report.source == (
      f"query 'SELECT * FROM trips' on postgresql://trips:***@127.0.0.1:"
      f'{postgres.port}/taxi')
  assert report.summary().startswith(
      f'Input check passed: {report.source}: 2000 rows, 19 columns.')
  kinds = report.feature_lists()
  assert (kinds['fare'], kinds['trip_start_hour'], kinds['payment_type']) == (
      'float_list', 'int64_list', 'bytes_list')
  # Same rows, same fingerprint; one changed value, a new one.
  assert _check(url, SELECT_ALL).fingerprint == report.fingerprint
  postgres.execute(f'CREATE TABLE changed AS {SELECT_ALL}', DATABASE)
  postgres.execute('UPDATE changed SET fare = fare + 1 WHERE ctid = '
                   '(SELECT min(ctid) FROM changed)', DATABASE)
  assert _check(url, 'SELECT * FROM changed').fingerprint != (
      report.fingerprint)


def test_the_password_can_come_from_the_environment(postgres, monkeypatch):
  monkeypatch.setenv(sql_url.PASSWORD_ENV, postgres.password)
  assert _check(postgres.bare_url(DATABASE), SELECT_ALL).rows == SAMPLE_ROWS


def test_a_wrong_password_is_refused_masked(postgres):
  message = _refusal(postgres.url(DATABASE, password=CANARY), SELECT_ALL)
  assert message.startswith(
      f'cannot connect to postgresql://trips:***@127.0.0.1:{postgres.port}/'
      'taxi: ')
  assert 'password authentication failed' in message
  _assert_no_password(message, CANARY)


def test_nothing_listening_is_refused():
  from tests import mariadb_server
  port = mariadb_server.free_port()
  message = _refusal(f'postgresql://u:{parse.quote(CANARY, safe="")}@'
                     f'127.0.0.1:{port}/db', SELECT_ALL)
  assert message.startswith(f'cannot connect to postgresql://u:***@127.0.0.1:'
                            f'{port}/db: ')
  assert 'Check that the server runs' in message
  _assert_no_password(message, CANARY)


def test_a_missing_database_is_named(postgres):
  message = _refusal(postgres.url('nosuchdb'), SELECT_ALL)
  assert 'database "nosuchdb" does not exist' in message


@pytest.mark.parametrize('query, problem', [
    ('SELEC * FROM trips', 'syntax error'),
    ('SELECT * FROM nosuchtable', 'relation "nosuchtable" does not exist'),
])
def test_a_failing_query_is_named_with_the_server_reason(postgres, query,
                                                         problem):
  message = _refusal(postgres.url(DATABASE), query)
  assert message.startswith(
      f"the query {query!r} failed on postgresql://trips:***@127.0.0.1:"
      f'{postgres.port}/taxi: ')
  assert problem in message
  _assert_no_password(message, postgres.password)


def test_a_statement_without_rows_is_refused(postgres):
  message = _refusal(postgres.url(DATABASE), 'SET search_path TO public')
  assert message.startswith("the query 'SET search_path TO public' failed on")
  assert 'Fix the query: one SELECT' in message


def test_a_query_without_rows_is_refused(postgres):
  message = _refusal(postgres.url(DATABASE), f'{SELECT_ALL} WHERE fare < 0')
  assert message.startswith("query 'SELECT * FROM trips WHERE fare < 0' on "
                            'postgresql://trips:***@')
  assert 'returns no rows' in message


def test_a_date_column_is_refused_with_the_cast_that_fixes_it(postgres):
  message = _refusal(postgres.url(DATABASE),
                     f"SELECT *, DATE '2026-01-01' AS day FROM {TABLE}")
  assert "column 'day': holds date values" in message
  assert 'CAST(col AS text)' in message


def test_a_missing_label_is_refused(postgres):
  message = _refusal(postgres.url(DATABASE),
                     f'SELECT fare, trip_miles FROM {TABLE}')
  assert "returns no label column 'big_tipper'" in message


def test_two_columns_of_one_name_are_refused(postgres):
  message = _refusal(postgres.url(DATABASE),
                     f'SELECT *, fare FROM {TABLE}')
  assert "column 'fare': returns two columns of this name" in message


def test_a_type_other_than_the_schema_is_refused(postgres):
  columns = ', '.join(
      f'"{c}"' if c != 'trip_start_hour' else 'trip_start_hour::text AS '
      'trip_start_hour' for c in next(sql_rows.stream(
          postgres.url(DATABASE), f'{SELECT_ALL} LIMIT 1')).columns)
  message = _refusal(postgres.url(DATABASE), f'SELECT {columns} FROM {TABLE}')
  assert "column 'trip_start_hour': returns strings, but the curated " in (
      message)
  assert 'CAST it in the query' in message


# --- The ExampleGen. --------------------------------------------------------


def test_the_examples_are_those_of_the_csv_files(postgres, tmp_path):
  """Byte-identical examples: the same statistics and the same splits."""
  import tensorflow as tf

  from pipeline.components import sql_example_gen
  from tests import test_arrow_example_gen
  folder = tmp_path / 'data'
  folder.mkdir()
  for path in _sample_csv():
    (folder / os.path.basename(path)).write_bytes(
        pathlib.Path(path).read_bytes())
  from_csv = test_arrow_example_gen._both(folder)['arrow']
  url = postgres.url(DATABASE)
  kinds = _check(url, SELECT_ALL).feature_lists()
  from_sql = collections.Counter(sql_example_gen.encode_rows(
      url, SELECT_ALL, batch_rows=500, kinds=kinds))
  assert sum(from_sql.values()) == SAMPLE_ROWS
  assert from_sql == from_csv, [
      tf.train.Example.FromString(e) for e in list(from_sql - from_csv)[:1]]


# --- The runner. -------------------------------------------------------------


def _run_script(args: Sequence[str], env=None) -> subprocess.CompletedProcess:
  cmd = [sys.executable, '-X', 'importtime', str(LOCAL_RUNNER), *args]
  return subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                        cwd=str(REPO_ROOT), env={**os.environ, **(env or {})})


def _imported(stderr: str):
  return {line.rsplit('|', 1)[1].strip() for line in stderr.splitlines()
          if line.startswith('import time:') and line.count('|') == 2}


def test_the_runner_refuses_a_wrong_password_in_one_line(postgres, tmp_path):
  """Exit 3 before TensorFlow; stderr is the one error line."""
  out = tmp_path / 'out'
  result = _run_script(['--output-dir', str(out), '--sql-url',
                        postgres.bare_url(DATABASE), '--query', SELECT_ALL],
                       env={sql_url.PASSWORD_ENV: CANARY})
  assert result.returncode == input_problems.EXIT_CODE, result.stderr[-3000:]
  lines = [line for line in result.stderr.splitlines()
           if not line.startswith('import time:')]
  assert len(lines) == 1, lines
  assert lines[0].startswith('RUN FAILED')
  assert (f'cannot connect to postgresql://trips@127.0.0.1:{postgres.port}/'
          'taxi') in lines[0]
  assert 'tensorflow' not in _imported(result.stderr)
  _assert_no_password(result.stdout + result.stderr, CANARY)


@pytest.mark.e2e
def test_the_pipeline_runs_from_the_table_and_reruns_from_cache(sql_runs):
  """Blessed and pushed from PostgreSQL; an unchanged table hits the cache.

  The runs are `background_runs.run_sql`, on servers of their own, with
  ML Metadata in MariaDB (test_shared_metadata reads the same runs).
  """
  out = sql_runs.output_dir
  assert len(sql_runs.results) == 2, sql_runs.results[0].stderr[-5000:]
  first, second = sql_runs.results
  assert second.returncode == 0, second.stderr[-5000:]
  # The runner moved the password out of the URL before anything ran.
  assert re.search(r'^Input check passed: query .SELECT \* FROM trips. on '
                   rf'postgresql://trips@127\.0\.0\.1:{sql_runs.port}/taxi: '
                   '2000 rows', first.stdout, re.M), first.stdout[-3000:]
  for result in (first, second):
    _assert_no_password(result.stdout + result.stderr, sql_runs.password)
  one, two = sql_runs.summaries
  assert one.blessed is True, one.blessing_reason
  assert one.pushed_model and (pathlib.Path(one.pushed_model) /
                               'saved_model.pb').is_file()
  states = {c.component_id: c.state for c in two.components}
  for component in CACHEABLE:
    assert states.get(component) == 'cached', (component, states)
  assert two.model_unchanged and two.pushed_model is None
  # The URL in ML Metadata has no password (every row of its database);
  # the report neither.
  assert 'postgresql://trips@127.0.0.1' in sql_runs.dump
  _assert_no_password(sql_runs.dump, sql_runs.password)
  _assert_no_password((out / 'report.html').read_text(encoding='utf-8'),
                      sql_runs.password)
