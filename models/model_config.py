"""Model settings as plain data: no TensorFlow import.

Runners build a `ModelConfig` from flags (their `--help` must not import
TensorFlow), and it reaches the Trainer through `custom_config` as a dict.

Two model families train on the same Transform output:

* `dnn`: the wide-and-deep network (`models/model.py`);
* `gbt`: gradient-boosted trees, TF Decision Forests'
  `GradientBoostedTreesModel` (`models/gbt.py`);
* `auto` trains both side by side and keeps the DNN, the trees or the mean
  of their predictions, whichever has the best proper score on the eval
  split (`models/model_choice.py`).
"""

from __future__ import annotations

import dataclasses
from typing import Any
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Tuple

# Written by the Trainer next to its TensorBoard logs; read by the run summary.
TRAINING_INFO_FILE = 'training_info.json'

# Model families (`model:` in the dataset config, `--model`).
DNN = 'dnn'
GBT = 'gbt'
AUTO = 'auto'
FAMILIES = (DNN, GBT, AUTO)
# What a run trains when neither the flag nor the dataset config names one.
DEFAULT_FAMILY = AUTO


@dataclasses.dataclass(frozen=True)
class GbtConfig:
  """Gradient-boosted trees: the settings `--tune` searches, and the rest.

  The defaults are YDF's own (Yggdrasil Decision Forests, which TF-DF
  wraps), with its published `benchmark_rank1@v1` template on top: the
  settings that ranked first over YDF's benchmark of tabular datasets
  (best-first tree growth, sparse oblique splits, random categorical
  splits), not values chosen on any dataset of this project. YDF holds out
  `validation_ratio` of the training rows and stops adding trees once the
  loss on them stops improving, so `num_trees` is a ceiling.

  Two templates, chosen on the eval split: the template that ranked first
  on YDF's benchmark is not the best on every table (on panel data with a
  household id column YDF's plain defaults were clearly better), so by
  default a second forest grows with YDF's plain defaults beside it, and
  the Trainer keeps the one with the better eval score (`models/gbt.py`).
  A dataset config that names a `template` trains that one alone, and so
  do settings `--tune` chose (they were searched with `template`).

  The refit: the eval split has done its job once it chose the model and
  the decision threshold, so the trees of the kept model grow again on the
  train and eval rows together, as many trees as early stopping kept and
  nothing held out (`models/gbt.py`). The Evaluator's test rows stay
  unseen.

  Attributes:
    num_trees: Most trees to grow.
    max_depth: Deepest tree (YDF's LOCAL growing strategy).
    shrinkage: Learning rate: how much each tree's answer counts.
    min_examples: Fewest training rows in a leaf.
    subsample: Share of the training rows each tree sees (1: all).
    validation_ratio: Share of the training rows held out for early
      stopping (0: none; then all `num_trees` are grown).
    template: A YDF hyper-parameter template ('' for YDF's plain
      defaults); the settings above override it.
    alternative_template: A second template ('' for YDF's plain
      defaults) whose forest grows beside `template`'s, with the same
      settings; the one with the better eval score is kept. None (or the
      same as `template`): `template` alone.
    refit: After the eval split's choice, grow the kept trees again on
      the train and eval rows (False: keep the trees grown on the train
      rows).
  """
  num_trees: int = 300
  max_depth: int = 6
  shrinkage: float = 0.1
  min_examples: int = 5
  subsample: float = 1.0
  validation_ratio: float = 0.1
  template: str = 'benchmark_rank1@v1'
  alternative_template: Optional[str] = ''
  refit: bool = True

  def __post_init__(self) -> None:
    for name in ('num_trees', 'max_depth', 'min_examples'):
      if getattr(self, name) < 1:
        raise ValueError(f'gbt {name} must be >= 1, got '
                         f'{getattr(self, name)}.')
    if not 0 < self.shrinkage <= 1:
      raise ValueError(f'gbt shrinkage must be in (0, 1], got '
                       f'{self.shrinkage}.')
    if not 0 < self.subsample <= 1:
      raise ValueError(f'gbt subsample must be in (0, 1], got '
                       f'{self.subsample}.')
    if not 0 <= self.validation_ratio < 1:
      raise ValueError(f'gbt validation_ratio must be in [0, 1), got '
                       f'{self.validation_ratio}.')

  @property
  def templates(self) -> Tuple[str, ...]:
    """The templates whose forests grow side by side, `template` first
    (it wins a tie)."""
    if self.alternative_template in (None, self.template):
      return (self.template,)
    return (self.template, self.alternative_template)

  @classmethod
  def from_settings(cls, values: Mapping[str, Any]) -> 'GbtConfig':
    """The settings a dataset config's `gbt:` names; the rest default.

    Each value is checked against its field's type, so a quoted number or
    a misspelt boolean is refused with the key named rather than failing
    later in the Trainer. Naming `template` without `alternative_template`
    trains that template alone: whoever chose it did not ask for a
    comparison.

    Raises:
      ValueError: An unknown key, or a value of the wrong type or range.
    """
    known = tuple(field.name for field in dataclasses.fields(cls))
    unknown = sorted(str(k) for k in values if k not in known)
    if unknown:
      raise ValueError(f'unknown key(s) {unknown} in `gbt`; known: '
                       f'{", ".join(known)}.')
    settings = {name: _typed(name, value) for name, value in values.items()}
    if 'template' in settings:
      settings.setdefault('alternative_template', None)
    return cls(**settings)


