"""Where ML Metadata lives: a SQLite file, or a MySQL / MariaDB database.

The rule, in one place (`locate`): `--metadata-url` when given, with the
password from the URL or else from `$MYSQL_PWD` (`PASSWORD_ENV`); without
it, `<output-dir>/metadata.sqlite`. A location is parsed once, at the edge
(the runners', the lineage CLI's and the monitor's `--metadata-url`), and
then passed around typed; every reader and writer of the store gets its
MLMD `ConnectionConfig` from it.

    SqliteLocation('/path/outputs/metadata.sqlite')       the default
    parse_url('mysql://USER:PASSWORD@HOST:PORT/DATABASE')  TCP
    parse_url('mysql://USER:PASSWORD@/DATABASE?socket=/run/mysqld/mysqld.sock')
    (`@localhost/` with `?socket=` is the same socket)

The password may be percent-encoded in the URL (`p%40ss` for `p@ss`), or
left out of it and given in the `MYSQL_PWD` environment variable, which the
edge reads and passes as `password`. A host in the URL always means TCP,
`localhost` included (MySQL's client libraries would silently use their
default socket for `localhost`); a unix socket is named with `?socket=`.

The password is never shown: `str()` and `repr()` of a location, and every
error raised here, carry the URL with the password replaced by `***`
(`mask_url`). `scrub()` removes it from any other text, such as an error
MLMD returned. This module imports neither TensorFlow nor TFX, so a bad URL
is refused before either is loaded.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from typing import Mapping
from typing import Optional
from typing import Tuple
from typing import Union
from urllib import parse

from google.protobuf import text_encoding
from ml_metadata.proto import metadata_store_pb2

from pipeline.facts import files

# Where the edge finds the password of a --metadata-url without one.
PASSWORD_ENV = 'MYSQL_PWD'
SCHEMES = ('mysql', 'mariadb')
DEFAULT_PORT = 3306
MASK = '***'
# Seconds to wait for a TCP or socket connection when probing a server.
PROBE_TIMEOUT_SECONDS = 5.0
URL_FORMS = ('mysql://USER:PASSWORD@HOST:PORT/DATABASE or '
             'mysql://USER:PASSWORD@/DATABASE?socket=/path/to/mysqld.sock')
# MLMD's MySQL source accepts exactly one of host and socket.
_QUERY_KEYS = ('socket',)
_URL_WITH_USERINFO = re.compile(r'^(?P<head>[^:/?#]*://)(?P<rest>.*)$', re.S)


class MetadataUrlError(ValueError):
  """A --metadata-url that cannot be used; its message masks the password."""


class MetadataStoreError(RuntimeError):
  """The store cannot be reached or opened; its message masks the password."""


def mask_url(url: str) -> str:
  """The URL with its password (if any) replaced by `***`.

  Works on any text that looks like a URL, parseable or not, so that even
  the error for a malformed URL never shows its password. When in doubt it
  masks too much: everything between the user's ':' and the last '@'.
  """
  match = _URL_WITH_USERINFO.match(url)
  if match is None:
    return url
  rest = match.group('rest')
  at = rest.rfind('@')
  if at < 0:
    return url
  userinfo = rest[:at]
  if ':' not in userinfo:
    return url
  user = userinfo.split(':', 1)[0]
  return f'{match.group("head")}{user}:{MASK}@{rest[at + 1:]}'


@dataclasses.dataclass(frozen=True)
class SqliteLocation:
  """MLMD in a SQLite file: a local run's `<output-dir>/metadata.sqlite`."""
  path: str

  def connection_config(self, readonly: bool = False
                        ) -> metadata_store_pb2.ConnectionConfig:
    """MLMD's config; read-write creates the file when it is missing."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = self.path
    mode = metadata_store_pb2.SqliteMetadataSourceConfig
    config.sqlite.connection_mode = (
        mode.READONLY if readonly else mode.READWRITE_OPENCREATE)
    return config

  @property
  def local_file(self) -> Optional[str]:
    """The store's file on this machine."""
    return self.path

  def scrub(self, text: str) -> str:
    return text

  def __str__(self) -> str:
    return self.path


@dataclasses.dataclass(frozen=True)
class MySqlLocation:
  """MLMD in a MySQL or MariaDB database, over TCP or a unix socket.

  Attributes:
    database: The database; a run creates it when it is missing.
    user: The login.
    password: Its password; never shown (not in repr, str or errors).
    host: The server's host name or address (TCP); '' with `socket`.
    port: Its TCP port.
    socket: A unix socket path, instead of host and port.
  """
  database: str
  user: str
  password: str = dataclasses.field(default='', repr=False)
  host: str = ''
  port: int = DEFAULT_PORT
  socket: str = ''

  def __post_init__(self):
    if bool(self.host) == bool(self.socket):
      raise MetadataUrlError(f'{self}: give exactly one of a host (TCP) and '
                             'a socket.')

  def connection_config(self, readonly: bool = False
                        ) -> metadata_store_pb2.ConnectionConfig:
    """MLMD's config.

    Args:
      readonly: For readers: a missing database is an error instead of
        being created. (MySQL has no read-only mode MLMD could ask for.)
    """
    config = metadata_store_pb2.ConnectionConfig()
    mysql = config.mysql
    mysql.database = self.database
    mysql.user = self.user
    mysql.password = self.password
    if self.socket:
      mysql.socket = self.socket
    else:
      mysql.host = self.host
      mysql.port = self.port
    mysql.skip_db_creation = readonly
    return config

  @property
  def local_file(self) -> Optional[str]:
    return None

  @property
  def address(self) -> str:
    """'HOST:PORT', or the socket path."""
    return self.socket or f'{self.host}:{self.port}'

  @property
  def secrets(self) -> Tuple[str, ...]:
    """The password as it may appear in text, longest first: plain,
    percent-encoded, and escaped as protobuf text (a logged config) and
    Python reprs escape it."""
    if not self.password:
      return ()
    forms = {self.password, parse.quote(self.password, safe=''),
             parse.quote_plus(self.password, safe=''),
             text_encoding.CEscape(self.password, as_utf8=True),
             text_encoding.CEscape(self.password.encode('utf-8'),
                                   as_utf8=False),
             repr(self.password)[1:-1]}
    return tuple(sorted(forms, key=len, reverse=True))

  def scrub(self, text: str) -> str:
    """`text` with every occurrence of the password replaced by `***`."""
    for secret in self.secrets:
      text = text.replace(secret, MASK)
    return text

  def url(self) -> str:
    """The location as a URL, the password masked."""
    userinfo = parse.quote(self.user, safe='') + (
        f':{MASK}' if self.password else '')
    if self.socket:
      return (f'mysql://{userinfo}@/{self.database}'
              f'?socket={parse.quote(self.socket)}')
    host = f'[{self.host}]' if ':' in self.host else self.host
    return f'mysql://{userinfo}@{host}:{self.port}/{self.database}'

  def __str__(self) -> str:
    return self.url()


