"""Holds back what native code writes to stderr during one short call.

MLMD's C++ core logs straight to file descriptor 2, bypassing Python's
logging; for a failed MySQL connection it logs a misleading hint (about
MySQL 8 authentication plugins) next to the clear one-line error this
project prints. `held()` points fd 2 at a temporary file for the duration
of a `with` block, then restores it and writes what was held back to the
real stderr, unless the block called `discard()`.

The redirect is process-wide, so keep the block short: anything another
thread writes meanwhile is delayed, not lost (unless discarded).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator

_STDERR_FD = 2


class Held:
  """What `held()` yields: call `discard()` to drop what was held back."""

  def __init__(self) -> None:
    self.discarded = False

  def discard(self) -> None:
    self.discarded = True


@contextlib.contextmanager
def held() -> Iterator[Held]:
  """Redirects fd 2 to a temporary file for the block; see the module doc."""
  state = Held()
  sys.stderr.flush()
  saved = os.dup(_STDERR_FD)
  try:
    with tempfile.TemporaryFile() as sink:
      os.dup2(sink.fileno(), _STDERR_FD)
      try:
        yield state
      finally:
        sys.stderr.flush()
        os.dup2(saved, _STDERR_FD)
        if not state.discarded:
          sink.seek(0)
          kept = sink.read()
          if kept:
            os.write(_STDERR_FD, kept)
  finally:
    os.close(saved)
