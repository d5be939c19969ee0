"""The tuned settings and the search record, as plain data: no TF import.

With `--tune`, TFX's Tuner searches the settings of the family that
trains (`models/tuning.py`). For the DNN (`--model dnn`, and `auto`, whose
trees keep their defaults) five: the deep tower's layer sizes, dropout, the
learning rate, the L2 penalty and the per-replica batch size. For the
gradient-boosted trees (`--model gbt`) five too: the number of trees, their
depth, the shrinkage (learning rate), the fewest rows in a leaf and the
share of rows each tree sees. This module holds what the three readers of
that search share:

- the names and choices of the settings, and `apply`, which puts tuned
  values in place of a `ModelConfig` and batch size (the Trainer's `run_fn`
  does this with `fn_args.hyperparameters`);
- the search record (`SearchRecord`): every trial with its settings, its
  eval metric, its status and its time, why the search stopped, the best
  trial and whether it beat the defaults. The Tuner writes it next to TFX's
  `tuner_results.json`; the run summary and the HTML report read it.

It imports neither TensorFlow nor KerasTuner, so the report and the
summary read a record without them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

from models import model_config as model_config_lib

# The settings searched, by their KerasTuner names.
HIDDEN_UNITS = 'hidden_units'
DROPOUT = 'dropout'
LEARNING_RATE = 'learning_rate'
L2 = 'l2'
BATCH_SIZE = 'per_replica_batch_size'
NAMES = (HIDDEN_UNITS, DROPOUT, LEARNING_RATE, L2, BATCH_SIZE)
# The gradient-boosted trees' settings (`model_config.GbtConfig` fields).
NUM_TREES = 'num_trees'
MAX_DEPTH = 'max_depth'
SHRINKAGE = 'shrinkage'
MIN_EXAMPLES = 'min_examples'
SUBSAMPLE = 'subsample'
GBT_NAMES = (NUM_TREES, MAX_DEPTH, SHRINKAGE, MIN_EXAMPLES, SUBSAMPLE)

# The choices around the defaults; a configured default outside them is
# added, so the defaults are always a point of the space.
HIDDEN_UNITS_CHOICES = ((32,), (64,), (128,), (32, 16), (64, 32), (128, 64),
                        (256, 128), (128, 64, 32))
DROPOUT_CHOICES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
# Sampled log-uniformly between these.
LEARNING_RATE_RANGE = (1e-4, 1e-2)
L2_CHOICES = (0.0, 1e-5, 1e-4, 1e-3)
BATCH_SIZE_CHOICES = (32, 64, 128, 256)
# The trees' choices: around YDF's defaults (300 trees of depth 6,
# shrinkage 0.1, 5 rows per leaf, every row), the ranges YDF's manual
# suggests tuning. With early stopping, `num_trees` is a ceiling.
NUM_TREES_CHOICES = (100, 200, 300, 500, 800)
MAX_DEPTH_CHOICES = (3, 4, 5, 6, 8)
SHRINKAGE_RANGE = (0.02, 0.3)  # Sampled log-uniformly.
MIN_EXAMPLES_CHOICES = (2, 5, 10, 20, 40)
SUBSAMPLE_CHOICES = (0.6, 0.8, 1.0)

# What the Tuner writes into its `tuner_results` artifact, beside TFX's
# tuner_results.json (which keeps completed trials only).
RECORD_FILE = 'search_record.json'

# Trial statuses in the record.
COMPLETED = 'completed'
STOPPED = 'stopped'  # Cut at the time budget; not a candidate.
FAILED = 'failed'  # Raised an error (recorded, not fatal unless all fail).
STATUSES = (COMPLETED, STOPPED, FAILED)

# Why a search ended.
STOP_TRIALS = 'trial budget'
STOP_TIME = 'time budget'
STOP_EXHAUSTED = 'search space exhausted'

NO_IMPROVEMENT = 'tuning did not improve on the defaults'


def units_text(units: Sequence[int]) -> str:
  """(64, 32) -> '64,32': layer sizes as one KerasTuner choice."""
  return ','.join(str(int(u)) for u in units)


def parse_units(text: str) -> Tuple[int, ...]:
  """'64,32' -> (64, 32).

  Raises:
    ValueError: Not a comma-separated list of positive integers.
  """
  try:
    units = tuple(int(part) for part in str(text).split(','))
  except ValueError:
    units = ()
  if not units or min(units) < 1:
    raise ValueError(f'{HIDDEN_UNITS} must be layer sizes like "64,32", '
                     f'got {text!r}.')
  return units


def default_values(model: model_config_lib.ModelConfig,
                   per_replica_batch_size: int) -> Dict[str, Any]:
  """The configured settings as tuner values: the first trial's."""
  return {
      HIDDEN_UNITS: units_text(model.hidden_units),
      DROPOUT: float(model.dropout),
      LEARNING_RATE: float(model.learning_rate),
      L2: float(model.l2),
      BATCH_SIZE: int(per_replica_batch_size),
  }


