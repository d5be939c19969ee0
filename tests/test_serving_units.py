"""The server's pieces on small in-memory inputs, without a model.

* Request checking (serving/instances.py): every kind of bad request gets
  its message naming the row, the feature and the problem; good rows are
  typed by the contract, missing and unseen values counted, and encoded as
  the tf.Examples `serving_default` parses.
* The request log (serving/request_log.py): rotation keeps at most the
  configured files, and concurrent writers lose no line.
* Version discovery (serving/model_store.py): only numbered folders are
  versions, a version without a contract is refused before TensorFlow
  loads it, and an unfinished copy is not loaded.
* The serving contract (models/serving_contract.py): read back as written,
  with clear refusals of a missing or foreign file.
* Batching (serving/batching.py): waiting requests are scored in one call
  per model version, and a failing request fails alone.
"""

import json
import pathlib
import re
import threading

import numpy as np
import pytest

from models import serving_contract
from serving import batching
from serving import instances
from serving import model_store
from serving import monitor
from serving import request_log
from serving import tf_serving

CONTRACT = serving_contract.Contract(
    dataset='taxi', task='binary', label='big_tipper', classes=('0', '1'),
    outputs=('classes', 'probability', 'scores'),
    features=(
        serving_contract.Feature('company', 'string', False, 'categorical',
                                 ('Flash Cab', '__missing__')),
        serving_contract.Feature('fare', 'float', True, 'log'),
        serving_contract.Feature('payment_type', 'string', True,
                                 'categorical', ('Cash', 'Credit Card')),
        serving_contract.Feature('trip_seconds', 'int', False, 'log'),
        serving_contract.Feature('trip_start_hour', 'int', True,
                                 'integer_categorical', ('8', '9')),
    ),
    ignored=('tips',))
GOOD = {'fare': 12.5, 'payment_type': 'Cash', 'trip_start_hour': 8,
        'company': 'Flash Cab', 'trip_seconds': 600}


def _body(*rows, **extra) -> bytes:
  return json.dumps({'instances': list(rows), **extra}).encode()


def _check(body: bytes) -> instances.Rows:
  """A predict body read as the server reads raw rows."""
  parsed = tf_serving.parse_predict(tf_serving.parse_body(body), 'examples')
  return instances.Checker(CONTRACT).check_rows(parsed.rows)


def _refusal(body: bytes) -> instances.RequestError:
  with pytest.raises(instances.RequestError) as raised:
    _check(body)
  return raised.value


