"""The REST server over real HTTP, serving the model the e2e run pushed.

One server process (`python -m serving --log-requests`) runs for the
module on a copy of the pushed models, on 127.0.0.1 and a free port. The
tests run in file order against it:

* status and metadata answer in TF Serving's shapes (the metadata as TF
  Serving prints a TF2 SavedModel's, per its own test data), with the raw
  features of the model's contract beside them;
* predictions over HTTP equal the SavedModel's own `serving_default`
  outputs for the same rows, in every form TF Serving documents: raw rows
  and columns, and serialized examples as {"b64": ...} (each float read
  back as float32 equals the model's); :classify's results are its
  scores; :regress is refused for this classification model;
* each bad request gets its 400 (404, 405, 413) and a message naming the
  feature and the problem; nested 100,000 deep, over 64 MB with or without
  a length, not UTF-8, and 300 random bodies: never a 500;
* /metrics, parsed with prometheus_client's parser, counts exactly the
  requests, errors, rows, missing values and unseen categories sent;
* a pushed version without a serving contract is refused and the old one
  stays;
* a concurrent load of at least 5,000 requests from 8 clients has no error,
  while a new version is pushed, loaded and swapped in; requests after the
  swap report the new version (p50 and p99 latency printed);
* the request log holds one line per scored row.

A server started on a model without a contract refuses to start.
"""

import base64
import dataclasses
import json
import pathlib
import random
import select
import shutil
import socket
import statistics
import subprocess
import threading
import time
from typing import List

import numpy as np
from prometheus_client.parser import text_string_to_metric_families
import pytest
import tensorflow as tf

from models import serving_contract
from pipeline.definition import dataset_config
from serving import app as app_lib
from serving import request_log
from tests import model_server
from tests import pipeline_state
from tests import random_bodies
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e
SPEC = dataset_config.load_named('taxi').spec
PREDICT = '/v1/models/taxi:predict'
LOAD_REQUESTS = 5000
LOAD_CLIENTS = 8
# The new version is pushed once this many requests are answered.
PUSH_AFTER_REQUESTS = 250
# Requests that must start after the swap was seen, before the load ends.
AFTER_SWAP_REQUESTS = 500
# The most the load may take on a loaded machine; not a timing assertion.
LOAD_DEADLINE_SECONDS = 900


@dataclasses.dataclass
class Served:
  server: model_server.ModelServer
  output_dir: pathlib.Path
  version: int
  examples: List[tf.train.Example]
  rows: List[dict]
  source: str  # The e2e run's pushed version folder.


@pytest.fixture(scope='module')
def served(e2e_run, tmp_path_factory):
  output_dir = tmp_path_factory.mktemp('serving') / 'outputs'
  shutil.copytree(e2e_run.serving_model_dir, output_dir / 'serving_model')
  version = int(pipeline_state.pushed_versions(
      output_dir / 'serving_model')[-1].name)
  with model_server.running(
      output_dir, output_dir.parent / 'server.log',
      ['--log-requests', '--poll-seconds', '0.5'], wait=False) as server:
    # Read while the server imports TensorFlow and loads the model.
    examples = pipeline_state.split_examples(e2e_run.pipeline_root, 'test')
    rows = [model_server.instance_of(e, SPEC.serving_excluded_columns)
            for e in examples]
    server.wait_ready()
    yield Served(server, output_dir, version, examples, rows,
                 str(e2e_run.serving_model_dir / str(version)))


def _metrics(server: model_server.ModelServer):
  status, headers, body = server.request('GET', '/metrics')
  assert status == 200
  assert headers['content-type'].startswith('text/plain')
  samples = {}
  for family in text_string_to_metric_families(body.decode()):
    for sample in family.samples:
      key = (sample.name, tuple(sorted(sample.labels.items())))
      samples[key] = sample.value
  return samples


