"""Helpers for tests that inspect a finished run's metadata and artifacts."""

import glob
import hashlib
import os
import pathlib
from typing import Dict
from typing import List

import tensorflow as tf

from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary

PIPELINE_NAME = 'tabular-taxi'


def summaries(metadata_path: str, pipeline_name: str = PIPELINE_NAME
              ) -> List[run_summary.RunSummary]:
  """Every run of a pipeline in a store, oldest first."""
  store = run_model.open_store(metadata_path)
  return [run_summary.summarize(run_model.read_run(store, context,
                                                   pipeline_name))
          for context in run_model.run_contexts(store, pipeline_name)]


def tree_digest(root: pathlib.Path) -> Dict[str, str]:
  """Relative path -> sha256 for every file under `root`."""
  digests = {}
  for path in sorted(root.rglob('*')):
    if path.is_file():
      digests[str(path.relative_to(root))] = hashlib.sha256(
          path.read_bytes()).hexdigest()
  return digests


def pushed_versions(serving_model_dir: pathlib.Path) -> List[pathlib.Path]:
  if not serving_model_dir.exists():
    return []
  return sorted(p for p in serving_model_dir.iterdir() if p.is_dir())


def split_examples(pipeline_root: pathlib.Path, split: str
                   ) -> List[tf.train.Example]:
  """All raw examples ExampleGen wrote for a split (latest execution)."""
  dirs = sorted(glob.glob(str(pipeline_root / 'CsvExampleGen' / 'examples' /
                              '*' / f'Split-{split}')),
                key=lambda d: int(pathlib.Path(d).parent.name))
  if not dirs:
    raise FileNotFoundError(f'No ExampleGen output for split {split!r} under '
                            f'{pipeline_root}')
  files = sorted(glob.glob(os.path.join(dirs[-1], '*.gz')))
  dataset = tf.data.TFRecordDataset(files, compression_type='GZIP')
  return [tf.train.Example.FromString(r.numpy()) for r in dataset]
