"""Data that arrives in spans: `span-N/` folders, the latest by default.

Unit tests cover finding the span folders, `--span` (one span or a range),
what reaches the ExampleGen, and the range driver and readers on a few
rows; the e2e tests read the background span runs (tests/span_runs.py):
span 1, a normal span 2 accepted by the drift gate, a drifted span 3
stopped, twice, then the range 1-2 read together and accepted.
"""

import argparse
import json
import pathlib

import pytest

from pipeline import flags as cli
from pipeline.components import drift_gate
from pipeline.definition import spans
from tests import robustness
from tests.conftest import PIPELINE_NAME
from tests.conftest import SAMPLE_DATA

TRAINING_AND_AFTER = ('Trainer', 'Evaluator', 'Pusher')


def _spans(root: pathlib.Path, *names: str) -> pathlib.Path:
  for name in names:
    (root / name).mkdir(parents=True)
    (root / name / 'data.csv').write_bytes(
        (SAMPLE_DATA / 'data.csv').read_bytes())
  return root


def _args(data_root: pathlib.Path, *argv: str) -> argparse.Namespace:
  parser = argparse.ArgumentParser()
  cli.add_common_flags(parser)
  return parser.parse_args(['--data-root', str(data_root), *argv])


def _config(data_root: pathlib.Path, tmp_path, *argv: str):
  return cli.build_config(_args(data_root, *argv),
                          pipeline_root=str(tmp_path / 'root'),
                          serving_model_dir=str(tmp_path / 'serving'))


# --- Finding the spans. -----------------------------------------------------


def test_span_folders_are_found_by_number_not_by_name(tmp_path):
  root = _spans(tmp_path / 'data', 'span-2', 'span-10', 'span-1')
  (root / 'span-x').mkdir()
  (root / 'notes.txt').write_text('not a span', encoding='utf-8')
  assert spans.local_spans(str(root)) == {
      n: str(root / f'span-{n}') for n in (1, 2, 10)}
  # The latest is the highest number, as TFX's driver takes it.
  assert spans.input_folder(str(root), spans.SpanInput()) == str(
      root / 'span-10')
  assert spans.input_folder(str(root), spans.SpanInput(2)) == str(
      root / 'span-2')


def test_a_plain_folder_has_no_spans():
  assert spans.local_spans(str(SAMPLE_DATA)) == {}
  assert spans.detect(str(SAMPLE_DATA), None) is None


@pytest.mark.parametrize('names, argv, problem', [
    (('span-1', 'span-2'), ['--span', '3'],
     '--span 3: {root} has no folder span-3 (its spans: span-1, span-2).'),
    ((), ['--span', '1'], 'has no span-N folders, which --span reads'),
    (('span-1', 'span-3'), ['--span', '1-3'],
     '--span 1-3: {root} has no folder span-2 (its spans: span-1, span-3).'),
    (('span-1', 'span-2'), ['--span', '2-1'],
     '--span 2-1: a range goes from a lower to a higher span, e.g. --span '
     '2-4.'),
    (('span-1',), ['--span', 'latest'],
     '--span latest: give a span number (--span 3) or a range of spans '
     '(--span 2-4).'),
    (('span-01',), [], 'name span folders without leading zeros (span-1, '
     'not span-01)'),
    (('span-1',), ['--span', '0'], 'spans are numbered from 1'),
    (('span-0', 'span-1'), [], 'span-0: spans are numbered from 1'),
], ids=['missing-span', 'no-spans', 'range-gap', 'range-down', 'not-a-span',
        'leading-zero', 'zero', 'zero-folder'])
def test_bad_spans_are_refused_by_name(names, argv, problem, tmp_path):
  root = _spans(tmp_path / 'data', *names)
  if not names:
    _spans(tmp_path, 'data')
    root = tmp_path / 'data'
    (root / 'data.csv').write_bytes((SAMPLE_DATA / 'data.csv').read_bytes())
  with pytest.raises(cli.FlagError) as raised:
    _config(root, tmp_path, *argv)
  assert problem.format(root=root) in str(raised.value)


