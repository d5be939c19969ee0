"""Typed pipeline configuration, built once by a runner and passed down.

Nothing here reads the environment or flags; runners do that and construct
these frozen dataclasses.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from typing import Dict
from typing import Optional
from typing import Tuple

from models import features
from models import model_config as model_config_lib
from pipeline.definition import input_formats
from pipeline.definition import spans as spans_lib


@dataclasses.dataclass(frozen=True)
class GateConfig:
  """What a model must achieve on the held-out test split to be blessed.

  Which thresholds apply depends on the task (`models.features.TASKS`):

  * binary: the AUC's lower confidence bound must exceed 0.5 (chance), and
    the AUC must reach `min_auc`;
  * multiclass: the same for the mean one-vs-rest AUC of the classes;
  * regression: R-squared, the share of the variance around the test mean
    that the model explains (0 for any constant prediction).

  The AUC and R-squared are judged by the lower end of a one-sided
  confidence interval at `confidence`, not by the point value, so a
  constant model can never pass (its AUC is exactly 0.5, at any class
  balance) and a small test split needs a clear signal to pass. That
  replaces a fixed minimum test size, which made small datasets
  unblessable.

  Attributes:
    min_auc: Classification: lowest acceptable AUC (multiclass: the mean
      one-vs-rest AUC), a quality bar on top of "better than chance"; the
      default 0.5 asks for nothing more.
    min_r_squared: Regression: R-squared's lower confidence bound must exceed
      this; a constant model's R-squared is 0 or less.
    confidence: One-sided confidence level of those lower bounds.
    min_example_count: Refuse to bless a model judged on fewer test rows.
    max_metric_drop: Largest decrease of the task's primary metric (AUC,
      accuracy or R-squared) allowed against the latest blessed model.
    allowed_anomalies: ExampleValidator anomaly types (e.g.
      'ENUM_TYPE_UNEXPECTED_STRING_VALUES') that do not stop the run.
    check_drift: Also stop the run when the training statistics drifted from
      the last accepted data (with spans: the last accepted span) beyond the
      schema's drift comparators (DriftGate), under every orchestrator.
  """
  min_auc: float = 0.5
  min_r_squared: float = 0.0
  confidence: float = 0.95
  min_example_count: int = 10
  max_metric_drop: float = 0.01
  allowed_anomalies: Tuple[str, ...] = ()
  check_drift: bool = True

  def __post_init__(self) -> None:
    if not 0.5 <= self.min_auc <= 1.0:
      raise ValueError(f'min_auc must be in [0.5, 1], got {self.min_auc}.')
    if not 0 <= self.min_r_squared < 1:
      raise ValueError('min_r_squared must be in [0, 1), got '
                       f'{self.min_r_squared}.')
    if not 0.5 <= self.confidence < 1:
      raise ValueError('confidence must be in [0.5, 1), got '
                       f'{self.confidence}.')
    if self.min_example_count < 1:
      raise ValueError('min_example_count must be >= 1.')
    if self.max_metric_drop < 0:
      raise ValueError('max_metric_drop must be >= 0.')


# The thresholds a dataset config (and a flag) may set; the rest of
# GateConfig is per run.
GATE_THRESHOLDS = ('min_auc', 'min_r_squared',
                   'confidence', 'min_example_count', 'max_metric_drop')


@dataclasses.dataclass(frozen=True)
class SplitConfig:
  """Hash-bucket ratios for ExampleGen's deterministic train/eval/test split.

  Train fits the model, eval is for validation during training, and test is
  read only by the Evaluator to decide the blessing.
  """
  train: int = 8
  eval: int = 1
  test: int = 1

  def __post_init__(self) -> None:
    if min(self.train, self.eval, self.test) < 1:
      raise ValueError('Every split needs at least one hash bucket.')


@dataclasses.dataclass(frozen=True)
class WarmStart:
  """--warm-start: the Trainer starts from an earlier blessed model.

  A runner asks for it with `WarmStart()`. The local run-time then resolves
  it against ML Metadata before it builds the pipeline
  (`pipeline/local/warm_start_source.py`): the latest blessed model trained
  on an earlier span (without spans: on other data), or none and why. The
  answer is part of the Trainer's custom_config, so every re-run of the
  same data names the same model and stays cached. The Trainer checks that
  the model fits and copies its weights (`models/warm_start.py`).

  Attributes:
    resolved: Looked up; only a resolved warm start reaches the Trainer.
    model_uri: The blessed model (its SavedModel folder); '' for none.
    transform_graph_uri: The Transform output it was trained with.
    run_id: The run whose Evaluator blessed it.
    span: The span it was trained on; None without spans.
    dataset: The dataset spec it was trained with.
    model: The model settings it was trained with.
    none_because: Why there is no model to start from ('' when there is).
  """
  resolved: bool = False
  model_uri: str = ''
  transform_graph_uri: str = ''
  run_id: str = ''
  span: Optional[int] = None
  dataset: Optional[features.DatasetSpec] = None
  model: Optional[model_config_lib.ModelConfig] = None
  none_because: str = ''

  def to_dict(self) -> Dict[str, Any]:
    """The Trainer's `custom_config['training']['warm_start']`."""
    if not self.resolved:
      raise ValueError(
          '--warm-start must be resolved against ML Metadata before the '
          'pipeline is built; only the local run-time (runners/'
          'local_runner.py, runners/dataflow_runner.py) does that.')
    return {
        'model_uri': self.model_uri,
        'transform_graph_uri': self.transform_graph_uri,
        'run_id': self.run_id,
        'span': self.span,
        'dataset': self.dataset.to_dict() if self.dataset else None,
        'model': self.model.to_dict() if self.model else None,
        'none_because': self.none_because,
    }


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
  """Trainer settings; `model` holds the architecture and optimizer.

  Defaults were chosen on the eval split of the default data: validation AUC
  peaks around 1,500 steps and the (64, 32) tower with dropout and L2 stops
  the overfitting that larger, unregularized towers showed. `warm_start`
  (None: off) starts from an earlier blessed model.
  """
  train_steps: int = 1600
  eval_steps: int = 12
  per_replica_batch_size: int = 128
  seed: int = 0
  model: model_config_lib.ModelConfig = model_config_lib.ModelConfig()
  warm_start: Optional[WarmStart] = None

  def __post_init__(self) -> None:
    if self.train_steps < 1 or self.eval_steps < 1:
      raise ValueError('train_steps and eval_steps must be >= 1.')
    if self.per_replica_batch_size < 1:
      raise ValueError('per_replica_batch_size must be >= 1.')

  def trainer_custom_config(self) -> Dict[str, Any]:
    config = {
        'per_replica_batch_size': self.per_replica_batch_size,
        'seed': self.seed,
        'model': self.model.to_dict(),
    }
    if self.warm_start is not None:  # Absent when off: the cache key stays.
      config['warm_start'] = self.warm_start.to_dict()
    return config


