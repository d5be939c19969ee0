"""TF Serving's REST formats, the canary split and live quality, without a
model (seconds).

* serving/tf_serving.py reads every request form TF Serving's REST
  documentation shows (rows, columns, {"b64": ...}, classify and regress
  with context) and writes its answer forms (one output's name dropped,
  `results`, floats as TF Serving prints them); and no body, however
  malformed, gets anything but a RequestError: random bodies are thrown at
  it (a fixed seed, so a failure repeats).
* serving/routing.py: the canary gets exactly floor(n * share) of n
  unaddressed requests, from any number of threads; promote and rollback.
* serving/feedback.py: AUC, accuracy and RMSE equal scikit-learn's on the
  same labels; predictions are matched by id and by key, once.
* serving/metrics.py: the per-version series follow the labels.
* The shipped Prometheus rules and config pass `promtool check`, and
  `promtool test rules` fires each alert on series made to cross it.
"""

import base64
import json
import pathlib
import random
import shutil
import subprocess
import threading

import numpy as np
from prometheus_client.parser import text_string_to_metric_families
import pytest
from sklearn import metrics as sk_metrics
import yaml

from models import serving_contract
from serving import admin
from serving import feedback
from serving import instances
from serving import metrics as metrics_lib
from serving import routing
from serving import tf_serving
from tests import random_bodies
from tests.conftest import REPO_ROOT

MONITORING = REPO_ROOT / 'serving' / 'monitoring'
CONTRACT = serving_contract.Contract(
    dataset='taxi', task='binary', label='big_tipper', classes=('0', '1'),
    outputs=('classes', 'probability', 'scores'),
    features=(serving_contract.Feature('fare', 'float', True, 'log'),))


def _parse(payload) -> tf_serving.PredictInput:
  body = payload if isinstance(payload, bytes) else json.dumps(
      payload).encode()
  return tf_serving.parse_predict(tf_serving.parse_body(body), 'examples')


def _b64(data: bytes) -> dict:
  return {'b64': base64.b64encode(data).decode()}


# --- Requests. ---------------------------------------------------------------


def test_predict_takes_every_form_of_serialized_examples():
  """api_rest.md: one named input may be given bare or by name, in rows or
  in columns; binary values as {"b64": ...}, padding optional."""
  raw = [b'\x0a\x00', b'\x0a\x02\x0a\x00']
  forms = [
      {'instances': [_b64(r) for r in raw]},
      {'instances': [{'examples': _b64(r)} for r in raw]},
      {'inputs': [_b64(r) for r in raw]},
      {'inputs': {'examples': [_b64(r) for r in raw]}},
      {'instances': [{'b64': base64.b64encode(r).decode().rstrip('=')}
                     for r in raw]},
  ]
  for form in forms:
    parsed = _parse(form)
    assert parsed.serialized == raw, form
    assert parsed.rows is None
    assert parsed.columnar == ('inputs' in form)
  named = _parse({'signature_name': 'transform_features',
                  'instances': [_b64(raw[0])]})
  assert named.signature == 'transform_features'


def test_predict_takes_rows_and_columns_of_raw_features():
  assert _parse({'instances': [{'fare': 1.5}, {'fare': 2}]}).rows == [
      {'fare': 1.5}, {'fare': 2}]
  columns = _parse({'inputs': {'fare': [1.5, 2], 'company': ['a', None]}})
  assert columns.columnar
  assert columns.rows == [{'fare': 1.5, 'company': 'a'},
                          {'fare': 2, 'company': None}]


