"""Logging runs to MLflow: each local or Airflow run, read back from MLMD,
becomes an MLflow run; a pushed model becomes a registered model version.
`run_end` is what both run-times do once a run has ended."""
