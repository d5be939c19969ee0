"""Tiny TFX components for the concurrent runner's tests.

They live in a module of their own so that the component worker process
(`python -m pipeline.local.node_worker`) imports them by the path the
compiled pipeline names, as it imports TFX's own executors.

Each writes a small file into a shared folder (`board`), so that the test
can see which ran, in which process, and in what order, without timing.
"""

import os
import pathlib
import time

from absl import logging
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

# How long a rendezvous waits for its partner before it fails: only a
# runner that never starts the partner alongside waits this long.
RENDEZVOUS_TIMEOUT_S = 120.0


def _mark(board: str, name: str) -> None:
  (pathlib.Path(board) / name).write_text(str(os.getpid()),
                                          encoding='utf-8')


@component
def Source(board: Parameter[str],
           out: OutputArtifact[standard_artifacts.String]) -> None:
  """The root: records that it ran and hands on a value."""
  _mark(board, 'Source')
  out.value = 'source'


@component
def Rendezvous(board: Parameter[str], me: Parameter[str],
               partner: Parameter[str],
               after: InputArtifact[standard_artifacts.String],
               out: OutputArtifact[standard_artifacts.String]) -> None:
  """Starts, then waits until `partner` has started too.

  Two of them finish only when a runner launches them at the same time;
  one after the other, the first fails after RENDEZVOUS_TIMEOUT_S.
  """
  del after
  _mark(board, me)
  deadline = time.monotonic() + RENDEZVOUS_TIMEOUT_S
  while not (pathlib.Path(board) / partner).exists():
    if time.monotonic() > deadline:
      raise TimeoutError(f'{me}: {partner} never started alongside')
    time.sleep(0.05)
  out.value = me


@component
def Step(board: Parameter[str], me: Parameter[str],
         after: InputArtifact[standard_artifacts.String],
         out: OutputArtifact[standard_artifacts.String],
         fail_with: Parameter[str] = '', log: Parameter[str] = '') -> None:
  """Records that it ran, logs `log` as a warning; raises
  ValueError(fail_with) when that is set."""
  del after
  _mark(board, me)
  if log:
    logging.warning('%s says: %s', me, log)
  if fail_with:
    raise ValueError(fail_with)
  out.value = me
