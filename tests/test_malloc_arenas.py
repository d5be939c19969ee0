"""The run's cap on glibc malloc arenas (pipeline/local/malloc_arenas.py)."""

import subprocess
import sys

from pipeline.local import malloc_arenas

# Runs in a fresh interpreter: the cap is process-wide and lasts.
_PROBE = ('import sys\n'
          'from pipeline.local import malloc_arenas\n'
          'sys.stdout.write(str(malloc_arenas.limit()))\n')


def _limit_in_a_fresh_process(env_value=None) -> str:
  env = {'PATH': '/usr/bin:/bin'}
  if env_value is not None:
    env[malloc_arenas.ENV] = env_value
  return subprocess.run([sys.executable, '-c', _PROBE], env=env, check=True,
                        capture_output=True, text=True).stdout


def test_glibc_takes_the_cap():
  # These machines and CI run Linux with glibc, whose mallopt accepts it.
  assert sys.platform.startswith('linux')
  assert _limit_in_a_fresh_process() == 'True'


def test_a_users_malloc_arena_max_wins():
  assert _limit_in_a_fresh_process('8') == 'False'

