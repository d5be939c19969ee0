"""The input check of Parquet, Avro and TFRecord folders (pipeline/validation).

Unit tests, without TensorFlow: TFX's taxi rows in the three formats pass,
read from the installed `tfx` package; small files written here with one
defect each are refused with one line naming the file, row and column.
"""

import gzip
import pathlib
import shutil
import subprocess
import sys

import pyarrow as pa
from pyarrow import csv as pa_csv
from pyarrow import parquet as pq
import pytest

from models import features
from pipeline.validation import contract
from pipeline.validation import driver as input_check
from pipeline.validation import problems as input_problems
from pipeline.validation import tf_example_records
from tests import record_files
from tests.conftest import LOCAL_RUNNER
from tests.conftest import REPO_ROOT
from tests.conftest import SAMPLE_DATA

SCHEMA = str(REPO_ROOT / 'schema' / 'taxi' / 'schema.pbtxt')
TIPS = contract.LabelRule(record_files.TAXI_LABEL, features.REGRESSION)


def _draft_check(folder, input_format, rule=TIPS) -> input_check.Report:
  return input_check.check_without_schema(str(folder), rule,
                                        input_format=input_format)


def _refusal(folder, input_format, rule=TIPS) -> str:
  with pytest.raises(input_problems.InputCheckError) as e:
    _draft_check(folder, input_format, rule)
  return str(e.value)


# --- TFX's taxi rows pass. -------------------------------------------------


@pytest.mark.parametrize('input_format', sorted(record_files.TAXI))
def test_the_taxi_rows_tfx_ships_pass(input_format, tmp_path):
  _, names, rows = record_files.TAXI[input_format]
  report = _draft_check(record_files.taxi_folder(input_format, tmp_path),
                        input_format)
  assert [pathlib.Path(f).name for f in report.files] == list(names)
  assert report.rows == rows
  assert len(report.columns) == 18 and 'tips' in report.columns
  assert report.summary().startswith(
      f'Input check passed: {len(names)} {report.file_kind} file(s), '
      f'{rows} rows, 18 columns.')


def test_tfx_avro_folder_as_shipped_is_refused_for_its_script(tmp_path):
  """ExampleGen would read generate_avro_file.py as Avro too.

  The shipped files are copied: a byte-compiled install adds __pycache__.
  """
  shipped = record_files.tfx_external_data() / 'avro'
  folder = tmp_path / 'avro'
  shutil.copytree(shipped, folder,
                  ignore=shutil.ignore_patterns('__pycache__'))
  message = _refusal(folder, 'avro')
  assert message.startswith(f'{folder / "generate_avro_file.py"}: is not a '
                            'readable Avro file')
  assert 'remove it from the data folder' in message


def test_label_classes_are_counted(tmp_path):
  rule = contract.LabelRule('payment_type', features.MULTICLASS,
                             min_rows_per_class=1)
  report = _draft_check(record_files.taxi_folder('tfrecord', tmp_path),
                        'tfrecord', rule)
  assert sum(report.label_counts.values()) == 15_000
  assert list(report.label_counts)[:2] == ['Cash', 'Credit Card']


# --- Parquet. --------------------------------------------------------------


def test_a_corrupt_parquet_file_is_refused(tmp_path):
  (tmp_path / 'data.parquet').write_bytes(b'not parquet at all\n' * 20)
  message = _refusal(tmp_path, 'parquet')
  assert message.startswith(
      f'{tmp_path / "data.parquet"}: is not a readable Parquet file (Parquet '
      'magic bytes not found')
  assert '--format' in message


