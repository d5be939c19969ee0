"""Flags shared by the runners, turned into a typed `PipelineConfig`.

Runners own their flags; this module only holds the pieces they share so
that the three runners stay short and agree on names and defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
from typing import Optional
from typing import Sequence

from models import features
from models import model_config as model_lib
from pipeline.definition import config as config_lib
import schema as schema_lib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO_ROOT / 'data' / 'taxi'


@dataclasses.dataclass(frozen=True)
class OutputLayout:
  """Where a local run writes: everything lives under one directory."""
  root: str

  @property
  def pipeline_root(self) -> str:
    return os.path.join(self.root, 'pipeline_root')

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.root, 'metadata.sqlite')

  @property
  def serving_model_dir(self) -> str:
    return os.path.join(self.root, 'serving_model')


def add_common_flags(parser: argparse.ArgumentParser) -> None:
  """Flags every runner accepts: data, dataset, schema and training."""
  parser.add_argument('--data-root', default=str(DEFAULT_DATA_ROOT),
                      help='Folder of CSV files with a header row '
                      '(default: %(default)s).')
  parser.add_argument('--dataset', default=features.TAXI.name,
                      choices=sorted(features.DATASETS),
                      help='Registered DatasetSpec (models/features.py).')
  parser.add_argument('--schema', default=None,
                      help='Curated schema .pbtxt (default: '
                      'schema/<dataset>/schema.pbtxt).')
  parser.add_argument('--pipeline-name', default=None,
                      help='Pipeline name in the metadata store (default: '
                      'tabular-<dataset>).')
  parser.add_argument('--train-steps', type=int,
                      default=config_lib.TrainingConfig.train_steps,
                      help='Training steps (default: %(default)s).')
  parser.add_argument('--per-replica-batch-size', type=int,
                      default=config_lib.TrainingConfig.per_replica_batch_size,
                      help='Batch size per replica; the global batch is this '
                      'times the number of devices (default: %(default)s).')
  parser.add_argument('--allow-anomaly', action='append', default=[],
                      metavar='TYPE',
                      help='ExampleValidator anomaly type that should not stop '
                      'the run, e.g. ENUM_TYPE_UNEXPECTED_STRING_VALUES. '
                      'Repeatable.')
  parser.add_argument('--drop-all-features', action='store_true',
                      help='Gate self-test: train a useless model that only '
                      'knows the base rate. It must not be blessed.')
  parser.add_argument('--check-drift', action='store_true',
                      help='Stop the run when the training data drifted from '
                      'the last accepted data beyond the drift comparators in '
                      'the curated schema.')
  parser.add_argument('--no-cache', action='store_true',
                      help='Re-run every component even if its inputs are '
                      'unchanged.')
  parser.add_argument('--lock-timeout', type=float, default=0.0,
                      metavar='SECONDS',
                      help='Local runs: if another run holds the output dir, '
                      'wait this long for it, then give up; 0 fails at once, '
                      '-1 waits forever (default: %(default)s).')


def build_config(args: argparse.Namespace, *, pipeline_root: str,
                 serving_model_dir: str, data_root: Optional[str] = None,
                 schema_path: Optional[str] = None,
                 beam_pipeline_args: Sequence[str] = ()
                 ) -> config_lib.PipelineConfig:
  """Builds the typed pipeline config from parsed common flags."""
  dataset = features.get_dataset(args.dataset)
  return config_lib.PipelineConfig(
      pipeline_name=args.pipeline_name or f'tabular-{dataset.name}',
      pipeline_root=pipeline_root,
      data_root=data_root or args.data_root,
      schema_path=schema_path or args.schema or schema_lib.schema_path(
          dataset.name),
      serving_model_dir=serving_model_dir,
      dataset=dataset,
      training=config_lib.TrainingConfig(
          train_steps=args.train_steps,
          per_replica_batch_size=args.per_replica_batch_size,
          model=model_lib.ModelConfig(
              drop_all_features=args.drop_all_features)),
      gate=config_lib.GateConfig(allowed_anomalies=tuple(args.allow_anomaly),
                                 check_drift=args.check_drift),
      enable_cache=not args.no_cache,
      beam_pipeline_args=tuple(beam_pipeline_args))


def direct_runner_args(workers: int) -> list:
  """Beam DirectRunner args: in-process for 1 worker, else multi-process."""
  if workers < 0:
    raise ValueError(f'--beam-workers must be >= 0, got {workers}.')
  if workers == 1:
    return ['--direct_running_mode=in_memory', '--direct_num_workers=1']
  return ['--direct_running_mode=multi_processing',
          f'--direct_num_workers={workers}']
