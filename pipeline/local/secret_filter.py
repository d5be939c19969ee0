"""Keeps the metadata store's password out of the logs of a run.

TFX's LocalDagRunner logs its MLMD connection config at INFO level (shown
with `--verbose`), and a MySQL config holds the password. `masked_logs()`
installs a `logging.Filter` that rewrites any record containing the
password, with it replaced by `***`, for the duration of the run.

The filter sits on the `absl` logger (TFX and MLMD log through absl), on
the root logger, on absl's handler and on every handler the root logger
has, so records of any logger that reach a handler are covered.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable
from typing import Iterator
from typing import List
from typing import Sequence
from typing import Union

from absl import logging as absl_logging

from pipeline.facts.metadata_location import MASK

Filterer = Union[logging.Logger, logging.Handler]


class SecretFilter(logging.Filter):
  """Rewrites records whose message `scrub` changes; drops none."""

  def __init__(self, scrub: Callable[[str], str]):
    super().__init__()
    self._scrub = scrub

  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
    clean = self._scrub(message)
    if clean != message:
      record.msg = clean
      record.args = None
    if record.exc_info and not record.exc_text:
      # Formatted here, once, so that the traceback is scrubbed as well.
      record.exc_text = self._scrub(
          logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
      record.exc_text = self._scrub(record.exc_text)
    return True


def _targets() -> List[Filterer]:
  targets: List[Filterer] = [logging.getLogger('absl'), logging.root,
                             absl_logging.get_absl_handler()]
  targets.extend(logging.root.handlers)
  unique: List[Filterer] = []
  for target in targets:
    if target is not None and all(target is not u for u in unique):
      unique.append(target)
  return unique


def replacer(secrets: Sequence[str], mask: str = MASK
             ) -> Callable[[str], str]:
  """A scrub function that replaces each secret (longest first) by `mask`."""
  longest_first = sorted((s for s in secrets if s), key=len, reverse=True)

  def scrub(text: str) -> str:
    for secret in longest_first:
      text = text.replace(secret, mask)
    return text

  return scrub


@contextlib.contextmanager
def masked_logs(scrub: Callable[[str], str]) -> Iterator[SecretFilter]:
  """Scrubs every log record with `scrub` inside the block."""
  secret_filter = SecretFilter(scrub)
  targets = _targets()
  for target in targets:
    target.addFilter(secret_filter)
  try:
    yield secret_filter
  finally:
    for target in targets:
      target.removeFilter(secret_filter)
