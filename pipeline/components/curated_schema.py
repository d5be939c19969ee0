"""ImportSchemaGen whose cache key covers the schema's content.

TFX keys a component's cache on its parameters and input artifacts.
ImportSchemaGen's only parameter is the schema file's path, so a curated
schema edited in place (a reviewed draft, say) would be served stale from
the cache, and every run after it would validate and train against the old
contract. This component takes the file's SHA-256 as a second parameter,
which the stock executor ignores: an edit re-imports the schema and re-runs
what depends on it, and an unchanged file still hits the cache wherever the
output dir lives.
"""

from tfx import types
from tfx.components.schema_gen.import_schema_gen import component
from tfx.dsl.components.base import base_component
from tfx.types import component_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs

SCHEMA_SHA256_KEY = 'schema_sha256'


class CuratedSchemaSpec(standard_component_specs.ImportSchemaGenSpec):
  PARAMETERS = {
      **standard_component_specs.ImportSchemaGenSpec.PARAMETERS,
      SCHEMA_SHA256_KEY: component_spec.ExecutionParameter(type=str),
  }


class CuratedSchemaImport(component.ImportSchemaGen):
  """ImportSchemaGen plus the schema's content hash in its cache key."""

  SPEC_CLASS = CuratedSchemaSpec

  def __init__(self, schema_file: str, schema_sha256: str):
    """Init.

    Args:
      schema_file: The curated schema, copied into the pipeline root.
      schema_sha256: Hex SHA-256 of the file's bytes, computed where the
        file is read (runners); '' when it is only readable remotely.
    """
    spec = CuratedSchemaSpec(
        schema_file=schema_file, schema_sha256=schema_sha256,
        schema=types.Channel(type=standard_artifacts.Schema))
    base_component.BaseComponent.__init__(self, spec=spec)
