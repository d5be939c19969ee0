"""Running one node of a compiled pipeline, the TFX side.

Shared by the two run-times that launch nodes themselves: the local one
(`pipeline.local`: nodes side by side, some in a worker process) and the
Airflow one (`pipeline.airflow`: one task per node). It imports TFX, never
Airflow, and neither run-time.
"""
