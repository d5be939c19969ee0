"""Statistics are read one way: blank CSV cells count as missing everywhere.

A CSV file with blank cells is encoded by the project's ExampleGen encoder
(`arrow_csv_example_gen.encode_file`, CsvExampleGen's examples byte for
byte) and profiled by TFDV, as StatisticsGen profiles it. TFDV counts a
blank cell as present (an empty value list), so `num_missing` is 0; the
report's statistics table, the serving monitor's summary and schema
drafting must all see the blanks through `pipeline.inspection.feature_stats`.
"""

import pathlib

import pytest
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx_bsl.coders import example_coder

from pipeline.components import arrow_csv_example_gen as arrow_gen
from pipeline.inspection import feature_stats
from pipeline.inspection import report
from pipeline.local import drafting
from serving import monitor

ROWS = 40
# Every 4th fare and every 5th company is blank: 25% and 20% missing.
BLANK_FARE = {i for i in range(ROWS) if i % 4 == 1}
BLANK_COMPANY = {i for i in range(ROWS) if i % 5 == 2}


def _csv(folder: pathlib.Path) -> pathlib.Path:
  lines = ['fare,company,tipped']
  for i in range(ROWS):
    fare = '' if i in BLANK_FARE else f'{4 + i * 0.75:.2f}'
    company = '' if i in BLANK_COMPANY else f'Cab {i % 3}'
    lines.append(f'{fare},{company},{i % 2}')
  folder.mkdir(parents=True, exist_ok=True)
  path = folder / 'data.csv'
  path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
  return path


@pytest.fixture(scope='module')
def statistics(tmp_path_factory) -> statistics_pb2.DatasetFeatureStatisticsList:
  path = str(_csv(tmp_path_factory.mktemp('blanks')))
  examples = list(arrow_gen.encode_file(path, arrow_gen.infer_kinds([path])))
  assert len(examples) == ROWS
  batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(examples)
  stats = stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions())
  stats.datasets[0].name = 'train'
  return stats


def _feature(stats, name: str) -> statistics_pb2.FeatureNameStatistics:
  [found] = [f for f in stats.datasets[0].features
             if feature_stats.feature_name(f) == name]
  return found


def test_tfdv_counts_a_blank_cell_as_present(statistics):
  """The trap: what StatisticsGen records for the blanks."""
  common = feature_stats.common(_feature(statistics, 'fare'))
  assert (common.num_missing, common.num_non_missing) == (0, ROWS)
  assert common.tot_num_values == ROWS - len(BLANK_FARE)
  assert common.min_num_values == 0


def test_presence_counts_the_blank_cells(statistics):
  for name, blank in (('fare', BLANK_FARE), ('company', BLANK_COMPANY),
                      ('tipped', set())):
    counted = feature_stats.presence(_feature(statistics, name), ROWS)
    assert (counted.rows, counted.missing, counted.exact) == (
        ROWS, len(blank), True), name
  assert feature_stats.presence(_feature(statistics, 'fare'),
                                ROWS).missing_share == 0.25


def test_the_report_shows_the_missing_share(statistics):
  for name, share in (('fare', '25.0%'), ('company', '20.0%'),
                      ('tipped', '0.0%')):
    _, cell = report.feature_summary(_feature(statistics, name), ROWS)
    assert cell.missing == share, name


def test_the_monitor_shows_the_missing_share(statistics):
  summary = monitor._feature_summary(statistics)
  assert {name: row['missing'] for name, row in summary.items()} == {
      'fare': '25.0%', 'company': '20.0%', 'tipped': '0.0%'}


def test_drafting_sees_the_blank_cells(statistics):
  draft = drafting.draft(statistics, tfdv.infer_schema(statistics),
                         name='blanks', label='tipped', task='binary')
  notes = draft.config.notes
  assert notes['fare'].endswith(f'empty in {len(BLANK_FARE)} of {ROWS} rows')
  assert notes['company'].endswith(
      f'empty in {len(BLANK_COMPANY)} of {ROWS} rows')
