"""Gradient-boosted trees on the Transform output: TF Decision Forests.

The second model family (`model: gbt`, or `auto`, see
`models/model_config.py`). It trains TF-DF's `GradientBoostedTreesModel`,
a wrapper of the Yggdrasil Decision Forests (YDF) C++ library, on the same
transformed features as the DNN (`train.model_inputs`):

* dense floats (z-scored numbers, log-scaled amounts, missing-value flags,
  sin/cos of cyclical columns) as NUMERICAL features. Trees split on
  thresholds, so the monotone rescaling Transform applied changes nothing
  for them, and a missing number (imputed with the mean) is told apart by
  its `_missing` flag;
* integer ids (vocabulary ids of categorical columns, quantile buckets) as
  CATEGORICAL features: YDF splits them into sets of ids, which is what a
  category means, and learns nothing from the ids' order.

YDF reads the whole training split into memory once (a tabular dataset
that Transform could write fits), holds out `validation_ratio` of it, and
stops adding trees when the loss on those rows stops improving. The eval
split is not used for that: it stays unseen, so that `--model auto` can
compare the two families on it fairly (`models/model_choice.py`).

Two templates. YDF's `benchmark_rank1@v1` template (the default, see
`model_config.GbtConfig`) ranked first over YDF's benchmark, and beat
YDF's plain defaults on 6 of 8 tables in a direct YDF experiment, but lost
clearly on one (panel
data with a household id). So two forests grow, one per template, with
the same settings and seed, and `keep_best_template` keeps the one with
the better proper score on the eval split (the score the family choice
uses). A template named in the dataset config, or settings `--tune`
chose, grow alone.

The refit. Early stopping and the choices on the eval split cost rows:
the first forest learns from the train split less YDF's held-out share,
72% of the pipeline's rows with the default 8/1/1 split and a tenth held
out. Once the eval split has chosen the template, the family and the
decision threshold, it has done its job, so `refit` grows the kept forest
again on the train and eval splits together, with nothing held out and as
many trees as early stopping kept (90% of the rows). The refit forest is
the one exported (alone, or in the mean with the DNN); the Evaluator's
test split stays unseen by every forest, so its verdict stays fair.

The trained forest is wrapped in a Keras functional model with one input
per feature, like the DNN, so everything downstream is shared: the export
signatures (`models/signatures.py`, the Transform graph inside, raw
serialized `tf.Example`s in), the eval-split predictions
(`models/eval_split.py`) and the decision threshold. A process that loads
the SavedModel must have TF-DF's ops registered (`models/forest_ops.py`).

Training runs in C++ and releases Python's interpreter lock, so
`Background` trains the trees in a thread while the caller trains the DNN.
The refit runs after the DNN has finished, in the Trainer's thread.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import io
import math
import os
import time
from typing import Any
from typing import Callable
from typing import Dict
from typing import Iterable
from typing import List
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

from absl import logging
import tensorflow as tf
from tensorflow.python.autograph.core import config as autograph_config
import tensorflow_decision_forests as tfdf
import tensorflow_transform as tft
from tfx.components.trainer import fn_args_utils

from models import data_input
from models import eval_split
from models import features
from models import model_choice
from models import model_config as model_config_lib

# Rows per batch while YDF reads the training split: it reads the split
# once, into memory, so larger batches only mean fewer TensorFlow steps.
READ_BATCH = 8192
# TensorBoard: the forest's training curves, beside the DNN's logs.
TENSORBOARD_SUBDIR = 'gbt'
# The Keras model's name, and so the prefix of its layers in the SavedModel.
FOREST_NAME = 'gradient_boosted_trees'


# TF-DF's graph-mode internals (input normalization, the inference op's
# wrappers): AutoGraph need not rewrite them (`skip_autograph_of_forests`).
_GRAPH_MODE_MODULES = ('tensorflow_decision_forests.tensorflow',
                       'tensorflow_decision_forests.keras.core_inference')


def skip_autograph_of_forests() -> None:
  """AutoGraph leaves TF-DF's graph-mode internals as they are.

  The first `fit` in a process otherwise rewrites the Python source of
  every TF-DF function it reaches: about 9 s of CPU on an idle core, for a
  forest that then trains in a fraction of a second. These modules are
  written for graph mode (TF-DF runs them under TF1 too); TF-DF's Keras
  model (`keras.core`), whose training loop iterates a dataset inside a
  `tf.function`, is still converted. Measured: 8.9 s -> 5.3 s of CPU for
  the first fit, the same predictions. Idempotent, like
  `keras_choice.skip_autograph_of_keras`.
  """
  for module in _GRAPH_MODE_MODULES:
    rules = autograph_config.CONVERSION_RULES
    if not any(isinstance(rule, autograph_config.DoNotConvert) and
               rule.matches(module) for rule in rules):
      autograph_config.CONVERSION_RULES = (
          autograph_config.DoNotConvert(module), *rules)


def _task(task: str) -> Any:
  if task == features.REGRESSION:
    return tfdf.keras.Task.REGRESSION
  return tfdf.keras.Task.CLASSIFICATION


def feature_usages(dense: Sequence[str], categorical: Mapping[str, int]
                   ) -> List[Any]:
  """YDF's semantics of the transformed features (module docstring)."""
  numerical = tfdf.keras.FeatureSemantic.NUMERICAL
  categorical_semantic = tfdf.keras.FeatureSemantic.CATEGORICAL
  return ([tfdf.keras.FeatureUsage(name, semantic=numerical)
           for name in sorted(dense)] +
          [tfdf.keras.FeatureUsage(name, semantic=categorical_semantic)
           for name in sorted(categorical)])


