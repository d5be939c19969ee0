"""FeatureAttributions: permutation importance against known answers.

The metrics are checked against their definitions, the sample and the
shuffles against what they promise, and the whole computation against
models whose answer is known: a model that reads only one column must get
all of its importance on that column and exactly 0 on the others. One of
those models is a real SavedModel with the pipeline's two signatures
(`serving_default` on serialized raw tf.Examples, `transform_features` for
the label), scored through `attributions.compute` as the component does.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from models import features
from pipeline.components import attributions
from pipeline.definition import dataset_config
from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from tests.conftest import PIPELINE_NAME

# --- The metrics -------------------------------------------------------------


def test_auc_counts_pairs_and_ties_count_half():
  # Positive scores 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4
  # pairs ranked right.
  assert attributions.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
  assert attributions.auc([0, 1], [0.5, 0.5]) == 0.5
  assert attributions.auc([0, 1, 1, 0], [0.2, 0.2, 0.9, 0.1]) == pytest.approx(
      (1 + 0.5 + 1 + 1) / 4)
  assert np.isnan(attributions.auc([1, 1], [0.2, 0.3]))


def test_accuracy_and_r_squared_follow_their_definitions():
  scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
  assert attributions.accuracy([0, 2, 0], scores) == pytest.approx(2 / 3)
  labels = np.array([1.0, 2.0, 3.0, 4.0])
  predictions = np.array([1.5, 2.0, 2.5, 4.0])
  # MSE 0.125, variance around the mean 1.25.
  assert attributions.r_squared(labels, predictions) == pytest.approx(0.9)
  # Any constant scores at most 0: the gate's definition.
  assert attributions.r_squared(labels, np.full(4, labels.mean())) == 0.0
  assert np.isnan(attributions.r_squared([2.0, 2.0], [1.0, 3.0]))


# --- The sample and the shuffles --------------------------------------------


def test_reservoir_sample_is_bounded_seeded_and_fair():
  records = [str(i).encode() for i in range(50)]
  assert attributions.reservoir_sample(records, 80, seed=0) == records
  sample = attributions.reservoir_sample(records, 10, seed=3)
  assert len(sample) == 10 and len(set(sample)) == 10
  assert sample == attributions.reservoir_sample(iter(records), 10, seed=3)
  assert sample != attributions.reservoir_sample(records, 10, seed=4)
  # Each record is kept with probability 10/50, whatever its position.
  kept = np.zeros(50)
  for seed in range(400):
    for record in attributions.reservoir_sample(records, 10, seed):
      kept[int(record)] += 1
  rates = kept / 400
  assert abs(rates[:25].mean() - 0.2) < 0.03
  assert abs(rates[25:].mean() - 0.2) < 0.03
  with pytest.raises(ValueError, match='max_rows'):
    attributions.reservoir_sample(records, 0, seed=0)


def test_rows_for_cuts_a_wide_tables_sample_to_the_budget():
  # Narrow: max_rows, as before (17 columns x 3 repeats x 1,960 rows fit).
  assert attributions.rows_for(17, 3, 2000, 100_000) == 1960
  assert attributions.rows_for(5, 3, 2000, 100_000) == 2000
  # Wide: columns x repeats x rows stays within the budget ...
  assert attributions.rows_for(50, 3, 2000, 100_000) == 666
  # ... down to MIN_ROWS, and never above max_rows.
  assert attributions.rows_for(300, 3, 2000, 100_000) == (
      attributions.MIN_ROWS)
  assert attributions.rows_for(300, 3, 200, 100_000) == 200
  with pytest.raises(ValueError, match='max_scored_rows'):
    attributions.rows_for(5, 3, 2000, 0)


def _example(**values) -> tf.train.Example:
  example = tf.train.Example()
  for key, value in values.items():
    feature = example.features.feature[key]
    if value is None:
      feature.float_list.SetInParent()  # An empty cell, as ExampleGen writes.
    elif isinstance(value, str):
      feature.bytes_list.value.append(value.encode())
    else:
      feature.float_list.value.append(value)
  return example


def test_shuffled_column_moves_one_column_and_its_missing_values():
  rows = [_example(a=1.0, b='x'), _example(a=None, b='y'),
          _example(b='z')]
  shuffled = [tf.train.Example.FromString(s) for s in
              attributions.shuffled_column(rows, 'a', np.array([1, 2, 0]))]
  # Row 0 gets row 1's empty cell, row 1 gets row 2's absence, row 2 gets
  # row 0's value; column b stays where it was.
  assert list(shuffled[0].features.feature['a'].float_list.value) == []
  assert shuffled[0].features.feature['a'].HasField('float_list')
  assert 'a' not in shuffled[1].features.feature
  assert list(shuffled[2].features.feature['a'].float_list.value) == [1.0]
  assert [s.features.feature['b'].bytes_list.value[0] for s in shuffled] == [
      b'x', b'y', b'z']
  # The originals are untouched.
  assert list(rows[0].features.feature['a'].float_list.value) == [1.0]


# --- Known answers ------------------------------------------------------------


def _column(serialized, key):
  return np.array([tf.train.Example.FromString(s).features.feature[key]
                   .float_list.value[0] for s in serialized])


def _rows(n=600, seed=0):
  rng = np.random.default_rng(seed)
  a, b = rng.normal(size=n), rng.normal(size=n)
  serialized = [_example(a=float(x), b=float(y)).SerializeToString()
                for x, y in zip(a, b, strict=True)]
  return a, b, serialized


def test_a_model_that_reads_one_column_puts_all_importance_there():
  a, _, serialized = _rows()
  labels = (a > 0).astype(int)

  def predict(rows):  # P(positive) from column a alone.
    return 1.0 / (1.0 + np.exp(-4.0 * _column(rows, 'a')))

  result = attributions.permutation_importance(
      predict, labels, serialized, ['b', 'a'], 'auc', repeats=3, seed=7)
  assert result['baseline'] == 1.0
  top, other = result['features']
  assert (top['feature'], other['feature']) == ('a', 'b')
  # Shuffled, column a says nothing about the label: AUC about 0.5.
  assert 0.4 < top['importance'] < 0.6
  assert len(top['drops']) == 3 and top['spread'] > 0
  assert other['drops'] == [0.0, 0.0, 0.0] and other['importance'] == 0.0
  # The seed fixes every permutation.
  again = attributions.permutation_importance(
      predict, labels, serialized, ['b', 'a'], 'auc', repeats=3, seed=7)
  assert again == result


def test_regression_importance_is_the_drop_of_r_squared():
  a, b, serialized = _rows(n=2000)
  labels = 3.0 * a

  def predict(rows):
    return 3.0 * _column(rows, 'a')

  result = attributions.permutation_importance(
      predict, labels, serialized, ['a', 'b'], 'r_squared', repeats=2,
      seed=0)
  by_name = {r['feature']: r for r in result['features']}
  assert result['baseline'] == pytest.approx(1.0)
  # R² of 3a against 3a' for an independent copy a' is 1 - 2 = -1 in
  # expectation: a drop of 2.
  assert by_name['a']['importance'] == pytest.approx(2.0, abs=0.2)
  assert by_name['b']['importance'] == 0.0
  del b


def test_multiclass_importance_is_the_drop_of_accuracy():
  a, _, serialized = _rows(n=900, seed=1)
  labels = np.digitize(a, [-0.5, 0.5])  # Three classes by a.

  def predict(rows):
    values = _column(rows, 'a')
    return np.stack([-(values + 1.0) ** 2, -values ** 2,
                     -(values - 1.0) ** 2], axis=1)

  result = attributions.permutation_importance(
      predict, labels, serialized, ['a', 'b'], 'accuracy', repeats=2)
  by_name = {r['feature']: r for r in result['features']}
  assert result['baseline'] == 1.0
  # Shuffled, the predicted class agrees with the label about as often as
  # two independent draws of the class distribution (about 0.35 here).
  assert 0.5 < by_name['a']['importance'] < 0.75
  assert by_name['b']['importance'] == 0.0


# --- Through a real SavedModel, as the component scores it -------------------


class _OneColumnModel(tf.Module):
  """The pipeline's signatures over a model that reads only `x1`."""

  def __init__(self, task: str):
    super().__init__()
    self._task = task
    self.weight = tf.Variable(4.0)

  @tf.function(input_signature=[
      tf.TensorSpec(shape=[None], dtype=tf.string, name='examples')])
  def serve(self, examples):
    raw = tf.io.parse_example(examples, {
        'x1': tf.io.FixedLenFeature([1], tf.float32),
        'x2': tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0])})
    if self._task == features.REGRESSION:
      return {'outputs': 3.0 * raw['x1']}
    return {'probability': tf.sigmoid(self.weight * raw['x1'])}

  @tf.function(input_signature=[
      tf.TensorSpec(shape=[None], dtype=tf.string, name='examples')])
  def transform(self, examples):
    raw = tf.io.parse_example(examples,
                              {'y': tf.io.FixedLenFeature([1], tf.float32)})
    return {'y_xf': raw['y'][:, 0]}


