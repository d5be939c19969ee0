"""The run report: its view model and templates, then a real browser.

Unit tests build a `ReportView` by hand (no pipeline) and check the HTML that
`report.render` makes of it: escaping, verdict classes, number formatting,
threshold rows, and that nothing but the Facets section loads anything from
outside the page.

The e2e tests open the report of the shared e2e run in Debian's Chromium,
take a screenshot and dump the DOM after scripts ran, and check the page
against the metadata store: the blessing decision and the AUC shown must be
the ones MLMD recorded for the latest run.
"""

import html
import math
import os
import pathlib
import re
import shutil
import subprocess

import markupsafe
import pytest
from tensorflow_metadata.proto.v0 import statistics_pb2
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import validation_result_pb2

from pipeline.components import attributions
from pipeline.inspection import plots
from pipeline.inspection import report
from pipeline.inspection import run_model
from pipeline.inspection import slice_gaps
from pipeline.inspection import summary as run_summary
from tests.conftest import PIPELINE_NAME

EVIL = '<script>alert(1)</script>'
EVIL_ESCAPED = '&lt;script&gt;alert(1)&lt;/script&gt;'
FACETS = markupsafe.Markup(
    '<link rel="import" href="https://example.org/facets.html">'
    '<script src="https://example.org/webcomponents.js"></script>'
    '<facets-overview id="facets-overview"></facets-overview>')


# --- Unit: a hand-built view ----------------------------------------------


def _view(**overrides) -> report.ReportView:
  """A full view of a blessed run with every section present."""
  fields = dict(
      pipeline_name='tabular-taxi',
      run_id='2026-01-01T00:00:00.000001',
      generated='2026-01-01T00:10:00',
      metadata_path='/tmp/out/metadata.sqlite',
      verdict=report.verdict(True, 'all thresholds met'),
      chips=(report.Chip('auc', 0.916283), report.Chip('example_count',
                                                       1204.0)),
      pushed_model='/tmp/out/serving_model/1795407337',
      evaluation=report.EvaluationView(
          thresholds=(report.ThresholdRow('auc', 'Overall', '≥ 0.9',
                                          0.916283, 'pass'),),
          blessing_reason='all thresholds met',
          baseline=None,
          columns=('auc', 'example_count'),
          slices=report.slice_rows(
              {'auc': 0.916283, 'example_count': 1204.0},
              {'payment_type=Cash': {'auc': 0.0, 'majority_class_rate': 1.0,
                                     'example_count': 129.0},
               'payment_type=Credit Card': {'auc': float('nan'),
                                            'example_count': 73.0}})),
      components=(report.ComponentRow('Trainer', 'complete', 30.24),
                  report.ComponentRow('Transform', 'cached', 0.0),
                  report.ComponentRow('Pusher', 'FAILED', 1.5)),
      lineage=(report.LineageRow('data', None, 'data/taxi_sample', ''),
               report.LineageRow('model', 14, '/tmp/out/Trainer/model/9',
                                 '')),
      anomalies=report.AnomaliesView('/tmp/out/anomalies/5',
                                     ('eval', 'train'), ()),
      statistics=report.StatisticsView(
          example_counts=(('eval', 214), ('train', 1584)),
          splits=('train', 'eval'),
          rows=(report.StatsRow('fare', 'FLOAT', (
              report.StatsCell('0.0%', 'mean 11.3'),
              report.StatsCell('–', 'absent'))),),
          facets_html=FACETS))
  fields.update(overrides)
  return report.ReportView(**fields)


def _element(page: str, element_id: str) -> str:
  """The text of the first element with this id (no nested tags)."""
  found = re.search(rf'id="{re.escape(element_id)}"[^>]*>([^<]*)<', page)
  assert found, f'no element id={element_id!r} in the page'
  return found.group(1)


def _visible_text(dom: str) -> str:
  body = re.sub(r'(?is)<(script|style)\b.*?</\1>', ' ', dom)
  body = re.sub(r'(?s)<[^>]+>', ' ', body)
  return re.sub(r'\s+', ' ', html.unescape(body)).strip()


