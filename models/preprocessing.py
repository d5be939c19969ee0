"""tf.Transform `preprocessing_fn`: raw columns in, model-ready tensors out.

Which column gets which treatment comes from the `DatasetSpec` passed in
`custom_config`, so the same function serves any tabular CSV. Each column
treatment of the registry (models/treatments.py) has its transform in
`TRANSFORMS`, applied in the registry's order. Missing values
are never silently turned into plausible real ones: numeric columns are
imputed with the training mean *and* get an explicit `<name>_missing_xf`
indicator, categorical columns map a missing value to its own token, and
bucketized columns get a dedicated "missing" bucket.

Every feature is optional unless the dataset config lists it under
`required:`: it arrives as a SparseTensor (the curated schema gives it no
shape), so a value missing at serving time takes exactly the path a gap
takes in training. A required feature arrives dense, and the serving
signature refuses an example without it. `preprocessing_fn` checks that the
schema and the config agree, since a feature the schema parses dense has no
missing-value path at all.
"""

from __future__ import annotations

import math
from typing import Any
from typing import Callable
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple
from typing import Union

import tensorflow as tf
import tensorflow_transform as tft

from models import features
from models import treatments

Tensor = Union[tf.Tensor, tf.SparseTensor]
# One column of a treatment: (its name, its raw tensor, the treatment's
# parameter or None).
Column = Tuple[str, Tensor, Optional[int]]
# A column treatment's transform: (spec, all the treatment's columns) ->
# transformed tensors by output name. It takes the columns together so that
# one analyzer can serve them all (`_z_scored`); `_each_column` makes one
# from a transform of a single column.
Transform = Callable[[features.DatasetSpec, Sequence[Column]],
                     Dict[str, tf.Tensor]]
ColumnTransform = Callable[[features.DatasetSpec, str, Tensor, Optional[int]],
                           Dict[str, tf.Tensor]]


def preprocessing_fn(inputs: Mapping[str, Tensor],
                     custom_config: Mapping[str, Any]) -> Dict[str, tf.Tensor]:
  """Transforms raw features; see the module docstring for the rules.

  Args:
    inputs: Raw tensors keyed by column. Columns the schema marks as always
      present arrive dense with shape [batch, 1]; optional ones arrive as
      SparseTensors.
    custom_config: Must hold `dataset`, a `DatasetSpec.to_dict()`.

  Returns:
    Transformed tensors, each of shape [batch], keyed by `<name>_xf`.
  """
  spec = features.DatasetSpec.from_dict(custom_config['dataset'])
  missing_columns = sorted(set(spec.feature_columns) - set(inputs))
  if missing_columns:
    raise ValueError(
        f'Dataset {spec.name!r}: columns {missing_columns} are configured as '
        'features but absent from the schema. Add them to the schema or remove '
        'them from the DatasetSpec.')
  check_required(spec, inputs)
  outputs: Dict[str, tf.Tensor] = {}
  # In the registry's order: tf.Transform names analyzers by call order, and
  # the warm start finds the bucket boundaries by it (models/warm_start.py).
  for treatment in treatments.TREATMENTS:
    transform = TRANSFORMS.get(treatment.key)
    if transform is None:
      raise NotImplementedError(
          f'The column treatment {treatment.key!r} has no transform: add one '
          'to TRANSFORMS in models/preprocessing.py.')
    columns = [(key, inputs[key], parameter)
               for key, parameter in spec.entries(treatment)]
    for key, raw, _ in columns:
      check_kind(spec, treatment, key, raw)
    if columns:
      outputs.update(transform(spec, columns))

  outputs[spec.transformed_label_key] = transform_label(
      inputs[spec.label_key], spec)
  return outputs


def check_kind(spec: features.DatasetSpec, treatment: treatments.Treatment,
               key: str, raw: Tensor) -> None:
  """Refuses a column whose kind its treatment cannot encode (text to be
  z-scored), before TensorFlow fails on it with a cast error.

  Raises:
    ValueError: Naming the column, its kind and the groups that take it.
  """
  kind = treatments.KIND_OF_DTYPE.get(raw.dtype.name, raw.dtype.name)
  if kind in treatment.kinds:
    return
  takes = ', '.join(t.key for t in treatments.accepting(kind)) or 'none'
  raise ValueError(
      f'Dataset {spec.name!r}: column {key!r} holds {kind} values, but '
      f'`{treatment.key}` ({treatment.description}) takes '
      f'{" or ".join(treatment.kinds)} columns. In dataset.yaml, move it to '
      f'a group that takes {kind} columns: {takes}.')


