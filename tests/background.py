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
    except BaseException as e:  # pylint: disable=broad-except
      self._error = e  # Raised in the test that waits.

  def result(self, timeout: float = 1800) -> Any:
    self._thread.join(timeout)
    if self._thread.is_alive():
      raise TimeoutError(f'{self._thread.name} did not finish in {timeout} s')
    if self._error is not None:
      raise RuntimeError(f'{self._thread.name} failed') from self._error
    return self._value
