"""The custom TFMA metrics behind the blessing gate."""

import pytest

from models import metrics


@pytest.mark.parametrize('tp,tn,fp,fn', [
    (0, 775, 0, 225),   # always "no": accuracy equals the majority rate
    (225, 0, 775, 0),   # always "yes" on the same data
    (0, 10, 0, 90),     # always "no" where "yes" is the majority
])
def test_constant_models_have_no_lift(tp, tn, fp, fn):
  lift = metrics.AccuracyLiftOverMajority().result(tp, tn, fp, fn)
  assert lift <= 0


def test_good_model_lift_and_majority_rate():
  tp, tn, fp, fn = 180, 720, 55, 45
  assert metrics.MajorityClassRate().result(tp, tn, fp, fn) == pytest.approx(
      0.775)
  assert metrics.AccuracyLiftOverMajority().result(
      tp, tn, fp, fn) == pytest.approx(0.9 - 0.775)


def test_empty_input_is_nan_not_a_pass():
  lift = metrics.AccuracyLiftOverMajority().result(0, 0, 0, 0)
  assert lift != lift  # NaN never satisfies a lower-bound threshold