# The type of each GbtConfig setting a dataset config may name.
_INTEGERS = ('num_trees', 'max_depth', 'min_examples')
_NUMBERS = ('shrinkage', 'subsample', 'validation_ratio')
_TEMPLATES = ('template', 'alternative_template')
_BOOLEANS = ('refit',)


def _typed(name: str, value: Any) -> Any:
  """`value` as GbtConfig's field `name` holds it; ValueError if it is not
  one (YAML's `true` is a bool, `300` an int, `0.1` a float)."""
  if name in _INTEGERS:
    if isinstance(value, bool) or not isinstance(value, int):
      raise ValueError(f'`gbt.{name}` must be an integer, got {value!r}.')
    return value
  if name in _NUMBERS:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      raise ValueError(f'`gbt.{name}` must be a number, got {value!r}.')
    return float(value)
  if name in _TEMPLATES:
    # None is the alternative's "none"; a template is never None.
    if value is None and name == 'alternative_template':
      return None
    if not isinstance(value, str):
      raise ValueError(f"`gbt.{name}` must be a YDF template name ('' for "
                       f"YDF's plain defaults), got {value!r}.")
    return value
  if name in _BOOLEANS:
    if not isinstance(value, bool):
      raise ValueError(f'`gbt.{name}` must be true or false, got {value!r}.')
    return value
  raise ValueError(f'`gbt.{name}` has no known type: add it to the lists '
                   'above `_typed` in models/model_config.py.')


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Which model family trains, and its settings.

  Attributes:
    family: DNN, GBT or AUTO (both; the DNN, the trees or their mean is
      kept, whichever scores best on the eval split).
    gbt: The gradient-boosted trees' settings (GBT and AUTO).
    hidden_units: Sizes of the deep tower's layers.
    dropout: Dropout rate after each deep layer.
    learning_rate: Adam learning rate.
    l2: L2 penalty on embeddings and dense kernels.
    drop_all_features: Zero every input, so the model can only learn the base
      rate: a deliberately useless majority-class model, used to prove that
      the blessing gate rejects it.
  """
  hidden_units: Tuple[int, ...] = (64, 32)
  dropout: float = 0.3
  learning_rate: float = 0.001
  l2: float = 1e-4
  drop_all_features: bool = False
  family: str = DEFAULT_FAMILY
  gbt: GbtConfig = GbtConfig()

  def __post_init__(self) -> None:
    if self.family not in FAMILIES:
      raise ValueError(f'model family must be one of {", ".join(FAMILIES)}, '
                       f'got {self.family!r}.')

  @property
  def trains_dnn(self) -> bool:
    return self.family in (DNN, AUTO)

  @property
  def trains_gbt(self) -> bool:
    return self.family in (GBT, AUTO)

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values: Mapping[str, Any]) -> 'ModelConfig':
    """Inverse of `to_dict`. A dict written before the model families
    existed has no `family` and `gbt`: it was a DNN's."""
    values = dict(values)
    if 'hidden_units' in values:
      values['hidden_units'] = tuple(int(u) for u in values['hidden_units'])
    values.setdefault('family', DNN)
    values['gbt'] = GbtConfig(**(values.get('gbt') or {}))
    return cls(**values)


DEFAULT = ModelConfig()
