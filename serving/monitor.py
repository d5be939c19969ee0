"""`python -m serving.monitor`: logged requests against training (skew) and
against the previous window (drift), with TFDV.

    python -m serving.monitor --output-dir outputs [--window 1h]
    python -m serving.monitor --output-dir outputs --window-rows 5000

It reads the request log the server writes with `--log-requests`
(serving/request_log.py), takes the rows of the window (the last hour by
default, or the last N rows) and of the window before it, and computes
their statistics with TFDV. Then:

* **skew**: the window against the training split's statistics of the run
  that trained the served version, found in ML Metadata
  (pipeline/inspection/run_model.py): the run whose Pusher pushed that
  version, its StatisticsGen output and its curated schema;
* **drift**: the window against the previous window;
* **schema**: the window against the curated schema (environment SERVING):
  a value out of its domain, a type the schema does not expect.

Skew and drift use the curated schema's comparators: a feature's
`skew_comparator`, or its `drift_comparator` for skew too when it has no
skew comparator (the taxi schema sets drift comparators on its
categorical and bounded integer features; why not on the others is in the
schema's comments). It writes an HTML report and prints one line per
crossed threshold, naming the feature.

Exit codes: 0 no threshold crossed; 4 skew, drift or a schema anomaly
(ALERT_EXIT, for a scheduler to alert on); 3 nothing to compare (no
request log, no rows in the window, no served model or no training
statistics; one line on stderr says which); 2 bad flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import re
import sys
from typing import Any
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple
import warnings

from models import keras_choice
from models import serving_contract
from pipeline.facts import commands
from pipeline.facts import files
from pipeline.inspection import feature_stats

OK_EXIT = 0
BAD_FLAGS_EXIT = 2
NOTHING_TO_COMPARE_EXIT = 3
ALERT_EXIT = 4
TRAIN_SPLIT = 'train'
STATS_FILE = 'FeatureStats.pb'
SCHEMA_FILE = files.SCHEMA_FILE
REPORT_DIR = 'monitoring'
_DURATION = re.compile(r'^(\d+(?:\.\d+)?)([smhd])$')
_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400}


class NothingToCompare(RuntimeError):
  """No rows, model or statistics to compare; the message says which."""


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
  """The monitor's settings, read once from the flags.

  Attributes:
    output_dir: The pipeline's output dir (request logs, models, MLMD).
    window_seconds: The window's length, ending now.
    window_rows: Instead: the last N logged rows (and the N before).
    metadata_url: A MySQL ML Metadata URL; None for OUT/metadata.sqlite.
    report_path: Where the HTML report goes; None for
      OUT/monitoring/report-<time>.html.
    end: The window's end (now by default).
  """
  output_dir: str
  window_seconds: float = 3600.0
  window_rows: Optional[int] = None
  metadata_url: Optional[str] = None
  report_path: Optional[str] = None
  end: Optional[datetime.datetime] = None


def parse_duration(text: str) -> float:
  """'90s', '30m', '1h', '7d' -> seconds."""
  match = _DURATION.match(text.strip())
  if not match or float(match.group(1)) <= 0:
    raise ValueError(f'--window {text!r}: give a length like 30m, 1h or 7d '
                     '(s, m, h, d).')
  return float(match.group(1)) * _UNITS[match.group(2)]


@dataclasses.dataclass
class Finding:
  """One comparison of one feature."""
  kind: str  # 'skew', 'drift' or 'schema'.
  feature: str
  anomaly: str
  description: str


@dataclasses.dataclass
class Measurement:
  """A comparator's value for a feature, over its threshold or not."""
  kind: str
  feature: str
  comparator: str
  value: float
  threshold: float

  @property
  def crossed(self) -> bool:
    return self.value > self.threshold


@dataclasses.dataclass
class Result:
  """What one monitor pass found."""
  model: str
  version: int
  run_id: str
  training_statistics: str
  window: str
  previous_window: str
  rows: int
  previous_rows: int
  findings: List[Finding]
  measurements: List[Measurement]
  features: List[Dict[str, Any]]
  report_path: str = ''


# --- Inputs: the served model, its run's statistics, the logged rows. ----


def served_contract(output_dir: str, version: Optional[int] = None
                    ) -> Tuple[int, serving_contract.Contract]:
  """(version, contract): `version`'s, or the newest one with a contract."""
  from serving import model_store
  folder = os.path.join(output_dir, files.SERVING_MODEL_DIR)
  found = model_store.versions(folder)
  reasons = []
  for number, path in reversed(found):
    if version is not None and number != version:
      continue
    try:
      return number, serving_contract.read(path)
    except serving_contract.ContractError as e:
      reasons.append(str(e))
  if version is not None and reasons:
    return served_contract(output_dir)  # That version lacks a contract.
  raise NothingToCompare(
      f'no served model under {folder}' +
      (f': {"; ".join(reasons)}' if reasons else '; run the pipeline until '
       'a model is pushed.'))


