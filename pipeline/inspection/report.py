"""A self-contained HTML report of one pipeline run, for a browser.

Written by the local runner at the end of every run into the output dir:

    <output-dir>/reports/<run id>.html   one per run
    <output-dir>/report.html             a copy of the latest

It shows, read back from MLMD and the run's artifacts:
  * the blessing decision and its reason, with the headline metrics;
  * metrics by slice, the thresholds they were gated on and whether each
    passed, and the comparison with the baseline model when there was one;
  * the pushed model path and the lineage chain of the run;
  * component durations and cache hits;
  * the ExampleValidator anomalies;
  * a statistics overview: a plain per-feature table (train vs eval) and
    TFDV's Facets visualization (get_statistics_html).

Everything but the Facets view is plain HTML and CSS with no script and no
external resource, so it renders in any browser, offline, and survives being
mailed or attached to a CI run. Facets loads its code from the internet; its
section says so.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import json
import math
import os
import re
import shutil
from typing import Dict
from typing import Iterable
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

import tensorflow_data_validation as tfdv
from tensorflow_data_validation.utils import display_util
from tensorflow_metadata.proto.v0 import statistics_pb2
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.writers import eval_config_writer

from models import metrics as custom_metrics
from pipeline.components import anomaly_gate
from pipeline.inspection import run_model as inspect_lib
from pipeline.inspection import summary as run_summary

REPORTS_DIR = 'reports'
LATEST_REPORT = 'report.html'
STATS_FILE = 'FeatureStats.pb'
# Columns of the slice table, in order; the gate's metrics first.
SLICE_METRICS = ('auc', 'binary_accuracy', custom_metrics.ACCURACY_LIFT_NAME,
                 custom_metrics.MAJORITY_RATE_NAME, 'precision', 'recall',
                 'example_count')
_BASELINE = 'baseline'
_CANDIDATE = 'candidate'


@dataclasses.dataclass
class Threshold:
  """One gate threshold from the EvalConfig and how the run fared on it."""
  metric: str
  slices: str
  rule: str
  value: Optional[float]
  status: str  # 'pass', 'FAIL', or why it was not checked.


def report_paths(output_dir: str, run_id: str) -> Tuple[str, str]:
  """(per-run report path, latest report path) under an output dir."""
  safe = re.sub(r'[^0-9A-Za-z_.-]+', '-', run_id).strip('-')
  return (os.path.join(output_dir, REPORTS_DIR, f'run-{safe}.html'),
          os.path.join(output_dir, LATEST_REPORT))


def write_report(metadata_path: str, pipeline_name: str, output_dir: str,
                 run_id: Optional[str] = None) -> str:
  """Renders the report of `run_id` (default: the latest run).

  Args:
    metadata_path: The SQLite MLMD file of the run.
    pipeline_name: Pipeline whose run to report.
    output_dir: Where `reports/` and `report.html` go.
    run_id: A pipeline_run id; None for the latest run.

  Returns:
    The path of the per-run report. `report.html` is a copy of it.

  Raises:
    LookupError: No such run in the store.
  """
  page = render(metadata_path, pipeline_name, run_id)
  store = run_summary.open_store(metadata_path)
  run_id = run_id or run_summary.run_ids(store, pipeline_name)[-1]
  path, latest = report_paths(output_dir, run_id)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(page)
  shutil.copyfile(path, latest)
  return path


def render(metadata_path: str, pipeline_name: str,
           run_id: Optional[str] = None) -> str:
  """The report page of one run, as an HTML string."""
  store = run_summary.open_store(metadata_path)
  summary = run_summary.summarize(store, pipeline_name, run_id)
  run = _find_run(store, pipeline_name, summary.run_id)
  sections = [
      _verdict_section(summary),
      _metrics_section(summary),
      _run_section(summary, run),
      _anomalies_section(run),
      _statistics_section(run),
  ]
  title = f'{pipeline_name} run {summary.run_id}'
  generated = datetime.datetime.now().isoformat(timespec='seconds')
  return _PAGE.format(
      title=_e(title), generated=_e(generated), style=_STYLE,
      metadata=_e(metadata_path), body='\n'.join(sections))


def _find_run(store, pipeline_name: str, run_id: str) -> inspect_lib.Run:
  for run in inspect_lib.recent_runs(store, pipeline_name):
    if run.run_id == run_id:
      return run
  raise LookupError(f'Run {run_id!r} of {pipeline_name!r} not in the store.')


def _e(value) -> str:
  return html.escape(str(value), quote=True)


def _fmt(value: Optional[float], digits: int = 4, name: str = '') -> str:
  """A metric or statistic for display; counts without decimals."""
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return '–'
  if name.endswith('count') or (not name and float(value).is_integer()
                                and abs(value) >= 2):
    return f'{value:,.0f}'
  return f'{value:.{digits}f}'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]],
           css: str = '') -> str:
  """An HTML table; cells are already-escaped HTML."""
  head = ''.join(f'<th>{h}</th>' for h in headers)
  body = '\n'.join('<tr>' + ''.join(f'<td>{c}</td>' for c in row) + '</tr>'
                   for row in rows)
  return (f'<table class="{css}"><thead><tr>{head}</tr></thead>'
          f'<tbody>{body}</tbody></table>')


# --- Verdict and metrics -------------------------------------------------


def _verdict_section(summary: run_summary.RunSummary) -> str:
  if summary.blessed is None:
    css, verdict = 'neutral', 'NOT EVALUATED'
    reason = 'The run stopped before the Evaluator; see the components below.'
  elif summary.blessed:
    css, verdict, reason = 'good', 'BLESSED', summary.blessing_reason
  else:
    css, verdict, reason = 'bad', 'NOT BLESSED', summary.blessing_reason
  chips = ''.join(
      f'<div class="chip"><span>{_e(name)}</span>'
      f'<b id="metric-{_e(name)}">{_fmt(summary.metrics[name], name=name)}'
      '</b></div>'
      for name in SLICE_METRICS if name in summary.metrics)
  pushed = summary.pushed_model or 'none (not pushed)'
  return f'''
<section class="verdict {css}">
  <div class="decision" id="blessing">Blessing: {verdict}</div>
  <div class="reason">Reason: {_e(reason)}</div>
  <div class="chips">{chips}</div>
  <div class="pushed">Pushed model: <code id="pushed-model">{_e(pushed)}</code></div>
</section>'''


def _metric_name(config: tfma.MetricConfig) -> str:
  """The metric key TFMA uses for a MetricConfig: its configured name, else
  the class name in snake case ('AUC' -> 'auc', 'ExampleCount' ->
  'example_count')."""
  if config.config:
    try:
      name = json.loads(config.config).get('name')
    except ValueError:
      name = None
    if name:
      return name
  name = re.sub(r'([A-Z]+)([A-Z][a-z])', r'\1_\2', config.class_name)
  return re.sub(r'([a-z0-9])([A-Z])', r'\1_\2', name).lower()


def _slices_text(slicing_specs) -> str:
  names = []
  for spec in slicing_specs:
    keys = list(spec.feature_keys) + [f'{k}={v}' for k, v in
                                       spec.feature_values.items()]
    names.append(', '.join(keys) if keys else 'Overall')
  return '; '.join(names) or 'all slices'


def thresholds(eval_config: tfma.EvalConfig, evaluation_uri: str,
               overall: Dict[str, float]) -> List[Threshold]:
  """Every threshold of the EvalConfig with the value it was judged on."""
  has_baseline = any(spec.is_baseline for spec in eval_config.model_specs)
  validation = tfma.load_validation_result(evaluation_uri)
  failed = set()
  for per_slice in validation.metric_validations_per_slice:
    for failure in per_slice.failures:
      failed.add((failure.metric_key.name, failure.metric_key.is_diff))
  found: List[Threshold] = []
  for metrics_spec in eval_config.metrics_specs:
    for config in metrics_spec.metrics:
      name = _metric_name(config)
      pairs = [(_slices_text(t.slicing_specs), t.threshold)
               for t in config.per_slice_thresholds]
      if config.HasField('threshold'):
        pairs.append(('all slices', config.threshold))
      for slices, threshold in pairs:
        if threshold.HasField('value_threshold'):
          bound = threshold.value_threshold
          rules = []
          if bound.HasField('lower_bound'):
            rules.append(f'≥ {bound.lower_bound.value:.4g}')
          if bound.HasField('upper_bound'):
            rules.append(f'≤ {bound.upper_bound.value:.4g}')
          found.append(Threshold(
              name, slices, ' and '.join(rules), overall.get(name),
              'FAIL' if (name, False) in failed else 'pass'))
        if threshold.HasField('change_threshold'):
          change = threshold.change_threshold
          rule = 'change vs baseline'
          if change.HasField('absolute'):
            higher = (change.direction ==
                      tfma.MetricDirection.HIGHER_IS_BETTER)
            rule += f' {"≥" if higher else "≤"} {change.absolute.value:+.4g}'
          if change.HasField('relative'):
            rule += f' (relative {change.relative.value:+.4g})'
          if not has_baseline:
            status = 'not checked: no blessed baseline yet'
          else:
            status = 'FAIL' if (name, True) in failed else 'pass'
          found.append(Threshold(name, slices, rule,
                                 overall.get(f'{name}_diff'), status))
  return found


def _metrics_section(summary: run_summary.RunSummary) -> str:
  if not summary.evaluation_uri:
    return ('<section><h2>Metrics by slice</h2><p>No evaluation in this '
            'run.</p></section>')
  uri = summary.evaluation_uri
  eval_config = load_eval_config(uri)
  has_baseline = any(spec.is_baseline for spec in eval_config.model_specs)
  overall = summary.metrics
  parts = ['<section><h2>Metrics by slice (test split)</h2>']

  rows = []
  for item in thresholds(eval_config, uri, overall):
    status_css = ('pass' if item.status == 'pass' else
                  'fail' if item.status == 'FAIL' else 'muted')
    rows.append([_e(item.metric), _e(item.slices), _e(item.rule),
                 _fmt(item.value, name=item.metric),
                 f'<span class="{status_css}">{_e(item.status)}</span>'])
  parts.append('<h3>Gate thresholds</h3>')
  parts.append(_table(['Metric', 'Slices', 'Threshold', 'Value', 'Result'],
                      rows, 'thresholds'))
  parts.append(f'<p class="reason">Blessing reason: '
               f'{_e(summary.blessing_reason or "not evaluated")}</p>')

  if has_baseline:
    baseline = _overall_metrics(uri, _BASELINE)
    rows = [[_e(name), _fmt(overall.get(name), name=name),
             _fmt(baseline.get(name), name=name),
             _fmt(overall.get(f'{name}_diff'))]
            for name in SLICE_METRICS if name in overall]
    parts.append('<h3>Candidate vs baseline (latest blessed model)</h3>')
    parts.append(_table(['Metric', 'Candidate', 'Baseline', 'Difference'],
                        rows, 'baseline'))
  else:
    parts.append('<p class="muted">No baseline: no model had been blessed '
                 'before this one.</p>')

  shown = [m for m in SLICE_METRICS if m in overall]
  slices = [('Overall', overall)] + sorted(
      summary.slice_metrics.items(), key=_slice_sort_key)
  rows = []
  for name, values in slices:
    cells = [f'<b>{_e(name)}</b>' if name == 'Overall' else _e(name)]
    one_class = values.get(custom_metrics.MAJORITY_RATE_NAME) == 1.0
    for metric in shown:
      value = values.get(metric)
      if metric == 'auc' and one_class:
        # TFMA reports 0 when a slice holds a single class; AUC is undefined.
        cells.append('<span class="muted">n/a: one class</span>')
      elif metric == 'auc' and value is not None and not math.isnan(value):
        # A bar makes weak slices stand out without a plotting library.
        cells.append(f'<div class="bar"><i style="width:{value * 100:.0f}%">'
                     f'</i><span>{_fmt(value)}</span></div>')
      else:
        cells.append(_fmt(value, name=metric))
    rows.append(cells)
  parts.append('<h3>All slices</h3>')
  parts.append(_table(['Slice'] + [_e(m) for m in shown], rows, 'slices'))
  parts.append('<p class="muted">Only the Overall slice is gated; small '
               'slices are reported, not gated, because they are noisy.</p>')
  parts.append('</section>')
  return '\n'.join(parts)


def load_eval_config(evaluation_uri: str) -> tfma.EvalConfig:
  """The EvalConfig the Evaluator really used, saved with its output."""
  eval_config, _, _, _ = eval_config_writer.load_eval_run(evaluation_uri)
  return eval_config


def _slice_sort_key(item: Tuple[str, Dict[str, float]]):
  """Groups slices by feature; numeric values sort numerically."""
  name = item[0]
  feature, _, value = name.partition('=')
  try:
    return (feature, 0, float(value), '')
  except ValueError:
    return (feature, 1, 0.0, value)


def _overall_metrics(uri: str, model_name: str) -> Dict[str, float]:
  result = tfma.load_eval_result(uri, model_name=model_name)
  for slice_key, metrics in result.slicing_metrics:
    if slice_key:
      continue
    values = {}
    for output in metrics.values():
      for sub in output.values():
        for name, value in sub.items():
          if 'doubleValue' in value:
            values[name] = float(value['doubleValue'])
    return values
  return {}


# --- Run: lineage, components --------------------------------------------


def _run_section(summary: run_summary.RunSummary,
                 run: inspect_lib.Run) -> str:
  cached = sum(1 for c in summary.components if c.state == 'cached')
  total = sum(c.seconds for c in summary.components)
  rows = []
  for component in summary.components:
    css = {'cached': 'muted', 'FAILED': 'fail'}.get(component.state, '')
    rows.append([_e(component.component_id),
                 f'<span class="{css}">{_e(component.state)}</span>',
                 f'{component.seconds:.1f} s'])
  chain = []
  for link in run.chain():
    ref = f'#{link.artifact_id}' if link.artifact_id is not None else ''
    chain.append([_e(link.stage), _e(ref), f'<code>{_e(link.location)}</code>',
                  _e(link.note)])
  return f'''
<section>
  <h2>Components</h2>
  <p>{len(summary.components)} components, {cached} from cache
  (cache hits), {total:.1f} s of component time.</p>
  {_table(['Component', 'State', 'Duration'], rows, 'components')}
  <h2>Lineage</h2>
  <p class="muted">What produced the model, from the metadata store
  (artifact ids).</p>
  {_table(['Stage', 'Artifact', 'Location', 'Note'], chain, 'lineage')}
</section>'''


# --- Data: anomalies, statistics -----------------------------------------


def _split_names(artifact) -> List[str]:
  prop = artifact.properties.get('split_names')
  return json.loads(prop.string_value) if prop is not None else []


def _anomalies_section(run: inspect_lib.Run) -> str:
  validator = run.execution(inspect_lib.EXAMPLE_VALIDATOR)
  artifact = (validator.outputs.get('anomalies') or [None])[0] if validator \
      else None
  if artifact is None:
    return ('<section><h2>Anomalies</h2><p>ExampleValidator did not run.'
            '</p></section>')
  by_split = anomaly_gate.read_anomalies(artifact.uri, _split_names(artifact))
  rows = []
  for split, anomalies in sorted(by_split.items()):
    frame = display_util.get_anomalies_dataframe(anomalies)
    for feature, row in frame.iterrows():
      rows.append([_e(split), _e(feature), _e(row.iloc[0]),
                   _e(row.iloc[1])])
  if not rows:
    body = (f'<p class="pass" id="anomalies-none">No anomalies in any split '
            f'({_e(", ".join(sorted(by_split)))}) against the curated '
            'schema.</p>')
  else:
    body = _table(['Split', 'Feature', 'Anomaly', 'Description'], rows,
                  'anomalies')
  return (f'<section><h2>Anomalies (ExampleValidator vs the curated schema)'
          f'</h2>{body}<p class="muted">{_e(artifact.uri)}</p></section>')


def _load_statistics(run: inspect_lib.Run
                     ) -> Dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
  stats_gen = run.execution(inspect_lib.STATISTICS_GEN)
  artifact = (stats_gen.outputs.get('statistics') or [None])[0] if stats_gen \
      else None
  if artifact is None:
    return {}
  return {split: tfdv.load_stats_binary(
      os.path.join(artifact.uri, f'Split-{split}', STATS_FILE))
          for split in _split_names(artifact)}


def _feature_summary(feature: statistics_pb2.FeatureNameStatistics,
                     num_examples: int) -> Tuple[str, str, str]:
  """(type, missing %, summary) for one feature of one split."""
  kind = statistics_pb2.FeatureNameStatistics.Type.Name(feature.type)
  if feature.HasField('num_stats'):
    stats = feature.num_stats
    common = stats.common_stats
    summary = (f'mean {_fmt(stats.mean, 3)}, std {_fmt(stats.std_dev, 3)}, '
               f'min {_fmt(stats.min, 3)}, max {_fmt(stats.max, 3)}')
  elif feature.HasField('string_stats'):
    stats = feature.string_stats
    common = stats.common_stats
    top = (f', top “{stats.top_values[0].value}” '
           f'({_fmt(stats.top_values[0].frequency)})'
           if stats.top_values else '')
    summary = f'{stats.unique} unique{top}'
  else:
    return kind, '–', ''
  missing = common.num_missing
  share = 100.0 * missing / num_examples if num_examples else 0.0
  return kind, f'{share:.1f}%', summary


def _stats_rows(stats: Dict[str, statistics_pb2.DatasetFeatureStatisticsList],
                splits: Sequence[str]) -> List[List[str]]:
  tables = {split: stats[split].datasets[0] for split in splits}
  names = sorted({'.'.join(f.path.step) or f.name
                  for dataset in tables.values() for f in dataset.features})
  rows = []
  for name in names:
    row = [_e(name)]
    kind = ''
    for split in splits:
      dataset = tables[split]
      feature = next((f for f in dataset.features
                      if ('.'.join(f.path.step) or f.name) == name), None)
      if feature is None:
        row += ['–', 'absent']
        continue
      kind, missing, summary = _feature_summary(feature, dataset.num_examples)
      row += [_e(missing), _e(summary)]
    rows.append([row[0], _e(kind)] + row[1:])
  return rows


def _statistics_section(run: inspect_lib.Run) -> str:
  stats = _load_statistics(run)
  if not stats:
    return ('<section><h2>Statistics</h2><p>StatisticsGen did not run.</p>'
            '</section>')
  splits = [s for s in ('train', 'eval') if s in stats] or sorted(stats)
  counts = ', '.join(f'{s}: {stats[s].datasets[0].num_examples:,} examples'
                     for s in sorted(stats))
  headers = ['Feature', 'Type']
  for split in splits:
    headers += [f'{split} missing', f'{split} summary']
  table = _table(headers, _stats_rows(stats, splits), 'stats')
  if len(splits) >= 2:
    facets = display_util.get_statistics_html(
        stats[splits[0]], stats[splits[1]], lhs_name=splits[0],
        rhs_name=splits[1])
  else:
    facets = display_util.get_statistics_html(stats[splits[0]],
                                              lhs_name=splits[0])
  return f'''
<section>
  <h2>Statistics overview (StatisticsGen)</h2>
  <p>{_e(counts)}.</p>
  {table}
  <h3>TFDV / Facets view ({_e(' vs '.join(splits[:2]))})</h3>
  <p class="muted">TFDV's interactive Facets Overview. It loads the Facets
  library from cdnjs.cloudflare.com and raw.githubusercontent.com, so it stays
  empty offline; the table above has the same numbers.</p>
  <div class="facets">{facets}</div>
</section>'''


_STYLE = '''
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0 auto; max-width: 1200px; padding: 16px 24px; color: #1f2328; }
h1 { font-size: 22px; margin: 4px 0; } h2 { font-size: 18px; margin-top: 28px;
  border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.sub { color: #59636e; font-size: 12px; }
.verdict { border-radius: 8px; padding: 14px 18px; margin: 14px 0; }
.verdict.good { background: #dafbe1; border: 1px solid #4ac26b; }
.verdict.bad { background: #ffebe9; border: 1px solid #ff8182; }
.verdict.neutral { background: #eaeef2; border: 1px solid #afb8c1; }
.decision { font-size: 24px; font-weight: 700; }
.chips { display: flex; flex-wrap: wrap; gap: 8px; margin: 10px 0; }
.chip { background: #fff; border: 1px solid #d0d7de; border-radius: 6px;
        padding: 4px 10px; } .chip span { color: #59636e; margin-right: 6px; }
table { border-collapse: collapse; margin: 6px 0; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; } tbody tr:nth-child(even) { background: #fafbfc; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #cf222e;
  font-weight: 700; } .muted { color: #59636e; }
.bar { position: relative; width: 110px; height: 18px; background: #eaeef2; }
.bar i { position: absolute; left: 0; top: 0; bottom: 0; background: #8cc0ff; }
.bar span { position: relative; padding-left: 4px; }
code { font-size: 12px; }
'''

_PAGE = '''<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title><style>{style}</style></head>
<body>
<h1>Pipeline run report: {title}</h1>
<div class="sub">Generated {generated} from {metadata}</div>
{body}
</body></html>
'''
