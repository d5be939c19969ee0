"""MLflow tracking: every local run logged, read back with MLflow's client.

Unit tests check the `--mlflow-uri` parsing and masking, the flags, what is
logged (names MLflow accepts, no NaN, no password) and that an unreachable
server only warns: the real worker process tries a closed port.

The e2e tests read the session's `e2e_run` back (tests/conftest.py): its
first run logged to a real `mlflow server` on 127.0.0.1 (`mlflow_server`),
its two re-runs to the output dir's own store, which is opened with the
very URI the docs give to `mlflow ui --backend-store-uri`. MLflow's runs,
parameters, metrics, tags and artifacts are compared with ML Metadata, and
the registered model version with the pushed model.
"""

import argparse
import json
import os
import pathlib
import re
import time
from typing import List

import pytest

from models import features
from pipeline import flags as cli
from pipeline.definition import config as config_lib
from pipeline.facts import layout as layout_lib
from pipeline.facts import metadata_location
from pipeline.facts import tracking_location as location_lib
from pipeline.inspection import report
from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from pipeline.tracking import mlflow_log
from pipeline.tracking import mlflow_worker
from pipeline.tracking import tracker as tracker_lib
from tests import mariadb_server
from tests.conftest import E2E_TRAIN_STEPS
from tests.conftest import PIPELINE_NAME
from tests.conftest import REPO_ROOT

# A password no server has, for the masking tests.
CANARY = 'Canary:pw@' + 'x7Q9' * 3
MASKED_URI = 'http://alice:***@mlflow.example.com:5000'
# MLflow's rule for metric and parameter names (mlflow.utils.validation).
MLFLOW_NAME = re.compile(r'^[/\w.\- :]*$')

# --- Unit: the URI, the flags ------------------------------------------------


def test_local_store_is_sqlite_in_the_output_dir(tmp_path):
  store = location_lib.local_store(str(tmp_path / 'out'))
  assert store.uri == f'sqlite:///{tmp_path}/out/mlflow.db'
  assert store.artifact_location == (tmp_path / 'out' / 'mlruns').as_uri()
  assert store.is_local
  assert store.ui_command() == ('mlflow ui --backend-store-uri '
                                f'sqlite:///{tmp_path}/out/mlflow.db')


@pytest.mark.parametrize('uri, expected', [
    ('http://127.0.0.1:5000', 'http://127.0.0.1:5000'),
    ('https://mlflow.example.com', 'https://mlflow.example.com'),
    ('postgresql://u@db:5432/mlflow', 'postgresql://u@db:5432/mlflow'),
    ('databricks', 'databricks'),
])
def test_parse_uri_keeps_tracking_uris(uri, expected):
  location = location_lib.parse_uri(uri)
  assert location.uri == expected
  assert not location.is_local  # The server decides where artifacts go.