def build_forest(config: model_config_lib.GbtConfig, task: str,
                 dense: Sequence[str], categorical: Mapping[str, int], *,
                 seed: int, num_threads: Optional[int] = None,
                 max_seconds: Optional[float] = None) -> Any:
  """An untrained `GradientBoostedTreesModel` of the given settings.

  Args:
    config: The settings (`--tune` may have chosen them).
    task: One of `features.TASKS`.
    dense: Float features.
    categorical: Integer-id features (their cardinalities are not needed:
      YDF reads the ids it meets).
    seed: YDF's random seed: the same data and seed give the same trees.
    num_threads: YDF's training threads; None for one per core.
    max_seconds: Stop growing trees after this long (the Tuner's deadline);
      None for no limit.
  """
  if not dense and not categorical:
    raise ValueError('The gradient-boosted trees need at least one input '
                     'feature.')
  skip_autograph_of_forests()
  # TF-DF prints what it resolves (the hyper-parameter template) to stdout
  # as well as to absl's log: the log keeps it, the terminal stays the
  # project's.
  with contextlib.redirect_stdout(io.StringIO()):
    return tfdf.keras.GradientBoostedTreesModel(
        task=_task(task),
        features=feature_usages(dense, categorical),
        exclude_non_specified_features=True,
        num_trees=config.num_trees,
        max_depth=config.max_depth,
        shrinkage=config.shrinkage,
        min_examples=config.min_examples,
        subsample=config.subsample,
        validation_ratio=config.validation_ratio,
        hyperparameter_template=config.template or None,
        maximum_training_duration_seconds=(
            float(max_seconds) if max_seconds is not None else -1.0),
        random_seed=seed,
        num_threads=num_threads,
        verbose=0,
        name=FOREST_NAME)


def _zero(tensor: tf.Tensor) -> tf.Tensor:
  return tensor * tf.zeros_like(tensor)


def training_dataset(files: List[str],
                     data_accessor: fn_args_utils.DataAccessor,
                     tf_transform_output: tft.TFTransformOutput,
                     spec: features.DatasetSpec, inputs: Sequence[str],
                     drop_all_features: bool = False) -> tf.data.Dataset:
  """One pass over a transformed split: (model inputs, label) batches.

  Only the model's inputs are kept. With `drop_all_features` they are all
  zero, so the trees can learn nothing but the base rate (the gate's
  self-test, as `ModelConfig.drop_all_features` does for the DNN).
  """
  label_key = spec.transformed_label_key
  names = tuple(inputs)

  def select(batch: Dict[str, tf.Tensor], label: tf.Tensor):
    # [batch, 1], as the serving model's inputs are: TFXIO gives some
    # features as [batch] and others as [batch, 1].
    kept = {name: tf.reshape(batch[name], [-1, 1]) for name in names}
    if drop_all_features:
      kept = {name: _zero(value) for name, value in kept.items()}
    return kept, tf.reshape(label, [-1])

  dataset = data_input.input_fn(files, data_accessor, tf_transform_output,
                                label_key, READ_BATCH, shuffle=False,
                                num_epochs=1)
  return dataset.map(select)


