"""Pipeline runs started in a thread, so they overlap other tests.

A pipeline run keeps about one of the two cores busy; the tests around it
mostly read its outputs. Starting independent runs in a thread as soon as
their inputs exist, and waiting for them only where a test needs them,
keeps both cores working.
"""

import threading
from typing import Any
from typing import Callable
from typing import Optional


class Background:
  """`fn(*args)` running in a daemon thread; `result()` waits for it."""

  def __init__(self, name: str, fn: Callable[..., Any], *args: Any):
    self._fn = fn
    self._args = args
    self._value: Any = None
    self._error: Optional[BaseException] = None
    self._thread = threading.Thread(target=self._run, daemon=True, name=name)
    self._thread.start()

  def _run(self) -> None:
    try:
      self._value = self._fn(*self._args)
    except BaseException as e:
      self._error = e  # Raised in the test that waits.

  def result(self, timeout: float = 1800) -> Any:
    self._thread.join(timeout)
    if self._thread.is_alive():
      raise TimeoutError(f'{self._thread.name} did not finish in {timeout} s')
    if self._error is not None:
      raise RuntimeError(f'{self._thread.name} failed') from self._error
    return self._value


class Chain:
  """Several computations run one after the other in one daemon thread.

  Each has its own result, ready as soon as it is done, so a test waits
  only for the ones before it in the chain. One thread per chain keeps the
  number of pipeline processes at once, and so the peak memory, bounded.
  """

  def __init__(self, name: str,
               steps: 'list[tuple[str, Callable[..., Any], tuple]]'):
    self._steps = steps
    self._done = {key: threading.Event() for key, _, _ in steps}
    self._values: dict = {}
    self._errors: dict = {}
    self._thread = threading.Thread(target=self._run, daemon=True, name=name)
    self._thread.start()

  def _run(self) -> None:
    for key, fn, args in self._steps:
      try:
        self._values[key] = fn(*args)
      except BaseException as e:
        self._errors[key] = e  # Raised in the test that waits.
      self._done[key].set()

  def result(self, key: str, timeout: float = 3600) -> Any:
    if not self._done[key].wait(timeout):
      raise TimeoutError(f'{key} did not finish in {timeout} s')
    if key in self._errors:
      raise RuntimeError(f'{key} failed') from self._errors[key]
    return self._values[key]
