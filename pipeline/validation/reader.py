"""What the driver asks of a reader: one per input format.

A reader reads one file of a data folder (or one query's result) once, as
a stream: it reports the problems only its format has (an undecodable
line, a corrupt page, a bad checksum), feeds every row's label to the
label tally, and says which columns it found. The checks every format
shares are the driver's (`driver`) and `columns`'.
"""

from __future__ import annotations

from typing import Optional

from pipeline.validation import columns
from pipeline.validation import contract
from pipeline.validation import folder
from pipeline.validation import labels
from pipeline.validation.problems import Collector


class Reader:
  """Reads one kind of input.

  Attributes:
    name: How the summary names the files ('Parquet'); '' for CSV.
    unit: What a problem's position counts: 'line' or 'row'.
    typed: The values arrive typed (not CSV text): a regression label's
      values are checked to be numbers whatever the schema says.
    files: How the folder messages name the files; None for a query.
    wording: How the column messages read.
  """
  name: str = ''
  unit: str = 'row'
  typed: bool = True
  files: Optional[folder.FileKind] = None
  wording: columns.Wording

  def read(self, where: str, expectations: contract.Expectations,
           collector: Collector, tally: Optional[labels.LabelTally]
           ) -> columns.Read:
    """Reads `where` to the end, or to the first problem that stops it."""
    raise NotImplementedError
