"""Where a run writes: everything lives under one output dir (`files`).

The runners build an `OutputLayout` once from their flags; the local
run-time, the Airflow DAG, the summary and MLflow logging read every path
from it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

from pipeline.facts import files
from pipeline.facts import metadata_location
from pipeline.facts import tracking_location


@dataclasses.dataclass(frozen=True)
class OutputLayout:
  """A run's output dir, and the stores it writes to.

  Attributes:
    root: The output dir: artifacts, pushed models, reports, the run lock.
    metadata: A MySQL / MariaDB store (`--metadata-url`) instead of the
      SQLite file in the output dir, the default.
    mlflow: An MLflow tracking store (`--mlflow-uri`) instead of the one
      in the output dir, the default.
    log_to_mlflow: Log the run to MLflow (off with `--no-mlflow`).
  """
  root: str
  metadata: Optional[metadata_location.MySqlLocation] = None
  mlflow: Optional[tracking_location.TrackingLocation] = None
  log_to_mlflow: bool = True

  @property
  def tracking(self) -> Optional[tracking_location.TrackingLocation]:
    """Where this run is logged in MLflow; None when logging is off."""
    if not self.log_to_mlflow:
      return None
    return self.mlflow or tracking_location.local_store(self.root)

  @property
  def pipeline_root(self) -> str:
    return os.path.join(self.root, files.PIPELINE_ROOT_DIR)

  @property
  def metadata_path(self) -> str:
    """The default store's SQLite file (used only without `metadata`)."""
    return os.path.join(self.root, files.METADATA_FILE)

  @property
  def metadata_location(self) -> metadata_location.MetadataLocation:
    """Where this run's ML Metadata lives."""
    return metadata_location.locate(self.root, self.metadata)

  @property
  def serving_model_dir(self) -> str:
    return os.path.join(self.root, files.SERVING_MODEL_DIR)

  @property
  def draft_dir(self) -> str:
    """A zero-config run's drafted dataset config and schema."""
    return os.path.join(self.root, files.DRAFT_DIR)
