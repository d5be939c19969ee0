"""A real PostgreSQL server for the tests, started as a process in a temp dir.

`running()` initializes a fresh cluster with `initdb` (a superuser with a
password, scram-sha-256 over TCP), starts `postgres` on a free port on
127.0.0.1 with its socket in the same directory, and stops the server and
removes the directory afterwards, also when the test fails. PostgreSQL
refuses to run as root, so as root (CI) the server runs as the `postgres`
account that Debian's package creates.

The binaries come from Debian's `postgresql`, which `make test` installs
(`make system-deps`). Without them this fails loudly instead of skipping.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import glob
import io
import os
import pathlib
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Dict
from typing import Iterator
from typing import List
from typing import Optional
from urllib import parse

from tests import mariadb_server

# Debian keeps the server programs out of PATH.
_SEARCH_PATH = os.pathsep.join(
    [os.environ.get('PATH', '')] +
    sorted(glob.glob('/usr/lib/postgresql/*/bin'), reverse=True))
# How long to wait for a start on a loaded machine; not asserted.
_START_WAIT_SECONDS = 120.0
_STOP_WAIT_SECONDS = 60.0
_START_ATTEMPTS = 3
USER = 'trips'
# The account the server runs as when the tests run as root.
_SERVER_ACCOUNT = 'postgres'


def binary(name: str) -> str:
  """The path of a PostgreSQL program; fails with the fix if missing."""
  found = shutil.which(name, path=_SEARCH_PATH)
  if found is None:
    raise RuntimeError(
        f'{name} not found (searched PATH and /usr/lib/postgresql/*/bin). '
        "The SQL source tests need Debian's postgresql: run `make "
        'system-deps` as root, or `sudo apt-get install -y '
        '--no-install-recommends postgresql`.')
  return found


def version() -> str:
  """`postgres --version`, e.g. 'postgres (PostgreSQL) 15.14 (Debian ...)'."""
  return subprocess.run([binary('postgres'), '--version'], check=True,
                        capture_output=True, text=True).stdout.strip()


@dataclasses.dataclass(frozen=True)
class PostgresServer:
  """A running server and its password login.

  Attributes:
    root: The server's temporary directory (data, socket, log).
    port: Its TCP port on 127.0.0.1.
    user: A superuser logging in with `password`.
    password: That user's password; it contains URL-reserved characters.
  """
  root: pathlib.Path
  port: int
  user: str
  password: str = dataclasses.field(repr=False)

  def url(self, database: str, password: Optional[str] = None) -> str:
    """postgresql://USER:PASSWORD@127.0.0.1:PORT/DATABASE, quoted."""
    secret = parse.quote(self.password if password is None else password,
                         safe='')
    return (f'postgresql://{self.user}:{secret}@127.0.0.1:{self.port}/'
            f'{database}')

  def bare_url(self, database: str) -> str:
    """The same URL without the password (given through the environment)."""
    return f'postgresql://{self.user}@127.0.0.1:{self.port}/{database}'

  @property
  def log(self) -> pathlib.Path:
    return self.root / 'server.log'

  def connect(self, database: str = 'postgres'):
    import psycopg2
    return psycopg2.connect(host='127.0.0.1', port=self.port, user=self.user,
                            password=self.password, dbname=database)

  def execute(self, statement: str, database: str = 'postgres') -> None:
    connection = self.connect(database)
    try:
      connection.autocommit = True
      with connection.cursor() as cursor:
        cursor.execute(statement)
    finally:
      connection.close()

  def create_database(self, name: str) -> None:
    self.execute(f'CREATE DATABASE {name}')


# Column kinds of the Arrow CSV reader -> PostgreSQL column types.
_SQL_TYPES = {'int': 'BIGINT', 'float': 'DOUBLE PRECISION', 'string': 'TEXT',
              None: 'TEXT'}


def load_csv(server: PostgresServer, database: str, table: str,
             csv_files: List[str], kinds: Dict[str, Optional[str]],
             copies: int = 1) -> int:
  """Creates `table` with a column per CSV column and COPYs the rows in.

  Args:
    kinds: Column -> the kind ArrowCsvExampleGen infers ('int', 'float',
      'string', or None for a column with no value), so the table holds
      what the CSV files mean. An empty CSV cell becomes NULL.
    copies: Load the rows this many times.

  Returns:
    The number of rows loaded.
  """
  columns = ', '.join(f'"{name}" {_SQL_TYPES[kind]}'
                      for name, kind in kinds.items())
  connection = server.connect(database)
  try:
    with connection, connection.cursor() as cursor:
      cursor.execute(f'CREATE TABLE {table} ({columns})')
      for _ in range(copies):
        for path in csv_files:
          with open(path, encoding='utf-8', newline='') as f:
            cursor.copy_expert(
                f'COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)', f)
      cursor.execute(f'SELECT count(*) FROM {table}')
      return cursor.fetchone()[0]
  finally:
    connection.close()