@dataclasses.dataclass(frozen=True)
class TrainingRun:
  """The run that pushed a version: its statistics and schema."""
  run_id: str
  statistics_uri: str
  schema_uri: str


def training_run(store: Any, version: int) -> TrainingRun:
  """The run whose Pusher pushed `version`, from ML Metadata.

  The version folder's name is matched, not its full path, so that an
  output dir that was moved or copied still finds its runs.
  """
  from pipeline.inspection import run_model
  for run in run_model.recent_runs(store):
    destination = run.pushed_destination
    if not destination or os.path.basename(
        destination.rstrip('/')) != str(version):
      continue
    statistics = run.execution(run_model.STATISTICS_GEN)
    # The schema Transform used: the curated one, whatever imported it.
    transform = run.execution(run_model.TRANSFORM)
    stats_artifact = statistics.output('statistics') if statistics else None
    schema_artifact = transform.input('schema') if transform else None
    if stats_artifact is None or schema_artifact is None:
      raise NothingToCompare(
          f'run {run.run_id} pushed version {version} but ML Metadata has no '
          'StatisticsGen output or Transform schema for it.')
    return TrainingRun(run.run_id, stats_artifact.uri, schema_artifact.uri)
  raise NothingToCompare(
      f'no run in ML Metadata pushed version {version}; monitor the output '
      'dir (or --metadata-url) of the pipeline that pushed it.')


def _window_bounds(config: MonitorConfig
                   ) -> Tuple[datetime.datetime, datetime.datetime,
                              datetime.datetime]:
  end = config.end or datetime.datetime.now(datetime.timezone.utc)
  length = datetime.timedelta(seconds=config.window_seconds)
  return end - 2 * length, end - length, end


def windows(folder: str, config: MonitorConfig
            ) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]], str, str]:
  """(current rows, previous rows, their descriptions)."""
  from serving import request_log
  if not request_log.log_files(folder):
    raise NothingToCompare(
        f'no request log in {folder}: start the server with --log-requests '
        '(python -m serving --output-dir OUT --port N --log-requests).')
  if config.window_rows is not None:
    records = request_log.read(folder, end=config.end).records
    n = config.window_rows
    current, previous = records[-n:], records[-2 * n:-n] if len(
        records) > n else []
    describe = lambda rows: (  # noqa: E731
        f' ({_stamp(rows[0])} to {_stamp(rows[-1])})' if rows else '')
    return current, previous, (f'the last {n} rows' + describe(current)), (
        f'the {n} rows before' + describe(previous))
  start, middle, end = _window_bounds(config)
  records = request_log.read(folder, start=start, end=end).records
  current = [r for r in records if r['_time'] >= middle]
  previous = [r for r in records if r['_time'] < middle]
  fmt = '%Y-%m-%d %H:%M:%S UTC'
  return current, previous, (
      f'{middle.strftime(fmt)} to {end.strftime(fmt)}'), (
          f'{start.strftime(fmt)} to {middle.strftime(fmt)}')


def _stamp(record: Dict[str, Any]) -> str:
  return record['_time'].strftime('%Y-%m-%d %H:%M:%S UTC')


def frame(records: Sequence[Dict[str, Any]],
          contract: serving_contract.Contract) -> Any:
  """The rows' features as a DataFrame typed by the contract.

  Integers are pandas' nullable Int64 and strings objects, so a missing
  value is a null in Arrow, as an absent feature is in a tf.Example, and
  an integer feature stays INT for TFDV.
  """
  import pandas as pd
  columns = {}
  for feature in contract.features:
    values = [r.get('features', {}).get(feature.name) for r in records]
    if feature.dtype == serving_contract.INT:
      columns[feature.name] = pd.array(values, dtype='Int64')
    elif feature.dtype == serving_contract.FLOAT:
      columns[feature.name] = pd.array(
          [float('nan') if v is None else v for v in values], dtype='float64')
    else:
      columns[feature.name] = pd.Series(values, dtype='object')
  return pd.DataFrame(columns)


# --- Comparing. -----------------------------------------------------------


def comparison_schema(schema: Any) -> Any:
  """The curated schema, each drift comparator also a skew comparator
  where the feature has none."""
  from tensorflow_metadata.proto.v0 import schema_pb2
  copy = schema_pb2.Schema()
  copy.CopyFrom(schema)
  for feature in copy.feature:
    if (feature.HasField('drift_comparator') and
        not feature.HasField('skew_comparator')):
      feature.skew_comparator.CopyFrom(feature.drift_comparator)
  return copy


_COMPARATOR_NAMES = {1: 'L-infinity distance', 2: 'Jensen-Shannon divergence',
                     3: 'normalized absolute difference'}


