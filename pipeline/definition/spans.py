"""Data that arrives in spans: `span-1/`, `span-2/`, ... under the data root.

TFX's `{SPAN}` input pattern. A data root whose data sits in `span-N`
folders (N a number without leading zeros) is read one span per run, or
one range of spans: ExampleGen reads `span-{SPAN}/*` and records the span
on its Examples artifact. Without `--span`, ExampleGen's driver takes the
latest span, the highest number, when the run starts; with `--span N`,
span N; with `--span A-B`, spans A to B together as one Examples artifact
of span B (`pipeline.components.span_range`).

This module finds the folders without TensorFlow, so that the runner's
input check reads the very span ExampleGen will read.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

# ExampleGen's input pattern, relative to the data root.
FOLDER_PATTERN = 'span-{SPAN}'
_FOLDER = re.compile(r'span-(\d+)\Z')
_FLAG = re.compile(r'(\d+)(?:\s*-\s*(\d+))?\Z')
# How many span numbers a message lists.
_LISTED = 5


class SpanError(ValueError):
  """The span folders, or the --span asked for, cannot be read."""


@dataclasses.dataclass(frozen=True)
class SpanInput:
  """The data root holds span folders.

  Attributes:
    span: The span to read, the last of a range; None reads the latest
      when the run starts.
    first: The first span of a range `first`-`span`; None for one span.
  """
  span: Optional[int] = None
  first: Optional[int] = None

  def __post_init__(self) -> None:
    if self.span is not None and self.span < 1 or (
        self.first is not None and self.first < 1):
      raise SpanError(f'--span {self.flag()}: spans are numbered from 1.')
    if self.first is not None and (self.span is None or
                                   self.first >= self.span):
      raise SpanError(f'--span {self.flag()}: a range goes from a lower to '
                      'a higher span, e.g. --span 2-4.')

  @property
  def numbers(self) -> Tuple[int, ...]:
    """The spans asked for, in order; () for the latest."""
    if self.span is None:
      return ()
    return tuple(range(self.first or self.span, self.span + 1))

  def flag(self) -> str:
    """As the --span flag writes it: '3', '2-4', or '' for the latest."""
    if self.span is None:
      return ''
    return f'{self.first}-{self.span}' if self.first else str(self.span)


def parse(text: str) -> SpanInput:
  """`--span N` or `--span A-B` (spans A to B, both included).

  Raises:
    SpanError: Neither form, or a range that does not go up.
  """
  match = _FLAG.match(text.strip())
  if not match:
    raise SpanError(f'--span {text}: give a span number (--span 3) or a '
                    'range of spans (--span 2-4).')
  first, last = match.group(1), match.group(2)
  if last is None:
    return SpanInput(int(first))
  return SpanInput(int(last), first=int(first))


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
  """The folder whose files this run reads: the (last) span's, or the root.

  Raises:
    SpanError: See `chosen`.
  """
  return input_folders(data_root, span_input)[-1]


def input_folders(data_root: str, span_input: Optional[SpanInput]
                  ) -> List[str]:
  """Every folder whose files this run reads, in span order.

  Raises:
    SpanError: See `chosen`.
  """
  if span_input is None or '://' in data_root:
    return [data_root]  # A remote root is listed by ExampleGen where it runs.
  return [folder for _, folder in chosen(data_root, span_input)]


def chosen(data_root: str, span_input: SpanInput) -> List[Tuple[int, str]]:
  """(span number, folder) of each span a local run reads, in order.

  Raises:
    SpanError: --span names a span that has no folder, or the data root
      has no span folders.
  """
  spans = local_spans(data_root)
  if not spans:
    raise SpanError(f'--data-root {data_root} has no span-N folders, which '
                    '--span reads; leave --span out to read its files.')
  numbers = span_input.numbers or (max(spans),)
  missing = [n for n in numbers if n not in spans]
  if missing:
    names = ', '.join(f'span-{n}' for n in missing[:_LISTED])
    raise SpanError(f'--span {span_input.flag()}: {data_root} has no folder '
                    f'{names} (its spans: {_listed(spans)}).')
  return [(n, spans[n]) for n in numbers]


def describe(data_root: str, span_input: SpanInput) -> str:
  """'Span 3 (the latest): DIR/span-3', for the run's first lines.

  A range: 'Spans 2-4: DIR/span-2 ... DIR/span-4 (3 folders)'.
  """
  folders = chosen(data_root, span_input)
  if len(folders) > 1:
    return (f'Spans {span_input.flag()}: {folders[0][1]} ... '
            f'{folders[-1][1]} ({len(folders)} folders, read together)')
  [(number, folder)] = folders
  latest = ' (the latest)' if span_input.span is None else ''
  return f'Span {number}{latest}: {folder}'


def detect(data_root: str, span: Optional[str]) -> Optional[SpanInput]:
  """SpanInput when the data root holds span folders (or --span is given).

  Args:
    data_root: The --data-root.
    span: The --span flag as given: 'N', 'A-B', or None.

  Raises:
    SpanError: See `parse`, `local_spans` and `input_folder`.
  """
  if local_spans(data_root) or span is not None:
    span_input = parse(str(span)) if span is not None else SpanInput()
    input_folder(data_root, span_input)  # Checks that the spans exist.
    return span_input
  return None


def _listed(spans: Dict[int, str]) -> str:
  names = [os.path.basename(spans[n]) for n in sorted(spans)]
  if len(names) > _LISTED:
    names = names[:2] + ['...'] + names[-2:]
  return ', '.join(names)