@pytest.mark.parametrize('body, problem, message', [
    (b'{"instances": [', instances.NOT_JSON,
     r'the request body is not JSON \(Expecting value: line 1 column 16'),
    (b'[1, 2]', instances.BAD_BODY, 'the request body is a list, not an '
     'object'),
    (b'{"rows": []}', instances.BAD_BODY, r'exactly one of "instances" .* '
     r'got keys \["rows"\]'),
    (_body(), instances.EMPTY, 'no rows to score: "instances" is empty'),
    (b'{"instances": {"fare": 1}}', instances.WRONG_SHAPE,
     '"instances" is an object; send a list of rows'),
    (_body([12.5, 'Cash']), instances.BAD_INSTANCE,
     'instance 0 is a list, not an object'),
    (_body(GOOD, {**GOOD, 'fair': 3.0}), instances.UNKNOWN_FEATURE,
     r"instance 1: unknown feature 'fair'; model 'taxi' takes company, fare"),
    (_body({**GOOD, 'big_tipper': 1}), instances.LABEL_SENT,
     r"instance 0: 'big_tipper' is the label, which the model predicts"),
    (_body({k: v for k, v in GOOD.items() if k != 'fare'}),
     instances.MISSING_FEATURE,
     r"instance 0: missing required feature 'fare' \(float\); every row "
     'needs fare, payment_type, trip_start_hour'),
    (_body({**GOOD, 'payment_type': None}), instances.MISSING_FEATURE,
     "missing required feature 'payment_type'"),
    (_body({**GOOD, 'fare': [12.5]}), instances.WRONG_SHAPE,
     r"instance 0, feature 'fare' \(float\): expected one value \(a "
     r'scalar\), got a list \[12.5\]; send a number, e.g. "fare": 12.5'),
    (_body({**GOOD, 'payment_type': {'v': 'Cash'}}), instances.WRONG_SHAPE,
     r"feature 'payment_type' \(string\): expected one value \(a scalar\), "
     'got an object'),
    (_body({**GOOD, 'fare': '12.5'}), instances.WRONG_TYPE,
     r"instance 0, feature 'fare' \(float\): expected a number, got a "
     'string "12.5"'),
    (_body({**GOOD, 'payment_type': 3}), instances.WRONG_TYPE,
     r"feature 'payment_type' \(string\): expected a string, got a number "
     '3; quote the value'),
    (_body({**GOOD, 'trip_start_hour': 8.5}), instances.WRONG_TYPE,
     r"feature 'trip_start_hour' \(int\): expected a whole number, got 8.5"),
    (_body({**GOOD, 'trip_start_hour': True}), instances.WRONG_TYPE,
     'expected a whole number, got a boolean true'),
    (b'{"instances": [{"fare": NaN, "payment_type": "Cash", '
     b'"trip_start_hour": 8}]}', instances.BAD_VALUE,
     "feature 'fare' \\(float\\): nan is not a finite number"),
    (_body({**GOOD, 'trip_seconds': 2 ** 64}), instances.BAD_VALUE,
     'does not fit a 64-bit integer'),
    (_body(GOOD, signature_name=['serving_default']), instances.BAD_BODY,
     r'"signature_name" is a list; \'signature_name\' key must be a string'),
    (b'{"inputs": {"fare": [1.0, 2.0], "payment_type": ["Cash"]}}',
     instances.WRONG_SHAPE, 'the columns of "inputs" differ in length '
     r'\("fare": 2, "payment_type": 1\)'),
    (b'\xff{"instances": []}', instances.NOT_JSON,
     r'the request body is not UTF-8 text \(byte 0xff at offset 0\)'),
    (b'', instances.NOT_JSON, 'the request body is empty'),
    (b'[' * 100_000, instances.TOO_DEEP, 'nests arrays or objects too '
     'deeply'),
    (b'{"instances": [' + b'{"a": ' * 100_000, instances.TOO_DEEP,
     'nests arrays or objects too deeply'),
    (b'{"instances": [{"fare": ' + b'1' * 5000 + b'}]}', instances.NOT_JSON,
     'Exceeds the limit'),
    (_body({**GOOD, 'payment_type': '\ud800'}), instances.BAD_VALUE,
     r"feature 'payment_type' \(string\): .* is not valid Unicode"),
    # Nested 900 deep: parsed, and the message shows 60 characters of it.
    (b'{"instances": [{"fare": ' + b'[' * 900 + b']' * 900 + b'}]}',
     instances.WRONG_SHAPE, r'got a list \[{57}\.\.\.; send a number'),
    (_body(7), instances.BAD_INSTANCE, 'instance 0 is a number, not an '
     'object; send each row as {"feature": value, ...}, the raw columns '
     'without the label, or each serialized tf.Example as {"b64"'),
])
def test_each_bad_request_is_refused_naming_the_problem(body, problem,
                                                        message):
  error = _refusal(body)
  assert error.problem == problem
  assert error.status == 400
  assert re.search(message, str(error)), str(error)


def test_too_many_rows_are_refused():
  error = _refusal(_body(*[GOOD] * (instances.MAX_ROWS + 1)))
  assert error.problem == instances.TOO_MANY_ROWS
  assert f'send at most {instances.MAX_ROWS} per request' in str(error)


def test_good_rows_are_typed_and_counted():
  rows = _check(_body(
      {**GOOD, 'trip_start_hour': 9.0, 'tips': 2.0},
      {'fare': 3, 'payment_type': 'Bitcoin', 'trip_start_hour': 23,
       'company': None}))
  assert rows.values == [
      {'company': 'Flash Cab', 'fare': 12.5, 'payment_type': 'Cash',
       'trip_seconds': 600, 'trip_start_hour': 9},
      {'fare': 3.0, 'payment_type': 'Bitcoin', 'trip_start_hour': 23}]
  assert isinstance(rows.values[0]['trip_start_hour'], int)
  assert isinstance(rows.values[1]['fare'], float)
  assert rows.missing == {'company': 1, 'trip_seconds': 1}
  assert rows.unseen == {'payment_type': 1, 'trip_start_hour': 1}


def test_the_columnar_form_gives_the_same_rows():
  body = json.dumps({'inputs': {k: [v, v] for k, v in GOOD.items()}})
  parsed = tf_serving.parse_predict(tf_serving.parse_body(body.encode()),
                                    'examples')
  assert parsed.columnar
  assert instances.Checker(CONTRACT).check_rows(parsed.rows).values == [
      GOOD, GOOD]


