"""A default run prints the project's lines; the libraries' go to its log.

`pipeline/local/run_log.py` points the libraries' output (Python logging,
Python warnings, native code on file descriptor 2, child processes) at
`<output-dir>/logs/run-<time>.log`, and lets only the project's own lines
through to the terminal. `tests/terminal_lines.py` defines those lines
exactly. The unit tests check that definition on real lines of both kinds,
and the log's three channels in a subprocess; the e2e tests read the
terminal output of the session's runs (tests/conftest.py) and find no line
that is not the project's own.
"""

import datetime
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

from pipeline.definition import dataset_config
from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from pipeline.local import dag
from pipeline.local import run_log
import schema as schema_lib
from tests import terminal_lines
from tests.conftest import PIPELINE_NAME
from tests.conftest import REPO_ROOT

DRIFT_NOTE = ('WARNING: DriftGate: no accepted statistics from an earlier '
              'run; this run becomes the drift baseline.')
# TFX 1.16 logs this warning whenever it resolves a channel with a
# property predicate: every run does; only the log file may show it.
TFX_WARNING = 'ArtifactQuery.property_predicate is not supported.'

# Lines a default run printed before its library output went to the log:
# each must count as stray.
LIBRARY_LINES = [
    '2026-12-07 14:49:22.290595: E external/local_xla/xla/stream_executor/'
    'cuda/cuda_fft.cc:479] Unable to register cuFFT factory: Attempting to '
    'register factory for plugin cuFFT when one has already been registered',
    '2026-12-07 14:49:22.349036: E external/local_xla/xla/stream_executor/'
    'cuda/cuda_dnn.cc:10575] Unable to register cuDNN factory: Attempting to '
    'register factory for plugin cuDNN when one has already been registered',
    '2026-12-07 14:49:23.1: W tensorflow/compiler/tf2tensorrt/utils/'
    'py_utils.cc:38] TF-TRT Warning: Could not find TensorRT',
    'To enable the following instructions: AVX2 FMA, in other operations, '
    'rebuild TensorFlow with the appropriate compiler flags.',
    'WARNING: All log messages before absl::InitializeLog() is called are '
    'written to STDERR',
    '/venv/lib/python3.10/site-packages/google/api_core/_python_version_'
    'support.py:246: FutureWarning: You are using a non-supported Python '
    'version (3.10.13).',
    '  warnings.warn(message, FutureWarning)',
    'WARNING:absl:ArtifactQuery.property_predicate is not supported.',
    'WARNING:apache_beam.transforms.core:(\'No iterator is returned by the '
    'process method in %s.\', <class \'apache_beam.transforms.combiners.'
    '_TopPerBundle\'>)',
    'WARNING:tensorflow:From /venv/lib/python3.10/site-packages/tfx_bsl/tfxio/'
    'tf_example_record.py:343: parse_example_dataset (from tensorflow.python.'
    'data.experimental.ops.parsing_ops) is deprecated and will be removed in '
    'a future version.',
    'Instructions for updating:',
    'Use `tf.data.Dataset.map(tf.io.parse_example(...))` instead.',
    '/venv/lib/python3.10/site-packages/tensorflow_model_analysis/metrics/'
    'binary_confusion_matrices.py:155: RuntimeWarning: invalid value '
    'encountered in divide',
    '  false_omission_rate = fn / predicated_negatives',
    'WARNING:tensorflow:Callback method `on_train_batch_end` is slow compared '
    'to the batch time (batch time: 0.0101s vs `on_train_batch_end` time: '
    '0.0855s). Check your callbacks.',
    # The project's own note, as absl's default format showed it.
    'WARNING:absl:DriftGate: no accepted statistics from an earlier run; '
    'this run becomes the drift baseline.',
    'Traceback (most recent call last):',
    # A project-like line that names another output dir.
    'Log: /elsewhere/logs/run-2026-12-07T14-58-22.log',
    'INFO:absl:Running launcher for node_info',
]

