"""ExampleGens for Parquet, Avro and TFRecord files, on TFX's own.

TFX ships executors for Parquet and Avro
(`tfx.components.example_gen.custom_executors`): Beam's `ReadFromParquet` /
`ReadFromAvro`, then `example_gen.utils.dict_to_example` for each row. That
last step tests `if not value:` to find a missing value, so it also turns
every 0, 0.0 and '' into a missing feature. On the Parquet and Avro taxi
rows that ship with TFX, 6,703 of 10,000 `tips` and 392 `trip_start_hour`
values are 0: a label that is 0 for two thirds of the rows would arrive
empty, and an hour of 0 would become "unknown".

These executors keep TFX's readers and its base executor (split by hash,
write, artifact properties; without the Reshuffle on the DirectRunner, see
`direct_write`) and replace only that conversion with
`to_example`, under which only null (and NaN, pandas' missing value) is
missing. TFRecord files of tf.Examples go through ImportExampleGen's own
reader, with the same base executor.

All three read a range of spans in one run (`span_range`).
"""

from __future__ import annotations

import math
import os
from typing import Any
from typing import Callable
from typing import Dict
from typing import List

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx.components.example_gen import component as example_gen_component
from tfx.components.example_gen.import_example_gen import (
  component as import_example_gen,
)
from tfx.components.example_gen.import_example_gen import (
  executor as import_executor,
)
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_component_specs

from pipeline.components import direct_write
from pipeline.components import span_range


def _values(value: Any) -> List[Any]:
  """A cell as a list of plain Python values, nulls and NaNs dropped."""
  if value is None:
    return []
  if isinstance(value, np.ndarray):
    value = value.tolist()
  if not isinstance(value, (list, tuple)):
    value = [value]
  plain = []
  for item in value:
    if isinstance(item, np.generic):
      item = item.item()
    if item is None or (isinstance(item, float) and math.isnan(item)):
      continue
    plain.append(item)
  return plain


def feature(name: str, value: Any) -> tf.train.Feature:
  """One column's value as a feature: ints, floats, or UTF-8 bytes.

  Raises:
    TypeError: A value a tf.Example cannot hold (a date, a nested record);
      the message names the column.
  """
  values = _values(value)
  if not values:
    return tf.train.Feature()
  if all(isinstance(v, (bool, int)) for v in values):
    return tf.train.Feature(int64_list=tf.train.Int64List(
        value=[int(v) for v in values]))
  if all(isinstance(v, (bool, int, float)) for v in values):
    return tf.train.Feature(float_list=tf.train.FloatList(
        value=[float(v) for v in values]))
  if all(isinstance(v, (str, bytes)) for v in values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[v.encode('utf-8') if isinstance(v, str) else v
               for v in values]))
  kinds = sorted({type(v).__name__ for v in values})
  raise TypeError(
      f"Column {name!r} holds {', '.join(kinds)} values, which a tf.Example "
      'cannot hold; write it as an integer, a float or a string column.')


def to_example(record: Dict[str, Any]) -> tf.train.Example:
  """A row read by Beam (column -> value) as a tf.Example."""
  return tf.train.Example(features=tf.train.Features(feature={
      name: feature(name, value) for name, value in record.items()}))


def _rows_to_example(read: Callable[[str], beam.PTransform], label: str):
  """A transform reading a split's files with `read`, rows to tf.Examples."""

  @beam.ptransform_fn
  @beam.typehints.with_input_types(beam.Pipeline)
  @beam.typehints.with_output_types(tf.train.Example)
  def _ToExample(
      pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
      split_pattern: str) -> beam.pvalue.PCollection:
    pattern = os.path.join(
        exec_properties[standard_component_specs.INPUT_BASE_KEY],
        split_pattern)
    return (pipeline
            | f'ReadFrom{label}' >> read(pattern)
            | 'ToTFExample' >> beam.Map(to_example))

  return _ToExample


_ParquetToExample = _rows_to_example(beam.io.ReadFromParquet, 'Parquet')
_AvroToExample = _rows_to_example(beam.io.ReadFromAvro, 'Avro')


class ParquetExecutor(direct_write.DirectWriteExecutor):
  """Parquet rows -> tf.Examples (see the module doc)."""

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    return span_range.every_span(_ParquetToExample)


class AvroExecutor(direct_write.DirectWriteExecutor):
  """Avro records -> tf.Examples (see the module doc)."""

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    return span_range.every_span(_AvroToExample)


class TFRecordExecutor(direct_write.DirectWriteExecutor):
  """ImportExampleGen's reader, the records taken as they are."""

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    # TFX's method builds its reader without reading the executor's state.
    return span_range.every_span(
        import_executor.Executor.GetInputSourceToExamplePTransform(self))


class ParquetExampleGen(example_gen_component.FileBasedExampleGen):
  """FileBasedExampleGen over Parquet files: same parameters and outputs."""
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(ParquetExecutor)
  DRIVER_CLASS = span_range.SpanRangeDriver


class AvroExampleGen(example_gen_component.FileBasedExampleGen):
  """FileBasedExampleGen over Avro files: same parameters and outputs."""
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(AvroExecutor)
  DRIVER_CLASS = span_range.SpanRangeDriver


class TFRecordExampleGen(import_example_gen.ImportExampleGen):
  """ImportExampleGen, same parameters and outputs, with `direct_write`."""
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(TFRecordExecutor)
  DRIVER_CLASS = span_range.SpanRangeDriver
