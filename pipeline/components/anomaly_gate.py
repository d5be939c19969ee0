"""AnomalyGate: stops the run when ExampleValidator found real anomalies.

ExampleValidator only records anomalies; on its own it never stops a run.
This component reads its output and fails the execution, which halts every
downstream component (Transform, Trainer, Evaluator, Pusher), unless every
anomaly type found is explicitly allow-listed in config.
"""

import os
from typing import Dict
from typing import Iterator
from typing import List
from typing import Sequence
from typing import Tuple

from absl import logging
from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.example_validator import (
  executor as example_validator_executor,
)
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

# ExampleValidator's file name inside each `Split-<name>` folder.
ANOMALIES_FILE = example_validator_executor.DEFAULT_FILE_NAME


class DataAnomalyError(RuntimeError):
  """The examples break the curated schema in a way not allow-listed."""


def read_anomalies(artifact: standard_artifacts.ExampleAnomalies
                   ) -> Dict[str, anomalies_pb2.Anomalies]:
  """ExampleValidator's Anomalies protos, by split, from its artifact."""
  return {split: anomalies_util.load_anomalies_binary(os.path.join(
      artifact_utils.get_split_uri([artifact], split), ANOMALIES_FILE))
          for split in artifact_utils.decode_split_names(artifact.split_names)}


def reasons(split: str, anomalies: anomalies_pb2.Anomalies
            ) -> Iterator[Tuple[str, str]]:
  """Yields (anomaly type name, readable line) for every reason, by feature."""
  entries = list(anomalies.anomaly_info.items())
  if anomalies.HasField('dataset_anomaly_info'):
    entries.append(('<dataset>', anomalies.dataset_anomaly_info))
  for feature, info in sorted(entries, key=lambda e: e[0]):
    for reason in info.reason:
      kind = anomalies_pb2.AnomalyInfo.Type.Name(reason.type)
      yield kind, (f"split '{split}', feature '{feature}': {kind}: "
                   f'{reason.description or info.description}')


def describe(anomalies_by_split: Dict[str, anomalies_pb2.Anomalies],
             allowed: Sequence[str]) -> Tuple[List[str], List[str]]:
  """Splits anomalies into blocking and allowed, as readable lines."""
  blocking: List[str] = []
  allowed_lines: List[str] = []
  for split, anomalies in sorted(anomalies_by_split.items()):
    for kind, line in reasons(split, anomalies):
      (allowed_lines if kind in allowed else blocking).append(line)
  return blocking, allowed_lines


@component
def AnomalyGate(
    anomalies: InputArtifact[
        standard_artifacts.ExampleAnomalies],
    allowed_anomaly_types: Parameter[str] = '',
) -> None:
  """Fails when any anomaly type outside `allowed_anomaly_types` is present.

  Args:
    anomalies: ExampleValidator output.
    allowed_anomaly_types: Comma-separated AnomalyInfo.Type names to tolerate.

  Raises:
    DataAnomalyError: Blocking anomalies were found; the message lists them.
  """
  allowed = [a.strip() for a in allowed_anomaly_types.split(',') if a.strip()]
  blocking, tolerated = describe(read_anomalies(anomalies), allowed)
  for line in tolerated:
    logging.warning('AnomalyGate: allow-listed anomaly, continuing: %s', line)
  if blocking:
    raise DataAnomalyError(
        f'Data anomalies stop the run before training ({len(blocking)}): ' +
        '; '.join(blocking) +
        '. Fix the input data, or if the change is intended update '
        'schema/ or allow-list the anomaly type in GateConfig.'
        'allowed_anomalies.')