@dataclasses.dataclass(frozen=True)
class TuningConfig:
  """TFX's Tuner before the Trainer: a random search, bounded twice.

  Trial 0 trains the configured settings; the search then tries random
  layer sizes, dropout, learning rate, L2 and batch size
  (`models/tuning.py`) until `max_trials` trials have run or the next one
  would not fit in the time left. A trial still running at the deadline is
  stopped. The Trainer then trains the best settings for its full steps.

  Attributes:
    max_trials: Trials at most, the defaults' included.
    time_budget_s: Seconds the whole search may take, setup included.
    steps_per_trial: Training steps of each trial; None for
      `DEFAULT_STEPS_FRACTION` of the Trainer's steps, at least
      `MIN_DEFAULT_STEPS` and at most the Trainer's.
  """
  max_trials: int = 10
  time_budget_s: float = 600.0
  steps_per_trial: Optional[int] = None

  DEFAULT_STEPS_FRACTION = 0.25
  MIN_DEFAULT_STEPS = 100

  def __post_init__(self) -> None:
    if self.max_trials < 1:
      raise ValueError(f'max_trials must be >= 1, got {self.max_trials}.')
    if not 0 < self.time_budget_s < float('inf'):
      raise ValueError('time_budget_s must be a positive number of '
                       f'seconds, got {self.time_budget_s}.')
    if self.steps_per_trial is not None and self.steps_per_trial < 1:
      raise ValueError('steps_per_trial must be >= 1, got '
                       f'{self.steps_per_trial}.')

  def trial_steps(self, train_steps: int) -> int:
    """Training steps of each trial, for a Trainer of `train_steps`."""
    if self.steps_per_trial is not None:
      return self.steps_per_trial
    share = int(train_steps * self.DEFAULT_STEPS_FRACTION)
    return min(train_steps, max(self.MIN_DEFAULT_STEPS, share))

  def tuner_custom_config(self) -> Dict[str, Any]:
    return {'max_trials': self.max_trials,
            'time_budget_s': self.time_budget_s}


