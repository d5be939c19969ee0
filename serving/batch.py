"""`python -m serving.batch`: scores files (or a SQL query) with the pushed model.

    python -m serving.batch --output-dir outputs --data-root data/taxi \
        --out /tmp/scores.parquet
    python -m serving.batch --output-dir outputs --data-root DIR \
        --format parquet --key-columns trip_id --out scores.csv
    SQL_PASSWORD=... python -m serving.batch --output-dir outputs \
        --sql-url postgresql://USER@HOST:5432/DB \
        --query 'SELECT * FROM trips' --out scores.parquet

It reads the input in batches (serving/sources.py), checks every row
against the served version's contract as the REST server does, scores it
with `serving_default`, and writes the row's key columns plus the
predictions, as CSV or Parquet (from --out's extension), batch by batch:

* binary and multiclass: `predicted_class` (the highest score's class),
  then `score_<class>` per class; binary also `probability`, P(positive
  class), and `decision`: the positive class when `probability` is at
  least the model's decision threshold (its serving contract's
  `decision_threshold`, chosen on the eval split; 0.5 for a model without
  one), else the negative class;
* regression: `prediction`.

The key columns are all the input's columns but the label, or
`--key-columns`. A progress bar counts the rows (on stderr). The output
is written under a temporary name and renamed at the end, so a failed run
leaves no half-written file. Exit codes: 0 done; 2 bad flags; 3 the input
or the model cannot be used (one line on stderr names the file, row and
feature).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any
from typing import Dict
from typing import Iterator
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple
import warnings

from models import features
from models import keras_choice
from pipeline.facts import commands
from pipeline.facts import files

BAD_INPUT_EXIT = 3
CSV = 'csv'
PARQUET = 'parquet'
_OUTPUT_FORMATS = {'.csv': CSV, '.parquet': PARQUET, '.pq': PARQUET}
DECISION = 'decision'
# Prediction columns that hold class names; the others are numbers.
TEXT_COLUMNS = ('predicted_class', DECISION)


@dataclasses.dataclass(frozen=True)
class BatchConfig:
  """What a batch run needs, read once from the flags.

  Attributes:
    output_dir: The pipeline's output dir; models in serving_model/.
    out: The file to write (.csv or .parquet).
    data_root: Folder (or file) of input files; None with a SQL query.
    file_format: One of input_formats.FORMATS; None to detect it.
    sql_url: Database URL (password in $SQL_PASSWORD), with `query`.
    query: The SQL query whose rows to score.
    key_columns: Columns copied to the output; None for all but the label.
    batch_rows: Rows scored per call.
    model_version: The version to use; None for the newest servable one.
    progress: Show the progress bar.
  """
  output_dir: str
  out: str
  data_root: Optional[str] = None
  file_format: Optional[str] = None
  sql_url: Optional[str] = None
  query: Optional[str] = None
  key_columns: Optional[Sequence[str]] = None
  batch_rows: int = 1024
  model_version: Optional[int] = None
  progress: bool = True

  def __post_init__(self) -> None:
    if (self.data_root is None) == (self.sql_url is None):
      raise ValueError('give exactly one input: --data-root, or --sql-url '
                       'with --query.')
    if (self.sql_url is None) != (self.query is None):
      raise ValueError('--sql-url and --query go together.')
    if self.output_format is None:
      raise ValueError(f'--out {self.out}: name a .csv or .parquet file.')
    if self.batch_rows < 1:
      raise ValueError(f'--batch-rows must be >= 1, got {self.batch_rows}.')

  @property
  def output_format(self) -> Optional[str]:
    return _OUTPUT_FORMATS.get(os.path.splitext(self.out)[1].lower())


class BatchError(RuntimeError):
  """The input or the model cannot be used; the message says why."""


def prediction_columns(contract: Any) -> List[str]:
  if contract.task == features.REGRESSION:
    return ['prediction']
  columns = ['predicted_class'] + [f'score_{c}' for c in contract.classes]
  if contract.task == features.BINARY:
    columns += ['probability', DECISION]
  return columns


def prediction_values(contract: Any, outputs: Dict[str, Any]
                      ) -> Dict[str, List[Any]]:
  """Output columns of one scored batch."""
  if contract.task == features.REGRESSION:
    return {'prediction': outputs['outputs'].reshape(-1).tolist()}
  scores = outputs['scores']
  best = scores.argmax(axis=1)
  values = {'predicted_class': [contract.classes[i] for i in best]}
  for i, klass in enumerate(contract.classes):
    values[f'score_{klass}'] = scores[:, i].tolist()
  if contract.task == features.BINARY:
    probability = outputs['probability'].reshape(-1)
    values['probability'] = probability.tolist()
    negative, positive = contract.classes
    values[DECISION] = [positive if p >= contract.threshold() else negative
                        for p in probability]
  return values


def _key_types(batch: Any, keys: Sequence[str], contract: Any) -> Dict[str,
                                                                        Any]:
  """Arrow types of the key columns: the contract's, else the first
  batch's (text when it holds no value)."""
  import pyarrow as pa
  by_dtype = {'float': pa.float64(), 'int': pa.int64(), 'string': pa.string()}
  types = {}
  for key in keys:
    feature = contract.feature(key)
    if feature is not None:
      types[key] = by_dtype[feature.dtype]
      continue
    inferred = pa.array([row.get(key) for row in batch.rows]).type
    types[key] = pa.string() if pa.types.is_null(inferred) else inferred
  return types


