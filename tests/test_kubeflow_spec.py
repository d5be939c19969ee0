"""Structural golden test of the Kubeflow V2 / Vertex spec, and of the image.

The compiled PipelineJob JSON is everything Vertex will know about the
pipeline, so these tests read it the way Vertex would:
- every component is a task with exactly the expected upstream tasks;
- every container runs the image that was asked for;
- every path in it is valid where the components run: gs:// or inside the
  image (the curated schema is package data under /opt/pipeline), never a
  path on the machine that compiled it;
- every module path of this project in it (preprocessing_fn, run_fn, the
  AnomalyGate executor, TFMA custom metrics) imports from the package
  installed the way the Dockerfile installs it, in an environment without
  this checkout;
- Dataflow Beam args are present on exactly the Beam components when
  enabled, and nowhere when not;
- the kfp SDK loads it, and it parses strictly as a PipelineSpec proto.
"""

import json
import pathlib
import re
import subprocess
import sys
from typing import Dict
from typing import Set

from google.protobuf import json_format
from kfp import components as kfp_components
from kfp.pipeline_spec import pipeline_spec_pb2
import pytest
from tfx.dsl.components.base import executor_spec

from pipeline.cloud import settings as cloud
from pipeline.definition import config as config_lib
from pipeline.definition import dataset_config
from pipeline.definition import pipeline as pipeline_lib
import schema as schema_lib
from tests import installed_package
from tests.conftest import load_runner

REPO_ROOT = installed_package.REPO_ROOT
IMAGE = 'us-docker.pkg.dev/example-project/pipelines/tfx-tabular:test'
ROOT_FLAGS = ['--image', IMAGE,
              '--pipeline-root', 'gs://example-bucket/pipeline-root',
              '--data-root', 'gs://example-bucket/data/taxi']
DATAFLOW_FLAGS = ['--use-dataflow', '--project', 'example-project',
                  '--region', 'us-central1',
                  '--temp-location', 'gs://example-bucket/tmp',
                  '--machine-type', 'n1-standard-4', '--max-num-workers', '5']
EXPECTED_DATAFLOW_ARGS = [
    '--runner=DataflowRunner', '--project=example-project',
    '--region=us-central1', '--temp_location=gs://example-bucket/tmp',
    '--staging_location=gs://example-bucket/tmp/staging',
    f'--sdk_container_image={IMAGE}', '--machine_type=n1-standard-4',
    '--max_num_workers=5']

# The resolver node compiles into two Vertex resolver tasks.
BLESSING_RESOLVER = f'{pipeline_lib.BASELINE_RESOLVER}-model-blessing-resolver'
MODEL_RESOLVER = f'{pipeline_lib.BASELINE_RESOLVER}-model-resolver'
P = pipeline_lib
EXPECTED_UPSTREAM = {
    P.EXAMPLE_GEN: set(),
    P.STATISTICS_GEN: {P.EXAMPLE_GEN},
    P.SCHEMA_GEN: {P.STATISTICS_GEN},
    P.IMPORT_SCHEMA_GEN: set(),
    P.EXAMPLE_VALIDATOR: {P.STATISTICS_GEN, P.IMPORT_SCHEMA_GEN},
    P.ANOMALY_GATE: {P.EXAMPLE_VALIDATOR},
    # On by default, and compiled: its baseline is a record, not a Resolver.
    P.DRIFT_GATE: {P.EXAMPLE_GEN, P.STATISTICS_GEN, P.IMPORT_SCHEMA_GEN,
                   P.ANOMALY_GATE},
    # Beside StatisticsGen and the gates: it reads nothing they write.
    P.TRANSFORM: {P.EXAMPLE_GEN, P.IMPORT_SCHEMA_GEN},
    # Nothing is trained on data the gates stopped.
    P.TRAINER: {P.TRANSFORM, P.IMPORT_SCHEMA_GEN, P.ANOMALY_GATE,
                P.DRIFT_GATE},
    BLESSING_RESOLVER: set(),
    MODEL_RESOLVER: {BLESSING_RESOLVER},
    P.MODEL_CHANGE_CHECK: {P.TRAINER, MODEL_RESOLVER},
    P.EVALUATOR: {P.EXAMPLE_GEN, P.TRAINER, MODEL_RESOLVER,
                  P.MODEL_CHANGE_CHECK},
    # The candidate served by the REST server before the push.
    P.SERVING_CHECK: {P.EXAMPLE_GEN, P.TRAINER, P.EVALUATOR,
                      P.MODEL_CHANGE_CHECK},
    P.PUSHER: {P.TRAINER, P.EVALUATOR, P.SERVING_CHECK, P.MODEL_CHANGE_CHECK},
    # Beside the Evaluator; nothing waits for it, so it never blocks a push.
    P.FEATURE_ATTRIBUTIONS: {P.EXAMPLE_GEN, P.TRAINER, P.MODEL_CHANGE_CHECK},
}


