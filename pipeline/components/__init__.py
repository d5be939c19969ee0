"""Custom TFX components: the anomaly gate and the drift gate.

They import only TFX, TFDV and `models/`; the definition wires them in.
"""
