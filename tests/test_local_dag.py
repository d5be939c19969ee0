"""The local run-time around the DAG: schema pinning and the draft summary."""

from models import features
from pipeline.definition import dataset_config
from pipeline.local import dag


def test_an_edited_schema_gets_a_new_import_path(tmp_path):
  """ImportSchemaGen caches by path: an edit must change the path."""
  schema = tmp_path / 'schema.pbtxt'
  schema.write_text('feature { name: "a" type: INT }\n')
  first = dag.pinned_schema(str(schema), str(tmp_path / 'out'))
  again = dag.pinned_schema(str(schema), str(tmp_path / 'out'))
  assert first == again  # Unchanged: the cache still hits.
  schema.write_text('feature { name: "a" type: FLOAT }\n')
  edited = dag.pinned_schema(str(schema), str(tmp_path / 'out'))
  assert edited != first
  with open(edited) as f:
    assert 'FLOAT' in f.read()
  with open(first) as f:
    assert 'INT' in f.read()  # The copy an earlier run imported is kept.


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
