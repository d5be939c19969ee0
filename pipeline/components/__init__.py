"""Custom TFX components: the anomaly gate and the drift gate.

They import only TFX, TFDV, `models/` and `pipeline.facts`; the definition
wires them in.
"""
