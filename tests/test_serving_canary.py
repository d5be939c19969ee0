"""Two versions at once, live quality from labels, and a real Prometheus.

One server (`python -m serving --canary-share 0.1`) runs for the module on
a copy of the e2e run's pushed model and its ML Metadata store. The tests
run in file order against it:

* a copy of the model pushed as a newer version becomes the canary beside
  stable; requests addressed to /versions/<v> or /labels/<label> go there;
* 2,000 unaddressed requests from 8 clients: the canary gets 10% +- 2%
  (exactly 200: the split is a counter, serving/routing.py), and the
  per-version request counters agree with the answers' headers;
* labels sent to :feedback give each version its live accuracy and AUC,
  equal to scikit-learn's on the same predictions, beside the evaluated
  quality the server read from ML Metadata;
* a real Prometheus, the shipped rules and a test copy of the shipped
  scrape config (1 s intervals) scraping the server: 400s and degraded
  labels fire ModelServerErrorRate and ModelLiveQualityBelowEvaluated,
  read from Prometheus' own /api/v1/alerts; every Grafana panel's query
  names metrics the server exports and evaluates without error;
* `python -m serving.admin rollback` under a load of 8 clients: no request
  fails, requests after it get stable, and the version is retired in
  OUT/serving_labels.json; a newer push becomes the canary and
  `promote` makes it stable;
* the docs' curl commands (docs/serving.md) run as written.
"""

import dataclasses
import json
import pathlib
import re
import shutil
import subprocess
import sys
import threading
import time
from typing import Dict
from typing import List

import numpy as np
from prometheus_client.parser import text_string_to_metric_families
import pytest
from sklearn import metrics as sk_metrics
import tensorflow as tf

from pipeline.definition import dataset_config
from tests import model_server
from tests import pipeline_state
from tests import prometheus_server
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e
SPEC = dataset_config.load_named('taxi').spec
SHARE = 0.1
SPLIT_REQUESTS = 2000
CLIENTS = 8
# Rollback under load: requests before it, and after it is answered.
BEFORE_ROLLBACK = 300
AFTER_ROLLBACK = 300
# The quality alert waits for this many labels (serving/monitoring/alerts.yml).
ALERT_MIN_LABELS = 200
DOCS = REPO_ROOT / 'docs' / 'serving.md'
DASHBOARD = REPO_ROOT / 'serving' / 'monitoring' / 'grafana_dashboard.json'
# How long to wait for things that happen on their own; never asserted.
DEADLINE_SECONDS = 600


@dataclasses.dataclass
class Canary:
  server: model_server.ModelServer
  output_dir: pathlib.Path
  stable: int
  canary: int
  examples: List[tf.train.Example]
  rows: List[dict]
  labels: List[int]


def _wait(predicate, what: str, timeout: float = DEADLINE_SECONDS):
  deadline = time.monotonic() + timeout
  while True:
    value = predicate()
    if value:
      return value
    assert time.monotonic() < deadline, f'timed out waiting for {what}'
    time.sleep(0.25)


def _push_copy(output_dir: pathlib.Path, source: int, version: int) -> None:
  """A push as the Pusher makes it: the folder copied file by file."""
  shutil.copytree(output_dir / 'serving_model' / str(source),
                  output_dir / 'serving_model' / str(version))


def _available(server: model_server.ModelServer) -> List[str]:
  _, body = server.json('GET', '/v1/models/taxi')
  return [e['version'] for e in body['model_version_status']
          if e['state'] == 'AVAILABLE']


@pytest.fixture(scope='module')
def canary(e2e_run, tmp_path_factory):
  output_dir = tmp_path_factory.mktemp('canary') / 'outputs'
  stable = int(pipeline_state.pushed_versions(
      e2e_run.serving_model_dir)[-1].name)
  (output_dir / 'serving_model').mkdir(parents=True)
  shutil.copytree(e2e_run.serving_model_dir / str(stable),
                  output_dir / 'serving_model' / str(stable))
  # The run's store: the evaluated quality of the pushed version.
  shutil.copy(e2e_run.metadata_path, output_dir / 'metadata.sqlite')
  with model_server.running(
      output_dir, output_dir.parent / 'server.log',
      ['--canary-share', str(SHARE), '--poll-seconds', '0.5'],
      wait=False) as server:
    examples = pipeline_state.split_examples(e2e_run.pipeline_root, 'test')
    rows = [model_server.instance_of(e, SPEC.serving_excluded_columns)
            for e in examples]
    labels = [int(e.features.feature[SPEC.label_key].int64_list.value[0])
              for e in examples]
    server.wait_ready()
    yield Canary(server, output_dir, stable, stable + 1, examples, rows,
                 labels)


