"""Cloud settings shared by the Dataflow and Kubeflow V2 (Vertex) runners.

The runners parse flags (with environment variables as defaults, read by the
runner and handed in here as a plain mapping) and call these helpers, so the
two runner scripts stay thin and agree on names, defaults and validation.
Nothing here talks to Google Cloud except `submit_to_vertex`, and only when
a runner asks for it.

Where code runs matters at the cloud boundary:
- Dataflow workers import this project from the sdist that `--setup_file`
  builds, or from the pipeline image (`--sdk_container_image`).
- On Vertex every component runs inside the pipeline image, which installs
  this package at `CONTAINER_PACKAGE_DIR` (see the Dockerfile). Paths baked
  into the compiled spec must therefore be `gs://` paths or paths inside the
  image, never paths on the machine that compiled it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Tuple

from pipeline import flags as cli
from pipeline.definition import config as config_lib
from pipeline.facts import files
import schema as schema_lib

# The Dockerfile installs the package here (`pip install --target`) and puts
# it on PYTHONPATH; tests/test_kubeflow_spec.py checks the two agree.
CONTAINER_PACKAGE_DIR = '/opt/pipeline'
SETUP_FILE = cli.REPO_ROOT / 'setup.py'
REQUIREMENTS_FILE = cli.REPO_ROOT / 'requirements.lock'
DEFAULT_IMAGE = 'tfx-tabular-pipeline:latest'
# Compile-only placeholders; `--submit` refuses to use them.
PLACEHOLDER_BUCKET = 'gs://your-bucket/tfx-tabular'

# Flag dest -> environment variable that provides its default.
ENV_VARS = {
    'project': 'GOOGLE_CLOUD_PROJECT',
    'region': 'GOOGLE_CLOUD_REGION',
    'temp_location': 'DATAFLOW_TEMP_LOCATION',
    'staging_location': 'DATAFLOW_STAGING_LOCATION',
    'sdk_container_image': 'DATAFLOW_SDK_CONTAINER_IMAGE',
    'machine_type': 'DATAFLOW_MACHINE_TYPE',
    'max_num_workers': 'DATAFLOW_MAX_WORKERS',
}


class CloudConfigError(ValueError):
  """A cloud setting is missing or unusable; the message names the flag."""


def _flag(dest: str) -> str:
  return '--' + dest.replace('_', '-')


def _missing(dest: str) -> CloudConfigError:
  return CloudConfigError(
      f'{_flag(dest)} is required (or set {ENV_VARS[dest]}).')


def require_gcs(flag: str, value: str, hint: str = '') -> str:
  """Returns `value` if it is a gs:// path, else raises naming the flag."""
  if not value.startswith('gs://'):
    raise CloudConfigError(
        f'{flag} must be a gs:// path, because it is read where the '
        f'components run (Dataflow workers, Vertex), got {value!r}.{hint}')
  return value


DATA_HINT = (' Copy the CSV folder to Cloud Storage first, e.g. '
             '`gsutil -m cp -r data/taxi gs://BUCKET/data/`.')


