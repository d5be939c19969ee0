"""`python -m serving`: flags -> ServerConfig -> the app under uvicorn.

    python -m serving --output-dir outputs --port 8501 [--host 127.0.0.1]
        [--log-requests] [--poll-seconds 5]

It serves the newest pushed version under OUT/serving_model/ and swaps in
newer pushes as they arrive. Exit codes: 0 after a clean shutdown
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
import warnings

from models import keras_choice

NO_MODEL_EXIT = 3
SERVING_MODEL_DIR = 'serving_model'


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
  """
  output_dir: str
  host: str = '127.0.0.1'
  port: int = 8501
  poll_seconds: float = 5.0
  log_requests: bool = False
  log_max_bytes: int = 64 * 1024 * 1024
  log_max_files: int = 20
  access_log: bool = False

  def __post_init__(self) -> None:
    if not 0 <= self.port <= 65535:
      raise ValueError(f'--port must be 0..65535, got {self.port}.')
    if self.poll_seconds <= 0:
      raise ValueError(
          f'--poll-seconds must be > 0, got {self.poll_seconds}.')
    if self.log_max_bytes < 1024 or self.log_max_files < 1:
      raise ValueError('--log-max-mb must be > 0 and --log-max-files >= 1.')

  @property
  def serving_model_dir(self) -> str:
    return os.path.join(self.output_dir, SERVING_MODEL_DIR)


def parse_flags(argv: Optional[Sequence[str]] = None) -> ServerConfig:
  parser = argparse.ArgumentParser(
      prog='python -m serving', description=__doc__.splitlines()[0],
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
  args = parser.parse_args(argv)
  try:
    return ServerConfig(
        output_dir=os.path.abspath(args.output_dir), host=args.host,
        port=args.port, poll_seconds=args.poll_seconds,
        log_requests=args.log_requests,
        log_max_bytes=int(args.log_max_mb * 1024 * 1024),
        log_max_files=args.log_max_files, access_log=args.access_log)
  except ValueError as e:
    parser.error(str(e))
    raise  # Not reached: parser.error exits.


def main(argv: Optional[Sequence[str]] = None) -> int:
  config = parse_flags(argv)
  keras_choice.select_keras()  # Before anything imports TensorFlow.
  # pylint: disable=g-import-not-at-top
  from absl import logging
  import prometheus_client
  import uvicorn

  from serving import app as app_lib
  from serving import metrics as metrics_lib
  from serving import model_store
  from serving import request_log
  # pylint: enable=g-import-not-at-top
  logging.set_verbosity(logging.INFO)
  # Version-support notices from the Google client libraries, not actionable.
  warnings.filterwarnings('ignore', category=FutureWarning)
  # No `*_created` series: one per label set doubles what /metrics shows.
  prometheus_client.disable_created_metrics()
  metrics: Optional[metrics_lib.ServingMetrics] = None

  def on_load(model, refusal):
    if metrics is None:
      return
    if model is not None:
      metrics.loaded(model.version)
    else:
      metrics.refused()

  watcher = model_store.ModelWatcher(config.serving_model_dir,
                                     config.poll_seconds, on_load)
  try:
    model = watcher.load_newest()
  except model_store.NoServableModel as e:
    print(f'SERVER FAILED: {e}', file=sys.stderr)
    return NO_MODEL_EXIT
  metrics = metrics_lib.ServingMetrics(model.name)
  metrics.loaded(model.version)
  log = None
  if config.log_requests:
    log = request_log.RequestLog(
        request_log.log_folder(config.output_dir, model.name),
        config.log_max_bytes, config.log_max_files)
    logging.info('Logging requests to %s', log.folder)
  app = app_lib.create_app(app_lib.Server(watcher, metrics, log))
  watcher.start()
  print(f'Serving model {model.name!r} version {model.version} at '
        f'http://{config.host}:{config.port}/v1/models/{model.name}',
        flush=True)
  try:
    uvicorn.run(app, host=config.host, port=config.port, log_level='info',
                access_log=config.access_log)
  finally:
    watcher.stop()
    if log is not None:
      log.close()
  return 0
