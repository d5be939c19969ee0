"""The binary decision threshold and the eval-split scores, on numpy rows."""

import math

import numpy as np
import pytest

from models import decision
from models import eval_split
from models import features
from models import serving_contract


def _f1(y, p, threshold):
  flagged = p >= threshold
  tp = np.sum(flagged & (y == 1))
  return 2 * tp / (flagged.sum() + (y == 1).sum())


def test_f1_rule_picks_the_best_cut_between_two_eval_scores():
  y = np.array([1, 1, 0, 1, 0, 0, 0, 0])
  p = np.array([0.40, 0.35, 0.30, 0.20, 0.10, 0.05, 0.04, 0.01])
  chosen = decision.choose(y, p)
  # Flagging the top 4 catches all 3 positives with 1 false alarm:
  # F1 = 2*3 / (4 + 3) = 0.857; the top 2 give 2*2 / (2 + 3) = 0.8.
  assert chosen.threshold == pytest.approx((0.20 + 0.10) / 2)
  assert _f1(y, p, chosen.threshold) == pytest.approx(6 / 7)
  best = max(_f1(y, p, t) for t in np.linspace(0.001, 0.999, 999))
  assert _f1(y, p, chosen.threshold) == pytest.approx(best)
  assert chosen.precision == pytest.approx(0.75)
  assert chosen.recall == 1.0
  assert (chosen.eval_rows, chosen.eval_positives) == (8, 3)
  assert chosen.rule == 'best F1 of the positive class on the eval split'


def test_a_rare_label_gets_a_threshold_below_one_half():
  rng = np.random.default_rng(0)
  y = (rng.random(4000) < 0.03).astype(int)
  p = 1 / (1 + np.exp(-(-4.0 + 2.5 * y + rng.normal(size=y.size))))
  assert (p >= 0.5).sum() < 0.2 * y.sum()  # At 0.5: recall near 0.
  chosen = decision.choose(y, p)
  assert chosen.threshold < 0.5
  assert chosen.recall > 0.3
  assert _f1(y, p, chosen.threshold) > 2 * _f1(y, p, 0.5)


def test_cost_rule_flags_more_when_misses_cost_more():
  rng = np.random.default_rng(1)
  y = (rng.random(2000) < 0.1).astype(int)
  p = 1 / (1 + np.exp(-(-2.5 + 2.0 * y + rng.normal(size=y.size))))
  cheap = decision.choose(y, p, decision.DecisionRule(
      decision.COST, false_positive_cost=1, false_negative_cost=1))
  dear = decision.choose(y, p, decision.DecisionRule(
      decision.COST, false_positive_cost=1, false_negative_cost=10))
  assert dear.threshold < cheap.threshold
  assert dear.recall > cheap.recall

  def cost(threshold, fn_cost):
    flagged = p >= threshold
    return np.sum(flagged & (y == 0)) + fn_cost * np.sum(~flagged & (y == 1))

  grid = np.linspace(0.0005, 0.9995, 2000)
  assert cost(dear.threshold, 10) == min(cost(t, 10) for t in grid)
  assert 'a false negative 10' in dear.rule


def test_threshold_stays_inside_zero_one_at_the_extremes():
  y = np.array([1, 1, 0, 0])
  everything = decision.choose(y, np.array([1.0, 1.0, 1.0, 1.0]))
  assert 0 < everything.threshold < 1
  separated = decision.choose(y, np.array([1.0, 1.0, 0.0, 0.0]))
  assert 0 < separated.threshold < 1
  assert separated.precision == separated.recall == 1.0


@pytest.mark.parametrize('labels', ([], [0, 0, 0], [1, 1]))
def test_an_eval_split_that_cannot_decide_falls_back_to_one_half(labels):
  chosen = decision.choose(np.array(labels), np.full(len(labels), 0.3))
  assert chosen.threshold == 0.5
  assert chosen.rule.startswith('0.5: the rule')