def _metrics(server: model_server.ModelServer) -> Dict[tuple, float]:
  status, _, body = server.request('GET', '/metrics')
  assert status == 200
  return {(s.name, tuple(sorted(s.labels.items()))): s.value
          for family in text_string_to_metric_families(body.decode())
          for s in family.samples}


def _value(samples, name: str, **labels) -> float:
  return sum(v for (n, sample_labels), v in samples.items()
             if n == name and
             all(dict(sample_labels).get(k) == w for k, w in labels.items()))


def _admin(server: model_server.ModelServer, *args: str
           ) -> subprocess.CompletedProcess:
  return subprocess.run(
      [sys.executable, '-m', 'serving.admin', *args, '--url',
       f'http://127.0.0.1:{server.port}'], capture_output=True, text=True,
      cwd=str(REPO_ROOT), timeout=120)


def test_a_new_push_becomes_the_canary(canary):
  server = canary.server
  assert _available(server) == [str(canary.stable)]
  _push_copy(canary.output_dir, canary.stable, canary.canary)
  _wait(lambda: len(_available(server)) == 2, 'the canary to load')
  assert _available(server) == [str(canary.canary), str(canary.stable)]
  labels = _admin(server, 'labels')
  assert labels.returncode == 0, labels.stderr
  assert labels.stdout.splitlines() == [
      f"model 'taxi': stable version {canary.stable}",
      f'canary version {canary.canary}, 10.0% of unaddressed requests']
  state = json.loads((canary.output_dir / 'serving_labels.json').read_text())
  assert (state['stable'], state['canary']) == (canary.stable, canary.canary)


def test_addressed_requests_go_where_they_say(canary):
  server = canary.server
  body = json.dumps({'instances': canary.rows[:2]}).encode()
  for path, version, label in [
      ('/versions/{canary}', canary.canary, 'canary'),
      ('/versions/{stable}', canary.stable, 'stable'),
      ('/labels/canary', canary.canary, 'canary'),
      ('/labels/stable', canary.stable, 'stable')]:
    path = path.format(canary=canary.canary, stable=canary.stable)
    for _ in range(5):
      status, headers, _ = server.request(
          'POST', f'/v1/models/taxi{path}:predict', body)
      assert status == 200
      assert headers['x-model-version'] == str(version)
      assert headers['x-model-label'] == label
    status, metadata = server.json('GET', f'/v1/models/taxi{path}/metadata')
    assert status == 200
    assert metadata['model_spec']['version'] == str(version)
    status, body_status = server.json('GET', f'/v1/models/taxi{path}')
    assert body_status['model_version_status'] == [{
        'version': str(version), 'state': 'AVAILABLE',
        'status': {'error_code': 'OK', 'error_message': ''}}]
  status, answer = server.json('POST', '/v1/models/taxi/labels/beta:predict',
                               raw=body)
  assert status == 400
  assert answer['error'].startswith(
      'Unrecognized servable version label: beta;')