def test_rows_are_encoded_as_the_examples_the_signature_parses():
  tf = pytest.importorskip('tensorflow')
  rows = instances.Checker(CONTRACT).check_rows(
      [GOOD, {'fare': 1.5, 'payment_type': 'Cash', 'trip_start_hour': 0}])
  serialized = instances.encode(rows.values, CONTRACT)
  parsed = tf.io.parse_example(serialized, {
      'fare': tf.io.FixedLenFeature([1], tf.float32),
      'payment_type': tf.io.FixedLenFeature([1], tf.string),
      'trip_start_hour': tf.io.FixedLenFeature([1], tf.int64),
      'company': tf.io.VarLenFeature(tf.string),
      'trip_seconds': tf.io.VarLenFeature(tf.int64)})
  assert parsed['fare'].numpy().ravel().tolist() == [12.5, 1.5]
  assert parsed['trip_start_hour'].numpy().ravel().tolist() == [8, 0]
  assert parsed['company'].values.numpy().tolist() == [b'Flash Cab']
  assert parsed['trip_seconds'].indices.numpy().tolist() == [[0, 0]]


def test_batch_rows_may_carry_other_columns():
  checker = instances.Checker(CONTRACT)
  rows = checker.check_rows([{**GOOD, 'big_tipper': 1, 'trip_id': 'a'}],
                            strict=False, names=['data.csv row 7'])
  assert rows.values == [GOOD]
  with pytest.raises(instances.RequestError,
                     match="data.csv row 7: missing required feature 'fare'"):
    checker.check_rows([{'payment_type': 'Cash', 'trip_start_hour': 1}],
                       strict=False, names=['data.csv row 7'])


# --- The request log. ------------------------------------------------------


def test_request_log_rotates_and_keeps_at_most_max_files(tmp_path):
  log = request_log.RequestLog(str(tmp_path), max_bytes=2000, max_files=3)
  for i in range(100):
    log.write([{'time': request_log.timestamp(request_log.utc_now()),
                'n': i, 'pad': 'x' * 50}])
  log.close()
  files = request_log.log_files(str(tmp_path))
  assert len(files) == 3
  assert all(pathlib.Path(f).stat().st_size <= 2000 for f in files)
  kept = [r['n'] for r in request_log.read(str(tmp_path)).records]
  # The newest records survive, in order, with none missing among them.
  assert kept == list(range(100 - len(kept), 100))


def test_concurrent_writers_lose_no_line(tmp_path):
  log = request_log.RequestLog(str(tmp_path), max_bytes=50_000,
                               max_files=1000)

  def write(thread: int) -> None:
    for i in range(200):
      log.write([{'time': request_log.timestamp(request_log.utc_now()),
                  'thread': thread, 'i': i, 'row': j} for j in range(3)])

  threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  log.close()
  read = request_log.read(str(tmp_path))
  assert read.unreadable == 0
  assert len(read.records) == 8 * 200 * 3
  assert len({(r['thread'], r['i'], r['row']) for r in read.records}) == 4800
  assert len(request_log.log_files(str(tmp_path))) > 1  # It rotated.


def test_a_torn_line_is_skipped_and_counted(tmp_path):
  log = request_log.RequestLog(str(tmp_path))
  log.write([{'time': request_log.timestamp(request_log.utc_now()), 'n': 1}])
  log.close()
  with open(request_log.log_files(str(tmp_path))[0], 'a') as f:
    f.write('{"time": "2026-')
  read = request_log.read(str(tmp_path))
  assert [r['n'] for r in read.records] == [1]
  assert read.unreadable == 1


# --- Versions and contracts. ----------------------------------------------


def _write_contract(folder: pathlib.Path) -> None:
  extra = folder / serving_contract.ASSETS_EXTRA
  extra.mkdir(parents=True)
  (extra / serving_contract.CONTRACT_FILE).write_text(
      json.dumps(CONTRACT.to_dict()))


def test_only_numbered_folders_are_versions(tmp_path):
  for name in ('3', '12', '.13.tmp', 'notes'):
    (tmp_path / name).mkdir()
  (tmp_path / '14').write_text('a file, not a folder')
  assert [v for v, _ in model_store.versions(str(tmp_path))] == [3, 12]


