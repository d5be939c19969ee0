"""The input format: detected from file names, or given by --format.

Unit tests (no TensorFlow): the extension rules, the refusals of mixed and
unknown names, what the runners' flags turn into, and that the choice
reaches the typed config the local, Dataflow and Kubeflow runners build.
"""

import argparse

import pytest

from pipeline import flags as cli
from pipeline.definition import config as config_lib
from pipeline.definition import input_formats
from tests import record_files

F = input_formats


@pytest.mark.parametrize('name, expected', [
    ('data.csv', F.CSV),
    ('DATA.CSV', F.CSV),
    ('part-0.parquet', F.PARQUET),
    ('x.pq', F.PARQUET),
    ('rows.avro', F.AVRO),
    ('rows.tfrecord', F.TFRECORD),
    ('rows.tfrecords', F.TFRECORD),
    ('rows.tfrecord.gz', F.TFRECORD),
    ('data_tfrecord-00000-of-00002.gz', F.TFRECORD),  # ExampleGen's names.
    ('data.csv.gz', None),  # CsvExampleGen reads plain text only.
    ('model.bin', None),
    ('README', None),
])
def test_format_of_a_file_name(name, expected):
  assert F.format_of(name) == expected


def test_detect_one_format():
  assert F.detect(['a.parquet', 'b.parquet'], 'd') == F.PARQUET
  assert F.detect(['x-00000-of-00002.gz', 'x-00001-of-00002.gz'], 'd') == (
      F.TFRECORD)


def test_files_with_unknown_names_beside_one_format_are_left_to_preflight():
  # ExampleGen reads every file; its input check names the stray one.
  assert F.detect(['data.csv', 'model.bin'], 'd') == F.CSV
  assert F.detect(['data.avro', 'generate_avro_file.py'], 'd') == F.AVRO


def test_an_empty_folder_is_left_to_preflight_as_csv():
  assert F.detect([], 'd') == F.CSV


def test_mixed_formats_are_refused_naming_the_files_and_the_flag():
  with pytest.raises(F.FormatDetectionError) as e:
    F.detect(['a.csv', 'b.parquet', 'c.parquet'], 'data/in')
  message = str(e.value)
  assert message.startswith('data/in mixes input formats')
  assert 'CSV: a.csv' in message and 'Parquet: b.parquet, c.parquet' in message
  assert '--format {csv,parquet,avro,tfrecord}' in message


def test_many_mixed_files_are_listed_briefly():
  names = [f'p{i}.parquet' for i in range(10)] + ['a.avro']
  message = str(pytest.raises(F.FormatDetectionError, F.detect, names, 'd'
                              ).value)
  assert 'p0.parquet, p1.parquet, p2.parquet, and 7 more' in message


def test_unknown_names_only_are_refused_naming_the_files_and_the_flag():
  with pytest.raises(F.FormatDetectionError) as e:
    F.detect(['trips.txt', 'more_trips'], 'data/in')
  message = str(e.value)
  assert 'cannot tell the input format of data/in' in message
  assert 'more_trips, trips.txt' in message
  assert '--format {csv,parquet,avro,tfrecord}' in message


def _args(argv):
  parser = argparse.ArgumentParser()
  cli.add_common_flags(parser)
  return parser.parse_args(argv)


def test_the_flag_defaults_to_auto_and_accepts_each_format():
  assert _args([]).input_format == F.AUTO
  for name in F.FORMATS:
    assert _args(['--format', name]).input_format == name
  with pytest.raises(SystemExit):
    _args(['--format', 'json'])


def test_auto_reads_the_local_folder(tmp_path):
  (tmp_path / 'a.parquet').write_bytes(b'')
  (tmp_path / 'sub').mkdir()  # Sub-folders are the input check's business.
  assert input_formats.resolve(F.AUTO, str(tmp_path)) == F.PARQUET


def test_an_explicit_format_is_not_second_guessed(tmp_path):
  (tmp_path / 'a.csv').write_text('x\n1\n')
  assert input_formats.resolve(F.TFRECORD, str(tmp_path)) == F.TFRECORD


def test_auto_means_csv_where_nothing_can_be_listed(tmp_path):
  assert input_formats.resolve(F.AUTO, 'gs://bucket/data') == F.CSV
  assert input_formats.resolve(F.AUTO, str(tmp_path / 'missing')) == F.CSV


def test_the_default_data_is_csv():
  assert input_formats.resolve(F.AUTO, str(cli.DEFAULT_DATA_ROOT)) == F.CSV


def _config(argv, **kwargs) -> config_lib.PipelineConfig:
  return cli.build_config(_args(argv), pipeline_root='/tmp/root',
                          serving_model_dir='/tmp/serving', **kwargs)


def test_the_format_reaches_the_typed_config(tmp_path):
  data = record_files.taxi_folder('tfrecord', tmp_path)
  assert _config(['--data-root', str(data)]).input_format == F.TFRECORD
  assert _config([]).input_format == F.CSV
  # A cloud runner's gs:// data root: the flag decides.
  assert _config(['--format', 'avro'],
                 data_root='gs://b/data').input_format == F.AVRO
  assert _config([], data_root='gs://b/data').input_format == F.CSV


def test_a_zero_config_request_carries_the_format(tmp_path):
  data = record_files.taxi_folder('parquet', tmp_path)
  request = cli.draft_request(_args(
      ['--data-root', str(data), '--label', 'tips', '--task', 'regression']))
  assert request.input_format == F.PARQUET


def test_the_config_refuses_an_unknown_format():
  with pytest.raises(ValueError, match='input_format must be one of'):
    config_lib.PipelineConfig(
        pipeline_name='p', pipeline_root='r', data_root='d', schema_path='s',
        serving_model_dir='m', dataset=_config([]).dataset,
        input_format='json')


def test_local_runner_refuses_mixed_formats_with_exit_2(
    local_runner_in_process, tmp_path):
  data = tmp_path / 'data'
  data.mkdir()
  (data / 'a.csv').write_text('x\n1\n')
  (data / 'b.avro').write_bytes(b'')
  result = local_runner_in_process(tmp_path / 'out', data_root=data)
  assert result.returncode == 2, result
  assert 'RUN FAILED: ' in result.stderr
  assert 'mixes input formats' in result.stderr and '--format' in (
      result.stderr)



def test_draft_only_stops_a_zero_config_request_after_the_drafts(tmp_path):
  data = record_files.taxi_folder('parquet', tmp_path)
  base = ['--data-root', str(data), '--label', 'tips', '--task',
          'regression']
  assert cli.draft_request(_args(base)).draft_only is False
  assert cli.draft_request(_args([*base, '--draft-only'])).draft_only is True
  with pytest.raises(cli.FlagError, match='--draft-only go with --label'):
    cli.draft_request(_args(['--data-root', str(data), '--draft-only']))
