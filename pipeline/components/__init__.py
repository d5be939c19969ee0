"""Custom TFX components and executors, and the Beam code they run.

* Gates: `anomaly_gate.py` (AnomalyGate: stops the run on an anomaly that
  is not allow-listed), `drift_gate.py` (DriftGate: drift from the last
  accepted data), `model_change.py` (ModelChangeCheck: is the model already
  the blessed baseline?), `serving_check.py` (ServingCheck: the candidate
  served by `python -m serving` in a fresh process; TFX's InfraBlessing).
* ExampleGens: `arrow_csv_example_gen.py` (CSV read with pyarrow),
  `record_example_gen.py` (Parquet, Avro and TFRecord),
  `sql_example_gen.py` + `sql_rows.py` (a SQL query through SQLAlchemy,
  streamed; the input check and batch predictions read rows with it too),
  `span_range.py` (a range of spans, --span A-B) and `direct_write.py` (the
  split write without a Reshuffle on the DirectRunner), which they share.
* `curated_schema.py`: ImportSchemaGen whose cache key covers the schema's
  content.
* `budgeted_tuner.py`: TFX's Tuner with an executor that keeps the search
  record.
* `attributions.py`: FeatureAttributions, the permutation importance of a
  new model on the test split.

They import TFX, TFDV, TensorFlow, Beam (the only package but
`models.metrics` that may), `models/`, `pipeline.facts` and each other;
never `pipeline.definition`, which wires them in, nor any run-time
(tests/test_architecture.py). This `__init__` imports none of them.
"""
