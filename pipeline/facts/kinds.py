"""The kinds of a column's values, as a tf.Example feature holds them.

The curated schema's words (`INT`, `FLOAT`, `BYTES`: TFMD's FeatureType
names), the `tf.train.Feature` list each kind is written to, and what a
database value becomes before it is written: the input check, the SQL
ExampleGen, schema drafting and batch predictions all use these.
"""

from __future__ import annotations

import decimal
from typing import Any
from typing import Dict
from typing import Optional

INT = 'INT'
FLOAT = 'FLOAT'
BYTES = 'BYTES'
KINDS = (INT, FLOAT, BYTES)
NUMERIC = (INT, FLOAT)
# The tf.train.Feature list of each kind (its oneof field's name).
FEATURE_LISTS: Dict[str, str] = {INT: 'int64_list', FLOAT: 'float_list',
                                 BYTES: 'bytes_list'}
KIND_OF_FEATURE_LIST: Dict[str, str] = {
    feature_list: kind for kind, feature_list in FEATURE_LISTS.items()}
# How messages name a column of each kind's values.
WORDS: Dict[str, str] = {INT: 'integers', FLOAT: 'floats', BYTES: 'strings'}


def plain(value: Any) -> Any:
  """A database value as a tf.Example holds it: a NUMERIC / DECIMAL as a
  float, everything else as the driver gave it."""
  if isinstance(value, decimal.Decimal):
    return float(value)
  return value


def kind_of(value: Any) -> Optional[str]:
  """INT, FLOAT or BYTES for a value ExampleGen writes, else None.

  A list has the kind its non-null values share; None when they disagree.
  """
  if isinstance(value, (list, tuple)):
    kinds = {kind_of(v) for v in value if v is not None}
    return kinds.pop() if len(kinds) == 1 else None
  if isinstance(value, (bool, int)):
    return INT
  if isinstance(value, (float, decimal.Decimal)):
    return FLOAT
  if isinstance(value, (str, bytes, memoryview)):
    return BYTES
  return None
