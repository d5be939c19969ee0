"""Orchestrates on this machine; runs the Beam components on Google Cloud Dataflow.

ExampleGen, StatisticsGen, Transform and Evaluator run as Dataflow jobs; the
other components, the SQLite metadata store and the orchestration stay local.

    python runners/dataflow_runner.py --project P --region us-central1 \
        --temp-location gs://BUCKET/tmp --pipeline-root gs://BUCKET/root \
        --data-root gs://BUCKET/data/taxi --output-dir outputs/dataflow
"""

import argparse
import os
import sys
import warnings

from models import keras_choice


def main(argv=None) -> int:
  keras_choice.select_keras()  # Before anything imports TensorFlow.
  warnings.filterwarnings('ignore', category=FutureWarning)
  from pipeline import flags as cli
  from pipeline.cloud import settings as cloud

  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  cli.add_common_flags(parser)
  parser.add_argument('--pipeline-root', default=os.environ.get(
      'PIPELINE_ROOT'), help='gs:// root for artifacts; Dataflow workers '
                      'read and write here (env: PIPELINE_ROOT).')
  parser.add_argument('--output-dir', default=str(
      cli.REPO_ROOT / 'outputs' / 'dataflow'),
                      help='Local folder for the metadata DB and, by '
                      'default, pushed models (default: %(default)s).')
  parser.add_argument('--serving-model-dir', default=None,
                      help='Pusher destination, local or gs:// (default: '
                      '<output-dir>/serving_model).')
  parser.add_argument('--verbose', action='store_true',
                      help='Show the full TFX and Beam logs.')
  cloud.add_dataflow_flags(parser, os.environ)
  args = parser.parse_args(argv)
  layout = cli.output_layout(args, os.path.abspath(args.output_dir),
                             os.environ)
  try:
    if not args.pipeline_root:
      raise cloud.CloudConfigError(
          '--pipeline-root is required (or set PIPELINE_ROOT).')
    cloud.refuse_sql_source(args)
    settings = cloud.dataflow_settings(args)
    config = cli.build_config(
        args, pipeline_root=cloud.require_gcs('--pipeline-root',
                                              args.pipeline_root),
        serving_model_dir=args.serving_model_dir or layout.serving_model_dir,
        data_root=cloud.require_gcs('--data-root', args.data_root,
                                    cloud.DATA_HINT))
  except (cloud.CloudConfigError, ValueError) as e:
    # ValueError: flags that contradict each other, or a bad dataset config.
    parser.error(str(e))
  config = cloud.with_dataflow(config, settings)
  print('Beam components on Dataflow: ' + ' '.join(settings.beam_args()))
  from pipeline.local import (
    run as local_run,  # Imports TFX: after --help and validation.
  )
  return local_run.run(config, layout, verbose=args.verbose,
                       lock_timeout_s=args.lock_timeout)


if __name__ == '__main__':
  sys.exit(main())
