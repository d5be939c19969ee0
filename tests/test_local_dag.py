"""The local run-time around the DAG: the curated schema and the drafts."""

import argparse

from models import features
from pipeline import flags as cli
from pipeline.components import curated_schema
from pipeline.definition import dataset_config
from pipeline.definition import pipeline as pipeline_lib
from pipeline.local import dag


def _import_parameters(tmp_path, schema_text):
  """The curated-schema component's parameters for a schema's content."""
  schema = tmp_path / 'schema.pbtxt'
  schema.write_text(schema_text)
  parser = argparse.ArgumentParser()
  cli.add_common_flags(parser)
  args = parser.parse_args(['--schema', str(schema)])
  config = cli.build_config(args, pipeline_root=str(tmp_path / 'root'),
                            serving_model_dir=str(tmp_path / 'serving'))
  [component] = [c for c in pipeline_lib.create_pipeline(config).components
                 if c.id == pipeline_lib.IMPORT_SCHEMA_GEN]
  return component.exec_properties


def test_an_edited_schema_changes_the_import_cache_key(tmp_path):
  """ImportSchemaGen caches by path: its content must be a parameter too."""
  before = _import_parameters(tmp_path, 'feature { name: "a" type: INT }\n')
  same = _import_parameters(tmp_path, 'feature { name: "a" type: INT }\n')
  edited = _import_parameters(tmp_path, 'feature { name: "a" type: FLOAT }\n')
  assert before['schema_file'] == edited['schema_file']
  assert before == same
  key = curated_schema.SCHEMA_SHA256_KEY
  assert len(before[key]) == 64 and before[key] != edited[key]


def test_draft_summary_names_every_column_and_its_reason():
  config = dataset_config.DatasetConfig(
      spec=features.DatasetSpec(
          name='wine', label_key='cultivar', task='multiclass',
          label_classes=('barbera', 'barolo'), log_features=('proline',),
          categorical_features=('color_band',), excluded_columns=('id',)),
      notes={'proline': 'log-scaled: right-skewed', 'id': 'an ID'})
  text = dag.describe_draft(config)
  assert "Label 'cultivar', task multiclass, classes barbera, barolo" in text
  lines = {line.split()[0]: line for line in text.splitlines()[1:]}
  assert set(lines) == {'proline', 'color_band', 'id'}
  assert 'log' in lines['proline'] and 'right-skewed' in lines['proline']
  assert 'ignored' in lines['id'] and 'an ID' in lines['id']