def gbt_default_values(model: model_config_lib.ModelConfig) -> Dict[str, Any]:
  """The configured trees' settings as tuner values: the first trial's."""
  gbt = model.gbt
  return {
      NUM_TREES: int(gbt.num_trees),
      MAX_DEPTH: int(gbt.max_depth),
      SHRINKAGE: float(gbt.shrinkage),
      MIN_EXAMPLES: int(gbt.min_examples),
      SUBSAMPLE: float(gbt.subsample),
  }


def apply(values: Mapping[str, Any], model: model_config_lib.ModelConfig,
          per_replica_batch_size: int
          ) -> Tuple[model_config_lib.ModelConfig, int]:
  """The settings with tuned values in place of the configured ones.

  Args:
    values: Tuner values by name (a subset of NAMES and GBT_NAMES); missing
      ones keep the configured value.
    model: The configured model settings (`drop_all_features` is kept).
    per_replica_batch_size: The configured batch size per replica.

  Returns:
    (model settings, per-replica batch size).

  Raises:
    ValueError: An unknown name, or a value out of its range.
  """
  unknown = sorted(set(values) - set(NAMES) - set(GBT_NAMES))
  if unknown:
    raise ValueError(f'Unknown tuned settings {unknown}; known: '
                     f'{", ".join(NAMES + GBT_NAMES)}.')
  changes: Dict[str, Any] = {}
  gbt_changes = {name: values[name] for name in GBT_NAMES if name in values}
  if gbt_changes:
    typed = {name: (float(value) if name in (SHRINKAGE, SUBSAMPLE)
                    else int(value)) for name, value in gbt_changes.items()}
    # GbtConfig checks the ranges. The trials grew `template`'s forests,
    # so the tuned values are that template's: the alternative template
    # (model_config.GbtConfig) was never tried with them, and does not grow.
    changes['gbt'] = dataclasses.replace(model.gbt, alternative_template=None,
                                         **typed)
  if HIDDEN_UNITS in values:
    changes['hidden_units'] = parse_units(values[HIDDEN_UNITS])
  for name in (DROPOUT, LEARNING_RATE, L2):
    if name in values:
      changes[name] = float(values[name])
  tuned = dataclasses.replace(model, **changes)
  if not 0 <= tuned.dropout < 1:
    raise ValueError(f'{DROPOUT} must be in [0, 1), got {tuned.dropout}.')
  if not tuned.learning_rate > 0:
    raise ValueError(f'{LEARNING_RATE} must be > 0, got '
                     f'{tuned.learning_rate}.')
  if tuned.l2 < 0:
    raise ValueError(f'{L2} must be >= 0, got {tuned.l2}.')
  batch = int(values.get(BATCH_SIZE, per_replica_batch_size))
  if batch < 1:
    raise ValueError(f'{BATCH_SIZE} must be >= 1, got {batch}.')
  return tuned, batch


def values_of(hyperparameters: Optional[Mapping[str, Any]]
              ) -> Dict[str, Any]:
  """The values of a KerasTuner HyperParameters config, {} for None.

  The Trainer gets the Tuner's best settings as that config
  (`fn_args.hyperparameters`: {'space': [...], 'values': {...}}).
  """
  if not hyperparameters:
    return {}
  return dict(hyperparameters.get('values') or {})


def describe(values: Mapping[str, Any]) -> str:
  """'hidden_units=64,32 dropout=0.3 learning_rate=0.001 ...' in NAMES (then
  GBT_NAMES) order."""
  parts = []
  for name in NAMES + GBT_NAMES:
    if name in values:
      value = values[name]
      text = f'{value:.3g}' if isinstance(value, float) else str(value)
      parts.append(f'{name}={text}')
  return ' '.join(parts)