@pytest.mark.parametrize('payload, message', [
    ({'instances': [_b64(b'x'), {'fare': 1}]}, 'instance 1 is an object'),
    ({'instances': [{'examples': _b64(b'x')}, _b64(b'y')]},
     'instance 1 is not {"examples": {"b64": ...}}'),
    ({'instances': [{'b64': 'not base64!'}]},
     'instance 0: the "b64" value is not base64'),
    ({'inputs': _b64(b'x')}, '"inputs" is an object; send an object of'),
    ({'inputs': {'examples': 'x'}}, 'inputs["examples"] is a string'),
    ({'instances': [], 'inputs': {}}, 'got both'),
    ({'instances': [[1]]}, 'instance 0 is a list, not an object'),
    ({'instances': [{'fare': 1}] * 10_001}, '10001 rows in one request'),
    ({'inputs': {'fare': [1] * 10_001}}, '10001 rows in one request'),
])
def test_bad_predict_forms_are_named(payload, message):
  with pytest.raises(instances.RequestError, match='.*') as raised:
    _parse(payload)
  assert raised.value.status == 400
  assert message in str(raised.value)


def test_classify_examples_take_lists_b64_and_a_context():
  signature, rows = tf_serving.parse_examples({
      'signature_name': 'serving_default',
      'context': {'trip_start_day': [4], 'company': _b64(b'Flash Cab')},
      'examples': [{'fare': 8.25, 'payment_type': ['Cash']},
                   {'fare': [], 'tips': [1.0, 2.0]}]}, 'classify')
  assert signature == 'serving_default'
  assert rows == [
      {'trip_start_day': 4, 'company': 'Flash Cab', 'fare': 8.25,
       'payment_type': 'Cash'},
      {'trip_start_day': 4, 'company': 'Flash Cab', 'fare': None,
       'tips': [1.0, 2.0]}]


@pytest.mark.parametrize('payload, message', [
    ({'instances': [{'fare': 1}]}, "When method is classify, key 'examples' "
     'is expected and was not found'),
    ({'examples': {'fare': 1}}, "Expecting 'examples' value to be an "
     'list/array'),
    ({'examples': []}, '"examples" is empty'),
    ({'examples': [[1]]}, 'example 0 is a list; Example must be JSON object'),
    ({'context': {'fare': 1}, 'examples': [{'fare': 2}]},
     "example 0: feature \"fare\" is also in \"context\"; features that "
     'appear in context must not appear in examples'),
    ({'examples': [{'company': {'b64': '/w=='}}]}, 'is not UTF-8 text'),
])
def test_bad_classify_bodies_are_named(payload, message):
  with pytest.raises(instances.RequestError) as raised:
    tf_serving.parse_examples(payload, 'classify')
  assert raised.value.status == 400
  assert message in str(raised.value)


def test_no_body_gets_anything_but_a_request_error():
  """2,000 random bodies (fixed seed) through every parser and the row
  checker: each is accepted or refused with a RequestError of status 400,
  never any other exception."""
  rng = random.Random(29)
  checker = instances.Checker(CONTRACT)
  outcomes = {'accepted': 0, 'refused': 0}
  for body in random_bodies.bodies(rng, 2000):
    try:
      request = tf_serving.parse_body(body)
      try:
        parsed = tf_serving.parse_predict(request, 'examples')
        if parsed.rows is not None:
          checker.check_rows(parsed.rows)
      except instances.RequestError as e:
        assert e.status == 400
      for method in ('classify', 'regress'):
        try:
          _, rows = tf_serving.parse_examples(request, method)
          checker.check_rows(rows)
        except instances.RequestError as e:
          assert e.status == 400
      feedback.parse_feedback(request, CONTRACT, ('fare',))
      outcomes['accepted'] += 1
    except instances.RequestError as e:
      assert e.status == 400, (body[:80], e)
      assert len(str(e)) < 2000, str(e)[:200]
      outcomes['refused'] += 1
  assert outcomes['refused'] > 1000


# --- Answers. ----------------------------------------------------------------


def test_one_output_is_answered_without_its_name():
  """api_rest.md: "If the output of the model contains only one named
  tensor, we omit the name"; a [batch, 1] output gives [value] per row."""
  outputs = {'outputs': np.array([[3.5], [4.0]], dtype=np.float32)}
  assert tf_serving.predictions(outputs) == [[3.5], [4.0]]
  assert tf_serving.columns(outputs) == [[3.5], [4.0]]
  assert tf_serving.regress_results(outputs) == [3.5, 4.0]


