"""A self-contained HTML report of one pipeline run, for a browser.

Written by the local runner at the end of every run into the output dir:

    <output-dir>/reports/run-<run id>.html   one per run
    <output-dir>/report.html                 a copy of the latest

It shows, read back from MLMD and the run's artifacts:
  * the blessing decision and its reason, with the headline metrics;
  * the evaluation plots (ROC, precision-recall, calibration, confusion
    matrix; predicted vs actual and residuals for regression), embedded as
    PNG `data:` URIs (`plots.py`);
  * metrics by slice, the thresholds they were gated on and whether each
    passed, and the comparison with the baseline model when there was one;
  * fairness: the gap between the best and the worst slice per slice
    column, and the fairness indicators of every slice (`analysis.py`);
  * feature attributions: the FeatureAttributions component's permutation
    importance;
  * the pushed model path and the lineage chain of the run;
  * component durations and cache hits;
  * the ExampleValidator anomalies;
  * a statistics overview: a plain per-feature table (train vs eval) and
    TFDV's Facets visualization (get_statistics_html).

Two steps: `build_view` reads the run into a `ReportView`, a tree of frozen
dataclasses holding plain values; `render` turns a view into HTML with the
Jinja2 templates in `templates/` (autoescaped; the CSS is inlined). Everything
but the Facets view is plain HTML and CSS with no script and no external
resource (the plots are inline images), so the page renders in any browser,
offline, and survives being mailed or attached to a CI run. Facets loads its
code from the internet; its section says so.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import math
import os
import re
import shutil
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple
from typing import Union

import jinja2
import markupsafe
from tensorflow_data_validation.utils import display_util
from tensorflow_metadata.proto.v0 import statistics_pb2
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import validation_result_pb2
from tensorflow_model_analysis.writers import eval_config_writer

from models import metrics as custom_metrics
from pipeline.facts import files
from pipeline.facts import metadata_location
from pipeline.inspection import analysis
from pipeline.inspection import feature_stats
from pipeline.inspection import plots as plots_lib
from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from pipeline.inspection import tuning as tuning_view

# In the output dir: each run's report, and the latest one.
REPORTS_DIR = files.REPORTS_DIR
LATEST_REPORT = files.LATEST_REPORT
TEMPLATE = 'report.html.j2'
# Columns of the slice table and the headline chips, in order; the gate's
# metrics first.
SLICE_METRICS = (
    'auc', custom_metrics.AUC_LOWER_BOUND_NAME, custom_metrics.MACRO_AUC_NAME,
    custom_metrics.MACRO_AUC_LOWER_BOUND_NAME, 'binary_accuracy',
    custom_metrics.ACCURACY_NAME, custom_metrics.MAJORITY_RATE_NAME,
    custom_metrics.LOG_LOSS_SKILL_NAME,
    custom_metrics.LOG_LOSS_SKILL_LOWER_BOUND_NAME,
    custom_metrics.R_SQUARED_NAME,
    custom_metrics.R_SQUARED_LOWER_BOUND_NAME, custom_metrics.RMSE_NAME,
    custom_metrics.MAE_NAME, 'precision', 'recall', 'example_count')


def metric_columns(metrics: Mapping[str, float]) -> Tuple[str, ...]:
  """The known metrics a run has, in SLICE_METRICS order, then per class
  (the fairness indicators have a section of their own)."""
  known = [m for m in SLICE_METRICS if m in metrics]
  per_class = sorted(m for m in metrics
                     if '[class ' in m and not m.endswith('_diff') and
                     not analysis.is_fairness_metric(m))
  return tuple(known + per_class)
OVERALL = run_summary.OVERALL
NOT_CHECKED = 'not checked: no blessed baseline yet'
# The TFX Evaluator's model names when it compares with a baseline.
_BASELINE = 'baseline'
_CANDIDATE = 'candidate'
_DASH = '–'

# --- The view model -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Verdict:
  """The blessing decision: 'BLESSED', 'NOT BLESSED' or 'NOT EVALUATED'.

  `reason` lists the failed thresholds exactly; `sentence` says the same
  in plain words (gate_verdict.py).
  """
  decision: str
  reason: str
  sentence: str = ''

  @property
  def css(self) -> str:
    return {'BLESSED': 'good', 'NOT BLESSED': 'bad'}.get(self.decision,
                                                         'neutral')


@dataclasses.dataclass(frozen=True)
class Chip:
  """A headline metric of the Overall slice."""
  name: str
  value: Optional[float]


@dataclasses.dataclass(frozen=True)
class ThresholdRow:
  """One gate threshold and how the run fared on it."""
  metric: str
  slices: str
  rule: str
  value: Optional[float]
  status: str  # 'pass', 'FAIL', or why it was not checked.

  @property
  def status_css(self) -> str:
    return {'pass': 'pass', 'FAIL': 'fail'}.get(self.status, 'muted')


@dataclasses.dataclass(frozen=True)
class BaselineRow:
  """One metric of the candidate next to the baseline model's."""
  metric: str
  candidate: Optional[float]
  baseline: Optional[float]
  difference: Optional[float]