# --- What reaches the pipeline. ----------------------------------------------


def _example_gen_properties(config):
  from pipeline.definition import pipeline as pipeline_lib
  pipeline = pipeline_lib.create_pipeline(config)
  [example_gen] = [c for c in pipeline.components
                   if c.id == pipeline_lib.EXAMPLE_GEN]
  return example_gen.exec_properties


def test_the_example_gen_reads_the_latest_span_or_the_one_asked(tmp_path):
  root = _spans(tmp_path / 'data', 'span-1', 'span-2')
  latest = _config(root, tmp_path)
  assert latest.spans == spans.SpanInput(None)
  assert latest.input_format == 'csv'  # Detected inside the span folder.
  properties = _example_gen_properties(latest)
  assert json.loads(properties['input_config']) == {'splits': [
      {'name': 'single_split', 'pattern': 'span-{SPAN}/*'}]}
  assert properties['range_config'] is None  # The driver takes the latest.
  second = _example_gen_properties(_config(root, tmp_path, '--span', '1'))
  assert json.loads(second['range_config']) == {'static_range': {
      'start_span_number': 1, 'end_span_number': 1}}


def test_a_range_reaches_the_example_gen_as_a_static_range(tmp_path):
  root = _spans(tmp_path / 'data', 'span-1', 'span-2', 'span-3')
  config = _config(root, tmp_path, '--span', '1-2')
  assert config.spans == spans.SpanInput(2, first=1)
  assert config.spans.numbers == (1, 2)
  assert spans.input_folders(str(root), config.spans) == [
      str(root / 'span-1'), str(root / 'span-2')]
  assert spans.describe(str(root), config.spans) == (
      f'Spans 1-2: {root}/span-1 ... {root}/span-2 (2 folders, read '
      'together)')
  properties = _example_gen_properties(config)
  assert json.loads(properties['range_config']) == {'static_range': {
      'start_span_number': 1, 'end_span_number': 2}}


def test_a_range_is_refused_for_a_query_and_for_vertex(tmp_path):
  with pytest.raises(cli.FlagError) as raised:
    _config(tmp_path, tmp_path, '--sql-url', 'postgresql://u@h/db',
            '--query', 'SELECT * FROM trips WHERE day = {SPAN}',
            '--span', '2-4')
  assert ('--span 2-4 is a range of span folders; a --query reads one '
          '{SPAN}. Write the range into the query instead, e.g. WHERE day '
          'BETWEEN 2 AND 4, without --span.') in str(raised.value)
  from pipeline.cloud import settings
  with pytest.raises(settings.CloudConfigError) as raised:
    settings.refuse_span_range(argparse.Namespace(span='2-4'))
  assert "Vertex runs TFX's own driver for file ExampleGens" in str(
      raised.value)
  settings.refuse_span_range(argparse.Namespace(span='4'))  # One span is.


def test_without_spans_the_example_gen_reads_every_file(tmp_path):
  properties = _example_gen_properties(_config(SAMPLE_DATA, tmp_path))
  assert 'SPAN' not in properties['input_config']


def test_the_drift_gate_is_on_by_default_and_can_be_turned_off(tmp_path):
  from pipeline.definition import pipeline as pipeline_lib
  on = pipeline_lib.create_pipeline(_config(SAMPLE_DATA, tmp_path))
  [gate] = [c for c in on.components if c.id == pipeline_lib.DRIFT_GATE]
  assert gate.exec_properties['baseline_record'] == str(
      tmp_path / 'root' / drift_gate.BASELINE_DIR / f'{PIPELINE_NAME}.json')
  off = pipeline_lib.create_pipeline(
      _config(SAMPLE_DATA, tmp_path, '--no-check-drift'))
  assert pipeline_lib.DRIFT_GATE not in {c.id for c in off.components}