class _PadScores(tf.keras.layers.Layer):
  """Class probabilities with `width` columns, in the contract's order.

  YDF learns the classes up to the highest one it meets in the training
  rows. A class above it (possible for a rare last class) gets probability
  0, so the scores keep the contract's width and order; and when only
  classes 0 and 1 occur, YDF answers as a binary model, P(class 1) alone.
  """

  def __init__(self, width: int, **kwargs):
    super().__init__(**kwargs)
    self.width = width

  def call(self, scores: tf.Tensor) -> tf.Tensor:
    if scores.shape[-1] == 1:
      scores = tf.concat([1.0 - scores, scores], axis=-1)
    missing = self.width - tf.shape(scores)[1]
    return tf.pad(scores, [[0, 0], [0, tf.maximum(missing, 0)]])

  def get_config(self) -> Dict[str, Any]:
    return {**super().get_config(), 'width': self.width}


def serving_model(forest: Any, dense: Sequence[str],
                  categorical: Mapping[str, int], spec: features.DatasetSpec,
                  drop_all_features: bool = False) -> tf.keras.Model:
  """The trained forest as a Keras model with one named input per feature.

  The same interface as the DNN (`models/model.py`): inputs of shape
  [batch, 1], float32 or int64, and P(positive) [batch, 1] (binary), class
  probabilities [batch, classes] (multiclass) or the value [batch, 1]
  (regression) out.
  """
  inputs: Dict[str, tf.keras.Input] = {}
  for name in sorted(dense):
    inputs[name] = tf.keras.Input(shape=(1,), name=name, dtype=tf.float32)
  for name in sorted(categorical):
    inputs[name] = tf.keras.Input(shape=(1,), name=name, dtype=tf.int64)
  values = inputs
  if drop_all_features:
    values = {name: tf.keras.layers.Lambda(_zero, name=f'{name}_dropped')(x)
              for name, x in inputs.items()}
  output = forest(values)
  if spec.task == features.MULTICLASS:
    output = _PadScores(len(spec.classes), name='scores')(output)
  return tf.keras.Model(inputs=inputs, outputs=output, name='gbt')


def mean_model(models: Sequence[tf.keras.Model]) -> tf.keras.Model:
  """A Keras model answering the mean of `models`' predictions.

  For `--model auto` (models/model_choice.py): the DNN and the trees take
  the same named inputs and answer the same output (P(positive), class
  probabilities or the value), so their mean is one more model of the
  same interface, exported with the same signatures.
  """
  inputs: Dict[str, tf.keras.Input] = {}
  for model in models:
    for name, tensor in zip(model.input_names, model.inputs, strict=True):
      inputs.setdefault(name, tf.keras.Input(shape=(1,), name=name,
                                             dtype=tensor.dtype))
  outputs = [model({name: inputs[name] for name in model.input_names})
             for model in models]
  return tf.keras.Model(inputs=inputs, name='mean',
                        outputs=tf.keras.layers.Average(name='mean')(outputs))


@dataclasses.dataclass
class Trained:
  """A trained forest, ready to predict and export.

  Attributes:
    model: The Keras model of `serving_model`.
    forest: The TF-DF model inside it.
    template: The YDF template it grew with ('' for YDF's plain defaults).
    info: For training_info.json: the settings, the trees grown, the rows
      read, YDF's validation loss, the wall time.
  """
  model: tf.keras.Model
  forest: Any
  template: str
  info: Dict[str, Any]


def forest_info(forest: Any) -> Dict[str, Any]:
  """Trees grown, rows read (YDF's validation rows included) and the loss
  on YDF's own validation rows."""
  inspector = forest.make_inspector()
  logs = inspector.training_logs()
  loss = logs[-1].evaluation.loss if logs else None
  return {'trees': int(inspector.num_trees()),
          'rows': int(inspector.dataspec.created_num_rows),
          'validation_loss': (float(loss) if loss is not None else None)}


def iterations(forest: Any) -> int:
  """Boosting iterations the forest kept, at least 1.

  A multiclass forest grows one tree per class at each iteration, and
  `num_trees` counts iterations, so a refit that asks for as many trees as
  the first fit kept must ask for its trees over the trees per iteration.
  """
  inspector = forest.make_inspector()
  return max(1, int(inspector.num_trees()) //
             max(1, int(inspector.num_trees_per_iter)))


