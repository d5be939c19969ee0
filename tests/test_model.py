"""Model construction: shapes, dtypes and the gate's useless-model switch."""

import numpy as np
import pytest
import tensorflow as tf

from models import model as model_lib
from models import model_config as model_config_lib
from models import train

DENSE = ['fare_xf', 'trip_miles_xf']
CATEGORICAL = {'payment_type_xf': 12, 'company_xf': 40}


def _batch(n: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  batch = {name: rng.normal(size=(n, 1)).astype(np.float32) for name in DENSE}
  for name, cardinality in CATEGORICAL.items():
    batch[name] = rng.integers(0, cardinality, size=(n, 1)).astype(np.int64)
  return batch


def test_model_outputs_one_probability_per_row():
  model = model_lib.build_model(DENSE, CATEGORICAL)
  assert sorted(model.input_names) == sorted(DENSE + list(CATEGORICAL))
  out = model(_batch(7))
  assert out.shape == (7, 1)
  assert out.dtype == tf.float32
  values = out.numpy()
  assert np.all((values > 0) & (values < 1))


def test_model_learns_a_simple_rule():
  # Label = "payment_type id is 3": the wide part should fit this quickly.
  batch = _batch(512, seed=1)
  labels = (batch['payment_type_xf'][:, 0] == 3).astype(np.float32)
  model = model_lib.build_model(
      DENSE, CATEGORICAL,
      model_config_lib.ModelConfig(dropout=0.0, l2=0.0, learning_rate=0.01))
  model.fit(batch, labels, epochs=15, batch_size=64, verbose=0)
  scores = model.predict(batch, verbose=0)[:, 0]
  assert scores[labels == 1].min() > scores[labels == 0].max() - 0.2
  assert np.mean((scores > 0.5) == (labels == 1)) > 0.97


def test_drop_all_features_makes_predictions_constant():
  model = model_lib.build_model(
      DENSE, CATEGORICAL, model_config_lib.ModelConfig(drop_all_features=True))
  out = model(_batch(32, seed=2), training=False).numpy()
  assert np.ptp(out) < 1e-6


def test_embedding_dim_grows_slowly_and_is_bounded():
  assert model_lib.embedding_dim(2) >= 2
  assert model_lib.embedding_dim(10) < model_lib.embedding_dim(10_000)
  assert model_lib.embedding_dim(10**9) == 16


def _repeated_dataset(batch_size: int = 16) -> tf.data.Dataset:
  features = _batch(64, seed=3)
  labels = (features['fare_xf'][:, 0] > 0).astype(np.float32)
  return tf.data.Dataset.from_tensor_slices(
      (features, labels)).batch(batch_size).repeat()


@pytest.mark.parametrize('steps', [1, 37, 100, 250])
def test_train_steps_are_exact_not_rounded_to_epochs(steps):
  # Before the fix, 250 trained 200 steps: whole epochs of 100 only.
  model = model_lib.build_model(DENSE, CATEGORICAL)
  history = train.fit_exact_steps(model, _repeated_dataset(), steps,
                                  verbose=0)
  assert int(model.optimizer.iterations.numpy()) == steps
  assert len(history.epoch) == -(-steps // train.STEPS_PER_EPOCH)


def test_multiclass_head_outputs_a_distribution_over_the_classes():
  head = model_lib.Head('multiclass', num_classes=4)
  model = model_lib.build_model(DENSE, CATEGORICAL, head=head)
  out = model(_batch(9)).numpy()
  assert out.shape == (9, 4)
  np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_multiclass_head_learns_which_class():
  batch = _batch(512, seed=4)
  labels = batch['payment_type_xf'][:, 0] % 3  # Class follows a category.
  model = model_lib.build_model(
      DENSE, CATEGORICAL, model_config_lib.ModelConfig(dropout=0.0, l2=0.0,
                                                   learning_rate=0.01),
      model_lib.Head('multiclass', num_classes=3))
  model.fit(batch, labels, epochs=15, batch_size=64, verbose=0)
  predicted = model.predict(batch, verbose=0).argmax(axis=1)
  assert np.mean(predicted == labels) > 0.97


def test_regression_head_answers_in_the_label_units():
  # Labels around 150 +- 75 (like a disease-progression score): the head
  # starts at the training mean and learns a linear signal quickly.
  batch = _batch(512, seed=5)
  labels = (150 + 75 * batch['fare_xf'][:, 0]).astype(np.float32)
  head = model_lib.Head('regression', num_classes=1,
                        label_mean=float(labels.mean()),
                        label_std=float(labels.std()))
  model = model_lib.build_model(
      DENSE, CATEGORICAL, model_config_lib.ModelConfig(dropout=0.0, l2=0.0,
                                                   learning_rate=0.01), head)
  untrained = model(_batch(64, seed=6), training=False).numpy()
  assert abs(float(untrained.mean()) - labels.mean()) < 75
  model.fit(batch, labels, epochs=20, batch_size=64, verbose=0)
  predicted = model.predict(batch, verbose=0)[:, 0]
  assert np.sqrt(np.mean((predicted - labels) ** 2)) < 0.2 * labels.std()


def test_heads_refuse_meaningless_shapes():
  with pytest.raises(ValueError, match='>= 2 classes'):
    model_lib.Head('multiclass', num_classes=1)
  with pytest.raises(ValueError, match='label_std'):
    model_lib.Head('regression', num_classes=1, label_std=0.0)
