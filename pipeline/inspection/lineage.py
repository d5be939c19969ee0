"""Lists recent pipeline runs from a metadata store, each as a lineage chain.

    python -m pipeline.inspection --output-dir outputs
    python -m pipeline.inspection --output-dir outputs --tensorboard-logdir
    MYSQL_PWD=... python -m pipeline.inspection \
        --metadata-url mysql://USER@HOST:3306/DATABASE

Every run prints as the chain that produced (or reused) its model:

    data -> examples -> transform -> model -> evaluation -> blessing -> push

with the MLMD artifact id and location of each link. `--tensorboard-logdir`
prints the Trainer's log directory of the newest run that has one. The runs
come from `run_model`, which reads the store read-only and imports no
TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Mapping
from typing import Optional
from typing import Sequence

from pipeline.facts import commands
from pipeline.facts import metadata_location
from pipeline.inspection import run_model


def format_run(run: run_model.Run) -> str:
  """A header line, then one line per link of the chain."""
  verdict = {True: 'BLESSED', False: 'NOT BLESSED',
             None: 'not evaluated'}[run.blessed]
  if run.model_unchanged:
    verdict = 'model unchanged' + (
        f', blessed in run {run.blessed_by.run_id}' if run.blessed_by else '')
  counts = [f'{run.count(s)} {s}' for s in ('complete', 'cached', 'FAILED')
            if run.count(s)]
  lines = [f'Run {run.run_id}  pipeline {run.pipeline_name}  {verdict}  '
           f'({", ".join(counts) or "no executions"})']
  for i, link in enumerate(run.chain()):
    arrow = '   ' if i == 0 else '-> '
    ref = f'#{link.artifact_id}' if link.artifact_id is not None else ''
    note = f'  [{link.note}]' if link.note else ''
    lines.append(f'  {arrow}{link.stage:<11}{ref:<6}{link.location}{note}')
  return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None,
         environ: Optional[Mapping[str, str]] = None) -> int:
  """The CLI; `environ` (default os.environ) may hold MYSQL_PWD."""
  environ = os.environ if environ is None else environ
  parser = argparse.ArgumentParser(
      prog=commands.prog('python -m pipeline.inspection'),
      description='Recent runs and their lineage, from an output dir\'s '
      'metadata store.')
  parser.add_argument('--output-dir',
                      default=str(run_model.DEFAULT_OUTPUT_DIR),
                      help='Output dir of a local run; its metadata.sqlite '
                      'is read (default: %(default)s).')
  store = parser.add_mutually_exclusive_group()
  store.add_argument('--metadata-path', default=None,
                     help='SQLite MLMD file, instead of '
                     '<output-dir>/metadata.sqlite.')
  store.add_argument('--metadata-url', default=None, metavar='URL',
                     help='A MySQL / MariaDB store, as given to the local '
                     'runner: mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE '
                     'or mysql://USER[:PASSWORD]@/DATABASE?socket=PATH '
                     '(without a password in the URL, MYSQL_PWD is used).')
  parser.add_argument('--pipeline-name', default=None,
                      help='Only runs of this pipeline (default: all).')
  parser.add_argument('--limit', type=int, default=5,
                      help='How many recent runs to list (default: '
                      '%(default)s).')
  parser.add_argument('--tensorboard-logdir', action='store_true',
                      help='Print only the latest Trainer log dir, for '
                      'tensorboard --logdir.')
  args = parser.parse_args(argv)
  try:
    location = metadata_location.locate(
        args.output_dir,
        metadata_location.from_url(args.metadata_url, environ))
    if args.metadata_path and args.metadata_url is None:
      location = metadata_location.SqliteLocation(args.metadata_path)
    store = run_model.open_store(location)
    if args.tensorboard_logdir:
      print(run_model.latest_model_run_uri(store, args.pipeline_name))
      return 0
    runs = run_model.recent_runs(store, args.pipeline_name, args.limit)
  except metadata_location.MetadataUrlError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except (FileNotFoundError, LookupError,
          metadata_location.MetadataStoreError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  if not runs:
    print(f'error: no pipeline runs recorded in {location}.', file=sys.stderr)
    return 1
  print('\n\n'.join(format_run(run) for run in runs))
  return 0


if __name__ == '__main__':
  sys.exit(main())
