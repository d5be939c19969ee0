"""Config invariants: cheap checks that catch wiring mistakes early."""

import json
import os
import subprocess
import sys

from google.protobuf import text_format
import pytest
from tensorflow_metadata.proto.v0 import schema_pb2

from models import features
from models import keras_choice
from models import model as model_lib
from models import treatments
from pipeline.definition import config as config_lib
from pipeline.definition import dataset_config
from pipeline.definition import evaluation
import schema as schema_lib
from tests.conftest import REPO_ROOT


def _curated_schema(name: str) -> schema_pb2.Schema:
  with open(schema_lib.schema_path(name)) as f:
    return text_format.Parse(f.read(), schema_pb2.Schema())


COMMITTED = [dataset_config.load_named(n).spec
             for n in dataset_config.known_datasets()]
TAXI = dataset_config.load_named('taxi').spec


@pytest.mark.parametrize('spec', COMMITTED, ids=lambda s: s.name)
def test_label_and_excluded_columns_are_not_features(spec):
  inputs = set(spec.feature_columns)
  assert spec.label_key not in inputs
  assert not inputs & set(spec.excluded_columns)


@pytest.mark.parametrize('spec', COMMITTED, ids=lambda s: s.name)
def test_every_configured_column_is_in_the_curated_schema(spec):
  columns = {f.name for f in _curated_schema(spec.name).feature}
  configured = (set(spec.feature_columns) | {spec.label_key} |
                set(spec.slice_features))
  assert configured <= columns, configured - columns


@pytest.mark.parametrize('spec', COMMITTED, ids=lambda s: s.name)
def test_required_columns_are_exactly_the_schemas_shaped_features(spec):
  """Only `required:` is parsed dense (required at serving); Transform
  refuses a pair that disagrees (models/preprocessing.check_required)."""
  shaped = {f.name for f in _curated_schema(spec.name).feature
            if f.HasField('shape') and f.name in spec.feature_columns}
  assert shaped == set(spec.required_features)


def test_taxi_requires_only_fare_and_payment_type():
  assert TAXI.required_features == ('fare', 'payment_type')
  optional = set(TAXI.feature_columns) - set(TAXI.required_features)
  # Every treatment keeps an optional feature (the serving tests rely on it).
  for treatment in treatments.TREATMENTS:
    assert optional & set(TAXI.columns(treatment)), treatment.key


def test_label_is_required_and_absent_at_serving():
  label = next(f for f in _curated_schema(TAXI.name).feature
               if f.name == TAXI.label_key)
  assert label.presence.min_fraction == 1.0
  assert 'SERVING' in label.not_in_environment


def test_spec_survives_json_round_trip_for_custom_config():
  restored = features.DatasetSpec.from_dict(
      json.loads(json.dumps(TAXI.to_dict())))
  assert restored == TAXI


def test_spec_rejects_label_as_feature():
  with pytest.raises(ValueError, match='must not also be a feature'):
    features.DatasetSpec(name='bad', label_key='y', numeric_features=('y',))


def test_spec_rejects_feature_in_two_groups():
  with pytest.raises(ValueError, match='more than one group'):
    features.DatasetSpec(name='bad', label_key='y', numeric_features=('x',),
                         categorical_features=('x',))


def test_spec_rejects_unknown_fields():
  with pytest.raises(ValueError, match='Unknown DatasetSpec fields'):
    features.DatasetSpec.from_dict({'name': 'x', 'label_key': 'y',
                                    'colour': 'red'})


@pytest.mark.parametrize('kwargs, message', [
    ({'task': 'ranking'}, 'task must be one of'),
    ({'task': 'multiclass'}, 'at least 2 classes'),
    ({'task': 'multiclass', 'label_classes': ('a', 'a')}, 'repeat'),
    ({'task': 'binary', 'label_classes': ('a', 'b', 'c')}, 'exactly 2'),
    ({'task': 'regression', 'label_positive_values': ('1',)}, 'only applies'),
])
def test_spec_rejects_inconsistent_tasks(kwargs, message):
  with pytest.raises(ValueError, match=message):
    features.DatasetSpec(name='bad', label_key='y', **kwargs)


def test_unknown_dataset_names_the_known_ones():
  with pytest.raises(dataset_config.DatasetConfigError,
                     match='Known datasets: taxi'):
    dataset_config.load_named('nope')


def test_taxi_config_file_round_trips():
  taxi = dataset_config.load_named('taxi')
  assert dataset_config.parse(dataset_config.to_dict(taxi)).spec == taxi.spec
  assert taxi.gate_config().min_auc == 0.90
  assert taxi.gate_config(min_auc=0.8).min_auc == 0.8  # A flag wins.
  assert 'leak' in taxi.notes['tips']


