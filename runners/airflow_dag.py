"""The pipeline as an Airflow DAG: one Airflow task per component, daily.

Put this file in Airflow's dags folder (or point `dags_folder` at runners/).
It reads the runner flags of runners/local_runner.py, shell-quoted, from one
environment variable, which the scheduler and the workers must both see:

    export TABULAR_PIPELINE_ARGS="--output-dir /srv/tabular --data-root $PWD/data/taxi"
    airflow dags test tabular-taxi 2026-12-01

The DAG id is the pipeline name (`tabular-<dataset>`, or --pipeline-name),
and its runs are pipeline runs in <output-dir>/metadata.sqlite (or
--metadata-url), as local runs are. See docs/running.md#airflow.
"""

import os

from models import keras_choice
from pipeline.airflow import dag as airflow_dag

# Before TFX imports TensorFlow, in the scheduler and in every task process.
keras_choice.select_keras()

DAG = airflow_dag.dag_from_environment(os.environ)