@dataclasses.dataclass(frozen=True)
class Trial:
  """One trial of the search.

  Attributes:
    trial_id: KerasTuner's id ('0', '1', ...); '0' is the defaults.
    values: The settings it trained with, by name.
    status: One of STATUSES.
    score: The eval metric after its steps; None unless completed.
    seconds: Its wall time, model building included.
    steps: Optimizer steps it took.
    is_defaults: Its settings are the configured defaults.
    message: Why it stopped or failed ('' when completed).
  """
  trial_id: str
  values: Dict[str, Any]
  status: str
  score: Optional[float]
  seconds: float
  steps: int
  is_defaults: bool = False
  message: str = ''

  def __post_init__(self) -> None:
    if self.status not in STATUSES:
      raise ValueError(f'Trial {self.trial_id}: status must be one of '
                       f'{STATUSES}, got {self.status!r}.')
    if self.status == COMPLETED and (self.score is None or
                                     not math.isfinite(self.score)):
      raise ValueError(f'Trial {self.trial_id} completed without a finite '
                       f'score ({self.score}).')


@dataclasses.dataclass(frozen=True)
class SearchRecord:
  """What a search did and decided; written by the Tuner as JSON.

  Attributes:
    metric: The eval-split metric compared ('auc', 'accuracy', 'rmse').
    direction: 'max' or 'min': which way is better.
    max_trials: The trial budget.
    time_budget_s: The time budget, in seconds.
    steps_per_trial: Training steps of each trial.
    default_values: The configured settings (the first trial's).
    trials: Every trial started, in order.
    stop_reason: Why no further trial started: STOP_TRIALS, STOP_TIME or
      STOP_EXHAUSTED.
    seconds: Wall time of the whole search, setup included.
    setup_seconds: Of which before the first trial: reading the Transform
      output and the one-off Keras warm-up (`models/tuning.py`).
  """
  metric: str
  direction: str
  max_trials: int
  time_budget_s: float
  steps_per_trial: int
  default_values: Dict[str, Any]
  trials: Tuple[Trial, ...]
  stop_reason: str
  seconds: float
  setup_seconds: float = 0.0

  def __post_init__(self) -> None:
    if self.direction not in ('max', 'min'):
      raise ValueError(f"direction must be 'max' or 'min', got "
                       f'{self.direction!r}.')

  @property
  def completed(self) -> Tuple[Trial, ...]:
    return tuple(t for t in self.trials if t.status == COMPLETED)

  @property
  def best(self) -> Optional[Trial]:
    """The completed trial with the best score; the earliest on a tie, so
    the defaults (the first trial) win ties. None if none completed."""
    best = None
    for trial in self.completed:
      if best is None or self.better(trial.score, best.score):
        best = trial
    return best

  @property
  def defaults(self) -> Optional[Trial]:
    """The trial of the default settings; None if it never started."""
    for trial in self.trials:
      if trial.is_defaults:
        return trial
    return None

  @property
  def chosen_values(self) -> Dict[str, Any]:
    """What the Trainer uses: the best trial's settings, else the defaults."""
    best = self.best
    return dict(best.values if best is not None else self.default_values)

  @property
  def all_failed(self) -> bool:
    """Every trial started raised an error (then the Tuner fails)."""
    return bool(self.trials) and all(t.status == FAILED for t in self.trials)

  def better(self, score: float, than: float) -> bool:
    """Strictly better in the metric's direction."""
    return score > than if self.direction == 'max' else score < than

  @property
  def beat_defaults(self) -> Optional[bool]:
    """Whether the best trial beat the defaults on the eval split; None
    when the defaults trial did not complete, so there is nothing to
    compare with."""
    defaults, best = self.defaults, self.best
    if defaults is None or defaults.status != COMPLETED or best is None:
      return None
    return best is not defaults and self.better(best.score, defaults.score)

  def verdict(self) -> str:
    """One sentence: did tuning beat the defaults, and what trains now."""
    metric = f'eval {self.metric}'
    best, defaults = self.best, self.defaults
    if best is None:
      return (f'no trial completed ({self.stop_reason} reached); the Trainer '
              'uses the defaults')
    if self.beat_defaults:
      return (f'tuning beat the defaults: {metric} {best.score:.4f} '
              f'(trial {best.trial_id}) vs {defaults.score:.4f} (defaults); '
              f'the Trainer uses trial {best.trial_id}')
    if self.beat_defaults is False:
      return (f'{NO_IMPROVEMENT}: {metric} {defaults.score:.4f} (defaults) '
              f'was not beaten; the Trainer uses the defaults')
    state = defaults.status if defaults is not None else 'not started'
    return (f'the defaults trial was {state}, so there is nothing to '
            f'compare with; the Trainer uses trial {best.trial_id} '
            f'({metric} {best.score:.4f})')

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> 'SearchRecord':
    raw = json.loads(text)
    raw['trials'] = tuple(Trial(**t) for t in raw['trials'])
    return cls(**raw)