def _total(samples, name: str, **labels) -> float:
  """Sum of a metric's samples whose labels include `labels`."""
  return sum(value for (sample, sample_labels), value in samples.items()
             if sample == name and
             all(dict(sample_labels).get(k) == v for k, v in labels.items()))


def test_status_is_tf_servings(served):
  status, body = served.server.json('GET', '/v1/models/taxi')
  assert status == 200
  assert body == {'model_version_status': [{
      'version': str(served.version), 'state': 'AVAILABLE',
      'status': {'error_code': 'OK', 'error_message': ''}}]}


def test_metadata_is_tf_servings_plus_the_contract(served):
  status, body = served.server.json('GET', '/v1/models/taxi/metadata')
  assert status == 200
  assert body['model_spec'] == {'name': 'taxi', 'signature_name': '',
                                'version': str(served.version)}
  signatures = body['metadata']['signature_def']['signature_def']
  # Every signature of the MetaGraphDef, as TF Serving lists a TF2 model's
  # (its testdata/saved_model_half_plus_two_tf2_2_versions_metadata.json).
  assert set(signatures) == {'serving_default', 'transform_features',
                             '__saved_model_init_op'}
  default = signatures['serving_default']
  assert default['method_name'] == 'tensorflow/serving/predict'
  assert default['defaults'] == {}
  assert default['inputs'] == {'examples': {
      'dtype': 'DT_STRING', 'name': 'serving_default_examples:0',
      'tensor_shape': {'dim': [{'size': '-1', 'name': ''}],
                       'unknown_rank': False}}}
  outputs = default['outputs']
  assert sorted(outputs) == ['classes', 'probability', 'scores']
  assert outputs['scores']['dtype'] == 'DT_FLOAT'
  assert outputs['scores']['tensor_shape']['dim'] == [
      {'size': '-1', 'name': ''}, {'size': '2', 'name': ''}]
  assert outputs['classes']['name'].startswith('StatefulPartitionedCall')
  assert signatures['__saved_model_init_op']['outputs'] == {
      '__saved_model_init_op': {
          'dtype': 'DT_INVALID', 'name': 'NoOp',
          'tensor_shape': {'dim': [], 'unknown_rank': True}}}
  contract = body['metadata']['serving_contract']
  features = {f['name']: f for f in contract['raw_features']}
  assert set(features) == set(SPEC.feature_columns)
  assert {n for n, f in features.items() if f['required']} == set(
      serving_contract.read(served.source).required)
  assert features['payment_type']['dtype'] == 'string'
  assert features['fare']['dtype'] == 'float'
  assert features['trip_start_hour']['dtype'] == 'int'
  assert contract['classes'] == ['0', '1']
  assert 0 < contract['decision_threshold'] < 1
  # By version, the same; an unknown one is TF Serving's 404.
  status, by_version = served.server.json(
      'GET', f'/v1/models/taxi/versions/{served.version}/metadata')
  assert (status, by_version) == (200, body)
  status, by_label = served.server.json('GET',
                                        '/v1/models/taxi/labels/stable')
  assert by_label == {'model_version_status': [{
      'version': str(served.version), 'state': 'AVAILABLE',
      'status': {'error_code': 'OK', 'error_message': ''}}]}


def _as_float32(values) -> np.ndarray:
  return np.array(values, dtype=np.float32)


