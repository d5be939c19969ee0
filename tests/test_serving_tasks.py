"""The REST app on the regression and multiclass models (tests/task_runs.py).

The app runs in this process (starlette's TestClient: real requests
through the ASGI app, the real loaded SavedModel, no network), on a copy of
each task's pushed version:

* regression: one output, so its name is dropped, as in TF Serving:
  `{"predictions": [[v], ...]}` and `{"outputs": [[v], ...]}`; `:regress`
  answers `{"results": [v, ...]}`; every value read back as float32 is the
  model's own; `:classify` is refused with TF Serving's message; labels
  give the live RMSE of the version;
* multiclass: `:classify` answers [label, score] per class, the model's
  classes and scores; no `decision` (binary only); `:regress` is refused.
"""

import base64
import shutil

import numpy as np
import pytest
from starlette import testclient

from serving import app as app_lib
from serving import metrics as metrics_lib
from serving import model_store
from tests import model_server
from tests import pipeline_state

pytestmark = pytest.mark.e2e
ROWS = 20


def _served(task_runs, task, tmp_path):
  """(TestClient app, loaded model, examples without label, JSON rows)."""
  run = task_runs[task]
  assert run.first.returncode == 0, run.first.stderr[-3000:]
  version = pipeline_state.pushed_versions(run.output_dir /
                                           'serving_model')[-1]
  shutil.copytree(version, tmp_path / 'serving_model' / version.name)
  watcher = model_store.ModelWatcher(str(tmp_path / 'serving_model'), 60)
  model = watcher.load_newest()
  server = app_lib.Server(watcher, metrics_lib.ServingMetrics(model.name))
  label = run.data.label
  examples = pipeline_state.split_examples(run.output_dir / 'pipeline_root',
                                           'test')[:ROWS]
  serialized = model_server.serialized_without(examples, [label])
  rows = [model_server.instance_of(e, [label, *model.contract.ignored])
          for e in examples]
  truth = [e.features.feature[label] for e in examples]
  return app_lib.create_app(server), model, serialized, rows, truth


def _b64(serialized):
  return [{'b64': base64.b64encode(s).decode()} for s in serialized]


def test_regression_answers_without_the_outputs_name(task_runs, tmp_path):
  app, model, serialized, rows, truth = _served(task_runs, 'regression',
                                                tmp_path)
  expected = model.predict(serialized)['outputs']  # [rows, 1] float32
  name = model.name
  with testclient.TestClient(app) as client:
    answer = client.post(f'/v1/models/{name}:predict',
                         json={'instances': _b64(serialized)})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()['predictions']
    assert all(isinstance(p, list) and len(p) == 1 for p in predictions)
    np.testing.assert_array_equal(np.array(predictions, np.float32),
                                  expected)
    columns = client.post(f'/v1/models/{name}:predict',
                          json={'inputs': _b64(serialized)}).json()
    assert columns == {'outputs': predictions}
    regressed = client.post(f'/v1/models/{name}:regress',
                            json={'examples': rows})
    assert regressed.status_code == 200, regressed.text
    assert regressed.json() == {'results': [p[0] for p in predictions]}
    refused = client.post(f'/v1/models/{name}:classify',
                          json={'examples': rows})
    assert refused.status_code == 400
    assert refused.json()['error'].startswith(
        'Expected classification signature outputs to contain at least one '
        'of "classes" or "scores"')
    # Labels: the live RMSE of this version.
    request_id = answer.headers['x-request-id']
    values = [t.float_list.value[0] for t in truth]
    fed = client.post(f'/v1/models/{name}:feedback', json={'labels': [
        {'prediction_id': f'{request_id}-{i}', 'label': v}
        for i, v in enumerate(values)]})
    assert fed.json() == {'matched': ROWS, 'unmatched': 0,
                          'unmatched_labels': []}
    metrics = client.get('/metrics').text
  rmse = float(np.sqrt(np.mean((np.array(values) - expected[:, 0]) ** 2)))
  [line] = [ln for ln in metrics.splitlines()
            if ln.startswith('serving_live_quality{') and 'rmse' in ln]
  assert float(line.split()[-1]) == pytest.approx(rmse, rel=1e-5)


def test_multiclass_classifies_with_its_classes_and_scores(task_runs,
                                                           tmp_path):
  app, model, serialized, rows, _ = _served(task_runs, 'multiclass',
                                            tmp_path)
  expected = model.predict(serialized)
  name = model.name
  with testclient.TestClient(app) as client:
    answer = client.post(f'/v1/models/{name}:classify',
                         json={'examples': rows})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {'results'}  # No decisions: binary only.
    results = body['results']
    assert [[label for label, _ in row] for row in results] == [
        [c.decode() for c in classes] for classes in expected['classes']]
    np.testing.assert_array_equal(
        np.array([[score for _, score in row] for row in results],
                 np.float32), expected['scores'])
    predicted = client.post(f'/v1/models/{name}:predict',
                            json={'instances': rows}).json()['predictions']
    assert set(predicted[0]) == {'classes', 'scores'}
    refused = client.post(f'/v1/models/{name}:regress',
                          json={'examples': rows})
    assert refused.status_code == 400
    assert refused.json()['error'].startswith('Expected one output Tensor')
