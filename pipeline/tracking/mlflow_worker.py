"""The process that talks to MLflow, started before the pipeline runs.

    python -m pipeline.tracking.mlflow_worker

Importing MLflow costs about 4 s of CPU (most of it its Databricks SDK), and
creating a new SQLite store another 2 s of schema migrations. A local run
starts this process first, so both happen while the pipeline runs, on
another core, and the run only waits for the logging itself at its end.

It reads two JSON lines on stdin and answers one on stdout:

1. `{"uri": ..., "artifact_location": ...}`: the store. The worker imports
   MLflow, opens the store (creating a local one) or reaches the server,
   and remembers any failure.
2. The request (`mlflow_log.request_for`): what to log. End of input instead
   means there is nothing to log (the run was not recorded): it exits.

A pushed model is logged under `model/` as an MLflow pyfunc model
(`save_pyfunc`: an `MLmodel` whose loader is `serving.mlflow_model`, the
SavedModel under `data/<version>/`) and registered; the new version gets
the alias `champion`.

The answer is `{"run_id", "experiment_id", "artifact_uri",
"model_version", "seconds"}` (seconds: importing MLflow, opening the store,
logging, and the worker's CPU time), or `{"error": "one line"}`. Nothing else
is printed on stdout: what MLflow prints goes to stderr, which the parent
keeps in a file.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from typing import Any
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

# MLflow's batch limits (mlflow.utils.validation): per log_batch call.
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_TAGS_PER_BATCH = 100
MAX_ERROR_CHARS = 400
# The artifact folder of a registered model's files inside its run.
MODEL_ARTIFACT_PATH = 'model'
# The alias of the newest blessed (pushed) version of a registered model.
CHAMPION = 'champion'
FINISHED = 'FINISHED'


def one_line(error: BaseException, limit: int = MAX_ERROR_CHARS) -> str:
  """An exception as one short line: its type, its first words and its
  last ones (where HTTP clients put the cause: "Connection refused")."""
  text = ' '.join(str(error).split())
  if len(text) > limit:
    text = text[:limit // 2 - 3] + ' ... ' + text[-(limit // 2 - 2):]
  return f'{type(error).__name__}: {text}' if text else type(error).__name__


def _chunks(items: Sequence[Any], size: int) -> List[Sequence[Any]]:
  return [items[i:i + size] for i in range(0, len(items), size)] or [()]


def _experiment_id(client, name: str,
                   artifact_location: Optional[str]) -> str:
  """The experiment of that name, created when missing."""
  from mlflow.exceptions import MlflowException
  experiment = client.get_experiment_by_name(name)
  if experiment is not None:
    return experiment.experiment_id
  try:
    return client.create_experiment(name,
                                     artifact_location=artifact_location)
  except MlflowException:
    # Created meanwhile by another writer of a shared server.
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
      raise
    return experiment.experiment_id


def save_pyfunc(model: Dict[str, Any], run_id: str, folder: str) -> str:
  """The pushed SavedModel as an MLflow pyfunc model in `folder`/model.

  The pyfunc flavor's `loader_module` (serving.mlflow_model, from the
  installed package) loads `data/<version>/`, the pushed folder as it is;
  nothing is pickled. The requirements are given (`pip_requirements`,
  pinned by the parent), so MLflow infers none: inferring would load the
  model in a subprocess and may reach the package index. No `code_paths`:
  the loader is the installed package's code, which a copy beside the
  model would shadow with an older one.

  Returns:
    The model's local folder.
  """
  from mlflow import pyfunc
  from mlflow.models import Model
  local = os.path.join(folder, MODEL_ARTIFACT_PATH)
  pyfunc.save_model(
      local, loader_module=model['loader_module'], data_path=model['path'],
      code_paths=None, pip_requirements=list(model['pip_requirements']),
      mlflow_model=Model(artifact_path=MODEL_ARTIFACT_PATH, run_id=run_id),
      metadata=model.get('metadata'))
  return local


def _register(client, run_id: str, artifact_uri: str,
              model: Dict[str, Any]) -> str:
  """Logs the pushed model as an MLflow model and registers it, as the
  `champion`; returns the version."""
  from mlflow.exceptions import MlflowException
  with tempfile.TemporaryDirectory(prefix='mlflow-model-') as folder:
    client.log_artifacts(run_id, save_pyfunc(model, run_id, folder),
                         MODEL_ARTIFACT_PATH)
  name = model['name']
  try:
    client.get_registered_model(name)
  except MlflowException:
    try:
      client.create_registered_model(
          name, description=model.get('model_description'))
    except MlflowException:
      client.get_registered_model(name)  # Created meanwhile; else raises.
  version = client.create_model_version(
      name, source=f'{artifact_uri}/{MODEL_ARTIFACT_PATH}', run_id=run_id,
      tags=model['tags'], description=model['description'])
  # Registry stages are deprecated (MLflow 2.9); the newest blessed version
  # carries the alias instead: models:/<name>@champion.
  client.set_registered_model_alias(name, CHAMPION, version.version)
  return version.version


def log(client, request: Dict[str, Any],
        artifact_location: Optional[str]) -> Dict[str, Any]:
  """Logs one pipeline run as an MLflow run; see `mlflow_log.request_for`.

  Returns:
    The run's ids, and the registered model version when one was made.
  """
  from mlflow.entities import Metric
  from mlflow.entities import Param
  from mlflow.entities import RunTag
  experiment_id = _experiment_id(client, request['experiment'],
                                 artifact_location)
  run = client.create_run(experiment_id, run_name=request['run_name'],
                          start_time=request.get('start_time_ms'))
  run_id = run.info.run_id
  try:
    now = int(time.time() * 1000)
    params = [Param(k, v) for k, v in request['params'].items()]
    metrics = [Metric(k, v, now, 0) for k, v in request['metrics'].items()]
    tags = [RunTag(k, v) for k, v in request['tags'].items()]
    for batch in _chunks(params, MAX_PARAMS_PER_BATCH):
      client.log_batch(run_id, params=list(batch))
    for batch in _chunks(metrics, MAX_METRICS_PER_BATCH):
      client.log_batch(run_id, metrics=list(batch))
    for batch in _chunks(tags, MAX_TAGS_PER_BATCH):
      client.log_batch(run_id, tags=list(batch))
    for path, artifact_path in request['artifacts']:
      client.log_artifact(run_id, path, artifact_path or None)
    version = None
    if request.get('model'):
      version = _register(client, run_id, run.info.artifact_uri,
                          request['model'])
  except Exception as error:
    try:
      client.set_terminated(run_id, 'FAILED')
    except Exception:
      raise error from None  # The first problem is the one to report.
    raise
  client.set_terminated(run_id, request.get('status', FINISHED))
  return {'run_id': run_id, 'experiment_id': experiment_id,
          'artifact_uri': run.info.artifact_uri,
          'model_version': str(version) if version is not None else None}


def _answer(stream, message: Dict[str, Any]) -> None:
  stream.write(json.dumps(message) + '\n')
  stream.flush()


def main() -> int:
  # Nothing here is needed before the run ends: the run's own imports and
  # components come first on a busy machine.
  os.nice(10)
  # The answer gets stdout to itself: whatever MLflow prints (progress bars
  # of uploads, ...) goes to stderr, from Python and from native code.
  answers = os.fdopen(os.dup(sys.stdout.fileno()), 'w', encoding='utf-8')
  os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
  store = json.loads(sys.stdin.readline() or '{}')
  if not store:
    return 0
  for name in ('mlflow', 'alembic', 'sqlalchemy', 'urllib3'):
    logging.getLogger(name).setLevel(logging.WARNING)
  client, failure = None, None
  started = time.monotonic()
  seconds = {}
  try:
    import mlflow
    from mlflow.tracking import MlflowClient
    seconds['import'] = time.monotonic() - started
    # No traces here; and a model's save (save_pyfunc), which turns
    # tracing off and on around itself, then skips setting it up (its
    # display handler imports IPython: seconds at the run's end).
    mlflow.tracing.disable()
    # A server's proxied artifacts (mlflow-artifacts:/...) are uploaded to
    # the process's global tracking URI, whatever the client's is.
    mlflow.set_tracking_uri(store['uri'])
    mlflow.set_registry_uri(store['uri'])
    client = MlflowClient(tracking_uri=store['uri'],
                          registry_uri=store['uri'])
    # Opens (or creates) a local store, or reaches the server: failures
    # show up now, while the pipeline runs, not at its end.
    client.search_experiments(max_results=1)
    seconds['open'] = time.monotonic() - started - seconds['import']
  # Whatever MLflow, its HTTP client or its database driver raises, the
  # run must go on: the parent prints it as one warning line.
  except Exception as e:
    failure = one_line(e)
  line = sys.stdin.readline()
  if not line.strip():
    return 0  # Nothing to log.
  if failure is not None:
    _answer(answers, {'error': failure})
    return 0
  try:
    logging_started = time.monotonic()
    answer = log(client, json.loads(line), store.get('artifact_location'))
    seconds['log'] = time.monotonic() - logging_started
    seconds['cpu'] = time.process_time()
    _answer(answers, {**answer, 'seconds': seconds})
  except Exception as e:  # The same rule: one warning line, the run goes on.
    _answer(answers, {'error': one_line(e)})
  return 0


if __name__ == '__main__':
  sys.exit(main())
