"""The pipeline definition: typed config, `create_pipeline` and the TFMA gate.

Imports `models/`, `pipeline.components`, `pipeline.facts`, `schema/` (the
committed dataset configs), TFX and its libraries (TFMA, ML Metadata) and
YAML; never the run-times, validation, inspection, tracking, flags or cloud
code (tests/test_architecture.py).
"""
