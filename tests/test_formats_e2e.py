"""End to end on Parquet, Avro and TFRecord: TFX's taxi rows in each format.

One zero-config run per format, through `runners/local_runner.py` as a user
starts it, with the format detected from the file names (no --format). The
rows come from the installed `tfx` package (tests/record_files.py); they
have no `big_tipper` column, so the runs draft a regression of the tip.

In each format, ExampleGen must write exactly the input rows (and the zero
tips as values, not as missing), which the drafts are made from. What comes
after ExampleGen reads its tf.Examples, whatever the input format: so one
format (Parquet) runs the whole pipeline, judged by the same gate as a CSV
run (blessed only if the R-squared lower bound on the test split is above
0, then pushed), and the others stop after the drafts (`--draft-only`).
"""

from concurrent import futures
import pathlib
import subprocess
from typing import Dict

import pytest
import yaml

from pipeline.definition import evaluation
from pipeline.definition import pipeline as pipeline_lib
from tests import conftest
from tests import pipeline_state
from tests import record_files

pytestmark = pytest.mark.e2e

FORMATS = sorted(record_files.TAXI)
# The format whose run goes on past the drafts to the push.
FULL_RUN = 'parquet'
# The fewest steps task_runs uses for its small regression; the tip is easy
# to predict (cash trips have none), so this clears the gate with margin.
TRAIN_STEPS = '200'
SPLITS = ('train', 'eval', evaluation.TEST_SPLIT)
# The three runs start together on the first request: each is mostly one
# busy process with idle stretches (start-up, Beam set-up), so on two cores
# they overlap well.
_runs: Dict[str, 'futures.Future[FormatRun]'] = {}


class FormatRun:
  """One format's zero-config run."""

  def __init__(self, input_format: str, root: pathlib.Path):
    self.input_format = input_format
    self.data_root = record_files.taxi_folder(input_format, root / 'data')
    self.output_dir = root / 'out'
    self.full = input_format == FULL_RUN
    self.result: subprocess.CompletedProcess = conftest.run_local_pipeline(
        self.output_dir, ['--label', record_files.TAXI_LABEL, '--task',
                          'regression', '--train-steps', TRAIN_STEPS,
                          *(() if self.full else ('--draft-only',))],
        data_root=self.data_root, check=False)

  @property
  def pipeline_name(self) -> str:
    return f'tabular-taxi_{self.input_format}'

  @property
  def rows(self) -> int:
    return record_files.TAXI[self.input_format][2]

  def summaries(self):
    return pipeline_state.summaries(str(self.output_dir / 'metadata.sqlite'),
                                    self.pipeline_name)


def _run(name: str, tmp_path_factory) -> FormatRun:
  """A format's run, once per session; all start on the first request."""
  if not _runs:
    pool = futures.ThreadPoolExecutor(max_workers=len(FORMATS))
    for each in FORMATS:
      _runs[each] = pool.submit(FormatRun, each,
                                tmp_path_factory.mktemp(f'fmt-{each}'))
    pool.shutdown(wait=False)
  run = _runs[name].result()
  assert run.result.returncode == 0, (
      f'{name}: exit {run.result.returncode}\n{run.result.stdout[-3000:]}\n'
      f'{run.result.stderr[-3000:]}')
  return run


@pytest.fixture(params=FORMATS)
def format_run(request, tmp_path_factory) -> FormatRun:
  return _run(request.param, tmp_path_factory)


@pytest.fixture
def full_run(tmp_path_factory) -> FormatRun:
  return _run(FULL_RUN, tmp_path_factory)


def test_the_format_was_detected_and_checked(format_run):
  out = format_run.result.stdout
  _, names, rows = record_files.TAXI[format_run.input_format]
  assert (f'Input check passed: {len(names)} ') in out
  assert f'file(s), {rows} rows, 18 columns.' in out
  assert "Label 'tips': a number in every row (regression)." in out


def test_the_drafts_come_from_the_profile_of_the_rows(format_run):
  runs = format_run.summaries()
  assert sorted(c.component_id for c in runs[0].components) == sorted([
      pipeline_lib.EXAMPLE_GEN, pipeline_lib.STATISTICS_GEN,
      pipeline_lib.SCHEMA_GEN])
  drafted = yaml.safe_load(
      (format_run.output_dir / 'draft' / 'dataset.yaml').read_text())
  assert (drafted['label'], drafted['task']) == ('tips', 'regression')
  if format_run.full:
    assert len(runs) == 2
    return
  # --draft-only: nothing after the profile, and how to go on.
  assert len(runs) == 1
  out = format_run.result.stdout
  assert 'Stopped after the drafts (--draft-only).' in out
  assert (f'--dataset-config {format_run.output_dir}/draft/dataset.yaml'
          in out)
  assert not (format_run.output_dir / 'pipeline_root' / 'Transform').exists()


def test_every_component_ran_and_the_model_is_blessed_and_pushed(full_run):
  first = full_run.summaries()[1]
  states = {c.component_id: c.state for c in first.components}
  assert states[pipeline_lib.EXAMPLE_GEN] == 'cached'  # From the profiling.
  for component in (pipeline_lib.TRANSFORM, pipeline_lib.TRAINER,
                    pipeline_lib.EVALUATOR, pipeline_lib.PUSHER):
    assert states[component] == 'complete', states
  assert first.blessed is True, first.blessing_reason
  assert first.metrics['r_squared_lower_bound'] > 0
  assert first.pushed_model
  assert (pathlib.Path(first.pushed_model) / 'saved_model.pb').is_file()
  assert 'Blessing: BLESSED' in full_run.result.stdout


def test_example_gen_wrote_every_input_row_with_its_zeros(format_run):
  root = format_run.output_dir / 'pipeline_root'
  examples = [e for split in SPLITS
              for e in pipeline_state.split_examples(root, split)]
  assert len(examples) == format_run.rows
  tips = [e.features.feature['tips'].float_list.value for e in examples]
  assert all(len(t) == 1 for t in tips)  # No tip went missing.
  assert sum(1 for t in tips if t[0] == 0.0) > format_run.rows // 2
