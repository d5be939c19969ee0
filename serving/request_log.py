"""The opt-in request log: one JSON line per scored row, under OUT.

    OUT/request_logs/<model>/requests-<UTC start time>-<pid>.jsonl

Each line holds the time, the model name and version, the row's features
as checked (a missing feature is absent) and its prediction:

    {"time": "2026-12-04T10:00:00.123456Z", "model": "taxi", "version": 3,
     "features": {"fare": 12.5, ...}, "prediction": {"probability": [0.8],
     ...}}

Writes are whole requests, under a lock, so lines from concurrent requests
never interleave, and each request's lines are flushed before it is
answered. A file is rotated once it holds `max_bytes`, and each process
keeps at most `max_files` of its files, deleting its oldest; each process
writes files of its own, so several servers may share the folder.
`read` gives the records of a time window back to the monitor.
"""

from __future__ import annotations

import dataclasses
import datetime
import glob
import json
import os
import threading
from typing import IO
from typing import Any
from typing import Dict
from typing import Iterator
from typing import List
from typing import Optional
from typing import Sequence

from absl import logging

from pipeline.facts import files

LOG_DIR = files.REQUEST_LOG_DIR
_PREFIX = 'requests-'
_SUFFIX = '.jsonl'
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_FILES = 20


def log_folder(output_dir: str, model_name: str) -> str:
  return os.path.join(output_dir, LOG_DIR, model_name)


def utc_now() -> datetime.datetime:
  return datetime.datetime.now(datetime.timezone.utc)


def timestamp(moment: datetime.datetime) -> str:
  return moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def parse_timestamp(text: str) -> datetime.datetime:
  return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%S.%fZ').replace(
      tzinfo=datetime.timezone.utc)


class RequestLog:
  """Appends records to rotated JSON-lines files; thread-safe.

  Args:
    folder: `log_folder(OUT, model)`; created on the first write.
    max_bytes: Rotate once a file holds this much.
    max_files: Files of this process kept; older ones are deleted.
  """

  def __init__(self, folder: str, max_bytes: int = DEFAULT_MAX_BYTES,
               max_files: int = DEFAULT_MAX_FILES):
    if max_bytes < 1 or max_files < 1:
      raise ValueError('max_bytes and max_files must be >= 1, got '
                       f'{max_bytes} and {max_files}.')
    self.folder = folder
    self.max_bytes = max_bytes
    self.max_files = max_files
    self._lock = threading.Lock()
    self._file: Optional[IO[str]] = None
    self._size = 0
    self._files: List[str] = []

  def _open(self) -> None:
    os.makedirs(self.folder, exist_ok=True)
    stamp = utc_now().strftime('%Y%m%dT%H%M%S%f')
    path = os.path.join(self.folder,
                        f'{_PREFIX}{stamp}-{os.getpid()}{_SUFFIX}')
    self._file = open(path, 'a', encoding='utf-8')
    self._size = 0
    self._files.append(path)
    while len(self._files) > self.max_files:
      oldest = self._files.pop(0)
      try:
        os.remove(oldest)
      except FileNotFoundError:
        pass  # Removed by hand already.

  def write(self, records: Sequence[Dict[str, Any]]) -> None:
    """Appends one request's records, as one block, flushed."""
    if not records:
      return
    text = ''.join(json.dumps(r, separators=(',', ':')) + '\n'
                   for r in records)
    with self._lock:
      if self._file is None or (self._size and
                                self._size + len(text) > self.max_bytes):
        self.close_file()
        self._open()
      self._file.write(text)
      self._file.flush()
      self._size += len(text)

  def close_file(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None

  def close(self) -> None:
    with self._lock:
      self.close_file()


@dataclasses.dataclass
class Records:
  """Logged records of a window, oldest first, and lines that were not."""
  records: List[Dict[str, Any]]
  unreadable: int = 0


def log_files(folder: str) -> List[str]:
  return sorted(glob.glob(os.path.join(folder, f'{_PREFIX}*{_SUFFIX}')))


def _lines(path: str) -> Iterator[str]:
  with open(path, encoding='utf-8') as f:
    yield from f


def read(folder: str, start: Optional[datetime.datetime] = None,
         end: Optional[datetime.datetime] = None) -> Records:
  """The records logged in [start, end), oldest first.

  A line that is not a whole record (a server killed mid-write) is counted
  in `unreadable` and skipped.
  """
  out = Records(records=[])
  for path in log_files(folder):
    if start is not None:
      modified = datetime.datetime.fromtimestamp(os.path.getmtime(path),
                                                 datetime.timezone.utc)
      if modified < start:
        continue  # Last written before the window.
    for line in _lines(path):
      try:
        record = json.loads(line)
        moment = parse_timestamp(record['time'])
      except (ValueError, KeyError, TypeError):
        out.unreadable += 1
        continue
      if (start is None or moment >= start) and (end is None or
                                                 moment < end):
        record['_time'] = moment
        out.records.append(record)
  out.records.sort(key=lambda r: r['_time'])
  if out.unreadable:
    logging.warning('%d unreadable line(s) in %s skipped.', out.unreadable,
                    folder)
  return out