def _load_runner():
  return load_runner('kubeflow_runner')


def _compile(tmp_path_factory, name, flags) -> dict:
  output = tmp_path_factory.mktemp('spec') / f'{name}.json'
  assert _load_runner().main(flags + ['--output-file', str(output)]) == 0
  return json.loads(output.read_text())


@pytest.fixture(scope='module')
def spec_off(tmp_path_factory) -> dict:
  return _compile(tmp_path_factory, 'off', ROOT_FLAGS)


@pytest.fixture(scope='module')
def spec_on(tmp_path_factory) -> dict:
  return _compile(tmp_path_factory, 'on', ROOT_FLAGS + DATAFLOW_FLAGS)


@pytest.fixture(scope='module')
def image_package(installed_sdist) -> installed_package.InstalledPackage:
  """The package installed like the Dockerfile does, from the sdist."""
  return installed_sdist


def _tasks(job: dict) -> Dict[str, dict]:
  return job['pipelineSpec']['root']['dag']['tasks']


def _parameter(job: dict, task: str, name: str) -> str:
  value = _tasks(job)[task]['inputs']['parameters'][name]
  return value['runtimeValue']['constantValue']['stringValue']


def _containers(job: dict) -> Dict[str, dict]:
  """Task name -> container spec, for the tasks that run a container."""
  executors = job['pipelineSpec']['deploymentSpec']['executors']
  result = {}
  for name, component in job['pipelineSpec']['components'].items():
    executor = executors[component['executorLabel']]
    if 'container' in executor:
      result[name] = executor['container']
  return result


def _upstream(task: dict) -> Set[str]:
  producers = {artifact['taskOutputArtifact']['producerTask']
               for artifact in task.get('inputs', {}).get('artifacts',
                                                          {}).values()}
  return set(task.get('dependentTasks', [])) | producers


def test_default_command_writes_a_spec_that_kfp_loads(tmp_path, monkeypatch,
                                                      capsys):
  """`python runners/kubeflow_runner.py --output-file F`: defaults only.

  Through main() in this process, from another working directory;
  tests/test_runners.py checks that the script exits with main()'s code.
  """
  output = tmp_path / 'p.json'
  monkeypatch.chdir(tmp_path)
  assert _load_runner().main(['--output-file', str(output)]) == 0
  assert f'Compiled {output}' in capsys.readouterr().out
  job = json.loads(output.read_text())
  component = kfp_components.load_component_from_text(
      json.dumps(job['pipelineSpec']))
  assert component.name == 'tabular-taxi'
  spec = json_format.ParseDict(job['pipelineSpec'],
                               pipeline_spec_pb2.PipelineSpec())
  assert set(spec.root.dag.tasks) == set(EXPECTED_UPSTREAM)
  assert job['runtimeConfig']['gcsOutputDirectory'].startswith('gs://')


def test_every_component_is_a_task_with_its_dependencies(spec_off, spec_on):
  for job in (spec_off, spec_on):
    tasks = _tasks(job)
    assert set(tasks) == set(EXPECTED_UPSTREAM)
    for name, task in tasks.items():
      assert _upstream(task) == EXPECTED_UPSTREAM[name], name


def test_evaluator_and_pusher_run_only_for_a_new_model(spec_off):
  """The Cond on ModelChangeCheck compiles into a Vertex trigger policy."""
  tasks = _tasks(spec_off)
  for name in (P.EVALUATOR, P.SERVING_CHECK, P.PUSHER,
               P.FEATURE_ATTRIBUTIONS):
    condition = tasks[name]['triggerPolicy']['condition']
    assert f"['_{P.MODEL_CHANGE_CHECK}.change']" in condition, condition
    assert "metadata['is_new'] == 1" in condition, condition
  assert 'triggerPolicy' not in tasks[P.TRAINER]