def test_http_predictions_equal_the_saved_models(served):
  rows, examples = served.rows[:64], served.examples[:64]
  status, body = served.server.json('POST', PREDICT, {'instances': rows})
  assert status == 200
  # The SavedModel's own serving_default, on the original examples.
  serialized = model_server.serialized_without(
      examples, SPEC.serving_excluded_columns)
  loaded = model_server.loaded_model(served.source)
  expected = loaded.predict(serialized)
  predictions = body['predictions']
  assert len(predictions) == len(rows)
  np.testing.assert_allclose([p['probability'] for p in predictions],
                             expected['probability'], atol=1e-6)
  np.testing.assert_allclose([p['scores'] for p in predictions],
                             expected['scores'], atol=1e-6)
  assert [p['classes'] for p in predictions] == [['0', '1']] * len(rows)
  threshold = loaded.decision_threshold
  assert [p['decision'] for p in predictions] == [
      '1' if p >= threshold else '0' for p in expected['probability'][:, 0]]
  # The columnar form scores the same.
  columns = sorted({k for row in rows[:5] for k in row})
  full = [r for r in rows if set(r) == set(columns)][:3]
  status, body = served.server.json(
      'POST', PREDICT, {'inputs': {k: [r[k] for r in full] for k in columns}})
  assert status == 200
  _, by_rows = served.server.json('POST', PREDICT, {'instances': full})
  assert body['outputs']['probability'] == [
      p['probability'] for p in by_rows['predictions']]
  assert body['outputs']['decision'] == [
      p['decision'] for p in by_rows['predictions']]


def test_serialized_examples_are_answered_as_tf_serving_answers(served):
  """{"b64": ...} examples, the form TF Serving takes for this model's
  `examples` input, in all four of its spellings: the model's outputs
  exactly (each float read back as float32), TF Serving's keys."""
  examples = served.examples[:8]
  serialized = model_server.serialized_without(
      examples, SPEC.serving_excluded_columns)
  encoded = [{'b64': base64.b64encode(s).decode()} for s in serialized]
  expected = model_server.loaded_model(served.source).predict(serialized)
  for payload in ({'instances': encoded},
                  {'instances': [{'examples': e} for e in encoded]},
                  {'signature_name': 'serving_default', 'inputs': encoded},
                  {'inputs': {'examples': encoded}}):
    status, body = served.server.json('POST', PREDICT, payload)
    assert status == 200, body
    if 'instances' in payload:
      rows = body['predictions']
      assert [set(r) for r in rows] == [
          {'classes', 'probability', 'scores', 'decision'}] * len(rows)
      scores = [r['scores'] for r in rows]
      probability = [r['probability'] for r in rows]
    else:
      assert set(body['outputs']) == {'classes', 'probability', 'scores',
                                      'decision'}
      scores = body['outputs']['scores']
      probability = body['outputs']['probability']
    np.testing.assert_array_equal(_as_float32(scores), expected['scores'])
    np.testing.assert_array_equal(_as_float32(probability),
                                  expected['probability'])
  # Examples with the label are what transform_features takes.
  with_label = [{'b64': base64.b64encode(e.SerializeToString()).decode()}
                for e in examples[:2]]
  status, body = served.server.json('POST', PREDICT, {
      'signature_name': 'transform_features', 'instances': with_label})
  assert status == 200, body
  assert 'big_tipper_xf' in body['predictions'][0]
  # A broken example gets TensorFlow's own message, as from TF Serving.
  status, body = served.server.json('POST', PREDICT, {
      'instances': [{'b64': base64.b64encode(b'hello').decode()}]})
  assert status == 400
  assert body == {'error': "the model refused the rows: Could not parse "
                  "example input, value: 'hello'"}


def test_classify_answers_the_scores_and_regress_is_refused(served):
  rows = served.rows[:6]
  shared = ['trip_start_month', 'trip_start_day']
  context = {k: rows[0][k] for k in shared}
  same = [r for r in rows if all(r.get(k) == context[k] for k in shared)]
  examples = [{k: ([v] if i % 2 else v) for k, v in r.items()
               if k not in shared} for i, r in enumerate(same)]
  status, body = served.server.json(
      'POST', '/v1/models/taxi:classify',
      {'context': context, 'examples': examples})
  assert status == 200, body
  _, predicted = served.server.json('POST', PREDICT, {'instances': same})
  assert body['results'] == [
      [['0', p['scores'][0]], ['1', p['scores'][1]]]
      for p in predicted['predictions']]
  assert body['decisions'] == [p['decision']
                               for p in predicted['predictions']]
  status, body = served.server.json('POST', '/v1/models/taxi:regress',
                                    {'examples': examples})
  assert status == 400
  assert body['error'].startswith('Expected one output Tensor')
  assert "use :classify or :predict" in body['error']


