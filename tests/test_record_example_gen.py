"""The ExampleGens of the other formats, and the choice between them.

- `record_example_gen.to_example` keeps zeros, which TFX's
  `dict_to_example` turns into missing values;
- the Parquet and Avro readers, run with Beam's TestPipeline on TFX's taxi
  rows, yield every row with its zero tips intact;
- `create_pipeline` picks the ExampleGen by format and keeps its id;
- the Kubeflow V2 spec compiles with each format's executor.
"""

import json

import apache_beam as beam
from apache_beam.testing import test_pipeline
from apache_beam.testing import util as beam_util
import pytest
import tensorflow as tf
from tfx.components.example_gen import utils as tfx_example_gen_utils

from pipeline.components import arrow_csv_example_gen
from pipeline.components import record_example_gen
from pipeline.definition import config as config_lib
from pipeline.definition import dataset_config
from pipeline.definition import input_formats
from pipeline.definition import pipeline as pipeline_lib
from tests import record_files
from tests.conftest import load_runner


def _kinds(example: tf.train.Example):
  return {name: (f.WhichOneof('kind'),
                 list(getattr(f, f.WhichOneof('kind')).value)
                 if f.WhichOneof('kind') else [])
          for name, f in example.features.feature.items()}


def test_zeros_stay_values_and_only_null_and_nan_are_missing():
  row = {'tips': 0.0, 'hour': 0, 'name': '', 'fare': 7.25,
         'company': None, 'miles': float('nan'), 'flag': True}
  assert _kinds(record_example_gen.to_example(row)) == {
      'tips': ('float_list', [0.0]),
      'hour': ('int64_list', [0]),
      'name': ('bytes_list', [b'']),
      'fare': ('float_list', [7.25]),
      'company': (None, []),
      'miles': (None, []),
      'flag': ('int64_list', [1]),
  }


def test_tfxs_own_conversion_loses_the_zeros():
  """Why record_example_gen replaces it (module doc)."""
  example = tfx_example_gen_utils.dict_to_example({'tips': 0.0, 'hour': 0})
  assert _kinds(example) == {'tips': (None, []), 'hour': (None, [])}


def test_lists_numpy_values_and_bytes():
  import numpy as np
  row = {'ints': [1, 2], 'mixed': [1, 2.5], 'np': np.float32(0.5),
         'raw': b'\x00\x01', 'arr': np.array([3, 4]), 'empty': []}
  assert _kinds(record_example_gen.to_example(row)) == {
      'ints': ('int64_list', [1, 2]),
      'mixed': ('float_list', [1.0, 2.5]),
      'np': ('float_list', [0.5]),
      'raw': ('bytes_list', [b'\x00\x01']),
      'arr': ('int64_list', [3, 4]),
      'empty': (None, []),
  }


def test_a_value_no_feature_holds_names_its_column():
  import datetime
  with pytest.raises(TypeError, match="Column 'pickup' holds datetime"):
    record_example_gen.to_example({'pickup': datetime.datetime(2024, 1, 1)})


def _tips(example: tf.train.Example) -> float:
  return example.features.feature['tips'].float_list.value[0]


@pytest.mark.parametrize('input_format, transform', [
    ('parquet', record_example_gen._ParquetToExample),
    ('avro', record_example_gen._AvroToExample),
])
def test_the_readers_keep_every_row_and_its_zero_tips(input_format, transform,
                                                      tmp_path):
  folder = record_files.taxi_folder(input_format, tmp_path)
  _, names, rows = record_files.TAXI[input_format]
  with test_pipeline.TestPipeline() as p:
    examples = p | transform({'input_base': str(folder)}, names[0])
    zero_tips = (examples
                 | 'ZeroTips' >> beam.Filter(lambda e: _tips(e) == 0.0)
                 | 'CountZero' >> beam.combiners.Count.Globally())
    total = examples | 'CountAll' >> beam.combiners.Count.Globally()
    beam_util.assert_that(total, beam_util.equal_to([rows]), label='All')
    # 6,703 of TFX's 10,000 taxi rows have no tip (checked with pyarrow).
    beam_util.assert_that(zero_tips, beam_util.equal_to([6703]),
                          label='Zeros')


def _config(input_format: str, data_root: str = '/data'
            ) -> config_lib.PipelineConfig:
  dataset = dataset_config.load_named('taxi')
  return config_lib.PipelineConfig(
      pipeline_name='p', pipeline_root='/tmp/root', data_root=data_root,
      schema_path=dataset.schema_path, serving_model_dir='/tmp/serving',
      dataset=dataset.spec, input_format=input_format)


@pytest.mark.parametrize('input_format, component_class', [
    (input_formats.CSV, arrow_csv_example_gen.ArrowCsvExampleGen),
    (input_formats.PARQUET, record_example_gen.ParquetExampleGen),
    (input_formats.AVRO, record_example_gen.AvroExampleGen),
    (input_formats.TFRECORD, record_example_gen.TFRecordExampleGen),
])
def test_create_pipeline_picks_the_example_gen_and_keeps_its_id(
    input_format, component_class):
  pipeline = pipeline_lib.create_pipeline(_config(input_format))
  [example_gen] = [c for c in pipeline.components
                   if c.id == pipeline_lib.EXAMPLE_GEN]
  assert type(example_gen) is component_class
  assert example_gen.exec_properties['input_base'] == '/data'
  splits = json.loads(example_gen.exec_properties['output_config'])[
      'split_config']['splits']
  assert [(s['name'], s['hash_buckets']) for s in splits] == [
      ('train', 8), ('eval', 1), ('test', 1)]


@pytest.mark.parametrize('input_format, executor', [
    ('parquet', 'pipeline.components.record_example_gen.ParquetExecutor'),
    ('avro', 'pipeline.components.record_example_gen.AvroExecutor'),
    ('tfrecord', 'pipeline.components.record_example_gen.TFRecordExecutor'),
])
def test_kubeflow_spec_compiles_with_the_formats_executor(
    input_format, executor, tmp_path):
  output = tmp_path / 'p.json'
  assert load_runner('kubeflow_runner').main([
      '--data-root', 'gs://b/data', '--format', input_format,
      '--output-file', str(output)]) == 0
  job = json.loads(output.read_text())
  spec = job['pipelineSpec']
  label = spec['components'][f'{pipeline_lib.EXAMPLE_GEN}']['executorLabel']
  args = spec['deploymentSpec']['executors'][label]['container']['args']
  assert args[args.index('--executor_class_path') + 1] == executor