def test_malicious_names_are_escaped_everywhere():
  view = _view(
      run_id=EVIL,
      chips=(report.Chip(EVIL, 0.5),),
      pushed_model=EVIL,
      evaluation=report.EvaluationView(
          thresholds=(report.ThresholdRow(EVIL, EVIL, '≥ 0.9', 0.5,
                                          'pass'),),
          blessing_reason=EVIL, baseline=None, columns=('auc',),
          slices=report.slice_rows({'auc': 0.9}, {f'trip={EVIL}': {
              'auc': 0.5}})),
      components=(report.ComponentRow(EVIL, 'complete', 1.0),),
      lineage=(report.LineageRow(EVIL, 3, EVIL, EVIL),),
      anomalies=report.AnomaliesView(EVIL, (EVIL,), (report.AnomalyRow(
          'train', EVIL, 'Unexpected string values', EVIL),)),
      statistics=report.StatisticsView(
          example_counts=((EVIL, 3),), splits=('train',),
          rows=report.stats_rows(
              {'train': _dataset(3, [_string_feature(EVIL, EVIL)])},
              ['train']),
          facets_html=FACETS))
  page = report.render(view)
  assert 'alert(1)' in page
  assert EVIL not in page
  assert f'trip={EVIL_ESCAPED}' in page
  assert page.count(EVIL_ESCAPED) >= 15
  # An attacker can't close the id attribute either.
  assert f'id="metric-{EVIL_ESCAPED}"' in page


@pytest.mark.parametrize('blessed, decision, css', [
    (True, 'BLESSED', 'good'),
    (False, 'NOT BLESSED', 'bad'),
    (None, 'NOT EVALUATED', 'neutral'),
])
def test_verdict_classes(blessed, decision, css):
  view = _view(verdict=report.verdict(blessed, 'auc = 0.8 fails >= 0.9'))
  page = report.render(view)
  assert view.verdict.css == css
  assert f'<section class="verdict {css}">' in page
  assert _element(page, 'blessing') == f'Blessing: {decision}'
  if blessed is None:
    assert 'stopped before the Evaluator' in page
  else:
    assert 'Reason: auc = 0.8 fails &gt;= 0.9' in page


def test_the_verdict_says_why_in_a_sentence_and_shows_the_threshold():
  sentence = ('Not blessed: its AUC lower bound 0.49 is no better than a '
              'constant guess (0.5) <b>')
  view = _view(verdict=report.verdict(False, 'auc_lower_bound = 0.49 fails',
                                      sentence),
               decision='0.23 (best F1 of the positive class on the eval '
               'split)')
  page = report.render(view)
  assert _element(page, 'blessing-sentence') == sentence.replace(
      '<', '&lt;').replace('>', '&gt;')
  assert _element(page, 'decision-threshold').startswith('0.23 (best F1')
  plain = report.render(_view())
  assert 'id="blessing-sentence"' not in plain
  assert 'id="decision-threshold"' not in plain


@pytest.mark.parametrize('value, kwargs, expected', [
    (None, {}, '–'),
    (float('nan'), {}, '–'),
    (0.916283, {}, '0.9163'),
    (1.0, {}, '1.0000'),  # A rate of 1 is not a count.
    (202.0, {'name': 'example_count'}, '202'),
    (1234567.0, {}, '1,234,567'),
    (1234567.0, {'name': 'auc'}, '1234567.0000'),
    (-0.05445, {'digits': 2}, '-0.05'),
])
def test_fmt(value, kwargs, expected):
  assert report.fmt(value, **kwargs) == expected


def test_numbers_in_the_page():
  page = report.render(_view())
  assert _element(page, 'metric-auc') == '0.9163'
  assert _element(page, 'metric-example_count') == '1,204'
  assert _element(page, 'pushed-model') == '/tmp/out/serving_model/1795407337'
  # A single-class slice has no AUC; a NaN shows as a dash; bars for AUC.
  assert 'n/a: one class' in page
  assert '<td>–</td>' in page
  assert 'style="width:92%"' in page
  assert '3 components, 1 from cache (cache hits), 31.7 s' in _visible_text(
      page)
  assert '<td>30.2 s</td>' in page
  assert 'eval: 214 examples, train: 1,584 examples.' in page


