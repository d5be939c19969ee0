"""The evaluated quality of a pushed version, read from ML Metadata.

    python -m serving.evaluated --output-dir OUT --version 1796408498
        [--metadata-url mysql://...]
    {"version": 1796408498, "run_id": "...", "metrics": {"auc": 0.953}}

The server compares each version's live quality (serving/feedback.py) with
what the Evaluator measured for that version before it was pushed. The
source is ML Metadata: every runner records, for every push, the Pusher's
execution and the Evaluator's output it was blessed by, so the store knows
the evaluation of every pushed model. (The model card JSON in the version
folder is derived from it, but only the local and Airflow runners write
one; the serving contract is written by the Trainer, before the
evaluation.) The run is found as `serving.monitor` finds it: the run whose
Pusher pushed a folder of that version's name, so a copied output dir
still finds its runs.

The live names and the Evaluator's metrics they are compared with:

| live | binary | multiclass | regression |
| --- | --- | --- | --- |
| `auc` | `auc` | `macro_auc` | |
| `accuracy` | `binary_accuracy`, only when the decision threshold is 0.5 | `accuracy` | |
| `rmse` | | | `root_mean_squared_error` |

A binary model's live accuracy is that of its decisions, at its own
threshold; the Evaluator's `binary_accuracy` is at 0.5, so the two are
compared only when the threshold is 0.5.

Reading the metrics imports TensorFlow Model Analysis (about 14 s of CPU
and 800 MB), so the server runs this in a child process, once per loaded
version, and the server's own memory stays that of TensorFlow alone.
Exit codes: 0 with the JSON on stdout; 3 when the store, the run or its
evaluation cannot be found (one line on stderr says which); 2 bad flags.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from typing import Callable
from typing import Dict
from typing import Optional
from typing import Sequence
from typing import Tuple

from absl import logging

from models import features
from models import serving_contract
from pipeline.facts import files

NOT_FOUND_EXIT = 3
# The child process may take minutes on a loaded machine (imports).
TIMEOUT_SECONDS = 900


class NotEvaluated(LookupError):
  """No store, no run that pushed the version, or no evaluation."""


def live_metrics(task: str, threshold: float,
                 evaluated: Dict[str, float]) -> Dict[str, float]:
  """The Evaluator's metrics under the live names (see the module
  docstring); metrics not measured the same way are left out."""
  names: Dict[str, str] = {}
  if task == features.BINARY:
    names['auc'] = 'auc'
    if threshold == 0.5:
      names['accuracy'] = 'binary_accuracy'
  elif task == features.MULTICLASS:
    names.update(auc='macro_auc', accuracy='accuracy')
  else:
    names['rmse'] = 'root_mean_squared_error'
  return {live: float(evaluated[name]) for live, name in names.items()
          if name in evaluated and evaluated[name] == evaluated[name]}


def store_location(output_dir: str, metadata_url: Optional[str]):
  """The ML Metadata store of a run's output dir, or a MySQL URL."""
  from pipeline.facts import metadata_location
  location = metadata_location.locate(
      output_dir, metadata_location.from_url(metadata_url or None,
                                             os.environ))
  if location.local_file and not os.path.isfile(location.local_file):
    raise NotEvaluated(f'no ML Metadata store at {location.local_file}; '
                       'pass --metadata-url for a MySQL store.')
  return location


def evaluation_of(output_dir: str, metadata_url: Optional[str],
                  version: int) -> Tuple[str, str]:
  """(run id, evaluation uri) of the run that pushed `version`."""
  from pipeline.inspection import run_model
  store = run_model.open_store(store_location(output_dir, metadata_url))
  for run in run_model.recent_runs(store):
    destination = run.pushed_destination
    if not destination or os.path.basename(
        destination.rstrip('/')) != str(version):
      continue
    if not run.evaluation_uri:
      raise NotEvaluated(f'run {run.run_id} pushed version {version} but '
                         'ML Metadata has no evaluation for it.')
    return run.run_id, run.evaluation_uri
  raise NotEvaluated(f'no run in ML Metadata pushed version {version}.')


def evaluated_quality(output_dir: str, metadata_url: Optional[str],
                      version: int) -> Dict[str, object]:
  """The JSON this module prints for one version."""
  path = os.path.join(output_dir, files.SERVING_MODEL_DIR, str(version))
  contract = serving_contract.read(path)
  run_id, uri = evaluation_of(output_dir, metadata_url, version)
  from pipeline.inspection import summary  # Imports TFMA: slow.
  measured, _ = summary.read_metrics(uri)
  threshold = getattr(contract, 'decision_threshold', None)
  return {'version': version, 'run_id': run_id, 'evaluation': uri,
          'metrics': live_metrics(contract.task,
                                  0.5 if threshold is None else threshold,
                                  measured)}


def fetch(output_dir: str, metadata_url: Optional[str], version: int,
          on_result: Callable[[int, Dict[str, float]], None]) -> None:
  """Runs this module for `version` in a child process, in a thread, and
  hands the metrics to `on_result`; logs one line when there are none."""
  command = [sys.executable, '-m', 'serving.evaluated', '--output-dir',
             output_dir, '--version', str(version)]
  if metadata_url:
    command += ['--metadata-url', metadata_url]

  def run() -> None:
    try:
      result = subprocess.run(command, capture_output=True, text=True,
                              timeout=TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
      logging.warning('No evaluated quality for version %d: %s', version, e)
      return
    if result.returncode != 0:
      lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
      logging.warning('No evaluated quality for version %d: %s', version,
                      lines[-1] if lines else f'exit {result.returncode}')
      return
    try:
      metrics = json.loads(result.stdout.splitlines()[-1])['metrics']
    except (ValueError, KeyError, IndexError) as e:
      logging.warning('No evaluated quality for version %d: unreadable '
                      'answer (%s)', version, e)
      return
    logging.info('Evaluated quality of version %d: %s', version, metrics)
    on_result(version, {k: float(v) for k, v in metrics.items()})

  threading.Thread(target=run, name=f'evaluated-{version}',
                   daemon=True).start()


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m serving.evaluated',
      description=__doc__.splitlines()[0])
  parser.add_argument('--output-dir', required=True,
                      help='The pipeline output dir whose serving_model/ '
                      'holds the version.')
  parser.add_argument('--version', type=int, required=True,
                      help='The pushed version.')
  parser.add_argument('--metadata-url', default=None,
                      help='A MySQL ML Metadata URL (default: OUT/'
                      f'{files.METADATA_FILE}); the password in $MYSQL_PWD.')
  args = parser.parse_args(argv)
  from models import keras_choice
  keras_choice.select_keras()  # Before anything imports TensorFlow.
  try:
    result = evaluated_quality(os.path.abspath(args.output_dir),
                               args.metadata_url, args.version)
  # A store that cannot be opened or read (MetadataStoreError is a
  # RuntimeError), a version folder without a usable contract.
  except (NotEvaluated, serving_contract.ContractError, OSError,
          RuntimeError, ValueError) as e:
    print(f'NOT EVALUATED: {e}', file=sys.stderr)
    return NOT_FOUND_EXIT
  print(json.dumps(result), flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
