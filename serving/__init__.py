"""Serving the pushed model: a TF Serving-compatible REST server and its tools.

    python -m serving --output-dir OUT --port 8501      # the REST server
    python -m serving.monitor --output-dir OUT           # skew and drift
    python -m serving.batch --output-dir OUT --data-root DIR --out FILE

* `app.py`: the FastAPI app (TF Serving's REST API, /metrics).
* `model_store.py`: pushed versions, loading one, the watcher that swaps in
  a new push without a restart.
* `instances.py`: JSON rows checked against the model's serving contract
  (models/serving_contract.py) and encoded as tf.Examples.
* `metrics.py`: the Prometheus metrics. `request_log.py`: the opt-in
  request log (JSON lines under OUT/request_logs/).
* `monitor.py`: logged requests against the training statistics (skew)
  and the previous window (drift), with TFDV; an HTML report.
* `batch.py` + `sources.py`: batch predictions over CSV, Parquet, Avro,
  TFRecord files or a SQL query.

This package imports `models/` and read-only helpers of `pipeline/`
(inspection, definition, the SQL row reader); `pipeline/` and `models/`
never import it (tests/test_architecture.py).
"""
