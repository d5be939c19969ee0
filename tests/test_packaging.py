"""Packaging: the installed commands, the two locks, the declared imports.

- pyproject.toml's [project] is what the venv has installed: its
  Requires-Python, and one console script per command of
  `pipeline/facts/commands.py`, each running its module form's main().
- Each script's `--help`, started from the venv's bin/ as a user would,
  names the script and imports no TensorFlow (the runners' rule, design.md).
- requirements.lock (the runtime, which the pipeline image installs) is
  inside requirements-dev.lock (what the venv installs) at the same
  versions; the tools never reach the runtime lock; both hold exact pins.
- Every third-party module that the code imports comes from a package that
  requirements.in names (requirements-dev.in too, for tests/ and bench/), so
  none arrives only because another package happens to bring it.
- The sdist that Dataflow workers install ships every data file of the
  packages, the console scripts, and not the tests.
Nothing here installs anything: the venv is `make venv`'s.
"""

import ast
import csv
import functools
import importlib
import importlib.metadata
import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import sysconfig
import tarfile
from typing import Dict
from typing import Iterator
from typing import List
from typing import Optional
from typing import Set
from typing import Tuple

from packaging import requirements as requirements_lib
import pytest
import tomli  # The standard library's tomllib from Python 3.11 on.

from pipeline.facts import commands
from pipeline.local import command as run_command
from pipeline.validation import problems as input_problems
from tests.conftest import REPO_ROOT
from tests.conftest import load_runner

PYPROJECT = tomli.loads((REPO_ROOT / 'pyproject.toml').read_text())
DISTRIBUTION = PYPROJECT['project']['name']
SCRIPTS: Dict[str, str] = PYPROJECT['project']['scripts']
RUNTIME_IN = REPO_ROOT / 'requirements.in'
DEV_IN = REPO_ROOT / 'requirements-dev.in'
RUNTIME_LOCK = REPO_ROOT / 'requirements.lock'
DEV_LOCK = REPO_ROOT / 'requirements-dev.lock'
# Development tools, and what only they bring: never in the runtime lock.
# (JupyterLab and the notebook server stay in it: TFMA's widgets declare
# them, through ipywidgets 7 -> widgetsnbextension -> notebook.)
TOOLS = ('pytest', 'pytest-timeout', 'iniconfig', 'ruff', 'build',
         'pyproject-hooks', 'uv')
STALE = 'the venv is older than pyproject.toml: run `make venv`'


def _canonical(name: str) -> str:
  return re.sub(r'[-_.]+', '-', name).lower()


# --- The installed package and its commands. -------------------------------


def test_the_venv_has_pyprojects_metadata_installed():
  metadata = importlib.metadata.metadata(DISTRIBUTION)
  specifiers = {s.strip() for s in metadata['Requires-Python'].split(',')}
  assert specifiers == {'>=3.10', '<3.11'}, STALE
  assert sys.version_info[:2] == (3, 10)
  installed = {ep.name: ep.value for ep in
               importlib.metadata.distribution(DISTRIBUTION).entry_points
               if ep.group == 'console_scripts'}
  assert installed == SCRIPTS, STALE
  assert set(SCRIPTS) == set(commands.COMMANDS)
  # The dependencies are the locks' business (pyproject.toml says why).
  assert not importlib.metadata.requires(DISTRIBUTION)


def _module_form_target(module_form: str) -> Tuple[str, str]:
  """'python -m X' or 'python runners/F.py' -> (module, function) it calls."""
  if module_form.startswith('python runners/'):
    return run_command.__name__, 'main'
  module = module_form.removeprefix('python -m ')
  spec = importlib.util.find_spec(module)
  if not spec.submodule_search_locations:
    return module, 'main'
  # A package: its __main__.py ends with `sys.exit(<imported>.main())`.
  tree = ast.parse(pathlib.Path(
      spec.submodule_search_locations[0], '__main__.py').read_text())
  imported = {alias.asname or alias.name: f'{node.module}.{alias.name}'
              for node in tree.body if isinstance(node, ast.ImportFrom)
              for alias in node.names}
  call = tree.body[-1].value.args[0]
  return imported[call.func.value.id], call.func.attr


@pytest.mark.parametrize('script', sorted(commands.COMMANDS))
def test_each_script_runs_its_module_forms_main(script):
  module, _, attr = SCRIPTS[script].partition(':')
  target = getattr(importlib.import_module(module), attr)
  assert callable(target)
  expected_module, expected_attr = _module_form_target(
      commands.COMMANDS[script])
  expected = getattr(importlib.import_module(expected_module), expected_attr)
  if script == 'tabular-run':
    # main() plus the runner's fast exit, as runners/local_runner.py does.
    assert target is run_command.run_and_exit
    assert load_runner('local_runner').main is expected
  else:
    assert target is expected


