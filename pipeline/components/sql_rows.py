"""Rows of a SQL query, streamed in bounded batches through SQLAlchemy.

Shared by the SQL ExampleGen's executor and the runner's preflight, so it
imports no TensorFlow. A query's rows are fetched through a server-side
cursor (`stream_results`), `batch_rows` at a time, so memory stays flat
however many rows the query returns.

The password never travels with the URL: the pipeline's exec properties,
and so ML Metadata, hold the URL without it, and the process that connects
takes it from the environment (`PASSWORD_ENV`) when the URL has none. Every
message shows the URL with the password masked.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any
from typing import Iterator
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

import sqlalchemy
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import url as sa_url

# Where the connecting process finds the password of a URL without one.
PASSWORD_ENV = 'SQL_PASSWORD'
# TFX's span placeholder in a query (`WHERE day = {SPAN}`).
SPAN_PLACEHOLDER = '{SPAN}'
# Rows fetched per round trip, and per batch handed to the caller.
DEFAULT_BATCH_ROWS = 10_000
# How much of a query the messages quote.
_QUOTED_QUERY_CHARS = 300


class SqlSourceError(ValueError):
  """The database or the query cannot give rows; says which and what to do."""


def parse(url: str) -> sa_url.URL:
  """The URL, parsed; raises SqlSourceError naming it (password masked)."""
  try:
    parsed = sa_url.make_url(url)
  except sa_exc.ArgumentError:
    raise SqlSourceError(
        f'--sql-url {mask_text(url)} is not a database URL; write it as '
        'DIALECT://USER@HOST:PORT/DATABASE, e.g. '
        'postgresql://reader@db.example.com:5432/trips.') from None
  if parsed.host and '@' in parsed.host:
    # SQLAlchemy splits at the first '@': the password's rest would be
    # taken for the host, and shown in messages as such.
    raise SqlSourceError(
        f'--sql-url {mask_text(url)}: the password holds "@"; percent-encode '
        'it as %40 (and ":" as %3A, "/" as %2F), or leave the password out '
        f'of the URL and set ${PASSWORD_ENV}.')
  return parsed


def mask_text(url: str) -> str:
  """A URL-like text with anything between `user:` and `@` masked."""
  scheme, sep, rest = url.partition('://')
  prefix = f'{scheme}{sep}'
  if not sep:  # Not even a scheme: mask the same way.
    prefix, rest = '', url
  if '@' not in rest:
    return url
  login, at, host = rest.rpartition('@')
  user, colon, _ = login.partition(':')
  return f'{prefix}{user}{":***" if colon else ""}{at}{host}'


def masked(url: str) -> str:
  """The URL as messages show it: the password as ***.

  Masks up to the last '@' of the address, so a password with a raw '@'
  (which SQLAlchemy would split at the first) is hidden whole.
  """
  return mask_text(url)


def split_password(url: str) -> Tuple[str, Optional[str]]:
  """(the URL without its password, the password or None).

  Raises:
    SqlSourceError: Not a URL.
  """
  parsed = parse(url)
  bare = sa_url.URL.create(
      parsed.drivername, username=parsed.username, password=None,
      host=parsed.host, port=parsed.port, database=parsed.database,
      query=parsed.query)
  return bare.render_as_string(hide_password=False), parsed.password


def with_span(query: str, span: Optional[int]) -> str:
  """The query with `{SPAN}` replaced by the span number.

  Raises:
    SqlSourceError: `{SPAN}` in the query without a span, or the reverse.
  """
  if SPAN_PLACEHOLDER in query:
    if span is None:
      raise SqlSourceError(
          f'the query uses {SPAN_PLACEHOLDER} ({quoted(query)}); pass --span N '
          'to say which span to read.')
    return query.replace(SPAN_PLACEHOLDER, str(span))
  if span is not None:
    raise SqlSourceError(
        f'--span {span} was given, but the query has no {SPAN_PLACEHOLDER} '
        f'({quoted(query)}); put {SPAN_PLACEHOLDER} where the span number '
        'goes, e.g. WHERE day = {SPAN}.')
  return query


def quoted(query: str) -> str:
  """The query as messages quote it: one line, cut when long."""
  text = ' '.join(query.split())
  if len(text) > _QUOTED_QUERY_CHARS:
    text = text[:_QUOTED_QUERY_CHARS] + '...'
  return repr(text)


@dataclasses.dataclass(frozen=True)
class Batch:
  """Up to `batch_rows` rows of the result, with the result's column names."""
  columns: Tuple[str, ...]
  rows: List[Sequence[Any]]


