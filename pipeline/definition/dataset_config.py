"""Dataset configs: the YAML file that says what a CSV's columns are.

A dataset config is data, not code. It names the label and the task, puts
every column into one treatment group (or `ignored`, with the reason), lists
the slices the Evaluator reports, and may set gate thresholds and the number
of training steps. The curated schema sits next to it as `schema.pbtxt`; the
two together are a dataset's contract. `intended_use` and `limitations` are
text for people: the pushed model's card shows them.

`required` lists the feature columns a serving request must carry; every
other feature may be missing or empty in a request and is then treated as
a gap in training is. The curated schema gives exactly these columns a
shape (tf.Transform parses them dense), and Transform refuses a pair of
files that disagree. `decision` (binary only) says how the Trainer chooses
the decision threshold on the eval split: `{rule: f1}` (the default) or
`{rule: cost, false_positive_cost: 1, false_negative_cost: 5}`
(models/decision.py). `model` picks the model family: `dnn` (the
wide-and-deep network), `gbt` (gradient-boosted trees) or `auto` (both,
the DNN, the trees or their mean kept, whichever scores best on the eval
split; the default when the key is absent). `gbt` sets the trees' settings
(`model_config.GbtConfig`'s fields, e.g. `{template: '', refit: false}`);
a setting it leaves out keeps its default.

    name: penguins
    label: species
    task: multiclass            # binary | multiclass | regression
    classes: [Adelie, Chinstrap, Gentoo]
    model: auto                 # dnn | gbt | auto
    columns:
      numeric: [bill_length_mm, body_mass_g]
      categorical: [island, sex]
      ignored: {id: every value is unique (an ID)}
    required: [bill_length_mm]  # a request without it is refused
    slices: [island]
    gate: {min_auc: 0.8}
    intended_use: Teaching examples; not for identifying birds in the field.
    limitations: Three islands of one archipelago, 2007-2009.

`load` parses and checks a file; `dump` writes one (the drafts a zero-config
run produces). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Tuple

import yaml

from models import decision as decision_lib
from models import features
from models import model_config as model_config_lib
from models import treatments
from pipeline.definition import config as config_lib
from pipeline.facts import files
import schema as schema_lib

CONFIG_FILE = files.DATASET_CONFIG_FILE

# `columns:` holds a group per column treatment (models/treatments.py, its
# `key`), then `ignored`.
IGNORED = 'ignored'
COLUMN_KEYS = tuple(t.key for t in treatments.CONFIG_ORDER) + (IGNORED,)
ENCODING_KEYS = ('vocab_top_k', 'oov_buckets', 'num_buckets')
TOP_LEVEL_KEYS = ('name', 'label', 'task', 'positive_label', 'classes',
                  'columns', 'required', 'slices', 'encoding', 'gate',
                  'decision', 'model', 'gbt', 'training', 'notes') + (
                      features.DOCUMENTATION_FIELDS)
# Gate keys of earlier versions, and what replaced them.
REMOVED_GATE_KEYS = {
    'min_accuracy_lift': (
        'the gate no longer judges accuracy at threshold 0.5: it asks that '
        "the AUC's lower confidence bound exceed 0.5 (and the AUC reach "
        '`min_auc`); remove the key (docs/own-data.md, "The gate")'),
}
TRAINING_KEYS = ('train_steps', 'per_replica_batch_size')


class DatasetConfigError(ValueError):
  """The dataset config file is unreadable or inconsistent."""


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
  """A parsed dataset config.

  Attributes:
    spec: The columns, label and task, as the pipeline's `DatasetSpec`.
    gate: Gate thresholds the file sets (a subset of GATE_THRESHOLDS).
    training: Training settings the file sets (a subset of TRAINING_KEYS).
    notes: Why each column got its treatment (column -> reason).
    path: The file it came from ('' when built in memory).
    model: The model family the file names (`model_config.FAMILIES`); None
      when it names none (then `model_config.DEFAULT_FAMILY`).
    gbt: The gradient-boosted trees' settings the file sets, by
      `model_config.GbtConfig` field (`GbtConfig.from_settings` reads
      them).
  """
  spec: features.DatasetSpec
  gate: Mapping[str, float] = dataclasses.field(default_factory=dict)
  training: Mapping[str, int] = dataclasses.field(default_factory=dict)
  notes: Mapping[str, str] = dataclasses.field(default_factory=dict)
  path: str = ''
  model: Optional[str] = None
  gbt: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def schema_path(self) -> str:
    """The curated schema that belongs to this config: its neighbour."""
    return os.path.join(os.path.dirname(os.path.abspath(self.path)),
                        files.SCHEMA_FILE)

  def gate_config(self, **overrides: Any) -> config_lib.GateConfig:
    """GateConfig from the file's thresholds; `overrides` win (flags)."""
    values = dict(self.gate)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return config_lib.GateConfig(**values)


