"""TFX Tuner entry point: a random search within a trial and a time budget.

Referenced by module path (`models.tuning.tuner_fn`), like `run_fn`. The
search runs in KerasTuner's loop, a random search over the settings of
`models/hyperparameters.py`, with three guarantees that TFX's Tuner
examples lack (users report searches that never end and crash on one bad
trial, tfx#5607 and #7775):

- **The defaults come first.** Trial 0 trains the configured settings, so
  the record can say whether tuning beat them on the eval split. Ties go to
  the defaults.
- **It ends within both budgets.** No trial starts after `max_trials`, nor
  when the time left is shorter than the trials so far took on average;
  and a running trial stops at the deadline (`StopAtDeadline`, checked
  after every batch). A stopped trial is recorded, not scored. So the
  search ends at the latest one training batch after the deadline (or one
  eval pass, for a trial that finished its steps just before it). Only
  the one-off start cannot be cut: a budget shorter than the warm-up
  (building and tracing the first model, and Keras' autograph conversion
  in a new process) overruns by it.
- **A failed trial is recorded, not fatal.** Its error is kept in the
  record and the search goes on; only when every trial failed does the
  Tuner fail (`pipeline/components/budgeted_tuner.py`).

Each trial trains `steps_per_trial` steps (fewer than the Trainer's) and is
scored once, on the same eval rows for every trial: the Trainer's
`eval_steps` batches of the configured global batch size.

The family searched is the one that trains (`ModelConfig.family`): the
DNN's settings for `dnn` and for `auto` (whose trees keep YDF's defaults,
which are robust where a network's are not), the gradient-boosted trees'
for `gbt` (`GbtTuner`). A trees trial grows its forest to the end (early
stopping included) and is scored with the same eval metric; YDF stops
growing trees at the deadline (`maximum_training_duration_seconds`), and
such a trial is recorded as stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Mapping
from typing import Optional
from typing import Set

from absl import logging
import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer import fn_args_utils
from tfx.components.tuner import component as tuner_component

from models import data_input
from models import features
from models import gbt
from models import hyperparameters as hp_lib
from models import keras_choice
from models import model as model_lib
from models import model_config as model_config_lib
from models import train as train_lib

# The eval-split metric each task is tuned on, and which way is better:
# the gate's primary metric (R-squared ranks as RMSE does on fixed rows).
# Not the loss: it includes the L2 penalty, which would favour small L2.
OBJECTIVES = {
    features.BINARY: ('auc', 'max'),
    features.MULTICLASS: ('accuracy', 'max'),
    features.REGRESSION: ('rmse', 'min'),
}
PROJECT_NAME = 'search'


def objective_for(task: str) -> keras_tuner.Objective:
  """KerasTuner's objective for a task: its metric on the eval split."""
  metric, direction = OBJECTIVES[task]
  return keras_tuner.Objective(f'val_{metric}', direction)


def _with(choices, default) -> List:
  return sorted(set(choices) | {default})


def gbt_search_space(defaults: Mapping[str, Any]
                     ) -> keras_tuner.HyperParameters:
  """The trees' settings searched, each with its configured value as default.

  Args:
    defaults: `hyperparameters.gbt_default_values(...)`.
  """
  space = keras_tuner.HyperParameters()
  space.Choice(hp_lib.NUM_TREES, _with(hp_lib.NUM_TREES_CHOICES,
                                       defaults[hp_lib.NUM_TREES]),
               default=defaults[hp_lib.NUM_TREES])
  space.Choice(hp_lib.MAX_DEPTH, _with(hp_lib.MAX_DEPTH_CHOICES,
                                       defaults[hp_lib.MAX_DEPTH]),
               default=defaults[hp_lib.MAX_DEPTH])
  low, high = hp_lib.SHRINKAGE_RANGE
  rate = defaults[hp_lib.SHRINKAGE]
  space.Float(hp_lib.SHRINKAGE, min(low, rate), max(high, rate),
              sampling='log', default=rate)
  space.Choice(hp_lib.MIN_EXAMPLES, _with(hp_lib.MIN_EXAMPLES_CHOICES,
                                          defaults[hp_lib.MIN_EXAMPLES]),
               default=defaults[hp_lib.MIN_EXAMPLES])
  space.Choice(hp_lib.SUBSAMPLE, _with(hp_lib.SUBSAMPLE_CHOICES,
                                       defaults[hp_lib.SUBSAMPLE]),
               default=defaults[hp_lib.SUBSAMPLE])
  return space