def _good(served) -> dict:
  return dict(served.rows[0])


BAD_REQUESTS = [
    # (name, raw body or a change to a good row, status, message)
    ('not JSON', b'fare=12.5', 400, 'the request body is not JSON'),
    ('empty', {'instances': []}, 400,
     'no rows to score: "instances" is empty'),
    ('missing required', lambda r: {k: v for k, v in r.items()
                                    if k != 'fare'}, 400,
     "instance 0: missing required feature 'fare' (float)"),
    ('wrong type', lambda r: {**r, 'fare': 'twelve'}, 400,
     "instance 0, feature 'fare' (float): expected a number, got a string "
     '"twelve"'),
    ('wrong shape', lambda r: {**r, 'payment_type': ['Cash', 'Cash']}, 400,
     "instance 0, feature 'payment_type' (string): expected one value (a "
     'scalar), got a list ["Cash", "Cash"]'),
    ('unknown feature', lambda r: {**r, 'surge': 2.0}, 400,
     "instance 0: unknown feature 'surge'; model 'taxi' takes company, "),
    ('label sent', lambda r: {**r, 'big_tipper': 1}, 400,
     "instance 0: 'big_tipper' is the label, which the model predicts"),
    ('not a row', {'instances': [[1, 2]]}, 400,
     'instance 0 is a list, not an object'),
]


@pytest.mark.parametrize('name, change, status, message', BAD_REQUESTS,
                         ids=[case[0] for case in BAD_REQUESTS])
def test_bad_requests_get_400_naming_the_problem(served, name, change, status,
                                                 message):
  del name  # The test id.
  if isinstance(change, bytes):
    raw = change
  elif callable(change):
    raw = json.dumps({'instances': [change(_good(served))]}).encode()
  else:
    raw = json.dumps(change).encode()
  code, body = served.server.json('POST', PREDICT, raw=raw)
  assert code == status
  assert set(body) == {'error'}
  assert message in body['error'], body['error']


def test_unknown_model_path_and_method(served):
  code, body = served.server.json('POST', '/v1/models/penguins:predict',
                                  {'instances': [_good(served)]})
  assert code == 404
  assert body == {'error': "model 'penguins' not found; this server serves "
                  "'taxi' (GET /v1/models/taxi)."}
  code, body = served.server.json('GET', PREDICT)
  assert code == 405 and 'takes POST' in body['error']
  code, body = served.server.json('GET', '/v2/anything')
  assert code == 404 and 'no such path' in body['error']
  code, body = served.server.json(
      'GET', '/v1/models/taxi/versions/1/metadata')
  assert code == 404
  assert body['error'].startswith(
      'Servable not found for request: Specific(taxi, 1); version 1 of '
      f"model 'taxi' is not served: this server serves {served.version} "
      '(stable)')
  code, body = served.server.json('GET', '/v1/models/taxi/versions/1')
  assert (code, body) == (404, {'error': (
      'Could not find version 1 of model taxi; see GET /v1/models/taxi for '
      'its versions.')})
  code, body = served.server.json('POST', '/v1/models/taxi:explain',
                                  {'instances': []})
  assert code == 400 and body['error'].startswith(
      'Malformed request: POST /v1/models/taxi:explain')
  code, body = served.server.json('POST', '/v1/models/taxi/labels/canary'
                                  ':predict', {'instances': []})
  assert (code, body) == (400, {'error': (
      "Unrecognized servable version label: canary; model 'taxi' has the "
      'labels stable.')})


