"""The run's log file, and a terminal that shows only the project's lines.

A default local run prints the input check, one line per component start
and finish, the training epochs, the project's own warnings and the
summary. What the libraries say goes to the run's log file,
`<output-dir>/logs/run-<start time>.log`, and with `--verbose` to the
terminal as well. It comes out of three channels, each handled here:

- Python logging (TFX, Beam, TensorFlow, absl): the root logger gets two
  handlers. Every record goes to the log file. A record logged by the
  project's own code (a module under `pipeline/` or `models/`, judged by the
  file that logged it, not by the logger's name: TFX and the project both
  log through absl's logger) also goes to the terminal, as one line in the
  project's format: `WARNING: DriftGate: ...`, like the project's printed
  warnings. Handlers on the root logger also stop TensorFlow and
  `logging.basicConfig` from adding terminal handlers of their own.
- Python warnings (google-api-core's FutureWarnings, TFMA's RuntimeWarning
  from numpy): `logging.captureWarnings` makes them log records, so they
  go to the file.
- Native code (TensorFlow's cuFFT, cuDNN and cuBLAS registration errors,
  TF-TRT, XLA, gRPC, MLMD) writes to file descriptor 2 directly, and some
  of it ignores TF_CPP_MIN_LOG_LEVEL. So fd 2 is pointed at the log file,
  and `sys.stderr` at a duplicate of the terminal: what Python code writes
  to `sys.stderr` when it runs (the project's `RUN FAILED:` lines, an
  uncaught traceback) still reaches the terminal. Child processes inherit
  fd 2, so Beam's SDK worker processes log into the file too. The
  component worker gets the terminal as its stderr and the log's path, and
  sets up the same in its own process (`node_worker.py`); the MLflow worker
  keeps its stderr in a file of its own (`pipeline/tracking/tracker.py`).

With `--verbose` nothing is redirected: the terminal shows every record at
INFO level in Python's basic format (`INFO:absl:...`) and native output as
it comes, and the file gets the Python records as well.

The log is opened only once the run holds its output dir's lock, so a
refused input leaves nothing behind; it runs before TensorFlow's import
anyway. `close()` undoes everything, for callers that go on in-process.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import logging
import os
import sys
from typing import List
from typing import Optional
from typing import TextIO
from typing import Tuple

import models
import pipeline
from pipeline.facts import files

LOG_DIR = files.LOG_DIR
# Where the project's code lives: records logged from here are its own.
PROJECT_DIRS: Tuple[str, ...] = tuple(
    os.path.dirname(os.path.abspath(package.__file__)) + os.sep
    for package in (pipeline, models))
# The file's line: enough to find the source of any record.
FILE_FORMAT = ('%(asctime)s %(levelname)s %(name)s '
               '%(filename)s:%(lineno)d] %(message)s')
_STDERR_FD = 2


def log_path(output_dir: str, now: Optional[datetime.datetime] = None
             ) -> str:
  """`<output-dir>/logs/run-2026-12-07T14-49-22.log` for a run started now."""
  stamp = (now or datetime.datetime.now()).isoformat(timespec='seconds')
  return os.path.join(output_dir, LOG_DIR,
                      f'run-{stamp.replace(":", "-")}.log')


def is_project_record(record: logging.LogRecord) -> bool:
  """Whether the project's own code logged `record`."""
  return os.path.abspath(record.pathname).startswith(PROJECT_DIRS)


def project_line(record: logging.LogRecord) -> str:
  """The terminal line of a project record: 'WARNING: DriftGate: ...'."""
  return f'{record.levelname}: {record.getMessage()}'


class _ProjectFilter(logging.Filter):

  def filter(self, record: logging.LogRecord) -> bool:
    return is_project_record(record)


class _ProjectFormatter(logging.Formatter):

  def format(self, record: logging.LogRecord) -> str:
    line = project_line(record)
    if record.exc_info and not record.exc_text:
      record.exc_text = self.formatException(record.exc_info)
    if record.exc_text:
      line += '\n' + record.exc_text
    return line