@dataclasses.dataclass(frozen=True)
class Setup:
  """What every forest of one Trainer run grows from.

  The forests of one run (one per template, then the refit) differ only in
  the template, the number of trees, the held-out share and the rows they
  read: everything else, the seed included, comes from here.

  Attributes:
    spec: The dataset (its task and classes).
    config: The trees' settings (`--tune` may have chosen them).
    dense: Float features (`train.model_inputs`).
    categorical: Integer-id features (`train.model_inputs`).
    seed: YDF's random seed.
    drop_all_features: Zero every input, so the trees learn the base rate
      alone (`ModelConfig.drop_all_features`, the gate's self-test).
    num_threads: YDF's training threads; None for one per core.
  """
  spec: features.DatasetSpec
  config: model_config_lib.GbtConfig
  dense: Sequence[str]
  categorical: Mapping[str, int]
  seed: int
  drop_all_features: bool = False
  num_threads: Optional[int] = None

  @property
  def inputs(self) -> List[str]:
    """The model's input names, as `training_dataset` keeps them."""
    return sorted(self.dense) + sorted(self.categorical)

  def build(self, config: model_config_lib.GbtConfig) -> Any:
    """An untrained, compiled forest of `config` on this run's features."""
    forest = build_forest(config, self.spec.task, self.dense,
                          self.categorical, seed=self.seed,
                          num_threads=self.num_threads)
    forest.compile()
    return forest

  def finish(self, template: str, forest: Any) -> Trained:
    """The fitted `forest` as a serving model, with what to record of it.

    Builds Keras objects: call it in the Trainer's thread only, so the
    DNN's layer names do not depend on which thread got there first.
    """
    model = serving_model(forest, self.dense, self.categorical, self.spec,
                          self.drop_all_features)
    info = {'settings': dataclasses.asdict(self.config),
            'threads': forest.num_threads, **forest_info(forest)}
    return Trained(model=model, forest=forest, template=template, info=info)


def start(setup: Setup, train: tf.data.Dataset) -> 'Background':
  """Starts growing one forest per template on the train rows, in a thread.

  `GbtConfig.templates` names them: `template` and, unless a template was
  named or tuned, the alternative (YDF's plain defaults). The caller may
  train the DNN meanwhile; `Background.result()` waits for the forests,
  and `keep_best_template` keeps one.

  Args:
    setup: The run's features, settings and seed.
    train: One pass over the train split (`training_dataset`).
  """
  forests = {template: setup.build(dataclasses.replace(setup.config,
                                                       template=template))
             for template in setup.config.templates}
  return Background(forests, train, setup.finish)


def keep_best_template(candidates: Sequence[Trained], task: str,
                       eval_dataset: Callable[[], Iterable[Tuple[Any, Any]]]
                       ) -> Trained:
  """The forest whose template scores best on the eval split.

  The same proper score as the choice of family (`eval_split.eval_score`),
  on the same rows, which no forest fitted or early-stopped on. A tie
  keeps the first template, the configured one; a forest that could not
  be scored (NaN) beats none. A single candidate is kept without reading
  the eval split. The kept forest's info records its template and, when
  there was a choice, every template's score.

  Args:
    candidates: The trained forests, `GbtConfig.templates`' order.
    task: One of `features.TASKS`.
    eval_dataset: Returns a fresh, finite pass over the transformed eval
      split, (features, label) batches.
  """
  if not candidates:
    raise ValueError('No forest was trained, so there is no template to '
                     'keep.')
  kept = candidates[0]
  scores: Dict[str, Optional[float]] = {}
  if len(candidates) > 1:
    values = {}
    for candidate in candidates:
      labels, predictions = eval_split.predict_eval_split(candidate.model,
                                                          eval_dataset())
      _, values[candidate.template], higher = eval_split.eval_score(
          task, labels, predictions)
    for candidate in candidates[1:]:
      if model_choice.better(values[candidate.template],
                             values[kept.template], higher):
        kept = candidate
    # JSON has no NaN: a forest that could not be scored is null.
    scores = {template: (value if math.isfinite(value) else None)
              for template, value in values.items()}
    logging.info('Gradient-boosted trees: kept template %r on the eval '
                 'split (%s)', kept.template, ', '.join(
                     f'{t!r} {v}' for t, v in scores.items()))
  kept.info['template'] = kept.template
  if scores:
    kept.info['templates'] = scores
  return kept


