"""This project as the cloud sees it: built from setup.py, installed elsewhere.

Dataflow workers get the project from the sdist that `--setup_file` builds;
the pipeline image installs it into /opt/pipeline. Tests that must not be
fooled by the development checkout (which `pip install -e .` puts on every
path of the venv) use `install()`: it builds the sdist, installs it with
`--no-deps` into a target folder, and gives a fresh virtualenv that sees the
pinned dependencies but neither the checkout nor its editable-install hook.
The session fixtures `sdist` and `installed_sdist` (tests/conftest.py) build
and install it once for all the tests that need it; `without()` gives a
broken copy of an install, sharing its venv.
"""

import dataclasses
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
from typing import Dict
from typing import Sequence

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class InstalledPackage:
  """A fresh venv plus the package installed into `package_dir`.

  Attributes:
    venv: The virtualenv; its python has the pinned dependencies only.
    package_dir: Where the sdist was installed (what PYTHONPATH points at),
      like /opt/pipeline in the image.
  """
  venv: pathlib.Path
  package_dir: pathlib.Path

  @property
  def python(self) -> pathlib.Path:
    return self.venv / 'bin' / 'python'

  def environ(self) -> Dict[str, str]:
    """Environment for processes that must see only the installed package.

    `python` on PATH is the venv's, because Beam's worker pool starts its
    workers as plain `python`. TF_USE_LEGACY_KERAS is set as the image does.
    """
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV')}
    env.update(PYTHONPATH=str(self.package_dir), PYTHONNOUSERSITE='1',
               PATH=f'{self.venv / "bin"}{os.pathsep}{env.get("PATH", "")}',
               TF_USE_LEGACY_KERAS='1', TF_CPP_MIN_LOG_LEVEL='2',
               PYTHONWARNINGS='ignore')
    return env


def _check_call(cmd: Sequence[str], **kwargs) -> None:
  result = subprocess.run([str(c) for c in cmd], capture_output=True,
                          text=True, check=False, **kwargs)
  if result.returncode:
    raise AssertionError(f'{" ".join(map(str, cmd))} exited '
                         f'{result.returncode}:\n{result.stdout[-3000:]}\n'
                         f'{result.stderr[-3000:]}')


def build_sdist(out_dir: pathlib.Path) -> pathlib.Path:
  """Builds the sdist from setup.py, as Dataflow's stager does."""
  # --no-isolation: build with the venv's pinned setuptools, no download.
  _check_call([sys.executable, '-m', 'build', '--sdist', '--no-isolation',
               '--outdir', out_dir, REPO_ROOT])
  (sdist,) = out_dir.glob('*.tar.gz')
  return sdist


def install(sdist: pathlib.Path, root: pathlib.Path) -> InstalledPackage:
  """Installs `sdist` with --no-deps into `root`/package, next to a new venv.

  Args:
    sdist: From `build_sdist`.
    root: Empty folder to create everything in.
  """
  venv = root / 'venv'
  _check_call([sys.executable, '-m', 'venv', '--without-pip', venv])
  purelib = pathlib.Path(subprocess.run(
      [str(venv / 'bin' / 'python'), '-c',
       'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
      capture_output=True, text=True, check=True).stdout.strip())
  # A plain path line: the pinned packages become importable, but the .pth
  # files in that folder (among them the editable-install hook that maps
  # `models` and `pipeline` to this checkout) are not executed.
  (purelib / 'pinned_deps.pth').write_text(
      sysconfig.get_paths()['purelib'] + '\n')
  package_dir = root / 'package'
  _check_call([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
               '--no-index', '--no-build-isolation', '--target', package_dir,
               sdist])
  return InstalledPackage(venv=venv, package_dir=package_dir)


def without(package: InstalledPackage, files: Sequence[str],
            root: pathlib.Path) -> InstalledPackage:
  """A copy of an install that lacks `files`, to simulate a packaging bug.

  Args:
    package: From `install`; left as it is.
    files: Paths relative to the package (e.g. 'models/preprocessing.py').
    root: Empty folder for the copy; the venv is shared with `package`.
  """
  package_dir = root / 'package'
  shutil.copytree(package.package_dir, package_dir)
  for relative in files:
    (package_dir / relative).unlink()
  return InstalledPackage(venv=package.venv, package_dir=package_dir)