def schema_sha256(path: str) -> str:
  """Hex SHA-256 of a local curated schema's bytes, ImportSchemaGen's cache
  key (`components/curated_schema.py`); '' for a remote or missing file."""
  if '://' in path or not os.path.isfile(path):
    return ''
  with open(path, 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()


def named_path(name: str) -> str:
  """The committed config of dataset `name`: schema/<name>/dataset.yaml."""
  return os.path.join(schema_lib.SCHEMA_ROOT, name, CONFIG_FILE)


def known_datasets() -> Tuple[str, ...]:
  """Names of the datasets that have a committed config under schema/."""
  root = schema_lib.SCHEMA_ROOT
  return tuple(sorted(
      name for name in os.listdir(root)
      if os.path.isfile(os.path.join(root, name, CONFIG_FILE))))


def load_named(name: str) -> DatasetConfig:
  path = named_path(name)
  if not os.path.isfile(path):
    raise DatasetConfigError(
        f'No dataset config for {name!r} at {path}. Known datasets: '
        f'{", ".join(known_datasets()) or "none"}. Pass --dataset-config FILE '
        'for another dataset, or --label and --task to draft one.')
  return load(path)


def load(path: str) -> DatasetConfig:
  """Reads and checks a dataset config file.

  Raises:
    DatasetConfigError: Naming the file and the key that is wrong.
  """
  try:
    with open(path, encoding='utf-8') as f:
      raw = yaml.safe_load(f)
  except OSError as e:
    raise DatasetConfigError(f'{path}: cannot read the dataset config: {e}'
                             ) from e
  except yaml.YAMLError as e:
    raise DatasetConfigError(f'{path}: not valid YAML: {e}') from e
  try:
    return parse(raw, path)
  except (TypeError, ValueError) as e:
    raise DatasetConfigError(f'{path}: {e}') from e


def parse(raw: Any, path: str = '') -> DatasetConfig:
  """Builds a DatasetConfig from parsed YAML; raises ValueError on errors."""
  if not isinstance(raw, dict):
    raise ValueError('the file must be a mapping with at least `name`, '
                     '`label` and `task`.')
  _no_unknown(raw, TOP_LEVEL_KEYS, 'top level')
  for key in ('name', 'label', 'task'):
    if not raw.get(key):
      raise ValueError(f'`{key}` is required.')
  columns = raw.get('columns') or {}
  _no_unknown(columns, COLUMN_KEYS, '`columns`')
  kwargs: Dict[str, Any] = {
      'name': str(raw['name']),
      'label_key': str(raw['label']),
      'task': str(raw['task']),
      'label_positive_values': _strings(raw.get('positive_label'),
                                        'positive_label'),
      'label_classes': _strings(raw.get('classes'), 'classes'),
      'slice_features': _strings(raw.get('slices'), 'slices'),
      'required_features': _strings(raw.get('required'), 'required'),
  }
  for treatment in treatments.CONFIG_ORDER:
    kwargs[treatment.spec_field] = _group(columns, treatment)
  ignored = columns.get(IGNORED) or {}
  if isinstance(ignored, list):
    ignored = {str(c): '' for c in ignored}
  if not isinstance(ignored, dict):
    raise ValueError('`columns.ignored` maps a column to the reason it is not '
                     'a model input.')
  kwargs['excluded_columns'] = tuple(str(c) for c in ignored)
  encoding = raw.get('encoding') or {}
  _no_unknown(encoding, ENCODING_KEYS, '`encoding`')
  for key, value in encoding.items():
    kwargs[key] = _int(value, f'encoding.{key}')
  for key in features.DOCUMENTATION_FIELDS:
    if raw.get(key) is not None:
      kwargs[key] = _text(raw[key], key)
  decision = raw.get('decision') or {}
  if not isinstance(decision, dict):
    raise ValueError('`decision` must be a mapping, e.g. {rule: cost, '
                     'false_positive_cost: 1, false_negative_cost: 5}.')
  if decision and str(raw['task']) != features.BINARY:
    raise ValueError('`decision` (the decision threshold rule) applies to '
                     f'binary tasks only, not {raw["task"]}; remove it.')
  rule = decision_lib.DecisionRule.from_dict(decision)
  kwargs.update(decision_rule=rule.rule,
                false_positive_cost=rule.false_positive_cost,
                false_negative_cost=rule.false_negative_cost)
  spec = features.DatasetSpec(**kwargs)

  gate = raw.get('gate') or {}
  for key, why in REMOVED_GATE_KEYS.items():
    if isinstance(gate, dict) and key in gate:
      raise ValueError(f'`gate.{key}` was removed: {why}.')
  _no_unknown(gate, config_lib.GATE_THRESHOLDS, '`gate`')
  gate = {k: (_int(v, f'gate.{k}') if k == 'min_example_count'
              else _float(v, f'gate.{k}')) for k, v in gate.items()}
  config_lib.GateConfig(**gate)  # Range checks, with the field named.
  training = raw.get('training') or {}
  _no_unknown(training, TRAINING_KEYS, '`training`')
  training = {k: _int(v, f'training.{k}') for k, v in training.items()}
  notes = {str(k): str(v) for k, v in ignored.items() if v}
  notes.update({str(k): str(v) for k, v in (raw.get('notes') or {}).items()})
  model = raw.get('model')
  if model is not None and model not in model_config_lib.FAMILIES:
    raise ValueError(f'`model` must be one of '
                     f'{", ".join(model_config_lib.FAMILIES)}, got {model!r}.')
  gbt = raw.get('gbt') or {}
  if not isinstance(gbt, dict):
    raise ValueError("`gbt` maps the trees' settings to values, e.g. "
                     "{template: '', refit: false}.")
  # Keys, types and ranges, each with the key named; the Trainer reads the
  # same settings through the same function (pipeline/flags.py).
  model_config_lib.GbtConfig.from_settings(gbt)
  return DatasetConfig(spec=spec, gate=gate, training=training, notes=notes,
                       path=path, model=model, gbt=dict(gbt))


def to_dict(config: DatasetConfig) -> Dict[str, Any]:
  """The YAML structure of a config (inverse of `parse`)."""
  spec = config.spec
  columns: Dict[str, Any] = {}
  for treatment in treatments.CONFIG_ORDER:
    entries = spec.entries(treatment)
    if not entries:
      continue
    if treatment.parameter is None:
      columns[treatment.key] = [column for column, _ in entries]
    else:
      columns[treatment.key] = dict(entries)
  if spec.excluded_columns:
    columns[IGNORED] = {c: config.notes.get(c, '')
                        for c in spec.excluded_columns}
  raw: Dict[str, Any] = {'name': spec.name, 'label': spec.label_key,
                         'task': spec.task}
  if spec.label_positive_values:
    raw['positive_label'] = list(spec.label_positive_values)
  if spec.label_classes:
    raw['classes'] = list(spec.label_classes)
  raw['columns'] = columns
  if spec.required_features:
    raw['required'] = list(spec.required_features)
  if spec.slice_features:
    raw['slices'] = list(spec.slice_features)
  for key in features.DOCUMENTATION_FIELDS:
    if getattr(spec, key) != features.NOT_STATED:
      raw[key] = getattr(spec, key)
  defaults = features.DatasetSpec(name='x', label_key='y')
  encoding = {k: getattr(spec, k) for k in ENCODING_KEYS
              if getattr(spec, k) != getattr(defaults, k)}
  if encoding:
    raw['encoding'] = encoding
  if config.gate:
    raw['gate'] = dict(config.gate)
  if spec.decision != decision_lib.DecisionRule():
    raw['decision'] = spec.decision.to_dict()
  if config.model is not None:
    raw['model'] = config.model
  if config.gbt:
    raw['gbt'] = dict(config.gbt)
  if config.training:
    raw['training'] = dict(config.training)
  used = set(spec.excluded_columns)
  notes = {k: v for k, v in config.notes.items() if k not in used}
  if notes:
    raw['notes'] = notes
  return raw


def dump(config: DatasetConfig, path: str, header: str = '') -> str:
  """Writes `config` as YAML to `path`, after `header` comment lines."""
  text = yaml.safe_dump(to_dict(config), sort_keys=False, width=78,
                        allow_unicode=True)
  comment = ''.join(f'# {line}'.rstrip() + '\n'
                    for line in header.splitlines())
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(comment + text)
  return path


def _group(columns: Mapping[str, Any], treatment: treatments.Treatment
           ) -> Tuple[Any, ...]:
  """A treatment's `columns:` entry as its DatasetSpec field's value: a list
  of columns, or a mapping {column: value} for one with a parameter."""
  key = f'columns.{treatment.key}'
  parameter = treatment.parameter
  if parameter is None:
    return _strings(columns.get(treatment.key), key)
  values = columns.get(treatment.key) or {}
  if not isinstance(values, dict):
    raise ValueError(f'`{key}` maps a column to its {parameter.name}, e.g. '
                     f'{parameter.example}.')
  return tuple((str(k), _int(v, f'{key}.{k}')) for k, v in values.items())


def _no_unknown(values: Any, known: Tuple[str, ...], where: str) -> None:
  if not isinstance(values, dict):
    raise ValueError(f'{where} must be a mapping.')
  unknown = sorted(str(k) for k in values if k not in known)
  if unknown:
    raise ValueError(f'unknown key(s) {unknown} in {where}; known: '
                     f'{", ".join(known)}.')


def _strings(value: Any, key: str) -> Tuple[str, ...]:
  if value is None:
    return ()
  if isinstance(value, (str, int, float)) and not isinstance(value, bool):
    return (_label_text(value),)
  if not isinstance(value, list):
    raise ValueError(f'`{key}` must be a list, got {value!r}.')
  return tuple(_label_text(v) for v in value)


def _label_text(value: Any) -> str:
  """YAML reads `1` as an int and `1.0` as a float; CSV cells are text."""
  if isinstance(value, float) and value.is_integer():
    return str(int(value))
  return str(value)


def _text(value: Any, key: str) -> str:
  if not isinstance(value, str) or not value.strip():
    raise ValueError(f'`{key}` must be text, got {value!r}.')
  return value.strip()


def _int(value: Any, key: str) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or (
      isinstance(value, float) and not value.is_integer()):
    raise ValueError(f'`{key}` must be an integer, got {value!r}.')
  return int(value)


def _float(value: Any, key: str) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ValueError(f'`{key}` must be a number, got {value!r}.')
  return float(value)
