"""The bad-input catalogue: every case stops the run, or is allow-listed.

Each case asserts the outcome a user sees (exit code and the one
'RUN FAILED:' line naming the file, line, feature or anomaly and what to do)
and the state left behind: the previously pushed model is byte-identical,
nothing new was trained or pushed, and the metadata store still opens.

Structural problems are caught by the preflight
(`pipeline/validation/`) before any component runs; they are tested
directly, plus two through the runner's main(). Problems only visible in the
statistics (an all-empty column, unseen categories, impossible values) are
computed in-process with TFDV and fed to the anomaly gate's own executor, for
its message; one of them also goes through a real pipeline run on a copy of
the session's blessed output dir, which must stop at the gate, before
the Trainer. Drift goes through real runs of data in spans
(tests/test_spans.py): its baseline is the last accepted span.
"""

import dataclasses
import os
import pathlib
import re
from typing import Callable
from typing import List
from typing import Tuple

from google.protobuf import text_format
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from models import features
from pipeline.components import anomaly_gate
from pipeline.components import drift_gate
from pipeline.definition import dataset_config
from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from pipeline.validation import contract
from pipeline.validation import driver as input_check
from pipeline.validation import problems as input_problems
import schema as schema_lib
from tests import conftest
from tests import robustness
from tests.conftest import PIPELINE_NAME
from tests.conftest import REPO_ROOT
from tests.conftest import SAMPLE_DATA
from tests.conftest import run_local_pipeline

SCHEMA = schema_lib.schema_path('taxi')
TAXI = dataset_config.load_named('taxi').spec
# Components that must never run on data a gate rejected. Transform may:
# it runs beside StatisticsGen and the gates, and nothing uses its output.
TRAINING_AND_AFTER = ('Trainer', 'Evaluator', 'Pusher')


def _check(folder: pathlib.Path, allowed=()) -> input_check.Report:
  return input_check.check(str(folder), SCHEMA, TAXI, allowed)


def _rows(limit: int = 40) -> Tuple[List[str], List[List[str]]]:
  return robustness.sample_table(limit)


# --- Preflight catalogue: one builder per bad input. ----------------------
# Each builder writes a data folder under `root` and returns it.


