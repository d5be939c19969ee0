"""The blessing gate rejects a useless model and leaves the push untouched.

The useless model is the session's `useless_model_rerun` (tests/conftest.py):
--drop-all-features on a copy of the blessed, pushed e2e outputs, so the
model can only learn the base rate. The same run also serves the fault and
allow-listed-anomaly tests.
"""

import pytest

from tests import pipeline_state
from tests import robustness

pytestmark = pytest.mark.e2e


def test_useless_model_is_not_blessed(useless_model_rerun):
  latest = robustness.latest_summary(useless_model_rerun.output_dir)
  stdout = useless_model_rerun.rerun.stdout
  assert latest.blessed is False
  assert latest.metrics['accuracy_lift_over_majority'] <= 0.0
  assert latest.metrics['auc'] < 0.6
  assert 'accuracy_lift_lower_bound' in latest.blessing_reason
  assert 'Blessing: NOT BLESSED' in stdout
  # One readable line naming the failed metric, its value and threshold.
  line = next(x for x in stdout.splitlines() if 'NOT BLESSED' in x)
  assert 'auc = ' in line and 'threshold >= 0.9' in line


def test_nothing_pushed_and_previous_push_byte_identical(useless_model_rerun):
  serving_model_dir = useless_model_rerun.output_dir / 'serving_model'
  latest = robustness.latest_summary(useless_model_rerun.output_dir)
  assert latest.pushed_model is None
  assert (pipeline_state.pushed_versions(serving_model_dir) ==
          useless_model_rerun.versions_before)
  assert (pipeline_state.tree_digest(serving_model_dir) ==
          useless_model_rerun.before.pushed)
  assert useless_model_rerun.before.pushed
