"""The serving contract: what a request to the pushed model may carry.

`serving_default` takes serialized `tf.Example`s, so the SavedModel alone
does not say which raw features a client sends, of which type, which of
them are required, or which categories training saw. The Trainer writes
that here, as `assets.extra/serving_contract.json` inside the SavedModel
(TF Serving's folder for extra files, which loaders ignore), so the pushed
model carries its own contract wherever it is copied:

    {"format_version": 1, "dataset": "taxi", "task": "binary",
     "label": "big_tipper", "classes": ["0", "1"],
     "signature": "serving_default", "input": "examples",
     "outputs": ["classes", "probability", "scores"],
     "ignored": ["tips", ...],
     "features": [{"name": "fare", "dtype": "float", "required": true,
                   "treatment": "log", "vocabulary": null}, ...],
     "decision_threshold": 0.31,
     "decision_rule": "best F1 of the positive class on the eval split"}

* `required` comes from the raw feature spec the signature parses with: a
  feature the curated schema gives a shape is parsed as a
  `FixedLenFeature` without a default, so an example without it cannot be
  scored. Those are exactly the dataset config's `required:` (Transform
  checks it, models/preprocessing.py). The others are optional: a missing
  value takes the treatment's missing-value path, as a gap in training.
* `decision_threshold` (binary only): the Trainer's threshold on
  P(positive), chosen on the eval split by `decision_rule`
  (models/decision.py); a row is the positive class when P >= threshold.
  `classes` and `scores` do not depend on it. Readers fall back to 0.5
  when it is absent (models pushed before it existed): `threshold()`.
* `model`: what the SavedModel is, `dnn`, `gbt` (gradient-boosted trees)
  or `ensemble` (the mean of both); the last two need TF Decision Forests'
  ops to load (models/forest_ops.py). `candidates`: each candidate the
  Trainer scored and its eval-split score, `model_metric`
  (models/model_choice.py). Absent in models pushed before the families
  existed (they are DNNs).
* `vocabulary` is the training vocabulary of a categorical feature, as
  tf.Transform wrote it (top_k applied, the missing token included): a value
  outside it is scored through an OOV bucket.
* `ignored` are the columns of the data that are neither the label nor a
  serving input (the dataset config's `ignored`); a client may send them.

`write` runs in the Trainer (`models/train.py`); `read` is what the serving
code calls, and imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Tuple

from models import decision as decision_lib
from models import features
from models import treatments

FORMAT_VERSION = 1
# What readers use for a binary model pushed before thresholds existed.
DEFAULT_DECISION_THRESHOLD = decision_lib.DEFAULT_THRESHOLD
# TF Serving's folder for extra files inside a SavedModel.
ASSETS_EXTRA = 'assets.extra'
CONTRACT_FILE = 'serving_contract.json'
SIGNATURE = 'serving_default'
SIGNATURE_INPUT = 'examples'
# The contract's names for the raw feature dtypes: the column kinds the
# treatments take (models/treatments.py).
FLOAT = treatments.FLOAT
INT = treatments.INT
STRING = treatments.STRING
DTYPES = treatments.KINDS
# The treatment of a schema column the model does not read.
UNUSED = 'unused'


class ContractError(ValueError):
  """The contract file is missing or not one this code can use."""


@dataclasses.dataclass(frozen=True)
class Feature:
  """One raw serving feature.

  Attributes:
    name: The column name, as in the CSV.
    dtype: FLOAT, INT or STRING: the tf.Example list it is parsed from.
    required: An example without it cannot be scored.
    treatment: Its group in the dataset config ('log', 'categorical', ...:
      a `treatments.Treatment.key`), or UNUSED for a schema column the
      model does not read.
    vocabulary: Categorical features: the training vocabulary; else None.
  """
  name: str
  dtype: str
  required: bool
  treatment: str
  vocabulary: Optional[Tuple[str, ...]] = None


@dataclasses.dataclass(frozen=True)
class Contract:
  """A pushed model's serving contract (see the module docstring)."""
  dataset: str
  task: str
  label: str
  classes: Tuple[str, ...]
  outputs: Tuple[str, ...]
  features: Tuple[Feature, ...]
  ignored: Tuple[str, ...] = ()
  signature: str = SIGNATURE
  input: str = SIGNATURE_INPUT
  format_version: int = FORMAT_VERSION
  decision_threshold: Optional[float] = None
  decision_rule: Optional[str] = None
  model: Optional[str] = None
  model_metric: Optional[str] = None
  candidates: Optional[Dict[str, Optional[float]]] = None

  def threshold(self) -> float:
    """The binary decision threshold; 0.5 for a model without one."""
    if self.decision_threshold is None:
      return DEFAULT_DECISION_THRESHOLD
    return self.decision_threshold

  def feature(self, name: str) -> Optional[Feature]:
    for candidate in self.features:
      if candidate.name == name:
        return candidate
    return None

  @property
  def required(self) -> Tuple[str, ...]:
    return tuple(f.name for f in self.features if f.required)

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values: Mapping[str, Any], source: str) -> 'Contract':
    """Checks and converts the JSON form; errors name `source`."""
    try:
      version = int(values['format_version'])
      if version != FORMAT_VERSION:
        raise ContractError(
            f'{source} has contract format {version}; this code reads '
            f'format {FORMAT_VERSION}. Serve it with the code that trained '
            'it, or re-run the pipeline.')
      feature_list = tuple(
          Feature(name=str(f['name']), dtype=str(f['dtype']),
                  required=bool(f['required']),
                  treatment=str(f['treatment']),
                  vocabulary=(None if f.get('vocabulary') is None else
                              tuple(str(v) for v in f['vocabulary'])))
          for f in values['features'])
      contract = cls(
          dataset=str(values['dataset']), task=str(values['task']),
          label=str(values['label']),
          classes=tuple(str(c) for c in values['classes']),
          outputs=tuple(str(o) for o in values['outputs']),
          features=feature_list,
          ignored=tuple(str(c) for c in values.get('ignored', ())),
          signature=str(values.get('signature', SIGNATURE)),
          input=str(values.get('input', SIGNATURE_INPUT)),
          format_version=version,
          decision_threshold=(
              None if values.get('decision_threshold') is None
              else float(values['decision_threshold'])),
          decision_rule=(None if values.get('decision_rule') is None
                         else str(values['decision_rule'])),
          model=(None if values.get('model') is None
                 else str(values['model'])),
          model_metric=(None if values.get('model_metric') is None
                        else str(values['model_metric'])),
          candidates=(None if values.get('candidates') is None else {
              str(k): (None if v is None else float(v))
              for k, v in dict(values['candidates']).items()}))
    except (KeyError, TypeError, ValueError) as e:
      if isinstance(e, ContractError):
        raise
      raise ContractError(f'{source} is not a serving contract ({e!r}); '
                          're-run the pipeline to push a model with '
                          'one.') from None
    unknown = sorted({f.dtype for f in feature_list} - set(DTYPES))
    if unknown:
      raise ContractError(
          f'{source} declares feature types {unknown}, which this server '
          f'does not know (it knows {list(DTYPES)}).')
    if contract.task not in features.TASKS:
      raise ContractError(f'{source} declares task {contract.task!r}; '
                          f'expected one of {list(features.TASKS)}.')
    threshold = contract.decision_threshold
    if threshold is not None and not (
        contract.task == features.BINARY and 0 < threshold < 1):
      raise ContractError(
          f'{source} declares decision_threshold {threshold} for a '
          f'{contract.task} model; only a binary model has one, in (0, 1). '
          'Re-run the pipeline to push the model again.')
    return contract


