"""Dataflow readiness: the workers need only the sdist that setup.py builds.

On Dataflow the launching machine has this checkout, but each worker has
only what `--setup_file` packaged. The classic failure is a worker that
cannot unpickle user code: "No module named ...". This test reproduces that
boundary locally:
- the sdist is built from setup.py and installed with --no-deps into an
  isolated folder, next to a fresh venv that sees the pinned dependencies
  but not the checkout (tests/installed_package.py; built and installed once
  per session by the `installed_sdist` fixture);
- a Beam worker pool (`apache_beam.runners.worker.worker_pool_main`) runs in
  that environment, in its own processes;
- tf.Transform's AnalyzeAndTransformDataset of the project's
  `preprocessing_fn` runs on the committed sample through PortableRunner
  (job_endpoint=embed, environment_type=EXTERNAL), so every bundle executes
  in the pool's worker processes. tf.Transform ships `preprocessing_fn` to
  the workers by reference, so they must import it from the installed
  package.
The same run against an install that lacks models/preprocessing.py fails
with the worker's ModuleNotFoundError: the check has teeth.
"""

import contextlib
import csv
import functools
import os
import pathlib
import signal
import socket
import subprocess
import time
from typing import Iterator

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from google.protobuf import text_format
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tfx_bsl.public import tfxio

from models import features
from models import preprocessing
from pipeline.cloud import settings as cloud
from pipeline.definition import dataset_config
import schema as schema_lib
from tests import installed_package
from tests.conftest import load_runner

SAMPLE_CSV = installed_package.REPO_ROOT / 'data' / 'taxi_sample' / 'data.csv'
SPEC = dataset_config.load_named('taxi').spec
POOL_START_TIMEOUT_S = 180


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


