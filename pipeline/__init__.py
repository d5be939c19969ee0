"""The TFX pipeline: definition, custom components, local run-time, inspection
and cloud, one subpackage per concern. See docs/design.md for the import rules.
"""
