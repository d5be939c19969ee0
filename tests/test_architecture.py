"""The import graph keeps the layout's one-way dependencies.

The rules (docs/design.md):
- `models/` never imports `pipeline/`: model code runs on workers and in the
  Trainer without the orchestration code.
- `pipeline.definition` and `pipeline.components` never import the local
  run-time, inspection, cloud, Airflow or flag code, so the one pipeline
  definition compiles for every orchestrator.
- `pipeline.components` never imports `pipeline.definition`: the definition
  wires the components, not the other way round.
- `pipeline.inspection` never imports the local run-time, Airflow or cloud
  code: it reads any store, whoever ran the pipeline. Nor MLflow logging
  (`pipeline.tracking`), which builds on it.
- `pipeline.tracking` never imports the run-times, cloud or flag code: it
  logs a run read back from MLMD, whoever ran it.
- `pipeline.local` and `pipeline.airflow` never import each other: they are
  two ways to run the same definition. What both launch a node with,
  `pipeline.orchestration`, imports neither (nor the definition).
- `serving/` (the REST server, monitor and batch predictions) imports
  `models/` and `pipeline`'s read-only helpers, never a run-time, cloud,
  flag or tracking code; neither `models/` nor `pipeline/` imports it.
- Only `pipeline.airflow` imports Airflow, which creates `AIRFLOW_HOME` and
  configures logging when imported.
- `pipeline.facts`, the shared facts (output layout, store locations,
  component ids, column kinds, SQL URLs), imports nothing else of the
  project, so every layer may import it.
- `pipeline.validation`, the input check, imports no run-time, inspection,
  cloud, flag or tracking code, and nothing that imports TensorFlow, TFX or
  Beam: a bad input is refused before they load.
- Only code that runs inside a Beam job imports Apache Beam: the
  ExampleGens' readers and split write (`pipeline.components`) and the gate
  metrics' combiner, which TFMA runs (`models.metrics`).
- The import graph has no cycle.
- One import alias names one module everywhere in the repository:
  `config_lib` is always `pipeline.definition.config`.

The graph is read from the source with `ast` (nothing is imported), so the
test is fast and also sees imports inside functions.
"""

import ast
import pathlib
from typing import Dict
from typing import Iterator
from typing import List
from typing import Set
from typing import Tuple

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ('models', 'pipeline', 'schema', 'serving')

# (importer prefix, forbidden prefixes)
RULES: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ('models', ('pipeline', 'serving')),
    # The server over pushed models is built on the pipeline, not in it.
    ('pipeline', ('serving',)),
    # serving/ reads models/, pipeline.inspection and pipeline.definition
    # (and the SQL row reader); never a run-time, cloud or flag code.
    ('serving', ('pipeline.local', 'pipeline.cloud', 'pipeline.airflow',
                 'pipeline.flags', 'pipeline.tracking')),
    ('pipeline.definition', ('pipeline.local', 'pipeline.inspection',
                             'pipeline.cloud', 'pipeline.airflow',
                             'pipeline.flags', 'pipeline.tracking',
                             'pipeline.validation')),
    ('pipeline.components', ('pipeline.definition', 'pipeline.local',
                             'pipeline.inspection', 'pipeline.cloud',
                             'pipeline.airflow', 'pipeline.flags',
                             'pipeline.tracking', 'pipeline.validation')),
    ('pipeline.inspection', ('pipeline.local', 'pipeline.cloud',
                             'pipeline.airflow', 'pipeline.flags',
                             'pipeline.tracking', 'pipeline.validation')),
    # MLflow logging reads runs through inspection, whoever runs them.
    ('pipeline.tracking', ('pipeline.local', 'pipeline.cloud',
                           'pipeline.airflow', 'pipeline.flags',
                           'pipeline.validation')),
    # The input check runs before a run, for every runner that checks.
    ('pipeline.validation', ('pipeline.local', 'pipeline.cloud',
                             'pipeline.airflow', 'pipeline.flags',
                             'pipeline.tracking', 'pipeline.inspection',
                             'pipeline.orchestration')),
    # The local and the Airflow run-times are alternatives.
    ('pipeline.local', ('pipeline.airflow',)),
    ('pipeline.airflow', ('pipeline.local',)),
    # What both run-times launch a node with depends on neither.
    ('pipeline.orchestration', ('pipeline.local', 'pipeline.airflow',
                                'pipeline.cloud', 'pipeline.flags',
                                'pipeline.inspection', 'pipeline.tracking',
                                'pipeline.definition', 'pipeline.validation')),
)
# The bottom layer: it may import only itself.
FACTS = 'pipeline.facts'