def _saved_model(tmp_path, task: str) -> str:
  module = _OneColumnModel(task)
  path = str(tmp_path / task)
  tf.saved_model.save(module, path, signatures={
      'serving_default': module.serve.get_concrete_function(),
      'transform_features': module.transform.get_concrete_function()})
  return path


def _records(n: int, task: str):
  rng = np.random.default_rng(11)
  for x1, x2 in rng.normal(size=(n, 2)):
    label = 3.0 * x1 if task == features.REGRESSION else float(x1 > 0)
    yield _example(x1=float(x1), x2=float(x2),
                   y=label).SerializeToString()


def _spec(task: str) -> features.DatasetSpec:
  return features.DatasetSpec(name='toy', label_key='y', task=task,
                              numeric_features=('x1', 'x2'))


def test_compute_through_the_serving_signature(tmp_path):
  path = _saved_model(tmp_path, features.BINARY)
  result = attributions.compute(path, _records(900, features.BINARY),
                                _spec(features.BINARY), max_rows=500,
                                repeats=2, seed=5)
  assert result['rows'] == 500  # Bounded by max_rows.
  assert result['metric'] == 'auc' and result['baseline'] == 1.0
  assert result['classes'] == ['0', '1']
  by_name = {r['feature']: r for r in result['features']}
  assert [r['feature'] for r in result['features']] == ['x1', 'x2']
  assert 0.4 < by_name['x1']['importance'] < 0.6
  assert by_name['x2']['drops'] == [0.0, 0.0]
  assert 'sample' not in result and result['seconds'] > 0
  # Written and read back as the report reads it.
  out = tmp_path / 'artifact'
  attributions.write(result, str(out))
  assert attributions.read(str(out)) == json.loads(json.dumps(result))


