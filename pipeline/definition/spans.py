"""Data that arrives in spans: `span-1/`, `span-2/`, ... under the data root.

TFX's `{SPAN}` input pattern. A data root whose data sits in `span-N`
folders (N a number without leading zeros) is read one span per run: ExampleGen reads `span-{SPAN}/*` and records the span on its
Examples artifact. Without `--span`, ExampleGen's driver takes the latest
span, the highest number, when the run starts; with `--span N`, span N.

This module finds the folders without TensorFlow, so that the runner's
input check reads the very span ExampleGen will read.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Dict
from typing import Optional
from typing import Tuple

# ExampleGen's input pattern, relative to the data root.
FOLDER_PATTERN = 'span-{SPAN}'
_FOLDER = re.compile(r'span-(\d+)\Z')
# How many span numbers a message lists.
_LISTED = 5


class SpanError(ValueError):
  """The span folders, or the --span asked for, cannot be read."""


@dataclasses.dataclass(frozen=True)
class SpanInput:
  """The data root holds span folders.

  Attributes:
    span: The span to read; None reads the latest when the run starts.
  """
  span: Optional[int] = None

  def __post_init__(self) -> None:
    if self.span is not None and self.span < 1:
      raise SpanError(f'--span {self.span}: spans are numbered from 1.')


def local_spans(data_root: str) -> Dict[int, str]:
  """Span number -> its folder, for a local data root; {} without spans.

  Raises:
    SpanError: A number with leading zeros (`span-01`): TFX finds the
      latest span in it but then fills `{SPAN}` with the bare number, so
      it would read `span-1`.
  """
  if '://' in data_root or not os.path.isdir(data_root):
    return {}
  found: Dict[int, str] = {}
  for name in sorted(os.listdir(data_root)):
    match = _FOLDER.match(name)
    path = os.path.join(data_root, name)
    if not match or not os.path.isdir(path):
      continue
    number = int(match.group(1))
    if number == 0:
      raise SpanError(f'{path}: spans are numbered from 1 (TFX records span 0 '
                      'for data without spans); rename it.')
    if match.group(1) != str(number):
      raise SpanError(
          f'{path}: name span folders without leading zeros (span-{number}, '
          f'not {name}): ExampleGen fills span-{{SPAN}} with the bare '
          'number.')
    found[number] = path
  return found


def input_folder(data_root: str, span_input: Optional[SpanInput]) -> str:
  """The folder whose files this run reads: the span's, or the data root.

  Raises:
    SpanError: See `chosen`.
  """
  if span_input is None or '://' in data_root:
    return data_root  # A remote root is listed by ExampleGen where it runs.
  return chosen(data_root, span_input)[1]


def chosen(data_root: str, span_input: SpanInput) -> Tuple[int, str]:
  """(span number, folder) of the span a local run reads.

  Raises:
    SpanError: --span names a span that has no folder, or the data root
      has no span folders.
  """
  spans = local_spans(data_root)
  if not spans:
    raise SpanError(f'--data-root {data_root} has no span-N folders, which '
                    '--span reads; leave --span out to read its files.')
  number = max(spans) if span_input.span is None else span_input.span
  if number not in spans:
    raise SpanError(f'--span {number}: {data_root} has no folder span-'
                    f'{number} (its spans: {_listed(spans)}).')
  return number, spans[number]


def describe(data_root: str, span_input: SpanInput) -> str:
  """'Span 3 (the latest): DIR/span-3', for the run's first lines."""
  number, folder = chosen(data_root, span_input)
  latest = ' (the latest)' if span_input.span is None else ''
  return f'Span {number}{latest}: {folder}'


def detect(data_root: str, span: Optional[int]) -> Optional[SpanInput]:
  """SpanInput when the data root holds span folders (or --span is given).

  Raises:
    SpanError: See `local_spans` and `input_folder`.
  """
  if local_spans(data_root) or span is not None:
    span_input = SpanInput(span)
    input_folder(data_root, span_input)  # Checks that the span exists.
    return span_input
  return None


def _listed(spans: Dict[int, str]) -> str:
  names = [os.path.basename(spans[n]) for n in sorted(spans)]
  if len(names) > _LISTED:
    names = names[:2] + ['...'] + names[-2:]
  return ', '.join(names)