def check_required(spec: features.DatasetSpec,
                   inputs: Mapping[str, Tensor]) -> None:
  """Refuses a schema that parses features dense that may be missing.

  A feature with a shape in the schema arrives dense: tf.Transform reads it
  as a FixedLenFeature, so the serving signature requires it. That must be
  exactly the dataset config's `required:`.

  Raises:
    ValueError: Naming the features and both fixes.
  """
  dense = {k for k in spec.feature_columns
           if not isinstance(inputs[k], tf.SparseTensor)}
  required = set(spec.required_features)
  if dense - required:
    raise ValueError(
        f'Dataset {spec.name!r}: the curated schema gives '
        f'{sorted(dense - required)} a shape, which makes them required at '
        'serving time, but the dataset config does not list them under '
        '`required:`. Remove `shape` and `presence.min_fraction` from those '
        'features in schema.pbtxt (keep `value_count {min: 0 max: 1}`), or '
        'add them to `required:` in dataset.yaml.')
  if required - dense:
    raise ValueError(
        f'Dataset {spec.name!r}: the dataset config lists '
        f'{sorted(required - dense)} under `required:`, but the curated '
        'schema gives them no shape. Give each `presence {min_fraction: 1.0} '
        'shape {dim {size: 1}}` in schema.pbtxt, or remove it from '
        '`required:`.')


def transform_label(raw: Tensor, spec: features.DatasetSpec) -> tf.Tensor:
  """The training target: 0/1, a class index, or the value itself.

  Binary: 1 for `label_positive_values` (or the label itself when it is
  0/1). Multiclass: the position of the label in `label_classes`, or -1 for
  a value outside them (the curated schema's domain stops such data before
  Transform). Regression: the value as float32.
  """
  if spec.task == features.REGRESSION:
    label, _ = _densify(raw, default=0)
    return tf.cast(label, tf.float32)
  if spec.task == features.MULTICLASS:
    label, _ = _densify(raw, default='')
    return _class_index(_label_text(label), spec.label_classes)
  label, _ = _densify(raw, default=0 if raw.dtype != tf.string else '')
  return _binary_label(label, spec.label_positive_values)


def _label_text(label: tf.Tensor) -> tf.Tensor:
  """Label values as the text a CSV cell holds ('2', not '2.000000')."""
  if label.dtype == tf.string:
    return label
  if label.dtype.is_floating:
    label = tf.cast(tf.round(label), tf.int64)
  return tf.strings.as_string(label)


def _class_index(text: tf.Tensor, classes: Tuple[str, ...]) -> tf.Tensor:
  # A comparison against every class, not a lookup table: the class list is
  # short, and it keeps the graph free of table initializers.
  hits = tf.equal(tf.expand_dims(text, -1), tf.constant(classes))
  index = tf.argmax(tf.cast(hits, tf.int64), axis=-1, output_type=tf.int64)
  return tf.where(tf.reduce_any(hits, axis=-1), index,
                  tf.constant(-1, tf.int64))


# The column treatments' transforms.


def _each_column(transform: ColumnTransform) -> Transform:
  """A treatment's transform that handles its columns one at a time."""

  def each(spec: features.DatasetSpec,
           columns: Sequence[Column]) -> Dict[str, tf.Tensor]:
    outputs: Dict[str, tf.Tensor] = {}
    for key, raw, parameter in columns:
      outputs.update(transform(spec, key, raw, parameter))
    return outputs

  return each


def _log(spec: features.DatasetSpec,
         columns: Sequence[Column]) -> Dict[str, tf.Tensor]:
  """Heavy-tailed non-negative amounts: log1p tames the tail (fares go up to
  several hundred dollars) before z-scoring."""
  del spec  # Unused.
  return _z_scored(columns, log_scale=True)


