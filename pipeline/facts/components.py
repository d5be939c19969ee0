"""The pipeline's component ids, which ML Metadata records as node ids.

`pipeline.definition.pipeline` gives each component its id from here; the
read model (`pipeline.inspection.run_model`), the summary, the model card
and the local run-time find executions by them. For the components the
read model finds by class (the execution type's last part, so that any
pipeline's store can be read), the id is the class name.
tests/test_facts.py compiles the pipeline and checks both.
"""

# The ExampleGen's id, whatever the input format (its class varies:
# ArrowCsvExampleGen, ParquetExampleGen, SqlExampleGen, ...).
EXAMPLE_GEN = 'CsvExampleGen'
# What every ExampleGen's class name ends with.
EXAMPLE_GEN_SUFFIX = 'ExampleGen'
STATISTICS_GEN = 'StatisticsGen'
SCHEMA_GEN = 'SchemaGen'
IMPORT_SCHEMA_GEN = 'ImportSchemaGen'
EXAMPLE_VALIDATOR = 'ExampleValidator'
ANOMALY_GATE = 'AnomalyGate'
DRIFT_GATE = 'DriftGate'
TRANSFORM = 'Transform'
TUNER = 'Tuner'  # With --tune, before the Trainer.
TRAINER = 'Trainer'
BASELINE_RESOLVER = 'LatestBlessedModelResolver'
MODEL_CHANGE_CHECK = 'ModelChangeCheck'
EVALUATOR = 'Evaluator'
# Between the Evaluator and the Pusher: the candidate served by the REST
# server in a fresh process; its InfraBlessing is the Pusher's infra_blessing.
SERVING_CHECK = 'ServingCheck'
PUSHER = 'Pusher'
FEATURE_ATTRIBUTIONS = 'FeatureAttributions'

# Outputs the read model looks into.
# ModelChangeCheck's: whether the Trainer's model is new or already the
# blessed baseline (then Evaluator and Pusher are skipped).
MODEL_CHANGE_KEY = 'change'
IS_NEW = 'is_new'
# FeatureAttributions': the permutation importance of a new model.
ATTRIBUTIONS_KEY = 'attributions'
# ServingCheck's: a TFX InfraBlessing (custom property `blessed`, 1 or 0, as
# the InfraValidator writes it) with what the check found: whether it ran
# (0: the Evaluator did not bless the model), the rows compared, the largest
# difference from serving_default, and one line saying what it found.
SERVING_CHECK_KEY = 'blessing'
CHECKED_KEY = 'checked'
ROWS_CHECKED_KEY = 'rows_checked'
MAX_DIFFERENCE_KEY = 'max_difference'
CHECK_NOTE_KEY = 'note'
