"""Model construction: shapes, dtypes and the gate's useless-model switch."""

import numpy as np
import pytest
import tensorflow as tf

from models import model as model_lib
from models import model_config
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
  model = model_lib.build_model(DENSE, CATEGORICAL, model_config.ModelConfig(
      dropout=0.0, l2=0.0, learning_rate=0.01))
  model.fit(batch, labels, epochs=15, batch_size=64, verbose=0)
  scores = model.predict(batch, verbose=0)[:, 0]
  assert scores[labels == 1].min() > scores[labels == 0].max() - 0.2
  assert np.mean((scores > 0.5) == (labels == 1)) > 0.97


def test_drop_all_features_makes_predictions_constant():
  model = model_lib.build_model(
      DENSE, CATEGORICAL, model_config.ModelConfig(drop_all_features=True))
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