MetadataLocation = Union[SqliteLocation, MySqlLocation]


def parse_url(url: str, password: Optional[str] = None) -> MySqlLocation:
  """Parses a `--metadata-url`.

  Args:
    url: mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE, or
      mysql://USER[:PASSWORD]@/DATABASE?socket=PATH. `mariadb://` is the
      same. User and password may be percent-encoded.
    password: The password when the URL has none (the edge passes
      $MYSQL_PWD from the environment: `from_url`).

  Raises:
    MetadataUrlError: The URL is malformed or incomplete; the message
      names it with the password masked, and says what is expected.
  """
  shown = mask_url(url)

  def error(problem: str) -> MetadataUrlError:
    return MetadataUrlError(f'--metadata-url {shown}: {problem}; expected '
                            f'{URL_FORMS}.')

  try:
    parts = parse.urlsplit(url)
    port = parts.port
  except ValueError as e:
    raise error(f'cannot be parsed ({mask_url(str(e))})') from None
  if parts.scheme.lower() not in SCHEMES:
    raise error(f'scheme {parts.scheme + "://" if parts.scheme else "(none)"}'
                ' is not supported (SQLite needs no URL: it is the default, '
                '<output-dir>/metadata.sqlite)')
  if parts.fragment:
    raise error('a URL fragment (#...) has no meaning here')
  database = parse.unquote(parts.path.lstrip('/'))
  if not database:
    raise error('no database name after the host')
  if '/' in database:
    raise error(f'database name {database!r} contains "/"')
  if not parts.username:
    raise error('no user name (USER@ before the host)')
  query = parse.parse_qs(parts.query, keep_blank_values=True)
  unknown = sorted(set(query) - set(_QUERY_KEYS))
  if unknown:
    raise error(f'unknown parameter(s) {", ".join(unknown)} (only socket= '
                'is understood)')
  sockets = query.get('socket', [])
  if len(sockets) > 1 or (sockets and not sockets[0]):
    raise error('give one non-empty socket= path')
  host = parts.hostname or ''
  if sockets and host == 'localhost' and port is None:
    host = ''  # mysql://USER@localhost/DB?socket=PATH: the socket.
  if sockets and (host or port is not None):
    raise error('give a host and port, or a socket, not both')
  if not sockets and not host:
    raise error('no host (or ?socket=PATH for a unix socket)')
  secret = (parse.unquote(parts.password) if parts.password is not None
            else (password or ''))
  return MySqlLocation(
      database=database, user=parse.unquote(parts.username),
      password=secret,
      # A URL host means TCP: MySQL clients take 'localhost' as their
      # default socket, which is not what a URL with a port says.
      host='127.0.0.1' if host == 'localhost' else host,
      port=port if port is not None else DEFAULT_PORT,
      socket=sockets[0] if sockets else '')


def from_url(url: Optional[str], environ: Mapping[str, str]
             ) -> Optional[MySqlLocation]:
  """The store a `--metadata-url` names, or None without the flag.

  Args:
    url: The flag's value, or None.
    environ: The environment: `PASSWORD_ENV` when the URL has no password.

  Raises:
    MetadataUrlError: See `parse_url`.
  """
  if url is None:
    return None
  return parse_url(url, password=environ.get(PASSWORD_ENV))


def locate(output_dir: str, mysql: Optional[MySqlLocation] = None
           ) -> MetadataLocation:
  """The run's store: the MySQL one, else the output dir's SQLite file."""
  if mysql is not None:
    return mysql
  return SqliteLocation(os.path.join(output_dir, files.METADATA_FILE))


def probe(location: MySqlLocation) -> None:
  """Checks that something listens at the location's address.

  MLMD reports every failed connection with the same empty message, so
  this is what tells an unreachable server from a refused login.

  Raises:
    MetadataStoreError: Nothing answers; the message says what to check.
  """
  try:
    if location.socket:
      with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(PROBE_TIMEOUT_SECONDS)
        s.connect(location.socket)
    else:
      socket.create_connection((location.host, location.port),
                               timeout=PROBE_TIMEOUT_SECONDS).close()
  except OSError as e:
    reason = e.strerror or type(e).__name__
    fix = ('is the server running, and is this its socket?'
           if location.socket else
           'is the server running and reachable there (host, port, '
           'firewall)?')
    raise MetadataStoreError(
        f'cannot reach the MySQL server of {location} at '
        f'{location.address}: {reason}; {fix} Fix --metadata-url, or drop '
        'it to use the SQLite store in the output dir.') from None