def test_compute_keeps_the_regression_sample_for_the_plots(tmp_path):
  path = _saved_model(tmp_path, features.REGRESSION)
  result = attributions.compute(path, _records(300, features.REGRESSION),
                                _spec(features.REGRESSION), repeats=1)
  assert result['metric'] == 'r_squared'
  assert result['baseline'] == pytest.approx(1.0)
  sample = result['sample']
  assert len(sample['labels']) == len(sample['predictions']) == 300
  np.testing.assert_allclose(sample['predictions'], sample['labels'],
                             rtol=1e-5, atol=1e-5)
  assert result['features'][0]['feature'] == 'x1'


def test_read_refuses_what_it_did_not_write(tmp_path):
  with pytest.raises(FileNotFoundError, match='attributions.json'):
    attributions.read(str(tmp_path))
  (tmp_path / attributions.ATTRIBUTIONS_FILE).write_text('{"a": 1}')
  with pytest.raises(ValueError, match='not a feature attributions file'):
    attributions.read(str(tmp_path))


# --- End to end: the shared sample run ---------------------------------------


@pytest.mark.e2e
def test_sample_run_attributions(e2e_run):
  """The first e2e run computed them beside the Evaluator, in the
  component worker; the unchanged re-runs did not, and their report shows
  the first run's."""
  store = run_model.open_store(e2e_run.metadata_path)
  first, second = (run_model.read_run(store, context, PIPELINE_NAME)
                   for context in run_model.run_contexts(
                       store, PIPELINE_NAME)[:2])
  execution = first.component(attributions.FEATURE_ATTRIBUTIONS)
  assert execution.state == 'complete'
  # Nothing waited for it: it started before the Evaluator had finished.
  assert (execution.proto.create_time_since_epoch <
          first.component('Evaluator').proto.last_update_time_since_epoch)
  assert second.component(attributions.FEATURE_ATTRIBUTIONS) is None
  assert second.blessed_by.attributions_uri == first.attributions_uri
  result = attributions.read(first.attributions_uri)
  summary = run_summary.summarize(first)
  spec = dataset_config.load_named('taxi').spec
  print(f"\nFeatureAttributions: {result['rows']} rows, {result['seconds']} s"
        f" ({execution.seconds:.1f} s as a component); top 5: " + ', '.join(
            f"{r['feature']} {r['importance']:+.4f}"
            for r in result['features'][:5]))
  assert sorted(r['feature'] for r in result['features']) == sorted(
      spec.feature_columns)
  # Every test row (fewer than max_rows), and the Evaluator's AUC on them:
  # TFMA's is approximated over 10,000 thresholds, this one exact.
  assert result['rows'] == summary.metrics['example_count']
  assert result['baseline'] == pytest.approx(summary.metrics['auc'],
                                             abs=0.005)
  # Cash trips record no tip, so no taxi model can do without the payment
  # type: shuffling it costs far more AUC than any other column.
  top, runner_up = result['features'][:2]
  assert top['feature'] == 'payment_type'
  assert top['importance'] > 0.1 > runner_up['importance']
