"""An ExampleGen that reads a SQL query's rows through SQLAlchemy.

TFX's QueryBasedExampleGen with an executor for any database SQLAlchemy
reaches (`postgresql://` with psycopg2 is in the lock). The rows are
fetched through a server-side cursor in batches of `batch_rows`
(`sql_rows.stream`), so memory stays flat for a table of millions of rows,
and each row becomes a tf.Example with the Parquet / Avro conversion
(`record_example_gen.feature`): NULL is a missing value, integers are
int64, floats and NUMERIC / DECIMAL values float32, text UTF-8 bytes.

The split is TFX's hash split of the serialized examples, so a table that
holds a CSV file's rows, typed as CsvExampleGen types them, gives the very
examples and splits of that CSV file.

Exec properties, and so ML Metadata, hold the URL without its password
(`sql_url.PASSWORD_ENV` carries it) and `rows_fingerprint`, the runner's
hash of the rows the query returned before the run: the query alone would
be a stale cache key for a table that changes.
"""

from __future__ import annotations

import json
from typing import Any
from typing import Dict
from typing import Iterator
from typing import Optional

import apache_beam as beam
import tensorflow as tf
from tfx import types
from tfx.components.example_gen import component as example_gen_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2
from tfx.types import component_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs

from pipeline.components import direct_write
from pipeline.components import record_example_gen
from pipeline.components import sql_rows
from pipeline.facts import kinds as column_kinds

URL_KEY = 'connection_url'
FINGERPRINT_KEY = 'rows_fingerprint'
BATCH_ROWS_KEY = 'batch_rows'
KINDS_KEY = 'column_kinds'
# A column's kind: the tf.train.Feature list that holds its values.
KINDS = tuple(column_kinds.FEATURE_LISTS.values())


def encode_rows(url: str, query: str,
                batch_rows: int = sql_rows.DEFAULT_BATCH_ROWS,
                kinds: Optional[Dict[str, str]] = None) -> Iterator[bytes]:
  """The query's rows as serialized tf.Examples, deterministically.

  A NULL is an empty value list of the column's kind, as CsvExampleGen
  writes an empty cell, so that statistics and splits match.

  Args:
    url: The database.
    query: The SELECT.
    batch_rows: Rows per fetch.
    kinds: Column -> one of KINDS, as the runner's input check read them.
      Without it a column's kind is learnt from its first value, and a NULL
      before that is a feature of no kind.

  Raises:
    sql_rows.SqlSourceError: The database or the query failed.
    TypeError: A column a tf.Example cannot hold (a date); names it.
  """
  known = dict(kinds or {})
  for batch in sql_rows.stream(url, query, batch_rows):
    for row in batch.rows:
      example = tf.train.Example()
      features = example.features.feature
      for name, value in zip(batch.columns, row, strict=True):
        feature = record_example_gen.feature(name, column_kinds.plain(value))
        kind = feature.WhichOneof('kind')
        if kind is None and name in known:
          getattr(feature, known[name]).SetInParent()
        elif kind is not None and name not in known:
          known[name] = kind
        features[name].CopyFrom(feature)
      yield example.SerializeToString(deterministic=True)


class _EncodeQuery(beam.DoFn):

  def __init__(self, url: str, batch_rows: int, kinds: Dict[str, str]):
    super().__init__()
    self._url = url
    self._batch_rows = batch_rows
    self._kinds = kinds

  def process(self, query: str) -> Iterator[bytes]:
    yield from encode_rows(self._url, query, self._batch_rows, self._kinds)


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _QueryToExample(
    pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
    split_pattern: str) -> beam.PCollection:
  """Reads the query (the split's pattern) into serialized tf.Examples."""
  batch_rows = int(exec_properties.get(BATCH_ROWS_KEY) or
                   sql_rows.DEFAULT_BATCH_ROWS)
  kinds = json.loads(exec_properties.get(KINDS_KEY) or '{}')
  return (pipeline
          | 'Query' >> beam.Create([split_pattern])
          | 'SqlRowsToExample' >> beam.ParDo(
              _EncodeQuery(exec_properties[URL_KEY], batch_rows, kinds)))


class Executor(direct_write.DirectWriteExecutor):
  """Query rows -> tf.Examples (see the module doc)."""

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    return _QueryToExample


class SqlExampleGenSpec(standard_component_specs.QueryBasedExampleGenSpec):
  """QueryBasedExampleGen's parameters, plus the database and the rows' hash."""
  PARAMETERS = {
      **standard_component_specs.QueryBasedExampleGenSpec.PARAMETERS,
      URL_KEY: component_spec.ExecutionParameter(type=str),
      FINGERPRINT_KEY: component_spec.ExecutionParameter(type=str,
                                                         optional=True),
      BATCH_ROWS_KEY: component_spec.ExecutionParameter(type=int,
                                                        optional=True),
      KINDS_KEY: component_spec.ExecutionParameter(type=str, optional=True),
  }


class SqlExampleGen(example_gen_component.QueryBasedExampleGen):
  """Reads `query` from the database at `url` (no password in it)."""
  SPEC_CLASS = SqlExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

  def __init__(self, url: str, query: str,
               output_config: example_gen_pb2.Output,
               span: Optional[int] = None, rows_fingerprint: str = '',
               batch_rows: int = sql_rows.DEFAULT_BATCH_ROWS,
               kinds: Optional[Dict[str, str]] = None):
    """Reads the query's rows into hash-split Examples.

    Args:
      url: SQLAlchemy URL without the password.
      query: The SELECT, with any `{SPAN}` already replaced.
      output_config: The hash split.
      span: The span the rows are; recorded on the Examples artifact.
      rows_fingerprint: The runner's hash of the rows (the cache key).
      batch_rows: Rows per fetch.
      kinds: Column -> one of KINDS, from the runner's input check.
    """
    input_config = example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name='single_split', pattern=query)])
    range_config = None
    if span is not None:
      range_config = range_config_pb2.RangeConfig(
          static_range=range_config_pb2.StaticRange(
              start_span_number=span, end_span_number=span))
    spec = SqlExampleGenSpec(
        input_config=input_config, output_config=output_config,
        range_config=range_config,
        output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
        output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        custom_config=None,
        examples=types.Channel(type=standard_artifacts.Examples),
        **{URL_KEY: url, FINGERPRINT_KEY: rows_fingerprint,
           BATCH_ROWS_KEY: batch_rows,
           KINDS_KEY: json.dumps(kinds or {}, sort_keys=True)})
    # Skip QueryBasedExampleGen.__init__, which builds its own spec.
    super(example_gen_component.QueryBasedExampleGen, self).__init__(
        spec=spec)
