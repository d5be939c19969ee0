"""The run report, as a person sees it: opened in a real (headless) browser.

The e2e runs write the report themselves; this test opens it in Debian's
Chromium, takes a screenshot and dumps the DOM after scripts ran, and checks
the page against the metadata store: the blessing decision and the AUC shown
must be the ones MLMD recorded for the latest run.
"""

import html
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from pipeline.inspection import report
from pipeline.inspection import summary as run_summary
from tests.conftest import PIPELINE_NAME

CHROMIUM_NAMES = ('chromium', 'chromium-browser')
CHROMIUM_FLAGS = ('--headless', '--no-sandbox', '--disable-gpu',
                  '--disable-quic', '--no-first-run',
                  '--disable-background-networking',
                  '--disable-component-update', '--disable-sync',
                  '--hide-scrollbars')


def _find_chromium():
  for name in CHROMIUM_NAMES:
    path = shutil.which(name)
    if path:
      return path
  return None


@pytest.fixture(scope='session')
def chromium() -> str:
  """Debian's chromium; installed with apt-get when missing and root."""
  path = _find_chromium()
  if path:
    return path
  if not hasattr(os, 'geteuid') or os.geteuid() != 0:
    pytest.skip('chromium is not installed and installing it needs root: run '
                '`sudo apt-get update && sudo apt-get install -y chromium`.')
  env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
  # Other jobs may hold the dpkg lock for a while; wait for it, not fail.
  commands = [['apt-get', 'update'],
              ['apt-get', 'install', '-y', '--no-install-recommends',
               '-o', 'DPkg::Lock::Timeout=300', 'chromium']]
  for cmd in commands:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env,
                            timeout=900, check=False)
    if result.returncode != 0:
      pytest.skip(f'chromium is missing and `{" ".join(cmd)}` failed '
                  f'({result.returncode}): {result.stderr[-1500:]}')
  path = _find_chromium()
  if not path:
    pytest.fail('apt-get installed chromium but no chromium binary is on '
                'PATH.')
  return path


def _browse(chromium: str, profile: pathlib.Path, *args: str
            ) -> subprocess.CompletedProcess:
  cmd = [chromium, *CHROMIUM_FLAGS, f'--user-data-dir={profile}', *args]
  result = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                          check=False)
  assert result.returncode == 0, (
      f'{" ".join(cmd)} exited {result.returncode}:\n{result.stderr[-3000:]}')
  return result


def _visible_text(dom: str) -> str:
  body = re.sub(r'(?is)<(script|style)\b.*?</\1>', ' ', dom)
  body = re.sub(r'(?s)<[^>]+>', ' ', body)
  return re.sub(r'\s+', ' ', html.unescape(body)).strip()


@pytest.mark.e2e
def test_each_run_writes_and_prints_its_report(e2e_run):
  """Both runs print `Report: <path>`; report.html is the latest run's."""
  store = run_summary.open_store(e2e_run.metadata_path)
  ids = run_summary.run_ids(store, PIPELINE_NAME)
  assert len(ids) >= 2
  # The fixture's runs are the first ones in its store.
  for output, run_id in zip(e2e_run.outputs, ids[:len(e2e_run.outputs)],
                            strict=True):
    printed = re.findall(r'^Report: (.+)$', output.stdout, re.MULTILINE)
    expected, _ = report.report_paths(str(e2e_run.output_dir), run_id)
    assert printed == [expected], output.stdout[-3000:]
    assert os.path.isfile(expected)
  latest = e2e_run.output_dir / report.LATEST_REPORT
  expected, _ = report.report_paths(str(e2e_run.output_dir), ids[-1])
  assert latest.read_text() == pathlib.Path(expected).read_text()


@pytest.mark.e2e
def test_report_renders_in_chromium(e2e_run, chromium, tmp_path):
  store = run_summary.open_store(e2e_run.metadata_path)
  summary = run_summary.summarize(store, PIPELINE_NAME)
  assert summary.blessed is not None and 'auc' in summary.metrics
  page = e2e_run.output_dir / report.LATEST_REPORT
  url = page.resolve().as_uri()

  screenshot = tmp_path / 'report.png'
  _browse(chromium, tmp_path / 'profile-shot', f'--screenshot={screenshot}',
          '--window-size=1280,2200', url)
  print(f'\nReport screenshot: {screenshot}')
  assert screenshot.stat().st_size > 20_000, 'screenshot suspiciously small'
  # Not blank: a rendered page has text, tables and a coloured verdict box.
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(screenshot) as image:
    colours = image.convert('RGB').resize((320, 550)).getcolors(1 << 16)
  assert colours is not None and len(colours) > 50, (
      f'screenshot {screenshot} looks blank ({len(colours or [])} colours)')

  dom = _browse(chromium, tmp_path / 'profile-dom', '--dump-dom',
                url).stdout
  text = _visible_text(dom)
  assert len(text) > 2000, f'page text too short: {text[:500]!r}'
  verdict = 'BLESSED' if summary.blessed else 'NOT BLESSED'
  assert f'Blessing: {verdict}' in text
  auc = f'{summary.metrics["auc"]:.4f}'
  shown = re.search(r'id="metric-auc"[^>]*>([^<]+)<', dom)
  assert shown and shown.group(1) == auc, (shown and shown.group(1), auc)
  # The rest of what the report promises, by its visible headings and values.
  for heading in ('Gate thresholds', 'All slices', 'Components', 'Lineage',
                  'Anomalies', 'Statistics overview',
                  'TFDV / Facets view'):
    assert heading in text, heading
  assert 'payment_type=Credit Card' in text  # a slice row
  if summary.pushed_model:
    assert summary.pushed_model in text
  cached = sum(1 for c in summary.components if c.state == 'cached')
  assert f'{len(summary.components)} components, {cached} from cache' in text
  assert cached > 0  # the second e2e run reuses most components
  # TFDV's Facets element made it into the page.
  assert 'facets-overview' in dom or 'facets-iframe' in dom
