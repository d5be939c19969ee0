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
  """
  num_trees: int = 300
  max_depth: int = 6
  shrinkage: float = 0.1
  min_examples: int = 5
  subsample: float = 1.0
  validation_ratio: float = 0.1
  template: str = 'benchmark_rank1@v1'

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
