"""Where MLflow runs go: the output dir's own store, or a tracking server.

Parsed once, at the edge (the local runner's `--mlflow-uri`), and carried by
`layout.OutputLayout`. This module imports neither MLflow nor TensorFlow, so
a bad URI is refused before either is loaded.

    local_store('/srv/out')     sqlite:////srv/out/mlflow.db, artifacts in
                                /srv/out/mlruns (the default)
    parse_uri('http://mlflow.example.com:5000')   a tracking server

A URI may hold a password (`http://USER:PASSWORD@HOST`, or a database URL);
`str()` of a location, and every message here, masks it.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Optional
from typing import Tuple
from urllib import parse

from pipeline.facts import files
from pipeline.facts import metadata_location

# What MLflow's own clients accept as a tracking URI, besides a local path.
SCHEMES = ('http', 'https', 'sqlite', 'postgresql', 'mysql', 'mssql',
           'file', 'databricks')


class TrackingUriError(ValueError):
  """An unusable --mlflow-uri; the message masks its password."""


@dataclasses.dataclass(frozen=True)
class TrackingLocation:
  """An MLflow tracking store (and model registry, at the same URI).

  Attributes:
    uri: The tracking URI, as MLflow's client takes it.
    artifact_location: Where the artifacts of an experiment that a run
      creates go; None lets the store decide (a server's artifact root).
  """
  uri: str
  artifact_location: Optional[str] = None

  @property
  def is_local(self) -> bool:
    """The output dir's own store, readable with `mlflow ui` here."""
    return self.artifact_location is not None

  @property
  def secrets(self) -> Tuple[str, ...]:
    """The URI's password as it may appear in text; () without one."""
    try:
      password = parse.urlsplit(self.uri).password
    except ValueError:  # A malformed port: the text after ':' may be it.
      password = None
    if not password:
      return ()
    return tuple(sorted({password, parse.unquote(password)}, key=len,
                        reverse=True))

  def scrub(self, text: str) -> str:
    """`text` with the URI's password replaced by `***`."""
    for secret in self.secrets:
      text = text.replace(secret, metadata_location.MASK)
    return text

  def ui_command(self) -> str:
    """The command that shows this store's runs and registered models."""
    return f'mlflow ui --backend-store-uri {self}'

  def __str__(self) -> str:
    return metadata_location.mask_url(self.uri)


def local_store(output_dir: str) -> TrackingLocation:
  """The default store: SQLite in the output dir, artifacts beside it."""
  root = os.path.abspath(output_dir)
  return TrackingLocation(
      uri='sqlite:///' + os.path.join(root, files.MLFLOW_DB_FILE),
      artifact_location=pathlib.Path(root, files.MLFLOW_ARTIFACTS_DIR).as_uri())


def parse_uri(uri: str) -> TrackingLocation:
  """Checks a --mlflow-uri: a tracking server, a database or a folder.

  Args:
    uri: http(s)://HOST:PORT for a tracking server, a database URL
      (sqlite:///PATH, postgresql://...), or a local folder (a file store,
      made absolute here).

  Raises:
    TrackingUriError: Empty, an unknown scheme, or no host; the message
      names the URI with its password masked.
  """
  shown = metadata_location.mask_url(uri)
  if not uri.strip():
    raise TrackingUriError('--mlflow-uri is empty; give a tracking server '
                           'URL, e.g. http://HOST:5000, or drop the flag to '
                           'log to the output dir.')
  if '://' not in uri:
    if uri == 'databricks' or uri.startswith('databricks:'):
      return TrackingLocation(uri)
    return TrackingLocation(pathlib.Path(os.path.abspath(uri)).as_uri())
  scheme = uri.split('://', 1)[0].split('+', 1)[0].lower()
  if scheme not in SCHEMES:
    raise TrackingUriError(
        f'--mlflow-uri {shown}: scheme {scheme}:// is not an MLflow tracking '
        f'store; use one of {", ".join(s + "://" for s in SCHEMES)}, e.g. '
        'http://HOST:5000.')
  if scheme in ('http', 'https') and not uri.split('://', 1)[1].strip('/'):
    raise TrackingUriError(f'--mlflow-uri {shown}: no host; e.g. '
                           'http://HOST:5000.')
  head, _, path = uri.partition(':///')
  if (scheme == 'sqlite' and path and not path.startswith('/') and
      path != ':memory:'):
    # sqlite:///mlflow.db is relative to the current directory: resolved
    # here, at the edge, since the run's processes start elsewhere.
    return TrackingLocation(f'{head}:///{os.path.abspath(path)}')
  return TrackingLocation(uri)
