"""The runners as a user starts them: scripts, in their own process.

Everything else about the runners is tested through their main() in the
test process (cheaper). These tests keep what only a real process shows:
the exit code the shell sees, and which modules the script imports. Help
and refused input must not import TensorFlow: that import alone takes
longer than everything else the runner does before the pipeline starts.
"""

import ast
import pathlib
import subprocess
import sys
from typing import List
from typing import Set

from pipeline.validation import problems as input_problems
from tests import robustness
from tests.conftest import LOCAL_RUNNER
from tests.conftest import REPO_ROOT


def _run_with_importtime(args: List[str], cwd: pathlib.Path
                         ) -> subprocess.CompletedProcess:
  return subprocess.run(
      [sys.executable, '-X', 'importtime', str(LOCAL_RUNNER), *args],
      capture_output=True, text=True, timeout=300, cwd=str(cwd))


def _imported(stderr: str) -> Set[str]:
  """Modules named by `-X importtime` lines ('import time: 1 | 2 | name')."""
  return {line.rsplit('|', 1)[1].strip() for line in stderr.splitlines()
          if line.startswith('import time:') and line.count('|') == 2}


def test_help_exits_0_without_importing_tensorflow(tmp_path):
  result = _run_with_importtime(['--help'], tmp_path)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'usage: local_runner.py' in result.stdout
  assert '--output-dir' in result.stdout
  imported = _imported(result.stderr)
  assert 'argparse' in imported, 'no -X importtime lines were read'
  assert 'tensorflow' not in imported


def test_refused_input_exits_3_with_one_line_without_tensorflow(tmp_path):
  missing = tmp_path / 'no_such_folder'
  result = _run_with_importtime(
      ['--data-root', str(missing), '--output-dir', str(tmp_path / 'out')],
      REPO_ROOT)
  assert result.returncode == input_problems.EXIT_CODE, result.stderr[-3000:]
  line = robustness.failure_line(result)
  assert line.startswith('RUN FAILED: bad input, nothing was run: ')
  assert 'no_such_folder: data folder does not exist' in line
  imported = _imported(result.stderr)
  assert 'pipeline.validation.driver' in imported
  assert 'tensorflow' not in imported
  assert not (tmp_path / 'out' / 'metadata.sqlite').exists()


def test_every_runner_script_exits_with_mains_code():
  """`if __name__ == '__main__': sys.exit(main())`, so the shell sees it;
  the local runner's exit skips the interpreter's teardown
  (tests/test_process_exit.py), with the same code.

  Checked in the source, for the runners only tested through main().
  """
  runners = sorted((REPO_ROOT / 'runners').glob('*_runner.py'))
  assert len(runners) >= 3
  for path in runners:
    entry = ast.parse(path.read_text()).body[-1]
    assert isinstance(entry, ast.If), path.name
    assert ast.unparse(entry.test) == "__name__ == '__main__'", path.name
    expected = ('process_exit.exit_process(main())'
                if path.name == 'local_runner.py' else 'sys.exit(main())')
    assert [ast.unparse(s) for s in entry.body] == [expected], path.name
