"""The hold-out and wide benches' own arithmetic, on made-up tables."""

import numpy as np
import pandas as pd
import pytest

from bench import holdout
from bench import synthetic


def test_synthetic_tables_are_deterministic_and_shaped_as_asked():
  spec = synthetic.TableSpec(rows=2000, numeric=3, skewed=2, categorical=3,
                             positive_rate=0.05)
  first, second = synthetic.make_table(spec), synthetic.make_table(spec)
  pd.testing.assert_frame_equal(first, second)
  assert list(first.columns) == [
      'num_0', 'num_1', 'num_2', 'amt_0', 'amt_1', 'cat_0', 'cat_1', 'cat_2',
      synthetic.LABEL]
  assert (first[synthetic.LABEL] == 'yes').mean() == pytest.approx(0.05,
                                                                   abs=0.002)
  # Gaps in every feature column, more in the informative amt_0.
  shares = first.drop(columns=synthetic.LABEL).isna().mean()
  assert (shares > 0.02).all()
  assert shares['amt_0'] > 2 * shares['num_1']
  assert (first['amt_1'].dropna() > 0).all()


def test_multiclass_labels_are_imbalanced_and_regression_is_numeric():
  table = synthetic.make_table(synthetic.TableSpec(
      rows=3000, task=synthetic.MULTICLASS, classes=4))
  shares = table[synthetic.LABEL].value_counts(normalize=True)
  assert list(shares.index) == ['k0', 'k1', 'k2', 'k3']
  assert shares['k0'] == pytest.approx(8 / 15, abs=0.01)
  regression = synthetic.make_table(synthetic.TableSpec(
      rows=500, task=synthetic.REGRESSION))
  assert regression[synthetic.LABEL].dtype == np.float64


def test_mixed_widths_add_up_to_the_width():
  for width in (6, 20, 75, 300):
    spec = synthetic.mixed_widths(width, rows=100)
    assert spec.columns == width
    assert spec.categorical == max(2, (width * 2) // 5)


def test_split_keeps_every_row_once():
  frame = pd.DataFrame({'x': range(300)})
  train, held_out = holdout.split(frame)
  assert len(train) == 200 and len(held_out) == 100
  assert sorted(train['x'].tolist() + held_out['x'].tolist()) == list(
      range(300))


def test_scores_of_each_task():
  truth = np.array([0, 0, 0, 1])
  binary = holdout.scores(holdout.BINARY, truth,
                          np.array([0.1, 0.2, 0.4, 0.3]), threshold=0.35)
  assert binary['auc'] == pytest.approx(2 / 3)
  assert binary['accuracy'] == pytest.approx(0.5)  # Only 0.4 says yes.
  assert binary['accuracy_at_0.5'] == pytest.approx(0.75)
  multi = holdout.scores(
      holdout.MULTICLASS, np.array(['a', 'b', 'c']),
      np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.3, 0.2]]),
      classes=['a', 'b', 'c'])
  assert multi['accuracy'] == pytest.approx(2 / 3)
  assert multi['log_loss'] == pytest.approx(
      -(np.log(0.8) + np.log(0.7) + np.log(0.2)) / 3)
  regression = holdout.scores(holdout.REGRESSION, np.array([1.0, 2.0, 3.0]),
                              np.array([1.0, 2.0, 5.0]))
  assert regression['rmse'] == pytest.approx(np.sqrt(4 / 3))
  assert regression['r2'] == pytest.approx(1 - 4 / 2)


def test_default_hgb_learns_the_synthetic_signal(tmp_path):
  spec = synthetic.TableSpec(rows=1500, positive_rate=0.2)
  frame = synthetic.make_table(spec)
  train, held_out = holdout.split(frame)
  dataset = holdout.Dataset('s', tmp_path / 'x.csv', synthetic.LABEL,
                            synthetic.BINARY, 'yes')
  result = holdout.hgb_scores(dataset, train, held_out)
  assert result['auc'] > 0.8


def test_at_least_hgb_compares_in_the_metric_direction():
  def result(task, ours, theirs):
    metric = {'binary': 'auc', 'multiclass': 'accuracy',
              'regression': 'rmse'}[task]
    return holdout.Result('d', 10, 2, task, None, True, '', 'dnn', {}, None,
                          {metric: ours}, {metric: theirs}, 1.0, 1.0)
  assert result('binary', 0.9, 0.8).at_least_hgb
  assert not result('multiclass', 0.7, 0.8).at_least_hgb
  assert result('regression', 1.0, 2.0).at_least_hgb
  assert not result('regression', 3.0, 2.0).at_least_hgb


def test_drop_applies_where_the_column_is_and_refuses_a_typo(tmp_path,
                                                               capsys):
  first, second = tmp_path / 'a.csv', tmp_path / 'b.csv'
  first.write_text('id,x,y\n1,2,0\n')
  second.write_text('x,y\n2,1\n')
  common = ['--csv', str(first), '--label', 'y', '--task', 'binary',
            '--csv', str(second), '--label', 'y', '--task', 'binary']
  assert holdout.parse_args(common + ['--drop', 'id']).drop == ['id']
  with pytest.raises(SystemExit):
    holdout.parse_args(common + ['--drop', 'ids'])
  assert '--drop ids: no --csv has that column (columns: id, x, y)' in (
      capsys.readouterr().err)
