"""The column treatment registry agrees with every module that uses it.

models/treatments.py is the one list of column treatments. These tests fail
when a treatment is added in only one place: a registry entry without its
DatasetSpec field, transform or documentation, or a field or transform
without an entry. A spec with a column of every treatment (and a column
that an extra encoding shares with a primary group) goes through the
dataset config, tf.Transform, the Trainer's model inputs and the serving
contract, and each says what the registry says.
"""

import dataclasses
import json
import os
import tempfile
from typing import Dict
from typing import List

import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import metadata_io
from tensorflow_transform.tf_metadata import schema_utils

from models import features
from models import preprocessing
from models import serving_contract
from models import train
from models import treatments
from models import warm_start
from pipeline.definition import dataset_config
from tests.conftest import REPO_ROOT

# DatasetSpec fields named like a treatment's that are not one.
NOT_TREATMENTS = ('slice_features', 'required_features')
LABEL = 'label'
# Raw values of each kind, one per row; None is a gap (an empty cell).
VALUES = {
    treatments.FLOAT: [0.5, 1.5, None, 12.0, 3.25, 40.0],
    treatments.INT: [1, 2, 3, None, 2, 1],
    treatments.STRING: ['a', 'b', 'a', None, 'c', 'b'],
}
LABELS = [0, 1, 0, 1, 1, 0]
TF_DTYPES = {treatments.FLOAT: tf.float32, treatments.INT: tf.int64,
             treatments.STRING: tf.string}


def _column(treatment: treatments.Treatment) -> str:
  return f'c_{treatment.key}'


def _shared_column(extra: treatments.Treatment) -> str:
  """The column of the first primary treatment `extra` also encodes."""
  return next(_column(t) for t in treatments.PRIMARY
              if t.kinds[0] in extra.kinds)


def _parameter(treatment: treatments.Treatment) -> int:
  return treatment.parameter.greater_than + 1


def _every_treatment() -> Dict[str, object]:
  """dataset.yaml's `columns:`: a column of each treatment, of the kind it
  is meant for; each extra encoding also reads a primary group's column."""
  columns = {}
  for treatment in treatments.TREATMENTS:
    names = [_column(treatment)]
    if treatment.extra:
      names.append(_shared_column(treatment))
    if treatment.parameter is None:
      columns[treatment.key] = names
    else:
      columns[treatment.key] = {n: _parameter(treatment) for n in names}
  return columns


CONFIG = dataset_config.parse({'name': 'every', 'label': LABEL,
                               'task': 'binary',
                               'columns': _every_treatment()})
SPEC = CONFIG.spec


def _kind(column: str) -> str:
  treatment = next(t for t in treatments.TREATMENTS if _column(t) == column)
  return treatment.kinds[0]


# The registry itself.


def test_keys_are_unique_and_leave_room_for_ignored():
  keys = [t.key for t in treatments.TREATMENTS]
  assert len(set(keys)) == len(keys)
  assert dataset_config.IGNORED not in keys
  assert set(treatments.BY_KEY) == set(keys)


@pytest.mark.parametrize('treatment', treatments.TREATMENTS,
                         ids=lambda t: t.key)
def test_each_entry_is_complete(treatment):
  assert treatment.kinds and set(treatment.kinds) <= set(treatments.KINDS)
  assert len(set(treatment.kinds)) == len(treatment.kinds)
  assert treatment.output in treatments.OUTPUTS
  assert treatment.description and '\n' not in treatment.description
  if treatment.parameter is not None:
    assert treatment.parameter.name and treatment.parameter.example


def test_the_config_order_lists_every_treatment_once_primary_first():
  order = treatments.CONFIG_ORDER
  assert sorted(t.key for t in order) == sorted(treatments.BY_KEY)
  extras = [t.extra for t in order]
  assert extras == sorted(extras)


# DatasetSpec.


def test_datasetspec_has_one_field_per_treatment_in_the_registry_order():
  fields = [f for f in dataclasses.fields(features.DatasetSpec)
            if f.name.endswith(treatments.SPEC_FIELD_SUFFIX)
            and f.name not in NOT_TREATMENTS]
  assert [f.name for f in fields] == [
      t.spec_field for t in treatments.TREATMENTS]
  for field in fields:
    treatment = treatments.BY_SPEC_FIELD[field.name]
    assert field.default == ()
    expected = ('Tuple[Tuple[str, int], ...]' if treatment.parameter
                else 'Tuple[str, ...]')
    assert field.type == expected, field.name


def test_spec_reads_every_treatment_and_round_trips_through_json():
  for treatment in treatments.TREATMENTS:
    assert _column(treatment) in SPEC.columns(treatment)
  assert set(SPEC.feature_columns) == {
      _column(t) for t in treatments.TREATMENTS}
  assert len(SPEC.feature_columns) == len(set(SPEC.feature_columns))
  values = json.loads(json.dumps(SPEC.to_dict()))
  assert features.DatasetSpec.from_dict(values) == SPEC


@pytest.mark.parametrize('treatment', [
    t for t in treatments.TREATMENTS if t.parameter is not None],
                         ids=lambda t: t.key)
def test_a_parameter_at_its_bound_is_refused_naming_it(treatment):
  bound = treatment.parameter.greater_than
  with pytest.raises(ValueError, match=f'needs a {treatment.parameter.name} '
                     f'> {bound}, got {bound}'):
    dataclasses.replace(SPEC, **{treatment.spec_field: (('x', bound),)})


def test_a_column_in_two_primary_groups_is_refused():
  first, second = treatments.PRIMARY[:2]
  with pytest.raises(ValueError, match='more than one group'):
    dataclasses.replace(SPEC, **{second.spec_field: (_column(first),)})