def search_space(defaults: Mapping[str, Any]) -> keras_tuner.HyperParameters:
  """The settings searched, each with its configured value as default.

  Args:
    defaults: `hyperparameters.default_values(...)`.
  """
  space = keras_tuner.HyperParameters()
  units = [hp_lib.units_text(u) for u in hp_lib.HIDDEN_UNITS_CHOICES]
  if defaults[hp_lib.HIDDEN_UNITS] not in units:
    units.append(defaults[hp_lib.HIDDEN_UNITS])
  space.Choice(hp_lib.HIDDEN_UNITS, units,
               default=defaults[hp_lib.HIDDEN_UNITS])
  space.Choice(hp_lib.DROPOUT, _with(hp_lib.DROPOUT_CHOICES,
                                     defaults[hp_lib.DROPOUT]),
               default=defaults[hp_lib.DROPOUT])
  low, high = hp_lib.LEARNING_RATE_RANGE
  rate = defaults[hp_lib.LEARNING_RATE]
  space.Float(hp_lib.LEARNING_RATE, min(low, rate), max(high, rate),
              sampling='log', default=rate)
  space.Choice(hp_lib.L2, _with(hp_lib.L2_CHOICES, defaults[hp_lib.L2]),
               default=defaults[hp_lib.L2])
  space.Choice(hp_lib.BATCH_SIZE, _with(hp_lib.BATCH_SIZE_CHOICES,
                                        defaults[hp_lib.BATCH_SIZE]),
               default=defaults[hp_lib.BATCH_SIZE])
  return space


class Deadline:
  """The end of the time budget, on a clock (monotonic; tests inject one)."""

  def __init__(self, seconds: float,
               clock: Callable[[], float] = time.monotonic):
    self.seconds = seconds
    self.clock = clock
    self.start = clock()

  def elapsed(self) -> float:
    return self.clock() - self.start

  def remaining(self) -> float:
    return self.seconds - self.elapsed()

  def passed(self) -> bool:
    return self.remaining() <= 0


class StopAtDeadline(tf.keras.callbacks.Callback):
  """Stops training at the deadline, checked after every batch.

  Keras looks at `stop_training` after a batch, so a fit that starts past
  the deadline still takes one.
  """

  def __init__(self, deadline: Deadline):
    super().__init__()
    self.deadline = deadline
    self.reached = False

  def _check(self) -> None:
    if not self.reached and self.deadline.passed():
      self.reached = True
    if self.reached:
      self.model.stop_training = True

  def on_train_begin(self, logs=None):
    del logs  # Unused.
    self._check()

  def on_train_batch_end(self, batch, logs=None):
    del batch, logs  # Unused.
    self._check()


class BudgetedOracle(keras_tuner.Oracle):
  """Random search that starts with the defaults and keeps the deadline.

  Each later trial draws every setting from one seeded random stream
  (KerasTuner's random search seeds a new generator per draw with
  consecutive integers, whose first values can cluster: with seed 1 its
  first four learning rates all fell within 2.3e-4 to 3.3e-4), and never
  repeats a trial.

  Attributes:
    stop_reason: Set when the oracle itself ended the search (time budget
      or an exhausted space); None while it goes on, and when the trial
      budget ended it (KerasTuner checks that before asking).
    trial_seconds: Durations of the trials so far (the tuner adds them):
      the next trial starts only if the time left is at least their mean.
  """

  # Draws that may repeat an earlier trial before the space counts as
  # exhausted.
  MAX_DRAWS = 100

  def __init__(self, objective: keras_tuner.Objective, max_trials: int,
               space: keras_tuner.HyperParameters, deadline: Deadline,
               seed: int):
    super().__init__(
        objective=objective, max_trials=max_trials, hyperparameters=space,
        # KerasTuner takes a seed of 0 for none and draws a random one.
        seed=seed + 1, allow_new_entries=False, tune_new_entries=False,
        max_retries_per_trial=0,
        # Failures are recorded and the search goes on; the Tuner fails
        # only when every trial failed (budgeted_tuner.Executor).
        max_consecutive_failed_trials=max_trials + 1)
    self.deadline = deadline
    self.stop_reason: Optional[str] = None
    self.trial_seconds: List[float] = []
    self._random = random.Random(seed)
    self._drawn: Set[str] = set()

  def _new_values(self) -> Optional[Dict[str, Any]]:
    """Values no trial had, or None when MAX_DRAWS draws all repeated."""
    for _ in range(self.MAX_DRAWS):
      values = {hp.name: hp.prob_to_value(self._random.random())
                for hp in self.hyperparameters.space}
      key = json.dumps(values, sort_keys=True)
      if key not in self._drawn:
        self._drawn.add(key)
        return values
    return None

  def populate_space(self, trial_id):
    del trial_id  # Unused.
    status = keras_tuner.engine.trial.TrialStatus
    expected = (sum(self.trial_seconds) / len(self.trial_seconds)
                if self.trial_seconds else 0.0)
    if self.deadline.passed() or self.deadline.remaining() < expected:
      self.stop_reason = hp_lib.STOP_TIME
      return {'status': status.STOPPED, 'values': None}
    if not self.start_order:
      # The first trial: the configured settings.
      values = self.get_space().values
      self._drawn.add(json.dumps(values, sort_keys=True))
    else:
      values = self._new_values()
      if values is None:
        self.stop_reason = hp_lib.STOP_EXHAUSTED
        return {'status': status.STOPPED, 'values': None}
    return {'status': status.RUNNING, 'values': values}


