"""The bench's arithmetic: ratios, medians and the target verdicts.

The bench itself takes minutes and its figures depend on the machine, so CI
does not run it (bench/README.md); these tests feed it made-up measurements.
"""

from bench import bench

GB = bench.GIB


def _measurement(pipeline, kind, round_index, wall, largest_gb, tree_gb,
                 evaluator=None):
  return bench.Measurement(
      pipeline=pipeline, kind=kind, round=round_index, wall_s=wall,
      peak_rss_largest_bytes=int(largest_gb * GB),
      peak_rss_tree_bytes=int(tree_gb * GB),
      component_s={'Evaluator': evaluator}, log='')


def _two_rounds():
  return [
      _measurement('reference', 'fresh', 1, 100.0, 1.0, 3.0, 20.0),
      _measurement('project', 'fresh', 1, 40.0, 1.1, 1.5, 10.0),
      _measurement('reference', 'rerun', 1, 40.0, 0.8, 2.0, 20.0),
      _measurement('project', 'rerun', 1, 20.0, 0.9, 0.9),
      _measurement('reference', 'fresh', 2, 120.0, 1.0, 3.0, 20.0),
      _measurement('project', 'fresh', 2, 72.0, 1.3, 1.5, 10.0),
      _measurement('reference', 'rerun', 2, 40.0, 0.8, 2.0, 20.0),
      _measurement('project', 'rerun', 2, 12.0, 0.9, 0.9),
  ]


def test_median_ratio_is_the_median_of_per_round_ratios():
  summary = bench.summarize(_two_rounds(), rounds=2)
  fresh = summary['fresh wall (s)']
  assert [r['ratio'] for r in fresh['rounds']] == [0.4, 0.6]
  assert fresh['median']['ratio'] == 0.5
  assert fresh['median']['reference'] == 110.0
  # A component that did not run (the skipped Evaluator) has no ratio.
  evaluator = summary['re-run Evaluator (s)']['median']
  assert evaluator['project'] is None and evaluator['ratio'] is None


def test_targets_are_met_or_not_by_the_median_ratio():
  summary = bench.summarize(_two_rounds(), rounds=2)
  verdicts = {metric: (ratio, met) for metric, _, ratio, met in
              bench.check_targets(summary)}
  assert verdicts['fresh wall (s)'] == (0.5, True)  # At the bound: met.
  ratio, met = verdicts['re-run wall (s)']
  assert round(ratio, 3) == 0.4 and met  # Medians of 0.5 and 0.3.
  ratio, met = verdicts['fresh peak RSS largest (GB)']
  assert round(ratio, 2) == 1.2 and met
  assert verdicts['re-run peak RSS tree (GB)'][1] is True
  text = bench.format_targets(bench.check_targets(summary))
  assert 'NOT MET' not in text


def test_a_missed_target_is_reported():
  runs = _two_rounds()
  runs[1] = _measurement('project', 'fresh', 1, 90.0, 2.0, 6.0, 10.0)
  results = bench.check_targets(bench.summarize(runs, rounds=2))
  missed = {metric for metric, _, _, met in results if not met}
  assert missed == {'fresh wall (s)', 'fresh peak RSS largest (GB)',
                    'fresh peak RSS tree (GB)'}
  assert 'fresh wall (s)' in bench.format_targets(results)
  assert 'NOT MET' in bench.format_targets(results)
