"""A range of spans read by one ExampleGen run: `--span A-B`.

TFX's ExampleGen records one span per Examples artifact, and its input
processor refuses a `RangeConfig.static_range` whose start and end differ.
Its documented way to train on several spans is one ExampleGen run per span
and a resolver that hands Transform and the Trainer several Examples
artifacts; but StatisticsGen, the ExampleValidator, the drift gate and the
Evaluator each take one.

So the project's file ExampleGens read the whole range in one run, into one
Examples artifact whose span is the range's last, and whose custom property
`span_range_first` names its first:

* `SpanRangeDriver`, their driver, resolves each span of the range with
  TFX's own function (the same pattern filling and file fingerprint as for
  one span), fails on a span without files, and fingerprints the range as
  the list of its spans' fingerprints: ExampleGen's cache is hit only when
  every span is unchanged. A single span goes to TFX's driver unchanged.
* `every_span` wraps an executor's reader: it reads each span's pattern
  with it and flattens the rows, before the executor splits them by hash.
  A row lands in the same split whether it is read alone or in a range.

Everything after ExampleGen sees one Examples artifact, as with one span.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

import apache_beam as beam
from tfx.components.example_gen import driver
from tfx.components.example_gen import utils as example_gen_utils
from tfx.orchestration.portable import data_types as portable_data_types
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2
from tfx.proto.orchestration import driver_output_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

# Exec property the driver adds for the executor: the range's resolved
# split patterns, one per span, as a JSON list.
PATTERNS_KEY = 'span_range_patterns'
# Custom property of the Examples artifact: the range's first span.
FIRST_SPAN = 'span_range_first'

ReadSplit = Callable[[Dict[str, Any], str], beam.PTransform]


def static_range(range_config_json: Optional[str]
                 ) -> Optional[Tuple[int, int]]:
  """(first, last) of a `static_range` with first < last; else None."""
  if not range_config_json:
    return None
  range_config = proto_utils.json_to_proto(range_config_json,
                                           range_config_pb2.RangeConfig())
  if not range_config.HasField('static_range'):
    return None
  first = range_config.static_range.start_span_number
  last = range_config.static_range.end_span_number
  return (first, last) if first < last else None


def resolve(input_base: str, splits: List[example_gen_pb2.Input.Split],
            first: int, last: int) -> Tuple[str, List[str]]:
  """(fingerprint, the single split's pattern for each span) of a range.

  Each span is resolved as TFX resolves one: its `{SPAN}` filled in, its
  files listed and fingerprinted.

  Raises:
    ValueError: Not exactly one input split (the project's ExampleGens
      split by hash), or a span whose folder has no files.
  """
  if len(splits) != 1:
    raise ValueError(
        f'A range of spans (spans {first}-{last}) is read as one input '
        f'split; the input config has {len(splits)}.')
  fingerprints, patterns = [], []
  for span in range(first, last + 1):
    resolved = [copy.deepcopy(split) for split in splits]
    one = range_config_pb2.RangeConfig(
        static_range=range_config_pb2.StaticRange(
            start_span_number=span, end_span_number=span))
    try:
      fingerprint, _, _ = (
          example_gen_utils.calculate_splits_fingerprint_span_and_version(
              input_base, resolved, one))
    except (ValueError, RuntimeError) as e:
      raise ValueError(f'Span {span} of the range {first}-{last} under '
                       f'{input_base} cannot be read: {e}') from e
    fingerprints.append(f'span {span}: {fingerprint}')
    patterns.append(resolved[0].pattern)
  return '\n'.join(fingerprints), patterns


class SpanRangeDriver(driver.FileBasedDriver):
  """TFX's file ExampleGen driver, which also reads a range of spans."""

  def resolve_exec_properties(self, exec_properties: Dict[str, Any],
                              pipeline_info: Any,
                              component_info: Any) -> Dict[str, Any]:
    span_range = static_range(
        exec_properties.get(standard_component_specs.RANGE_CONFIG_KEY))
    if span_range is None:
      return super().resolve_exec_properties(exec_properties, pipeline_info,
                                             component_info)
    first, last = span_range
    input_config = proto_utils.json_to_proto(
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY],
        example_gen_pb2.Input())
    fingerprint, patterns = resolve(
        exec_properties[standard_component_specs.INPUT_BASE_KEY],
        list(input_config.splits), first, last)
    # The input config names the last span, as for one span; the executor
    # reads every pattern of the range.
    input_config.splits[0].pattern = patterns[-1]
    exec_properties[standard_component_specs.INPUT_CONFIG_KEY] = (
        proto_utils.proto_to_json(input_config))
    exec_properties[example_gen_utils.SPAN_PROPERTY_NAME] = last
    exec_properties[example_gen_utils.VERSION_PROPERTY_NAME] = None
    exec_properties[example_gen_utils.FINGERPRINT_PROPERTY_NAME] = fingerprint
    exec_properties[PATTERNS_KEY] = json.dumps(patterns)
    return exec_properties

  def run(self, execution_info: portable_data_types.ExecutionInfo
          ) -> driver_output_pb2.DriverOutput:
    result = super().run(execution_info)
    span_range = static_range(execution_info.exec_properties.get(
        standard_component_specs.RANGE_CONFIG_KEY))
    if span_range is not None:
      for artifact in result.output_artifacts[
          standard_component_specs.EXAMPLES_KEY].artifacts:
        artifact.custom_properties[FIRST_SPAN].int_value = span_range[0]
    return result


def span_patterns(exec_properties: Dict[str, Any]) -> List[str]:
  """The range's split patterns, one per span; [] for one span."""
  patterns = exec_properties.get(PATTERNS_KEY)
  return json.loads(patterns) if patterns else []


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
def _ReadEverySpan(
    pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
    split_pattern: str, read_split: ReadSplit) -> beam.PCollection:
  """The rows of every span of the range, or of the one split pattern."""
  patterns = span_patterns(exec_properties)
  if not patterns:
    return pipeline | 'ReadSplit' >> read_split(exec_properties,
                                                split_pattern)
  return ([pipeline | f'ReadSpan[{n}]' >> read_split(exec_properties, pattern)
           for n, pattern in enumerate(patterns)]
          | 'FlattenSpans' >> beam.Flatten())


def every_span(read_split: ReadSplit) -> ReadSplit:
  """`read_split`, reading each span of a range when the run has one."""

  def read(exec_properties: Dict[str, Any],
           split_pattern: str) -> beam.PTransform:
    # ptransform_fn: the pipeline comes with `|`, not as an argument.
    return _ReadEverySpan(exec_properties, split_pattern, read_split)

  return read