def test_the_pusher_takes_the_serving_checks_infra_blessing(spec_off):
  """TFX's Pusher refuses a model whose InfraBlessing is not blessed."""
  pusher = _tasks(spec_off)[P.PUSHER]['inputs']['artifacts']
  assert pusher['infra_blessing']['taskOutputArtifact'] == {
      'producerTask': P.SERVING_CHECK, 'outputArtifactKey': 'blessing'}
  check = _tasks(spec_off)[P.SERVING_CHECK]['inputs']['artifacts']
  assert check['model_blessing']['taskOutputArtifact'] == {
      'producerTask': P.EVALUATOR, 'outputArtifactKey': 'blessing'}
  assert _parameter(spec_off, P.SERVING_CHECK, 'split') == 'test'


def test_every_container_runs_the_requested_image(spec_off, spec_on):
  for job in (spec_off, spec_on):
    containers = _containers(job)
    assert set(containers) == set(EXPECTED_UPSTREAM) - {
        BLESSING_RESOLVER, MODEL_RESOLVER}
    assert {c['image'] for c in containers.values()} == {IMAGE}


def test_paths_are_valid_where_the_components_run(spec_off, image_package):
  text = json.dumps(spec_off)
  # Nothing from the machine that compiled it.
  assert str(REPO_ROOT) not in text
  assert sys.prefix not in text
  assert _parameter(spec_off, P.EXAMPLE_GEN, 'input_base') == (
      'gs://example-bucket/data/taxi')
  assert spec_off['runtimeConfig']['gcsOutputDirectory'] == (
      'gs://example-bucket/pipeline-root')
  # The drift baseline record sits under the pipeline root, in GCS.
  assert _parameter(spec_off, P.DRIFT_GATE, 'baseline_record') == (
      'gs://example-bucket/pipeline-root/drift_baseline/tabular-taxi.json')
  push = json.loads(_parameter(spec_off, P.PUSHER, 'push_destination'))
  assert push['filesystem']['base_directory'] == (
      'gs://example-bucket/pipeline-root/serving_model')
  # The schema is package data inside the image.
  schema_file = _parameter(spec_off, P.IMPORT_SCHEMA_GEN, 'schema_file')
  relative = pathlib.PurePosixPath(schema_file).relative_to(
      cloud.CONTAINER_PACKAGE_DIR)
  installed = image_package.package_dir / relative
  assert installed.is_file(), f'{schema_file} is not in the package'
  assert installed.read_text() == pathlib.Path(
      schema_lib.schema_path('taxi')).read_text()


def test_module_paths_resolve_from_the_installed_package(spec_off,
                                                         spec_tuned,
                                                         image_package):
  """Imports every dotted path in the spec without this checkout."""
  dotted = {_parameter(spec_off, P.TRANSFORM, 'preprocessing_fn'),
            _parameter(spec_off, P.TRAINER, 'run_fn')}
  assert dotted == {pipeline_lib.PREPROCESSING_FN, pipeline_lib.RUN_FN}
  dotted |= _tuner_paths(spec_tuned)  # --tune: the Tuner's code too.
  for container in _containers(spec_off).values():
    args = container['args']
    executor = args[args.index('--executor_class_path') + 1]
    # TFX's own executors come with the TFX base image; anything else is
    # this project's code and must be in the package.
    if not executor.startswith('tfx.'):
      dotted.add(executor)
  # ServingCheck runs `python -m serving` in its container: the server's
  # code must be in the image's package too.
  dotted.add('serving.server.main')
  eval_config = json.loads(_parameter(spec_off, P.EVALUATOR, 'eval_config'))
  for metric in eval_config['metrics_specs'][0]['metrics']:
    if metric.get('module'):
      dotted.add(f"{metric['module']}.{metric['class_name']}")
  # Local user-module files would be packaged from this machine; the
  # pipeline must use installed module paths only.
  transform_inputs = _tasks(spec_off)[P.TRANSFORM]['inputs']['parameters']
  assert 'module_file' not in transform_inputs
  assert 'module_path' not in transform_inputs

  script = (
      'import importlib, json, sys\n'
      'found = {}\n'
      'for path in sys.argv[1:]:\n'
      '  module, _, name = path.rpartition(".")\n'
      '  mod = importlib.import_module(module)\n'
      '  assert callable(getattr(mod, name)), path\n'
      '  found[path] = mod.__file__\n'
      'print(json.dumps(found))\n')
  result = subprocess.run(
      [str(image_package.python), '-c', script, *sorted(dotted)],
      capture_output=True, text=True, timeout=600,
      env=image_package.environ(), cwd=str(image_package.venv))
  assert result.returncode == 0, result.stderr[-3000:]
  found = json.loads(result.stdout.strip().splitlines()[-1])
  assert set(found) == dotted
  assert 'pipeline.components.anomaly_gate.AnomalyGate_Executor' in found
  assert 'pipeline.components.serving_check.ServingCheck_Executor' in found
  for path, module_file in found.items():
    assert module_file.startswith(str(image_package.package_dir)), (
        path, module_file)


