"""The local run-time: run lock, progress and the concurrent DAG run.

It runs the input check (`pipeline.validation`) before TensorFlow is
imported.
"""