def _wrong_column_count(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  rows[5].append('42')  # Data row 6 is line 7 of the file.
  robustness.write_csv(root / 'data.csv', header, rows)
  return root


def _missing_values_in_row(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  rows[10] = rows[10][:-2]
  robustness.write_csv(root / 'data.csv', header, rows)
  return root


def _text_in_numeric_column(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  rows[3][header.index('fare')] = 'twelve dollars'
  robustness.write_csv(root / 'data.csv', header, rows)
  return root


def _fraction_in_integer_column(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  rows[0][header.index('trip_seconds')] = '12.5'
  robustness.write_csv(root / 'data.csv', header, rows)
  return root


def _nan_in_numeric_column(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  rows[8][header.index('trip_miles')] = 'NaN'
  robustness.write_csv(root / 'data.csv', header, rows)
  return root


def _empty_file(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  robustness.write_csv(root / 'data.csv', header, rows)
  (root / 'empty.csv').write_bytes(b'')
  return root


def _header_only_file(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  robustness.write_csv(root / 'data.csv', header, rows)
  robustness.write_csv(root / 'late.csv', header, [])
  return root


def _missing_label_column(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  i = header.index('big_tipper')
  robustness.write_csv(root / 'data.csv', header[:i] + header[i + 1:],
                       [r[:i] + r[i + 1:] for r in rows])
  return root


def _extra_unknown_column(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  robustness.write_csv(root / 'data.csv', header + ['surcharge'],
                       [r + ['1.5'] for r in rows])
  return root


def _binary_file(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  robustness.write_csv(root / 'data.csv', header, rows)
  (root / 'model.bin').write_bytes(b'PK\x03\x04\x00\x00\x08\x00' * 64)
  return root


def _non_utf8_file(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  rows[4][header.index('company')] = 'Caf\u00e9 Cab'
  path = robustness.write_csv(root / 'data.csv', header, rows)
  # Re-encode the whole file the way a Windows spreadsheet export might.
  path.write_bytes(path.read_text(encoding='utf-8').encode('latin-1'))
  return root


def _empty_folder(root: pathlib.Path) -> pathlib.Path:
  root.mkdir(parents=True)
  return root


def _missing_folder(root: pathlib.Path) -> pathlib.Path:
  return root / 'no_such_folder'


def _duplicate_header(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  header = ['fare' if h == 'tips' else h for h in header]
  robustness.write_csv(root / 'data.csv', header, rows)
  return root


def _header_mismatch_across_files(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  robustness.write_csv(root / 'a.csv', header, rows[:20])
  swapped = [header[1], header[0]] + header[2:]
  robustness.write_csv(root / 'b.csv', swapped,
                       [[r[1], r[0]] + r[2:] for r in rows[20:]])
  return root


def _subfolder(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  robustness.write_csv(root / 'data.csv', header, rows)
  robustness.write_csv(root / 'archive' / 'old.csv', header, rows)
  return root


def _unclosed_quote(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  robustness.write_csv(root / 'data.csv', header, rows)
  with open(root / 'data.csv', 'a', encoding='utf-8') as f:
    f.write(','.join(rows[0][:14]) + ',"Flash Cab,' + ','.join(rows[0][15:])
            + '\n')
  return root


def _byte_order_mark(root: pathlib.Path) -> pathlib.Path:
  header, rows = _rows()
  robustness.write_csv(root / 'data.csv', header, rows)
  path = root / 'data.csv'
  path.write_bytes(b'\xef\xbb\xbf' + path.read_bytes())
  return root


@dataclasses.dataclass(frozen=True)
class Case:
  build: Callable[[pathlib.Path], pathlib.Path]
  # Every fragment must appear in the one-line error.
  expected: Tuple[str, ...]


PREFLIGHT_CASES = {
    'wrong_column_count': Case(_wrong_column_count, (
        'data.csv, line 7:', 'has 20 values but the header has 19',
        'fix or delete this row')),
    'missing_values_in_row': Case(_missing_values_in_row, (
        'data.csv, line 12:', 'has 17 values but the header has 19')),
    'text_in_numeric_column': Case(_text_in_numeric_column, (
        "data.csv, line 5, column 'fare':", "'twelve dollars' is not a "
        'finite number as the schema requires', 'fix the value')),
    'fraction_in_integer_column': Case(_fraction_in_integer_column, (
        "data.csv, line 2, column 'trip_seconds':", "'12.5' is not an "
        'integer')),
    'nan_in_numeric_column': Case(_nan_in_numeric_column, (
        "line 10, column 'trip_miles':", "'NaN' is not a finite number")),
    'empty_file': Case(_empty_file, (
        'empty.csv: file is empty', 'remove it or fill it')),
    'header_only_file': Case(_header_only_file, (
        'late.csv: has a header but no data rows',
        'remove the file or add rows')),
    'missing_label_column': Case(_missing_label_column, (
        "data.csv, line 1, column 'big_tipper':",
        'required label column is missing', 'add the column')),
    'extra_unknown_column': Case(_extra_unknown_column, (
        "data.csv, line 1, column 'surcharge':",
        'not in the curated schema', '--allow-anomaly SCHEMA_NEW_COLUMN')),
    'binary_file': Case(_binary_file, (
        'model.bin, line 1:', 'binary file', 'remove it from the data '
        'folder')),
    'non_utf8_file': Case(_non_utf8_file, (
        'data.csv, line 6:', 'not valid UTF-8 (byte 0xe9',
        're-save the file as UTF-8')),
    'empty_folder': Case(_empty_folder, (
        'data folder is empty', 'put one or more CSV files')),
    'missing_folder': Case(_missing_folder, (
        'no_such_folder: data folder does not exist', 'pass --data-root')),
    'duplicate_header': Case(_duplicate_header, (
        "data.csv, line 1, column 'fare':", 'appears more than once',
        'rename or drop the duplicate')),
    'header_mismatch_across_files': Case(_header_mismatch_across_files, (
        'b.csv, line 1:', 'header differs from the one in a.csv',
        'same columns in a different order')),
    'subfolder_in_data_folder': Case(_subfolder, (
        'archive: is a folder', 'move sub-folders out')),
    'unclosed_quote': Case(_unclosed_quote, (
        'data.csv, line 42:', 'never closed', 'add the missing double quote')),
    'byte_order_mark': Case(_byte_order_mark, (
        'data.csv, line 1:', 'byte-order mark', 'without BOM')),
}


@pytest.mark.parametrize('name', sorted(PREFLIGHT_CASES))
def test_preflight_stops_bad_input_with_one_line(name, tmp_path):
  case = PREFLIGHT_CASES[name]
  folder = case.build(tmp_path / 'data')
  with pytest.raises(input_problems.InputCheckError) as raised:
    _check(folder)
  message = str(raised.value)
  assert '\n' not in message
  for fragment in case.expected:
    assert fragment in message, f'{fragment!r} not in {message!r}'


def test_preflight_accepts_the_shipped_data():
  for folder, rows in (('taxi', 15002), ('taxi_sample', 2000)):
    report = _check(REPO_ROOT / 'data' / folder)
    assert report.rows == rows
    assert report.extra_columns == []
    assert len(report.columns) == 19


def test_allow_listed_extra_column_passes_and_says_so(tmp_path):
  folder = _extra_unknown_column(tmp_path / 'data')
  report = _check(folder, allowed=[contract.NEW_COLUMN_ANOMALY])
  assert report.extra_columns == ['surcharge']
  assert ('Allow-listed (SCHEMA_NEW_COLUMN), ignored by the model: '
          'surcharge') in report.summary()


def test_every_problem_is_listed_and_a_huge_bad_file_stays_cheap(tmp_path):
  header, rows = robustness.sample_table()
  fare = header.index('fare')
  for row in rows:
    row[fare] = 'n/a'
  robustness.write_csv(tmp_path / 'data.csv', header, rows)
  with pytest.raises(input_problems.InputCheckError) as raised:
    input_check.check(str(tmp_path), SCHEMA, TAXI, max_problems=5)
  error = raised.value
  # Stops collecting at the limit instead of listing 2,000 lines.
  assert [p.line for p in error.problems] == [2, 3, 4, 5, 6]
  assert error.truncated
  assert str(error).endswith('(and 4+ more problems)')


def test_expectations_come_from_schema_and_spec_not_taxi(tmp_path):
  """A made-up dataset: label 'churned', numeric 'age', string 'plan'."""
  (tmp_path / 'schema.pbtxt').write_text(
      'feature { name: "age" type: INT }\n'
      'feature { name: "plan" type: BYTES }\n'
      'feature { name: "churned" type: INT presence { min_fraction: 1.0 } }\n')
  spec = features.DatasetSpec(name='churn', label_key='churned',
                              numeric_features=('age',),
                              categorical_features=('plan',))
  data = tmp_path / 'data'
  robustness.write_csv(data / 'users.csv', ['age', 'plan', 'churned'],
                       [['31', 'gold', '0'], ['forty', 'basic', '1']])
  with pytest.raises(input_problems.InputCheckError) as raised:
    input_check.check(str(data), str(tmp_path / 'schema.pbtxt'), spec)
  assert "users.csv, line 3, column 'age': value 'forty' is not an integer" in str(
      raised.value)
  robustness.write_csv(data / 'users.csv', ['age', 'plan'], [['31', 'gold']])
  with pytest.raises(input_problems.InputCheckError, match="column 'churned': "
                     'required label column is missing'):
    input_check.check(str(data), str(tmp_path / 'schema.pbtxt'), spec)


def test_spec_column_missing_from_schema_is_a_config_error(tmp_path):
  spec = dataclasses.replace(TAXI,
                             numeric_features=('trip_start_timestamp',
                                               'surge_multiplier'))
  with pytest.raises(input_problems.InputCheckError,
                     match='surge_multiplier that the curated schema does '
                     'not define; add them to the schema'):
    input_check.check(str(REPO_ROOT / 'data' / 'taxi_sample'), SCHEMA, spec)


# --- The runner refuses before any component. -----------------------------


@pytest.fixture
def outputs(e2e_run, tmp_path) -> pathlib.Path:
  """A private copy of the session's blessed, pushed output dir."""
  return robustness.copy_outputs(e2e_run.output_dir, tmp_path / 'outputs')


def _assert_untouched(output_dir: pathlib.Path,
                      before: robustness.OutputState, new_runs: int) -> None:
  after = robustness.snapshot(output_dir)  # The store still opens.
  assert after.pushed == before.pushed, 'a pushed model changed'
  assert before.pushed, 'the copied output dir should hold a pushed model'
  assert after.run_ids[:len(before.run_ids)] == before.run_ids
  assert len(after.run_ids) == len(before.run_ids) + new_runs
  assert after.trainer_executions == before.trainer_executions


@pytest.mark.e2e
@pytest.mark.parametrize('name', ['wrong_column_count', 'missing_folder'])
def test_runner_refuses_bad_input_before_any_component(
    name, outputs, tmp_path, local_runner_in_process):
  """The runner's main(), in-process: the refusal comes before any TFX code.

  tests/test_runners.py checks the real script's exit code in a subprocess.
  """
  before = robustness.snapshot(outputs)
  data = PREFLIGHT_CASES[name].build(tmp_path / 'data')
  result = local_runner_in_process(outputs, ['--train-steps', '10'],
                                   data_root=data)
  assert result.returncode == input_problems.EXIT_CODE, result.stderr[-2000:]
  line = robustness.failure_line(result)
  assert line.startswith('RUN FAILED: bad input, nothing was run: ')
  for fragment in PREFLIGHT_CASES[name].expected:
    assert fragment in line
  assert 'Pushed model' not in result.stdout  # No pipeline ran.
  _assert_untouched(outputs, before, new_runs=0)


# --- The anomaly gate: its message in-process, one real stop. -------------


def _all_fares_empty(folder: pathlib.Path) -> pathlib.Path:
  return robustness.mutate_column(folder, 'fare', lambda n, v: '', limit=400)


def _many_unseen_companies(folder: pathlib.Path) -> pathlib.Path:
  return robustness.mutate_column(
      folder, 'company',
      lambda n, v: f'{9000 + n % 60} - Unregistered Cab {n % 60}'
      if n % 2 else v, limit=400)


def _impossible_values(folder: pathlib.Path) -> pathlib.Path:
  header, rows = robustness.sample_table(400)
  fare, miles = header.index('fare'), header.index('trip_miles')
  for n, row in enumerate(rows):
    if n % 50 == 0:
      row[fare] = '-7.25'
    if n % 40 == 1:
      row[miles] = '1000000.0'
  robustness.write_csv(folder / 'data.csv', header, rows)
  return folder


# (data builder, fragments the one-line error must hold)
GATE_CASES = {
    'entirely_null_column': (_all_fares_empty, (
        "feature 'fare': FEATURE_TYPE_NOT_PRESENT",)),
    'many_unseen_categorical_values': (_many_unseen_companies, (
        "feature 'company': ENUM_TYPE_UNEXPECTED_STRING_VALUES",
        'Unregistered Cab')),
    'impossible_values': (_impossible_values, (
        "feature 'fare': FLOAT_TYPE_SMALL_FLOAT",
        "feature 'trip_miles': FLOAT_TYPE_BIG_FLOAT")),
}
# The case that also goes through a real pipeline run.
REAL_RUN_GATE_CASE = 'impossible_values'


def _curated_schema() -> schema_pb2.Schema:
  return text_format.Parse(pathlib.Path(SCHEMA).read_text(),
                           schema_pb2.Schema())


def _run_anomaly_gate(data: pathlib.Path, work_dir: pathlib.Path,
                      allowed: str = '') -> None:
  """The AnomalyGate's executor on `data`, without a pipeline around it.

  What StatisticsGen and ExampleValidator do, done by TFDV in this process:
  statistics of the CSV, validated against the curated schema. The
  anomalies are written where ExampleValidator writes them, and the gate's
  own executor reads them and raises its DataAnomalyError.
  """
  statistics = tfdv.generate_statistics_from_csv(str(data / 'data.csv'))
  anomalies = tfdv.validate_statistics(statistics, _curated_schema())
  artifact = standard_artifacts.ExampleAnomalies()
  artifact.uri = str(work_dir)
  artifact.split_names = artifact_utils.encode_split_names(['train'])
  split_dir = pathlib.Path(artifact_utils.get_split_uri([artifact], 'train'))
  split_dir.mkdir(parents=True)
  (split_dir / anomaly_gate.ANOMALIES_FILE).write_bytes(
      anomalies.SerializeToString())
  anomaly_gate.AnomalyGate_Executor().Do(
      {'anomalies': [artifact]}, {}, {'allowed_anomaly_types': allowed})


@pytest.mark.parametrize('name', sorted(GATE_CASES))
def test_anomaly_gate_message_names_feature_and_what_to_do(name, tmp_path):
  build, expected = GATE_CASES[name]
  data = build(tmp_path / 'data')
  _check(data)  # Structurally fine: only the statistics show the problem.
  with pytest.raises(anomaly_gate.DataAnomalyError) as raised:
    _run_anomaly_gate(data, tmp_path / 'anomalies')
  message = str(raised.value)
  assert '\n' not in message
  assert message.startswith('Data anomalies stop the run before training')
  for fragment in expected:
    assert fragment in message, f'{fragment!r} not in {message!r}'
  assert 'Fix the input data' in message


def test_anomaly_gate_passes_clean_data_and_allow_listed_types(tmp_path):
  # The same in-process path finds nothing in the sample: the anomalies
  # above come from the bad data, not from how the statistics were made.
  _run_anomaly_gate(SAMPLE_DATA, tmp_path / 'sample')
  _run_anomaly_gate(_impossible_values(tmp_path / 'data'),
                    tmp_path / 'allowed',
                    allowed='FLOAT_TYPE_SMALL_FLOAT, FLOAT_TYPE_BIG_FLOAT')


@pytest.mark.e2e
def test_anomaly_gate_stops_the_run_before_transform(outputs, tmp_path):
  build, expected = GATE_CASES[REAL_RUN_GATE_CASE]
  before = robustness.snapshot(outputs)
  data = build(tmp_path / 'data')
  result = run_local_pipeline(outputs, ['--train-steps', '10'],
                              data_root=data, check=False)
  assert result.returncode == 1, result.stderr[-3000:]
  line = robustness.failure_line(result)
  assert line.startswith('RUN FAILED: DataAnomalyError: Data anomalies stop '
                         'the run before training')
  for fragment in expected:
    assert fragment in line, f'{fragment!r} not in {line!r}'
  assert 'Fix the input data' in line
  states = robustness.executed(robustness.latest_summary(outputs))
  assert states['AnomalyGate'] == 'FAILED'
  assert not set(TRAINING_AND_AFTER) & set(states), states
  _assert_untouched(outputs, before, new_runs=1)


@pytest.mark.e2e
def test_allow_listed_anomaly_continues_and_says_so(useless_model_rerun):
  """An unknown column, allow-listed: both checks let it through, loudly.

  The session's `useless_model_rerun` (tests/conftest.py) runs on the sample
  plus an extra column with --allow-anomaly SCHEMA_NEW_COLUMN: killed in
  the Trainer, then run again. --drop-all-features keeps the model from
  being blessed, so the check that nothing new reached the serving dir does
  not depend on training noise.
  """
  assert conftest.NEW_COLUMN_ANOMALY == contract.NEW_COLUMN_ANOMALY
  run = useless_model_rerun
  note = (f'Allow-listed ({contract.NEW_COLUMN_ANOMALY}), ignored by the '
          f'model: {conftest.EXTRA_COLUMN}')
  assert note in run.killed_log and note in run.rerun.stdout
  # The first run executed the anomaly gate; the re-run took it from cache.
  allowed = [line for line in run.killed_log.splitlines()
             if 'allow-listed anomaly, continuing' in line]
  assert allowed and all(
      conftest.EXTRA_COLUMN in line and 'SCHEMA_NEW_COLUMN' in line
      for line in allowed), allowed
  store = run_model.open_store(str(run.output_dir / 'metadata.sqlite'))
  first, second = [
      robustness.executed(run_summary.summarize(run_model.find_run(store, PIPELINE_NAME, run_id)))
      for run_id in run_model.run_ids(store, PIPELINE_NAME)[-2:]]
  for component in ('AnomalyGate', 'Transform'):
    assert first[component] == 'complete', first
  for component in ('Trainer', 'Evaluator'):
    assert second[component] == 'complete', second
  summary = robustness.latest_summary(run.output_dir)
  assert summary.blessed is False and summary.pushed_model is None
  after = robustness.snapshot(run.output_dir)
  assert after.pushed == run.before.pushed
  # The killed Trainer and the re-run's.
  assert after.trainer_executions == run.before.trainer_executions + 2


def _shift_payment_types(folder: pathlib.Path) -> pathlib.Path:
  """Most card payments become cash: every value is still in the domain."""
  return robustness.mutate_column(
      folder, 'payment_type',
      lambda n, v: 'Cash' if v == 'Credit Card' and n % 5 else v)


# --- The drift check itself, on statistics computed in-process. ----------


@pytest.fixture(scope='module')
def drift_inputs(tmp_path_factory):
  """Curated schema and TFDV statistics of the sample and of drifted data."""
  schema = _curated_schema()
  drifted = _shift_payment_types(tmp_path_factory.mktemp('drift'))

  def stats(path: pathlib.Path):
    return tfdv.generate_statistics_from_csv(str(path))

  return (schema, stats(SAMPLE_DATA / 'data.csv'),
          stats(REPO_ROOT / 'data' / 'taxi' / 'data.csv'),
          stats(drifted / 'data.csv'))


def test_drift_comparators_accept_more_data_of_the_same_kind(drift_inputs):
  schema, sample, full, _ = drift_inputs
  assert drift_gate.check({'train': full}, {'train': sample}, schema) == []


def test_drift_check_names_feature_and_what_to_do(drift_inputs):
  schema, sample, _, drifted = drift_inputs
  with pytest.raises(drift_gate.DataDriftError) as raised:
    drift_gate.check({'train': drifted}, {'train': sample}, schema)
  message = str(raised.value)
  assert '\n' not in message
  assert ("split 'train', feature 'payment_type': COMPARATOR_L_INFTY_HIGH"
          in message)
  # Card payments moved to cash: the two shares moved by the same amount.
  assert re.search('The feature value with maximum difference is: '
                   '(Cash|Credit Card)', message), message
  assert '--allow-anomaly COMPARATOR_L_INFTY_HIGH' in message
  tolerated = drift_gate.check({'train': drifted}, {'train': sample}, schema,
                               allowed=['COMPARATOR_L_INFTY_HIGH'])
  assert len(tolerated) == 1 and "'payment_type'" in tolerated[0]


def _accepted(uri: pathlib.Path, span=None):
  from tfx.types import standard_artifacts
  artifact = standard_artifacts.ExampleStatistics()
  artifact.uri = str(uri)
  artifact.split_names = '["train", "eval"]'
  if span is not None:
    artifact.span = span
  uri.mkdir(parents=True)
  return artifact


def test_the_baseline_record_names_the_last_accepted_statistics(tmp_path):
  record = drift_gate.baseline_record_path(str(tmp_path / 'root'), 'p')
  assert record == str(tmp_path / 'root' / 'drift_baseline' / 'p.json')
  assert drift_gate.read_baseline(record) is None  # A first run.
  drift_gate.write_baseline(record, _accepted(tmp_path / 'a', span=1))
  drift_gate.write_baseline(record, _accepted(tmp_path / 'b', span=2))
  baseline = drift_gate.read_baseline(record)
  assert (baseline.uri, baseline.span) == (str(tmp_path / 'b'), 2)
  assert baseline.split_names == '["train", "eval"]'
  assert sorted(os.listdir(tmp_path / 'root' / 'drift_baseline')) == [
      'p.json']  # No temporary file left behind.


def test_a_damaged_or_dangling_baseline_record_says_what_to_do(tmp_path):
  record = tmp_path / 'p.json'
  record.write_text('{"uri": ', encoding='utf-8')
  with pytest.raises(ValueError, match='is damaged .*delete it'):
    drift_gate.read_baseline(str(record))
  drift_gate.write_baseline(str(record), _accepted(tmp_path / 'gone'))
  (tmp_path / 'gone').rmdir()
  with pytest.raises(FileNotFoundError,
                     match='no longer exist; delete the record'):
    drift_gate.read_baseline(str(record))


def test_the_drift_message_names_the_baseline_span(drift_inputs):
  schema, sample, _, drifted = drift_inputs
  with pytest.raises(drift_gate.DataDriftError,
                     match=r'^Data drifted from the last accepted data '
                     r'\(span 2\), which stops'):
    drift_gate.check({'train': drifted}, {'train': sample}, schema,
                     baseline_name='the last accepted data (span 2)')