def csv_rows(text: str) -> List[List[str]]:
  return list(csv.reader(io.StringIO(text)))


def _as_account(uid: Optional[int], gid: Optional[int]):
  """preexec_fn: die with the parent, then drop to the server's account."""

  def preexec() -> None:
    mariadb_server._die_with_parent()
    if gid is not None:
      os.setgid(gid)
    if uid is not None:
      os.setuid(uid)

  return preexec


def _wait_until_ready(proc: subprocess.Popen, server: PostgresServer) -> None:
  import psycopg2
  deadline = time.monotonic() + _START_WAIT_SECONDS
  while True:
    if proc.poll() is not None:
      raise RuntimeError(f'postgres exited {proc.returncode} while starting:'
                         f'\n{_log_tail(server.log)}')
    try:
      server.connect().close()
      return
    except psycopg2.OperationalError:
      pass  # Not accepting connections yet.
    if time.monotonic() > deadline:
      raise RuntimeError(f'postgres did not accept connections within '
                         f'{_START_WAIT_SECONDS:.0f} s:\n'
                         f'{_log_tail(server.log)}')
    time.sleep(0.2)


def _log_tail(log: pathlib.Path) -> str:
  return log.read_text(encoding='utf-8')[-3000:] if log.exists() else ''


def _stop(proc: subprocess.Popen) -> None:
  """SIGINT is a fast clean shutdown; SIGKILL if it hangs."""
  if proc.poll() is not None:
    return
  proc.send_signal(signal.SIGINT)
  try:
    proc.wait(_STOP_WAIT_SECONDS)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()


@contextlib.contextmanager
def running() -> Iterator[PostgresServer]:
  """A fresh PostgreSQL server, stopped and deleted on exit."""
  initdb, postgres = binary('initdb'), binary('postgres')
  uid = gid = None
  if os.getuid() == 0:
    account = pwd.getpwnam(_SERVER_ACCOUNT)
    uid, gid = account.pw_uid, account.pw_gid
  root = pathlib.Path(tempfile.mkdtemp(prefix='postgres-', dir='/tmp'))
  password = 'pw:@/' + secrets.token_hex(8)
  proc = None
  try:
    (root / 'pwfile').write_text(password + '\n', encoding='utf-8')
    if uid is not None:
      for path in (root, root / 'pwfile'):
        os.chown(path, uid, gid)
    init = subprocess.run(
        [initdb, '-D', str(root / 'data'), '-U', USER,
         f'--pwfile={root / "pwfile"}', '--auth-local=trust',
         '--auth-host=scram-sha-256', '--encoding=UTF8', '--no-sync'],
        capture_output=True, text=True, timeout=300,
        preexec_fn=_as_account(uid, gid))
    if init.returncode != 0:
      raise RuntimeError(f'initdb exited {init.returncode}:\n'
                         f'{init.stdout[-2000:]}{init.stderr[-2000:]}')
    for attempt in range(_START_ATTEMPTS):
      port = mariadb_server.free_port()
      server = PostgresServer(root=root, port=port, user=USER,
                              password=password)
      # A throwaway server: no fsync, small memory.
      proc = subprocess.Popen(
          [postgres, '-D', str(root / 'data'), '-p', str(port),
           '-k', str(root), '-c', 'listen_addresses=127.0.0.1',
           '-c', 'fsync=off', '-c', 'synchronous_commit=off',
           '-c', 'full_page_writes=off', '-c', 'shared_buffers=32MB',
           '-c', f'log_directory={root}', '-c', 'logging_collector=off'],
          stdout=subprocess.DEVNULL,
          stderr=open(server.log, 'w', encoding='utf-8'),
          preexec_fn=_as_account(uid, gid))
      try:
        _wait_until_ready(proc, server)
        break
      except RuntimeError:
        _stop(proc)
        if attempt == _START_ATTEMPTS - 1:
          raise
    yield server
  finally:
    if proc is not None:
      _stop(proc)
    shutil.rmtree(root, ignore_errors=True)
