"""Rows of a SQL query, streamed in bounded batches through SQLAlchemy.

Shared by the SQL ExampleGen's executor, the input check
(`pipeline.validation.sql_reader`) and batch predictions, so it imports no
TensorFlow. A query's rows are fetched through a server-side cursor
(`stream_results`), `batch_rows` at a time, so memory stays flat however
many rows the query returns.

The URL is read as `pipeline.facts.sql_url` reads it: without a password
in it, the process that connects takes it from the environment
(`sql_url.PASSWORD_ENV`); every message shows the URL masked.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any
from typing import Iterator
from typing import List
from typing import Sequence
from typing import Tuple

import sqlalchemy
from sqlalchemy import exc as sa_exc

from pipeline.facts import sql_url

# Rows fetched per round trip, and per batch handed to the caller.
DEFAULT_BATCH_ROWS = 10_000
# The error of a database, or of a query, that cannot give rows.
SqlSourceError = sql_url.SqlSourceError


@dataclasses.dataclass(frozen=True)
class Batch:
  """Up to `batch_rows` rows of the result, with the result's column names."""
  columns: Tuple[str, ...]
  rows: List[Sequence[Any]]


def _engine(url: str) -> sqlalchemy.engine.Engine:
  parsed = sql_url.parse(url)
  password = parsed.password
  if password is None:
    password = os.environ.get(sql_url.PASSWORD_ENV)
  if password is not None:
    parsed = parsed.set(password=password)
  try:
    # No pool: one connection per read, closed when the read ends.
    return sqlalchemy.create_engine(parsed, poolclass=sqlalchemy.pool.NullPool)
  except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as e:
    raise SqlSourceError(
        f'cannot use --sql-url {sql_url.masked(url)}: {e}. The PostgreSQL '
        'driver (postgresql://, psycopg2) is installed; other databases need '
        'their SQLAlchemy driver in the venv.') from None


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
          f'cannot connect to {sql_url.masked(url)}: {_reason(e, url)}. '
          'Check that the server runs and accepts this login (the password '
          f'comes from the URL or ${sql_url.PASSWORD_ENV}).') from None
    with connection:
      try:
        result = connection.execution_options(
            stream_results=True, max_row_buffer=batch_rows).exec_driver_sql(
                _escaped(query, engine.dialect))
        if not result.returns_rows:
          raise SqlSourceError(
              f'the query {sql_url.quoted(query)} on {sql_url.masked(url)} '
              'returns no result set; give a SELECT.')
        columns = tuple(result.keys())
        empty = True
        for partition in result.partitions(batch_rows):
          empty = False
          yield Batch(columns, partition)
        if empty:
          yield Batch(columns, [])  # The columns, for the messages.
      except sa_exc.DBAPIError as e:
        raise SqlSourceError(
            f'the query {sql_url.quoted(query)} failed on '
            f'{sql_url.masked(url)}: {_reason(e, url)}. Fix the query: one '
            'SELECT (it is read through a cursor); try it in the database\'s '
            'own client first.') from None
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
  password = sql_url.parse(url).password or os.environ.get(
      sql_url.PASSWORD_ENV)
  if password:
    text = text.replace(password, '***')
  return text