@dataclasses.dataclass(frozen=True)
class SliceRow:
  """The metrics of one slice ('Overall', 'payment_type=Cash', ...)."""
  name: str
  values: Mapping[str, float]

  @property
  def is_overall(self) -> bool:
    return self.name == OVERALL

  @property
  def one_class(self) -> bool:
    """Whether the slice holds a single class (so AUC is undefined)."""
    return self.values.get(custom_metrics.MAJORITY_RATE_NAME) == 1.0


@dataclasses.dataclass(frozen=True)
class EvaluationView:
  """The Evaluator's output: thresholds, baseline comparison, slices."""
  thresholds: Tuple[ThresholdRow, ...]
  blessing_reason: str
  baseline: Optional[Tuple[BaselineRow, ...]]  # None: no baseline model.
  columns: Tuple[str, ...]
  slices: Tuple[SliceRow, ...]


@dataclasses.dataclass(frozen=True)
class ComponentRow:
  component_id: str
  state: str
  seconds: float

  @property
  def state_css(self) -> str:
    return {'cached': 'muted', 'FAILED': 'fail'}.get(self.state, '')


@dataclasses.dataclass(frozen=True)
class LineageRow:
  stage: str
  artifact_id: Optional[int]
  location: str
  note: str


@dataclasses.dataclass(frozen=True)
class AnomalyRow:
  split: str
  feature: str
  anomaly: str
  description: str


@dataclasses.dataclass(frozen=True)
class AnomaliesView:
  """ExampleValidator's findings; no rows means no anomalies."""
  uri: str
  splits: Tuple[str, ...]
  rows: Tuple[AnomalyRow, ...]


@dataclasses.dataclass(frozen=True)
class StatsCell:
  """One feature in one split: share missing and a one-line summary."""
  missing: str
  summary: str


@dataclasses.dataclass(frozen=True)
class StatsRow:
  feature: str
  kind: str
  cells: Tuple[StatsCell, ...]  # One per StatisticsView.splits.


@dataclasses.dataclass(frozen=True)
class StatisticsView:
  """StatisticsGen's output as a table, plus TFDV's Facets markup."""
  example_counts: Tuple[Tuple[str, int], ...]
  splits: Tuple[str, ...]
  rows: Tuple[StatsRow, ...]
  # TFDV's own HTML, trusted and inserted as is: it must be Markup.
  facets_html: markupsafe.Markup = markupsafe.Markup('')


@dataclasses.dataclass(frozen=True)
class ReportView:
  """Everything the report page shows, as plain values."""
  pipeline_name: str
  run_id: str
  generated: str
  metadata_path: str
  verdict: Verdict
  chips: Tuple[Chip, ...] = ()
  pushed_model: Optional[str] = None
  # Shown when nothing was pushed because the model was unchanged.
  serving_note: str = ''
  evaluation: Optional[EvaluationView] = None
  components: Tuple[ComponentRow, ...] = ()
  lineage: Tuple[LineageRow, ...] = ()
  anomalies: Optional[AnomaliesView] = None
  statistics: Optional[StatisticsView] = None
  # With --tune: the Tuner's trials.
  tuning: Optional[tuning_view.TuningView] = None
  # With --warm-start: what the Trainer started from, or why it started cold.
  warm_start: str = ''
  # Binary: the decision threshold and how it was chosen ('' for others).
  decision: str = ''
  # ServingCheck's verdict before the push, one line ('' when it did not run).
  serving_check: str = ''
  # The model family kept and the eval scores compared (models/
  # model_choice.py); '' for runs before the families.
  model: str = ''
  fairness: Optional[analysis.FairnessView] = None
  attributions: Optional[analysis.AttributionsView] = None
  plots: Optional[analysis.PlotsView] = None

  @property
  def title(self) -> str:
    return f'{self.pipeline_name} run {self.run_id}'

  @property
  def cached_count(self) -> int:
    return sum(1 for c in self.components if c.state == 'cached')

  @property
  def total_seconds(self) -> float:
    return sum(c.seconds for c in self.components)


