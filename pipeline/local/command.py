r"""Runs the pipeline here: TFX launchers, SQLite or MySQL MLMD, DirectRunner.

    tabular-run --data-root data/taxi --output-dir outputs
    tabular-run --data-root DIR --label COLUMN \
        --task {binary,multiclass,regression} --output-dir OUT
    MYSQL_PWD=... tabular-run --output-dir outputs \
        --metadata-url mysql://USER@HOST:3306/DATABASE
    SQL_PASSWORD=... tabular-run --output-dir outputs \
        --sql-url postgresql://USER@HOST:5432/DATABASE \
        --query 'SELECT * FROM trips'

`tabular-run` (installed by `make venv`) and `python runners/local_runner.py`
are the same command.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn
from typing import Optional
from typing import Sequence
import warnings

# Only these two at import time: `--help` and a refused input must not
# import TensorFlow, and the Keras choice must come before it.
from models import keras_choice
from pipeline.local import process_exit


def main(argv: Optional[Sequence[str]] = None) -> int:
  """The local runner's command line; returns the process exit code."""
  keras_choice.select_keras()  # Before anything imports TensorFlow.
  # Version-support notices from the Google client libraries, not actionable.
  warnings.filterwarnings('ignore', category=FutureWarning)
  # After the Keras choice: these lead to TensorFlow.
  from pipeline import flags as cli
  from pipeline.facts import sql_url
  from pipeline.local import run as local_run

  parser = argparse.ArgumentParser(
      description=__doc__.splitlines()[0],
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog='\n'.join(__doc__.splitlines()[1:]))
  cli.add_common_flags(parser)
  parser.add_argument('--output-dir', default=str(cli.REPO_ROOT / 'outputs'),
                      help='Pipeline root, metadata DB and pushed models all '
                      'go here (default: %(default)s).')
  cli.add_local_orchestration_flags(parser)
  cli.add_tracking_flags(parser)
  parser.add_argument('--cpu-replicas', type=int, default=0,
                      help='Split the CPU into N logical devices so that '
                      'MirroredStrategy trains N replicas without GPUs.')
  parser.add_argument('--verbose', action='store_true',
                      help='Show the full TFX and Beam logs.')
  args = parser.parse_args(argv)

  def config_for(dataset=None):
    return cli.build_config(
        args, pipeline_root=layout.pipeline_root,
        serving_model_dir=layout.serving_model_dir, dataset=dataset,
        beam_pipeline_args=cli.direct_runner_args(args.beam_workers))

  try:
    layout = cli.output_layout(args, os.path.abspath(args.output_dir),
                               os.environ)
    _, sql_password = cli.sql_source(args)
    if sql_password is not None:
      # Out of the URL, so that the pipeline's exec properties (ML Metadata)
      # never hold it; the input check and the ExampleGen read it here.
      os.environ[sql_url.PASSWORD_ENV] = sql_password
    draft = cli.draft_request(args)
    # A zero-config run builds its configs once the data has been read.
    config = None if draft else config_for()
  except (ValueError, OSError) as e:
    print(f'RUN FAILED: {e}', file=sys.stderr)
    return 2
  return local_run.run(config, layout, verbose=args.verbose,
                       cpu_replicas=args.cpu_replicas,
                       lock_timeout_s=args.lock_timeout, draft=draft,
                       config_for=config_for if draft else None)


def run_and_exit() -> NoReturn:
  """The `tabular-run` console script: main(), then the runner's fast exit.

  The exit skips the interpreter's teardown of TensorFlow, TFX and Beam
  (pipeline/local/process_exit.py), as `python runners/local_runner.py`
  does.
  """
  process_exit.exit_process(main())