def _send(server, head: bytes, chunks=()) -> int:
  """The status of a request written by hand on a socket (a body sent in
  chunks, or a declared length larger than what follows). Sending stops
  once the server has answered (it reads no further)."""
  with socket.create_connection(('127.0.0.1', server.port), timeout=120) as s:
    s.sendall(head)
    s.settimeout(10)
    for chunk in chunks:
      if select.select([s], [], [], 0)[0]:
        break  # Answered.
      try:
        s.sendall(chunk)
      except (BrokenPipeError, ConnectionResetError, socket.timeout):
        break  # Answered, and no longer read or closed.
    s.settimeout(120)
    answer = b''
    while b'\r\n' not in answer:
      data = s.recv(4096)
      if not data:
        break
      answer += data
  return int(answer.split(b' ', 2)[1])


def test_no_malformed_body_gets_a_500(served):
  server = served.server
  deep = [b'[' * 100_000, b'{"instances": ' + b'[' * 100_000,
          b'{"instances": [{"fare": ' + b'{"a": ' * 100_000,
          b'{"instances": [{"fare": ' + b'[' * 900 + b']' * 900 + b'}]}']
  for body in deep:
    code, answer = server.json('POST', PREDICT, raw=body)
    assert code == 400, answer
  for body, message in [
      (b'\xff\xfe{"instances": []}', 'is not UTF-8 text'),
      (b'{"instances": [{"fare": ' + b'9' * 5000 + b'}]}',
       'Exceeds the limit (4300)'),
      (json.dumps({'instances': [{**_good(served),
                                  'payment_type': '\ud800'}]}).encode(),
       'not valid Unicode'),
      (json.dumps({'instances': [{**_good(served), 'fare': True}]}).encode(),
       'got a boolean true'),
      (json.dumps({'instances': [_good(served)],
                   'signature_name': 7}).encode(),
       "'signature_name' key must be a string"),
  ]:
    code, answer = server.json('POST', PREDICT, raw=body)
    assert code == 400 and message in answer['error'], answer
  path = PREDICT.encode()
  over = app_lib.MAX_BODY_BYTES + 1
  assert _send(server, b'POST ' + path + b' HTTP/1.1\r\nHost: x\r\n'
               b'Content-Length: ' + str(over).encode() + b'\r\n\r\n',
               [b'[' * 1024]) == 413
  chunk = b'[' * (1 << 20)
  chunked = [b'%x\r\n' % len(chunk) + chunk + b'\r\n'] * 65 + [b'0\r\n\r\n']
  assert _send(server, b'POST ' + path + b' HTTP/1.1\r\nHost: x\r\n'
               b'Transfer-Encoding: chunked\r\n\r\n', chunked) == 413
  rng = random.Random(7)
  bodies = list(random_bodies.bodies(rng, 300))
  for method in ('predict', 'classify', 'regress', 'feedback'):
    for body in bodies[::4]:
      code, _, answer = server.request('POST', f'/v1/models/taxi:{method}',
                                       body)
      assert code in (200, 400, 413), (method, body[:100], answer[:300])
  assert server.json('GET', '/v1/models/taxi')[0] == 200  # Still up.