# --- Pure helpers ---------------------------------------------------------


def is_finite(value) -> bool:
  """Whether `value` is a real number that is not NaN or infinite."""
  return isinstance(value, (int, float)) and math.isfinite(value)


def fmt(value: Optional[float], digits: int = 4, name: str = '') -> str:
  """A metric or statistic for display.

  Args:
    value: The number; None or NaN shows as '–'.
    digits: Decimals for non-counts.
    name: The metric's name; counts ('example_count') have no decimals.

  Returns:
    '0.9123', '1,204' or '–'.
  """
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return _DASH
  if name.endswith('count') or (not name and float(value).is_integer()
                                and abs(value) >= 2):
    return f'{value:,.0f}'
  return f'{value:.{digits}f}'


def verdict(blessed: Optional[bool], reason: str,
            sentence: str = '') -> Verdict:
  """The verdict box of a run; `blessed` None means never evaluated."""
  if blessed is None:
    return Verdict('NOT EVALUATED', 'The run stopped before the Evaluator; '
                   'see the components below.')
  return Verdict('BLESSED' if blessed else 'NOT BLESSED', reason, sentence)


def _slice_sort_key(name: str):
  """Overall first, then grouped by feature; numbers sort numerically."""
  feature, _, value = name.partition('=')
  try:
    return (name != OVERALL, feature, 0, float(value), '')
  except ValueError:
    return (name != OVERALL, feature, 1, 0.0, value)


def slice_rows(overall: Mapping[str, float],
               by_slice: Mapping[str, Mapping[str, float]]
               ) -> Tuple[SliceRow, ...]:
  """The Overall row, then every slice sorted by feature and value."""
  names = sorted(by_slice, key=_slice_sort_key)
  return (SliceRow(OVERALL, dict(overall)),) + tuple(
      SliceRow(name, dict(by_slice[name])) for name in names)


# --- Thresholds -----------------------------------------------------------

_SliceSpec = Union[None, tfma.SlicingSpec, tfma.CrossSlicingSpec]


def _slices_text(spec: _SliceSpec) -> str:
  if spec is None:
    return 'all slices'
  if isinstance(spec, tfma.CrossSlicingSpec):
    return (f'{_slices_text(spec.baseline_spec)} vs ' + ', '.join(
        _slices_text(s) for s in spec.slicing_specs))
  keys = list(spec.feature_keys) + [f'{k}={v}' for k, v in
                                     sorted(spec.feature_values.items())]
  return ', '.join(keys) if keys else OVERALL


def _rule_text(threshold: Union[tfma.GenericValueThreshold,
                                tfma.GenericChangeThreshold]) -> str:
  if isinstance(threshold, tfma.GenericValueThreshold):
    rules = []
    if threshold.HasField('lower_bound'):
      rules.append(run_summary.lower_bound_text(threshold.lower_bound.value))
    if threshold.HasField('upper_bound'):
      rules.append(f'≤ {threshold.upper_bound.value:.4g}')
    return ' and '.join(rules)
  rule = 'change vs baseline'
  if threshold.HasField('absolute'):
    higher = threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    rule += f' {"≥" if higher else "≤"} {threshold.absolute.value:+.4g}'
  if threshold.HasField('relative'):
    rule += f' (relative {threshold.relative.value:+.4g})'
  return rule


def _slice_applies(spec: _SliceSpec, slice_key) -> bool:
  if spec is None or isinstance(spec, tfma.CrossSlicingSpec):
    return True
  return tfma.slicer.SingleSliceSpec(spec=spec).is_slice_applicable(slice_key)