def _module_name(root: pathlib.Path, path: pathlib.Path) -> str:
  parts = list(path.relative_to(root).with_suffix('').parts)
  if parts[-1] == '__init__':
    parts.pop()
  return '.'.join(parts)


def _from_module(node: ast.ImportFrom, module: str, is_package: bool) -> str:
  """The module a `from ... import` statement names, made absolute."""
  if not node.level:
    return node.module or ''
  base = module.split('.')
  drop = node.level - (1 if is_package else 0)
  base = base[:len(base) - drop] if drop else base
  return '.'.join(base + ([node.module] if node.module else []))


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
  """Every module name an AST imports, relative imports resolved."""
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield alias.name
    elif isinstance(node, ast.ImportFrom):
      prefix = _from_module(node, module, is_package)
      yield prefix
      # `from pipeline import flags` imports the module pipeline.flags.
      for alias in node.names:
        yield f'{prefix}.{alias.name}'


def import_graph(root: pathlib.Path) -> Dict[str, Set[str]]:
  """Module -> the first-party modules it imports, for a source tree."""
  graph: Dict[str, Set[str]] = {}
  for package in PACKAGES:
    for path in sorted((root / package).rglob('*.py')):
      module = _module_name(root, path)
      tree = ast.parse(path.read_text(encoding='utf-8'), str(path))
      graph[module] = {
          name for name in _imports(tree, module, path.name == '__init__.py')
          if name.split('.')[0] in PACKAGES}
  return graph


def _within(module: str, prefix: str) -> bool:
  return module == prefix or module.startswith(prefix + '.')


def violations(graph: Dict[str, Set[str]]) -> List[str]:
  """One line per import that breaks a rule."""
  found = []
  for module, imported in sorted(graph.items()):
    if _within(module, FACTS):
      found += [f'{module} imports {name} ({FACTS} imports nothing else of '
                'the project)' for name in sorted(imported)
                if not _within(name, FACTS)]
    for importer, forbidden in RULES:
      if not _within(module, importer):
        continue
      for name in sorted(imported):
        for prefix in forbidden:
          if _within(name, prefix):
            found.append(f'{module} imports {name} ({importer} must not '
                         f'import {prefix})')
  return found


def test_the_tree_follows_the_import_rules():
  graph = import_graph(REPO_ROOT)
  # The walk really saw the layout (a wrong root would pass vacuously).
  assert 'pipeline.definition.pipeline' in graph
  assert 'pipeline.inspection.run_model' in graph[
      'pipeline.tracking.mlflow_log']
  assert 'pipeline.components.anomaly_gate' in graph['pipeline.definition'
                                                     '.pipeline']
  assert 'pipeline.inspection.run_model' in graph['serving.monitor']
  assert violations(graph) == []