def test_several_outputs_are_objects_per_row_or_per_column():
  outputs = {'classes': np.array([[b'0', b'1']] * 2),
             'scores': np.array([[0.25, 0.75], [1.0, 0.0]], np.float32),
             'raw_bytes': np.array([b'\xff', b'a'])}
  assert tf_serving.predictions(outputs) == [
      {'classes': ['0', '1'], 'scores': [0.25, 0.75],
       'raw_bytes': {'b64': '/w=='}},
      {'classes': ['0', '1'], 'scores': [1.0, 0.0],
       'raw_bytes': {'b64': 'YQ=='}}]
  assert tf_serving.columns(outputs)['scores'] == [[0.25, 0.75], [1.0, 0.0]]
  assert tf_serving.classify_results(outputs) == [
      [['0', 0.25], ['1', 0.75]], [['0', 1.0], ['1', 0.0]]]


def test_floats_are_the_values_tf_serving_prints():
  """TF Serving writes six significant digits when they read back as the
  same float32, else nine (WriteDecimal in util/json_tensor.cc)."""
  values = np.array([0.176, 0.8168855, 5.014161e-06, 1.0, 123456.0,
                     float('nan'), float('-inf')], dtype=np.float32)
  written = tf_serving.tensor_json('scores', values)
  assert written[:5] == [0.176, 0.816885471, 5.01416116e-06, 1.0, 123456.0]
  assert np.isnan(written[5]) and written[6] == float('-inf')
  # Each still reads back as the same float32.
  np.testing.assert_array_equal(np.array(written, np.float32), values)


def test_metadata_keeps_tf_servings_keys_and_adds_one():
  answer = tf_serving.metadata_answer('taxi', 7, {'serving_default': {}},
                                      {'serving_contract': {'task': 'x'}})
  assert answer == {
      'model_spec': {'name': 'taxi', 'signature_name': '', 'version': '7'},
      'metadata': {'signature_def': {'signature_def': {
          'serving_default': {}}}, 'serving_contract': {'task': 'x'}}}


# --- The canary split. -------------------------------------------------------


class _Model:

  def __init__(self, version: int):
    self.version = version