OUT = pathlib.Path('/tmp/out')
SUMMARY = [
    'Run 2026-12-07T14:58:40.565324',
    '  Trainer                      complete     33.4s',
    'Blessing: BLESSED (all thresholds met)',
]
PROJECT_OUTPUT = '\n'.join([
    "Input check passed: 1 file(s), 2000 rows, 19 columns. Label "
    "'big_tipper': 2 classes (0 1577, 1 423).",
    '[ 1/14] LatestBlessedModelResolver   started',
    '[ 1/14] LatestBlessedModelResolver   complete      0.0s',
    '[ 3/14] CsvExampleGen                cached        0.0s',
    '[10/14] Trainer                      FAILED       12.0s',
    'Epoch 1/16',
    '100/100 - 16s - loss: 0.5266 - auc: 0.6347 - binary_accuracy: 0.7671 - '
    'val_loss: 0.4231 - val_auc: 0.9033 - val_binary_accuracy: 0.7682 - '
    '16s/epoch - 157ms/step',
    '50/50 - 980ms - loss: 1.2e-05 - val_loss: nan - 980ms/epoch - 20ms/step',
    DRIFT_NOTE,
    *SUMMARY,
    f'Report: {OUT}/reports/run-2026-12-07T14-58-40.565324.html',
    f'Model card: {OUT}/serving_model/1796655175/model_card.html (and '
    'model_card.json)',
    f'MLflow: run 2b61d210c6b54005a901c4d61feac957 (experiment tabular-taxi) '
    f'in sqlite:///{OUT}/mlflow.db; registered model taxi version 1 (alias '
    'champion) [1.2 s at '
    'the end of the run]',
    f'  Browse it: mlflow ui --backend-store-uri sqlite:///{OUT}/mlflow.db',
    f'  Serve it: PATH=/venv/bin:$PATH MLFLOW_TRACKING_URI=sqlite:///{OUT}/'
    'mlflow.db mlflow models serve -m models:/taxi/1 --env-manager local '
    '--port 5001',
    f'Log: {OUT}/logs/run-2026-12-07T14-58-22.log',
])


def test_the_project_lines_are_the_projects_own():
  assert terminal_lines.stray_lines(
      PROJECT_OUTPUT, OUT, exact=[*SUMMARY, DRIFT_NOTE]) == []


def test_library_lines_are_stray():
  output = '\n'.join(LIBRARY_LINES)
  assert terminal_lines.stray_lines(
      output, OUT, exact=[*SUMMARY, DRIFT_NOTE]) == LIBRARY_LINES
  # A summary line or a project warning counts only where expected.
  assert terminal_lines.stray_lines(
      f'{SUMMARY[-1]}\n{DRIFT_NOTE}', OUT) == [SUMMARY[-1], DRIFT_NOTE]


# --- The log's three channels, in a process of their own -------------------

_CHANNELS = textwrap.dedent('''
    import logging, os, subprocess, sys, warnings
    from absl import logging as absl_logging
    from pipeline.local import progress, run_log
    log = run_log.install(sys.argv[1], verbose=sys.argv[2] == 'verbose')
    os.write(2, b'E0000 native library line\\n')
    logging.getLogger('some.library').warning('library record')
    absl_logging.warning('absl record of a library')
    warnings.warn('a library FutureWarning', FutureWarning)
    subprocess.run([sys.executable, '-c',
                    'import sys; sys.stderr.write("child process line\\\\n")'],
                   check=True)
    # A project module's warning: the progress display cannot read a store.
    progress._READ_RETRY_PAUSES_S = ()
    printer = progress.ProgressPrinter(sys.argv[1] + '.missing', 'demo')
    printer.run_started('run')
    printer.node_finished('Trainer')
    print('RUN FAILED: the project prints this', file=sys.stderr)
    print('a stdout line')
    log.close()
    os.write(2, b'after close\\n')
''')
PROJECT_WARNING = re.compile(
    r'WARNING: Progress: cannot read how Trainer ended: FileNotFoundError: '
    r'No metadata store at .+')
LIBRARY_OUTPUT = ['E0000 native library line', 'library record',
                  'absl record of a library', 'a library FutureWarning',
                  'child process line']


def _channels(tmp_path: pathlib.Path, mode: str):
  log = tmp_path / 'logs' / 'run.log'
  result = subprocess.run(
      [sys.executable, '-c', _CHANNELS, str(log), mode], cwd=REPO_ROOT,
      capture_output=True, text=True, timeout=120, check=True)
  return result, log.read_text()


def test_quiet_log_keeps_only_the_project_lines_on_the_terminal(tmp_path):
  result, log = _channels(tmp_path, 'quiet')
  lines = result.stderr.splitlines()
  assert len(lines) == 3, result.stderr
  assert PROJECT_WARNING.fullmatch(lines[0]), lines[0]
  assert lines[1:] == ['RUN FAILED: the project prints this', 'after close']
  assert result.stdout == 'a stdout line\n'
  for text in LIBRARY_OUTPUT:
    assert text in log, text
  # The file has the project's records too, with where they came from.
  assert re.search(r'WARNING absl progress\.py:\d+\] Progress: cannot read',
                   log), log
  assert 'RUN FAILED' not in log and 'after close' not in log


