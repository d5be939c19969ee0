"""The Arrow CSV reader writes exactly the examples TFX's CsvExampleGen does.

Each case runs TFX's own CSV-to-example transform and ours on the same
files, with Beam's DirectRunner, and compares the deterministic
serializations: byte-identical examples also land in the same hash splits.
"""

import collections
import pathlib
from typing import Dict

import apache_beam as beam
import pytest
import tensorflow as tf
from tfx.components.example_gen import base_example_gen_executor
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from pipeline.components import arrow_csv_example_gen as arrow_gen
from pipeline.components import direct_write
from pipeline.components import record_example_gen
from tests import record_files

CASES = {
    # Empty cells, quoted or not, in every kind of column; 'NA' is text.
    'empty_cells': 'i,f,s\n1,2.5,a\n,,\n3,"",""\n4,1.0,NA\n',
    # Python reads these as ints, Arrow does not: the column stays INT.
    'python_ints': 'a,b\n 7,1_000\n8 ,+2\n',
    # Beyond int64 is STRING; an int column with one float is FLOAT.
    'wide_values': 'big,mixed\n9223372036854775808,1\n1,2.5\n',
    # Numbers Python's float reads: exponents, inf, nan.
    'floats': 'x\n1e5\ninf\nnan\n-0.0\n.5\n',
    # A column that never has a value is an empty Feature().
    'never_set': 'a,b\n1,\n2,\n',
    # Quoted commas and line breaks, and non-ASCII text.
    'quoting': 'a,b\n"x, y",1\n"line\nbreak",2\n"caf\u00e9 \u00fcber",3\n',
}


def _tfx_examples(pipeline: beam.Pipeline, exec_properties, pattern):
  return (pipeline
          | tfx_csv._CsvToExample(exec_properties, pattern)
          | beam.Map(lambda e: e.SerializeToString(deterministic=True)))


def _run(transform, folder: pathlib.Path, name: str) -> collections.Counter:
  """The serialized examples a transform makes of the CSV files in `folder`."""
  exec_properties = {standard_component_specs.INPUT_BASE_KEY: str(folder)}
  prefix = folder.parent / f'{folder.name}-{name}'
  with beam.Pipeline() as pipeline:
    _ = (transform(pipeline, exec_properties, '*.csv')
         | beam.io.WriteToTFRecord(str(prefix), num_shards=1))
  [written] = folder.parent.glob(f'{prefix.name}-*')
  return collections.Counter(
      record.numpy() for record in tf.data.TFRecordDataset(str(written)))


def _both(folder: pathlib.Path) -> Dict[str, collections.Counter]:
  ours = arrow_gen.Executor().GetInputSourceToExamplePTransform()
  return {'tfx': _run(_tfx_examples, folder, 'tfx'),
          'arrow': _run(lambda p, e, s: p | ours(e, s), folder, 'arrow')}


@pytest.mark.parametrize('case', sorted(CASES))
def test_same_examples_as_tfx_csv_example_gen(case, tmp_path):
  folder = tmp_path / 'data'
  folder.mkdir()
  (folder / 'data.csv').write_text(CASES[case], encoding='utf-8')
  examples = _both(folder)
  assert sum(examples['tfx'].values()) == CASES[case].count('\n') - 1 - (
      1 if case == 'quoting' else 0)
  assert examples['arrow'] == examples['tfx'], [
      tf.train.Example.FromString(e) for e in
      (examples['arrow'] - examples['tfx'])]


def test_types_are_inferred_over_every_file(tmp_path):
  folder = tmp_path / 'data'
  folder.mkdir()
  (folder / 'a.csv').write_text('x,y\n1,a\n2,b\n', encoding='utf-8')
  (folder / 'b.csv').write_text('x,y\n2.5,c\n,\n', encoding='utf-8')
  assert arrow_gen.infer_kinds(
      [str(folder / 'a.csv'), str(folder / 'b.csv')]) == {
          'x': arrow_gen.FLOAT, 'y': arrow_gen.STRING}
  examples = _both(folder)
  assert examples['arrow'] == examples['tfx']


def test_files_with_different_headers_are_refused(tmp_path):
  (tmp_path / 'a.csv').write_text('x,y\n1,2\n', encoding='utf-8')
  (tmp_path / 'b.csv').write_text('x,z\n1,2\n', encoding='utf-8')
  with pytest.raises(ValueError, match='must share one'):
    arrow_gen.infer_kinds([str(tmp_path / 'a.csv'), str(tmp_path / 'b.csv')])


def test_a_file_of_many_blocks_reads_to_the_end(tmp_path, monkeypatch):
  """Small blocks: the batches, the read-ahead and the type inference
  across batches (a float only in the last rows) all take part."""
  monkeypatch.setattr(arrow_gen, 'BLOCK_BYTES', 1024)
  folder = tmp_path / 'data'
  folder.mkdir()
  rows = [f'{i},"text {i}, quoted",{i % 7}' for i in range(400)]
  rows[-1] = '399,last,2.5'
  (folder / 'data.csv').write_text('a,b,c\n' + '\n'.join(rows) + '\n',
                                   encoding='utf-8')
  assert arrow_gen.infer_kinds([str(folder / 'data.csv')])['c'] == (
      arrow_gen.FLOAT)
  examples = _both(folder)
  assert sum(examples['tfx'].values()) == 400
  assert examples['arrow'] == examples['tfx']


