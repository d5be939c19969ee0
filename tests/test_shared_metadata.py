"""Shared metadata: `--metadata-url mysql://...` against a real MariaDB server.

The server is Debian's `mariadbd`, started once per session in a temporary
directory (tests/mariadb_server.py) with a password login. Unit tests cover
the URL parsing, the password masking and the refusals (bad URL, nothing
listening, wrong password). The e2e test reads the two runs of the SQL
source (tests/background_runs.py `run_sql`), whose ML Metadata lives in a
MariaDB server of their own, back through the summary and the lineage CLI:
one pair of runs proves both features.
"""

import io
import logging
import os
import pathlib
import re
import subprocess
import sys
from typing import Dict
from typing import Iterator
from typing import Optional
from typing import Sequence
from typing import Set
from urllib import parse

from absl import logging as absl_logging
import pytest

from pipeline.facts import metadata_location
from pipeline.inspection import lineage
from pipeline.inspection import native_stderr
from pipeline.inspection import run_model
from pipeline.local import run as local_run
from pipeline.local import secret_filter
from tests import mariadb_server
from tests.conftest import LOCAL_RUNNER
from tests.conftest import PIPELINE_NAME
from tests.conftest import REPO_ROOT
from tests.conftest import SAMPLE_DATA
from tests.test_e2e import CACHEABLE

# A password that no test server has: for the unit tests of masking.
CANARY = 'Canary:pw@/' + 'x7Q9' * 3


@pytest.fixture(scope='session')
def mariadb() -> Iterator[mariadb_server.MariaDbServer]:
  """One MariaDB server for the session, stopped and deleted at its end."""
  with mariadb_server.running() as server:
    yield server


def _secrets_of(password: str) -> Sequence[str]:
  return (password, parse.quote(password, safe=''))


def _assert_no_password(text: str, password: str) -> None:
  for secret in _secrets_of(password):
    assert secret not in text, 'the password was shown'


# --- Parsing and masking. --------------------------------------------------


def test_parses_a_tcp_url_with_an_encoded_password():
  quoted = parse.quote(CANARY, safe='')
  location = metadata_location.parse_url(
      f'mysql://ml%20user:{quoted}@db.example.com:3307/mlmd_prod')
  assert location == metadata_location.MySqlLocation(
      database='mlmd_prod', user='ml user', password=CANARY,
      host='db.example.com', port=3307)
  mysql = location.connection_config().mysql
  assert (mysql.host, mysql.port, mysql.database, mysql.user,
          mysql.password) == ('db.example.com', 3307, 'mlmd_prod', 'ml user',
                              CANARY)
  assert not mysql.socket and not mysql.skip_db_creation
  # Readers never create a database that a typo named.
  assert location.connection_config(readonly=True).mysql.skip_db_creation


def test_parses_a_socket_url_and_takes_the_password_from_the_edge():
  location = metadata_location.parse_url(
      'mariadb://mlmd@/metadata?socket=/run/mysqld/mysqld.sock',
      password=CANARY)
  assert (location.socket, location.host, location.password) == (
      '/run/mysqld/mysqld.sock', '', CANARY)
  mysql = location.connection_config().mysql
  # MLMD aborts the process when it gets both a host and a socket.
  assert mysql.socket == '/run/mysqld/mysqld.sock' and not mysql.host
  assert location.address == '/run/mysqld/mysqld.sock'


def test_a_password_in_the_url_wins_over_the_environment_one():
  location = metadata_location.parse_url('mysql://u:inurl@h/db',
                                         password='fromenv')
  assert location.password == 'inurl'


def test_localhost_means_tcp_and_the_port_defaults_to_3306():
  location = metadata_location.parse_url('mysql://u:p@localhost/db')
  assert (location.host, location.port, location.socket) == (
      '127.0.0.1', metadata_location.DEFAULT_PORT, '')


def test_str_and_repr_never_show_the_password():
  quoted = parse.quote(CANARY, safe='')
  for url in (f'mysql://u:{quoted}@h:3306/db',
              f'mysql://u:{quoted}@/db?socket=/tmp/s.sock'):
    location = metadata_location.parse_url(url)
    for text in (str(location), repr(location), location.url()):
      _assert_no_password(text, CANARY)
    assert str(location).startswith('mysql://u:***@')
    assert location.scrub(f'failed: {url} ({CANARY})') == (
        f'failed: {metadata_location.mask_url(url)} (***)')