def contract_path(saved_model_dir: str) -> str:
  return os.path.join(saved_model_dir, ASSETS_EXTRA, CONTRACT_FILE)


def read(saved_model_dir: str) -> Contract:
  """Reads the contract of a SavedModel on local disk.

  Raises:
    ContractError: No contract (a model pushed before contracts existed),
      or one this code cannot use; the message says what to do.
  """
  path = contract_path(saved_model_dir)
  if not os.path.isfile(path):
    raise ContractError(
        f'{saved_model_dir} has no serving contract ({ASSETS_EXTRA}/'
        f'{CONTRACT_FILE}): it was pushed by an older version of this '
        'pipeline. Re-run the pipeline to push a model with its contract.')
  try:
    with open(path, encoding='utf-8') as f:
      values = json.load(f)
  except (OSError, ValueError) as e:
    raise ContractError(f'cannot read {path}: {e}. Re-run the pipeline to '
                        'push the model again.') from None
  if not isinstance(values, dict):
    raise ContractError(f'{path} holds no JSON object; re-run the pipeline '
                        'to push the model again.')
  return Contract.from_dict(values, path)


def _treatments(spec: features.DatasetSpec) -> Dict[str, str]:
  """Column -> its treatment's key: its primary group's, else the first
  extra encoding's."""
  treatment = {}
  for group in treatments.CONFIG_ORDER:
    for name in spec.columns(group):
      treatment.setdefault(name, group.key)
  return treatment


