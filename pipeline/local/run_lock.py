"""One run at a time per output directory.

Two local runs writing the same output directory would interleave writes to
one SQLite metadata store and race to push into the same serving folder. A
run therefore holds an exclusive `fcntl.flock` on `<output dir>/.run.lock`
from before the pipeline starts until it has printed its summary. The kernel
drops the lock when the process ends for any reason, SIGKILL included, so a
crashed run never leaves a stale lock behind. The holder writes its PID into
the file so that a second run can say who is in the way.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import sys
import time
from typing import Any
from typing import Dict
from typing import Optional

from pipeline.facts import files

LOCK_FILE = files.LOCK_FILE
# How often a waiting run retries; flock has no timed wait of its own.
_POLL_SECONDS = 0.5
# A holder writes its PID right after taking the lock; a waiter gives it this
# long before it announces the wait without naming the holder.
_ANNOUNCE_GRACE_SECONDS = 2.0


# Exit code of a run refused because another run holds the output dir.
EXIT_CODE = 4


class OutputDirLockedError(RuntimeError):
  """Another run holds the output directory."""


def lock_path(output_dir: str) -> str:
  return os.path.join(output_dir, LOCK_FILE)


def read_holder(output_dir: str) -> Optional[Dict[str, Any]]:
  """What the current (or last) holder wrote into the lock file, if anything."""
  try:
    with open(lock_path(output_dir), encoding='utf-8') as f:
      text = f.read()
  except FileNotFoundError:
    return None
  try:
    holder = json.loads(text)
  except ValueError:
    # The holder has opened the file but not written its details yet.
    return None
  return holder if isinstance(holder, dict) else None


def describe_holder(holder: Optional[Dict[str, Any]]) -> str:
  if not holder:
    return 'another run (PID not yet recorded)'
  return (f"run PID {holder.get('pid')} on {holder.get('host')}, started "
          f"{holder.get('started')}")


def _try_flock(fd: int) -> bool:
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError as e:
    if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
      return False
    raise
  return True


class RunLock:
  """A held lock on an output directory; `release()` or `with` frees it.

  The lock also ends when this object is garbage collected or the process
  exits, however it exits.
  """

  def __init__(self, output_dir: str, fd: int):
    self.output_dir = output_dir
    self.path = lock_path(output_dir)
    self._fd: Optional[int] = fd

  @property
  def held(self) -> bool:
    return self._fd is not None

  def release(self) -> None:
    if self._fd is None:
      return
    fd, self._fd = self._fd, None
    try:
      # Keep the file: deleting it would let a third run lock a fresh inode
      # while a second one still waits on this one. Just clear the holder.
      os.ftruncate(fd, 0)
      fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
      os.close(fd)

  def __enter__(self) -> 'RunLock':
    return self

  def __exit__(self, *unused_exc_info) -> None:
    self.release()

  def __del__(self) -> None:
    self.release()


def acquire(output_dir: str, timeout_s: float = 0.0) -> RunLock:
  """Takes the output directory's run lock.

  Args:
    output_dir: The run's output directory; created if missing.
    timeout_s: Seconds to wait for another run to finish; 0 fails at once,
      a negative value waits indefinitely.

  Returns:
    The held lock.

  Raises:
    OutputDirLockedError: Another run still held the lock after `timeout_s`.
  """
  os.makedirs(output_dir, exist_ok=True)
  # Python opens with O_CLOEXEC: programs the run execs do not inherit it.
  fd = os.open(lock_path(output_dir), os.O_RDWR | os.O_CREAT, 0o644)
  try:
    _wait_for_lock(fd, output_dir, timeout_s)
    info = {
        'pid': os.getpid(),
        'host': socket.gethostname(),
        'started': datetime.datetime.now().isoformat(timespec='seconds'),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode('utf-8'), 0)
  except BaseException:
    os.close(fd)  # Closing drops the lock too, if it was taken.
    raise
  return RunLock(output_dir, fd)


def _wait_for_lock(fd: int, output_dir: str, timeout_s: float) -> None:
  started = time.monotonic()
  deadline = None if timeout_s < 0 else started + timeout_s
  announced = False
  while not _try_flock(fd):
    details = read_holder(output_dir)
    holder = describe_holder(details)
    if deadline is not None and time.monotonic() >= deadline:
      waited = f' after waiting {timeout_s:g}s' if timeout_s > 0 else ''
      raise OutputDirLockedError(
          f'Output dir {output_dir} is in use by {holder}{waited}. Wait for '
          'that run to finish, pass --lock-timeout SECONDS to wait for it, '
          'or use another --output-dir.')
    if not announced and (details or time.monotonic() - started >=
                          _ANNOUNCE_GRACE_SECONDS):
      print(f'Waiting for {holder} to release {output_dir} ...',
            file=sys.stderr, flush=True)
      announced = True
    time.sleep(_POLL_SECONDS)
