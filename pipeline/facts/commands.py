"""The commands users run, as installed console scripts and as modules.

pyproject.toml's [project.scripts] installs one console script per command
(tests/test_packaging.py checks that the two agree); each runs the same
main() as its module form, which keeps working without the install.
"""

from __future__ import annotations

import os
import sys
from typing import Mapping
from typing import Optional

# Console script -> the module form that runs the same main().
COMMANDS: Mapping[str, str] = {
    'tabular-run': 'python runners/local_runner.py',
    'tabular-serve': 'python -m serving',
    'tabular-monitor': 'python -m serving.monitor',
    'tabular-batch': 'python -m serving.batch',
    'tabular-inspect': 'python -m pipeline.inspection',
    'tabular-serving-admin': 'python -m serving.admin',
}


def prog(module_form: str, argv0: Optional[str] = None) -> str:
  """The name a command's usage line shows: the one it was started by.

  Args:
    module_form: How the command runs without the install, e.g.
      'python -m serving.batch'.
    argv0: The program path (default: sys.argv[0], read when a main()
      builds its parser).

  Returns:
    The console script's name when the process was started as the one for
    `module_form`, else `module_form`.
  """
  name = os.path.basename(sys.argv[0] if argv0 is None else argv0)
  return name if COMMANDS.get(name) == module_form else module_form