def test_the_canary_gets_its_share_of_2000_requests(canary):
  server = canary.server
  before = _metrics(server)
  bodies = [json.dumps({'instances': [row]}).encode()
            for row in canary.rows[:50]]
  versions: List[str] = []
  failures: List[str] = []
  lock = threading.Lock()

  def client(n: int) -> None:
    connection = server.connection()
    try:
      for i in range(n, SPLIT_REQUESTS, CLIENTS):
        status, headers, data = server.request(
            'POST', '/v1/models/taxi:predict', bodies[i % len(bodies)],
            connection)
        with lock:
          versions.append(headers.get('x-model-version', ''))
          if status != 200:
            failures.append(data[:200].decode(errors='replace'))
    finally:
      connection.close()

  threads = [threading.Thread(target=client, args=(n,))
             for n in range(CLIENTS)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  assert not failures, failures[:3]
  assert len(versions) == SPLIT_REQUESTS
  to_canary = versions.count(str(canary.canary))
  assert to_canary + versions.count(str(canary.stable)) == SPLIT_REQUESTS
  # The bound, and the counter's exactness (one request of slack
  # for where the count stood before this test).
  assert abs(to_canary / SPLIT_REQUESTS - SHARE) <= 0.02
  assert abs(to_canary - SPLIT_REQUESTS * SHARE) <= 1
  after = _metrics(server)

  def delta(version: int) -> float:
    return (_value(after, 'serving_requests_total', version=str(version),
                   endpoint='predict', code='200') -
            _value(before, 'serving_requests_total', version=str(version),
                   endpoint='predict', code='200'))

  assert delta(canary.canary) == to_canary
  assert delta(canary.stable) == SPLIT_REQUESTS - to_canary


def _predict(server, path: str, rows: List[dict]):
  """(request id, P(positive) per row, decision per row)."""
  status, headers, data = server.request(
      'POST', f'/v1/models/taxi{path}:predict',
      json.dumps({'instances': rows}).encode())
  assert status == 200, data[:300]
  predictions = json.loads(data)['predictions']
  return (headers['x-request-id'],
          [p['probability'][0] for p in predictions],
          [int(p['decision']) for p in predictions])


def _feedback(server, request_id: str, labels: List[int]) -> dict:
  status, answer = server.json('POST', '/v1/models/taxi:feedback', {
      'labels': [{'prediction_id': f'{request_id}-{i}', 'label': label}
                 for i, label in enumerate(labels)]})
  assert status == 200, answer
  return answer


def test_labels_give_each_version_its_live_quality(canary):
  server = canary.server
  rows, truth = canary.rows[:120], canary.labels[:120]
  request_id, scores, decisions = _predict(server, '/labels/stable', rows)
  answer = _feedback(server, request_id, truth)
  assert answer == {'matched': 120, 'unmatched': 0, 'unmatched_labels': []}
  # Labelled once: the same labels again match nothing.
  assert _feedback(server, request_id, truth[:3])['unmatched'] == 3
  # The canary's, with every label flipped: a useless model's quality.
  canary_id, canary_scores, canary_decisions = _predict(
      server, '/labels/canary', rows)
  flipped = [1 - t for t in truth]
  _feedback(server, canary_id, flipped)
  samples = _metrics(server)

  def live(version: int, metric: str) -> float:
    return _value(samples, 'serving_live_quality', version=str(version),
                  metric=metric)

  assert live(canary.stable, 'auc') == pytest.approx(
      sk_metrics.roc_auc_score(truth, scores), abs=1e-6)
  assert live(canary.stable, 'accuracy') == pytest.approx(
      np.mean(np.array(decisions) == np.array(truth)))
  assert live(canary.canary, 'auc') == pytest.approx(
      sk_metrics.roc_auc_score(flipped, canary_scores), abs=1e-6)
  assert live(canary.canary, 'accuracy') == pytest.approx(
      np.mean(np.array(canary_decisions) == np.array(flipped)))
  assert _value(samples, 'serving_live_labels',
                version=str(canary.stable)) == 120
  assert _value(samples, 'serving_feedback_total', outcome='unmatched') == 3
  # The evaluated quality of the pushed version, read from ML Metadata in a
  # child process (slow imports): only stable's run is in the store.
  evaluated = _wait(lambda: _value(
      _metrics(server), 'serving_evaluated_quality',
      version=str(canary.stable), metric='auc'), 'the evaluated AUC')
  assert 0.9 <= evaluated <= 1.0  # The e2e run's gate requires AUC >= 0.9.
  assert _value(_metrics(server), 'serving_evaluated_quality',
                version=str(canary.canary)) == 0


_PROMQL_WORDS = frozenset("""
    sum min max avg count stddev stdvar topk bottomk quantile count_values
    group by without on ignoring group_left group_right and or unless bool
    offset rate irate increase delta idelta deriv histogram_quantile scalar
    vector abs ceil floor round clamp clamp_min clamp_max label_replace
    label_join time timestamp absent absent_over_time sort sort_desc
    predict_linear resets changes avg_over_time max_over_time min_over_time
    sum_over_time count_over_time quantile_over_time inf nan e
    """.split())


def metric_names(expression: str) -> List[str]:
  """The metric names a PromQL expression reads: identifiers that are not
  functions, keywords, label names or durations."""
  text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)  # Strings.
  text = re.sub(r'\{[^}]*\}', '', text)  # Label matchers.
  text = re.sub(r'\[[^\]]*\]', '', text)  # Ranges.
  text = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)\s*'
                r'\([^)]*\)', r'\1', text)  # Grouping labels.
  names = re.findall(r'(?<![\w.$])[a-zA-Z_:][\w:]*(?![\w(])', text)
  calls = set(re.findall(r'([a-zA-Z_][\w]*)\s*\(', text))
  return sorted({n for n in names if n not in _PROMQL_WORDS and
                 n not in calls})


_SUFFIXES = {'counter': ('_total',), 'gauge': ('',), 'untyped': ('',),
             'histogram': ('_bucket', '_count', '_sum'),
             'summary': ('_count', '_sum', '')}


