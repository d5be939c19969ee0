"""Two runs on one output dir: the second waits or fails clearly, never mixes.

The lock itself is tested on bare folders (cheap); two real runs started at
the same moment on the session's blessed output dir (`concurrent_runs`, the
e2e fixture's re-runs, shared with tests/test_secrets.py) show that they are serialized, that the
metadata store stays consistent and that the pushed models are untouched.
"""

import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap

from ml_metadata.proto import metadata_store_pb2
import pytest

from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from pipeline.local import run_lock
from tests import robustness
from tests.conftest import PIPELINE_NAME
from tests.conftest import REPO_ROOT

# A child process that takes the lock, says so, and holds it until killed.
_HOLDER = textwrap.dedent('''
    import sys, time
    from pipeline.local import run_lock
    lock = run_lock.acquire(sys.argv[1])
    print('held', flush=True)
    time.sleep(600)
''')


def _start_holder(output_dir: pathlib.Path) -> subprocess.Popen:
  proc = subprocess.Popen([sys.executable, '-c', _HOLDER, str(output_dir)],
                          stdout=subprocess.PIPE, text=True,
                          cwd=str(REPO_ROOT))
  assert proc.stdout.readline().strip() == 'held'
  return proc


def test_second_lock_fails_at_once_naming_the_holder(tmp_path):
  holder = _start_holder(tmp_path)
  try:
    with pytest.raises(run_lock.OutputDirLockedError) as raised:
      run_lock.acquire(str(tmp_path), timeout_s=0)
    message = str(raised.value)
    assert f'in use by run PID {holder.pid} on ' in message
    assert '--lock-timeout SECONDS' in message and '--output-dir' in message
    assert '\n' not in message
  finally:
    holder.kill()
    holder.wait()


def test_lock_is_freed_when_the_holder_is_sigkilled(tmp_path):
  holder = _start_holder(tmp_path)
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  # No stale lock after a crash: the kernel released it with the process.
  with run_lock.acquire(str(tmp_path), timeout_s=0) as lock:
    assert lock.held
    assert run_lock.read_holder(str(tmp_path))['pid'] == os.getpid()
  assert run_lock.read_holder(str(tmp_path)) is None


def test_waiting_run_gets_the_lock_when_the_holder_ends(tmp_path):
  holder = _start_holder(tmp_path)
  waiter = subprocess.Popen(
      [sys.executable, '-c',
       'import sys; from pipeline.local import run_lock; '
       'run_lock.acquire(sys.argv[1], timeout_s=-1); print("acquired")',
       str(tmp_path)],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      cwd=str(REPO_ROOT))
  # The waiter announces whom it waits for before it gets the lock.
  assert f'Waiting for run PID {holder.pid}' in waiter.stderr.readline()
  holder.kill()
  holder.wait()
  out, _ = waiter.communicate(timeout=60)
  assert out.strip() == 'acquired'