def score(config: BatchConfig, model: Optional[Any] = None) -> int:
  """Scores the input; returns the rows written.

  The contract is read first and the SavedModel loaded only for the first
  batch that passed the checks, so bad input is refused in a second.

  Args:
    config: The run's settings.
    model: A loaded `model_store.LoadedModel` to use instead of loading
      `config`'s.

  Raises:
    BatchError: Bad input, an unknown key column, or no servable model.
  """
  keras_choice.select_keras()
  import pyarrow as pa
  from pyarrow import csv as pa_csv
  from pyarrow import parquet as pq
  import tqdm

  from serving import instances as instances_lib
  from serving import sources
  version, path, contract = (
      (model.version, model.path, model.contract) if model is not None
      else _servable(config))
  checker = instances_lib.Checker(contract)
  if config.sql_url is not None:
    batches: Iterator[sources.Batch] = sources.sql_batches(
        config.sql_url, config.query, config.batch_rows)
    total = None
  else:
    batches = sources.file_batches(config.data_root, contract,
                                   config.file_format, config.batch_rows)
    total = sources.total_rows(config.data_root, config.file_format)
  outputs = prediction_columns(contract)
  temporary = config.out + '.partial'
  os.makedirs(os.path.dirname(os.path.abspath(config.out)), exist_ok=True)
  writer = None
  keys: List[str] = []
  written = 0
  progress = tqdm.tqdm(total=total, unit='rows', disable=not config.progress,
                       desc=f'Scoring with {contract.dataset} version '
                       f'{version}', file=sys.stderr, mininterval=1.0)
  try:
    for batch in batches:
      if writer is None:
        keys = list(config.key_columns or
                    [c for c in batch.columns if c != contract.label])
        missing = [k for k in keys if k not in batch.columns]
        if missing:
          raise BatchError(
              f'key columns {missing} are not in {batch.source} (it has '
              f'{batch.columns}); fix --key-columns.')
        clash = sorted(set(keys) & set(outputs))
        if clash:
          raise BatchError(
              f'key columns {clash} have the names of prediction columns; '
              'leave them out with --key-columns.')
        types = _key_types(batch, keys, contract)
        schema = pa.schema([(k, types[k]) for k in keys] +
                           [(c, pa.string() if c in TEXT_COLUMNS else
                             pa.float64()) for c in outputs])
        writer = (pa_csv.CSVWriter(temporary, schema)
                  if config.output_format == CSV else
                  pq.ParquetWriter(temporary, schema))
      try:
        rows = checker.check_rows(
            batch.rows, strict=False,
            names=[batch.where(i) for i in range(len(batch.rows))])
      except instances_lib.RequestError as e:
        raise BatchError(f'{e}') from None
      if model is None:
        model = _load(path, version)
      predicted = prediction_values(
          contract, model.predict(instances_lib.encode(rows.values,
                                                       contract)))
      columns = {}
      for key in keys:
        try:
          columns[key] = pa.array([row.get(key) for row in batch.rows],
                                  type=schema.field(key).type)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
          raise BatchError(
              f'{batch.source}: key column {key!r} changes type ({e}); '
              'pick other --key-columns.') from None
      for name in outputs:
        columns[name] = pa.array(predicted[name],
                                 type=schema.field(name).type)
      writer.write_table(pa.table(columns, schema=schema))
      written += len(batch.rows)
      progress.update(len(batch.rows))
  except sources.SourceError as e:
    _remove(temporary)
    raise BatchError(str(e)) from None
  except BaseException:
    _remove(temporary)
    raise
  finally:
    progress.close()
    if writer is not None:
      writer.close()
  if writer is None:
    raise BatchError('the input holds no rows; nothing was written.')
  os.replace(temporary, config.out)
  return written


