"""The shared facts (pipeline/facts/) agree with the code that uses them.

The pipeline's component ids are written once, in `pipeline.facts.components`:
the definition gives them to its components and the read model finds
executions by them (by component class, for the stages it reads). The
pipeline is compiled here, so a renamed component or a new class that the
read model would no longer find fails this test, not a run's summary.
"""

import argparse
import os

import pytest

from pipeline import flags as cli
from pipeline.facts import components as component_ids
from pipeline.facts import files
from pipeline.facts import kinds
from pipeline.facts import layout as layout_lib
from pipeline.facts import metadata_location
from pipeline.inspection import run_model

# The stages the read model finds by component class (the last part of the
# execution type), each with the pipeline's id of that component.
READ_BY_CLASS = (run_model.STATISTICS_GEN, run_model.EXAMPLE_VALIDATOR,
                 run_model.TRANSFORM, run_model.TUNER, run_model.TRAINER,
                 run_model.MODEL_CHANGE_CHECK, run_model.EVALUATOR,
                 run_model.PUSHER, run_model.FEATURE_ATTRIBUTIONS,
                 run_model.SERVING_CHECK)


def _ids() -> set:
  return {value for name, value in vars(component_ids).items()
          if name.isupper() and not name.endswith(('_KEY', '_SUFFIX')) and
          name != 'IS_NEW'}


def _pipeline(tmp_path, *argv, profile_only=False):
  # TFX: imported by the tests that compile the pipeline only.
  from pipeline.definition import pipeline as pipeline_lib
  parser = argparse.ArgumentParser()
  cli.add_common_flags(parser)
  config = cli.build_config(
      parser.parse_args(list(argv)), pipeline_root=str(tmp_path / 'root'),
      serving_model_dir=str(tmp_path / 'serving'))
  return pipeline_lib.create_pipeline(config, profile_only=profile_only)


def _class(component) -> str:
  return component.type.rsplit('.', 1)[-1]


def test_the_compiled_pipeline_has_every_id_and_no_other(tmp_path):
  ids = [c.id for c in _pipeline(tmp_path, '--tune').components]
  assert len(ids) == len(set(ids))
  assert set(ids) == _ids()
  assert {c.id for c in _pipeline(tmp_path, profile_only=True).components
          } == {component_ids.EXAMPLE_GEN, component_ids.STATISTICS_GEN,
                component_ids.SCHEMA_GEN}


def test_the_read_model_finds_each_stage_by_the_class_the_pipeline_runs(
    tmp_path):
  by_id = {c.id: c for c in _pipeline(tmp_path, '--tune').components}
  for name in READ_BY_CLASS:
    assert name in by_id, f'the pipeline has no component {name!r}'
    assert _class(by_id[name]) == name, (name, by_id[name].type)
  example_gen = by_id[component_ids.EXAMPLE_GEN]
  assert _class(example_gen).endswith(run_model.EXAMPLE_GEN_SUFFIX)


def test_the_outputs_the_read_model_opens_exist(tmp_path):
  by_id = {c.id: c for c in _pipeline(tmp_path).components}
  assert run_model.MODEL_CHANGE_KEY in by_id[
      component_ids.MODEL_CHANGE_CHECK].outputs
  assert run_model.ATTRIBUTIONS_KEY in by_id[
      component_ids.FEATURE_ATTRIBUTIONS].outputs
  assert run_model.SERVING_CHECK_KEY in by_id[
      component_ids.SERVING_CHECK].outputs
  for component_id, key in ((component_ids.TRAINER, 'model_run'),
                            (component_ids.EVALUATOR, 'blessing'),
                            (component_ids.PUSHER, 'pushed_model'),
                            (component_ids.IMPORT_SCHEMA_GEN, 'schema')):
    assert key in by_id[component_id].outputs, (component_id, key)


# --- Where a run writes, and its metadata store. ----------------------------


def test_the_layout_puts_everything_under_the_output_dir(tmp_path):
  layout = layout_lib.OutputLayout(str(tmp_path))
  assert layout.pipeline_root == str(tmp_path / 'pipeline_root')
  assert layout.serving_model_dir == str(tmp_path / 'serving_model')
  assert layout.metadata_path == str(tmp_path / 'metadata.sqlite')
  assert layout.draft_dir == str(tmp_path / 'draft')
  assert layout.metadata_location == metadata_location.SqliteLocation(
      str(tmp_path / 'metadata.sqlite'))
  assert layout.tracking.uri == f'sqlite:///{tmp_path / "mlflow.db"}'


@pytest.mark.parametrize('url, environ, shown, password', [
    (None, {'MYSQL_PWD': 'unused'}, 'OUT/metadata.sqlite', None),
    ('mysql://u@db:3307/m', {'MYSQL_PWD': 's3cret'}, 'mysql://u:***@db:3307/m',
     's3cret'),
    ('mysql://u:in%40url@db/m', {'MYSQL_PWD': 'other'},
     'mysql://u:***@db:3306/m', 'in@url'),
    ('mysql://u@db/m', {}, 'mysql://u@db:3306/m', ''),
])
def test_the_metadata_location_rule(url, environ, shown, password, tmp_path):
  """--metadata-url, else <out>/metadata.sqlite; the password from the URL,
  else $MYSQL_PWD."""
  location = metadata_location.locate(
      str(tmp_path), metadata_location.from_url(url, environ))
  assert str(location).replace(str(tmp_path), 'OUT') == shown
  if password is None:
    assert location.local_file == os.path.join(str(tmp_path),
                                               files.METADATA_FILE)
  else:
    assert location.password == password


def test_a_layout_with_a_mysql_store_uses_it(tmp_path):
  mysql = metadata_location.from_url('mysql://u@db/m', {'MYSQL_PWD': 'p'})
  layout = layout_lib.OutputLayout(str(tmp_path), mysql)
  assert layout.metadata_location is mysql


# --- Column kinds. ----------------------------------------------------------


def test_decimals_become_floats_and_kinds_are_the_schemas():
  import decimal
  assert kinds.plain(decimal.Decimal('12.50')) == 12.5
  assert isinstance(kinds.plain(decimal.Decimal('3')), float)
  assert kinds.plain('x') == 'x' and kinds.plain(None) is None
  assert [kinds.kind_of(v) for v in (True, 3, 2.5, decimal.Decimal(1), 'a',
                                     b'b', [1, None, 2], [1, 'a'], None)] == [
      kinds.INT, kinds.INT, kinds.FLOAT, kinds.FLOAT, kinds.BYTES,
      kinds.BYTES, kinds.INT, None, None]
  from tensorflow_metadata.proto.v0 import schema_pb2
  assert set(kinds.KINDS) == {schema_pb2.FeatureType.Name(t) for t in (
      schema_pb2.INT, schema_pb2.FLOAT, schema_pb2.BYTES)}