def _numeric(spec: features.DatasetSpec,
             columns: Sequence[Column]) -> Dict[str, tf.Tensor]:
  del spec  # Unused.
  return _z_scored(columns, log_scale=False)


def _bucket(spec: features.DatasetSpec, key: str, raw: Tensor,
            parameter: Optional[int]) -> Dict[str, tf.Tensor]:
  """Coordinates relate to the label through neighbourhoods, not linearly,
  so they are cut into quantile buckets that the model embeds.

  tft.bucketize sees only the values present (a SparseTensor holds no
  gaps), and a missing value gets the extra bucket `num_buckets`.
  """
  del parameter  # Unused.
  buckets = tft.bucketize(tf.cast(raw, tf.float32), spec.num_buckets,
                          epsilon=0.01)
  dense, _ = _densify(buckets, default=spec.num_buckets)
  return {features.transformed_name(key): dense}


def _cyclical(spec: features.DatasetSpec, key: str, raw: Tensor,
              parameter: Optional[int]) -> Dict[str, tf.Tensor]:
  """Periodic values: sin/cos keep 23h next to 0h. A missing value maps to
  the origin, which no real value can reach."""
  del spec  # Unused.
  value, missing = _densify(raw, default=0)
  angle = 2.0 * math.pi * tf.cast(value, tf.float32) / float(parameter)
  present = 1.0 - missing
  return {features.transformed_name(key + '_sin'): tf.sin(angle) * present,
          features.transformed_name(key + '_cos'): tf.cos(angle) * present}


def _vocabulary(spec: features.DatasetSpec, key: str, raw: Tensor,
                parameter: Optional[int]) -> Dict[str, tf.Tensor]:
  """Vocabularies are named after their feature so the files are easy to
  find in the Transform output. top_k bounds the size for high-cardinality
  columns; OOV buckets absorb values first seen at serving time. Integer
  codes become text first, so one vocabulary path serves both.

  The approximate (Misra-Gries) vocabulary is a combiner, so tf.Transform
  packs every column's into the one pass that also computes the means and
  quantiles; tft.vocabulary costs several Beam stages per column (on a
  table of 30 categorical columns, most of Transform's time). It is exact
  while a column has at most top_k distinct values; above that, the top_k
  kept may differ from the exact ones only at the frequency cut."""
  del parameter  # Unused.
  value, _ = _densify(raw, default=features.MISSING_TOKEN)
  return {features.transformed_name(key): (
      tft.experimental.compute_and_apply_approximate_vocabulary(
          value, top_k=spec.vocab_top_k, num_oov_buckets=spec.oov_buckets,
          vocab_filename=key))}


# Treatment key -> its transform; one per entry of treatments.TREATMENTS.
TRANSFORMS: Dict[str, Transform] = {
    treatments.LOG.key: _log,
    treatments.NUMERIC.key: _numeric,
    treatments.BUCKET.key: _each_column(_bucket),
    treatments.CYCLICAL.key: _each_column(_cyclical),
    treatments.CATEGORICAL.key: _each_column(_vocabulary),
    treatments.INTEGER_CATEGORICAL.key: _each_column(_vocabulary),
}