@pytest.mark.parametrize('password', [
    CANARY, 'with "quotes" and \\ backslash', "it's", 'é-ü-日本-pass',
    'tab\there'])
def test_a_logged_config_is_scrubbed_whatever_the_password_holds(password):
  """Protobuf text and reprs escape some characters; those forms too."""
  location = metadata_location.MySqlLocation(
      database='d', user='u', password=password, host='h')
  for text in (str(location.connection_config()),
               repr(location.connection_config()), repr(password),
               parse.quote(password, safe=''), password):
    scrubbed = location.scrub(f'logged: {text}')
    assert metadata_location.MASK in scrubbed
    assert password not in scrubbed
    if len(password) > 4:  # Long enough not to occur by chance.
      assert password[1:-1] not in scrubbed, scrubbed


@pytest.mark.parametrize('url, masked', [
    ('mysql://u:hunter22@h/db', 'mysql://u:***@h/db'),
    ('mysql://u:p@ss@h:1/db', 'mysql://u:***@h:1/db'),
    ('mysql://u@h/db', 'mysql://u@h/db'),
    ('mysql://h/db', 'mysql://h/db'),
    ('no url at all', 'no url at all'),
])
def test_mask_url(url, masked):
  assert metadata_location.mask_url(url) == masked


@pytest.mark.parametrize('url, problem', [
    ('postgresql://u:{pw}@h/db', 'scheme postgresql:// is not supported'),
    ('sqlite:///tmp/{pw}.db', 'scheme sqlite:// is not supported'),
    ('mysql://u:{pw}@h:notaport/db', 'cannot be parsed'),
    ('mysql://u:{pw}@h:70000/db', 'cannot be parsed'),
    ('mysql://u:{pw}@h', 'no database name'),
    ('mysql://u:{pw}@h/a/b', 'contains "/"'),
    ('mysql://:{pw}@h/db', 'no user name'),
    ('mysql://u:{pw}@/db', 'no host'),
    ('mysql://u:{pw}@h/db?ssl=1', 'unknown parameter(s) ssl'),
    ('mysql://u:{pw}@h:3306/db?socket=/s', 'not both'),
    ('mysql://u:{pw}@/db?socket=', 'one non-empty socket='),
    ('mysql://u:{pw}@h/db#frag', 'fragment'),
])
def test_a_bad_url_is_refused_with_the_password_masked(url, problem):
  url = url.format(pw=parse.quote(CANARY, safe=''))
  with pytest.raises(metadata_location.MetadataUrlError) as raised:
    metadata_location.parse_url(url)
  message = str(raised.value)
  assert problem in message
  assert message.startswith('--metadata-url ')
  assert 'expected mysql://USER:PASSWORD@HOST:PORT/DATABASE' in message
  assert '\n' not in message
  if '://u:' in url or '://:' in url:
    _assert_no_password(message, CANARY)


# --- What a run and the lineage CLI print. ---------------------------------


def test_the_run_logs_mask_the_password():
  """TFX logs its MLMD connection config at INFO, password included."""
  location = metadata_location.parse_url(
      'mysql://u@h/db', password=CANARY)
  stream = io.StringIO()
  handler = logging.StreamHandler(stream)
  absl_logger = logging.getLogger('absl')
  absl_logger.addHandler(handler)
  level = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.INFO)
  try:
    with secret_filter.masked_logs(location.scrub):
      absl_logging.info('Using connection config:\n %s',
                        location.connection_config())
      logging.getLogger('some.library').warning('password=%s', CANARY)
      try:
        raise RuntimeError(f'could not log in with {CANARY}')
      except RuntimeError:
        absl_logger.exception('failed')
    absl_logging.info('after the run: %s', CANARY)
  finally:
    absl_logging.set_verbosity(level)
    absl_logger.removeHandler(handler)
  logged = stream.getvalue()
  inside, after = logged.split('after the run: ')
  assert 'password: "***"' in inside and 'could not log in with ***' in inside
  _assert_no_password(inside, CANARY)
  assert after.startswith(CANARY)  # The filter is gone after the block.


