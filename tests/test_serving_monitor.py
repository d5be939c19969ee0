"""Skew and drift monitoring of logged requests (`python -m serving.monitor`).

On the e2e run's pushed model and ML Metadata, with a request log written
by the server's own writer (serving/request_log.py):

* normal traffic (rows of the committed sample) crosses no threshold:
  exit 0, and the report shows every comparator's value;
* then traffic whose payment_type is always 'Cash': exit 4 (ALERT_EXIT),
  with skew against the training statistics and drift against the
  previous window, both naming payment_type, and an HTML report;
* a time window (--window 1h) finds the same rows;
* without a request log: exit 3 and what to do.
"""

import pathlib
import shutil

import pytest

from models import serving_contract
from serving import instances
from serving import monitor
from serving import request_log
from serving import sources
from tests import pipeline_state
from tests.conftest import SAMPLE_DATA

pytestmark = pytest.mark.e2e
ROWS = 1000


def _sample_rows(contract: serving_contract.Contract):
  """The sample's rows as the server logs them: typed, features only."""
  checker = instances.Checker(contract)
  rows = []
  for batch in sources.file_batches(str(SAMPLE_DATA), contract):
    rows += checker.check_rows(batch.rows, strict=False,
                               names=[batch.where(i) for i in
                                      range(len(batch.rows))]).values
  return rows


def _log(folder: str, rows, version: int) -> None:
  log = request_log.RequestLog(folder)
  for start in range(0, len(rows), 10):
    now = request_log.timestamp(request_log.utc_now())
    log.write([{'time': now, 'model': 'taxi', 'version': version,
                'features': row, 'prediction': {'probability': [0.5]}}
               for row in rows[start:start + 10]])
  log.close()


@pytest.fixture(scope='module')
def monitored(e2e_run, tmp_path_factory):
  """An output dir with the e2e run's models and metadata, no log yet."""
  output_dir = tmp_path_factory.mktemp('monitor') / 'outputs'
  shutil.copytree(e2e_run.serving_model_dir, output_dir / 'serving_model')
  shutil.copy(e2e_run.metadata_path, output_dir / 'metadata.sqlite')
  latest = pipeline_state.pushed_versions(output_dir / 'serving_model')[-1]
  contract = serving_contract.read(str(latest))
  return output_dir, int(latest.name), contract


def test_without_a_request_log_nothing_is_compared(monitored, capsys):
  output_dir, _, _ = monitored
  code = monitor.main(['--output-dir', str(output_dir)])
  assert code == monitor.NOTHING_TO_COMPARE_EXIT
  err = capsys.readouterr().err
  assert 'MONITOR FAILED: no request log in' in err
  assert '--log-requests' in err


def test_normal_then_skewed_traffic(monitored, capsys):
  output_dir, version, contract = monitored
  folder = request_log.log_folder(str(output_dir), 'taxi')
  rows = _sample_rows(contract)
  assert len(rows) == 2000
  _log(folder, rows[:ROWS], version)
  _log(folder, rows[ROWS:2 * ROWS], version)

  normal_report = output_dir / 'normal.html'
  code = monitor.main(['--output-dir', str(output_dir), '--window-rows',
                       str(ROWS), '--report', str(normal_report)])
  out, err = capsys.readouterr()
  print(out)
  assert code == monitor.OK_EXIT, err
  assert f"Model 'taxi' version {version}" in out
  assert f'the last {ROWS} rows' in out
  assert 'skew payment_type: L-infinity distance' in out
  assert 'drift payment_type: L-infinity distance' in out
  assert 'OVER' not in out
  assert 'OK: no threshold crossed.' in out
  assert 'OK: no threshold crossed.' in normal_report.read_text()

  cash = [{**row, 'payment_type': 'Cash'} for row in rows[:ROWS]]
  _log(folder, cash, version)
  skewed_report = output_dir / 'skewed.html'
  code = monitor.main(['--output-dir', str(output_dir), '--window-rows',
                       str(ROWS), '--report', str(skewed_report)])
  out, err = capsys.readouterr()
  print(out, err)
  assert code == monitor.ALERT_EXIT
  alerts = [line for line in err.splitlines()
            if line.startswith(('SKEW', 'DRIFT'))]
  assert any(line.startswith('SKEW payment_type: COMPARATOR_L_INFTY_HIGH')
             for line in alerts), err
  assert any(line.startswith('DRIFT payment_type: COMPARATOR_L_INFTY_HIGH')
             for line in alerts), err
  assert all('payment_type' in line for line in alerts), alerts
  assert f'ALERT: {len(alerts)} threshold(s) crossed; exit 4.' in err
  html = skewed_report.read_text()
  assert 'ALERT:' in html and 'payment_type' in html
  assert 'Cash' in html


def test_a_time_window_finds_the_logged_rows(monitored, capsys):
  output_dir, _, _ = monitored
  code = monitor.main(['--output-dir', str(output_dir), '--window', '1h'])
  out, _ = capsys.readouterr()
  # Every row so far is in the last hour, a third of them all-'Cash'.
  assert f'{3 * ROWS} rows; previous:' in out
  assert ', 0 rows.' in out
  assert code == monitor.ALERT_EXIT
  reports = list((pathlib.Path(output_dir) / monitor.REPORT_DIR).glob(
      'report-*.html'))
  assert len(reports) == 1