def _tree_with(tmp_path: pathlib.Path, module: str, source: str
               ) -> pathlib.Path:
  """A copy of the packages with one module's source replaced."""
  for package in PACKAGES:
    for path in (REPO_ROOT / package).rglob('*.py'):
      target = tmp_path / path.relative_to(REPO_ROOT)
      target.parent.mkdir(parents=True, exist_ok=True)
      target.write_text(path.read_text(encoding='utf-8'), encoding='utf-8')
  path = tmp_path / (module.replace('.', '/') + '.py')
  path.write_text(path.read_text(encoding='utf-8') + source, encoding='utf-8')
  return tmp_path


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
  """The import cycles: each strongly connected group of modules, sorted.

  An edge to a package is one to its `__init__`, which Python runs first.
  """
  index: Dict[str, int] = {}
  low: Dict[str, int] = {}
  stack: List[str] = []
  found = []
  for start in sorted(graph):
    if start in index:
      continue
    # Tarjan's algorithm, iteratively: (module, its remaining imports).
    work = [(start, iter(sorted(graph[start])))]
    index[start] = low[start] = len(index)
    stack.append(start)
    while work:
      module, imports = work[-1]
      step = next((name for name in imports if name in graph), None)
      if step is not None:
        if step not in index:
          index[step] = low[step] = len(index)
          stack.append(step)
          work.append((step, iter(sorted(graph[step]))))
        elif step in stack:
          low[module] = min(low[module], index[step])
        continue
      work.pop()
      if work:
        low[work[-1][0]] = min(low[work[-1][0]], low[module])
      if low[module] == index[module]:
        group = []
        while True:
          member = stack.pop()
          group.append(member)
          if member == module:
            break
        if len(group) > 1 or module in graph[module]:
          found.append(sorted(group))
  return sorted(found)


def test_the_import_graph_has_no_cycle():
  graph = import_graph(REPO_ROOT)
  assert 'pipeline.validation.driver' in graph
  assert cycles(graph) == []


def test_an_import_cycle_is_found_and_named(tmp_path):
  root = _tree_with(tmp_path, 'pipeline.facts.kinds',
                    '\ndef _late():\n  from pipeline.validation import '
                    'contract\n')
  # contract imports facts.kinds; kinds importing contract closes a cycle.
  assert ['pipeline.facts.kinds', 'pipeline.validation.contract'] in cycles(
      import_graph(root))


def test_the_facts_layer_imports_nothing_else_of_the_project(tmp_path):
  graph = import_graph(REPO_ROOT)
  assert 'pipeline.facts.kinds' in graph['pipeline.validation.contract']
  root = _tree_with(tmp_path, 'pipeline.facts.kinds',
                    '\nfrom models import features\n')
  assert violations(import_graph(root)) == [
      'pipeline.facts.kinds imports models (pipeline.facts imports nothing '
      'else of the project)',
      'pipeline.facts.kinds imports models.features (pipeline.facts imports '
      'nothing else of the project)']


# What the input check, and every first-party module it imports, may not
# import: a refused input costs a fraction of a second, not their import.
HEAVY_MODULES = ('tensorflow', 'tfx', 'tensorflow_transform',
                 'tensorflow_data_validation', 'tensorflow_model_analysis',
                 'tfx_bsl', 'apache_beam', 'keras', 'tf_keras')
LIGHT = ('pipeline.validation',)


def heavy_imports(root: pathlib.Path) -> List[str]:
  """'module imports name' for each heavy import reachable from LIGHT."""
  graph = import_graph(root)
  reached = {m for m in graph if any(_within(m, p) for p in LIGHT)}
  todo = sorted(reached)
  while todo:
    for name in graph.get(todo.pop(), ()):
      if name in graph and name not in reached:
        reached.add(name)
        todo.append(name)
  found = []
  for module in sorted(reached):
    path = root / (module.replace('.', '/') + '.py')
    if not path.is_file():
      path = root / module.replace('.', '/') / '__init__.py'
    tree = ast.parse(path.read_text(encoding='utf-8'), str(path))
    found += [f'{module} imports {name}' for name in sorted(set(_imports(
        tree, module, path.name == '__init__.py')))
              if any(_within(name, heavy) for heavy in HEAVY_MODULES)]
  return found


def test_the_input_check_imports_no_tensorflow_tfx_or_beam(tmp_path):
  assert heavy_imports(REPO_ROOT) == []
  root = _tree_with(tmp_path, 'pipeline.definition.input_formats',
                    '\ndef _late():\n  import tensorflow as tf\n')
  assert heavy_imports(root) == [
      'pipeline.definition.input_formats imports tensorflow']