def _bin() -> pathlib.Path:
  return pathlib.Path(sysconfig.get_path('scripts'))


def _imported(stderr: str) -> Set[str]:
  """Modules named by importtime lines ('import time: 1 | 2 | name')."""
  return {line.rsplit('|', 1)[1].strip() for line in stderr.splitlines()
          if line.startswith('import time:') and line.count('|') == 2}


def _run_script(script: str, args: List[str], cwd: pathlib.Path,
                **env: str) -> subprocess.CompletedProcess:
  path = _bin() / script
  assert path.is_file(), f'{path} is missing: {STALE}'
  return subprocess.run([str(path), *args], capture_output=True, text=True,
                        timeout=300, cwd=str(cwd),
                        env={**os.environ, **env})


@pytest.mark.parametrize('script', sorted(commands.COMMANDS))
def test_each_scripts_help_names_it_without_importing_tensorflow(script,
                                                                 tmp_path):
  result = _run_script(script, ['--help'], tmp_path,
                       PYTHONPROFILEIMPORTTIME='1')
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.startswith(f'usage: {script} '), result.stdout[:300]
  imported = _imported(result.stderr)
  assert 'argparse' in imported, 'no import time lines were read'
  assert 'tensorflow' not in imported


def test_the_module_forms_keep_their_names(tmp_path):
  assert commands.prog('python -m serving.batch', '/x/bin/tabular-batch') == (
      'tabular-batch')
  # Another script, or the module itself: the module form.
  assert commands.prog('python -m serving.batch', '/x/bin/tabular-serve') == (
      'python -m serving.batch')
  assert commands.prog('python -m serving.batch', '/r/serving/batch.py') == (
      'python -m serving.batch')
  result = subprocess.run(
      [sys.executable, '-m', 'serving.batch', '--help'], capture_output=True,
      text=True, timeout=300, cwd=str(tmp_path))
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.startswith('usage: python -m serving.batch ')


def test_tabular_run_refuses_bad_input_with_the_runners_exit_code(tmp_path):
  result = _run_script(
      'tabular-run', ['--data-root', str(tmp_path / 'no_such_folder'),
                      '--output-dir', str(tmp_path / 'out')], tmp_path)
  assert result.returncode == input_problems.EXIT_CODE, result.stderr[-3000:]
  lines = [line for line in result.stderr.splitlines()
           if line.startswith('RUN FAILED:')]
  assert len(lines) == 1, result.stderr[-3000:]
  assert lines[0].startswith('RUN FAILED: bad input, nothing was run: ')
  assert 'no_such_folder: data folder does not exist' in lines[0]
  assert not (tmp_path / 'out' / 'metadata.sqlite').exists()


# --- The locks. -----------------------------------------------------------


def _pins(lock: pathlib.Path) -> Dict[str, str]:
  """Canonical name -> version; every requirement line must be `==`."""
  pins = {}
  for number, line in enumerate(lock.read_text().splitlines(), 1):
    if not line.strip() or line.lstrip().startswith('#'):
      continue
    match = re.fullmatch(r'([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)', line)
    assert match, f'{lock.name}:{number}: not an exact pin: {line!r}'
    pins[_canonical(match.group(1))] = match.group(2)
  return pins


def _requirements(in_file: pathlib.Path
                  ) -> Iterator[Tuple[requirements_lib.Requirement, str]]:
  """The requirements an .in file names (following -r), with their file."""
  for line in in_file.read_text().splitlines():
    line = line.split('#', 1)[0].strip()
    if not line or line.startswith('-c '):
      continue  # Constraints pin versions; they declare nothing.
    if line.startswith('-r '):
      yield from _requirements(in_file.parent / line[3:].strip())
      continue
    yield requirements_lib.Requirement(line), in_file.name


def test_the_runtime_lock_is_inside_the_dev_lock_at_the_same_versions():
  runtime, dev = _pins(RUNTIME_LOCK), _pins(DEV_LOCK)
  assert len(runtime) > 300
  moved = {name: (version, dev.get(name)) for name, version in runtime.items()
           if dev.get(name) != version}
  assert not moved, f'requirements.lock -> requirements-dev.lock: {moved}'
  assert 'tfx' in runtime and 'tensorflow' in runtime


