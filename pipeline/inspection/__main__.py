"""`python -m pipeline.inspection`: recent runs and their lineage."""

import sys

from pipeline.inspection import lineage

sys.exit(lineage.main())