def test_verbose_log_shows_everything_and_keeps_the_records(tmp_path):
  result, log = _channels(tmp_path, 'verbose')
  for text in LIBRARY_OUTPUT:
    assert text in result.stderr, text
  assert 'WARNING:some.library:library record' in result.stderr
  assert 'WARNING:absl:Progress: cannot read how Trainer ended' in (
      result.stderr)
  assert 'library record' in log and 'Progress: cannot read' in log


def test_the_log_is_named_after_the_start_time():
  assert run_log.log_path('/out', datetime.datetime(2026, 12, 7, 14, 58, 22,
                                                    123)) == (
      '/out/logs/run-2026-12-07T14-58-22.log')


# --- The session's runs -----------------------------------------------------


def _summary(metadata_path: str, pipeline_name: str, run_id: str):
  store = run_model.open_store(metadata_path)
  return run_summary.format_summary(run_summary.summarize(
      run_model.find_run(store, pipeline_name, run_id))).splitlines()


def _terminal(result: subprocess.CompletedProcess) -> str:
  """What the run printed: its stdout's lines, then its stderr's."""
  return '\n'.join(result.stdout.splitlines() + result.stderr.splitlines())


def _log_of(result: subprocess.CompletedProcess) -> pathlib.Path:
  [line] = [line for line in result.stdout.splitlines()
            if line.startswith('Log: ')]
  return pathlib.Path(line[len('Log: '):])


@pytest.mark.e2e
def test_a_default_run_prints_only_the_project_lines(e2e_run):
  """The e2e fixture's first run: default flags but the sample's, no
  --verbose. Every line is the project's, and each kind is there."""
  result = e2e_run.outputs[0]
  store = run_model.open_store(e2e_run.metadata_path)
  run_id = run_model.run_ids(store, PIPELINE_NAME)[0]
  summary = _summary(e2e_run.metadata_path, PIPELINE_NAME, run_id)
  output = _terminal(result)
  assert terminal_lines.stray_lines(
      output, e2e_run.output_dir, exact=[*summary, DRIFT_NOTE]) == [], output
  # Not by accident: the input check, each component, the epochs, the
  # project's note and the summary are all there.
  lines = output.splitlines()
  assert any(terminal_lines.INPUT_CHECK.fullmatch(line) for line in lines)
  components = run_model.find_run(store, PIPELINE_NAME, run_id).executions
  progress = [line for line in lines
              if terminal_lines.PROGRESS.fullmatch(line)]
  assert len(progress) == 2 * len(components)  # A first run: no cache hit.
  assert any(terminal_lines.KERAS_EPOCH_END.fullmatch(line) for line in lines)
  assert result.stderr.splitlines() == [DRIFT_NOTE]
  assert '\n'.join(summary) in result.stdout
  # What the terminal no longer shows went to the run's log.
  log = _log_of(result).read_text()
  assert TFX_WARNING in log and DRIFT_NOTE.split(': ', 1)[1] in log


@pytest.mark.e2e
@pytest.mark.parametrize('task', ['multiclass', 'regression'])
def test_a_zero_config_run_prints_only_the_project_lines(task_runs, task):
  """The zero-config runs (tests/task_runs.py): the profiling run, the
  drafts and the full run, all printed as the project's lines."""
  run = task_runs[task]
  result = run.first
  assert result.returncode == 0, result.stderr[-3000:]
  drafted = dataset_config.load(
      str(run.draft_dir / dataset_config.CONFIG_FILE))
  drafts = terminal_lines.draft_lines(
      dag.describe_draft(drafted), run.draft_dir, dataset_config.CONFIG_FILE,
      schema_lib.SCHEMA_FILE)
  store = run_model.open_store(run.metadata_path)
  run_id = run_model.run_ids(store, run.pipeline_name)[-1]
  summary = _summary(run.metadata_path, run.pipeline_name, run_id)
  output = _terminal(result)
  assert terminal_lines.stray_lines(
      output, run.output_dir, exact=[*summary, *drafts, DRIFT_NOTE]) == [], (
          output)
  assert terminal_lines.PROFILING in output.splitlines()
  assert '\n'.join(drafts) in result.stdout
