"""Every row is served: optional features may be missing, per treatment.

The taxi config requires only `fare` and `payment_type` (`required:` in
schema/taxi/dataset.yaml); every other feature may be missing or empty in
a request and takes its treatment's missing-value path, as a gap in
training does. The e2e run's pushed model covers every treatment with an
optional feature (log, numeric, bucket, cyclical, categorical,
integer_categorical). From real test rows, each treatment's optional
features are dropped in turn, then all of them, and the rows are scored
through:

* the SavedModel alone (hermetic: the Transform output hidden), with the
  features absent and with them present but empty (a CSV's empty cell);
* the REST server, with the features left out and sent as null;
* batch predictions, from a CSV file with empty cells.

All three give finite probabilities, and the same ones.
"""

import csv
import pathlib
import shutil
from typing import Dict
from typing import List

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from models import serving_contract
from models import treatments
from pipeline.definition import dataset_config
from serving import batch
from tests import model_server
from tests import pipeline_state

pytestmark = pytest.mark.e2e
SPEC = dataset_config.load_named('taxi').spec
GROUPS = {t.key: SPEC.columns(t) for t in treatments.TREATMENTS}
OPTIONAL = {group: tuple(c for c in columns
                         if c not in SPEC.required_features)
            for group, columns in GROUPS.items()}
ALL = 'every optional feature'
VARIANTS = {**OPTIONAL, ALL: tuple(
    c for c in SPEC.feature_columns if c not in SPEC.required_features)}
BASE_ROWS = 4


@pytest.fixture(scope='module')
def rows(e2e_run):
  """(variant, base row index, JSON row) for every variant of each base
  row, and the raw examples they came from."""
  examples = pipeline_state.split_examples(e2e_run.pipeline_root, 'test')
  base = [model_server.instance_of(e, SPEC.serving_excluded_columns)
          for e in examples[:BASE_ROWS]]
  out = []
  for variant, dropped in VARIANTS.items():
    for i, row in enumerate(base):
      out.append((variant, i, {k: v for k, v in row.items()
                               if k not in dropped}))
  return out


def _example(row: Dict, contract, empty=()) -> bytes:
  """A serialized tf.Example of a JSON row; `empty` features present with
  no value."""
  example = tf.train.Example()
  for feature in contract.features:
    if feature.name in empty:
      example.features.feature[feature.name].CopyFrom(tf.train.Feature())
    if feature.name not in row:
      continue
    value = row[feature.name]
    target = example.features.feature[feature.name]
    if feature.dtype == serving_contract.FLOAT:
      target.float_list.value.append(value)
    elif feature.dtype == serving_contract.INT:
      target.int64_list.value.append(value)
    else:
      target.bytes_list.value.append(value.encode())
  return example.SerializeToString()


@pytest.fixture(scope='module')
def served(e2e_run, rows, tmp_path_factory):
  """The SavedModel's probabilities, the Transform output hidden:
  (absent features, empty features), one per row."""
  model_dir = pipeline_state.pushed_versions(e2e_run.serving_model_dir)[-1]
  contract = serving_contract.read(str(model_dir))
  absent = [_example(row, contract) for _, _, row in rows]
  empty = [_example(row, contract, VARIANTS[variant])
           for variant, _, row in rows]
  copy = tmp_path_factory.mktemp('optional') / 'model'
  shutil.copytree(model_dir, copy)
  transform_dir = e2e_run.pipeline_root / 'Transform'
  hidden = e2e_run.pipeline_root / 'Transform.hidden-by-optional-test'
  transform_dir.rename(hidden)
  try:
    serve = tf.saved_model.load(str(copy)).signatures['serving_default']
    results = [serve(examples=tf.constant(batch_))['probability'].numpy()
               .ravel() for batch_ in (absent, empty)]
  finally:
    hidden.rename(transform_dir)
  return contract, results[0], results[1]


def test_each_treatment_has_optional_features():
  assert all(OPTIONAL.values()), OPTIONAL
  assert set(SPEC.required_features) == {'fare', 'payment_type'}


@pytest.mark.parametrize('variant', list(VARIANTS))
def test_the_saved_model_scores_rows_without_them(rows, served, variant):
  _, absent, empty = served
  picked = [i for i, (v, _, _) in enumerate(rows) if v == variant]
  assert len(picked) == BASE_ROWS
  assert all(set(VARIANTS[variant]).isdisjoint(rows[i][2]) for i in picked)
  assert np.isfinite(absent[picked]).all()
  assert ((absent[picked] >= 0) & (absent[picked] <= 1)).all()
  # An empty value is a missing value: the same answer as no feature.
  np.testing.assert_allclose(empty[picked], absent[picked], atol=1e-6)


def test_missing_values_change_the_answer_as_gaps_do(rows, served):
  """The model answers from what is left: a row with every optional
  feature missing is scored from the fare and the payment type alone."""
  _, absent, _ = served
  bare = [absent[i] for i, (v, _, _) in enumerate(rows) if v == ALL]
  assert len({round(float(p), 6) for p in bare}) > 1  # Not one constant.


def test_the_rest_server_scores_them(e2e_run, rows, served, tmp_path):
  _, absent, _ = served
  instances: List[Dict] = []
  for variant, _, row in rows:
    # Left out, or sent as null: both mean missing.
    nulls = {c: None for c in VARIANTS[variant][::2]}
    instances.append({**row, **nulls})
  with model_server.running(e2e_run.output_dir,
                            tmp_path / 'server.log') as server:
    status, answer = server.json('POST', '/v1/models/taxi:predict',
                                 {'instances': instances})
  assert status == 200, answer
  predictions = answer['predictions']
  assert len(predictions) == len(rows)
  probability = np.array([p['probability'][0] for p in predictions])
  np.testing.assert_allclose(probability, absent, atol=1e-6)


def test_batch_predictions_score_them(e2e_run, rows, served, tmp_path,
                                      capsys):
  contract, absent, _ = served
  header = [f.name for f in contract.features]
  folder = tmp_path / 'in'
  folder.mkdir()
  with open(folder / 'rows.csv', 'w', newline='', encoding='utf-8') as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows([['' if row.get(c) is None else row[c] for c in header]
                      for _, _, row in rows])
  out = tmp_path / 'scores.csv'
  code = batch.main(['--output-dir', str(e2e_run.output_dir), '--data-root',
                     str(folder), '--out', str(out), '--no-progress'])
  assert code == 0, capsys.readouterr().err
  scores = pd.read_csv(out, keep_default_na=False, na_values=[''])
  assert len(scores) == len(rows)
  np.testing.assert_allclose(scores['probability'], absent, atol=1e-6)
  threshold = contract.threshold()
  assert contract.decision_threshold is not None
  assert list(scores['decision'].astype(str)) == [
      '1' if p >= threshold else '0' for p in scores['probability']]
  assert pathlib.Path(out).exists()