def _exported_names(server: model_server.ModelServer) -> set:
  """The series names /metrics declares, with samples or not yet (a
  labelled counter has none until its first increment)."""
  _, _, body = server.request('GET', '/metrics')
  names = set()
  for family in text_string_to_metric_families(body.decode()):
    names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    names.update(sample.name for sample in family.samples)
  return names


def _panel_queries():
  dashboard = json.loads(DASHBOARD.read_text())
  queries = [(panel['title'], target['expr'])
             for panel in dashboard['panels']
             for target in panel['targets']]
  variables = [v['query'] for v in dashboard['templating']['list']
               if v['type'] == 'query']
  return queries, variables


def test_prometheus_fires_the_error_and_quality_alerts(canary, tmp_path):
  server = canary.server
  target = f'127.0.0.1:{server.port}'
  with prometheus_server.running([target], tmp_path / 'prometheus') as prom:
    # Scraped at least twice before the bad traffic, so rate() sees it.
    _wait(lambda: len(prom.query(
        'count_over_time(serving_requests_total{endpoint="predict", '
        f'code="400", version="{canary.stable}"}}[1m])')) and int(prom.query(
            'count_over_time(up{job="tabular-model-server"}[1m])')[0][
                'value'][1]) >= 2, 'two scrapes of the server')
    good = json.dumps({'instances': canary.rows[:1]}).encode()
    bad = json.dumps({'instances': [{'fare': 'twelve'}]}).encode()
    for _ in range(20):
      assert server.request('POST', '/v1/models/taxi:predict', good)[0] == 200
      assert server.request('POST', '/v1/models/taxi:predict', bad)[0] == 400
    # Degraded labels: stable's predictions labelled with the opposite of
    # the truth, enough of them to outweigh its window's good labels.
    rows = (canary.rows * 3)[:3 * ALERT_MIN_LABELS]
    truth = (canary.labels * 3)[:3 * ALERT_MIN_LABELS]
    request_id, _, _ = _predict(server, '/labels/stable', rows)
    _feedback(server, request_id, [1 - t for t in truth])

    def firing():
      alerts = {(a['labels']['alertname'], a['labels'].get('version', ''))
                for a in prom.alerts() if a['state'] == 'firing'}
      wanted = {('ModelServerErrorRate', ''),
                ('ModelLiveQualityBelowEvaluated', str(canary.stable))}
      return wanted <= alerts and alerts

    alerts = _wait(firing, 'the alerts to fire')
    assert ('ModelLiveQualityBelowEvaluated', str(canary.canary)) not in alerts
    # AUC, and accuracy too for a model whose threshold is 0.5
    # (serving/evaluated.py).
    [quality] = [a for a in prom.alerts()
                 if a['labels']['alertname'] ==
                 'ModelLiveQualityBelowEvaluated' and
                 a['labels']['metric'] == 'auc']
    assert quality['labels'] == {
        'alertname': 'ModelLiveQualityBelowEvaluated', 'model': 'taxi',
        'version': str(canary.stable), 'metric': 'auc', 'severity': 'page'}
    assert float(quality['value']) > 0.05

    # The dashboard: every query reads exported metrics, and runs.
    exported = _exported_names(server)
    queries, variables = _panel_queries()
    assert len(queries) >= 10
    for title, expression in queries:
      names = metric_names(expression)
      assert names, (title, expression)
      for name in names:
        assert name in exported or name == 'up', (
            f'panel {title!r} reads {name}, which /metrics does not export')
      runnable = (expression.replace('$__rate_interval', '1m')
                  .replace('$model', 'taxi')
                  .replace('$job', 'tabular-model-server'))
      prom.query(runnable)  # Fails the test on a parse error.
    for variable in variables:
      metric = re.fullmatch(r'label_values\((\w+), \w+\)', variable)
      assert metric and metric.group(1) in exported, variable


