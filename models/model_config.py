"""Model settings as plain data: no TensorFlow import.

Runners build a `ModelConfig` from flags (their `--help` must not import
TensorFlow), and it reaches the Trainer through `custom_config` as a dict.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from typing import Dict
from typing import Mapping
from typing import Tuple

# Written by the Trainer next to its TensorBoard logs; read by the run summary.
TRAINING_INFO_FILE = 'training_info.json'


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Architecture and optimizer settings.

  Attributes:
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

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values: Mapping[str, Any]) -> 'ModelConfig':
    values = dict(values)
    if 'hidden_units' in values:
      values['hidden_units'] = tuple(int(u) for u in values['hidden_units'])
    return cls(**values)


DEFAULT = ModelConfig()