@dataclasses.dataclass(frozen=True)
class TrialData:
  """What every trial trains and is scored on.

  Attributes:
    dense: Float inputs of the model.
    categorical: Integer inputs and their cardinalities.
    head: The task's head.
    train: Global batch size -> repeated, shuffled training batches.
    eval: () -> the eval batches, finite and the same for every trial.
  """
  dense: List[str]
  categorical: Dict[str, int]
  head: model_lib.Head
  train: Callable[[int], tf.data.Dataset]
  eval: Callable[[], tf.data.Dataset]


class TrialStoppedError(keras_tuner.errors.FailedTrialError):
  """A trial cut at the deadline: recorded as stopped, never the best."""


class BudgetedTuner(keras_tuner.engine.base_tuner.BaseTuner):
  """Trains each trial's model for a fixed number of steps, then scores it.

  `search()` (called by TFX's Tuner executor) ends within the trial and the
  time budget; `search_record()` then tells what happened.
  """

  def __init__(self, oracle: BudgetedOracle, data: TrialData,
               model: model_config_lib.ModelConfig, per_replica_batch_size: int,
               steps: int, seed: int,
               strategy: Optional[tf.distribute.Strategy] = None,
               directory: Optional[str] = None):
    self.data = data
    self.base_model = model
    self.base_batch = per_replica_batch_size
    self.steps = steps
    self.seed = seed
    self.strategy = strategy or tf.distribute.get_strategy()
    self.defaults = hp_lib.default_values(model, per_replica_batch_size)
    self._started: Dict[str, float] = {}
    self._steps_taken: Dict[str, int] = {}
    self._stopped: Dict[str, str] = {}
    self._trials: List[hp_lib.Trial] = []
    self._ended_at: Optional[float] = None
    self._first_trial_at: Optional[float] = None
    super().__init__(oracle=oracle, directory=directory,
                     project_name=PROJECT_NAME, overwrite=True)

  @property
  def deadline(self) -> Deadline:
    return self.oracle.deadline

  def run_trial(self, trial, *fit_args, **fit_kwargs):
    del fit_args, fit_kwargs  # Everything comes from `data`.
    model_config, batch = hp_lib.apply(trial.hyperparameters.values,
                                       self.base_model, self.base_batch)
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(self.seed)
    with self.strategy.scope():
      model = model_lib.build_model(self.data.dense, self.data.categorical,
                                    model_config, self.data.head)
    stopper = StopAtDeadline(self.deadline)
    global_batch = batch * self.strategy.num_replicas_in_sync
    train_lib.fit_exact_steps(model, self.data.train(global_batch),
                              self.steps, callbacks=[stopper], verbose=0)
    taken = int(model.optimizer.iterations.numpy())
    self._steps_taken[trial.trial_id] = taken
    if stopper.reached:
      # Even after all its steps: scoring it would overrun the budget.
      reason = (f'stopped at the time budget ({self.deadline.seconds:g} s) '
                f'after {taken} of {self.steps} steps')
      self._stopped[trial.trial_id] = reason
      raise TrialStoppedError(reason)
    if taken < self.steps:
      raise keras_tuner.errors.FailedTrialError(
          f'trained {taken} of {self.steps} steps: the data ran out')
    metric = self.oracle.objective.name[len('val_'):]
    results = model.evaluate(self.data.eval(), verbose=0, return_dict=True)
    score = float(results[metric])
    if not math.isfinite(score):
      raise keras_tuner.errors.FailedTrialError(
          f'eval {metric} is {score} (the loss diverged?)')
    return {self.oracle.objective.name: score}

  def save_model(self, trial_id, model, step=0):
    del trial_id, model, step  # The Trainer trains the chosen settings.

  def load_model(self, trial):
    raise NotImplementedError('Trials keep no models; the Trainer trains the '
                              'best settings.')

  def on_trial_begin(self, trial):
    super().on_trial_begin(trial)
    self._started[trial.trial_id] = self.deadline.clock()
    if self._first_trial_at is None:
      self._first_trial_at = self._started[trial.trial_id]

  def on_trial_end(self, trial):
    super().on_trial_end(trial)  # The oracle scores it.
    seconds = self.deadline.clock() - self._started[trial.trial_id]
    self.oracle.trial_seconds.append(seconds)
    ended = self.oracle.get_trial(trial.trial_id)
    status = keras_tuner.engine.trial.TrialStatus
    message = ''
    if ended.status == status.COMPLETED:
      state = hp_lib.COMPLETED
    elif trial.trial_id in self._stopped:
      state, message = hp_lib.STOPPED, self._stopped[trial.trial_id]
    else:
      state = hp_lib.FAILED
      lines = (ended.message or 'no message').strip().splitlines()
      message = lines[-1] if lines else 'no message'
    values = dict(ended.hyperparameters.values)
    record = hp_lib.Trial(
        trial_id=trial.trial_id, values=values, status=state,
        score=float(ended.score) if state == hp_lib.COMPLETED else None,
        seconds=round(seconds, 3),
        steps=self._steps_taken.get(trial.trial_id, 0),
        is_defaults=values == self.defaults, message=message)
    self._trials.append(record)
    logging.info('Tuning trial %s %s in %.1f s%s: %s%s', record.trial_id,
                 record.status, record.seconds,
                 f', {self.oracle.objective.name} {record.score:.4f}'
                 if record.score is not None else '',
                 hp_lib.describe(values),
                 f' ({message})' if message else '')

  def on_search_begin(self):
    super().on_search_begin()
    if not self.deadline.passed():
      self._warm_up()

  def _warm_up(self) -> None:
    """One step and one eval batch of the default model, in no trial.

    The first fit in a process converts Keras' training and eval code with
    autograph: a one-off cost of many seconds (over a minute on a busy
    2-core machine). Paid here, it does not inflate trial 0's time, from
    which the oracle judges whether a further trial fits in the budget.
    It cannot be interrupted: a budget shorter than it overruns by it, as
    it would by trial 0's first batch without it.
    """
    started = self.deadline.clock()
    try:
      tf.keras.utils.set_random_seed(self.seed)
      with self.strategy.scope():
        model = model_lib.build_model(self.data.dense, self.data.categorical,
                                      self.base_model, self.data.head)
      # One eval batch for both: no shuffle buffer to fill.
      batch = self.data.eval().take(1)
      model.fit(batch, verbose=0)
      model.evaluate(batch, verbose=0)
    except Exception as e:
      # The trials meet the same error and record it.
      logging.warning('Tuning warm-up failed (%s: %s); the trials will '
                      'report it.', type(e).__name__, e)
    tf.keras.backend.clear_session()
    logging.info('Tuning warm-up: %.1f s', self.deadline.clock() - started)

  def on_search_end(self):
    super().on_search_end()
    self._ended_at = self.deadline.clock()

  def search_record(self) -> hp_lib.SearchRecord:
    """What the search did: its trials, why it stopped, what it chose."""
    reason = self.oracle.stop_reason or hp_lib.STOP_TRIALS
    metric, direction = (self.oracle.objective.name[len('val_'):],
                         self.oracle.objective.direction)
    end = self._ended_at if self._ended_at is not None else (
        self.deadline.clock())
    return hp_lib.SearchRecord(
        metric=metric, direction=direction,
        max_trials=self.oracle.max_trials,
        time_budget_s=self.deadline.seconds, steps_per_trial=self.steps,
        default_values=dict(self.defaults), trials=tuple(self._trials),
        stop_reason=reason, seconds=round(end - self.deadline.start, 3),
        setup_seconds=round((self._first_trial_at if self._first_trial_at
                             is not None else end) - self.deadline.start, 3))

  def get_best_hyperparameters(self, num_trials=1):
    """The chosen settings first: the best completed trial's, else the
    defaults (TFX's executor writes the first as best_hyperparameters)."""
    chosen = self.oracle.get_space()
    chosen.values = self.search_record().chosen_values
    others = [hp for hp in super().get_best_hyperparameters(num_trials)
              if hp.values != chosen.values]
    return ([chosen] + others)[:num_trials]


