"""A zero-config run's request: the dataset config and schema are drafted.

`--label COLUMN --task T` (`pipeline.flags.draft_request`) asks the local
run to read the data, draft a dataset config and a curated schema from its
statistics (`pipeline.local.drafting`), and run with them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Sequence
from typing import Tuple

from models import features
from pipeline.definition import input_formats


@dataclasses.dataclass(frozen=True)
class DraftRequest:
  """A zero-config run: the dataset config and schema are drafted first."""
  name: str
  label: str
  task: str
  data_root: str
  positive_label: Tuple[str, ...] = ()
  input_format: str = input_formats.CSV
  # --draft-only: stop once the drafts are written, before Transform.
  draft_only: bool = False

  def provisional_spec(self, label_values: Sequence[str]
                       ) -> features.DatasetSpec:
    """What is known before the data is profiled: label, task and classes.

    Args:
      label_values: The distinct labels the input check counted.
    """
    classes: Tuple[str, ...] = ()
    if self.task == features.MULTICLASS:
      classes = features.sorted_classes(label_values)
    elif self.task == features.BINARY and self.positive_label:
      negative = [v for v in features.sorted_classes(label_values)
                  if v not in self.positive_label]
      classes = (negative[0] if negative else 'other',
                 self.positive_label[0])
    return features.DatasetSpec(
        name=self.name, label_key=self.label, task=self.task,
        label_positive_values=self.positive_label, label_classes=classes)


def dataset_name_from(data_root: str) -> str:
  """A dataset name from the data folder's name: 'my-data/' -> 'my_data'."""
  base = os.path.basename(os.path.normpath(data_root)) or 'dataset'
  name = re.sub(r'[^a-z0-9_]+', '_', base.lower()).strip('_')
  return name or 'dataset'