def test_a_forbidden_import_is_caught(tmp_path):
  root = _tree_with(tmp_path, 'pipeline.definition.pipeline',
                    '\nfrom pipeline.local import dag\n')
  assert violations(import_graph(root)) == [
      'pipeline.definition.pipeline imports pipeline.local (pipeline.'
      'definition must not import pipeline.local)',
      'pipeline.definition.pipeline imports pipeline.local.dag (pipeline.'
      'definition must not import pipeline.local)']


def test_the_pipeline_never_imports_serving(tmp_path):
  root = _tree_with(tmp_path, 'models.train',
                    '\ndef _late():\n  from serving import app\n')
  assert 'models.train imports serving (models must not import serving)' in (
      violations(import_graph(root)))
  root = _tree_with(tmp_path / 'local', 'serving.batch',
                    '\nfrom pipeline.local import run_lock\n')
  assert ('serving.batch imports pipeline.local (serving must not import '
          'pipeline.local)') in violations(import_graph(root))


def test_imports_inside_functions_and_relative_ones_are_caught(tmp_path):
  root = _tree_with(tmp_path, 'models.train',
                    '\ndef _late():\n  from pipeline import flags\n')
  assert any(line.startswith('models.train imports pipeline.flags')
             for line in violations(import_graph(root)))
  root = _tree_with(tmp_path / 'rel', 'pipeline.components.drift_gate',
                    '\nfrom ..inspection import summary\n')
  assert any('pipeline.components.drift_gate imports pipeline.inspection'
             in line for line in violations(import_graph(root)))


# `tfx.v1` imports all of TFX's extensions, Google Cloud AI Platform's
# client among them: about 7 s of every local run's start on two cores.
# Only the cloud code (the Kubeflow V2 runner) may import it.
TFX_V1 = 'tfx.v1'
TFX_V1_ALLOWED = ('pipeline.cloud',)


def importers(root: pathlib.Path, imported: Tuple[str, ...],
              allowed: Tuple[str, ...]) -> List[str]:
  """The first-party modules outside `allowed` that import `imported`."""
  found = []
  for package in PACKAGES:
    for path in sorted((root / package).rglob('*.py')):
      module = _module_name(root, path)
      if any(_within(module, prefix) for prefix in allowed):
        continue
      tree = ast.parse(path.read_text(encoding='utf-8'), str(path))
      if any(_within(name, prefix)
             for name in _imports(tree, module, path.name == '__init__.py')
             for prefix in imported):
        found.append(module)
  return found


def tfx_v1_importers(root: pathlib.Path) -> List[str]:
  """The first-party modules outside TFX_V1_ALLOWED that import tfx.v1."""
  return importers(root, (TFX_V1,), TFX_V1_ALLOWED)


def test_local_code_does_not_import_tfx_v1(tmp_path):
  assert tfx_v1_importers(REPO_ROOT) == []
  root = _tree_with(tmp_path, 'pipeline.definition.pipeline',
                    '\nfrom tfx import v1 as tfx\n')
  assert tfx_v1_importers(root) == ['pipeline.definition.pipeline']


# Importing Airflow creates AIRFLOW_HOME (~/airflow by default) and replaces
# the logging configuration of the process; TFX's Airflow runner imports it.
AIRFLOW_MODULES = ('airflow', 'tfx.orchestration.airflow')
AIRFLOW_ALLOWED = ('pipeline.airflow',)


def airflow_importers(root: pathlib.Path) -> List[str]:
  """The first-party modules outside AIRFLOW_ALLOWED that import Airflow."""
  return importers(root, AIRFLOW_MODULES, AIRFLOW_ALLOWED)


def test_only_the_airflow_package_imports_airflow(tmp_path):
  assert airflow_importers(REPO_ROOT) == []
  graph = import_graph(REPO_ROOT)
  assert 'pipeline.orchestration.nodes' in graph['pipeline.airflow.launcher']
  root = _tree_with(tmp_path, 'pipeline.local.dag',
                    '\nfrom tfx.orchestration.airflow import '
                    'airflow_dag_runner\n')
  assert airflow_importers(root) == ['pipeline.local.dag']