def test_slices_sort_overall_first_then_numerically():
  rows = report.slice_rows({}, {'hour=10': {}, 'hour=9': {}, 'a=x': {}})
  assert [r.name for r in rows] == ['Overall', 'a=x', 'hour=9', 'hour=10']
  assert rows[0].is_overall and not rows[1].is_overall


def test_missing_sections_say_so():
  page = report.render(_view(
      verdict=report.verdict(None, ''), chips=(), pushed_model=None,
      evaluation=None, anomalies=None, statistics=None))
  assert _element(page, 'pushed-model') == 'none (not pushed)'
  for text in ('No evaluation in this run.', 'ExampleValidator did not run.',
               'StatisticsGen did not run.'):
    assert text in page
  assert 'id="facets"' not in page


def test_anomalies_none_or_listed():
  page = report.render(_view())
  assert 'No anomalies in any split (eval, train)' in _element(
      page, 'anomalies-none')
  page = report.render(_view(anomalies=report.AnomaliesView(
      '/a', ('train',), (report.AnomalyRow(
          'train', 'company', 'Unexpected string values',
          'Examples contain values missing from the schema: Acme.'),))))
  assert 'id="anomalies-none"' not in page
  assert '<td>Unexpected string values</td>' in page


def test_no_external_resource_outside_facets():
  page = report.render(_view())
  facets = f'<div class="facets" id="facets">{FACETS}</div>'
  # The trusted Facets markup goes in as is, once, not escaped.
  assert page.count(facets) == 1
  rest = page.replace(facets, '')
  for pattern in (r'https?:', r'\bsrc\s*=', r'\bhref\s*=', r'<link\b',
                  r'<script\b', r'url\(', r'@import', r'<iframe\b'):
    assert not re.search(pattern, rest, re.IGNORECASE), pattern
  # The CSS is inlined, not escaped.
  assert '"Segoe UI"' in rest and '<style>' in rest


# --- Unit: thresholds from an EvalConfig -----------------------------------


def _eval_config(with_baseline: bool) -> tfma.EvalConfig:
  model_specs = [tfma.ModelSpec(name='candidate')]
  if with_baseline:
    model_specs.append(tfma.ModelSpec(name='baseline', is_baseline=True))
  overall = [tfma.SlicingSpec()]
  auc = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(lower_bound={'value': 0.9}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.HIGHER_IS_BETTER,
          absolute={'value': -0.01}))
  return tfma.EvalConfig(
      model_specs=model_specs,
      metrics_specs=[tfma.MetricsSpec(
          model_names=[spec.name for spec in model_specs],
          metrics=[
              tfma.MetricConfig(
                  class_name='AUC', per_slice_thresholds=[
                      tfma.PerSliceMetricThreshold(slicing_specs=overall,
                                                   threshold=auc)]),
              tfma.MetricConfig(class_name='BinaryAccuracy'),
              tfma.MetricConfig(
                  class_name='ExampleCount', per_slice_thresholds=[
                      tfma.PerSliceMetricThreshold(
                          slicing_specs=[tfma.SlicingSpec(
                              feature_values={'payment_type': 'Cash'})],
                          threshold=tfma.MetricThreshold(
                              value_threshold=tfma.GenericValueThreshold(
                                  lower_bound={'value': 10},
                                  upper_bound={'value': 1e6})))]),
          ])])


def _failures(*failed):
  """A ValidationResult where each (MetricKey, slice key) failed."""
  result = validation_result_pb2.ValidationResult(validation_ok=not failed)
  for key, slice_key in failed:
    per_slice = result.metric_validations_per_slice.add()
    per_slice.slice_key.CopyFrom(tfma.slicer.serialize_slice_key(slice_key))
    per_slice.failures.add(metric_key=key.to_proto())
  return result


