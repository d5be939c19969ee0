"""Avro object container files, through fastavro, as Beam's reader in
ExampleGen reads them: records with named fields, one row each."""

from __future__ import annotations

import struct
from typing import Any
from typing import Optional
from typing import Tuple
import zlib

from pipeline.definition import input_formats
from pipeline.facts import kinds
from pipeline.validation import records

_AVRO_KINDS = {'int': kinds.INT, 'long': kinds.INT, 'boolean': kinds.INT,
               'float': kinds.FLOAT, 'double': kinds.FLOAT,
               'string': kinds.BYTES, 'bytes': kinds.BYTES,
               'enum': kinds.BYTES}
# What a corrupt Avro file makes fastavro raise (measured: ValueError for a
# file that is not Avro, EOFError for a truncated one, IndexError for
# overwritten bytes).
_AVRO_ERRORS = (ValueError, EOFError, IndexError, KeyError, TypeError,
                OSError, struct.error, zlib.error)


def _avro_kind(avro_type: Any) -> Tuple[Optional[str], str]:
  """(kind, '') of an Avro field type, or (None, what) when unsupported."""
  if isinstance(avro_type, list):  # A union: null plus at most one type.
    others = [t for t in avro_type if t != 'null']
    if not others:
      return None, ''
    if len(others) > 1:
      return None, 'union of ' + ', '.join(map(_avro_name, others))
    return _avro_kind(others[0])
  if isinstance(avro_type, dict):
    if avro_type.get('logicalType'):
      return None, f'{avro_type["type"]} ({avro_type["logicalType"]})'
    if avro_type.get('type') == 'array':
      return _avro_kind(avro_type.get('items'))
    avro_type = avro_type.get('type')
  if avro_type == 'null':
    return None, ''
  kind = _AVRO_KINDS.get(avro_type)
  if kind is None:
    return None, _avro_name(avro_type)
  return kind, ''


def _avro_name(avro_type: Any) -> str:
  if isinstance(avro_type, dict):
    return str(avro_type.get('type'))
  return str(avro_type)


class AvroFile(records.FileReader):
  """One Avro object container file."""

  def label_cells(self) -> records.LabelCells:
    import fastavro  # Imported when an Avro folder is checked.
    row = 0
    try:
      with open(self.path, 'rb') as f:
        reader = fastavro.reader(f)
        schema = reader.writer_schema
        if not isinstance(schema, dict) or schema.get('type') != 'record':
          raise records.ReadError('its records are not Avro records with '
                                  'named fields, which ExampleGen needs')
        for field in schema.get('fields', []):
          kind, unsupported = _avro_kind(field['type'])
          if unsupported:
            self.columns.unsupported[field['name']] = records.unsupported(
                unsupported)
          else:
            self.columns.kinds[field['name']] = kind
        for record in reader:
          row += 1
          yield row, records.cell(record.get(self.label_key))
    except records.ReadError:
      raise
    except _AVRO_ERRORS as e:
      raise records.ReadError(f'{type(e).__name__}: {e}',
                              row + 1 if row else None) from e


READER = records.RecordReader(input_formats.AVRO, AvroFile)
