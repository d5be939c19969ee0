"""The local run-time: preflight, run lock, progress and the concurrent DAG run."""