def _value_at(spec: _SliceSpec, name: str, overall: Mapping[str, float],
              by_slice: Mapping[str, Mapping[str, float]]
              ) -> Optional[float]:
  """The value a threshold was judged on, when it names a single slice."""
  if spec is None or isinstance(spec, tfma.CrossSlicingSpec):
    return overall.get(name)
  if spec.feature_keys:
    return None  # One value per slice of the feature; see the slice table.
  if not spec.feature_values:
    return overall.get(name)
  key = run_summary.slice_name(sorted(spec.feature_values.items()))
  return by_slice.get(key, {}).get(name)


def threshold_rows(eval_config: tfma.EvalConfig,
                   validation: validation_result_pb2.ValidationResult,
                   overall: Mapping[str, float],
                   by_slice: Optional[Mapping[str, Mapping[str, float]]] = None
                   ) -> Tuple[ThresholdRow, ...]:
  """Every threshold of the EvalConfig with the value it was judged on.

  The thresholds come from TFMA's own resolution of the config
  (`metric_thresholds_from_metrics_specs`), so metric names are TFMA's keys.

  Args:
    eval_config: The EvalConfig the Evaluator used.
    validation: The Evaluator's ValidationResult.
    overall: Overall metrics of the candidate, with `<name>_diff` entries.
    by_slice: Metrics of the candidate by slice name ('payment_type=Cash').

  Returns:
    One row per (metric, slice spec, threshold kind), in config order.
  """
  by_slice = by_slice or {}
  baselines = {spec.name for spec in eval_config.model_specs
               if spec.is_baseline}
  failures = [(tfma.metrics.MetricKey.from_proto(failure.metric_key),
               tfma.slicer.deserialize_slice_key(per_slice.slice_key))
              for per_slice in validation.metric_validations_per_slice
              for failure in per_slice.failures]
  rows = []
  resolved = tfma.metrics.metric_thresholds_from_metrics_specs(
      eval_config.metrics_specs, eval_config=eval_config)
  for key, slices_and_thresholds in resolved.items():
    if key.model_name in baselines:
      continue  # The baseline is compared against, never gated.
    name = key.name + ('_diff' if key.is_diff else '')
    for spec, threshold in slices_and_thresholds:
      failed = any(failed_key == key and _slice_applies(spec, slice_key)
                   for failed_key, slice_key in failures)
      if key.is_diff and not baselines:
        status = NOT_CHECKED
      else:
        status = 'FAIL' if failed else 'pass'
      rows.append(ThresholdRow(
          metric=key.name, slices=_slices_text(spec),
          rule=_rule_text(threshold),
          value=_value_at(spec, name, overall, by_slice), status=status))
  return tuple(rows)


# --- Rendering ------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _environment() -> jinja2.Environment:
  return new_environment()


def new_environment() -> jinja2.Environment:
  """The templates' Jinja2 environment: autoescaped, strict, our filters."""
  env = jinja2.Environment(
      loader=jinja2.PackageLoader('pipeline.inspection', 'templates'),
      autoescape=jinja2.select_autoescape(enabled_extensions=('html', 'j2'),
                                          default_for_string=True),
      undefined=jinja2.StrictUndefined,
      keep_trailing_newline=True)
  env.filters['fmt'] = fmt
  env.filters['title_of'] = analysis.metric_title
  env.tests['finite'] = is_finite
  return env


def render(view: ReportView) -> str:
  """The report page of a view, as one HTML string (no I/O but templates)."""
  return _environment().get_template(TEMPLATE).render(view=view)


def report_paths(output_dir: str, run_id: str) -> Tuple[str, str]:
  """(per-run report path, latest report path) under an output dir."""
  safe = re.sub(r'[^0-9A-Za-z_.-]+', '-', run_id).strip('-')
  return (os.path.join(output_dir, REPORTS_DIR, f'run-{safe}.html'),
          os.path.join(output_dir, LATEST_REPORT))


def write_report(view: ReportView, output_dir: str) -> str:
  """Writes the report page of a run.

  Args:
    view: From `build_view` or `view_of`.
    output_dir: Where `reports/` and `report.html` go.

  Returns:
    The path of the per-run report. `report.html` is a copy of it.
  """
  path, latest = report_paths(output_dir, view.run_id)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(render(view))
  shutil.copyfile(path, latest)
  return path