def test_rule_settings_are_checked():
  with pytest.raises(ValueError, match='one of f1, cost'):
    decision.DecisionRule('accuracy')
  with pytest.raises(ValueError, match='false_negative_cost must be > 0'):
    decision.DecisionRule(decision.COST, false_negative_cost=0)
  with pytest.raises(ValueError, match='apply to `rule: cost` only'):
    decision.DecisionRule(decision.F1, false_negative_cost=5)
  with pytest.raises(ValueError, match='unknown decision key'):
    decision.DecisionRule.from_dict({'rule': 'cost', 'fn_cost': 5})
  rule = decision.DecisionRule.from_dict(
      {'rule': 'cost', 'false_positive_cost': 1, 'false_negative_cost': 5})
  assert rule.false_negative_cost == 5.0


def test_only_binary_specs_take_a_decision_rule():
  with pytest.raises(ValueError, match='binary tasks only'):
    features.DatasetSpec(name='w', label_key='y', task='multiclass',
                         label_classes=('a', 'b'), numeric_features=('x',),
                         decision_rule='cost', false_negative_cost=3.0)
  spec = features.DatasetSpec(name='t', label_key='y',
                              numeric_features=('x',), decision_rule='cost',
                              false_negative_cost=3.0)
  assert features.DatasetSpec.from_dict(spec.to_dict()).decision == (
      decision.DecisionRule('cost', 1.0, 3.0))


def test_eval_scores_are_proper_scores():
  y = np.array([1, 0, 1, 1])
  p = np.array([0.9, 0.2, 0.6, 0.99])
  name, value, higher = eval_split.eval_score('binary', y, p)
  assert (name, higher) == ('log_loss', False)
  assert value == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.6, 0.99])))
  probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
  name, value, _ = eval_split.eval_score('multiclass', np.array([0, 2]),
                                         probs)
  assert value == pytest.approx(-np.mean(np.log([0.7, 0.8])))
  name, value, higher = eval_split.eval_score(
      'regression', np.array([1.0, 3.0]), np.array([2.0, 3.0]))
  assert (name, higher) == ('root_mean_squared_error', False)
  assert value == pytest.approx(math.sqrt(0.5))
  # A zero probability for the true class costs a lot, not infinity.
  _, worst, _ = eval_split.eval_score('binary', np.array([1]),
                                      np.array([0.0]))
  assert worst == pytest.approx(-math.log(eval_split.EPSILON))
  assert math.isnan(eval_split.eval_score('binary', np.array([]),
                                          np.array([]))[1])


def test_predict_eval_split_feeds_only_the_model_inputs():
  seen = []

  class Model:
    input_names = ['a_xf']

    def __call__(self, inputs, training):
      assert training is False
      seen.append(sorted(inputs))
      return np.asarray(inputs['a_xf']).reshape(-1, 1) / 10

  batches = [({'a_xf': np.array([1.0, 2.0]), 'y_xf': np.array([0, 1])},
              np.array([[0], [1]])),
             ({'a_xf': np.array([9.0]), 'y_xf': np.array([1])},
              np.array([[1]]))]
  labels, predictions = eval_split.predict_eval_split(Model(), batches)
  assert seen == [['a_xf'], ['a_xf']]
  assert labels.tolist() == [0, 1, 1]
  assert predictions.shape == (3,)
  np.testing.assert_allclose(predictions, [0.1, 0.2, 0.9])
  with pytest.raises(ValueError, match='yielded no rows'):
    eval_split.predict_eval_split(Model(), [])


def test_the_contract_carries_the_threshold_and_falls_back_to_one_half():
  values = {'format_version': 1, 'dataset': 'd', 'task': 'binary',
            'label': 'y', 'classes': ['0', '1'], 'outputs': ['classes'],
            'features': []}
  old = serving_contract.Contract.from_dict(values, 'old.json')
  assert old.decision_threshold is None and old.threshold() == 0.5
  new = serving_contract.Contract.from_dict(
      {**values, 'decision_threshold': 0.23, 'decision_rule': 'best F1'},
      'new.json')
  assert new.threshold() == 0.23 and new.decision_rule == 'best F1'
  with pytest.raises(serving_contract.ContractError,
                     match='only a binary model has one'):
    serving_contract.Contract.from_dict(
        {**values, 'task': 'regression', 'classes': [],
         'decision_threshold': 0.3}, 'bad.json')
