"""Warm start: a new model begins with the weights of an earlier blessed one.

Copying a checkpoint by position is wrong as soon as the data changes:
`tft.compute_and_apply_vocabulary` orders ids by frequency, so a new span
gives a token another embedding row even when the vocabulary keeps its size,
and quantile buckets move with the data. So the weights are copied by layer
name and the embedding rows by what they mean:

* a vocabulary feature's row for token t is the previous model's row for t.
  A token the previous vocabulary lacked gets the row the previous model
  used for it, the out-of-vocabulary (OOV) bucket it hashed to (the same
  `StaticVocabularyTable` lookup tf.Transform does). The OOV rows stay
  those of the same hash buckets. The missing-value token
  (`features.MISSING_TOKEN`) is a token like any other. So the new model
  starts out answering exactly as the previous one did, for every token of
  its vocabulary;
* a bucketized feature's bucket takes the row of the previous bucket that
  holds its midpoint (from both transform graphs' quantile boundaries); the
  "missing" bucket stays the "missing" bucket;
* every other weight (the deep tower, the logit) is copied as it is.

It is all or nothing. The previous model must be compatible: the same task,
label and classes, the same features with the same treatment, the same OOV
and bucket counts, the same `drop_all_features`, and every weight of the new
model must exist in the previous one with the same shape once its rows are
mapped (same layer sizes; an embedding's width grows with its vocabulary, so
a vocabulary that grew or shrank past a width step does not fit). When any of
that fails, no weight is touched: the model trains from its fresh
initialization, and `Outcome.cold_because` says why, naming the feature,
layer or setting and the two values.

The caller (`models/train.py`) applies this before training, so a
checkpoint of a killed run (`models/checkpoints.py`) is restored over it:
resuming wins over warm start.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any
from typing import Dict
from typing import List
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

from absl import logging
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.core.protobuf import trackable_object_graph_pb2
import tensorflow_transform as tft
from tf_keras.protobuf import saved_metadata_pb2

from models import features
from models import model as model_lib
from models import model_choice
from models import model_config as model_config_lib
from models import serving_contract
from models import treatments

# Key of the warm start in the Trainer's custom_config['training'] (set by
# pipeline.definition.config.WarmStart) and in training_info.json.
KEY = 'warm_start'
EMBEDDING_SUFFIX = '_embedding'
WIDE_SUFFIX = '_wide'
# tf.Transform names the captured boundaries of the n-th tft.bucketize call
# of preprocessing_fn 'bucketize[_n]_apply_buckets_<id>'; preprocessing_fn
# bucketizes the columns of the BUCKETS treatments in the registry's order
# (`DatasetSpec.columns_with_output`).
_BUCKETIZE_ARG = re.compile(r'bucketize(?:_(\d+))?_apply_buckets_\d+')
_KERAS_METADATA = 'keras_metadata.pb'
_OBJECT_GRAPH_KEY = '_CHECKPOINTABLE_OBJECT_GRAPH'
_VARIABLE_VALUE = 'VARIABLE_VALUE'


class Incompatible(ValueError):
  """The previous model does not fit this one; the message says why."""


@dataclasses.dataclass(frozen=True)
class Source:
  """The model to start from, as the run-time resolved it.

  Attributes:
    model_uri: The blessed model's SavedModel folder; '' when there is none.
    transform_graph_uri: The Transform output it was trained with.
    run_id: The run that blessed it.
    span: The span it was trained on, if any.
    dataset: The dataset spec it was trained with.
    model: Its model settings.
    none_because: Why there is no model ('' when there is one).
  """
  model_uri: str = ''
  transform_graph_uri: str = ''
  run_id: str = ''
  span: Optional[int] = None
  dataset: Optional[features.DatasetSpec] = None
  model: Optional[model_config_lib.ModelConfig] = None
  none_because: str = ''

  @classmethod
  def from_dict(cls, values: Mapping[str, Any]) -> 'Source':
    dataset, model = values.get('dataset'), values.get('model')
    return cls(
        model_uri=values.get('model_uri') or '',
        transform_graph_uri=values.get('transform_graph_uri') or '',
        run_id=values.get('run_id') or '',
        span=values.get('span'),
        dataset=features.DatasetSpec.from_dict(dataset) if dataset else None,
        model=model_config_lib.ModelConfig.from_dict(model) if model else None,
        none_because=values.get('none_because') or '')

  @property
  def described(self) -> str:
    """'the model blessed in run R (span 1)'."""
    span = f' (span {self.span})' if self.span is not None else ''
    return f'the model blessed in run {self.run_id}{span}'


@dataclasses.dataclass
class Outcome:
  """What the warm start did, for the logs and training_info.json.

  Attributes:
    source: The model asked for.
    cold_because: Why training started cold; '' when it started warm.
    weights_copied: Variables copied from the previous model.
    rows_copied: Embedding rows among them, mapped by token or bucket.
    vocabularies: Per vocabulary feature: its tokens, those the previous
      model knew ('known') and those it met as OOV ('new'), and previous
      tokens now gone ('gone').
    buckets_moved: Bucketized features whose boundaries changed.
  """
  source: Source
  cold_because: str = ''
  weights_copied: int = 0
  rows_copied: int = 0
  vocabularies: Dict[str, Dict[str, int]] = dataclasses.field(
      default_factory=dict)
  buckets_moved: List[str] = dataclasses.field(default_factory=list)

  @property
  def warm(self) -> bool:
    return not self.cold_because

  @property
  def note(self) -> str:
    """One line for the Trainer log, the run summary and the report."""
    if not self.warm:
      return f'none, started cold: {self.cold_because}'
    grown = [f'{key} +{counts["new"]}' for key, counts in
             sorted(self.vocabularies.items()) if counts['new']]
    parts = [f'{self.weights_copied} weights copied']
    if self.vocabularies:
      parts.append(f'embedding rows mapped by token ({len(self.vocabularies)}'
                   ' vocabularies' + (f'; new tokens from their OOV rows: '
                                      f'{", ".join(grown)}' if grown else '')
                   + ')')
    if self.buckets_moved:
      parts.append(f'by bucket boundary ({len(self.buckets_moved)} '
                   'features whose boundaries moved)')
    return (f'from {self.source.described}, {self.source.model_uri}: '
            + ', '.join(parts))

  def info(self) -> Dict[str, Any]:
    """The `warm_start` entry of training_info.json."""
    info: Dict[str, Any] = {'warm': self.warm, 'note': self.note}
    if self.source.model_uri:
      info.update(from_model=self.source.model_uri,
                  from_run=self.source.run_id, from_span=self.source.span)
    if self.warm:
      info.update(weights_copied=self.weights_copied,
                  rows_copied=self.rows_copied,
                  vocabularies=self.vocabularies,
                  buckets_moved=self.buckets_moved)
    else:
      info['cold_because'] = self.cold_because
    return info


def warm_start(model: tf.keras.Model, source: Source,
               spec: features.DatasetSpec,
               model_config: model_config_lib.ModelConfig,
               transform_output: str) -> Outcome:
  """Copies the source model's weights into `model`, or leaves it cold.

  Args:
    model: The freshly built (untrained) model.
    source: The model to start from.
    spec: This run's dataset spec.
    model_config: This run's model settings (after tuning, if any).
    transform_output: This run's Transform output folder.

  Returns:
    What was done; `cold_because` is set when nothing was copied.
  """
  if not source.model_uri:
    return Outcome(source, cold_because=source.none_because or
                   'no earlier blessed model')
  outcome = Outcome(source)
  family = model_family(source.model_uri)
  if family in (model_config_lib.GBT, model_choice.ENSEMBLE):
    what = ('gradient-boosted trees' if family == model_config_lib.GBT else
            'the mean of a DNN and gradient-boosted trees')
    outcome.cold_because = (f'{source.described} is {what} '
                            '(models/model_choice.py): only a DNN\'s weights '
                            'seed a DNN')
    return outcome
  try:
    problem = incompatibility(source.dataset, spec, source.model,
                              model_config)
    if problem:
      raise Incompatible(problem)
    rows = _row_maps(source, spec, transform_output, outcome)
    updates = planned_weights(model, read_layer_weights(source.model_uri),
                              rows)
  except Incompatible as e:
    outcome.cold_because = str(e)
    return outcome
  # The previous model or its Transform output is gone or unreadable.
  except (OSError, ValueError, LookupError, tf.errors.OpError) as e:
    outcome.cold_because = (f'cannot read {source.described} at '
                            f'{source.model_uri}: {type(e).__name__}: {e}')
    return outcome
  for variable, value in updates:
    variable.assign(value)
  outcome.weights_copied = len(updates)
  outcome.rows_copied = sum(
      len(value) for variable, value in updates
      if _feature_of(_layer_name(variable)) in rows)
  return outcome


def apply(model: tf.keras.Model, training: Mapping[str, Any],
          spec: features.DatasetSpec,
          model_config: model_config_lib.ModelConfig,
          transform_output: str) -> Dict[str, Any]:
  """Warm-starts `model` if the Trainer's custom_config['training'] asks.

  Logs the outcome (a cold start as a warning, with its reason).

  Returns:
    {} without --warm-start, else the `warm_start` entry of
    training_info.json (`Outcome.info`).
  """
  values = training.get(KEY)
  if values is None:
    return {}
  outcome = warm_start(model, Source.from_dict(values), spec, model_config,
                       transform_output)
  if outcome.warm:
    logging.info('Warm start: %s', outcome.note)
  else:
    logging.warning('Warm start: %s', outcome.note)
  return {KEY: outcome.info()}


# --- Compatibility ---------------------------------------------------------


def model_family(saved_model_dir: str) -> Optional[str]:
  """The family in a SavedModel ('dnn', 'gbt'), from its serving contract;
  None when the contract does not say (a model pushed before families
  existed, a DNN) or cannot be read (reading its weights then says why)."""
  path = serving_contract.contract_path(saved_model_dir)
  try:
    with tf.io.gfile.GFile(path) as f:
      values = json.load(f)
  except (OSError, ValueError, tf.errors.OpError):
    return None
  return values.get('model') if isinstance(values, dict) else None


def incompatibility(before: Optional[features.DatasetSpec],
                    now: features.DatasetSpec,
                    before_model: Optional[model_config_lib.ModelConfig],
                    now_model: model_config_lib.ModelConfig) -> str:
  """Why a model trained with `before` cannot seed one with `now`; ''.

  Layer sizes are compared on the weights themselves (`planned_weights`),
  since a tuned run's sizes are not those of its configuration.
  """
  if before is None or before_model is None:
    return ('the previous Trainer\'s dataset spec and model settings are '
            'unknown')
  if before.task != now.task:
    return f'the task differs: {before.task} before, {now.task} now'
  if before.label_key != now.label_key:
    return (f'the label differs: {before.label_key!r} before, '
            f'{now.label_key!r} now')
  if before.classes != now.classes:
    return (f'the classes differ: {list(before.classes)} before, '
            f'{list(now.classes)} now')
  if before.label_positive_values != now.label_positive_values:
    return ('the positive label values differ: '
            f'{list(before.label_positive_values)} before, '
            f'{list(now.label_positive_values)} now')
  treatment_before, treatment_now = _treatments(before), _treatments(now)
  if set(treatment_before) != set(treatment_now):
    added = sorted(set(treatment_now) - set(treatment_before))
    removed = sorted(set(treatment_before) - set(treatment_now))
    return ('the feature set differs: ' + '; '.join(filter(None, [
        f'new {added}' if added else '',
        f'no longer {removed}' if removed else ''])))
  for column in sorted(treatment_now):
    if treatment_before[column] != treatment_now[column]:
      return (f'feature {column!r} is treated differently: '
              f'{treatment_before[column]} before, {treatment_now[column]} '
              'now')
  for field in ('oov_buckets', 'num_buckets'):
    if getattr(before, field) != getattr(now, field):
      return (f'{field} differs: {getattr(before, field)} before, '
              f'{getattr(now, field)} now')
  if before_model.drop_all_features != now_model.drop_all_features:
    return (f'drop_all_features differs: {before_model.drop_all_features} '
            f'before, {now_model.drop_all_features} now')
  return ''


def _treatments(spec: features.DatasetSpec) -> Dict[str, str]:
  """Column -> its treatment(s), e.g. 'integer_categorical + cyclical 24'."""
  found: Dict[str, List[str]] = {}
  for treatment in treatments.CONFIG_ORDER:
    for column, value in spec.entries(treatment):
      found.setdefault(column, []).append(
          treatment.key if value is None else f'{treatment.key} {value}')
  return {column: ' + '.join(kinds) for column, kinds in found.items()}


# --- Row maps --------------------------------------------------------------


def vocabulary_rows(before: Sequence[bytes], now: Sequence[bytes],
                    oov_buckets: int) -> np.ndarray:
  """For each id of the new vocabulary feature, the previous model's row.

  Ids [0, len(now)) are the tokens of `now`, then `oov_buckets` hash
  buckets, as `tft.compute_and_apply_vocabulary` assigns them. A token the
  previous vocabulary had keeps its row; one it lacked gets the OOV row the
  previous lookup gave it; OOV bucket b stays OOV bucket b.

  Raises:
    Incompatible: A new token has no previous row (no OOV buckets).
  """
  before = [bytes(token) for token in before]
  now = [bytes(token) for token in now]
  known = {token: i for i, token in enumerate(before)}
  unknown = [token for token in now if token not in known]
  if unknown and oov_buckets < 1:
    raise Incompatible(
        f'{len(unknown)} new tokens (e.g. {_shown(unknown)}) have no row in '
        'the previous model, which has no OOV buckets (oov_buckets 0)')
  if not now:
    ids = np.zeros([0], np.int64)
  elif not before:  # Every token was out of the previous vocabulary.
    ids = tf.strings.to_hash_bucket_fast(now, oov_buckets).numpy()
  elif not unknown:
    ids = np.array([known[token] for token in now], np.int64)
  else:
    # The very lookup tf.Transform built the previous model's ids with.
    table = tf.lookup.StaticVocabularyTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(before, tf.string),
            tf.range(len(before), dtype=tf.int64)),
        num_oov_buckets=oov_buckets)
    ids = table.lookup(tf.constant(now, tf.string)).numpy()
  oov = len(before) + np.arange(oov_buckets, dtype=np.int64)
  return np.concatenate([ids.astype(np.int64), oov])


def bucket_rows(before: np.ndarray, now: np.ndarray,
                num_buckets: int) -> np.ndarray:
  """For each bucket id of the new model, the previous model's bucket id.

  Bucket i holds the values v with now[i-1] <= v < now[i] (tft.bucketize);
  it takes the previous bucket that holds its midpoint (for the first and
  last, unbounded buckets: a value just inside their finite edge). Id
  `num_buckets` is the "missing" bucket in both models.

  Raises:
    Incompatible: More boundaries than `num_buckets` - 1.
  """
  before = np.asarray(before, np.float64).ravel()
  now = np.asarray(now, np.float64).ravel()
  if max(len(before), len(now)) >= num_buckets:
    raise Incompatible(f'{max(len(before), len(now))} bucket boundaries '
                       f'for {num_buckets} buckets')
  rows = np.arange(num_buckets + 1, dtype=np.int64)
  if np.array_equal(before, now):
    return rows
  if not len(now):  # One bucket for every value: the previous middle one.
    rows[0] = len(before) // 2
    return rows
  middles = [np.nextafter(now[0], -np.inf)]
  middles += [(now[i - 1] + now[i]) / 2 for i in range(1, len(now))]
  middles.append(now[-1])
  rows[:len(now) + 1] = np.searchsorted(before, middles, side='right')
  return rows


def _row_maps(source: Source, spec: features.DatasetSpec,
              transform_output: str, outcome: Outcome
              ) -> Dict[str, np.ndarray]:
  """Transformed feature name -> row map, for every embedded feature.

  Raises:
    Incompatible: A vocabulary's size change changes its embedding width.
  """
  before_output = tft.TFTransformOutput(source.transform_graph_uri)
  now_output = tft.TFTransformOutput(transform_output)
  rows: Dict[str, np.ndarray] = {}
  for key in spec.columns_with_output(treatments.VOCABULARY):
    before = before_output.vocabulary_by_name(key)
    now = now_output.vocabulary_by_name(key)
    widths = [model_lib.embedding_dim(len(v) + spec.oov_buckets)
              for v in (before, now)]
    if widths[0] != widths[1]:
      raise Incompatible(
          f'the vocabulary of {key!r} '
          f'{"grew" if len(now) > len(before) else "shrank"} from '
          f'{len(before)} to {len(now)} tokens, which changes its embedding '
          f'width from {widths[0]} to {widths[1]}')
    try:
      rows[features.transformed_name(key)] = vocabulary_rows(
          before, now, spec.oov_buckets)
    except Incompatible as e:
      raise Incompatible(f'feature {key!r}: {e}') from None
    known = set(before)
    outcome.vocabularies[key] = {
        'tokens': len(now), 'known': sum(1 for t in now if t in known),
        'new': sum(1 for t in now if t not in known),
        'gone': len(known - set(now))}
  # The previous spec's order names the previous graph's bucketize calls.
  before_bounds = read_bucket_boundaries(
      source.transform_graph_uri,
      source.dataset.columns_with_output(treatments.BUCKETS))
  bucketized = spec.columns_with_output(treatments.BUCKETS)
  now_bounds = read_bucket_boundaries(transform_output, bucketized)
  for key in bucketized:
    rows[features.transformed_name(key)] = bucket_rows(
        before_bounds[key], now_bounds[key], spec.num_buckets)
    if not np.array_equal(before_bounds[key], now_bounds[key]):
      outcome.buckets_moved.append(key)
  return rows


# --- Reading the saved models ----------------------------------------------


def read_bucket_boundaries(transform_output: str, keys: Sequence[str]
                           ) -> Dict[str, np.ndarray]:
  """The quantile boundaries of each bucketized feature in a Transform output.

  tf.Transform keeps them as constants captured by the transform function,
  not as assets; they are read from the transform graph's SavedModel proto
  (`transform_fn/saved_model.pb`) without loading it.

  Raises:
    ValueError: The graph does not hold one boundary tensor per key.
  """
  if not keys:
    return {}
  path = os.path.join(transform_output, tft.TFTransformOutput.TRANSFORM_FN_DIR,
                      'saved_model.pb')
  saved = saved_model_pb2.SavedModel()
  with tf.io.gfile.GFile(path, 'rb') as f:
    saved.ParseFromString(f.read())
  graph = saved.meta_graphs[0]
  objects = graph.object_graph_def
  constants = {node.name: node for node in graph.graph_def.node
               if node.op == 'Const'}
  found: Dict[int, np.ndarray] = {}
  for function in graph.graph_def.library.function:
    bound = objects.concrete_functions.get(function.signature.name)
    if bound is None or not bound.bound_inputs:
      continue
    args = [arg.name for arg in function.signature.input_arg]
    # Captured inputs are the function's last arguments, in order.
    first = len(args) - len(bound.bound_inputs)
    if first < 0:
      continue
    for arg, node_id in zip(args[first:], bound.bound_inputs, strict=True):
      match = _BUCKETIZE_ARG.fullmatch(arg)
      node = objects.nodes[node_id]
      if match is None or node.WhichOneof('kind') != 'constant':
        continue
      value = tf.make_ndarray(
          constants[node.constant.operation].attr['value'].tensor)
      found[int(match.group(1) or 0)] = np.asarray(value).ravel()
  if sorted(found) != list(range(len(keys))):
    raise ValueError(
        f'{path} holds bucket boundaries for {len(found)} bucketized '
        f'features, the dataset spec names {len(keys)}: {list(keys)}')
  return {key: found[i] for i, key in enumerate(keys)}


def read_layer_weights(saved_model_dir: str
                       ) -> Dict[str, Dict[str, np.ndarray]]:
  """Layer name -> weight name ('kernel') -> value, of a saved Keras model.

  Read by name, not by position: Keras' metadata names the layer at each
  path of the object graph ('layer_with_weights-3' is 'deep_0'), and the
  checkpoint's object graph leads from that path to the checkpoint key of
  each of its weights. Nothing is loaded into TensorFlow.
  """
  metadata = saved_metadata_pb2.SavedMetadata()
  with tf.io.gfile.GFile(os.path.join(saved_model_dir, _KERAS_METADATA),
                         'rb') as f:
    metadata.ParseFromString(f.read())
  reader = tf.train.load_checkpoint(
      os.path.join(saved_model_dir, 'variables', 'variables'))
  graph = trackable_object_graph_pb2.TrackableObjectGraph()
  graph.ParseFromString(reader.get_tensor(_OBJECT_GRAPH_KEY))
  children = {child.local_name: child.node_id
              for child in graph.nodes[0].children}
  layers: Dict[str, Dict[str, np.ndarray]] = {}
  for node in metadata.nodes:
    path = node.node_path.split('.')
    if len(path) != 2 or path[1] not in children or not node.metadata:
      continue
    name = json.loads(node.metadata).get('name')
    weights = {}
    for child in graph.nodes[children[path[1]]].children:
      for attribute in graph.nodes[child.node_id].attributes:
        if attribute.name == _VARIABLE_VALUE:
          weights[child.local_name] = reader.get_tensor(
              attribute.checkpoint_key)
    if name and weights:
      layers[name] = weights
  return layers


# --- Copying ---------------------------------------------------------------


def planned_weights(model: tf.keras.Model,
                    before: Mapping[str, Mapping[str, np.ndarray]],
                    rows: Mapping[str, np.ndarray]
                    ) -> List[Tuple[tf.Variable, np.ndarray]]:
  """Each weight of `model` with the value it gets from `before`.

  Args:
    model: The new model.
    before: The previous model's weights (`read_layer_weights`).
    rows: Transformed feature name -> for each new row, the previous row.

  Raises:
    Incompatible: A layer or weight the previous model lacks, or one whose
      shape differs (named with both shapes).
  """
  planned = []
  for layer in model.layers:
    for variable in layer.weights:
      name = _layer_name(variable)
      attribute = variable.name.split('/')[-1].split(':')[0]
      value = before.get(name, {}).get(attribute)
      if value is None:
        raise Incompatible(f'the previous model has no weight {name}/'
                           f'{attribute}')
      feature = _feature_of(name)
      if feature in rows:
        if rows[feature].max(initial=0) >= len(value):
          raise Incompatible(
              f'layer {name!r} has {len(value)} rows in the previous model, '
              f'fewer than its vocabulary or buckets need '
              f'({rows[feature].max() + 1})')
        value = value[rows[feature]]
      if tuple(value.shape) != tuple(variable.shape):
        raise Incompatible(_shape_problem(name, attribute, value.shape,
                                          tuple(variable.shape)))
      planned.append((variable, value))
  return planned


def _layer_name(variable: tf.Variable) -> str:
  """'deep_0' for the variable 'deep_0/kernel:0'."""
  return variable.name.split('/')[0]


def _feature_of(layer_name: str) -> str:
  """'company_xf' for 'company_xf_embedding' or 'company_xf_wide'."""
  for suffix in (EMBEDDING_SUFFIX, WIDE_SUFFIX):
    if layer_name.endswith(suffix):
      return layer_name[:-len(suffix)]
  return ''


def _shape_problem(layer: str, attribute: str, before: Sequence[int],
                   now: Sequence[int]) -> str:
  if attribute == 'kernel' and len(before) == len(now) == 2:
    if before[1] != now[1]:
      return (f'layer {layer!r} has {before[1]} units in the previous model, '
              f'{now[1]} now')
    return (f'layer {layer!r} takes {before[0]} inputs in the previous '
            f'model, {now[0]} now')
  return (f'weight {layer}/{attribute} has shape {tuple(before)} in the '
          f'previous model, {tuple(now)} now')


def _shown(tokens: Sequence[bytes], limit: int = 3) -> str:
  return ', '.join(repr(t.decode('utf-8', 'replace')) for t in tokens[:limit])