def test_waiter_names_a_holder_that_records_itself_late(tmp_path):
  """Two runs started together: the lock is taken a moment before the holder
  writes its PID. The waiter still names it instead of an unknown run.

  The moments are fixed by handshakes, not by sleeps: the holder writes its
  PID only once the waiter has looked for it and found nothing, and the
  waiter's grace for an unnamed holder is endless, so its line can only
  come from the record written late.
  """
  holder = subprocess.Popen(
      [sys.executable, '-c',
       'import fcntl, json, os, sys, time\n'
       'fd = os.open(os.path.join(sys.argv[1], ".run.lock"), '
       'os.O_RDWR | os.O_CREAT)\n'
       'fcntl.flock(fd, fcntl.LOCK_EX)\n'
       'print("locked", flush=True)\n'
       'sys.stdin.readline()\n'  # Until the waiter has looked.
       'os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": "h", '
       '"started": "s"}).encode(), 0)\n'
       'print("recorded", flush=True)\n'
       'time.sleep(600)\n', str(tmp_path)],
      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
  waiter = None
  try:
    assert holder.stdout.readline().strip() == 'locked'
    waiter = subprocess.Popen(
        [sys.executable, '-c', textwrap.dedent('''
            import sys
            from pipeline.local import run_lock
            run_lock._ANNOUNCE_GRACE_SECONDS = float('inf')
            read_holder = run_lock.read_holder
            def reported(output_dir):
              details = read_holder(output_dir)
              print('none' if details is None else 'named', flush=True)
              return details
            run_lock.read_holder = reported
            run_lock.acquire(sys.argv[1], timeout_s=-1)
            '''), str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=str(REPO_ROOT))
    # The waiter found the lock taken and no holder recorded yet ...
    assert waiter.stdout.readline().strip() == 'none'
    holder.stdin.write('go\n')
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == 'recorded'
    # ... and names the holder once it has recorded itself.
    assert f'Waiting for run PID {holder.pid}' in waiter.stderr.readline()
  finally:
    holder.kill()
    holder.wait()
  waiter.communicate(timeout=60)
  assert waiter.returncode == 0


@pytest.mark.e2e
def test_runner_refuses_a_locked_output_dir(e2e_run, tmp_path,
                                            local_runner_in_process):
  """The runner's main(), in-process: refused before any TFX code runs.

  tests/test_runners.py checks the real script's exit code in a subprocess.
  """
  outputs = robustness.copy_outputs(e2e_run.output_dir, tmp_path / 'outputs')
  before = robustness.snapshot(outputs)
  holder = _start_holder(outputs)
  try:
    result = local_runner_in_process(outputs, ['--lock-timeout', '0'])
  finally:
    holder.kill()
    holder.wait()
  assert result.returncode == run_lock.EXIT_CODE
  line = robustness.failure_line(result)
  assert line.startswith(f'RUN FAILED: Output dir {outputs} is in use by run '
                         f'PID {holder.pid}')
  after = robustness.snapshot(outputs)
  assert after == before


@pytest.mark.e2e
def test_two_runs_at_once_are_serialized(concurrent_runs):
  """The session's `concurrent_runs` (tests/conftest.py): started together."""
  outputs = concurrent_runs.output_dir
  before = concurrent_runs.before
  results = concurrent_runs.results
  for result in results:
    assert result.returncode == 0, result.stderr[-3000:]
  waited = [(pid, result.stderr)
            for pid, result in zip(concurrent_runs.pids, results, strict=True)
            if 'Waiting for run PID' in result.stderr]
  assert len(waited) == 1, 'exactly one run should have waited'
  pids = set(concurrent_runs.pids)
  named = int(re.search(r'Waiting for run PID (\d+)', waited[0][1]).group(1))
  assert named in pids - {waited[0][0]}

  store = run_model.open_store(str(outputs / 'metadata.sqlite'))
  runs = run_model.run_ids(store, PIPELINE_NAME)
  assert runs[:len(before.run_ids)] == before.run_ids
  new_runs = runs[len(before.run_ids):]
  assert len(new_runs) == 2
  spans = []
  for run_id in new_runs:
    context = store.get_context_by_type_and_name('pipeline_run', run_id)
    executions = store.get_executions_by_context(context.id)
    assert executions
    assert all(e.last_known_state in (metadata_store_pb2.Execution.COMPLETE,
                                      metadata_store_pb2.Execution.CACHED)
               for e in executions), run_id
    spans.append((min(e.create_time_since_epoch for e in executions),
                  max(e.last_update_time_since_epoch for e in executions)))
  first, second = sorted(zip(spans, new_runs, strict=True))
  # The second run's first execution began after the first run's last ended.
  assert first[0][1] <= second[0][0], spans
  # ... and it found everything the first one did in the cache.
  states = robustness.executed(run_summary.summarize(run_model.find_run(store, PIPELINE_NAME, second[1])))
  assert all(state == 'cached' for component, state in states.items()
             if not component.endswith('Resolver')), states
  after = robustness.snapshot(outputs).pushed
  # Earlier pushes are byte-identical, and neither re-run pushed again: the
  # cached model is the blessed baseline itself.
  assert after == before.pushed
  assert run_lock.read_holder(str(outputs)) is None