def test_dataflow_args_on_exactly_the_beam_components(spec_on, spec_off):
  config = config_lib.PipelineConfig(
      pipeline_name='x', pipeline_root='gs://b/root', data_root='gs://b/data',
      schema_path=cloud.container_schema_path(schema_lib.schema_path('taxi')),
      serving_model_dir='gs://b/serving',
      dataset=dataset_config.load_named('taxi').spec)
  beam_components = {
      c.id for c in pipeline_lib.create_pipeline(config).components
      if isinstance(c.executor_spec, executor_spec.BeamExecutorSpec)}
  assert set(cloud.dataflow_components()) == beam_components
  for name, container in _containers(spec_on).items():
    if name in beam_components:
      assert container['args'][-len(EXPECTED_DATAFLOW_ARGS):] == (
          EXPECTED_DATAFLOW_ARGS), name
    else:
      assert '--runner=DataflowRunner' not in container['args'], name
  # ExampleGen's driver reads the input too; it gets the same args.
  pre_cache = _containers(spec_on)[P.EXAMPLE_GEN]['lifecycle']['preCacheCheck']
  assert pre_cache['args'][-len(EXPECTED_DATAFLOW_ARGS):] == (
      EXPECTED_DATAFLOW_ARGS)
  off_text = json.dumps(spec_off)
  for arg in EXPECTED_DATAFLOW_ARGS:
    assert arg.split('=')[0] not in off_text, arg


def test_submit_without_credentials_compiles_only(tmp_path, monkeypatch,
                                                  capsys):
  for var in ('GOOGLE_APPLICATION_CREDENTIALS', 'CLOUDSDK_CONFIG'):
    monkeypatch.delenv(var, raising=False)
  monkeypatch.setenv('HOME', str(tmp_path))  # No gcloud ADC file here.
  monkeypatch.setenv('CLOUDSDK_CONFIG', str(tmp_path / 'gcloud'))
  monkeypatch.setenv('NO_GCE_CHECK', 'True')  # Not on GCE: skip the probe.
  submitted = []
  monkeypatch.setattr(cloud, 'submit_to_vertex',
                      lambda *a, **k: submitted.append(a))
  output = tmp_path / 'p.json'
  exit_code = _load_runner().main(
      ROOT_FLAGS + ['--region', 'us-central1', '--project', 'example-project',
                    '--submit', '--output-file', str(output)])
  err = capsys.readouterr().err
  assert exit_code == 2
  assert output.is_file() and not submitted
  assert 'NOT SUBMITTED' in err and 'Application Default Credentials' in err


def test_submit_refuses_placeholders(tmp_path, capsys):
  output = tmp_path / 'p.json'
  assert _load_runner().main(['--submit', '--output-file', str(output)]) == 2
  err = capsys.readouterr().err
  assert output.is_file()
  for flag in ('--pipeline-root', '--data-root', '--image', '--region'):
    assert flag in err