@dataclasses.dataclass(frozen=True)
class DataflowSettings:
  """Where and how the Beam-based components run on Dataflow.

  The workers get the project's code and its pinned dependencies in exactly
  one of two ways:
  - `sdk_container_image`: the pipeline image (Dockerfile), which has both.
  - `setup_file` with `requirements_file`: Dataflow's stock Beam image, plus
    the locked dependencies and the sdist built from setup.py, installed on
    each worker at startup (setup.py lists no dependencies by design).
  """
  project: str
  region: str
  temp_location: str
  staging_location: Optional[str] = None
  setup_file: Optional[str] = None
  requirements_file: Optional[str] = None
  sdk_container_image: Optional[str] = None
  machine_type: Optional[str] = None
  max_num_workers: Optional[int] = None

  def __post_init__(self) -> None:
    for dest in ('project', 'region', 'temp_location'):
      if not getattr(self, dest):
        raise _missing(dest)
    require_gcs('--temp-location', self.temp_location)
    if self.staging_location:
      require_gcs('--staging-location', self.staging_location)
    if bool(self.setup_file) == bool(self.sdk_container_image):
      raise CloudConfigError(
          'Give Dataflow the project code in exactly one way: --setup-file '
          '(workers install the sdist) or --sdk-container-image (the '
          f'pipeline image); got setup_file={self.setup_file!r}, '
          f'sdk_container_image={self.sdk_container_image!r}.')
    if bool(self.setup_file) != bool(self.requirements_file):
      raise CloudConfigError(
          '--setup-file needs --requirements-file (the stock Dataflow image '
          'has Beam only), and the pipeline image needs neither.')
    for flag, path in (('--setup-file', self.setup_file),
                       ('--requirements-file', self.requirements_file)):
      if path and not os.path.isfile(path):
        raise CloudConfigError(f'{flag} {path} not found.')
    if self.max_num_workers is not None and self.max_num_workers < 1:
      raise CloudConfigError('--max-num-workers must be >= 1, got '
                             f'{self.max_num_workers}.')

  def beam_args(self) -> Tuple[str, ...]:
    """The Beam pipeline args that send a component's work to Dataflow."""
    staging = self.staging_location or self.temp_location.rstrip(
        '/') + '/staging'
    args = ['--runner=DataflowRunner', f'--project={self.project}',
            f'--region={self.region}', f'--temp_location={self.temp_location}',
            f'--staging_location={staging}']
    if self.setup_file:
      args += [f'--setup_file={self.setup_file}',
               f'--requirements_file={self.requirements_file}']
    else:
      args.append(f'--sdk_container_image={self.sdk_container_image}')
    if self.machine_type:
      args.append(f'--machine_type={self.machine_type}')
    if self.max_num_workers:
      args.append(f'--max_num_workers={self.max_num_workers}')
    return tuple(args)


def dataflow_components() -> Tuple[str, ...]:
  """Ids of the components whose Beam work goes to Dataflow.

  These are all of the pipeline's Beam-based components (in TFX 1.16
  SchemaGen and ExampleValidator are plain Python executors);
  tests/test_kubeflow_spec.py checks that the two sets stay equal.
  """
  from pipeline.definition import pipeline as pipeline_lib
  return (pipeline_lib.EXAMPLE_GEN, pipeline_lib.STATISTICS_GEN,
          pipeline_lib.TRANSFORM, pipeline_lib.EVALUATOR)


def component_beam_args(settings: DataflowSettings
                        ) -> Dict[str, Tuple[str, ...]]:
  """Per-component Beam args for `PipelineConfig.component_beam_args`."""
  return {component: settings.beam_args()
          for component in dataflow_components()}


def with_dataflow(config: config_lib.PipelineConfig,
                  settings: DataflowSettings) -> config_lib.PipelineConfig:
  """Returns `config` with the Dataflow components' Beam args set."""
  return dataclasses.replace(config,
                             component_beam_args=component_beam_args(settings))


def add_dataflow_flags(parser: argparse.ArgumentParser,
                       env: Mapping[str, str],
                       with_setup_file: bool = True) -> None:
  """Adds the Dataflow flags; `env` (the runner's os.environ) gives defaults.

  Args:
    parser: The runner's parser.
    env: Environment of the runner process, read only for the defaults.
    with_setup_file: Offer --setup-file. The Kubeflow runner does not: its
      components run in the image, where no setup.py exists.
  """
  group = parser.add_argument_group(
      'Dataflow', 'Where the Beam components run on Google Cloud Dataflow. '
      'Each flag defaults to the environment variable named in its help.')

  def add(dest: str, help_text: str, **kwargs) -> None:
    var = ENV_VARS[dest]
    group.add_argument(_flag(dest), dest=dest, default=env.get(var),
                       help=f'{help_text} (env: {var}).', **kwargs)

  add('project', 'Google Cloud project id')
  add('region', 'Region for Dataflow jobs and Vertex pipelines, e.g. '
      'us-central1')
  add('temp_location', 'gs:// folder for Dataflow temporary files')
  add('staging_location', 'gs:// folder for staged code (default: '
      '<temp-location>/staging)')
  if with_setup_file:
    group.add_argument(
        '--setup-file', default=None,
        help='setup.py that Dataflow builds into an sdist for the workers '
        f'(default: {SETUP_FILE}, unless --sdk-container-image is given).')
    group.add_argument(
        '--requirements-file', default=None,
        help='Pinned dependencies the workers install with --setup-file '
        f'(default: {REQUIREMENTS_FILE}).')
  add('sdk_container_image', 'Worker image with the dependencies and this '
      'package installed: the image built from the Dockerfile. Replaces '
      '--setup-file and --requirements-file')
  add('machine_type', 'Worker machine type, e.g. n1-standard-4 (default: '
      "Dataflow's)")
  add('max_num_workers', 'Upper bound for Dataflow autoscaling (default: '
      "Dataflow's)")