@dataclasses.dataclass(frozen=True)
class SqlSource:
  """A SQL query as the input, instead of the files in `data_root`.

  Attributes:
    url: SQLAlchemy URL of the database, without the password (the
      connecting process reads it from `sql_url.PASSWORD_ENV`).
    query: The SELECT, with `{SPAN}` already replaced.
    span: The span the rows are, recorded on the Examples artifact.
    rows_fingerprint: SHA-256 of the rows the preflight read: the
      ExampleGen's cache key. '' where no preflight ran (cloud runners):
      then an unchanged query hits the cache even if the table changed.
    kinds: Column -> tf.train.Feature list ('int64_list', ...), from the
      preflight, so that a NULL is a typed empty list.
  """
  url: str
  query: str
  span: Optional[int] = None
  rows_fingerprint: str = ''
  kinds: Optional[Dict[str, str]] = None


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """Everything `create_pipeline` needs.

  Attributes:
    pipeline_name: Name in the metadata store; runs of the same name share
      cache and baseline.
    pipeline_root: Where artifacts are written (local dir or gs:// path).
    data_root: Folder of input files, all of `input_format`.
    input_format: How ExampleGen reads `data_root`: one of
      `input_formats.FORMATS` (CSV with a header row, Parquet, Avro, or
      TFRecord files of tf.Examples). Runners resolve --format auto before
      building the config.
    schema_path: Curated schema (.pbtxt), the data contract.
    schema_sha256: SHA-256 of the schema file's bytes, so that an edited
      schema is re-imported (ImportSchemaGen caches by path); '' when the
      runner cannot read the file.
    serving_model_dir: Pusher destination; each blessed model lands in a
      versioned subdirectory.
    dataset: Which columns are features and which is the label.
    training: Trainer settings.
    gate: Blessing thresholds and anomaly allow-list.
    splits: Train/eval/test ratios.
    enable_cache: Reuse results of unchanged components.
    beam_pipeline_args: Args for every Beam-based component.
    sql: Read this query's rows instead of `data_root`'s files.
    spans: `data_root` holds span-N folders; read one span per run.
    tuning: Run TFX's Tuner before the Trainer (--tune); None: off.
  """
  pipeline_name: str
  pipeline_root: str
  data_root: str
  schema_path: str
  serving_model_dir: str
  dataset: features.DatasetSpec
  training: TrainingConfig = TrainingConfig()
  gate: GateConfig = GateConfig()
  splits: SplitConfig = SplitConfig()
  enable_cache: bool = True
  beam_pipeline_args: Tuple[str, ...] = ()
  schema_sha256: str = ''
  component_beam_args: Optional[Dict[str, Tuple[str, ...]]] = None
  input_format: str = input_formats.CSV
  sql: Optional[SqlSource] = None
  spans: Optional[spans_lib.SpanInput] = None
  tuning: Optional[TuningConfig] = None

  def __post_init__(self) -> None:
    if self.input_format not in input_formats.FORMATS:
      raise ValueError(
          f'input_format must be one of {", ".join(input_formats.FORMATS)}, '
          f'got {self.input_format!r}.')
