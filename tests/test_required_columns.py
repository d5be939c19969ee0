"""Only the dataset config's `required:` columns are required at serving.

Unit tests, no model: the config and the drafts say which features are
required, the serving contract carries it, and the request checker
(serving/instances.py) refuses exactly those when absent, null or empty,
while every other feature may be missing.
"""

import pytest

from models import serving_contract
from pipeline.definition import dataset_config
from serving import instances

FEATURES = (
    serving_contract.Feature('fare', serving_contract.FLOAT, True, 'log'),
    serving_contract.Feature('payment_type', serving_contract.STRING, True,
                             'categorical', ('Cash', 'Credit Card')),
    serving_contract.Feature('company', serving_contract.STRING, False,
                             'categorical', ('Acme',)),
    serving_contract.Feature('trip_start_hour', serving_contract.INT, False,
                             'integer_categorical', ('1', '2')),
    serving_contract.Feature('trip_miles', serving_contract.FLOAT, False,
                             'log'),
)
CONTRACT = serving_contract.Contract(
    dataset='taxi', task='binary', label='big_tipper', classes=('0', '1'),
    outputs=('classes', 'probability', 'scores'), features=FEATURES,
    decision_threshold=0.3, decision_rule='best F1')


def test_a_row_with_only_the_required_features_is_accepted():
  checker = instances.Checker(CONTRACT)
  rows = checker.check_rows([
      {'fare': 7.5, 'payment_type': 'Cash'},
      {'fare': 7.5, 'payment_type': 'Cash', 'company': None,
       'trip_start_hour': None, 'trip_miles': None},
      {'fare': 7.5, 'payment_type': 'Cash', 'company': ''},
  ])
  assert rows.values == [{'fare': 7.5, 'payment_type': 'Cash'}] * 3
  assert rows.missing == {'company': 3, 'trip_start_hour': 3,
                          'trip_miles': 3}
  # Missing features are left out of the tf.Example: the model's own
  # missing-value path then applies.
  [encoded] = instances.encode(rows.values[:1], CONTRACT)
  assert b'company' not in encoded and b'fare' in encoded


@pytest.mark.parametrize('row', [
    {'payment_type': 'Cash'},
    {'fare': None, 'payment_type': 'Cash'},
])
def test_a_missing_required_feature_is_a_400_naming_it(row):
  with pytest.raises(instances.RequestError) as raised:
    instances.Checker(CONTRACT).check_rows([row])
  assert raised.value.status == 400
  assert raised.value.problem == instances.MISSING_FEATURE
  assert "instance 0: missing required feature 'fare' (float)" in str(
      raised.value)
  assert 'every row needs fare, payment_type.' in str(raised.value)


def test_an_empty_required_string_is_missing_too():
  with pytest.raises(instances.RequestError,
                     match="missing required feature 'payment_type'"):
    instances.Checker(CONTRACT).check_rows([{'fare': 1.0,
                                             'payment_type': ''}])


def test_required_comes_from_the_config_only(tmp_path):
  path = tmp_path / 'dataset.yaml'
  path.write_text('name: x\nlabel: y\ntask: binary\n'
                  'columns: {numeric: [a, b], categorical: [c]}\n'
                  'required: [c]\n')
  config = dataset_config.load(str(path))
  assert config.spec.required_features == ('c',)
  assert dataset_config.to_dict(config)['required'] == ['c']
  path.write_text('name: x\nlabel: y\ntask: binary\n'
                  'columns: {numeric: [a, b]}\n')
  assert dataset_config.load(str(path)).spec.required_features == ()