def _parse_workers(value) -> Optional[int]:
  if value in (None, ''):
    return None
  try:
    return int(value)
  except ValueError:
    raise CloudConfigError(
        f'--max-num-workers ({ENV_VARS["max_num_workers"]}) must be an '
        f'integer, got {value!r}.') from None


def dataflow_settings(args: argparse.Namespace,
                      default_image: Optional[str] = None
                      ) -> DataflowSettings:
  """Builds validated `DataflowSettings` from parsed `add_dataflow_flags`.

  Args:
    args: Parsed flags.
    default_image: Worker image when neither a setup file nor an image was
      given (the Kubeflow runner passes its pipeline image). Without it the
      repository's setup.py is used.
  """
  image = args.sdk_container_image
  setup_file = getattr(args, 'setup_file', None)
  requirements_file = getattr(args, 'requirements_file', None)
  if not image and not setup_file:
    if default_image:
      image = default_image
    else:
      setup_file = str(SETUP_FILE)
  if setup_file and not requirements_file:
    requirements_file = str(REQUIREMENTS_FILE)
  # Relative to where the user typed them; Beam would resolve them later
  # against whatever the current directory is then.
  setup_file = setup_file and os.path.abspath(setup_file)
  requirements_file = requirements_file and os.path.abspath(requirements_file)
  return DataflowSettings(
      project=args.project, region=args.region,
      temp_location=args.temp_location,
      staging_location=args.staging_location, setup_file=setup_file,
      requirements_file=requirements_file,
      sdk_container_image=image, machine_type=args.machine_type,
      max_num_workers=_parse_workers(args.max_num_workers))


def container_schema_path(local_schema: str) -> str:
  """Path of a curated schema inside the pipeline image.

  The schema is package data, so inside the image it sits at the same place
  relative to the installed package as it does in this checkout. A schema
  outside the package is not in the image.

  Raises:
    CloudConfigError: The schema is not package data.
  """
  local = pathlib.Path(local_schema).resolve()
  package_root = pathlib.Path(schema_lib.__file__).resolve().parent.parent
  try:
    relative = local.relative_to(package_root)
  except ValueError as e:
    raise CloudConfigError(
        f'The curated schema {local_schema} is not inside the project, so the '
        'pipeline image does not hold it. Commit the dataset config and '
        'schema under schema/<name>/ and rebuild the image, or pass --schema '
        'gs://...') from e
  return str(pathlib.PurePosixPath(CONTAINER_PACKAGE_DIR, *relative.parts))


def compile_kubeflow(config: config_lib.PipelineConfig, image: str,
                     output_file: str) -> str:
  """Compiles the pipeline into a KFP v2 / Vertex PipelineJob JSON file.

  Returns:
    The absolute path of the written file.
  """
  from tfx import v1 as tfx

  from pipeline.definition import pipeline as pipeline_lib
  output_file = os.path.abspath(output_file)
  os.makedirs(os.path.dirname(output_file), exist_ok=True)
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=image),
      output_dir=os.path.dirname(output_file),
      output_filename=os.path.basename(output_file))
  # No metadata config: Vertex provides MLMD.
  runner.run(pipeline_lib.create_pipeline(config), write_out=True)
  return output_file


def application_default_credentials():
  """Returns (credentials, project) from ADC, or None when there are none."""
  import google.auth
  from google.auth import exceptions
  try:
    return google.auth.default(
        scopes=['https://www.googleapis.com/auth/cloud-platform'])
  except exceptions.DefaultCredentialsError:
    return None


def submit_to_vertex(spec_file: str, *, display_name: str, credentials,
                     project: str, region: str, pipeline_root: str) -> str:
  """Submits a compiled spec to Vertex AI Pipelines; returns the job name."""
  from google.cloud import aiplatform
  job = aiplatform.PipelineJob(
      display_name=display_name, template_path=spec_file,
      pipeline_root=pipeline_root, project=project, location=region,
      credentials=credentials)
  job.submit()
  return job.resource_name