# --- The span runs. ----------------------------------------------------------


def _states(run) -> dict:
  return robustness.executed(run)


def _summaries(span_runs):
  from tests import pipeline_state
  return pipeline_state.summaries(str(span_runs.output_dir /
                                      'metadata.sqlite'))


@pytest.mark.e2e
def test_span_1_then_a_normal_span_2_are_accepted(span_runs):
  first, second = span_runs.results[:2]
  for result in (first, second):
    assert result.returncode == 0, result.stderr[-3000:]
  # Each run's input check read the span its ExampleGen read.
  assert f'Span 1: {span_runs.data_root}/span-1\n' in first.stdout
  assert (f'Span 2 (the latest): {span_runs.data_root}/span-2\n' in
          second.stdout)
  one, two = _summaries(span_runs)[:2]
  for summary in (one, two):
    states = _states(summary)
    assert states['DriftGate'] == 'complete', states
    assert states['Trainer'] == 'complete', states
  # The spans on the Examples artifacts, and the record of the last accepted.
  assert [one.span, two.span] == [1, 2]
  assert f'Run {two.run_id} (span 2)' in second.stdout
  record = json.loads((span_runs.output_dir / 'pipeline_root' /
                       drift_gate.BASELINE_DIR /
                       f'{PIPELINE_NAME}.json').read_text(encoding='utf-8'))
  assert record['span'] == 2


@pytest.mark.e2e
def test_a_drifted_span_3_stops_before_training_and_stays_refused(span_runs):
  for result in span_runs.results[2:4]:
    assert result.returncode == 1, result.stderr[-3000:]
    line = robustness.failure_line(result)
    assert line.startswith('RUN FAILED: DataDriftError: Data drifted from '
                           'the last accepted data (span 2)'), line
    assert "feature 'payment_type': COMPARATOR_L_INFTY_HIGH" in line, line
    assert '--allow-anomaly COMPARATOR_L_INFTY_HIGH' in line, line
  summaries = _summaries(span_runs)
  assert len(summaries) == 5
  for summary in summaries[2:4]:
    states = _states(summary)
    assert states['DriftGate'] == 'FAILED', states
    assert not set(TRAINING_AND_AFTER) & set(states), states
  assert summaries[2].span == 3


@pytest.mark.e2e
def test_the_range_1_2_is_read_together_and_accepted(span_runs):
  result = span_runs.results[4]
  assert result.returncode == 0, result.stderr[-3000:]
  root = span_runs.data_root
  assert (f'Spans 1-2: {root}/span-1 ... {root}/span-2 (2 folders, read '
          'together)\n') in result.stdout
  for name in ('span-1', 'span-2'):  # Each folder is checked up front.
    assert f'\n{name}: Input check passed: 1 file(s), 2000 rows' in (
        result.stdout)
  from pipeline.inspection import model_card
  from pipeline.inspection import run_model
  store = run_model.open_store(str(span_runs.output_dir / 'metadata.sqlite'))
  runs = [run_model.read_run(store, context, PIPELINE_NAME)
          for context in run_model.run_contexts(store, PIPELINE_NAME)]
  # Every row of both spans, once: StatisticsGen counted them.
  assert sum(model_card.row_counts(runs[4]).values()) == 4000
  assert sum(model_card.row_counts(runs[1]).values()) == 2000
  five = _summaries(span_runs)[4]
  assert (five.first_span, five.span, five.span_flag()) == (1, 2, '1-2')
  assert f'Run {five.run_id} (spans 1-2)' in result.stdout
  states = _states(five)
  for component in ('CsvExampleGen', 'DriftGate', 'Transform', 'Trainer',
                    'Evaluator'):
    assert states[component] == 'complete', states
  # The model of a span before the range's last, span 1's, is its start.
  assert (f'Warm start: from the model blessed in run {runs[0].run_id} '
          '(span 1)') in result.stdout
