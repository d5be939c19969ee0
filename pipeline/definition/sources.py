"""Which ExampleGen reads the input: one per input format.

Every choice writes the same output (gzipped TFRecord files of tf.Examples,
one folder per split of `output_config`), so everything downstream is the
same whatever the format. The caller gives the component its stable id.

- CSV: `ArrowCsvExampleGen`, CsvExampleGen's semantics read with pyarrow.
- Parquet, Avro: FileBasedExampleGen with the executors of
  `pipeline.components.record_example_gen` (TFX's readers, with a value
  conversion that keeps zeros).
- TFRecord: TFX's ImportExampleGen reader, which takes the tf.Examples as
  they are (gzip for `.gz` names, else uncompressed), in
  `record_example_gen.TFRecordExampleGen`.
- A SQL query (`--sql-url`, `--query`): `SqlExampleGen`, through SQLAlchemy.

A data root of span folders (`pipeline.definition.spans`) is read one span
per run, through TFX's `{SPAN}` input pattern, by the same ExampleGens, or
one range of spans per run (`pipeline.components.span_range`).
"""

from __future__ import annotations

from typing import Optional

from tfx.dsl.components.base import base_component
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2

from pipeline.components import arrow_csv_example_gen
from pipeline.components import record_example_gen
from pipeline.components import sql_example_gen
from pipeline.definition import config as config_lib
from pipeline.definition import input_formats
from pipeline.definition import spans as spans_lib

_EXAMPLE_GENS = {
    input_formats.CSV: arrow_csv_example_gen.ArrowCsvExampleGen,
    input_formats.PARQUET: record_example_gen.ParquetExampleGen,
    input_formats.AVRO: record_example_gen.AvroExampleGen,
    input_formats.TFRECORD: record_example_gen.TFRecordExampleGen,
}


def example_gen(input_format: str, data_root: str,
                output_config: example_gen_pb2.Output,
                sql: Optional[config_lib.SqlSource] = None,
                spans: Optional[spans_lib.SpanInput] = None
                ) -> base_component.BaseComponent:
  """The ExampleGen that reads every file in `data_root` as `input_format`.

  With `spans`, every file of one span folder: the latest, or `spans.span`;
  or of the span folders `spans.first` to `spans.span`.
  With `sql`, the one that reads its query instead.

  Raises:
    ValueError: An unknown format.
  """
  if sql is not None:
    return sql_example_gen.SqlExampleGen(
        url=sql.url, query=sql.query, output_config=output_config,
        span=sql.span, rows_fingerprint=sql.rows_fingerprint,
        kinds=sql.kinds)
  try:
    component_class = _EXAMPLE_GENS[input_format]
  except KeyError:
    raise ValueError(
        f'No ExampleGen for input format {input_format!r}; use one of '
        f'{", ".join(input_formats.FORMATS)}.') from None
  if spans is None:
    return component_class(input_base=data_root, output_config=output_config)
  range_config = None
  if spans.span is not None:
    range_config = range_config_pb2.RangeConfig(
        static_range=range_config_pb2.StaticRange(
            start_span_number=spans.first or spans.span,
            end_span_number=spans.span))
  return component_class(
      input_base=data_root, output_config=output_config,
      input_config=example_gen_pb2.Input(splits=[
          example_gen_pb2.Input.Split(
              name='single_split',
              pattern=f'{spans_lib.FOLDER_PATTERN}/*')]),
      range_config=range_config)
