"""Registered MLflow versions are models that serve: MLmodel, champion, scores.

Unit tests save the tiny model of tests/test_serving_check.py as the worker
saves a pushed model (`mlflow_worker.save_pyfunc`), load it with MLflow's
own `mlflow.pyfunc.load_model`, and score raw rows: a DataFrame with
missing cells, a dict of columns; a row with the label is refused, naming
it.

The e2e test serves the e2e run's registered version (logged to the
session's real `mlflow server`) with MLflow's own command, `mlflow models
serve -m models:/taxi/1 --env-manager local`, a real process on a free port,
and the REST server (`python -m serving`) beside it, and sends both the
same test rows: the scores and decisions are the same.
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from pipeline.tracking import mlflow_log
from pipeline.tracking import mlflow_worker
from tests import mariadb_server
from tests import model_server
from tests import pipeline_state
from tests import test_serving_check as tiny

MLFLOW = pathlib.Path(sys.executable).parent / 'mlflow'
# MLflow's model server imports MLflow and TensorFlow and loads the model:
# minutes on a loaded machine. Not asserted.
START_WAIT_SECONDS = 600.0
STOP_WAIT_SECONDS = 30.0
TAXI_EXCLUDED = ('big_tipper', 'tips', 'pickup_census_tract',
                 'dropoff_census_tract')


# --- Unit: the pyfunc model, saved as the worker saves it -----------------


@pytest.fixture(scope='module')
def tiny_pyfunc(tmp_path_factory):
  """The tiny model saved as an MLflow model, loaded by MLflow."""
  import mlflow.pyfunc
  # As the worker does: a save turns tracing off and on around itself, and
  # turning it on would create ./mlruns (the repository) for its traces.
  mlflow.tracing.disable()
  root = tmp_path_factory.mktemp('pyfunc')
  folder = root / '1796000000'  # The pushed version's folder name.
  module = tiny.TinyModel()
  tiny.tf.saved_model.save(module, str(folder),
                           signatures={'serving_default': module.serve})
  (folder / 'assets.extra').mkdir()
  (folder / 'assets.extra' / 'serving_contract.json').write_text(
      json.dumps(tiny.CONTRACT))
  local = mlflow_worker.save_pyfunc(
      {'loader_module': mlflow_log.LOADER_MODULE, 'path': str(folder),
       'pip_requirements': mlflow_log.pip_requirements()}, 'run-1',
      str(root / 'saved'))
  return pathlib.Path(local), mlflow.pyfunc.load_model(local)


def test_the_mlmodel_names_the_loader_and_pins_the_requirements(tiny_pyfunc):
  local, _ = tiny_pyfunc
  mlmodel = (local / 'MLmodel').read_text()
  assert 'loader_module: serving.mlflow_model' in mlmodel
  assert 'data: data/1796000000' in mlmodel
  assert 'run_id: run-1' in mlmodel
  # Nothing pickled: the SavedModel as pushed, and the loader's module name.
  assert sorted(p.name for p in local.iterdir()) == [
      'MLmodel', 'conda.yaml', 'data', 'python_env.yaml', 'requirements.txt']
  assert (local / 'data' / '1796000000' / 'saved_model.pb').is_file()
  requirements = (local / 'requirements.txt').read_text().splitlines()
  assert 'mlflow==2.22.2' in requirements
  assert 'tensorflow==2.16.2' in requirements
  assert all('==' in line for line in requirements), requirements


def test_raw_rows_in_the_rest_servers_predictions_out(tiny_pyfunc):
  _, model = tiny_pyfunc
  # c missing in row 1 (NaN, as pandas fills a gap); the ignored column is
  # dropped, as the REST server drops it.
  frame = pd.DataFrame({'x': [0.25, 0.9, -1.5], 'c': ['b', np.nan, 'a'],
                        'note': ['n1', 'n2', 'n3']})
  predictions = model.predict(frame)
  expected = [tiny.expected_probability(x, c)
              for x, c in ((0.25, 'b'), (0.9, ''), (-1.5, 'a'))]
  assert [p['probability'][0] for p in predictions] == pytest.approx(
      expected, abs=1e-6)
  assert [p['decision'] for p in predictions] == [
      '1' if p >= tiny.THRESHOLD else '0' for p in expected]
  assert predictions[0]['classes'] == ['0', '1']
  assert predictions[0]['scores'] == pytest.approx(
      [1 - expected[0], expected[0]], abs=1e-6)
  # A dict of columns, as `mlflow models serve` passes `inputs`.
  assert model.predict({'x': [0.25], 'c': ['b']}) == predictions[:1]


def test_a_row_the_contract_refuses_is_an_error_naming_it(tiny_pyfunc):
  from mlflow.exceptions import MlflowException
  _, model = tiny_pyfunc
  with pytest.raises(MlflowException) as refused:
    model.predict(pd.DataFrame({'x': [0.5, 0.25], 'y': [1, 0]}))
  assert refused.value.message == (
      "row 0: 'y' is the label, which the model predicts; leave it out of "
      'the request.')
  assert refused.value.get_http_status_code() == 400
  with pytest.raises(MlflowException, match="row 1: missing required "
                     "feature 'x'"):
    model.predict(pd.DataFrame({'x': [0.5, np.nan]}))


def test_mlflow_builds_its_scoring_app_around_the_model(tiny_pyfunc):
  """`mlflow models serve` runs this app: MLflow 2.22 registers its routes
  with Starlette's `app.route`, which Starlette 1.0 removed, so the lock
  keeps Starlette below 1 (requirements.in)."""
  from mlflow.pyfunc import scoring_server
  _, model = tiny_pyfunc
  app = scoring_server.init(model)
  assert {'/ping', '/invocations'} <= {r.path for r in app.routes}


# --- End to end: `mlflow models serve` against `python -m serving` ---------


def _post(url: str, payload) -> tuple:
  request = urllib.request.Request(
      url, data=json.dumps(payload).encode(), method='POST',
      headers={'Content-Type': 'application/json'})
  try:
    with urllib.request.urlopen(request, timeout=300) as answer:
      return answer.status, json.load(answer)
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


def _wait_for_ping(url: str, process: subprocess.Popen,
                   log: pathlib.Path) -> float:
  started = time.monotonic()
  while True:
    if process.poll() is not None:
      raise AssertionError(f'mlflow models serve exited {process.returncode}'
                           f':\n{log.read_text(errors="replace")[-4000:]}')
    try:
      with urllib.request.urlopen(f'{url}/ping', timeout=10) as answer:
        if answer.status == 200:
          return time.monotonic() - started
    except (urllib.error.URLError, ConnectionError, TimeoutError):
      pass
    if time.monotonic() - started > START_WAIT_SECONDS:
      raise AssertionError(f'mlflow models serve did not answer /ping in '
                           f'{START_WAIT_SECONDS:.0f} s:\n'
                           f'{log.read_text(errors="replace")[-4000:]}')
    time.sleep(1.0)


def _stop(process: subprocess.Popen) -> None:
  """SIGTERM to the command and its uvicorn; SIGKILL if they linger."""
  if process.poll() is None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
      process.wait(STOP_WAIT_SECONDS)
    except subprocess.TimeoutExpired:
      os.killpg(process.pid, signal.SIGKILL)
      process.wait()
  try:
    os.killpg(process.pid, signal.SIGKILL)  # A stray uvicorn worker.
  except ProcessLookupError:
    pass


@pytest.mark.e2e
def test_mlflow_models_serve_answers_as_the_rest_server(
    e2e_run, mlflow_server, tmp_path):
  import mlflow
  from mlflow.tracking import MlflowClient
  mlflow.set_tracking_uri(mlflow_server.url)
  client = MlflowClient(mlflow_server.url, mlflow_server.url)
  champion = client.get_model_version_by_alias('taxi',
                                               mlflow_worker.CHAMPION)
  assert str(champion.version) == '1'
  # MLflow's own command, as docs/tracking.md gives it: uvicorn comes
  # from the venv's scripts, the registry from MLFLOW_TRACKING_URI.
  port = mariadb_server.free_port()
  log = tmp_path / 'mlflow_serve.log'
  env = {**os.environ, 'MLFLOW_TRACKING_URI': mlflow_server.url,
         'PATH': f'{MLFLOW.parent}{os.pathsep}{os.environ.get("PATH", "")}'}
  with open(log, 'w') as out:
    process = subprocess.Popen(
        [str(MLFLOW), 'models', 'serve', '-m', 'models:/taxi/1',
         '--env-manager', 'local', '--host', '127.0.0.1', '--port',
         str(port)], stdout=out, stderr=subprocess.STDOUT, cwd=str(tmp_path),
        env=env, start_new_session=True)
  output_dir = tmp_path / 'outputs'
  shutil.copytree(e2e_run.serving_model_dir, output_dir / 'serving_model')
  try:
    with model_server.running(output_dir, tmp_path / 'server.log',
                              wait=False) as rest:
      examples = pipeline_state.split_examples(e2e_run.pipeline_root, 'test')
      rows = [model_server.instance_of(e, TAXI_EXCLUDED) for e in examples]
      assert any(len(r) < len(rows[0]) for r in rows)  # Some cells empty.
      url = f'http://127.0.0.1:{port}'
      seconds = _wait_for_ping(url, process, log)
      print(f'mlflow models serve answered /ping {seconds:.0f} s after its '
            'start (busy machine)')
      rest.wait_ready()
      status, mlflow_answer = _post(f'{url}/invocations',
                                    {'dataframe_records': rows})
      assert status == 200, mlflow_answer
      status, rest_answer = rest.json('POST', '/v1/models/taxi:predict',
                                      {'instances': rows})
      assert status == 200, rest_answer
      refused_status, refused = _post(
          f'{url}/invocations',
          {'dataframe_records': [{**rows[0], 'big_tipper': 1}]})
  finally:
    _stop(process)
  served = mlflow_answer['predictions']
  expected = rest_answer['predictions']
  assert len(served) == len(expected) == len(rows)
  for output in ('probability', 'scores'):
    assert np.asarray([p[output] for p in served]) == pytest.approx(
        np.asarray([p[output] for p in expected]), abs=1e-6), output
  assert [p['decision'] for p in served] == [p['decision'] for p in expected]
  assert [p['classes'] for p in served] == [p['classes'] for p in expected]
  assert {p['decision'] for p in served} == {'0', '1'}
  assert refused_status == 400
  assert ("'big_tipper' is the label, which the model predicts"
          in refused['message'])
  # The version's files: the MLmodel beside the SavedModel as pushed.
  version = pipeline_state.pushed_versions(e2e_run.serving_model_dir)[-1]
  files = {a.path for a in client.list_artifacts(champion.run_id, 'model')}
  assert {'model/MLmodel', 'model/requirements.txt', 'model/data'} <= files
  assert [a.path for a in client.list_artifacts(
      champion.run_id, 'model/data')] == [f'model/data/{version.name}']
