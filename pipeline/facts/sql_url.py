"""A SQL source's URL and query: parsed, masked, and the span filled in.

`--sql-url` names a database as SQLAlchemy does
(`DIALECT://USER[:PASSWORD]@HOST:PORT/DATABASE`). The password never
travels with the URL: the pipeline's exec properties, and so ML Metadata,
hold the URL without it (`split_password`), and the process that connects
takes it from the environment (`PASSWORD_ENV`) when the URL has none.
Every message shows the URL with the password masked (`masked`).

SQLAlchemy is imported by the functions that parse, so that the runners'
`--help` and flag errors do not pay for its import.
"""

from __future__ import annotations

from typing import Any
from typing import Optional
from typing import Tuple

# Where the connecting process finds the password of a URL without one.
PASSWORD_ENV = 'SQL_PASSWORD'
# TFX's span placeholder in a query (`WHERE day = {SPAN}`).
SPAN_PLACEHOLDER = '{SPAN}'
# How much of a query the messages quote.
_QUOTED_QUERY_CHARS = 300


class SqlSourceError(ValueError):
  """The database or the query cannot give rows; says which and what to do."""


def parse(url: str) -> Any:
  """The URL as a `sqlalchemy.engine.URL`; raises SqlSourceError naming it
  (password masked)."""
  from sqlalchemy import exc as sa_exc
  from sqlalchemy.engine import url as sa_url
  try:
    parsed = sa_url.make_url(url)
  except sa_exc.ArgumentError:
    raise SqlSourceError(
        f'--sql-url {masked(url)} is not a database URL; write it as '
        'DIALECT://USER@HOST:PORT/DATABASE, e.g. '
        'postgresql://reader@db.example.com:5432/trips.') from None
  if parsed.host and '@' in parsed.host:
    # SQLAlchemy splits at the first '@': the password's rest would be
    # taken for the host, and shown in messages as such.
    raise SqlSourceError(
        f'--sql-url {masked(url)}: the password holds "@"; percent-encode '
        'it as %40 (and ":" as %3A, "/" as %2F), or leave the password out '
        f'of the URL and set ${PASSWORD_ENV}.')
  return parsed


def masked(url: str) -> str:
  """The URL as messages show it: the password as ***.

  Works on any text that looks like a URL, parseable or not. Masks up to
  the last '@' of the address, so a password with a raw '@' (which
  SQLAlchemy would split at the first) is hidden whole.
  """
  scheme, sep, rest = url.partition('://')
  prefix = f'{scheme}{sep}'
  if not sep:  # Not even a scheme: mask the same way.
    prefix, rest = '', url
  if '@' not in rest:
    return url
  login, at, host = rest.rpartition('@')
  user, colon, _ = login.partition(':')
  return f'{prefix}{user}{":***" if colon else ""}{at}{host}'


def split_password(url: str) -> Tuple[str, Optional[str]]:
  """(the URL without its password, the password or None).

  Raises:
    SqlSourceError: Not a URL.
  """
  from sqlalchemy.engine import url as sa_url
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


def describe(url: str, query: str) -> str:
  """How messages name a query: "query 'SELECT ...' on postgresql://u:***@h"."""
  return f'query {quoted(query)} on {masked(url)}'