def test_no_tool_is_in_the_runtime_lock():
  runtime, dev = _pins(RUNTIME_LOCK), _pins(DEV_LOCK)
  assert set(TOOLS) <= set(dev)
  assert not set(TOOLS) & set(runtime)
  declared_runtime = {_canonical(r.name) for r, _ in _requirements(RUNTIME_IN)}
  assert not set(TOOLS) & declared_runtime


def test_each_lock_resolves_its_in_file():
  """A requirement added to an .in file without `make lock` fails here."""
  for in_file, lock in ((RUNTIME_IN, RUNTIME_LOCK), (DEV_IN, DEV_LOCK)):
    pins = _pins(lock)
    for requirement, source in _requirements(in_file):
      if requirement.marker and not requirement.marker.evaluate():
        continue
      name = _canonical(requirement.name)
      assert name in pins, f'{source}: {requirement} is not in {lock.name}'
      assert requirement.specifier.contains(pins[name], prereleases=True), (
          f'{source}: {requirement}, but {lock.name} has {pins[name]}')
  dev_in = DEV_IN.read_text().splitlines()
  assert '-r requirements.in' in dev_in and '-c requirements.lock' in dev_in


def test_the_installers_uv_is_the_locked_one():
  version = re.search(r'^UV_VERSION := (\S+)$',
                      (REPO_ROOT / 'Makefile').read_text(), re.M).group(1)
  assert _pins(DEV_LOCK)['uv'] == version


def _instructions(text: str) -> str:
  """A Makefile or Dockerfile without comments, continued lines joined."""
  lines = [line for line in text.splitlines()
           if not line.lstrip().startswith('#')]
  return re.sub(r'\\\n', ' ', '\n'.join(lines))


def test_the_image_installs_the_runtime_lock_and_the_venv_the_dev_lock():
  dockerfile = _instructions((REPO_ROOT / 'Dockerfile').read_text())
  assert re.findall(r'-r (\S+)', dockerfile) == ['/tmp/build/requirements.lock']
  assert 'requirements-dev' not in dockerfile
  ignored = {line.strip() for line in
             (REPO_ROOT / '.dockerignore').read_text().splitlines()
             if line.strip() and not line.startswith('#')}
  # What the package build reads must reach the build context.
  assert not {'pyproject.toml', 'setup.py', 'README.md', 'MANIFEST.in',
              'requirements.lock', 'serving'} & ignored
  assert {'requirements-dev.in', 'requirements-dev.lock'} <= ignored
  makefile = _instructions((REPO_ROOT / 'Makefile').read_text())
  stamp = re.search(r'^\$\(STAMP\):(.*)$', makefile, re.M).group(1).split()
  assert set(stamp) == {'requirements.lock', 'requirements-dev.lock',
                        'pyproject.toml', 'setup.py'}
  assert re.search(r'pip sync .*requirements-dev\.lock$', makefile, re.M)


# --- Every imported package is declared. ------------------------------------

# Distributions that ship modules under the import name of a package the
# project declares (tfx.dsl, mlflow, kfp.pipeline_spec), which pins them
# exactly: the import comes with the declared package.
SHIPPED_BY = {'ml-pipelines-sdk': 'tfx', 'mlflow-skinny': 'mlflow',
              'kfp-pipeline-spec': 'kfp'}
RUNTIME_CODE = ('pipeline', 'models', 'serving', 'runners', 'schema')
DEV_CODE = ('tests', 'bench')


@functools.lru_cache(maxsize=None)
def _module_owners() -> Dict[str, Set[str]]:
  """Dotted module name -> the installed distributions whose files hold it.

  Read from each distribution's RECORD, so namespace packages (google.*)
  resolve to the distribution of the actual module. Python 3.10's
  importlib.metadata.packages_distributions reads only top_level.txt, which
  most wheels no longer have.
  """
  owners: Dict[str, Set[str]] = {}
  for dist in importlib.metadata.distributions():
    name = _canonical(dist.metadata['Name'])
    for row in csv.reader((dist.read_text('RECORD') or '').splitlines()):
      parts = row[0].split('/') if row else ['..']
      if parts[0] == '..':
        continue  # Outside site-packages: scripts, data.
      stem, _, suffix = parts[-1].partition('.')
      if suffix not in ('py', 'pyi', 'so') and not suffix.endswith('.so'):
        continue
      module = parts[:-1] + ([] if stem == '__init__' else [stem])
      owners.setdefault('.'.join(module), set()).add(name)
  return owners


def _owners(candidates: List[str]) -> Optional[Set[str]]:
  """The distributions of the first candidate (or a parent) that is known."""
  for name in candidates:
    parts = name.split('.')
    for end in range(len(parts), 0, -1):
      found = _module_owners().get('.'.join(parts[:end]))
      if found:
        return found
  return None