def test_metrics_count_what_was_sent(served):
  before = _metrics(served.server)
  good = _good(served)
  without_company = {k: v for k, v in good.items() if k != 'company'}
  unseen = {**good, 'payment_type': 'Bitcoin'}
  sent_rows = [[good], [without_company, unseen], [unseen, unseen, good]]
  for rows in sent_rows:
    assert served.server.json('POST', PREDICT, {'instances': rows})[0] == 200
  for _, change, _, _ in BAD_REQUESTS[:3]:
    raw = change if isinstance(change, bytes) else json.dumps(
        change if isinstance(change, dict) else
        {'instances': [change(good)]}).encode()
    assert served.server.json('POST', PREDICT, raw=raw)[0] == 400
  after = _metrics(served.server)

  def delta(name, **labels):
    return _total(after, name, **labels) - _total(before, name, **labels)

  version = str(served.version)
  assert delta('serving_requests_total', endpoint='predict', code='200',
               version=version) == 3
  assert delta('serving_requests_total', endpoint='predict',
               code='400') == 3
  for problem in ('not_json', 'empty', 'missing_feature'):
    assert delta('serving_request_errors_total', problem=problem,
                 code='400') == 1
  assert delta('serving_rows_total', version=version) == 6
  assert delta('serving_request_latency_seconds_count',
               endpoint='predict') == 6
  assert delta('serving_prediction_score_count', output='probability',
               version=version) == 6
  assert delta('serving_prediction_score_bucket', output='probability',
               le='+Inf') == 6
  assert delta('serving_feature_unseen_category_total',
               feature='payment_type') == 3
  missing_company = 1 + sum(1 for rows in sent_rows for r in rows
                            if r is not without_company and
                            'company' not in r)
  assert delta('serving_feature_missing_total',
               feature='company') == missing_company
  assert _total(after, 'serving_model_version', model='taxi',
                label='stable') == served.version


def _copy_version(served, version: int, contract: bool = True) -> None:
  """A push as the Pusher makes it: copied file by file, not atomically."""
  source = served.output_dir / 'serving_model' / str(served.version)
  target = served.output_dir / 'serving_model' / str(version)
  shutil.copytree(source, target)
  if not contract:
    shutil.rmtree(target / serving_contract.ASSETS_EXTRA)


def _status(served):
  return served.server.json('GET', '/v1/models/taxi')[1][
      'model_version_status']


def _wait(predicate, what: str, timeout: float = 300.0):
  deadline = time.monotonic() + timeout
  while not predicate():
    assert time.monotonic() < deadline, f'timed out waiting for {what}'
    time.sleep(0.2)


def test_a_version_without_contract_is_refused(served):
  refused = served.version + 1
  _copy_version(served, refused, contract=False)
  _wait(lambda: len(_status(served)) == 2, 'the refusal')
  first, current = _status(served)
  assert first['version'] == str(refused)
  assert first['state'] == 'END'
  assert 'has no serving contract' in first['status']['error_message']
  assert current == {'version': str(served.version), 'state': 'AVAILABLE',
                     'status': {'error_code': 'OK', 'error_message': ''}}
  status, headers, _ = served.server.request(
      'POST', PREDICT, json.dumps({'instances': [_good(served)]}).encode())
  assert status == 200 and headers['x-model-version'] == str(served.version)


@dataclasses.dataclass
class Call:
  start: float
  seconds: float
  status: int
  version: str
  rows: int
  sent: int