def test_the_canary_gets_exactly_its_share_from_many_threads():
  router = routing.Router(0.1)
  router.set(routing.STABLE, _Model(1))
  router.set(routing.CANARY, _Model(2))
  picked = []
  lock = threading.Lock()

  def client() -> None:
    for _ in range(250):
      model, label = router.pick()
      with lock:
        picked.append((model.version, label))

  threads = [threading.Thread(target=client) for _ in range(8)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  assert len(picked) == 2000
  assert picked.count((2, routing.CANARY)) == 200
  assert picked.count((1, routing.STABLE)) == 1800


@pytest.mark.parametrize('share, n', [(0.0, 100), (1.0, 100), (0.333, 1000),
                                      (0.05, 19), (0.5, 7)])
def test_every_prefix_of_the_split_is_floor_n_times_share(share, n):
  router = routing.Router(share)
  router.set(routing.STABLE, _Model(1))
  router.set(routing.CANARY, _Model(2))
  to_canary = 0
  for i in range(1, n + 1):
    to_canary += router.pick()[1] == routing.CANARY
    assert to_canary == int(i * round(share * 1e6)) // 1_000_000


def test_a_new_share_counts_from_when_it_is_set():
  router = routing.Router(0.5)
  router.set(routing.STABLE, _Model(1))
  router.set(routing.CANARY, _Model(2))
  for _ in range(5):
    router.pick()
  router.share = 0.25
  assert [router.pick()[1] for _ in range(4)] == [
      routing.STABLE] * 3 + [routing.CANARY]
  with pytest.raises(ValueError, match='from 0 to 1'):
    router.share = 1.5


def test_promote_and_rollback_move_the_labels():
  router = routing.Router(0.5)
  router.set(routing.STABLE, _Model(1))
  assert router.pick()[0].version == 1  # No canary: all to stable.
  router.set(routing.CANARY, _Model(2))
  stable, previous = router.promote()
  assert (stable.version, previous.version) == (2, 1)
  assert router.labels() == {routing.STABLE: stable}
  with pytest.raises(LookupError, match='no canary to roll back'):
    router.rollback()
  router.set(routing.CANARY, _Model(3))
  assert router.rollback().version == 3
  assert router.label_of(2) == routing.STABLE and router.label_of(3) == ''


# --- Feedback and live quality. ----------------------------------------------


def test_live_quality_equals_scikit_learns():
  rng = np.random.default_rng(3)
  labels = rng.integers(0, 2, 500)
  scores = np.clip(labels * 0.3 + rng.random(500) * 0.7, 0, 1).round(2)
  predictions = [feedback.Prediction(1, (s,), int(s >= 0.5))
                 for s in scores]
  measured = feedback.quality('binary', labels.tolist(), predictions)
  assert measured['auc'] == pytest.approx(
      sk_metrics.roc_auc_score(labels, scores), abs=1e-12)
  assert measured['accuracy'] == pytest.approx(
      sk_metrics.accuracy_score(labels, scores >= 0.5))
  probabilities = rng.dirichlet([1, 1, 1], 300)
  truth = rng.integers(0, 3, 300)
  multi = feedback.quality('multiclass', truth.tolist(), [
      feedback.Prediction(1, tuple(p), int(np.argmax(p)))
      for p in probabilities])
  assert multi['auc'] == pytest.approx(sk_metrics.roc_auc_score(
      truth, probabilities, multi_class='ovr', average='macro'))
  values = rng.normal(size=100)
  regression = feedback.quality('regression', (values + 0.5).tolist(), [
      feedback.Prediction(1, (v,)) for v in values])
  assert regression == {'rmse': pytest.approx(0.5)}
  assert feedback.quality('binary', [1, 1], predictions[:2]).keys() == {
      'accuracy'}  # One class only: no AUC.


def test_predictions_are_matched_by_id_or_key_once():
  memory = feedback.PredictionMemory(capacity=3, key_columns=('trip',))
  first = [feedback.Prediction(7, (0.9,), 1), feedback.Prediction(7, (0.1,),
                                                                 0)]
  memory.remember('r1', first, [('a',), ('b',)])
  memory.remember('r2', [feedback.Prediction(8, (0.4,), 0)], [(12,)])
  assert memory.take('r1-0') == first[0]
  assert memory.take('r1-0') is None  # Labelled once.
  assert memory.take_by_key(feedback.key_of({'trip': 12.0}, ['trip'])
                            ).version == 8
  memory.remember('r3', [feedback.Prediction(9, (0.5,), 1)] * 3,
                  [None] * 3)
  assert len(memory) == 3  # The oldest went first.
  assert memory.take_by_key(('b',)) is None


def test_labels_are_checked_against_the_classes():
  items = feedback.parse_feedback(
      {'labels': [{'prediction_id': 'a-0', 'label': 1},
                  {'prediction_id': 'a-1', 'label': '0'},
                  {'keys': {'trip': 't1'}, 'label': 1.0}]}, CONTRACT,
      ('trip',))
  assert [(i.label, i.prediction_id, i.key) for i in items] == [
      (1, 'a-0', None), (0, 'a-1', None), (1, None, ('t1',))]
  for bad, message in [
      ({'labels': [{'prediction_id': 'a', 'label': 2}]}, 'label 2 is not a '
       "class of model 'taxi'; send one of 0, 1"),
      ({'labels': [{'prediction_id': 'a', 'label': True}]}, 'not a class'),
      ({'labels': [{'label': 1}]}, 'neither "prediction_id" nor "keys"'),
      ({'labels': [{'keys': {'other': 1}, 'label': 1}]},
       '"keys" must hold exactly the key columns trip'),
      ({'labels': {}}, '"labels" is an object'),
  ]:
    with pytest.raises(instances.RequestError, match='.*') as raised:
      feedback.parse_feedback(bad, CONTRACT, ('trip',))
    assert message in str(raised.value)


def test_request_ids_a_client_may_choose():
  assert feedback.valid_request_id('trip-42_a.b:c')
  for bad in ('', None, 'a b', 'x' * 129, 'é', 'a/b'):
    assert not feedback.valid_request_id(bad)


# --- Metrics. ----------------------------------------------------------------


def _samples(metrics: metrics_lib.ServingMetrics):
  body, _ = metrics.render()
  return {(s.name, tuple(sorted(s.labels.items()))): s.value
          for family in text_string_to_metric_families(body.decode())
          for s in family.samples}


def test_version_series_follow_the_labels():
  metrics = metrics_lib.ServingMetrics('taxi')
  metrics.loaded(5, ['predict', 'classify'])
  metrics.evaluated(5, {'auc': 0.95})
  metrics.labels({'stable': _Model(5), 'canary': _Model(6)}, 0.1)
  metrics.live(6, {'auc': 0.9, 'accuracy': 0.8}, 250)
  samples = _samples(metrics)
  assert samples[('serving_requests_total', (
      ('code', '400'), ('endpoint', 'classify'), ('model', 'taxi'),
      ('version', '5')))] == 0  # Exported at 0 before the first error.
  assert samples[('serving_evaluated_quality', (
      ('metric', 'auc'), ('model', 'taxi'), ('version', '5')))] == 0.95
  assert samples[('serving_version_info', (
      ('label', 'canary'), ('model', 'taxi'), ('version', '6')))] == 1
  assert samples[('serving_model_version', (
      ('label', 'canary'), ('model', 'taxi')))] == 6
  metrics.labels({'stable': _Model(6)}, 0.1)  # Promoted.
  samples = _samples(metrics)
  names = {(name, dict(labels).get('version'), dict(labels).get('label'))
           for name, labels in samples}
  assert ('serving_version_info', '6', 'stable') in names
  assert not any(name in ('serving_evaluated_quality', 'serving_version_info')
                 and version == '5' for name, version, _ in names)
  assert ('serving_model_version', None, 'canary') not in names
  assert ('serving_live_quality', '6', None) in names


# --- The CLI. ----------------------------------------------------------------


def test_admin_describes_the_labels():
  text = admin.describe({'model': 'taxi', 'stable': 3, 'canary': 5,
                         'canary_share': 0.1, 'canary_mode': True,
                         'retired': {'4': 'rolled back at T'}})
  assert text.splitlines() == [
      "model 'taxi': stable version 3",
      'canary version 5, 10.0% of unaddressed requests',
      'retired version 4: rolled back at T']


def test_admin_refuses_a_share_without_the_command(capsys):
  with pytest.raises(SystemExit) as raised:
    admin.main(['promote', '0.5'])
  assert raised.value.code == 2
  assert 'give a share (0 to 1) with `share`' in capsys.readouterr().err
  assert admin.main(['labels', '--url', 'http://127.0.0.1:9']) == 1
  assert 'ADMIN FAILED: cannot reach http://127.0.0.1:9' in (
      capsys.readouterr().err)


# --- The shipped Prometheus files. -------------------------------------------


def _promtool() -> str:
  path = shutil.which('promtool')
  assert path, ('promtool is missing: `make test` installs it (Debian '
                'package prometheus), or apt-get install prometheus')
  return path


def test_promtool_accepts_the_shipped_rules_and_config():
  for args in (['check', 'rules', str(MONITORING / 'alerts.yml')],
               ['check', 'config', str(MONITORING / 'prometheus.yml')]):
    result = subprocess.run([_promtool(), *args], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'SUCCESS' in result.stdout + result.stderr


RULE_TESTS = """
rule_files:
  - {rules}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'serving_requests_total{{model="taxi",version="5",endpoint="predict",code="200"}}'
        values: '0+90x40'
      - series: 'serving_requests_total{{model="taxi",version="5",endpoint="predict",code="400"}}'
        values: '0+10x40'
      - series: 'serving_requests_total{{model="taxi",version="5",endpoint="metadata",code="404"}}'
        values: '0+1000x40'
      - series: 'serving_evaluated_quality{{model="taxi",version="5",metric="auc"}}'
        values: '0.95x40'
      - series: 'serving_live_quality{{model="taxi",version="5",metric="auc"}}'
        values: '0.95x10 0.80x30'
      - series: 'serving_live_labels{{model="taxi",version="5"}}'
        values: '100x10 500x30'
      - series: 'serving_evaluated_quality{{model="reg",version="1",metric="rmse"}}'
        values: '2x40'
      - series: 'serving_live_quality{{model="reg",version="1",metric="rmse"}}'
        values: '2.1x20 3x20'
      - series: 'serving_live_labels{{model="reg",version="1"}}'
        values: '300x40'
      - series: 'serving_live_quality{{model="ab",version="1",metric="accuracy"}}'
        values: '0.9x40'
      - series: 'serving_live_quality{{model="ab",version="2",metric="accuracy"}}'
        values: '0.8x40'
      - series: 'serving_live_labels{{model="ab",version="1"}}'
        values: '400x40'
      - series: 'serving_live_labels{{model="ab",version="2"}}'
        values: '250x40'
      - series: 'serving_version_info{{model="ab",version="1",label="stable"}}'
        values: '1x40'
      - series: 'serving_version_info{{model="ab",version="2",label="canary"}}'
        values: '1x40'
    alert_rule_test:
      - eval_time: 35m
        alertname: ModelServerErrorRate
        exp_alerts:
          - exp_labels: {{severity: page, model: taxi}}
            exp_annotations:
              summary: "taxi: 10% of scoring requests fail"
              description: {ModelServerErrorRate}
      - eval_time: 5m
        alertname: ModelLiveQualityBelowEvaluated
        exp_alerts: []
      - eval_time: 15m
        alertname: ModelLiveQualityBelowEvaluated
        exp_alerts:
          - exp_labels: {{severity: page, model: taxi, version: "5", metric: auc}}
            exp_annotations:
              summary: "taxi version 5: live auc is 0.150 below the evaluated one"
              description: {ModelLiveQualityBelowEvaluated}
      - eval_time: 10m
        alertname: ModelLiveRmseAboveEvaluated
        exp_alerts: []
      - eval_time: 30m
        alertname: ModelLiveRmseAboveEvaluated
        exp_alerts:
          - exp_labels: {{severity: page, model: reg, version: "1", metric: rmse}}
            exp_annotations:
              summary: "reg version 1: live RMSE 3.000 is over 1.2 times the evaluated one"
              description: {ModelLiveRmseAboveEvaluated}
      - eval_time: 10m
        alertname: ModelCanaryWorseThanStable
        exp_alerts:
          - exp_labels: {{severity: ticket, model: ab, metric: accuracy}}
            exp_annotations:
              summary: "ab: the canary's live accuracy is 0.100 below stable's"
              description: {ModelCanaryWorseThanStable}
"""


def test_each_quality_and_error_alert_fires_on_series_that_cross_it(
    tmp_path: pathlib.Path):
  """promtool's rule unit tests: a 10% error rate pages (404s on metadata
  do not count), a live AUC 0.15 below the evaluated one pages once 200
  labels are in, a 50% worse RMSE, and a canary 0.1 below stable."""
  with open(MONITORING / 'alerts.yml', encoding='utf-8') as f:
    [group] = yaml.safe_load(f)['groups']
  descriptions = {rule['alert']: json.dumps(rule['annotations'].get(
      'description', '')) for rule in group['rules']}
  tests = tmp_path / 'alerts_test.yml'
  tests.write_text(RULE_TESTS.format(rules=MONITORING / 'alerts.yml',
                                     **descriptions))
  result = subprocess.run([_promtool(), 'test', 'rules', str(tests)],
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stdout + result.stderr
  assert 'SUCCESS' in result.stdout