def _findings(kind: str, anomalies: Any, only_comparators: bool
              ) -> List[Finding]:
  found = []
  for feature, info in sorted(anomalies.anomaly_info.items()):
    for reason in info.reason:
      type_name = _anomaly_type_name(reason.type)
      comparator = type_name.startswith('COMPARATOR_')
      if comparator != only_comparators:
        continue
      found.append(Finding(kind, feature, type_name,
                           reason.description or reason.short_description))
  return found


def _anomaly_type_name(value: int) -> str:
  from tensorflow_metadata.proto.v0 import anomalies_pb2
  return anomalies_pb2.AnomalyInfo.Type.Name(value)


def _measurements(anomalies: Any) -> List[Measurement]:
  found = []
  for info in anomalies.drift_skew_info:
    feature = '.'.join(info.path.step)
    for kind, items in (('drift', info.drift_measurements),
                        ('skew', info.skew_measurements)):
      for m in items:
        found.append(Measurement(kind, feature,
                                 _COMPARATOR_NAMES.get(m.type, str(m.type)),
                                 m.value, m.threshold))
  return found


def _feature_summary(stats: Any) -> Dict[str, Dict[str, str]]:
  """Feature -> {missing, mean or top value} of one statistics proto."""
  summary = {}
  if not stats.datasets:
    return summary
  dataset = stats.datasets[0]
  total = dataset.num_examples or 1
  for feature in dataset.features:
    name = feature_stats.feature_name(feature)
    if feature.HasField('num_stats'):
      shown = f'mean {feature.num_stats.mean:.4g}'
    elif feature.HasField('string_stats'):
      top = feature.string_stats.top_values
      shown = (f'top {top[0].value!r} {top[0].frequency / total:.1%}'
               if top else '')
    else:
      continue
    # Empty cells too, which TFDV counts as present (feature_stats).
    missing = feature_stats.presence(feature, total).missing_share
    summary[name] = {'missing': f'{missing:.1%}', 'value': shown}
  return summary


def compare(current: Any, previous: Optional[Any], training: Any,
            schema: Any) -> Tuple[List[Finding], List[Measurement]]:
  """Skew, drift and schema findings, and every comparator's value."""
  import tensorflow_data_validation as tfdv
  schema = comparison_schema(schema)
  skew = tfdv.validate_statistics(training, schema,
                                  serving_statistics=current)
  findings = _findings('skew', skew, only_comparators=True)
  measurements = [m for m in _measurements(skew) if m.kind == 'skew']
  checked = tfdv.validate_statistics(current, schema, environment='SERVING',
                                     previous_statistics=previous)
  findings += _findings('schema', checked, only_comparators=False)
  if previous is not None:
    findings += _findings('drift', checked, only_comparators=True)
    measurements += [m for m in _measurements(checked) if m.kind == 'drift']
  return findings, measurements


def run(config: MonitorConfig) -> Result:
  """One monitor pass; writes the report.

  Raises:
    NothingToCompare: No rows, served model, run or statistics.
  """
  keras_choice.select_keras()
  import tensorflow_data_validation as tfdv

  from pipeline.facts import metadata_location
  from pipeline.inspection import run_model
  from serving import request_log
  _, contract = served_contract(config.output_dir)
  folder = request_log.log_folder(config.output_dir, contract.dataset)
  current, previous, window, previous_window = windows(folder, config)
  if not current:
    raise NothingToCompare(
        f'no requests logged in {window} ({folder}); widen --window, or '
        'check that the server runs with --log-requests.')
  version = int(current[-1]['version'])
  version, contract = served_contract(config.output_dir, version)
  location = metadata_location.locate(
      config.output_dir,
      metadata_location.from_url(config.metadata_url, os.environ))
  try:
    store = run_model.open_store(location)
  except FileNotFoundError as e:
    raise NothingToCompare(str(e)) from None
  trained = training_run(store, version)
  stats_path = os.path.join(trained.statistics_uri, f'Split-{TRAIN_SPLIT}',
                            STATS_FILE)
  if not os.path.isfile(stats_path):
    raise NothingToCompare(f'no training statistics at {stats_path}.')
  training = tfdv.load_stats_binary(stats_path)
  schema = tfdv.load_schema_text(os.path.join(trained.schema_uri,
                                              SCHEMA_FILE))
  current_stats = tfdv.generate_statistics_from_dataframe(
      frame(current, contract))
  previous_stats = (tfdv.generate_statistics_from_dataframe(
      frame(previous, contract)) if previous else None)
  findings, measurements = compare(current_stats, previous_stats, training,
                                   schema)
  trained_summary = _feature_summary(training)
  window_summary = _feature_summary(current_stats)
  previous_summary = (_feature_summary(previous_stats) if previous_stats
                      else {})
  rows = []
  for feature in contract.features:
    rows.append({'name': feature.name, 'dtype': feature.dtype,
                 'training': trained_summary.get(feature.name, {}),
                 'window': window_summary.get(feature.name, {}),
                 'previous': previous_summary.get(feature.name, {})})
  result = Result(
      model=contract.dataset, version=version, run_id=trained.run_id,
      training_statistics=stats_path, window=window,
      previous_window=previous_window, rows=len(current),
      previous_rows=len(previous), findings=findings,
      measurements=measurements, features=rows)
  result.report_path = write_report(result, config)
  return result


