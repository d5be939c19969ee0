"""Batch predictions (`python -m serving.batch`) with the pushed model.

The e2e run's test split, written as a folder of two CSV files and as one
Parquet file, is scored batch by batch; every row comes out once, in
order, with its key columns, and the predictions equal the SavedModel's
own `serving_default` outputs on the original examples.
"""

import csv
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import parquet as pq
import pytest

from models import serving_contract
from pipeline.definition import dataset_config
from serving import batch
from tests import model_server
from tests import pipeline_state
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e
SPEC = dataset_config.load_named('taxi').spec


@pytest.fixture(scope='module')
def test_split(e2e_run):
  """(rows as dicts with the label, the model's own probabilities)."""
  examples = pipeline_state.split_examples(e2e_run.pipeline_root, 'test')
  rows = [model_server.instance_of(e, ()) for e in examples]
  latest = pipeline_state.pushed_versions(e2e_run.serving_model_dir)[-1]
  model = model_server.loaded_model(str(latest))
  expected = model.predict(model_server.serialized_without(
      examples, SPEC.serving_excluded_columns))['probability'].ravel()
  return rows, expected, model


def _columns(rows):
  names = []
  for row in rows:
    names += [k for k in row if k not in names]
  return names


def test_a_csv_folder_is_scored(e2e_run, test_split, tmp_path, capsys):
  rows, expected, _ = test_split
  header = _columns(rows)
  folder = tmp_path / 'csv'
  folder.mkdir()
  half = len(rows) // 2
  for name, part in (('a.csv', rows[:half]), ('b.csv', rows[half:])):
    with open(folder / name, 'w', newline='', encoding='utf-8') as f:
      writer = csv.writer(f)
      writer.writerow(header)
      writer.writerows([['' if row.get(c) is None else row[c] for c in header]
                        for row in part])
  out = tmp_path / 'scores.csv'
  code = batch.main(['--output-dir', str(e2e_run.output_dir), '--data-root',
                     str(folder), '--out', str(out), '--batch-rows', '64'])
  captured = capsys.readouterr()
  assert code == 0, captured.err
  assert f'Wrote {len(rows)} rows to {out}' in captured.out
  assert f'{len(rows)}/' in captured.err or f'{len(rows)}rows' in (
      captured.err.replace(' ', ''))  # The progress bar's count.
  scores = pd.read_csv(out, keep_default_na=False, na_values=[''])
  assert len(scores) == len(rows)
  keys = [c for c in header if c != SPEC.label_key]
  assert list(scores.columns) == keys + [
      'predicted_class', 'score_0', 'score_1', 'probability', 'decision']
  np.testing.assert_allclose(scores['probability'], expected, atol=1e-6)
  np.testing.assert_allclose(scores['score_1'], expected, atol=1e-6)
  assert list(scores['predicted_class'].astype(str)) == [
      '1' if p > 0.5 else '0' for p in expected]
  # The decision is taken at the model's own threshold, not at 0.5.
  threshold = serving_contract.read(str(pipeline_state.pushed_versions(
      e2e_run.serving_model_dir)[-1])).decision_threshold
  assert 0 < threshold < 1
  assert list(scores['decision'].astype(str)) == [
      '1' if p >= threshold else '0' for p in scores['probability']]
  # Key columns are the rows' own values, in the input's order.
  assert list(scores['fare']) == pytest.approx([r['fare'] for r in rows])
  assert list(scores['payment_type']) == [r['payment_type'] for r in rows]


def test_a_parquet_file_is_scored(e2e_run, test_split, tmp_path):
  rows, expected, model = test_split
  table = pa.Table.from_pylist(rows)
  path = tmp_path / 'in' / 'trips.parquet'
  path.parent.mkdir()
  pq.write_table(table, path, row_group_size=50)
  out = tmp_path / 'scores.parquet'
  config = batch.parse_flags([
      '--output-dir', str(e2e_run.output_dir), '--data-root',
      str(path.parent), '--out', str(out), '--key-columns',
      'trip_start_timestamp,company', '--no-progress'])
  # The session's loaded model: the CSV test loaded it through the flags.
  assert batch.score(config, model=model) == len(rows)
  scores = pq.read_table(out)
  assert scores.num_rows == len(rows)
  assert scores.column_names == ['trip_start_timestamp', 'company',
                                 'predicted_class', 'score_0', 'score_1',
                                 'probability', 'decision']
  assert scores.schema.field('trip_start_timestamp').type == pa.int64()
  np.testing.assert_allclose(scores.column('probability').to_numpy(),
                             expected, atol=1e-6)
  assert scores.column('company').to_pylist() == [r.get('company')
                                                  for r in rows]


def test_a_bad_row_stops_naming_file_row_and_feature(e2e_run, test_split,
                                                     tmp_path, capsys):
  rows, _, _ = test_split
  bad = [dict(r) for r in rows[:5]]
  del bad[3]['fare']
  path = tmp_path / 'in' / 'trips.parquet'
  path.parent.mkdir()
  pq.write_table(pa.Table.from_pylist(bad), path)
  out = tmp_path / 'scores.csv'
  code = batch.main(['--output-dir', str(e2e_run.output_dir), '--data-root',
                     str(path.parent), '--out', str(out), '--no-progress'])
  assert code == batch.BAD_INPUT_EXIT
  err = capsys.readouterr().err
  assert (f"BATCH FAILED: {path} row 4: missing required feature 'fare' "
          '(float)') in err
  assert not out.exists()
  assert not pathlib.Path(f'{out}.partial').exists()


def test_the_command_refuses_an_output_it_cannot_write(tmp_path):
  result = subprocess.run(
      [sys.executable, '-m', 'serving.batch', '--output-dir', str(tmp_path),
       '--data-root', str(tmp_path), '--out', str(tmp_path / 'scores.txt')],
      capture_output=True, text=True, cwd=str(REPO_ROOT), timeout=120)
  assert result.returncode == 2
  assert 'name a .csv or .parquet file' in result.stderr