def refit_config(config: model_config_lib.GbtConfig, kept: Trained
                 ) -> model_config_lib.GbtConfig:
  """The settings of the refit of `kept`: its template, as many trees as
  its early stopping kept, and no rows held out (nothing to stop on)."""
  return dataclasses.replace(config, template=kept.template,
                             alternative_template=None,
                             num_trees=iterations(kept.forest),
                             validation_ratio=0.0)


def refit(setup: Setup, kept: Trained, rows: tf.data.Dataset) -> Trained:
  """Grows `kept`'s forest again on more rows: the train and eval splits.

  Why: the eval split has done its job once the template, the family and
  the decision threshold were chosen on it, and YDF held a tenth of the
  train split out for early stopping, so the first forest learned from 72%
  of the pipeline's rows. The refit learns from 90% with the number of
  trees early stopping found, the same template, settings and seed. The
  Evaluator's test split stays unseen, so its judgement of the pushed
  model is still a fair one.

  Runs in the calling thread (it builds Keras objects, see
  `Setup.finish`); the DNN has finished training by then.

  Args:
    setup: The run's features, settings and seed, as the first fit's.
    kept: The forest the eval split kept (`keep_best_template`).
    rows: One pass over the train and eval splits (`training_dataset`, so
      `drop_all_features` holds for the refit too).

  Returns:
    The refit forest; its info is `kept`'s, plus `refit`: the rows read,
    the trees grown and the seconds taken.
  """
  forest = setup.build(refit_config(setup.config, kept))
  started = time.monotonic()
  forest.fit(rows)
  seconds = time.monotonic() - started
  grown = setup.finish(kept.template, forest)
  done = {'rows': grown.info['rows'], 'trees': grown.info['trees'],
          'seconds': round(seconds, 3)}
  logging.info('Gradient-boosted trees refit on the train and eval splits: '
               '%d trees on %d rows in %.1f s (the first fit: %d trees on '
               '%d rows)', done['trees'], done['rows'], seconds,
               kept.info['trees'], kept.info['rows'])
  return Trained(model=grown.model, forest=forest, template=kept.template,
                 info={**kept.info, 'refit': done})


def write_curves(trained: Trained, model_run_dir: str) -> None:
  """The forest's training curves, for TensorBoard beside the DNN's."""
  if model_run_dir:
    trained.forest.make_inspector().export_to_tensorboard(
        os.path.join(model_run_dir, TENSORBOARD_SUBDIR))


class Background:
  """Fits forests in a thread, one after the other; `result()` waits for
  them, then finishes each.

  YDF trains in C++ without Python's interpreter lock, and TF-DF reads the
  training rows in one TensorFlow graph, so the trees grow on the cores
  the DNN's training leaves idle. The forests take turns rather than
  sharing those cores: each already uses every core it is given. An error
  in the thread is raised by `result()`.
  """

  def __init__(self, forests: Mapping[str, Any], dataset: tf.data.Dataset,
               finish: Callable[[str, Any], Trained]):
    """Starts fitting.

    Args:
      forests: Template -> an untrained, compiled forest.
      dataset: One pass over the training rows, read once per forest.
      finish: (template, fitted forest) -> `Trained`, in `result()`.
    """
    self._forests = dict(forests)
    self._finish = finish
    self._pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=1, thread_name_prefix='gbt')
    self._future = self._pool.submit(self._fit, dataset)

  def _fit(self, dataset: tf.data.Dataset) -> Dict[str, float]:
    seconds = {}
    for template, forest in self._forests.items():
      started = time.monotonic()
      forest.fit(dataset)
      seconds[template] = time.monotonic() - started
    return seconds

  def result(self) -> List[Trained]:
    """The fitted forests, in the order they were given."""
    try:
      seconds = self._future.result()
    finally:
      self._pool.shutdown(wait=True)
    trained = []
    for template, forest in self._forests.items():
      done = self._finish(template, forest)
      done.info['seconds'] = round(seconds[template], 3)
      logging.info('Gradient-boosted trees (template %r): %d trees in %.1f s '
                   '(%d threads), YDF validation loss %s', template,
                   done.info['trees'], seconds[template], done.info['threads'],
                   done.info['validation_loss'])
      trained.append(done)
    return trained