def test_a_truncated_parquet_file_is_refused(tmp_path):
  source = record_files.tfx_external_data() / 'parquet' / 'data.parquet'
  data = source.read_bytes()
  (tmp_path / 'data.parquet').write_bytes(data[:len(data) // 2])
  assert 'is not a readable Parquet file' in _refusal(tmp_path, 'parquet')


def test_a_parquet_file_without_rows_is_refused(tmp_path):
  record_files.write_parquet(tmp_path / 'a.parquet', {'tips': []},
                             types={'tips': pa.float64()})
  assert _refusal(tmp_path, 'parquet') == (
      f'{tmp_path / "a.parquet"}: holds no rows (an empty Parquet file); '
      'remove it or fill it.')


def test_parquet_files_with_different_columns_are_refused(tmp_path):
  record_files.write_parquet(tmp_path / 'a.parquet',
                             {'tips': [1.0, 2.0], 'fare': [3.0, 4.0]})
  record_files.write_parquet(tmp_path / 'b.parquet',
                             {'tips': [1.0, 2.0], 'fare': ['3', '4']})
  record_files.write_parquet(tmp_path / 'c.parquet', {'tips': [1.0, 2.0]})
  message = _refusal(tmp_path, 'parquet')
  assert message.startswith(
      f"{tmp_path / 'b.parquet'}: columns differ from those of a.parquet "
      "('fare' holds strings here, floats there); ExampleGen needs one "
      'schema across the files')
  assert '(and 1 more problem)' in message


def test_a_parquet_column_no_tf_example_holds_is_refused(tmp_path):
  record_files.write_parquet(
      tmp_path / 'a.parquet', {'tips': [1.0], 'pickup': [1_700_000_000]},
      types={'pickup': pa.timestamp('s')})
  assert _refusal(tmp_path, 'parquet') == (
      f"{tmp_path / 'a.parquet'}, column 'pickup': has type timestamp[ms], "
      'which ExampleGen cannot write into a tf.Example; convert the column '
      'to integers, floats or strings, or drop it.')


def test_a_binary_label_with_one_class_is_refused(tmp_path):
  record_files.write_parquet(tmp_path / 'a.parquet',
                             {'y': [1] * 30, 'x': list(range(30))})
  message = _refusal(tmp_path, 'parquet',
                     contract.LabelRule('y', features.BINARY))
  assert message.startswith(f"{tmp_path}, column 'y': every row holds the "
                            'same label')


def _sample_parquet(folder: pathlib.Path, change=None) -> pathlib.Path:
  """The committed CSV sample as Parquet, with the types pyarrow infers."""
  table = pa_csv.read_csv(SAMPLE_DATA / 'data.csv')
  if change:
    table = change(table)
  folder.mkdir(parents=True, exist_ok=True)
  pq.write_table(table, folder / 'sample.parquet')
  return folder


def _curated_check(folder, allowed=()) -> input_check.Report:
  from pipeline.definition import dataset_config
  spec = dataset_config.load_named('taxi').spec
  return input_check.check(str(folder), SCHEMA, spec, allowed,
                         input_format='parquet')


def test_the_sample_as_parquet_passes_the_curated_taxi_contract(tmp_path):
  report = _curated_check(_sample_parquet(tmp_path / 'data'))
  assert report.rows == 2000
  assert set(report.label_counts) == {'0', '1'}


def test_a_column_of_the_wrong_type_for_the_curated_schema_is_refused(
    tmp_path):
  def fare_as_text(table):
    index = table.schema.get_field_index('fare')
    return table.set_column(index, 'fare', table['fare'].cast(pa.string()))
  folder = _sample_parquet(tmp_path / 'data', fare_as_text)
  with pytest.raises(input_problems.InputCheckError) as e:
    _curated_check(folder)
  assert str(e.value) == (
      f"{folder / 'sample.parquet'}, column 'fare': column holds strings, but "
      f'the curated schema {SCHEMA} says FLOAT (floats), so ExampleValidator '
      'would refuse it: convert the column, or fix the schema.')


def test_an_unknown_column_is_refused_unless_allow_listed(tmp_path):
  def with_note(table):
    return table.append_column('dispatch_note', pa.array(
        ['x'] * table.num_rows))
  folder = _sample_parquet(tmp_path / 'data', with_note)
  with pytest.raises(input_problems.InputCheckError) as e:
    _curated_check(folder)
  assert "column 'dispatch_note': column is not in the curated schema" in (
      str(e.value))
  report = _curated_check(folder, [contract.NEW_COLUMN_ANOMALY])
  assert report.extra_columns == ['dispatch_note']


# --- Avro. -----------------------------------------------------------------

AVRO_FIELDS = {'fare': ['double', 'null'], 'tips': ['double', 'null']}


def test_an_avro_file_without_the_label_is_refused(tmp_path):
  record_files.write_avro(tmp_path / 'a.avro', {'fare': 'double'},
                          [{'fare': 1.0}, {'fare': 2.0}])
  assert _refusal(tmp_path, 'avro') == (
      f"{tmp_path / 'a.avro'}, column 'tips': label column is missing from "
      "this file's columns; pass --label with one of the columns (fare), or "
      'add the column.')


def test_a_file_that_is_not_avro_is_refused(tmp_path):
  (tmp_path / 'a.avro').write_text('fare,tips\n1,2\n')
  assert _refusal(tmp_path, 'avro').startswith(
      f"{tmp_path / 'a.avro'}: is not a readable Avro file (ValueError: "
      'cannot read header - is it an avro file?)')


def test_a_truncated_avro_file_is_refused(tmp_path):
  data = (record_files.tfx_external_data() / 'avro' / 'data.avro'
          ).read_bytes()
  (tmp_path / 'a.avro').write_bytes(data[:len(data) // 2])
  assert 'is not a readable Avro file (EOFError' in _refusal(tmp_path, 'avro')


def test_empty_avro_labels_are_refused_naming_the_rows(tmp_path):
  records = [{'fare': 1.0, 'tips': None if i in (2, 5) else 0.5}
             for i in range(8)]
  record_files.write_avro(tmp_path / 'a.avro', AVRO_FIELDS, records)
  assert _refusal(tmp_path, 'avro') == (
      f"{tmp_path / 'a.avro'}, row 3, column 'tips': label is empty in 2 rows "
      '(row(s) 3, 6); rows without a label cannot train or evaluate: fill in '
      'the label or drop those rows.')


def test_a_text_label_is_refused_for_regression(tmp_path):
  record_files.write_avro(tmp_path / 'a.avro', {'tips': 'string'},
                          [{'tips': '1.5'}, {'tips': '2'}])
  assert _refusal(tmp_path, 'avro') == (
      f"{tmp_path / 'a.avro'}, column 'tips': label column holds strings; a "
      'regression label must be a number column: convert it, or pass --task '
      'binary/multiclass if the label is a category.')


# --- TFRecord. -------------------------------------------------------------


def test_an_empty_tfrecord_file_is_refused(tmp_path):
  (tmp_path / 'data.tfrecord').write_bytes(b'')
  assert _refusal(tmp_path, 'tfrecord') == (
      f"{tmp_path / 'data.tfrecord'}: holds no rows (an empty TFRecord "
      '(tf.Example) file); remove it or fill it.')


def test_a_truncated_tfrecord_file_is_refused_naming_the_record(tmp_path):
  rows = [{'tips': [float(i)]} for i in range(3)]
  data = record_files.frame([record_files.example_bytes(r) for r in rows])
  (tmp_path / 'data.tfrecord').write_bytes(data[:-6])
  message = _refusal(tmp_path, 'tfrecord')
  assert message.startswith(f"{tmp_path / 'data.tfrecord'}, row 3: is not a "
                            'readable TFRecord (tf.Example) file (the file '
                            'ends inside record 3')


def test_a_tfrecord_with_a_bad_checksum_is_refused(tmp_path):
  data = bytearray(record_files.frame(
      [record_files.example_bytes({'tips': [1.0]})] * 2))
  data[-8] ^= 0xff  # A byte of the second record's data.
  (tmp_path / 'data.tfrecord').write_bytes(bytes(data))
  assert 'row 2: is not a readable TFRecord (tf.Example) file (record 2 has ' \
      'a bad data checksum' in _refusal(tmp_path, 'tfrecord')


def test_a_gz_file_that_is_not_gzip_is_refused(tmp_path):
  record_files.write_tfrecord(tmp_path / 'plain.tfrecord',
                              [{'tips': [1.0]}])
  (tmp_path / 'plain.tfrecord').rename(tmp_path / 'data.gz')
  assert 'cannot be decompressed' in _refusal(tmp_path, 'tfrecord')


def test_sequence_examples_are_refused(tmp_path):
  folder = record_files.tfx_external_data() / 'tfrecord_sequence'
  assert _refusal(folder, 'tfrecord', contract.LabelRule(
      'i', features.REGRESSION)).startswith(
          f'{folder / "data_tfrecord-00000-of-00001.gz"}, row 1: is not a '
          'readable TFRecord (tf.Example) file (record 1 is a '
          'tf.train.SequenceExample')


def test_a_feature_of_two_types_is_refused(tmp_path):
  record_files.write_tfrecord(tmp_path / 'a.tfrecord.gz',
                              [{'tips': [1.0], 'hour': [3]}])
  record_files.write_tfrecord(tmp_path / 'b.tfrecord.gz',
                              [{'tips': [1.0], 'hour': [3.5]}])
  assert _refusal(tmp_path, 'tfrecord').startswith(
      f"{tmp_path / 'b.tfrecord.gz'}: columns differ from those of "
      "a.tfrecord.gz ('hour' holds floats here, integers there)")


def test_features_missing_from_some_examples_are_accepted(tmp_path):
  """tf.Examples are sparse: a feature may be absent from a whole file."""
  record_files.write_tfrecord(tmp_path / 'a.gz',
                              [{'tips': [1.0], 'x': [1]}] * 3)
  record_files.write_tfrecord(tmp_path / 'b.gz', [{'tips': [2.0]}] * 2)
  report = _draft_check(tmp_path, 'tfrecord')
  assert report.rows == 5 and report.columns == ['tips', 'x']


def test_a_label_with_several_values_is_refused(tmp_path):
  record_files.write_tfrecord(tmp_path / 'a.tfrecord',
                              [{'tips': [1.0]}, {'tips': [1.0, 2.0]}])
  assert _refusal(tmp_path, 'tfrecord') == (
      f"{tmp_path / 'a.tfrecord'}, row 2, column 'tips': label holds more "
      'than one value in this row; a label is one value per row: fix those '
      'rows.')


def test_a_label_in_no_example_is_refused_once(tmp_path):
  record_files.write_tfrecord(tmp_path / 'a.tfrecord', [{'fare': [1.0]}] * 4)
  assert _refusal(tmp_path, 'tfrecord') == (
      f"{tmp_path / 'a.tfrecord'}, column 'tips': label column is in no row "
      'of this file; pass --label with one of the columns (fare), or add the '
      'column.')


def test_the_light_reader_agrees_with_the_framing_tfx_wrote():
  """TFX wrote these files with TensorFlow; every record parses here."""
  path = (record_files.tfx_external_data() / 'tfrecord' /
          'data_tfrecord-00001-of-00002.gz')
  with tf_example_records.open_records(str(path)) as f:
    parsed = [tf_example_records.parse_example(d, i)
              for i, d in enumerate(tf_example_records.records(f), 1)]
  assert len(parsed) == 5012
  assert parsed[0]['tips'] == ('float_list', [0.0])  # Zeros stay values.
  assert parsed[0]['trip_start_hour'] == ('int64_list', [19])
  assert parsed[0]['payment_type'] == ('bytes_list', [b'Cash'])
  assert parsed[0]['pickup_census_tract'] == ('', [])  # Missing value.
  assert gzip.open(path).read(1)  # Really gzip, read as ImportExampleGen does.


def test_an_unknown_input_format_has_no_reader(tmp_path):
  with pytest.raises(ValueError, match="No input check for input format "
                     "'xml'; use one of csv, parquet, avro, tfrecord."):
    input_check.check_folder(str(tmp_path), 'xml',
                             contract.Expectations.without_schema('tips'))


# --- The runner: refused before TensorFlow is imported. -------------------


def test_runner_refuses_a_bad_tfrecord_with_exit_3_without_tensorflow(
    tmp_path):
  data = tmp_path / 'data'
  record_files.write_tfrecord(data / 'a.tfrecord.gz', [{'fare': [1.0]}] * 3)
  result = subprocess.run(
      [sys.executable, '-X', 'importtime', str(LOCAL_RUNNER), '--data-root',
       str(data), '--output-dir', str(tmp_path / 'out'), '--label', 'tips',
       '--task', 'regression'],
      capture_output=True, text=True, timeout=300, cwd=str(REPO_ROOT))
  assert result.returncode == input_problems.EXIT_CODE, result.stderr[-3000:]
  failures = [line for line in result.stderr.splitlines()
              if line.startswith('RUN FAILED')]
  assert failures == [
      'RUN FAILED: bad input, nothing was run: '
      f"{data / 'a.tfrecord.gz'}, column 'tips': label column is in no row of "
      'this file; pass --label with one of the columns (fare), or add the '
      'column.']
  imported = {line.rsplit('|', 1)[1].strip()
              for line in result.stderr.splitlines()
              if line.startswith('import time:') and line.count('|') == 2}
  assert 'pipeline.validation.tf_example_records' in imported
  assert 'tensorflow' not in imported
  assert not (tmp_path / 'out' / 'metadata.sqlite').exists()


def test_runner_refuses_a_corrupt_parquet_in_process(local_runner_in_process,
                                                     tmp_path):
  data = tmp_path / 'data'
  data.mkdir()
  (data / 'rows.parquet').write_bytes(b'PAR1' + b'\x00' * 64)
  result = local_runner_in_process(tmp_path / 'out', data_root=data)
  assert result.returncode == input_problems.EXIT_CODE
  assert (f"RUN FAILED: bad input, nothing was run: {data / 'rows.parquet'}: "
          'is not a readable Parquet file') in result.stderr