def refuse_sql_source(args: argparse.Namespace) -> None:
  """A SQL source runs locally only; says what to do instead.

  Raises:
    CloudConfigError: --sql-url was given.
  """
  if getattr(args, 'sql_url', None):
    raise CloudConfigError(
        '--sql-url is read by the local runner only: on Dataflow and Vertex '
        'the workers would need the database on their network and its '
        'password from a secret store, which this project does not set up. '
        'Export the query to Parquet or CSV under gs:// and pass '
        '--data-root.')


def refuse_span_range(args: argparse.Namespace) -> None:
  """A range of spans is not read on Vertex; says what to do instead.

  Raises:
    CloudConfigError: --span A-B was given.
  """
  flag = getattr(args, 'span', None)
  if flag is not None and '-' in str(flag).strip():
    raise CloudConfigError(
        f'--span {flag}: a range of spans is read by the project\'s '
        'ExampleGen driver (pipeline/components/span_range.py), and Vertex '
        'runs TFX\'s own driver for file ExampleGens, which reads one span. '
        'Compile one span (--span N, or no --span for the latest); ranges '
        'run locally, on Dataflow and on Airflow.')


def kubeflow_config(args: argparse.Namespace) -> config_lib.PipelineConfig:
  """Builds the config the Kubeflow runner compiles, from its parsed flags.

  Every path in it is read where the component runs (inside the image on
  Vertex, or on Dataflow workers), so only gs:// paths and paths inside the
  image are accepted.
  """
  if args.schema and not (args.schema.startswith('gs://') or
                          args.schema.startswith(CONTAINER_PACKAGE_DIR + '/')):
    raise CloudConfigError(
        f'--schema {args.schema} would be read inside the pipeline image, '
        f'where only gs:// paths and paths under {CONTAINER_PACKAGE_DIR} '
        'exist. Leave it out to use the schema shipped in the image.')
  refuse_sql_source(args)
  refuse_span_range(args)
  if getattr(args, 'warm_start', False):
    raise CloudConfigError(
        '--warm-start is resolved against ML Metadata before a run starts, '
        'and a Kubeflow / Vertex spec is compiled here, where there is no '
        'metadata store of its runs to read. Leave --warm-start out, or '
        'warm-start a local or Dataflow run '
        '(docs/running.md#warm-start---warm-start).')
  pipeline_root = require_gcs('--pipeline-root', args.pipeline_root)
  dataset = cli.load_dataset_config(args)
  config = cli.build_config(
      args, pipeline_root=pipeline_root, dataset=dataset,
      serving_model_dir=(args.serving_model_dir or
                         pipeline_root.rstrip('/') + '/' +
                         files.SERVING_MODEL_DIR),
      data_root=require_gcs('--data-root', args.data_root, DATA_HINT),
      schema_path=args.schema or container_schema_path(dataset.schema_path))
  if not args.use_dataflow:
    return config
  return with_dataflow(config,
                       dataflow_settings(args, default_image=args.image))


def submit_or_explain(spec_file: str, args: argparse.Namespace,
                      config: config_lib.PipelineConfig) -> int:
  """Submits the compiled spec, or says why not. Returns an exit code.

  Never prints credentials; only whether they were found.
  """
  problems = [f'{flag} is the placeholder {value}' for flag, value in (
      ('--pipeline-root', config.pipeline_root),
      ('--data-root', config.data_root)) if value.startswith(PLACEHOLDER_BUCKET)]
  if '/' not in args.image:
    problems.append(f'--image {args.image} has no registry; push the image '
                    'and pass REGISTRY/NAME:TAG')
  if not args.region:
    problems.append(f'--region is required (or set {ENV_VARS["region"]})')
  if problems:
    print(f'NOT SUBMITTED ({spec_file} is compiled): ' + '; '.join(problems),
          file=sys.stderr)
    return 2
  adc = application_default_credentials()
  if adc is None:
    print(f'NOT SUBMITTED: no Application Default Credentials found, so '
          f'{spec_file} was only compiled. Run `gcloud auth '
          'application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS '
          'to a service-account key file) and re-run with --submit.',
          file=sys.stderr)
    return 2
  credentials, adc_project = adc
  project = args.project or adc_project
  if not project:
    print(f'NOT SUBMITTED: --project is required (or set '
          f'{ENV_VARS["project"]}).', file=sys.stderr)
    return 2
  name = submit_to_vertex(spec_file, display_name=config.pipeline_name,
                          credentials=credentials, project=project,
                          region=args.region,
                          pipeline_root=config.pipeline_root)
  print(f'Submitted Vertex AI PipelineJob {name}')
  return 0