def _first_party() -> Set[str]:
  return {p.name for p in REPO_ROOT.iterdir()
          if p.is_dir() and (any(p.glob('*.py')) or p.name == 'schema')}


def _third_party_imports(folders) -> Iterator[Tuple[str, List[str], str]]:
  """(file:line, candidate module names, shown name) per third-party import."""
  skip = _first_party() | set(sys.stdlib_module_names)
  for folder in folders:
    for path in sorted((REPO_ROOT / folder).rglob('*.py')):
      where = path.relative_to(REPO_ROOT)
      for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
          found = [([a.name], a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
          # `from google.cloud import aiplatform` may import a submodule.
          found = [([f'{node.module}.{a.name}', node.module], node.module)
                   for a in node.names]
        else:
          continue
        for candidates, shown in found:
          if shown.split('.')[0] not in skip:
            yield f'{where}:{node.lineno}', candidates, shown


def _declared(in_file: pathlib.Path) -> Set[str]:
  declared = {_canonical(r.name) for r, _ in _requirements(in_file)}
  return declared | {shipped for shipped, by in SHIPPED_BY.items()
                     if by in declared}


@pytest.mark.parametrize('folders, in_file', [
    (RUNTIME_CODE, RUNTIME_IN), (DEV_CODE, DEV_IN)], ids=['runtime', 'dev'])
def test_every_third_party_import_is_declared(folders, in_file):
  declared = _declared(in_file)
  problems = []
  seen = 0
  for where, candidates, shown in _third_party_imports(folders):
    seen += 1
    owners = _owners(candidates)
    if owners is None:
      problems.append(f'{where}: `{shown}` is not installed by any package')
    elif not owners & declared:
      problems.append(
          f'{where}: `{shown}` comes from {" or ".join(sorted(owners))}, '
          f'which {in_file.name} does not name: add it there, then run '
          '`make lock`')
  assert seen > 50, 'the scan found almost no imports'
  assert not problems, '\n'.join(problems)


def test_an_undeclared_import_is_named(tmp_path, monkeypatch):
  """The scan has teeth: a module of a package only others bring fails."""
  (tmp_path / 'pkg').mkdir()
  (tmp_path / 'pkg' / 'mod.py').write_text(
      'import json\nfrom pkg import other\nimport wurlitzer\n'
      'from google.protobuf import text_format\n')
  monkeypatch.setattr(sys.modules[__name__], 'REPO_ROOT', tmp_path)
  found = list(_third_party_imports(['pkg']))
  assert [(w, s) for w, _, s in found] == [
      ('pkg/mod.py:3', 'wurlitzer'), ('pkg/mod.py:4', 'google.protobuf')]
  assert _owners(found[0][1]) == {'wurlitzer'}  # Only TF-DF brings it.
  assert _owners(found[1][1]) == {'protobuf'}
  assert 'wurlitzer' not in _declared(RUNTIME_IN)
  assert _owners(['no_such_module_anywhere']) is None


def test_what_ships_a_declared_package_is_pinned_by_it():
  for shipped, by in SHIPPED_BY.items():
    pinned = [requirements_lib.Requirement(r)
              for r in importlib.metadata.requires(by) or ()]
    (requirement,) = [r for r in pinned if _canonical(r.name) == shipped]
    assert str(requirement.specifier) == (
        f'=={importlib.metadata.version(shipped)}'), (by, requirement)


# --- The sdist that Dataflow workers install. ------------------------------


def test_the_sdist_ships_the_data_files_and_scripts_not_the_tests(
    sdist, installed_sdist):
  with tarfile.open(sdist) as archive:
    members = {pathlib.PurePosixPath(m).parts[1:] for m in archive.getnames()}
  assert ('setup.py',) in members and ('pyproject.toml',) in members
  assert not [m for m in members if m and m[0] == 'tests']
  data = [path.relative_to(REPO_ROOT)
          for package in ('pipeline', 'models', 'schema', 'serving')
          for path in (REPO_ROOT / package).rglob('*')
          if path.is_file() and path.suffix not in ('.py', '.pyc')
          and '__pycache__' not in path.parts]
  assert pathlib.Path('serving/monitoring/alerts.yml') in data
  missing = [str(p) for p in data
             if not (installed_sdist.package_dir / p).is_file()]
  assert not missing, f'not in the installed sdist: {missing}'
  scripts = {p.name for p in (installed_sdist.package_dir / 'bin').iterdir()}
  assert set(SCRIPTS) <= scripts
