"""ModelChangeCheck: is the Trainer's model already the blessed baseline?

An unchanged re-run takes the Trainer from the cache, so its model is the
very artifact the baseline resolver returns as the latest blessed model.
Evaluating it against itself and pushing it again would cost a full TFMA pass
and a second copy under a new version directory, and decide nothing new.

This component compares the two artifacts and records the answer as the
`is_new` custom property of its output. The pipeline puts Evaluator and
Pusher under a `tfx.dsl.Cond` on that property, so they run only for a model
that is not yet the baseline. The condition compiles to a CEL trigger policy
for Kubeflow V2 as well as running under LocalDagRunner.
"""

from typing import Optional

from absl import logging
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact
from tfx.types import standard_artifacts

from pipeline.facts import components as component_ids

IS_NEW = component_ids.IS_NEW
BASELINE_ID = 'baseline_model_id'
# The name of the component's output parameter below.
OUTPUT_KEY = component_ids.MODEL_CHANGE_KEY


class ModelChange(artifact.Artifact):
  """Whether a candidate model differs from the blessed baseline.

  Custom properties: `is_new` (1 or 0), `baseline_model_id` (0 without one).
  """
  # '<namespace>.<Name>': the form Kubeflow V2 needs for a custom type.
  TYPE_NAME = 'tabular.ModelChange'


def is_new(model: artifact.Artifact,
           baseline: Optional[artifact.Artifact]) -> bool:
  """True unless `baseline` is the very artifact `model` (same id or URI)."""
  if baseline is None:
    return True
  if model.id and baseline.id:
    return model.id != baseline.id
  return model.uri != baseline.uri


@component
def ModelChangeCheck(
    model: InputArtifact[
        standard_artifacts.Model],
    change: OutputArtifact[ModelChange],
    baseline_model: InputArtifact[
        standard_artifacts.Model] = None,
) -> None:
  """Records whether `model` is new, i.e. not the blessed `baseline_model`.

  Args:
    model: The Trainer's output.
    change: Gets `is_new` and `baseline_model_id` custom properties.
    baseline_model: The latest blessed model; absent before the first
      blessing.
  """
  new = is_new(model, baseline_model)
  change.set_int_custom_property(IS_NEW, int(new))
  change.set_int_custom_property(
      BASELINE_ID, baseline_model.id if baseline_model is not None else 0)
  if not new:
    logging.info('ModelChangeCheck: model #%s is already the blessed '
                 'baseline; Evaluator and Pusher are skipped.', model.id)
