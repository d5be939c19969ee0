"""What every run-time does once a pipeline run has ended.

    run_end.finish(run, config, location, output_root, tracker, failed=...)

It prints the run summary, writes the HTML report into the output dir and
the model card into the pushed model's folder, then logs the run to MLflow
through `tracker`. The local DAG (`pipeline/local/dag.py`) calls it when
LocalDagRunner returns; the Airflow DAG's last task (`pipeline/airflow/
dag.py`) when the component tasks are done.
"""

from __future__ import annotations

import sys
from typing import Optional

from pipeline.definition import config as config_lib
from pipeline.facts import metadata_location
from pipeline.inspection import model_card
from pipeline.inspection import report
from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from pipeline.tracking import mlflow_log
from pipeline.tracking import tracker as tracker_lib


def finish(run: run_model.Run, config: config_lib.PipelineConfig,
           location: metadata_location.MetadataLocation, output_root: str,
           tracker: Optional[tracker_lib.Tracker], *, failed: bool) -> None:
  """Summary, report, model card and MLflow for `run`; prints each.

  Args:
    run: The run, read back from ML Metadata.
    config: Its pipeline config.
    location: The metadata store it was read from.
    output_root: The output dir: the report goes in it.
    tracker: The MLflow worker; None when logging is off. Closed after.
    failed: A component failed: the run is logged as FAILED.
  """
  summary = run_summary.summarize(run)
  print(run_summary.format_summary(summary), flush=True)
  view = report.view_of(run, summary, str(location))
  report_path = report.write_report(view, output_root)
  print('Report: ' + report_path, flush=True)
  card = model_card.write_for_push(run, summary, config.dataset,
                                   str(location))
  sys.stdout.flush()
  mlflow_log.log_run(tracker, run, summary, config, metadata=location,
                     report_path=report_path, extra_artifacts=card or (),
                     failed=failed)