def _engine(url: str) -> sqlalchemy.engine.Engine:
  parsed = parse(url)
  password = parsed.password
  if password is None:
    password = os.environ.get(PASSWORD_ENV)
  if password is not None:
    parsed = parsed.set(password=password)
  try:
    # No pool: one connection per read, closed when the read ends.
    return sqlalchemy.create_engine(parsed, poolclass=sqlalchemy.pool.NullPool)
  except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as e:
    raise SqlSourceError(
        f'cannot use --sql-url {masked(url)}: {e}. The PostgreSQL driver '
        '(postgresql://, psycopg2) is installed; other databases need their '
        'SQLAlchemy driver in the venv.') from None


def stream(url: str, query: str,
           batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[Batch]:
  """The query's rows, `batch_rows` at a time, through a server-side cursor.

  A query without rows gives one batch with the columns and no rows.

  The query goes to the driver as written (no bind parameters), so a
  PostgreSQL cast like `fare::float8` means what it says.

  Raises:
    SqlSourceError: The server cannot be reached, refuses the login, or
      the query fails; the message names the URL (password masked), the
      query and the server's reason.
  """
  engine = _engine(url)
  try:
    try:
      connection = engine.connect()
    except sa_exc.DBAPIError as e:
      raise SqlSourceError(
          f'cannot connect to {masked(url)}: {_reason(e, url)}. Check that '
          'the server runs and accepts this login (the password comes from '
          f'the URL or ${PASSWORD_ENV}).') from None
    with connection:
      try:
        result = connection.execution_options(
            stream_results=True, max_row_buffer=batch_rows).exec_driver_sql(
                _escaped(query, engine.dialect))
        if not result.returns_rows:
          raise SqlSourceError(
              f'the query {quoted(query)} on {masked(url)} returns no result '
              'set; give a SELECT.')
        columns = tuple(result.keys())
        empty = True
        for partition in result.partitions(batch_rows):
          empty = False
          yield Batch(columns, partition)
        if empty:
          yield Batch(columns, [])  # The columns, for the messages.
      except sa_exc.DBAPIError as e:
        raise SqlSourceError(
            f'the query {quoted(query)} failed on {masked(url)}: '
            f'{_reason(e, url)}. Fix the query: one SELECT (it is read '
            'through a cursor); try it in the database\'s own client '
            'first.') from None
  finally:
    engine.dispose()


def _escaped(query: str, dialect: sqlalchemy.engine.Dialect) -> str:
  """The query as the driver must get it to read it as written.

  SQLAlchemy hands a driver-level statement to the DBAPI with an (empty)
  parameter list, so drivers with `%s`-style parameters (psycopg2,
  PyMySQL) would read a `%` in the query (`id % 2`, `LIKE 'a%'`) as a
  placeholder; doubled, it is a literal `%` again.
  """
  if dialect.paramstyle in ('format', 'pyformat'):
    return query.replace('%', '%%')
  return query


def _reason(error: sa_exc.DBAPIError, url: str) -> str:
  """The driver's own message, on one line, the password masked."""
  text = ' '.join(str(error.orig).split()) or type(error.orig).__name__
  password = parse(url).password or os.environ.get(PASSWORD_ENV)
  if password:
    text = text.replace(password, '***')
  return text