# --- Loading: MLMD and artifacts into a view ------------------------------


def build_view(location: Union[str, metadata_location.MetadataLocation],
               pipeline_name: str,
               run_id: Optional[str] = None) -> ReportView:
  """Reads one run (default: the latest) and its artifacts into a view.

  Args:
    location: The store: a `metadata_location` location, or a SQLite path.
    pipeline_name: The run's pipeline.
    run_id: The run; None for the latest.

  Raises:
    LookupError: No such run in the store.
  """
  run = run_model.find_run(run_model.open_store(location, readonly=True),
                           pipeline_name, run_id)
  return view_of(run, run_summary.summarize(run), str(location))


def view_of(run: run_model.Run, summary: run_summary.RunSummary,
            metadata_path: str) -> ReportView:
  """The view of a run already read, with its summary (no MLMD access).

  `metadata_path` is what the page names as its source: the SQLite file,
  or the MySQL URL with its password masked (`str()` of a location).
  """
  metrics = summary.metrics
  return ReportView(
      pipeline_name=run.pipeline_name,
      run_id=run.run_id,
      generated=datetime.datetime.now().isoformat(timespec='seconds'),
      metadata_path=metadata_path,
      verdict=verdict(summary.blessed, summary.blessing_reason,
                      summary.blessing_sentence),
      chips=tuple(Chip(name, metrics[name]) for name in SLICE_METRICS
                  if name in metrics),
      pushed_model=summary.pushed_model,
      serving_note=(
          f'none new: model unchanged, serving {summary.serving_model} '
          f'(pushed in run {summary.blessed_in_run})'
          if summary.model_unchanged and summary.serving_model else ''),
      evaluation=(_evaluation_view(summary) if summary.evaluation_uri
                  else None),
      components=tuple(ComponentRow(e.component_id, e.state, e.seconds)
                       for e in run.executions),
      lineage=tuple(LineageRow(link.stage, link.artifact_id, link.location,
                               link.note) for link in run.chain()),
      anomalies=_anomalies_view(run),
      statistics=_statistics_view(run),
      tuning=tuning_view.view_of(summary.tuning),
      warm_start=run_summary.warm_start_note(summary.training_info),
      decision=run_summary.decision_text(summary.decision),
      serving_check=(run_summary.serving_check_text(summary.serving_check)
                     if summary.serving_check is not None else ''),
      model=(summary.chosen_model.note() if summary.chosen_model else ''),
      **_analysis_fields(run, summary))


def _analysis_fields(run: run_model.Run, summary: run_summary.RunSummary
                     ) -> dict:
  """The fairness, attributions and plots views of the run's model; for
  an unchanged model, those of the run that evaluated it."""
  uri = (run.blessed_by or run).attributions_uri
  result = analysis.read_attributions(uri)
  fields = {'attributions': (analysis.attributions_view(result, uri)
                             if result is not None else None)}
  if summary.evaluation_uri:
    eval_config = load_eval_config(summary.evaluation_uri)
    slice_features = tuple(spec.feature_keys[0]
                           for spec in eval_config.slicing_specs
                           if len(spec.feature_keys) == 1)
    with_baseline = any(spec.is_baseline for spec in eval_config.model_specs)
    fields['fairness'] = analysis.fairness_view(
        slice_features, summary.metrics, summary.slice_metrics)
    fields['plots'] = analysis.plots_view(
        summary.evaluation_uri, summary.metrics, result,
        model_name=_CANDIDATE if with_baseline else '',
        decision_threshold=(summary.decision or {}).get(
            'threshold', plots_lib.DECISION_THRESHOLD))
  return fields


def load_eval_config(evaluation_uri: str) -> tfma.EvalConfig:
  """The EvalConfig the Evaluator really used, saved with its output."""
  eval_config, _, _, _ = eval_config_writer.load_eval_run(evaluation_uri)
  return eval_config