OVERALL_METRICS = {'auc': 0.85, 'auc_diff': 0.004, 'binary_accuracy': 0.8}
SLICE_METRICS = {'payment_type=Cash': {'example_count': 129.0}}


def _evaluation_with(rows) -> report.EvaluationView:
  """The hand-built view's evaluation, with these threshold rows."""
  evaluation = _view().evaluation
  return report.EvaluationView(
      thresholds=tuple(rows), blessing_reason=evaluation.blessing_reason,
      baseline=(report.BaselineRow('auc', 0.85, 0.846, 0.004),),
      columns=evaluation.columns, slices=evaluation.slices)


def test_threshold_rows_with_baseline_and_failures():
  auc = tfma.metrics.MetricKey('auc', model_name='candidate')
  count = tfma.metrics.MetricKey('example_count', model_name='candidate')
  validation = _failures(
      (auc, ()),
      # A failure on another slice than the threshold's is not its failure.
      (count, (('payment_type', 'Cash'), ('company', 'Acme'))))
  rows = report.threshold_rows(_eval_config(with_baseline=True), validation,
                               OVERALL_METRICS, SLICE_METRICS)
  assert rows == (
      report.ThresholdRow('auc', 'Overall', '≥ 0.9', 0.85, 'FAIL'),
      report.ThresholdRow('auc', 'Overall', 'change vs baseline ≥ -0.01',
                          0.004, 'pass'),
      report.ThresholdRow('example_count', 'payment_type=Cash',
                          '≥ 10 and ≤ 1e+06', 129.0, 'pass'),
  )
  page = report.render(_view(evaluation=_evaluation_with(rows)))
  assert ('<td>auc</td><td>Overall</td><td>≥ 0.9</td><td>0.8500</td>'
          '<td><span class="fail">FAIL</span></td>') in page
  assert 'Candidate vs baseline' in page and '<td>0.0040</td>' in page
  assert ('<td>example_count</td><td>payment_type=Cash</td>'
          '<td>≥ 10 and ≤ 1e+06</td><td>129</td>'
          '<td><span class="pass">pass</span></td>') in page


def test_threshold_rows_without_baseline():
  validation = _failures()
  rows = report.threshold_rows(_eval_config(with_baseline=False), validation,
                               OVERALL_METRICS)
  assert [(r.rule, r.status) for r in rows] == [
      ('≥ 0.9', 'pass'),
      ('change vs baseline ≥ -0.01', report.NOT_CHECKED),
      ('≥ 10 and ≤ 1e+06', 'pass'),
  ]
  assert rows[2].value is None  # No metrics of that slice given.
  page = report.render(_view(evaluation=_evaluation_with(rows)))
  assert (f'<span class="muted">{report.NOT_CHECKED}</span>') in page


# --- Unit: statistics rows ---------------------------------------------------


def _dataset(num_examples, features):
  return statistics_pb2.DatasetFeatureStatistics(num_examples=num_examples,
                                                 features=features)


def _string_feature(name, top):
  """In 3 of 4 rows; absent from the 4th, as TFDV counts it."""
  feature = statistics_pb2.FeatureNameStatistics(
      type=statistics_pb2.FeatureNameStatistics.STRING)
  feature.path.step.append(name)
  feature.string_stats.unique = 2
  feature.string_stats.common_stats.CopyFrom(statistics_pb2.CommonStatistics(
      num_non_missing=3, num_missing=1, min_num_values=1, max_num_values=1,
      tot_num_values=3))
  feature.string_stats.top_values.add(value=top, frequency=2)
  return feature


def _float_feature(name, rows, blank=0):
  """In every one of `rows` rows, `blank` of them an empty CSV cell: TFDV
  counts those as present (an empty value list), not as missing."""
  feature = statistics_pb2.FeatureNameStatistics(
      type=statistics_pb2.FeatureNameStatistics.FLOAT)
  feature.path.step.append(name)
  feature.num_stats.common_stats.CopyFrom(statistics_pb2.CommonStatistics(
      num_non_missing=rows, num_missing=0,
      min_num_values=0 if blank else 1, max_num_values=1,
      tot_num_values=rows - blank))
  feature.num_stats.mean = 11.25
  feature.num_stats.std_dev = math.sqrt(2)
  feature.num_stats.min = 2.5
  feature.num_stats.max = 52
  return feature