# --- Report and command line. ---------------------------------------------


def write_report(result: Result, config: MonitorConfig) -> str:
  """Writes the HTML report; returns its path."""
  import jinja2
  path = config.report_path
  if path is None:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y%m%dT%H%M%SZ')
    path = os.path.join(config.output_dir, REPORT_DIR,
                        f'report-{stamp}.html')
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  environment = jinja2.Environment(
      loader=jinja2.FileSystemLoader(
          os.path.join(os.path.dirname(__file__), 'templates')),
      autoescape=jinja2.select_autoescape(['html']))
  text = environment.get_template('monitor.html').render(
      result=result, generated=datetime.datetime.now(
          datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC'))
  with open(path, 'w', encoding='utf-8') as f:
    f.write(text)
  return path


def alert_line(finding: Finding) -> str:
  return (f'{finding.kind.upper()} {finding.feature}: {finding.anomaly}: '
          f'{finding.description}')


def parse_flags(argv: Optional[Sequence[str]] = None) -> MonitorConfig:
  parser = argparse.ArgumentParser(
      prog=commands.prog('python -m serving.monitor'),
      description=__doc__.splitlines()[0],
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog='\n'.join(__doc__.splitlines()[1:]))
  parser.add_argument('--output-dir', required=True,
                      help='Output dir of the pipeline and the server '
                      '(request_logs/, serving_model/, metadata.sqlite).')
  parser.add_argument('--window', default='1h',
                      help='The window: the last 30m, 1h, 7d, ... of logged '
                      'requests; drift compares it with the one before '
                      '(default: %(default)s).')
  parser.add_argument('--window-rows', type=int, default=None,
                      help='Instead of --window: the last N logged rows, '
                      'and the N before them for drift.')
  parser.add_argument('--metadata-url', default=None, metavar='URL',
                      help='ML Metadata in MySQL (mysql://USER@HOST:PORT/DB, '
                      'password in $MYSQL_PWD) instead of '
                      'OUT/metadata.sqlite.')
  parser.add_argument('--report', default=None,
                      help='Where the HTML report goes (default: '
                      'OUT/monitoring/report-<time>.html).')
  args = parser.parse_args(argv)
  try:
    seconds = parse_duration(args.window)
  except ValueError as e:
    parser.error(str(e))
  if args.window_rows is not None and args.window_rows < 1:
    parser.error(f'--window-rows must be >= 1, got {args.window_rows}.')
  return MonitorConfig(output_dir=os.path.abspath(args.output_dir),
                       window_seconds=seconds, window_rows=args.window_rows,
                       metadata_url=args.metadata_url,
                       report_path=args.report)


def main(argv: Optional[Sequence[str]] = None) -> int:
  config = parse_flags(argv)
  # Version-support notices from the Google client libraries that TFDV and
  # TFX import, not actionable.
  warnings.filterwarnings('ignore', category=FutureWarning)
  from pipeline.facts import metadata_location
  try:
    result = run(config)
  except (NothingToCompare, metadata_location.MetadataUrlError,
          metadata_location.MetadataStoreError) as e:
    print(f'MONITOR FAILED: {e}', file=sys.stderr)
    return NOTHING_TO_COMPARE_EXIT
  print(f'Model {result.model!r} version {result.version} (trained by run '
        f'{result.run_id}); window: {result.window}, {result.rows} rows; '
        f'previous: {result.previous_window}, {result.previous_rows} rows.')
  if not result.previous_rows:
    print('  drift: no rows in the previous window, not compared.')
  for m in result.measurements:
    print(f'  {m.kind} {m.feature}: {m.comparator} {m.value:.4f} '
          f'(threshold {m.threshold:g}){"  OVER" if m.crossed else ""}')
  for finding in result.findings:
    print(alert_line(finding), file=sys.stderr)
  print(f'Report: {result.report_path}')
  if result.findings:
    print(f'ALERT: {len(result.findings)} threshold(s) crossed; exit '
          f'{ALERT_EXIT}.', file=sys.stderr)
    return ALERT_EXIT
  print('OK: no threshold crossed.')
  return OK_EXIT


if __name__ == '__main__':
  sys.exit(main())