@pytest.mark.parametrize('text, message', [
    ('name: x\nlabel: y\n', '`task` is required'),
    ('name: x\nlabel: y\ntask: binary\ncolour: red\n', "unknown key.*colour"),
    ('name: x\nlabel: y\ntask: binary\ngate: {min_auc: high}\n',
     'gate.min_auc` must be a number'),
    ('name: x\nlabel: y\ntask: binary\ngate: {min_auc: 0.2}\n',
     'min_auc must be in'),
    ('name: x\nlabel: y\ntask: binary\ncolumns: {numeric: [y]}\n',
     'must not also be a feature'),
    ('name: [x\n', 'not valid YAML'),
    ('name: x\nlabel: y\ntask: binary\ngate: {min_accuracy_lift: 0}\n',
     r'`gate.min_accuracy_lift` was removed: .*lower confidence bound'),
    ('name: x\nlabel: y\ntask: binary\ncolumns: {numeric: [a]}\n'
     'required: [b]\n', r"required \['b'\] are not feature columns"),
    ('name: x\nlabel: y\ntask: multiclass\nclasses: [a, b]\n'
     'columns: {numeric: [a]}\ndecision: {rule: f1}\n',
     '`decision` .* applies to binary tasks only'),
    ('name: x\nlabel: y\ntask: binary\ncolumns: {numeric: [a]}\n'
     'decision: {rule: cost, false_negative_cost: -1}\n',
     'false_negative_cost must be > 0'),
])
def test_bad_dataset_config_names_the_file_and_key(tmp_path, text, message):
  path = tmp_path / 'dataset.yaml'
  path.write_text(text)
  with pytest.raises(dataset_config.DatasetConfigError, match=message) as e:
    dataset_config.load(str(path))
  assert str(path) in str(e.value)


@pytest.mark.parametrize('kwargs', [
    {'min_auc': 0.3}, {'min_auc': 1.1}, {'min_example_count': 0},
    {'max_metric_drop': -1.0}, {'min_r_squared': 1.0}, {'confidence': 0.3}])
def test_gate_config_rejects_meaningless_thresholds(kwargs):
  with pytest.raises(ValueError):
    config_lib.GateConfig(**kwargs)


def _thresholds(eval_config):
  thresholds = {}
  for spec in eval_config.metrics_specs:
    for metric in spec.metrics:
      assert not metric.HasField('threshold'), metric.class_name
      for per_slice in metric.per_slice_thresholds:
        assert list(per_slice.slicing_specs) == [
            evaluation.tfma.SlicingSpec()]
        thresholds[metric.class_name] = per_slice.threshold
  return thresholds


def test_eval_config_gates_only_the_overall_slice():
  gate = config_lib.GateConfig(min_auc=0.9, min_example_count=50,
                               max_metric_drop=0.01)
  eval_config = evaluation.eval_config(TAXI, gate)
  thresholds = _thresholds(eval_config)
  assert thresholds['AUC'].value_threshold.lower_bound.value == 0.9
  assert thresholds['AUC'].change_threshold.absolute.value == -0.01
  assert thresholds['ExampleCount'].value_threshold.lower_bound.value == 50
  bound = thresholds['AucLowerBound'].value_threshold
  # Strict: better than chance, so a constant's bound of exactly 0.5 fails.
  assert 0.5 < bound.lower_bound.value < 0.5 + 1e-6
  assert not bound.HasField('upper_bound')
  sliced = {tuple(s.feature_keys) for s in eval_config.slicing_specs}
  assert sliced == {(), ('payment_type',), ('trip_start_hour',)}
  assert eval_config.model_specs[0].label_key == 'big_tipper_xf'
  assert eval_config.model_specs[0].prediction_key == 'probability'


@pytest.mark.parametrize('task, gated, key', [
    ('multiclass', {'ExampleCount', 'MacroAucLowerBound', 'MacroAuc',
                    'Accuracy'}, 'scores'),
    ('regression', {'ExampleCount', 'RSquaredLowerBound', 'RSquared'},
     'outputs'),
])
def test_each_task_is_gated_on_beating_a_constant(task, gated, key):
  spec = features.DatasetSpec(
      name='t', label_key='y', task=task, numeric_features=('x',),
      label_classes=('a', 'b', 'c') if task == 'multiclass' else ())
  eval_config = evaluation.eval_config(spec, config_lib.GateConfig())
  thresholds = _thresholds(eval_config)
  assert set(thresholds) == gated
  assert eval_config.model_specs[0].prediction_key == key
  assert 'AUC' not in thresholds


def test_keras_choice_is_tf_keras():
  import tensorflow as tf
  import tf_keras

  # conftest selected the legacy Keras: tf.keras must be the tf_keras package.
  assert tf.keras.Model is tf_keras.Model
  assert isinstance(model_lib.build_model(['x'], {}), tf_keras.Model)


def test_without_the_choice_library_code_refuses_to_train():
  """In a process that skipped select_keras(), the Trainer check fails."""
  env = {k: v for k, v in os.environ.items() if k != keras_choice.ENV_VAR}
  code = ('from models import keras_choice\n'
          'try:\n'
          '  keras_choice.require_legacy_keras()\n'
          'except RuntimeError as e:\n'
          '  print("refused:", e)\n')
  result = subprocess.run([sys.executable, '-c', code], env=env,
                          capture_output=True, text=True, timeout=300,
                          cwd=str(REPO_ROOT), check=True)
  assert 'refused: tf.keras is keras' in result.stdout, result.stdout
  assert f'Set {keras_choice.ENV_VAR}=1' in result.stdout
