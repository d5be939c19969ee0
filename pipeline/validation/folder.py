"""The files of a data folder, as ExampleGen's default pattern ('*') reads
them: every entry, sorted; a sub-folder is a problem."""

from __future__ import annotations

import dataclasses
import os
from typing import List

from pipeline.validation.problems import Collector
from pipeline.validation.problems import InputCheckError
from pipeline.validation.problems import Problem


@dataclasses.dataclass(frozen=True)
class FileKind:
  """How the folder messages name the input files and their reader."""
  files: str = 'CSV files'
  one: str = 'a CSV file'
  requirement: str = ' with a header row'
  reader: str = 'CsvExampleGen'


def list_inputs(data_root: str, collector: Collector,
                kind: FileKind) -> List[str]:
  """The files ExampleGen would read, sorted.

  Raises:
    InputCheckError: No folder, or nothing to read in it.
  """
  if not os.path.exists(data_root):
    raise InputCheckError([Problem(
        data_root, 'data folder does not exist; pass --data-root with a folder '
        f'of {kind.files}.')])
  if not os.path.isdir(data_root):
    raise InputCheckError([Problem(
        data_root, 'is a file, not a folder; pass its parent folder as '
        '--data-root.')])
  entries = sorted(os.listdir(data_root))
  if not entries:
    raise InputCheckError([Problem(
        data_root, f'data folder is empty; put one or more {kind.files}'
        f'{kind.requirement} in it.')])
  files = []
  for name in entries:
    path = os.path.join(data_root, name)
    if os.path.isdir(path):
      collector.add(Problem(
          path, f'is a folder; {kind.reader} reads every entry of '
          f'--data-root as {kind.one}, so move sub-folders out of it.'))
    else:
      files.append(path)
  if not files and not collector.problems:
    raise InputCheckError([Problem(
        data_root, f'no {kind.files} in the data folder; add {kind.files}'
        f'{kind.requirement}.')])
  return files
