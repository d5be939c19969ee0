"""A second Python process that runs chosen components of a local run.

    python -m pipeline.local.node_worker

Threads do not make two components faster: beside Transform in one
process, StatisticsGen took 11.3 s instead of 5.8 s and Transform 26.6 s
instead of 20.3 s, because both are Python under one interpreter lock. This
process runs a node on another core instead (`pipeline/local/dag.py`
names which: StatisticsGen, FeatureAttributions). The local run starts it
before it imports TFX, so its own imports (TFX's launcher and TFDV, about
5 s of CPU) overlap the run's, and it is warm when StatisticsGen becomes
ready.

It reads JSON lines on stdin and answers one JSON line per request on the
stdout it was given (the executors' own prints go to stderr, or to the run's
log file):

1. `{"verbose": bool, "secrets": [...], "log": path}`: log level, the
   strings to mask in its logs (the metadata store's and the SQL source's
   passwords), and the run's log file: unless verbose, the libraries'
   output goes there and only the project's lines to the terminal, as in
   the run's process (`pipeline/local/run_log.py`). Then it imports what
   the nodes need.
2. Any number of `{"pipeline": base64 IR, "node": id}`: it launches that
   node of that pipeline IR with TFX's portable launcher, the same call
   LocalDagRunner makes, and answers `{"ok": true}` or
   `{"error": "...", "error_type": "...", "traceback": "..."}`, the
   secrets masked in all three. Before the answer, `{"started": id}` when
   the node's executor starts (never for a cache hit): the run's progress
   line (`pipeline/local/progress.py`).

End of input ends it. It exits too when its parent dies (Linux), so a run
killed with SIGKILL leaves no process behind writing to the store.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import signal
import sys
import traceback
from typing import Any
from typing import Dict
from typing import TextIO

_PR_SET_PDEATHSIG = 1
_STDERR_FD = 2


def _die_with_parent() -> None:
  """Asks Linux to SIGKILL this process when its parent exits."""
  if not sys.platform.startswith('linux'):
    return
  try:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
  except (OSError, AttributeError):
    pass  # Without it, end of input still ends the worker.
  if os.getppid() == 1:  # The parent died before prctl took effect.
    sys.exit(0)


def _warm_up() -> None:
  """Imports what StatisticsGen and the launcher need, ahead of use.

  And the project's artifact types, which MLMD records by name: resolving
  FeatureAttributions' conditional input (a ModelChange) without its class
  makes TFX warn and build an ephemeral one.
  """
  import tensorflow_data_validation  # noqa: F401
  from tfx.components.statistics_gen import executor  # noqa: F401

  from models import keras_choice
  from pipeline.components import attributions  # noqa: F401
  from pipeline.components import model_change  # noqa: F401
  from pipeline.orchestration import nodes  # noqa: F401
  keras_choice.skip_autograph_of_keras()


def launch(request: Dict[str, Any], answers: TextIO) -> None:
  """Launches one node of a pipeline IR, as LocalDagRunner does.

  Tells the parent on `answers` when the node's executor starts.
  """
  from tfx.proto.orchestration import pipeline_pb2

  from pipeline.orchestration import nodes
  node_id = request['node']

  def started() -> None:
    answers.write(json.dumps({'started': node_id}) + '\n')
    answers.flush()

  ir = pipeline_pb2.Pipeline.FromString(base64.b64decode(request['pipeline']))
  nodes.run_and_check(ir, node_id, on_executor_start=started)


def serve(requests: TextIO, answers: TextIO) -> None:
  """Answers requests until end of input."""
  setup = json.loads(requests.readline() or '{}')
  from pipeline.local import run as run_lib  # No TensorFlow: refusals use it.
  from pipeline.local import run_log
  from pipeline.local import secret_filter
  verbose = bool(setup.get('verbose'))
  run_lib.quiet_logs(verbose)
  if setup.get('log'):
    run_log.install(setup['log'], verbose)
    if not verbose:
      # What executors print (stdout is stderr here) is the libraries' too.
      sys.stdout.flush()
      os.dup2(_STDERR_FD, sys.stdout.fileno())
  scrub = secret_filter.replacer(setup.get('secrets') or [])
  with secret_filter.masked_logs(scrub):
    _warm_up()
    for line in requests:
      if not line.strip():
        continue
      try:
        launch(json.loads(line), answers)
        answer = {'ok': True}
      except Exception as e:
        # Sent back whole; the parent raises it as the node's error.
        answer = {'error': scrub(str(e)), 'error_type': type(e).__name__,
                  'traceback': scrub(traceback.format_exc())}
      answers.write(json.dumps(answer) + '\n')
      answers.flush()


def main() -> None:
  _die_with_parent()
  # The run's own imports and its node on the critical path (Transform)
  # come first; a worker node has slack, it finishes well before.
  os.nice(5)
  # Executors may print; only answers go to the stdout the parent reads.
  answers = os.fdopen(os.dup(sys.stdout.fileno()), 'w', encoding='utf-8')
  os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
  serve(sys.stdin, answers)
  # End of input: nothing is running. Skips the teardown of an interpreter
  # that holds TensorFlow (seconds), as the local runner does.
  sys.stderr.flush()
  os._exit(0)


if __name__ == '__main__':
  main()
