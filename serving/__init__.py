"""Serving the pushed model: a TF Serving-compatible REST server and its tools.

    python -m serving --output-dir OUT --port 8501      # the REST server
    python -m serving.admin promote|rollback|share S    # its canary
    python -m serving.monitor --output-dir OUT           # skew and drift
    python -m serving.batch --output-dir OUT --data-root DIR --out FILE

* `server.py` + `__main__.py`: flags -> ServerConfig -> the app under
  uvicorn. `app.py`: the FastAPI app (TF Serving's REST API, feedback, the
  admin endpoints, /metrics); `tf_serving.py`: TF Serving's request and
  answer formats.
* `model_store.py`: pushed versions, loading one, the watcher that swaps in
  a new push without a restart, or loads it as the canary;
  `routing.py`: the stable and canary labels and the traffic split;
  `admin.py`: promote, roll back, set the share.
* `instances.py`: JSON rows checked against the model's serving contract
  (models/serving_contract.py) and encoded as tf.Examples; `batching.py`:
  the rows of concurrent requests scored in one call.
* `feedback.py`: labels for earlier predictions and live quality per
  version; `evaluated.py`: the quality the Evaluator measured for a
  pushed version, from ML Metadata.
* `metrics.py`: the Prometheus metrics; `monitoring/`: a scrape config,
  alert rules and a Grafana dashboard. `request_log.py`: the opt-in
  request log (JSON lines under OUT/request_logs/).
* `monitor.py`: logged requests against the training statistics (skew)
  and the previous window (drift), with TFDV; an HTML report.
* `batch.py` + `sources.py`: batch predictions over CSV, Parquet, Avro,
  TFRecord files or a SQL query.
* `mlflow_model.py`: a registered model version's MLflow pyfunc loader.

This package imports `models/` and read-only helpers of `pipeline/`
(facts, inspection, definition's format names, the SQL row reader);
`pipeline/` and `models/` never import it (tests/test_architecture.py).
"""
