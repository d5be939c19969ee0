"""`python -m serving`: flags -> ServerConfig -> the app under uvicorn.

    python -m serving --output-dir outputs --port 8501 [--host 127.0.0.1]
        [--log-requests] [--poll-seconds 5] [--canary-share 0.1]
        [--feedback-keys COLUMN,...] [--quality-window 1000]

It serves the newest pushed version under OUT/serving_model/ and swaps in
newer pushes as they arrive; with --canary-share a newer push becomes the
canary beside the stable version instead, until `python -m serving.admin
promote` or `rollback`. The labels are kept in OUT/serving_labels.json. Exit codes: 0 after a clean shutdown
(Ctrl-C), 2 for bad flags, 3 when no pushed version can be served (one
line on stderr says why for each version), 1 when uvicorn cannot start
(the port is taken).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Optional
from typing import Sequence
from typing import Tuple
import warnings

from models import features
from models import keras_choice
from pipeline.facts import commands
from pipeline.facts import files

NO_MODEL_EXIT = 3
SERVING_MODEL_DIR = files.SERVING_MODEL_DIR
LABELS_FILE = 'serving_labels.json'
METADATA_FILE = files.METADATA_FILE


@dataclasses.dataclass(frozen=True)
class ServerConfig:
  """What the server needs, read once from the flags.

  Attributes:
    output_dir: The pipeline's output dir; models in serving_model/.
    host: The address to listen on.
    port: The port to listen on.
    poll_seconds: How often to look for a new push.
    log_requests: Log every scored row under OUT/request_logs/.
    log_max_bytes: Rotate a log file at this size.
    log_max_files: Log files kept per server process.
    access_log: uvicorn's line per request.
    canary_share: With a share above 0, a new push becomes the canary and
      gets this share of unaddressed requests; at 0 it replaces stable.
    feedback_keys: Columns that identify a row, to match labels by.
    quality_window: Labelled predictions per version in live quality.
    prediction_memory: Predictions kept for labels to be matched with.
    metadata_url: A MySQL ML Metadata URL for the evaluated quality; None
      for OUT/metadata.sqlite.
  """
  output_dir: str
  host: str = '127.0.0.1'
  port: int = 8501
  poll_seconds: float = 5.0
  log_requests: bool = False
  log_max_bytes: int = 64 * 1024 * 1024
  log_max_files: int = 20
  access_log: bool = False
  canary_share: float = 0.0
  feedback_keys: Tuple[str, ...] = ()
  quality_window: int = 1000
  prediction_memory: int = 100_000
  metadata_url: Optional[str] = None

  def __post_init__(self) -> None:
    if not 0 <= self.port <= 65535:
      raise ValueError(f'--port must be 0..65535, got {self.port}.')
    if self.poll_seconds <= 0:
      raise ValueError(
          f'--poll-seconds must be > 0, got {self.poll_seconds}.')
    if self.log_max_bytes < 1024 or self.log_max_files < 1:
      raise ValueError('--log-max-mb must be > 0 and --log-max-files >= 1.')
    if not 0.0 <= self.canary_share <= 1.0:
      raise ValueError('--canary-share must be from 0 to 1 (0.1: 10% of '
                       f'requests), got {self.canary_share}.')
    if self.quality_window < 1 or self.prediction_memory < 1:
      raise ValueError('--quality-window and --prediction-memory must be '
                       '>= 1.')

  @property
  def serving_model_dir(self) -> str:
    return os.path.join(self.output_dir, SERVING_MODEL_DIR)

  @property
  def labels_path(self) -> str:
    return os.path.join(self.output_dir, LABELS_FILE)

  @property
  def evaluated_quality(self) -> bool:
    """Whether an ML Metadata store is there to read it from."""
    return bool(self.metadata_url) or os.path.isfile(
        os.path.join(self.output_dir, METADATA_FILE))


def parse_flags(argv: Optional[Sequence[str]] = None) -> ServerConfig:
  parser = argparse.ArgumentParser(
      prog=commands.prog('python -m serving'),
      description=__doc__.splitlines()[0],
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog='\n'.join(__doc__.splitlines()[1:]))
  parser.add_argument('--output-dir', required=True,
                      help='Output dir of a pipeline run (make run: '
                      'outputs); the models are in its serving_model/.')
  parser.add_argument('--host', default='127.0.0.1',
                      help='Address to listen on (default: %(default)s; '
                      '0.0.0.0 for every interface).')
  parser.add_argument('--port', type=int, default=8501,
                      help='Port (default: %(default)s, TF Serving\'s REST '
                      'port).')
  parser.add_argument('--poll-seconds', type=float, default=5.0,
                      help='How often to look for a new push (default: '
                      '%(default)s).')
  parser.add_argument('--log-requests', action='store_true',
                      help='Log every scored row to OUT/request_logs/<model>/'
                      ' (JSON lines) for `python -m serving.monitor`.')
  parser.add_argument('--log-max-mb', type=float, default=64.0,
                      help='Rotate a request log file at this size (default: '
                      '%(default)s).')
  parser.add_argument('--log-max-files', type=int, default=20,
                      help='Request log files kept per server process; the '
                      'oldest are deleted (default: %(default)s).')
  parser.add_argument('--access-log', action='store_true',
                      help='Print uvicorn\'s line per request.')
  parser.add_argument('--canary-share', type=float, default=0.0,
                      help='Canary mode: a newer push becomes the canary '
                      'and gets this share (0-1) of the requests that name '
                      'no version or label, until `python -m serving.admin '
                      'promote|rollback`. 0 (default): a newer push replaces '
                      'the served version.')
  parser.add_argument('--feedback-keys', default='',
                      help='Comma-separated columns that identify a row '
                      '(sent in requests, e.g. as ignored columns), so that '
                      'labels may be sent by key instead of prediction id.')
  parser.add_argument('--quality-window', type=int, default=1000,
                      help='Live quality is measured over each version\'s '
                      'last N labelled predictions (default: %(default)s).')
  parser.add_argument('--prediction-memory', type=int, default=100_000,
                      help='Predictions kept for labels to be matched with '
                      '(default: %(default)s; the oldest are forgotten).')
  parser.add_argument('--metadata-url', default=None,
                      help='MySQL ML Metadata URL to read each version\'s '
                      'evaluated quality from (default: OUT/metadata.sqlite '
                      'when it exists; password in $MYSQL_PWD).')
  args = parser.parse_args(argv)
  try:
    return ServerConfig(
        output_dir=os.path.abspath(args.output_dir), host=args.host,
        port=args.port, poll_seconds=args.poll_seconds,
        log_requests=args.log_requests,
        log_max_bytes=int(args.log_max_mb * 1024 * 1024),
        log_max_files=args.log_max_files, access_log=args.access_log,
        canary_share=args.canary_share,
        feedback_keys=tuple(k.strip() for k in args.feedback_keys.split(',')
                            if k.strip()),
        quality_window=args.quality_window,
        prediction_memory=args.prediction_memory,
        metadata_url=args.metadata_url)
  except ValueError as e:
    parser.error(str(e))
    raise  # Not reached: parser.error exits.


def main(argv: Optional[Sequence[str]] = None) -> int:
  config = parse_flags(argv)
  keras_choice.select_keras()  # Before anything imports TensorFlow.
  from absl import logging
  import prometheus_client
  import uvicorn

  from serving import app as app_lib
  from serving import evaluated
  from serving import feedback
  from serving import metrics as metrics_lib
  from serving import model_store
  from serving import request_log
  from serving import tf_serving
  logging.set_verbosity(logging.INFO)
  # Version-support notices from the Google client libraries, not actionable.
  warnings.filterwarnings('ignore', category=FutureWarning)
  # No `*_created` series: one per label set doubles what /metrics shows.
  prometheus_client.disable_created_metrics()
  metrics: Optional[metrics_lib.ServingMetrics] = None

  def loaded(model) -> None:
    """A new version: its counters at 0, its evaluated quality looked up."""
    scoring = [tf_serving.PREDICT,
               tf_serving.REGRESS if model.contract.task == features.REGRESSION
               else tf_serving.CLASSIFY]
    metrics.loaded(model.version, scoring)
    if config.evaluated_quality:
      evaluated.fetch(config.output_dir, config.metadata_url, model.version,
                      metrics.evaluated)

  def on_load(model, refusal):
    if metrics is None:
      return  # The first versions: counted once the metrics exist.
    if model is not None:
      loaded(model)
    else:
      metrics.refused()

  watcher = model_store.ModelWatcher(
      config.serving_model_dir, config.poll_seconds, on_load,
      canary=config.canary_share > 0, canary_share=config.canary_share,
      state_path=config.labels_path)
  try:
    model = watcher.load_newest()
  except model_store.NoServableModel as e:
    print(f'SERVER FAILED: {e}', file=sys.stderr)
    return NO_MODEL_EXIT
  metrics = metrics_lib.ServingMetrics(model.name)
  for served in watcher.router.labels().values():
    loaded(served)
  if not config.evaluated_quality:
    logging.info('No ML Metadata store at %s (and no --metadata-url): the '
                 'evaluated quality of the versions is not exported.',
                 os.path.join(config.output_dir, METADATA_FILE))
  log = None
  if config.log_requests:
    log = request_log.RequestLog(
        request_log.log_folder(config.output_dir, model.name),
        config.log_max_bytes, config.log_max_files)
    logging.info('Logging requests to %s', log.folder)
  memory = feedback.PredictionMemory(config.prediction_memory,
                                     config.feedback_keys)
  app = app_lib.create_app(app_lib.Server(
      watcher, metrics, log, memory=memory,
      quality_window=config.quality_window))
  watcher.start()
  canary = watcher.router.get('canary')
  print(f'Serving model {model.name!r} version {model.version} at '
        f'http://{config.host}:{config.port}/v1/models/{model.name}'
        + (f'; canary version {canary.version} gets '
           f'{watcher.router.share:.0%} of requests' if canary else ''),
        flush=True)
  try:
    uvicorn.run(app, host=config.host, port=config.port, log_level='info',
                access_log=config.access_log)
  finally:
    watcher.stop()
    if log is not None:
      log.close()
  return 0
