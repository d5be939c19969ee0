"""Both notebooks run headless, top to bottom, on a finished e2e run.

nbclient executes every cell in a kernel of this venv's Python (a kernelspec
written to a temp dir, so no user or system kernel named 'python3' can stand
in). Any cell error fails the test. The outputs are then checked for what a
reader must see, including outputs that survive a static export (PNG plots,
HTML tables), and against the metadata store.
"""

import json
import pathlib
import sys

import nbclient
import nbformat
import pytest

from pipeline.components import attributions
from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from tests.conftest import PIPELINE_NAME
from tests.conftest import REPO_ROOT

NOTEBOOKS = REPO_ROOT / 'notebooks'
KERNEL_NAME = 'tfx-pipeline-venv'
CELL_TIMEOUT_S = 600


@pytest.fixture
def venv_kernel(tmp_path, monkeypatch) -> str:
  """A kernelspec for sys.executable, visible only to this test."""
  spec_dir = tmp_path / 'jupyter' / 'kernels' / KERNEL_NAME
  spec_dir.mkdir(parents=True)
  (spec_dir / 'kernel.json').write_text(json.dumps({
      'argv': [sys.executable, '-m', 'ipykernel_launcher', '-f',
               '{connection_file}'],
      'display_name': 'Python (pipeline venv)', 'language': 'python'}))
  monkeypatch.setenv('JUPYTER_PATH', str(tmp_path / 'jupyter'))
  return KERNEL_NAME


def _execute(name: str, kernel: str, output_dir: pathlib.Path,
             save_to: pathlib.Path, monkeypatch) -> nbformat.NotebookNode:
  monkeypatch.setenv('PIPELINE_OUTPUT_DIR', str(output_dir))
  notebook = nbformat.read(NOTEBOOKS / f'{name}.ipynb', as_version=4)
  client = nbclient.NotebookClient(
      notebook, kernel_name=kernel, timeout=CELL_TIMEOUT_S,
      resources={'metadata': {'path': str(NOTEBOOKS)}})
  try:
    client.execute()
  finally:
    # Keep what ran, also on failure, to look at.
    nbformat.write(notebook, save_to / f'{name}.executed.ipynb')
  return notebook


def _outputs(notebook, mime: str) -> list:
  found = []
  for cell in notebook.cells:
    for output in cell.get('outputs', []):
      if output.get('output_type') == 'stream' and mime == 'text/plain':
        found.append(output['text'])
      elif mime in output.get('data', {}):
        found.append(output['data'][mime])
  return found


@pytest.mark.e2e
def test_model_analysis_notebook(useless_model_rerun, venv_kernel, tmp_path,
                                 monkeypatch):
  # The latest evaluation there compares a new model with a blessed baseline
  # (an unchanged re-run of e2e_run evaluates nothing).
  output_dir = useless_model_rerun.output_dir
  summary = run_summary.summarize_latest(
      str(output_dir / 'metadata.sqlite'), PIPELINE_NAME)
  assert summary.evaluation_uri and not summary.model_unchanged
  notebook = _execute('model_analysis', venv_kernel, output_dir,
                      tmp_path, monkeypatch)
  markdown = '\n'.join(_outputs(notebook, 'text/markdown'))
  text = '\n'.join(_outputs(notebook, 'text/plain'))
  tables = '\n'.join(_outputs(notebook, 'text/html'))
  verdict = 'BLESSED' if summary.blessed else 'NOT BLESSED'
  assert f'### {verdict}' in markdown
  assert summary.blessing_reason in markdown
  # The overall AUC of the latest run, as MLMD has it.
  assert (f'Overall AUC on the test split: **{summary.metrics["auc"]:.4f}**'
          in markdown)
  assert 'payment_type=Credit Card' in tables  # per-slice table
  # The evaluation compares the candidate with the baseline.
  assert 'candidate' in tables and 'baseline' in tables
  assert 'Run ' + summary.run_id in text  # lineage of the run analysed
  # Plots as PNGs: AUC by slice, baseline bars, ROC + calibration, the
  # report's four evaluation plots, and the attributions' bars.
  assert len(_outputs(notebook, 'image/png')) >= 3 + 4 + 1
  run = run_model.find_run(run_model.open_store(
      str(output_dir / 'metadata.sqlite')), PIPELINE_NAME)
  assert ('**Precision-recall curve**' in markdown and
          '**Confusion matrix**' in markdown)
  assert ('Largest gap of AUC' in markdown or
          'No gap of the primary metric' in markdown)
  assert 'Fairness indicators by `payment_type`' in markdown
  assert 'FPR @0.5' in tables and 'payment_type=Credit Card' in tables
  # The attributions of the run analysed, from its artifact.
  result = attributions.read(run.attributions_uri)
  assert (f"Drop of AUC (**{result['baseline']:.4f}** on these "
          f"{result['rows']} test rows)") in markdown
  assert all(r['feature'] in tables for r in result['features'])


@pytest.mark.e2e
def test_data_validation_notebook(e2e_run, venv_kernel, tmp_path,
                                  monkeypatch):
  notebook = _execute('data_validation', venv_kernel, e2e_run.output_dir,
                      tmp_path, monkeypatch)
  text = '\n'.join(_outputs(notebook, 'text/plain'))
  tables = '\n'.join(_outputs(notebook, 'text/html'))
  markdown = '\n'.join(_outputs(notebook, 'text/markdown'))
  # The artifacts of the latest run, as the run model finds them.
  run = run_model.find_run(run_model.open_store(e2e_run.metadata_path),
                           PIPELINE_NAME)
  validator = run.execution(run_model.EXAMPLE_VALIDATOR)
  assert f'Run {run.run_id}' in text
  statistics = run.execution(run_model.STATISTICS_GEN).output('statistics')
  assert f'statistics: {statistics.uri}' in text
  assert f"schema:     {validator.input('schema').uri}" in text
  assert statistics.uri.startswith(str(e2e_run.pipeline_root))
  assert 'train mean' in tables and 'eval mean' in tables
  assert 'payment_type' in tables  # schema and categorical tables
  assert 'Credit Card' in tables  # a domain value of the curated schema
  # The sample passes the gate, so ExampleValidator found nothing.
  assert 'train**: no anomalies' in markdown
  assert '0 anomalous feature(s) across 3 split(s).' in text
  assert len(_outputs(notebook, 'image/png')) >= 2
