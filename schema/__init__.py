"""Curated schemas, one folder per dataset: the pipeline's data contract.

Shipped as package data so that Dataflow workers and pipeline containers see
the same files as a local run.
"""

import pathlib

from pipeline.facts import files

# Each dataset folder's curated schema file.
SCHEMA_FILE = files.SCHEMA_FILE
SCHEMA_ROOT = str(pathlib.Path(__file__).resolve().parent)


def schema_path(dataset: str) -> str:
  """Returns the path of the curated schema for `dataset`.

  Raises:
    FileNotFoundError: No curated schema exists for that dataset.
  """
  path = pathlib.Path(SCHEMA_ROOT) / dataset / files.SCHEMA_FILE
  if not path.is_file():
    raise FileNotFoundError(
        f'No curated schema for dataset {dataset!r} at {path}. Create '
        f'schema/{dataset}/{files.SCHEMA_FILE} (see docs/own-data.md).')
  return str(path)
