"""Logging runs to MLflow: each local run, read back from MLMD, becomes an
MLflow run; a pushed model becomes a registered model version."""
