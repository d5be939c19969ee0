"""The TFX pipeline definition, its typed config and run inspection helpers."""
