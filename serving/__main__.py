"""`python -m serving`: the REST server (serving/server.py)."""

import sys

from serving import server

sys.exit(server.main())