def test_parse_uri_makes_local_paths_absolute(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert location_lib.parse_uri('runs').uri == (tmp_path / 'runs').as_uri()
  assert location_lib.parse_uri('sqlite:///m/mlflow.db').uri == (
      f'sqlite:///{tmp_path}/m/mlflow.db')
  assert location_lib.parse_uri('sqlite:////abs/mlflow.db').uri == (
      'sqlite:////abs/mlflow.db')


@pytest.mark.parametrize('uri, message', [
    ('', 'is empty'),
    ('ftp://alice:' + CANARY + '@host/x', 'scheme ftp:// is not'),
    ('http://', 'no host'),
])
def test_parse_uri_refuses_with_the_password_masked(uri, message):
  with pytest.raises(location_lib.TrackingUriError, match=message) as error:
    location_lib.parse_uri(uri)
  assert CANARY not in str(error.value)


def test_a_uri_password_is_never_shown():
  location = location_lib.parse_uri(
      'http://alice:' + CANARY.replace('@', '%40') +
      '@mlflow.example.com:5000')
  assert str(location) == MASKED_URI
  assert CANARY not in location.ui_command()
  assert location.scrub(f'failed for {CANARY} and '
                        f'{CANARY.replace("@", "%40")}') == (
                            'failed for *** and ***')


def _parsed(*argv: str) -> argparse.Namespace:
  parser = argparse.ArgumentParser()
  cli.add_tracking_flags(parser)
  return parser.parse_args(list(argv))


def test_flags_choose_the_store(tmp_path):
  root = str(tmp_path)
  default = layout_lib.OutputLayout(root, **cli.tracking_settings(_parsed()))
  assert default.tracking == location_lib.local_store(root)
  server = layout_lib.OutputLayout(root, **cli.tracking_settings(
      _parsed('--mlflow-uri', 'http://127.0.0.1:5000')))
  assert server.tracking.uri == 'http://127.0.0.1:5000'
  off = layout_lib.OutputLayout(root, **cli.tracking_settings(
      _parsed('--no-mlflow')))
  assert off.tracking is None
  # A layout built without the flags (Airflow, tests) logs locally.
  assert layout_lib.OutputLayout(root).tracking == location_lib.local_store(root)


def test_mlflow_uri_and_no_mlflow_exclude_each_other(capsys):
  with pytest.raises(SystemExit) as exit_info:
    _parsed('--no-mlflow', '--mlflow-uri', 'http://h:5000')
  assert exit_info.value.code == 2
  assert 'not allowed with argument' in capsys.readouterr().err


def test_runner_refuses_a_bad_uri_before_anything_runs(
    local_runner_in_process, tmp_path):
  result = local_runner_in_process(
      tmp_path / 'out', ['--mlflow-uri', f'ftp://alice:{CANARY}@host'])
  assert result.returncode == 2
  assert 'RUN FAILED: --mlflow-uri ftp://alice:***@host' in result.stderr
  assert CANARY not in result.stderr + result.stdout
  assert not (tmp_path / 'out').exists()


# --- Unit: what is logged --------------------------------------------------

SPEC = features.DatasetSpec(
    name='trips', label_key='tip', numeric_features=('fare',),
    categorical_features=('payment',), slice_features=('payment',))


def _config(**overrides) -> config_lib.PipelineConfig:
  fields = dict(
      pipeline_name='tabular-trips', pipeline_root='/out/pipeline_root',
      data_root='/data/trips', schema_path='/schema/trips/schema.pbtxt',
      serving_model_dir='/out/serving_model', dataset=SPEC,
      schema_sha256='ab' * 32)
  fields.update(overrides)
  return config_lib.PipelineConfig(**fields)


def _summary(**overrides) -> run_summary.RunSummary:
  fields = dict(
      run_id='2026-01-01T00:00:00.000001', components=[],
      metrics={'auc': 0.91, 'auc_diff': 0.002, 'precision[class 1]': 0.5,
               'example_count': 202.0},
      slice_metrics={'payment=Cash': {'auc': float('nan'),
                                      'binary_accuracy': 1.0},
                     'payment=Credit Card': {'auc': 0.57}},
      blessed=True, blessing_reason='all thresholds met')
  fields.update(overrides)
  return run_summary.RunSummary(**fields)


def _run() -> run_model.Run:
  return run_model.Run(pipeline_name='tabular-trips',
                       run_id='2026-01-01T00:00:00.000001',
                       create_time_ms=1_767_225_600_000, executions=[])


def test_metric_names_are_mlflow_names_and_nan_is_left_out():
  metrics = mlflow_log.metrics_of(_summary())
  assert metrics == {
      'auc': 0.91, 'auc_diff': 0.002, 'precision.class_1': 0.5,
      'example_count': 202.0,
      'slice/payment:Cash/binary_accuracy': 1.0,
      'slice/payment:Credit Card/auc': 0.57,
      'blessed': 1.0}
  assert all(MLFLOW_NAME.match(name) for name in metrics)
  assert mlflow_log.slice_key('a=x, b=y/z', 'auc') == 'slice/a:x and b:y/z/auc'
  assert 'blessed' not in mlflow_log.metrics_of(_summary(blessed=None))


def test_params_hold_the_config_but_no_password():
  sql = config_lib.SqlSource(url='postgresql://bob@db/trips',
                             query='SELECT * FROM trips')
  params = mlflow_log.params_of(
      _config(data_root=f'gs://user:{CANARY}@bucket/data', sql=sql), span=3)
  assert params['dataset'] == 'trips'
  assert params['task'] == 'binary'
  assert params['label'] == 'tip'
  assert params['span'] == '3'
  assert params['sql_query'] == 'SELECT * FROM trips'
  assert params['training.train_steps'] == str(
      config_lib.TrainingConfig.train_steps)
  assert params['training.model.hidden_units'] == '64,32'
  assert params['gate.min_auc'] == str(config_lib.GateConfig.min_auc)
  assert params['gate.max_metric_drop'] == '0.01'
  assert params['data_root'] == 'gs://user:***@bucket/data'
  assert CANARY not in json.dumps(params)
  assert all(MLFLOW_NAME.match(name) for name in params)


def test_request_registers_only_a_model_this_run_pushed(tmp_path):
  pushed = tmp_path / 'serving_model' / '1767225600'
  pushed.mkdir(parents=True)
  request = mlflow_log.request_for(
      _run(), _summary(pushed_model=str(pushed)), _config(),
      metadata='/out/metadata.sqlite')
  assert request['experiment'] == 'tabular-trips'
  assert request['run_name'] == '2026-01-01T00:00:00.000001'
  assert request['status'] == 'FINISHED'
  assert request['tags']['mlmd.run_id'] == '2026-01-01T00:00:00.000001'
  assert request['tags']['mlmd.store'] == '/out/metadata.sqlite'
  assert request['tags']['gate.decision'] == 'BLESSED'
  assert request['model']['name'] == 'trips'
  assert request['model']['path'] == str(pushed)
  assert request['model']['tags'][mlflow_log.PUSH_PATH_TAG] == str(pushed)
  json.dumps(request)  # What the worker receives.
  unchanged = mlflow_log.request_for(
      _run(), _summary(model_unchanged=True, blessed_in_run='earlier',
                       serving_model=str(pushed),
                       blessing_reason='model unchanged: ...'),
      _config(), metadata='m', failed=True)
  assert unchanged['model'] is None
  assert unchanged['status'] == 'FAILED'
  assert unchanged['tags']['gate.decision'] == 'MODEL UNCHANGED'
  assert unchanged['tags']['gate.blessed_in_run'] == 'earlier'
  not_blessed = mlflow_log.request_for(_run(), _summary(blessed=False),
                                       _config(), metadata='m')
  assert not_blessed['model'] is None
  assert not_blessed['tags']['gate.decision'] == 'NOT BLESSED'


def test_worker_errors_are_one_short_line():
  error = RuntimeError('API request failed\n  with\texception ' + 'x' * 900)
  line = mlflow_worker.one_line(error)
  assert '\n' not in line and len(line) <= mlflow_worker.MAX_ERROR_CHARS + 20
  assert line.startswith('RuntimeError: API request failed with exception')


def test_an_unreachable_server_only_warns(tmp_path, capsys):
  """The real worker process against a closed port, with a password."""
  port = mariadb_server.free_port()  # Nothing listens there.
  location = location_lib.parse_uri(
      f'http://alice:{CANARY.replace("@", "%40")}@127.0.0.1:{port}')
  started = time.monotonic()
  tracker = tracker_lib.Tracker.start(location, str(tmp_path))
  logged = mlflow_log.log_run(
      tracker, _run(), _summary(), _config(),
      metadata=metadata_location.SqliteLocation(str(tmp_path / 'm.sqlite')))
  print(f'unreachable server: warned after {time.monotonic() - started:.1f} s')
  out, err = capsys.readouterr()
  assert logged is None
  warnings = [line for line in err.splitlines() if 'WARNING' in line]
  assert len(warnings) == 1, err
  assert warnings[0].startswith(
      f'WARNING: MLflow logging to http://alice:***@127.0.0.1:{port} failed:')
  assert 'Connection refused' in warnings[0] or 'Max retries' in warnings[0]
  assert 'The run and its outputs are unaffected' in warnings[0]
  for secret in (CANARY, CANARY.replace('@', '%40')):
    assert secret not in out + err
  assert 'MLflow: run' not in out
  assert tracker._process is None


# --- End to end: the e2e runs, read back through MLflow's client ------------


@pytest.fixture(scope='module')
def mlmd_runs(e2e_run) -> List[run_model.Run]:
  store = run_model.open_store(e2e_run.metadata_path)
  runs = [run_model.read_run(store, context, PIPELINE_NAME) for context in
          run_model.run_contexts(store, PIPELINE_NAME)][:3]
  assert len(runs) == 3
  return runs


def _client(uri: str):
  import mlflow
  from mlflow.tracking import MlflowClient
  # A server's artifacts (mlflow-artifacts:/...) are read through the
  # process's global tracking URI, whatever the client's is.
  mlflow.set_tracking_uri(uri)
  return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _runs(client, experiment: str = PIPELINE_NAME):
  found = client.get_experiment_by_name(experiment)
  assert found is not None, f'no experiment {experiment}'
  return client.search_runs([found.experiment_id],
                            order_by=['attributes.start_time ASC'])


def _artifact_paths(client, run_id: str, path: str = '') -> List[str]:
  files = []
  for info in client.list_artifacts(run_id, path or None):
    if info.is_dir:
      files.extend(_artifact_paths(client, run_id, info.path))
    else:
      files.append(info.path)
  return files


def _documented_ui_uri() -> str:
  """The `mlflow ui --backend-store-uri` value docs/tracking.md gives for
  `make run` (outputs/ in the repository)."""
  text = (REPO_ROOT / 'docs' / 'tracking.md').read_text(encoding='utf-8')
  found = re.search(r'mlflow ui --backend-store-uri (sqlite:///\S+)', text)
  assert found, 'docs/tracking.md gives no mlflow ui command'
  assert found.group(1) == 'sqlite:///outputs/mlflow.db'
  return found.group(1)


def _mlflow_line(stdout: str) -> str:
  lines = [line for line in stdout.splitlines()
           if line.startswith('MLflow: run ')]
  assert len(lines) == 1, stdout[-3000:]
  return lines[0]


@pytest.mark.e2e
def test_first_run_is_on_the_server_with_params_metrics_and_tags(
    e2e_run, mlflow_server, mlmd_runs):
  first = mlmd_runs[0]
  summary = run_summary.summarize(first)
  client = _client(mlflow_server.url)
  [logged] = _runs(client)
  line = _mlflow_line(e2e_run.outputs[0].stdout)
  assert f'run {logged.info.run_id} ' in line
  assert f'in {mlflow_server.url}' in line
  print(line)
  assert logged.info.run_name == first.run_id
  assert logged.info.status == 'FINISHED'
  params = logged.data.params
  assert params['dataset'] == 'taxi'
  assert params['task'] == 'binary'
  assert params['label'] == 'big_tipper'
  assert params['training.train_steps'] == str(E2E_TRAIN_STEPS)
  assert params['gate.min_auc'] == '0.9'
  assert params['input_format'] == 'csv'
  metrics = logged.data.metrics
  for name in ('auc', 'binary_accuracy', 'auc_lower_bound',
               'log_loss_skill', 'example_count'):
    assert metrics[name] == pytest.approx(summary.metrics[name], abs=1e-9)
  cash = summary.slice_metrics['payment_type=Cash']
  assert metrics['slice/payment_type:Cash/binary_accuracy'] == (
      pytest.approx(cash['binary_accuracy'], abs=1e-9))
  assert metrics['blessed'] == 1.0
  tags = logged.data.tags
  assert tags['mlmd.run_id'] == first.run_id
  assert tags['mlmd.store'] == e2e_run.metadata_path
  assert tags['gate.decision'] == 'BLESSED'
  assert tags['gate.reason'] == summary.blessing_reason
  assert tags['gate.sentence'] == summary.blessing_sentence
  assert metrics['decision_threshold'] == pytest.approx(
      summary.decision['threshold'], abs=1e-9)
  chain = {link.stage: link.artifact_id for link in first.chain()}
  for stage in ('examples', 'transform', 'model', 'evaluation', 'blessing',
                'push'):
    assert tags[f'mlmd.artifact.{stage}'] == str(chain[stage]), stage
  model = first.execution(run_model.TRAINER).output('model')
  assert tags['mlmd.artifact.model'] == str(model.id)
  assert tags['pushed_model'] == summary.pushed_model
  # And back: MLMD records the MLflow run on the pipeline run's context.
  store = run_model.open_store(e2e_run.metadata_path)
  context = store.get_context_by_type_and_name(run_model.RUN_CONTEXT,
                                               first.run_id)
  assert mlflow_log.recorded_run_id(context) == logged.info.run_id
  assert context.custom_properties[
      mlflow_log.URI_PROPERTY].string_value == mlflow_server.url


@pytest.mark.e2e
def test_first_run_artifacts_and_registered_version(e2e_run, mlflow_server,
                                                    mlmd_runs, tmp_path):
  first = mlmd_runs[0]
  pushed = first.pushed_destination
  client = _client(mlflow_server.url)
  [logged] = _runs(client)
  run_id = logged.info.run_id
  files = _artifact_paths(client, run_id)
  report_path, _ = report.report_paths(str(e2e_run.output_dir), first.run_id)
  assert f'report/{os.path.basename(report_path)}' in files
  assert 'schema/schema.pbtxt' in files
  for split in ('train', 'eval', 'test'):
    assert f'statistics/Split-{split}/FeatureStats.pb' in files
  # An MLflow model (tests/test_mlflow_models.py): the MLmodel beside the
  # SavedModel as pushed, card included, under data/<version>/.
  version_dir = f'model/data/{os.path.basename(pushed)}'
  assert 'model/MLmodel' in files
  assert f'{version_dir}/saved_model.pb' in files
  assert f'{version_dir}/model_card.json' in files
  assert 'model_card/model_card.html' in files
  # Artifacts are the run's files, byte for byte, through the server.
  local = client.download_artifacts(run_id, 'schema/schema.pbtxt',
                                    str(tmp_path))
  schema_uri = first.component('ImportSchemaGen').output('schema').uri
  assert pathlib.Path(local).read_bytes() == (
      pathlib.Path(schema_uri) / 'schema.pbtxt').read_bytes()
  # The pushed model is version 1 of the model named after the dataset.
  [version] = client.search_model_versions("name='taxi'")
  assert version.version == '1'
  assert version.run_id == run_id
  assert version.tags[mlflow_log.PUSH_PATH_TAG] == pushed
  assert version.tags['mlmd.run_id'] == first.run_id
  assert version.source.endswith('/model')
  assert client.get_model_version('taxi', '1').aliases == [
      mlflow_worker.CHAMPION]
  assert 'registered model taxi version 1' in _mlflow_line(
      e2e_run.outputs[0].stdout)
  store = run_model.open_store(e2e_run.metadata_path)
  context = store.get_context_by_type_and_name(run_model.RUN_CONTEXT,
                                               first.run_id)
  assert context.custom_properties[
      mlflow_log.VERSION_PROPERTY].string_value == '1'


@pytest.mark.e2e
def test_reruns_go_to_the_local_store_and_register_nothing(
    e2e_run, mlflow_server, mlmd_runs, tmp_path, monkeypatch):
  # The documented command, run where the output dir is `outputs`, as
  # `make run` leaves it in the repository.
  assert e2e_run.output_dir.name == 'outputs'
  monkeypatch.chdir(e2e_run.output_dir.parent)
  client = _client(_documented_ui_uri())
  logged = _runs(client)
  assert [r.data.tags['mlmd.run_id'] for r in logged] == [
      r.run_id for r in mlmd_runs[1:]]
  for run, output in zip(logged, e2e_run.outputs[1:], strict=True):
    line = _mlflow_line(output.stdout)
    print(line)
    assert f'run {run.info.run_id} ' in line
    assert 'registered model' not in line
    assert ('Browse it: mlflow ui --backend-store-uri '
            f'sqlite:///{e2e_run.output_dir}/mlflow.db') in output.stdout
    assert run.data.tags['gate.decision'] == 'MODEL UNCHANGED'
    assert run.data.tags['gate.model_unchanged'] == 'true'
    assert run.data.tags['gate.blessed_in_run'] == mlmd_runs[0].run_id
    assert run.data.tags['serving_model'] == mlmd_runs[0].pushed_destination
    assert 'pushed_model' not in run.data.tags
  # Nothing registered: not here, and nothing new on the server.
  assert client.search_registered_models() == []
  assert len(_client(mlflow_server.url).search_model_versions(
      "name='taxi'")) == 1
  # Artifacts live in <output-dir>/mlruns and read back through the store.
  latest = logged[-1]
  assert latest.info.artifact_uri.startswith(
      (e2e_run.output_dir / 'mlruns').as_uri())
  report_path, _ = report.report_paths(str(e2e_run.output_dir),
                                       mlmd_runs[2].run_id)
  local = client.download_artifacts(
      latest.info.run_id, f'report/{os.path.basename(report_path)}',
      str(tmp_path))
  assert pathlib.Path(local).read_bytes() == pathlib.Path(
      report_path).read_bytes()


@pytest.mark.e2e
def test_the_local_store_holds_no_credentials(concurrent_runs):
  """The re-runs had fake credentials in their environment (test_secrets)."""
  secrets = [v for k, v in concurrent_runs.credentials.items()
             if k != 'GOOGLE_APPLICATION_CREDENTIALS']
  files = [concurrent_runs.output_dir / 'mlflow.db', *sorted(
      p for p in (concurrent_runs.output_dir / 'mlruns').rglob('*')
      if p.is_file())]
  assert len(files) > 5
  for path in files:
    data = path.read_bytes()
    for secret in secrets:
      assert secret.encode() not in data, f'a credential reached {path}'
