"""`--span A-B`: the range driver and the readers, on a few rows.

The driver resolves each span as TFX resolves one, and the executors read
every span of the range into one Examples artifact. The full pipeline on a
range runs in the background span runs (tests/test_spans.py).
"""

import json
import pathlib
from typing import Dict
from typing import List

import pytest
import tensorflow as tf
from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from pipeline.components import arrow_csv_example_gen as arrow_gen
from pipeline.components import record_example_gen
from pipeline.components import span_range
from tests import record_files


def _csv(path: pathlib.Path, text: str) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text, encoding='utf-8')


def _exec_properties(data_root: pathlib.Path, first: int,
                     last: int) -> Dict[str, object]:
  """ExampleGen's exec properties for `--span first-last`."""
  output_config = example_gen_pb2.Output(
      split_config=example_gen_pb2.SplitConfig(splits=[
          example_gen_pb2.SplitConfig.Split(name='train', hash_buckets=3),
          example_gen_pb2.SplitConfig.Split(name='eval', hash_buckets=1)]))
  return {
      standard_component_specs.INPUT_BASE_KEY: str(data_root),
      standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(
          example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(
              name='single_split', pattern='span-{SPAN}/*')])),
      standard_component_specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(
          output_config),
      standard_component_specs.RANGE_CONFIG_KEY: proto_utils.proto_to_json(
          range_config_pb2.RangeConfig(
              static_range=range_config_pb2.StaticRange(
                  start_span_number=first, end_span_number=last))),
      standard_component_specs.OUTPUT_DATA_FORMAT_KEY:
          example_gen_pb2.FORMAT_TF_EXAMPLE,
      standard_component_specs.OUTPUT_FILE_FORMAT_KEY:
          example_gen_pb2.FORMAT_TFRECORDS_GZIP,
  }


def _resolved(data_root: pathlib.Path, first: int, last: int):
  driver = span_range.SpanRangeDriver(metadata_handle=None)
  return driver.resolve_exec_properties(
      _exec_properties(data_root, first, last), None, None)


def _generate(executor, exec_properties, out: pathlib.Path
              ) -> Dict[str, List[tf.train.Example]]:
  """Runs the executor; each split's examples."""
  examples = standard_artifacts.Examples()
  examples.uri = str(out)
  executor.Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]},
              dict(exec_properties))
  splits = {}
  for split in ('train', 'eval'):
    files = sorted((out / f'Split-{split}').glob('data_tfrecord-*.gz'))
    splits[split] = [tf.train.Example.FromString(r.numpy()) for r in
                     tf.data.TFRecordDataset([str(f) for f in files],
                                             compression_type='GZIP')]
  return splits


def _three_spans(root: pathlib.Path) -> pathlib.Path:
  # Column x: integers in span 1, a float in span 2.
  _csv(root / 'span-1' / 'a.csv', 'x,s\n1,a\n2,b\n')
  _csv(root / 'span-1' / 'b.csv', 'x,s\n3,c\n')
  _csv(root / 'span-2' / 'a.csv', 'x,s\n2.5,d\n4,e\n')
  _csv(root / 'span-3' / 'a.csv', 'x,s\n9,z\n')
  return root