def test_rollback_under_load_fails_no_request(canary):
  server = canary.server
  bodies = [json.dumps({'instances': canary.rows[i:i + 1 + i % 3]}).encode()
            for i in range(40)]
  calls = []  # (start, version, status)
  lock = threading.Lock()
  stop = threading.Event()
  rolled_back = [None]  # When the rollback command had returned.
  errors = []

  def enough() -> bool:
    done = rolled_back[0]
    return done is not None and sum(
        1 for start, _, _ in calls if start > done) >= AFTER_ROLLBACK

  def client(n: int) -> None:
    connection = server.connection()
    i = n
    try:
      while not stop.is_set():
        start = time.monotonic()
        status, headers, data = server.request(
            'POST', '/v1/models/taxi:predict', bodies[i % len(bodies)],
            connection)
        i += CLIENTS
        with lock:
          calls.append((start, headers.get('x-model-version'), status))
          if status != 200:
            errors.append(data[:200])
          if enough():
            stop.set()
    except OSError as e:  # Reported below: fails the test.
      errors.append(repr(e))
      stop.set()
    finally:
      connection.close()

  threads = [threading.Thread(target=client, args=(n,))
             for n in range(CLIENTS)]
  for thread in threads:
    thread.start()
  _wait(lambda: len(calls) >= BEFORE_ROLLBACK or stop.is_set(),
        'the first requests')
  result = _admin(server, 'rollback')
  rolled_back[0] = time.monotonic()
  stop.wait(DEADLINE_SECONDS)
  stop.set()
  for thread in threads:
    thread.join()
  assert result.returncode == 0, result.stderr
  assert f'retired version {canary.canary}: rolled back at' in result.stdout
  assert not errors, errors[:3]
  assert all(status == 200 for _, _, status in calls)
  before = [v for start, v, _ in calls if start < rolled_back[0]]
  after = [v for start, v, _ in calls if start > rolled_back[0]]
  assert str(canary.canary) in before
  assert len(after) >= AFTER_ROLLBACK
  assert set(after) == {str(canary.stable)}
  _, status = server.json('GET', '/v1/models/taxi')
  [retired] = [e for e in status['model_version_status']
               if e['version'] == str(canary.canary)]
  assert retired['state'] == 'END'
  assert retired['status']['error_code'] == 'CANCELLED'
  state = json.loads((canary.output_dir / 'serving_labels.json').read_text())
  assert state['canary'] is None
  assert list(state['retired']) == [str(canary.canary)]
  refused = _admin(server, 'rollback')
  assert refused.returncode == 1
  assert 'there is no canary to roll back' in refused.stderr


def test_a_newer_push_is_the_canary_and_promote_makes_it_stable(canary):
  server = canary.server
  newer = canary.canary + 1
  _push_copy(canary.output_dir, canary.stable, newer)
  _wait(lambda: str(newer) in _available(server), 'the new canary')
  assert _admin(server, 'share', '0.5').returncode == 0
  versions = {server.request('POST', '/v1/models/taxi:predict', json.dumps(
      {'instances': canary.rows[:1]}).encode())[1]['x-model-version']
              for _ in range(4)}
  assert versions == {str(canary.stable), str(newer)}
  promoted = _admin(server, 'promote')
  assert promoted.returncode == 0, promoted.stderr
  assert promoted.stdout.splitlines()[0] == (
      f"model 'taxi': stable version {newer}")
  assert _available(server) == [str(newer)]
  for _ in range(4):
    _, headers, _ = server.request('POST', '/v1/models/taxi:predict',
                                   json.dumps({'instances': canary.rows[:1]}
                                              ).encode())
    assert (headers['x-model-version'], headers['x-model-label']) == (
        str(newer), 'stable')
  samples = _metrics(server)
  assert _value(samples, 'serving_model_version', label='stable') == newer
  assert _value(samples, 'serving_version_info', version=str(
      canary.stable)) == 0  # Unloaded: its series are gone.
  assert _value(samples, 'serving_label_changes_total',
                action='promote') == 1


def _bash_blocks(text: str) -> List[str]:
  return re.findall(r'```bash\n(.*?)```', text, flags=re.S)


def test_the_docs_requests_work_as_written(canary, tmp_path):
  """Every ```bash block of docs/serving.md that talks to localhost:8501
  runs against this server (its port swapped in): each exits 0, and the
  only errors answered are those the docs show as errors (`HTTP 4..`)."""
  blocks = [b for b in _bash_blocks(DOCS.read_text())
            if 'localhost:8501' in b]
  assert len(blocks) >= 2  # The requests, and feedback.
  for block in blocks:
    script = tmp_path / 'block.sh'
    script.write_text('set -euo pipefail\n' + block.replace(
        'localhost:8501', f'127.0.0.1:{canary.server.port}'))
    result = subprocess.run(['bash', str(script)], capture_output=True,
                            text=True, cwd=str(REPO_ROOT), timeout=300)
    assert result.returncode == 0, (block, result.stdout, result.stderr)
    errors = result.stdout.count('{"error"')
    shown = len(re.findall(r'HTTP 4\d\d', result.stdout))
    assert errors == shown, (block, result.stdout[-3000:])