def _z_scored(columns: Sequence[Column],
              log_scale: bool) -> Dict[str, tf.Tensor]:
  """Z-scored numeric features and, for those that can be absent, flags.

  The mean and variance are of the values present only, so gaps do not
  pull the statistics towards an arbitrary fill value. A missing value then
  becomes 0, the training mean, and the `_missing` flag tells the model it
  was imputed.

  The columns are stacked into one [batch, columns] SparseTensor holding
  the values present, and scaled elementwise: each column by its own mean
  and variance, computed by one tf.Transform analyzer for all of them. An
  analyzer per column costs Beam stages per column: on 20 numeric columns
  of 2,000 rows, 19.0 s of Transform against 10.3 s stacked (one core).
  The flags' training maxima are one analyzer too.
  """
  keys = [key for key, _, _ in columns]
  values, present = [], []
  for _, raw, _ in columns:
    # In float64, cast to float32 at the end: in float32 a column of large
    # values with a small spread (census tract ids, 1.7e10 +- 3e5; Unix
    # times) keeps too few digits for x - mean, and the rounding then
    # depends on where a row falls in the kernel's vector lanes, so a row's
    # score changed with the other rows of its batch.
    value, missing = _densify(_map_values(
        tf.cast(raw, tf.float64), tf.math.log1p if log_scale else None),
                              default=0.0)
    # [batch]: each row holds one value (the schema caps value_count at 1).
    values.append(tf.reshape(value, [-1]))
    present.append(1.0 - tf.reshape(missing, [-1]))
  values_present = tf.stack(present, axis=1)
  where = tf.where(values_present > 0)
  stacked = tf.SparseTensor(where, tf.gather_nd(tf.stack(values, axis=1),
                                                where),
                            tf.shape(values_present, out_type=tf.int64))
  stacked.set_shape([None, len(keys)])
  # (Not scale_to_z_score's output_dtype: it makes the mean float32 too.)
  scaled = tf.cast(tf.sparse.to_dense(
      tft.scale_to_z_score(stacked, elementwise=True)), tf.float32)
  outputs = {features.transformed_name(key): scaled[:, index]
             for index, key in enumerate(keys)}
  optional = [index for index, (_, raw, _) in enumerate(columns)
              if isinstance(raw, tf.SparseTensor)]
  if optional:
    absent = tf.gather(1.0 - values_present, optional, axis=1)
    # A column without gaps in training never sets its flag there, so the
    # model never learns a weight for it; the flag stays 0 at serving too
    # (times the training maximum, 0), and a missing value is the mean.
    flags = absent * tft.max(absent, reduce_instance_dims=False)
    for position, index in enumerate(optional):
      outputs[features.missing_indicator_name(keys[index])] = (
          flags[:, position])
  return outputs


def _map_values(raw: Tensor, fn) -> Tensor:
  """Applies `fn` to the values present (clamped at 0 first, for log1p)."""
  if fn is None:
    return raw
  values = raw.values if isinstance(raw, tf.SparseTensor) else raw
  mapped = fn(tf.maximum(values, tf.cast(0, values.dtype)))
  if isinstance(raw, tf.SparseTensor):
    return tf.SparseTensor(raw.indices, mapped, raw.dense_shape)
  return mapped


def _densify(raw: Tensor, default: Any) -> Tuple[tf.Tensor, tf.Tensor]:
  """Returns a [batch] dense tensor and a [batch] float 'is missing' flag.

  Stringly-typed categorical columns are returned as strings; integer codes
  used as categories are converted to strings so one vocabulary path serves
  both.
  """
  if isinstance(raw, tf.SparseTensor):
    batch = raw.dense_shape[0]
    shape = tf.stack([batch, tf.constant(1, tf.int64)])
    # The schema caps value_count at 1, so each row has at most one value.
    sparse = tf.SparseTensor(raw.indices, raw.values, shape)
    flag = tf.SparseTensor(raw.indices,
                           tf.ones_like(raw.values, dtype=tf.float32), shape)
    present = tf.squeeze(tf.sparse.to_dense(flag, default_value=0.0), axis=1)
    values = sparse.values
    if isinstance(default, str) and values.dtype != tf.string:
      values = tf.strings.as_string(values)
      sparse = tf.SparseTensor(sparse.indices, values, shape)
    fill = (tf.constant(default) if isinstance(default, str)
            else tf.cast(default, values.dtype))
    dense = tf.sparse.to_dense(sparse, default_value=fill)
    return tf.squeeze(dense, axis=1), 1.0 - present
  dense = tf.squeeze(raw, axis=1)
  if isinstance(default, str) and dense.dtype != tf.string:
    dense = tf.strings.as_string(dense)
  return dense, tf.zeros_like(dense, dtype=tf.float32)


def _binary_label(label: tf.Tensor, positive_values: Tuple[str, ...]
                  ) -> tf.Tensor:
  if positive_values:
    text = _label_text(label)
    hits = tf.equal(tf.expand_dims(text, -1), tf.constant(positive_values))
    return tf.cast(tf.reduce_any(hits, axis=-1), tf.int64)
  return tf.cast(label, tf.int64)
