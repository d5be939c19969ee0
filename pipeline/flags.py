"""Flags shared by the runners, turned into a typed `PipelineConfig`.

Runners own their flags; this module only holds the pieces they share so
that the three runners stay short and agree on names and defaults. It only
turns flags into typed values: what they mean is decided below it, and the
flow goes one way, flags -> `pipeline.definition` (dataset configs, spans,
input formats, draft requests) and `pipeline.facts` (the output layout,
store locations, SQL URLs) -> `PipelineConfig` and `OutputLayout`. Nothing
there calls back into this module.
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any
from typing import Callable
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

from models import features
from models import model_config as model_config_lib
from pipeline.definition import config as config_lib
from pipeline.definition import dataset_config
from pipeline.definition import draft_request as draft_lib
from pipeline.definition import input_formats
from pipeline.definition import spans as spans_lib
from pipeline.facts import layout as layout_lib
from pipeline.facts import metadata_location
from pipeline.facts import sql_url
from pipeline.facts import tracking_location

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO_ROOT / 'data' / 'taxi'


DEFAULT_DATASET = 'taxi'
# Gate flags: flag name -> GateConfig field. They override the dataset config.
GATE_FLAGS = {
    '--min-auc': ('min_auc', float,
                  'classification: lowest acceptable AUC (multiclass: the '
                  'mean one-vs-rest AUC); its lower confidence bound must '
                  'also exceed 0.5 (chance)'),
    '--min-r-squared': (
        'min_r_squared', float,
        'regression: R-squared (its lower confidence bound) must exceed this'),
    '--confidence': ('confidence', float,
                     'one-sided confidence level of those lower bounds'),
    '--min-test-examples': ('min_example_count', int,
                            'fewest test rows a blessing may rest on'),
    '--max-metric-drop': (
        'max_metric_drop', float,
        'largest drop of AUC / accuracy / R-squared allowed against the '
        'latest blessed model'),
}


def add_common_flags(parser: argparse.ArgumentParser) -> None:
  """Flags every runner accepts: data, dataset, schema and training."""
  parser.add_argument('--data-root', default=str(DEFAULT_DATA_ROOT),
                      help='Folder of input files, all of one --format: CSV '
                      'with a header row, Parquet, Avro, or TFRecord files of '
                      'tf.Examples (default: %(default)s).')
  sql = parser.add_argument_group(
      'SQL source', 'Read the rows of a SQL query instead of --data-root '
      '(SQLAlchemy; postgresql:// is installed).')
  sql.add_argument('--sql-url', default=None, metavar='URL',
                   help='The database, e.g. postgresql://USER@HOST:5432/DB. '
                   f'Without a password in the URL, ${sql_url.PASSWORD_ENV} (or '
                   "the driver's own, e.g. PGPASSWORD) is used; the password "
                   'is never stored in ML Metadata.')
  sql.add_argument('--query', default=None, metavar='SQL',
                   help='With --sql-url: the SELECT whose rows are the data. '
                   'It may use {SPAN}, e.g. WHERE day = {SPAN}, with --span.')
  parser.add_argument('--span', default=None, metavar='N|A-B',
                      help='The span to read: the folder span-N of a '
                      '--data-root that holds span-1/, span-2/, ... (default: '
                      'the latest), or N for the {SPAN} of a --query. A-B '
                      'reads the folders span-A to span-B together, as one '
                      'Examples artifact of span B. The span is recorded on '
                      'the Examples artifact.')
  parser.add_argument('--format', dest='input_format',
                      default=input_formats.AUTO,
                      choices=(input_formats.AUTO,) + input_formats.FORMATS,
                      help='How ExampleGen reads --data-root. auto detects it '
                      'from the file extensions (.csv, .parquet, .avro, '
                      '.tfrecord or .gz) of a local folder, and means csv for '
                      'a gs:// one (default: %(default)s).')
  which = parser.add_argument_group(
      'dataset', 'Which dataset config to use. By default the committed '
      f'config of --dataset ({DEFAULT_DATASET}); --dataset-config FILE for '
      'another one; or --label and --task to draft one from the data.')
  which.add_argument('--dataset', default=None,
                     help='A dataset with a committed config, '
                     'schema/<name>/dataset.yaml (default: '
                     f'{DEFAULT_DATASET}).')
  which.add_argument('--dataset-config', default=None, metavar='FILE',
                     help='A dataset config YAML file; its curated schema is '
                     'the schema.pbtxt beside it.')
  which.add_argument('--label', default=None, metavar='COLUMN',
                     help='Zero-config run: the label column. The schema and '
                     'dataset config are drafted from the data and written '
                     'to the output dir.')
  which.add_argument('--task', default=None, choices=features.TASKS,
                     help='With --label: what to predict.')
  which.add_argument('--positive-label', action='append', default=[],
                     metavar='VALUE',
                     help='With --label and --task binary: the label value '
                     'that means "positive" (needed unless the label is '
                     '0/1). Repeatable.')
  which.add_argument('--draft-only', action='store_true',
                     help='With --label: profile the data, write the draft '
                     'schema and dataset config, and stop there, before '
                     'Transform and training. Review the drafts, then run '
                     'with --dataset-config <output-dir>/draft/dataset.yaml.')
  parser.add_argument('--schema', default=None,
                      help='Curated schema .pbtxt (default: the schema.pbtxt '
                      'beside the dataset config).')
  parser.add_argument('--pipeline-name', default=None,
                      help='Pipeline name in the metadata store (default: '
                      'tabular-<dataset name>).')
  parser.add_argument('--train-steps', type=int, default=None,
                      help='Training steps (default: the dataset config\'s, '
                      f'else {config_lib.TrainingConfig.train_steps}).')
  parser.add_argument('--per-replica-batch-size', type=int, default=None,
                      help='Batch size per replica; the global batch is this '
                      'times the number of devices (default: '
                      f'{config_lib.TrainingConfig.per_replica_batch_size}).')
  parser.add_argument('--allow-anomaly', action='append', default=[],
                      metavar='TYPE',
                      help='ExampleValidator anomaly type that should not stop '
                      'the run, e.g. ENUM_TYPE_UNEXPECTED_STRING_VALUES. '
                      'Repeatable.')
  gate = parser.add_argument_group(
      'gate', 'Blessing thresholds; each overrides the dataset config.')
  for flag, (field, kind, text) in GATE_FLAGS.items():
    gate.add_argument(flag, dest=field, type=kind, default=None,
                      help=f'{text} (default: {getattr(config_lib.GateConfig, field)}'
                      ' unless the dataset config sets it).')
  parser.add_argument('--model', default=None,
                      choices=model_config_lib.FAMILIES,
                      help='Model family: dnn (the wide-and-deep network), '
                      'gbt (gradient-boosted trees) or auto (both, side by '
                      'side; the DNN, the trees or their mean, whichever '
                      'scores best on the eval split, is kept). '
                      'Default: the dataset config\'s `model:`, else '
                      f'{model_config_lib.DEFAULT_FAMILY}.')
  parser.add_argument('--drop-all-features', action='store_true',
                      help='Gate self-test: train a useless model that only '
                      'knows the base rate. It must not be blessed.')
  parser.add_argument('--check-drift', action=argparse.BooleanOptionalAction,
                      default=True,
                      help='Stop the run when the training data drifted from '
                      'the last accepted data (the last span that passed) '
                      'beyond the drift comparators in the curated schema '
                      '(default: on; --no-check-drift turns it off).')
  add_tuning_flags(parser)
  parser.add_argument('--warm-start', action='store_true',
                      help='Start training from the latest blessed model of '
                      'an earlier span (without spans: of other data) when it '
                      'fits: same task, features and layer sizes; embedding '
                      'rows are mapped by token. Otherwise train from '
                      'scratch and say why '
                      '(docs/running.md#warm-start---warm-start).')
  parser.add_argument('--no-cache', action='store_true',
                      help='Re-run every component even if its inputs are '
                      'unchanged.')
  parser.add_argument('--lock-timeout', type=float, default=0.0,
                      metavar='SECONDS',
                      help='Local runs: if another run holds the output dir, '
                      'wait this long for it, then give up; 0 fails at once, '
                      '-1 waits forever (default: %(default)s).')


# Tuning flags: flag name -> TuningConfig field.
TUNING_FLAGS = {'--tune-trials': 'max_trials',
                '--tune-time-budget': 'time_budget_s',
                '--tune-steps': 'steps_per_trial'}


def _positive(kind: type) -> Callable[[str], Any]:
  def parse(text: str) -> Any:
    try:
      value = kind(text)
    except ValueError:
      value = None
    if value is None or not 0 < value < float('inf'):
      raise argparse.ArgumentTypeError(
          f'must be a positive {"integer" if kind is int else "number"}, '
          f'got {text!r}')
    return value
  return parse


def add_tuning_flags(parser: argparse.ArgumentParser) -> None:
  """--tune and its budgets (docs/running.md#tuning)."""
  defaults = config_lib.TuningConfig
  tune = parser.add_argument_group(
      'tuning', "Search the model's settings with TFX's Tuner before "
      'training; the Trainer then trains the best ones.')
  tune.add_argument('--tune', action='store_true',
                    help='Run the Tuner: the configured settings first, then '
                    'random layer sizes, dropout, learning rate, L2 and '
                    'batch size, scored on the eval split.')
  tune.add_argument('--tune-trials', dest='max_trials', type=_positive(int),
                    default=None, metavar='N',
                    help='With --tune: trials at most, the defaults\' '
                    f'included (default: {defaults.max_trials}).')
  tune.add_argument('--tune-time-budget', dest='time_budget_s',
                    type=_positive(float), default=None, metavar='SECONDS',
                    help='With --tune: the search ends within this many '
                    'seconds; a trial running at the deadline is stopped '
                    f'(default: {defaults.time_budget_s:g}).')
  tune.add_argument('--tune-steps', dest='steps_per_trial',
                    type=_positive(int), default=None, metavar='N',
                    help='With --tune: training steps of each trial (default: '
                    'a quarter of --train-steps, at least '
                    f'{defaults.MIN_DEFAULT_STEPS}).')


def tuning_config(args: argparse.Namespace
                  ) -> Optional[config_lib.TuningConfig]:
  """The TuningConfig the flags ask for; None without --tune.

  Raises:
    FlagError: A --tune-* flag without --tune.
  """
  given = {field: getattr(args, field) for field in TUNING_FLAGS.values()
           if getattr(args, field, None) is not None}
  if not getattr(args, 'tune', False):
    if given:
      flags = [flag for flag, field in TUNING_FLAGS.items() if field in given]
      raise FlagError(f'{", ".join(flags)} '
                      f'{"goes" if len(flags) == 1 else "go"} with --tune.')
    return None
  return config_lib.TuningConfig(**given)


def add_local_orchestration_flags(parser: argparse.ArgumentParser) -> None:
  """--beam-workers and --metadata-url: the local runner's and Airflow's."""
  parser.add_argument('--beam-workers', type=int, default=1,
                      help='Beam DirectRunner worker processes; 0 means one '
                      'per core, 1 runs in-process (default: %(default)s).')
  parser.add_argument('--metadata-url', default=None, metavar='URL',
                      help='Store ML Metadata in a MySQL or MariaDB database '
                      'instead of <output-dir>/metadata.sqlite: '
                      'mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE, or '
                      'mysql://USER[:PASSWORD]@/DATABASE?socket=PATH. '
                      'Without a password in the URL, MYSQL_PWD is used. '
                      'The database is created when missing.')


def add_tracking_flags(parser: argparse.ArgumentParser) -> None:
  """--mlflow-uri and --no-mlflow: the local runner's (docs/tracking.md)."""
  group = parser.add_argument_group(
      'MLflow', 'Each run is logged to MLflow after it ends; by default to '
      'sqlite:///<output-dir>/mlflow.db, artifacts in <output-dir>/mlruns.')
  which = group.add_mutually_exclusive_group()
  which.add_argument('--mlflow-uri', default=None, metavar='URI',
                     help='Log to this MLflow tracking server or store '
                     'instead, e.g. http://HOST:5000 (a password in the URI '
                     'is never printed).')
  which.add_argument('--no-mlflow', action='store_true',
                     help='Do not log the run to MLflow.')


def output_layout(args: argparse.Namespace, output_dir: str,
                  environ: Mapping[str, str]) -> layout_lib.OutputLayout:
  """Where the run writes: the output dir, and the stores the flags name.

  Args:
    args: Parsed flags; --metadata-url, --mlflow-uri and --no-mlflow where
      the runner has them.
    output_dir: The output dir, absolute.
    environ: The environment: $MYSQL_PWD for a --metadata-url without a
      password.

  Raises:
    metadata_location.MetadataUrlError, tracking_location.TrackingUriError:
      A malformed URL; the message masks the password.
  """
  return layout_lib.OutputLayout(
      output_dir, metadata_location.from_url(
          getattr(args, 'metadata_url', None), environ),
      **tracking_settings(args))


def tracking_settings(args: argparse.Namespace) -> Dict[str, Any]:
  """`OutputLayout`'s MLflow fields from the flags.

  Raises:
    tracking_location.TrackingUriError: A malformed --mlflow-uri.
  """
  uri = getattr(args, 'mlflow_uri', None)
  return {'mlflow': (tracking_location.parse_uri(uri) if uri is not None
                     else None),
          'log_to_mlflow': not getattr(args, 'no_mlflow', False)}


class FlagError(ValueError):
  """The flags contradict each other; the message says which."""


def draft_request(args: argparse.Namespace
                  ) -> Optional[draft_lib.DraftRequest]:
  """The zero-config request the flags make, or None for a committed config.

  Raises:
    FlagError: --label without --task, or mixed with a dataset config.
  """
  tuning_config(args)  # A --tune-* flag without --tune: before profiling.
  _check_warm_start(args, getattr(args, 'model', None), '--model gbt')
  if args.label is None:
    if args.task or args.positive_label or getattr(args, 'draft_only', False):
      raise FlagError('--task, --positive-label and --draft-only go with '
                      '--label COLUMN (a zero-config run).')
    return None
  if getattr(args, 'sql_url', None):
    raise FlagError('--label drafts the dataset from files; with --sql-url, '
                    'export a sample of the query to CSV, draft from it with '
                    '--data-root, commit the drafts, then pass '
                    '--dataset-config with --sql-url.')
  if not args.task:
    raise FlagError(f'--label {args.label} needs --task '
                    f'{{{",".join(features.TASKS)}}}.')
  if args.dataset_config or args.dataset or args.schema:
    raise FlagError('--label drafts a new dataset config and schema; it '
                    'cannot be combined with --dataset, --dataset-config or '
                    '--schema.')
  if args.positive_label and args.task != features.BINARY:
    raise FlagError('--positive-label only applies to --task binary.')
  if '://' in args.data_root:
    raise FlagError(f'--label drafts the dataset from local files; '
                    f'{args.data_root} is remote. Draft it on a local copy, '
                    'commit the drafts, then pass --dataset-config.')
  folder = input_folder(args.data_root, getattr(args, 'span', None))
  return draft_lib.DraftRequest(
      name=draft_lib.dataset_name_from(args.data_root), label=args.label,
      task=args.task, data_root=folder,
      positive_label=tuple(args.positive_label),
      input_format=input_formats.resolve(
          getattr(args, 'input_format', input_formats.AUTO), folder),
      draft_only=bool(getattr(args, 'draft_only', False)))


def span_input(data_root: str, span: Optional[str]
               ) -> Optional[spans_lib.SpanInput]:
  """How the data root is read in spans, or None; FlagError if it cannot."""
  try:
    return spans_lib.detect(data_root, span)
  except spans_lib.SpanError as e:
    raise FlagError(str(e)) from None


def input_folder(data_root: str, span: Optional[str]) -> str:
  """The folder of this run's files: the span's, or the data root."""
  try:
    return spans_lib.input_folder(data_root, span_input(data_root, span))
  except spans_lib.SpanError as e:
    raise FlagError(str(e)) from None


def load_dataset_config(args: argparse.Namespace
                        ) -> dataset_config.DatasetConfig:
  """The committed (or given) dataset config the flags name.

  Raises:
    FlagError: --label here (only the local runner drafts configs), or both
      --dataset and --dataset-config.
  """
  if args.label or getattr(args, 'draft_only', False):
    raise FlagError(
        '--label and --draft-only (a zero-config run) draft the dataset '
        'config on this machine: run runners/local_runner.py --label ... '
        'first, commit the drafts, then pass --dataset-config to this '
        'runner.')
  if args.dataset_config and args.dataset:
    raise FlagError('Pass --dataset or --dataset-config, not both.')
  if args.dataset_config:
    return dataset_config.load(args.dataset_config)
  return dataset_config.load_named(args.dataset or DEFAULT_DATASET)


def gate_overrides(args: argparse.Namespace) -> Dict[str, Any]:
  return {field: getattr(args, field) for field, _, _ in GATE_FLAGS.values()
          if getattr(args, field, None) is not None}


def model_family(args: argparse.Namespace,
                 dataset: dataset_config.DatasetConfig) -> str:
  """--model, else the dataset config's `model:`, else the default (auto).

  Raises:
    FlagError: --warm-start with gradient-boosted trees only.
  """
  family = (getattr(args, 'model', None) or dataset.model or
            model_config_lib.DEFAULT_FAMILY)
  source = ('--model gbt' if getattr(args, 'model', None) else
            f'`model: gbt` in {dataset.path or "the dataset config"}')
  _check_warm_start(args, family, source)
  return family


def _check_warm_start(args: argparse.Namespace, family: str,
                      source: str) -> None:
  if family == model_config_lib.GBT and getattr(args, 'warm_start', False):
    raise FlagError(
        f'--warm-start starts a DNN from an earlier model\'s weights; '
        f'gradient-boosted trees ({source}) always train from scratch. '
        'Drop --warm-start, or pass --model dnn or --model auto (whose DNN '
        'starts warm).')


def build_config(args: argparse.Namespace, *, pipeline_root: str,
                 serving_model_dir: str, data_root: Optional[str] = None,
                 schema_path: Optional[str] = None,
                 beam_pipeline_args: Sequence[str] = (),
                 dataset: Optional[dataset_config.DatasetConfig] = None
                 ) -> config_lib.PipelineConfig:
  """Builds the typed pipeline config from parsed common flags.

  Args:
    args: Parsed flags (`add_common_flags`).
    pipeline_root: Where artifacts go.
    serving_model_dir: The Pusher's destination.
    data_root: Overrides --data-root (cloud runners check it first).
    schema_path: Overrides the schema beside the dataset config.
    beam_pipeline_args: Args for every Beam-based component.
    dataset: The dataset config; by default the one the flags name. A
      zero-config run passes its drafts here once they exist.

  Raises:
    FlagError, dataset_config.DatasetConfigError, ValueError: Bad flags or
      config; the message says which.
  """
  dataset = dataset or load_dataset_config(args)
  spec = dataset.spec
  sql, _ = sql_source(args)
  root = data_root or args.data_root
  spans = None if sql is not None else span_input(root,
                                                  getattr(args, 'span', None))
  # Hash the file this machine reads; a cloud runner's schema_path may name
  # the same file inside the image.
  local_schema = args.schema or dataset.schema_path
  training = dict(dataset.training)
  if args.train_steps is not None:
    training['train_steps'] = args.train_steps
  if args.per_replica_batch_size is not None:
    training['per_replica_batch_size'] = args.per_replica_batch_size
  return config_lib.PipelineConfig(
      pipeline_name=args.pipeline_name or f'tabular-{spec.name}',
      pipeline_root=pipeline_root,
      data_root=root,
      schema_path=schema_path or args.schema or dataset.schema_path,
      serving_model_dir=serving_model_dir,
      dataset=spec,
      training=config_lib.TrainingConfig(
          **training,
          model=model_config_lib.ModelConfig(
              drop_all_features=args.drop_all_features,
              family=model_family(args, dataset),
              gbt=model_config_lib.GbtConfig.from_settings(dataset.gbt)),
          # Resolved against ML Metadata by the local run-time.
          warm_start=(config_lib.WarmStart()
                      if getattr(args, 'warm_start', False) else None)),
      gate=dataset.gate_config(**gate_overrides(args),
                               allowed_anomalies=tuple(args.allow_anomaly),
                               check_drift=args.check_drift),
      enable_cache=not args.no_cache,
      beam_pipeline_args=tuple(beam_pipeline_args),
      schema_sha256=dataset_config.schema_sha256(local_schema),
      input_format=input_formats.resolve(
          getattr(args, 'input_format', input_formats.AUTO),
          spans_lib.input_folder(root, spans)) if sql is None else
      input_formats.CSV,
      sql=sql, spans=spans, tuning=tuning_config(args))


def sql_source(args: argparse.Namespace
               ) -> Tuple[Optional[config_lib.SqlSource], Optional[str]]:
  """The SQL source the flags name, and the password taken out of its URL.

  Returns:
    (None, None) without --sql-url; else the source (URL without password,
    query with {SPAN} replaced) and the URL's password, or None.

  Raises:
    FlagError: --query without --sql-url or the reverse, --span without
      them, or a bad URL or {SPAN} use.
  """
  url = getattr(args, 'sql_url', None)
  query = getattr(args, 'query', None)
  if url is None:
    if query is not None:
      raise FlagError('--query goes with --sql-url URL.')
    return None, None
  if not query or not query.strip():
    raise FlagError('--sql-url needs --query SQL: the SELECT whose rows are '
                    'the data.')
  span = _sql_span(getattr(args, 'span', None))
  try:
    bare, password = sql_url.split_password(url)
    return config_lib.SqlSource(
        url=bare, query=sql_url.with_span(query, span), span=span), password
  except sql_url.SqlSourceError as e:
    raise FlagError(str(e)) from None


def _sql_span(flag: Optional[str]) -> Optional[int]:
  """The --span of a --query: one number, or None."""
  if flag is None:
    return None
  try:
    span_input = spans_lib.parse(flag)
  except spans_lib.SpanError as e:
    raise FlagError(str(e)) from None
  if span_input.first is not None:
    raise FlagError(
        f'--span {flag} is a range of span folders; a --query reads one '
        '{SPAN}. Write the range into the query instead, e.g. WHERE day '
        f'BETWEEN {span_input.first} AND {span_input.span}, without --span.')
  return span_input.span


def direct_runner_args(workers: int) -> list:
  """Beam DirectRunner args: in-process for 1 worker, else multi-process."""
  if workers < 0:
    raise ValueError(f'--beam-workers must be >= 0, got {workers}.')
  if workers == 1:
    return ['--direct_running_mode=in_memory', '--direct_num_workers=1']
  return ['--direct_running_mode=multi_processing',
          f'--direct_num_workers={workers}']