@pytest.mark.parametrize('args, expected', [
    ([], False),
    (['--direct_running_mode=multi_processing', '--direct_num_workers=0'],
     False),
    (['--runner=DirectRunner'], False),
    (['--runner=DataflowRunner', '--project=p', '--region=r'], True),
])
def test_only_runners_that_really_shuffle_keep_the_reshuffle(args, expected):
  assert direct_write.reshuffles(args) is expected


def _assert_same_records(ours, theirs) -> None:
  """The same records in each split, in any order: the order the runner's
  bundles arrive in is not fixed. A failure counts, it does not print
  thousands of records."""
  assert ours.keys() == theirs.keys()
  for split in ours:
    mine, other = sorted(ours[split]), sorted(theirs[split])
    assert len(mine) == len(other), split
    differ = sum(a != b for a, b in zip(mine, other, strict=True))
    assert differ == 0, f'{split}: {differ} of {len(mine)} records differ'


def _write_splits(executor_do, folder: pathlib.Path, out: pathlib.Path,
                  executor=None, pattern: str = '*.csv'):
  """Runs an ExampleGen `Do` on `folder`; its split files' records, in
  order, and the artifact it filled in."""
  examples = standard_artifacts.Examples()
  examples.uri = str(out)
  output_config = example_gen_pb2.Output(
      split_config=example_gen_pb2.SplitConfig(splits=[
          example_gen_pb2.SplitConfig.Split(name='train', hash_buckets=3),
          example_gen_pb2.SplitConfig.Split(name='eval', hash_buckets=1)]))
  exec_properties = {
      standard_component_specs.INPUT_BASE_KEY: str(folder),
      standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(
          example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(
              name='single_split', pattern=pattern)])),
      standard_component_specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(
          output_config),
      standard_component_specs.OUTPUT_DATA_FORMAT_KEY:
          example_gen_pb2.FORMAT_TF_EXAMPLE,
      standard_component_specs.OUTPUT_FILE_FORMAT_KEY:
          example_gen_pb2.FORMAT_TFRECORDS_GZIP,
  }
  executor_do(executor or arrow_gen.Executor(), {},
              {standard_component_specs.EXAMPLES_KEY: [examples]},
              exec_properties)
  records = {}
  for split in ('train', 'eval'):
    files = sorted((out / f'Split-{split}').glob('data_tfrecord-*.gz'))
    records[split] = [r.numpy() for r in tf.data.TFRecordDataset(
        [str(f) for f in files], compression_type='GZIP')]
  return records, examples


def test_the_write_without_reshuffle_matches_tfx_record_for_record(tmp_path):
  """Skipping TFX's Reshuffle writes the same records to each split, and
  fills in the artifact as the base executor does. The order within a split
  is the order the runner's bundles arrive in, which neither write fixes:
  compared as sorted lists."""
  folder = tmp_path / 'data'
  folder.mkdir()
  rows = [f'{i},{i * 0.5},c{i % 13}' for i in range(3000)]
  (folder / 'data.csv').write_text('a,b,c\n' + '\n'.join(rows) + '\n',
                                   encoding='utf-8')
  tfx_records, tfx_artifact = _write_splits(
      base_example_gen_executor.BaseExampleGenExecutor.Do, folder,
      tmp_path / 'tfx')
  our_records, our_artifact = _write_splits(
      arrow_gen.Executor.Do, folder, tmp_path / 'ours')
  assert [len(tfx_records[s]) for s in ('train', 'eval')] != [0, 0]
  assert sum(len(r) for r in our_records.values()) == 3000
  _assert_same_records(our_records, tfx_records)
  assert our_artifact.split_names == tfx_artifact.split_names
  assert (our_artifact.get_custom_property('payload_format') ==
          tfx_artifact.get_custom_property('payload_format'))
  assert (our_artifact.get_string_custom_property('file_format') ==
          tfx_artifact.get_string_custom_property('file_format') ==
          'tfrecords_gzip')


@pytest.mark.parametrize('executor, pattern', [
    (record_example_gen.ParquetExecutor, '*.parquet'),
    (record_example_gen.AvroExecutor, '*.avro'),
], ids=['parquet', 'avro'])
def test_the_record_readers_write_without_reshuffle_as_tfx_does(
    executor, pattern, tmp_path):
  """Their transforms give tf.Examples, not bytes: serialized on the way."""
  folder = record_files.tfx_external_data() / pattern.split('.')[-1]
  tfx_records, _ = _write_splits(
      base_example_gen_executor.BaseExampleGenExecutor.Do, folder,
      tmp_path / 'tfx', executor(), pattern)
  our_records, _ = _write_splits(executor.Do, folder, tmp_path / 'ours',
                                 executor(), pattern)
  assert sum(len(r) for r in our_records.values()) == 10_000

  def canonical(records):  # tf.Example maps serialize in any key order.
    return {split: [tf.train.Example.FromString(r).SerializeToString(
        deterministic=True) for r in rows] for split, rows in records.items()}

  _assert_same_records(canonical(our_records), canonical(tfx_records))
