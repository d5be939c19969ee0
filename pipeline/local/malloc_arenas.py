"""Fewer glibc malloc arenas for a run's many threads.

glibc gives threads their own malloc arenas, up to eight per core, and
memory freed in one arena is not reused by another. The local runner's
components run in threads (`concurrent_runner.py`), beside TensorFlow's and
Beam's own, and the run's process ended 90 MB larger for it: 1.38 GB at its
peak against 1.29 GB with two arenas, on the taxi data. `limit()` caps the
arenas before any of those threads starts, as `MALLOC_ARENA_MAX=2` would
at process start; a `MALLOC_ARENA_MAX` the user set wins.
"""

from __future__ import annotations

import ctypes
import os
import sys

ARENAS = 2
ENV = 'MALLOC_ARENA_MAX'
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit(arenas: int = ARENAS) -> bool:
  """Caps glibc's malloc arenas; returns whether the cap was set here.

  False on other C libraries and platforms, and when `MALLOC_ARENA_MAX` is
  set (glibc has applied it already).
  """
  if not sys.platform.startswith('linux') or os.environ.get(ENV):
    return False
  try:
    libc = ctypes.CDLL(None)
    return libc.mallopt(_M_ARENA_MAX, arenas) == 1
  except (OSError, AttributeError):  # Not glibc (musl has no mallopt).
    return False