def _evaluation_view(summary: run_summary.RunSummary) -> EvaluationView:
  uri = summary.evaluation_uri
  eval_config = load_eval_config(uri)
  overall = summary.metrics
  baseline_rows = None
  if any(spec.is_baseline for spec in eval_config.model_specs):
    baseline, _ = run_summary.read_metrics(uri, model_name=_BASELINE)
    baseline_rows = tuple(
        BaselineRow(name, overall.get(name), baseline.get(name),
                    overall.get(f'{name}_diff'))
        for name in metric_columns(overall))
  return EvaluationView(
      thresholds=threshold_rows(eval_config,
                                tfma.load_validation_result(uri), overall,
                                summary.slice_metrics),
      blessing_reason=summary.blessing_reason,
      baseline=baseline_rows,
      columns=metric_columns(overall),
      slices=slice_rows(overall, summary.slice_metrics))


def _anomalies_view(run: run_model.Run) -> Optional[AnomaliesView]:
  validator = run.execution(run_model.EXAMPLE_VALIDATOR)
  artifact = validator.output('anomalies') if validator else None
  if artifact is None:
    return None
  by_split = run_summary.load_anomalies(artifact)
  rows = []
  for split, anomalies in sorted(by_split.items()):
    frame = display_util.get_anomalies_dataframe(anomalies)
    for feature, row in frame.iterrows():
      rows.append(AnomalyRow(split, str(feature), str(row.iloc[0]),
                             str(row.iloc[1])))
  return AnomaliesView(uri=artifact.uri, splits=tuple(sorted(by_split)),
                       rows=tuple(rows))


def feature_summary(feature: statistics_pb2.FeatureNameStatistics,
                    num_examples: int) -> Tuple[str, StatsCell]:
  """(type name, cell) for one feature of one split."""
  kind = statistics_pb2.FeatureNameStatistics.Type.Name(feature.type)
  if feature.HasField('num_stats'):
    stats = feature.num_stats
    text = (f'mean {fmt(stats.mean, 3)}, std {fmt(stats.std_dev, 3)}, '
            f'min {fmt(stats.min, 3)}, max {fmt(stats.max, 3)}')
  elif feature.HasField('string_stats'):
    stats = feature.string_stats
    top = (f', top “{stats.top_values[0].value}” '
           f'({fmt(stats.top_values[0].frequency)})'
           if stats.top_values else '')
    text = f'{stats.unique} unique{top}'
  else:
    return kind, StatsCell(_DASH, '')
  # Empty cells too, which TFDV's num_missing leaves out (feature_stats).
  share = 100.0 * feature_stats.presence(feature, num_examples).missing_share
  return kind, StatsCell(f'{share:.1f}%', text)


def stats_rows(datasets: Mapping[str, statistics_pb2.DatasetFeatureStatistics],
               splits: Sequence[str]) -> Tuple[StatsRow, ...]:
  """One row per feature over the given splits, sorted by feature name."""
  by_split = {split: {feature_stats.feature_name(f): f
                      for f in datasets[split].features}
              for split in splits}
  names = sorted({name for features in by_split.values()
                  for name in features})
  rows = []
  for name in names:
    kind, cells = '', []
    for split in splits:
      feature = by_split[split].get(name)
      if feature is None:
        cells.append(StatsCell(_DASH, 'absent'))
        continue
      kind, cell = feature_summary(feature, datasets[split].num_examples)
      cells.append(cell)
    rows.append(StatsRow(name, kind, tuple(cells)))
  return tuple(rows)


def _statistics_view(run: run_model.Run) -> Optional[StatisticsView]:
  stats_gen = run.execution(run_model.STATISTICS_GEN)
  artifact = stats_gen.output('statistics') if stats_gen else None
  if artifact is None:
    return None
  stats = run_summary.load_statistics(artifact)
  if not stats:
    return None
  splits = [s for s in ('train', 'eval') if s in stats] or sorted(stats)
  if len(splits) >= 2:
    facets = display_util.get_statistics_html(
        stats[splits[0]], stats[splits[1]], lhs_name=splits[0],
        rhs_name=splits[1])
  else:
    facets = display_util.get_statistics_html(stats[splits[0]],
                                              lhs_name=splits[0])
  return StatisticsView(
      example_counts=tuple((s, stats[s].datasets[0].num_examples)
                           for s in sorted(stats)),
      splits=tuple(splits),
      rows=stats_rows({s: stats[s].datasets[0] for s in splits}, splits),
      # TFDV builds this markup itself (a <link> and <script> for Facets
      # and the statistics as an attribute); it is trusted, not user text.
      facets_html=markupsafe.Markup(facets))