def test_stats_rows():
  rows = report.stats_rows(
      {'train': _dataset(4, [_float_feature('fare', 4, blank=1),
                             _string_feature('company', 'Acme')]),
       'eval': _dataset(2, [_float_feature('fare', 2)])},
      ['train', 'eval'])
  assert rows == (
      report.StatsRow('company', 'STRING', (
          report.StatsCell('25.0%', '2 unique, top “Acme” (2)'),
          report.StatsCell('–', 'absent'))),
      report.StatsRow('fare', 'FLOAT', (
          report.StatsCell('25.0%', 'mean 11.250, std 1.414, min 2.500, '
                           'max 52'),
          report.StatsCell('0.0%', 'mean 11.250, std 1.414, min 2.500, '
                           'max 52'))),
  )


# --- End to end: the report of a real run, in Chromium ----------------------

CHROMIUM_NAMES = ('chromium', 'chromium-browser')
CHROMIUM_FLAGS = ('--headless', '--no-sandbox', '--disable-gpu',
                  '--disable-quic', '--no-first-run',
                  '--disable-background-networking',
                  '--disable-component-update', '--disable-sync',
                  '--hide-scrollbars')


@pytest.fixture(scope='session')
def chromium() -> str:
  """Debian's chromium, which `make test` installs before the tests."""
  if os.access('/usr/bin/chromium', os.X_OK):
    return '/usr/bin/chromium'
  for name in CHROMIUM_NAMES:
    path = shutil.which(name)
    if path:
      return path
  pytest.fail('chromium is not installed (not /usr/bin/chromium, nor '
              f'{" or ".join(CHROMIUM_NAMES)} on PATH). Run `make test`, '
              'whose setup installs it, or `sudo apt-get install -y '
              'chromium`.')


def _browse(chromium: str, profile: pathlib.Path, *args: str
            ) -> subprocess.CompletedProcess:
  cmd = [chromium, *CHROMIUM_FLAGS, f'--user-data-dir={profile}', *args]
  result = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                          check=False)
  assert result.returncode == 0, (
      f'{" ".join(cmd)} exited {result.returncode}:\n{result.stderr[-3000:]}')
  return result


def _run_ids(metadata_path: str):
  """Run ids of the e2e pipeline, oldest first."""
  store = run_model.open_store(metadata_path, readonly=True)
  return [c.name for c in run_model.run_contexts(store, PIPELINE_NAME)]


@pytest.mark.e2e
def test_each_run_writes_and_prints_its_report(e2e_run):
  """Both runs print `Report: <path>`; report.html is the latest run's."""
  ids = _run_ids(e2e_run.metadata_path)
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
  # What MLMD recorded, through the read model, not through the page.
  run = run_model.find_run(
      run_model.open_store(e2e_run.metadata_path, readonly=True),
      PIPELINE_NAME)
  summary = run_summary.summarize(run)
  assert summary.blessed is not None and 'auc' in summary.metrics
  page = e2e_run.output_dir / report.LATEST_REPORT
  url = page.resolve().as_uri()

  screenshot = tmp_path / 'report.png'
  _browse(chromium, tmp_path / 'profile-shot', f'--screenshot={screenshot}',
          '--window-size=1280,2200', url)
  print(f'\nReport screenshot: {screenshot}')
  assert screenshot.stat().st_size > 20_000, 'screenshot suspiciously small'
  # Not blank: a rendered page has text, tables and a coloured verdict box.
  from PIL import Image
  with Image.open(screenshot) as image:
    colours = image.convert('RGB').resize((320, 550)).getcolors(1 << 16)
  assert colours is not None and len(colours) > 50, (
      f'screenshot {screenshot} looks blank ({len(colours or [])} colours)')
  # The plots sit under the verdict: the curves' colour (ROC, precision-
  # recall, calibration) must fill thousands of the screenshot's pixels.
  with Image.open(screenshot) as image:
    curve_pixels = _pixels_near(image, plots.LINE)
  print(f'Curve pixels in the screenshot: {curve_pixels}')
  assert curve_pixels > 1500, (
      f'the plots look undrawn in {screenshot} ({curve_pixels} pixels of '
      'the curve colour)')

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
  cached = sum(1 for e in run.executions if e.state == 'cached')
  assert f'{len(run.executions)} components, {cached} from cache' in text
  assert cached > 0  # the second e2e run reuses most components
  # TFDV's Facets element made it into the page.
  assert 'facets-overview' in dom or 'facets-iframe' in dom
  _check_plots_fairness_and_attributions(run, summary, dom, text)


