"""The blessing gate rejects a useless model and leaves the push untouched."""

import shutil

import pytest

from tests import pipeline_state
from tests.conftest import E2E_TRAIN_STEPS
from tests.conftest import run_local_pipeline

pytestmark = pytest.mark.e2e


@pytest.fixture(scope='module')
def useless_run(e2e_run, tmp_path_factory):
  """A copy of the blessed e2e outputs, then a run with all features dropped."""
  output_dir = tmp_path_factory.mktemp('gate') / 'outputs'
  shutil.copytree(e2e_run.output_dir, output_dir)
  before = pipeline_state.tree_digest(output_dir / 'serving_model')
  versions_before = pipeline_state.pushed_versions(output_dir / 'serving_model')
  result = run_local_pipeline(
      output_dir, ['--train-steps', str(E2E_TRAIN_STEPS),
                   '--drop-all-features'])
  latest = pipeline_state.summaries(str(output_dir / 'metadata.sqlite'))[-1]
  return output_dir, before, versions_before, result, latest


def test_useless_model_is_not_blessed(useless_run):
  _, _, _, result, latest = useless_run
  assert latest.blessed is False
  assert latest.metrics['accuracy_lift_over_majority'] <= 0.0
  assert latest.metrics['auc'] < 0.6
  assert 'accuracy_lift_over_majority' in latest.blessing_reason
  assert 'Blessing: NOT BLESSED' in result.stdout
  # One readable line naming the failed metric, its value and threshold.
  line = next(x for x in result.stdout.splitlines() if 'NOT BLESSED' in x)
  assert 'auc = ' in line and 'threshold >= 0.9' in line


def test_nothing_pushed_and_previous_push_byte_identical(useless_run):
  output_dir, before, versions_before, _, latest = useless_run
  assert latest.pushed_model is None
  assert pipeline_state.pushed_versions(
      output_dir / 'serving_model') == versions_before
  assert pipeline_state.tree_digest(output_dir / 'serving_model') == before
