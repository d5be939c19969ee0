"""Which Beam runners run the pipeline in this process, on this venv.

Beam's default runner (no `--runner`) is the DirectRunner. Its GroupByKey
keeps every element in memory and shuffles nothing, and its workers import
what this venv has: ExampleGen's write skips the useless
Reshuffle there (`pipeline/components/direct_write.py`), and TFX builds no
sdist of itself for workers (`pipeline/orchestration/beam_dependencies.py`).
"""

from typing import Optional
from typing import Sequence

# As Beam matches `--runner` (`runners/runner.create_runner`): any case,
# with or without the 'Runner' suffix ('direct', 'DirectRunner').
_IN_PROCESS = ('directrunner', 'switchingdirectrunner',
               'bundlebaseddirectrunner')


def runner_of(beam_pipeline_args: Sequence[str]) -> Optional[str]:
  """The `--runner` these Beam args name (the last one), or None."""
  runner = None
  args = list(beam_pipeline_args)
  for i, arg in enumerate(args):
    if arg.startswith('--runner='):
      runner = arg.split('=', 1)[1]
    elif arg == '--runner' and i + 1 < len(args):
      runner = args[i + 1]
  return runner


def runs_in_process(beam_pipeline_args: Sequence[str]) -> bool:
  """Whether these Beam args run on the DirectRunner, here."""
  runner = runner_of(beam_pipeline_args)
  if runner is None:
    return True
  name = runner.lower()
  return name in _IN_PROCESS or name + 'runner' in _IN_PROCESS