def _pixels_near(image, hex_colour: str, tolerance: int = 40) -> int:
  """How many pixels of an image are within `tolerance` of a colour."""
  import numpy as np
  target = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
  pixels = np.asarray(image.convert('RGB')).reshape(-1, 3).astype(int)
  return int((np.abs(pixels - target).sum(axis=1) < tolerance).sum())


def _check_plots_fairness_and_attributions(run, summary, dom: str,
                                           text: str) -> None:
  """The report's plots are real images, and its fairness and
  attributions sections show what the run's artifacts hold."""
  import base64
  import io

  from PIL import Image
  images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"',
                      dom)
  # Binary: ROC, precision-recall, calibration and the confusion matrix.
  assert len(images) == 4, len(images)
  for key in ('roc', 'pr', 'calibration', 'confusion'):
    assert f'id="plot-{key}"' in dom, key
  for data in images:
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
      assert image.size == (460, 360)
      assert len(image.convert('RGB').getcolors(1 << 16) or []) > 20
  for heading in ('Evaluation plots', 'Fairness: gaps between slices',
                  'Fairness indicators by slice',
                  'Feature attributions (permutation importance)'):
    assert heading in text, heading
  # Each gap between slices, from the metrics in MLMD, as the page shows
  # it: best, worst and gap where two slices qualify (large enough, and
  # with both classes for AUC and the error rates; the small e2e test
  # split often has fewer), else that fewer than 2 do and how many were
  # left out.
  gaps = slice_gaps.slice_gaps(['payment_type', 'trip_start_hour'],
                               summary.metrics, summary.slice_metrics)
  assert gaps
  for gap in gaps:
    if gap.gap is None:
      assert 'fewer than 2 slices qualify' in text, gap
    else:
      assert (f'{gap.best.name}: {gap.best.value:.4f} (n='
              f'{gap.best.count:,.0f})') in text, gap
      assert f'{gap.gap:.4f}' in text, gap
    if gap.left_out:
      assert f'{gap.compared} ({gap.left_out} left out)' in text, gap
  # The attributions of the model the run judged (an unchanged re-run
  # shows those of the run that evaluated its model).
  judged = run.blessed_by or run
  result = attributions.read(judged.attributions_uri)
  shown = re.findall(r'id="attribution-([^"]+)"', dom)
  assert shown == [r['feature'] for r in result['features']]
  top = result['features'][0]
  print('Top attributions: ' + ', '.join(
      f"{r['feature']} {r['importance']:+.4f}"
      for r in result['features'][:5]))
  assert f'{top["feature"]} {top["importance"]:.4f}' in text


def test_strict_lower_bounds_read_as_strict():
  """The gate adds a tiny epsilon to make 'bound > margin' strict."""
  from pipeline.definition import evaluation
  assert run_summary.lower_bound_text(evaluation.STRICT_EPSILON) == '> 0'
  assert run_summary.lower_bound_text(
      0.02 + evaluation.STRICT_EPSILON) == '> 0.02'
  assert run_summary.lower_bound_text(0.9) == '≥ 0.9'
  assert run_summary.lower_bound_text(10, '>=') == '>= 10'