@dataclasses.dataclass(frozen=True)
class GbtTrialData:
  """What every trees trial trains and is scored on.

  Attributes:
    dense: Float inputs.
    categorical: Integer-id inputs and their cardinalities.
    spec: The dataset (its task and classes).
    train: () -> one pass over the training rows, as `gbt.training_dataset`.
    eval: () -> the eval batches, finite and the same for every trial.
  """
  dense: List[str]
  categorical: Dict[str, int]
  spec: features.DatasetSpec
  train: Callable[[], tf.data.Dataset]
  eval: Callable[[], tf.data.Dataset]


def _eval_metric(task: str) -> tf.keras.metrics.Metric:
  """The Keras metric the DNN's trials are scored with (`OBJECTIVES`)."""
  if task == features.BINARY:
    return tf.keras.metrics.AUC(name='auc')
  if task == features.MULTICLASS:
    return tf.keras.metrics.SparseCategoricalAccuracy(name='accuracy')
  return tf.keras.metrics.RootMeanSquaredError(name='rmse')


class GbtTuner(BudgetedTuner):
  """The budgeted search over the gradient-boosted trees' settings.

  Same oracle, budgets, record and verdict as the DNN's search; a trial
  grows a forest (`models/gbt.py`) instead of fitting a network for a fixed
  number of steps, and its `steps` in the record are the trees grown.
  """

  def __init__(self, oracle: BudgetedOracle, data: GbtTrialData,
               model: model_config_lib.ModelConfig, per_replica_batch_size: int,
               seed: int, directory: Optional[str] = None):
    super().__init__(oracle, data, model, per_replica_batch_size,
                     steps=model.gbt.num_trees, seed=seed,
                     directory=directory)
    self.defaults = hp_lib.gbt_default_values(model)

  def run_trial(self, trial, *fit_args, **fit_kwargs):
    del fit_args, fit_kwargs  # Everything comes from `data`.
    model_config, _ = hp_lib.apply(trial.hyperparameters.values,
                                   self.base_model, self.base_batch)
    data = self.data
    # YDF stops growing trees at the deadline; at least a second, so that
    # a trial started just before it still returns a forest.
    forest = gbt.build_forest(
        model_config.gbt, data.spec.task, data.dense, data.categorical,
        seed=self.seed, max_seconds=max(self.deadline.remaining(), 1.0))
    forest.fit(data.train())
    grown = gbt.forest_info(forest)['trees']
    self._steps_taken[trial.trial_id] = grown
    if self.deadline.passed():
      reason = (f'stopped at the time budget ({self.deadline.seconds:g} s) '
                f'with {grown} trees')
      self._stopped[trial.trial_id] = reason
      raise TrialStoppedError(reason)
    model = gbt.serving_model(forest, data.dense, data.categorical,
                              data.spec, model_config.drop_all_features)
    metric = _eval_metric(data.spec.task)
    names = set(model.input_names)
    for batch, label in data.eval():
      metric.update_state(label, model({k: v for k, v in batch.items()
                                        if k in names}, training=False))
    score = float(metric.result().numpy())
    if not math.isfinite(score):
      raise keras_tuner.errors.FailedTrialError(
          f'eval {metric.name} is {score}')
    return {self.oracle.objective.name: score}

  def _warm_up(self) -> None:
    """Nothing to warm up: no Keras training loop is traced."""


