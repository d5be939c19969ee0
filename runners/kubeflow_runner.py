"""Compiles the pipeline for Vertex AI Pipelines / KFP v2 (KubeflowV2DagRunner).

    python runners/kubeflow_runner.py --output-file outputs/pipeline.json \
        --image REGISTRY/tfx-tabular-pipeline:TAG \
        --pipeline-root gs://BUCKET/root --data-root gs://BUCKET/data/taxi \
        [--use-dataflow --project P --region R --temp-location gs://...] \
        [--submit]
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
  parser.set_defaults(data_root=f'{cloud.PLACEHOLDER_BUCKET}/data/taxi')
  parser.add_argument('--output-file', default=str(
      cli.REPO_ROOT / 'outputs' / 'kubeflow_pipeline.json'),
                      help='Compiled PipelineJob JSON (default: %(default)s).')
  parser.add_argument('--image', default=cloud.DEFAULT_IMAGE,
                      help='Pipeline image built from the Dockerfile; every '
                      'component runs in it (default: %(default)s).')
  parser.add_argument('--pipeline-root',
                      default=f'{cloud.PLACEHOLDER_BUCKET}/pipeline_root',
                      help='gs:// root for artifacts (default: %(default)s).')
  parser.add_argument('--serving-model-dir', default=None,
                      help='Pusher destination (default: '
                      '<pipeline-root>/serving_model).')
  parser.add_argument('--use-dataflow', action=argparse.BooleanOptionalAction,
                      default=False, help='Run ExampleGen, StatisticsGen, '
                      'Transform and Evaluator on Dataflow, with the image '
                      'as worker image (default: off).')
  parser.add_argument('--submit', action='store_true',
                      help='Also submit to Vertex AI Pipelines, if '
                      'Application Default Credentials exist.')
  cloud.add_dataflow_flags(parser, os.environ, with_setup_file=False)
  args = parser.parse_args(argv)
  try:
    config = cloud.kubeflow_config(args)
  except (cloud.CloudConfigError, ValueError) as e:
    # ValueError: flags that contradict each other, or a bad dataset config.
    parser.error(str(e))
  spec = cloud.compile_kubeflow(config, args.image, args.output_file)
  print(f'Compiled {spec} (image {args.image}, pipeline root '
        f'{config.pipeline_root}, Dataflow {"on" if args.use_dataflow else "off"}).')
  if not args.submit:
    return 0
  return cloud.submit_or_explain(spec, args, config)


if __name__ == '__main__':
  sys.exit(main())