def test_contract_round_trips(tmp_path):
  _write_contract(tmp_path)
  assert serving_contract.read(str(tmp_path)) == CONTRACT


def test_a_model_without_contract_is_refused_before_loading(tmp_path):
  version = tmp_path / '1700000000'
  version.mkdir()
  (version / 'saved_model.pb').write_bytes(b'not loaded')
  watcher = model_store.ModelWatcher(str(tmp_path), poll_seconds=1)
  with pytest.raises(model_store.NoServableModel,
                     match=r'version 1700000000: .*1700000000 has no serving '
                     r'contract \(assets.extra/serving_contract.json\): it '
                     'was pushed by an older version of this pipeline. '
                     'Re-run the pipeline'):
    watcher.load_newest()


def test_no_pushed_model_says_to_run_the_pipeline(tmp_path):
  watcher = model_store.ModelWatcher(str(tmp_path / 'serving_model'), 1)
  with pytest.raises(model_store.NoServableModel,
                     match='no pushed model under .*run the pipeline'):
    watcher.load_newest()


@pytest.mark.parametrize('text, message', [
    ('[1]', 'holds no JSON object'),
    ('{"format_version": 99}', 'has contract format 99; this code reads '
     'format 1'),
    ('{"format_version": 1, "dataset": "x"}', "is not a serving contract "
     r"\(KeyError\('features'\)\)"),
])
def test_a_foreign_contract_is_refused(tmp_path, text, message):
  extra = tmp_path / serving_contract.ASSETS_EXTRA
  extra.mkdir()
  (extra / serving_contract.CONTRACT_FILE).write_text(text)
  with pytest.raises(serving_contract.ContractError, match=message):
    serving_contract.read(str(tmp_path))


def test_an_unknown_feature_type_in_a_contract_is_refused(tmp_path):
  values = CONTRACT.to_dict()
  values['features'][0]['dtype'] = 'bfloat16'
  extra = tmp_path / serving_contract.ASSETS_EXTRA
  extra.mkdir()
  (extra / serving_contract.CONTRACT_FILE).write_text(json.dumps(values))
  with pytest.raises(serving_contract.ContractError,
                     match=r"declares feature types \['bfloat16'\], which "
                     'this server does not know'):
    serving_contract.read(str(tmp_path))


def test_an_unfinished_copy_is_not_loaded(tmp_path, monkeypatch):
  loaded = []
  monkeypatch.setattr(model_store, 'load',
                      lambda path, version: loaded.append(version))
  watcher = model_store.ModelWatcher(str(tmp_path), poll_seconds=1)
  new = tmp_path / '5'
  new.mkdir()
  (new / 'saved_model.pb').write_bytes(b'half')
  assert watcher.poll() is None  # First seen.
  (new / 'saved_model.pb').write_bytes(b'half of it, and more')
  assert watcher.poll() is None  # Still changing.
  assert loaded == []
  watcher.poll()  # Unchanged since the last poll: loaded.
  assert loaded == [5]


# --- Monitor flags. --------------------------------------------------------


@pytest.mark.parametrize('text, seconds', [('90s', 90), ('30m', 1800),
                                           ('1h', 3600), ('1.5d', 129600)])
def test_monitor_windows(text, seconds):
  assert monitor.parse_duration(text) == seconds


@pytest.mark.parametrize('text', ['1', 'h', '0m', '-1h', '1w'])
def test_monitor_refuses_a_window_without_unit(text):
  with pytest.raises(ValueError, match='give a length like 30m, 1h or 7d'):
    monitor.parse_duration(text)


# --- Batching. --------------------------------------------------------------


class _Model:
  """Scores each serialized row as its length; fails on b'bad'."""

  def __init__(self):
    self.calls = []

  def predict(self, rows):
    self.calls.append(list(rows))
    if b'bad' in rows:
      raise ValueError('bad row')
    return {'outputs': np.array([[len(r)] for r in rows], dtype=np.float32)}


def test_the_batcher_scores_waiting_requests_together_per_model():
  old, new = _Model(), _Model()
  batcher = batching.Batcher(max_rows=4)
  # Queued before the thread starts: they are all waiting at once.
  futures = [batcher.submit(old, [b'a']), batcher.submit(old, [b'bb', b'c']),
             batcher.submit(new, [b'dddd']), batcher.submit(old, [b'ee']),
             batcher.submit(old, [b'f', b'g', b'h'])]
  batcher.start()
  results = [f.result(timeout=30) for f in futures]
  batcher.stop()
  assert [r['outputs'].ravel().tolist() for r in results] == [
      [1], [2, 1], [4], [2], [1, 1, 1]]
  # Four rows at most per call, and never two models in one call.
  assert old.calls == [[b'a', b'bb', b'c', b'ee'], [b'f', b'g', b'h']]
  assert new.calls == [[b'dddd']]