@dataclasses.dataclass
class RunLog:
  """The run's log, installed in this process; `close()` undoes it.

  Attributes:
    path: The log file.
    verbose: Whether the terminal shows everything.
    terminal: The terminal's stderr (the real one): hand it to a child
      process whose project lines should show, as the component worker's
      stderr.
  """
  path: str
  verbose: bool
  terminal: TextIO
  _file: TextIO
  _handlers: List[logging.Handler]
  _saved_handlers: List[logging.Handler]
  _saved_level: int
  _saved_stderr: TextIO
  _saved_fd: Optional[int]
  _owns_terminal: bool

  def close(self) -> None:
    """Restores fd 2, `sys.stderr` and the root logger's handlers."""
    root = logging.getLogger()
    for handler in self._handlers:
      root.removeHandler(handler)
      handler.close()
    for handler in self._saved_handlers:
      root.addHandler(handler)
    root.setLevel(self._saved_level)
    logging.captureWarnings(False)
    if self._saved_fd is not None:
      _flush(sys.stderr)
      os.dup2(self._saved_fd, _STDERR_FD)
      os.close(self._saved_fd)
      self._saved_fd = None
      sys.stderr = self._saved_stderr
    if self._owns_terminal:
      self.terminal.close()
    self._file.close()


def install(path: str, verbose: bool,
            terminal: Optional[TextIO] = None) -> RunLog:
  """Sends the libraries' output to `path`; see the module docstring.

  Args:
    path: The log file; appended to, its folder created.
    verbose: Show everything on the terminal too, nothing redirected.
    terminal: Where the project's lines go; None for this process's
      stderr as it is now.

  Returns:
    The installed log.
  """
  os.makedirs(os.path.dirname(path), exist_ok=True)
  log_file = open(path, 'a', encoding='utf-8', buffering=1)
  root = logging.getLogger()
  saved_handlers = list(root.handlers)
  saved_level = root.level
  saved_stderr = sys.stderr
  saved_fd = None
  owns_terminal = False
  file_handler = logging.StreamHandler(log_file)
  file_handler.setFormatter(logging.Formatter(FILE_FORMAT))
  if verbose:
    terminal = terminal or sys.stderr
    # What basicConfig() gives, which the verbose logs have always looked
    # like (and TensorFlow's own handler, which it adds to a bare root).
    screen = logging.StreamHandler(terminal)
    screen.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
  else:
    _flush(sys.stderr)
    saved_fd = os.dup(_STDERR_FD)
    if terminal is None:
      # A stream of its own on a duplicate of fd 2, line buffered so that
      # each line shows at once.
      terminal = io.TextIOWrapper(
          io.FileIO(os.dup(saved_fd), 'w'), encoding='utf-8',
          errors='backslashreplace', line_buffering=True)
      owns_terminal = True
    os.dup2(log_file.fileno(), _STDERR_FD)
    sys.stderr = terminal
    screen = logging.StreamHandler(terminal)
    screen.addFilter(_ProjectFilter())
    screen.setFormatter(_ProjectFormatter())
    screen.setLevel(logging.WARNING)
  for handler in saved_handlers:
    root.removeHandler(handler)
  handlers = [file_handler, screen]
  for handler in handlers:
    root.addHandler(handler)
  logging.captureWarnings(True)
  return RunLog(path=path, verbose=verbose, terminal=terminal,
                _file=log_file, _handlers=handlers,
                _saved_handlers=saved_handlers, _saved_level=saved_level,
                _saved_stderr=saved_stderr, _saved_fd=saved_fd,
                _owns_terminal=owns_terminal)


def _flush(stream: TextIO) -> None:
  try:
    stream.flush()
  except (OSError, ValueError):  # A closed pipe or stream: nothing to do.
    pass