@pytest.mark.parametrize('flags, message', [
    (['--data-root', str(REPO_ROOT / 'data' / 'taxi')],
     '--data-root must be a gs:// path'),
    (['--schema', schema_lib.schema_path('taxi')],
     'would be read inside the pipeline image'),
    (['--use-dataflow', '--project', 'p', '--region', 'r',
      '--temp-location', '/tmp'], '--temp-location must be a gs:// path'),
    (['--use-dataflow', '--region', 'r', '--temp-location', 'gs://b/t'],
     '--project is required'),
    (['--sql-url', 'postgresql://u@h/db', '--query', 'SELECT 1'],
     '--sql-url is read by the local runner only'),
    (['--warm-start'], '--warm-start is resolved against ML Metadata before '
     'a run starts'),
], ids=['data-root', 'schema', 'temp-location', 'project', 'sql-source',
        'warm-start'])
def test_unusable_cloud_settings_are_refused(flags, message, tmp_path,
                                             monkeypatch, capsys):
  monkeypatch.delenv(cloud.ENV_VARS['project'], raising=False)
  with pytest.raises(SystemExit) as exit_info:
    _load_runner().main(flags + ['--output-file', str(tmp_path / 'p.json')])
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err
  assert not (tmp_path / 'p.json').exists()


def _lock_version(package: str) -> str:
  lock = (REPO_ROOT / 'requirements.lock').read_text()
  return re.search(rf'^{re.escape(package)}==(\S+)$', lock, re.M).group(1)


def test_dockerfile_agrees_with_lock_setup_and_spec():
  dockerfile = (REPO_ROOT / 'Dockerfile').read_text()
  instructions = re.sub(r'\\\n', ' ', dockerfile)
  assert f'FROM gcr.io/tfx-oss-public/tfx:{_lock_version("tfx")}' in (
      instructions)
  assert (f'FROM apache/beam_python3.10_sdk:{_lock_version("apache-beam")}'
          in instructions)
  assert re.search(r'^ENV TF_USE_LEGACY_KERAS=1$', instructions, re.M)
  assert re.search(r'pip install .*--no-deps\s+-r \S*requirements.lock',
                   instructions)
  # The package from setup.py, into the folder the spec's paths point at.
  assert re.search(
      rf'pip install .*--target {cloud.CONTAINER_PACKAGE_DIR} /tmp/build/src',
      instructions)
  assert f'ENV PYTHONPATH="{cloud.CONTAINER_PACKAGE_DIR}' in instructions
  assert cloud.container_schema_path(schema_lib.schema_path('taxi')) in instructions
  ignored = {line.strip() for line in
             (REPO_ROOT / '.dockerignore').read_text().splitlines()
             if line.strip() and not line.startswith('#')}
  needed = {'setup.py', 'requirements.lock', 'models', 'pipeline', 'schema'}
  assert not needed & ignored
  assert {'.venv', '.git', 'outputs'} <= ignored


@pytest.fixture(scope='module')
def spec_tuned(tmp_path_factory) -> dict:
  return _compile(tmp_path_factory, 'tune',
                  ROOT_FLAGS + ['--tune', '--tune-trials', '4'])


def _tuner_paths(job: dict) -> Set[str]:
  """The Tuner's executor class and tuner_fn: this project's code."""
  args = _containers(job)[P.TUNER]['args']
  return {args[args.index('--executor_class_path') + 1],
          _parameter(job, P.TUNER, 'tuner_fn')}


def test_tune_compiles_the_tuner_before_the_trainer(spec_tuned):
  tasks = _tasks(spec_tuned)
  assert set(tasks) == set(EXPECTED_UPSTREAM) | {P.TUNER}
  # The gates hold back the first training node: here the Tuner.
  assert _upstream(tasks[P.TUNER]) == {P.TRANSFORM, P.ANOMALY_GATE,
                                       P.DRIFT_GATE}
  assert _upstream(tasks[P.TRAINER]) == {P.TRANSFORM, P.IMPORT_SCHEMA_GEN,
                                         P.TUNER}
  hyperparameters = tasks[P.TRAINER]['inputs']['artifacts']['hyperparameters']
  assert hyperparameters['taskOutputArtifact'] == {
      'producerTask': P.TUNER, 'outputArtifactKey': 'best_hyperparameters'}
  assert _containers(spec_tuned)[P.TUNER]['image'] == IMAGE
  # test_module_paths_resolve_from_the_installed_package imports them.
  assert _tuner_paths(spec_tuned) == {
      'pipeline.components.budgeted_tuner.Executor', pipeline_lib.TUNER_FN}