def test_load_with_a_hot_swap_has_no_error(served):
  new_version = served.version + 2
  batches = [served.rows[i:i + 1 + i % 3] for i in range(len(served.rows) - 3)]
  bodies = [(json.dumps({'instances': b}).encode(), len(b)) for b in batches]
  calls: List[Call] = []
  lock = threading.Lock()
  swap_seen = [None]  # When the status first showed the new version.
  stop = threading.Event()
  problems = []

  after_swap = [0]

  def enough() -> bool:
    return (len(calls) >= LOAD_REQUESTS and
            after_swap[0] >= AFTER_SWAP_REQUESTS)

  def client(n: int) -> None:
    connection = served.server.connection()
    i = n
    try:
      while not stop.is_set():
        body, sent = bodies[i % len(bodies)]
        i += LOAD_CLIENTS
        start = time.monotonic()
        status, headers, data = served.server.request(
            'POST', PREDICT, body, connection)
        seconds = time.monotonic() - start
        rows = len(json.loads(data).get('predictions', []))
        with lock:
          calls.append(Call(start, seconds, status,
                            headers.get('x-model-version', ''), rows, sent))
          if swap_seen[0] is not None and start > swap_seen[0]:
            after_swap[0] += 1
          if status != 200:
            problems.append(data[:300])
          if enough():
            stop.set()
    except (OSError, ValueError) as e:  # Reported below: fails the test.
      problems.append(repr(e))
      stop.set()
    finally:
      connection.close()

  started = time.monotonic()
  threads = [threading.Thread(target=client, args=(n,))
             for n in range(LOAD_CLIENTS)]
  for thread in threads:
    thread.start()
  _wait(lambda: len(calls) >= PUSH_AFTER_REQUESTS or stop.is_set(),
        'the first requests')
  _copy_version(served, new_version)
  pushed_at = time.monotonic()

  def swapped() -> bool:
    if stop.is_set():
      return True
    available = [e['version'] for e in _status(served)
                 if e['state'] == 'AVAILABLE']
    if available == [str(new_version)]:
      swap_seen[0] = time.monotonic()
      return True
    return False

  _wait(swapped, 'the swap', LOAD_DEADLINE_SECONDS)
  stop.wait(LOAD_DEADLINE_SECONDS)
  stop.set()
  for thread in threads:
    thread.join()
  elapsed = time.monotonic() - started
  latencies = sorted(c.seconds for c in calls)
  after = [c for c in calls if swap_seen[0] and c.start > swap_seen[0]]
  print(f'\nLoad: {len(calls)} requests ({sum(c.rows for c in calls)} rows) '
        f'from {LOAD_CLIENTS} clients in {elapsed:.1f} s '
        f'({len(calls) / elapsed:.0f} requests/s), errors '
        f'{sum(1 for c in calls if c.status != 200)}; latency p50 '
        f'{statistics.median(latencies) * 1000:.1f} ms, p99 '
        f'{latencies[int(0.99 * (len(latencies) - 1))] * 1000:.1f} ms; '
        f'swap seen {swap_seen[0] - pushed_at if swap_seen[0] else -1:.1f} s '
        f'after the push; {len(after)} requests after it')
  assert not problems, problems[:5]
  assert len(calls) >= LOAD_REQUESTS
  assert all(c.status == 200 for c in calls)
  assert swap_seen[0] is not None
  versions = {c.version for c in calls}
  assert versions == {str(served.version), str(new_version)}
  assert len(after) >= AFTER_SWAP_REQUESTS
  assert {c.version for c in after} == {str(new_version)}
  assert all(c.rows == c.sent for c in calls)
  served.version = new_version


def test_request_log_has_a_line_per_scored_row(served):
  samples = _metrics(served.server)
  scored = _total(samples, 'serving_rows_total')
  records = request_log.read(
      request_log.log_folder(str(served.output_dir), 'taxi'))
  assert records.unreadable == 0
  assert len(records.records) == scored
  first = records.records[0]
  assert set(first) >= {'time', 'model', 'version', 'label', 'endpoint',
                        'prediction_id', 'features', 'prediction'}
  assert set(first['prediction']) == {'classes', 'probability', 'scores',
                                      'decision'}
  assert len({r['prediction_id'] for r in records.records}) == len(
      records.records)
  assert {r['version'] for r in records.records} >= {served.version}


def test_a_model_without_contract_is_refused_at_start(e2e_run, tmp_path):
  output_dir = tmp_path / 'outputs'
  [latest] = pipeline_state.pushed_versions(e2e_run.serving_model_dir)[-1:]
  target = output_dir / 'serving_model' / latest.name
  shutil.copytree(latest, target)
  shutil.rmtree(target / serving_contract.ASSETS_EXTRA)
  result = subprocess.run(
      model_server.command(output_dir, 1), capture_output=True, text=True,
      cwd=str(REPO_ROOT), timeout=300)
  assert result.returncode == 3, result.stderr[-2000:]
  [line] = [ln for ln in result.stderr.splitlines()
            if ln.startswith('SERVER FAILED:')]
  assert (f'no servable model under {output_dir / "serving_model"}: '
          f'version {latest.name}: {target} has no serving contract') in line
  assert 'Re-run the pipeline' in line