def test_the_driver_resolves_every_span_of_the_range(tmp_path):
  root = _three_spans(tmp_path / 'data')
  resolved = _resolved(root, 1, 2)
  assert json.loads(resolved[span_range.PATTERNS_KEY]) == [
      'span-1/*', 'span-2/*']
  # The last span stands for the range, as one span would.
  assert resolved[example_gen_utils.SPAN_PROPERTY_NAME] == 2
  assert json.loads(resolved[standard_component_specs.INPUT_CONFIG_KEY])[
      'splits'][0]['pattern'] == 'span-2/*'
  # Each span's fingerprint is TFX's own for that span alone.
  fingerprint = resolved[example_gen_utils.FINGERPRINT_PROPERTY_NAME]
  lines = fingerprint.splitlines()
  assert [line.split(':')[0] for line in lines] == ['span 1', 'span 2']
  alone = example_gen_utils.calculate_splits_fingerprint_span_and_version(
      str(root), [example_gen_pb2.Input.Split(
          name='single_split', pattern='span-{SPAN}/*')],
      range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(
          start_span_number=1, end_span_number=1)))[0]
  assert lines[0] == f'span 1: {alone}'
  # A changed span 1 changes the range's fingerprint: no stale cache hit.
  _csv(root / 'span-1' / 'b.csv', 'x,s\n3,c\n5,f\n')
  assert _resolved(root, 1, 2)[
      example_gen_utils.FINGERPRINT_PROPERTY_NAME] != fingerprint


def test_a_span_without_files_is_named(tmp_path):
  root = _three_spans(tmp_path / 'data')
  (root / 'span-4').mkdir()
  with pytest.raises(ValueError) as raised:
    _resolved(root, 2, 4)
  assert str(raised.value).startswith(
      f'Span 4 of the range 2-4 under {root} cannot be read: ')


def test_one_span_goes_to_tfx_s_driver_unchanged(tmp_path):
  root = _three_spans(tmp_path / 'data')
  resolved = _resolved(root, 3, 3)
  assert span_range.PATTERNS_KEY not in resolved
  assert resolved[example_gen_utils.SPAN_PROPERTY_NAME] == 3
  assert span_range.static_range(
      resolved[standard_component_specs.RANGE_CONFIG_KEY]) is None


def _rows(splits: Dict[str, List[tf.train.Example]]) -> Dict[str, set]:
  return {split: {e.SerializeToString(deterministic=True) for e in examples}
          for split, examples in splits.items()}


def test_the_csv_reader_reads_the_whole_range_with_one_type_per_column(
    tmp_path):
  root = _three_spans(tmp_path / 'data')
  splits = _generate(arrow_gen.Executor(), _resolved(root, 1, 2),
                     tmp_path / 'range')
  examples = splits['train'] + splits['eval']
  assert sorted(e.features.feature['s'].bytes_list.value[0]
                for e in examples) == [b'a', b'b', b'c', b'd', b'e']
  # Span 1 alone would make x an integer; over the range it is a float.
  assert {e.features.feature['x'].WhichOneof('kind')
          for e in examples} == {'float_list'}


def test_a_row_lands_in_the_same_split_alone_or_in_a_range(tmp_path):
  root = tmp_path / 'data'
  for span in (1, 2):
    rows = '\n'.join(f'{span * 1000 + i},t{i % 7}' for i in range(200))
    _csv(root / f'span-{span}' / 'data.csv', f'x,s\n{rows}\n')
  alone = _rows(_generate(arrow_gen.Executor(), _resolved(root, 1, 1),
                          tmp_path / 'alone'))
  both = _rows(_generate(arrow_gen.Executor(), _resolved(root, 1, 2),
                         tmp_path / 'both'))
  assert sum(len(rows) for rows in both.values()) == 400
  for split in ('train', 'eval'):
    assert alone[split] and alone[split] <= both[split], split
  assert not alone['train'] & both['eval']


def test_the_tfrecord_reader_reads_the_whole_range(tmp_path):
  root = tmp_path / 'data'
  record_files.write_tfrecord(root / 'span-1' / 'data.tfrecord.gz',
                              [{'x': [i], 's': ['one']} for i in range(3)])
  record_files.write_tfrecord(root / 'span-2' / 'data.tfrecord',
                              [{'x': [i], 's': ['two']} for i in range(2)])
  splits = _generate(record_example_gen.TFRecordExecutor(),
                     _resolved(root, 1, 2), tmp_path / 'out')
  examples = splits['train'] + splits['eval']
  assert sorted(e.features.feature['s'].bytes_list.value[0]
                for e in examples) == [b'one'] * 3 + [b'two'] * 2