def build_tuner(data: TrialData, task: str, model: model_config_lib.ModelConfig,
                per_replica_batch_size: int, *, max_trials: int,
                steps_per_trial: int, deadline: Deadline, seed: int,
                directory: str,
                strategy: Optional[tf.distribute.Strategy] = None
                ) -> BudgetedTuner:
  """A tuner over `data`, its first trial the given settings."""
  defaults = hp_lib.default_values(model, per_replica_batch_size)
  oracle = BudgetedOracle(objective_for(task), max_trials,
                          search_space(defaults), deadline, seed)
  return BudgetedTuner(oracle, data, model, per_replica_batch_size,
                       steps=steps_per_trial, seed=seed, strategy=strategy,
                       directory=directory)


def build_gbt_tuner(data: GbtTrialData, model: model_config_lib.ModelConfig,
                    per_replica_batch_size: int, *, max_trials: int,
                    deadline: Deadline, seed: int, directory: str
                    ) -> GbtTuner:
  """A search over the trees' settings, its first trial those of `model`."""
  oracle = BudgetedOracle(objective_for(data.spec.task), max_trials,
                          gbt_search_space(hp_lib.gbt_default_values(model)),
                          deadline, seed)
  return GbtTuner(oracle, data, model, per_replica_batch_size, seed=seed,
                  directory=directory)