def _remove(path: str) -> None:
  try:
    os.remove(path)
  except FileNotFoundError:
    pass


def _servable(config: BatchConfig) -> Tuple[int, str, Any]:
  """(version, folder, contract) to score with, without loading it."""
  from models import serving_contract
  from serving import model_store
  folder = os.path.join(config.output_dir, files.SERVING_MODEL_DIR)
  found = model_store.versions(folder)
  if config.model_version is not None:
    found = [(v, p) for v, p in found if v == config.model_version]
    if not found:
      raise BatchError(
          f'no version {config.model_version} in {folder} (it has '
          f'{[v for v, _ in model_store.versions(folder)]}).')
  if not found:
    raise BatchError(f'no pushed model under {folder}: run the pipeline '
                     'until a model is blessed and pushed.')
  reasons = []
  for version, path in reversed(found):
    try:
      return version, path, serving_contract.read(path)
    except serving_contract.ContractError as e:
      reasons.append(f'version {version}: {e}')
  raise BatchError(f'no servable model under {folder}: {"; ".join(reasons)}')


def _load(path: str, version: int) -> Any:
  from serving import model_store
  try:
    return model_store.load(path, version)
  except (model_store.LoadError, ValueError) as e:
    raise BatchError(str(e)) from None


def parse_flags(argv: Optional[Sequence[str]] = None) -> BatchConfig:
  from pipeline.definition import input_formats
  parser = argparse.ArgumentParser(
      prog=commands.prog('python -m serving.batch'),
      description=__doc__.splitlines()[0],
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog='\n'.join(__doc__.splitlines()[1:]))
  parser.add_argument('--output-dir', required=True,
                      help='Output dir of a pipeline run; the newest pushed '
                      'model in its serving_model/ scores.')
  parser.add_argument('--data-root', default=None,
                      help='Folder of input files of one format (or one '
                      'file).')
  parser.add_argument('--format', default=input_formats.AUTO,
                      choices=(input_formats.AUTO, *input_formats.FORMATS),
                      help='Input format (default: told from the file '
                      'names).')
  parser.add_argument('--sql-url', default=None,
                      help='Instead of files: a database URL (password in '
                      '$SQL_PASSWORD), with --query.')
  parser.add_argument('--query', default=None, help='The SQL query.')
  parser.add_argument('--out', required=True,
                      help='Output file: .csv or .parquet.')
  parser.add_argument('--key-columns', default=None,
                      help='Comma-separated input columns copied to the '
                      'output (default: every column but the label).')
  parser.add_argument('--batch-rows', type=int, default=1024,
                      help='Rows per batch (default: %(default)s).')
  parser.add_argument('--model-version', type=int, default=None,
                      help='Score with this pushed version (default: the '
                      'newest).')
  parser.add_argument('--no-progress', action='store_true',
                      help='No progress bar.')
  args = parser.parse_args(argv)
  keys = None
  if args.key_columns is not None:
    keys = tuple(k.strip() for k in args.key_columns.split(',') if k.strip())
    if not keys:
      parser.error('--key-columns names no column.')
  try:
    return BatchConfig(
        output_dir=os.path.abspath(args.output_dir),
        out=os.path.abspath(args.out), data_root=args.data_root,
        file_format=(None if args.format == input_formats.AUTO else
                     args.format),
        sql_url=args.sql_url, query=args.query, key_columns=keys,
        batch_rows=args.batch_rows, model_version=args.model_version,
        progress=not args.no_progress)
  except ValueError as e:
    parser.error(str(e))
    raise  # Not reached.


def main(argv: Optional[Sequence[str]] = None) -> int:
  config = parse_flags(argv)
  # Version-support notices from the Google client libraries that TFDV and
  # TFX import, not actionable.
  warnings.filterwarnings('ignore', category=FutureWarning)
  try:
    written = score(config)
  except BatchError as e:
    print(f'BATCH FAILED: {e}', file=sys.stderr)
    return BAD_INPUT_EXIT
  print(f'Wrote {written} rows to {config.out}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
