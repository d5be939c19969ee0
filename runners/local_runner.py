"""Runs the pipeline here: TFX launchers, SQLite or MySQL MLMD, DirectRunner.

    python runners/local_runner.py --data-root data/taxi --output-dir outputs
    python runners/local_runner.py --data-root DIR --label COLUMN \
        --task {binary,multiclass,regression} --output-dir OUT
    MYSQL_PWD=... python runners/local_runner.py --output-dir outputs \
        --metadata-url mysql://USER@HOST:3306/DATABASE
    SQL_PASSWORD=... python runners/local_runner.py --output-dir outputs \
        --sql-url postgresql://USER@HOST:5432/DATABASE \
        --query 'SELECT * FROM trips'
"""

import argparse
import os
import sys
import warnings

from models import keras_choice
from pipeline.local import process_exit


def main(argv=None) -> int:
  keras_choice.select_keras()  # Before anything imports TensorFlow.
  # Version-support notices from the Google client libraries, not actionable.
  warnings.filterwarnings('ignore', category=FutureWarning)
  # pylint: disable=g-import-not-at-top
  from pipeline import flags as cli
  from pipeline.inspection import metadata_location
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
    metadata = None
    if args.metadata_url is not None:
      metadata = metadata_location.parse_url(
          args.metadata_url, password=os.environ.get('MYSQL_PWD'))
    layout = cli.OutputLayout(os.path.abspath(args.output_dir), metadata,
                              **cli.tracking_settings(args))
    _, sql_password = cli.sql_source(args)
    if sql_password is not None:
      # Out of the URL, so that the pipeline's exec properties (ML Metadata)
      # never hold it; the preflight and the ExampleGen read it here.
      os.environ[cli.SQL_PASSWORD_ENV] = sql_password
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


if __name__ == '__main__':
  process_exit.exit_process(main())

