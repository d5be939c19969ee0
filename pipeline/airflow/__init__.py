"""The pipeline as an Airflow DAG, through TFX's AirflowDagRunner.

`dag` turns the runner flags into the DAG (`runners/airflow_dag.py` is the
DAG file), and `launcher` runs each task's node of the compiled pipeline;
`pipeline.orchestration.nodes` holds the TFX side of that, without Airflow.
Importing this package or `dag` imports neither Airflow nor TFX: a bad
configuration is refused before either loads.
"""
