"""Column treatments: the one registry of the ways a feature column is encoded.

A dataset config puts every feature column in a treatment group (`log`,
`numeric`, ...). Each treatment is one `Treatment` entry below, holding
what the rest of the project needs to know about it: its key in
dataset.yaml's `columns:` (also its name in the serving contract, the
model card and the warm start's messages), its `DatasetSpec` field, the
raw kinds of column it takes, what its transformed columns are for the
model (dense floats, vocabulary ids or bucket ids), whether it is an extra
encoding, and the integer parameter each column carries, if any.
DatasetSpec's checks and its dict form, the dataset config's parsing and
writing, the serving contract, the warm start, the Trainer's model inputs,
the model card and the draft's description all loop over `TREATMENTS`
instead of naming treatments.

Adding a treatment:

1. an entry in `TREATMENTS` (its place is the order preprocessing_fn
   applies it in);
2. a `<key>_features` field in `DatasetSpec` (models/features.py). The
   fields stay written out, for type checkers and readers;
   tests/test_treatments.py fails when they and the registry disagree;
3. its transform in `TRANSFORMS` (models/preprocessing.py), which
   preprocessing_fn requires for every entry: it takes all the
   treatment's columns at once (`_each_column` makes one from a transform
   of a single column);
4. a line in docs/own-data.md, which the same test looks for.

Zero-config drafts (pipeline/local/drafting.py) choose a treatment by rules
on the data's statistics; a new one is drafted only once a rule for it is
written there, as `bucket` and `cyclical` never are.

No TensorFlow import: dataset configs are parsed before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses
from typing import Dict
from typing import Optional
from typing import Tuple

# The raw kinds of column, in the serving contract's words (the tf.Example
# list a value is parsed from).
FLOAT = 'float'
INT = 'int'
STRING = 'string'
KINDS = (FLOAT, INT, STRING)
# tf.DType names -> kind; what tf.Transform parses a column as.
KIND_OF_DTYPE = {'float32': FLOAT, 'float64': FLOAT, 'int64': INT,
                 'string': STRING}

# What a treatment's transformed columns are to the model (`Treatment.output`).
# Dense floats: z-scores, sin/cos, missing-value flags.
DENSE = 'dense'
# Integer ids of a tf.Transform vocabulary named after the column, plus
# `oov_buckets` hash buckets; the model embeds them.
VOCABULARY = 'vocabulary'
# Integer ids of `num_buckets` quantile buckets plus one "missing" bucket,
# from tft.bucketize; the model embeds them.
BUCKETS = 'buckets'
OUTPUTS = (DENSE, VOCABULARY, BUCKETS)

SPEC_FIELD_SUFFIX = '_features'


@dataclasses.dataclass(frozen=True)
class Parameter:
  """An integer each column of a treatment carries (cyclical's period).

  DatasetSpec holds such a treatment's columns as (column, value) pairs,
  and dataset.yaml as a mapping {column: value}.

  Attributes:
    name: What the value is, as messages name it ('period').
    greater_than: Values up to this one are refused.
    example: A dataset.yaml mapping, for messages.
  """
  name: str
  greater_than: int
  example: str


@dataclasses.dataclass(frozen=True)
class Treatment:
  """One way of encoding a feature column.

  Attributes:
    key: Its group in dataset.yaml's `columns:`, and its name wherever a
      column's treatment is shown (serving contract, model card).
    kinds: The raw kinds a column of it may hold, the one it is meant for
      first; preprocessing_fn refuses a column of another kind, naming it.
    output: DENSE, VOCABULARY or BUCKETS: what its transformed columns are
      to the model.
    description: One line for people (messages, docs).
    extra: An extra encoding: its columns may also sit in a primary group
      (one of those that are not extras).
    parameter: The integer each column carries; None when none.
  """
  key: str
  kinds: Tuple[str, ...]
  output: str
  description: str
  extra: bool = False
  parameter: Optional[Parameter] = None

  @property
  def spec_field(self) -> str:
    """The DatasetSpec field that holds its columns: `<key>_features`."""
    return self.key + SPEC_FIELD_SUFFIX


LOG = Treatment(
    key='log', kinds=(FLOAT, INT), output=DENSE,
    description='non-negative, heavy-tailed numbers: log1p-scaled, then '
    'z-scored')
NUMERIC = Treatment(
    key='numeric', kinds=(FLOAT, INT), output=DENSE,
    description='other numbers: z-scored')
BUCKET = Treatment(
    key='bucket', kinds=(FLOAT, INT), output=BUCKETS,
    description='numbers whose relation to the label is not monotone '
    '(coordinates): cut into quantile buckets and embedded')
CYCLICAL = Treatment(
    key='cyclical', kinds=(INT, FLOAT), output=DENSE, extra=True,
    parameter=Parameter(name='period', greater_than=1, example='{hour: 24}'),
    description='numbers with a period (hour of day): an extra sin/cos '
    'encoding, so that 23:00 sits next to 00:00')
# A float or int column works too: its values become tokens as text.
CATEGORICAL = Treatment(
    key='categorical', kinds=(STRING, INT, FLOAT), output=VOCABULARY,
    description='text: vocabulary-encoded, with its own "missing" token')
INTEGER_CATEGORICAL = Treatment(
    key='integer_categorical', kinds=(INT, STRING, FLOAT), output=VOCABULARY,
    description='integer codes (area ids): vocabulary-encoded like text, '
    'since their order means nothing')

# In DatasetSpec's field order, which is the order preprocessing_fn applies
# them in: tf.Transform names analyzers by call order, and the warm start
# finds the n-th tft.bucketize call's boundaries by it
# (models/warm_start.py).
TREATMENTS: Tuple[Treatment, ...] = (
    LOG, NUMERIC, BUCKET, CYCLICAL, CATEGORICAL, INTEGER_CATEGORICAL)
# The groups a feature column sits in exactly one of...
PRIMARY = tuple(t for t in TREATMENTS if not t.extra)
# ...and the extra encodings it may have beside.
EXTRA = tuple(t for t in TREATMENTS if t.extra)
# The order a dataset config, the model card and the serving contract list
# the groups in: the primary ones, then the extras.
CONFIG_ORDER = PRIMARY + EXTRA
BY_KEY: Dict[str, Treatment] = {t.key: t for t in TREATMENTS}
BY_SPEC_FIELD: Dict[str, Treatment] = {t.spec_field: t for t in TREATMENTS}


def accepting(kind: str) -> Tuple[Treatment, ...]:
  """The primary treatments that take a column of `kind`."""
  return tuple(t for t in PRIMARY if kind in t.kinds)