def test_native_stderr_is_held_back_and_then_kept_or_dropped(capfd):
  with native_stderr.held():
    os.write(2, b'kept\n')
    assert capfd.readouterr().err == ''  # Not yet.
  with native_stderr.held() as held:
    os.write(2, b'dropped\n')
    held.discard()
  assert capfd.readouterr().err == 'kept\n'


def _run_script(args: Sequence[str], env: Optional[Dict[str, str]] = None,
                importtime: bool = False) -> subprocess.CompletedProcess:
  """The local runner as a user starts it, in its own process."""
  cmd = [sys.executable, *(['-X', 'importtime'] if importtime else []),
         str(LOCAL_RUNNER), '--data-root', str(SAMPLE_DATA), *args]
  return subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                        cwd=str(REPO_ROOT), env={**os.environ, **(env or {})})


def _stderr_lines(result: subprocess.CompletedProcess) -> Sequence[str]:
  """stderr without -X importtime's lines."""
  return [line for line in result.stderr.splitlines()
          if not line.startswith('import time:')]


def _imported(stderr: str) -> Set[str]:
  """Modules named by `-X importtime` lines ('import time: 1 | 2 | name')."""
  return {line.rsplit('|', 1)[1].strip() for line in stderr.splitlines()
          if line.startswith('import time:') and line.count('|') == 2}


def test_a_bad_url_exits_2_before_anything_runs(local_runner_in_process,
                                                tmp_path):
  out = tmp_path / 'out'
  result = local_runner_in_process(out, [
      '--metadata-url', f'mysql://u:{parse.quote(CANARY, safe="")}@h/'])
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      result.stderr.strip()], result.stderr
  assert result.stderr.startswith('RUN FAILED: --metadata-url mysql://u:***@')
  assert 'no database name' in result.stderr
  _assert_no_password(result.stdout + result.stderr, CANARY)
  assert not out.exists()


def test_nothing_listening_exits_5_in_one_line_without_tensorflow(tmp_path):
  """The refusal comes before TensorFlow, the data check and the lock."""
  out = tmp_path / 'out'
  port = mariadb_server.free_port()
  result = _run_script(
      ['--output-dir', str(out), '--metadata-url',
       f'mysql://mlmd:{parse.quote(CANARY, safe="")}@127.0.0.1:{port}/m'],
      importtime=True)
  assert result.returncode == local_run.METADATA_EXIT_CODE, result.stderr
  [line] = _stderr_lines(result)
  assert line == (
      'RUN FAILED: metadata store, nothing was run: cannot reach the MySQL '
      f'server of mysql://mlmd:***@127.0.0.1:{port}/m at 127.0.0.1:{port}: '
      'Connection refused; is the server running and reachable there '
      '(host, port, firewall)? Fix --metadata-url, or drop it to use the '
      'SQLite store in the output dir.')
  _assert_no_password(result.stdout + result.stderr, CANARY)
  imported = _imported(result.stderr)
  assert 'pipeline.facts.metadata_location' in imported
  assert 'tensorflow' not in imported
  assert not out.exists()  # Not even the lock file.


def test_wrong_password_exits_5_in_one_line(mariadb, tmp_path):
  out = tmp_path / 'out'
  result = _run_script(['--output-dir', str(out), '--metadata-url',
                        mariadb.url('refused', password=CANARY)])
  assert result.returncode == local_run.METADATA_EXIT_CODE, result.stderr
  # MLMD's own misleading C++ log line is held back: one line only.
  [line] = _stderr_lines(result)
  assert line.startswith(
      f'RUN FAILED: metadata store, nothing was run: the MySQL server at '
      f'127.0.0.1:{mariadb.port} refused the login of user \'mlmd\' '
      f'(mysql://mlmd:***@127.0.0.1:{mariadb.port}/refused). Check the user '
      'and the password')
  _assert_no_password(result.stdout + result.stderr, CANARY)
  assert not out.exists()
  assert 'refused' not in mariadb.sql('SHOW DATABASES')


