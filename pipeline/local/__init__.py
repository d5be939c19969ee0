"""The local run-time: the command line (tabular-run), the input check and
run lock, zero-config drafts, the concurrent DAG run and its component
worker, progress lines and the run's log.

It runs the input check (`pipeline.validation`) before TensorFlow is
imported.
"""