# The dataset config.


def test_dataset_config_keys_are_the_registry_keys_then_ignored():
  assert dataset_config.COLUMN_KEYS == tuple(
      t.key for t in treatments.CONFIG_ORDER) + (dataset_config.IGNORED,)


def test_dataset_config_writes_back_what_it_read():
  raw = dataset_config.to_dict(CONFIG)
  assert list(raw['columns']) == [t.key for t in treatments.CONFIG_ORDER]
  assert raw['columns'] == _every_treatment()
  assert dataset_config.parse(raw).spec == SPEC


# The treatment each module shows.


def test_serving_contract_dtypes_are_the_registry_kinds():
  assert serving_contract.DTYPES == treatments.KINDS
  assert set(treatments.KIND_OF_DTYPE.values()) == set(treatments.KINDS)


def test_warm_start_names_every_treatment_of_a_column():
  named = warm_start._treatments(SPEC)
  for extra in treatments.EXTRA:
    shared = _shared_column(extra)
    primary = next(t for t in treatments.PRIMARY if _column(t) == shared)
    assert named[shared] == (
        f'{primary.key} + {extra.key} {_parameter(extra)}')
  assert set(named) == set(SPEC.feature_columns)


# Preprocessing, the Trainer's inputs and the serving contract, on data.


def test_every_treatment_has_a_transform():
  assert set(preprocessing.TRANSFORMS) == set(treatments.BY_KEY)


def _instances() -> List[Dict[str, list]]:
  rows = []
  for i, label in enumerate(LABELS):
    row = {LABEL: [label]}
    for column in SPEC.feature_columns:
      value = VALUES[_kind(column)][i]
      row[column] = [] if value is None else [value]
    rows.append(row)
  return rows


def _metadata(spec: features.DatasetSpec) -> dataset_metadata.DatasetMetadata:
  # Every feature optional (sparse), as a drafted schema has it.
  feature_spec = {column: tf.io.VarLenFeature(TF_DTYPES[_kind(column)])
                  for column in spec.feature_columns}
  feature_spec[LABEL] = tf.io.FixedLenFeature([1], tf.int64)
  return dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec(feature_spec))


@pytest.fixture(scope='module')
def transform_output(tmp_path_factory):
  """The Transform output of the spec with every treatment."""
  folder = str(tmp_path_factory.mktemp('transform'))
  with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp):
    _, transform_fn = (
        (_instances(), _metadata(SPEC))
        | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing.preprocessing_fn(
                inputs, {'dataset': SPEC.to_dict()})))
    _ = transform_fn | tft_beam.WriteTransformFn(folder)
  # The raw schema, which TFX's Transform writes beside: the serving
  # contract reads the raw feature spec from it.
  metadata_io.write_metadata(
      _metadata(SPEC),
      os.path.join(folder, tft.TFTransformOutput.RAW_METADATA_DIR))
  return tft.TFTransformOutput(folder)


def _outputs_of(column: str, names) -> List[str]:
  return [n for n in names if n.startswith(column + '_')]


@pytest.mark.parametrize('treatment', treatments.TREATMENTS,
                         ids=lambda t: t.key)
def test_each_treatment_gives_the_model_what_the_registry_says(
    treatment, transform_output):
  transformed = transform_output.transformed_feature_spec()
  dense, categorical = train.model_inputs(transform_output, SPEC)
  column = _column(treatment)
  names = _outputs_of(column, transformed)
  assert names, f'{treatment.key}: no transformed feature of {column}'
  if treatment.output == treatments.DENSE:
    assert set(names) <= set(dense)
    assert all(transformed[n].dtype == tf.float32 for n in names)
    return
  name = features.transformed_name(column)
  assert transformed[name].dtype == tf.int64
  if treatment.output == treatments.VOCABULARY:
    assert categorical[name] == (
        transform_output.vocabulary_size_by_name(column) + SPEC.oov_buckets)
  else:
    assert categorical[name] == SPEC.num_buckets + 1


def test_serving_contract_shows_each_columns_treatment(transform_output):
  contract = serving_contract.build(SPEC, transform_output)
  shown = {f.name: f for f in contract.features}
  assert set(shown) == set(SPEC.feature_columns)
  for treatment in treatments.TREATMENTS:
    feature = shown[_column(treatment)]
    assert feature.treatment == treatment.key
    assert feature.dtype == treatment.kinds[0]
    assert (feature.vocabulary is not None) == (
        treatment.output == treatments.VOCABULARY)


def test_a_column_of_a_kind_its_treatment_cannot_encode_is_refused():
  numeric = next(t for t in treatments.PRIMARY
                 if treatments.STRING not in t.kinds)
  text = next(t for t in treatments.PRIMARY if treatments.STRING in t.kinds)
  spec = dataclasses.replace(SPEC, **{
      numeric.spec_field: (_column(numeric), _column(text)),
      text.spec_field: ()})
  with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp):
    with pytest.raises(ValueError, match=(
        f"column '{_column(text)}' holds string values, but "
        f'`{numeric.key}`')):
      _ = ((_instances(), _metadata(SPEC))
           | tft_beam.AnalyzeAndTransformDataset(
               lambda inputs: preprocessing.preprocessing_fn(
                   inputs, {'dataset': spec.to_dict()})))


# The docs.


def test_own_data_docs_name_every_treatment():
  text = (REPO_ROOT / 'docs' / 'own-data.md').read_text(encoding='utf-8')
  missing = [t.key for t in treatments.TREATMENTS if f'`{t.key}' not in text
             and f'{t.key}:' not in text]
  assert not missing, f'docs/own-data.md does not describe {missing}'