def tuner_fn(fn_args: fn_args_utils.FnArgs) -> tuner_component.TunerFnResult:
  """Builds the search on Transform's train and eval splits.

  `fn_args.custom_config` holds the dataset spec, the Trainer's settings
  (the defaults) and the budgets (`TuningConfig.tuner_custom_config`);
  `fn_args.train_steps` is the steps per trial.
  """
  tuning = fn_args.custom_config['tuning']
  # The budget covers the setup below too.
  deadline = Deadline(float(tuning['time_budget_s']))
  keras_choice.require_legacy_keras()
  spec = features.DatasetSpec.from_dict(fn_args.custom_config['dataset'])
  training = fn_args.custom_config['training']
  model = model_config_lib.ModelConfig.from_dict(training['model'])
  per_replica_batch = int(training['per_replica_batch_size'])
  seed = int(training['seed'])
  tf.keras.utils.set_random_seed(seed)
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
  strategy = train_lib.distribution_strategy()
  dense, categorical = train_lib.model_inputs(tf_transform_output, spec)
  head = train_lib.model_head(spec, fn_args, tf_transform_output)
  label = spec.transformed_label_key
  eval_batch = per_replica_batch * strategy.num_replicas_in_sync
  eval_steps = fn_args.eval_steps

  def train(global_batch: int) -> tf.data.Dataset:
    return data_input.input_fn(fn_args.train_files, fn_args.data_accessor,
                               tf_transform_output, label, global_batch)

  def evaluate() -> tf.data.Dataset:
    dataset = data_input.input_fn(
        fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
        label, eval_batch, shuffle=False, num_epochs=1)
    return dataset.take(eval_steps) if eval_steps else dataset

  if model.family == model_config_lib.GBT:
    inputs = sorted(dense) + sorted(categorical)

    def train_once() -> tf.data.Dataset:
      return gbt.training_dataset(fn_args.train_files, fn_args.data_accessor,
                                  tf_transform_output, spec, inputs,
                                  model.drop_all_features)

    tuner = build_gbt_tuner(
        GbtTrialData(dense, categorical, spec, train_once, evaluate), model,
        per_replica_batch, max_trials=int(tuning['max_trials']),
        deadline=deadline, seed=seed, directory=fn_args.working_dir)
    logging.info('Tuning the gradient-boosted trees: up to %d trials within '
                 '%g s, on eval %s', tuning['max_trials'], deadline.seconds,
                 tuner.oracle.objective.name)
  else:
    tuner = build_tuner(
        TrialData(dense, categorical, head, train, evaluate), spec.task,
        model, per_replica_batch, max_trials=int(tuning['max_trials']),
        steps_per_trial=int(fn_args.train_steps), deadline=deadline,
        seed=seed, directory=fn_args.working_dir, strategy=strategy)
    logging.info('Tuning: up to %d trials of %d steps within %g s, on eval '
                 '%s', tuning['max_trials'], fn_args.train_steps,
                 deadline.seconds, tuner.oracle.objective.name)
  # verbose 0: KerasTuner's own per-trial display; the record says more.
  return tuner_component.TunerFnResult(tuner=tuner,
                                       fit_kwargs={'verbose': 0})