def output_names(task: str) -> Tuple[str, ...]:
  """What `serving_default` returns for a task (models/signatures.py)."""
  from models import signatures  # Imports TensorFlow: only when writing.
  if task == features.REGRESSION:
    return (signatures.OUTPUTS,)
  names = (signatures.CLASSES, signatures.SCORES)
  if task == features.BINARY:
    names += (signatures.PROBABILITY,)
  return tuple(sorted(names))


def build(spec: features.DatasetSpec, tf_transform_output: Any,
          decision: Optional[decision_lib.Decision] = None,
          choice: Optional[Any] = None) -> Contract:
  """The contract of a model trained on `tf_transform_output`'s features.

  Args:
    spec: The dataset spec the model was trained with.
    tf_transform_output: A `tft.TFTransformOutput`: its raw feature spec is
      what `serving_default` parses, and its vocabularies are training's.
    decision: Binary models: the decision threshold the Trainer chose.
    choice: The model family the Trainer kept (`model_choice.Choice`).
  """
  import tensorflow as tf
  raw_spec = tf_transform_output.raw_feature_spec()
  treatment = _treatments(spec)
  vocabularies = set(spec.columns_with_output(treatments.VOCABULARY))
  feature_list = []
  for name in sorted(raw_spec):
    if name in spec.serving_excluded_columns:
      continue
    column = raw_spec[name]
    dtype = treatments.KIND_OF_DTYPE.get(column.dtype.name)
    if dtype is None:
      raise ValueError(f'Feature {name!r} has dtype {column.dtype.name}, '
                       'which a tf.Example cannot hold.')
    required = (isinstance(column, tf.io.FixedLenFeature) and
                column.default_value is None)
    vocabulary = None
    if name in vocabularies:
      vocabulary = tuple(
          v.decode('utf-8') if isinstance(v, bytes) else str(v)
          for v in tf_transform_output.vocabulary_by_name(name))
    feature_list.append(Feature(name=name, dtype=dtype, required=required,
                                treatment=treatment.get(name, UNUSED),
                                vocabulary=vocabulary))
  return Contract(dataset=spec.name, task=spec.task, label=spec.label_key,
                  classes=tuple(spec.classes),
                  outputs=output_names(spec.task),
                  features=tuple(feature_list),
                  ignored=tuple(sorted(spec.excluded_columns)),
                  decision_threshold=(decision.threshold if decision
                                      else None),
                  decision_rule=decision.rule if decision else None,
                  model=choice.chosen if choice else None,
                  model_metric=choice.metric if choice else None,
                  candidates=(choice.to_dict()['scores'] if choice
                              else None))


def write(serving_model_dir: str, spec: features.DatasetSpec,
          tf_transform_output: Any,
          decision: Optional[decision_lib.Decision] = None,
          choice: Optional[Any] = None) -> str:
  """Writes the contract into a saved model's `assets.extra/`; its path.

  The file is the same for the same model (sorted keys, no timestamps).
  """
  import tensorflow as tf
  contract = build(spec, tf_transform_output, decision, choice)
  folder = os.path.join(serving_model_dir, ASSETS_EXTRA)
  tf.io.gfile.makedirs(folder)
  path = os.path.join(folder, CONTRACT_FILE)
  with tf.io.gfile.GFile(path, 'w') as f:
    f.write(json.dumps(contract.to_dict(), indent=1, sort_keys=True) + '\n')
  return path
