"""A real MariaDB server for the tests, started as a process in a temp dir.

`running()` initializes a fresh data directory with `mariadb-install-db`,
starts `mariadbd` on its own unix socket and a free TCP port on 127.0.0.1,
creates a user with a password (so that the tests can check that the
password is masked wherever the URL is shown), and stops the server and
removes the directory afterwards, also when the test fails.

The binaries come from Debian's `mariadb-server`, which `make test`
installs (`make system-deps`). Without them this fails loudly instead of
skipping, so that a missing package cannot pass as a green run.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import pathlib
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Iterator
from typing import List
from urllib import parse

# mariadbd lives in /usr/sbin, which a non-root PATH often lacks.
_SEARCH_PATH = os.pathsep.join([os.environ.get('PATH', ''), '/usr/sbin',
                                '/sbin'])
# A fresh server starts in a second or two; a loaded 2-core machine may
# take much longer. This is how long to wait, not something asserted.
_START_WAIT_SECONDS = 120.0
_STOP_WAIT_SECONDS = 60.0
_START_ATTEMPTS = 3
# A longer temp dir (TMPDIR) could push the socket path past its limit.
_MAX_TEMP_DIR_CHARS = 60
USER = 'mlmd'


class MariaDbMissingError(RuntimeError):
  """The MariaDB binaries are not installed."""


def binary(name: str) -> str:
  """The path of a MariaDB program; fails with the fix if it is missing."""
  found = shutil.which(name, path=_SEARCH_PATH)
  if found is None:
    raise MariaDbMissingError(
        f'{name} not found (searched PATH, /usr/sbin and /sbin). The '
        'shared-metadata tests need Debian\'s mariadb-server: run '
        '`make system-deps` as root, or `sudo apt-get install -y '
        '--no-install-recommends mariadb-server`.')
  return found


def version() -> str:
  """`mariadbd --version`, e.g. 'mariadbd  Ver 10.11.19-MariaDB-0+deb12u1'."""
  return subprocess.run([binary('mariadbd'), '--version'], check=True,
                        capture_output=True, text=True).stdout.strip()


@dataclasses.dataclass(frozen=True)
class MariaDbServer:
  """A running server and the password login the tests use.

  Attributes:
    root: The server's temporary directory (data, socket, error log).
    port: Its TCP port on 127.0.0.1.
    socket_path: Its unix socket.
    user: A user with all privileges, logging in with `password`.
    password: That user's password; it contains URL-reserved characters.
  """
  root: pathlib.Path
  port: int
  socket_path: pathlib.Path
  user: str
  password: str = dataclasses.field(repr=False)

  def url(self, database: str, password: str = '') -> str:
    """mysql://USER:PASSWORD@127.0.0.1:PORT/DATABASE, password quoted."""
    secret = parse.quote(password or self.password, safe='')
    return f'mysql://{self.user}:{secret}@127.0.0.1:{self.port}/{database}'

  def socket_url(self, database: str) -> str:
    """The same login through the unix socket."""
    secret = parse.quote(self.password, safe='')
    return (f'mysql://{self.user}:{secret}@localhost/{database}'
            f'?socket={parse.quote(str(self.socket_path))}')

  @property
  def error_log(self) -> pathlib.Path:
    return self.root / 'error.log'

  def sql(self, statement: str, database: str = '') -> str:
    """Runs SQL as the password user (over the socket); returns stdout."""
    return client_sql(self.socket_path, statement, user=self.user,
                      password=self.password, database=database)

  def dump(self, database: str) -> str:
    """mariadb-dump of a database: every row the server stores for it."""
    return subprocess.run(
        [binary('mariadb-dump'), '--no-defaults',
         f'--socket={self.socket_path}', f'--user={self.user}',
         '--skip-extended-insert', database],
        check=True, capture_output=True, text=True,
        env={**os.environ, 'MYSQL_PWD': self.password}).stdout


def client_sql(socket_path: pathlib.Path, statement: str, user: str = 'root',
               password: str = '', database: str = '') -> str:
  """Runs SQL with the `mariadb` client over a unix socket."""
  cmd = [binary('mariadb'), '--no-defaults', f'--socket={socket_path}',
         f'--user={user}', '--batch', '--skip-column-names',
         '-e', statement]
  if database:
    cmd.append(database)
  # The password goes through the environment, not the command line (ps).
  env = {**os.environ, 'MYSQL_PWD': password}
  result = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          timeout=60)
  if result.returncode != 0:
    raise RuntimeError(f'mariadb client failed ({result.returncode}): '
                       f'{result.stderr.strip()}')
  return result.stdout