def test_a_failing_request_fails_alone():
  model = _Model()
  batcher = batching.Batcher()
  good, bad = batcher.submit(model, [b'x']), batcher.submit(model, [b'bad'])
  batcher.start()
  assert good.result(timeout=30)['outputs'].ravel().tolist() == [1]
  with pytest.raises(ValueError, match='bad row'):
    bad.result(timeout=30)
  batcher.stop()


# --- Canary mode: labels, rollback, restart. ---------------------------------


class _Loaded:
  """What the watcher needs of a loaded version."""

  def __init__(self, path: str, version: int):
    self.path = path
    self.version = version
    self.name = 'taxi'


def _watcher(folder: pathlib.Path, canary: bool = True
             ) -> model_store.ModelWatcher:
  return model_store.ModelWatcher(
      str(folder / 'serving_model'), poll_seconds=1, canary=canary,
      canary_share=0.1, state_path=str(folder / 'serving_labels.json'))


def _push(folder: pathlib.Path, version: int) -> None:
  path = folder / 'serving_model' / str(version)
  path.mkdir(parents=True)
  (path / 'saved_model.pb').write_bytes(b'x')


def _labels(watcher: model_store.ModelWatcher):
  return {label: m.version for label, m in watcher.router.labels().items()}


def test_canary_mode_keeps_its_labels_across_a_restart(tmp_path, monkeypatch):
  monkeypatch.setattr(model_store, 'load', _Loaded)
  _push(tmp_path, 3)
  watcher = _watcher(tmp_path)
  assert watcher.load_newest().version == 3
  _push(tmp_path, 5)
  assert watcher.poll() is None  # First seen: maybe still being copied.
  assert watcher.poll().version == 5
  assert _labels(watcher) == {'stable': 3, 'canary': 5}
  assert watcher.rollback().version == 5
  assert _labels(watcher) == {'stable': 3}
  assert [e[:3] for e in watcher.status()] == [
      (5, 'END', 'CANCELLED'), (3, 'AVAILABLE', 'OK')]
  state = json.loads((tmp_path / 'serving_labels.json').read_text())
  assert (state['stable'], state['canary'], list(state['retired'])) == (
      3, None, ['5'])
  # A restart, canary mode or not, never serves the rolled back version.
  for canary in (True, False):
    restarted = _watcher(tmp_path, canary)
    assert restarted.load_newest().version == 3
    assert restarted.poll() is None and _labels(restarted) == {'stable': 3}
  _push(tmp_path, 6)
  watcher.poll()
  assert watcher.poll().version == 6
  restarted = _watcher(tmp_path)
  restarted.load_newest()
  assert _labels(restarted) == {'stable': 3, 'canary': 6}
  stable, previous = restarted.promote()
  assert (stable.version, previous.version) == (6, 3)
  assert [e[:3] for e in restarted.status()] == [
      (6, 'AVAILABLE', 'OK'), (5, 'END', 'CANCELLED'), (3, 'END', 'OK')]
  with pytest.raises(LookupError, match='no canary to promote'):
    restarted.promote()


def test_without_canary_mode_a_push_replaces_stable(tmp_path, monkeypatch):
  monkeypatch.setattr(model_store, 'load', _Loaded)
  _push(tmp_path, 3)
  watcher = _watcher(tmp_path, canary=False)
  watcher.load_newest()
  _push(tmp_path, 4)
  watcher.poll()
  assert watcher.poll().version == 4
  assert _labels(watcher) == {'stable': 4}
  assert [e[:2] for e in watcher.status()] == [(4, 'AVAILABLE'), (3, 'END')]


def test_an_unreadable_labels_file_is_ignored(tmp_path, monkeypatch):
  monkeypatch.setattr(model_store, 'load', _Loaded)
  _push(tmp_path, 3)
  _push(tmp_path, 4)
  (tmp_path / 'serving_labels.json').write_text('{"retired": [')
  watcher = _watcher(tmp_path)
  assert watcher.load_newest().version == 4  # The newest, as without one.
