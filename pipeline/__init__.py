"""The TFX pipeline, one subpackage per concern: shared facts, the
definition, custom components, the input check, the local and Airflow
run-times (and the node launch they share), inspection, MLflow tracking and
cloud. See docs/design.md for the import rules.
"""