def test_lineage_cli_refuses_a_missing_database_without_creating_it(
    mariadb, capsys):
  code = lineage.main(['--metadata-url', mariadb.url('typo_db')])
  err = capsys.readouterr().err
  assert code == 1
  assert err.startswith(
      f'error: the MySQL server at 127.0.0.1:{mariadb.port} has no database '
      "'typo_db'")
  _assert_no_password(err, mariadb.password)
  assert 'typo_db' not in mariadb.sql('SHOW DATABASES')


def test_lineage_cli_takes_the_password_from_mysql_pwd(mariadb, capsys):
  url = f'mysql://{mariadb.user}@127.0.0.1:{mariadb.port}/empty_store'
  run_model.open_store(metadata_location.parse_url(
      url, password=mariadb.password), readonly=False)  # Creates it.
  code = lineage.main(['--metadata-url', url],
                      environ={'MYSQL_PWD': mariadb.password})
  assert code == 1
  assert capsys.readouterr().err == (
      'error: no pipeline runs recorded in '
      f'mysql://mlmd:***@127.0.0.1:{mariadb.port}/empty_store.\n')
  code = lineage.main(['--metadata-url', url], environ={})
  assert code == 1
  assert 'refused the login' in capsys.readouterr().err


# --- The pipeline, twice, on the MariaDB store. ----------------------------


@pytest.mark.e2e
def test_two_runs_share_the_mariadb_store(sql_runs):
  """Blessed and pushed, then all cached; lineage CLI; no SQLite file.

  The runs are the SQL source's (`background_runs.run_sql`): their ML
  Metadata lives in a MariaDB server of their own, the first with the
  password in the URL, the re-run with it in MYSQL_PWD and `--verbose`.
  """
  out = sql_runs.output_dir
  password = sql_runs.metadata_password
  assert len(sql_runs.results) == 2, sql_runs.results[0].stderr[-5000:]
  first, second = sql_runs.results
  assert first.returncode == 0 and second.returncode == 0, (
      second.stderr[-5000:])
  for result in (first, second):
    assert f'Metadata store: {sql_runs.metadata_shown}' in result.stdout
    # The progress lines, polled from the MariaDB store as the run went.
    assert re.search(r'^\[\s*\d+/\d+\] Trainer +(complete|cached) ',
                     result.stdout, re.M), result.stdout[-3000:]
    _assert_no_password(result.stdout + result.stderr, password)
  # Verbose: TFX's INFO lines were there to leak it, one launcher line per
  # component, from the run's process and from its component worker.
  assert second.stderr.count('Running launcher for node_info') >= 5

  assert len(sql_runs.summaries) == 2
  one, two = sql_runs.summaries
  assert one.blessed is True, one.blessing_reason
  assert one.pushed_model and (pathlib.Path(one.pushed_model) /
                               'saved_model.pb').is_file()
  assert all(c.state == 'complete' for c in one.components)
  states = {c.component_id: c.state for c in two.components}
  for component in CACHEABLE:
    assert states.get(component) == 'cached', (component, states)
  assert two.model_unchanged and two.blessed_in_run == one.run_id
  assert two.pushed_model is None and two.serving_model == one.pushed_model

  # The lineage CLI, over TCP and over the socket, as a user runs it.
  assert len(sql_runs.lineage) == 2
  for listed in sql_runs.lineage:
    assert listed.returncode == 0, listed.stderr
    assert f'Run {two.run_id}  pipeline {PIPELINE_NAME}  model unchanged, ' \
           f'blessed in run {one.run_id}' in listed.stdout
    assert f'Run {one.run_id}  pipeline {PIPELINE_NAME}  BLESSED' in (
        listed.stdout)
    assert '-> push       #' in listed.stdout
    assert one.pushed_model in listed.stdout
    _assert_no_password(listed.stdout + listed.stderr, password)

  # Nothing went to SQLite; the run lock stayed on the output dir.
  assert not list(out.rglob('*.sqlite')), list(out.rglob('*.sqlite'))
  assert (out / '.run.lock').is_file()
  report = (out / 'report.html').read_text(encoding='utf-8')
  assert sql_runs.metadata_shown in report
  _assert_no_password(report, password)
  # Nor did MLMD store the password: every row of its database.
  assert f'{one.run_id}' in sql_runs.dump
  _assert_no_password(sql_runs.dump, password)