@contextlib.contextmanager
def worker_pool(package: installed_package.InstalledPackage,
                log_file: pathlib.Path) -> Iterator[str]:
  """Runs a Beam worker pool in `package`'s environment; yields its address."""
  port = _free_port()
  with open(log_file, 'w') as log:
    pool = subprocess.Popen(
        [str(package.python), '-m',
         'apache_beam.runners.worker.worker_pool_main',
         f'--service_port={port}'],
        env=package.environ(), cwd=str(log_file.parent), stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
  try:
    deadline = time.monotonic() + POOL_START_TIMEOUT_S
    while True:
      if pool.poll() is not None:
        raise AssertionError(f'worker pool exited {pool.returncode}:\n'
                             f'{log_file.read_text()[-3000:]}')
      with contextlib.suppress(OSError), socket.create_connection(
          ('localhost', port), timeout=1):
        break
      if time.monotonic() > deadline:
        raise AssertionError(f'worker pool not listening after '
                             f'{POOL_START_TIMEOUT_S}s')
      time.sleep(0.2)
    yield f'localhost:{port}'
  finally:
    # The pool and the workers it started share one process group.
    with contextlib.suppress(ProcessLookupError):
      os.killpg(pool.pid, signal.SIGTERM)
    try:
      pool.wait(timeout=30)
    except subprocess.TimeoutExpired:
      os.killpg(pool.pid, signal.SIGKILL)
      pool.wait()


def _curated_schema() -> schema_pb2.Schema:
  with open(schema_lib.schema_path(SPEC.name)) as f:
    return text_format.Parse(f.read(), schema_pb2.Schema())


def run_transform(pool_address: str, out_dir: pathlib.Path) -> None:
  """AnalyzeAndTransformDataset of the sample, executed by the pool."""
  with open(SAMPLE_CSV) as f:
    header = next(csv.reader(f))
  source = tfxio.CsvTFXIO(
      file_pattern=str(SAMPLE_CSV), column_names=header,
      schema=_curated_schema(), skip_header_lines=1,
      telemetry_descriptors=['tests'])
  # What TFX's Transform executor does with `preprocessing_fn` and
  # `custom_config`.
  preprocessing_fn = functools.partial(
      preprocessing.preprocessing_fn, custom_config={'dataset': SPEC.to_dict()})
  options = PipelineOptions([
      '--runner=PortableRunner', '--job_endpoint=embed',
      '--environment_type=EXTERNAL', f'--environment_config={pool_address}'])
  with beam.Pipeline(options=options) as p, tft_beam.Context(
      temp_dir=str(out_dir / 'tmp')):
    raw = p | 'ReadRawCsv' >> source.BeamSource()
    (transformed, metadata), transform_fn = (
        (raw, source.TensorAdapterConfig())
        | 'AnalyzeAndTransform' >> tft_beam.AnalyzeAndTransformDataset(
            preprocessing_fn))
    coder = tft.coders.ExampleProtoCoder(metadata.dataset_metadata.schema)
    _ = (transformed
         | 'EncodeExamples' >> beam.Map(coder.encode)
         | 'WriteExamples' >> beam.io.WriteToTFRecord(
             str(out_dir / 'transformed' / 'part')))
    _ = transform_fn | 'WriteTransformFn' >> tft_beam.WriteTransformFn(
        str(out_dir / 'transform_fn'))


def _sample_labels() -> np.ndarray:
  with open(SAMPLE_CSV) as f:
    return np.array([int(row[SPEC.label_key]) for row in csv.DictReader(f)])


@pytest.mark.timeout(900)
def test_transform_runs_on_workers_that_have_only_the_sdist(installed_sdist,
                                                            tmp_path):
  package = installed_sdist
  assert (package.package_dir / 'models' / 'preprocessing.py').is_file()
  out = tmp_path / 'out'
  log = tmp_path / 'pool.log'
  with worker_pool(package, log) as address:
    run_transform(address, out)
  assert 'Starting worker with command' in log.read_text(), (
      'the pool started no worker process; the work ran elsewhere')

  examples = [tf.train.Example.FromString(record.numpy()) for record in
              tf.data.TFRecordDataset(
                  sorted(map(str, (out / 'transformed').glob('part*'))))]
  labels = _sample_labels()
  assert len(examples) == len(labels)
  label_key = SPEC.transformed_label_key
  got_labels = [e.features.feature[label_key].int64_list.value[0]
                for e in examples]
  assert sorted(got_labels) == sorted(labels.tolist())
  # Analyzed over the same rows, so the z-scored fare has mean 0, std 1.
  fare = np.array([
      e.features.feature[features.transformed_name('fare')].float_list.value[0]
      for e in examples])
  assert abs(fare.mean()) < 1e-3 and abs(fare.std() - 1.0) < 1e-3
  vocabulary = tft.TFTransformOutput(str(out / 'transform_fn')
                                     ).vocabulary_by_name('payment_type')
  assert {b'Cash', b'Credit Card'} <= set(vocabulary)


@pytest.mark.timeout(900)
@pytest.mark.filterwarnings(
    'ignore::pytest.PytestUnhandledThreadExceptionWarning')
def test_workers_without_the_module_fail(installed_sdist, tmp_path):
  package = installed_package.without(
      installed_sdist, ['models/preprocessing.py'], tmp_path / 'worker')
  with worker_pool(package, tmp_path / 'pool.log') as address:
    with pytest.raises(Exception) as failure:
      run_transform(address, tmp_path / 'out')
  assert "No module named 'models.preprocessing'" in str(failure.value)


# The Dataflow runner up to the boundary: flags, environment, validation and
# the Beam args each component gets. local_run.run is replaced by a recorder;
# nothing reaches Google Cloud.

CLOUD_FLAGS = ['--project', '--region', '--temp-location',
               '--staging-location', '--setup-file', '--requirements-file',
               '--sdk-container-image',
               '--machine-type', '--max-num-workers', '--pipeline-root']


def _dataflow_runner():
  return load_runner('dataflow_runner')


@pytest.fixture
def recorded_runs(monkeypatch, tmp_path):
  """Replaces local_run.run; clears the cloud environment; cwd elsewhere."""
  from pipeline.local import run as local_run
  calls = []
  monkeypatch.setattr(local_run, 'run',
                      lambda config, layout, **kwargs: calls.append(config)
                      or 0)
  for var in list(cloud.ENV_VARS.values()) + ['PIPELINE_ROOT']:
    monkeypatch.delenv(var, raising=False)
  monkeypatch.chdir(tmp_path)
  return calls


def test_dataflow_runner_help_documents_every_cloud_flag(capsys):
  with pytest.raises(SystemExit) as exit_info:
    _dataflow_runner().main(['--help'])
  assert exit_info.value.code == 0
  text = ' '.join(capsys.readouterr().out.split())
  for flag in CLOUD_FLAGS:
    assert flag in text, flag
  for var in cloud.ENV_VARS.values():
    assert f'env: {var}' in text, var


def test_dataflow_runner_gives_dataflow_args_to_the_beam_components(
    recorded_runs, monkeypatch, tmp_path):
  from pipeline.definition import pipeline as pipeline_lib
  monkeypatch.setenv('GOOGLE_CLOUD_PROJECT', 'env-project')
  monkeypatch.setenv('DATAFLOW_TEMP_LOCATION', 'gs://bucket/tmp')
  monkeypatch.setenv('DATAFLOW_MAX_WORKERS', '7')
  exit_code = _dataflow_runner().main([
      '--region', 'europe-west4', '--pipeline-root', 'gs://bucket/root',
      '--data-root', 'gs://bucket/data/taxi', '--machine-type',
      'n1-standard-4', '--output-dir', str(tmp_path / 'out')])
  assert exit_code == 0 and len(recorded_runs) == 1
  config = recorded_runs[0]
  expected = [
      '--runner=DataflowRunner', '--project=env-project',
      '--region=europe-west4', '--temp_location=gs://bucket/tmp',
      '--staging_location=gs://bucket/tmp/staging',
      # From the repository, although the current directory is elsewhere.
      f'--setup_file={installed_package.REPO_ROOT / "setup.py"}',
      # The stock Dataflow image has Beam only; setup.py lists no deps.
      f'--requirements_file={installed_package.REPO_ROOT / "requirements.lock"}',
      '--machine_type=n1-standard-4', '--max_num_workers=7']
  assert {k: list(v) for k, v in config.component_beam_args.items()} == {
      component: expected for component in cloud.dataflow_components()}
  assert config.pipeline_root == 'gs://bucket/root'
  assert config.data_root == 'gs://bucket/data/taxi'
  # The orchestration, metadata and schema stay on this machine.
  assert config.schema_path == schema_lib.schema_path(SPEC.name)
  # Component-level args come last, so nothing overrides them.
  for component in pipeline_lib.create_pipeline(config).components:
    if component.id in cloud.dataflow_components():
      args = component.executor_spec.beam_pipeline_args
      assert list(args[-len(expected):]) == expected, component.id


def test_dataflow_runner_can_use_the_pipeline_image_instead(recorded_runs,
                                                            tmp_path):
  image = 'us-docker.pkg.dev/p/r/tfx-tabular:1'
  assert _dataflow_runner().main([
      '--project', 'p', '--region', 'r', '--temp-location', 'gs://b/t',
      '--pipeline-root', 'gs://b/root', '--data-root', 'gs://b/data',
      '--sdk-container-image', image,
      '--output-dir', str(tmp_path / 'out')]) == 0
  for args in recorded_runs[0].component_beam_args.values():
    assert f'--sdk_container_image={image}' in args
    assert not any(arg.startswith(('--setup_file', '--requirements_file'))
                   for arg in args)


@pytest.mark.parametrize('flags, message', [
    ([], '--pipeline-root is required (or set PIPELINE_ROOT)'),
    (['--pipeline-root', 'gs://b/r'],
     '--project is required (or set GOOGLE_CLOUD_PROJECT)'),
    (['--pipeline-root', 'gs://b/r', '--project', 'p'],
     '--region is required (or set GOOGLE_CLOUD_REGION)'),
    (['--pipeline-root', 'gs://b/r', '--project', 'p', '--region', 'r'],
     '--temp-location is required (or set DATAFLOW_TEMP_LOCATION)'),
    (['--pipeline-root', 'gs://b/r', '--project', 'p', '--region', 'r',
      '--temp-location', 'gs://b/t'], '--data-root must be a gs:// path'),
    (['--pipeline-root', '/local/root', '--project', 'p', '--region', 'r',
      '--temp-location', 'gs://b/t', '--data-root', 'gs://b/d'],
     '--pipeline-root must be a gs:// path'),
    (['--pipeline-root', 'gs://b/r', '--project', 'p', '--region', 'r',
      '--temp-location', 'gs://b/t', '--data-root', 'gs://b/d',
      '--setup-file', 'setup.py', '--sdk-container-image', 'img'],
     'exactly one way'),
    (['--pipeline-root', 'gs://b/r', '--project', 'p', '--region', 'r',
      '--temp-location', 'gs://b/t', '--data-root', 'gs://b/d',
      '--sql-url', 'postgresql://u@h/db', '--query', 'SELECT 1'],
     '--sql-url is read by the local runner only'),
], ids=['pipeline-root', 'project', 'region', 'temp-location', 'data-root',
        'local-pipeline-root', 'setup-and-image', 'sql-source'])
def test_dataflow_runner_names_the_missing_or_bad_flag(
    flags, message, recorded_runs, capsys):
  with pytest.raises(SystemExit) as exit_info:
    _dataflow_runner().main(flags)
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err
  assert not recorded_runs
