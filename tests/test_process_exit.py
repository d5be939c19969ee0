"""The local runner's exit: atexit functions run, output is flushed, the code
is kept, and a running non-daemon thread is still joined."""

import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT


def _run(body: str) -> subprocess.CompletedProcess:
  script = textwrap.dedent('''
      import atexit, sys, tempfile, pathlib
      from pipeline.local import process_exit
  ''') + textwrap.dedent(body)
  return subprocess.run([sys.executable, '-c', script], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=60,
                        check=False)


def test_the_code_and_unflushed_output_survive_and_atexit_runs(tmp_path):
  marker = tmp_path / 'cleaned'
  result = _run(f'''
      atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text('x'))
      holder = tempfile.TemporaryDirectory(dir={str(tmp_path)!r})
      sys.stdout.write('no newline, still buffered')
      sys.stderr.write('and on stderr')
      process_exit.exit_process(3)
  ''')
  assert result.returncode == 3, result.stderr
  assert result.stdout == 'no newline, still buffered'
  assert result.stderr == 'and on stderr'
  assert marker.read_text() == 'x'
  # The temporary directory's finalizer ran: nothing left behind.
  assert [p.name for p in tmp_path.iterdir()] == ['cleaned']


def test_a_running_non_daemon_thread_is_joined():
  # The thread finishes only once exit_process has looked at the running
  # threads: it is still running then, whatever the scheduling.
  result = _run('''
      import threading
      looked = threading.Event()
      enumerate_threads = threading.enumerate
      def enumerate_and_tell():
        threads = enumerate_threads()
        looked.set()
        return threads
      process_exit.threading.enumerate = enumerate_and_tell
      def late():
        looked.wait()
        print('thread finished', flush=True)
      threading.Thread(target=late).start()
      process_exit.exit_process(0)
  ''')
  assert result.returncode == 0, result.stderr
  assert result.stdout == 'thread finished\n'