# Apache Beam is imported only by code that runs inside a Beam job: the
# custom ExampleGens' read transforms and split write, and the gate metrics'
# CombineFn, which TFMA's Evaluator runs. Everything else reaches Beam
# through TFX's components and the Beam pipeline args, so a move to another
# Beam release touches these modules only (docs/design.md#stack-versions).
BEAM = 'apache_beam'
BEAM_ALLOWED = ('pipeline.components', 'models.metrics')


def test_only_code_inside_a_beam_job_imports_beam(tmp_path):
  assert importers(REPO_ROOT, (BEAM,), ()) == [
      'models.metrics', 'pipeline.components.arrow_csv_example_gen',
      'pipeline.components.direct_write',
      'pipeline.components.record_example_gen',
      'pipeline.components.span_range', 'pipeline.components.sql_example_gen']
  assert importers(REPO_ROOT, (BEAM,), BEAM_ALLOWED) == []
  root = _tree_with(tmp_path, 'models.train',
                    '\ndef _late():\n  import apache_beam as beam\n')
  assert importers(root, (BEAM,), BEAM_ALLOWED) == ['models.train']


# Where the repository's Python lives: the packages, the scripts, the
# benches and the tests (not .venv, build outputs or run outputs).
SOURCE_FOLDERS = PACKAGES + ('bench', 'runners', 'tests')


def _sources(root: pathlib.Path) -> Iterator[pathlib.Path]:
  yield from sorted(root.glob('*.py'))
  for folder in SOURCE_FOLDERS:
    yield from sorted((root / folder).rglob('*.py'))


def aliases(root: pathlib.Path) -> Dict[str, Dict[str, Set[str]]]:
  """alias -> {what it names -> the files that bind it}, for every `as`.

  What `import a.b as y` names is `a.b`; what `from a import b as y` names
  is `a.b`, a module or a name in one, relative imports resolved.
  """
  found: Dict[str, Dict[str, Set[str]]] = {}
  for path in _sources(root):
    module = _module_name(root, path)
    file = str(path.relative_to(root))
    tree = ast.parse(path.read_text(encoding='utf-8'), str(path))
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        named = [(alias.asname, alias.name) for alias in node.names]
      elif isinstance(node, ast.ImportFrom):
        prefix = _from_module(node, module, path.name == '__init__.py')
        named = [(alias.asname, f'{prefix}.{alias.name}')
                 for alias in node.names]
      else:
        continue
      for alias, name in named:
        if alias:
          found.setdefault(alias, {}).setdefault(name, set()).add(file)
  return found


def alias_clashes(root: pathlib.Path) -> List[str]:
  """One line per alias that names more than one module."""
  return [f'`{alias}` names ' + ' and '.join(
      f'{name} ({", ".join(sorted(files))})'
      for name, files in sorted(names.items()))
          for alias, names in sorted(aliases(root).items())
          if len(names) > 1]


def test_one_alias_names_one_module_everywhere(tmp_path):
  found = aliases(REPO_ROOT)
  # The scan saw the packages and the tests (a wrong root passes vacuously).
  assert found['config_lib'].keys() == {'pipeline.definition.config'}
  assert 'tests/test_gate.py' in found['config_lib'][
      'pipeline.definition.config']
  assert found['model_config_lib'].keys() == {'models.model_config'}
  assert found['model_lib'].keys() == {'models.model'}
  assert alias_clashes(REPO_ROOT) == []
  for path, source in (
      ('pipeline/flags.py', 'from pipeline.definition import config as '
       'config_lib\n'),
      ('tests/test_x.py', 'from models import model_config as config_lib\n'),
      ('models/__init__.py', ''),
      ('models/tuning.py', 'from . import model_config as config_lib\n')):
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text(source, encoding='utf-8')
  assert alias_clashes(tmp_path) == [
      '`config_lib` names models.model_config (models/tuning.py, '
      'tests/test_x.py) and pipeline.definition.config (pipeline/flags.py)']
