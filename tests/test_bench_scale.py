"""The scale bench's parts that take no pipeline run: the data it writes, its
floors, the attribution of memory samples and its verdict lines."""

from bench import scale

MB = 1024 ** 2


def test_replicated_csv_has_the_header_once_and_exactly_the_rows(tmp_path):
  source = scale.TAXI_CSV.read_text(encoding='utf-8').splitlines()
  rows = 2 * (len(source) - 1) + 7  # Two copies and a cut-short third.
  path = scale.write_replicated_csv(rows, tmp_path / 'd' / 'data.csv')
  lines = path.read_text(encoding='utf-8').splitlines()
  assert lines[0] == source[0]
  assert lines.count(source[0]) == 1
  assert len(lines) - 1 == rows
  assert lines[1:len(source)] == source[1:]
  assert lines[-7:] == source[1:8]


def test_example_gen_floor_encodes_every_row(tmp_path):
  path = scale.write_replicated_csv(3000, tmp_path / 'data.csv')
  assert scale.example_gen_floor(path) > 0


def test_peaks_count_only_samples_inside_the_component():
  timeline = [(10.0, 100 * MB, 150 * MB), (11.0, 900 * MB, 950 * MB),
              (12.0, 300 * MB, 400 * MB), (13.0, 2000 * MB, 2100 * MB)]
  largest, tree = scale.peaks_between(timeline, 10_500, 12_000)
  assert round(largest * 1024) == 900 and round(tree * 1024) == 950
  assert scale.peaks_between(timeline, 20_000, 21_000) == (None, None)


def _result(rows, seconds, statistics_rows, evaluator_rows, largest_gb):
  components = [scale.ComponentFigures('StatisticsGen', seconds, rows,
                                       largest_gb, largest_gb, 1e6)]
  return scale.SizeResult(
      rows=rows, wall_s=seconds * 3, peak_largest_gb=largest_gb,
      peak_tree_gb=largest_gb, statistics_rows=statistics_rows,
      evaluator_rows=evaluator_rows, test_rows=rows // 10,
      components=components)


def test_results_name_lost_rows_memory_overruns_and_cost_per_row():
  small = _result(1000, 2.0, 1000, 100, 1.5)
  large = _result(10_000, 10.0, 9_990, 1000, 4.5)
  text = scale.format_results([small, large])
  lines = text.splitlines()
  [small_line] = [line for line in lines if line.startswith('     1,000 whole run')]
  [large_line] = [line for line in lines if line.startswith('    10,000 whole run')]
  assert 'within 4 GB' in small_line and '(all)' in small_line
  assert 'OVER 4 GB' in large_line
  assert 'StatisticsGen counted 9,990 rows (MISMATCH)' in large_line
  # 500 rows/s at 1,000 rows, 1,000 rows/s at 10,000: cheaper per row.
  assert lines[-1].split() == ['StatisticsGen', '0.50']