def free_port() -> int:
  """A TCP port on 127.0.0.1 that nothing listens on right now."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _install_db(datadir: pathlib.Path, os_user: str, log: pathlib.Path
                ) -> None:
  """A fresh data directory with a root login by password (empty for now)."""
  cmd = [binary('mariadb-install-db'), '--no-defaults',
         f'--datadir={datadir}', f'--user={os_user}',
         '--auth-root-authentication-method=normal', '--skip-test-db',
         '--skip-name-resolve']
  with open(log, 'w', encoding='utf-8') as out:
    result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                            timeout=300)
  if result.returncode != 0:
    raise RuntimeError(f'{" ".join(cmd)} exited {result.returncode}:\n'
                       + log.read_text(encoding='utf-8')[-3000:])


def _server_command(root: pathlib.Path, port: int, os_user: str) -> List[str]:
  # Small buffers and no fsync per commit: a throwaway test server.
  return [binary('mariadbd'), '--no-defaults',
          f'--datadir={root / "data"}', f'--socket={root / "mysqld.sock"}',
          f'--pid-file={root / "mysqld.pid"}',
          f'--log-error={root / "error.log"}',
          f'--port={port}', '--bind-address=127.0.0.1',
          # mariadbd refuses to run as root unless told to.
          f'--user={os_user}', '--skip-name-resolve',
          '--character-set-server=utf8mb4',
          '--innodb-buffer-pool-size=64M', '--innodb-log-file-size=16M',
          '--innodb-flush-log-at-trx-commit=0', '--skip-log-bin',
          '--performance-schema=OFF']


def _die_with_parent() -> None:
  """Runs in the child before exec: SIGTERM it when the test process dies.

  A test process killed hard (SIGKILL, a crash in native code) runs no
  cleanup; without this its server would keep running. Linux only.
  """
  pr_set_pdeathsig = 1
  ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _wait_until_ready(proc: subprocess.Popen, root: pathlib.Path) -> None:
  """Waits until the server answers on its socket; raises if it died."""
  deadline = time.monotonic() + _START_WAIT_SECONDS
  socket_path = root / 'mysqld.sock'
  while True:
    if proc.poll() is not None:
      raise RuntimeError(f'mariadbd exited {proc.returncode} while starting:'
                         f'\n{_log_tail(root)}')
    if socket_path.exists():
      try:
        client_sql(socket_path, 'SELECT 1')
        return
      except RuntimeError:
        pass  # Socket created, not accepting logins yet.
    if time.monotonic() > deadline:
      raise RuntimeError(f'mariadbd did not accept connections within '
                         f'{_START_WAIT_SECONDS:.0f} s:\n{_log_tail(root)}')
    time.sleep(0.2)


def _log_tail(root: pathlib.Path) -> str:
  log = root / 'error.log'
  return log.read_text(encoding='utf-8')[-3000:] if log.exists() else ''


def _stop(proc: subprocess.Popen) -> None:
  """SIGTERM is mariadbd's clean shutdown; SIGKILL if it hangs."""
  if proc.poll() is not None:
    return
  proc.send_signal(signal.SIGTERM)
  try:
    proc.wait(_STOP_WAIT_SECONDS)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()


@contextlib.contextmanager
def running() -> Iterator[MariaDbServer]:
  """A fresh MariaDB server, stopped and deleted on exit.

  Its directory is a short path under the system temp dir: a unix socket
  path must stay under about 100 characters, which pytest's tmp_path can
  exceed. Enter it from the thread that stays alive while the server is
  used: the server is stopped when the thread that started it ends.
  """
  binary('mariadbd')  # Fail before creating anything.
  # The account this process runs as (root in CI), not $USER.
  os_user = pwd.getpwuid(os.getuid()).pw_name
  short = len(tempfile.gettempdir()) <= _MAX_TEMP_DIR_CHARS
  root = pathlib.Path(tempfile.mkdtemp(prefix='mariadb-',
                                       dir=None if short else '/tmp'))
  proc = None
  try:
    _install_db(root / 'data', os_user, root / 'install.log')
    for attempt in range(_START_ATTEMPTS):
      # The port is free when picked; another process may take it before
      # mariadbd binds it, hence the retries.
      port = free_port()
      proc = subprocess.Popen(_server_command(root, port, os_user),
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              preexec_fn=_die_with_parent)
      try:
        _wait_until_ready(proc, root)
        break
      except RuntimeError:
        _stop(proc)
        if attempt == _START_ATTEMPTS - 1:
          raise
    password = 'pw:@/' + secrets.token_hex(8)
    quoted = password.replace('\\', '\\\\').replace("'", "\\'")
    client_sql(root / 'mysqld.sock', ' '.join([
        f"CREATE USER '{USER}'@'localhost' IDENTIFIED BY '{quoted}';",
        f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{quoted}';",
        f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'localhost';",
        f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1';",
        'FLUSH PRIVILEGES;']))
    yield MariaDbServer(root=root, port=port, socket_path=root / 'mysqld.sock',
                        user=USER, password=password)
  finally:
    if proc is not None:
      _stop(proc)
    shutil.rmtree(root, ignore_errors=True)
