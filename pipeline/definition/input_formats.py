"""The input formats the pipeline reads, and how a folder's format is told.

Each run reads one format: every file in `--data-root` is read as that
format by the ExampleGen that `pipeline.definition.sources` chooses. The
format is given by `--format`, or detected from the file names with
`detect`, which only looks at names (the runner lists the folder), so it is
cheap and needs no TensorFlow.
"""

from __future__ import annotations

import os
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

CSV = 'csv'
PARQUET = 'parquet'
AVRO = 'avro'
TFRECORD = 'tfrecord'
FORMATS = (CSV, PARQUET, AVRO, TFRECORD)
# The flag's default: detect the format from the file names.
AUTO = 'auto'
# What the messages call each format.
NAMES = {CSV: 'CSV', PARQUET: 'Parquet', AVRO: 'Avro',
         TFRECORD: 'TFRecord (tf.Example)'}
_SUFFIXES = {
    '.csv': CSV,
    '.parquet': PARQUET,
    '.pq': PARQUET,
    '.avro': AVRO,
    '.tfrecord': TFRECORD,
    '.tfrecords': TFRECORD,
}
# Beam's ReadFromTFRecord, and so ImportExampleGen, read `.gz` as gzip.
# ExampleGen itself writes `data_tfrecord-00000-of-00001.gz`: a `.gz` name
# is a TFRecord file unless what precedes `.gz` names another format.
_GZIP = '.gz'
_TFRECORD_BEFORE_GZIP = ('', '.tfrecord', '.tfrecords')
# How many file names one message lists per group.
_LISTED = 3


class FormatDetectionError(ValueError):
  """The folder's files do not name one format; the message says how."""


def format_of(file_name: str) -> Optional[str]:
  """The format a file name's extension names, or None.

  `data.csv` is CSV, `part-0.parquet` Parquet, `x.avro` Avro, and
  `x.tfrecord`, `x.tfrecord.gz` and `data_tfrecord-00000-of-00002.gz` are
  TFRecord files of tf.Examples. `x.csv.gz` is None: CsvExampleGen reads
  plain text only.
  """
  name = os.path.basename(file_name).lower()
  stem, suffix = os.path.splitext(name)
  if suffix == _GZIP:
    inner = os.path.splitext(stem)[1]
    return TFRECORD if inner in _TFRECORD_BEFORE_GZIP else None
  return _SUFFIXES.get(suffix)


def _listed(names: Sequence[str]) -> str:
  shown = ', '.join(names[:_LISTED])
  more = len(names) - _LISTED
  return f'{shown}, and {more} more' if more > 0 else shown


def detect(file_names: Sequence[str], data_root: str) -> str:
  """The one format the files' extensions name.

  Files without a known extension next to files of one format are that
  format's business: ExampleGen reads every file in the folder, so its
  input check refuses them, naming the file. With no files at all the
  answer is CSV, and the input check reports the empty folder.

  Args:
    file_names: The names of the files (not sub-folders) in the folder.
    data_root: The folder, for the messages.

  Returns:
    One of FORMATS.

  Raises:
    FormatDetectionError: The extensions name two or more formats, or none.
  """
  if not file_names:
    return CSV
  by_format: Dict[str, List[str]] = {}
  unknown = []
  for name in sorted(file_names):
    found = format_of(name)
    if found is None:
      unknown.append(name)
    else:
      by_format.setdefault(found, []).append(name)
  if len(by_format) == 1:
    return next(iter(by_format))
  choices = '{' + ','.join(FORMATS) + '}'
  if by_format:
    mixed = '; '.join(f'{NAMES[f]}: {_listed(names)}' for f, names
                      in sorted(by_format.items()))
    raise FormatDetectionError(
        f'{data_root} mixes input formats ({mixed}); ExampleGen reads one '
        'format per run, every file in the folder: move the files of the '
        'other formats out, then run again (or pass --format '
        f'{choices} and keep only that format in the folder).')
  raise FormatDetectionError(
      f'cannot tell the input format of {data_root}: no file has a known '
      f'extension ({_listed(unknown)}). Name the files *.csv, *.parquet, '
      '*.avro or *.tfrecord / *.gz (TFRecord files of tf.Examples), or pass '
      f'--format {choices}.')


def resolve(requested: str, data_root: str) -> str:
  """The input format: `requested`, or for AUTO the one the files name.

  Only a local folder can be listed here (no TensorFlow, no cloud access),
  so AUTO means CSV for a remote data root, and for a folder that does
  not exist or is empty (the input check then says what is wrong).

  Raises:
    FormatDetectionError: The file names mix formats or name none; the
      message names the files and --format.
  """
  if requested != AUTO:
    return requested
  if '://' in data_root or not os.path.isdir(data_root):
    return CSV
  names = [name for name in os.listdir(data_root)
           if not os.path.isdir(os.path.join(data_root, name))]
  return detect(names, data_root)
