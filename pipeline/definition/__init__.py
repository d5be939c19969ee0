"""The pipeline definition: typed config, `create_pipeline` and the TFMA gate.

Imports only `models/`, `pipeline.components`, `pipeline.facts` and TFX;
never the local run-time, inspection or cloud code.
"""
